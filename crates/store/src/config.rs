//! `StoreConfig`: every bound and path of the message store, with RocketMQ's defaults.
//! Owns no state; the store reads it once at open.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use petrel_common::record::{java_string_hash, DecodedRecord};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushDiskType {
    /// A background thread writes dirty pages back every `flush_interval_ms` (RocketMQ default).
    AsyncFlush,
    /// `put_message` returns once its bytes are on disk (group commit).
    SyncFlush,
}

/// Computes the consume-queue tags code of a stored record when recovery re-dispatches it.
/// Must agree with the `tags_code` the broker passes to `put_message`. A closure, so the broker
/// can capture its own settings (the delay levels behind `SCHEDULE_TOPIC_XXXX` tags codes).
#[derive(Clone)]
pub struct TagsCodeFn(Arc<dyn Fn(&DecodedRecord<'_>) -> i64 + Send + Sync>);

impl TagsCodeFn {
    pub fn new(f: impl Fn(&DecodedRecord<'_>) -> i64 + Send + Sync + 'static) -> Self {
        TagsCodeFn(Arc::new(f))
    }

    pub fn call(&self, record: &DecodedRecord<'_>) -> i64 {
        (self.0)(record)
    }
}

impl fmt::Debug for TagsCodeFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TagsCodeFn")
    }
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `storePathRootDir`; holds `commitlog/`, `consumequeue/`, `index/`, `checkpoint`, `abort`.
    pub root_dir: PathBuf,
    /// `mappedFileSizeCommitLog`: bytes per commit-log segment (1 GiB).
    pub commit_log_file_size: u64,
    /// `mappedFileSizeConsumeQueue` / 20: entries per consume-queue file (300,000).
    pub consume_queue_entries_per_file: u32,
    /// `flushDiskType`.
    pub flush_disk_type: FlushDiskType,
    /// `flushIntervalCommitLog`: async flush period, also the consume-queue/checkpoint period (500 ms).
    pub flush_interval_ms: u64,
    /// `syncFlushTimeout`: how long a sync-flush put waits before FLUSH_DISK_TIMEOUT (5 s).
    pub sync_flush_timeout_ms: u64,
    /// Fault injection for tests and fault drills (a slow disk); off by default.
    pub flush_fault: crate::flush::FlushFault,
    /// `maxMessageSize`: the largest body accepted (4 MiB).
    pub max_message_bytes: usize,
    /// `maxHashSlotNum`: hash slots per index file (5,000,000).
    pub max_hash_slot_num: u32,
    /// `maxIndexNum`: entries per index file before a new one starts (20,000,000).
    pub max_index_num: u32,
    /// Tags code of a record being re-dispatched by recovery; defaults to the hash of `TAGS`.
    pub tags_code_of: TagsCodeFn,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            root_dir: PathBuf::from("store"),
            commit_log_file_size: 1 << 30,
            consume_queue_entries_per_file: 300_000,
            flush_disk_type: FlushDiskType::AsyncFlush,
            flush_interval_ms: 500,
            sync_flush_timeout_ms: 5000,
            flush_fault: crate::flush::FlushFault::default(),
            max_message_bytes: 4 * 1024 * 1024,
            max_hash_slot_num: 5_000_000,
            max_index_num: 20_000_000,
            tags_code_of: TagsCodeFn::new(tags_code_from_properties),
        }
    }
}

impl StoreConfig {
    pub fn new(root_dir: impl Into<PathBuf>) -> Self {
        StoreConfig {
            root_dir: root_dir.into(),
            ..StoreConfig::default()
        }
    }

    pub fn commit_log_dir(&self) -> PathBuf {
        self.root_dir.join("commitlog")
    }

    pub fn consume_queue_dir(&self) -> PathBuf {
        self.root_dir.join("consumequeue")
    }

    pub fn index_dir(&self) -> PathBuf {
        self.root_dir.join("index")
    }

    pub fn checkpoint_path(&self) -> PathBuf {
        self.root_dir.join("checkpoint")
    }

    pub fn abort_path(&self) -> PathBuf {
        self.root_dir.join("abort")
    }

    pub fn root(&self) -> &Path {
        &self.root_dir
    }
}

/// Java hash of the `TAGS` property, 0 without one (RocketMQ's `tagsString2tagsCode`).
pub fn tags_code_from_properties(record: &DecodedRecord<'_>) -> i64 {
    property_value(record.properties, b"TAGS")
        .and_then(|v| std::str::from_utf8(v).ok())
        .map_or(0, |tags| i64::from(java_string_hash(tags)))
}

/// The value of `name` in a raw properties string, without allocating.
pub fn property_value<'a>(properties: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    properties.split(|&b| b == 2).find_map(|pair| {
        let sep = pair.iter().position(|&b| b == 1)?;
        (&pair[..sep] == name && sep + 1 < pair.len()).then(|| &pair[sep + 1..])
    })
}
