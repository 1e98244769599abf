//! A bounded, revocation-aware cache of bearer credentials, so that authenticating a request
//! does not query the database in the steady state.
//!
//! An entry holds what the store said about a session or API token (and its owner) at most
//! [`FRESH_FOR`] ago. Revocations reach it through the changes every node reads after each
//! revision: each change's typed effect names the credential or account whose entries go,
//! on every node as soon as that node's authorization snapshot catches up. Everything else (expiry, idle timeout) is
//! re-checked on every use from the cached record.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use warden_core::change::{self, CredentialEffect};
use warden_core::credential::TokenHash;
use warden_core::model::{ApiToken, AuditEvent, Subject};
use warden_store::SessionRecord;

/// How long a cached answer may be used before the store is asked again (bounds staleness
/// for what no event announces, such as an account's validity window running out).
pub const FRESH_FOR: Duration = Duration::seconds(60);

/// Entries kept at most; past this the cache starts over (a spray of random tokens must not
/// grow memory).
const CAPACITY: usize = 100_000;

#[derive(Debug, Clone)]
pub enum Credential {
    Session(SessionRecord),
    Api(ApiToken),
}

impl Credential {
    pub fn id(&self) -> Uuid {
        match self {
            Self::Session(s) => s.id,
            Self::Api(t) => t.id,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Cached {
    pub credential: Credential,
    pub owner: Subject,
    pub contact: Contact,
    /// The owner must choose a new password before doing anything else.
    pub password_change_required: bool,
    fetched_at: OffsetDateTime,
}

/// What identity headers say of a user beyond its name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contact {
    pub email: Option<String>,
    pub display_name: Option<String>,
}

impl Cached {
    pub fn new(credential: Credential, owner: Subject, contact: Contact, fetched_at: OffsetDateTime) -> Self {
        Self { credential, owner, contact, password_change_required: false, fetched_at }
    }

    /// The same entry for an owner that must choose a new password first.
    #[must_use]
    pub fn requiring_password_change(mut self, required: bool) -> Self {
        self.password_change_required = required;
        self
    }
}

/// Entries are shared, not copied, with the requests that use them: a hit costs a reference
/// count, not a copy of the record's strings.
#[derive(Default)]
pub struct CredentialCache {
    entries: Mutex<HashMap<[u8; 32], Arc<Cached>>>,
}

impl CredentialCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Arc<Cached>>> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A fresh entry for `hash`, if any.
    pub fn get(&self, hash: &TokenHash, now: OffsetDateTime) -> Option<Arc<Cached>> {
        let entries = self.lock();
        entries.get(&hash.0).filter(|c| now - c.fetched_at < FRESH_FOR).cloned()
    }

    pub fn put(&self, hash: &TokenHash, entry: Arc<Cached>) {
        let mut entries = self.lock();
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(hash.0, entry);
    }

    /// Entries held (at most 100,000).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Records a bookkeeping touch in the cached copy.
    pub fn touched(&self, hash: &TokenHash, at: OffsetDateTime) {
        if let Some(entry) = self.lock().get_mut(&hash.0) {
            match &mut Arc::make_mut(entry).credential {
                Credential::Session(s) => s.last_seen_at = at,
                Credential::Api(t) => t.last_used_at = Some(at),
            }
        }
    }

    /// Drops what `events` revoke or change, as each change's [`CredentialEffect`] says. An
    /// event this version cannot read drops everything: better a database read than a
    /// revoked credential that still works.
    pub fn forget(&self, events: &[AuditEvent]) {
        let gone = Forgotten::of(events);
        if gone.everything {
            self.lock().clear();
        } else if !gone.is_empty() {
            self.lock().retain(|_, c| !gone.credential(c.credential.id()) && !gone.account(c.owner.id));
        }
    }
}

/// What a run of changes ends or changes among cached credentials, read from each change's
/// typed [`CredentialEffect`]: every cache of credentials (this one, the OpenID Connect
/// provider's) forgets by it.
#[derive(Debug, Default)]
pub struct Forgotten {
    /// An event this version cannot read: forget everything.
    pub everything: bool,
    credentials: std::collections::HashSet<Uuid>,
    accounts: std::collections::HashSet<Uuid>,
}

impl Forgotten {
    pub fn of(events: &[AuditEvent]) -> Self {
        let mut out = Self::default();
        for e in events {
            match change::recorded(e) {
                Ok((target, action)) => match action.effect(target.as_ref()).credentials {
                    CredentialEffect::Unchanged => {}
                    CredentialEffect::Credential(id) => {
                        out.credentials.insert(id);
                    }
                    CredentialEffect::Account(id) => {
                        out.accounts.insert(id);
                    }
                    // A bulk import may name thousands of accounts: a set, looked up, not scanned.
                    CredentialEffect::Accounts(ids) => out.accounts.extend(ids),
                },
                Err(unknown) => {
                    tracing::warn!(error = %unknown, "forgetting every cached credential");
                    out.everything = true;
                }
            }
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        !self.everything && self.credentials.is_empty() && self.accounts.is_empty()
    }

    /// Whether the session, token, grant or client `id` ended or changed.
    pub fn credential(&self, id: Uuid) -> bool {
        self.everything || self.credentials.contains(&id)
    }

    /// Whether every credential of the account `id` ended or changed.
    pub fn account(&self, id: Uuid) -> bool {
        self.everything || self.accounts.contains(&id)
    }
}
