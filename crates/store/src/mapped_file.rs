//! `MappedFile`: one preallocated, fixed-size, memory-mapped segment named by its 20-digit start
//! offset; `MappedFileQueue`: the contiguous run of segments in one directory. Both the commit log
//! and every consume queue are built on these. This module owns the mapping and its write/flush
//! positions; it never interprets the bytes.
//!
//! Concurrency contract: exactly one writer (the holder of the store's append lock) writes at or
//! beyond `wrote_pos`, then publishes by advancing `wrote_pos` with Release. Readers only touch
//! bytes below a published position, so they never observe a byte being written. Recovery runs
//! before any reader or writer exists.

use std::fs::{self, File, OpenOptions};
use std::io::{self, IoSlice};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use memmap2::MmapRaw;
use parking_lot::RwLock;

/// How appends reach a file's pages. Readers always read through the mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WritePath {
    /// Copy into the writable mapping: no system call per write. Each flush write-protects the
    /// pages it cleans, so the next write into one of them faults again. Right for small
    /// entries flushed on an interval (consume queues, the timer log).
    Mapping,
    /// `pwrite` into the file. Pages in our mapping are then never writable, so a flush has no
    /// mappings to write-protect: no page faults and no TLB-shootdown interrupts on the next
    /// write. Right for the commit log, which a SYNC_FLUSH store flushes thousands of times a
    /// second (measured: broker CPU per message 24.4 -> 20.4 µs, 32 senders, 1 KiB).
    File,
}

pub struct MappedFile {
    path: PathBuf,
    /// Open only for [`WritePath::File`]. A mapping outlives its descriptor, so files written
    /// through the mapping hold none: a broker with 100,000 topics has 400,000 consume-queue
    /// files, far more than a process may keep open.
    file: Option<File>,
    map: MmapRaw,
    file_from_offset: i64,
    file_size: usize,
    wrote_pos: AtomicUsize,
    flushed_pos: AtomicUsize,
}

/// RocketMQ's file name: the start offset as 20 zero-padded decimal digits.
pub fn file_name(offset: i64) -> String {
    format!("{offset:020}")
}

impl MappedFile {
    /// Opens or creates the segment starting at `file_from_offset`, extending it to `file_size`.
    /// Positions start at 0; the owner sets them after recovery.
    pub fn open(
        dir: &Path,
        file_from_offset: i64,
        file_size: usize,
        write_path: WritePath,
    ) -> io::Result<MappedFile> {
        let path = dir.join(file_name(file_from_offset));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let len = file.metadata()?.len();
        if len < file_size as u64 {
            // A sparse extension: blocks are allocated as pages are written back.
            file.set_len(file_size as u64)?;
        } else if len > file_size as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is {len} bytes, expected {file_size}", path.display()),
            ));
        }
        let map = MmapRaw::map_raw(&file)?;
        let file = (write_path == WritePath::File).then_some(file);
        // Appends fault pages in one at a time. With readahead on, each fault on the sparse tail
        // zeroed a whole readahead window, and the kernel's memset became 40% of the broker's CPU.
        // Reads of old data go through the same mapping and lose only readahead, which the page
        // cache of a recent log rarely needs.
        map.advise(memmap2::Advice::Random)?;
        Ok(MappedFile {
            path,
            file,
            map,
            file_from_offset,
            file_size,
            wrote_pos: AtomicUsize::new(0),
            flushed_pos: AtomicUsize::new(0),
        })
    }

    pub fn file_from_offset(&self) -> i64 {
        self.file_from_offset
    }

    pub fn file_size(&self) -> usize {
        self.file_size
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// When the file's contents last changed, as the filesystem records it.
    pub fn last_modified(&self) -> io::Result<std::time::SystemTime> {
        fs::metadata(&self.path)?.modified()
    }

    pub fn wrote_pos(&self) -> usize {
        self.wrote_pos.load(Ordering::Acquire)
    }

    pub fn flushed_pos(&self) -> usize {
        self.flushed_pos.load(Ordering::Acquire)
    }

    pub fn is_full(&self) -> bool {
        self.wrote_pos() == self.file_size
    }

    /// Sets both positions (recovery, or marking an earlier segment complete).
    pub(crate) fn set_positions(&self, pos: usize) {
        assert!(pos <= self.file_size);
        self.wrote_pos.store(pos, Ordering::Release);
        self.flushed_pos.store(pos, Ordering::Release);
    }

    /// Copies `data` to `pos`. Only the append-lock holder calls this, and only at or past
    /// `wrote_pos`, where no reader looks.
    pub(crate) fn write(&self, pos: usize, data: &[u8]) -> io::Result<()> {
        assert!(pos + data.len() <= self.file_size, "write past segment end");
        debug_assert!(pos >= self.wrote_pos());
        if let Some(file) = &self.file {
            return file.write_all_at(data, pos as u64);
        }
        // SAFETY: the range lies inside the mapping (asserted above); the single writer owns
        // every byte at or past `wrote_pos`, so no reference to these bytes exists elsewhere.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                self.map.as_mut_ptr().add(pos),
                data.len(),
            );
        }
        Ok(())
    }

    /// Copies `parts`, one after another, to `pos`: one `pwritev` (per 1,024 parts) on
    /// [`WritePath::File`]. Same rules as [`MappedFile::write`].
    pub(crate) fn write_vectored(&self, pos: usize, parts: &[IoSlice<'_>]) -> io::Result<()> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        assert!(pos + total <= self.file_size, "write past segment end");
        let Some(file) = &self.file else {
            let mut at = pos;
            for part in parts {
                self.write(at, part)?;
                at += part.len();
            }
            return Ok(());
        };
        // IOV_MAX on Linux.
        const MAX_PARTS: usize = 1024;
        let mut at = pos;
        for chunk in parts.chunks(MAX_PARTS) {
            let want: usize = chunk.iter().map(|p| p.len()).sum();
            // SAFETY: `IoSlice` is ABI-compatible with `iovec` on Unix; every one points into a
            // slice alive for the whole call, and the kernel only reads from them.
            let n = unsafe {
                libc::pwritev(
                    std::os::fd::AsRawFd::as_raw_fd(file),
                    chunk.as_ptr().cast::<libc::iovec>(),
                    chunk.len() as libc::c_int,
                    at as libc::off_t,
                )
            };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let n = n as usize;
            if n < want {
                // A short write (rare on a regular file): the rest, part by part.
                let mut skip = n;
                let mut tail_at = at + n;
                for part in chunk {
                    if skip >= part.len() {
                        skip -= part.len();
                        continue;
                    }
                    file.write_all_at(&part[skip..], tail_at as u64)?;
                    tail_at += part.len() - skip;
                    skip = 0;
                }
            }
            at += want;
        }
        Ok(())
    }

    /// Rewrites `data` at `pos`, anywhere in the file, for files with one owner that both reads
    /// and writes them (the timer wheel's slots), never shared with concurrent readers.
    pub(crate) fn overwrite(&mut self, pos: usize, data: &[u8]) {
        debug_assert!(
            self.file.is_none(),
            "a pwrite file is rewritten through pwrite"
        );
        assert!(pos + data.len() <= self.file_size, "write past file end");
        // SAFETY: in bounds (asserted); `&mut self` means no slice of this file is borrowed.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                self.map.as_mut_ptr().add(pos),
                data.len(),
            );
        }
    }

    /// Writes every dirty page of the file back (msync of the whole mapping), for files
    /// rewritten in place.
    pub(crate) fn flush_whole(&self) -> io::Result<()> {
        self.map.flush()
    }

    /// Publishes bytes up to `pos` to readers and the flusher.
    pub(crate) fn publish(&self, pos: usize) {
        debug_assert!(pos >= self.wrote_pos() && pos <= self.file_size);
        self.wrote_pos.store(pos, Ordering::Release);
    }

    /// Bytes `[pos, pos + len)`. Callers read only published bytes, or any bytes during recovery.
    pub fn slice(&self, pos: usize, len: usize) -> &[u8] {
        assert!(pos + len <= self.file_size, "read past segment end");
        // SAFETY: in bounds (asserted); per the module contract nobody writes these bytes while
        // they are borrowed, and the mapping lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(pos), len) }
    }

    /// A zero-copy `Bytes` over `[pos, pos + len)` that keeps the mapping alive.
    pub fn bytes(self: &Arc<Self>, pos: usize, len: usize) -> Bytes {
        assert!(pos + len <= self.file_size, "read past segment end");
        Bytes::from_owner(SegmentSlice {
            file: Arc::clone(self),
            pos,
            len,
        })
    }

    /// Faults in the pages of `[from, to)` without dirtying them (see `warm`): one
    /// `MADV_POPULATE_READ` call, which walks the range inside the kernel, far cheaper than a
    /// fault per page. Kernels before 5.14 lack it; there we read one byte of each page instead.
    /// Bytes read may be written concurrently by the appender; the value is discarded.
    pub(crate) fn prefault(&self, from: usize, to: usize) {
        const PAGE: usize = 4096;
        let to = to.min(self.file_size);
        let from = from.next_multiple_of(PAGE);
        if from >= to {
            return;
        }
        if self
            .map
            .advise_range(memmap2::Advice::PopulateRead, from, to - from)
            .is_ok()
        {
            return;
        }
        let mut pos = from;
        while pos < to {
            // SAFETY: in bounds; an atomic byte load never tears and the result is unused.
            unsafe {
                let byte = &*(self.map.as_ptr().add(pos) as *const std::sync::atomic::AtomicU8);
                byte.load(std::sync::atomic::Ordering::Relaxed);
            }
            pos += PAGE;
        }
    }

    /// Writes dirty pages `[flushed_pos, wrote_pos)` back (msync) and returns the new flushed
    /// position.
    pub fn flush(&self) -> io::Result<usize> {
        let wrote = self.wrote_pos();
        let flushed = self.flushed_pos();
        if wrote > flushed {
            self.map.flush_range(flushed, wrote - flushed)?;
            self.flushed_pos.store(wrote, Ordering::Release);
        }
        Ok(wrote)
    }

    /// Zeroes everything from `pos` to the end of the file (shrink then re-extend, so the tail
    /// becomes a hole) and sets both positions to `pos`. Recovery only.
    pub(crate) fn truncate_tail(&self, pos: usize) -> io::Result<()> {
        assert!(pos <= self.file_size);
        let file = OpenOptions::new().write(true).open(&self.path)?;
        file.set_len(pos as u64)?;
        file.set_len(self.file_size as u64)?;
        file.sync_all()?;
        self.set_positions(pos);
        Ok(())
    }
}

impl MappedFile {
    /// Cuts the file back to `pos` while the store runs: lowers both positions first (so no new
    /// reader looks past `pos`), then zeroes `[pos, old wrote_pos)` through the mapping and
    /// writes those pages back, so a crash cannot bring the old bytes back. Unlike
    /// `truncate_tail` the file is never shrunk: a reader still holding a slice of the cut bytes
    /// (a pull answer being sent) would fault with SIGBUS on a shrunk file; here it reads zeros.
    /// Caller holds the append lock and keeps the flusher out.
    pub(crate) fn cut_live(&self, pos: usize) -> io::Result<()> {
        assert!(pos <= self.file_size);
        let wrote = self.wrote_pos();
        self.set_positions(pos);
        if wrote > pos {
            static ZEROS: [u8; 64 * 1024] = [0u8; 64 * 1024];
            let mut at = pos;
            while at < wrote {
                let n = (wrote - at).min(ZEROS.len());
                self.write(at, &ZEROS[..n])?;
                at += n;
            }
            self.map.flush_range(pos, wrote - pos)?;
        }
        Ok(())
    }
}

/// Owner of a zero-copy slice handed out as `Bytes`.
struct SegmentSlice {
    file: Arc<MappedFile>,
    pos: usize,
    len: usize,
}

impl AsRef<[u8]> for SegmentSlice {
    fn as_ref(&self) -> &[u8] {
        self.file.slice(self.pos, self.len)
    }
}

/// The segments of one directory, contiguous: each starts where the previous one ends.
pub struct MappedFileQueue {
    dir: PathBuf,
    file_size: usize,
    write_path: WritePath,
    files: RwLock<Vec<Arc<MappedFile>>>,
    /// The next segment, created and warmed ahead by the warmer so that rolling over inside
    /// the append lock is a pointer move. Its file exists on disk, all zeros; recovery treats
    /// it as an empty last segment.
    standby: parking_lot::Mutex<Option<Arc<MappedFile>>>,
}

impl MappedFileQueue {
    /// Maps every segment in `dir` (created if missing). Positions are left at 0.
    pub fn load(
        dir: &Path,
        file_size: usize,
        write_path: WritePath,
    ) -> io::Result<MappedFileQueue> {
        fs::create_dir_all(dir)?;
        let mut offsets = Vec::new();
        for entry in fs::read_dir(dir)? {
            let name = entry?.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.len() == 20 && name.bytes().all(|b| b.is_ascii_digit()) {
                offsets.push(name.parse::<i64>().map_err(io::Error::other)?);
            }
        }
        offsets.sort_unstable();
        let mut files = Vec::with_capacity(offsets.len());
        for (i, &offset) in offsets.iter().enumerate() {
            if offset % file_size as i64 != 0
                || (i > 0 && offsets[i - 1] + file_size as i64 != offset)
            {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}: segment {offset} breaks the contiguous run",
                        dir.display()
                    ),
                ));
            }
            files.push(Arc::new(MappedFile::open(
                dir, offset, file_size, write_path,
            )?));
        }
        Ok(MappedFileQueue {
            dir: dir.to_path_buf(),
            file_size,
            write_path,
            files: RwLock::new(files),
            standby: parking_lot::Mutex::new(None),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn file_size(&self) -> usize {
        self.file_size
    }

    pub fn files(&self) -> Vec<Arc<MappedFile>> {
        self.files.read().clone()
    }

    pub fn first(&self) -> Option<Arc<MappedFile>> {
        self.files.read().first().cloned()
    }

    pub fn last(&self) -> Option<Arc<MappedFile>> {
        self.files.read().last().cloned()
    }

    /// Start offset of the first segment, 0 if none.
    pub fn min_offset(&self) -> i64 {
        self.files
            .read()
            .first()
            .map_or(0, |f| f.file_from_offset())
    }

    /// The segment holding global `offset`.
    pub fn find(&self, offset: i64) -> Option<Arc<MappedFile>> {
        let files = self.files.read();
        let first = files.first()?.file_from_offset();
        if offset < first {
            return None;
        }
        let index = usize::try_from((offset - first) / self.file_size as i64).ok()?;
        files.get(index).cloned()
    }

    /// Creates the segment starting at `offset`, which must continue the run (or start it).
    pub(crate) fn create(&self, offset: i64) -> io::Result<Arc<MappedFile>> {
        let mut files = self.files.write();
        if let Some(last) = files.last() {
            assert_eq!(
                last.file_from_offset() + self.file_size as i64,
                offset,
                "new segment must continue the run"
            );
        }
        assert_eq!(offset % self.file_size as i64, 0);
        let standby = self
            .standby
            .lock()
            .take()
            .filter(|f| f.file_from_offset() == offset);
        let file = match standby {
            Some(f) => f,
            None => Arc::new(MappedFile::open(
                &self.dir,
                offset,
                self.file_size,
                self.write_path,
            )?),
        };
        files.push(Arc::clone(&file));
        Ok(file)
    }

    /// Creates the segment after the last one ahead of need and faults in its first
    /// `warm_bytes`, unless that is already done.
    pub(crate) fn prepare_next(&self, warm_bytes: usize) -> io::Result<()> {
        let Some(last) = self.last() else {
            return Ok(());
        };
        let next = last.file_from_offset() + self.file_size as i64;
        if self
            .standby
            .lock()
            .as_ref()
            .is_some_and(|f| f.file_from_offset() == next)
        {
            return Ok(());
        }
        let file = Arc::new(MappedFile::open(
            &self.dir,
            next,
            self.file_size,
            self.write_path,
        )?);
        file.prefault(0, warm_bytes);
        *self.standby.lock() = Some(file);
        Ok(())
    }

    /// Flushes every segment with unflushed bytes; returns the global flushed offset.
    pub fn flush(&self) -> io::Result<i64> {
        let files = self.files();
        let mut flushed = self.min_offset();
        for f in &files {
            if f.flushed_pos() < f.wrote_pos() {
                f.flush()?;
            }
            flushed = f.file_from_offset() + f.flushed_pos() as i64;
        }
        Ok(flushed)
    }

    /// Takes the first segment out of the run and unlinks its file, if `expired` says so of it.
    /// Never the last segment: that is the one being written. Readers holding the segment (a
    /// zero-copy pull answer) keep a valid mapping: unlinking leaves the inode and the mapping
    /// alive until the last `Arc` drops.
    pub(crate) fn delete_first_if(
        &self,
        expired: impl FnOnce(&MappedFile) -> bool,
    ) -> io::Result<Option<Arc<MappedFile>>> {
        let removed = {
            let mut files = self.files.write();
            if files.len() < 2 || !expired(&files[0]) {
                return Ok(None);
            }
            files.remove(0)
        };
        fs::remove_file(removed.path())?;
        Ok(Some(removed))
    }

    /// Cuts the run at global `offset` while the store runs (a slave dropping a divergent tail):
    /// the segment holding `offset` is zeroed from there with [`MappedFile::cut_live`], later
    /// segments are unlinked (readers holding one keep a valid mapping), and a standby segment
    /// that would no longer continue the run is dropped, so the directory stays one contiguous
    /// run for the next start. Earlier segments are left as they are. Caller holds the append
    /// lock and keeps the flusher and the warmer out.
    pub(crate) fn cut_live(&self, offset: i64) -> io::Result<()> {
        let mut files = self.files.write();
        let Some(first) = files.first() else {
            return Ok(());
        };
        if offset < first.file_from_offset() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "cut at {offset} is below the first segment, {}",
                    first.file_from_offset()
                ),
            ));
        }
        let mut keep = files.len();
        for (i, f) in files.iter().enumerate() {
            let start = f.file_from_offset();
            if start <= offset && offset < start + self.file_size as i64 {
                f.cut_live((offset - start) as usize)?;
            } else if start > offset {
                keep = keep.min(i);
            }
        }
        let removed: Vec<_> = files.drain(keep..).collect();
        let run_end = files
            .last()
            .map_or(offset, |f| f.file_from_offset() + self.file_size as i64);
        drop(files);
        let mut standby = self.standby.lock();
        let stale = standby
            .as_ref()
            .is_some_and(|f| f.file_from_offset() != run_end);
        let stale = if stale { standby.take() } else { None };
        drop(standby);
        for f in removed.iter().chain(stale.iter()) {
            match fs::remove_file(f.path()) {
                Ok(()) => {}
                // A standby segment may be one of the removed ones.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        if !removed.is_empty() || stale.is_some() {
            File::open(&self.dir)?.sync_all()?;
        }
        Ok(())
    }

    /// Cuts the run at global `offset`: earlier segments are marked complete, the segment holding
    /// `offset` is zeroed from there, later segments are deleted. Recovery only.
    pub(crate) fn truncate_after(&self, offset: i64) -> io::Result<()> {
        let mut files = self.files.write();
        let mut keep = files.len();
        for (i, f) in files.iter().enumerate() {
            let start = f.file_from_offset();
            let end = start + self.file_size as i64;
            if end <= offset {
                f.set_positions(self.file_size);
            } else if start <= offset {
                f.truncate_tail((offset - start) as usize)?;
            } else {
                keep = keep.min(i);
            }
        }
        for f in files.drain(keep..) {
            fs::remove_file(f.path())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_publish_flush_and_zero_copy_read() {
        for path in [WritePath::Mapping, WritePath::File] {
            write_publish_flush_and_zero_copy_read_with(path);
        }
    }

    fn write_publish_flush_and_zero_copy_read_with(path: WritePath) {
        let dir = tempfile::tempdir().unwrap();
        let q = MappedFileQueue::load(dir.path(), 4096, path).unwrap();
        let f = q.create(0).unwrap();
        f.write(0, b"hello").unwrap();
        f.publish(5);
        assert_eq!(q.flush().unwrap(), 5);
        let b = f.bytes(1, 3);
        assert_eq!(&b[..], b"ell");
        let g = q.create(4096).unwrap();
        assert!(Arc::ptr_eq(&q.find(4100).unwrap(), &g));
        assert!(q.find(8192).is_none());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            2,
            "two preallocated segments"
        );
        assert!(dir.path().join("00000000000000004096").exists());
    }

    #[test]
    fn deleting_the_first_segment_keeps_live_slices_and_the_last_segment() {
        let dir = tempfile::tempdir().unwrap();
        let q = MappedFileQueue::load(dir.path(), 4096, WritePath::Mapping).unwrap();
        let f = q.create(0).unwrap();
        f.write(0, b"still readable").unwrap();
        f.publish(14);
        let slice = f.bytes(0, 14);
        drop(f);
        q.create(4096).unwrap();
        assert!(q.delete_first_if(|_| false).unwrap().is_none());
        let deleted = q.delete_first_if(|f| f.file_from_offset() == 0).unwrap();
        assert!(deleted.is_some());
        drop(deleted);
        assert!(!dir.path().join("00000000000000000000").exists());
        assert_eq!(q.min_offset(), 4096);
        assert!(q.find(10).is_none());
        assert_eq!(&slice[..], b"still readable");
        assert!(
            q.delete_first_if(|_| true).unwrap().is_none(),
            "the last segment stays"
        );
        assert_eq!(q.files().len(), 1);
    }

    #[test]
    fn truncate_after_zeroes_tail_and_drops_later_segments() {
        for path in [WritePath::Mapping, WritePath::File] {
            truncate_after_zeroes_tail_and_drops_later_segments_with(path);
        }
    }

    fn truncate_after_zeroes_tail_and_drops_later_segments_with(path: WritePath) {
        let dir = tempfile::tempdir().unwrap();
        let q = MappedFileQueue::load(dir.path(), 4096, path).unwrap();
        let f = q.create(0).unwrap();
        f.write(0, &[7u8; 4096]).unwrap();
        f.publish(4096);
        let g = q.create(4096).unwrap();
        g.write(0, &[9u8; 100]).unwrap();
        g.publish(100);
        q.truncate_after(4096 + 10).unwrap();
        assert_eq!(g.wrote_pos(), 10);
        assert_eq!(g.slice(0, 12), &[9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 0, 0]);
        q.truncate_after(100).unwrap();
        assert_eq!(q.files().len(), 1);
        assert_eq!(f.slice(99, 2), &[7, 0]);
        drop(q);
        let q = MappedFileQueue::load(dir.path(), 4096, path).unwrap();
        assert_eq!(q.files().len(), 1);
    }
}
