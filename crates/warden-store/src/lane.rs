//! Group commit: every write of a store goes through one writer lane, which commits whatever
//! is queued together in one transaction.
//!
//! A durable commit (an fsync on SQLite, a WAL flush on PostgreSQL) costs far more than the
//! statements of one write, and writers are serialised by the revision row anyway. So the lane
//! takes the first write that arrives, and with it every write queued behind it, and runs each
//! in a savepoint of one transaction: a write refused halfway (a name taken, a cycle) rolls
//! back its own savepoint only, and the others commit. Each write still takes its own
//! revision and writes its own audit event, exactly as if it were alone. Replies go out after
//! the commit, so an acknowledged write is durable; if the commit fails, every write of the
//! batch gets the error. A write that arrives at an idle lane is committed at once, alone and
//! without a savepoint: no added latency when there is no load. A write whose caller goes away
//! once it is queued (a client that disconnects) is still carried out whole; only its reply
//! is lost.

use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use sqlx::{Connection, Database, Pool};
use tokio::sync::{mpsc, oneshot};

use crate::{Result, StoreError};

/// Writes committed together at most.
const MAX_BATCH: usize = 256;
/// Writes waiting for the lane at most; further writers wait for a place.
const QUEUE: usize = 4096;

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One write's view of the batch transaction: its connection, inside its own savepoint (when
/// it shares the batch). Nothing is kept unless the write calls [`Step::commit`]; returning
/// early (with an error or without committing) undoes the write.
pub(crate) struct Step<'c, DB: Database> {
    conn: &'c mut DB::Connection,
    keep: &'c AtomicBool,
}

impl<DB: Database> Step<'_, DB> {
    /// Keeps this write: it commits with its batch.
    #[allow(clippy::unused_async)] // the same shape as a transaction's commit
    pub(crate) async fn commit(&mut self) -> Result<()> {
        self.keep.store(true, Ordering::Release);
        Ok(())
    }
}

impl<DB: Database> Deref for Step<'_, DB> {
    type Target = DB::Connection;
    fn deref(&self) -> &Self::Target {
        self.conn
    }
}

impl<DB: Database> DerefMut for Step<'_, DB> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.conn
    }
}

/// Hands a write's outcome to its caller once the batch's fate is known.
type Deliver = Box<dyn FnOnce(std::result::Result<(), String>) + Send>;
/// A queued write: runs against the batch connection, says whether it succeeded, and returns
/// how to deliver its outcome.
type Job<DB> = Box<dyn for<'c> FnOnce(Step<'c, DB>) -> BoxFuture<'c, (bool, Deliver)> + Send>;

/// The queue into a store's writer lane.
pub(crate) struct Lane<DB: Database> {
    jobs: mpsc::Sender<Job<DB>>,
    stats: Arc<Counters>,
}

/// Writes committed through a lane, and the transactions that carried them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Writes kept (committed), each with its own event and revision.
    pub writes: u64,
    /// Transactions committed: fewer than `writes` when writes were committed together.
    pub commits: u64,
}

#[derive(Default)]
struct Counters {
    writes: AtomicU64,
    commits: AtomicU64,
}

impl<DB: Database> Lane<DB> {
    /// Starts the lane's task, which writes through `pool` until the lane is dropped.
    pub(crate) fn start(pool: Pool<DB>) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let stats = Arc::new(Counters::default());
        tokio::spawn(run(pool, queue, stats.clone()));
        Self { jobs, stats }
    }

    pub(crate) fn stats(&self) -> WriteStats {
        WriteStats { writes: self.stats.writes.load(Ordering::Relaxed), commits: self.stats.commits.load(Ordering::Relaxed) }
    }

    /// Runs `write` in the lane and returns its result once it is durable (or refused).
    pub(crate) async fn write<T, F>(&self, write: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(Step<'c, DB>) -> BoxFuture<'c, Result<T>> + Send + 'static,
    {
        let (reply, outcome) = oneshot::channel::<Result<T>>();
        let job: Job<DB> = Box::new(move |step: Step<'_, DB>| {
            Box::pin(async move {
                let result = write(step).await;
                let ok = result.is_ok();
                let deliver: Deliver = Box::new(move |commit| {
                    let _ = reply.send(result.and_then(|value| commit.map(|()| value).map_err(StoreError::Database)));
                });
                (ok, deliver)
            })
        });
        self.jobs.send(job).await.map_err(|_| StoreError::Database("the store is closed".into()))?;
        outcome.await.map_err(|_| StoreError::Database("the write was not carried out: the database could not be reached".into()))?
    }
}

async fn run<DB: Database>(pool: Pool<DB>, mut queue: mpsc::Receiver<Job<DB>>, stats: Arc<Counters>) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // A batch runs in a task of its own: should a write panic, its batch fails (every
        // caller of it gets an error) and the lane goes on with the next one.
        let (pool, stats) = (pool.clone(), stats.clone());
        if tokio::spawn(async move { commit_batch(&pool, batch, &stats).await }).await.is_err() {
            tracing::error!("a write panicked; its batch was not committed");
        }
    }
}

/// Runs a batch in one transaction, each write in its own savepoint unless it is alone. A
/// write whose job is dropped unrun (the database unreachable) gets an error from
/// [`Lane::write`].
async fn commit_batch<DB: Database>(pool: &Pool<DB>, batch: Vec<Job<DB>>, stats: &Counters) {
    let Ok(mut tx) = pool.begin().await else { return };
    let alone = batch.len() == 1;
    let mut kept: Vec<Deliver> = Vec::with_capacity(batch.len());
    for job in batch {
        let keep = AtomicBool::new(false);
        if alone {
            let (ok, deliver) = job(Step { conn: &mut *tx, keep: &keep }).await;
            if ok && keep.load(Ordering::Acquire) {
                kept.push(deliver);
            } else {
                let _ = tx.rollback().await;
                deliver(Ok(()));
                return;
            }
            continue;
        }
        let Ok(mut savepoint) = Connection::begin(&mut *tx).await else { continue };
        let (ok, deliver) = job(Step { conn: &mut *savepoint, keep: &keep }).await;
        if ok && keep.load(Ordering::Acquire) {
            match savepoint.commit().await {
                Ok(()) => kept.push(deliver),
                Err(e) => deliver(Err(e.to_string())),
            }
        } else {
            // Refused or undone: only this write's statements go.
            let undone = savepoint.rollback().await.map_err(|e| e.to_string());
            deliver(undone);
        }
    }
    let committed = tx.commit().await.map_err(|e| e.to_string());
    if committed.is_ok() && !kept.is_empty() {
        stats.commits.fetch_add(1, Ordering::Relaxed);
        stats.writes.fetch_add(kept.len() as u64, Ordering::Relaxed);
    }
    for deliver in kept {
        deliver(committed.clone());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use sqlx::sqlite::SqlitePoolOptions;

    use super::*;

    async fn lane() -> Lane<sqlx::Sqlite> {
        let pool = SqlitePoolOptions::new().max_connections(1).connect("sqlite::memory:").await.unwrap();
        sqlx::query("CREATE TABLE t (v INTEGER UNIQUE)").execute(&pool).await.unwrap();
        Lane::start(pool)
    }

    fn insert(v: i64) -> impl for<'c> FnOnce(Step<'c, sqlx::Sqlite>) -> BoxFuture<'c, Result<i64>> + Send + 'static {
        move |mut tx: Step<'_, sqlx::Sqlite>| -> BoxFuture<'_, Result<i64>> {
            Box::pin(async move {
                sqlx::query("INSERT INTO t (v) VALUES ($1)").bind(v).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(v)
            })
        }
    }

    async fn count(lane: &Lane<sqlx::Sqlite>) -> i64 {
        lane.write(|mut tx: Step<'_, sqlx::Sqlite>| -> BoxFuture<'_, Result<i64>> {
            Box::pin(async move { Ok(sqlx::query_scalar("SELECT COUNT(*) FROM t").fetch_one(&mut *tx).await?) })
        })
        .await
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_refused_write_refuses_only_itself_and_a_panic_only_its_batch() {
        let lane = Arc::new(lane().await);
        let mut writes = tokio::task::JoinSet::new();
        for v in [1, 2, 2, 3, 3, 4] {
            let lane = lane.clone();
            writes.spawn(async move { lane.write(insert(v)).await.is_ok() });
        }
        let mut kept = 0;
        while let Some(ok) = writes.join_next().await {
            kept += usize::from(ok.unwrap());
        }
        assert_eq!(kept, 4, "the two duplicates are refused, nothing else");
        assert_eq!(count(&lane).await, 4);
        // A write that ends without `commit` is undone, and its caller still gets its value.
        let undone = lane
            .write(|mut tx: Step<'_, sqlx::Sqlite>| -> BoxFuture<'_, Result<&str>> {
                Box::pin(async move {
                    sqlx::query("INSERT INTO t (v) VALUES (9)").execute(&mut *tx).await?;
                    Ok("undone")
                })
            })
            .await;
        assert_eq!(undone.unwrap(), "undone");
        assert_eq!(count(&lane).await, 4);
        // A write that panics fails its caller; the lane goes on.
        let panicked = lane
            .write(|_tx: Step<'_, sqlx::Sqlite>| -> BoxFuture<'_, Result<()>> { Box::pin(async move { panic!("a bug in a write") }) })
            .await;
        assert!(panicked.is_err());
        assert_eq!(lane.write(insert(5)).await.unwrap(), 5);
        assert_eq!(lane.stats().writes, 5, "kept writes only");
    }
}
