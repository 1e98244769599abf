//! Credentials: password hashes, sessions, API tokens, and the soft-lock bookkeeping of
//! password checks. What a presented credential resolves to is a [`CredentialOwner`].

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;
use warden_core::access::AuthStrength;
use warden_core::credential::TokenHash;
use warden_core::model::{ApiToken, Subject};
use warden_core::throttle::{Failures, Throttle, ThrottleKey};

use crate::{Change, Result};

/// An interactive session as stored (the token itself is never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: Uuid,
    pub account_id: Uuid,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub idle_timeout_secs: i64,
    pub last_seen_at: OffsetDateTime,
    /// Writes are allowed until then (after a re-authentication); `None`: read-only.
    pub elevated_until: Option<OffsetDateTime>,
    /// The client address that signed in, as the server saw it.
    pub client: Option<String>,
    /// The `User-Agent` that signed in, cut to [`USER_AGENT_MAX_CHARS`].
    pub user_agent: Option<String>,
    /// How the sign-in was proved.
    pub auth_strength: AuthStrength,
}

/// The longest `User-Agent` a session keeps (longer ones are cut): enough to tell browsers and
/// tools apart, too short to store whatever a client cares to send.
pub const USER_AGENT_MAX_CHARS: usize = 256;

/// A session as listed for its owner or an operator: the record and whose it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionListing {
    pub session: SessionRecord,
    pub account: Subject,
}

impl SessionRecord {
    /// Whether the session's write window is open at `now`.
    pub fn is_elevated(&self, now: OffsetDateTime) -> bool {
        self.elevated_until.is_some_and(|until| now < until)
    }

    /// When the session ends if it is not used again: its absolute expiry or the end of its
    /// idle timeout, whichever comes first.
    pub fn ends_at(&self) -> OffsetDateTime {
        self.expires_at.min(self.last_seen_at + time::Duration::seconds(self.idle_timeout_secs))
    }

    /// Whether the session is still valid at `now`: before its absolute expiry and used
    /// within its idle timeout.
    pub fn is_live(&self, now: OffsetDateTime) -> bool {
        now < self.expires_at && now < self.last_seen_at + time::Duration::seconds(self.idle_timeout_secs)
    }
}

/// What a presented bearer credential resolves to.
#[derive(Debug, Clone)]
pub struct CredentialOwner {
    pub subject: Subject,
    /// Whether the account is disabled or outside its validity window at the time asked.
    pub active: bool,
    /// A user's primary e-mail address and display name (for identity headers).
    pub email: Option<String>,
    /// Whether that address is verified (only then does recovery mail go to it).
    pub email_verified: bool,
    pub display_name: Option<String>,
    /// An administrator requires a new password: the account's sessions may only change it.
    pub password_change_required: bool,
}

#[async_trait]
pub trait Credentials: Send + Sync {
    async fn password_hash(&self, account: Uuid) -> Result<Option<String>>;
    /// Sets (or replaces) an account's password hash; with `end_sessions`, every session of
    /// the account ends in the same transaction (a reset after a compromise must log out the
    /// intruder).
    async fn set_password_hash(&self, change: &Change, account: Uuid, hash: &str, end_sessions: bool) -> Result<()>;
    /// A person's own password change: sets the hash and ends every session of the account
    /// but `keep_session`, in one transaction; the event records how many ended
    /// (`Action::PasswordChange::sessions_ended`).
    async fn change_password(&self, change: &Change, account: Uuid, hash: &str, keep_session: Uuid) -> Result<()>;
    async fn create_session(&self, change: &Change, session: &SessionRecord, token: &TokenHash) -> Result<()>;
    /// [`Credentials::create_session`] for a sign-in whose password was right: the login
    /// attempt reserved for it stops counting as a failure, and the failures under `clear` are
    /// forgotten, in the same transaction as the session ([`Credentials::login_succeeded`] and
    /// the session in one durable commit instead of two).
    async fn create_session_after_login(
        &self,
        change: &Change,
        session: &SessionRecord,
        token: &TokenHash,
        attempt: Uuid,
        clear: &[ThrottleKey],
    ) -> Result<()>;
    /// Requires a new password of each account named, in one transaction: each flag with its
    /// own change (audit event), the account's sessions ended and its mail (if any) queued.
    /// Returns how many sessions ended. Any new password clears the flag.
    async fn require_password_change(&self, accounts: &[(Change, Uuid, Option<crate::QueuedMail>)]) -> Result<u64>;
    async fn session(&self, token: &TokenHash, at: OffsetDateTime) -> Result<Option<(SessionRecord, CredentialOwner)>>;
    async fn touch_session(&self, id: Uuid, at: OffsetDateTime) -> Result<()>;
    /// Reserves one password check (soft-lock bookkeeping: no revision, no event). In one
    /// transaction that holds every key's lock row (taken in key order, so two reservations
    /// never wait for each other crosswise), it reads each key's failures within its window;
    /// if every throttle lets the attempt through at `at`, it records the attempt as a failure
    /// under every key and returns the attempt's id (`Ok(Ok(id))`), else records nothing and
    /// returns the longest wait (`Ok(Err(retry_after))`). The attempt counts as failed until
    /// [`Credentials::login_succeeded`] takes it back, so checks in flight count too: however
    /// many requests arrive at once, on however many nodes, no more are checked than the
    /// throttles allow. Failures older than every key's window are forgotten on the way.
    async fn reserve_login_attempt(
        &self,
        keys: &[(ThrottleKey, Throttle)],
        at: OffsetDateTime,
    ) -> Result<std::result::Result<Uuid, time::Duration>>;
    /// The reserved attempt's password was right: its failures go, and every failure of
    /// `clear` (the name as tried from that client).
    async fn login_succeeded(&self, attempt: Uuid, clear: &[ThrottleKey]) -> Result<()>;
    /// What `key` has on record after `since`: the count and the latest failure.
    async fn login_failures(&self, key: &ThrottleKey, since: OffsetDateTime) -> Result<Failures>;
    /// Forgets every attempt counted under `key`, under all of that attempt's keys (host
    /// recovery lifts an account's lock: the name's, and the name's from every address).
    async fn forget_login_attempts(&self, key: &ThrottleKey) -> Result<()>;
    /// An administrator lifts the soft lock of `key` (an account name): every attempt counted
    /// under it goes, under all of that attempt's keys (the name's from every address too),
    /// and `change` (a `CredentialUnlock`, its count filled in) is recorded, in one
    /// transaction. Returns the rows removed.
    async fn unlock_login(&self, change: &Change, key: &ThrottleKey) -> Result<u64>;
    async fn delete_session(&self, change: &Change, id: Uuid) -> Result<bool>;
    /// Sessions (live or not yet purged) in id order after `after`, at most `limit`: of one
    /// account, or of every account.
    async fn list_sessions(&self, account: Option<Uuid>, after: Option<Uuid>, limit: u32) -> Result<Vec<SessionListing>>;
    /// One session by its id.
    async fn session_by_id(&self, id: Uuid) -> Result<Option<SessionListing>>;
    /// Ends every session of `account` in one audited write; the event records how many
    /// (`Action::SessionRevokeAll::sessions_ended`), which is returned.
    async fn delete_account_sessions(&self, change: &Change, account: Uuid) -> Result<u64>;
    /// One API token by its id, revoked or not.
    async fn api_token_by_id(&self, id: Uuid) -> Result<Option<ApiToken>>;
    /// Deletes the sessions that can no longer authenticate at `now` (past their absolute
    /// expiry, or unused for their whole idle timeout) and returns how many. Only when there
    /// were any does it record `change`, with `details.count`, at a new revision.
    async fn purge_sessions(&self, change: &Change, now: OffsetDateTime) -> Result<u64>;
    async fn create_api_token(&self, change: &Change, token: &ApiToken, hash: &TokenHash) -> Result<()>;
    async fn api_token(&self, token: &TokenHash, at: OffsetDateTime) -> Result<Option<(ApiToken, CredentialOwner)>>;
    async fn list_api_tokens(&self, account: Uuid) -> Result<Vec<ApiToken>>;
    async fn touch_api_token(&self, id: Uuid, at: OffsetDateTime) -> Result<()>;
    /// Marks a token revoked; `false` if the account has no such live token.
    async fn revoke_api_token(&self, change: &Change, account: Uuid, id: Uuid) -> Result<bool>;
    /// Opens the session's write window until `until` and, with `strength`, records that its
    /// sign-in is now that strong (a re-authentication that proved more than the sign-in did),
    /// in one audited write; `false` if there is no such session. Whether `strength` is
    /// stronger is the caller's judgement: the store records what it is given.
    async fn elevate_session(&self, change: &Change, id: Uuid, until: OffsetDateTime, strength: Option<AuthStrength>) -> Result<bool>;
}
