//! The controllers' Raft (openraft): the type configuration, the log kept in a file, and the
//! state machine ([`ControllerState`]) with its snapshots.
//!
//! The log is small — registrations, elections and in-sync set changes, never heartbeats — so
//! it is kept whole in memory and persisted as an append-only file of JSON lines, fsynced before
//! openraft is told an append is durable. Truncations and purges are lines of their own; a
//! purge rewrites the file with only what remains, so it never grows without bound.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Cursor, Write};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, RaftLogReader, RaftSnapshotBuilder, SnapshotMeta,
    StorageError, StorageIOError, StoredMembership, Vote,
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::state::{Applied, Command, ControllerState};

openraft::declare_raft_types!(
    /// The controllers' Raft types: commands in, [`Applied`] out.
    pub TypeConfig:
        D = Command,
        R = Applied,
        Node = BasicNode,
);

pub type NodeId = u64;
pub type Raft = openraft::Raft<TypeConfig>;
type StoreResult<T> = Result<T, StorageError<NodeId>>;

/// Writes `bytes` to `path` so that a crash leaves the old or the new content, never a mix.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// One line of the log file. Externally tagged: an internally tagged enum buffers its content,
/// and the buffered membership map's integer keys (strings in JSON) then fail to parse.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum LogLine {
    Append {
        entry: Entry<TypeConfig>,
    },
    /// Entries from `index` on are gone (a new leader overwrote an uncommitted tail).
    Truncate {
        index: u64,
    },
    /// Entries up to `log_id` are in a snapshot and no longer kept.
    Purge {
        log_id: LogId<NodeId>,
    },
}

/// JSON lines, one per log line.
fn encode_lines(lines: &[LogLine]) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    for line in lines {
        serde_json::to_writer(&mut buf, line).map_err(io::Error::other)?;
        buf.push(b'\n');
    }
    Ok(buf)
}

#[derive(Default)]
struct LogData {
    entries: BTreeMap<u64, Entry<TypeConfig>>,
    last_purged: Option<LogId<NodeId>>,
    vote: Option<Vote<NodeId>>,
}

/// The Raft log and vote, shared by the store and its readers.
#[derive(Clone)]
pub struct LogStore {
    dir: PathBuf,
    data: Arc<Mutex<LogData>>,
    file: Arc<Mutex<File>>,
}

impl LogStore {
    pub fn open(dir: &Path) -> io::Result<LogStore> {
        fs::create_dir_all(dir)?;
        let path = dir.join("raft-log.jsonl");
        let mut data = LogData::default();
        if path.exists() {
            for (n, line) in BufReader::new(File::open(&path)?).lines().enumerate() {
                let line = line?;
                if line.is_empty() {
                    continue;
                }
                match serde_json::from_str::<LogLine>(&line) {
                    Ok(LogLine::Append { entry }) => {
                        data.entries.insert(entry.log_id.index, entry);
                    }
                    Ok(LogLine::Truncate { index }) => {
                        data.entries.split_off(&index);
                    }
                    Ok(LogLine::Purge { log_id }) => {
                        data.entries = data.entries.split_off(&(log_id.index + 1));
                        data.last_purged = Some(log_id);
                    }
                    // A crash mid-append leaves a partial last line: that append was never
                    // reported durable, so it is dropped. Damage anywhere else is refused.
                    Err(e) => {
                        let rest = BufReader::new(File::open(&path)?).lines().count();
                        if n + 1 < rest {
                            return Err(io::Error::new(
                                io::ErrorKind::InvalidData,
                                format!("{} line {}: {e}", path.display(), n + 1),
                            ));
                        }
                        tracing::warn!(path = %path.display(), "dropping a torn last log line");
                    }
                }
            }
        }
        let vote_path = dir.join("raft-vote.json");
        if vote_path.exists() {
            let raw = fs::read(&vote_path)?;
            data.vote = Some(serde_json::from_slice(&raw).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {e}", vote_path.display()),
                )
            })?);
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(LogStore {
            dir: dir.to_path_buf(),
            data: Arc::new(Mutex::new(data)),
            file: Arc::new(Mutex::new(file)),
        })
    }

    fn write_lines(&self, lines: &[LogLine]) -> io::Result<()> {
        let buf = encode_lines(lines)?;
        let mut file = self.file.lock();
        file.write_all(&buf)?;
        file.sync_data()
    }

    /// Rewrites the file with only the entries kept, after a purge.
    fn rewrite(&self, data: &LogData) -> io::Result<()> {
        let mut lines: Vec<LogLine> = Vec::new();
        if let Some(log_id) = data.last_purged {
            lines.push(LogLine::Purge { log_id });
        }
        lines.extend(data.entries.values().map(|entry| LogLine::Append {
            entry: entry.clone(),
        }));
        let buf = encode_lines(&lines)?;
        let path = self.dir.join("raft-log.jsonl");
        let mut file = self.file.lock();
        write_atomically(&path, &buf)?;
        *file = OpenOptions::new().append(true).open(&path)?;
        Ok(())
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> StoreResult<Vec<Entry<TypeConfig>>> {
        Ok(self
            .data
            .lock()
            .entries
            .range(range)
            .map(|(_, e)| e.clone())
            .collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> StoreResult<LogState<TypeConfig>> {
        let data = self.data.lock();
        let last_purged_log_id = data.last_purged;
        let last_log_id = data
            .entries
            .values()
            .next_back()
            .map(|e| e.log_id)
            .or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> StoreResult<()> {
        let raw = serde_json::to_vec(vote).map_err(|e| StorageIOError::write_vote(&e))?;
        write_atomically(&self.dir.join("raft-vote.json"), &raw)
            .map_err(|e| StorageIOError::write_vote(&e))?;
        self.data.lock().vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> StoreResult<Option<Vote<NodeId>>> {
        Ok(self.data.lock().vote)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> StoreResult<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<_> = entries.into_iter().collect();
        let lines: Vec<LogLine> = entries
            .iter()
            .map(|entry| LogLine::Append {
                entry: entry.clone(),
            })
            .collect();
        let written = self.write_lines(&lines);
        if written.is_ok() {
            let mut data = self.data.lock();
            for entry in entries {
                data.entries.insert(entry.log_id.index, entry);
            }
        }
        let failed = written
            .as_ref()
            .err()
            .map(|e| StorageIOError::write_logs(e).into());
        callback.log_io_completed(written);
        failed.map_or(Ok(()), Err)
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> StoreResult<()> {
        self.write_lines(&[LogLine::Truncate {
            index: log_id.index,
        }])
        .map_err(|e| StorageIOError::write_logs(&e))?;
        self.data.lock().entries.split_off(&log_id.index);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> StoreResult<()> {
        let mut data = self.data.lock();
        data.entries = data.entries.split_off(&(log_id.index + 1));
        data.last_purged = Some(log_id);
        self.rewrite(&data)
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }
}

/// What a snapshot holds, and the state machine's file.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StateImage {
    last_applied: Option<LogId<NodeId>>,
    last_membership: StoredMembership<NodeId, BasicNode>,
    state: ControllerState,
    snapshot_id: String,
}

/// The applied state, readable by the request processor while Raft applies to it.
#[derive(Clone)]
pub struct StateMachine {
    path: PathBuf,
    image: Arc<Mutex<StateImage>>,
}

impl StateMachine {
    /// Starts from the last snapshot kept on disk: the log before it may have been purged.
    pub fn open(dir: &Path) -> io::Result<StateMachine> {
        let path = dir.join("raft-snapshot.json");
        let image = if path.exists() {
            serde_json::from_slice(&fs::read(&path)?).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            })?
        } else {
            StateImage::default()
        };
        Ok(StateMachine {
            path,
            image: Arc::new(Mutex::new(image)),
        })
    }

    /// The agreed state as applied on this controller.
    pub fn state(&self) -> ControllerState {
        self.image.lock().state.clone()
    }

    fn snapshot_of(&self, image: &StateImage) -> io::Result<Snapshot<TypeConfig>> {
        let bytes = serde_json::to_vec(image).map_err(io::Error::other)?;
        Ok(Snapshot {
            meta: SnapshotMeta {
                last_log_id: image.last_applied,
                last_membership: image.last_membership.clone(),
                snapshot_id: image.snapshot_id.clone(),
            },
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> StoreResult<Snapshot<TypeConfig>> {
        let image = {
            let mut image = self.image.lock();
            image.snapshot_id = match image.last_applied {
                Some(id) => format!("{}-{}", id.leader_id, id.index),
                None => "empty".to_owned(),
            };
            image.clone()
        };
        let bytes =
            serde_json::to_vec(&image).map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        write_atomically(&self.path, &bytes)
            .map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        self.snapshot_of(&image)
            .map_err(|e| StorageIOError::read_snapshot(None, &e).into())
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = StateMachine;

    async fn applied_state(
        &mut self,
    ) -> StoreResult<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>)> {
        let image = self.image.lock();
        Ok((image.last_applied, image.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> StoreResult<Vec<Applied>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut image = self.image.lock();
        let mut out = Vec::new();
        for entry in entries {
            image.last_applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => out.push(Applied::default()),
                EntryPayload::Normal(command) => {
                    let applied = image.state.apply(&command);
                    if let Some(refused) = &applied.refused {
                        tracing::info!(group = command.broker_name(), "refused: {refused}");
                    }
                    out.push(applied);
                }
                EntryPayload::Membership(m) => {
                    image.last_membership = StoredMembership::new(Some(entry.log_id), m);
                    out.push(Applied::default());
                }
            }
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> StoreResult<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> StoreResult<()> {
        let bytes = snapshot.into_inner();
        let mut image: StateImage = serde_json::from_slice(&bytes)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        image.last_applied = meta.last_log_id;
        image.last_membership = meta.last_membership.clone();
        image.snapshot_id = meta.snapshot_id.clone();
        let raw = serde_json::to_vec(&image)
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        write_atomically(&self.path, &raw)
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        *self.image.lock() = image;
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> StoreResult<Option<Snapshot<TypeConfig>>> {
        if !self.path.exists() {
            return Ok(None);
        }
        let image: StateImage = serde_json::from_slice(
            &fs::read(&self.path).map_err(|e| StorageIOError::read_snapshot(None, &e))?,
        )
        .map_err(|e| StorageIOError::read_snapshot(None, &e))?;
        self.snapshot_of(&image)
            .map(Some)
            .map_err(|e| StorageIOError::read_snapshot(None, &e).into())
    }
}
