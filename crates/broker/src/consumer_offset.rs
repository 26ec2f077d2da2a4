//! Committed consumer offsets, `topic@group` → queue → offset, persisted to
//! `config/consumerOffset.json` on an interval and at shutdown.
//!
//! A commit never moves an offset backwards: after a rebalance the queue's previous owner may
//! still report a stale, lower offset, and replaying what was consumed is what users fear most.
//! Only an explicit reset does. A reset stays pending until the queue's consumer pulls from the
//! reset offset: until then its pulls are told PULL_OFFSET_MOVED and its commits (made before it
//! heard of the reset) are ignored, so a consumer that was mid-batch cannot undo the reset.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use petrel_store::metadata;

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OffsetFile {
    offset_table: BTreeMap<String, BTreeMap<i32, i64>>,
}

pub struct ConsumerOffsetManager {
    path: PathBuf,
    /// Key `topic@group`.
    table: RwLock<HashMap<String, HashMap<i32, i64>>>,
    /// Resets not yet seen by a pull, key `topic@group` → queue → offset. Kept in memory only:
    /// after a restart the reset offsets are simply the committed ones.
    pending_resets: RwLock<HashMap<String, HashMap<i32, i64>>>,
    /// On a slave: commits clients made here (the master was down, or they read from the slave)
    /// that the master has not been told yet, key `topic@group` → queue → offset. In memory
    /// only: the slave's own table keeps them across its restart, and a master that restarts
    /// meanwhile still gets the larger offset at the next synchronisation.
    for_master: Mutex<HashMap<String, HashMap<i32, i64>>>,
    dirty: AtomicBool,
}

/// One queue's committed offset: `(group, topic, queue, offset)`.
pub type QueueCommit = (String, String, i32, i64);

fn key(topic: &str, group: &str) -> String {
    format!("{topic}@{group}")
}

impl ConsumerOffsetManager {
    pub fn load(path: PathBuf) -> std::io::Result<Self> {
        let file: OffsetFile = metadata::read_json(&path)?.unwrap_or_default();
        let table = file
            .offset_table
            .into_iter()
            .map(|(k, v)| (k, v.into_iter().collect()))
            .collect();
        Ok(ConsumerOffsetManager {
            path,
            table: RwLock::new(table),
            pending_resets: RwLock::new(HashMap::new()),
            for_master: Mutex::new(HashMap::new()),
            dirty: AtomicBool::new(false),
        })
    }

    pub fn query(&self, group: &str, topic: &str, queue_id: i32) -> Option<i64> {
        self.table
            .read()
            .get(&key(topic, group))
            .and_then(|q| q.get(&queue_id).copied())
    }

    /// Records a consumer's progress; lower than the stored offset is ignored, and so is
    /// anything while a reset of the queue is pending. When the offset moved, returns where it
    /// was (−1: the group had none on the queue).
    pub fn commit(&self, group: &str, topic: &str, queue_id: i32, offset: i64) -> Option<i64> {
        if offset < 0 || self.pending_reset(group, topic, queue_id).is_some() {
            return None;
        }
        let mut t = self.table.write();
        let queues = t.entry(key(topic, group)).or_default();
        let slot = queues.entry(queue_id).or_insert(-1);
        if offset > *slot {
            let previous = std::mem::replace(slot, offset);
            self.dirty.store(true, Ordering::Relaxed);
            return Some(previous);
        }
        None
    }

    /// Keeps a commit made on this slave for the master (see [`Self::take_for_master`]).
    pub fn note_for_master(&self, group: &str, topic: &str, queue_id: i32, offset: i64) {
        let mut pending = self.for_master.lock();
        let slot = pending
            .entry(key(topic, group))
            .or_default()
            .entry(queue_id)
            .or_insert(offset);
        *slot = (*slot).max(offset);
    }

    /// The commits made on this slave since the last call, to be handed to the master (whose
    /// own commit keeps the larger offset, so handing one over twice or late does no harm).
    pub fn take_for_master(&self) -> Vec<QueueCommit> {
        let pending = std::mem::take(&mut *self.for_master.lock());
        let mut out = Vec::new();
        for (k, queues) in pending {
            let Some((topic, group)) = k.split_once('@') else {
                continue;
            };
            for (queue_id, offset) in queues {
                out.push((group.to_owned(), topic.to_owned(), queue_id, offset));
            }
        }
        out
    }

    /// Sets an offset unconditionally (an operator's reset), pending until a pull reaches it.
    pub fn reset(&self, group: &str, topic: &str, queue_id: i32, offset: i64) {
        let k = key(topic, group);
        self.pending_resets
            .write()
            .entry(k.clone())
            .or_default()
            .insert(queue_id, offset);
        self.table
            .write()
            .entry(k)
            .or_default()
            .insert(queue_id, offset);
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// The offset of a reset of this queue that no pull has reached yet.
    pub fn pending_reset(&self, group: &str, topic: &str, queue_id: i32) -> Option<i64> {
        let resets = self.pending_resets.read();
        if resets.is_empty() {
            return None;
        }
        resets
            .get(&key(topic, group))
            .and_then(|q| q.get(&queue_id).copied())
    }

    /// A pull reached the reset offset: the consumer has moved, commits count again.
    pub fn reset_reached(&self, group: &str, topic: &str, queue_id: i32) {
        let mut resets = self.pending_resets.write();
        let k = key(topic, group);
        if let Some(q) = resets.get_mut(&k) {
            q.remove(&queue_id);
            if q.is_empty() {
                resets.remove(&k);
            }
        }
    }

    /// Offsets of one group on one topic.
    pub fn queue_offsets(&self, group: &str, topic: &str) -> HashMap<i32, i64> {
        self.table
            .read()
            .get(&key(topic, group))
            .cloned()
            .unwrap_or_default()
    }

    /// Every (group, topic) with committed offsets, and its offsets by queue.
    pub fn all(&self) -> Vec<(String, String, HashMap<i32, i64>)> {
        self.table
            .read()
            .iter()
            .filter_map(|(k, queues)| {
                let (topic, group) = k.split_once('@')?;
                Some((group.to_owned(), topic.to_owned(), queues.clone()))
            })
            .collect()
    }

    /// Topics a group has committed offsets for.
    pub fn topics_of_group(&self, group: &str) -> Vec<String> {
        let suffix = format!("@{group}");
        self.table
            .read()
            .keys()
            .filter_map(|k| k.strip_suffix(&suffix).map(str::to_owned))
            .collect()
    }

    /// Groups with committed offsets on a topic.
    pub fn groups_of_topic(&self, topic: &str) -> Vec<String> {
        let prefix = format!("{topic}@");
        self.table
            .read()
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix).map(str::to_owned))
            .collect()
    }

    /// The whole table, key `topic@group`, sorted: what GET_ALL_CONSUMER_OFFSET answers.
    pub fn offset_table(&self) -> BTreeMap<String, BTreeMap<i32, i64>> {
        self.table
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.iter().map(|(q, o)| (*q, *o)).collect()))
            .collect()
    }

    /// Takes another broker's offsets (a master's, on its slave; key `topic@group`): per queue
    /// the larger of the two wins, so an offset committed here while the master was away is not
    /// undone and one committed on the master arrives. A queue with a pending reset keeps the
    /// reset, as it would against a consumer's commit. Returns how many queues moved; the next
    /// [`persist`](Self::persist) writes them.
    pub fn merge_larger(&self, other: &BTreeMap<String, BTreeMap<i32, i64>>) -> usize {
        let resets = self.pending_resets.read();
        let mut t = self.table.write();
        let mut moved = 0;
        for (k, queues) in other {
            let pending = resets.get(k);
            for (&queue_id, &offset) in queues {
                if offset < 0 || pending.is_some_and(|p| p.contains_key(&queue_id)) {
                    continue;
                }
                let slot = t
                    .entry(k.clone())
                    .or_default()
                    .entry(queue_id)
                    .or_insert(-1);
                if offset > *slot {
                    *slot = offset;
                    moved += 1;
                }
            }
        }
        if moved > 0 {
            self.dirty.store(true, Ordering::Relaxed);
        }
        moved
    }

    /// Writes the table if anything changed since the last write.
    pub fn persist(&self) -> std::io::Result<()> {
        if !self.dirty.swap(false, Ordering::Relaxed) {
            return Ok(());
        }
        let file = OffsetFile {
            offset_table: self
                .table
                .read()
                .iter()
                .map(|(k, v)| (k.clone(), v.iter().map(|(q, o)| (*q, *o)).collect()))
                .collect(),
        };
        let result = metadata::write_json(&self.path, &file);
        if result.is_err() {
            self.dirty.store(true, Ordering::Relaxed);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_never_move_backwards_except_by_reset_and_survive_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("consumerOffset.json");
        let m = ConsumerOffsetManager::load(path.clone()).unwrap();
        m.commit("g", "T", 0, 10);
        m.commit("g", "T", 0, 5);
        assert_eq!(m.query("g", "T", 0), Some(10));
        m.reset("g", "T", 0, 3);
        assert_eq!(m.query("g", "T", 0), Some(3));
        // A commit made before the consumer heard of the reset does not undo it.
        m.commit("g", "T", 0, 12);
        assert_eq!(m.query("g", "T", 0), Some(3));
        assert_eq!(m.pending_reset("g", "T", 0), Some(3));
        m.reset_reached("g", "T", 0);
        assert_eq!(m.pending_reset("g", "T", 0), None);
        m.commit("g", "T", 0, 4);
        assert_eq!(m.query("g", "T", 0), Some(4));
        m.reset("g", "T", 0, 3);
        m.persist().unwrap();
        let again = ConsumerOffsetManager::load(path).unwrap();
        assert_eq!(again.query("g", "T", 0), Some(3));
        assert_eq!(again.topics_of_group("g"), vec!["T".to_string()]);
    }

    #[test]
    fn merging_another_brokers_offsets_keeps_the_larger_and_pending_resets() {
        let dir = tempfile::tempdir().unwrap();
        let m = ConsumerOffsetManager::load(dir.path().join("consumerOffset.json")).unwrap();
        m.commit("g", "T", 0, 10);
        m.commit("g", "T", 1, 50);
        m.reset("g", "T", 2, 3);
        let other: BTreeMap<String, BTreeMap<i32, i64>> = [
            ("T@g".to_owned(), [(0, 20), (1, 40), (2, 99)].into()),
            ("U@h".to_owned(), [(0, 7)].into()),
        ]
        .into();
        assert_eq!(m.merge_larger(&other), 2);
        assert_eq!(m.query("g", "T", 0), Some(20));
        assert_eq!(m.query("g", "T", 1), Some(50), "never backwards");
        assert_eq!(m.query("g", "T", 2), Some(3), "the pending reset stays");
        assert_eq!(m.query("h", "U", 0), Some(7));
        assert_eq!(m.merge_larger(&other), 0, "nothing moves twice");
    }
}
