//! Bulk export and import of the whole directory (the line format is `warden_core::transfer`).
//!
//! Who may do it:
//! - exporting without credentials needs the read permission of everything exported, held
//!   instance-wide (`warden:users:read`, `service_accounts:read`, `groups:read`,
//!   `tenants:read`, `roles:read`, `bindings:read`), as `auditor` and `idm_superuser` do; with
//!   credentials (password hashes) it needs idm_superuser, through an elevated session or a
//!   read-write token;
//! - importing needs `warden:import:write` (held only through the `warden` root, that is by
//!   idm_superuser, unless the operator binds a role carrying it) in a writable session or a
//!   read-write token. Whatever the API would refuse to anyone but an idm_superuser stays
//!   refused here: password hashes, roles with `warden:*` permissions and bindings of
//!   privileged roles, memberships of groups that hold an administrative role, and changes to
//!   accounts that hold one.
//!
//! An import reads the body line by line and never holds more than one batch
//! ([`BATCH_LINES`]); each batch is one transaction with one revision and one
//! `import.batch` audit event listing the ids of the accounts and groups it touched. One
//! event per batch, not per object: it is one row instead of thousands per transaction, which
//! is what lets an import reach tens of thousands of users a second, while the log still says
//! which objects changed. It stops at the first bad line, keeping the batches before it.

use std::collections::{HashMap, HashSet};

use time::OffsetDateTime;
use tokio::sync::mpsc;
use warden_core::access::{Permission, Principal};
use warden_core::api::ImportSummary;
use warden_core::authz::{Role, RoleSource, is_privileged_binding, is_privileged_permission};
use warden_core::model::{Subject, SubjectKind};
use warden_core::transfer::{FORMAT_VERSION, MAX_LINE_BYTES, Record};
use warden_core::{CoreError, Name};
use warden_store::{Action, Change, ImportCounts, ImportLine, Importer, LineError, StoreError};

use super::{Context, Result, ServiceError};

/// Records per transaction. Large, because what a batch costs beyond its rows is mostly the
/// index pages it dirties: names arrive in no order, so each new name lands on a different
/// page of the name indexes, and every page a batch touches is written out again at its
/// commit (on SQLite to the WAL and then the database file; on PostgreSQL to its WAL). At 1M
/// users, batches of 5,000 lines wrote about 18 GB to import 300 MB; the larger the batch,
/// the more of its names share a page. Bounded so that a batch, and the one being read
/// beside it, stay a few tens of megabytes in memory, and its audit event's list of ids
/// stays readable.
pub const BATCH_LINES: usize = 50_000;

/// Lines of an export in flight between the database and the client.
const EXPORT_BUFFER: usize = 1024;

#[derive(Clone)]
pub struct Transfer {
    ctx: Context,
}

fn at_line(line: u64, error: impl Into<ServiceError>) -> ServiceError {
    ServiceError::AtLine { line, error: Box::new(error.into()) }
}

fn superuser_for(actor: &Principal, what: impl std::fmt::Display) -> Result<()> {
    if actor.holds(Permission::Superuser) { Ok(()) } else { Err(CoreError::HighPrivilege(what.to_string()).into()) }
}

impl Transfer {
    pub fn new(ctx: Context) -> Self {
        Self { ctx }
    }

    /// Checks that `actor` may export (with credentials or not), before anything is sent.
    pub fn may_export(actor: &Principal, credentials: bool) -> Result<()> {
        if credentials {
            superuser_for(actor, "password hashes")?;
            // Hashes are the most sensitive thing Warden holds: they leave only through a
            // credential that may write now (a session just re-authenticated, a read-write
            // token), never through a read-only session that happens to be a superuser's.
            if !actor.elevated {
                return Err(CoreError::NotElevated.into());
            }
            return Ok(());
        }
        for p in [
            Permission::UsersRead,
            Permission::ServiceAccountsRead,
            Permission::GroupsRead,
            Permission::TenantsRead,
            Permission::RolesRead,
            Permission::BindingsRead,
        ] {
            actor.require(p)?;
        }
        Ok(())
    }

    /// The export's lines (each with its newline), streamed from one read transaction: the
    /// header, every record, and the end line. A failure half-way ends the stream with an
    /// error, and the end line is then missing, so that a cut-off file is never taken for a
    /// whole one.
    pub fn export(&self, actor: &Principal, credentials: bool) -> Result<mpsc::Receiver<Result<String>>> {
        Self::may_export(actor, credentials)?;
        let (lines_tx, lines_rx) = mpsc::channel::<Result<String>>(EXPORT_BUFFER);
        let (records_tx, mut records_rx) = mpsc::channel::<Record>(EXPORT_BUFFER);
        let store = self.ctx.store.clone();
        let reader = tokio::spawn(async move { store.export(credentials, records_tx).await });
        tokio::spawn(async move {
            let line = |r: &Record| format!("{}\n", r.to_line());
            if lines_tx.send(Ok(line(&Record::Header { format: FORMAT_VERSION }))).await.is_err() {
                return;
            }
            while let Some(record) = records_rx.recv().await {
                if lines_tx.send(Ok(line(&record))).await.is_err() {
                    return;
                }
            }
            let end = match reader.await {
                Ok(Ok(records)) => Ok(line(&Record::End { records })),
                Ok(Err(e)) => Err(e.into()),
                Err(e) => Err(ServiceError::Internal(format!("export task failed: {e}"))),
            };
            if let Err(e) = &end {
                tracing::error!(error = %e, "export failed half-way");
            }
            let _ = lines_tx.send(end).await;
        });
        Ok(lines_rx)
    }

    /// Checks that `actor` may import at all (before the body is read).
    pub fn may_import(actor: &Principal) -> Result<()> {
        if actor.holds(Permission::Superuser) {
            if !actor.elevated {
                return Err(CoreError::NotElevated.into());
            }
            return Ok(());
        }
        Ok(actor.require(Permission::ImportWrite)?)
    }

    /// Imports the lines that `chunks` delivers (pieces of the body, split anywhere), in
    /// batches of [`BATCH_LINES`]. With `dry_run` every batch is applied in one transaction
    /// that is rolled back at the end: every rule and reference is checked, nothing is
    /// written (and the database's writer is held until the end).
    pub async fn import<B: AsRef<[u8]>, E: std::fmt::Display>(
        &self,
        actor: &Principal,
        mut chunks: impl futures_util::Stream<Item = std::result::Result<B, E>> + Unpin + Send,
        dry_run: bool,
    ) -> Result<ImportSummary> {
        use futures_util::StreamExt;
        Self::may_import(actor)?;
        let mut run = ImportRun::new(self, actor, dry_run).await?;
        let mut lines = LineSplitter::default();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|e| CoreError::validation("body", format!("the upload broke off: {e}")))?;
            for line in lines.push(chunk.as_ref()) {
                let result = match line {
                    Ok(text) => run.line(&text).await,
                    Err(too_long) => Err(at_line(run.summary.lines + 1, too_long)),
                };
                if let Err(e) = result {
                    return self.finish(run, Err(e)).await;
                }
            }
        }
        let result = match lines.rest() {
            Some(Ok(text)) => run.line(&text).await,
            Some(Err(too_long)) => Err(at_line(run.summary.lines + 1, too_long)),
            None => Ok(()),
        };
        let result = match result {
            Ok(()) => run.end().await,
            Err(e) => Err(e),
        };
        self.finish(run, result).await
    }

    /// Brings the snapshot up to date if anything was committed, then answers.
    async fn finish(&self, mut run: ImportRun<'_>, result: Result<()>) -> Result<ImportSummary> {
        // The batches already handed to the writer precede whatever stopped the reader: they
        // are applied (and their own refusal, an earlier line, wins) before the answer.
        let drained = run.drain().await;
        let result = drained.and(result);
        let summary = run.summary.clone();
        drop(run);
        if summary.revision.is_some() {
            self.ctx.authz.refresh().await?;
        }
        if let Err(e) = &result {
            tracing::info!(error = %e, committed_batches = summary.batches, "import stopped");
        }
        result.map(|()| summary)
    }
}

/// One import in progress: the line count, the batch being filled and what the file has
/// declared so far that later lines may refer to (roles, before the index knows them).
struct ImportRun<'a> {
    service: &'a Transfer,
    actor: &'a Principal,
    writer: Writer,
    today: time::Date,
    batch: Vec<ImportLine>,
    summary: ImportSummary,
    /// Records read since the header.
    records: u64,
    ended: bool,
    roles: HashMap<Name, Role>,
    superuser: bool,
}

impl<'a> ImportRun<'a> {
    async fn new(service: &'a Transfer, actor: &'a Principal, dry_run: bool) -> Result<Self> {
        Ok(Self {
            service,
            actor,
            writer: Writer::spawn(service.ctx.store.importer().await?, dry_run),
            today: service.ctx.now().date(),
            batch: Vec::with_capacity(BATCH_LINES),
            summary: ImportSummary { dry_run, ..ImportSummary::default() },
            records: 0,
            ended: false,
            roles: HashMap::new(),
            superuser: actor.holds(Permission::Superuser),
        })
    }

    fn now(&self) -> OffsetDateTime {
        self.service.ctx.now()
    }

    async fn line(&mut self, text: &str) -> Result<()> {
        self.summary.lines += 1;
        let n = self.summary.lines;
        if text.trim().is_empty() {
            return Err(at_line(n, CoreError::validation("record", "empty line")));
        }
        let record = Record::parse_line(text).and_then(|r| r.validate(self.today)).map_err(|e| at_line(n, e))?;
        match (&record, n, self.ended) {
            (_, _, true) => return Err(at_line(n, CoreError::validation("record", "nothing may follow the end line"))),
            (Record::Header { .. }, 1, _) => return Ok(()),
            (Record::Header { .. }, _, _) => return Err(at_line(n, CoreError::validation("record", "a second header"))),
            (_, 1, _) => {
                return Err(at_line(
                    n,
                    CoreError::validation(
                        "record",
                        format!("the first line must be the header {{\"kind\":\"header\",\"format\":{FORMAT_VERSION}}}"),
                    ),
                ));
            }
            (Record::End { records }, _, _) => {
                if *records != self.records {
                    return Err(at_line(
                        n,
                        CoreError::validation("records", format!("the end line counts {records}, the file has {}", self.records)),
                    ));
                }
                self.ended = true;
                return Ok(());
            }
            _ => {}
        }
        self.records += 1;
        self.check(&record).map_err(|e| at_line(n, e))?;
        self.batch.push(ImportLine { line: n, record });
        if self.batch.len() >= BATCH_LINES {
            self.flush().await?;
        }
        Ok(())
    }

    async fn end(&mut self) -> Result<()> {
        if self.summary.lines == 0 {
            return Err(at_line(1, CoreError::validation("record", "the file is empty")));
        }
        self.flush().await?;
        self.drain().await
    }

    /// Waits for every batch handed to the writer; the first refusal among them, if any. (A
    /// writer that stopped at a refusal leaves the batches after it unanswered and unapplied.)
    async fn drain(&mut self) -> Result<()> {
        self.writer.batches = None;
        let mut first = Ok(());
        while self.writer.in_flight > 0 {
            let Some(outcome) = self.writer.done.recv().await else { break };
            if let Err(e) = self.record(outcome)
                && first.is_ok()
            {
                first = Err(e);
            }
        }
        self.writer.in_flight = 0;
        if let Some(task) = self.writer.task.take() {
            // The writer ends (rolling back what it did not commit) once its queue is closed.
            let _ = task.await;
        }
        first
    }

    /// Waits for the oldest batch in flight.
    async fn collect(&mut self) -> Result<()> {
        let Some(outcome) = self.writer.done.recv().await else {
            self.writer.in_flight = 0;
            return Err(ServiceError::Internal("the import writer stopped".into()));
        };
        self.record(outcome)
    }

    fn record(&mut self, outcome: Result<(ImportCounts, Option<i64>)>) -> Result<()> {
        self.writer.in_flight = self.writer.in_flight.saturating_sub(1);
        let (counts, revision) = outcome?;
        if revision.is_some() {
            self.summary.revision = revision;
        }
        self.summary.batches += 1;
        self.summary.created += counts.created;
        self.summary.updated += counts.updated;
        self.summary.unchanged += counts.unchanged;
        Ok(())
    }

    /// The access rules of each record that need no database.
    fn check(&mut self, record: &Record) -> Result<()> {
        let config = &self.service.ctx.config;
        match record {
            Record::User { password_hash: Some(_), .. } if !self.superuser => superuser_for(self.actor, "password hashes"),
            Record::Role { id, tenant, permissions, .. } => {
                if let Some(why) = config.dynamic_roles_off_because() {
                    return Err(ServiceError::DynamicRolesDisabled(why));
                }
                if let Some(p) = permissions.iter().find(|p| is_privileged_permission(p)) {
                    superuser_for(self.actor, format!("permission {p}"))?;
                }
                if self.actor.index.role(id).is_some_and(|r| r.source != RoleSource::Dynamic) {
                    return Err(StoreError::NameTaken(id.to_string()).into());
                }
                let role = Role {
                    id: id.clone(),
                    tenant: Some(tenant.clone()),
                    name: String::new(),
                    description: None,
                    permissions: permissions.clone(),
                    source: RoleSource::Dynamic,
                };
                self.roles.insert(id.clone(), role);
                Ok(())
            }
            Record::Binding { role, tenant, .. } => {
                let role = self
                    .roles
                    .get(role)
                    .or_else(|| self.actor.index.role(role))
                    .ok_or_else(|| ServiceError::NotFound(format!("role {role}")))?;
                if let Some(role_tenant) = &role.tenant
                    && role_tenant != tenant
                {
                    return Err(
                        CoreError::validation("role", format!("role {} belongs to tenant {role_tenant}, not {tenant}", role.id)).into()
                    );
                }
                if is_privileged_binding(role, tenant.as_str()) {
                    superuser_for(self.actor, format!("role {}", role.id))?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// The access rules that depend on what exists: changes to accounts and memberships of
    /// groups that hold an administrative role need idm_superuser.
    async fn check_existing(&mut self) -> Result<()> {
        if self.superuser {
            return Ok(());
        }
        let mut names: HashSet<Name> = HashSet::new();
        for l in &self.batch {
            match &l.record {
                Record::User { name, .. } | Record::ServiceAccount { name, .. } => names.insert(name.clone()),
                Record::Member { group, .. } => names.insert(group.clone()),
                _ => false,
            };
        }
        let names: Vec<Name> = names.into_iter().collect();
        let privileged: HashMap<(bool, Name), Subject> = self
            .service
            .ctx
            .store
            .subjects_with_names(&names)
            .await?
            .into_iter()
            .filter(|s| self.actor.index.holds_administrative_role((s.kind, s.id)))
            .map(|s| ((s.kind == SubjectKind::Group, s.name.clone()), s))
            .collect();
        if privileged.is_empty() {
            return Ok(());
        }
        for l in &self.batch {
            let key = match &l.record {
                Record::User { name, .. } | Record::ServiceAccount { name, .. } => (false, name.clone()),
                Record::Member { group, .. } => (true, group.clone()),
                _ => continue,
            };
            if let Some(subject) = privileged.get(&key) {
                return Err(at_line(l.line, CoreError::HighPrivilege(subject.to_string())));
            }
        }
        Ok(())
    }

    /// Hands the batch to the writer; with one batch already being written, first waits for
    /// it, so that one batch is written while the next is read and checked.
    async fn flush(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        self.check_existing().await?;
        let action = Action::Import { first_line: 0, last_line: 0, created: 0, updated: 0, accounts: vec![], groups: vec![] };
        let change = Change::new(self.now(), Some(&self.actor.account), action, None);
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH_LINES));
        let sent = match &self.writer.batches {
            Some(queue) => queue.send((change, batch)).await.is_ok(),
            None => false,
        };
        if sent {
            self.writer.in_flight += 1;
        }
        if self.writer.in_flight >= 2 || !sent {
            self.collect().await?;
        }
        tracing::debug!(lines = self.summary.lines, created = self.summary.created, "import batch queued");
        Ok(())
    }
}

/// Applies batches in order on a task of its own, stopping at the first refused one (whose
/// transaction, and in a dry run every transaction, is rolled back when it ends).
struct Writer {
    batches: Option<mpsc::Sender<(Change, Vec<ImportLine>)>>,
    done: mpsc::Receiver<Result<(ImportCounts, Option<i64>)>>,
    task: Option<tokio::task::JoinHandle<()>>,
    in_flight: usize,
}

impl Writer {
    fn spawn(mut importer: Box<dyn Importer>, dry_run: bool) -> Self {
        let (batches, mut queue) = mpsc::channel::<(Change, Vec<ImportLine>)>(1);
        let (results, done) = mpsc::channel(2);
        let task = tokio::spawn(async move {
            while let Some((change, lines)) = queue.recv().await {
                let outcome = async {
                    let counts = importer.apply(&change, &lines).await.map_err(|LineError { line, error }| at_line(line, error))?;
                    let revision = if dry_run { None } else { importer.commit().await? };
                    Ok((counts, revision))
                }
                .await;
                let refused = outcome.is_err();
                if results.send(outcome).await.is_err() || refused {
                    return;
                }
            }
        });
        Self { batches: Some(batches), done, task: Some(task), in_flight: 0 }
    }
}

/// Splits a byte stream into lines (`\n`, an optional `\r` before it), refusing a line longer
/// than [`MAX_LINE_BYTES`] or not UTF-8.
#[derive(Default)]
struct LineSplitter {
    partial: Vec<u8>,
}

impl LineSplitter {
    fn push(&mut self, mut chunk: &[u8]) -> Vec<Result<String, CoreError>> {
        let mut lines = Vec::new();
        while let Some(end) = chunk.iter().position(|b| *b == b'\n') {
            self.partial.extend_from_slice(&chunk[..end]);
            chunk = &chunk[end + 1..];
            lines.push(self.take());
        }
        self.partial.extend_from_slice(chunk);
        if self.partial.len() > MAX_LINE_BYTES {
            lines.push(Err(CoreError::validation("record", format!("a line is longer than {MAX_LINE_BYTES} bytes"))));
            self.partial.clear();
        }
        lines
    }

    fn take(&mut self) -> Result<String, CoreError> {
        let mut bytes = std::mem::take(&mut self.partial);
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        if bytes.len() > MAX_LINE_BYTES {
            return Err(CoreError::validation("record", format!("a line is longer than {MAX_LINE_BYTES} bytes")));
        }
        String::from_utf8(bytes).map_err(|_| CoreError::validation("record", "not UTF-8"))
    }

    /// The last line, if the body did not end with a newline.
    fn rest(&mut self) -> Option<Result<String, CoreError>> {
        (!self.partial.is_empty()).then(|| self.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_core::transfer::NamedSubject;

    #[test]
    fn lines_are_split_wherever_the_chunks_end() {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        for chunk in [&b"{\"a\":1}\r\n{\"b\""[..], b":2}\n", b"{\"c\":3}"] {
            out.extend(s.push(chunk).into_iter().map(Result::unwrap));
        }
        out.extend(s.rest().map(Result::unwrap));
        assert_eq!(out, ["{\"a\":1}", "{\"b\":2}", "{\"c\":3}"]);
        let mut s = LineSplitter::default();
        assert!(s.push(&vec![b'x'; MAX_LINE_BYTES + 1]).pop().unwrap().is_err());
    }

    #[test]
    fn named_subjects_render_as_records_write_them() {
        let s = NamedSubject::parse("member", "SA:CI-Bot").unwrap();
        assert_eq!(s.to_string(), "sa:ci-bot");
    }
}
