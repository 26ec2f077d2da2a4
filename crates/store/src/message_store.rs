//! `MessageStore`: the facade the broker calls. Owns the append critical section (queue offsets,
//! store timestamps, commit-log append and consume-queue dispatch under one lock), the read paths
//! (pull, view by id, query by key, offset queries), start-up (abort marker, recovery, flusher,
//! warmer, retention and index threads) and shutdown. Knows nothing about the network.

use std::cmp::Ordering as CmpOrdering;
use std::fs::{self, File};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use parking_lot::{Mutex, RwLock};
use petrel_common::record::{
    self, DecodedRecord, MESSAGE_MAGIC_V1, MESSAGE_MAGIC_V2, SYSFLAG_TRANSACTION_MASK,
    SYSFLAG_TRANSACTION_PREPARED, SYSFLAG_TRANSACTION_ROLLBACK, SYS_FLAG_POS,
};
use tokio::sync::watch;

use crate::checkpoint::{Checkpoint, CheckpointData};
use crate::commit_log::{read_i32, CommitLog};
use crate::config::{FlushDiskType, StoreConfig};
use crate::consume_queue::{ConsumeQueueTable, CqEntry};
use crate::epoch::EpochFile;
use crate::error::StoreError;
use crate::flush::FlushService;
use crate::index::{record_has_key, IndexService};
use crate::index_dispatch::{IndexDispatcher, IndexProgress};
use crate::recovery;
use crate::retention::{self, Retention, RetentionReport, RetentionState};

mod replicated;
mod truncate;

/// A pull answer stops adding messages once it holds this many bytes (`maxTransferBytesOnMessageInMemory`).
pub const MAX_TRANSFER_BYTES: usize = 256 * 1024;
/// A filtered pull looks at no more than this many entries (`maxFilterMessageCount`).
pub const MAX_FILTER_SCAN_ENTRIES: u32 = 16_000;
/// A key query returns at most this many messages (`maxMsgsNumBatch`).
pub const MAX_QUERY_MESSAGES: usize = 64;
/// A key query gathers this many index candidates beyond what it returns, so that hash
/// collisions dropped on verification do not shrink the answer.
const QUERY_COLLISION_SLACK: usize = 64;
/// How long a key query waits for the index to catch up with the log before answering.
const INDEX_CATCH_UP_WAIT: Duration = Duration::from_secs(2);
/// Topic, properties and fixed fields may add this much to `max_message_bytes` of body.
pub const MAX_RECORD_OVERHEAD_BYTES: usize = 64 * 1024;

/// Told the new max offset of a queue after each append (wakes parked long-poll pulls).
pub type ArrivalListener = Arc<dyn Fn(&str, i32, i64) + Send + Sync>;

/// One encoded record to append (built with `petrel_common::record::encode`). The store patches
/// QUEUEOFFSET, PHYSICALOFFSET and STORETIMESTAMP.
#[derive(Debug)]
pub struct AppendRequest {
    pub record: BytesMut,
    pub topic: String,
    pub queue_id: i32,
    pub tags_code: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendStatus {
    PutOk,
    /// SYNC_FLUSH only: stored, but not confirmed on disk within `sync_flush_timeout_ms`.
    FlushDiskTimeout,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendResult {
    pub status: AppendStatus,
    pub first_physical_offset: i64,
    /// Queue offset of the first record (0 for prepared/rollback transaction records, which get
    /// no consume-queue entry).
    pub first_queue_offset: i64,
    /// One per record, in order.
    pub physical_offsets: Vec<i64>,
    /// Commit-log offset just past the last record: what a slave must have for the send to be
    /// replicated.
    pub end_physical_offset: i64,
    pub store_timestamp: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetStatus {
    Found,
    NoMessageInQueue,
    OffsetTooSmall,
    OffsetOverflowOne,
    OffsetOverflowBadly,
    NoMatchedMessage,
    OffsetFoundNull,
}

#[derive(Debug, Clone)]
pub struct GetResult {
    pub status: GetStatus,
    pub next_begin_offset: i64,
    pub min_offset: i64,
    pub max_offset: i64,
    /// Each one stored record, sliced from its mapped segment without copying.
    pub messages: Vec<Bytes>,
}

/// Answer to a key query (QUERY_MESSAGE).
#[derive(Debug, Clone, Default)]
pub struct QueryResult {
    /// Whole stored records, oldest first.
    pub messages: Vec<Bytes>,
    /// Store time of the newest index entry.
    pub index_last_update_timestamp: i64,
    /// Commit-log offset of the newest index entry.
    pub index_last_update_phyoffset: i64,
}

/// What the flusher thread shares with the store.
pub(crate) struct Shared {
    pub(crate) config: StoreConfig,
    pub(crate) commit_log: CommitLog,
    pub(crate) queues: ConsumeQueueTable,
    pub(crate) index: IndexService,
    checkpoint: Checkpoint,
    last_store_timestamp: AtomicI64,
    pub(crate) retention: RetentionState,
    /// Held by the flusher while it flushes and writes the checkpoint, and by a commit-log cut
    /// ([`MessageStore::truncate_to`]), so neither sees the other's positions half moved.
    pub(crate) flush_lock: Mutex<()>,
}

impl Shared {
    /// Flushes every consume queue and the commit log, then records how far both are durable.
    pub(crate) fn flush_queues_and_checkpoint(&self) -> std::io::Result<()> {
        // Every record below `dispatched` already has its entry written (the append lock
        // publishes the log end only after dispatch), so flushing the queues afterwards makes
        // all of those entries durable.
        let dispatched = self.commit_log.max_offset();
        let timestamp = self.last_store_timestamp.load(Ordering::Acquire);
        self.queues.flush_all()?;
        self.index.flush()?;
        let flushed = self.commit_log.flush()?;
        self.checkpoint.write(&CheckpointData {
            physic_msg_timestamp: timestamp,
            logics_msg_timestamp: timestamp,
            physic_flushed_offset: flushed.min(self.commit_log.max_offset()),
            logics_flushed_offset: dispatched,
            ..CheckpointData::default()
        })
    }

    /// Recovery's dispatch of one record: writes its entry unless the queue already has it.
    pub(crate) fn dispatch_recovered(
        &self,
        r: &DecodedRecord<'_>,
        tags_code: i64,
    ) -> Result<(), StoreError> {
        if !is_dispatched(r.sys_flag) {
            return Ok(());
        }
        let cq = self.queues.get_or_create(r.topic, r.queue_id)?;
        let max = cq.max_offset();
        match r.queue_offset.cmp(&max) {
            CmpOrdering::Less => return Ok(()),
            CmpOrdering::Greater => tracing::warn!(
                topic = r.topic,
                queue_id = r.queue_id,
                expected = max,
                found = r.queue_offset,
                "consume queue has a hole; entries in between are lost"
            ),
            CmpOrdering::Equal => {}
        }
        cq.put(
            r.queue_offset,
            CqEntry {
                commit_log_offset: r.physical_offset,
                size: r.total_size,
                tags_code,
            },
        )?;
        self.last_store_timestamp
            .fetch_max(r.store_timestamp, Ordering::AcqRel);
        Ok(())
    }
}

/// Prepared and rollback transaction records get no consume-queue entry (as in RocketMQ).
fn is_dispatched(sys_flag: i32) -> bool {
    let tx = sys_flag & SYSFLAG_TRANSACTION_MASK;
    tx != SYSFLAG_TRANSACTION_PREPARED && tx != SYSFLAG_TRANSACTION_ROLLBACK
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub struct MessageStore {
    shared: Arc<Shared>,
    /// The append critical section; holds the last store timestamp handed out, so store
    /// timestamps never go backwards along the log (offset_by_timestamp relies on it).
    append_lock: Mutex<i64>,
    flush: Arc<FlushService>,
    flusher: Mutex<Option<JoinHandle<()>>>,
    warmer: Mutex<crate::warm::Warmer>,
    retention: Mutex<Retention>,
    /// Writes index entries behind the appends (outside the append lock).
    index_dispatcher: Mutex<IndexDispatcher>,
    index_progress: Arc<IndexProgress>,
    arrival_listener: RwLock<Option<ArrivalListener>>,
    /// The published log end, for the HA master's streamers to wait on.
    log_end: watch::Sender<i64>,
    /// A slave's store: only [`MessageStore::append_replicated`] writes.
    replica: AtomicBool,
    shut_down: AtomicBool,
    /// The epoch history of this log (controller mode), at `<root>/epochs`.
    epochs: EpochFile,
}

impl MessageStore {
    /// Opens the store under `config.root_dir`, recovering first if the `abort` marker says the
    /// last run crashed, then writes the marker and starts the flusher.
    pub fn open(config: StoreConfig) -> Result<Arc<MessageStore>, StoreError> {
        fs::create_dir_all(&config.root_dir)?;
        if config.commit_log_file_size < 4096 || config.commit_log_file_size > i32::MAX as u64 {
            return Err(StoreError::BadRequest(
                "commit_log_file_size must be in 4 KiB ..= 2 GiB",
            ));
        }
        if config.consume_queue_entries_per_file == 0 {
            return Err(StoreError::BadRequest(
                "consume_queue_entries_per_file is 0",
            ));
        }
        check_retention_config(&config)?;
        let epochs = EpochFile::open(&config.root_dir.join("epochs"))?;
        let abnormal = config.abort_path().exists();
        let commit_log = CommitLog::open(
            &config.commit_log_dir(),
            config.commit_log_file_size as usize,
        )?;
        let queues = ConsumeQueueTable::load(
            &config.consume_queue_dir(),
            config.consume_queue_entries_per_file,
        )?;
        let index = IndexService::load(
            &config.index_dir(),
            config.max_hash_slot_num,
            config.max_index_num,
        )?;
        let (checkpoint, checkpoint_data) = Checkpoint::open(&config.checkpoint_path())?;
        let last_ts = checkpoint_data.map_or(0, |c| c.physic_msg_timestamp);
        let shared = Arc::new(Shared {
            config,
            commit_log,
            queues,
            index,
            checkpoint,
            last_store_timestamp: AtomicI64::new(last_ts),
            retention: RetentionState::default(),
            flush_lock: Mutex::new(()),
        });
        let had_files = !shared.commit_log.files().files().is_empty();
        recovery::recover(&shared, checkpoint_data, abnormal && had_files)?;

        File::create(shared.config.abort_path())?.sync_all()?;
        File::open(&shared.config.root_dir)?.sync_all()?;

        let flush = Arc::new(FlushService::default());
        let thread = {
            let flush = Arc::clone(&flush);
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("petrel-store-flush".into())
                .spawn(move || flush.run(shared))?
        };
        let warmer = crate::warm::Warmer::start(Arc::clone(&shared))?;
        // Measured before the first append, so a store opened on a full disk refuses at once.
        shared.retention.measure_disk(&shared.config);
        let retention = Retention::start(Arc::clone(&shared))?;
        let index_dispatcher = IndexDispatcher::start(Arc::clone(&shared))?;
        let index_progress = Arc::clone(index_dispatcher.progress());
        let last = shared.last_store_timestamp.load(Ordering::Acquire);
        let log_end = watch::Sender::new(shared.commit_log.max_offset());
        Ok(Arc::new(MessageStore {
            warmer: Mutex::new(warmer),
            retention: Mutex::new(retention),
            index_dispatcher: Mutex::new(index_dispatcher),
            index_progress,
            shared,
            append_lock: Mutex::new(last),
            flush,
            flusher: Mutex::new(Some(thread)),
            arrival_listener: RwLock::new(None),
            log_end,
            replica: AtomicBool::new(false),
            shut_down: AtomicBool::new(false),
            epochs,
        }))
    }

    pub fn config(&self) -> &StoreConfig {
        &self.shared.config
    }

    /// The epoch history of this log (controller mode), kept at `<root>/epochs`.
    pub fn epochs(&self) -> &EpochFile {
        &self.epochs
    }

    /// Appends one record. See [`AppendRequest`].
    pub async fn put_message(&self, req: AppendRequest) -> Result<AppendResult, StoreError> {
        self.put_messages(vec![req]).await
    }

    /// Appends records of one topic/queue in one critical section, with consecutive queue offsets.
    pub async fn put_messages(
        &self,
        mut reqs: Vec<AppendRequest>,
    ) -> Result<AppendResult, StoreError> {
        let (topic, queue_id) = match reqs.first() {
            Some(first) => (first.topic.clone(), first.queue_id),
            None => return Err(StoreError::BadRequest("empty batch")),
        };
        for req in &reqs {
            if req.topic != topic || req.queue_id != queue_id {
                return Err(StoreError::BadRequest(
                    "a batch must target one topic and queue",
                ));
            }
            self.check_record(&req.record)?;
        }
        if self.replica.load(Ordering::Acquire) {
            return Err(StoreError::Replica);
        }
        self.shared.retention.check_writable(&self.shared.config)?;
        let (result, end, new_max) = self.append(&topic, queue_id, &mut reqs)?;
        self.publish_log_end(end);

        let listener = self.arrival_listener.read().clone();
        if let Some(listener) = listener {
            listener(&topic, queue_id, new_max);
        }
        if self.shared.config.flush_disk_type == FlushDiskType::SyncFlush {
            let done = self.flush.request(end);
            let timeout = Duration::from_millis(self.shared.config.sync_flush_timeout_ms);
            let flushed = matches!(tokio::time::timeout(timeout, done).await, Ok(Ok(true)));
            if !flushed {
                return Ok(AppendResult {
                    status: AppendStatus::FlushDiskTimeout,
                    ..result
                });
            }
        }
        Ok(result)
    }

    /// Checks a caller-built record before it enters the critical section.
    fn check_record(&self, record: &[u8]) -> Result<(), StoreError> {
        let (size, magic) = record::peek_total_size(record)
            .ok_or(StoreError::BadRequest("record shorter than its header"))?;
        if magic != MESSAGE_MAGIC_V1 && magic != MESSAGE_MAGIC_V2 {
            return Err(StoreError::BadRequest("record has no message magic"));
        }
        if size as usize != record.len() || record.len() < record::FIXED_OVERHEAD_V4_BYTES {
            return Err(StoreError::BadRequest(
                "record TOTALSIZE differs from its length",
            ));
        }
        let limit = (self.shared.config.max_message_bytes + MAX_RECORD_OVERHEAD_BYTES)
            .min(self.shared.commit_log.file_size() - record::END_FILE_MIN_BLANK_BYTES);
        if record.len() > limit {
            return Err(StoreError::MessageTooLarge {
                len: record.len(),
                limit,
            });
        }
        debug_assert!(record::decode(record, true).is_ok());
        Ok(())
    }

    /// The critical section. Returns the result, the log end after the batch and the queue's
    /// new max offset.
    fn append(
        &self,
        topic: &str,
        queue_id: i32,
        reqs: &mut [AppendRequest],
    ) -> Result<(AppendResult, i64, i64), StoreError> {
        let log = &self.shared.commit_log;
        let mut last_ts = self.append_lock.lock();
        if self.shut_down.load(Ordering::Acquire) {
            return Err(StoreError::ShutDown);
        }
        let store_timestamp = now_ms().max(*last_ts);
        *last_ts = store_timestamp;
        let cq = self.shared.queues.get_or_create(topic, queue_id)?;
        let mut queue_offset = cq.max_offset();
        let first_queue_offset = queue_offset;
        let mut end = log.max_offset();
        // Queue offsets in order, for the records the consume queue lists.
        let mut assigned = Vec::with_capacity(reqs.len());
        for req in reqs.iter() {
            if is_dispatched(read_i32(&req.record, SYS_FLAG_POS)) {
                assigned.push(Some(queue_offset));
                queue_offset += 1;
            } else {
                assigned.push(None);
            }
        }
        let records = reqs
            .iter_mut()
            .zip(&assigned)
            .map(|(req, q)| (&mut req.record[..], q.unwrap_or(0)));
        let (physical_offsets, mut outcome) = log.append_all(records, store_timestamp);
        queue_offset = first_queue_offset;
        for ((req, q), &phys) in reqs.iter().zip(&assigned).zip(&physical_offsets) {
            assert!(phys >= end, "commit log offsets only grow");
            end = phys + req.record.len() as i64;
            let Some(q) = *q else { continue };
            let entry = CqEntry {
                commit_log_offset: phys,
                size: req.record.len() as i32,
                tags_code: req.tags_code,
            };
            if let Err(e) = cq.put(q, entry) {
                outcome = Err(e);
                break;
            }
            queue_offset = q + 1;
        }
        self.shared
            .last_store_timestamp
            .store(store_timestamp, Ordering::Release);
        log.set_max_offset(end);
        drop(last_ts);
        self.index_progress.notify_appended();
        outcome?;
        let result = AppendResult {
            status: AppendStatus::PutOk,
            first_physical_offset: physical_offsets[0],
            first_queue_offset: if queue_offset > first_queue_offset {
                first_queue_offset
            } else {
                0
            },
            physical_offsets,
            end_physical_offset: end,
            store_timestamp,
        };
        Ok((result, end, queue_offset))
    }

    /// Messages of `topic` whose KEYS contain `key` or whose UNIQ_KEY is `key`, stored within
    /// `[begin_ms, end_ms]`: the newest `max_num` (at most [`MAX_QUERY_MESSAGES`]), returned
    /// oldest first. Every candidate from the index is decoded and checked, so hash collisions
    /// and stale entries never reach the answer.
    pub fn query_by_key(
        &self,
        topic: &str,
        key: &str,
        max_num: usize,
        begin_ms: i64,
        end_ms: i64,
    ) -> QueryResult {
        let max_num = max_num.min(MAX_QUERY_MESSAGES);
        // Every message acknowledged before the query is found: wait for the index to reach
        // the log end as of now (it follows within milliseconds).
        let log_end = self.shared.commit_log.max_offset();
        if !self
            .index_progress
            .wait_indexed(log_end, INDEX_CATCH_UP_WAIT)
        {
            tracing::warn!(
                log_end,
                "the index is behind the log; the answer may miss new messages"
            );
        }
        let lookup = self.shared.index.lookup(
            topic,
            key,
            max_num + QUERY_COLLISION_SLACK,
            begin_ms,
            end_ms,
        );
        let mut found: Vec<(i64, Bytes)> = Vec::with_capacity(max_num.min(lookup.offsets.len()));
        for phy in lookup.offsets {
            if found.len() >= max_num {
                break;
            }
            if found.iter().any(|(o, _)| *o == phy) {
                continue;
            }
            let Some(bytes) = self.read_record(phy) else {
                continue;
            };
            let matches = record::decode(&bytes, false).is_ok_and(|r| {
                r.physical_offset == phy
                    && r.topic == topic
                    && (begin_ms..=end_ms).contains(&r.store_timestamp)
                    && std::str::from_utf8(r.properties).is_ok_and(|p| record_has_key(p, key))
            });
            if matches {
                found.push((phy, bytes));
            }
        }
        found.sort_unstable_by_key(|(o, _)| *o);
        QueryResult {
            messages: found.into_iter().map(|(_, b)| b).collect(),
            index_last_update_timestamp: lookup.last_update_timestamp,
            index_last_update_phyoffset: lookup.last_update_phy_offset,
        }
    }

    /// Reads up to `max_count` messages of a queue from logical `offset`, skipping those
    /// `filter` rejects (first on the consume-queue entry's tags code, then, if it asks, on the
    /// stored record's properties), stopping at [`MAX_TRANSFER_BYTES`] (always at least one).
    pub fn get_messages(
        &self,
        topic: &str,
        queue_id: i32,
        offset: i64,
        max_count: u32,
        filter: &dyn petrel_common::filter::MessageFilter,
    ) -> GetResult {
        let empty = |status, next_begin_offset, min_offset, max_offset| GetResult {
            status,
            next_begin_offset,
            min_offset,
            max_offset,
            messages: Vec::new(),
        };
        let Some(cq) = self.shared.queues.get(topic, queue_id) else {
            return empty(GetStatus::NoMessageInQueue, 0, 0, 0);
        };
        let (min, max) = (cq.min_offset(), cq.max_offset());
        if max == 0 {
            return empty(GetStatus::NoMessageInQueue, 0, min, max);
        }
        match offset {
            o if o < min => return empty(GetStatus::OffsetTooSmall, min, min, max),
            o if o == max => return empty(GetStatus::OffsetOverflowOne, offset, min, max),
            o if o > max => return empty(GetStatus::OffsetOverflowBadly, max, min, max),
            _ => {}
        }
        let max_count = max_count.max(1);
        let scan_limit = offset + i64::from(MAX_FILTER_SCAN_ENTRIES.max(max_count));
        let mut messages = Vec::with_capacity(max_count.min(32) as usize);
        let mut bytes = 0usize;
        let mut missing = false;
        let mut next = offset;
        while next < max && next < scan_limit && messages.len() < max_count as usize {
            let Some(entry) = cq.get(next) else {
                missing = true;
                next += 1;
                continue;
            };
            let size = entry.size.max(0) as usize;
            if !messages.is_empty() && bytes + size > MAX_TRANSFER_BYTES {
                break;
            }
            next += 1;
            if entry.size <= 0 {
                missing = true;
                continue;
            }
            if !filter.matches_tags_code(entry.tags_code) {
                continue;
            }
            match self.shared.commit_log.read(entry.commit_log_offset, size) {
                Some(m) => {
                    // A record that does not decode has no properties a filter could match.
                    if filter.needs_properties()
                        && !record::decode(&m, false)
                            .is_ok_and(|r| filter.matches_properties(r.properties))
                    {
                        continue;
                    }
                    bytes += size;
                    messages.push(m);
                }
                None => missing = true,
            }
        }
        let status = if !messages.is_empty() {
            GetStatus::Found
        } else if missing {
            GetStatus::OffsetFoundNull
        } else {
            GetStatus::NoMatchedMessage
        };
        GetResult {
            status,
            next_begin_offset: next,
            min_offset: min,
            max_offset: max,
            messages,
        }
    }

    /// Next logical offset to be written in the queue, 0 if it does not exist.
    pub fn max_offset(&self, topic: &str, queue_id: i32) -> i64 {
        self.shared
            .queues
            .get(topic, queue_id)
            .map_or(0, |cq| cq.max_offset())
    }

    pub fn min_offset(&self, topic: &str, queue_id: i32) -> i64 {
        self.shared
            .queues
            .get(topic, queue_id)
            .map_or(0, |cq| cq.min_offset())
    }

    /// Store time of the message at logical `offset` of a queue, if it is still there.
    pub fn store_time_of(&self, topic: &str, queue_id: i32, offset: i64) -> Option<i64> {
        let entry = self.shared.queues.get(topic, queue_id)?.get(offset)?;
        self.shared
            .commit_log
            .store_timestamp_at(entry.commit_log_offset)
    }

    /// First logical offset whose store time is at or after `timestamp_ms`; the max offset if
    /// every message is older.
    pub fn offset_by_timestamp(&self, topic: &str, queue_id: i32, timestamp_ms: i64) -> i64 {
        let (mut lo, mut hi) = (
            self.min_offset(topic, queue_id),
            self.max_offset(topic, queue_id),
        );
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let older = self
                .store_time_of(topic, queue_id, mid)
                .is_none_or(|t| t < timestamp_ms);
            if older {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Store time of the oldest message still in the queue.
    pub fn earliest_message_time(&self, topic: &str, queue_id: i32) -> Option<i64> {
        self.store_time_of(topic, queue_id, self.min_offset(topic, queue_id))
    }

    /// The whole stored record at `physical_offset` (VIEW_MESSAGE_BY_ID).
    pub fn read_record(&self, physical_offset: i64) -> Option<Bytes> {
        self.shared.commit_log.read_record(physical_offset)
    }

    /// Store time of the oldest record in the commit log (`earliestMessageTimeStamp`).
    pub fn earliest_commit_log_time(&self) -> Option<i64> {
        self.shared
            .commit_log
            .store_timestamp_at(self.min_physical_offset())
    }

    pub fn max_physical_offset(&self) -> i64 {
        self.shared.commit_log.max_offset()
    }

    pub fn min_physical_offset(&self) -> i64 {
        self.shared.commit_log.min_offset()
    }

    /// Commit-log offset below which every byte is flushed to disk.
    pub fn flushed_physical_offset(&self) -> i64 {
        let queue = self.shared.commit_log.files();
        let files = queue.files();
        files
            .iter()
            .find(|f| f.flushed_pos() < f.wrote_pos())
            .or(files.last())
            .map_or(queue.min_offset(), |f| {
                f.file_from_offset() + f.flushed_pos() as i64
            })
    }

    /// Bytes appended but not yet dispatched. Consume queues are written inside the append, so
    /// this is what the index dispatcher still has to read (RocketMQ's `dispatchBehindBytes`).
    pub fn dispatch_behind_bytes(&self) -> i64 {
        (self.max_physical_offset() - self.index_progress.indexed_to()).max(0)
    }

    pub fn set_arrival_listener(&self, f: ArrivalListener) {
        *self.arrival_listener.write() = Some(f);
    }

    /// Every (topic, queue id) with a consume queue on disk.
    pub fn topics_and_queues(&self) -> Vec<(String, i32)> {
        let mut v: Vec<_> = self
            .shared
            .queues
            .all()
            .iter()
            .map(|cq| (cq.topic().to_owned(), cq.queue_id()))
            .collect();
        v.sort();
        v
    }

    /// Used fraction of the commit log's filesystem at the last retention measurement
    /// (`commitLogDiskRatio`); `None` if it could not be measured.
    pub fn disk_used_ratio(&self) -> Option<f64> {
        self.shared.retention.disk_used_ratio()
    }

    /// Runs one retention pass now (the retention thread runs one every
    /// `clean_resource_interval_ms`): measures the disk, deletes expired segments if it is time,
    /// then the consume-queue and index files below the log's new minimum.
    pub fn run_retention_pass(&self) -> RetentionReport {
        retention::run_pass(&self.shared)
    }

    /// Stops appends, flushes everything, writes the checkpoint and removes the abort marker.
    pub fn shutdown(&self) {
        if self.shut_down.swap(true, Ordering::AcqRel) {
            return;
        }
        // Wait out an append in progress; later ones see `shut_down`.
        drop(self.append_lock.lock());
        // Before the final flush, so the index it writes covers the whole log.
        self.index_dispatcher.lock().stop();
        self.retention.lock().stop();
        self.warmer.lock().stop();
        self.flush.stop(true);
        if let Some(thread) = self.flusher.lock().take() {
            let _ = thread.join();
        }
        let result = self
            .shared
            .flush_queues_and_checkpoint()
            .and_then(|()| fs::remove_file(self.shared.config.abort_path()))
            .and_then(|()| File::open(&self.shared.config.root_dir)?.sync_all());
        if let Err(e) = result {
            tracing::error!(error = %e, "store shutdown incomplete; next start will recover");
        }
    }
}

impl Drop for MessageStore {
    /// Without `shutdown` this is a crash as far as the files know: the flusher stops without a
    /// final flush and the abort marker stays.
    fn drop(&mut self) {
        if !self.shut_down.load(Ordering::Acquire) {
            self.flush.stop(false);
        }
        if let Some(thread) = self.flusher.lock().take() {
            let _ = thread.join();
        }
        self.index_dispatcher.lock().stop();
        self.retention.lock().stop();
        self.warmer.lock().stop();
    }
}

/// Refuses retention settings that would make it misbehave silently.
fn check_retention_config(config: &StoreConfig) -> Result<(), StoreError> {
    if retention::delete_when_hours(&config.delete_when).any(|h| h.is_err()) {
        return Err(StoreError::BadRequest(
            "deleteWhen must be hours 0..=23 separated by ';'",
        ));
    }
    let ratios = [
        config.disk_space_clean_forcibly_ratio,
        config.disk_space_warning_level_ratio,
    ];
    if ratios.iter().any(|r| !(0.0..=1.0).contains(r)) || config.disk_max_used_space_ratio > 100 {
        return Err(StoreError::BadRequest(
            "disk ratios must be fractions in 0..=1 (diskMaxUsedSpaceRatio a percent)",
        ));
    }
    Ok(())
}
