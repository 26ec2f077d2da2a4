//! Cutting the commit log back (controller mode): a broker that returns as a slave of a newly
//! promoted master drops the tail of its log the new master does not have (see
//! [`crate::epoch::divergence_point`]), then follows the master's HA stream from the cut.

use std::sync::atomic::Ordering;

use petrel_common::record::{self, BLANK_MAGIC};

use super::MessageStore;
use crate::error::StoreError;
use crate::warm::Warmer;

impl MessageStore {
    /// Cuts the commit log so that it ends at `offset`: consume-queue entries of the records cut
    /// go, key queries no longer find them, a restart (clean or after a crash) does not bring
    /// them back, the epoch history forgets the epochs that started past the cut, and the next
    /// [`MessageStore::append_replicated`] must start at the cut.
    ///
    /// The log is only ever cut at a record boundary: an `offset` inside a record (the new
    /// master's epoch may start in the middle of a record this broker wrote as the old master)
    /// cuts at the start of that record, and bytes past the last whole record (a partial
    /// replicated chunk) count as one record starting at [`MessageStore::max_physical_offset`],
    /// so they are always dropped. Afterwards `max_physical_offset()` is where it cut.
    ///
    /// Only a slave's store is cut (see [`MessageStore::set_replica`]): its one writer is the HA
    /// client, so no send races the cut. Refused: a master's store, an `offset` past the bytes
    /// written, or below the log's minimum (those records were deleted by retention; nothing
    /// can be cut there).
    ///
    /// Readers holding a zero-copy slice of the cut bytes (a pull answer being sent) read zeros
    /// from then on; those messages are the divergent ones, which no consumer should get.
    pub fn truncate_to(&self, offset: i64) -> Result<(), StoreError> {
        let log = &self.shared.commit_log;
        // The append lock keeps the HA client's writes out for the whole cut.
        let _append = self.append_lock.lock();
        if self.shut_down.load(Ordering::Acquire) {
            return Err(StoreError::ShutDown);
        }
        if !self.is_replica() {
            return Err(StoreError::Truncate(
                "the store is a master's; make it a slave's (set_replica) before cutting its log"
                    .into(),
            ));
        }
        let (min, max, write_end) = (log.min_offset(), log.max_offset(), self.replica_write_end());
        if offset > write_end {
            return Err(StoreError::Truncate(format!(
                "offset {offset} is past the end of the log, {write_end}"
            )));
        }
        if offset < min {
            return Err(StoreError::Truncate(format!(
                "offset {offset} is below the log's minimum, {min}"
            )));
        }
        let cut = self.record_start_containing(offset, max)?;
        tracing::warn!(
            requested = offset,
            cut,
            dropped = write_end - cut,
            "cutting the commit log's divergent tail"
        );

        // The index dispatcher and the warmer read the log's positions without the append lock:
        // stopped for the cut, started again after it.
        let mut index_dispatcher = self.index_dispatcher.lock();
        index_dispatcher.stop();
        let mut warmer = self.warmer.lock();
        warmer.stop();
        let flush_guard = self.shared.flush_lock.lock();
        let result = self.cut(cut);
        drop(flush_guard);
        let restarted = index_dispatcher
            .restart_at(std::sync::Arc::clone(&self.shared), cut)
            .and_then(|()| Warmer::start(std::sync::Arc::clone(&self.shared)))
            .map(|w| *warmer = w);
        drop(warmer);
        drop(index_dispatcher);
        // Streamers of a cascaded slave wait on this; it normally never moves back.
        self.log_end.send_replace(cut);
        result?;
        restarted?;
        Ok(())
    }

    /// The cut itself, in the order that keeps a crash at any point recoverable: the commit log
    /// first (zeroed past `cut` and written back, so recovery's scan ends there and cuts the
    /// consume queues to it), then the consume queues, the index's claim of how far it got, the
    /// checkpoint and, last, the epoch history (until then a restart sees the old history and
    /// cuts again).
    fn cut(&self, cut: i64) -> Result<(), StoreError> {
        let shared = &self.shared;
        shared.commit_log.set_max_offset(cut);
        shared.commit_log.files().cut_live(cut)?;
        for cq in shared.queues.all() {
            cq.cut_live(cut)?;
        }
        shared.index.forget_from(cut)?;
        shared.flush_queues_and_checkpoint()?;
        self.epochs.truncate_from(cut)?;
        Ok(())
    }

    /// Where the record holding `offset` starts: walks record headers from the start of its
    /// segment (records never cross a segment, so one starts there). `offset` at or past `max`,
    /// the end of the whole records, gives `max`.
    fn record_start_containing(&self, offset: i64, max: i64) -> Result<i64, StoreError> {
        if offset >= max {
            return Ok(max);
        }
        let log = &self.shared.commit_log;
        let segment = log
            .files()
            .find(offset)
            .ok_or_else(|| StoreError::Corrupt(format!("no segment holds offset {offset}")))?;
        let start = segment.file_from_offset();
        let written = segment.wrote_pos();
        let mut pos = 0usize;
        loop {
            let at = start + pos as i64;
            let size = record::peek_total_size(segment.slice(pos, written - pos))
                .and_then(|(size, magic)| {
                    let ok =
                        magic == BLANK_MAGIC || size as usize >= record::FIXED_OVERHEAD_V4_BYTES;
                    (size > 0 && ok).then_some(size as usize)
                })
                .ok_or_else(|| StoreError::Corrupt(format!("no record header at {at}")))?;
            if at + size as i64 > offset {
                return Ok(at);
            }
            pos += size;
        }
    }
}
