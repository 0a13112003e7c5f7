//! The SSRF guard: a webhook may only reach public addresses (unless the
//! operator allows private ones). Checked when an endpoint is created or
//! its URL changed, and again at every delivery: the HTTP client resolves
//! names only through [`GuardedResolver`], which refuses a name with any
//! non-public address and hands the client exactly the addresses it
//! checked, so a DNS answer that changes between check and connect
//! (rebinding) cannot slip a private address through. IP literals never
//! reach a resolver and are checked before sending.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::domain::FieldError;
use crate::domain::webhook::{EndpointUrl, is_public};

/// How long resolving a name may take at creation.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why an address may not be reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Blocked {
    #[error("{0} is not a public address")]
    Address(IpAddr),
    #[error("the host does not resolve")]
    Unresolved,
}

/// The addresses of `host`, each checked: all must be public.
pub async fn resolve_checked(host: &str, port: u16) -> Result<Vec<SocketAddr>, Blocked> {
    // `localhost` and its subdomains resolve to loopback by definition
    // (RFC 6761); refuse them without asking.
    let lower = host.trim_end_matches('.').to_ascii_lowercase();
    if lower == "localhost" || lower.ends_with(".localhost") {
        return Err(Blocked::Address(IpAddr::from([127, 0, 0, 1])));
    }
    let resolved = tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| Blocked::Unresolved)?
        .map_err(|_| Blocked::Unresolved)?;
    let addresses: Vec<SocketAddr> = resolved.collect();
    if addresses.is_empty() {
        return Err(Blocked::Unresolved);
    }
    if let Some(private) = addresses.iter().find(|address| !is_public(address.ip())) {
        return Err(Blocked::Address(private.ip()));
    }
    Ok(addresses)
}

/// Checks an endpoint URL where it would be delivered to now. An IP literal
/// is judged without any I/O; a name is resolved.
pub async fn check_url(
    field: &str,
    url: &EndpointUrl,
    allow_private: bool,
) -> Result<(), FieldError> {
    if allow_private {
        return Ok(());
    }
    let refused = |why: Blocked| {
        FieldError::new(
            field,
            format!("refused: {why}; webhooks may only reach public addresses"),
        )
    };
    if let Some(ip) = url.ip_literal() {
        return if is_public(ip) {
            Ok(())
        } else {
            Err(refused(Blocked::Address(ip)))
        };
    }
    let (host, port) = url.host_and_port();
    resolve_checked(&host, port)
        .await
        .map(|_| ())
        .map_err(refused)
}

/// The delivery client's resolver: refuses names with a non-public address.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses = resolve_checked(&host, 0).await.map_err(
                |blocked| -> Box<dyn std::error::Error + Send + Sync> { Box::new(blocked) },
            )?;
            let addresses: Addrs = Box::new(addresses.into_iter());
            Ok(addresses)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> EndpointUrl {
        EndpointUrl::parse("url", text).unwrap_or_else(|_| panic!("{text} parses"))
    }

    // None of these sends a packet: literals are judged as they are, and
    // `localhost` is refused by name.
    #[tokio::test]
    async fn private_literals_and_localhost_are_refused_without_connecting() {
        for refused in [
            "http://127.0.0.1:8080/",
            "http://[::1]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[fd00:ec2::254]/",
            "http://10.0.0.7/",
            "http://0.0.0.0/",
            "http://[::ffff:192.168.0.1]/",
            "http://localhost:9000/",
            "http://api.localhost/",
            "http://2130706433/",
            "http://0x7f.1/",
        ] {
            assert!(
                check_url("url", &url(refused), false).await.is_err(),
                "{refused}"
            );
        }
    }

    #[tokio::test]
    async fn public_literals_pass_and_allow_private_lifts_the_guard() {
        assert!(
            check_url("url", &url("https://93.184.216.34/hook"), false)
                .await
                .is_ok()
        );
        assert!(
            check_url("url", &url("http://127.0.0.1:1/"), true)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn the_resolver_refuses_loopback_names() {
        // `localhost` is answered without a lookup.
        let refused = resolve_checked("localhost", 80).await;
        assert_eq!(refused, Err(Blocked::Address(IpAddr::from([127, 0, 0, 1]))));
    }
}
