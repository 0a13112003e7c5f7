//! `ontab health`: asks a running `ontab serve` for `GET /healthz` and
//! succeeds only on a 200, so a container's HEALTHCHECK needs neither a shell
//! nor curl in the image.
//!
//! One HTTP/1.1 request over a plain `TcpStream` is a few lines; an HTTP
//! client crate in the release binary for it would be all cost.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Arguments of `ontab health`.
#[derive(Debug, Clone, clap::Args)]
pub struct HealthArgs {
    /// The address `ontab serve` listens on; 0.0.0.0 and [::] are asked on
    /// loopback.
    #[arg(long, env = "ONTAB_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// How long the whole check may take.
    #[arg(long, default_value = "2s", value_parser = crate::config::parse_duration)]
    pub timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error("no answer from http://{address}/healthz: {source}")]
    Unreachable {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("http://{address}/healthz answered `{status_line}`")]
    Unhealthy {
        address: SocketAddr,
        status_line: String,
    },
}

/// Succeeds when `GET /healthz` answers 200 within the timeout.
pub fn check(args: &HealthArgs) -> Result<(), HealthError> {
    let address = loopback_for(args.listen);
    let status_line = status_line(address, args.timeout)
        .map_err(|source| HealthError::Unreachable { address, source })?;
    if status_line.split_whitespace().nth(1) == Some("200") {
        Ok(())
    } else {
        Err(HealthError::Unhealthy {
            address,
            status_line,
        })
    }
}

/// A server bound to every address is asked on loopback: connecting to
/// 0.0.0.0 works on Linux only by accident.
fn loopback_for(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

fn status_line(address: SocketAddr, timeout: Duration) -> std::io::Result<String> {
    let deadline = Instant::now() + timeout;
    let remaining = || {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|left| !left.is_zero())
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::TimedOut, "timed out"))
    };
    let mut stream = TcpStream::connect_timeout(&address, timeout)?;
    stream.set_write_timeout(Some(remaining()?))?;
    // One write: `write!` on an unbuffered stream sends each piece on its
    // own, and a peer that answers after the first piece would see the
    // rest as a broken pipe.
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    // The status line is all we need; a short cap keeps a confused peer
    // from feeding us forever.
    let mut head = Vec::new();
    let mut chunk = [0u8; 256];
    while !head.windows(2).any(|pair| pair == b"\r\n") && head.len() < 1024 {
        stream.set_read_timeout(Some(remaining()?))?;
        let read = stream.read(&mut chunk)?;
        if read == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..read]);
    }
    let text = String::from_utf8_lossy(&head);
    Ok(text.lines().next().unwrap_or_default().trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_listen_addresses_are_checked_on_loopback() {
        let check = |text: &str| loopback_for(text.parse().expect("address")).to_string();
        assert_eq!(check("0.0.0.0:8080"), "127.0.0.1:8080");
        assert_eq!(check("[::]:8080"), "[::1]:8080");
        assert_eq!(check("127.0.0.2:9000"), "127.0.0.2:9000");
    }
}
