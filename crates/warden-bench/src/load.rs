//! Load generation and measurement: a fixed amount of work spread over concurrent workers
//! (throughput), and sequential requests timed one by one (latency percentiles).
//!
//! Work items are numbered; workers take the next number from a shared counter, so a slow
//! worker never holds back the others and every item runs exactly once. Everything that
//! depends on an item (names, which group a user joins) is a pure function of its number, so
//! a run is reproducible and workers share no data.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::task::JoinSet;

/// SplitMix64: a cheap, well-mixed, deterministic hash of an item number.
pub fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A deterministic stream of numbers below a bound, for choosing "random" targets.
pub struct Picker(u64);

impl Picker {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn below(&mut self, bound: usize) -> usize {
        self.0 += 1;
        (mix(self.0) % bound.max(1) as u64) as usize
    }
}

/// How much work finished in how long.
#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    pub done: usize,
    pub elapsed: Duration,
}

impl Throughput {
    pub fn per_sec(&self) -> f64 {
        self.done as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

/// Runs items `0..count` of `op` over one task per worker. With a `budget`, workers stop
/// taking new items once it is spent, so `done` may be less than `count`; the items done are
/// then exactly `0..done`. The first failure stops the run.
pub async fn drive<W, F, Fut>(workers: Vec<W>, count: usize, budget: Option<Duration>, op: F) -> anyhow::Result<Throughput>
where
    W: Clone + Send + 'static,
    F: Fn(W, usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for worker in workers {
        let (next, op) = (next.clone(), op.clone());
        tasks.spawn(async move {
            let mut done = 0usize;
            loop {
                if budget.is_some_and(|b| start.elapsed() >= b) {
                    break;
                }
                let item = next.fetch_add(1, Ordering::Relaxed);
                if item >= count {
                    break;
                }
                op(worker.clone(), item).await.with_context(|| format!("item {item}"))?;
                done += 1;
            }
            anyhow::Ok(done)
        });
    }
    let mut done = 0;
    while let Some(joined) = tasks.join_next().await {
        done += joined.context("a worker panicked")??;
    }
    Ok(Throughput { done, elapsed: start.elapsed() })
}

/// Prints a progress line every `every` items (for runs long enough to wonder about).
pub struct Progress {
    label: &'static str,
    every: usize,
    start: Instant,
}

impl Progress {
    pub fn new(label: &'static str, every: usize) -> Self {
        Self { label, every: every.max(1), start: Instant::now() }
    }

    pub fn tick(&self, item: usize) {
        if item > 0 && item % self.every == 0 {
            let secs = self.start.elapsed().as_secs_f64();
            eprintln!("  {}: {item} in {secs:.0} s ({:.0}/s)", self.label, item as f64 / secs.max(f64::EPSILON));
        }
    }
}

/// Latencies of sequential requests, sorted.
#[derive(Debug, Clone)]
pub struct Latencies(Vec<Duration>);

impl Latencies {
    pub fn from_unsorted(mut times: Vec<Duration>) -> Self {
        times.sort_unstable();
        Self(times)
    }

    /// The nearest-rank percentile `q` (0 < q ≤ 1).
    pub fn percentile(&self, q: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        let rank = (q * self.0.len() as f64).ceil() as usize;
        self.0[rank.clamp(1, self.0.len()) - 1]
    }

    pub fn max(&self) -> Duration {
        self.0.last().copied().unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

/// Runs `op(0..samples)` one after the other and times each call, after a short unrecorded
/// warm-up (connections open, caches and the server's code paths warm).
pub async fn sample<F, Fut>(samples: usize, mut op: F) -> anyhow::Result<Latencies>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    for i in 0..(samples / 10).clamp(1, 100) {
        op(i).await?;
    }
    let mut times = Vec::with_capacity(samples);
    for i in 0..samples {
        let start = Instant::now();
        op(i).await.with_context(|| format!("sample {i}"))?;
        times.push(start.elapsed());
    }
    times.sort_unstable();
    Ok(Latencies(times))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let l = Latencies((1..=100).map(Duration::from_micros).collect());
        assert_eq!(l.percentile(0.5), Duration::from_micros(50));
        assert_eq!(l.percentile(0.99), Duration::from_micros(99));
        assert_eq!(l.percentile(1.0), Duration::from_micros(100));
        assert_eq!(l.max(), Duration::from_micros(100));
        assert_eq!(Latencies(Vec::new()).percentile(0.5), Duration::ZERO);
    }

    #[tokio::test]
    async fn every_item_runs_once_over_workers() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = seen.clone();
        let t = drive(vec![(); 3], 50, None, move |(), i| {
            let s = s.clone();
            async move {
                s.lock().unwrap().push(i);
                Ok(())
            }
        })
        .await
        .unwrap();
        assert_eq!(t.done, 50);
        let mut seen = seen.lock().unwrap().clone();
        seen.sort_unstable();
        assert_eq!(seen, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn picker_is_deterministic_and_bounded() {
        let (mut a, mut b) = (Picker::new(7), Picker::new(7));
        for _ in 0..1000 {
            let x = a.below(13);
            assert!(x < 13);
            assert_eq!(x, b.below(13));
        }
    }
}
