//! The one SQL implementation of [`crate::Store`], instantiated for SQLite and PostgreSQL.
//!
//! Both databases accept the same statements here (`$n` placeholders, `RETURNING`, recursive
//! CTEs); what differs (column types, collation, pool shape) lives in the migrations and in
//! each backend's `open`. Writing the queries once keeps the two backends from drifting; the
//! conformance suite proves they behave alike.
//!
//! [`impl_store!`] is what a backend invokes. It generates one module per aggregate trait, each
//! from its own file's macro (`accounts.rs`, `groups.rs`, …), beside the helpers they all use
//! ([`shared!`]): the audited-write steps (`open`, `bump`, `write_audit`, `audited_row`), the
//! decoders of rows that several aggregates read, and the two repeated read shapes (one row by
//! name or id; a page of a name-ordered listing). What needs no database type is plain code
//! below.

// Every dynamic statement is assembled from the constants in these modules and `$n`
// placeholders only; values always travel as bound parameters (hence `AssertSqlSafe`).

mod accounts;
mod audit;
mod authorization;
mod credentials;
mod groups;
mod lifecycle;
mod mail_queue;
mod oidc_clients;
mod oidc_provider;
mod one_time_tokens;
mod passkeys;
mod preferences;
mod registration_tokens;
mod second_factors;

pub(crate) use accounts::impl_accounts;
pub(crate) use audit::impl_audit;
pub(crate) use authorization::impl_authorization;
pub(crate) use credentials::impl_credentials;
pub(crate) use groups::impl_groups;
pub(crate) use lifecycle::impl_lifecycle;
pub(crate) use mail_queue::impl_mail_queue;
pub(crate) use oidc_clients::impl_oidc_clients;
pub(crate) use oidc_provider::impl_oidc_provider;
pub(crate) use one_time_tokens::impl_one_time_tokens;
pub(crate) use passkeys::impl_passkeys;
pub(crate) use preferences::impl_preferences;
pub(crate) use registration_tokens::impl_registration_tokens;
pub(crate) use second_factors::impl_second_factors;

use warden_core::api::Page;
use warden_core::model::{NameOrId, Profile};

use crate::{ListQuery, Result, StoreError};

/// Columns of a user, selected from `accounts a`.
pub(crate) const USER_COLUMNS: &str = "a.id, a.name, a.profile, a.disabled, a.valid_from, a.expires_at, a.created_at, a.updated_at, \
     EXISTS (SELECT 1 FROM password_credentials p WHERE p.account_id = a.id) AS has_password";

/// Columns of a service account with its manager, from `accounts a` joined as in [`SA_FROM`].
pub(crate) const SA_COLUMNS: &str = "a.id, a.name, a.description, a.disabled, a.created_at, a.updated_at, \
     m.id AS m_id, m.kind AS m_kind, m.name AS m_name, mg.id AS mg_id, mg.name AS mg_name";
pub(crate) const SA_FROM: &str =
    "accounts a LEFT JOIN accounts m ON m.id = a.manager_account_id LEFT JOIN groups mg ON mg.id = a.manager_group_id";

pub(crate) const GROUP_COLUMNS: &str = "g.id, g.name, g.description, g.created_at, g.updated_at, (SELECT COUNT(*) FROM group_members gm WHERE gm.group_id = g.id) AS member_count";

/// Groups reachable from `$1` through group-in-group edges, `$1` included. `sub CROSS JOIN
/// group_members` keeps SQLite from planning the walk backwards (scanning every membership
/// instead of following the few subgroups); PostgreSQL reads it as an ordinary join.
pub(crate) const SUBGROUPS_OF_1: &str = "WITH RECURSIVE sub(gid) AS ( \
       SELECT $1 \
       UNION \
       SELECT gm.member_group_id FROM sub CROSS JOIN group_members gm WHERE gm.group_id = sub.gid AND gm.member_group_id IS NOT NULL)";

pub(crate) const AUDIT_COLUMNS: &str = "seq, id, revision, at, actor_id, actor_name, action, target_kind, target_id, target_name, details";

/// Upper bound of names that start with a prefix (names are ASCII below 0x7f).
pub(crate) fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{7f}")
}

/// Encodes the position after a member for the next page.
pub(crate) fn member_cursor(name: &str, kind: &str) -> String {
    format!("{name}/{kind}")
}

pub(crate) fn parse_member_cursor(cursor: Option<&str>) -> (String, String) {
    cursor.and_then(|c| c.split_once('/')).map_or_else(|| (String::new(), String::new()), |(n, k)| (n.to_owned(), k.to_owned()))
}

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(sqlx::error::DatabaseError::is_unique_violation)
}

pub(crate) fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    e.as_database_error().is_some_and(sqlx::error::DatabaseError::is_foreign_key_violation)
}

/// [`warden_core::model::is_active_at`] over the stored columns (milliseconds).
pub(crate) fn account_active(disabled: bool, valid_from: Option<i64>, expires_at: Option<i64>, at: time::OffsetDateTime) -> bool {
    warden_core::model::is_active_at(disabled, valid_from.map(crate::from_ms), expires_at.map(crate::from_ms), at)
}

pub(crate) fn decode_err(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Database(format!("stored {what} cannot be read: {e}"))
}

pub(crate) fn json_list<T: serde::Serialize>(values: &[T]) -> Result<String> {
    serde_json::to_string(values).map_err(|e| StoreError::Database(e.to_string()))
}

pub(crate) fn profile_json(profile: &Profile) -> Result<String> {
    serde_json::to_string(profile).map_err(|e| StoreError::Database(e.to_string()))
}

pub(crate) fn name_taken(e: sqlx::Error, name: &str) -> StoreError {
    if is_unique_violation(&e) { StoreError::NameTaken(name.to_owned()) } else { e.into() }
}

/// "One row or not found" for a write: `Ok` if the statement touched a row, else
/// [`StoreError::NotFound`] naming `what`.
pub(crate) fn row_or_not_found(rows_affected: u64, what: impl FnOnce() -> String) -> Result<()> {
    if rows_affected == 0 { Err(StoreError::NotFound(what())) } else { Ok(()) }
}

/// A page of a listing fetched with one row more than `limit`: the extra row says there is a
/// next page, whose cursor is the last kept item's `cursor`.
pub(crate) fn page_by_name<T>(mut items: Vec<T>, limit: u32, cursor: impl Fn(&T) -> String) -> Page<T> {
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(cursor)
    } else {
        None
    };
    Page { items, next_cursor }
}

/// `(lower, upper, limit+1)` of a name-ordered list query: one range, so that the index
/// scan starts at the cursor instead of filtering every name before it. "After the
/// cursor" is `>= cursor + U+0001`: every valid name sorts above U+0001 (and, unlike
/// NUL, PostgreSQL text may hold it).
pub(crate) fn name_bounds(query: &ListQuery) -> (String, String, i64) {
    let prefix = query.prefix.clone().unwrap_or_default();
    let upper = prefix_end(&prefix);
    let lower = match query.after.as_deref() {
        Some(after) if !after.is_empty() => std::cmp::max(format!("{after}\u{1}"), prefix),
        _ => prefix,
    };
    (lower, upper, i64::from(query.page_size()) + 1)
}

/// The condition `{alias}.id = $1` or `{alias}.name = $1` that `key` asks for, and the value.
pub(crate) fn key_clause(key: &NameOrId, alias: &str) -> (String, KeyBind) {
    match key {
        NameOrId::Id(id) => (format!("{alias}.id = $1"), KeyBind::Id(*id)),
        NameOrId::Name(name) => (format!("{alias}.name = $1"), KeyBind::Name(name.to_string())),
    }
}

pub(crate) enum KeyBind {
    Id(uuid::Uuid),
    Name(String),
}

/// Everything a backend needs: `impl_store!(StoreType, sqlx::Database, its Row, "backend")`
/// generates `mod store_impl` with the shared helpers and one module per aggregate trait.
macro_rules! impl_store {
    ($store:ident, $db:ty, $row:ty, $backend:literal) => {
        /// Generated by `crate::sql::impl_store!`: the SQL implementation of every store trait.
        mod store_impl {
            use super::$store;
            crate::sql::shared!($store, $db, $row);
            crate::sql::impl_lifecycle!($store, $db, $row, $backend);
            crate::sql::impl_accounts!($store, $db, $row);
            crate::sql::impl_groups!($store, $db, $row);
            crate::sql::impl_credentials!($store, $db, $row);
            crate::sql::impl_authorization!($store, $db, $row);
            crate::sql::impl_audit!($store, $db, $row);
            crate::sql::impl_one_time_tokens!($store, $db, $row);
            crate::sql::impl_registration_tokens!($store, $db, $row);
            crate::sql::impl_mail_queue!($store, $db, $row);
            crate::sql::impl_second_factors!($store, $db, $row);
            crate::sql::impl_passkeys!($store, $db, $row);
            crate::sql::impl_preferences!($store, $db, $row);
            crate::sql::impl_oidc_clients!($store, $db, $row);
            crate::sql::impl_oidc_provider!($store, $db, $row);
        }
    };
}

pub(crate) use impl_store;

/// The helpers of every aggregate's statements that need the backend's types; expanded into
/// `store_impl`, where each aggregate's module reaches them through `use super::*`.
macro_rules! shared {
    ($store:ident, $db:ty, $row:ty) => {
        use sqlx::{AssertSqlSafe, Row, Transaction};
        use time::OffsetDateTime;
        use uuid::Uuid;
        use warden_core::Name;
        use warden_core::api::Page;
        use warden_core::model::{AuditEvent, NameOrId, Profile, Subject, SubjectKind};

        use crate::lane::{BoxFuture, Step};
        use crate::sql::*;
        use crate::{Change, CredentialOwner, ListQuery, Result, from_ms, to_ms};

        type Tx = Transaction<'static, $db>;
        type Conn = <$db as sqlx::Database>::Connection;
        type Pool = sqlx::Pool<$db>;
        type Query = sqlx::query::Query<'static, $db, <$db as sqlx::Database>::Arguments>;

        /// Writes a binding's row; a subject or tenant that does not exist is `NotFound`.
        async fn insert_binding(tx: &mut Conn, binding: &warden_core::authz::Binding) -> Result<()> {
            let (account, group) = match binding.subject.kind {
                SubjectKind::Group => (None, Some(binding.subject.id)),
                _ => (Some(binding.subject.id), None),
            };
            let namespaces: Vec<&str> = binding.namespaces.iter().map(warden_core::namespace::Namespace::as_str).collect();
            sqlx::query(
                "INSERT INTO bindings (id, role_id, subject_account_id, subject_group_id, tenant, namespaces, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(binding.id)
            .bind(binding.role.as_str())
            .bind(account)
            .bind(group)
            .bind(binding.tenant.as_str())
            .bind(json_list(&namespaces)?)
            .bind(to_ms(binding.created_at))
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                if is_foreign_key_violation(&e) {
                    crate::StoreError::NotFound(format!("{} or tenant {}", binding.subject, binding.tenant))
                } else {
                    e.into()
                }
            })?;
            Ok(())
        }

        /// Sets (or replaces) an account's password hash in the write's transaction.
        async fn set_password_row(tx: &mut Conn, account: Uuid, hash: &str, at: OffsetDateTime) -> Result<()> {
            sqlx::query(
                "INSERT INTO password_credentials (account_id, hash, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (account_id) DO UPDATE SET hash = excluded.hash, updated_at = excluded.updated_at",
            )
            .bind(account)
            .bind(hash)
            .bind(to_ms(at))
            .execute(&mut *tx)
            .await
            .map_err(|e| if is_foreign_key_violation(&e) { crate::StoreError::NotFound(format!("account {account}")) } else { e.into() })?;
            // Any new password meets a required change.
            sqlx::query("UPDATE accounts SET password_change_required = FALSE WHERE id = $1 AND password_change_required")
                .bind(account)
                .execute(&mut *tx)
                .await?;
            Ok(())
        }

        /// Queues a mail in the write's transaction (see [`crate::MailQueue`]).
        async fn insert_mail(tx: &mut Conn, mail: &crate::QueuedMail) -> Result<()> {
            sqlx::query(
                "INSERT INTO mail_queue (id, kind, recipient, account_id, reference_id, created_at, not_before, attempts) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6, 0)",
            )
            .bind(mail.id)
            .bind(mail.kind.as_str())
            .bind(&mail.recipient)
            .bind(mail.account_id)
            .bind(mail.reference_id)
            .bind(to_ms(mail.created_at))
            .execute(&mut *tx)
            .await?;
            Ok(())
        }

        /// Stores a new session (its token only as the hash) in the write's transaction.
        async fn insert_session(tx: &mut Conn, session: &crate::SessionRecord, token: &warden_core::credential::TokenHash) -> Result<()> {
            sqlx::query(
                "INSERT INTO sessions (id, token_hash, account_id, created_at, expires_at, idle_timeout_ms, last_seen_at, elevated_until, \
                                       client, user_agent, auth_strength) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(session.id)
            .bind(token.0.as_slice())
            .bind(session.account_id)
            .bind(to_ms(session.created_at))
            .bind(to_ms(session.expires_at))
            .bind(session.idle_timeout_secs * 1000)
            .bind(to_ms(session.last_seen_at))
            .bind(session.elevated_until.map(to_ms))
            .bind(session.client.as_deref())
            .bind(session.user_agent.as_deref())
            .bind(session.auth_strength.as_str())
            .execute(&mut *tx)
            .await?;
            Ok(())
        }

        /// Takes the next revision; the row lock it takes serialises writers until commit.
        async fn bump(tx: &mut Conn) -> Result<i64> {
            let rev: i64 = sqlx::query_scalar("UPDATE revision SET value = value + 1 WHERE id = 1 RETURNING value")
                .fetch_one(&mut *tx)
                .await?;
            if let Some(notify) = <$store>::NOTIFY_SQL {
                // Delivered to listeners when (and only if) the transaction commits (a
                // savepoint rolled back takes its notification with it).
                sqlx::query(notify).bind(rev).execute(&mut *tx).await?;
            }
            Ok(rev)
        }

        async fn write_audit(tx: &mut Conn, revision: i64, change: &Change) -> Result<()> {
            audit_values(
                sqlx::query(
                    "INSERT INTO audit_events (id, revision, at, actor_id, actor_name, action, target_kind, target_id, target_name, details) \
                     VALUES ($1, $10, $2, $3, $4, $5, $6, $7, $8, $9)",
                ),
                change,
            )
            .bind(revision)
            .execute(&mut *tx)
            .await?;
            Ok(())
        }

        /// Binds an audit event's values as `$1`…`$9` (id, at, actor id and name, action,
        /// target kind, id and name, details).
        fn audit_values<'q>(
            query: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments>,
            change: &Change,
        ) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments> {
            query
                .bind(Uuid::now_v7())
                .bind(to_ms(change.at))
                .bind(change.actor.as_ref().map(|a| a.id))
                .bind(change.actor.as_ref().map(|a| a.name.to_string()))
                .bind(change.action.name())
                .bind(change.audit_target().map(|(kind, _, _)| kind))
                .bind(change.audit_target().and_then(|(_, id, _)| id))
                .bind(change.audit_target().map(|(_, _, name)| name))
                .bind(change.action.details().to_string())
        }

        /// One audited statement on one row through the lane, its parameters bound by `bind`:
        /// `Ok(false)`, and nothing written, when no row matched.
        async fn audited_row(
            lane: &crate::lane::Lane<$db>,
            change: Change,
            sql: &'static str,
            bind: impl FnOnce(Query) -> Query + Send + 'static,
        ) -> Result<bool> {
            lane.write(move |mut tx: Step<'_, $db>| -> BoxFuture<'_, Result<bool>> {
                Box::pin(async move {
                    open(&mut tx, &change).await?;
                    if bind(sqlx::query(sql)).execute(&mut *tx).await?.rows_affected() == 0 {
                        return Ok(false);
                    }
                    tx.commit().await?;
                    Ok(true)
                })
            })
            .await
        }

        /// Opens a write transaction of its own (start-up only: everything else goes through
        /// the lane), takes a revision and records the audit event.
        async fn begin(store: &$store, change: &Change) -> Result<Tx> {
            let mut tx = store.writer().begin().await?;
            open(&mut tx, change).await?;
            Ok(tx)
        }

        /// Records the audit event in the write's transaction, at a new revision if the change
        /// needs one (it touches the snapshot or cached credentials), else at the current one:
        /// bookkeeping such as a login takes no revision lock and wakes no node.
        async fn open(tx: &mut Conn, change: &Change) -> Result<()> {
            let needs_revision = change.effect().needs_revision();
            if let (true, Some(sql)) = (needs_revision, <$store>::OPEN_SQL) {
                audit_values(sqlx::query(sql), change).execute(&mut *tx).await?;
                return Ok(());
            }
            let rev = if needs_revision {
                bump(tx).await?
            } else {
                sqlx::query_scalar("SELECT value FROM revision WHERE id = 1").fetch_one(&mut *tx).await?
            };
            write_audit(tx, rev, change).await
        }

        /// "One row or none" by name or id: the row of `select` (which ends in `WHERE` or
        /// `AND`) whose `{alias}.id` or `{alias}.name` is `key`, decoded.
        async fn by_key<T>(reader: &Pool, select: &str, alias: &str, key: &NameOrId, decode: impl Fn(&$row) -> Result<T> + Send) -> Result<Option<T>> {
            let (clause, bind) = key_clause(key, alias);
            let query = sqlx::query(AssertSqlSafe(format!("{select} {clause}")));
            let query = match bind {
                KeyBind::Id(id) => query.bind(id),
                KeyBind::Name(name) => query.bind(name),
            };
            let row = query.fetch_optional(reader).await?;
            row.as_ref().map(decode).transpose()
        }

        /// A page of a name-ordered listing: the rows of `select` (which ends in `WHERE` or
        /// `AND`) whose `{alias}.name` has `query`'s prefix and comes after its cursor.
        async fn list_by_name<T>(
            reader: &Pool,
            select: &str,
            alias: &str,
            query: &ListQuery,
            decode: fn(&$row) -> Result<T>,
            name: fn(&T) -> &Name,
        ) -> Result<Page<T>> {
            let (lower, upper, limit) = name_bounds(query);
            let sql = format!("{select} {alias}.name >= $1 AND {alias}.name < $2 ORDER BY {alias}.name LIMIT $3");
            let rows = sqlx::query(AssertSqlSafe(sql)).bind(lower).bind(upper).bind(limit).fetch_all(reader).await?;
            let items = rows.iter().map(decode).collect::<Result<Vec<_>>>()?;
            Ok(page_by_name(items, query.page_size(), |item| name(item).to_string()))
        }

        fn subject_from_row(row: &$row) -> Result<Subject> {
            let kind: String = row.try_get("kind")?;
            Ok(Subject {
                kind: SubjectKind::parse(&kind).ok_or_else(|| decode_err("subject kind", &kind))?,
                id: row.try_get("id")?,
                name: Name::from_trusted(row.try_get("name")?),
            })
        }

        /// The account a session or token belongs to (or an account looked up as one), from
        /// the columns `id, kind, name, profile, disabled, valid_from, account_expires_at,
        /// password_change_required`.
        fn owner_from_row(row: &$row, at: OffsetDateTime) -> Result<CredentialOwner> {
            let active = account_active(row.try_get("disabled")?, row.try_get("valid_from")?, row.try_get("account_expires_at")?, at);
            let profile: String = row.try_get("profile")?;
            let profile: Profile = serde_json::from_str(&profile).map_err(|e| decode_err("profile", e))?;
            let primary = profile.emails.into_iter().find(|e| e.primary);
            let email_verified = primary.as_ref().is_some_and(|e| e.verified);
            Ok(CredentialOwner {
                subject: subject_from_row(row)?,
                active,
                email: primary.map(|e| e.address),
                email_verified,
                display_name: profile.display_name,
                password_change_required: row.try_get("password_change_required")?,
            })
        }

        fn audit_from_row(row: &$row) -> Result<AuditEvent> {
            let details: String = row.try_get("details")?;
            Ok(AuditEvent {
                id: row.try_get("id")?,
                revision: row.try_get("revision")?,
                at: from_ms(row.try_get("at")?),
                actor_id: row.try_get("actor_id")?,
                actor_name: row.try_get("actor_name")?,
                action: row.try_get("action")?,
                target_kind: row.try_get("target_kind")?,
                target_id: row.try_get("target_id")?,
                target_name: row.try_get("target_name")?,
                details: serde_json::from_str(&details).map_err(|e| decode_err("audit details", e))?,
            })
        }
    };
}

pub(crate) use shared;
