//! The flusher: one thread that writes the commit log back to disk, and on every
//! `flush_interval_ms` also the consume queues and the checkpoint. With ASYNC_FLUSH it wakes on
//! the interval; with SYNC_FLUSH it is also woken by group-commit requests, and one msync answers
//! every waiter whose offset it covers. Owns the waiter list and the thread's loop; never appends.

use std::mem;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tokio::sync::oneshot;

use crate::message_store::Shared;

/// Fault injection for tests and fault drills: a delay the flusher sleeps before each commit-log
/// flush, as a slow or stalled disk would make it wait. Shared by every clone, so a test can slow
/// the disk down and speed it up again while the store runs. Zero (the default) costs one atomic
/// load per flush and nothing else.
#[derive(Debug, Clone, Default)]
pub struct FlushFault {
    delay_us: Arc<AtomicU64>,
}

impl FlushFault {
    /// Every commit-log flush from now on first waits `delay`; `Duration::ZERO` turns it off.
    pub fn set_delay(&self, delay: Duration) {
        let us = u64::try_from(delay.as_micros()).unwrap_or(u64::MAX);
        self.delay_us.store(us, Ordering::Relaxed);
    }

    pub fn delay(&self) -> Duration {
        Duration::from_micros(self.delay_us.load(Ordering::Relaxed))
    }
}

#[derive(Default)]
struct Requests {
    /// (commit-log offset that must be durable, who to tell).
    waiters: Vec<(i64, oneshot::Sender<bool>)>,
    stop: bool,
    /// On stop, flush once more (clean shutdown) or not (simulated crash).
    final_flush: bool,
}

#[derive(Default)]
pub(crate) struct FlushService {
    requests: Mutex<Requests>,
    wakeup: Condvar,
}

impl FlushService {
    /// Asks for the commit log to be durable up to `offset`; the receiver gets `true` once it is,
    /// `false` if flushing failed or the store stopped first.
    pub(crate) fn request(&self, offset: i64) -> oneshot::Receiver<bool> {
        let (tx, rx) = oneshot::channel();
        let mut r = self.requests.lock();
        if r.stop {
            let _ = tx.send(false);
        } else {
            r.waiters.push((offset, tx));
            self.wakeup.notify_one();
        }
        rx
    }

    pub(crate) fn stop(&self, final_flush: bool) {
        let mut r = self.requests.lock();
        r.stop = true;
        r.final_flush = final_flush;
        self.wakeup.notify_one();
    }

    /// The thread body; returns after `stop`.
    pub(crate) fn run(&self, shared: Arc<Shared>) {
        let interval = Duration::from_millis(shared.config.flush_interval_ms.max(1));
        let mut last_checkpoint = Instant::now();
        loop {
            let (waiters, stop, final_flush) = {
                let mut r = self.requests.lock();
                if r.waiters.is_empty() && !r.stop {
                    let until_checkpoint = interval.saturating_sub(last_checkpoint.elapsed());
                    self.wakeup.wait_for(&mut r, until_checkpoint);
                }
                (mem::take(&mut r.waiters), r.stop, r.final_flush)
            };
            if stop && !final_flush {
                answer(waiters, None);
                return;
            }
            let injected = shared.config.flush_fault.delay();
            if !injected.is_zero() {
                std::thread::sleep(injected);
            }
            // Kept for the flush and the checkpoint: a commit-log cut moves positions back.
            let cut_guard = shared.flush_lock.lock();
            let flushed = match shared.commit_log.flush() {
                Ok(offset) => Some(offset),
                Err(e) => {
                    tracing::error!(error = %e, "commit log flush failed");
                    None
                }
            };
            answer(waiters, flushed);
            if stop || last_checkpoint.elapsed() >= interval {
                if let Err(e) = shared.flush_queues_and_checkpoint() {
                    tracing::error!(error = %e, "consume queue or checkpoint flush failed");
                }
                last_checkpoint = Instant::now();
            }
            drop(cut_guard);
            if stop {
                return;
            }
        }
    }
}

fn answer(waiters: Vec<(i64, oneshot::Sender<bool>)>, flushed: Option<i64>) {
    for (offset, tx) in waiters {
        let _ = tx.send(flushed.is_some_and(|f| f >= offset));
    }
}
