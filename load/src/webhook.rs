//! `--webhook`: what delivering events costs a run and how late they
//! arrive. Before the load starts, each business of the run gets one
//! endpoint subscribed to `purchase.created`, pointing at a receiver in this
//! process on 127.0.0.1 (the server must allow private addresses). The
//! receiver answers `204` at once and records, per event, how long after
//! the event's `created_at` it arrived. After the load, it waits until every
//! accepted purchase's event has come (or a deadline passes), so the lag
//! includes draining the backlog the run built up.
//!
//! `created_at` is the time of the purchase's transaction, a little before
//! its commit, so the lag measured is an upper bound of commit → 2xx.

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, anyhow};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::api::{Api, Call, Tenant, expect};

/// What the receiver has seen.
struct Seen {
    ids: HashSet<String>,
    duplicates: u64,
    /// Bodies that were not an event with an id and a `created_at`.
    malformed: u64,
    /// Microseconds from the event's `created_at` to its arrival.
    lag_us: Histogram<u64>,
    last_arrival: Option<Instant>,
}

/// A local webhook receiver; it stops with the process.
pub struct Receiver {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
}

impl Receiver {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot listen on 127.0.0.1 for webhooks")?;
        let addr = listener.local_addr()?;
        let lag_us = Histogram::new_with_bounds(1, 3_600_000_000, 3)
            .map_err(|error| anyhow!("lag histogram: {error}"))?;
        let seen = Arc::new(Mutex::new(Seen {
            ids: HashSet::new(),
            duplicates: 0,
            malformed: 0,
            lag_us,
            last_arrival: None,
        }));
        let shared = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let seen = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| receive(seen.clone(), request));
                    // A connection that breaks only loses its own request,
                    // which the server retries.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { addr, seen })
    }

    /// Subscribes `tenant` to `purchase.created` at this receiver.
    pub async fn subscribe(&self, api: &Api, tenant: &Tenant) -> anyhow::Result<()> {
        let call = Call::post(
            "/v1/webhook-endpoints",
            &tenant.key,
            &json!({
                "url": format!("http://{}/hook", self.addr),
                "types": ["purchase.created"],
                "description": "ontab-load receiver",
            }),
        );
        let reply = api.send_all(vec![call]).await?.remove(0);
        expect(
            &reply,
            201,
            "create webhook endpoint (is --webhook-allow-private on?)",
        )?;
        Ok(())
    }

    /// Waits until `expected` distinct events have arrived, or `give_up`
    /// passes; with `uncertain` purchases (a timeout: applied or not), also
    /// until nothing has arrived for a second. Returns the report's facts
    /// and a violation when events are missing.
    pub async fn drain(
        &self,
        expected: u64,
        uncertain: u64,
        give_up: Duration,
    ) -> (Value, Option<String>) {
        let started = Instant::now();
        loop {
            let (got, quiet) = {
                let seen = lock(&self.seen);
                let quiet = seen
                    .last_arrival
                    .is_none_or(|last| last.elapsed() >= Duration::from_secs(1));
                (seen.ids.len() as u64, quiet)
            };
            let complete = got >= expected && (uncertain == 0 || quiet);
            if complete || started.elapsed() >= give_up {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let drain_s = started.elapsed().as_secs_f64();
        let seen = lock(&self.seen);
        let got = seen.ids.len() as u64;
        let ms = |q: f64| (seen.lag_us.value_at_quantile(q) as f64 / 100.0).round() / 10.0;
        let facts = json!({
            "expected": expected,
            "received": got,
            "duplicates": seen.duplicates,
            "malformed": seen.malformed,
            "drain_s": (drain_s * 100.0).round() / 100.0,
            "lag_ms": {
                "p50": ms(0.50),
                "p90": ms(0.90),
                "p99": ms(0.99),
                "max": (seen.lag_us.max() as f64 / 100.0).round() / 10.0,
            },
        });
        let violation = (got < expected).then(|| {
            format!(
                "webhook: {got} of {expected} purchase events arrived within {:.0} s of the run's end",
                give_up.as_secs_f64()
            )
        });
        (facts, violation)
    }
}

fn lock(seen: &Mutex<Seen>) -> std::sync::MutexGuard<'_, Seen> {
    // A panic while holding it cannot leave the counts half-written in a
    // way that matters to a benchmark report.
    seen.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What the receiver reads of an event.
#[derive(serde::Deserialize)]
struct Head {
    id: String,
    created_at: String,
}

async fn receive(
    seen: Arc<Mutex<Seen>>,
    request: Request<Incoming>,
) -> Result<Response<Empty<Bytes>>, Infallible> {
    let body = request
        .into_body()
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .unwrap_or_default();
    let arrived = SystemTime::now();
    // Only the two fields the report needs: the receiver shares the
    // machine with the server it measures, so it does not build the
    // whole body as a tree.
    let event: Option<(String, SystemTime)> =
        serde_json::from_slice::<Head>(&body).ok().and_then(|head| {
            let created = chrono::DateTime::parse_from_rfc3339(&head.created_at).ok()?;
            Some((head.id, SystemTime::from(created)))
        });
    {
        let mut seen = lock(&seen);
        seen.last_arrival = Some(Instant::now());
        match event {
            Some((id, created)) => {
                if seen.ids.insert(id) {
                    let lag = arrived.duration_since(created).unwrap_or_default();
                    let micros = u64::try_from(lag.as_micros()).unwrap_or(u64::MAX).max(1);
                    seen.lag_us.saturating_record(micros);
                } else {
                    seen.duplicates += 1;
                }
            }
            None => seen.malformed += 1,
        }
    }
    let mut response = Response::new(Empty::new());
    *response.status_mut() = StatusCode::NO_CONTENT;
    Ok(response)
}
