//! Serving the router so that no client can pin the server: a connection
//! must send its request head in time and may sit idle only so long between
//! requests, heads are capped in size, and the number of open connections
//! stays below the file-descriptor limit by shedding the connection idle
//! the longest (or, when every one is busy, refusing the newcomer at once).
//!
//! `axum::serve` has none of these knobs, so this drives hyper's HTTP/1.1
//! connections itself (the "serve with hyper" pattern). Shutdown keeps
//! `axum::serve`'s meaning: stop accepting, finish in-flight requests, close
//! idle connections at once; the caller bounds the wait.
//!
//! Metrics: `ontab_http_connections_open` (gauge),
//! `ontab_http_connections_shed_total{reason}` with reason `header_timeout`,
//! `idle_timeout`, `head_too_large`, `shed_idle_at_limit`,
//! `refused_at_limit` or `shed_idle_fd_exhausted`, and
//! `ontab_http_accept_errors_total`.

mod accept;
mod connection;
mod fd_limit;
mod registry;

use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

pub use fd_limit::{max_connections_for, raise_fd_limit};

use accept::AcceptErrors;
use connection::Timeouts;
use registry::Registry;

/// What any one client may cost the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// A new connection must deliver a complete request head within this
    /// long; a kept-alive one within this long of the first byte of its
    /// next head. Otherwise it is closed.
    pub header_read_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// Largest request head (request line and headers); a larger one is
    /// answered 431 and the connection closed.
    pub max_header_bytes: usize,
    /// Most connections open at once; `None` for no cap. At the cap a new
    /// connection sheds the one idle the longest, or is refused with 503
    /// when none is idle.
    pub max_connections: Option<usize>,
}

impl Default for ConnectionLimits {
    /// 10 s, 60 s, 64 KiB, and a cap derived from the current soft fd limit
    /// as if the database pool had its default 16 connections.
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_header_bytes: 64 * 1024,
            max_connections: fd_limit::soft_limit().map(|soft| max_connections_for(soft, 16)),
        }
    }
}

impl ConnectionLimits {
    fn check(&self) -> io::Result<()> {
        let invalid =
            |what: &str| Err(io::Error::new(io::ErrorKind::InvalidInput, what.to_owned()));
        if self.header_read_timeout.is_zero() {
            return invalid("the header read timeout must be longer than zero");
        }
        if self.idle_timeout.is_zero() {
            return invalid("the idle timeout must be longer than zero");
        }
        if self.max_header_bytes == 0 {
            return invalid("the request head size cap must be above zero");
        }
        if self.max_connections == Some(0) {
            return invalid("the connection cap must be above zero");
        }
        Ok(())
    }

    fn http1(&self) -> http1::Builder {
        let mut builder = http1::Builder::new();
        builder
            // Our own watchdog times heads: hyper's timer would start
            // the header timeout as soon as a keep-alive connection goes
            // idle, leaving no separate idle timeout.
            .header_read_timeout(None)
            .max_header_size(self.max_header_bytes)
            // hyper's floor for its buffer; the head cap above is what a
            // head may use of it.
            .max_buf_size(self.max_header_bytes.max(8 * 1024));
        builder
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` resolves,
/// then stops accepting, closes idle connections at once and returns when
/// the requests in flight have been answered. Errors only on invalid limits.
pub async fn serve(
    listener: TcpListener,
    router: super::Api,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    limits.check()?;
    let http = Arc::new(limits.http1());
    let timeouts = Timeouts {
        header: limits.header_read_timeout,
        idle: limits.idle_timeout,
    };
    let registry = Arc::new(Registry::new(limits.max_connections));
    let (stop, stopping) = watch::channel(false);
    // Every connection task holds a sender: `recv` answers `None` once all
    // of them have ended.
    let (alive, mut all_ended) = mpsc::channel::<()>(1);
    let mut accept_errors = AcceptErrors::default();
    let mut shutdown = pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => {
                accept_errors.recovered();
                stream
            }
            Err(error) => {
                if let Some(pause) = accept_errors.pause_after(&error, &registry) {
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(pause) => {}
                    }
                }
                continue;
            }
        };
        match registry.admit() {
            Some(registration) => {
                tokio::spawn(connection::serve(
                    stream,
                    router.clone(),
                    http.clone(),
                    timeouts,
                    registration,
                    stopping.clone(),
                    alive.clone(),
                ));
            }
            None => refuse(stream),
        }
    }
    drop(listener);
    let _ = stop.send(true);
    drop(alive);
    let _ = all_ended.recv().await;
    Ok(())
}

/// The whole answer to a connection refused at the cap: the contract's
/// `unavailable` problem.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/problem+json\r\n\
retry-after: 1\r\n\
connection: close\r\n\
content-length: 174\r\n\
\r\n\
{\"type\":\"urn:ontab:problem:unavailable\",\"title\":\"Service unavailable\",\"status\":503,\
\"detail\":\"the server is at its connection limit; it is safe to retry\",\"code\":\"unavailable\"}";

/// Answers 503 if the socket takes it without waiting, and closes: a
/// refusal must cost no task and no time.
fn refuse(stream: TcpStream) {
    // Closing with the request unread would reset the connection, and the
    // client could lose the answer: read what has already arrived.
    let mut request = [0u8; 4096];
    let _ = stream.try_read(&mut request);
    let _ = stream.try_write(REFUSAL);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_a_complete_problem_response() {
        let text = std::str::from_utf8(REFUSAL).expect("ASCII");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length: "))
            .and_then(|length| length.parse().ok())
            .expect("content-length");
        assert_eq!(length, body.len());
        let problem: serde_json::Value = serde_json::from_str(body).expect("JSON body");
        assert_eq!(problem["status"], 503);
        assert_eq!(problem["code"], "unavailable");
    }

    #[test]
    fn limits_that_would_close_everything_are_refused() {
        let fine = ConnectionLimits::default();
        assert!(fine.check().is_ok());
        for broken in [
            ConnectionLimits {
                header_read_timeout: Duration::ZERO,
                ..fine
            },
            ConnectionLimits {
                idle_timeout: Duration::ZERO,
                ..fine
            },
            ConnectionLimits {
                max_header_bytes: 0,
                ..fine
            },
            ConnectionLimits {
                max_connections: Some(0),
                ..fine
            },
        ] {
            assert!(broken.check().is_err(), "{broken:?}");
        }
    }
}
