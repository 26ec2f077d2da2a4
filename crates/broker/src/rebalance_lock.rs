//! The rebalance lock table behind LOCK_BATCH_MQ / UNLOCK_BATCH_MQ: per consumer group, which
//! client holds each queue. Orderly consumers lock a queue before consuming it, so that during
//! a rebalance the old and the new owner never consume one queue at the same time. A lock lives
//! until its holder unlocks it or stops renewing it for `max_live` (RocketMQ's
//! `rebalanceLockMaxLiveTime`). It lives in memory only: after a broker restart every holder
//! simply locks again, which is what RocketMQ does too.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use petrel_common::protocol::MessageQueue;

struct LockEntry {
    client_id: String,
    last_update: Instant,
}

impl LockEntry {
    fn expired(&self, now: Instant, max_live: Duration) -> bool {
        now.saturating_duration_since(self.last_update) > max_live
    }
}

pub struct RebalanceLockManager {
    max_live: Duration,
    groups: Mutex<HashMap<String, HashMap<MessageQueue, LockEntry>>>,
}

impl RebalanceLockManager {
    pub fn new(max_live: Duration) -> Self {
        RebalanceLockManager {
            max_live,
            groups: Mutex::new(HashMap::new()),
        }
    }

    /// Locks what it can of `mqs` for `client_id` and returns the queues `client_id` now holds
    /// among them: free or expired queues are taken, queues it already holds are renewed, queues
    /// another live client holds are refused.
    pub fn try_lock_batch(
        &self,
        group: &str,
        mqs: &BTreeSet<MessageQueue>,
        client_id: &str,
    ) -> BTreeSet<MessageQueue> {
        self.try_lock_batch_at(group, mqs, client_id, Instant::now())
    }

    fn try_lock_batch_at(
        &self,
        group: &str,
        mqs: &BTreeSet<MessageQueue>,
        client_id: &str,
        now: Instant,
    ) -> BTreeSet<MessageQueue> {
        let mut groups = self.groups.lock();
        let table = groups.entry(group.to_owned()).or_default();
        let mut locked = BTreeSet::new();
        for mq in mqs {
            match table.get_mut(mq) {
                Some(e) if e.client_id == client_id => e.last_update = now,
                Some(e) if !e.expired(now, self.max_live) => {
                    tracing::debug!(
                        group,
                        queue = ?mq,
                        holder = %e.client_id,
                        wanted_by = client_id,
                        "queue lock refused"
                    );
                    continue;
                }
                Some(e) => {
                    tracing::info!(
                        group,
                        queue = ?mq,
                        old = %e.client_id,
                        new = client_id,
                        "expired queue lock taken over"
                    );
                    e.client_id = client_id.to_owned();
                    e.last_update = now;
                }
                None => {
                    table.insert(
                        mq.clone(),
                        LockEntry {
                            client_id: client_id.to_owned(),
                            last_update: now,
                        },
                    );
                }
            }
            locked.insert(mq.clone());
        }
        locked
    }

    /// Releases the locks `client_id` holds among `mqs`; locks of other clients stay.
    pub fn unlock_batch(&self, group: &str, mqs: &BTreeSet<MessageQueue>, client_id: &str) {
        let mut groups = self.groups.lock();
        let Some(table) = groups.get_mut(group) else {
            return;
        };
        for mq in mqs {
            if table.get(mq).is_some_and(|e| e.client_id == client_id) {
                table.remove(mq);
            }
        }
        if table.is_empty() {
            groups.remove(group);
        }
    }

    /// The client holding an unexpired lock on `mq` for `group`.
    pub fn holder(&self, group: &str, mq: &MessageQueue) -> Option<String> {
        let now = Instant::now();
        self.groups
            .lock()
            .get(group)
            .and_then(|t| t.get(mq))
            .filter(|e| !e.expired(now, self.max_live))
            .map(|e| e.client_id.clone())
    }

    /// Whether some client holds an unexpired lock for `group`, i.e. the group consumes orderly.
    pub fn group_has_live_locks(&self, group: &str) -> bool {
        self.group_has_live_locks_at(group, Instant::now())
    }

    fn group_has_live_locks_at(&self, group: &str, now: Instant) -> bool {
        self.groups
            .lock()
            .get(group)
            .is_some_and(|t| t.values().any(|e| !e.expired(now, self.max_live)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mq(id: i32) -> MessageQueue {
        MessageQueue {
            topic: "T".into(),
            broker_name: "b".into(),
            queue_id: id,
        }
    }

    fn set(ids: &[i32]) -> BTreeSet<MessageQueue> {
        ids.iter().map(|&i| mq(i)).collect()
    }

    #[test]
    fn a_held_queue_is_refused_to_others_until_unlocked() {
        let locks = RebalanceLockManager::new(Duration::from_secs(60));
        assert_eq!(locks.try_lock_batch("g", &set(&[0, 1]), "c1"), set(&[0, 1]));
        assert_eq!(locks.try_lock_batch("g", &set(&[1, 2]), "c2"), set(&[2]));
        assert_eq!(locks.holder("g", &mq(1)).as_deref(), Some("c1"));
        // Another group's locks are its own.
        assert_eq!(locks.try_lock_batch("h", &set(&[1]), "c2"), set(&[1]));
        // Unlocking someone else's queue does nothing.
        locks.unlock_batch("g", &set(&[1]), "c2");
        assert_eq!(locks.holder("g", &mq(1)).as_deref(), Some("c1"));
        locks.unlock_batch("g", &set(&[1]), "c1");
        assert_eq!(locks.try_lock_batch("g", &set(&[1]), "c2"), set(&[1]));
    }

    #[test]
    fn a_lock_expires_unless_renewed() {
        let max_live = Duration::from_secs(60);
        let locks = RebalanceLockManager::new(max_live);
        let t0 = Instant::now();
        locks.try_lock_batch_at("g", &set(&[0]), "c1", t0);
        let renew = t0 + Duration::from_secs(50);
        assert_eq!(
            locks.try_lock_batch_at("g", &set(&[0]), "c1", renew),
            set(&[0])
        );
        // 100 s after the first lock but 50 s after the renewal: still held.
        let later = t0 + Duration::from_secs(100);
        assert!(locks
            .try_lock_batch_at("g", &set(&[0]), "c2", later)
            .is_empty());
        let expired = renew + max_live + Duration::from_millis(1);
        assert_eq!(
            locks.try_lock_batch_at("g", &set(&[0]), "c2", expired),
            set(&[0])
        );
    }

    #[test]
    fn a_group_has_live_locks_until_the_last_is_released_or_expires() {
        let max_live = Duration::from_secs(60);
        let locks = RebalanceLockManager::new(max_live);
        let t0 = Instant::now();
        assert!(!locks.group_has_live_locks_at("g", t0));
        locks.try_lock_batch_at("g", &set(&[0, 1]), "c1", t0);
        assert!(locks.group_has_live_locks_at("g", t0));
        assert!(!locks.group_has_live_locks_at("h", t0));
        locks.unlock_batch("g", &set(&[0]), "c1");
        assert!(locks.group_has_live_locks_at("g", t0 + max_live));
        assert!(!locks.group_has_live_locks_at("g", t0 + max_live + Duration::from_millis(1)));
        locks.unlock_batch("g", &set(&[1]), "c1");
        assert!(!locks.group_has_live_locks_at("g", t0));
    }
}
