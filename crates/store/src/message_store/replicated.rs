//! The store's side of master/slave replication: what a master's streamer reads (raw commit-log
//! bytes from any offset, and a wake-up when the log grows) and how a slave writes what it
//! receives (at the same offsets, then dispatched into its own consume queues and index). The
//! bytes arrive in chunks that may end inside a record: they are written as they come, and a
//! record is dispatched once it is whole, so readers never see half of one.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use petrel_common::record::{self, BLANK_MAGIC};
use tokio::sync::watch;

use super::MessageStore;
use crate::error::StoreError;

impl MessageStore {
    /// Makes the store a slave's (only replicated bytes are written) or a master's again.
    pub fn set_replica(&self, replica: bool) {
        self.replica.store(replica, Ordering::Release);
    }

    pub fn is_replica(&self) -> bool {
        self.replica.load(Ordering::Acquire)
    }

    /// Tells the log end to whoever waits on [`MessageStore::watch_log_end`]; never moves back.
    pub(super) fn publish_log_end(&self, end: i64) {
        self.log_end.send_if_modified(|v| {
            let grew = end > *v;
            if grew {
                *v = end;
            }
            grew
        });
    }

    /// Changes whenever the published log end grows.
    pub fn watch_log_end(&self) -> watch::Receiver<i64> {
        self.log_end.subscribe()
    }

    /// Up to `max` commit-log bytes from `offset`, within one segment and below the published
    /// log end; empty when nothing is there yet, `None` when no segment holds `offset` (below
    /// the log's minimum, or beyond its end).
    pub fn replication_chunk(&self, offset: i64, max: usize) -> Option<Bytes> {
        let log = &self.shared.commit_log;
        let end = log.max_offset();
        if offset == end {
            return Some(Bytes::new());
        }
        if offset > end {
            return None;
        }
        let segment = log.files().find(offset)?;
        let pos = (offset - segment.file_from_offset()) as usize;
        let segment_end = segment.file_from_offset() + segment.wrote_pos() as i64;
        let available = (segment_end.min(end) - offset).max(0) as usize;
        Some(segment.bytes(pos, available.min(max)))
    }

    /// Where the next replicated byte goes: the end of the bytes written so far, whole records
    /// or not (a slave reports this to its master).
    pub fn replica_write_end(&self) -> i64 {
        let log = &self.shared.commit_log;
        log.files().last().map_or(log.max_offset(), |f| {
            f.file_from_offset() + f.wrote_pos() as i64
        })
    }

    /// Writes a master's bytes at `offset`, which must be where this log's bytes end (on an empty
    /// log: the start of a segment), then dispatches every record completed by them. Returns
    /// the new write end. Refused bytes leave the log as it was.
    pub fn append_replicated(&self, offset: i64, data: &[u8]) -> Result<i64, StoreError> {
        let log = &self.shared.commit_log;
        let file_size = log.file_size();
        let mut last_ts = self.append_lock.lock();
        if self.shut_down.load(Ordering::Acquire) {
            return Err(StoreError::ShutDown);
        }
        if data.is_empty() {
            return Ok(self.replica_write_end());
        }
        let segment = match log.files().last() {
            None => {
                if offset % file_size as i64 != 0 {
                    return Err(StoreError::Replication(format!(
                        "the master starts at offset {offset}, not at the start of a \
                         {file_size}-byte segment: are both logs' segment sizes \
                         (mappedFileSizeCommitLog) the same?"
                    )));
                }
                log.files().create(offset)?
            }
            Some(last) => {
                let write_end = last.file_from_offset() + last.wrote_pos() as i64;
                if offset != write_end {
                    return Err(StoreError::Replication(format!(
                        "the master sent bytes from offset {offset}, this log ends at {write_end}"
                    )));
                }
                if last.is_full() {
                    log.files().create(write_end)?
                } else {
                    last
                }
            }
        };
        let pos = (offset - segment.file_from_offset()) as usize;
        if pos + data.len() > file_size {
            return Err(StoreError::Replication(format!(
                "{} bytes at offset {offset} cross the end of a {file_size}-byte segment",
                data.len()
            )));
        }
        segment.write(pos, data)?;
        segment.publish(pos + data.len());
        let write_end = offset + data.len() as i64;

        let mut arrived: HashMap<(String, i32), ()> = HashMap::new();
        let mut dispatched = self.dispatch_whole_records(write_end, &mut arrived);
        if dispatched.is_err() {
            // Bad bytes never stay: cut back to the last whole record, from where the next
            // connection's transfer starts again.
            let keep = log.max_offset();
            let cut = (keep - segment.file_from_offset()).max(0) as usize;
            if let Err(e) = segment.truncate_tail(cut) {
                dispatched = Err(e.into());
            }
        }
        *last_ts = (*last_ts).max(self.shared.last_store_timestamp.load(Ordering::Acquire));
        let end = log.max_offset();
        drop(last_ts);
        self.index_progress.notify_appended();
        self.publish_log_end(end);
        let listener = self.arrival_listener.read().clone();
        if let Some(listener) = listener {
            for (topic, queue_id) in arrived.into_keys() {
                listener(&topic, queue_id, self.max_offset(&topic, queue_id));
            }
        }
        dispatched.map(|()| write_end)
    }

    /// Dispatches the whole records between the published log end and `write_end` and publishes
    /// the new end (the start of the first record not yet whole). Caller holds the append lock.
    fn dispatch_whole_records(
        &self,
        write_end: i64,
        arrived: &mut HashMap<(String, i32), ()>,
    ) -> Result<(), StoreError> {
        let log = &self.shared.commit_log;
        let file_size = log.file_size();
        // A fresh slave's first segment starts where its master's last one did.
        let mut offset = log.max_offset().max(log.min_offset());
        let mut outcome = Ok(());
        while offset < write_end {
            let Some(segment) = log.files().find(offset) else {
                break;
            };
            let pos = (offset - segment.file_from_offset()) as usize;
            let written = segment.wrote_pos();
            let Some((size, magic)) = record::peek_total_size(segment.slice(pos, written - pos))
            else {
                break;
            };
            if magic == BLANK_MAGIC {
                if size as usize != file_size - pos {
                    outcome = Err(StoreError::Replication(format!(
                        "a segment filler at {offset} does not reach the segment's end"
                    )));
                    break;
                }
                if written < file_size {
                    break;
                }
                offset = segment.file_from_offset() + file_size as i64;
                continue;
            }
            let Ok(size) = usize::try_from(size) else {
                outcome = Err(StoreError::Replication(format!(
                    "negative record size at {offset}"
                )));
                break;
            };
            if pos + size > written {
                break;
            }
            let dispatched = record::decode(segment.slice(pos, size), true)
                .map_err(StoreError::from)
                .and_then(|r| {
                    if r.physical_offset != offset {
                        return Err(StoreError::Replication(format!(
                            "the record at {offset} says it is at {}",
                            r.physical_offset
                        )));
                    }
                    let tags_code = self.shared.config.tags_code_of.call(&r);
                    self.shared.dispatch_recovered(&r, tags_code)?;
                    arrived.insert((r.topic.to_owned(), r.queue_id), ());
                    Ok(())
                });
            if let Err(e) = dispatched {
                outcome = Err(e);
                break;
            }
            offset += size as i64;
        }
        log.set_max_offset(offset.max(log.max_offset()));
        outcome
    }
}
