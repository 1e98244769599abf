//! Soft-lock against password guessing: after `max_failures` failures for one key (an account
//! name, a client address) within `window`, further attempts for that key are refused until
//! the window since the oldest counted failure has passed. A success clears the key.
//!
//! Keys are counted whether or not an account of that name exists, so the lock itself tells
//! an attacker nothing about which names are real. Pure: the caller passes the time.

use std::collections::{HashMap, VecDeque};

use time::{Duration, OffsetDateTime};

#[derive(Debug)]
pub struct Throttle {
    max_failures: usize,
    window: Duration,
    failures: HashMap<String, VecDeque<OffsetDateTime>>,
}

impl Throttle {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self { max_failures: max_failures.max(1) as usize, window, failures: HashMap::new() }
    }

    /// `Err(retry_after)` if `key` is locked at `now`.
    pub fn check(&mut self, key: &str, now: OffsetDateTime) -> Result<(), Duration> {
        let Some(times) = self.failures.get_mut(key) else { return Ok(()) };
        while times.front().is_some_and(|t| *t + self.window <= now) {
            times.pop_front();
        }
        if times.is_empty() {
            self.failures.remove(key);
            return Ok(());
        }
        if times.len() >= self.max_failures {
            let oldest = times.front().copied().unwrap_or(now);
            return Err(oldest + self.window - now);
        }
        Ok(())
    }

    pub fn record_failure(&mut self, key: &str, now: OffsetDateTime) {
        self.failures.entry(key.to_owned()).or_default().push_back(now);
        if self.failures.len() > 100_000 {
            // Bound memory under a spray of random names: forget keys whose window has passed.
            let window = self.window;
            self.failures.retain(|_, times| times.back().is_some_and(|t| *t + window > now));
        }
    }

    pub fn record_success(&mut self, key: &str) {
        self.failures.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn locks_after_max_failures_and_unlocks_after_window() {
        let t0 = datetime!(2026-01-01 0:00 UTC);
        let mut throttle = Throttle::new(3, Duration::minutes(15));
        for i in 0..3 {
            assert!(throttle.check("alice", t0 + Duration::seconds(i)).is_ok());
            throttle.record_failure("alice", t0 + Duration::seconds(i));
        }
        let retry = throttle.check("alice", t0 + Duration::minutes(1)).unwrap_err();
        assert_eq!(retry, Duration::minutes(14));
        assert!(throttle.check("bob", t0 + Duration::minutes(1)).is_ok(), "other keys unaffected");
        assert!(throttle.check("alice", t0 + Duration::minutes(15)).is_ok(), "oldest failure aged out");
    }

    #[test]
    fn success_clears() {
        let t0 = datetime!(2026-01-01 0:00 UTC);
        let mut throttle = Throttle::new(2, Duration::minutes(15));
        throttle.record_failure("alice", t0);
        throttle.record_success("alice");
        throttle.record_failure("alice", t0);
        assert!(throttle.check("alice", t0).is_ok());
    }
}
