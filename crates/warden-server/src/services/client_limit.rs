//! A per-client-address limit over a fixed window, kept in this node's memory: what stops one
//! address from hammering the public endpoints that need no account (registration, recovery
//! links, forgot password). IPv6 clients count by their /64, as the soft lock does. Each node
//! counts its own clients: behind a load balancer the limit holds per node. A refusal is
//! `auth.rate_limited` with the seconds until the client's window ends, and says nothing
//! about any account.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use time::{Duration, OffsetDateTime};
use warden_core::throttle::ThrottleKey;

use super::{Result, ServiceError};

/// Past this many clients remembered, the ones whose window ended are forgotten.
const MAX_CLIENTS: usize = 100_000;

/// `limit` requests per client address within `window`. Cloning shares the counts.
#[derive(Clone)]
pub struct ClientLimit {
    limit: u32,
    window: Duration,
    clients: Arc<Mutex<HashMap<ThrottleKey, (OffsetDateTime, u32)>>>,
}

impl ClientLimit {
    pub fn new(limit: u32, window_secs: i64) -> Self {
        Self { limit, window: Duration::seconds(window_secs), clients: Arc::default() }
    }

    /// Counts one request of `client` at `now`, or refuses it when the client's window is
    /// full. An unknown client (no address) is not counted.
    pub fn count(&self, client: Option<IpAddr>, now: OffsetDateTime) -> Result<()> {
        let Some(ip) = client else { return Ok(()) };
        let window = self.window;
        let mut clients = self.clients.lock().map_err(|_| ServiceError::Internal("rate limit state poisoned".into()))?;
        if clients.len() >= MAX_CLIENTS {
            clients.retain(|_, (start, _)| now - *start < window);
        }
        let entry = clients.entry(ThrottleKey::client(ip)).or_insert((now, 0));
        if now - entry.0 >= window {
            *entry = (now, 0);
        }
        if entry.1 >= self.limit {
            let retry = (entry.0 + window - now).whole_seconds().max(1);
            return Err(ServiceError::RateLimited { retry_after_secs: retry });
        }
        entry.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_limit_per_window_and_is_told_when_to_return() {
        let limit = ClientLimit::new(2, 60);
        let t0 = OffsetDateTime::UNIX_EPOCH;
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        limit.count(Some(a), t0).unwrap();
        limit.count(Some(a), t0 + Duration::seconds(10)).unwrap();
        let refused = limit.count(Some(a), t0 + Duration::seconds(20)).unwrap_err();
        assert!(matches!(refused, ServiceError::RateLimited { retry_after_secs: 40 }), "{refused:?}");
        // Another address, and no address at all, are not held back.
        limit.count(Some(b), t0 + Duration::seconds(20)).unwrap();
        limit.count(None, t0 + Duration::seconds(20)).unwrap();
        // A new window starts afresh.
        limit.count(Some(a), t0 + Duration::seconds(60)).unwrap();
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let limit = ClientLimit::new(1, 60);
        let t0 = OffsetDateTime::UNIX_EPOCH;
        limit.count(Some("2001:db8::1".parse().unwrap()), t0).unwrap();
        assert!(limit.count(Some("2001:db8::ffff".parse().unwrap()), t0).is_err());
        limit.count(Some("2001:db8:0:1::1".parse().unwrap()), t0).unwrap();
    }
}
