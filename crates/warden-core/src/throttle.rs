//! Soft-lock against password guessing: after `max_failures` failures for one key (an account
//! name, a client address) within `window`, further attempts for that key are refused until
//! enough of those failures are older than the window. A success clears the account name's
//! key (never the client's: a known password must not buy a client more guesses at others).
//!
//! Keys are counted whether or not an account of that name exists, so the lock itself tells
//! an attacker nothing about which names are real. The failures are kept by the store, so
//! every node of a cluster counts the same ones and a restart forgets none; a key is stored
//! only as a digest ([`ThrottleKey`]), because what people type as a user name is sometimes
//! their password. Pure: the caller reads the failures and passes the time.

use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

/// What a throttle counts failures of, as stored: a SHA-256 digest of its kind and value.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ThrottleKey(pub [u8; 32]);

impl ThrottleKey {
    /// An account name, as typed (case and surrounding spaces do not make another key).
    pub fn name(name: &str) -> Self {
        Self::of("name", &name.trim().to_lowercase())
    }

    /// A client address.
    pub fn client(ip: std::net::IpAddr) -> Self {
        Self::of("client", &ip.to_canonical().to_string())
    }

    fn of(kind: &str, value: &str) -> Self {
        let mut digest = Sha256::new();
        digest.update(kind.as_bytes());
        digest.update([0]);
        digest.update(value.as_bytes());
        Self(digest.finalize().into())
    }
}

impl std::fmt::Debug for ThrottleKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ThrottleKey({}…)", hex::encode(&self.0[..4]))
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Throttle {
    max_failures: usize,
    window: Duration,
}

impl Throttle {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        Self { max_failures: max_failures.max(1) as usize, window }
    }

    /// Failures at or before this time no longer count at `now`.
    pub fn window_start(&self, now: OffsetDateTime) -> OffsetDateTime {
        now - self.window
    }

    /// The most failures a verdict needs to see (the latest ones).
    pub fn max_failures(&self) -> usize {
        self.max_failures
    }

    /// `Err(retry_after)` if a key whose latest failures since [`Self::window_start`] are
    /// `recent` (oldest first) is locked at `now`.
    pub fn verdict(&self, recent: &[OffsetDateTime], now: OffsetDateTime) -> Result<(), Duration> {
        let counted: Vec<OffsetDateTime> = recent.iter().copied().filter(|t| *t + self.window > now).collect();
        if counted.len() < self.max_failures {
            return Ok(());
        }
        // Unlocked when the failure that keeps the count at the maximum ages out.
        let decisive = counted[counted.len() - self.max_failures];
        Err(decisive + self.window - now)
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn locks_after_max_failures_and_unlocks_after_window() {
        let t0 = datetime!(2026-01-01 0:00 UTC);
        let throttle = Throttle::new(3, Duration::minutes(15));
        let failures: Vec<OffsetDateTime> = (0..3).map(|i| t0 + Duration::seconds(i)).collect();
        assert!(throttle.verdict(&failures[..2], t0 + Duration::minutes(1)).is_ok(), "below the maximum");
        assert_eq!(throttle.verdict(&failures, t0 + Duration::minutes(1)).unwrap_err(), Duration::minutes(14));
        assert!(throttle.verdict(&failures, t0 + Duration::minutes(15)).is_ok(), "the oldest failure aged out");
        assert_eq!(throttle.window_start(t0), t0 - Duration::minutes(15));
    }

    #[test]
    fn more_failures_than_the_maximum_lock_until_enough_age_out() {
        let t0 = datetime!(2026-01-01 0:00 UTC);
        let throttle = Throttle::new(2, Duration::minutes(10));
        // Two nodes let a third attempt through at once.
        let failures = [t0, t0 + Duration::minutes(1), t0 + Duration::minutes(2)];
        let now = t0 + Duration::minutes(3);
        assert_eq!(throttle.verdict(&failures, now).unwrap_err(), Duration::minutes(8), "until the second one ages out");
        assert!(throttle.verdict(&failures, t0 + Duration::minutes(11)).is_ok());
    }

    #[test]
    fn keys_are_digests_of_kind_and_value() {
        assert_eq!(ThrottleKey::name(" Alice "), ThrottleKey::name("alice"));
        assert_ne!(ThrottleKey::name("alice"), ThrottleKey::name("bob"));
        let ip: std::net::IpAddr = "203.0.113.7".parse().unwrap();
        let mapped: std::net::IpAddr = "::ffff:203.0.113.7".parse().unwrap();
        assert_eq!(ThrottleKey::client(ip), ThrottleKey::client(mapped));
        assert_ne!(ThrottleKey::client(ip), ThrottleKey::name("203.0.113.7"), "kinds never collide");
        assert!(!format!("{:?}", ThrottleKey::name("hunter2")).contains("hunter2"));
    }
}
