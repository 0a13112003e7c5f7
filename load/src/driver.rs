//! Runs N closed-loop clients, each on its own keep-alive connection, for a
//! fixed time, and collects latency, outcomes and the book.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use serde_json::Value;
use tokio::sync::Barrier;

use crate::api::Call;
use crate::book::{Book, Intent};
use crate::cpu;
use crate::hooks::WindowHooks;
use crate::http::{Conn, Endpoint, Reply, TransportError};

/// One request a client is about to send.
pub struct Step {
    /// Latency is reported per operation (e.g. `purchase`, `payment`).
    pub op: &'static str,
    pub call: Call,
    /// What the request moves, for the book; `None` for reads.
    pub intent: Option<Intent>,
}

/// A client's behaviour: which request comes next, and what it learns from
/// each answer (e.g. order ids to return later).
pub trait Workload: Send + 'static {
    fn next_step(&mut self) -> Step;

    fn observe(
        &mut self,
        _step: &Step,
        _outcome: &Result<Reply, TransportError>,
        _accepted: Option<&Value>,
    ) {
    }
}

/// How long to run and how long to wait for one answer.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub warmup: Duration,
    pub duration: Duration,
    pub request_timeout: Duration,
}

/// Latency and counts of one operation within the measured window.
pub struct OpStats {
    /// Microseconds, 3 significant digits, up to an hour.
    pub latency_us: Histogram<u64>,
    pub responses: u64,
    pub accepted: u64,
    pub transport_errors: u64,
}

impl OpStats {
    fn new() -> anyhow::Result<Self> {
        Ok(OpStats {
            latency_us: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .context("histogram bounds")?,
            responses: 0,
            accepted: 0,
            transport_errors: 0,
        })
    }

    fn merge(&mut self, other: &OpStats) -> anyhow::Result<()> {
        self.latency_us
            .add(&other.latency_us)
            .context("merging histograms")?;
        self.responses += other.responses;
        self.accepted += other.accepted;
        self.transport_errors += other.transport_errors;
        Ok(())
    }
}

/// Everything a run produced.
pub struct RunResult {
    pub ops: BTreeMap<&'static str, OpStats>,
    /// Outcome label (`201`, `409 insufficient_stock`, ...) → count, over the
    /// whole run including warm-up (the book covers the same requests).
    pub outcomes: BTreeMap<String, u64>,
    pub book: Book,
    pub reconnects: u64,
    pub measured: Duration,
    /// CPU milliseconds per probe over the measured window (empty with no
    /// probes).
    pub cpu_ms: BTreeMap<String, f64>,
}

/// Drives one workload per client until the time is up.
pub async fn run(
    endpoint: Arc<Endpoint>,
    workloads: Vec<Box<dyn Workload>>,
    timing: Timing,
    probes: Option<(Vec<cpu::Probe>, u64)>,
    hooks: WindowHooks,
) -> anyhow::Result<RunResult> {
    let barrier = Arc::new(Barrier::new(workloads.len() + 1));
    let mut tasks = Vec::with_capacity(workloads.len());
    for workload in workloads {
        let conn = Conn::new(endpoint.clone(), timing.request_timeout);
        tasks.push(tokio::spawn(client(
            conn,
            workload,
            barrier.clone(),
            timing,
        )));
    }
    barrier.wait().await;
    let started = Instant::now();
    let sampler =
        probes.map(|(probes, ticks)| cpu::measure(probes, timing.warmup, timing.duration, ticks));
    let hooks = (!hooks.is_empty()).then(|| hooks.spawn(timing.warmup, timing.duration));
    let mut result = RunResult {
        ops: BTreeMap::new(),
        outcomes: BTreeMap::new(),
        book: Book::default(),
        reconnects: 0,
        measured: Duration::ZERO,
        cpu_ms: BTreeMap::new(),
    };
    for task in tasks {
        let client = task.await.context("a client task panicked")??;
        for (op, stats) in client.ops {
            match result.ops.get_mut(op) {
                Some(ours) => ours.merge(&stats)?,
                None => {
                    result.ops.insert(op, stats);
                }
            }
        }
        for (label, count) in client.outcomes {
            *result.outcomes.entry(label).or_default() += count;
        }
        result.book.merge(client.book);
        result.reconnects += client.reconnects;
    }
    // The window is what was asked for; stragglers finishing after it are
    // few (one per client) and counted in it.
    result.measured = timing
        .duration
        .min(started.elapsed().saturating_sub(timing.warmup))
        .max(Duration::from_millis(1));
    if let Some(hooks) = hooks {
        hooks
            .join()
            .map_err(|_| anyhow::anyhow!("the window hooks panicked"))??;
    }
    if let Some(sampler) = sampler {
        result.cpu_ms = sampler
            .join()
            .map_err(|_| anyhow::anyhow!("the CPU sampler panicked"))?;
    }
    Ok(result)
}

struct ClientResult {
    ops: BTreeMap<&'static str, OpStats>,
    outcomes: BTreeMap<String, u64>,
    book: Book,
    reconnects: u64,
}

async fn client(
    mut conn: Conn,
    mut workload: Box<dyn Workload>,
    barrier: Arc<Barrier>,
    timing: Timing,
) -> anyhow::Result<ClientResult> {
    // Connect before the clock starts so the first request is not charged
    // for the handshake; a failure here shows up as a transport error later.
    let _ = conn.open().await;
    barrier.wait().await;
    let measure_from = Instant::now() + timing.warmup;
    let end = measure_from + timing.duration;
    let mut result = ClientResult {
        ops: BTreeMap::new(),
        outcomes: BTreeMap::new(),
        book: Book::default(),
        reconnects: 0,
    };
    loop {
        let sent_at = Instant::now();
        if sent_at >= end {
            break;
        }
        let step = workload.next_step();
        let call = &step.call;
        let outcome = conn
            .send(
                call.method.clone(),
                &call.path,
                &call.token,
                call.body.clone(),
            )
            .await;
        let latency = sent_at.elapsed();
        let accepted = match &step.intent {
            Some(intent) => result.book.record(intent, &outcome),
            None => None,
        };
        *result.outcomes.entry(outcome_label(&outcome)).or_default() += 1;
        if sent_at >= measure_from {
            let stats = match result.ops.get_mut(step.op) {
                Some(stats) => stats,
                None => result.ops.entry(step.op).or_insert(OpStats::new()?),
            };
            match &outcome {
                Ok(reply) => {
                    stats.responses += 1;
                    if (200..300).contains(&reply.status) {
                        stats.accepted += 1;
                    }
                    stats
                        .latency_us
                        .saturating_record(latency.as_micros().try_into().unwrap_or(u64::MAX));
                }
                Err(_) => stats.transport_errors += 1,
            }
        }
        workload.observe(&step, &outcome, accepted.as_ref());
    }
    result.reconnects = conn.reconnects;
    Ok(result)
}

/// `201`, `409 insufficient_stock`, `500 internal`, `transport error: timeout`.
pub fn outcome_label(outcome: &Result<Reply, TransportError>) -> String {
    match outcome {
        Ok(reply) if reply.status < 400 => reply.status.to_string(),
        Ok(reply) => match reply.code() {
            Some(code) => format!("{} {code}", reply.status),
            None => format!("{} (no problem code)", reply.status),
        },
        Err(error) => error.label().to_owned(),
    }
}
