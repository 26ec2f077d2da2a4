//! `CommitLog`: the single append-only log of every topic's records, as fixed-size segments
//! (protocol reference §5.1). Owns placing records into segments — the BLANK filler and rollover
//! at a segment's end, patching the offsets and store timestamp into each record — and reading
//! records back. Never decides queue offsets or locking: the message store does, and calls
//! `append` only while holding its append lock.

use std::io::{self, IoSlice};
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

    /// Writes `records` at the log end in order, each with its queue offset patched in, after a
    /// BLANK filler and a new segment whenever the next one does not fit with 8 bytes to spare;
    /// PHYSICALOFFSET and STORETIMESTAMP are patched too. The records that land in one segment
    /// go in one vectored write: a page is entered once, not once per record. Returns the
    /// physical offsets of the records written, and the error that stopped the rest. Caller
    /// holds the append lock and has checked that each record is at most `file_size - 8` bytes.
    pub(crate) fn append_all<'r>(
        &self,
        records: impl Iterator<Item = (&'r mut [u8], i64)>,
        store_timestamp: i64,
    ) -> (Vec<i64>, io::Result<()>) {
        let mut written = Vec::new();
        let mut segment = match self.writable_segment() {
            Ok(s) => s,
            Err(e) => return (written, Err(e)),
        };
        let mut run_start = segment.wrote_pos();
        let mut pos = run_start;
        let mut run: Vec<IoSlice<'r>> = Vec::new();
        // `written[run_first..]` are the offsets of `run`, not yet written.
        let mut run_first = 0;
        for (record, queue_offset) in records {
            let len = record.len();
            assert!(len + END_FILE_MIN_BLANK_BYTES <= self.file_size());
            if pos + len + END_FILE_MIN_BLANK_BYTES > self.file_size() {
                let remaining = self.file_size() - pos;
                let mut blank = [0u8; END_FILE_MIN_BLANK_BYTES];
                blank[..4].copy_from_slice(&(remaining as i32).to_be_bytes());
                blank[4..].copy_from_slice(&BLANK_MAGIC.to_be_bytes());
                if let Err(e) = write_run(&segment, run_start, &run) {
                    written.truncate(run_first);
                    return (written, Err(e));
                }
                run.clear();
                run_first = written.len();
                if let Err(e) = segment.write(pos, &blank) {
                    return (written, Err(e));
                }
                segment.publish(self.file_size());
                let next = segment.file_from_offset() + self.file_size() as i64;
                segment = match self.files.create(next) {
                    Ok(s) => s,
                    Err(e) => return (written, Err(e)),
                };
                run_start = 0;
                pos = 0;
            }
            let physical_offset = segment.file_from_offset() + pos as i64;
            let sys_flag = read_i32(record, SYS_FLAG_POS);
            let ts_pos = record::store_timestamp_pos(sys_flag);
            record[QUEUE_OFFSET_POS..QUEUE_OFFSET_POS + 8]
                .copy_from_slice(&queue_offset.to_be_bytes());
            record[PHYSICAL_OFFSET_POS..PHYSICAL_OFFSET_POS + 8]
                .copy_from_slice(&physical_offset.to_be_bytes());
            record[ts_pos..ts_pos + 8].copy_from_slice(&store_timestamp.to_be_bytes());
            run.push(IoSlice::new(record));
            written.push(physical_offset);
            pos += len;
        }
        if let Err(e) = write_run(&segment, run_start, &run) {
            written.truncate(run_first);
            return (written, Err(e));
        }
        (written, Ok(()))
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

/// Writes `run` contiguously at `start` of `segment` and publishes it.
fn write_run(segment: &MappedFile, start: usize, run: &[IoSlice<'_>]) -> io::Result<()> {
    if run.is_empty() {
        return Ok(());
    }
    segment.write_vectored(start, run)?;
    segment.publish(start + run.iter().map(|r| r.len()).sum::<usize>());
    Ok(())
}
