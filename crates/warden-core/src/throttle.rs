//! Soft lock against password guessing, with delays that grow instead of a hard lock.
//!
//! Every password check is counted under three keys: the account name together with the
//! client address (what one attacker on one address can try at one account), the name alone
//! (over all addresses: a distributed attack on one account) and the address alone (over all
//! names: a spray). Each key lets a number of failures through freely within its window; past
//! that, each further attempt must wait twice as long after the key's latest failure as the
//! one before (1 s, 2 s, 4 s, …, up to a maximum). So an attacker on one address gets a handful
//! of guesses and then about one per maximum delay, while the owner on another address is
//! slowed only when the name's looser limit is reached.
//!
//! An attempt is counted *before* its password is checked (the store reserves it atomically
//! with the verdict), so parallel requests cannot slip past the count; a success then takes
//! its own count back and clears the (name, address) key. Keys are counted whether or not an
//! account of that name exists, so the lock tells nothing about which names are real. A key
//! is stored only as a digest ([`ThrottleKey`]), because what people type as a user name is
//! sometimes their password. IPv6 clients count by their /64 network, which one subscriber
//! usually holds whole. Pure: the caller reads the failures and passes the time.

use std::net::IpAddr;

use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

/// The first delay past the free failures; each further failure doubles it.
pub const FIRST_DELAY: Duration = Duration::SECOND;

/// What a throttle counts failures of, as stored: a SHA-256 digest of its kind and value.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ThrottleKey(pub [u8; 32]);

impl ThrottleKey {
    /// An account name, as typed (case and surrounding spaces do not make another key).
    pub fn name(name: &str) -> Self {
        Self::of("name", &canonical_name(name))
    }

    /// A client address (an IPv6 address by its /64 network).
    pub fn client(ip: IpAddr) -> Self {
        Self::of("client", &client_network(ip))
    }

    /// An account name tried from one client address.
    pub fn name_from(name: &str, ip: Option<IpAddr>) -> Self {
        let client = ip.map_or_else(|| "unknown".to_owned(), client_network);
        Self::of("name-client", &format!("{}\n{client}", canonical_name(name)))
    }

    fn of(kind: &str, value: &str) -> Self {
        let mut digest = Sha256::new();
        digest.update(kind.as_bytes());
        digest.update([0]);
        digest.update(value.as_bytes());
        Self(digest.finalize().into())
    }
}

fn canonical_name(name: &str) -> String {
    name.trim().to_lowercase()
}

fn client_network(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

impl std::fmt::Debug for ThrottleKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ThrottleKey({}…)", hex::encode(&self.0[..4]))
    }
}

/// One key's rule: `free` failures within `window` pass; past them, an attempt must wait
/// [`Throttle::delay`] after the key's latest failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    free: u32,
    window: Duration,
    max_delay: Duration,
}

/// What a key has on record within its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Failures {
    pub count: u32,
    pub latest: Option<OffsetDateTime>,
}

impl Throttle {
    pub fn new(free: u32, window: Duration, max_delay: Duration) -> Self {
        Self { free: free.max(1), window, max_delay: max_delay.max(FIRST_DELAY) }
    }

    /// Failures at or before this time no longer count at `now`.
    pub fn window_start(&self, now: OffsetDateTime) -> OffsetDateTime {
        now - self.window
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    /// How long after the latest of `count` failures the next attempt must wait.
    pub fn delay(&self, count: u32) -> Duration {
        if count < self.free {
            return Duration::ZERO;
        }
        let doublings = (count - self.free).min(40);
        let delay = FIRST_DELAY.checked_mul(1_i32 << doublings.min(30)).unwrap_or(self.max_delay);
        delay.min(self.max_delay)
    }

    /// `Err(retry_after)` if a key with `failures` since [`Self::window_start`] may not be
    /// tried at `now`.
    pub fn verdict(&self, failures: Failures, now: OffsetDateTime) -> Result<(), Duration> {
        let Some(latest) = failures.latest else { return Ok(()) };
        let allowed_at = latest + self.delay(failures.count);
        if now >= allowed_at { Ok(()) } else { Err(allowed_at - now) }
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const T0: OffsetDateTime = datetime!(2026-01-01 0:00 UTC);

    fn failures(count: u32, latest: OffsetDateTime) -> Failures {
        Failures { count, latest: Some(latest) }
    }

    #[test]
    fn free_failures_pass_then_delays_double_up_to_the_maximum() {
        let throttle = Throttle::new(5, Duration::hours(24), Duration::minutes(15));
        assert!(throttle.verdict(Failures::default(), T0).is_ok());
        assert!(throttle.verdict(failures(4, T0), T0).is_ok(), "below the free count");
        assert_eq!(throttle.verdict(failures(5, T0), T0), Err(Duration::seconds(1)));
        assert!(throttle.verdict(failures(5, T0), T0 + Duration::seconds(1)).is_ok());
        assert_eq!(throttle.verdict(failures(6, T0), T0 + Duration::seconds(1)), Err(Duration::seconds(1)));
        assert_eq!(throttle.verdict(failures(9, T0), T0), Err(Duration::seconds(16)));
        assert_eq!(throttle.verdict(failures(15, T0), T0), Err(Duration::minutes(15)), "1024 s capped at 15 min");
        assert_eq!(throttle.verdict(failures(u32::MAX, T0), T0), Err(Duration::minutes(15)), "no overflow");
        assert_eq!(throttle.window_start(T0), T0 - Duration::hours(24));
    }

    /// The guess rates that `docs/operations.md` quotes: an attacker who tries whenever the
    /// throttle lets them, against the default rules (5 per name and address, 50 per address,
    /// 200 per name, a 24 h window, 15 min at most between attempts).
    #[test]
    fn guess_rates_of_the_default_rules() {
        let pair = Throttle::new(5, Duration::hours(24), Duration::minutes(15));
        let per_name = Throttle::new(200, Duration::hours(24), Duration::minutes(15));
        let guesses_in = |throttle: Throttle, span: Duration| {
            let mut recent: Vec<OffsetDateTime> = Vec::new();
            let mut now = T0;
            while now < T0 + span {
                let counted: Vec<OffsetDateTime> = recent.iter().copied().filter(|t| *t > throttle.window_start(now)).collect();
                let on_record = Failures { count: counted.len() as u32, latest: counted.last().copied() };
                match throttle.verdict(on_record, now) {
                    Ok(()) => recent.push(now),
                    Err(wait) => now += wait,
                }
            }
            recent.len()
        };
        // One address at one name: 5 at once, 10 more within 17 minutes, then 4 an hour.
        assert_eq!(guesses_in(pair, Duration::hours(1)), 5 + 10 + 2);
        let first_day = guesses_in(pair, Duration::hours(24));
        assert_eq!(first_day, 109);
        assert!(first_day < 200, "one address alone never slows the name down for its owner");
        // Many addresses at one name: the looser per-name rule, shared by the owner.
        assert_eq!(guesses_in(per_name, Duration::hours(24)), 200 + 10 + 94);
    }

    #[test]
    fn keys_are_digests_of_kind_and_value() {
        assert_eq!(ThrottleKey::name(" Alice "), ThrottleKey::name("alice"));
        assert_ne!(ThrottleKey::name("alice"), ThrottleKey::name("bob"));
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:203.0.113.7".parse().unwrap();
        assert_eq!(ThrottleKey::client(ip), ThrottleKey::client(mapped));
        assert_ne!(ThrottleKey::client(ip), ThrottleKey::name("203.0.113.7"), "kinds never collide");
        assert_eq!(ThrottleKey::name_from("Alice", Some(ip)), ThrottleKey::name_from("alice", Some(mapped)));
        assert_ne!(ThrottleKey::name_from("alice", Some(ip)), ThrottleKey::name_from("alice", None));
        assert_ne!(ThrottleKey::name_from("alice", Some(ip)), ThrottleKey::name_from("bob", Some(ip)));
        assert!(!format!("{:?}", ThrottleKey::name("hunter2")).contains("hunter2"));
    }

    #[test]
    fn an_ipv6_client_counts_by_its_64_network() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ThrottleKey::client(a), ThrottleKey::client(b));
        assert_ne!(ThrottleKey::client(a), ThrottleKey::client(other));
        assert_eq!(ThrottleKey::name_from("alice", Some(a)), ThrottleKey::name_from("alice", Some(b)));
    }
}
