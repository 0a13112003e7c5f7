//! Reading DATABASE_URL's TLS settings; connecting is tested against a real
//! server in tests/api/tls.rs.

use std::path::PathBuf;
use std::time::Duration;

use tokio_postgres::config::{Host, SslMode as WireSslMode, SslNegotiation};

use super::*;

/// A directory of PEM files, removed when dropped.
struct Pems(PathBuf);

impl Pems {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("ontab-tls-unit-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("temp dir is writable");
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let mut ca = rcgen::CertificateParams::new(Vec::new()).expect("params");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
        let client_key = rcgen::KeyPair::generate().expect("key");
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let client_cert = rcgen::CertificateParams::new(Vec::new())
            .expect("params")
            .signed_by(&client_key, &issuer)
            .expect("client certificate");
        for (name, pem) in [
            ("ca.pem", ca_cert.pem()),
            ("client.pem", client_cert.pem()),
            ("client.key", client_key.serialize_pem()),
            ("empty.pem", String::new()),
        ] {
            std::fs::write(dir.join(name), pem).expect("temp dir is writable");
        }
        Self(dir)
    }

    fn path(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for Pems {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn parse(url: &str) -> ConnectOptions {
    parse_database_url(url).unwrap_or_else(|error| panic!("{url}: {error}"))
}

fn refusal(url: &str) -> String {
    match parse_database_url(url) {
        Ok(_) => panic!("{url} was accepted"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn a_url_with_verify_full_and_a_ca_file_keeps_every_other_parameter() {
    let pems = Pems::new();
    let ca = pems.path("ca.pem").replace('/', "%2F");
    let options = parse(&format!(
        "postgres://app:s%40cret@db.example.com:6543/ontab?application_name=ontab&sslmode=verify-full&sslrootcert={ca}&connect_timeout=7"
    ));
    assert_eq!(options.sslmode(), SslMode::VerifyFull);
    assert_eq!(options.verification(), Verification::IssuerAndHostName);
    let config = &options.config;
    assert_eq!(config.get_ssl_mode(), WireSslMode::Require);
    assert_eq!(config.get_user(), Some("app"));
    assert_eq!(config.get_password(), Some(&b"s@cret"[..]));
    assert_eq!(config.get_hosts(), [Host::Tcp("db.example.com".into())]);
    assert_eq!(config.get_ports(), [6543]);
    assert_eq!(config.get_dbname(), Some("ontab"));
    assert_eq!(config.get_application_name(), Some("ontab"));
    assert_eq!(config.get_connect_timeout(), Some(&Duration::from_secs(7)));
}

#[test]
fn key_value_pairs_take_quoted_paths_and_keep_the_rest() {
    let pems = Pems::new();
    let options = parse(&format!(
        "host=db.internal user=app password='two words' sslmode=verify-ca sslrootcert='{}' sslnegotiation=direct",
        pems.path("ca.pem")
    ));
    assert_eq!(options.sslmode(), SslMode::VerifyCa);
    assert_eq!(options.verification(), Verification::Issuer);
    assert_eq!(options.config.get_password(), Some(&b"two words"[..]));
    assert_eq!(options.config.get_ssl_negotiation(), SslNegotiation::Direct);
    assert_eq!(options.config.get_ssl_mode(), WireSslMode::Require);
}

#[test]
fn without_sslmode_tls_is_used_when_offered_and_nothing_is_verified() {
    let options = parse("postgres://db.example.com/ontab");
    assert_eq!(options.sslmode(), SslMode::Prefer);
    assert_eq!(options.verification(), Verification::Nothing);
    assert_eq!(options.config.get_ssl_mode(), WireSslMode::Prefer);
}

#[test]
fn each_sslmode_asks_tokio_postgres_for_what_libpq_would() {
    let pems = Pems::new();
    let ca = pems.path("ca.pem");
    for (url, sslmode, wire, verification) in [
        (
            "host=h sslmode=disable".to_owned(),
            SslMode::Disable,
            WireSslMode::Disable,
            Verification::Nothing,
        ),
        (
            "host=h sslmode=allow".to_owned(),
            SslMode::Allow,
            WireSslMode::Prefer,
            Verification::Nothing,
        ),
        (
            "host=h sslmode=prefer".to_owned(),
            SslMode::Prefer,
            WireSslMode::Prefer,
            Verification::Nothing,
        ),
        (
            "host=h sslmode=require".to_owned(),
            SslMode::Require,
            WireSslMode::Require,
            Verification::Nothing,
        ),
        (
            format!("host=h sslmode=require sslrootcert={ca}"),
            SslMode::Require,
            WireSslMode::Require,
            Verification::Issuer,
        ),
        (
            format!("host=h sslmode=prefer sslrootcert={ca}"),
            SslMode::Prefer,
            WireSslMode::Prefer,
            Verification::Nothing,
        ),
    ] {
        let options = parse(&url);
        assert_eq!(options.sslmode(), sslmode, "{url}");
        assert_eq!(options.config.get_ssl_mode(), wire, "{url}");
        assert_eq!(options.verification(), verification, "{url}");
    }
}

#[test]
fn sslrootcert_system_means_verify_full_and_refuses_weaker_modes() {
    assert_eq!(
        decide(None, Some("system")).ok(),
        Some((SslMode::VerifyFull, Verification::IssuerAndHostName))
    );
    for weaker in ["disable", "allow", "prefer", "require", "verify-ca"] {
        assert!(
            matches!(
                decide(Some(weaker), Some("system")),
                Err(UrlError::WeakWithSystemRoots(_))
            ),
            "{weaker}"
        );
    }
    assert_eq!(
        decide(Some("verify-full"), None).ok(),
        Some((SslMode::VerifyFull, Verification::IssuerAndHostName)),
        "verify-full without sslrootcert trusts the system roots"
    );
}

#[test]
fn verify_ca_needs_a_ca_file() {
    assert!(refusal("host=h sslmode=verify-ca").contains("verify-ca needs sslrootcert"));
}

#[test]
fn an_unknown_sslmode_is_refused_with_the_known_ones() {
    let message = refusal("postgres://h/db?sslmode=verify_full");
    assert!(message.contains("\"verify_full\""), "{message}");
    assert!(message.contains("verify-full"), "{message}");
}

#[test]
fn unix_socket_hosts_never_use_tls() {
    let options = parse("host=/run/postgresql sslmode=verify-full");
    assert_eq!(options.sslmode(), SslMode::Disable);
    assert_eq!(options.config.get_ssl_mode(), WireSslMode::Disable);
    let url_form = parse("postgresql:///ontab?host=%2Frun%2Fpostgresql&sslmode=require");
    assert_eq!(url_form.config.get_ssl_mode(), WireSslMode::Disable);
}

#[test]
fn sockets_and_tcp_hosts_mix_only_where_tls_is_optional() {
    assert!(refusal("host=/run/postgresql,db.example.com sslmode=require").contains("Unix-socket"));
    let options = parse("host=/run/postgresql,db.example.com");
    assert_eq!(options.config.get_ssl_mode(), WireSslMode::Prefer);
}

#[test]
fn with_only_hostaddr_the_address_is_the_name_checked() {
    let options = parse("hostaddr=127.0.0.1 sslmode=require");
    assert_eq!(options.config.get_hosts(), [Host::Tcp("127.0.0.1".into())]);
}

#[test]
fn parameters_tokio_postgres_does_not_know_are_still_refused() {
    let message = refusal("host=h sslmode=require sslcrl=/etc/crl.pem");
    assert!(message.contains("unknown option `sslcrl`"), "{message}");
}

#[test]
fn the_last_sslmode_given_counts() {
    let options = parse("postgres://h/db?sslmode=disable&sslmode=require");
    assert_eq!(options.sslmode(), SslMode::Require);
}

#[test]
fn certificate_files_are_read_at_parse_time_and_named_when_wrong() {
    let pems = Pems::new();
    let missing = refusal("host=h sslmode=verify-full sslrootcert=/nonexistent/ca.pem");
    assert!(
        missing.contains("sslrootcert=/nonexistent/ca.pem"),
        "{missing}"
    );
    let empty = pems.path("empty.pem");
    let message = refusal(&format!("host=h sslmode=verify-full sslrootcert={empty}"));
    assert!(message.contains("no PEM certificate"), "{message}");
}

#[test]
fn a_client_certificate_needs_its_key() {
    let pems = Pems::new();
    let (cert, key) = (pems.path("client.pem"), pems.path("client.key"));
    let message = refusal(&format!("host=h sslmode=require sslcert={cert}"));
    assert!(message.contains("give both"), "{message}");
    let options = parse(&format!(
        "host=h sslmode=require sslcert={cert} sslkey={key}"
    ));
    assert_eq!(options.sslmode(), SslMode::Require);
    let message = refusal(&format!(
        "host=h sslmode=require sslcert={cert} sslkey={cert}"
    ));
    assert!(message.contains(&format!("sslkey={cert}")), "{message}");
}

#[test]
fn system_roots_load_here() {
    // The CI image and the Dockerfile's runtime image both carry
    // ca-certificates; a machine without it gets NoSystemRoots instead.
    let options = parse("host=db.example.com sslmode=verify-full");
    assert_eq!(options.verification(), Verification::IssuerAndHostName);
}

/// A self-signed X.509 version 1 certificate, as Citus's automatic TLS
/// makes them (made with `openssl x509 -req -signkey`, which writes
/// version 1; the key was not kept).
const X509_V1: &str = "\
-----BEGIN CERTIFICATE-----\n\
MIICwzCCAasCFHdE4W5+iEvsbmtxYR0OTdxcirK/MA0GCSqGSIb3DQEBCwUAMB0x\n\
GzAZBgNVBAMMEm9udGFiLXRlc3QteDUwOS12MTAgFw0yNjEyMDMxNzE1NTdaGA8y\n\
MTI2MTEwOTE3MTU1N1owHTEbMBkGA1UEAwwSb250YWItdGVzdC14NTA5LXYxMIIB\n\
IjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA4lnTx0UhGXs2xBMQ3e2VCfwp\n\
i8lUTG7cf4rDHM729gi1BCbVMaFl154kpSxXof14Yf+FJdtZNrYpF5oRfUIeCNu7\n\
ABYHGJ5HwWFM6pM9ZAFVYPlTumnoeARoTHDSgciD37jj3i8OitNuwZxBySzZj7zT\n\
f2DYJvliW2RTMVQJJdkkbIguamf8OS9HPDkP3/37UgTKYRbHrdCQCMiP0JasNRnh\n\
zBaRPGTGQpG/yHbF555IdLbuC6OwvEQtbY/oEC9vty9x7AeN/+w1YiU1ecGJ3Kcc\n\
WXUhIxytKhlHpSkz49LZY1HvXSAv0Dgx0ah1I0A12eeE6Hcm+Iyp/lZAlqXbLwID\n\
AQABMA0GCSqGSIb3DQEBCwUAA4IBAQACST4idNYeB7ybn+AuH9LEXMmk2xghv34u\n\
YLb41/9xWtaViNqCSYlgEF5WqAoS+bo8HcY3mVUcGjZB+i7gQTZnhQzLqC0JMTcT\n\
b3bm1NmoFVIsWb8h9eEGmgvGZdtpekQexEJ8loSPGhU0x19+xbZ14/niBr+sLTDM\n\
hRGIuqjdMRxY231LM2Wwf02RBENrx3AXEDNswo2N97v6G5T4lPy/1q7NBIC0B2ac\n\
ImXOZ5lBSeRyPTNclLQ7LHEvo5AzH5EMu95y9ZXg0nzjIHwhE8ZwgqgQ9PSR0XKu\n\
oKjQys6y6g2qNwrht2G677GyWDPnWlsQk/eQ2kPjJADrn9t+dq4g\n\
-----END CERTIFICATE-----\n\
";

#[test]
fn an_x509_v1_certificate_is_told_from_a_v3_one() {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    let v1 = CertificateDer::from_pem_slice(X509_V1.as_bytes()).expect("the v1 PEM parses");
    assert!(verify::is_x509_v1(v1.as_ref()));
    let key = rcgen::KeyPair::generate().expect("key");
    let v3 = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .expect("params")
        .self_signed(&key)
        .expect("v3 certificate");
    assert!(!verify::is_x509_v1(v3.der().as_ref()));
    assert!(!verify::is_x509_v1(&[]));
    assert!(!verify::is_x509_v1(&[0x30]));
    assert!(!verify::is_x509_v1(b"not a certificate"));
}
