//! Warden's persistence.
//!
//! One [`Store`] trait, two implementations: SQLite (the embedded default) and PostgreSQL.
//! Both are written once, in [`sql`], over SQL that both databases accept, and instantiated per
//! backend; the conformance suite in `tests/` runs against each.
//!
//! Guarantees every implementation keeps:
//! - every mutation commits in one transaction together with its audit event and a new,
//!   strictly increasing revision number (taking the revision row first also serialises
//!   writers, which is what makes the membership cycle check race-free on PostgreSQL);
//! - names are unique per name space (accounts; groups) and a violation is
//!   [`StoreError::NameTaken`], never a half-written row;
//! - a group never (indirectly) contains itself: [`StoreError::Cycle`];
//! - deleting a group removes its memberships and never an account; deleting an account
//!   removes it from every group and drops its credentials.
//!
//! Bookkeeping that is not a change of the directory (a session's last-seen time, a token's
//! last use) is written without an audit event or revision.
//!
//! Architecture invariant: this crate knows SQL and nothing about HTTP or access rules;
//! callers above it never branch on the backend in use.

mod lane;
pub use lane::WriteStats;
mod postgres;
mod sql;
mod sqlite;
mod transfer;

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;
use warden_core::Name;
use warden_core::api::{MemberEntry, Page};
use warden_core::authz::{Binding, DirectoryGraph, Role, Tenant};
use warden_core::credential::TokenHash;
use warden_core::model::{ApiToken, AuditEvent, Group, NameOrId, ServiceAccount, Subject, SubjectKind, User};
use warden_core::throttle::{Failures, Throttle, ThrottleKey};

pub use postgres::PgStore;
pub use sqlite::SqliteStore;
pub use transfer::{ImportCounts, ImportLine, Importer, LineError, Transfer};

/// Errors of the storage layer, each with a stable code.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the name {0:?} is already taken")]
    NameTaken(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("adding group {member} to group {group} would create a membership cycle")]
    Cycle { group: Name, member: Name },
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    /// A database failure. The text is for logs only, never for clients.
    #[error("database error: {0}")]
    Database(String),
}

impl StoreError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::NameTaken(_) => "name.taken",
            Self::NotFound(_) => "not_found",
            Self::Cycle { .. } => "group.cycle",
            Self::UnsupportedUrl(_) => "config",
            Self::Database(_) => "internal",
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        Self::Database(e.to_string())
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        Self::Database(e.to_string())
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The audit event that goes with a mutation (typed, in `warden-core`); the store adds the
/// id and revision and renders the row from it.
pub use warden_core::change::{Action, Change};

/// What a rename does with reserved names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NameReservation {
    /// Keep the name the account gives up reserved for it until then; `None`: free at once.
    pub keep_until: Option<OffsetDateTime>,
    /// Refuse ([`StoreError::NameTaken`]) a name that another account gave up and that is
    /// still reserved at the change's time. Self-service renames honour reservations; an
    /// administrator's rename may take such a name deliberately.
    pub honour: bool,
}

/// Filters and position of a list query over names.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only names starting with this (lower-cased by the caller).
    pub prefix: Option<String>,
    /// Only names after this one (the cursor of the previous page).
    pub after: Option<String>,
    /// Page size; the store caps it.
    pub limit: u32,
}

pub const MAX_PAGE: u32 = warden_core::api::MAX_PAGE_SIZE;
pub const DEFAULT_PAGE: u32 = 100;

impl ListQuery {
    pub fn page_size(&self) -> u32 {
        match self.limit {
            0 => DEFAULT_PAGE,
            n => n.min(MAX_PAGE),
        }
    }
}

/// Filters of the audit log.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub actor_id: Option<Uuid>,
    pub actor_name: Option<String>,
    pub target_id: Option<Uuid>,
    pub target_name: Option<String>,
    pub action_prefix: Option<String>,
    pub since: Option<OffsetDateTime>,
    /// Events older than this sequence number (the cursor).
    pub before_seq: Option<i64>,
    pub limit: u32,
}

/// Filters of a binding listing.
#[derive(Debug, Clone, Default)]
pub struct BindingFilter {
    pub subject: Option<Uuid>,
    pub role: Option<Name>,
    pub tenant: Option<Name>,
}

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
}

impl SessionRecord {
    /// Whether the session's write window is open at `now`.
    pub fn is_elevated(&self, now: OffsetDateTime) -> bool {
        self.elevated_until.is_some_and(|until| now < until)
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
    pub display_name: Option<String>,
}

/// Bulk export and import ([`Transfer`]) are part of every store, in their own file.
#[async_trait]
pub trait Store: Transfer + Send + Sync + 'static {
    /// Which backend this is, for logs and `/readyz`.
    fn backend(&self) -> &'static str;

    /// Closes the connections (SQLite checkpoints its write-ahead log).
    async fn shutdown(&self);

    /// Latest committed revision.
    async fn revision(&self) -> Result<i64>;

    /// Creates what every instance has if it is missing: the break-glass accounts (without
    /// credentials), the built-in groups with their bindings, and the break-glass accounts'
    /// memberships in them.
    async fn ensure_builtins(&self, at: OffsetDateTime) -> Result<()>;

    // --- accounts -------------------------------------------------------------------------
    async fn create_user(&self, change: &Change, user: &User, password_hash: Option<&str>) -> Result<User>;
    async fn user(&self, key: &NameOrId) -> Result<Option<User>>;
    async fn list_users(&self, query: &ListQuery) -> Result<Page<User>>;
    /// Replaces the profile, validity window and disabled flag of an existing user. With
    /// `end_sessions`, every session of the user ends in the same transaction, and the event
    /// records how many in `details.sessions_ended` (a disabled or expired account must not
    /// keep sessions that enabling it again would revive).
    async fn update_user(&self, change: &Change, user: &User, end_sessions: bool) -> Result<User>;
    async fn create_service_account(&self, change: &Change, account: &ServiceAccount) -> Result<ServiceAccount>;
    async fn service_account(&self, key: &NameOrId) -> Result<Option<ServiceAccount>>;
    async fn list_service_accounts(&self, query: &ListQuery) -> Result<Page<ServiceAccount>>;
    /// The user or service account with this name or id.
    async fn account(&self, key: &NameOrId, at: OffsetDateTime) -> Result<Option<CredentialOwner>>;
    /// Renames an account; `reservation` says what becomes of the name it gives up and whether
    /// names other accounts gave up are honoured (all checked and written in the one
    /// transaction, so a reservation and a rename cannot race).
    async fn rename_account(&self, change: &Change, id: Uuid, name: &Name, reservation: NameReservation) -> Result<()>;
    /// Deletes an account; with `keep_name_until`, its name stays reserved until then.
    async fn delete_account(&self, change: &Change, id: Uuid, keep_name_until: Option<OffsetDateTime>) -> Result<()>;

    // --- groups ---------------------------------------------------------------------------
    async fn create_group(&self, change: &Change, group: &Group) -> Result<Group>;
    async fn group(&self, key: &NameOrId) -> Result<Option<Group>>;
    async fn list_groups(&self, query: &ListQuery) -> Result<Page<Group>>;
    async fn delete_group(&self, change: &Change, id: Uuid) -> Result<u64>;
    /// Adds members to a group in one transaction (one audit event each); members already
    /// there are skipped. Returns how many were added.
    async fn add_members(&self, changes: &[Change], group: &Subject, members: &[Subject]) -> Result<u64>;
    async fn remove_member(&self, change: &Change, group: Uuid, member: &Subject) -> Result<bool>;
    /// Direct members, or with `effective` every subject reachable through nesting.
    async fn members(&self, group: Uuid, effective: bool, query: &ListQuery) -> Result<Page<MemberEntry>>;
    /// Every subject with this name, across kinds (for resolving bare member names).
    async fn subjects_named(&self, name: &Name) -> Result<Vec<Subject>>;
    async fn subject_by_id(&self, kind: Option<SubjectKind>, id: Uuid) -> Result<Option<Subject>>;

    // --- credentials ----------------------------------------------------------------------
    async fn password_hash(&self, account: Uuid) -> Result<Option<String>>;
    /// Sets (or replaces) an account's password hash; with `end_sessions`, every session of
    /// the account ends in the same transaction (a reset after a compromise must log out the
    /// intruder).
    async fn set_password_hash(&self, change: &Change, account: Uuid, hash: &str, end_sessions: bool) -> Result<()>;
    async fn create_session(&self, change: &Change, session: &SessionRecord, token: &TokenHash) -> Result<()>;
    async fn session(&self, token: &TokenHash, at: OffsetDateTime) -> Result<Option<(SessionRecord, CredentialOwner)>>;
    async fn touch_session(&self, id: Uuid, at: OffsetDateTime) -> Result<()>;
    /// Reserves one password check (soft-lock bookkeeping: no revision, no event). In one
    /// transaction that holds every key's lock row (taken in key order, so two reservations
    /// never wait for each other crosswise), it reads each key's failures within its window;
    /// if every throttle lets the attempt through at `at`, it records the attempt as a failure
    /// under every key and returns the attempt's id (`Ok(Ok(id))`), else records nothing and
    /// returns the longest wait (`Ok(Err(retry_after))`). The attempt counts as failed until
    /// [`Store::login_succeeded`] takes it back, so checks in flight count too: however many
    /// requests arrive at once, on however many nodes, no more are checked than the throttles
    /// allow. Failures older than every key's window are forgotten on the way.
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
    async fn delete_session(&self, change: &Change, id: Uuid) -> Result<bool>;
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

    async fn elevate_session(&self, change: &Change, id: Uuid, until: OffsetDateTime) -> Result<bool>;

    // --- authorization --------------------------------------------------------------------
    /// Everything the authorization index is built from (dynamic roles only: built-in and
    /// system roles are not stored), read in one consistent snapshot, with its revision.
    async fn graph(&self) -> Result<(i64, DirectoryGraph)>;
    /// Audit events of revisions after `revision`, oldest first.
    async fn events_since(&self, revision: i64, limit: u32) -> Result<Vec<AuditEvent>>;
    /// New revisions committed by any node, as they happen; `None` where the backend has no
    /// such feed (SQLite: one node, which knows its own commits).
    async fn revision_feed(&self) -> Result<Option<tokio::sync::mpsc::Receiver<i64>>>;
    async fn create_tenant(&self, change: &Change, tenant: &Tenant) -> Result<Tenant>;
    async fn tenants(&self) -> Result<Vec<Tenant>>;
    async fn tenant(&self, name: &Name) -> Result<Option<Tenant>>;
    /// Deletes a tenant with its roles and bindings.
    async fn delete_tenant(&self, change: &Change, name: &Name) -> Result<()>;
    async fn create_role(&self, change: &Change, role: &Role) -> Result<Role>;
    /// Replaces a dynamic role's description and permissions.
    async fn update_role(&self, change: &Change, role: &Role) -> Result<Role>;
    async fn dynamic_roles(&self) -> Result<Vec<Role>>;
    async fn dynamic_role(&self, id: &Name) -> Result<Option<Role>>;
    /// Deletes a dynamic role and its bindings; returns how many bindings went with it.
    async fn delete_role(&self, change: &Change, id: &Name) -> Result<u64>;
    async fn create_binding(&self, change: &Change, binding: &Binding) -> Result<Binding>;
    async fn bindings(&self, filter: &BindingFilter) -> Result<Vec<Binding>>;
    async fn binding(&self, id: Uuid) -> Result<Option<Binding>>;
    async fn delete_binding(&self, change: &Change, id: Uuid) -> Result<bool>;

    /// Writes committed so far through this store's writer lane, and the transactions that
    /// carried them (group commit: several writes per transaction under load).
    fn write_stats(&self) -> WriteStats;

    // --- audit ----------------------------------------------------------------------------
    /// Records an event that changes nothing else (a failed login, a host recovery notice).
    async fn record(&self, change: &Change) -> Result<()>;
    async fn audit(&self, query: &AuditQuery) -> Result<Page<AuditEvent>>;
}

/// Opens (and migrates) the store that a database URL names: `sqlite://…` or `postgres://…`.
pub async fn open(url: &str) -> Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open(url).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(PgStore::open(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl(url.to_owned()))
    }
}

/// Milliseconds since the epoch: how timestamps are stored.
pub(crate) fn to_ms(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

pub(crate) fn from_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}
