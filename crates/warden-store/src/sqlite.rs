//! The embedded default: SQLite in WAL mode with `synchronous=FULL`, one writer connection
//! (SQLite allows one writer at a time; queueing in the pool beats `SQLITE_BUSY` retries) and a
//! small pool of read-only connections.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens the database at `url` (`sqlite://PATH`), creating file and parent directory if
    /// missing, and applies pending migrations.
    pub async fn open(url: &str) -> crate::Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
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
        let writer = SqlitePoolOptions::new().max_connections(1).connect_with(options.clone()).await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let reader = SqlitePoolOptions::new().max_connections(4).connect_with(options.read_only(true)).await?;
        Ok(Self { writer, reader })
    }

    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    /// No cross-process notification: a SQLite database has one server.
    const NOTIFY_SQL: Option<&'static str> = None;
    /// A read transaction in WAL mode already reads one snapshot.
    const SNAPSHOT_SQL: Option<&'static str> = None;

    #[allow(clippy::unused_async)]
    async fn listen(&self) -> crate::Result<Option<tokio::sync::mpsc::Receiver<i64>>> {
        Ok(None)
    }

    fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    fn reader(&self) -> &SqlitePool {
        &self.reader
    }
}

crate::sql::impl_store!(SqliteStore, sqlx::Sqlite, sqlx::sqlite::SqliteRow, "sqlite");
