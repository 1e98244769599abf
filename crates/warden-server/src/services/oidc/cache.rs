//! What the provider's hot endpoints (token, introspection, userinfo) read without asking the
//! database in the steady state: clients with their secret's hash, whether a grant (or a
//! service account) is still alive, and access tokens whose signature was already checked.
//!
//! Clients and grants are forgotten on every node by the typed effect of the changes that end
//! or change them ([`Forgotten`]): a rotated secret, a deleted client, a revoked grant, an
//! ended session (its grants go with it), a disabled or deleted account. What no event
//! announces (a session running out of time) is re-read after [`FRESH_FOR`] or checked from
//! the cached record on every use. A verified signature needs no forgetting: it stays
//! verified; the token's life is decided by its expiry and its grant, each time. (A verified
//! token is dropped with its account's credentials all the same, because the introspection
//! answer made with it names the account.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;
use warden_core::credential::{TokenHash, constant_time_eq};
use warden_core::model::AuditEvent;
use warden_core::oidc::OidcClient;
use warden_store::GrantRecord;

use crate::services::credentials::{FRESH_FOR, Forgotten};

/// Entries kept per map at most; past this the map starts over (a spray of unknown tokens or
/// client ids must not grow memory).
const CAPACITY: usize = 100_000;

/// A client and its secret's hash, as read.
#[derive(Debug, Clone)]
pub struct CachedClient {
    pub client: OidcClient,
    /// The tenant whose issuers serve it.
    pub tenant: String,
    pub secret: Option<TokenHash>,
    fetched_at: OffsetDateTime,
}

/// What decides whether tokens still work.
#[derive(Debug, Clone)]
pub enum Life {
    /// A grant (code flow): its record, with its session's end and its account's state.
    Grant(GrantRecord),
    /// A service account (client credentials): whether it is active.
    Account { id: Uuid, active: bool },
}

#[derive(Debug, Clone)]
struct CachedLife {
    life: Life,
    fetched_at: OffsetDateTime,
}

/// An access token whose signature verified: its claims, and what they name.
#[derive(Debug)]
pub struct VerifiedToken {
    pub claims: Map<String, Value>,
    pub exp: i64,
    /// The grant it belongs to (code flow), else `None` (client credentials).
    pub grant: Option<Uuid>,
    pub sub: Uuid,
    pub client_id: String,
    pub iss: String,
    /// Introspection's answer for it (made at the first introspection).
    pub introspection: std::sync::OnceLock<bytes::Bytes>,
}

/// A verified token as cached: the whole token, and what it says.
type SeenToken = (Box<str>, Arc<VerifiedToken>);

/// The maps hash with foldhash rather than SipHash: each introspection looks up three of
/// them, and only what this node verified or read is ever inserted (a caller's key is looked
/// up, never stored), so keys chosen to collide cannot pile up.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Default)]
pub struct OidcCache {
    clients: Mutex<FastMap<String, Arc<CachedClient>>>,
    lives: Mutex<FastMap<Uuid, CachedLife>>,
    /// By the token's signature (its last part), with the whole token to compare: a signature
    /// names one signed content, and hashing it is cheaper than hashing the token.
    tokens: Mutex<FastMap<Box<str>, SeenToken>>,
}

/// A compact JWS's signature part (after the last `.`), if it has one.
fn signature_of(token: &str) -> Option<&str> {
    token.rsplit_once('.').map(|(_, s)| s).filter(|s| !s.is_empty())
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn bounded<K: std::hash::Hash + Eq, V>(map: &mut FastMap<K, V>) {
    if map.len() >= CAPACITY {
        map.clear();
    }
}

impl OidcCache {
    pub fn client(&self, client_id: &str, now: OffsetDateTime) -> Option<Arc<CachedClient>> {
        lock(&self.clients).get(client_id).filter(|c| now - c.fetched_at < FRESH_FOR).cloned()
    }

    pub fn put_client(&self, client: OidcClient, secret: Option<TokenHash>, now: OffsetDateTime) -> Arc<CachedClient> {
        let tenant = super::provider::tenant_of(&client);
        let entry = Arc::new(CachedClient { client, tenant, secret, fetched_at: now });
        let mut clients = lock(&self.clients);
        bounded(&mut clients);
        clients.insert(entry.client.client_id.to_string(), entry.clone());
        entry
    }

    pub fn life(&self, key: Uuid, now: OffsetDateTime) -> Option<Life> {
        lock(&self.lives).get(&key).filter(|l| now - l.fetched_at < FRESH_FOR).map(|l| l.life.clone())
    }

    pub fn put_life(&self, key: Uuid, life: Life, now: OffsetDateTime) {
        let mut lives = lock(&self.lives);
        bounded(&mut lives);
        lives.insert(key, CachedLife { life, fetched_at: now });
    }

    /// Forgets this node's copies of an account's grants (and, for a service account, its
    /// life) at once, as [`Self::forget`] does with the revision.
    pub fn forget_account(&self, account: Uuid) {
        lock(&self.lives).retain(|key, l| match &l.life {
            Life::Grant(g) => g.account != account,
            Life::Account { .. } => *key != account,
        });
    }

    /// Forgets this node's copy of a grant at once (the node that revoked it does not wait
    /// for its own event).
    pub fn forget_life(&self, key: Uuid) {
        lock(&self.lives).remove(&key);
    }

    /// The verified token `token`, if this node verified it before and it has not expired. The
    /// whole token is compared in constant time: equal signatures with another content are a
    /// forgery, and the comparison must not tell how much of a cached token was guessed.
    pub fn token(&self, token: &str, now: OffsetDateTime) -> Option<Arc<VerifiedToken>> {
        let signature = signature_of(token)?;
        let tokens = lock(&self.tokens);
        let (whole, verified) = tokens.get(signature)?;
        let same = constant_time_eq(whole.as_bytes(), token.as_bytes());
        (same && verified.exp > now.unix_timestamp()).then(|| verified.clone())
    }

    pub fn put_token(&self, token: &str, verified: Arc<VerifiedToken>) {
        let Some(signature) = signature_of(token) else { return };
        let mut tokens = lock(&self.tokens);
        bounded(&mut tokens);
        tokens.insert(signature.into(), (token.into(), verified));
    }

    /// Drops what `events` end or change.
    pub fn forget(&self, events: &[AuditEvent]) {
        let gone = Forgotten::of(events);
        if gone.is_empty() {
            return;
        }
        lock(&self.clients).retain(|_, c| !gone.credential(c.client.id));
        lock(&self.lives).retain(|key, l| match &l.life {
            Life::Grant(g) => !gone.credential(*key) && !gone.credential(g.session) && !gone.account(g.account),
            Life::Account { id, .. } => !gone.account(*id) && !gone.credential(*id),
        });
        // A token's introspection answer names its account (`username`): made again after the
        // account changed (a rename), rather than kept until the token expires.
        lock(&self.tokens).retain(|_, (_, verified)| !gone.account(verified.sub));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_the_last_part() {
        let token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl";
        assert_eq!(signature_of(token), Some("c2lnbmF0dXJl"));
        assert_eq!(signature_of("no-dots"), None);
        assert_eq!(signature_of("a.b."), None);
    }
}
