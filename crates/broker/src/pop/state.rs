//! `PopTable`: which queue entries each POP consumer group has been handed and not yet
//! acknowledged, and until when each stays invisible.
//!
//! A group's progress on a queue is `next` (the first entry never handed out) and the entries
//! below it still in flight. Everything else below `next` is done: acknowledged, dead-lettered,
//! or filtered out. The lowest in-flight entry (or `next`) is the group's consumer offset, so
//! admin tools, lag and retention see POP groups like any other.
//!
//! Every change is appended to a journal before the call returns (one write per call, no
//! fsync: it survives a process crash, as the page cache does, not a machine crash). Opening
//! replays it and writes it afresh with only the live state, and so does the broker when the
//! journal grows past [`JOURNAL_COMPACT_BYTES`].

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

/// Most entries of one queue a group may have in flight; past it the queue hands out nothing
/// new until some are acknowledged or dead-lettered (bounds memory when a consumer never acks).
pub const MAX_IN_FLIGHT_PER_QUEUE: usize = 20_000;

/// Journal size that triggers a rewrite with only the live state.
pub const JOURNAL_COMPACT_BYTES: u64 = 64 * 1024 * 1024;

const JOURNAL: &str = "pop_journal.log";
/// The journal's owner field of an entry no client renews (client ids never are `-`).
const NO_OWNER: &str = "-";

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QueueKey {
    pub group: String,
    pub topic: String,
    pub queue_id: i32,
}

/// One entry handed out and not yet done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    /// Until when no one else gets it (ms since the epoch).
    pub visible_at_ms: i64,
    /// How often it has been handed out; the client's delivery attempt.
    pub deliveries: u32,
    /// Names this delivery in its receipt handle: the time it was handed out (ms), made
    /// larger than the entry's previous token when two deliveries fall in one millisecond.
    /// RocketMQ's remoting clients echo it back as the `popTime` of their receipt.
    pub token: u64,
    /// Whether the next delivery counts as another attempt (false after a change of invisible
    /// time asked not to count one).
    pub count_next: bool,
    /// The client whose receive asked to keep it invisible while it is connected (a push
    /// consumer's auto-renew): its invisible time is renewed instead of running out.
    pub owner: Option<Arc<str>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueState {
    pub next: i64,
    pub in_flight: BTreeMap<i64, InFlight>,
}

/// The token of a delivery at `now_ms` of an entry last delivered with `previous`.
pub fn token_at(now_ms: i64, previous: Option<u64>) -> u64 {
    let now = now_ms.max(0) as u64;
    previous.map_or(now, |p| now.max(p + 1))
}

impl QueueState {
    fn new(next: i64) -> Self {
        QueueState {
            next,
            in_flight: BTreeMap::new(),
        }
    }

    /// The group's consumer offset: every entry below it is done.
    pub fn done_below(&self) -> i64 {
        self.in_flight.keys().next().copied().unwrap_or(self.next)
    }

    /// Whether some entry is handed out and still invisible (a FIFO queue then waits).
    pub fn has_invisible(&self, now_ms: i64) -> bool {
        self.in_flight.values().any(|e| e.visible_at_ms > now_ms)
    }

    /// In-flight entries visible again, lowest offset first.
    pub fn expired(&self, now_ms: i64) -> Vec<(i64, InFlight)> {
        self.in_flight
            .iter()
            .filter(|(_, e)| e.visible_at_ms <= now_ms)
            .map(|(o, e)| (*o, e.clone()))
            .collect()
    }

    /// When the next in-flight entry becomes visible, if any is invisible now.
    pub fn next_visible_at(&self, now_ms: i64) -> Option<i64> {
        self.in_flight
            .values()
            .map(|e| e.visible_at_ms)
            .filter(|t| *t > now_ms)
            .min()
    }
}

/// A change to one queue's state, as journaled.
#[derive(Debug, Clone, PartialEq)]
enum Op {
    /// The entry is (again) in flight with these values.
    Deliver(i64, InFlight),
    /// The entry is done.
    Done(i64),
    /// Entries below this were all looked at.
    Next(i64),
    /// Forget everything: an operator reset, or a queue whose old entries were deleted.
    Reset(i64),
}

fn apply(state: &mut QueueState, op: &Op) {
    match op {
        Op::Deliver(offset, e) => {
            state.in_flight.insert(*offset, e.clone());
            state.next = state.next.max(offset + 1);
        }
        Op::Done(offset) => {
            state.in_flight.remove(offset);
        }
        Op::Next(next) => state.next = state.next.max(*next),
        Op::Reset(offset) => *state = QueueState::new(*offset),
    }
}

/// A queue's state under its lock, recording what changes so the table journals it.
pub struct QueueChange<'a> {
    state: &'a mut QueueState,
    ops: Vec<Op>,
}

impl QueueChange<'_> {
    pub fn state(&self) -> &QueueState {
        self.state
    }

    fn push(&mut self, op: Op) {
        apply(self.state, &op);
        self.ops.push(op);
    }

    pub fn deliver(&mut self, offset: i64, entry: InFlight) {
        self.push(Op::Deliver(offset, entry));
    }

    pub fn done(&mut self, offset: i64) {
        if self.state.in_flight.contains_key(&offset) {
            self.push(Op::Done(offset));
        }
    }

    pub fn advance(&mut self, next: i64) {
        if next > self.state.next {
            self.push(Op::Next(next));
        }
    }

    pub fn reset(&mut self, offset: i64) {
        self.push(Op::Reset(offset));
    }
}

struct Journal {
    file: File,
    bytes: u64,
}

pub struct PopTable {
    dir: PathBuf,
    queues: RwLock<HashMap<QueueKey, Arc<Mutex<QueueState>>>>,
    journal: Mutex<Journal>,
    /// Held shared by every change, exclusively by a compaction, so a compaction sees no
    /// change half journaled. Lock order: gate, queue, journal.
    gate: RwLock<()>,
}

impl PopTable {
    /// Loads the table from `dir`'s journal (creating both if absent) and rewrites the
    /// journal with only the live state.
    pub fn open(dir: &Path) -> io::Result<PopTable> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(JOURNAL);
        let queues = match File::open(&path) {
            Ok(f) => replay(BufReader::new(f))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => HashMap::new(),
            Err(e) => return Err(e),
        };
        let (file, bytes) = write_snapshot(dir, &queues)?;
        Ok(PopTable {
            dir: dir.to_owned(),
            queues: RwLock::new(
                queues
                    .into_iter()
                    .map(|(k, v)| (k, Arc::new(Mutex::new(v))))
                    .collect(),
            ),
            journal: Mutex::new(Journal { file, bytes }),
            gate: RwLock::new(()),
        })
    }

    /// Runs `f` on the queue's state (created at `init()` if the group never popped it),
    /// then journals what `f` changed. A journal write failure is returned after the change
    /// was made in memory: the caller reports it, the state stays usable.
    pub fn change<R>(
        &self,
        key: &QueueKey,
        init: impl FnOnce() -> i64,
        f: impl FnOnce(&mut QueueChange<'_>) -> R,
    ) -> (R, io::Result<()>) {
        let _gate = self.gate.read();
        let (queue, created) = self.queue_or_insert(key, init);
        let mut state = queue.lock();
        let mut change = QueueChange {
            state: &mut state,
            // A new queue's starting point is journaled, so a replay starts where it did.
            ops: created.map(Op::Reset).into_iter().collect(),
        };
        let r = f(&mut change);
        let written = if change.ops.is_empty() {
            Ok(())
        } else {
            let mut text = String::new();
            for op in &change.ops {
                line(&mut text, key, op);
            }
            let mut journal = self.journal.lock();
            journal.bytes += text.len() as u64;
            journal.file.write_all(text.as_bytes())
        };
        (r, written)
    }

    /// A copy of one queue's state, if the group ever popped it.
    pub fn get(&self, key: &QueueKey) -> Option<QueueState> {
        self.queues.read().get(key).map(|q| q.lock().clone())
    }

    /// The delivery in flight at `offset`, if there is one.
    pub fn in_flight(&self, key: &QueueKey, offset: i64) -> Option<InFlight> {
        let queue = self.queues.read().get(key).cloned()?;
        let entry = queue.lock().in_flight.get(&offset).cloned();
        entry
    }

    /// The first entry of the queue the group was never handed, if it ever popped it.
    pub fn next_of(&self, key: &QueueKey) -> Option<i64> {
        self.queues.read().get(key).map(|q| q.lock().next)
    }

    /// Whether the group ever popped this queue.
    pub fn contains(&self, key: &QueueKey) -> bool {
        self.queues.read().contains_key(key)
    }

    /// Rewrites the journal with only the live state when it has grown past
    /// [`JOURNAL_COMPACT_BYTES`]; true if it did.
    pub fn compact_if_large(&self) -> io::Result<bool> {
        if self.journal.lock().bytes < JOURNAL_COMPACT_BYTES {
            return Ok(false);
        }
        let _gate = self.gate.write();
        let snapshot: HashMap<QueueKey, QueueState> = self
            .queues
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.lock().clone()))
            .collect();
        let (file, bytes) = write_snapshot(&self.dir, &snapshot)?;
        *self.journal.lock() = Journal { file, bytes };
        Ok(true)
    }

    /// The queue's state, and where it starts if this call created it.
    fn queue_or_insert(
        &self,
        key: &QueueKey,
        init: impl FnOnce() -> i64,
    ) -> (Arc<Mutex<QueueState>>, Option<i64>) {
        if let Some(q) = self.queues.read().get(key) {
            return (q.clone(), None);
        }
        let mut created = None;
        let q = self
            .queues
            .write()
            .entry(key.clone())
            .or_insert_with(|| {
                let start = init();
                created = Some(start);
                Arc::new(Mutex::new(QueueState::new(start)))
            })
            .clone();
        (q, created)
    }
}

/// Appends one journal line for `op` on `key`: tab-separated, names first (they cannot hold
/// tabs: topic and group names are letters, digits, `%|_-`).
fn line(out: &mut String, key: &QueueKey, op: &Op) {
    use std::fmt::Write as _;
    let QueueKey {
        group,
        topic,
        queue_id,
    } = key;
    let _ = match op {
        Op::Deliver(o, e) => writeln!(
            out,
            "D\t{group}\t{topic}\t{queue_id}\t{o}\t{}\t{}\t{}\t{}\t{}",
            e.visible_at_ms,
            e.deliveries,
            e.token,
            e.count_next as u8,
            e.owner.as_deref().unwrap_or(NO_OWNER)
        ),
        Op::Done(o) => writeln!(out, "A\t{group}\t{topic}\t{queue_id}\t{o}"),
        Op::Next(o) => writeln!(out, "N\t{group}\t{topic}\t{queue_id}\t{o}"),
        Op::Reset(o) => writeln!(out, "R\t{group}\t{topic}\t{queue_id}\t{o}"),
    };
}

fn parse_line(s: &str) -> Option<(QueueKey, Op)> {
    let f: Vec<&str> = s.split('\t').collect();
    if f.len() < 5 {
        return None;
    }
    let key = QueueKey {
        group: f[1].to_owned(),
        topic: f[2].to_owned(),
        queue_id: f[3].parse().ok()?,
    };
    let offset: i64 = f[4].parse().ok()?;
    let op = match (f[0], f.len()) {
        ("D", 10) => Op::Deliver(
            offset,
            InFlight {
                visible_at_ms: f[5].parse().ok()?,
                deliveries: f[6].parse().ok()?,
                token: f[7].parse().ok()?,
                count_next: f[8] == "1",
                owner: (f[9] != NO_OWNER).then(|| Arc::from(f[9])),
            },
        ),
        ("A", 5) => Op::Done(offset),
        ("N", 5) => Op::Next(offset),
        ("R", 5) => Op::Reset(offset),
        _ => return None,
    };
    Some((key, op))
}

fn replay(reader: impl BufRead) -> io::Result<HashMap<QueueKey, QueueState>> {
    let mut queues: HashMap<QueueKey, QueueState> = HashMap::new();
    for (n, l) in reader.lines().enumerate() {
        let l = l?;
        let Some((key, op)) = parse_line(&l) else {
            // A torn last line after a machine crash; anything else is worth a look.
            tracing::warn!(
                line = n + 1,
                "skipping an unreadable POP journal line: {l:?}"
            );
            continue;
        };
        let state = queues.entry(key).or_insert_with(|| QueueState::new(0));
        apply(state, &op);
    }
    Ok(queues)
}

/// Writes the live state as a new journal (a temporary file renamed over the old one) and
/// returns it open for appending, with its size.
fn write_snapshot(dir: &Path, queues: &HashMap<QueueKey, QueueState>) -> io::Result<(File, u64)> {
    let mut text = String::new();
    for (key, state) in queues {
        line(&mut text, key, &Op::Reset(state.next));
        for (o, e) in &state.in_flight {
            line(&mut text, key, &Op::Deliver(*o, e.clone()));
        }
    }
    let tmp = dir.join(format!("{JOURNAL}.tmp"));
    {
        let mut f = File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    let path = dir.join(JOURNAL);
    std::fs::rename(&tmp, &path)?;
    let file = OpenOptions::new().append(true).open(&path)?;
    Ok((file, text.len() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(q: i32) -> QueueKey {
        QueueKey {
            group: "G".into(),
            topic: "T".into(),
            queue_id: q,
        }
    }

    fn entry(visible_at_ms: i64, deliveries: u32, token: u64) -> InFlight {
        InFlight {
            visible_at_ms,
            deliveries,
            token,
            count_next: true,
            owner: None,
        }
    }

    #[test]
    fn the_offset_is_the_lowest_entry_in_flight() {
        let mut s = QueueState::new(5);
        assert_eq!(s.done_below(), 5);
        apply(&mut s, &Op::Deliver(5, entry(100, 1, 1)));
        apply(&mut s, &Op::Deliver(7, entry(200, 1, 2)));
        apply(&mut s, &Op::Next(9));
        assert_eq!((s.done_below(), s.next), (5, 9));
        apply(&mut s, &Op::Done(5));
        assert_eq!(s.done_below(), 7);
        assert!(s.has_invisible(150));
        assert_eq!(s.expired(150).len(), 0);
        assert_eq!(s.next_visible_at(150), Some(200));
        apply(&mut s, &Op::Done(7));
        assert_eq!(s.done_below(), 9);
    }

    #[test]
    fn state_survives_reopening_and_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let table = PopTable::open(dir.path()).unwrap();
        let (_, w) = table.change(
            &key(0),
            || 3,
            |c| {
                c.deliver(3, entry(1_000, 1, 11));
                c.deliver(4, entry(1_000, 1, 12));
                c.advance(6);
            },
        );
        w.unwrap();
        let (_, w) = table.change(&key(0), || unreachable!(), |c| c.done(3));
        w.unwrap();
        let (_, w) = table.change(&key(1), || 0, |c| c.advance(2));
        w.unwrap();
        let before = (table.get(&key(0)), table.get(&key(1)));
        drop(table);

        let reopened = PopTable::open(dir.path()).unwrap();
        assert_eq!((reopened.get(&key(0)), reopened.get(&key(1))), before);
        let s = reopened.get(&key(0)).unwrap();
        assert_eq!((s.done_below(), s.next, s.in_flight.len()), (4, 6, 1));

        // A torn line at the end is skipped, the rest kept.
        let path = dir.path().join(JOURNAL);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"D\tG\tT\t0\t9\t12").unwrap();
        drop((f, reopened));
        let again = PopTable::open(dir.path()).unwrap();
        assert_eq!(again.get(&key(0)), before.0);
    }

    #[test]
    fn a_reset_forgets_entries_in_flight() {
        let dir = tempfile::tempdir().unwrap();
        let table = PopTable::open(dir.path()).unwrap();
        let _ = table.change(
            &key(0),
            || 0,
            |c| {
                c.deliver(0, entry(1, 1, 1));
                c.reset(40);
            },
        );
        let s = table.get(&key(0)).unwrap();
        assert_eq!((s.done_below(), s.in_flight.len()), (40, 0));
    }
}
