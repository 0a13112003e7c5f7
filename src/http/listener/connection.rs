//! One connection: hyper serves it while a watchdog closes it when its head
//! is late, when it idles too long, or when it is shed or the server stops.
//! A request in flight is never cut: such a connection is told to close
//! after its response instead.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tower::ServiceExt;

use super::registry::{ConnState, Reason, Registration};
use crate::http::Api;

/// How long a connection told to close may take to flush what it owes
/// before it is dropped.
const LINGER: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
pub(super) struct Timeouts {
    pub header: Duration,
    pub idle: Duration,
}

impl Timeouts {
    /// When an idle connection must be closed, and why; `None` while a
    /// request is in flight.
    fn deadline(&self, state: &ConnState) -> Option<(Instant, Reason)> {
        if state.busy() {
            return None;
        }
        if !state.kept_alive() {
            return Some((state.opened() + self.header, Reason::HeaderTimeout));
        }
        Some(match state.head_started() {
            Some(started) => (started + self.header, Reason::HeaderTimeout),
            None => (state.idle_since() + self.idle, Reason::IdleTimeout),
        })
    }

    /// The watchdog looks again at least this often, since a request that
    /// finishes or the first byte of a head moves the deadline without
    /// waking it; looking again is cheaper than waking it on every change.
    fn recheck(&self) -> Duration {
        self.header.min(self.idle)
    }
}

/// What the connection's task does next.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// Nothing to do before then (or before a wake-up).
    LookAgainAt(Instant),
    /// Let hyper close it: at once when idle (after flushing what it may
    /// still hold), after the response when busy.
    CloseGracefully,
    /// Close it now: nothing is owed, or it had its chance to close.
    Drop,
}

/// Decides when a connection is closed, from its state and the clock.
struct Watchdog {
    timeouts: Timeouts,
    stop_seen: bool,
    /// Set once the connection was told to close; then, while idle, when
    /// it may be dropped if it has not closed by itself.
    closing: Option<Option<Instant>>,
}

impl Watchdog {
    fn new(timeouts: Timeouts) -> Self {
        Self {
            timeouts,
            stop_seen: false,
            closing: None,
        }
    }

    fn step(&mut self, state: &ConnState, now: Instant) -> Step {
        if let Some(linger) = &mut self.closing {
            if state.busy() {
                // A request got in before the close: hyper closes after it.
                *linger = None;
                return Step::LookAgainAt(now + self.timeouts.recheck());
            }
            let until = *linger.get_or_insert(now + LINGER);
            return if now >= until {
                Step::Drop
            } else {
                Step::LookAgainAt(until)
            };
        }
        let deadline = self.timeouts.deadline(state);
        let expired = deadline.and_then(|(at, reason)| (now >= at).then_some(reason));
        let reason = state
            .close_requested()
            .or(self.stop_seen.then_some(Reason::Shutdown))
            .or(expired);
        let Some(reason) = reason else {
            let recheck = now + self.timeouts.recheck();
            return Step::LookAgainAt(deadline.map_or(recheck, |(at, _)| at.min(recheck)));
        };
        if Some(reason) == expired {
            reason.count();
        }
        if !state.busy() && state.head_started().is_some() {
            // Part of a head and nothing owed.
            return Step::Drop;
        }
        self.closing = Some(None);
        Step::CloseGracefully
    }
}

/// Serves one accepted connection to its end.
pub(super) async fn serve(
    stream: TcpStream,
    router: Api,
    http: Arc<http1::Builder>,
    timeouts: Timeouts,
    registration: Registration,
    mut stopping: watch::Receiver<bool>,
    _alive: mpsc::Sender<()>,
) {
    // Responses are written whole, so Nagle's delay would only add latency.
    let _ = stream.set_nodelay(true);
    let state = registration.state().clone();
    let io = TokioIo::new(Watched {
        stream,
        state: state.clone(),
    });
    let mut conn = pin!(http.serve_connection(
        io,
        Tracked {
            router,
            state: state.clone(),
        }
    ));
    let mut watchdog = Watchdog::new(timeouts);
    let mut look_again = pin!(tokio::time::sleep(timeouts.recheck()));
    loop {
        tokio::select! {
            biased;
            ended = conn.as_mut() => {
                if let Err(error) = ended {
                    if error.is_parse_too_large() {
                        Reason::HeadTooLarge.count();
                    }
                    tracing::debug!(%error, "connection ended");
                }
                return;
            }
            () = state.wake.notified() => {}
            // A dropped sender (the server future itself was dropped) also
            // means stop.
            _ = stopping.wait_for(|stop| *stop), if !watchdog.stop_seen => {
                watchdog.stop_seen = true;
            }
            () = &mut look_again => {}
        }
        let now = Instant::now();
        match watchdog.step(&state, now) {
            Step::LookAgainAt(at) => look_again.as_mut().reset(at),
            Step::CloseGracefully => {
                conn.as_mut().graceful_shutdown();
                // Polled first next round: closed at once if it can be.
                look_again.as_mut().reset(now);
            }
            Step::Drop => return,
        }
    }
}

/// The router as hyper's service, counting each request in flight on its
/// connection until the response body has been handed over.
struct Tracked {
    router: Api,
    state: Arc<ConnState>,
}

impl hyper::service::Service<Request<Incoming>> for Tracked {
    type Response = Response<Guarded>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let in_flight = InFlight::enter(self.state.clone());
        let response = self.router.clone().oneshot(request.map(Body::new));
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| Guarded {
                body,
                _in_flight: in_flight,
            }))
        })
    }
}

/// One request in flight, until dropped.
struct InFlight(Arc<ConnState>);

impl InFlight {
    fn enter(state: Arc<ConnState>) -> Self {
        state.request_started();
        Self(state)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// A response body that keeps its request in flight until hyper drops it.
struct Guarded {
    body: Body,
    _in_flight: InFlight,
}

impl http_body::Body for Guarded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The socket, noting when bytes arrive (the start of a head's clock).
struct Watched {
    stream: TcpStream,
    state: Arc<ConnState>,
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.state.bytes_received();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::listener::registry::Registry;

    const TIMEOUTS: Timeouts = Timeouts {
        header: Duration::from_secs(10),
        idle: Duration::from_secs(60),
    };
    const MS: Duration = Duration::from_millis(1);

    fn connection() -> Registration {
        Arc::new(Registry::new(None)).admit().expect("no cap")
    }

    #[test]
    fn a_new_connection_without_a_whole_head_is_closed_at_the_header_timeout() {
        let connection = connection();
        let state = connection.state();
        let mut watchdog = Watchdog::new(TIMEOUTS);
        let deadline = state.opened() + TIMEOUTS.header;
        assert_eq!(
            watchdog.step(state, deadline - MS),
            Step::LookAgainAt(deadline)
        );
        assert_eq!(watchdog.step(state, deadline), Step::CloseGracefully);
    }

    #[test]
    fn a_partial_head_is_dropped_at_once_when_its_time_is_up() {
        let connection = connection();
        let state = connection.state();
        state.bytes_received();
        let mut watchdog = Watchdog::new(TIMEOUTS);
        assert_eq!(
            watchdog.step(state, state.opened() + TIMEOUTS.header),
            Step::Drop
        );
    }

    #[test]
    fn between_requests_the_idle_timeout_applies_until_a_head_starts() {
        let connection = connection();
        let state = connection.state();
        state.request_started();
        state.request_finished();
        let mut watchdog = Watchdog::new(TIMEOUTS);
        let idle_since = state.idle_since();
        let past_header = idle_since + TIMEOUTS.header + MS;
        assert!(matches!(
            watchdog.step(state, past_header),
            Step::LookAgainAt(_)
        ));
        assert_eq!(
            watchdog.step(state, idle_since + TIMEOUTS.idle),
            Step::CloseGracefully
        );
    }

    #[test]
    fn a_request_in_flight_is_never_timed_out() {
        let connection = connection();
        let state = connection.state();
        state.request_started();
        let mut watchdog = Watchdog::new(TIMEOUTS);
        let much_later = state.opened() + TIMEOUTS.idle * 10;
        assert_eq!(
            watchdog.step(state, much_later),
            Step::LookAgainAt(much_later + TIMEOUTS.recheck())
        );
    }

    #[test]
    fn a_shed_busy_connection_finishes_its_request_then_lingers_briefly() {
        let connection = connection();
        let state = connection.state();
        state.request_started();
        state.request_close(Reason::ShedIdleAtLimit);
        let mut watchdog = Watchdog::new(TIMEOUTS);
        let now = state.opened();
        assert_eq!(watchdog.step(state, now), Step::CloseGracefully);
        assert!(matches!(watchdog.step(state, now), Step::LookAgainAt(_)));
        state.request_finished();
        assert_eq!(watchdog.step(state, now), Step::LookAgainAt(now + LINGER));
        assert_eq!(watchdog.step(state, now + LINGER), Step::Drop);
    }

    #[test]
    fn on_shutdown_an_idle_connection_is_closed_at_once() {
        let connection = connection();
        let state = connection.state();
        let mut watchdog = Watchdog::new(TIMEOUTS);
        watchdog.stop_seen = true;
        assert_eq!(watchdog.step(state, state.opened()), Step::CloseGracefully);
    }
}
