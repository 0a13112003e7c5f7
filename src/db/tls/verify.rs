//! How the server's certificate is checked, and what a refusal says.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_cert_signed_by_trust_anchor, verify_server_name};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{SslMode, Verification};

/// The server certificate check of one sslmode. Without `roots` any
/// certificate is taken (prefer, require): the session is encrypted, but to
/// whoever answered. The handshake signatures are checked in every case, as
/// OpenSSL does for libpq, except with an X.509 version 1 certificate when
/// nothing is verified: rustls reads a public key only from version 3
/// certificates, and Citus's automatic TLS (`citus-auto-ssl`) gives every
/// node a version 1 certificate, which libpq takes under prefer and
/// require. Checking the signature there proves only that the server holds
/// the key of a certificate nobody vouched for, which anyone answering
/// could also say of one of its own, so skipping it loses nothing.
#[derive(Debug)]
pub(super) struct ServerCheck {
    pub roots: Option<Arc<RootCertStore>>,
    pub check_host_name: bool,
    pub algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCheck {
    fn unverified_x509_v1(&self, certificate: &CertificateDer<'_>) -> bool {
        self.roots.is_none() && is_x509_v1(certificate.as_ref())
    }
}

/// Whether `der` is an X.509 version 1 certificate: its TBSCertificate
/// starts with the serial number (an INTEGER) rather than the explicit
/// `[0]` version field of versions 2 and 3.
pub(super) fn is_x509_v1(der: &[u8]) -> bool {
    /// The contents of the DER SEQUENCE that `der` starts with.
    fn sequence_contents(der: &[u8]) -> Option<&[u8]> {
        let (&tag, rest) = der.split_first()?;
        if tag != 0x30 {
            return None;
        }
        let (&length, rest) = rest.split_first()?;
        // Short form, or long form: 0x80 | the number of length bytes.
        let length_bytes = if length < 0x80 {
            0
        } else {
            usize::from(length & 0x7f)
        };
        rest.get(length_bytes..)
    }
    sequence_contents(der)
        .and_then(sequence_contents)
        .and_then(|tbs| tbs.first())
        .is_some_and(|&tag| tag == 0x02)
}

impl ServerCertVerifier for ServerCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(roots) = &self.roots else {
            return Ok(ServerCertVerified::assertion());
        };
        let certificate = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &certificate,
            roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        if self.check_host_name {
            verify_server_name(&certificate, server_name)?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if self.unverified_x509_v1(certificate) {
            return Ok(HandshakeSignatureValid::assertion());
        }
        verify_tls12_signature(message, certificate, signature, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        certificate: &CertificateDer<'_>,
        signature: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if self.unverified_x509_v1(certificate) {
            return Ok(HandshakeSignatureValid::assertion());
        }
        verify_tls13_signature(message, certificate, signature, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// What a failed handshake is explained with: the sslmode in force and
/// where the trusted CAs came from.
#[derive(Debug)]
pub(super) struct Policy {
    pub sslmode: SslMode,
    pub verification: Verification,
    /// e.g. `sslrootcert=/etc/ontab/ca.pem`; None when nothing is verified.
    pub roots: Option<String>,
}

impl Policy {
    /// The sslmode in force, as a refusal names it.
    fn describe(&self) -> String {
        match (self.sslmode, self.verification) {
            (SslMode::Require, Verification::Issuer) => {
                "sslmode=require (CA checked, as sslrootcert is set)".to_owned()
            }
            (sslmode, _) => format!("sslmode={sslmode}"),
        }
    }
}

/// The TLS connector of [`super::ConnectOptions`]: tokio-postgres-rustls,
/// with handshake failures that say what failed and under which sslmode.
#[derive(Clone)]
pub struct PgTls {
    pub(super) connector: MakeRustlsConnect,
    pub(super) policy: Arc<Policy>,
}

impl<S> MakeTlsConnect<S> for PgTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = <MakeRustlsConnect as MakeTlsConnect<S>>::Stream;
    type TlsConnect = Handshake<<MakeRustlsConnect as MakeTlsConnect<S>>::TlsConnect>;
    type Error = Infallible;

    fn make_tls_connect(&mut self, host: &str) -> Result<Self::TlsConnect, Infallible> {
        let connect =
            <MakeRustlsConnect as MakeTlsConnect<S>>::make_tls_connect(&mut self.connector, host)?;
        Ok(Handshake {
            connect,
            policy: Arc::clone(&self.policy),
            host: host.to_owned(),
        })
    }
}

/// One handshake to `host` (see [`PgTls`]).
pub struct Handshake<T> {
    connect: T,
    policy: Arc<Policy>,
    host: String,
}

impl<S, T> TlsConnect<S> for Handshake<T>
where
    T: TlsConnect<S, Error = std::io::Error>,
    T::Future: Send + 'static,
{
    type Stream = T::Stream;
    type Error = HandshakeError;
    type Future = Pin<Box<dyn Future<Output = Result<T::Stream, HandshakeError>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        let Handshake {
            connect,
            policy,
            host,
        } = self;
        let handshake = connect.connect(stream);
        Box::pin(async move {
            handshake
                .await
                .map_err(|error| HandshakeError::new(&policy, &host, &error))
        })
    }
}

/// A TLS handshake with PostgreSQL that failed, in words: what failed (the
/// server's certificate, and why), with which host and sslmode.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HandshakeError(String);

impl HandshakeError {
    fn new(policy: &Policy, host: &str, error: &std::io::Error) -> Self {
        let sslmode = policy.describe();
        let cause = error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>());
        let Some(rustls::Error::InvalidCertificate(refusal)) = cause else {
            return Self(format!(
                "TLS handshake with {host} failed under {sslmode}: {error}"
            ));
        };
        let roots = policy.roots.as_deref().unwrap_or("the trusted roots");
        let why = match refusal {
            CertificateError::UnknownIssuer => {
                format!("unknown CA: it was not issued by a CA in {roots}")
            }
            CertificateError::NotValidForName => {
                format!("name mismatch: it does not name {host}")
            }
            CertificateError::NotValidForNameContext { presented, .. } => format!(
                "name mismatch: it names {}, not {host}",
                if presented.is_empty() {
                    "no host".to_owned()
                } else {
                    presented
                        .iter()
                        .map(|name| bare_name(name))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                format!("expired ({refusal})")
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                format!("not valid yet ({refusal})")
            }
            CertificateError::BadSignature => {
                "bad signature: it is not signed by the key of its issuer".to_owned()
            }
            other => other.to_string(),
        };
        Self(format!(
            "the certificate of {host} was refused under {sslmode}: {why}"
        ))
    }
}

/// `localhost` from webpki's `DnsName("localhost")`, `10.0.0.1` from
/// `IpAddress(10.0.0.1)`; any other form as it is.
fn bare_name(presented: &str) -> &str {
    let inner = presented
        .strip_prefix("DnsName(\"")
        .and_then(|rest| rest.strip_suffix("\")"))
        .or_else(|| {
            presented
                .strip_prefix("IpAddress(")
                .and_then(|rest| rest.strip_suffix(')'))
        });
    inner.unwrap_or(presented)
}

#[cfg(test)]
mod tests {
    use super::bare_name;

    #[test]
    fn presented_names_are_shown_bare() {
        assert_eq!(bare_name("DnsName(\"db.example.com\")"), "db.example.com");
        assert_eq!(bare_name("IpAddress(10.0.0.1)"), "10.0.0.1");
        assert_eq!(bare_name("DirectoryName"), "DirectoryName");
    }
}
