//! The authorization snapshot every decision reads, and how it follows the database.
//!
//! The current [`AuthzIndex`] sits behind an atomic pointer: a request takes it with one load
//! and never waits for a writer. After a revision commits (this node's own writes, a
//! PostgreSQL notification from another node, or the periodic poll as a safety net), the
//! changes since the snapshot's revision are read back from the audit log and each says, by
//! its typed effect (`warden_core::change`), whether it leaves the snapshot alone or is
//! applied in place (copy-on-write: every change Warden makes today). The snapshot is rebuilt
//! from the database only at start-up, when this node has fallen far behind, or for a row it
//! cannot apply (one written before its details were typed). Either way the old snapshot keeps
//! serving until the new one is swapped in.
//!
//! Refreshes coalesce: a writer waits until the snapshot reaches the revision its write
//! produced, and one catch-up serves every write committed before it.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::{Mutex, Notify, watch};
use warden_core::authz::{AuthzIndex, DirectoryGraph, IndexChange, Role, built_in_roles};
use warden_core::change::{self, SnapshotEffect};
use warden_core::model::AuditEvent;
use warden_core::permission::PermissionTree;
use warden_store::Store;

use super::Result;
use super::credentials::CredentialCache;

/// Events read per round while catching up.
const BATCH: u32 = 5000;

/// Revisions behind beyond which a rebuild is cheaper than applying them one by one.
const FAR_BEHIND: i64 = 200_000;

/// The revision the snapshot has reached, and how many catch-up rounds have ended.
#[derive(Debug, Clone, Copy)]
struct Reached {
    revision: i64,
    rounds: u64,
}

pub struct IndexHolder {
    current: ArcSwap<AuthzIndex>,
    /// Cached credentials, told of every revocation as the events pass by.
    pub credentials: CredentialCache,
    /// The OpenID Connect provider's clients, grants and verified tokens, told the same way.
    pub oidc: crate::services::oidc::cache::OidcCache,
    store: Arc<dyn Store>,
    tree: PermissionTree,
    system_roles: Vec<Role>,
    /// Held by the one caller catching up; the others wait on `reached`.
    refreshing: Mutex<()>,
    reached: watch::Sender<Reached>,
    wake: Notify,
}

impl IndexHolder {
    /// Builds the first snapshot from the database.
    pub async fn load(store: Arc<dyn Store>, tree: PermissionTree, system_roles: Vec<Role>) -> Result<Arc<Self>> {
        let index = build(&*store, &tree, &system_roles).await?;
        let (reached, _) = watch::channel(Reached { revision: index.revision, rounds: 0 });
        Ok(Arc::new(Self {
            current: ArcSwap::from_pointee(index),
            credentials: CredentialCache::default(),
            oidc: crate::services::oidc::cache::OidcCache::default(),
            store,
            tree,
            system_roles,
            refreshing: Mutex::new(()),
            reached,
            wake: Notify::new(),
        }))
    }

    /// The snapshot to decide with.
    pub fn snapshot(&self) -> Arc<AuthzIndex> {
        self.current.load_full()
    }

    /// Brings the snapshot up to the database's latest revision before returning, so that a
    /// write's author sees its own change in the next decision.
    ///
    /// Writers do not queue behind each other's refreshes: the revision read here is at least
    /// the caller's own write, and any refresh that reaches it serves the caller. One caller at
    /// a time catches up; the others wait on the published revision and return as soon as a
    /// catch-up, theirs or another's, reaches what they need.
    pub async fn refresh(&self) -> Result<()> {
        let target = self.store.revision().await?;
        self.refresh_to(target).await
    }

    /// Waits until the snapshot has reached `target`, catching up if nobody else is.
    async fn refresh_to(&self, target: i64) -> Result<()> {
        let mut reached = self.reached.subscribe();
        loop {
            if reached.borrow_and_update().revision >= target {
                return Ok(());
            }
            match self.refreshing.try_lock() {
                Ok(_guard) => {
                    let outcome = self.catch_up().await;
                    let revision = self.snapshot().revision;
                    self.reached.send_modify(|r| {
                        r.revision = revision;
                        r.rounds += 1;
                    });
                    outcome?;
                }
                // Someone is catching up: wait for the round to end (success or not), then look
                // again. A round that began before our write committed may stop short of it;
                // then the loop runs one more.
                Err(_) => {
                    if reached.changed().await.is_err() {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Applies the revisions committed since the snapshot's, or rebuilds when that is cheaper
    /// (far behind) or needed (a change that cannot be applied in place).
    async fn catch_up(&self) -> Result<()> {
        loop {
            let current = self.snapshot();
            let latest = self.store.revision().await?;
            if latest <= current.revision {
                return Ok(());
            }
            if latest - current.revision > FAR_BEHIND {
                return self.rebuild().await;
            }
            let events = self.store.events_since(current.revision, BATCH).await?;
            self.credentials.forget(&events);
            self.oidc.forget(&events);
            let Some(last) = events.last().map(|e| e.revision) else {
                // Revisions without events: catch up by rebuilding.
                return self.rebuild().await;
            };
            // Apply only whole revisions: a batch may end in the middle of one.
            let complete: Vec<&AuditEvent> =
                if events.len() as u32 == BATCH { events.iter().filter(|e| e.revision < last).collect() } else { events.iter().collect() };
            let upto = if events.len() as u32 == BATCH { complete.last().map_or(current.revision, |e| e.revision) } else { last };
            match incremental(&complete) {
                Some(changes) if upto > current.revision => self.current.store(Arc::new(current.apply(upto, &changes))),
                _ => return self.rebuild().await,
            }
        }
    }

    async fn rebuild(&self) -> Result<()> {
        self.current.store(Arc::new(build(&*self.store, &self.tree, &self.system_roles).await?));
        Ok(())
    }

    /// Asks the background task to refresh soon (without waiting).
    pub fn nudge(&self) {
        self.wake.notify_one();
    }

    /// Keeps the snapshot current: on this node's nudges, on the database's revision feed, and
    /// every `poll` as a safety net. Runs until the task is aborted.
    pub async fn follow(self: Arc<Self>, poll: Duration) {
        let mut feed = match self.store.revision_feed().await {
            Ok(feed) => feed,
            Err(e) => {
                tracing::warn!(error = %e, "no revision feed; relying on polling");
                None
            }
        };
        loop {
            let woken = async {
                match feed.as_mut() {
                    Some(rx) => {
                        tokio::select! {
                            revision = rx.recv() => { if revision.is_none() { feed = None; } }
                            () = self.wake.notified() => {}
                            () = tokio::time::sleep(poll) => {}
                        }
                    }
                    None => {
                        tokio::select! {
                            () = self.wake.notified() => {}
                            () = tokio::time::sleep(poll) => {}
                        }
                    }
                }
            };
            woken.await;
            if let Err(e) = self.refresh().await {
                tracing::warn!(error = %e, "authorization snapshot refresh failed; keeping the previous one");
            }
        }
    }
}

async fn build(store: &dyn Store, tree: &PermissionTree, system_roles: &[Role]) -> Result<AuthzIndex> {
    let (revision, mut graph): (i64, DirectoryGraph) = store.graph().await?;
    // A role declared in the configuration (or built in) wins over a stored one of the same
    // id, created before the configuration declared it.
    let built_in = built_in_roles();
    graph.roles.retain(|stored| {
        let shadowed = built_in.iter().chain(system_roles).any(|r| r.id == stored.id);
        if shadowed {
            tracing::warn!(role = %stored.id, "a stored role is shadowed by a built-in or configured role of the same id");
        }
        !shadowed
    });
    graph.roles.extend(built_in);
    graph.roles.extend(system_roles.iter().cloned());
    Ok(AuthzIndex::build(revision, graph, tree.clone()))
}

/// The index changes that `events` amount to, as each change's [`SnapshotEffect`] says, or
/// `None` if they need a rebuild (or one of them cannot be read).
fn incremental(events: &[&AuditEvent]) -> Option<Vec<IndexChange>> {
    let mut changes = Vec::new();
    for e in events {
        let (target, action) = match change::recorded(e) {
            Ok(recorded) => recorded,
            Err(unknown) => {
                tracing::warn!(error = %unknown, "rebuilding the authorization snapshot");
                return None;
            }
        };
        match action.effect(target.as_ref()).snapshot {
            SnapshotEffect::Unchanged => {}
            SnapshotEffect::Apply(change) => changes.push(change),
            SnapshotEffect::Rebuild => return None,
        }
    }
    Some(changes)
}
