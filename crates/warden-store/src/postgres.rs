//! PostgreSQL, for when one machine is outgrown: any number of stateless `wardend` nodes share
//! one database. Migrations take PostgreSQL's advisory lock, so nodes may start together.

use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};

/// The channel on which every commit announces its revision.
const CHANNEL: &str = "warden_revision";

pub struct PgStore {
    pool: PgPool,
    lane: crate::lane::Lane<sqlx::Postgres>,
}

impl PgStore {
    /// Connects to `url` and applies pending migrations.
    pub async fn open(url: &str) -> crate::Result<Self> {
        let pool = PgPoolOptions::new().max_connections(16).connect(url).await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        let lane = crate::lane::Lane::start(pool.clone());
        Ok(Self { pool, lane })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Every revision is announced on [`CHANNEL`]; PostgreSQL delivers it on commit only.
    const NOTIFY_SQL: Option<&'static str> = Some("SELECT pg_notify('warden_revision', CAST($1 AS BIGINT)::text)");
    /// A change that takes a revision, in one round trip: the revision, its notification and
    /// the audit event (the parameters of `write_audit` after the revision). The writer lane
    /// runs writes one after another, so each round trip saved is saved for every write.
    const OPEN_SQL: Option<&'static str> = Some(
        "WITH r AS (UPDATE revision SET value = value + 1 WHERE id = 1 RETURNING value), \
              n AS (SELECT pg_notify('warden_revision', CAST(value AS text)) FROM r), \
              a AS (INSERT INTO audit_events (id, revision, at, actor_id, actor_name, action, target_kind, target_id, target_name, details) \
                    SELECT $1, r.value, $2, $3, $4, $5, $6, $7, $8, $9 FROM r) \
         SELECT r.value FROM r, n",
    );
    /// The authorization graph is read in several statements; they must see one snapshot.
    const SNAPSHOT_SQL: Option<&'static str> = Some("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY");

    /// Forwards revisions announced by any node. The listener reconnects by itself. The feed
    /// holds one pooled connection: it ends, giving the connection back, when the receiver is
    /// dropped or the store is closed (`close` waits for every connection).
    async fn listen(&self) -> crate::Result<Option<tokio::sync::mpsc::Receiver<i64>>> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.listen(CHANNEL).await?;
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let pool = self.pool.clone();
        tokio::spawn(async move {
            loop {
                let received = tokio::select! {
                    () = tx.closed() => return,
                    received = listener.recv() => received,
                };
                match received {
                    Ok(note) => {
                        let Ok(revision) = note.payload().parse::<i64>() else { continue };
                        if tx.send(revision).await.is_err() {
                            return;
                        }
                    }
                    // `recv` fails with `PoolClosed` once `close` is called.
                    Err(_) if pool.is_closed() => return,
                    Err(e) => {
                        tracing::warn!(error = %e, "revision listener failed; retrying");
                        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    }
                }
            }
        });
        Ok(Some(rx))
    }

    fn lane(&self) -> &crate::lane::Lane<sqlx::Postgres> {
        &self.lane
    }

    fn writer(&self) -> &PgPool {
        &self.pool
    }

    fn reader(&self) -> &PgPool {
        &self.pool
    }
}

crate::sql::impl_store!(PgStore, sqlx::Postgres, sqlx::postgres::PgRow, "postgres");
crate::transfer::impl_transfer!(PgStore, sqlx::Postgres, sqlx::postgres::PgRow, None, crate::transfer::POSTGRES_PARAMS);
