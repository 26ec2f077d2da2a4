//! The warmer: a thread that faults in the commit-log pages just ahead of the write position, so
//! appends copy into pages already in the page cache.
//!
//! A fresh segment is a sparse file; the first touch of each page makes the kernel allocate and
//! zero-fill it. Done inside the append it put the kernel's memset on every send's path (a quarter
//! of the broker's CPU in profiles, and latency spikes). Here it is done ahead of time, by
//! reading one byte per page: a read fault brings the page in without dirtying it, so no zeros
//! are written back to disk ahead of the data. Once the current segment is half full the next one
//! is created and warmed as well, so a rollover never opens a file inside the append lock.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::commit_log::CommitLog;

/// How far ahead of the write position pages are kept faulted in.
pub const WARM_AHEAD_BYTES: usize = 32 * 1024 * 1024;
/// How often the warmer looks at the write position.
const WARM_INTERVAL: Duration = Duration::from_millis(10);

pub(crate) fn run(log: &CommitLog, stop: &AtomicBool) {
    let mut segment_start = i64::MIN;
    let mut warmed_to = 0usize;
    while !stop.load(Ordering::Acquire) {
        if let Some(segment) = log.files().last() {
            if segment.file_from_offset() != segment_start {
                segment_start = segment.file_from_offset();
                warmed_to = 0;
            }
            let wrote = segment.wrote_pos();
            let target = (wrote + WARM_AHEAD_BYTES).min(segment.file_size());
            let from = warmed_to.max(wrote);
            if target > from {
                segment.prefault(from, target);
                warmed_to = target;
            }
            if segment.file_size() - wrote <= WARM_AHEAD_BYTES.max(segment.file_size() / 2) {
                if let Err(e) = log.files().prepare_next(WARM_AHEAD_BYTES) {
                    tracing::warn!(error = %e, "cannot prepare the next commit-log segment");
                }
            }
        }
        std::thread::sleep(WARM_INTERVAL);
    }
}

/// Handle to the running warmer thread.
pub(crate) struct Warmer {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Warmer {
    pub(crate) fn start(shared: Arc<crate::message_store::Shared>) -> std::io::Result<Warmer> {
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("petrel-store-warm".into())
            .spawn(move || run(&shared.commit_log, &thread_stop))?;
        Ok(Warmer {
            stop,
            thread: Some(thread),
        })
    }

    pub(crate) fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
