//! `StoreConfig`: every bound and path of the message store, with RocketMQ's defaults.
//! Owns no state; the store reads it once at open.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use petrel_common::properties;
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

/// The used fraction (0.0 ..= 1.0) of the filesystem holding a directory. A closure, so a test
/// can simulate a full disk without filling one.
#[derive(Clone)]
pub struct DiskUsageFn(Arc<DiskUsageProbe>);

type DiskUsageProbe = dyn Fn(&Path) -> io::Result<f64> + Send + Sync;

impl DiskUsageFn {
    pub fn new(f: impl Fn(&Path) -> io::Result<f64> + Send + Sync + 'static) -> Self {
        DiskUsageFn(Arc::new(f))
    }

    pub fn call(&self, dir: &Path) -> io::Result<f64> {
        (self.0)(dir)
    }
}

impl fmt::Debug for DiskUsageFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DiskUsageFn")
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
    /// `fileReservedTime`: a commit-log segment not modified for this long may be deleted (72 h;
    /// the config file gives hours).
    pub file_reserved_time: Duration,
    /// `deleteWhen`: local hours, `;`-separated, in which expired segments are deleted ("04").
    pub delete_when: String,
    /// `diskMaxUsedSpaceRatio`, percent (75): above it expired segments are deleted at any hour.
    pub disk_max_used_space_ratio: u32,
    /// `diskSpaceCleanForciblyRatio` (0.85): above it the oldest segments are deleted whether
    /// expired or not.
    pub disk_space_clean_forcibly_ratio: f64,
    /// `diskSpaceWarningLevelRatio` (0.90): above it appends are refused with `DiskFull`.
    pub disk_space_warning_level_ratio: f64,
    /// `cleanResourceInterval`: how often disk usage is measured and retention runs (10 s).
    pub clean_resource_interval_ms: u64,
    /// `deleteCommitLogFilesInterval`: pause between deleting two segments (100 ms), so a burst
    /// of unlinks does not stall the disk.
    pub delete_commit_log_files_interval_ms: u64,
    /// `destroyMapedFileIntervalForcibly`: a deleted segment still mapped by an in-flight pull
    /// answer after this long is reported, as it pins its disk space (120 s).
    pub destroy_mapped_file_interval_forcibly_ms: u64,
    /// `deleteFileBatchMax`: most commit-log segments one retention pass deletes (10).
    pub delete_file_batch_max: usize,
    /// Measures how full the store's filesystem is; `statvfs` unless a test injects one.
    pub disk_usage_of: DiskUsageFn,
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
            file_reserved_time: Duration::from_secs(72 * 3600),
            delete_when: "04".to_owned(),
            disk_max_used_space_ratio: 75,
            disk_space_clean_forcibly_ratio: 0.85,
            disk_space_warning_level_ratio: 0.90,
            clean_resource_interval_ms: 10_000,
            delete_commit_log_files_interval_ms: 100,
            destroy_mapped_file_interval_forcibly_ms: 120_000,
            delete_file_batch_max: 10,
            disk_usage_of: DiskUsageFn::new(crate::retention::statvfs_used_ratio),
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
    properties::find_encoded(record.properties, properties::TAGS)
        .and_then(|v| std::str::from_utf8(v).ok())
        .map_or(0, |tags| i64::from(java_string_hash(tags)))
}
