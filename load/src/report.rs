//! The run's summary, as text for people or JSON for scripts.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::audit::Findings;
use crate::driver::{OpStats, RunResult};
use crate::scenarios::history;

#[derive(Debug, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

#[derive(Debug, Serialize)]
pub struct OpSummary {
    pub responses: u64,
    /// 2xx answers.
    pub accepted: u64,
    pub transport_errors: u64,
    /// Responses per second over the measured window.
    pub per_s: f64,
    pub accepted_per_s: f64,
    /// Milliseconds, from sending the request to reading the whole response.
    pub latency_ms: Latency,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub scenario: String,
    pub clients: usize,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub per_s: f64,
    pub accepted_per_s: f64,
    pub ops: BTreeMap<String, OpSummary>,
    pub outcomes: BTreeMap<String, u64>,
    pub reconnects: u64,
    /// CPU milliseconds over the measured window per measured process
    /// (`--cpu-pid`, `--cpu-tree`) and of this tool (`client`); for each
    /// `--cpu-pid` also `<name>.kernel`, the part of it spent in the kernel.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub cpu_ms: BTreeMap<String, f64>,
    pub facts: Map<String, Value>,
    pub violations: Vec<String>,
    pub warnings: Vec<String>,
    pub ok: bool,
}

fn ms(micros: u64) -> f64 {
    (micros as f64 / 10.0).round() / 100.0
}

fn op_summary(stats: &OpStats, seconds: f64) -> OpSummary {
    let h = &stats.latency_us;
    OpSummary {
        responses: stats.responses,
        accepted: stats.accepted,
        transport_errors: stats.transport_errors,
        per_s: (stats.responses as f64 / seconds * 10.0).round() / 10.0,
        accepted_per_s: (stats.accepted as f64 / seconds * 10.0).round() / 10.0,
        latency_ms: Latency {
            p50: ms(h.value_at_quantile(0.50)),
            p95: ms(h.value_at_quantile(0.95)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
            mean: (h.mean() / 10.0).round() / 100.0,
        },
    }
}

pub fn summarize(
    scenario: String,
    clients: usize,
    warmup_s: f64,
    run: &RunResult,
    mut facts: Map<String, Value>,
    findings: Findings,
) -> Summary {
    let seconds = run.measured.as_secs_f64();
    let ops: BTreeMap<String, OpSummary> = run
        .ops
        .iter()
        .map(|(op, stats)| (op.to_string(), op_summary(stats, seconds)))
        .collect();
    if let (Some(empty), Some(long)) = (ops.get(history::EMPTY_OP), ops.get(history::LONG_OP))
        && empty.latency_ms.p50 > 0.0
    {
        let ratio = (long.latency_ms.p50 / empty.latency_ms.p50 * 1000.0).round() / 1000.0;
        facts.insert("p50_ratio_long_vs_empty".into(), Value::from(ratio));
    }
    facts.extend(findings.facts);
    let responses: u64 = ops.values().map(|o| o.responses).sum();
    let accepted: u64 = ops.values().map(|o| o.accepted).sum();
    Summary {
        scenario,
        clients,
        duration_s: (seconds * 100.0).round() / 100.0,
        warmup_s,
        per_s: (responses as f64 / seconds * 10.0).round() / 10.0,
        accepted_per_s: (accepted as f64 / seconds * 10.0).round() / 10.0,
        ops,
        outcomes: run.outcomes.clone(),
        reconnects: run.reconnects,
        cpu_ms: run.cpu_ms.clone(),
        facts,
        ok: findings.violations.is_empty(),
        violations: findings.violations,
        warnings: findings.warnings,
    }
}

/// The human-readable form.
pub fn text(s: &Summary) -> String {
    let mut out = format!(
        "scenario {}: {} clients, {:.1} s measured (+{:.1} s warm-up)\n  throughput {:.1} responses/s, {:.1} accepted/s\n",
        s.scenario, s.clients, s.duration_s, s.warmup_s, s.per_s, s.accepted_per_s
    );
    out += &format!(
        "  {:<24} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
        "latency (ms)", "count", "per s", "p50", "p95", "p99", "max", "mean"
    );
    for (op, o) in &s.ops {
        let l = &o.latency_ms;
        out += &format!(
            "  {:<24} {:>9} {:>9.1} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}\n",
            op, o.responses, o.per_s, l.p50, l.p95, l.p99, l.max, l.mean
        );
    }
    out += "  outcomes (whole run):\n";
    for (label, count) in &s.outcomes {
        out += &format!("    {label:<36} {count:>9}\n");
    }
    for (name, ms) in &s.cpu_ms {
        out += &format!("  cpu {name}: {ms:.0} ms over the measured window\n");
    }
    if s.reconnects > 0 {
        out += &format!("  reconnects: {}\n", s.reconnects);
    }
    for (key, value) in &s.facts {
        out += &format!("  {key}: {value}\n");
    }
    for warning in &s.warnings {
        out += &format!("  warning: {warning}\n");
    }
    if s.ok {
        out += "  audit: all invariants hold\n";
    } else {
        out += &format!("  AUDIT FAILED: {} violation(s)\n", s.violations.len());
        for violation in &s.violations {
            out += &format!("    VIOLATION: {violation}\n");
        }
    }
    out
}
