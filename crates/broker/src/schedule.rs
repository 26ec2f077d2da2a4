//! Delay levels and the `ScheduleMessageService` (reference §6.2).
//!
//! A message sent with `DELAY=n > 0` is stored in `SCHEDULE_TOPIC_XXXX` queue `n − 1` (levels past
//! the last are clamped to it) with `REAL_TOPIC`/`REAL_QID` added. Its due time is the record's
//! store timestamp + the level's delay; that is also its consume-queue tags code. At send time
//! the broker cannot know the store timestamp before the put, so it passes `now + delay` (at most
//! the length of the append critical section earlier than the store timestamp); recovery
//! recomputes `store timestamp + delay` from the record ([`DelayLevels::tags_code_fn`]). The
//! service never trusts the tags code: it reads each due candidate and uses the record's own
//! store timestamp, so both values lead to the same delivery.
//!
//! Delivery at any time (RocketMQ 5.x's `TIMER_DELIVER_MS`, `TIMER_DELAY_SEC`, `TIMER_DELAY_MS`,
//! and the older `__STARTDELIVERTIME`) does not use the levels: such a message is stored on
//! `rmq_sys_wheel_timer` queue 0 with its absolute time in `TIMER_DELIVER_MS` (also its tags
//! code) and the timing wheel delivers it (see [`crate::timer`]).
//!
//! The service scans the head of every level's queue at least every [`SCAN_INTERVAL_MS`] and
//! re-posts due messages to their real topic and queue through the ordinary store put. Progress
//! per level lives in `config/delayOffset.json`, written atomically after each pass that
//! delivered something: a crash between a re-post and that write re-delivers (at least once). It
//! must never re-post a message before its due time or skip one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use petrel_common::duration;
use petrel_common::msg_id::now_ms;
use petrel_common::properties::{
    Properties, DELAY, START_DELIVER_TIME, TIMER_DELAY_MS, TIMER_DELAY_SEC, TIMER_DELIVER_MS,
};
use petrel_common::record::{
    self, SYSFLAG_TRANSACTION_MASK, SYSFLAG_TRANSACTION_PREPARED, SYSFLAG_TRANSACTION_ROLLBACK,
};
use petrel_common::topic::{SCHEDULE_TOPIC, TIMER_TOPIC};
use petrel_remoting::CancellationToken;
use petrel_store::{metadata, GetStatus, TagsCodeFn};
use serde::{Deserialize, Serialize};

use crate::broker::Broker;

/// RocketMQ's default `messageDelayLevel`.
pub const DEFAULT_MESSAGE_DELAY_LEVEL: &str =
    "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h";
/// Longest pause between two scans of the schedule queues: a due message is delivered within
/// this much of its due time (plus the put).
pub const SCAN_INTERVAL_MS: u64 = 50;
/// `timerMaxDelaySec`: how far ahead a timer message may ask to be delivered (3 days).
pub const DEFAULT_TIMER_MAX_DELAY_MS: i64 = 3 * 86_400_000;
/// Entries read from one level's queue per store read.
const SCAN_BATCH: u32 = 32;

/// The parsed `messageDelayLevel`: level n (1-based) waits `delays_ms[n − 1]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelayLevels {
    delays_ms: Vec<i64>,
    timer_max_delay_ms: i64,
}

impl DelayLevels {
    /// Parses space-separated durations, each a positive integer and a unit `ms`, `s`, `m`, `h`
    /// or `d` (`ms` is Petrel's addition, for tests).
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut delays_ms = Vec::new();
        for item in spec.split_whitespace() {
            let ms = duration::parse_ms(item).map_err(|e| format!("messageDelayLevel: {e}"))?;
            if ms <= 0 {
                return Err(format!("messageDelayLevel: `{item}` is not positive"));
            }
            delays_ms.push(ms);
        }
        if delays_ms.is_empty() {
            return Err("messageDelayLevel is empty".to_owned());
        }
        Ok(DelayLevels {
            delays_ms,
            timer_max_delay_ms: DEFAULT_TIMER_MAX_DELAY_MS,
        })
    }

    /// Sets `timerMaxDelaySec` (in milliseconds here).
    pub fn with_timer_max_delay_ms(mut self, ms: i64) -> Self {
        self.timer_max_delay_ms = ms;
        self
    }

    pub fn max_level(&self) -> i32 {
        self.delays_ms.len() as i32
    }

    /// Delay of `level`, clamped to 1 ..= max level.
    pub fn delay_ms(&self, level: i32) -> i64 {
        let i = level.clamp(1, self.max_level()) - 1;
        self.delays_ms[i as usize]
    }

    /// Recovery's tags code: `store timestamp + delay` for schedule records (queue id = level − 1),
    /// the delivery time for timer records, the `TAGS` hash otherwise.
    pub fn tags_code_fn(&self) -> TagsCodeFn {
        let levels = self.clone();
        TagsCodeFn::new(move |r| {
            if r.topic == SCHEDULE_TOPIC {
                r.store_timestamp + levels.delay_ms(r.queue_id + 1)
            } else if r.topic == TIMER_TOPIC {
                petrel_common::properties::find_encoded(r.properties, TIMER_DELIVER_MS)
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(r.store_timestamp)
            } else {
                petrel_store::config::tags_code_from_properties(r)
            }
        })
    }

    /// Where a message asking for a delay is stored instead: appends `REAL_TOPIC`/`REAL_QID` to
    /// `props` and returns the schedule or timer queue and its tags code. `None` (and `props` untouched)
    /// for messages without `DELAY > 0` or a future timer time, and for transactional
    /// prepared/rollback records. `DELAY` wins over the timer properties, as in RocketMQ (a
    /// consumer retry of a timer message must not wait for the old time). An unreadable or
    /// too distant timer time is an error for the sender.
    pub fn redirect(
        &self,
        sys_flag: i32,
        topic: &str,
        queue_id: i32,
        props: &mut Properties,
    ) -> Result<Option<Scheduled>, String> {
        let tx = sys_flag & SYSFLAG_TRANSACTION_MASK;
        if tx == SYSFLAG_TRANSACTION_PREPARED || tx == SYSFLAG_TRANSACTION_ROLLBACK {
            return Ok(None);
        }
        let asked = DelayAsk::scan(props);
        let now = now_ms() as i64;
        match asked.level {
            Some(level) if level > 0 => {
                if asked.has_timer() {
                    for name in [
                        TIMER_DELIVER_MS,
                        TIMER_DELAY_SEC,
                        TIMER_DELAY_MS,
                        START_DELIVER_TIME,
                    ] {
                        props.remove(name);
                    }
                }
                let level = level.min(self.max_level());
                props.set_real_destination(topic, queue_id);
                Ok(Some(Scheduled {
                    topic: SCHEDULE_TOPIC,
                    queue_id: level - 1,
                    tags_code: now + self.delay_ms(level),
                }))
            }
            _ => {
                let Some(at) = asked.deliver_at(now)? else {
                    return Ok(None);
                };
                if at <= now {
                    return Ok(None);
                }
                if at - now > self.timer_max_delay_ms {
                    return Err(format!(
                        "the timer message asks for delivery in {} ms, more than the broker's \
                         timerMaxDelaySec of {} s",
                        at - now,
                        self.timer_max_delay_ms / 1000
                    ));
                }
                // One absolute time, whatever form was asked: the wheel files by it, recovery
                // reads it back, and the delivered message still says when it was due.
                props.remove(TIMER_DELAY_SEC);
                props.remove(TIMER_DELAY_MS);
                props.remove(START_DELIVER_TIME);
                props.insert(TIMER_DELIVER_MS, at.to_string());
                props.set_real_destination(topic, queue_id);
                Ok(Some(Scheduled {
                    topic: TIMER_TOPIC,
                    queue_id: 0,
                    tags_code: at,
                }))
            }
        }
    }
}

/// The delay properties of a message, found in one pass over its properties (this runs for
/// every message sent).
#[derive(Debug, Default)]
struct DelayAsk<'a> {
    level: Option<i32>,
    timer_deliver_ms: Option<&'a str>,
    timer_delay_sec: Option<&'a str>,
    timer_delay_ms: Option<&'a str>,
    start_deliver_time: Option<&'a str>,
}

impl<'a> DelayAsk<'a> {
    fn scan(props: &'a Properties) -> Self {
        let mut ask = DelayAsk::default();
        for (name, value) in props.iter() {
            match name {
                DELAY => ask.level = value.trim().parse().ok(),
                TIMER_DELIVER_MS => ask.timer_deliver_ms = Some(value),
                TIMER_DELAY_SEC => ask.timer_delay_sec = Some(value),
                TIMER_DELAY_MS => ask.timer_delay_ms = Some(value),
                START_DELIVER_TIME => ask.start_deliver_time = Some(value),
                _ => {}
            }
        }
        ask
    }

    fn has_timer(&self) -> bool {
        self.timer_deliver_ms.is_some()
            || self.timer_delay_sec.is_some()
            || self.timer_delay_ms.is_some()
            || self.start_deliver_time.is_some()
    }

    /// The asked delivery time, in RocketMQ's order of precedence.
    fn deliver_at(&self, now: i64) -> Result<Option<i64>, String> {
        let number = |name: &str, v: &str| {
            v.trim()
                .parse::<i64>()
                .map_err(|_| format!("the property {name} must be a whole number, not {v:?}"))
        };
        Ok(if let Some(v) = self.timer_delay_sec {
            Some(now.saturating_add(number(TIMER_DELAY_SEC, v)?.saturating_mul(1000)))
        } else if let Some(v) = self.timer_delay_ms {
            Some(now.saturating_add(number(TIMER_DELAY_MS, v)?))
        } else if let Some(v) = self.timer_deliver_ms {
            Some(number(TIMER_DELIVER_MS, v)?)
        } else if let Some(v) = self.start_deliver_time {
            Some(number(START_DELIVER_TIME, v)?)
        } else {
            None
        })
    }
}

/// Where [`DelayLevels::redirect`] sends a message: `SCHEDULE_TOPIC_XXXX` queue `level − 1`, or
/// `rmq_sys_wheel_timer` queue 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheduled {
    pub topic: &'static str,
    pub queue_id: i32,
    pub tags_code: i64,
}

/// `config/delayOffset.json`: next schedule-queue offset to look at, per level.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DelayOffsets {
    offset_table: BTreeMap<i32, i64>,
}

pub struct ScheduleMessageService {
    broker: Arc<Broker>,
    path: PathBuf,
    offsets: DelayOffsets,
}

/// What one level's scan found.
enum LevelScan {
    /// Everything stored so far was delivered.
    Drained,
    /// The head message is due at this time.
    DueAt(i64),
    /// A re-post failed; try again on the next pass.
    Failed,
}

/// Where the delay progress of the broker whose data lives under `root_dir` is kept.
fn delay_offset_path(root_dir: &Path) -> PathBuf {
    root_dir.join("config").join("delayOffset.json")
}

/// The delay progress as last written, level → next schedule-queue offset (empty before the
/// first delivery): what GET_ALL_DELAY_OFFSET answers. Written after every pass that delivered
/// something, so at most one pass behind the running service.
pub(crate) fn read_delay_offsets(root_dir: &Path) -> std::io::Result<BTreeMap<i32, i64>> {
    let offsets: Option<DelayOffsets> = metadata::read_json(&delay_offset_path(root_dir))?;
    Ok(offsets.unwrap_or_default().offset_table)
}

/// Takes another broker's delay progress (a master's, on its slave): per level the larger of
/// the two wins, so a promoted slave neither re-delivers what its master delivered nor goes
/// back on what it delivered itself. Writes the file when a level moved and returns how many
/// did. The service reads the file when it starts ([`ScheduleMessageService::load`]); one
/// running beside this merge would overwrite it on its next delivering pass.
pub(crate) fn merge_delay_offsets(
    root_dir: &Path,
    other: &BTreeMap<i32, i64>,
) -> std::io::Result<usize> {
    let path = delay_offset_path(root_dir);
    let mut offsets: DelayOffsets = metadata::read_json(&path)?.unwrap_or_default();
    let mut moved = 0;
    for (&level, &offset) in other {
        let slot = offsets.offset_table.entry(level).or_insert(0);
        if offset > *slot {
            *slot = offset;
            moved += 1;
        }
    }
    if moved > 0 {
        metadata::write_json(&path, &offsets)?;
    }
    Ok(moved)
}

impl ScheduleMessageService {
    /// Loads the progress file; a missing one starts every level at offset 0.
    pub fn load(broker: Arc<Broker>) -> std::io::Result<Self> {
        let path = delay_offset_path(&broker.config.store.root_dir);
        let offsets = metadata::read_json(&path)?.unwrap_or_default();
        Ok(ScheduleMessageService {
            broker,
            path,
            offsets,
        })
    }

    /// Scans until `shutdown` fires.
    pub async fn run(mut self, shutdown: CancellationToken) {
        loop {
            let next_due = self.pass().await;
            let now = now_ms() as i64;
            let wait = next_due.map_or(SCAN_INTERVAL_MS, |due| {
                (due - now).clamp(0, SCAN_INTERVAL_MS as i64) as u64
            });
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(std::time::Duration::from_millis(wait)) => {}
            }
        }
    }

    /// One scan of every level; returns the earliest due time still pending.
    async fn pass(&mut self) -> Option<i64> {
        let mut next_due: Option<i64> = None;
        let mut delivered = false;
        for level in 1..=self.broker.delay_levels.max_level() {
            let before = self.offset(level);
            match self.scan_level(level).await {
                LevelScan::DueAt(t) => next_due = Some(next_due.map_or(t, |n| n.min(t))),
                LevelScan::Failed => next_due = Some(now_ms() as i64 + SCAN_INTERVAL_MS as i64),
                LevelScan::Drained => {}
            }
            delivered |= self.offset(level) != before;
        }
        if delivered {
            if let Err(e) = metadata::write_json(&self.path, &self.offsets) {
                tracing::error!("could not persist delayOffset.json: {e}");
            }
        }
        next_due
    }

    fn offset(&self, level: i32) -> i64 {
        self.offsets.offset_table.get(&level).copied().unwrap_or(0)
    }

    async fn scan_level(&mut self, level: i32) -> LevelScan {
        let queue_id = level - 1;
        let delay = self.broker.delay_levels.delay_ms(level);
        loop {
            let offset = self.offset(level);
            let r = self.broker.store.get_messages(
                SCHEDULE_TOPIC,
                queue_id,
                offset,
                SCAN_BATCH,
                &|_| true,
            );
            match r.status {
                GetStatus::Found => {}
                GetStatus::OffsetTooSmall | GetStatus::OffsetOverflowBadly => {
                    tracing::warn!(
                        level,
                        offset,
                        next = r.next_begin_offset,
                        "delay progress outside the schedule queue; moving"
                    );
                    self.offsets.offset_table.insert(level, r.next_begin_offset);
                    if r.next_begin_offset == offset {
                        return LevelScan::Drained;
                    }
                    continue;
                }
                GetStatus::OffsetFoundNull | GetStatus::NoMatchedMessage => {
                    if r.next_begin_offset <= offset {
                        return LevelScan::Drained;
                    }
                    self.offsets.offset_table.insert(level, r.next_begin_offset);
                    continue;
                }
                GetStatus::NoMessageInQueue | GetStatus::OffsetOverflowOne => {
                    return LevelScan::Drained
                }
            }
            for bytes in &r.messages {
                let rec = match record::decode(bytes, false) {
                    Ok(rec) => rec,
                    Err(e) => {
                        tracing::error!(level, offset, "unreadable schedule record, skipped: {e}");
                        continue;
                    }
                };
                let due = rec.store_timestamp + delay;
                if due > now_ms() as i64 {
                    return LevelScan::DueAt(due);
                }
                if let Err(e) = self.deliver(&rec).await {
                    tracing::warn!(
                        level,
                        queue_offset = rec.queue_offset,
                        "re-post failed: {e}"
                    );
                    return LevelScan::Failed;
                }
                self.offsets
                    .offset_table
                    .insert(level, rec.queue_offset + 1);
            }
            self.offsets.offset_table.insert(level, r.next_begin_offset);
        }
    }

    /// Re-posts a due schedule record to its real topic and queue, without DELAY, REAL_TOPIC and
    /// REAL_QID; everything else as stored.
    async fn deliver(&self, rec: &record::DecodedRecord<'_>) -> Result<(), String> {
        let mut props = Properties::from_stored(rec.properties);
        props.remove(DELAY);
        let now = now_ms() as i64;
        let timer_at = props
            .get(TIMER_DELIVER_MS)
            .and_then(|v| v.trim().parse::<i64>().ok());
        if let Some(at) = timer_at.filter(|&at| at > now) {
            // Written by a Petrel that hopped timer messages through the levels: the rest of
            // the wait is the wheel's.
            return self.repost(rec, TIMER_TOPIC, 0, &props, at).await;
        }
        let (topic, queue_id) = props
            .take_real_destination()
            .map_err(|e| format!("the schedule record has {e}"))?;
        let tags_code = crate::processor::send::tags_code_of(&props);
        self.repost(rec, &topic, queue_id, &props, tags_code)
            .await?;
        self.broker.count_put(1);
        Ok(())
    }

    /// Stores `rec` again under `topic`/`queue_id` with `props`, everything else as it was.
    async fn repost(
        &self,
        rec: &record::DecodedRecord<'_>,
        topic: &str,
        queue_id: i32,
        props: &Properties,
        tags_code: i64,
    ) -> Result<(), String> {
        let b = &self.broker;
        let fields = crate::processor::send::copy_fields(rec, topic, queue_id, props, b.store_host);
        let append =
            crate::processor::send::encode_append(&fields, tags_code).map_err(|e| e.to_string())?;
        b.store
            .put_message(append)
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use petrel_common::properties::{REAL_QID, REAL_TOPIC};

    #[test]
    fn parses_the_default_and_short_levels() {
        let d = DelayLevels::parse(DEFAULT_MESSAGE_DELAY_LEVEL).unwrap();
        assert_eq!(d.max_level(), 18);
        assert_eq!(d.delay_ms(1), 1000);
        assert_eq!(d.delay_ms(5), 60_000);
        assert_eq!(d.delay_ms(18), 7_200_000);
        assert_eq!(d.delay_ms(40), 7_200_000);
        let short = DelayLevels::parse("100ms 200ms 1s 2d").unwrap();
        assert_eq!(short.delay_ms(2), 200);
        assert_eq!(short.delay_ms(4), 172_800_000);
        for bad in ["", "1x", "s", "0s", "1s 5"] {
            assert!(DelayLevels::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn redirect_moves_delayed_messages_only() {
        let d = DelayLevels::parse("1s 2s 3s").unwrap();
        let mut props = Properties::new();
        props.insert(DELAY, "7");
        let s = d.redirect(0, "T", 3, &mut props).unwrap().unwrap();
        assert_eq!((s.topic, s.queue_id), (SCHEDULE_TOPIC, 2));
        assert!(s.tags_code >= now_ms() as i64 + 2_900);
        assert_eq!(props.get(REAL_TOPIC), Some("T"));
        assert_eq!(props.get(REAL_QID), Some("3"));

        let mut none = Properties::new();
        none.insert(DELAY, "0");
        assert!(d.redirect(0, "T", 0, &mut none).unwrap().is_none());
        let mut prepared = Properties::new();
        prepared.insert(DELAY, "1");
        assert!(d
            .redirect(SYSFLAG_TRANSACTION_PREPARED, "T", 0, &mut prepared)
            .unwrap()
            .is_none());
        assert_eq!(prepared.get(REAL_TOPIC), None);
    }

    #[test]
    fn timer_properties_redirect_to_a_fixed_time() {
        let d = DelayLevels::parse("1s 5s 10s").unwrap();
        let before = now_ms() as i64;
        let mut props = Properties::new();
        props.insert(TIMER_DELAY_SEC, "7");
        let s = d.redirect(0, "T", 2, &mut props).unwrap().unwrap();
        assert_eq!((s.topic, s.queue_id), (TIMER_TOPIC, 0));
        let at: i64 = props.get(TIMER_DELIVER_MS).unwrap().parse().unwrap();
        assert!(at >= before + 7_000 && at <= now_ms() as i64 + 7_000);
        assert_eq!(s.tags_code, at, "the wheel files by the delivery time");
        assert_eq!(
            props.get(TIMER_DELAY_SEC),
            None,
            "relative forms are replaced"
        );
        assert_eq!(props.get(REAL_QID), Some("2"));

        // A time in the past is delivered at once.
        let mut past = Properties::new();
        past.insert(TIMER_DELIVER_MS, (before - 1).to_string());
        assert!(d.redirect(0, "T", 0, &mut past).unwrap().is_none());

        // The older clients' name, absolute like TIMER_DELIVER_MS.
        let mut legacy = Properties::new();
        legacy.insert(START_DELIVER_TIME, (before + 90_000).to_string());
        let s = d.redirect(0, "T", 1, &mut legacy).unwrap().unwrap();
        assert_eq!((s.topic, s.tags_code), (TIMER_TOPIC, before + 90_000));
        assert_eq!(legacy.get(START_DELIVER_TIME), None);
        assert_eq!(
            legacy.get(TIMER_DELIVER_MS),
            Some((before + 90_000).to_string().as_str())
        );

        // DELAY wins and drops the timer properties.
        let mut both = Properties::new();
        both.insert(TIMER_DELIVER_MS, (before + 60_000).to_string());
        both.insert(DELAY, "1");
        let s = d.redirect(0, "T", 0, &mut both).unwrap().unwrap();
        assert_eq!((s.topic, s.queue_id), (SCHEDULE_TOPIC, 0));
        assert_eq!(both.get(TIMER_DELIVER_MS), None);
    }

    #[test]
    fn merged_delay_offsets_keep_the_larger_per_level() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("config")).unwrap();
        assert!(read_delay_offsets(dir.path()).unwrap().is_empty());
        let first: BTreeMap<i32, i64> = [(1, 10), (2, 5)].into();
        assert_eq!(merge_delay_offsets(dir.path(), &first).unwrap(), 2);
        let second: BTreeMap<i32, i64> = [(1, 4), (2, 9), (3, 1)].into();
        assert_eq!(merge_delay_offsets(dir.path(), &second).unwrap(), 2);
        assert_eq!(
            read_delay_offsets(dir.path()).unwrap(),
            BTreeMap::from([(1, 10), (2, 9), (3, 1)])
        );
        assert_eq!(merge_delay_offsets(dir.path(), &second).unwrap(), 0);
    }

    #[test]
    fn bad_or_too_distant_timer_times_are_refused() {
        let d = DelayLevels::parse("1s")
            .unwrap()
            .with_timer_max_delay_ms(60_000);
        let mut far = Properties::new();
        far.insert(TIMER_DELAY_MS, "60001");
        let err = d.redirect(0, "T", 0, &mut far).unwrap_err();
        assert!(err.contains("timerMaxDelaySec of 60 s"), "{err}");
        let mut bad = Properties::new();
        bad.insert(TIMER_DELIVER_MS, "tomorrow");
        let err = d.redirect(0, "T", 0, &mut bad).unwrap_err();
        assert!(err.contains("TIMER_DELIVER_MS"), "{err}");
    }
}
