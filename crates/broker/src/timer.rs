//! The timer service: files each message stored on `rmq_sys_wheel_timer` into the timing wheel
//! ([`petrel_store::timer_wheel`]) and re-posts it to its real topic and queue at its time.
//!
//! One task owns the wheel and loops:
//! 1. **Load**: every slot starting before `now + precision` is read from the wheel into an
//!    in-memory heap ordered by delivery time, so memory holds at most about two slots' worth
//!    of timers (those coming due), never the ones pending further ahead.
//! 2. **Deliver**: every heap entry whose time has come is read from the commit log and stored
//!    again under `REAL_TOPIC`/`REAL_QID`, with its message id and properties (the absolute
//!    `TIMER_DELIVER_MS` stays, so a consumer can see when it was due). Never before its time:
//!    the heap compares the exact millisecond, the slot only decides when it is read.
//! 3. **File**: new entries of the timer topic's consume queue go into the wheel. A timer whose
//!    slot was already read (a short delay, or one filed late) also goes straight to the heap.
//! 4. **Persist** (every [`PERSIST_INTERVAL`] with progress): the wheel's checkpoint records the
//!    consume-queue offset filed and the earliest slot with an undelivered timer. A crash
//!    re-files from that offset and re-reads from that slot: nothing is lost, and what was
//!    delivered since the last checkpoint is delivered once more.
//!
//! A re-post that fails (disk full, store stopping) puts its timers back and retries after
//! [`RETRY_PAUSE`].

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use petrel_common::msg_id::now_ms;
use petrel_common::properties::{self, Properties, TIMER_DELIVER_MS};
use petrel_common::record;
use petrel_common::topic::TIMER_TOPIC;
use petrel_remoting::CancellationToken;
use petrel_store::timer_wheel::{Progress, TimerEntry, TimerWheel, TimerWheelConfig};
use petrel_store::{AppendRequest, GetStatus};

use crate::broker::Broker;

/// How often progress is checkpointed: also the most a crash re-delivers.
pub const PERSIST_INTERVAL: Duration = Duration::from_millis(200);
/// Longest sleep between two loops: a timer sent with a delay shorter than this is filed at
/// most this late (and still delivered at its time if that is later).
const POLL_INTERVAL_MS: i64 = 10;
/// Pause after a failed re-post.
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// Consume-queue entries filed per loop, so delivery is never starved by a burst of sends.
const FILE_BATCH: usize = 4096;
/// Timers delivered per loop.
const DELIVER_BATCH: usize = 4096;
/// Records per store append when several due timers share a topic and queue.
const APPEND_BATCH: usize = 64;
/// Slots read per loop while catching up after downtime.
const LOAD_SLOTS_PER_LOOP: usize = 4096;
/// Records per timer-log segment (40 MiB).
const LOG_SEGMENT_RECORDS: usize = 1 << 20;
/// Window of `timerEnqueueTps` / `timerDequeueTps`.
const RATE_WINDOW: Duration = Duration::from_secs(10);

/// The timer figures of `GET_BROKER_RUNTIME_INFO` (RocketMQ 5's names).
#[derive(Debug, Default)]
pub struct TimerStats {
    /// Timers filed and not yet delivered (`timerCongestNum`).
    pub pending: AtomicI64,
    /// Next timer-topic consume-queue offset to file (for `timerOffsetBehind`).
    pub filed_offset: AtomicI64,
    /// How late the oldest due, undelivered timer is, ms (`timerReadBehind`, reported in s).
    pub read_behind_ms: AtomicI64,
    enqueue_tps_bits: AtomicU64,
    dequeue_tps_bits: AtomicU64,
}

impl TimerStats {
    pub fn enqueue_tps(&self) -> f64 {
        f64::from_bits(self.enqueue_tps_bits.load(Ordering::Relaxed))
    }

    pub fn dequeue_tps(&self) -> f64 {
        f64::from_bits(self.dequeue_tps_bits.load(Ordering::Relaxed))
    }
}

/// A timer read from the wheel, waiting for its millisecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Due {
    deliver_ms: i64,
    commit_log_offset: i64,
    size: i32,
    /// The slot it is filed under (what the checkpoint must not pass while it waits).
    slot_ms: i64,
}

pub struct TimerService {
    broker: Arc<Broker>,
    wheel: TimerWheel,
    /// Next timer-topic consume-queue offset to file.
    filed_offset: i64,
    /// Next slot to read from the wheel.
    next_load_slot: i64,
    due: BinaryHeap<Reverse<Due>>,
    /// Timers in `due` per slot they are filed under.
    due_slots: BTreeMap<i64, u32>,
    /// Until the first load after a start: timers of the checkpoint due before this were
    /// delivered before the stop, and are skipped.
    skip_due_before: Option<i64>,
    dirty: bool,
    last_persist: Instant,
    filed_total: u64,
    delivered_total: u64,
    rate_samples: VecDeque<(Instant, u64, u64)>,
}

impl TimerService {
    /// Opens (and if needed recovers) the wheel under the store root.
    pub async fn open(broker: Arc<Broker>) -> std::io::Result<TimerService> {
        let precision_ms = (broker.config.timer_precision.as_millis() as i64).max(1);
        let max_delay_ms = (broker.config.timer_max_delay.as_millis() as i64).max(1);
        let config = TimerWheelConfig {
            root_dir: broker.config.store.root_dir.clone(),
            precision_ms,
            slots: TimerWheelConfig::slots_for(max_delay_ms, precision_ms),
            log_segment_records: LOG_SEGMENT_RECORDS,
        };
        let wheel = tokio::task::spawn_blocking(move || TimerWheel::open(config, now_ms() as i64))
            .await
            .map_err(|e| std::io::Error::other(format!("timer wheel open task failed: {e}")))??;
        let cp = wheel.checkpoint().clone();
        tracing::info!(
            pending = wheel.pending(),
            filed_offset = cp.enqueued_queue_offset,
            delivered_before_ms = cp.delivered_before_ms,
            "timer wheel opened"
        );
        Ok(TimerService {
            broker,
            filed_offset: cp.enqueued_queue_offset,
            next_load_slot: cp.delivered_before_ms,
            wheel,
            due: BinaryHeap::new(),
            due_slots: BTreeMap::new(),
            skip_due_before: Some(cp.delivered_due_before_ms),
            dirty: false,
            last_persist: Instant::now(),
            filed_total: 0,
            delivered_total: 0,
            rate_samples: VecDeque::new(),
        })
    }

    /// Runs until `shutdown` fires, then checkpoints the wheel as cleanly closed.
    pub async fn run(mut self, shutdown: CancellationToken) {
        loop {
            let now = now_ms() as i64;
            let mut busy = self.load_due_slots(now);
            let failed = match self.deliver_due(now).await {
                Ok(more) => {
                    busy |= more;
                    false
                }
                Err(e) => {
                    tracing::warn!("timer re-post failed, retrying: {e}");
                    true
                }
            };
            match self.file_new_timers() {
                Ok(more) => busy |= more,
                Err(e) => tracing::error!("could not file timers into the wheel: {e}"),
            }
            if self.dirty && self.last_persist.elapsed() >= PERSIST_INTERVAL {
                self.persist();
            }
            self.publish_stats(now);
            let wait = if failed {
                RETRY_PAUSE
            } else if busy {
                Duration::ZERO
            } else {
                Duration::from_millis(self.idle_wait_ms(now_ms() as i64) as u64)
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        let progress = self.progress();
        let wheel = self.wheel;
        let closed = tokio::task::spawn_blocking(move || wheel.close(progress)).await;
        match closed {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("timer wheel close failed; next start rebuilds: {e}"),
            Err(e) => tracing::error!("timer wheel close task failed: {e}"),
        }
    }

    /// Reads every slot starting before `now + precision` into the heap; true if it stopped
    /// early (catching up).
    ///
    /// The first call after a start runs before anything new is filed, so every timer it
    /// reads is one the checkpoint accounts for; those due before the checkpoint's
    /// `delivered_due_before_ms` were delivered already and are skipped. Later calls skip
    /// nothing: a timer filed again after a crash may be due that early and not delivered.
    fn load_due_slots(&mut self, now: i64) -> bool {
        let precision = self.wheel.precision_ms();
        let skip_below = self.skip_due_before.take().unwrap_or(i64::MIN);
        let mut skipped = 0;
        for _ in 0..LOAD_SLOTS_PER_LOOP {
            if self.next_load_slot > now + precision {
                break;
            }
            let slot_ms = self.next_load_slot;
            for e in self.wheel.slot_entries(slot_ms) {
                if e.deliver_ms < skip_below {
                    skipped += 1;
                } else {
                    self.push_due(e, slot_ms);
                }
            }
            self.next_load_slot += precision;
            self.dirty = true;
        }
        if skipped > 0 {
            tracing::info!(
                skipped,
                "timers delivered before the stop are not delivered again"
            );
            self.wheel.delivered(skipped);
        }
        self.next_load_slot <= now + precision
    }

    fn push_due(&mut self, e: TimerEntry, slot_ms: i64) {
        self.due.push(Reverse(Due {
            deliver_ms: e.deliver_ms,
            commit_log_offset: e.commit_log_offset,
            size: e.size,
            slot_ms,
        }));
        *self.due_slots.entry(slot_ms).or_default() += 1;
    }

    fn forget_due(&mut self, d: &Due) {
        if let Some(n) = self.due_slots.get_mut(&d.slot_ms) {
            *n -= 1;
            if *n == 0 {
                self.due_slots.remove(&d.slot_ms);
            }
        }
    }

    /// Re-posts the timers due by `now`; true if more are due than one loop takes.
    async fn deliver_due(&mut self, now: i64) -> Result<bool, String> {
        let mut taken = Vec::new();
        while taken.len() < DELIVER_BATCH {
            match self.due.peek() {
                Some(Reverse(d)) if d.deliver_ms <= now => {
                    let Reverse(d) = self.due.pop().expect("peeked");
                    taken.push(d);
                }
                _ => break,
            }
        }
        if taken.is_empty() {
            return Ok(false);
        }
        let more = taken.len() == DELIVER_BATCH;
        // Group by destination, keeping each group's order, so each group is few appends.
        let mut groups: HashMap<(String, i32), Vec<(AppendRequest, Due)>> = HashMap::new();
        let mut lost = 0;
        for d in taken {
            match self.repost_request(&d) {
                Ok(req) => groups
                    .entry((req.topic.clone(), req.queue_id))
                    .or_default()
                    .push((req, d)),
                Err(e) => {
                    // Nothing to re-post: the record is gone or was never a timer record.
                    tracing::error!(
                        offset = d.commit_log_offset,
                        deliver_ms = d.deliver_ms,
                        "timer message dropped: {e}"
                    );
                    self.forget_due(&d);
                    lost += 1;
                }
            }
        }
        self.wheel.delivered(lost);
        let mut failure = None;
        for (_, group) in groups {
            let mut group = group.into_iter().peekable();
            while group.peek().is_some() {
                let chunk: Vec<_> = group.by_ref().take(APPEND_BATCH).collect();
                if failure.is_some() {
                    self.requeue(chunk.iter().map(|(_, d)| *d));
                    continue;
                }
                let dues: Vec<Due> = chunk.iter().map(|(_, d)| *d).collect();
                let reqs: Vec<AppendRequest> = chunk.into_iter().map(|(r, _)| r).collect();
                match self.broker.store.put_messages(reqs).await {
                    Ok(_) => {
                        for d in &dues {
                            self.forget_due(d);
                        }
                        let n = dues.len() as u64;
                        self.wheel.delivered(n as i64);
                        self.delivered_total += n;
                        self.broker.count_put(n);
                        self.dirty = true;
                    }
                    Err(e) => {
                        self.requeue(dues.into_iter());
                        failure = Some(e.to_string());
                    }
                }
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(more),
        }
    }

    /// Puts timers whose re-post failed back in the heap (their slot count never dropped).
    fn requeue(&mut self, dues: impl Iterator<Item = Due>) {
        for d in dues {
            self.due.push(Reverse(d));
        }
    }

    /// The record to store for a due timer: the timer record again, under its real topic and
    /// queue, without `REAL_TOPIC`/`REAL_QID`.
    fn repost_request(&self, d: &Due) -> Result<AppendRequest, String> {
        let b = &self.broker;
        let bytes = b
            .store
            .read_record(d.commit_log_offset)
            .ok_or("no longer in the commit log")?;
        let rec = record::decode(&bytes, false).map_err(|e| format!("unreadable: {e}"))?;
        if rec.topic != TIMER_TOPIC || rec.total_size != d.size {
            return Err(format!(
                "the record there is a {}-byte record of {}, not the timer record",
                rec.total_size, rec.topic
            ));
        }
        let mut props = Properties::from_stored(rec.properties);
        let (topic, queue_id) = props
            .take_real_destination()
            .map_err(|e| format!("the timer record has {e}"))?;
        let tags_code = crate::processor::send::tags_code_of(&props);
        let fields =
            crate::processor::send::copy_fields(&rec, &topic, queue_id, &props, b.store_host);
        crate::processor::send::encode_append(&fields, tags_code).map_err(|e| e.to_string())
    }

    /// Files new timer-topic entries into the wheel; true if there may be more right now.
    fn file_new_timers(&mut self) -> std::io::Result<bool> {
        let mut filed = 0;
        while filed < FILE_BATCH {
            let offset = self.filed_offset;
            let r = self
                .broker
                .store
                .get_messages(TIMER_TOPIC, 0, offset, 32, &|_| true);
            match r.status {
                GetStatus::Found => {}
                GetStatus::OffsetTooSmall | GetStatus::OffsetOverflowBadly => {
                    tracing::error!(
                        offset,
                        next = r.next_begin_offset,
                        "timer queue progress outside the queue (retention deleted unfiled \
                         timers?); moving"
                    );
                    if r.next_begin_offset == offset {
                        return Ok(false);
                    }
                    self.filed_offset = r.next_begin_offset;
                    self.dirty = true;
                    continue;
                }
                GetStatus::OffsetFoundNull | GetStatus::NoMatchedMessage => {
                    if r.next_begin_offset <= offset {
                        return Ok(false);
                    }
                    self.filed_offset = r.next_begin_offset;
                    self.dirty = true;
                    continue;
                }
                GetStatus::NoMessageInQueue | GetStatus::OffsetOverflowOne => return Ok(false),
            }
            for bytes in &r.messages {
                match record::decode(bytes, false) {
                    Ok(rec) => {
                        let deliver_ms = properties::find_encoded(rec.properties, TIMER_DELIVER_MS)
                            .and_then(|v| std::str::from_utf8(v).ok())
                            .and_then(|v| v.trim().parse::<i64>().ok())
                            .unwrap_or(rec.store_timestamp);
                        self.file(TimerEntry {
                            deliver_ms,
                            commit_log_offset: rec.physical_offset,
                            size: rec.total_size,
                        })?;
                    }
                    Err(e) => tracing::error!(offset, "unreadable timer record, skipped: {e}"),
                }
                filed += 1;
            }
            self.filed_offset = r.next_begin_offset;
            self.dirty = true;
        }
        Ok(true)
    }

    /// Files one timer under its slot, kept inside the wheel's live round; one whose slot was
    /// already read goes to the heap too.
    fn file(&mut self, e: TimerEntry) -> std::io::Result<()> {
        let precision = self.wheel.precision_ms();
        let span = self.wheel.span_ms();
        let earliest = self.wheel.slot_of(self.next_load_slot - span / 4);
        let latest = self.next_load_slot + span - 2 * precision;
        // Filed earlier than its slot only when the wheel is too small for it (timerMaxDelaySec
        // lowered while it waited): it then waits in memory, still not delivered before its time.
        let slot_ms = self.wheel.slot_of(e.deliver_ms).clamp(earliest, latest);
        self.wheel.add(slot_ms, e)?;
        self.filed_total += 1;
        if slot_ms < self.next_load_slot {
            self.push_due(e, slot_ms);
        }
        Ok(())
    }

    /// What a restart must start from: the filing offset; the earliest slot with a timer not
    /// yet delivered; and the time before which every filed timer was delivered (the heap is
    /// delivered in time order, and slots not read yet hold only later times).
    fn progress(&self) -> Progress {
        let waiting = self.due_slots.keys().next().copied();
        let cursor = waiting.map_or(self.next_load_slot, |s| s.min(self.next_load_slot));
        let next_due = self.due.peek().map(|Reverse(d)| d.deliver_ms);
        Progress {
            enqueued_queue_offset: self.filed_offset,
            delivered_before_ms: cursor,
            delivered_due_before_ms: next_due
                .map_or(self.next_load_slot, |d| d.min(self.next_load_slot)),
        }
    }

    fn persist(&mut self) {
        let progress = self.progress();
        let result = self
            .wheel
            .persist(progress)
            .and_then(|()| self.wheel.delete_delivered_segments());
        match result {
            Ok(deleted) => {
                if deleted > 0 {
                    tracing::debug!(deleted, "delivered timer-log segments deleted");
                }
                self.dirty = false;
            }
            Err(e) => tracing::error!("could not checkpoint the timer wheel: {e}"),
        }
        self.last_persist = Instant::now();
    }

    /// How long to sleep with nothing to do: until the next timer or slot, at most the poll.
    fn idle_wait_ms(&self, now: i64) -> i64 {
        let mut wait = POLL_INTERVAL_MS;
        if let Some(Reverse(d)) = self.due.peek() {
            wait = wait.min(d.deliver_ms - now);
        }
        wait = wait.min(self.next_load_slot - self.wheel.precision_ms() - now);
        wait.max(0)
    }

    fn publish_stats(&mut self, now: i64) {
        let stats = &self.broker.timer_stats;
        stats.pending.store(self.wheel.pending(), Ordering::Relaxed);
        stats
            .filed_offset
            .store(self.filed_offset, Ordering::Relaxed);
        let behind = match self.due.peek() {
            Some(Reverse(d)) if d.deliver_ms < now => now - d.deliver_ms,
            _ => 0,
        };
        stats.read_behind_ms.store(behind, Ordering::Relaxed);
        let at = Instant::now();
        if self
            .rate_samples
            .back()
            .is_none_or(|(t, _, _)| at.duration_since(*t) >= Duration::from_secs(1))
        {
            self.rate_samples
                .push_back((at, self.filed_total, self.delivered_total));
            while self
                .rate_samples
                .front()
                .is_some_and(|(t, _, _)| at.duration_since(*t) > RATE_WINDOW)
            {
                self.rate_samples.pop_front();
            }
            if let (Some(first), Some(last)) = (self.rate_samples.front(), self.rate_samples.back())
            {
                let secs = last.0.duration_since(first.0).as_secs_f64();
                let (enq, deq) = if secs > 0.0 {
                    (
                        (last.1 - first.1) as f64 / secs,
                        (last.2 - first.2) as f64 / secs,
                    )
                } else {
                    (0.0, 0.0)
                };
                stats
                    .enqueue_tps_bits
                    .store(enq.to_bits(), Ordering::Relaxed);
                stats
                    .dequeue_tps_bits
                    .store(deq.to_bits(), Ordering::Relaxed);
            }
        }
    }
}
