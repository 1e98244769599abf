//! What a run found: printed as a small table for people, written as JSON for tools.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use serde::Serialize;

use crate::load::{Latencies, Throughput};
use crate::server::Backend;

#[derive(Debug, Serialize)]
pub struct Report {
    pub scenario: &'static str,
    pub backend: Backend,
    pub cores: usize,
    pub clients: usize,
    /// Accounts in the directory while the latencies were measured (break-glass included).
    pub directory_size: usize,
    pub rates: Vec<Rate>,
    pub latencies: Vec<Latency>,
    pub ratios: Vec<Ratio>,
}

/// Work done per second in one phase.
#[derive(Debug, Serialize)]
pub struct Rate {
    pub name: &'static str,
    pub done: usize,
    pub secs: f64,
    pub per_sec: f64,
    /// What TARGETS.md asks, when it asks something of this figure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<&'static str>,
}

impl Rate {
    pub fn new(name: &'static str, t: Throughput, target: Option<&'static str>) -> Self {
        Self { name, done: t.done, secs: t.elapsed.as_secs_f64(), per_sec: t.per_sec(), target }
    }
}

/// Percentiles of one kind of sequential request, in microseconds.
#[derive(Debug, Serialize)]
pub struct Latency {
    pub name: &'static str,
    pub samples: usize,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<&'static str>,
}

impl Latency {
    pub fn new(name: &'static str, l: &Latencies, target: Option<&'static str>) -> Self {
        let us = |d: std::time::Duration| d.as_micros() as u64;
        Self { name, samples: l.len(), p50_us: us(l.percentile(0.5)), p99_us: us(l.percentile(0.99)), max_us: us(l.max()), target }
    }
}

#[derive(Debug, Serialize)]
pub struct Ratio {
    pub name: &'static str,
    pub value: f64,
}

/// Cores this machine offers (every report says, since the figures depend on it).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

impl Report {
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let backend = match self.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        };
        let _ = writeln!(
            out,
            "warden-bench {}: backend {backend}, {} cores, {} clients, {} accounts during the latency section",
            self.scenario, self.cores, self.clients, self.directory_size
        );
        let _ = writeln!(out);
        let _ = writeln!(out, "{:<44} {:>9} {:>9} {:>10}   target", "rate", "done", "secs", "per sec");
        for r in &self.rates {
            let _ = writeln!(out, "{:<44} {:>9} {:>9.2} {:>10.0}   {}", r.name, r.done, r.secs, r.per_sec, r.target.unwrap_or(""));
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "{:<44} {:>9} {:>9} {:>10}   target", "latency (sequential, µs)", "p50", "p99", "max");
        for l in &self.latencies {
            let _ = writeln!(out, "{:<44} {:>9} {:>9} {:>10}   {}", l.name, l.p50_us, l.p99_us, l.max_us, l.target.unwrap_or(""));
        }
        let _ = writeln!(out);
        for r in &self.ratios {
            let _ = writeln!(out, "{:<44} {:>9.2}", r.name, r.value);
        }
        out
    }

    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        let json = serde_json::to_string_pretty(self)?;
        std::fs::write(path, json + "\n").with_context(|| format!("cannot write {}", path.display()))
    }
}
