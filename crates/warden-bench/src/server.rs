//! The server under test: a real `wardend` started in this process on `127.0.0.1:0`, on a
//! database that exists only for this run (a SQLite file in a temporary directory, or a
//! PostgreSQL database `warden_bench_<random>` created here and dropped in [`BenchServer::stop`]).
//!
//! It runs as an operator would run it: default configuration (OWASP argon2 parameters), the
//! wall clock, `idm_admin` (the identity administrator) recovered through the host-side
//! recovery, logged in with its password and elevated for writes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use sqlx::{AssertSqlSafe, Connection as _, PgConnection};
use tempfile::TempDir;
use warden_client::Client;
use warden_core::credential::Secret;
use warden_core::model::Subject;
use warden_server::Running;

use crate::load::Throughput;
use warden_server::clock::SystemClock;
use warden_server::config::Config;
use warden_server::services::recovery;

/// Which store the server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Where this run's database lives, so that it can be removed afterwards.
enum Database {
    Sqlite(TempDir),
    Postgres { maintenance_url: String, name: String },
}

pub struct BenchServer {
    pub running: Running,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The logged-in, elevated `idm_admin`.
    pub operator: Subject,
    token: Secret,
    database: Database,
    /// Only for the control socket path; the SQLite file has its own directory.
    _scratch: TempDir,
}

impl BenchServer {
    /// Creates the database, starts the server and logs `idm_admin` in.
    pub async fn start(backend: Backend, pg_url: &str) -> anyhow::Result<Self> {
        Self::start_configured(backend, pg_url, |_| {}).await
    }

    /// [`Self::start`], with a last say on the configuration.
    pub async fn start_configured(backend: Backend, pg_url: &str, tweak: impl FnOnce(&mut Config)) -> anyhow::Result<Self> {
        let scratch = tempfile::tempdir().context("cannot create a temporary directory")?;
        let (database, url) = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
                let url = format!("sqlite://{}/warden.db", dir.path().display());
                (Database::Sqlite(dir), url)
            }
            Backend::Postgres => {
                let (name, url) = create_pg_database(pg_url).await?;
                (Database::Postgres { maintenance_url: pg_url.to_owned(), name }, url)
            }
        };
        match Self::start_on(&url, &scratch, tweak).await {
            Ok((running, operator, token)) => {
                let url = format!("http://{}", running.public_addr);
                Ok(Self { running, url, operator, token, database, _scratch: scratch })
            }
            Err(e) => {
                if let Err(cleanup) = remove_database(database).await {
                    eprintln!("warning: {cleanup:#}");
                }
                Err(e)
            }
        }
    }

    async fn start_on(
        database_url: &str,
        scratch: &TempDir,
        tweak: impl FnOnce(&mut Config),
    ) -> anyhow::Result<(Running, Subject, Secret)> {
        let mut config = Config::default();
        config.server.listen = "127.0.0.1:0".parse()?;
        config.server.control_socket = scratch.path().join("wardend.sock");
        config.database.url = database_url.to_owned();
        tweak(&mut config);
        let running = warden_server::start(config, Arc::new(SystemClock), false).await.context("cannot start wardend")?;
        let password = recovery::recover_account(&running.context, "idm_admin").await.context("cannot recover idm_admin")?;
        let url = format!("http://{}", running.public_addr);
        let login = Client::new(&url)?.login("idm_admin", password.expose()).await.context("cannot log in as idm_admin")?;
        Client::new(&url)?.with_bearer(login.token.expose()).reauth(password.expose()).await.context("cannot elevate idm_admin")?;
        Ok((running, login.account, login.token))
    }

    /// A new client (its own connection pool, keep-alive) holding the elevated `idm_admin` session.
    pub fn client(&self) -> anyhow::Result<Client> {
        Ok(Client::new(&self.url)?.with_bearer(self.token.expose()))
    }

    /// Which backend, as the server reports it.
    pub fn backend(&self) -> &'static str {
        self.running.context.store.backend()
    }

    /// Stops the server and removes its database.
    pub async fn stop(self) -> anyhow::Result<()> {
        let Self { running, database, .. } = self;
        let stopped = running.shutdown().await;
        // The store's pool closes when its last handle goes; `DROP … WITH (FORCE)` does not wait.
        remove_database(database).await?;
        stopped
    }
}

/// Creates `warden_bench_<random>` next to the database `maintenance_url` names; returns its
/// name and URL.
async fn create_pg_database(maintenance_url: &str) -> anyhow::Result<(String, String)> {
    let mut url = reqwest::Url::parse(maintenance_url).with_context(|| format!("--pg-url {maintenance_url:?} is not a URL"))?;
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        bail!("--pg-url must be a postgres:// URL");
    }
    let name = format!("warden_bench_{}", uuid::Uuid::now_v7().simple());
    let mut conn = PgConnection::connect(maintenance_url)
        .await
        .with_context(|| format!("cannot connect to PostgreSQL at {}", warden_server::config::redact_url(maintenance_url)))?;
    // `name` is ours: a fixed prefix and hex digits.
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await.context("cannot create the bench database")?;
    conn.close().await?;
    url.set_path(&format!("/{name}"));
    Ok((name, url.to_string()))
}

async fn remove_database(database: Database) -> anyhow::Result<()> {
    match database {
        Database::Sqlite(dir) => dir.close().context("cannot remove the SQLite temporary directory"),
        Database::Postgres { maintenance_url, name } => {
            let mut conn =
                PgConnection::connect(&maintenance_url).await.context("cannot connect to PostgreSQL to drop the bench database")?;
            sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                .execute(&mut conn)
                .await
                .with_context(|| format!("cannot drop database {name}; drop it by hand"))?;
            conn.close().await?;
            Ok(())
        }
    }
}

/// Durable single-row commits per second on the disk the server writes to.
pub async fn disk_commits(server: &BenchServer, secs: u64) -> anyhow::Result<Throughput> {
    let url = &server.running.context.config.database.url;
    let budget = Duration::from_secs(secs);
    let started = Instant::now();
    let mut done = 0usize;
    if url.starts_with("sqlite:") {
        let path = url.trim_start_matches("sqlite://").split('?').next().unwrap_or_default().to_owned();
        let probe = format!("{path}.disk-probe");
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&probe)
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .synchronous(sqlx::sqlite::SqliteSynchronous::Full);
        let mut conn = sqlx::SqliteConnection::connect_with(&options).await?;
        sqlx::query("CREATE TABLE IF NOT EXISTS probe (n INTEGER)").execute(&mut conn).await?;
        let started = Instant::now();
        while started.elapsed() < budget {
            let mut tx = conn.begin().await?;
            sqlx::query("INSERT INTO probe (n) VALUES ($1)").bind(done as i64).execute(&mut *tx).await?;
            tx.commit().await?;
            done += 1;
        }
        let elapsed = started.elapsed();
        conn.close().await?;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{probe}{suffix}"));
        }
        return Ok(Throughput { done, elapsed });
    }
    let mut conn = sqlx::PgConnection::connect(url).await?;
    sqlx::query("CREATE TABLE IF NOT EXISTS bench_disk_probe (n BIGINT)").execute(&mut conn).await?;
    while started.elapsed() < budget {
        let mut tx = conn.begin().await?;
        sqlx::query("INSERT INTO bench_disk_probe (n) VALUES ($1)").bind(done as i64).execute(&mut *tx).await?;
        tx.commit().await?;
        done += 1;
    }
    let elapsed = started.elapsed();
    sqlx::query("DROP TABLE bench_disk_probe").execute(&mut conn).await?;
    conn.close().await?;
    Ok(Throughput { done, elapsed })
}
