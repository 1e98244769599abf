//! Bulk export and import: the whole directory as [`Record`]s, in and out.
//!
//! Kept apart from the per-object writes of `sql/` because it works differently: an export
//! streams every row from one read transaction (never the whole directory in memory), and an
//! import applies thousands of records per transaction with one statement per kind (the
//! batch's rows bound as one JSON array, [`BulkRows`]), one revision and one audit event per
//! batch ([`Action::Import`]). Objects are matched by name;
//! a record equal to what is stored changes nothing, and a batch that changes nothing is
//! rolled back, so that importing the same file twice writes nothing the second time.
//!
//! Access rules are not checked here (the service does), but referential ones are: an
//! unknown group, member, manager or tenant, a name held by another kind of account and a
//! membership cycle fail the batch with the line that caused it ([`LineError`]).

use async_trait::async_trait;
use serde::Serialize;
use tokio::sync::mpsc;
use warden_core::Name;
use warden_core::model::Subject;
use warden_core::transfer::Record;

use crate::{Change, Result, StoreError};

/// Bound parameters per `IN (…)` list of [`Transfer::subjects_with_names`], per backend, below
/// both backends' limits (SQLite 32,766; PostgreSQL 65,535). SQLite's is small on purpose:
/// binding `$n` parameters there looks each one's name up in a list, which makes a statement's
/// binding quadratic in its parameters (a third of an import's time at 4,000 per statement,
/// measured with perf). PostgreSQL pays a round trip per statement instead, so fewer, larger
/// statements are better there.
pub(crate) const SQLITE_PARAMS: usize = 256;
pub(crate) const POSTGRES_PARAMS: usize = 4000;

/// One record of an import, with its line number in the file (1-based, the header is line 1).
#[derive(Debug, Clone)]
pub struct ImportLine {
    pub line: u64,
    pub record: Record,
}

/// What a batch (or a whole import) did, counted in records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ImportCounts {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
}

impl std::ops::AddAssign for ImportCounts {
    fn add_assign(&mut self, other: Self) {
        self.created += other.created;
        self.updated += other.updated;
        self.unchanged += other.unchanged;
    }
}

/// A batch refused at one of its lines; nothing of the batch is kept.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {error}")]
pub struct LineError {
    pub line: u64,
    #[source]
    pub error: StoreError,
}

/// An import in progress: a write transaction that batches are applied to. Dropping it rolls
/// back whatever was applied since the last [`Importer::commit`].
#[async_trait]
pub trait Importer: Send {
    /// Applies `lines` in the open transaction (opening one if needed), kind by kind in replay
    /// order (tenants, roles, users, groups, service accounts, memberships, bindings; a kind's
    /// records in their order), so a reference may point forward within its batch, and of
    /// several bad records the first in that order is reported. If anything changed,
    /// takes one revision and records `change`, an [`Action::Import`](crate::Action::Import)
    /// whose counts and ids are filled in here.
    async fn apply(&mut self, change: &Change, lines: &[ImportLine]) -> std::result::Result<ImportCounts, LineError>;
    /// Commits what was applied since the last commit (rolls it back if it changed nothing)
    /// and returns the revision committed, if any.
    async fn commit(&mut self) -> Result<Option<i64>>;
}

#[async_trait]
pub trait Transfer: Send + Sync {
    /// Sends every record of the directory to `out`, in replay order (see
    /// [`warden_core::transfer`]), read from one consistent snapshot; password hashes only
    /// with `credentials`. Stops early, without error, when `out` is closed. Returns how many
    /// records were sent. Header and end lines are the caller's.
    async fn export(&self, credentials: bool, out: mpsc::Sender<Record>) -> Result<u64>;
    /// The accounts and groups with these names (for the caller's access checks).
    async fn subjects_with_names(&self, names: &[Name]) -> Result<Vec<Subject>>;
    /// Starts an import.
    async fn importer(&self) -> Result<Box<dyn Importer>>;
}

/// `$first, $first+1, …` for `n` parameters: `($1, $2)`-style lists for dynamic statements.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// How a backend reads a batch's rows out of one JSON array bound as `$1`: the bulk statements
/// of an import (its lookups by name and its inserts) are one statement per kind and batch,
/// whatever the batch's size, instead of a bound parameter per column and row. That removes
/// per-statement costs (on SQLite, a crossing to sqlx's worker thread each; on PostgreSQL, a
/// round trip) and SQLite's binding by parameter name, which grows with the parameters.
/// Each element is itself an array; `uuid(i)` and the others read its `i`-th item, with JSON
/// `null` read as SQL `NULL`. Uuids travel as 32 hex digits (`Uuid::simple`).
pub(crate) trait BulkRows {
    /// A `FROM` item with one row per element, its column named `value`.
    const ROWS: &'static str;
    /// A `SELECT` of the strings of a JSON array of strings bound as `$1`.
    const NAMES: &'static str;
    fn uuid(i: usize) -> String;
    fn text(i: usize) -> String;
    fn boolean(i: usize) -> String;
    fn bigint(i: usize) -> String;
}

impl BulkRows for sqlx::Sqlite {
    const ROWS: &'static str = "json_each($1)";
    const NAMES: &'static str = "SELECT value FROM json_each($1)";
    fn uuid(i: usize) -> String {
        format!("unhex(value ->> {i})")
    }
    fn text(i: usize) -> String {
        format!("(value ->> {i})")
    }
    // `->>` reads JSON `true` as 1 and integers as integers, which is how SQLite stores both.
    fn boolean(i: usize) -> String {
        format!("(value ->> {i})")
    }
    fn bigint(i: usize) -> String {
        format!("(value ->> {i})")
    }
}

impl BulkRows for sqlx::Postgres {
    const ROWS: &'static str = "jsonb_array_elements($1::jsonb)";
    const NAMES: &'static str = "SELECT jsonb_array_elements_text($1::jsonb)";
    fn uuid(i: usize) -> String {
        format!("(value ->> {i})::uuid")
    }
    fn text(i: usize) -> String {
        format!("(value ->> {i})")
    }
    fn boolean(i: usize) -> String {
        format!("(value ->> {i})::boolean")
    }
    fn bigint(i: usize) -> String {
        format!("(value ->> {i})::bigint")
    }
}

macro_rules! impl_transfer {
    // `$setup`: a statement run at the start of each import transaction, if any.
    ($store:ident, $db:ty, $row:ty, $setup:expr, $params:expr) => {
        /// Generated by `crate::transfer::impl_transfer!`: bulk export and import.
        mod transfer_impl {
            use std::collections::{BTreeSet, HashMap};

            use async_trait::async_trait;
            use sqlx::{AssertSqlSafe, Row, Transaction};
            use tokio::sync::mpsc;
            use uuid::Uuid;
            use warden_core::Name;
            use warden_core::builtin::{BUILT_IN_GROUPS, BUILT_IN_MEMBERSHIPS, DEFAULT_TENANT, is_built_in_binding};
            use warden_core::model::{BREAK_GLASS, Profile, Subject, SubjectKind};
            use warden_core::credential::Secret;
            use warden_core::transfer::{NamedSubject, Record};

            use super::$store;
            use crate::sql::{SA_FROM, SUBGROUPS_OF_1, is_foreign_key_violation};
            use crate::transfer::{BulkRows, ImportCounts, ImportLine, Importer, LineError, Transfer, placeholders};
            use crate::{Action, Change, Result, StoreError, from_ms, to_ms};

            type Tx = Transaction<'static, $db>;

            /// Names per `IN (…)` list of bound parameters (outside an import's batches).
            const NAMES_PER_LOOKUP: usize = $params;

            /// A batch's rows as the one JSON parameter of a bulk statement ([`BulkRows`]).
            fn rows_param<T: serde::Serialize>(rows: &[T]) -> Result<String> {
                json(rows)
            }

            fn hex(id: &Uuid) -> String {
                id.simple().to_string()
            }

            fn decode(what: &str, e: impl std::fmt::Display) -> StoreError {
                StoreError::Database(format!("stored {what} cannot be read: {e}"))
            }

            fn json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String> {
                serde_json::to_string(value).map_err(|e| StoreError::Database(e.to_string()))
            }

            fn kind_of(raw: &str) -> Result<SubjectKind> {
                SubjectKind::parse(raw).ok_or_else(|| decode("kind", raw))
            }

            /// Reads rows of `sql` one at a time and sends what `map` makes of them.
            async fn stream(
                tx: &mut Tx,
                sql: &str,
                out: &mpsc::Sender<Record>,
                sent: &mut u64,
                mut map: impl FnMut(&$row) -> Result<Option<Record>> + Send,
            ) -> Result<bool> {
                use futures_util::TryStreamExt;
                let mut rows = sqlx::query(AssertSqlSafe(sql.to_owned())).fetch(&mut **tx);
                while let Some(row) = rows.try_next().await? {
                    if let Some(record) = map(&row)? {
                        if out.send(record).await.is_err() {
                            return Ok(false);
                        }
                        *sent += 1;
                    }
                }
                Ok(true)
            }

            fn subject_ref(kind: &str, name: String) -> Result<String> {
                Ok(NamedSubject::render(kind_of(kind)?, &Name::from_trusted(name)))
            }

            #[async_trait]
            impl Transfer for $store {
                async fn export(&self, credentials: bool, out: mpsc::Sender<Record>) -> Result<u64> {
                    let mut tx: Tx = self.reader().begin().await?;
                    if let Some(sql) = <$store>::SNAPSHOT_SQL {
                        sqlx::query(sql).execute(&mut *tx).await?;
                    }
                    let break_glass: Vec<Uuid> = BREAK_GLASS.iter().map(|(id, _, _)| *id).collect();
                    let built_in_groups: Vec<Uuid> = BUILT_IN_GROUPS.iter().map(|g| g.id).collect();
                    let mut sent = 0;
                    let sections: [(&str, &mut (dyn FnMut(&$row) -> Result<Option<Record>> + Send)); 7] = [
                        (
                            "SELECT name, description FROM tenants ORDER BY name",
                            &mut |r| {
                                let name: String = r.try_get("name")?;
                                Ok((name != DEFAULT_TENANT).then(|| Record::Tenant { name: Name::from_trusted(name), description: r.try_get("description").ok().flatten() }))
                            },
                        ),
                        (
                            "SELECT id, tenant, name, description, permissions FROM roles ORDER BY id",
                            &mut |r| {
                                let permissions: String = r.try_get("permissions")?;
                                Ok(Some(Record::Role {
                                    id: Name::from_trusted(r.try_get("id")?),
                                    tenant: Name::from_trusted(r.try_get("tenant")?),
                                    name: r.try_get("name")?,
                                    description: r.try_get("description")?,
                                    permissions: serde_json::from_str(&permissions).map_err(|e| decode("role permissions", e))?,
                                }))
                            },
                        ),
                        (
                            "SELECT a.id, a.name, a.profile, a.disabled, a.valid_from, a.expires_at, p.hash FROM accounts a \
                             LEFT JOIN password_credentials p ON p.account_id = a.id WHERE a.kind = 'user' ORDER BY a.name",
                            &mut |r| {
                                if break_glass.contains(&r.try_get::<Uuid, _>("id")?) {
                                    return Ok(None);
                                }
                                let profile: String = r.try_get("profile")?;
                                let hash: Option<String> = if credentials { r.try_get("hash")? } else { None };
                                Ok(Some(Record::User {
                                    name: Name::from_trusted(r.try_get("name")?),
                                    profile: serde_json::from_str::<Profile>(&profile).map_err(|e| decode("profile", e))?,
                                    disabled: r.try_get("disabled")?,
                                    valid_from: r.try_get::<Option<i64>, _>("valid_from")?.map(from_ms),
                                    expires_at: r.try_get::<Option<i64>, _>("expires_at")?.map(from_ms),
                                    password_hash: hash.map(Secret::new),
                                }))
                            },
                        ),
                        (
                            "SELECT id, name, description FROM groups ORDER BY name",
                            &mut |r| {
                                if built_in_groups.contains(&r.try_get::<Uuid, _>("id")?) {
                                    return Ok(None);
                                }
                                Ok(Some(Record::Group { name: Name::from_trusted(r.try_get("name")?), description: r.try_get("description")? }))
                            },
                        ),
                        (
                            &format!(
                                "SELECT a.id, a.name, a.description, a.disabled, m.kind AS m_kind, m.name AS m_name, mg.name AS mg_name FROM {SA_FROM} \
                                 WHERE a.kind = 'service_account' ORDER BY a.name"
                            ),
                            &mut |r| {
                                if break_glass.contains(&r.try_get::<Uuid, _>("id")?) {
                                    return Ok(None);
                                }
                                let manager = match (r.try_get::<Option<String>, _>("m_name")?, r.try_get::<Option<String>, _>("mg_name")?) {
                                    (Some(name), _) => Some(subject_ref(&r.try_get::<String, _>("m_kind")?, name)?),
                                    (None, Some(name)) => Some(subject_ref("group", name)?),
                                    (None, None) => None,
                                };
                                Ok(Some(Record::ServiceAccount {
                                    name: Name::from_trusted(r.try_get("name")?),
                                    description: r.try_get("description")?,
                                    disabled: r.try_get("disabled")?,
                                    manager,
                                }))
                            },
                        ),
                        (
                            "SELECT g.id AS group_id, g.name AS group_name, gm.member_account_id, COALESCE(a.kind, 'group') AS member_kind, \
                             COALESCE(a.name, mg.name) AS member_name FROM group_members gm JOIN groups g ON g.id = gm.group_id \
                             LEFT JOIN accounts a ON a.id = gm.member_account_id LEFT JOIN groups mg ON mg.id = gm.member_group_id \
                             ORDER BY g.name, member_kind, member_name",
                            &mut |r| {
                                let group: Uuid = r.try_get("group_id")?;
                                let account: Option<Uuid> = r.try_get("member_account_id")?;
                                if account.is_some_and(|a| BUILT_IN_MEMBERSHIPS.contains(&(group, a))) {
                                    return Ok(None);
                                }
                                Ok(Some(Record::Member {
                                    group: Name::from_trusted(r.try_get("group_name")?),
                                    member: subject_ref(&r.try_get::<String, _>("member_kind")?, r.try_get("member_name")?)?,
                                }))
                            },
                        ),
                        (
                            "SELECT b.id, b.role_id, b.tenant, b.namespaces, COALESCE(a.kind, 'group') AS subject_kind, \
                             COALESCE(a.name, g.name) AS subject_name FROM bindings b LEFT JOIN accounts a ON a.id = b.subject_account_id \
                             LEFT JOIN groups g ON g.id = b.subject_group_id ORDER BY b.tenant, b.role_id, subject_kind, subject_name, b.namespaces",
                            &mut |r| {
                                if is_built_in_binding(r.try_get("id")?) {
                                    return Ok(None);
                                }
                                let namespaces: String = r.try_get("namespaces")?;
                                Ok(Some(Record::Binding {
                                    role: Name::from_trusted(r.try_get("role_id")?),
                                    tenant: Name::from_trusted(r.try_get("tenant")?),
                                    subject: subject_ref(&r.try_get::<String, _>("subject_kind")?, r.try_get("subject_name")?)?,
                                    namespaces: serde_json::from_str(&namespaces).map_err(|e| decode("binding namespaces", e))?,
                                }))
                            },
                        ),
                    ];
                    for (sql, map) in sections {
                        if !stream(&mut tx, sql, &out, &mut sent, map).await? {
                            break;
                        }
                    }
                    tx.rollback().await?;
                    Ok(sent)
                }

                async fn subjects_with_names(&self, names: &[Name]) -> Result<Vec<Subject>> {
                    let mut found = Vec::new();
                    for chunk in names.chunks(NAMES_PER_LOOKUP) {
                        let list = placeholders(1, chunk.len());
                        let sql = format!(
                            "SELECT id, kind, name FROM accounts WHERE name IN ({list}) UNION ALL SELECT id, 'group', name FROM groups WHERE name IN ({list})"
                        );
                        let mut q = sqlx::query(AssertSqlSafe(sql));
                        for n in chunk {
                            q = q.bind(n.as_str());
                        }
                        for r in q.fetch_all(self.reader()).await? {
                            found.push(Subject { kind: kind_of(&r.try_get::<String, _>("kind")?)?, id: r.try_get("id")?, name: Name::from_trusted(r.try_get("name")?) });
                        }
                    }
                    Ok(found)
                }

                async fn importer(&self) -> Result<Box<dyn Importer>> {
                    Ok(Box::new(SqlImporter { pool: self.writer().clone(), tx: None, revision: None }))
                }
            }

            struct SqlImporter {
                pool: sqlx::Pool<$db>,
                tx: Option<Tx>,
                /// The revision of the batch applied but not yet committed, if it changed anything.
                revision: Option<i64>,
            }

            /// What a batch did, gathered while it runs.
            #[derive(Default)]
            struct Tally {
                counts: ImportCounts,
                accounts: BTreeSet<Uuid>,
                groups: BTreeSet<Uuid>,
            }

            #[async_trait]
            impl Importer for SqlImporter {
                async fn apply(&mut self, change: &Change, lines: &[ImportLine]) -> std::result::Result<ImportCounts, LineError> {
                    let first = lines.first().map_or(0, |l| l.line);
                    let last = lines.last().map_or(first, |l| l.line);
                    let at = |line: u64| move |error: StoreError| LineError { line, error };
                    if self.tx.is_none() {
                        let mut tx = self.pool.begin().await.map_err(|e| at(first)(e.into()))?;
                        let setup: Option<&str> = $setup;
                        if let Some(sql) = setup {
                            sqlx::query(sql).execute(&mut *tx).await.map_err(|e| at(first)(e.into()))?;
                        }
                        self.tx = Some(tx);
                    }
                    let Some(tx) = self.tx.as_mut() else { return Err(at(first)(StoreError::Database("no transaction".into()))) };
                    // Taking the revision first serialises this batch with every other writer.
                    let rev: i64 = sqlx::query_scalar("UPDATE revision SET value = value + 1 WHERE id = 1 RETURNING value")
                        .fetch_one(&mut **tx)
                        .await
                        .map_err(|e| at(first)(e.into()))?;
                    let mut tally = Tally::default();
                    let at_ms = to_ms(change.at);
                    // By kind, in the order an export writes them (stable: a kind's records keep
                    // their order), so that each kind is one run of multi-row statements even
                    // when a file interleaves them (a user, its membership, the next user …).
                    let mut sorted = lines.to_vec();
                    sorted.sort_by_key(|l| replay_rank(&l.record));
                    let lines = &sorted[..];
                    let mut start = 0;
                    while start < lines.len() {
                        let kind = std::mem::discriminant(&lines[start].record);
                        let end = lines[start..].iter().position(|l| std::mem::discriminant(&l.record) != kind).map_or(lines.len(), |n| start + n);
                        let run = &lines[start..end];
                        match &run[0].record {
                            Record::User { .. } => users(tx, run, at_ms, &mut tally).await?,
                            Record::Group { .. } => groups(tx, run, at_ms, &mut tally).await?,
                            Record::Member { .. } => members(tx, run, &mut tally).await?,
                            _ => {
                                for line in run {
                                    one(tx, line, at_ms, &mut tally).await.map_err(at(line.line))?;
                                }
                            }
                        }
                        start = end;
                    }
                    let counts = tally.counts;
                    if counts.created + counts.updated == 0 {
                        return Ok(counts);
                    }
                    let mut change = change.clone();
                    change.action = Action::Import {
                        first_line: first,
                        last_line: last,
                        created: counts.created,
                        updated: counts.updated,
                        accounts: tally.accounts.into_iter().collect(),
                        groups: tally.groups.into_iter().collect(),
                    };
                    write_event(tx, rev, &change).await.map_err(at(first))?;
                    if let Some(notify) = <$store>::NOTIFY_SQL {
                        sqlx::query(notify).bind(rev).execute(&mut **tx).await.map_err(|e| at(first)(e.into()))?;
                    }
                    self.revision = Some(rev);
                    Ok(counts)
                }

                async fn commit(&mut self) -> Result<Option<i64>> {
                    let Some(tx) = self.tx.take() else { return Ok(None) };
                    match self.revision.take() {
                        Some(rev) => {
                            tx.commit().await?;
                            Ok(Some(rev))
                        }
                        // Nothing changed: no revision may go by without an event.
                        None => {
                            tx.rollback().await?;
                            Ok(None)
                        }
                    }
                }
            }

            fn replay_rank(record: &Record) -> u8 {
                match record {
                    Record::Header { .. } => 0,
                    Record::Tenant { .. } => 1,
                    Record::Role { .. } => 2,
                    Record::User { .. } => 3,
                    Record::Group { .. } => 4,
                    Record::ServiceAccount { .. } => 5,
                    Record::Member { .. } => 6,
                    Record::Binding { .. } => 7,
                    Record::End { .. } => 8,
                }
            }

            async fn write_event(tx: &mut Tx, revision: i64, change: &Change) -> Result<()> {
                sqlx::query(
                    "INSERT INTO audit_events (id, revision, at, actor_id, actor_name, action, target_kind, target_id, target_name, details) \
                     VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL, NULL, $7)",
                )
                .bind(Uuid::now_v7())
                .bind(revision)
                .bind(to_ms(change.at))
                .bind(change.actor.as_ref().map(|a| a.id))
                .bind(change.actor.as_ref().map(|a| a.name.to_string()))
                .bind(change.action.name())
                .bind(change.action.details().to_string())
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            /// `name → row` for the names in `names`, from `select` (which must end in `WHERE <col> IN`):
            /// one statement, the names bound as one JSON array.
            async fn rows_named(tx: &mut Tx, select: &str, names: &[&str]) -> Result<Vec<$row>> {
                if names.is_empty() {
                    return Ok(Vec::new());
                }
                let sql = format!("{select} ({})", <$db as BulkRows>::NAMES);
                Ok(sqlx::query(AssertSqlSafe(sql)).bind(json(names)?).fetch_all(&mut **tx).await?)
            }

            struct StoredUser {
                id: Uuid,
                kind: String,
                profile: Profile,
                disabled: bool,
                valid_from: Option<i64>,
                expires_at: Option<i64>,
                hash: Option<String>,
            }

            async fn users(tx: &mut Tx, run: &[ImportLine], at: i64, tally: &mut Tally) -> std::result::Result<(), LineError> {
                let first = run[0].line;
                let fail = |line: u64| move |error: StoreError| LineError { line, error };
                let names: Vec<&str> = run.iter().filter_map(|l| match &l.record { Record::User { name, .. } => Some(name.as_str()), _ => None }).collect();
                let rows = rows_named(
                    tx,
                    "SELECT a.id, a.kind, a.name, a.profile, a.disabled, a.valid_from, a.expires_at, p.hash FROM accounts a \
                     LEFT JOIN password_credentials p ON p.account_id = a.id WHERE a.name IN",
                    &names,
                )
                .await
                .map_err(fail(first))?;
                let mut stored: HashMap<String, StoredUser> = HashMap::with_capacity(rows.len());
                for r in &rows {
                    let read = || -> Result<(String, StoredUser)> {
                        let profile: String = r.try_get("profile")?;
                        Ok((r.try_get("name")?, StoredUser {
                            id: r.try_get("id")?,
                            kind: r.try_get("kind")?,
                            profile: serde_json::from_str(&profile).map_err(|e| decode("profile", e))?,
                            disabled: r.try_get("disabled")?,
                            valid_from: r.try_get("valid_from")?,
                            expires_at: r.try_get("expires_at")?,
                            hash: r.try_get("hash")?,
                        }))
                    };
                    let (name, user) = read().map_err(fail(first))?;
                    stored.insert(name, user);
                }
                let mut new_accounts: Vec<(Uuid, &Name, String, bool, Option<i64>, Option<i64>)> = Vec::new();
                let mut new_hashes: Vec<(Uuid, &str)> = Vec::new();
                for l in run {
                    let Record::User { name, profile, disabled, valid_from, expires_at, password_hash } = &l.record else { continue };
                    let (valid_from, expires_at) = (valid_from.map(to_ms), expires_at.map(to_ms));
                    let hash = password_hash.as_ref().map(Secret::expose);
                    match stored.get_mut(name.as_str()) {
                        None => {
                            let id = Uuid::now_v7();
                            new_accounts.push((id, name, json(profile).map_err(fail(l.line))?, *disabled, valid_from, expires_at));
                            if let Some(hash) = hash {
                                new_hashes.push((id, hash));
                            }
                            stored.insert(name.to_string(), StoredUser { id, kind: "user".into(), profile: profile.clone(), disabled: *disabled, valid_from, expires_at, hash: hash.map(str::to_owned) });
                            tally.counts.created += 1;
                            tally.accounts.insert(id);
                        }
                        Some(s) if s.kind != "user" => return Err(fail(l.line)(StoreError::NameTaken(name.to_string()))),
                        Some(s) => {
                            let same_row = s.profile == *profile && s.disabled == *disabled && s.valid_from == valid_from && s.expires_at == expires_at;
                            let same_hash = hash.is_none_or(|h| s.hash.as_deref() == Some(h));
                            if same_row && same_hash {
                                tally.counts.unchanged += 1;
                                continue;
                            }
                            update_user(tx, s.id, profile, *disabled, (valid_from, expires_at), if same_hash { None } else { hash }, !s.disabled && *disabled, at)
                                .await
                                .map_err(fail(l.line))?;
                            *s = StoredUser { id: s.id, kind: "user".into(), profile: profile.clone(), disabled: *disabled, valid_from, expires_at, hash: hash.map(str::to_owned).or(s.hash.take()) };
                            tally.counts.updated += 1;
                            tally.accounts.insert(s.id);
                        }
                    }
                }
                if !new_accounts.is_empty() {
                    // In name order: consecutive inserts then land beside each other in the name
                    // indexes instead of all over them.
                    new_accounts.sort_unstable_by(|a, b| a.1.as_str().cmp(b.1.as_str()));
                    let rows: Vec<_> = new_accounts
                        .iter()
                        .map(|(id, name, profile, disabled, from, until)| (hex(id), name.as_str(), profile.as_str(), *disabled, *from, *until))
                        .collect();
                    let sql = format!(
                        "INSERT INTO accounts (id, kind, name, profile, disabled, valid_from, expires_at, created_at, updated_at) \
                         SELECT {}, 'user', {}, {}, {}, {}, {}, CAST($2 AS BIGINT), CAST($2 AS BIGINT) FROM {}",
                        <$db as BulkRows>::uuid(0),
                        <$db as BulkRows>::text(1),
                        <$db as BulkRows>::text(2),
                        <$db as BulkRows>::boolean(3),
                        <$db as BulkRows>::bigint(4),
                        <$db as BulkRows>::bigint(5),
                        <$db as BulkRows>::ROWS,
                    );
                    sqlx::query(AssertSqlSafe(sql))
                        .bind(rows_param(&rows).map_err(fail(first))?)
                        .bind(at)
                        .execute(&mut **tx)
                        .await
                        .map_err(|e| fail(first)(e.into()))?;
                }
                if !new_hashes.is_empty() {
                    let rows: Vec<_> = new_hashes.iter().map(|(id, hash)| (hex(id), *hash)).collect();
                    let sql = format!(
                        "INSERT INTO password_credentials (account_id, hash, updated_at) SELECT {}, {}, CAST($2 AS BIGINT) FROM {}",
                        <$db as BulkRows>::uuid(0),
                        <$db as BulkRows>::text(1),
                        <$db as BulkRows>::ROWS,
                    );
                    sqlx::query(AssertSqlSafe(sql))
                        .bind(rows_param(&rows).map_err(fail(first))?)
                        .bind(at)
                        .execute(&mut **tx)
                        .await
                        .map_err(|e| fail(first)(e.into()))?;
                }
                Ok(())
            }

            #[allow(clippy::too_many_arguments)]
            async fn update_user(
                tx: &mut Tx,
                id: Uuid,
                profile: &Profile,
                disabled: bool,
                window: (Option<i64>, Option<i64>),
                hash: Option<&str>,
                end_sessions: bool,
                at: i64,
            ) -> Result<()> {
                sqlx::query("UPDATE accounts SET profile = $2, disabled = $3, valid_from = $4, expires_at = $5, updated_at = $6 WHERE id = $1")
                    .bind(id)
                    .bind(json(profile)?)
                    .bind(disabled)
                    .bind(window.0)
                    .bind(window.1)
                    .bind(at)
                    .execute(&mut **tx)
                    .await?;
                if let Some(hash) = hash {
                    sqlx::query(
                        "INSERT INTO password_credentials (account_id, hash, updated_at) VALUES ($1, $2, $3) \
                         ON CONFLICT (account_id) DO UPDATE SET hash = excluded.hash, updated_at = excluded.updated_at",
                    )
                    .bind(id)
                    .bind(hash)
                    .bind(at)
                    .execute(&mut **tx)
                    .await?;
                }
                // As when the API disables a user: a disabled account keeps no session.
                if end_sessions {
                    sqlx::query("DELETE FROM sessions WHERE account_id = $1").bind(id).execute(&mut **tx).await?;
                }
                Ok(())
            }

            async fn groups(tx: &mut Tx, run: &[ImportLine], at: i64, tally: &mut Tally) -> std::result::Result<(), LineError> {
                let first = run[0].line;
                let fail = |line: u64| move |error: StoreError| LineError { line, error };
                let names: Vec<&str> = run.iter().filter_map(|l| match &l.record { Record::Group { name, .. } => Some(name.as_str()), _ => None }).collect();
                let rows = rows_named(tx, "SELECT id, name, description FROM groups WHERE name IN", &names).await.map_err(fail(first))?;
                let mut stored: HashMap<String, (Uuid, Option<String>)> = HashMap::with_capacity(rows.len());
                for r in &rows {
                    let read = || -> Result<(String, (Uuid, Option<String>))> { Ok((r.try_get("name")?, (r.try_get("id")?, r.try_get("description")?))) };
                    let (name, row) = read().map_err(fail(first))?;
                    stored.insert(name, row);
                }
                let mut new_groups: Vec<(Uuid, &Name, Option<&str>)> = Vec::new();
                for l in run {
                    let Record::Group { name, description } = &l.record else { continue };
                    match stored.get_mut(name.as_str()) {
                        None => {
                            let id = Uuid::now_v7();
                            new_groups.push((id, name, description.as_deref()));
                            stored.insert(name.to_string(), (id, description.clone()));
                            tally.counts.created += 1;
                            tally.groups.insert(id);
                        }
                        Some((_, stored_description)) if stored_description == description => tally.counts.unchanged += 1,
                        Some((id, stored_description)) => {
                            sqlx::query("UPDATE groups SET description = $2, updated_at = $3 WHERE id = $1")
                                .bind(*id)
                                .bind(description.as_deref())
                                .bind(at)
                                .execute(&mut **tx)
                                .await
                                .map_err(|e| fail(l.line)(e.into()))?;
                            stored_description.clone_from(description);
                            tally.counts.updated += 1;
                            tally.groups.insert(*id);
                        }
                    }
                }
                if !new_groups.is_empty() {
                    new_groups.sort_unstable_by(|a, b| a.1.as_str().cmp(b.1.as_str()));
                    let rows: Vec<_> = new_groups.iter().map(|(id, name, description)| (hex(id), name.as_str(), *description)).collect();
                    let sql = format!(
                        "INSERT INTO groups (id, name, description, created_at, updated_at) SELECT {}, {}, {}, CAST($2 AS BIGINT), CAST($2 AS BIGINT) FROM {}",
                        <$db as BulkRows>::uuid(0),
                        <$db as BulkRows>::text(1),
                        <$db as BulkRows>::text(2),
                        <$db as BulkRows>::ROWS,
                    );
                    sqlx::query(AssertSqlSafe(sql))
                        .bind(rows_param(&rows).map_err(fail(first))?)
                        .bind(at)
                        .execute(&mut **tx)
                        .await
                        .map_err(|e| fail(first)(e.into()))?;
                }
                Ok(())
            }

            async fn members(tx: &mut Tx, run: &[ImportLine], tally: &mut Tally) -> std::result::Result<(), LineError> {
                let first = run[0].line;
                let fail = |line: u64| move |error: StoreError| LineError { line, error };
                let mut parsed = Vec::with_capacity(run.len());
                for l in run {
                    let Record::Member { group, member } = &l.record else { continue };
                    let member = NamedSubject::parse("member", member).map_err(|e| fail(l.line)(StoreError::NotFound(e.to_string())))?;
                    parsed.push((l.line, group, member));
                }
                let group_names: Vec<&str> = parsed.iter().flat_map(|(_, g, m)| {
                    std::iter::once(g.as_str()).chain((m.kind == SubjectKind::Group).then_some(m.name.as_str()))
                }).collect::<BTreeSet<_>>().into_iter().collect();
                let account_names: Vec<&str> =
                    parsed.iter().filter(|(_, _, m)| m.kind != SubjectKind::Group).map(|(_, _, m)| m.name.as_str()).collect::<BTreeSet<_>>().into_iter().collect();
                let mut group_ids: HashMap<String, Uuid> = HashMap::new();
                for r in rows_named(tx, "SELECT id, name FROM groups WHERE name IN", &group_names).await.map_err(fail(first))? {
                    group_ids.insert(r.try_get("name").map_err(|e| fail(first)(e.into()))?, r.try_get("id").map_err(|e| fail(first)(e.into()))?);
                }
                let mut account_ids: HashMap<String, (Uuid, String)> = HashMap::new();
                for r in rows_named(tx, "SELECT id, kind, name FROM accounts WHERE name IN", &account_names).await.map_err(fail(first))? {
                    let read = || -> Result<(String, (Uuid, String))> { Ok((r.try_get("name")?, (r.try_get("id")?, r.try_get("kind")?))) };
                    let (name, row) = read().map_err(fail(first))?;
                    account_ids.insert(name, row);
                }
                let mut account_rows: Vec<(u64, Uuid, Uuid)> = Vec::new();
                for (line, group, member) in &parsed {
                    let group_id = *group_ids.get(group.as_str()).ok_or_else(|| fail(*line)(StoreError::NotFound(format!("group {group}"))))?;
                    if member.kind == SubjectKind::Group {
                        let inner = *group_ids.get(member.name.as_str()).ok_or_else(|| fail(*line)(StoreError::NotFound(member.to_string())))?;
                        if nest(tx, group_id, inner, group, &member.name).await.map_err(fail(*line))? {
                            tally.counts.created += 1;
                            tally.groups.insert(group_id);
                        } else {
                            tally.counts.unchanged += 1;
                        }
                        continue;
                    }
                    match account_ids.get(member.name.as_str()) {
                        Some((id, kind)) if *kind == member.kind.as_str() => account_rows.push((*line, group_id, *id)),
                        _ => return Err(fail(*line)(StoreError::NotFound(member.to_string()))),
                    }
                }
                if !account_rows.is_empty() {
                    let first_member = account_rows[0].0;
                    // By group: the rows then land together in the indexes that lead with it.
                    account_rows.sort_unstable_by_key(|(_, group, account)| (*group, *account));
                    let rows: Vec<_> = account_rows.iter().map(|(_, group, account)| (hex(group), hex(account))).collect();
                    // `WHERE true`: SQLite needs a WHERE before an upsert's ON CONFLICT in an INSERT … SELECT.
                    let sql = format!(
                        "INSERT INTO group_members (group_id, member_account_id) SELECT {}, {} FROM {} WHERE true \
                         ON CONFLICT (group_id, member_account_id) WHERE member_account_id IS NOT NULL DO NOTHING RETURNING group_id",
                        <$db as BulkRows>::uuid(0),
                        <$db as BulkRows>::uuid(1),
                        <$db as BulkRows>::ROWS,
                    );
                    let added = sqlx::query(AssertSqlSafe(sql))
                        .bind(rows_param(&rows).map_err(fail(first_member))?)
                        .fetch_all(&mut **tx)
                        .await
                        .map_err(|e| fail(first_member)(e.into()))?;
                    for r in &added {
                        tally.groups.insert(r.try_get("group_id").map_err(|e| fail(first_member)(e.into()))?);
                    }
                    tally.counts.created += added.len() as u64;
                    tally.counts.unchanged += (account_rows.len() - added.len()) as u64;
                }
                Ok(())
            }

            /// Nests `inner` in `group` unless it is there already; refuses a cycle.
            async fn nest(tx: &mut Tx, group: Uuid, inner: Uuid, group_name: &Name, inner_name: &Name) -> Result<bool> {
                let present: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM group_members WHERE group_id = $1 AND member_group_id = $2)")
                    .bind(group)
                    .bind(inner)
                    .fetch_one(&mut **tx)
                    .await?;
                if present {
                    return Ok(false);
                }
                let sql = format!("{SUBGROUPS_OF_1} SELECT EXISTS (SELECT 1 FROM sub WHERE gid = $2)");
                let cycle: bool = sqlx::query_scalar(AssertSqlSafe(sql)).bind(inner).bind(group).fetch_one(&mut **tx).await?;
                if cycle {
                    return Err(StoreError::Cycle { group: group_name.clone(), member: inner_name.clone() });
                }
                sqlx::query("INSERT INTO group_members (group_id, member_group_id) VALUES ($1, $2)").bind(group).bind(inner).execute(&mut **tx).await?;
                Ok(true)
            }

            /// A subject named in a record, as stored: its id, or not found.
            async fn resolve(tx: &mut Tx, raw: &str) -> Result<Subject> {
                let named = NamedSubject::parse("subject", raw).map_err(|e| StoreError::NotFound(e.to_string()))?;
                let id: Option<Uuid> = match named.kind {
                    SubjectKind::Group => sqlx::query_scalar("SELECT id FROM groups WHERE name = $1").bind(named.name.as_str()).fetch_optional(&mut **tx).await?,
                    kind => sqlx::query_scalar("SELECT id FROM accounts WHERE name = $1 AND kind = $2")
                        .bind(named.name.as_str())
                        .bind(kind.as_str())
                        .fetch_optional(&mut **tx)
                        .await?,
                };
                let id = id.ok_or_else(|| StoreError::NotFound(named.to_string()))?;
                Ok(Subject { kind: named.kind, id, name: named.name })
            }

            fn split(subject: &Subject) -> (Option<Uuid>, Option<Uuid>) {
                match subject.kind {
                    SubjectKind::Group => (None, Some(subject.id)),
                    _ => (Some(subject.id), None),
                }
            }

            /// Tenants, roles, service accounts and bindings: few, one statement or two each.
            async fn one(tx: &mut Tx, line: &ImportLine, at: i64, tally: &mut Tally) -> Result<()> {
                let counts = &mut tally.counts;
                match &line.record {
                    Record::Tenant { name, description } => {
                        let stored: Option<Option<String>> =
                            sqlx::query_scalar("SELECT description FROM tenants WHERE name = $1").bind(name.as_str()).fetch_optional(&mut **tx).await?;
                        match stored {
                            None => {
                                sqlx::query("INSERT INTO tenants (name, description, created_at) VALUES ($1, $2, $3)")
                                    .bind(name.as_str())
                                    .bind(description.as_deref())
                                    .bind(at)
                                    .execute(&mut **tx)
                                    .await?;
                                counts.created += 1;
                            }
                            Some(d) if d == *description => counts.unchanged += 1,
                            Some(_) => {
                                sqlx::query("UPDATE tenants SET description = $2 WHERE name = $1").bind(name.as_str()).bind(description.as_deref()).execute(&mut **tx).await?;
                                counts.updated += 1;
                            }
                        }
                    }
                    Record::Role { id, tenant, name, description, permissions } => {
                        let row = sqlx::query("SELECT tenant, name, description, permissions FROM roles WHERE id = $1")
                            .bind(id.as_str())
                            .fetch_optional(&mut **tx)
                            .await?;
                        let permissions_json = json(permissions)?;
                        match row {
                            None => {
                                sqlx::query(
                                    "INSERT INTO roles (id, tenant, name, description, permissions, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
                                )
                                .bind(id.as_str())
                                .bind(tenant.as_str())
                                .bind(name)
                                .bind(description.as_deref())
                                .bind(&permissions_json)
                                .bind(at)
                                .execute(&mut **tx)
                                .await
                                .map_err(|e| if is_foreign_key_violation(&e) { StoreError::NotFound(format!("tenant {tenant}")) } else { e.into() })?;
                                counts.created += 1;
                            }
                            Some(r) => {
                                let stored_tenant: String = r.try_get("tenant")?;
                                if stored_tenant != tenant.as_str() {
                                    return Err(StoreError::NameTaken(format!("{id} (a role of tenant {stored_tenant})")));
                                }
                                let stored_permissions: String = r.try_get("permissions")?;
                                let stored_permissions: Vec<String> = serde_json::from_str(&stored_permissions).map_err(|e| decode("role permissions", e))?;
                                let same = r.try_get::<String, _>("name")? == *name
                                    && r.try_get::<Option<String>, _>("description")? == *description
                                    && stored_permissions == *permissions;
                                if same {
                                    counts.unchanged += 1;
                                } else {
                                    sqlx::query("UPDATE roles SET name = $2, description = $3, permissions = $4, updated_at = $5 WHERE id = $1")
                                        .bind(id.as_str())
                                        .bind(name)
                                        .bind(description.as_deref())
                                        .bind(&permissions_json)
                                        .bind(at)
                                        .execute(&mut **tx)
                                        .await?;
                                    counts.updated += 1;
                                }
                            }
                        }
                    }
                    Record::ServiceAccount { name, description, disabled, manager } => {
                        let manager = match manager {
                            Some(m) => Some(resolve(tx, m).await?),
                            None => None,
                        };
                        let (manager_account, manager_group) = manager.as_ref().map_or((None, None), split);
                        let row = sqlx::query("SELECT id, kind, description, disabled, manager_account_id, manager_group_id FROM accounts WHERE name = $1")
                            .bind(name.as_str())
                            .fetch_optional(&mut **tx)
                            .await?;
                        match row {
                            None => {
                                let id = Uuid::now_v7();
                                sqlx::query(
                                    "INSERT INTO accounts (id, kind, name, profile, description, manager_account_id, manager_group_id, disabled, created_at, updated_at) \
                                     VALUES ($1, 'service_account', $2, '{}', $3, $4, $5, $6, $7, $7)",
                                )
                                .bind(id)
                                .bind(name.as_str())
                                .bind(description.as_deref())
                                .bind(manager_account)
                                .bind(manager_group)
                                .bind(*disabled)
                                .bind(at)
                                .execute(&mut **tx)
                                .await?;
                                counts.created += 1;
                                tally.accounts.insert(id);
                            }
                            Some(r) => {
                                if r.try_get::<String, _>("kind")? != "service_account" {
                                    return Err(StoreError::NameTaken(name.to_string()));
                                }
                                let id: Uuid = r.try_get("id")?;
                                let same = r.try_get::<Option<String>, _>("description")? == *description
                                    && r.try_get::<bool, _>("disabled")? == *disabled
                                    && r.try_get::<Option<Uuid>, _>("manager_account_id")? == manager_account
                                    && r.try_get::<Option<Uuid>, _>("manager_group_id")? == manager_group;
                                if same {
                                    counts.unchanged += 1;
                                } else {
                                    sqlx::query(
                                        "UPDATE accounts SET description = $2, disabled = $3, manager_account_id = $4, manager_group_id = $5, updated_at = $6 WHERE id = $1",
                                    )
                                    .bind(id)
                                    .bind(description.as_deref())
                                    .bind(*disabled)
                                    .bind(manager_account)
                                    .bind(manager_group)
                                    .bind(at)
                                    .execute(&mut **tx)
                                    .await?;
                                    counts.updated += 1;
                                    tally.accounts.insert(id);
                                }
                            }
                        }
                    }
                    Record::Binding { role, tenant, subject, namespaces } => {
                        let subject = resolve(tx, subject).await?;
                        let (account, group) = split(&subject);
                        let namespaces_json = json(namespaces)?;
                        let exists: bool = sqlx::query_scalar(
                            "SELECT EXISTS (SELECT 1 FROM bindings WHERE role_id = $1 AND tenant = $2 AND (subject_account_id = $3 OR subject_group_id = $3) AND namespaces = $4)",
                        )
                        .bind(role.as_str())
                        .bind(tenant.as_str())
                        .bind(subject.id)
                        .bind(&namespaces_json)
                        .fetch_one(&mut **tx)
                        .await?;
                        if exists {
                            counts.unchanged += 1;
                        } else {
                            sqlx::query(
                                "INSERT INTO bindings (id, role_id, subject_account_id, subject_group_id, tenant, namespaces, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                            )
                            .bind(Uuid::now_v7())
                            .bind(role.as_str())
                            .bind(account)
                            .bind(group)
                            .bind(tenant.as_str())
                            .bind(&namespaces_json)
                            .bind(at)
                            .execute(&mut **tx)
                            .await
                            .map_err(|e| if is_foreign_key_violation(&e) { StoreError::NotFound(format!("tenant {tenant}")) } else { e.into() })?;
                            counts.created += 1;
                            if let Some(g) = group {
                                tally.groups.insert(g);
                            }
                            if let Some(a) = account {
                                tally.accounts.insert(a);
                            }
                        }
                    }
                    // Users, groups and members are applied in runs; header and end change nothing.
                    Record::Header { .. } | Record::End { .. } | Record::User { .. } | Record::Group { .. } | Record::Member { .. } => {}
                }
                Ok(())
            }
        }
    };
}

pub(crate) use impl_transfer;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_number_their_parameters() {
        assert_eq!(placeholders(3, 2), "$3, $4");
    }
}
