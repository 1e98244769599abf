//! Warden's persistence.
//!
//! One [`Store`], two implementations: SQLite (the embedded default) and PostgreSQL. `Store` is
//! the sum of small traits, one per aggregate ([`Accounts`], [`Groups`], [`Credentials`],
//! [`Authorization`], [`AuditLog`], [`Transfer`], [`OneTimeTokens`], [`RegistrationTokens`], [`Preferences`], [`OidcClients`], [`OidcProvider`]), each in its own file, so that a feature adds
//! a method to the trait of what it touches rather than to one list of everything. Callers hold
//! `Arc<dyn Store>`, on which every aggregate's methods resolve without further imports; code
//! that holds a concrete store imports [`prelude`]. Both backends are written once, in `sql/`,
//! over SQL that both databases accept, and instantiated per backend; the conformance suite in
//! `tests/` runs against each.
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

mod accounts;
mod audit;
mod authorization;
mod credentials;
mod groups;
mod lane;
mod mail_queue;
mod oidc_clients;
mod oidc_provider;
mod one_time_tokens;
mod passkeys;
mod postgres;
mod preferences;
mod registration_tokens;
mod second_factors;
mod sql;
mod sqlite;
mod transfer;

use std::sync::Arc;

use async_trait::async_trait;
use time::OffsetDateTime;
use warden_core::Name;

pub use accounts::{Accounts, NameReservation};
pub use audit::{AuditLog, AuditQuery};
pub use authorization::{Authorization, BindingFilter};
pub use credentials::{CredentialOwner, Credentials, SessionListing, SessionRecord, USER_AGENT_MAX_CHARS};
pub use groups::Groups;
pub use lane::WriteStats;
pub use mail_queue::{MailKind, MailOutcome, MailQueue, MailStatus, QueuedMail};
pub use oidc_clients::OidcClients;
pub use oidc_provider::{ConsentRecord, GrantCreated, GrantRecord, NewGrant, OidcProvider, SigningKeyRecord};
pub use one_time_tokens::{OneTimeToken, OneTimeTokens, Recovery, TokenPurpose};
pub use passkeys::{Ceremony, CeremonyKind, PasskeyRecord, PasskeyUse, Passkeys};
pub use postgres::PgStore;
pub use preferences::{Preferences, StoredPreferences};
pub use registration_tokens::{Registration, RegistrationToken, RegistrationTokens};
pub use second_factors::{FactorCounts, SecondFactors, TotpCredential};
pub use sqlite::SqliteStore;
pub use transfer::{ImportCounts, ImportLine, Importer, LineError, Transfer};

/// `use warden_store::prelude::*`: [`Store`] and every aggregate trait in scope, so that method
/// calls on a concrete store (or a generic `S: Store`) resolve; the aggregate traits come in
/// unnamed, so they shadow nothing.
pub mod prelude {
    pub use crate::Store;
    pub use crate::{
        Accounts as _, AuditLog as _, Authorization as _, Credentials as _, Groups as _, MailQueue as _, OidcClients as _,
        OidcProvider as _, OneTimeTokens as _, Passkeys as _, Preferences as _, RegistrationTokens as _, SecondFactors as _, Transfer as _,
    };
}

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

/// The whole store: every aggregate's trait, and the lifecycle of the store itself.
#[async_trait]
pub trait Store:
    Accounts
    + Groups
    + Credentials
    + Authorization
    + AuditLog
    + Transfer
    + OneTimeTokens
    + RegistrationTokens
    + MailQueue
    + OidcClients
    + OidcProvider
    + Preferences
    + SecondFactors
    + Passkeys
    + Send
    + Sync
    + 'static
{
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

    /// Writes committed so far through this store's writer lane, and the transactions that
    /// carried them (group commit: several writes per transaction under load).
    fn write_stats(&self) -> WriteStats;
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
