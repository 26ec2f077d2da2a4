//! `CommitLog`: the single append-only log of every topic's records, as fixed-size segments
//! (protocol reference §5.1). Owns placing records into segments — the BLANK filler and rollover
//! at a segment's end, patching the offsets and store timestamp into each record — and reading
//! records back. Never decides queue offsets or locking: the message store does, and calls
//! `append` only while holding its append lock.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use petrel_common::record::{
    self, BLANK_MAGIC, END_FILE_MIN_BLANK_BYTES, MESSAGE_MAGIC_V1, MESSAGE_MAGIC_V2,
    PHYSICAL_OFFSET_POS, QUEUE_OFFSET_POS, SYS_FLAG_POS,
};

use crate::mapped_file::{MappedFile, MappedFileQueue, WritePath};

pub struct CommitLog {
    files: MappedFileQueue,
    /// End of the log as seen by readers: every record below it is in its consume queue.
    max_offset: AtomicI64,
}

impl CommitLog {
    pub fn open(dir: &Path, file_size: usize) -> io::Result<CommitLog> {
        Ok(CommitLog {
            files: MappedFileQueue::load(dir, file_size, WritePath::File)?,
            max_offset: AtomicI64::new(0),
        })
    }

    pub fn files(&self) -> &MappedFileQueue {
        &self.files
    }

    pub fn file_size(&self) -> usize {
        self.files.file_size()
    }

    pub fn min_offset(&self) -> i64 {
        self.files.min_offset()
    }

    pub fn max_offset(&self) -> i64 {
        self.max_offset.load(Ordering::Acquire)
    }

    /// Publishes the log end once the records below it are dispatched.
    pub(crate) fn set_max_offset(&self, offset: i64) {
        self.max_offset.store(offset, Ordering::Release);
    }

    /// Writes `record` at the log end (after a BLANK filler and a new segment if it does not fit
    /// with 8 bytes to spare), patching QUEUEOFFSET, PHYSICALOFFSET and STORETIMESTAMP first.
    /// Returns the record's physical offset. Caller holds the append lock and has checked that
    /// the record is at most `file_size - 8` bytes.
    pub(crate) fn append(
        &self,
        record: &mut [u8],
        queue_offset: i64,
        store_timestamp: i64,
    ) -> io::Result<i64> {
        let len = record.len();
        assert!(len + END_FILE_MIN_BLANK_BYTES <= self.file_size());
        let mut segment = self.writable_segment()?;
        let mut pos = segment.wrote_pos();
        if pos + len + END_FILE_MIN_BLANK_BYTES > self.file_size() {
            let remaining = self.file_size() - pos;
            let mut blank = [0u8; END_FILE_MIN_BLANK_BYTES];
            blank[..4].copy_from_slice(&(remaining as i32).to_be_bytes());
            blank[4..].copy_from_slice(&BLANK_MAGIC.to_be_bytes());
            segment.write(pos, &blank)?;
            segment.publish(self.file_size());
            segment = self
                .files
                .create(segment.file_from_offset() + self.file_size() as i64)?;
            pos = 0;
        }
        let physical_offset = segment.file_from_offset() + pos as i64;
        let sys_flag = read_i32(record, SYS_FLAG_POS);
        let ts_pos = record::store_timestamp_pos(sys_flag);
        record[QUEUE_OFFSET_POS..QUEUE_OFFSET_POS + 8].copy_from_slice(&queue_offset.to_be_bytes());
        record[PHYSICAL_OFFSET_POS..PHYSICAL_OFFSET_POS + 8]
            .copy_from_slice(&physical_offset.to_be_bytes());
        record[ts_pos..ts_pos + 8].copy_from_slice(&store_timestamp.to_be_bytes());
        segment.write(pos, record)?;
        segment.publish(pos + len);
        Ok(physical_offset)
    }

    /// The segment to append to: the last one unless it is full or absent.
    fn writable_segment(&self) -> io::Result<Arc<MappedFile>> {
        match self.files.last() {
            Some(last) if !last.is_full() => Ok(last),
            Some(last) => self
                .files
                .create(last.file_from_offset() + self.file_size() as i64),
            None => self.files.create(0),
        }
    }

    /// The `size` bytes at `offset`, if they lie below the published end of their segment.
    pub fn read(&self, offset: i64, size: usize) -> Option<Bytes> {
        let segment = self.files.find(offset)?;
        let pos = (offset - segment.file_from_offset()) as usize;
        (pos + size <= segment.wrote_pos()).then(|| segment.bytes(pos, size))
    }

    /// The whole record starting at `offset`, if one starts there.
    pub fn read_record(&self, offset: i64) -> Option<Bytes> {
        if offset < 0 || offset >= self.max_offset() {
            return None;
        }
        let segment = self.files.find(offset)?;
        let pos = (offset - segment.file_from_offset()) as usize;
        if pos + 8 > segment.wrote_pos() {
            return None;
        }
        let (size, magic) = record::peek_total_size(segment.slice(pos, 8))?;
        let size = usize::try_from(size).ok()?;
        let valid_magic = magic == MESSAGE_MAGIC_V1 || magic == MESSAGE_MAGIC_V2;
        (valid_magic && pos + size <= segment.wrote_pos()).then(|| segment.bytes(pos, size))
    }

    /// STORETIMESTAMP of the record at `offset`.
    pub fn store_timestamp_at(&self, offset: i64) -> Option<i64> {
        let segment = self.files.find(offset)?;
        let pos = (offset - segment.file_from_offset()) as usize;
        if pos + SYS_FLAG_POS + 4 > segment.wrote_pos() {
            return None;
        }
        let sys_flag = read_i32(segment.slice(pos + SYS_FLAG_POS, 4), 0);
        let ts_pos = pos + record::store_timestamp_pos(sys_flag);
        if ts_pos + 8 > segment.wrote_pos() {
            return None;
        }
        Some(i64::from_be_bytes(
            segment.slice(ts_pos, 8).try_into().expect("8 bytes"),
        ))
    }

    /// Writes dirty pages back; returns the flushed offset.
    pub fn flush(&self) -> io::Result<i64> {
        self.files.flush()
    }
}

pub(crate) fn read_i32(buf: &[u8], pos: usize) -> i32 {
    i32::from_be_bytes(buf[pos..pos + 4].try_into().expect("4 bytes"))
}
