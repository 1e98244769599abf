//! Password checks in flight, capped per key on this node.
//!
//! The store's reservation (see `warden_core::throttle`) already bounds how many checks of a
//! key run, counted across nodes; this gate keeps one node from holding more of them open at
//! once than it needs. Checks for one account name run one at a time, and those from one
//! client address a few at a time: the others *wait* their turn (so a browser that sends
//! several requests with the right Basic credentials at once is served, one after another,
//! instead of being refused), and past a bounded queue they are refused at once, so a flood
//! for one key costs memory in proportion to the queue, never to the flood.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use warden_core::throttle::ThrottleKey;

/// Checks in flight (running plus waiting) per key.
pub struct InFlight {
    slots: Arc<Mutex<HashMap<ThrottleKey, Slot>>>,
    running: usize,
    waiting: usize,
}

struct Slot {
    semaphore: Arc<Semaphore>,
    /// Holders and waiters together; the slot goes when the last one leaves.
    users: usize,
}

/// A check's place for one key; dropping it lets the next one in.
pub struct Turn {
    slots: Arc<Mutex<HashMap<ThrottleKey, Slot>>>,
    key: ThrottleKey,
    _permit: OwnedSemaphorePermit,
}

/// The queue for a key is full.
#[derive(Debug, PartialEq, Eq)]
pub struct Busy;

impl InFlight {
    /// `running` checks of one key at once, `waiting` more queued behind them.
    pub fn new(running: usize, waiting: usize) -> Self {
        Self { slots: Arc::default(), running: running.max(1), waiting }
    }

    /// Waits for a turn at `key`, or refuses at once when its queue is full.
    pub async fn enter(&self, key: ThrottleKey) -> Result<Turn, Busy> {
        let semaphore = {
            let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
            let slot = slots.entry(key).or_insert_with(|| Slot { semaphore: Arc::new(Semaphore::new(self.running)), users: 0 });
            if slot.users >= self.running + self.waiting {
                return Err(Busy);
            }
            slot.users += 1;
            slot.semaphore.clone()
        };
        // Registered before waiting: if this future is dropped while it waits, the guard
        // below still takes the place back.
        let leave = Leave { slots: self.slots.clone(), key: Some(key) };
        let Ok(permit) = semaphore.acquire_owned().await else { return Err(Busy) };
        Ok(Turn { slots: leave.defuse(), key, _permit: permit })
    }

    /// Keys with checks running or waiting (for tests).
    pub fn keys(&self) -> usize {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

fn leave(slots: &Mutex<HashMap<ThrottleKey, Slot>>, key: &ThrottleKey) {
    let mut slots = slots.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(slot) = slots.get_mut(key) {
        slot.users = slot.users.saturating_sub(1);
        if slot.users == 0 {
            slots.remove(key);
        }
    }
}

/// Takes a waiter's place back if it stops waiting before its turn.
struct Leave {
    slots: Arc<Mutex<HashMap<ThrottleKey, Slot>>>,
    key: Option<ThrottleKey>,
}

impl Leave {
    fn defuse(mut self) -> Arc<Mutex<HashMap<ThrottleKey, Slot>>> {
        self.key = None;
        self.slots.clone()
    }
}

impl Drop for Leave {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            leave(&self.slots, &key);
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        leave(&self.slots, &self.key);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn one_at_a_time_per_key_with_a_bounded_queue() {
        let gate = Arc::new(InFlight::new(1, 2));
        let key = ThrottleKey::name("alice");
        let first = gate.enter(key).await.unwrap();
        // Two may wait behind it; a fourth is refused at once.
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                tokio::spawn({
                    let gate = gate.clone();
                    async move { gate.enter(key).await.map(|_| ()) }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(gate.enter(key).await.err(), Some(Busy));
        assert!(gate.enter(ThrottleKey::name("bob")).await.is_ok(), "other keys are not held up");
        drop(first);
        for waiter in waiters {
            waiter.await.unwrap().unwrap();
        }
        assert_eq!(gate.keys(), 0, "every place was given back");
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_leaves_its_place() {
        let gate = InFlight::new(1, 1);
        let key = ThrottleKey::name("alice");
        let first = gate.enter(key).await.unwrap();
        assert!(tokio::time::timeout(Duration::from_millis(10), gate.enter(key)).await.is_err(), "waits");
        drop(first);
        assert_eq!(gate.keys(), 0);
        let _again = gate.enter(key).await.unwrap();
    }
}
