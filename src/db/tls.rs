//! TLS to PostgreSQL: `sslmode`, `sslrootcert`, `sslcert` and `sslkey` in
//! DATABASE_URL (URL or `key=value` form), with libpq's meanings, on rustls.
//!
//! | sslmode | encrypted | server certificate checked |
//! |---|---|---|
//! | `disable` | never | — |
//! | `allow`, `prefer` (default) | when the server offers TLS | no |
//! | `require` | always | no; with `sslrootcert`, its CA (as `verify-ca`) |
//! | `verify-ca` | always | issued by a CA of `sslrootcert` |
//! | `verify-full` | always | issued by a trusted CA, and for the host connected to |
//!
//! `verify-full` trusts the CAs of `sslrootcert=<PEM file>`, else the
//! system's (`sslrootcert=system`, as in libpq 16, which then also makes
//! `verify-full` the default). The system store is read with
//! rustls-native-certs rather than compiled in from webpki-roots: it is what
//! libpq's `system` means, it follows the host's CA updates and any private
//! CA an operator adds there, and it honours SSL_CERT_FILE. Unix-socket
//! hosts never use TLS (PostgreSQL offers none there).
//!
//! Where ontab differs from libpq, it is stricter or says so up front:
//! `verify-ca` without `sslrootcert` is refused (any certificate a public CA
//! ever issued would pass; libpq requires a root file there too), and
//! `~/.postgresql/` and the PGSSL* variables are not read. `allow` tries TLS
//! first, and `prefer` does not fall back to a clear connection when a
//! handshake fails. Encrypted client keys (`sslpassword`) and CRLs are not
//! supported: tokio-postgres refuses those parameters as unknown.
//!
//! tokio-postgres' own parser knows only disable/prefer/require and none of
//! the certificate parameters, so these are taken out of the string first
//! (`params.rs`) and the rest is handed to it unchanged.

mod connector;
mod params;
mod verify;

use std::fmt;

use tokio_postgres::config::{Host, SslMode as WireSslMode};
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{Client, Config, Connection, Socket};

pub use verify::{Handshake, HandshakeError, PgTls};

use super::DbError;
use connector::connector;
use verify::Policy;

/// The parameters taken out of the connection string here.
const TLS_PARAMETERS: [&str; 4] = ["sslmode", "sslrootcert", "sslcert", "sslkey"];

/// How to reach the database: tokio-postgres' settings and the TLS
/// connector that carries out their sslmode.
#[derive(Clone)]
pub struct ConnectOptions {
    pub config: Config,
    pub tls: PgTls,
}

/// The stream of a connection made with [`ConnectOptions`].
pub type TlsStream = <PgTls as MakeTlsConnect<Socket>>::Stream;

impl ConnectOptions {
    /// The sslmode in force (`disable` when every host is a Unix socket).
    pub fn sslmode(&self) -> SslMode {
        self.tls.policy.sslmode
    }

    /// What is checked of the server's certificate.
    pub fn verification(&self) -> Verification {
        self.tls.policy.verification
    }

    /// One connection; spawn the `Connection` to drive it.
    pub async fn connect(
        &self,
    ) -> Result<(Client, Connection<Socket, TlsStream>), tokio_postgres::Error> {
        self.config.connect(self.tls.clone()).await
    }
}

/// libpq's sslmode values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Allow,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(text: &str) -> Result<Self, UrlError> {
        Ok(match text {
            "disable" => Self::Disable,
            "allow" => Self::Allow,
            "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            _ => return Err(UrlError::UnknownSslMode(text.to_owned())),
        })
    }

    /// What tokio-postgres is told: whether to ask for TLS and insist on it.
    fn on_the_wire(self) -> WireSslMode {
        match self {
            Self::Disable => WireSslMode::Disable,
            Self::Allow | Self::Prefer => WireSslMode::Prefer,
            Self::Require | Self::VerifyCa | Self::VerifyFull => WireSslMode::Require,
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Disable => "disable",
            Self::Allow => "allow",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        })
    }
}

/// What is checked of the server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// Nothing: encrypted (when TLS is used), but to whoever answered.
    Nothing,
    /// That a trusted CA issued it, whatever host it names.
    Issuer,
    /// That a trusted CA issued it for the host connected to.
    IssuerAndHostName,
}

/// A connection string that cannot be used, and why.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    #[error("{}", super::describe_pg(.0))]
    Invalid(tokio_postgres::Error),
    #[error("sslmode={0:?} is not one of disable, allow, prefer, require, verify-ca, verify-full")]
    UnknownSslMode(String),
    #[error("sslmode={0} may not be used with sslrootcert=system (use verify-full), as in libpq")]
    WeakWithSystemRoots(SslMode),
    #[error(
        "sslmode=verify-ca needs sslrootcert=<PEM file of the server's CA>: against the system's public CAs it would accept any certificate they ever issued (use verify-full there)"
    )]
    VerifyCaWithoutRootCert,
    #[error("sslmode={0} cannot be used with both Unix-socket and TCP hosts (a socket has no TLS)")]
    MixedHosts(SslMode),
    #[error("sslrootcert={path}: {reason}")]
    RootCert { path: String, reason: String },
    #[error(
        "sslrootcert=system: no trusted root certificates found on this system{0}; install the ca-certificates package or name the CA's PEM file with sslrootcert"
    )]
    NoSystemRoots(String),
    #[error("client certificate: {0}")]
    ClientCert(String),
    #[error("TLS setup: {0}")]
    Rustls(rustls::Error),
}

impl From<UrlError> for DbError {
    fn from(error: UrlError) -> Self {
        DbError::Config(error.to_string())
    }
}

/// Reads DATABASE_URL (a `postgres://` URL or libpq `key=value` pairs),
/// TLS settings included. Certificate files are read here, so a wrong path
/// fails at start rather than at the first connection.
pub fn parse_database_url(url: &str) -> Result<ConnectOptions, UrlError> {
    let split = params::split(url, |key| TLS_PARAMETERS.contains(&key));
    // As in libpq, the last occurrence of a parameter counts.
    let given = |name: &str| {
        split
            .taken
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .filter(|value| !value.is_empty())
    };
    let mut config: Config = split.rest.parse().map_err(UrlError::Invalid)?;
    let (sslmode, verification) = decide(given("sslmode"), given("sslrootcert"))?;
    let (sslmode, verification) = for_hosts(&mut config, sslmode, verification)?;
    config.ssl_mode(sslmode.on_the_wire());
    let client_files = match (given("sslcert"), given("sslkey")) {
        (None, None) => None,
        (Some(certificate), Some(key)) => Some((certificate, key)),
        _ => {
            return Err(UrlError::ClientCert(
                "sslcert and sslkey go together: give both or neither".to_owned(),
            ));
        }
    };
    let policy = Policy {
        sslmode,
        verification,
        roots: None,
    };
    let tls = connector(policy, given("sslrootcert"), client_files)?;
    Ok(ConnectOptions { config, tls })
}

/// The sslmode as the hosts allow it: Unix sockets have no TLS, so with
/// only sockets TLS is off, and a mix cannot insist on it.
fn for_hosts(
    config: &mut Config,
    sslmode: SslMode,
    verification: Verification,
) -> Result<(SslMode, Verification), UrlError> {
    let hosts = config.get_hosts();
    let sockets = hosts
        .iter()
        .filter(|host| matches!(host, Host::Unix(_)))
        .count();
    if sockets > 0 && sockets == hosts.len() && config.get_hostaddrs().is_empty() {
        return Ok((SslMode::Disable, Verification::Nothing));
    }
    if sockets > 0 && sslmode.on_the_wire() == WireSslMode::Require {
        return Err(UrlError::MixedHosts(sslmode));
    }
    // tokio-postgres names the TLS peer after `host`; with only `hostaddr`
    // given, that address is the name to check (libpq would refuse
    // verify-full there; the address is what was asked for).
    if hosts.is_empty() {
        for address in config.get_hostaddrs().to_vec() {
            config.host(address.to_string());
        }
    }
    Ok((sslmode, verification))
}

/// The sslmode and what it verifies, from the `sslmode` and `sslrootcert`
/// given (as libpq decides it; see the module's table).
fn decide(
    sslmode: Option<&str>,
    rootcert: Option<&str>,
) -> Result<(SslMode, Verification), UrlError> {
    let system_roots = rootcert == Some("system");
    let sslmode = match sslmode {
        Some(text) => SslMode::parse(text)?,
        None if system_roots => SslMode::VerifyFull,
        None => SslMode::Prefer,
    };
    if system_roots && sslmode != SslMode::VerifyFull {
        return Err(UrlError::WeakWithSystemRoots(sslmode));
    }
    let verification = match sslmode {
        SslMode::Disable | SslMode::Allow | SslMode::Prefer => Verification::Nothing,
        SslMode::Require if rootcert.is_some() => Verification::Issuer,
        SslMode::Require => Verification::Nothing,
        SslMode::VerifyCa if rootcert.is_none() => return Err(UrlError::VerifyCaWithoutRootCert),
        SslMode::VerifyCa => Verification::Issuer,
        SslMode::VerifyFull => Verification::IssuerAndHostName,
    };
    Ok((sslmode, verification))
}

#[cfg(test)]
mod tests;
