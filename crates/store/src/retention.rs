//! Retention: deletes what the store no longer has to keep, and stops appends before the disk
//! fills. A thread owned by `MessageStore` runs a pass every `clean_resource_interval_ms`:
//!
//! 1. Measure how full the commit log's filesystem is; above `disk_space_warning_level_ratio`
//!    appends are refused (`StoreError::DiskFull`) until a later pass measures less.
//! 2. Delete commit-log segments from the oldest on: those not modified for
//!    `file_reserved_time`, when the local hour is in `delete_when` or the disk is above
//!    `disk_max_used_space_ratio`; the oldest ones whether expired or not above
//!    `disk_space_clean_forcibly_ratio`. At most `delete_file_batch_max` per pass, never the
//!    segment being written, and never one in the middle of the run.
//! 3. Drop consume-queue files whose entries all point below the log's new minimum, move each
//!    queue's min offset to its first entry still in the log, and drop index files wholly below it.
//!
//! Deleting never invalidates memory: a segment leaves the run under its lock, then its file is
//! unlinked, and any zero-copy pull answer still holding it keeps the mapping (and the inode)
//! alive until the answer is written. Such a straggler only pins disk space; it is reported if it
//! outlives `destroy_mapped_file_interval_forcibly_ms`.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::{Condvar, Mutex};

use crate::config::StoreConfig;
use crate::error::StoreError;
use crate::mapped_file::MappedFile;
use crate::message_store::Shared;

/// What one retention pass measured and did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetentionReport {
    /// Used fraction of the commit log's filesystem; `None` if it could not be measured.
    pub disk_used_ratio: Option<f64>,
    /// Whether appends are refused after this pass.
    pub disk_full: bool,
    pub deleted_segments: usize,
    pub deleted_consume_queue_files: usize,
    pub deleted_index_files: usize,
    /// The commit log's first offset after the pass.
    pub min_physical_offset: i64,
}

/// A deleted segment that some reader may still map.
struct Unlinked {
    segment: Weak<MappedFile>,
    path: PathBuf,
    deleted_at: Instant,
    reported: bool,
}

/// What passes remember between them.
#[derive(Default)]
struct PassState {
    unlinked: Vec<Unlinked>,
    /// The log minimum the consume queues and index were last fully cleaned against; while it
    /// stays put a pass skips them, so an idle pass costs nothing per queue.
    cleaned_below: Option<i64>,
}

/// Retention's part of the store's shared state.
pub(crate) struct RetentionState {
    disk_full: AtomicBool,
    /// Bits of the last measured used ratio (f64); NaN while unknown.
    disk_used_ratio_bits: AtomicU64,
    /// Held for a whole pass, so the thread and a manual pass never interleave.
    pass: Mutex<PassState>,
    stop: Mutex<bool>,
    wakeup: Condvar,
}

impl Default for RetentionState {
    fn default() -> Self {
        RetentionState {
            disk_full: AtomicBool::new(false),
            disk_used_ratio_bits: AtomicU64::new(f64::NAN.to_bits()),
            pass: Mutex::default(),
            stop: Mutex::new(false),
            wakeup: Condvar::new(),
        }
    }
}

impl RetentionState {
    /// The used ratio of the commit log's filesystem at the last measurement, if it succeeded.
    pub(crate) fn disk_used_ratio(&self) -> Option<f64> {
        let used = f64::from_bits(self.disk_used_ratio_bits.load(Ordering::Acquire));
        (!used.is_nan()).then_some(used)
    }

    /// The error an append gets while the disk is above the warning level.
    pub(crate) fn check_writable(&self, config: &StoreConfig) -> Result<(), StoreError> {
        if self.disk_full.load(Ordering::Acquire) {
            return Err(StoreError::DiskFull {
                used_ratio: f64::from_bits(self.disk_used_ratio_bits.load(Ordering::Acquire)),
                limit: config.disk_space_warning_level_ratio,
            });
        }
        Ok(())
    }

    /// Measures the disk and sets the full flag; returns the used ratio.
    pub(crate) fn measure_disk(&self, config: &StoreConfig) -> Option<f64> {
        let used = match config.disk_usage_of.call(&config.commit_log_dir()) {
            Ok(used) => used,
            Err(e) => {
                tracing::warn!(error = %e, "cannot measure disk usage; retention ignores it");
                self.disk_used_ratio_bits
                    .store(f64::NAN.to_bits(), Ordering::Release);
                self.disk_full.store(false, Ordering::Release);
                return None;
            }
        };
        self.disk_used_ratio_bits
            .store(used.to_bits(), Ordering::Release);
        let full = used > config.disk_space_warning_level_ratio;
        let was_full = self.disk_full.swap(full, Ordering::AcqRel);
        if full && !was_full {
            tracing::error!(
                used_ratio = used,
                limit = config.disk_space_warning_level_ratio,
                "disk full: refusing appends until retention frees space"
            );
        } else if was_full && !full {
            tracing::info!(
                used_ratio = used,
                "disk below the warning level; appends resume"
            );
        }
        Some(used)
    }

    /// Waits `timeout` or until stopped; true if stopped.
    fn wait_stopped(&self, timeout: Duration) -> bool {
        let mut stop = self.stop.lock();
        if !*stop {
            self.wakeup.wait_for(&mut stop, timeout);
        }
        *stop
    }

    fn stop(&self) {
        *self.stop.lock() = true;
        self.wakeup.notify_all();
    }
}

/// One retention pass (see the module comment).
pub(crate) fn run_pass(shared: &Shared) -> RetentionReport {
    let state = &shared.retention;
    let config = &shared.config;
    let mut pass = state.pass.lock();
    let used = state.measure_disk(config);
    let used_ratio = used.unwrap_or(0.0);
    let forcibly = used_ratio > config.disk_space_clean_forcibly_ratio
        || used_ratio > config.disk_space_warning_level_ratio;
    let space_pressure = used_ratio > f64::from(config.disk_max_used_space_ratio) / 100.0;
    let time_up = local_hour(SystemTime::now())
        .is_some_and(|hour| delete_when_hours(&config.delete_when).any(|h| h == Ok(hour)));

    let mut report = RetentionReport {
        disk_used_ratio: used,
        ..RetentionReport::default()
    };
    if time_up || space_pressure || forcibly {
        report.deleted_segments = delete_segments(shared, forcibly, &mut pass.unlinked);
    }
    let log_min = shared.commit_log.min_offset();
    if pass.cleaned_below != Some(log_min) {
        let mut clean = true;
        for cq in shared.queues.all() {
            match cq.delete_files_below(log_min) {
                Ok(n) => report.deleted_consume_queue_files += n,
                Err(e) => {
                    clean = false;
                    tracing::error!(
                        topic = cq.topic(),
                        queue_id = cq.queue_id(),
                        error = %e,
                        "cannot delete a consume-queue file"
                    );
                }
            }
            cq.correct_min_offset(log_min);
        }
        match shared.index.delete_files_below(log_min) {
            Ok(n) => report.deleted_index_files = n,
            Err(e) => {
                clean = false;
                tracing::error!(error = %e, "cannot delete an index file");
            }
        }
        if clean {
            pass.cleaned_below = Some(log_min);
        }
    }
    report_pinned(config, &mut pass.unlinked);
    report.disk_full = state.disk_full.load(Ordering::Acquire);
    report.min_physical_offset = log_min;
    if report.deleted_segments > 0 {
        tracing::info!(?report, "retention pass");
    }
    report
}

/// Deletes expired (or, `forcibly`, the oldest) segments up to the batch cap, pausing between
/// two. Returns how many went.
fn delete_segments(shared: &Shared, forcibly: bool, unlinked: &mut Vec<Unlinked>) -> usize {
    let config = &shared.config;
    let pause = Duration::from_millis(config.delete_commit_log_files_interval_ms);
    let mut deleted = 0;
    while deleted < config.delete_file_batch_max {
        if deleted > 0 && !pause.is_zero() && shared.retention.wait_stopped(pause) {
            break;
        }
        let now = SystemTime::now();
        let removed = shared.commit_log.files().delete_first_if(|segment| {
            forcibly || is_expired(segment, now, config.file_reserved_time)
        });
        match removed {
            Ok(Some(segment)) => {
                tracing::info!(
                    path = %segment.path().display(),
                    forcibly,
                    "deleted a commit-log segment"
                );
                unlinked.push(Unlinked {
                    path: segment.path().to_path_buf(),
                    segment: Arc::downgrade(&segment),
                    deleted_at: Instant::now(),
                    reported: false,
                });
                deleted += 1;
            }
            Ok(None) => break,
            Err(e) => {
                tracing::error!(error = %e, "cannot delete a commit-log segment");
                break;
            }
        }
    }
    deleted
}

fn is_expired(segment: &MappedFile, now: SystemTime, reserved: Duration) -> bool {
    match segment.last_modified() {
        Ok(modified) => now
            .duration_since(modified)
            .is_ok_and(|age| age >= reserved),
        Err(e) => {
            tracing::warn!(path = %segment.path().display(), error = %e, "cannot stat a segment");
            false
        }
    }
}

/// Forgets deleted segments nobody maps any more, and reports the ones still mapped long after.
fn report_pinned(config: &StoreConfig, unlinked: &mut Vec<Unlinked>) {
    unlinked.retain(|u| u.segment.strong_count() > 0);
    let limit = Duration::from_millis(config.destroy_mapped_file_interval_forcibly_ms);
    for u in unlinked.iter_mut() {
        if !u.reported && u.deleted_at.elapsed() >= limit {
            u.reported = true;
            tracing::warn!(
                path = %u.path.display(),
                "a deleted commit-log segment is still mapped by a reader; its disk space is \
                 freed when that reader finishes"
            );
        }
    }
}

/// The hours of `deleteWhen` ("04;16"), each an error if it is not 0..=23.
pub(crate) fn delete_when_hours(delete_when: &str) -> impl Iterator<Item = Result<u32, ()>> + '_ {
    delete_when
        .split(';')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| h.parse::<u32>().ok().filter(|h| *h < 24).ok_or(()))
}

fn local_hour(now: SystemTime) -> Option<u32> {
    let secs = libc::time_t::try_from(now.duration_since(UNIX_EPOCH).ok()?.as_secs()).ok()?;
    // SAFETY: `tm` is plain data that localtime_r fills in; both pointers are valid for the call,
    // and localtime_r (unlike localtime) keeps no shared buffer.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let filled = unsafe { libc::localtime_r(&secs, &mut tm) };
    if filled.is_null() {
        return None;
    }
    u32::try_from(tm.tm_hour).ok()
}

/// Used fraction of the filesystem holding `dir`, as RocketMQ computes it (Java's
/// `(getTotalSpace - getFreeSpace) / getTotalSpace`): blocks not free over all blocks. Blocks
/// reserved for root count as free, so on a filesystem with a root reserve this reads a little
/// lower than `df`'s Use%.
pub(crate) fn statvfs_used_ratio(dir: &Path) -> io::Result<f64> {
    let path = CString::new(dir.as_os_str().as_bytes())?;
    // SAFETY: `st` is plain data that statvfs fills in; `path` is a valid C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let total = st.f_blocks as f64;
    let used = st.f_blocks.saturating_sub(st.f_bfree) as f64;
    Ok(if total > 0.0 { used / total } else { 0.0 })
}

/// The retention thread.
pub(crate) struct Retention {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Retention {
    pub(crate) fn start(shared: Arc<Shared>) -> io::Result<Retention> {
        let thread = {
            let shared = Arc::clone(&shared);
            let interval = Duration::from_millis(shared.config.clean_resource_interval_ms.max(1));
            std::thread::Builder::new()
                .name("petrel-store-retention".into())
                .spawn(move || {
                    while !shared.retention.wait_stopped(interval) {
                        run_pass(&shared);
                    }
                })?
        };
        Ok(Retention {
            shared,
            thread: Some(thread),
        })
    }

    pub(crate) fn stop(&mut self) {
        self.shared.retention.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delete_when_lists_hours_and_rejects_others() {
        let hours: Vec<_> = delete_when_hours("04; 16;").collect();
        assert_eq!(hours, vec![Ok(4), Ok(16)]);
        assert!(delete_when_hours("24").any(|h| h.is_err()));
        assert!(delete_when_hours("four").any(|h| h.is_err()));
    }

    #[test]
    fn statvfs_measures_a_real_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        let used = statvfs_used_ratio(dir.path()).unwrap();
        assert!((0.0..=1.0).contains(&used), "{used}");
        assert!(statvfs_used_ratio(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn a_deleted_segment_is_tracked_while_a_reader_still_maps_it() {
        let dir = tempfile::tempdir().unwrap();
        let segment = Arc::new(
            MappedFile::open(dir.path(), 0, 4096, crate::mapped_file::WritePath::Mapping).unwrap(),
        );
        let reader = segment.bytes(0, 16);
        let mut unlinked = vec![Unlinked {
            path: segment.path().to_path_buf(),
            segment: Arc::downgrade(&segment),
            deleted_at: Instant::now(),
            reported: false,
        }];
        drop(segment);
        let config = StoreConfig {
            destroy_mapped_file_interval_forcibly_ms: 0,
            ..StoreConfig::new(dir.path())
        };
        report_pinned(&config, &mut unlinked);
        assert_eq!(unlinked.len(), 1, "the reader's slice keeps it mapped");
        assert!(unlinked[0].reported);
        drop(reader);
        report_pinned(&config, &mut unlinked);
        assert!(
            unlinked.is_empty(),
            "forgotten once the last reader is done"
        );
    }

    #[test]
    fn local_hour_is_an_hour() {
        assert!(local_hour(SystemTime::now()).is_some_and(|h| h < 24));
    }
}
