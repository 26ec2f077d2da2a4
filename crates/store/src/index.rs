//! `IndexFile`: RocketMQ's hash index from message keys to commit-log offsets (protocol reference
//! §5.3), and `IndexService`, the run of index files under `<root>/index/`. A file is a 40-byte
//! header, a table of hash slots (i32: newest entry of the slot's chain, 0 = empty) and 20-byte
//! entries (keyHash i32, commitLogOffset i64, timeDiff i32 seconds, prevIndex i32), all
//! big-endian; a new file starts when one holds `max_index_num` entries. Files are named by their
//! creation time `yyyyMMddHHmmssSSS` (UTC here; RocketMQ uses local time).
//!
//! The index only proposes candidates: a key hash says nothing certain about the key, so callers
//! must check each record it points to. It never reads the commit log itself.
//!
//! Concurrency: every write to a mapping happens under the write half of `files`, every read
//! under the read half, so no reader sees a half-written entry; flushing needs neither.

use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use memmap2::MmapRaw;
use parking_lot::RwLock;
use petrel_common::properties::{self, KEYS, UNIQ_KEY};
use petrel_common::record::{
    java_string_hash, DecodedRecord, SYSFLAG_TRANSACTION_MASK, SYSFLAG_TRANSACTION_ROLLBACK,
};

pub const INDEX_HEADER_BYTES: usize = 40;
pub const HASH_SLOT_BYTES: usize = 4;
pub const INDEX_ENTRY_BYTES: usize = 20;
/// Length of an index file name, `yyyyMMddHHmmssSSS`.
const FILE_NAME_LEN: usize = 17;

const BEGIN_TIMESTAMP_POS: usize = 0;
const END_TIMESTAMP_POS: usize = 8;
const BEGIN_PHY_OFFSET_POS: usize = 16;
const END_PHY_OFFSET_POS: usize = 24;
const HASH_SLOT_COUNT_POS: usize = 32;
const INDEX_COUNT_POS: usize = 36;

/// Java `String.hashCode` of `prefix` followed by `s`, given the hash of `prefix`: hashes
/// `topic#key` without building the string.
fn java_hash_continue(prefix_hash: i32, s: &str) -> i32 {
    s.encode_utf16().fold(prefix_hash, |h, c| {
        h.wrapping_mul(31).wrapping_add(i32::from(c))
    })
}

/// The hash RocketMQ indexes `key` of `topic` under: that of `topic#key`.
pub fn index_key_hash(topic: &str, key: &str) -> i32 {
    java_hash_continue(java_hash_continue(java_string_hash(topic), "#"), key)
}

/// Whether a record's properties carry `key` as one of its KEYS or as its UNIQ_KEY.
pub fn record_has_key(properties: &str, key: &str) -> bool {
    properties::find(properties, UNIQ_KEY) == Some(key)
        || properties::find(properties, KEYS).is_some_and(|keys| keys.split(' ').any(|k| k == key))
}

/// Candidates of one lookup, newest first, plus where the index stands.
#[derive(Debug, Default)]
pub(crate) struct Lookup {
    pub(crate) offsets: Vec<i64>,
    pub(crate) last_update_timestamp: i64,
    pub(crate) last_update_phy_offset: i64,
}

struct IndexFile {
    path: PathBuf,
    map: MmapRaw,
    slot_num: usize,
    max_index_num: usize,
    /// Milliseconds since the epoch encoded in the name; orders files.
    created_ms: i64,
    dirty: AtomicBool,
}

impl IndexFile {
    fn file_bytes(slot_num: usize, max_index_num: usize) -> usize {
        INDEX_HEADER_BYTES + slot_num * HASH_SLOT_BYTES + max_index_num * INDEX_ENTRY_BYTES
    }

    fn open(
        path: PathBuf,
        created_ms: i64,
        slot_num: usize,
        max_index_num: usize,
    ) -> io::Result<IndexFile> {
        let size = Self::file_bytes(slot_num, max_index_num);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let len = file.metadata()?.len();
        let fresh = len == 0;
        if fresh {
            // Sparse: slots and entries cost disk only once written.
            file.set_len(size as u64)?;
        } else if len != size as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} is {len} bytes, but max_hash_slot_num {slot_num} and max_index_num \
                     {max_index_num} make {size}; it was written with other settings",
                    path.display()
                ),
            ));
        }
        let map = MmapRaw::map_raw(&file)?;
        // Slots are hit at random; readahead would only zero-fill pages nobody asked for.
        map.advise(memmap2::Advice::Random)?;
        let f = IndexFile {
            path,
            map,
            slot_num,
            max_index_num,
            created_ms,
            dirty: AtomicBool::new(fresh),
        };
        if f.index_count() < 1 {
            // Entry 0 is never used: 0 in a slot or a prevIndex means "none".
            f.write_i32(INDEX_COUNT_POS, 1);
        }
        Ok(f)
    }

    fn read<const N: usize>(&self, pos: usize) -> [u8; N] {
        assert!(pos + N <= self.map.len());
        let mut b = [0u8; N];
        // SAFETY: in bounds (asserted); callers hold the service lock, so no write is concurrent.
        unsafe { std::ptr::copy_nonoverlapping(self.map.as_ptr().add(pos), b.as_mut_ptr(), N) };
        b
    }

    fn write(&self, pos: usize, b: &[u8]) {
        assert!(pos + b.len() <= self.map.len());
        // SAFETY: in bounds (asserted); callers hold the write half of the service lock, so no
        // other reader or writer touches the mapping meanwhile.
        unsafe {
            std::ptr::copy_nonoverlapping(b.as_ptr(), self.map.as_mut_ptr().add(pos), b.len())
        };
    }

    fn read_i32(&self, pos: usize) -> i32 {
        i32::from_be_bytes(self.read(pos))
    }

    fn read_i64(&self, pos: usize) -> i64 {
        i64::from_be_bytes(self.read(pos))
    }

    fn write_i32(&self, pos: usize, v: i32) {
        self.write(pos, &v.to_be_bytes());
    }

    fn write_i64(&self, pos: usize, v: i64) {
        self.write(pos, &v.to_be_bytes());
    }

    fn index_count(&self) -> usize {
        usize::try_from(self.read_i32(INDEX_COUNT_POS)).unwrap_or(0)
    }

    fn is_empty(&self) -> bool {
        self.index_count() <= 1
    }

    fn is_full(&self) -> bool {
        self.index_count() >= self.max_index_num
    }

    fn slot_pos(&self, key_hash: i32) -> usize {
        // |hash| % slots; |i32::MIN| overflows, and RocketMQ maps it to 0.
        let abs = key_hash.checked_abs().unwrap_or(0) as usize;
        INDEX_HEADER_BYTES + (abs % self.slot_num) * HASH_SLOT_BYTES
    }

    fn entry_pos(&self, n: usize) -> usize {
        INDEX_HEADER_BYTES + self.slot_num * HASH_SLOT_BYTES + n * INDEX_ENTRY_BYTES
    }

    /// Adds one entry; the caller made sure the file is not full.
    fn put(&self, key_hash: i32, phy_offset: i64, store_timestamp: i64) {
        let count = self.index_count();
        assert!(count >= 1 && count < self.max_index_num, "index file full");
        if count == 1 {
            self.write_i64(BEGIN_TIMESTAMP_POS, store_timestamp);
            self.write_i64(BEGIN_PHY_OFFSET_POS, phy_offset);
        }
        let slot_pos = self.slot_pos(key_hash);
        let mut prev = self.read_i32(slot_pos);
        if prev <= 0 || prev as usize >= count {
            prev = 0;
            let used = self.read_i32(HASH_SLOT_COUNT_POS);
            self.write_i32(HASH_SLOT_COUNT_POS, used.saturating_add(1));
        }
        let begin = self.read_i64(BEGIN_TIMESTAMP_POS);
        let time_diff = ((store_timestamp - begin) / 1000).clamp(0, i64::from(i32::MAX)) as i32;
        let mut entry = [0u8; INDEX_ENTRY_BYTES];
        entry[..4].copy_from_slice(&key_hash.to_be_bytes());
        entry[4..12].copy_from_slice(&phy_offset.to_be_bytes());
        entry[12..16].copy_from_slice(&time_diff.to_be_bytes());
        entry[16..].copy_from_slice(&prev.to_be_bytes());
        self.write(self.entry_pos(count), &entry);
        self.write_i32(slot_pos, count as i32);
        self.write_i32(INDEX_COUNT_POS, count as i32 + 1);
        self.write_i64(END_TIMESTAMP_POS, store_timestamp);
        self.write_i64(END_PHY_OFFSET_POS, phy_offset);
        self.dirty.store(true, Ordering::Release);
    }

    /// Pushes onto `out` the offsets of entries with `key_hash` that may lie in
    /// `[begin_ms, end_ms]`, newest first, until `out` holds `cap`.
    fn lookup(&self, key_hash: i32, begin_ms: i64, end_ms: i64, cap: usize, out: &mut Vec<i64>) {
        let count = self.index_count();
        if count <= 1 {
            return;
        }
        let file_begin = self.read_i64(BEGIN_TIMESTAMP_POS);
        let file_end = self.read_i64(END_TIMESTAMP_POS);
        if file_end < begin_ms || file_begin > end_ms {
            return;
        }
        let mut cur = self.read_i32(self.slot_pos(key_hash));
        while cur > 0 && (cur as usize) < count && out.len() < cap {
            let pos = self.entry_pos(cur as usize);
            let hash = self.read_i32(pos);
            let phy = self.read_i64(pos + 4);
            let time_diff = self.read_i32(pos + 12);
            let prev = self.read_i32(pos + 16);
            // An entry's time is truncated to the second: the record is at most 999 ms later.
            let earliest = file_begin + i64::from(time_diff) * 1000;
            if earliest + 999 < begin_ms {
                // Chains run newest to oldest and store times never go backwards.
                break;
            }
            if hash == key_hash && earliest <= end_ms {
                out.push(phy);
            }
            // Strictly decreasing, so even a corrupt chain ends.
            if prev >= cur {
                break;
            }
            cur = prev;
        }
    }

    fn flush(&self) -> io::Result<()> {
        if self.dirty.swap(false, Ordering::AcqRel) {
            if let Err(e) = self.map.flush() {
                self.dirty.store(true, Ordering::Release);
                return Err(e);
            }
        }
        Ok(())
    }
}

/// Every index file of the store, oldest first; the last one takes new entries.
pub(crate) struct IndexService {
    dir: PathBuf,
    slot_num: usize,
    max_index_num: usize,
    files: RwLock<Vec<Arc<IndexFile>>>,
}

impl IndexService {
    /// Maps every index file in `dir` (created if missing).
    pub(crate) fn load(dir: &Path, slot_num: u32, max_index_num: u32) -> io::Result<IndexService> {
        if slot_num == 0 || max_index_num < 2 || max_index_num > i32::MAX as u32 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "max_hash_slot_num must be > 0 and max_index_num in 2 ..= i32::MAX",
            ));
        }
        fs::create_dir_all(dir)?;
        let mut named = Vec::new();
        for entry in fs::read_dir(dir)? {
            let name = entry?.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(ms) = parse_file_name(name) {
                named.push((ms, name.to_owned()));
            }
        }
        named.sort_unstable();
        let mut files = Vec::with_capacity(named.len());
        for (ms, name) in named {
            files.push(Arc::new(IndexFile::open(
                dir.join(name),
                ms,
                slot_num as usize,
                max_index_num as usize,
            )?));
        }
        Ok(IndexService {
            dir: dir.to_path_buf(),
            slot_num: slot_num as usize,
            max_index_num: max_index_num as usize,
            files: RwLock::new(files),
        })
    }

    /// Commit-log offset of the newest indexed record (the newest file's endPhyOffset), `None`
    /// while nothing is indexed. Entries go in commit-log order, so every later record is not.
    pub(crate) fn last_indexed_offset(&self) -> Option<i64> {
        self.files
            .read()
            .iter()
            .rev()
            .find(|f| !f.is_empty())
            .map(|f| f.read_i64(END_PHY_OFFSET_POS))
    }

    /// Indexes `topic#UNIQ_KEY` and `topic#k` for each KEYS entry of a stored record. Records
    /// must come in commit-log order. Rollback records are not indexed (as in RocketMQ).
    pub(crate) fn index_record(&self, r: &DecodedRecord<'_>) -> io::Result<()> {
        if r.sys_flag & SYSFLAG_TRANSACTION_MASK == SYSFLAG_TRANSACTION_ROLLBACK {
            return Ok(());
        }
        let Ok(props) = std::str::from_utf8(r.properties) else {
            return Ok(());
        };
        let uniq = properties::find(props, UNIQ_KEY);
        let keys = properties::find(props, KEYS);
        if uniq.is_none() && keys.is_none() {
            return Ok(());
        }
        let prefix = java_hash_continue(java_string_hash(r.topic), "#");
        let mut files = self.files.write();
        let all = uniq
            .into_iter()
            .chain(keys.into_iter().flat_map(|k| k.split(' ')))
            .filter(|k| !k.is_empty());
        for key in all {
            let file = match files.last() {
                Some(f) if !f.is_full() => Arc::clone(f),
                last => {
                    let after = last.map_or(i64::MIN, |f| f.created_ms);
                    let f = Arc::new(self.create_file(after)?);
                    files.push(Arc::clone(&f));
                    f
                }
            };
            file.put(
                java_hash_continue(prefix, key),
                r.physical_offset,
                r.store_timestamp,
            );
        }
        Ok(())
    }

    /// A new, empty index file named after now, but always after the previous file's name.
    fn create_file(&self, after_ms: i64) -> io::Result<IndexFile> {
        let ms = crate::message_store::now_ms().max(after_ms.saturating_add(1));
        IndexFile::open(
            self.dir.join(file_name(ms)),
            ms,
            self.slot_num,
            self.max_index_num,
        )
    }

    /// Offsets of up to `cap` entries indexed under `topic#key` that may lie in the time range,
    /// newest first. Hash collisions included: the caller checks each record.
    pub(crate) fn lookup(
        &self,
        topic: &str,
        key: &str,
        cap: usize,
        begin_ms: i64,
        end_ms: i64,
    ) -> Lookup {
        let key_hash = index_key_hash(topic, key);
        let files = self.files.read();
        let mut out = Lookup::default();
        if let Some(last) = files.last() {
            out.last_update_timestamp = last.read_i64(END_TIMESTAMP_POS);
            out.last_update_phy_offset = last.read_i64(END_PHY_OFFSET_POS);
        }
        for f in files.iter().rev() {
            if out.offsets.len() >= cap {
                break;
            }
            f.lookup(key_hash, begin_ms, end_ms, cap, &mut out.offsets);
        }
        out
    }

    /// Deletes the oldest index files whose every entry points below commit-log offset
    /// `log_min`, never the file taking new entries. Returns how many went.
    /// After the commit log was cut at `offset`: no file may claim an entry at or past it as
    /// its newest, or recovery (which re-indexes only records past the newest entry) would skip
    /// the records written there after the cut. The entries themselves stay; they point at
    /// offsets that now hold other records or nothing, and key queries check every candidate
    /// against the record it points to.
    pub(crate) fn forget_from(&self, offset: i64) -> io::Result<()> {
        let files = self.files.write();
        for f in files.iter().filter(|f| !f.is_empty()) {
            if f.read_i64(END_PHY_OFFSET_POS) >= offset {
                f.write_i64(END_PHY_OFFSET_POS, offset - 1);
                f.dirty.store(true, Ordering::Release);
            }
        }
        drop(files);
        self.flush()
    }

    pub(crate) fn delete_files_below(&self, log_min: i64) -> io::Result<usize> {
        let mut files = self.files.write();
        let gone = files
            .iter()
            .take(files.len().saturating_sub(1))
            .take_while(|f| f.is_empty() || f.read_i64(END_PHY_OFFSET_POS) < log_min)
            .count();
        for f in files.drain(..gone) {
            fs::remove_file(&f.path)?;
        }
        Ok(gone)
    }

    /// Writes dirty index files back (msync), outside the lock so appends go on meanwhile.
    pub(crate) fn flush(&self) -> io::Result<()> {
        let files = self.files.read().clone();
        for f in &files {
            f.flush()?;
        }
        Ok(())
    }
}

/// `yyyyMMddHHmmssSSS` of `ms` since the epoch, in UTC.
fn file_name(ms: i64) -> String {
    let (days, ms_of_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, m, d) = civil_from_days(days);
    let (h, min, s, milli) = (
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1000 % 60,
        ms_of_day % 1000,
    );
    format!("{y:04}{m:02}{d:02}{h:02}{min:02}{s:02}{milli:03}")
}

/// The inverse of `file_name`, `None` for any other name.
fn parse_file_name(name: &str) -> Option<i64> {
    if name.len() != FILE_NAME_LEN || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| name[r].parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(4..6)?, n(6..8)?);
    let (h, min, s, milli) = (n(8..10)?, n(10..12)?, n(12..14)?, n(14..17)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || h > 23 || min > 59 || s > 59 {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86_400_000 + ((h * 60 + min) * 60 + s) * 1000 + milli)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_hash_is_java_hash_of_topic_hash_key() {
        for (t, k) in [("T", "k"), ("TopicTest", "order-42"), ("主题", "键")] {
            assert_eq!(index_key_hash(t, k), java_string_hash(&format!("{t}#{k}")));
        }
    }

    #[test]
    fn file_names_round_trip_and_sort_in_time_order() {
        assert_eq!(file_name(0), "19700101000000000");
        // 2026-11-23 13:29:26.123 UTC
        assert_eq!(file_name(1_795_440_566_123), "20261123132926123");
        for ms in [0, 951_782_400_000, 1_795_440_566_123, 4_102_444_799_999] {
            assert_eq!(parse_file_name(&file_name(ms)), Some(ms));
        }
        assert!(file_name(1_000) < file_name(1_001));
        assert_eq!(parse_file_name("00000000000000000000"), None);
    }

    #[test]
    fn slot_of_i32_min_is_zero_and_chains_link_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let svc = IndexService::load(dir.path(), 3, 10).unwrap();
        let f = svc.create_file(0).unwrap();
        assert_eq!(f.slot_pos(i32::MIN), INDEX_HEADER_BYTES);
        f.put(i32::MIN, 100, 5_000);
        f.put(3, 200, 6_000);
        f.put(-6, 300, 7_000);
        let mut out = Vec::new();
        f.lookup(3, 0, i64::MAX, 10, &mut out);
        assert_eq!(out, [200]);
        out.clear();
        f.lookup(i32::MIN, 0, i64::MAX, 10, &mut out);
        assert_eq!(out, [100]);
        assert_eq!(f.index_count(), 4);
        assert_eq!(f.read_i64(END_PHY_OFFSET_POS), 300);
        assert_eq!(f.read_i32(HASH_SLOT_COUNT_POS), 1);
        assert!(
            svc.files.read().is_empty(),
            "create_file does not install the file"
        );
    }
}
