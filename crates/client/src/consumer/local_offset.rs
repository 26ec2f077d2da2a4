//! Offsets of a broadcasting consumer, kept by the client itself: in broadcast mode every
//! instance reads every queue, so the broker's one offset per group and queue cannot serve them
//! all. One JSON file per client and group (`<dir>/<clientId>/<group>/offsets.json`, as Java's
//! `LocalFileOffsetStore` lays them out), replaced atomically (write a temp file, fsync, rename)
//! so a crash leaves either the old or the new table, never a torn one.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use petrel_common::protocol::MessageQueue;
use serde::{Deserialize, Serialize};

use crate::error::{ClientError, Result};

const FILE_NAME: &str = "offsets.json";

/// The directory Java uses by default: `~/.rocketmq_offsets` (`rocketmq.client.localOffsetStoreDir`).
pub fn default_offset_store_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(".rocketmq_offsets")
}

#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct OffsetFile {
    offset_table: Vec<QueueOffset>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueueOffset {
    #[serde(flatten)]
    queue: MessageQueue,
    offset: i64,
}

pub(crate) struct LocalOffsetStore {
    path: PathBuf,
    offsets: Mutex<BTreeMap<MessageQueue, i64>>,
    /// Held across a whole write-and-rename: every queue task persists as it ends, and two
    /// writers of the one temp file would rename each other's half-written file away.
    persisting: Mutex<()>,
}

impl LocalOffsetStore {
    /// Opens the store of `group` for `client_id` under `dir`, reading the file if there is one.
    pub fn open(dir: &Path, client_id: &str, group: &str) -> Result<Self> {
        let path = dir.join(client_id).join(group).join(FILE_NAME);
        let offsets = match std::fs::read(&path) {
            Ok(bytes) => {
                let file: OffsetFile =
                    serde_json::from_slice(&bytes).map_err(|e| store_error(&path, e))?;
                file.offset_table
                    .into_iter()
                    .map(|q| (q.queue, q.offset))
                    .collect()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(store_error(&path, e)),
        };
        Ok(LocalOffsetStore {
            path,
            offsets: Mutex::new(offsets),
            persisting: Mutex::new(()),
        })
    }

    #[cfg(test)]
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn read(&self, mq: &MessageQueue) -> Option<i64> {
        self.offsets.lock().get(mq).copied()
    }

    pub fn update(&self, mq: &MessageQueue, offset: i64) {
        self.offsets.lock().insert(mq.clone(), offset);
    }

    /// [`persist`](Self::persist) on a blocking thread: it fsyncs, and runtime threads must not
    /// wait on the disk.
    pub async fn persist_off_runtime(self: &Arc<Self>) -> Result<()> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || store.persist())
            .await
            .unwrap_or_else(|e| Err(store_error(&self.path, e)))
    }

    /// Writes the whole table to disk atomically.
    pub fn persist(&self) -> Result<()> {
        // The table is read under this lock too, so the last file written holds the newest table.
        let _one_writer = self.persisting.lock();
        let file = OffsetFile {
            offset_table: self
                .offsets
                .lock()
                .iter()
                .map(|(queue, &offset)| QueueOffset {
                    queue: queue.clone(),
                    offset,
                })
                .collect(),
        };
        let json = serde_json::to_vec_pretty(&file).map_err(|e| store_error(&self.path, e))?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| store_error(dir, e))?;
        let tmp = self.path.with_extension("json.tmp");
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&json)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| store_error(&self.path, e))
    }
}

fn store_error(path: &Path, e: impl std::fmt::Display) -> ClientError {
    ClientError::LocalOffsetStore {
        path: path.display().to_string(),
        message: e.to_string(),
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

    #[test]
    fn offsets_survive_a_reopen_and_leave_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalOffsetStore::open(dir.path(), "10.0.0.1@a", "cg").unwrap();
        assert_eq!(store.read(&mq(0)), None);
        store.update(&mq(0), 42);
        store.update(&mq(3), 7);
        store.persist().unwrap();
        store.update(&mq(0), 43);
        store.persist().unwrap();
        let again = LocalOffsetStore::open(dir.path(), "10.0.0.1@a", "cg").unwrap();
        assert_eq!(again.read(&mq(0)), Some(43));
        assert_eq!(again.read(&mq(3)), Some(7));
        assert!(again.path().ends_with("10.0.0.1@a/cg/offsets.json"));
        let names: Vec<_> = std::fs::read_dir(again.path().parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("offsets.json")]);
        // Another client's offsets are its own.
        let other = LocalOffsetStore::open(dir.path(), "10.0.0.1@b", "cg").unwrap();
        assert_eq!(other.read(&mq(0)), None);
    }

    #[test]
    fn concurrent_persists_all_succeed_and_keep_every_offset() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(LocalOffsetStore::open(dir.path(), "c", "g").unwrap());
        let writers: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for round in 0..20 {
                        store.update(&mq(i), round);
                        store.persist().unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        let again = LocalOffsetStore::open(dir.path(), "c", "g").unwrap();
        assert!((0..8).all(|i| again.read(&mq(i)) == Some(19)));
    }

    #[test]
    fn a_corrupt_file_is_an_error_not_a_silent_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c").join("g");
        std::fs::create_dir_all(&path).unwrap();
        std::fs::write(path.join(FILE_NAME), b"{not json").unwrap();
        assert!(LocalOffsetStore::open(dir.path(), "c", "g").is_err());
    }
}
