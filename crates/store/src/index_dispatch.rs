//! The index dispatcher: a thread that follows the commit log and writes each record's index
//! entries (as RocketMQ's ReputMessageService does), so the append critical section only copies
//! the record and writes its consume-queue entry. Owns how far the index has caught up; key
//! queries wait for it to reach the log end they saw, so a message is found by key as soon as
//! its send is acknowledged.
//!
//! A crash may leave the index behind the log; recovery re-indexes everything past the index's
//! newest entry, so nothing here needs to be durable.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use petrel_common::record::{self, BLANK_MAGIC};

use crate::message_store::Shared;

/// While appends keep coming the thread looks at the log end this often instead of being woken
/// by each append: a wake-up per message (a futex call on the append path and a context switch)
/// cost more than the indexing it moved off the lock (about 5 µs per send in `bench produce`).
const BUSY_POLL: Duration = Duration::from_millis(1);
/// After this many empty looks in a row the thread sleeps until an append wakes it.
const IDLE_POLLS_BEFORE_SLEEP: u32 = 1000;
/// Longest deep sleep, in case a wake-up is missed.
const IDLE_SLEEP: Duration = Duration::from_millis(100);

pub(crate) struct IndexProgress {
    /// Every record below this offset is indexed.
    indexed_to: AtomicI64,
    /// The thread is about to sleep or asleep: appenders must wake it.
    sleeping: AtomicBool,
    stop: AtomicBool,
    lock: Mutex<()>,
    appended: Condvar,
    advanced: Condvar,
}

impl IndexProgress {
    /// Every record below this commit-log offset is indexed.
    pub(crate) fn indexed_to(&self) -> i64 {
        self.indexed_to.load(Ordering::Acquire)
    }

    /// Called after each append has published the log end. One atomic load unless the thread
    /// is in its deep sleep (no append for a second).
    pub(crate) fn notify_appended(&self) {
        if self.sleeping.load(Ordering::SeqCst) {
            let _guard = self.lock.lock();
            self.appended.notify_one();
        }
    }

    /// Waits until every record below `offset` is indexed, at most `timeout`; false on timeout.
    pub(crate) fn wait_indexed(&self, offset: i64, timeout: Duration) -> bool {
        if self.indexed_to.load(Ordering::Acquire) >= offset {
            return true;
        }
        let deadline = Instant::now() + timeout;
        let mut guard = self.lock.lock();
        // Do not wait out the thread's poll interval.
        self.appended.notify_one();
        while self.indexed_to.load(Ordering::Acquire) < offset {
            if self.advanced.wait_until(&mut guard, deadline).timed_out() {
                return self.indexed_to.load(Ordering::Acquire) >= offset;
            }
        }
        true
    }
}

pub(crate) struct IndexDispatcher {
    progress: Arc<IndexProgress>,
    thread: Option<JoinHandle<()>>,
}

impl IndexDispatcher {
    /// Starts following the log from its current end (recovery has indexed everything below).
    pub(crate) fn start(shared: Arc<Shared>) -> std::io::Result<IndexDispatcher> {
        let progress = Arc::new(IndexProgress {
            indexed_to: AtomicI64::new(shared.commit_log.max_offset()),
            sleeping: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            lock: Mutex::new(()),
            appended: Condvar::new(),
            advanced: Condvar::new(),
        });
        let thread = {
            let progress = Arc::clone(&progress);
            std::thread::Builder::new()
                .name("petrel-store-index".into())
                .spawn(move || run(&shared, &progress))?
        };
        Ok(IndexDispatcher {
            progress,
            thread: Some(thread),
        })
    }

    pub(crate) fn progress(&self) -> &Arc<IndexProgress> {
        &self.progress
    }

    /// Starts the thread again after [`IndexDispatcher::stop`], following the log from `from`
    /// (the commit log was cut there; everything below is indexed). Keeps the same progress, so
    /// key queries waiting on it keep working.
    pub(crate) fn restart_at(&mut self, shared: Arc<Shared>, from: i64) -> std::io::Result<()> {
        assert!(self.thread.is_none(), "restart_at after stop only");
        self.progress.indexed_to.store(from, Ordering::Release);
        self.progress.stop.store(false, Ordering::SeqCst);
        let progress = Arc::clone(&self.progress);
        self.thread = Some(
            std::thread::Builder::new()
                .name("petrel-store-index".into())
                .spawn(move || run(&shared, &progress))?,
        );
        Ok(())
    }

    /// Indexes what is left up to the log end, then stops the thread. Call after appends stopped.
    pub(crate) fn stop(&mut self) {
        self.progress.stop.store(true, Ordering::SeqCst);
        {
            let _guard = self.progress.lock.lock();
            self.progress.appended.notify_one();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(shared: &Shared, p: &IndexProgress) {
    let mut idle_polls = 0u32;
    loop {
        let end = shared.commit_log.max_offset();
        let from = p.indexed_to.load(Ordering::Acquire);
        if from < end {
            let reached = index_range(shared, from, end);
            p.indexed_to.store(reached, Ordering::Release);
            idle_polls = 0;
            let _guard = p.lock.lock();
            p.advanced.notify_all();
            continue;
        }
        if p.stop.load(Ordering::SeqCst) {
            return;
        }
        if idle_polls < IDLE_POLLS_BEFORE_SLEEP {
            idle_polls += 1;
            let mut guard = p.lock.lock();
            if !p.stop.load(Ordering::SeqCst) {
                p.appended.wait_for(&mut guard, BUSY_POLL);
            }
            continue;
        }
        // Announce the sleep before the last look at the log end: an append that publishes
        // after that look sees `sleeping` and wakes us (both sides are SeqCst).
        p.sleeping.store(true, Ordering::SeqCst);
        let mut guard = p.lock.lock();
        if shared.commit_log.max_offset() == from && !p.stop.load(Ordering::SeqCst) {
            p.appended.wait_for(&mut guard, IDLE_SLEEP);
        }
        drop(guard);
        p.sleeping.store(false, Ordering::SeqCst);
        idle_polls = 0;
    }
}

/// Indexes the records in `[from, to)`; returns how far it got (`to` unless a segment is gone).
fn index_range(shared: &Shared, from: i64, to: i64) -> i64 {
    let log = &shared.commit_log;
    let file_size = log.file_size();
    let mut offset = from;
    while offset < to {
        let Some(segment) = log.files().find(offset) else {
            // Retention deleted the segment under us; nothing below the new minimum can be
            // queried any more.
            let min = log.min_offset();
            if min > offset {
                offset = min;
                continue;
            }
            tracing::error!(offset, "no commit-log segment holds a record to index");
            return to;
        };
        let pos = (offset - segment.file_from_offset()) as usize;
        let rest = segment.slice(pos, file_size - pos);
        let Some((size, magic)) = record::peek_total_size(rest) else {
            tracing::error!(offset, "no record header where the index expected one");
            return to;
        };
        if magic == BLANK_MAGIC {
            offset = segment.file_from_offset() + file_size as i64;
            continue;
        }
        let indexed = record::decode(rest, false)
            .map_err(|e| e.to_string())
            .and_then(|r| shared.index.index_record(&r).map_err(|e| e.to_string()));
        if let Err(e) = indexed {
            tracing::error!(offset, error = %e, "cannot index a record; key queries will miss it");
        }
        offset += i64::from(size.max(1));
    }
    offset
}
