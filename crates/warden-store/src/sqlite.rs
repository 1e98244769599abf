//! The embedded default: SQLite in WAL mode with `synchronous=FULL`, one writer connection
//! (SQLite allows one writer at a time; queueing in the pool beats `SQLITE_BUSY` retries) and a
//! small pool of read-only connections.
//!
//! `?synchronous=normal` in the URL trades durability for write speed, as the operator's
//! choice: in WAL mode a commit then returns before its fsync, so a power loss or OS crash may
//! lose the last commits (never corrupt the database); a crash of `wardend` alone loses
//! nothing.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    lane: crate::lane::Lane<sqlx::Sqlite>,
}

impl SqliteStore {
    /// Opens the database at `url` (`sqlite://PATH`), creating file and parent directory if
    /// missing, and applies pending migrations.
    pub async fn open(url: &str) -> crate::Result<Self> {
        let (url, synchronous) = synchronous(url)?;
        let options = SqliteConnectOptions::from_str(&url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(synchronous)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        if let Some(parent) = options.get_filename().parent().filter(|p| !p.as_os_str().is_empty()) {
            // The database holds password hashes and personal data: its directory is the
            // server user's alone.
            let mut dir = std::fs::DirBuilder::new();
            std::os::unix::fs::DirBuilderExt::mode(&mut dir, 0o700);
            dir.recursive(true)
                .create(parent)
                .map_err(|e| crate::StoreError::Database(format!("cannot create {}: {e}", parent.display())))?;
        }
        if options.get_filename() != Path::new(":memory:") {
            private_files(options.get_filename())
                .map_err(|e| crate::StoreError::Database(format!("cannot make {} private: {e}", options.get_filename().display())))?;
        }
        let writer = SqlitePoolOptions::new().max_connections(1).connect_with(options.clone()).await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let reader = SqlitePoolOptions::new().max_connections(4).connect_with(options.read_only(true)).await?;
        let lane = crate::lane::Lane::start(writer.clone());
        Ok(Self { writer, reader, lane })
    }

    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    /// No cross-process notification: a SQLite database has one server.
    const NOTIFY_SQL: Option<&'static str> = None;
    /// A change that takes a revision, in one statement: the audit event at the next revision
    /// (a trigger, migration `0011`, moves the revision row up to it). Every statement crosses
    /// to sqlx's SQLite worker thread and back, which costs more than the statement itself
    /// (`docs/benchmarks.md`, *Figures at the end of issue 11*).
    const OPEN_SQL: Option<&'static str> = Some(
        "INSERT INTO audit_events (id, revision, at, actor_id, actor_name, action, target_kind, target_id, target_name, details) \
         SELECT $1, value + 1, $2, $3, $4, $5, $6, $7, $8, $9 FROM revision WHERE id = 1",
    );
    /// A read transaction in WAL mode already reads one snapshot.
    const SNAPSHOT_SQL: Option<&'static str> = None;

    #[allow(clippy::unused_async)]
    async fn listen(&self) -> crate::Result<Option<tokio::sync::mpsc::Receiver<i64>>> {
        Ok(None)
    }

    fn lane(&self) -> &crate::lane::Lane<sqlx::Sqlite> {
        &self.lane
    }

    fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    fn reader(&self) -> &SqlitePool {
        &self.reader
    }
}

crate::sql::impl_store!(SqliteStore, sqlx::Sqlite, sqlx::sqlite::SqliteRow, "sqlite");
// An import's batches insert into indexes far larger than SQLite's default 2 MiB page cache,
// at random places (names), and a batch's dirty pages must stay in the cache until its commit
// (spilled, they are written to the WAL twice): 256 MiB on the writer connection, set by the
// first import; SQLite takes the memory only as pages are read.
crate::transfer::impl_transfer!(
    SqliteStore,
    sqlx::Sqlite,
    sqlx::sqlite::SqliteRow,
    Some("PRAGMA cache_size = -262144"),
    crate::transfer::SQLITE_PARAMS
);

/// Creates the database file with mode 0600 before SQLite opens it, so that it never exists
/// readable by others, whatever the umask; SQLite gives the `-wal` and `-shm` files it creates
/// later the database file's mode. Files an older version left readable by others are
/// tightened.
fn private_files(db: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(db) {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let path = Path::new(&name);
        let Ok(meta) = std::fs::metadata(path) else { continue };
        if meta.is_file() && meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(file = %path.display(), "the database file was readable by others: made 0600");
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

/// Takes `synchronous=full|normal` out of `url`'s query: what is left, and the mode (`full`
/// when not given). Any other value is an error, so that a typo never weakens durability.
fn synchronous(url: &str) -> crate::Result<(String, SqliteSynchronous)> {
    let Some((base, query)) = url.split_once('?') else { return Ok((url.to_owned(), SqliteSynchronous::Full)) };
    let mut mode = SqliteSynchronous::Full;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("synchronous", value)) => {
                mode = match value.to_ascii_lowercase().as_str() {
                    "full" => SqliteSynchronous::Full,
                    "normal" => SqliteSynchronous::Normal,
                    _ => {
                        return Err(crate::StoreError::Database(format!(
                            "synchronous={value} in the database URL: use full (the default) or normal"
                        )));
                    }
                };
            }
            _ => rest.push(pair),
        }
    }
    let url = if rest.is_empty() { base.to_owned() } else { format!("{base}?{}", rest.join("&")) };
    Ok((url, mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synchronous_comes_from_the_url_and_is_full_by_default() {
        let mode = |url: &str| synchronous(url).map(|(rest, mode)| (rest, format!("{mode:?}")));
        assert_eq!(mode("sqlite://w.db").unwrap(), ("sqlite://w.db".to_owned(), "Full".to_owned()));
        assert_eq!(mode("sqlite://w.db?synchronous=normal").unwrap(), ("sqlite://w.db".to_owned(), "Normal".to_owned()));
        assert_eq!(mode("sqlite://w.db?mode=rwc&synchronous=NORMAL").unwrap(), ("sqlite://w.db?mode=rwc".to_owned(), "Normal".to_owned()));
        assert_eq!(mode("sqlite://w.db?synchronous=full&mode=rwc").unwrap().1, "Full");
        for bad in ["sqlite://w.db?synchronous=off", "sqlite://w.db?synchronous=", "sqlite://w.db?synchronous=extra"] {
            assert!(synchronous(bad).is_err(), "{bad}");
        }
    }
}
