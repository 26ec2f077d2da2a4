//! The timing wheel behind timer messages (RocketMQ 5's `timerwheel` and `timerlog`).
//!
//! A timer message is first stored in the commit log like any other, on the system topic
//! `rmq_sys_wheel_timer`; the broker's timer service then files it here and, when its time
//! comes, re-posts it to its real topic. Two files hold the pending timers:
//!
//! - the **timer log** (`timerlog/`): append-only fixed-size records, each naming one message
//!   (commit-log offset and size), its delivery time, the slot it is filed under, and the
//!   position of the previous record of the same slot;
//! - the **wheel** (`timerwheel/`): one file of fixed-size slots, slot `i` for the times
//!   `[t, t + precision)` with `t / precision ≡ i (mod slots)`, each holding that time, the
//!   position of the slot's newest record and how many it has.
//!
//! So a slot is a linked list threaded backwards through the log, and reading what comes due
//! costs only the records of that slot: memory and CPU follow the timers coming due, not the
//! timers pending. The wheel spans more than twice the longest delay the broker accepts, so a
//! slot is reused only long after its last round was delivered; a slot whose stored time is not
//! the one asked for is empty.
//!
//! Durability rides on `config/timerCheckpoint.json`, written atomically after both files are
//! flushed: how far the timer topic's consume queue was filed, before which slot everything
//! was delivered, and how many log bytes those two account for. A start after a clean close
//! trusts the wheel; any other start cuts the log back to the checkpoint and rebuilds the wheel
//! from the log's records (the wheel is derived data, like a consume queue), and the timer
//! service files again from the checkpointed queue offset. So a crash never loses a timer and
//! re-delivers at most what was delivered since the last checkpoint.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::mapped_file::{MappedFile, MappedFileQueue, WritePath};
use crate::metadata;

/// Bytes per timer-log record: prev i64, slot i64, deliver i64, commit-log offset i64,
/// size i32, magic i32.
pub const TIMER_RECORD_SIZE: usize = 40;
/// Bytes per wheel slot: slot time i64, newest record i64, count i32, magic i32, reserved i64.
const SLOT_SIZE: usize = 32;
const RECORD_MAGIC: i32 = 0x71AE_4C06;
const SLOT_MAGIC: i32 = 0x71AE_5107;
/// `prev` of a slot's first record.
const NO_RECORD: i64 = -1;

/// One pending timer: the message at `commit_log_offset` (`size` bytes) is due at `deliver_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimerEntry {
    pub deliver_ms: i64,
    pub commit_log_offset: i64,
    pub size: i32,
}

#[derive(Debug, Clone)]
pub struct TimerWheelConfig {
    /// The store root; the wheel lives in `timerwheel/`, `timerlog/` and `config/`.
    pub root_dir: PathBuf,
    /// `timerPrecisionMs`: the width of one slot (1 s).
    pub precision_ms: i64,
    /// Slots in the wheel; must cover twice `timerMaxDelaySec` (see [`Self::slots_for`]).
    pub slots: u64,
    /// Records per timer-log segment.
    pub log_segment_records: usize,
}

impl TimerWheelConfig {
    /// A wheel for delays up to `max_delay_ms`: twice that span plus a little, so that a slot
    /// filed late (after an outage) never lands on one still pending.
    pub fn slots_for(max_delay_ms: i64, precision_ms: i64) -> u64 {
        assert!(max_delay_ms > 0 && precision_ms > 0);
        (2 * max_delay_ms / precision_ms + 16) as u64
    }

    fn wheel_bytes(&self) -> usize {
        self.slots as usize * SLOT_SIZE
    }

    fn log_segment_bytes(&self) -> usize {
        self.log_segment_records * TIMER_RECORD_SIZE
    }
}

/// What the wheel's owner has done, as [`TimerWheel::persist`] records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The timer topic's consume queue is filed up to here.
    pub enqueued_queue_offset: i64,
    /// Every timer filed under an earlier slot was delivered (slot-aligned).
    pub delivered_before_ms: i64,
    /// Every timer filed so far and due before this time was delivered.
    pub delivered_due_before_ms: i64,
}

/// `config/timerCheckpoint.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimerCheckpoint {
    /// Next offset of the timer topic's consume queue to file.
    pub enqueued_queue_offset: i64,
    /// Every timer filed under an earlier slot has been delivered.
    pub delivered_before_ms: i64,
    /// Of the timers this checkpoint accounts for, every one due before this time has been
    /// delivered too (so a restart skips them instead of delivering them again).
    #[serde(default)]
    pub delivered_due_before_ms: i64,
    /// Timer-log bytes that the two values above account for.
    pub log_end: i64,
    /// The wheel's layout when written; another layout rebuilds the wheel.
    pub precision_ms: i64,
    pub slots: u64,
    /// Written by a clean close: the wheel matches the log exactly.
    pub clean: bool,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    slot_ms: i64,
    last_pos: i64,
    count: i32,
}

pub struct TimerWheel {
    config: TimerWheelConfig,
    wheel: MappedFile,
    log: MappedFileQueue,
    log_end: i64,
    checkpoint_path: PathBuf,
    /// The checkpoint last written; what a restart would start from.
    persisted: TimerCheckpoint,
    /// Timers filed and not yet delivered, by the owner's count.
    pending: i64,
    /// Latest slot of each full timer-log segment, by segment start, once scanned.
    segment_last_slot: BTreeMap<i64, i64>,
}

impl TimerWheel {
    /// Opens the wheel (created empty the first time, starting at the slot of `now_ms`),
    /// recovering from the checkpoint unless the last close was clean.
    pub fn open(config: TimerWheelConfig, now_ms: i64) -> io::Result<TimerWheel> {
        assert!(config.precision_ms > 0 && config.slots > 0 && config.log_segment_records > 0);
        let checkpoint_path = config.root_dir.join("config").join("timerCheckpoint.json");
        let found: Option<TimerCheckpoint> = metadata::read_json(&checkpoint_path)?;
        let fresh = found.is_none();
        let mut checkpoint = found.unwrap_or_else(|| TimerCheckpoint {
            delivered_before_ms: now_ms.div_euclid(config.precision_ms) * config.precision_ms,
            precision_ms: config.precision_ms,
            slots: config.slots,
            clean: true,
            ..TimerCheckpoint::default()
        });
        if checkpoint.precision_ms != config.precision_ms {
            // Records are filed under slots of the old width: only an empty wheel can change it.
            let pending = Self::pending_in_log(&config, &checkpoint)?;
            if pending > 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the timer wheel under {} holds {pending} pending timers filed with \
                         timerPrecisionMs {}; start with that value until they are delivered, \
                         not {}",
                        config.root_dir.display(),
                        checkpoint.precision_ms,
                        config.precision_ms
                    ),
                ));
            }
            std::fs::remove_dir_all(config.root_dir.join("timerlog")).or_else(ignore_missing)?;
            std::fs::remove_dir_all(config.root_dir.join("timerwheel")).or_else(ignore_missing)?;
            let cursor = checkpoint
                .delivered_before_ms
                .div_euclid(config.precision_ms)
                * config.precision_ms;
            checkpoint = TimerCheckpoint {
                enqueued_queue_offset: checkpoint.enqueued_queue_offset,
                delivered_before_ms: cursor,
                delivered_due_before_ms: cursor,
                log_end: 0,
                precision_ms: config.precision_ms,
                slots: config.slots,
                clean: true,
            };
        }
        let same_layout = checkpoint.slots == config.slots;

        let wheel_dir = config.root_dir.join("timerwheel");
        std::fs::create_dir_all(&wheel_dir)?;
        if !same_layout {
            let old = wheel_dir.join(crate::mapped_file::file_name(0));
            if old.exists() {
                std::fs::remove_file(old)?;
            }
        }
        let wheel = MappedFile::open(&wheel_dir, 0, config.wheel_bytes(), WritePath::Mapping)?;
        let log = MappedFileQueue::load(
            &config.root_dir.join("timerlog"),
            config.log_segment_bytes(),
            WritePath::Mapping,
        )?;
        // Bytes past the checkpoint were filed after it; the service files them again.
        log.truncate_after(checkpoint.log_end)?;
        let log_end = checkpoint.log_end.max(log.min_offset());

        let mut timers = TimerWheel {
            config,
            wheel,
            log,
            log_end,
            checkpoint_path,
            persisted: checkpoint.clone(),
            pending: 0,
            segment_last_slot: BTreeMap::new(),
        };
        let rebuild = !fresh && (!checkpoint.clean || !same_layout);
        if rebuild {
            timers.rebuild(checkpoint.delivered_before_ms)?;
        }
        timers.pending = timers.count_pending(checkpoint.delivered_before_ms);
        // From here until the next clean close, a crash must rebuild.
        checkpoint.clean = false;
        checkpoint.precision_ms = timers.config.precision_ms;
        checkpoint.slots = timers.config.slots;
        checkpoint.log_end = timers.log_end;
        timers.write_checkpoint(checkpoint)?;
        Ok(timers)
    }

    /// Records in the timer log that `checkpoint` accounts for and has not delivered.
    fn pending_in_log(config: &TimerWheelConfig, checkpoint: &TimerCheckpoint) -> io::Result<u64> {
        let log = MappedFileQueue::load(
            &config.root_dir.join("timerlog"),
            config.log_segment_bytes(),
            WritePath::Mapping,
        )?;
        let mut pending = 0;
        for file in log.files() {
            let mut at = 0;
            while at + TIMER_RECORD_SIZE <= file.file_size()
                && file.file_from_offset() + ((at + TIMER_RECORD_SIZE) as i64) <= checkpoint.log_end
            {
                if let Some((_, slot, _)) = decode_record(file.slice(at, TIMER_RECORD_SIZE)) {
                    if slot >= checkpoint.delivered_before_ms {
                        pending += 1;
                    }
                }
                at += TIMER_RECORD_SIZE;
            }
        }
        Ok(pending)
    }

    /// The checkpoint the wheel was opened from or last persisted.
    pub fn checkpoint(&self) -> &TimerCheckpoint {
        &self.persisted
    }

    pub fn precision_ms(&self) -> i64 {
        self.config.precision_ms
    }

    /// The start of the slot holding `ms`.
    pub fn slot_of(&self, ms: i64) -> i64 {
        ms.div_euclid(self.config.precision_ms) * self.config.precision_ms
    }

    /// The time one wheel round covers.
    pub fn span_ms(&self) -> i64 {
        self.config.slots as i64 * self.config.precision_ms
    }

    /// Timers filed and not yet delivered.
    pub fn pending(&self) -> i64 {
        self.pending
    }

    /// Files `entry` under the slot starting at `slot_ms`.
    pub fn add(&mut self, slot_ms: i64, entry: TimerEntry) -> io::Result<()> {
        assert_eq!(
            slot_ms,
            self.slot_of(slot_ms),
            "slot times are slot-aligned"
        );
        let index = self.slot_index(slot_ms);
        let (prev, count) = match self.read_slot(index) {
            Some(s) if s.slot_ms == slot_ms => (s.last_pos, s.count),
            _ => (NO_RECORD, 0),
        };
        let pos = self.append_record(prev, slot_ms, entry)?;
        self.write_slot(
            index,
            Slot {
                slot_ms,
                last_pos: pos,
                count: count + 1,
            },
        );
        self.pending += 1;
        Ok(())
    }

    /// Every timer filed under the slot starting at `slot_ms`, newest first.
    pub fn slot_entries(&self, slot_ms: i64) -> Vec<TimerEntry> {
        let Some(slot) = self
            .read_slot(self.slot_index(slot_ms))
            .filter(|s| s.slot_ms == slot_ms)
        else {
            return Vec::new();
        };
        let mut entries = Vec::with_capacity(slot.count.max(0) as usize);
        let mut pos = slot.last_pos;
        while pos != NO_RECORD && entries.len() < slot.count as usize {
            let Some((prev, rec_slot, entry)) = self.read_record(pos) else {
                tracing::error!(slot_ms, pos, "timer log record unreadable; slot cut short");
                break;
            };
            if rec_slot != slot_ms {
                tracing::error!(slot_ms, pos, rec_slot, "timer log chain leaves its slot");
                break;
            }
            entries.push(entry);
            pos = prev;
        }
        entries
    }

    /// How many timers are filed under the slot starting at `slot_ms`.
    pub fn slot_count(&self, slot_ms: i64) -> i32 {
        self.read_slot(self.slot_index(slot_ms))
            .filter(|s| s.slot_ms == slot_ms)
            .map_or(0, |s| s.count)
    }

    /// Tells the wheel that `n` timers were delivered (for [`Self::pending`]).
    pub fn delivered(&mut self, n: i64) {
        self.pending = (self.pending - n).max(0);
    }

    /// Flushes log and wheel, then records the owner's progress (see [`Progress`]).
    pub fn persist(&mut self, progress: Progress) -> io::Result<()> {
        self.persist_as(progress, false)
    }

    /// [`Self::persist`], marked clean: the next open trusts the wheel.
    pub fn close(mut self, progress: Progress) -> io::Result<()> {
        self.persist_as(progress, true)
    }

    /// Deletes full timer-log segments whose every record was filed under a slot before the
    /// persisted delivery cursor; returns how many.
    pub fn delete_delivered_segments(&mut self) -> io::Result<usize> {
        let mut deleted = 0;
        let cursor = self.persisted.delivered_before_ms;
        loop {
            let files = self.log.files();
            // The segment holding the log's end is still being written.
            let Some(first) = files.first().filter(|f| {
                f.file_from_offset() + (self.config.log_segment_bytes() as i64) <= self.log_end
                    && files.len() > 1
            }) else {
                return Ok(deleted);
            };
            let start = first.file_from_offset();
            let last_slot = match self.segment_last_slot.get(&start) {
                Some(&s) => s,
                None => {
                    let s = self.latest_slot_in(first);
                    self.segment_last_slot.insert(start, s);
                    s
                }
            };
            if last_slot >= cursor {
                return Ok(deleted);
            }
            if self
                .log
                .delete_first_if(|f| f.file_from_offset() == start)?
                .is_none()
            {
                return Ok(deleted);
            }
            self.segment_last_slot.remove(&start);
            deleted += 1;
        }
    }

    /// Timer-log segments on disk.
    pub fn log_segments(&self) -> usize {
        self.log.files().len()
    }

    fn persist_as(&mut self, p: Progress, clean: bool) -> io::Result<()> {
        assert_eq!(p.delivered_before_ms, self.slot_of(p.delivered_before_ms));
        self.log.flush()?;
        self.wheel.flush_whole()?;
        let checkpoint = TimerCheckpoint {
            enqueued_queue_offset: p.enqueued_queue_offset,
            delivered_before_ms: p.delivered_before_ms,
            delivered_due_before_ms: p.delivered_due_before_ms,
            log_end: self.log_end,
            precision_ms: self.config.precision_ms,
            slots: self.config.slots,
            clean,
        };
        self.write_checkpoint(checkpoint)
    }

    fn write_checkpoint(&mut self, checkpoint: TimerCheckpoint) -> io::Result<()> {
        metadata::write_json(&self.checkpoint_path, &checkpoint)?;
        self.persisted = checkpoint;
        Ok(())
    }

    fn slot_index(&self, slot_ms: i64) -> usize {
        (slot_ms.div_euclid(self.config.precision_ms)).rem_euclid(self.config.slots as i64) as usize
    }

    fn read_slot(&self, index: usize) -> Option<Slot> {
        let b = self.wheel.slice(index * SLOT_SIZE, SLOT_SIZE);
        if be_i32(&b[20..24]) != SLOT_MAGIC {
            return None;
        }
        Some(Slot {
            slot_ms: be_i64(&b[0..8]),
            last_pos: be_i64(&b[8..16]),
            count: be_i32(&b[16..20]),
        })
    }

    fn write_slot(&mut self, index: usize, s: Slot) {
        let mut b = [0u8; SLOT_SIZE];
        b[0..8].copy_from_slice(&s.slot_ms.to_be_bytes());
        b[8..16].copy_from_slice(&s.last_pos.to_be_bytes());
        b[16..20].copy_from_slice(&s.count.to_be_bytes());
        b[20..24].copy_from_slice(&SLOT_MAGIC.to_be_bytes());
        self.wheel.overwrite(index * SLOT_SIZE, &b);
    }

    fn append_record(&mut self, prev: i64, slot_ms: i64, e: TimerEntry) -> io::Result<i64> {
        let seg_bytes = self.config.log_segment_bytes() as i64;
        let pos = self.log_end;
        let seg_start = pos - pos.rem_euclid(seg_bytes);
        let file = match self.log.find(pos) {
            Some(f) => f,
            None => self.log.create(seg_start)?,
        };
        let mut b = [0u8; TIMER_RECORD_SIZE];
        b[0..8].copy_from_slice(&prev.to_be_bytes());
        b[8..16].copy_from_slice(&slot_ms.to_be_bytes());
        b[16..24].copy_from_slice(&e.deliver_ms.to_be_bytes());
        b[24..32].copy_from_slice(&e.commit_log_offset.to_be_bytes());
        b[32..36].copy_from_slice(&e.size.to_be_bytes());
        b[36..40].copy_from_slice(&RECORD_MAGIC.to_be_bytes());
        let at = (pos - seg_start) as usize;
        file.write(at, &b)?;
        file.publish(at + TIMER_RECORD_SIZE);
        self.log_end = pos + TIMER_RECORD_SIZE as i64;
        Ok(pos)
    }

    /// (prev, slot, entry) of the record at global `pos`.
    fn read_record(&self, pos: i64) -> Option<(i64, i64, TimerEntry)> {
        if pos < self.log.min_offset() || pos + TIMER_RECORD_SIZE as i64 > self.log_end {
            return None;
        }
        let file = self.log.find(pos)?;
        let b = file.slice((pos - file.file_from_offset()) as usize, TIMER_RECORD_SIZE);
        decode_record(b)
    }

    /// Re-derives every slot at or after `from_slot_ms` from the log's records.
    fn rebuild(&mut self, from_slot_ms: i64) -> io::Result<()> {
        self.wheel.truncate_tail(0)?;
        let mut pos = self.log.min_offset();
        let mut rebuilt = 0u64;
        while pos < self.log_end {
            let Some((_, slot_ms, _)) = self.read_record(pos) else {
                // A hole can only follow a torn write at the very end; everything before the
                // checkpoint was flushed, so this is damage: stop here rather than guess.
                tracing::error!(pos, "unreadable timer log record during rebuild");
                self.log.truncate_after(pos)?;
                self.log_end = pos;
                break;
            };
            if slot_ms >= from_slot_ms {
                let index = self.slot_index(slot_ms);
                let count = match self.read_slot(index) {
                    Some(s) if s.slot_ms == slot_ms => s.count,
                    Some(s) if s.slot_ms >= from_slot_ms => {
                        // Only after timerMaxDelaySec was lowered below delays still pending.
                        tracing::error!(
                            kept = slot_ms,
                            lost = s.slot_ms,
                            "two pending timer slots share one wheel slot; the older is lost"
                        );
                        0
                    }
                    _ => 0,
                };
                self.write_slot(
                    index,
                    Slot {
                        slot_ms,
                        last_pos: pos,
                        count: count + 1,
                    },
                );
                rebuilt += 1;
            }
            pos += TIMER_RECORD_SIZE as i64;
        }
        self.wheel.flush_whole()?;
        tracing::info!(timers = rebuilt, "timer wheel rebuilt from the timer log");
        Ok(())
    }

    /// Sum of the slot counts from `from_slot_ms` over one span (once, at open).
    fn count_pending(&self, from_slot_ms: i64) -> i64 {
        let mut total = 0i64;
        for index in 0..self.config.slots as usize {
            if let Some(s) = self.read_slot(index) {
                if s.slot_ms >= from_slot_ms {
                    total += i64::from(s.count);
                }
            }
        }
        total
    }

    fn latest_slot_in(&self, file: &MappedFile) -> i64 {
        let mut latest = i64::MIN;
        let mut at = 0;
        while at + TIMER_RECORD_SIZE <= file.file_size() {
            if let Some((_, slot, _)) = decode_record(file.slice(at, TIMER_RECORD_SIZE)) {
                latest = latest.max(slot);
            }
            at += TIMER_RECORD_SIZE;
        }
        latest
    }
}

fn ignore_missing(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}

fn decode_record(b: &[u8]) -> Option<(i64, i64, TimerEntry)> {
    if be_i32(&b[36..40]) != RECORD_MAGIC {
        return None;
    }
    Some((
        be_i64(&b[0..8]),
        be_i64(&b[8..16]),
        TimerEntry {
            deliver_ms: be_i64(&b[16..24]),
            commit_log_offset: be_i64(&b[24..32]),
            size: be_i32(&b[32..36]),
        },
    ))
}

fn be_i64(b: &[u8]) -> i64 {
    i64::from_be_bytes(b.try_into().expect("8 bytes"))
}

fn be_i32(b: &[u8]) -> i32 {
    i32::from_be_bytes(b.try_into().expect("4 bytes"))
}

/// Path of the wheel's checkpoint under a store root (for tools and tests).
pub fn checkpoint_path(root: &Path) -> PathBuf {
    root.join("config").join("timerCheckpoint.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> TimerWheelConfig {
        TimerWheelConfig {
            root_dir: dir.to_path_buf(),
            precision_ms: 1000,
            slots: TimerWheelConfig::slots_for(60_000, 1000),
            log_segment_records: 8,
        }
    }

    fn progress(enqueued: i64, delivered_before_ms: i64) -> Progress {
        Progress {
            enqueued_queue_offset: enqueued,
            delivered_before_ms,
            delivered_due_before_ms: delivered_before_ms,
        }
    }

    fn entry(deliver_ms: i64, offset: i64) -> TimerEntry {
        TimerEntry {
            deliver_ms,
            commit_log_offset: offset,
            size: 100,
        }
    }

    #[test]
    fn slots_hold_their_timers_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = TimerWheel::open(config(dir.path()), 10_000).unwrap();
        assert_eq!(w.checkpoint().delivered_before_ms, 10_000);
        w.add(12_000, entry(12_500, 1)).unwrap();
        w.add(13_000, entry(13_100, 2)).unwrap();
        w.add(12_000, entry(12_001, 3)).unwrap();
        assert_eq!(
            w.slot_entries(12_000),
            vec![entry(12_001, 3), entry(12_500, 1)]
        );
        assert_eq!(w.slot_entries(13_000), vec![entry(13_100, 2)]);
        assert_eq!(w.slot_count(12_000), 2);
        assert_eq!(w.pending(), 3);
        // The same slot index one span later is another slot: empty until filed.
        let later = 12_000 + w.span_ms();
        assert!(w.slot_entries(later).is_empty());
        w.add(later, entry(later + 1, 4)).unwrap();
        assert_eq!(w.slot_entries(later), vec![entry(later + 1, 4)]);
        assert!(w.slot_entries(12_000).is_empty(), "the old round is gone");
    }

    #[test]
    fn a_clean_close_keeps_the_wheel_and_a_crash_rebuilds_it_from_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = TimerWheel::open(config(dir.path()), 0).unwrap();
        for i in 0..20 {
            w.add(1000 * (i % 3), entry(1000 * (i % 3) + i, i)).unwrap();
        }
        w.close(progress(20, 0)).unwrap();
        let mut w = TimerWheel::open(config(dir.path()), 50_000).unwrap();
        assert_eq!(w.checkpoint().enqueued_queue_offset, 20);
        assert_eq!(w.slot_count(1000), 7);
        assert_eq!(w.pending(), 20);
        assert!(w.log_segments() >= 3, "8 records per segment");

        // Filed after the last persist, then a crash (no close): those records are cut and
        // the wheel is rebuilt from what the checkpoint accounts for.
        w.persist(progress(20, 1000)).unwrap();
        w.add(1000, entry(1999, 100)).unwrap();
        w.add(5000, entry(5000, 101)).unwrap();
        drop(w);
        let w = TimerWheel::open(config(dir.path()), 50_000).unwrap();
        assert_eq!(w.checkpoint().enqueued_queue_offset, 20);
        assert_eq!(w.checkpoint().delivered_before_ms, 1000);
        assert_eq!(w.slot_count(1000), 7);
        assert_eq!(w.slot_count(2000), 6);
        assert_eq!(w.slot_count(0), 0, "slots before the cursor were delivered");
        assert_eq!(w.slot_count(5000), 0);
        assert_eq!(w.pending(), 13);
        let mut got: Vec<i64> = w
            .slot_entries(1000)
            .iter()
            .map(|e| e.commit_log_offset)
            .collect();
        got.sort();
        assert_eq!(got, vec![1, 4, 7, 10, 13, 16, 19]);
    }

    #[test]
    fn delivered_segments_are_deleted_once_the_checkpoint_passes_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = TimerWheel::open(config(dir.path()), 0).unwrap();
        for i in 0..8 {
            w.add(1000, entry(1000 + i, i)).unwrap();
        }
        for i in 0..8 {
            w.add(3000, entry(3000 + i, 10 + i)).unwrap();
        }
        w.add(4000, entry(4000, 99)).unwrap();
        assert_eq!(w.log_segments(), 3);
        w.persist(progress(17, 2000)).unwrap();
        assert_eq!(w.delete_delivered_segments().unwrap(), 1);
        assert_eq!(w.log_segments(), 2);
        assert_eq!(w.slot_entries(3000).len(), 8, "later slots untouched");
        w.persist(progress(17, 4000)).unwrap();
        assert_eq!(w.delete_delivered_segments().unwrap(), 1);
        assert_eq!(w.slot_entries(4000), vec![entry(4000, 99)]);
        // After a crash the rebuild starts from the first segment left.
        drop(w);
        let w = TimerWheel::open(config(dir.path()), 0).unwrap();
        assert_eq!(w.slot_entries(4000), vec![entry(4000, 99)]);
        assert_eq!(w.pending(), 1);
    }

    #[test]
    fn the_precision_changes_only_with_nothing_pending() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = TimerWheel::open(config(dir.path()), 0).unwrap();
        w.add(7000, entry(7300, 1)).unwrap();
        w.close(progress(1, 0)).unwrap();
        let mut finer = config(dir.path());
        finer.precision_ms = 100;
        let err = TimerWheel::open(finer.clone(), 0).err().expect("refused");
        assert!(err.to_string().contains("1 pending timers"), "{err}");
        let w = TimerWheel::open(config(dir.path()), 0).unwrap();
        w.close(progress(1, 8000)).unwrap();
        let w = TimerWheel::open(finer, 0).unwrap();
        assert_eq!(w.precision_ms(), 100);
        assert_eq!(w.checkpoint().enqueued_queue_offset, 1);
        assert_eq!(w.pending(), 0);
    }

    #[test]
    fn a_new_layout_rebuilds_the_wheel() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = TimerWheel::open(config(dir.path()), 0).unwrap();
        w.add(7000, entry(7300, 1)).unwrap();
        w.close(progress(1, 0)).unwrap();
        let mut wider = config(dir.path());
        wider.slots *= 2;
        let w = TimerWheel::open(wider, 0).unwrap();
        assert_eq!(w.slot_entries(7000), vec![entry(7300, 1)]);
    }
}
