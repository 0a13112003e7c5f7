//! Webhooks without I/O: endpoint URLs and type filters, `whsec_` secrets,
//! Standard Webhooks signatures, the retry schedule, and which addresses a
//! delivery may never reach (the SSRF guard's classifier).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{KeyInit, Mac};
use sha2::Sha256;

use super::FieldError;
use super::events::EventType;

/// Longest endpoint URL accepted.
pub const MAX_URL_LENGTH: usize = 2048;

/// An endpoint URL: absolute http(s), with a host, no credentials, at most
/// [`MAX_URL_LENGTH`] bytes. Where its host points is checked apart
/// (`app::webhooks::guard`), since that needs DNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointUrl(url::Url);

impl EndpointUrl {
    pub fn parse(field: &str, raw: &str) -> Result<Self, FieldError> {
        let invalid = |message: &str| FieldError::new(field, message);
        if raw.len() > MAX_URL_LENGTH {
            return Err(invalid("must be at most 2048 bytes"));
        }
        let url =
            url::Url::parse(raw).map_err(|_| invalid("must be an absolute http or https URL"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("must be an http or https URL"));
        }
        if url.host().is_none() {
            return Err(invalid("must name a host"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("must not carry credentials"));
        }
        if url.fragment().is_some() {
            return Err(invalid("must not have a fragment"));
        }
        Ok(Self(url))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn into_url(self) -> url::Url {
        self.0
    }

    /// The host when it is an IP literal, which needs no resolving.
    pub fn ip_literal(&self) -> Option<IpAddr> {
        match self.0.host()? {
            url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
            url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
            url::Host::Domain(_) => None,
        }
    }

    /// The host name to resolve and its port (explicit or the scheme's).
    pub fn host_and_port(&self) -> (String, u16) {
        let host = self.0.host_str().unwrap_or_default();
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        (host, self.0.port_or_known_default().unwrap_or(443))
    }
}

/// A webhook endpoint as the business sees it (never its secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    pub id: uuid::Uuid,
    pub url: String,
    /// `None`: every type.
    pub types: Option<Vec<String>>,
    pub description: String,
    pub disabled: bool,
    /// `requested` or `gone` (the endpoint answered 410).
    pub disabled_reason: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// One attempt to deliver an event to an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    pub id: uuid::Uuid,
    pub event_id: uuid::Uuid,
    /// None for an event delivered at its first attempt out of an
    /// endpoint's window, which needs no delivery row (migrations/0031).
    pub delivery_id: Option<uuid::Uuid>,
    /// 1 for the first attempt of the delivery.
    pub attempt: i32,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i32,
    /// `delivered`, `retrying`, `gave_up` or `disabled`.
    pub outcome: String,
    pub next_attempt_at: Option<chrono::DateTime<chrono::Utc>>,
    pub attempted_at: chrono::DateTime<chrono::Utc>,
}

/// An endpoint's type filter: `None` takes every type.
pub fn parse_types(
    field: &str,
    types: Option<Vec<String>>,
) -> Result<Option<Vec<String>>, FieldError> {
    let Some(mut types) = types else {
        return Ok(None);
    };
    if types.is_empty() {
        return Err(FieldError::new(
            field,
            "must name at least one type (leave it out for every type)",
        ));
    }
    if let Some(unknown) = types.iter().find(|name| EventType::parse(name).is_none()) {
        let shown: String = unknown.chars().take(60).collect();
        return Err(FieldError::new(
            field,
            format!("unknown event type `{shown}`"),
        ));
    }
    types.sort();
    types.dedup();
    Ok(Some(types))
}

/// Longest description accepted, in characters.
pub const MAX_DESCRIPTION: usize = 500;

pub fn parse_description(field: &str, text: String) -> Result<String, FieldError> {
    if text.chars().count() > MAX_DESCRIPTION {
        return Err(FieldError::new(field, "must be at most 500 characters"));
    }
    // PostgreSQL text cannot hold NUL: refused here as a field error rather
    // than failing the INSERT. Line breaks are fine in a note to oneself.
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(FieldError::new(
            field,
            "must not contain control characters other than line breaks and tabs",
        ));
    }
    Ok(text)
}

/// Random bytes in a new secret (the spec asks for 24 to 64).
pub const SECRET_BYTES: usize = 32;

/// A signing key. Shown to the business once, as `whsec_` + base64; its
/// `Debug` never prints it, so no log line can carry it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
    /// A fresh secret of [`SECRET_BYTES`] random bytes.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = vec![0u8; SECRET_BYTES];
        getrandom::fill(&mut bytes)?;
        Ok(Self(bytes))
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// Reads a `whsec_…` secret (as the spec's test vectors give them).
    pub fn from_whsec(text: &str) -> Option<Self> {
        let encoded = text.strip_prefix("whsec_")?;
        STANDARD.decode(encoded).ok().map(Self)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// As shown to the business.
    pub fn to_whsec(&self) -> String {
        format!("whsec_{}", STANDARD.encode(&self.0))
    }

    /// `v1,` + base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        // HMAC takes a key of any length: this cannot fail.
        let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// The `webhook-signature` header: one signature per valid secret,
/// space-separated.
pub fn signature_header(
    secrets: &[WebhookSecret],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|secret| secret.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// How long a rotated secret keeps signing.
pub const ROTATION_OVERLAP: Duration = Duration::from_secs(24 * 3600);

/// The contract's schedule: after a failed first attempt, retries after
/// about 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h; then it gives up.
pub const RETRY_SCHEDULE: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];

/// Longest a receiver may take to answer for a delivery to count.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(15);

/// Whether a delivery may ever reach `ip`: a public unicast address. Refused:
/// unspecified, loopback, private (RFC 1918), carrier-grade NAT, link-local
/// (the cloud metadata services at 169.254.169.254 and fd00:ec2::254
/// included), unique-local, documentation, benchmarking, multicast,
/// broadcast, reserved, and v6 forms of any of those v4 addresses (mapped,
/// NAT64, 6to4).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => is_public_v6(ip),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    let refused = ip.is_unspecified()
        || a == 0 // "this network"
        || ip.is_loopback()
        || ip.is_private()
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT, 100.64/10
        || ip.is_link_local() // 169.254/16: metadata services
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // documentation
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || (a == 198 && (18..20).contains(&b)) // benchmarking, 198.18/15
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
        || ip.is_multicast()
        || a >= 240; // reserved, broadcast
    !refused
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_v4(ip) {
        return is_public_v4(v4);
    }
    let segments = ip.segments();
    let refused = ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (segments[0] & 0xfe00) == 0xfc00 // unique-local fc00::/7 (fd00:ec2::254)
        || (segments[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (segments[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation
        || (segments[0] == 0x0100 && segments[1..4] == [0, 0, 0]) // discard 100::/64
        || (segments[0] == 0x2001 && segments[1] == 0) // Teredo: tunnels anywhere
        || (segments[0] == 0x2001 && segments[1] < 0x0200) // other IETF assignments
        || segments[0] == 0; // ::/16 (IPv4-compatible and reserved)
    !refused
}

/// The v4 address inside a v6 one that carries it: mapped (::ffff:0:0/96),
/// NAT64 (64:ff9b::/96) or 6to4 (2002::/16).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if s[0..5] == [0, 0, 0, 0, 0] && s[5] == 0xffff {
        return Some(tail());
    }
    if s[0] == 0x0064 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return Some(tail());
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(text: &str) -> bool {
        is_public(
            text.parse()
                .unwrap_or_else(|_| panic!("{text} is an IP address")),
        )
    }

    #[test]
    fn signs_the_standard_webhooks_known_answer() {
        // The spec's test vector (standard-webhooks, libraries' tests).
        let secret = WebhookSecret::from_whsec("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap_or_else(|| panic!("the vector's secret decodes"));
        let signature = secret.sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn every_valid_secret_signs_space_separated() {
        let old = WebhookSecret::from_bytes(vec![1; 24]);
        let new = WebhookSecret::from_bytes(vec![2; 24]);
        let header = signature_header(&[new.clone(), old.clone()], "evt", 5, b"{}");
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(
            parts,
            [new.sign("evt", 5, b"{}"), old.sign("evt", 5, b"{}")]
        );
    }

    #[test]
    fn secrets_round_trip_and_never_show_in_debug() {
        let secret = WebhookSecret::generate().unwrap_or_else(|_| panic!("random source"));
        let shown = secret.to_whsec();
        assert!(shown.starts_with("whsec_"));
        assert_eq!(WebhookSecret::from_whsec(&shown), Some(secret.clone()));
        assert_eq!(secret.bytes().len(), 32);
        assert!(!format!("{secret:?}").contains(&shown[6..]));
    }

    #[test]
    fn descriptions_refuse_nul_and_control_characters_but_keep_line_breaks() {
        for refused in ["nul\0byte", "bell\u{7}", "esc\u{1b}[31m"] {
            assert!(parse_description("description", refused.into()).is_err());
        }
        let multi = "first line\r\nsecond\tline";
        assert_eq!(
            parse_description("description", multi.into())
                .ok()
                .as_deref(),
            Some(multi)
        );
        assert!(parse_description("description", "d".repeat(501)).is_err());
    }

    #[test]
    fn the_retry_schedule_is_the_contracts() {
        let minutes: Vec<u64> = RETRY_SCHEDULE.iter().map(|d| d.as_secs()).collect();
        assert_eq!(minutes, [5, 300, 1800, 7200, 18000, 36000, 36000]);
        assert_eq!(DELIVERY_TIMEOUT, Duration::from_secs(15));
        assert_eq!(ROTATION_OVERLAP, Duration::from_secs(86400));
    }

    #[test]
    fn loopback_private_link_local_and_metadata_addresses_are_refused() {
        for refused in [
            "127.0.0.1",
            "127.1.2.3",
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "169.254.169.254",
            "169.254.0.1",
            "192.0.0.192",
            "192.0.2.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            "fc00::1",
            "fd00:ec2::254",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "2001::1",
            "100::1",
            "::127.0.0.1",
        ] {
            assert!(!public(refused), "{refused} must be refused");
        }
    }

    #[test]
    fn public_unicast_addresses_are_allowed() {
        for allowed in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.255.255",
            "172.32.0.1",
            "169.253.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "2002:0808:0808::1",
        ] {
            assert!(public(allowed), "{allowed} must be allowed");
        }
    }

    #[test]
    fn urls_must_be_absolute_http_without_credentials() {
        assert!(EndpointUrl::parse("url", "https://example.com/hooks").is_ok());
        assert!(EndpointUrl::parse("url", "http://127.0.0.1:9000/").is_ok());
        for bad in [
            "",
            "example.com",
            "ftp://example.com/",
            "https://user:pw@example.com/",
            "https://example.com/#frag",
            "file:///etc/passwd",
        ] {
            assert!(
                EndpointUrl::parse("url", bad).is_err(),
                "{bad:?} must be refused"
            );
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LENGTH));
        assert!(EndpointUrl::parse("url", &long).is_err());
    }

    #[test]
    fn type_filters_name_known_types_only() {
        assert_eq!(parse_types("types", None), Ok(None));
        assert!(parse_types("types", Some(vec![])).is_err());
        assert!(parse_types("types", Some(vec!["nope".into()])).is_err());
        assert_eq!(
            parse_types(
                "types",
                Some(vec![
                    "product.updated".into(),
                    "customer.created".into(),
                    "product.updated".into()
                ])
            ),
            Ok(Some(vec![
                "customer.created".into(),
                "product.updated".into()
            ]))
        );
    }
}
