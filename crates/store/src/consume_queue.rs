//! `ConsumeQueue`: the per topic/queue index into the commit log (protocol reference §5.2), and
//! `ConsumeQueueTable`, every queue of the store by topic and queue id. Owns the 20-byte entry
//! format (commitLogOffset i64, size i32, tagsCode i64, big-endian) and the logical offsets;
//! never reads the commit log. Entry n lives at byte n × 20 of the queue's file run, each file
//! holding `entries_per_file` entries and named by its start byte offset.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use parking_lot::RwLock;

use crate::mapped_file::{MappedFileQueue, WritePath};

/// Bytes per consume-queue entry (`CQ_STORE_UNIT_SIZE`).
pub const CQ_ENTRY_BYTES: usize = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CqEntry {
    pub commit_log_offset: i64,
    /// TOTALSIZE of the record; 0 marks a hole that recovery could not fill.
    pub size: i32,
    pub tags_code: i64,
}

impl CqEntry {
    fn encode(&self) -> [u8; CQ_ENTRY_BYTES] {
        let mut b = [0u8; CQ_ENTRY_BYTES];
        b[..8].copy_from_slice(&self.commit_log_offset.to_be_bytes());
        b[8..12].copy_from_slice(&self.size.to_be_bytes());
        b[12..].copy_from_slice(&self.tags_code.to_be_bytes());
        b
    }

    fn decode(b: &[u8]) -> CqEntry {
        CqEntry {
            commit_log_offset: i64::from_be_bytes(b[..8].try_into().expect("8")),
            size: i32::from_be_bytes(b[8..12].try_into().expect("4")),
            tags_code: i64::from_be_bytes(b[12..20].try_into().expect("8")),
        }
    }
}

pub struct ConsumeQueue {
    topic: String,
    queue_id: i32,
    files: MappedFileQueue,
    /// First logical offset whose record is still in the commit log; entries below it point
    /// into deleted segments (retention) and are not served. Only grows.
    min_offset: AtomicI64,
    /// Next logical offset to write; entries below it are readable.
    max_offset: AtomicI64,
}

impl ConsumeQueue {
    /// Maps the queue's files under `<consumequeue>/<topic>/<queue_id>/`. Until `recover` runs,
    /// the queue reads as empty.
    pub fn open(
        cq_root: &Path,
        topic: &str,
        queue_id: i32,
        entries_per_file: u32,
    ) -> io::Result<ConsumeQueue> {
        let dir = cq_root.join(topic).join(queue_id.to_string());
        let files = MappedFileQueue::load(
            &dir,
            entries_per_file as usize * CQ_ENTRY_BYTES,
            WritePath::Mapping,
        )?;
        let first = files.min_offset() / CQ_ENTRY_BYTES as i64;
        Ok(ConsumeQueue {
            topic: topic.to_owned(),
            queue_id,
            files,
            min_offset: AtomicI64::new(first),
            max_offset: AtomicI64::new(first),
        })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn queue_id(&self) -> i32 {
        self.queue_id
    }

    pub fn min_offset(&self) -> i64 {
        self.min_offset.load(Ordering::Acquire)
    }

    pub fn max_offset(&self) -> i64 {
        self.max_offset.load(Ordering::Acquire)
    }

    /// Writes the entry for logical `offset` and makes it readable. Caller holds the append lock;
    /// `offset` is `max_offset()` except when recovery has to skip a hole.
    pub(crate) fn put(&self, offset: i64, entry: CqEntry) -> io::Result<()> {
        let max = self.max_offset();
        assert!(
            offset >= max,
            "consume queue offsets only grow: {offset} < {max}"
        );
        let byte = offset * CQ_ENTRY_BYTES as i64;
        let file_size = self.files.file_size() as i64;
        let file = loop {
            if let Some(f) = self.files.find(byte) {
                break f;
            }
            let next = match self.files.last() {
                Some(last) => last.file_from_offset() + file_size,
                None => byte - byte % file_size,
            };
            self.files.create(next)?;
        };
        let pos = (byte - file.file_from_offset()) as usize;
        file.write(pos, &entry.encode())?;
        file.publish(pos + CQ_ENTRY_BYTES);
        self.max_offset.store(offset + 1, Ordering::Release);
        Ok(())
    }

    /// The entry at logical `offset`, if it is in `[min_offset, max_offset)`.
    pub fn get(&self, offset: i64) -> Option<CqEntry> {
        if offset < self.min_offset() || offset >= self.max_offset() {
            return None;
        }
        self.read_entry(offset)
    }

    fn read_entry(&self, offset: i64) -> Option<CqEntry> {
        let byte = offset * CQ_ENTRY_BYTES as i64;
        let file = self.files.find(byte)?;
        let pos = (byte - file.file_from_offset()) as usize;
        Some(CqEntry::decode(file.slice(pos, CQ_ENTRY_BYTES)))
    }

    /// Keeps only the leading entries whose record ends at or before commit-log offset `cut`,
    /// zeroing the rest. Entries are ordered by commit-log offset, and a zero (never written)
    /// entry can only follow the kept ones, so the boundary is found by binary search.
    /// Recovery only.
    pub(crate) fn recover(&self, cut: i64) -> io::Result<()> {
        let lo = self.entries_ending_by(cut);
        self.files.truncate_after(lo * CQ_ENTRY_BYTES as i64)?;
        self.max_offset.store(lo, Ordering::Release);
        Ok(())
    }

    /// [`ConsumeQueue::recover`]'s cut while the store runs (a slave dropping a divergent tail
    /// of the commit log): the max offset moves back first, so no new pull reads an entry being
    /// zeroed, and the files are zeroed in place rather than shrunk (see
    /// `MappedFileQueue::cut_live`). Caller holds the append lock and keeps the flusher out.
    pub(crate) fn cut_live(&self, cut: i64) -> io::Result<()> {
        let lo = self.entries_ending_by(cut);
        if lo >= self.max_offset() {
            return Ok(());
        }
        self.max_offset.store(lo, Ordering::Release);
        self.files.cut_live(lo * CQ_ENTRY_BYTES as i64)
    }

    /// How many leading entries (as a logical offset) point to records that end at or before
    /// commit-log offset `cut`.
    fn entries_ending_by(&self, cut: i64) -> i64 {
        let min = self.min_offset();
        let end = self.files.last().map_or(min, |f| {
            (f.file_from_offset() + f.file_size() as i64) / CQ_ENTRY_BYTES as i64
        });
        let keep = |i: i64| {
            self.read_entry(i).is_some_and(|e| {
                e.size > 0
                    && e.commit_log_offset >= 0
                    && e.commit_log_offset + i64::from(e.size) <= cut
            })
        };
        let (mut lo, mut hi) = (min, end);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if keep(mid) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    pub fn flush(&self) -> io::Result<()> {
        self.files.flush().map(|_| ())
    }

    /// Deletes leading files whose entries all point below commit-log offset `log_min` (their
    /// records are gone), never the file being written. Returns how many went.
    pub(crate) fn delete_files_below(&self, log_min: i64) -> io::Result<usize> {
        let mut deleted = 0;
        while self
            .files
            .delete_first_if(|f| {
                let last = CqEntry::decode(f.slice(f.file_size() - CQ_ENTRY_BYTES, CQ_ENTRY_BYTES));
                last.commit_log_offset < log_min
            })?
            .is_some()
        {
            deleted += 1;
        }
        let first = self.files.min_offset() / CQ_ENTRY_BYTES as i64;
        self.min_offset.fetch_max(first, Ordering::AcqRel);
        Ok(deleted)
    }

    /// Moves the min offset to the first entry whose record starts at or after `log_min`, or to
    /// the max offset if there is none. Entries are ordered by commit-log offset, so a binary
    /// search finds it.
    pub(crate) fn correct_min_offset(&self, log_min: i64) {
        let (mut lo, mut hi) = (self.min_offset(), self.max_offset());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let gone = self
                .read_entry(mid)
                .is_none_or(|e| e.commit_log_offset < log_min);
            if gone {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        self.min_offset.fetch_max(lo, Ordering::AcqRel);
    }
}

type QueuesByTopic = HashMap<String, HashMap<i32, Arc<ConsumeQueue>>>;

/// Every consume queue, found by topic and queue id without allocating.
pub struct ConsumeQueueTable {
    root: PathBuf,
    entries_per_file: u32,
    queues: RwLock<QueuesByTopic>,
}

impl ConsumeQueueTable {
    /// Maps every `<root>/<topic>/<queue_id>/` found on disk.
    pub fn load(root: &Path, entries_per_file: u32) -> io::Result<ConsumeQueueTable> {
        fs::create_dir_all(root)?;
        let mut queues: QueuesByTopic = HashMap::new();
        for topic_dir in fs::read_dir(root)? {
            let topic_dir = topic_dir?;
            if !topic_dir.file_type()?.is_dir() {
                continue;
            }
            let Ok(topic) = topic_dir.file_name().into_string() else {
                continue;
            };
            for queue_dir in fs::read_dir(topic_dir.path())? {
                let queue_dir = queue_dir?;
                let Some(queue_id) = queue_dir
                    .file_name()
                    .to_str()
                    .and_then(|s| s.parse::<i32>().ok())
                else {
                    continue;
                };
                let cq = ConsumeQueue::open(root, &topic, queue_id, entries_per_file)?;
                queues
                    .entry(topic.clone())
                    .or_default()
                    .insert(queue_id, Arc::new(cq));
            }
        }
        Ok(ConsumeQueueTable {
            root: root.to_path_buf(),
            entries_per_file,
            queues: RwLock::new(queues),
        })
    }

    pub fn get(&self, topic: &str, queue_id: i32) -> Option<Arc<ConsumeQueue>> {
        self.queues.read().get(topic)?.get(&queue_id).cloned()
    }

    pub(crate) fn get_or_create(
        &self,
        topic: &str,
        queue_id: i32,
    ) -> io::Result<Arc<ConsumeQueue>> {
        if let Some(cq) = self.get(topic, queue_id) {
            return Ok(cq);
        }
        let mut queues = self.queues.write();
        let by_id = queues.entry(topic.to_owned()).or_default();
        if let Some(cq) = by_id.get(&queue_id) {
            return Ok(Arc::clone(cq));
        }
        let cq = Arc::new(ConsumeQueue::open(
            &self.root,
            topic,
            queue_id,
            self.entries_per_file,
        )?);
        by_id.insert(queue_id, Arc::clone(&cq));
        Ok(cq)
    }

    pub fn all(&self) -> Vec<Arc<ConsumeQueue>> {
        self.queues
            .read()
            .values()
            .flat_map(|by_id| by_id.values().cloned())
            .collect()
    }

    pub fn flush_all(&self) -> io::Result<()> {
        for cq in self.all() {
            cq.flush()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(offset: i64) -> CqEntry {
        CqEntry {
            commit_log_offset: offset * 100,
            size: 100,
            tags_code: offset,
        }
    }

    #[test]
    fn entries_span_files_and_recover_cuts_at_log_end() {
        let dir = tempfile::tempdir().unwrap();
        let cq = ConsumeQueue::open(dir.path(), "T", 0, 4).unwrap();
        for i in 0..10 {
            cq.put(i, entry(i)).unwrap();
        }
        assert_eq!(cq.max_offset(), 10);
        assert_eq!(cq.get(9), Some(entry(9)));
        assert_eq!(cq.get(10), None);
        assert!(dir.path().join("T/0/00000000000000000160").exists());

        let cq = ConsumeQueue::open(dir.path(), "T", 0, 4).unwrap();
        cq.recover(i64::MAX).unwrap();
        assert_eq!(cq.max_offset(), 10);
        cq.recover(650).unwrap();
        assert_eq!(cq.max_offset(), 6);
        assert_eq!(cq.get(5), Some(entry(5)));
        cq.put(6, entry(6)).unwrap();
        assert_eq!(cq.max_offset(), 7);
    }

    #[test]
    fn files_below_the_log_minimum_go_and_min_offset_moves_to_the_first_live_entry() {
        let dir = tempfile::tempdir().unwrap();
        let cq = ConsumeQueue::open(dir.path(), "T", 0, 4).unwrap();
        for i in 0..10 {
            cq.put(i, entry(i)).unwrap();
        }
        // Records 0..=5 start below 550: the first file (entries 0..4) goes, the second (4..8)
        // stays because entries 6 and 7 are still in the log.
        assert_eq!(cq.delete_files_below(550).unwrap(), 1);
        assert!(!dir.path().join("T/0/00000000000000000000").exists());
        assert_eq!(cq.min_offset(), 4);
        cq.correct_min_offset(550);
        assert_eq!(cq.min_offset(), 6);
        assert_eq!(cq.get(5), None);
        assert_eq!(cq.get(6), Some(entry(6)));
        // The file being written stays even when every entry is gone from the log.
        cq.delete_files_below(i64::MAX).unwrap();
        cq.correct_min_offset(i64::MAX);
        assert_eq!(cq.min_offset(), 10);
        assert_eq!(cq.max_offset(), 10);
        cq.put(10, entry(10)).unwrap();
        assert_eq!(cq.get(10), Some(entry(10)));
    }

    #[test]
    fn table_finds_queues_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let t = ConsumeQueueTable::load(dir.path(), 4).unwrap();
        t.get_or_create("%RETRY%g", 3)
            .unwrap()
            .put(0, entry(0))
            .unwrap();
        let t = ConsumeQueueTable::load(dir.path(), 4).unwrap();
        let cq = t.get("%RETRY%g", 3).unwrap();
        cq.recover(i64::MAX).unwrap();
        assert_eq!(cq.max_offset(), 1);
        assert!(t.get("%RETRY%g", 0).is_none());
    }
}
