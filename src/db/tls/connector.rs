//! The rustls client of one connection string: its trusted roots and
//! client certificate, read from their files once, at parse time.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::verify::{PgTls, Policy, ServerCheck};
use super::{SslMode, UrlError, Verification};

/// The connector carrying out `policy`: its trusted roots and client
/// certificate read now.
pub(super) fn connector(
    mut policy: Policy,
    rootcert: Option<&str>,
    client_files: Option<(&str, &str)>,
) -> Result<PgTls, UrlError> {
    if policy.sslmode == SslMode::Disable {
        // Never used: tokio-postgres does not ask for TLS.
        let tls = client_config(None, false, None)?;
        return Ok(PgTls {
            connector: MakeRustlsConnect::new(tls),
            policy: Arc::new(policy),
        });
    }
    let roots = match (policy.verification, rootcert) {
        (Verification::Nothing, _) => None,
        (_, None | Some("system")) => {
            policy.roots = Some("the system's trusted roots".to_owned());
            Some(system_roots()?)
        }
        (_, Some(path)) => {
            policy.roots = Some(format!("sslrootcert={path}"));
            Some(roots_from_file(path)?)
        }
    };
    let client_auth = client_files
        .map(|(certificate, key)| client_certificate(certificate, key))
        .transpose()?;
    let tls = client_config(
        roots.map(Arc::new),
        policy.verification == Verification::IssuerAndHostName,
        client_auth,
    )?;
    Ok(PgTls {
        connector: MakeRustlsConnect::new(tls),
        policy: Arc::new(policy),
    })
}

fn roots_from_file(path: &str) -> Result<RootCertStore, UrlError> {
    let refused = |reason: String| UrlError::RootCert {
        path: path.to_owned(),
        reason,
    };
    let certificates = CertificateDer::pem_file_iter(path)
        .and_then(|found| found.collect::<Result<Vec<_>, _>>())
        .map_err(|error| refused(error.to_string()))?;
    if certificates.is_empty() {
        return Err(refused("no PEM certificate in it".to_owned()));
    }
    let mut roots = RootCertStore::empty();
    for certificate in certificates {
        roots
            .add(certificate)
            .map_err(|error| refused(format!("not a usable CA certificate: {error}")))?;
    }
    Ok(roots)
}

fn system_roots() -> Result<RootCertStore, UrlError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(found.certs);
    if roots.is_empty() {
        let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
        return Err(UrlError::NoSystemRoots(if errors.is_empty() {
            String::new()
        } else {
            format!(" ({})", errors.join("; "))
        }));
    }
    Ok(roots)
}

type ClientAuth = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

/// The client certificate chain and its key (mutual TLS).
fn client_certificate(certificate: &str, key: &str) -> Result<ClientAuth, UrlError> {
    let chain = CertificateDer::pem_file_iter(certificate)
        .and_then(|found| found.collect::<Result<Vec<_>, _>>())
        .map_err(|error| UrlError::ClientCert(format!("sslcert={certificate}: {error}")))?;
    if chain.is_empty() {
        return Err(UrlError::ClientCert(format!(
            "sslcert={certificate}: no PEM certificate in it"
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|error| {
        UrlError::ClientCert(format!(
            "sslkey={key}: {error} (an unencrypted PKCS#8, PKCS#1 or SEC1 PEM key is needed; sslpassword is not supported)"
        ))
    })?;
    Ok((chain, key))
}

/// A rustls client on the `ring` provider (aws-lc-rs would need cmake to
/// build), named explicitly so no process-wide default is needed.
fn client_config(
    roots: Option<Arc<RootCertStore>>,
    check_host_name: bool,
    client_auth: Option<ClientAuth>,
) -> Result<ClientConfig, UrlError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let check = ServerCheck {
        roots,
        check_host_name,
        algorithms: provider.signature_verification_algorithms,
    };
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(UrlError::Rustls)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(check));
    let mut config = match client_auth {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|error| UrlError::ClientCert(error.to_string()))?,
        None => builder.with_no_client_auth(),
    };
    // PostgreSQL 17 requires this ALPN name for sslnegotiation=direct and
    // checks it when sent; older servers ignore it (libpq 17 always sends it).
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(config)
}
