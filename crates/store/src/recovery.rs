//! Start-up recovery: find where the commit log really ends, cut the torn tail, cut consume
//! queues back to what is known durable, and re-dispatch the records past that point. After a
//! clean shutdown the log end comes from the checkpoint (checked against the bytes on disk);
//! after a crash (the `abort` marker exists) the log is walked from the checkpointed segment,
//! checking magic, size, CRC and the recorded physical offset of every record. Records past the
//! newest index entry are indexed again (the index header says how far it got). Runs before the
//! store serves anyone; owns no state of its own.

use petrel_common::record::{self, BLANK_MAGIC};

use crate::checkpoint::CheckpointData;
use crate::commit_log::CommitLog;
use crate::error::StoreError;
use crate::message_store::Shared;

/// Recovers `shared` in place. `abnormal` means the last run did not shut down cleanly.
///
/// A clean start trusts the checkpoint and does not verify the records below it. If rebuilding
/// consume queues or the index then meets a damaged record (bytes changed on disk while the
/// broker was down), recovery starts over as after a crash: the scan checks every record and
/// cuts the log before the damage, and the rebuild truncates what the first attempt wrote.
pub(crate) fn recover(
    shared: &Shared,
    checkpoint: Option<CheckpointData>,
    abnormal: bool,
) -> Result<(), StoreError> {
    match recover_once(shared, checkpoint, abnormal) {
        Err(e @ (StoreError::Record(_) | StoreError::Corrupt(_))) if !abnormal => {
            tracing::warn!(error = %e, "damaged record after a clean stop; scanning the log");
            recover_once(shared, checkpoint, true)
        }
        result => result,
    }
}

fn recover_once(
    shared: &Shared,
    checkpoint: Option<CheckpointData>,
    abnormal: bool,
) -> Result<(), StoreError> {
    let log = &shared.commit_log;
    let abnormal = abnormal || checkpoint.is_none();
    let ck = checkpoint.unwrap_or_default();
    let clean_end = if abnormal {
        None
    } else {
        clean_log_end(log, ck.physic_flushed_offset)
    };
    let log_end = match clean_end {
        Some(end) => end,
        None => {
            if !abnormal {
                tracing::warn!("checkpoint disagrees with the commit log; scanning it");
            }
            let hint = ck.physic_flushed_offset.min(ck.logics_flushed_offset);
            scan_log_end(log, hint)
        }
    };
    tracing::info!(log_end, abnormal, "commit log recovered");
    log.files().truncate_after(log_end)?;
    log.set_max_offset(log_end);

    let redispatch_from = ck.logics_flushed_offset.clamp(log.min_offset(), log_end);
    for cq in shared.queues.all() {
        cq.recover(redispatch_from)?;
        // Retention may have deleted segments that entries still point into.
        cq.correct_min_offset(log.min_offset());
    }
    let (index_from, index_after) = match shared.index.last_indexed_offset() {
        Some(last) if last >= log_end => (log_end, Some(last)),
        Some(last) if last >= log.min_offset() => {
            (record_start_at_or_before(log, last), Some(last))
        }
        _ => (log.min_offset(), None),
    };
    redispatch(shared, redispatch_from, index_from, index_after, log_end)
}

/// `offset` if a record starts there, else the start of its segment: a place a walk can begin.
fn record_start_at_or_before(log: &CommitLog, offset: i64) -> i64 {
    let Some(segment) = log.files().find(offset) else {
        return log.min_offset();
    };
    let pos = (offset - segment.file_from_offset()) as usize;
    let rest = segment.slice(pos, log.file_size() - pos);
    match record::decode(rest, false) {
        Ok(r) if r.physical_offset == offset => offset,
        _ => segment.file_from_offset(),
    }
}

/// The checkpointed end, if nothing was written past it and it lies within the segment run.
fn clean_log_end(log: &CommitLog, end: i64) -> Option<i64> {
    let files = log.files().files();
    let Some(last) = files.last() else {
        return (end == 0).then_some(0);
    };
    let run_end = last.file_from_offset() + last.file_size() as i64;
    if end < log.min_offset() || end > run_end {
        return None;
    }
    if end == run_end {
        return Some(end);
    }
    let segment = log.files().find(end)?;
    let pos = (end - segment.file_from_offset()) as usize;
    let n = 8.min(segment.file_size() - pos);
    segment.slice(pos, n).iter().all(|&b| b == 0).then_some(end)
}

/// Walks records from the start of the segment holding `hint` (the first segment if none does)
/// and returns the offset just past the last valid one.
fn scan_log_end(log: &CommitLog, hint: i64) -> i64 {
    let files = log.files().files();
    let Some(first) = files.first() else {
        return 0;
    };
    let file_size = log.file_size();
    let start_index = usize::try_from((hint - first.file_from_offset()) / file_size as i64)
        .unwrap_or(0)
        .min(files.len() - 1);
    for segment in &files[start_index..] {
        let start = segment.file_from_offset();
        let mut pos = 0usize;
        loop {
            let rest = segment.slice(pos, file_size - pos);
            let Some((size, magic)) = record::peek_total_size(rest) else {
                return start + pos as i64;
            };
            if magic == BLANK_MAGIC && size as usize == file_size - pos {
                break;
            }
            match record::decode(rest, true) {
                Ok(r) if r.physical_offset == start + pos as i64 => pos += size as usize,
                Ok(r) => {
                    tracing::warn!(
                        at = start + pos as i64,
                        recorded = r.physical_offset,
                        "stale record; log ends here"
                    );
                    return start + pos as i64;
                }
                Err(e) => {
                    if size != 0 || magic != 0 {
                        tracing::warn!(at = start + pos as i64, error = %e, "torn record; log ends here");
                    }
                    return start + pos as i64;
                }
            }
        }
    }
    files
        .last()
        .map_or(0, |f| f.file_from_offset() + file_size as i64)
}

/// Re-creates the consume-queue entries of the records in `[cq_from, to)` and the index entries
/// of those in `[index_from, to)` past `index_after`, in one walk. Both starts are record starts.
fn redispatch(
    shared: &Shared,
    cq_from: i64,
    index_from: i64,
    index_after: Option<i64>,
    to: i64,
) -> Result<(), StoreError> {
    let log = &shared.commit_log;
    let file_size = log.file_size();
    let mut offset = cq_from.min(index_from);
    let mut dispatched = 0u64;
    let mut indexed = 0u64;
    while offset < to {
        let segment = log
            .files()
            .find(offset)
            .ok_or_else(|| StoreError::Corrupt(format!("no segment holds offset {offset}")))?;
        let pos = (offset - segment.file_from_offset()) as usize;
        let rest = segment.slice(pos, file_size - pos);
        let (size, magic) = record::peek_total_size(rest)
            .ok_or_else(|| StoreError::Corrupt(format!("no record header at {offset}")))?;
        if magic == BLANK_MAGIC {
            offset = segment.file_from_offset() + file_size as i64;
            continue;
        }
        let r = record::decode(rest, false)?;
        if offset >= cq_from {
            let tags_code = shared.config.tags_code_of.call(&r);
            shared.dispatch_recovered(&r, tags_code)?;
            dispatched += 1;
        }
        if offset >= index_from && index_after.is_none_or(|last| offset > last) {
            shared.index.index_record(&r)?;
            indexed += 1;
        }
        offset += i64::from(size);
    }
    if dispatched > 0 {
        tracing::info!(from = cq_from, to, dispatched, "consume queues rebuilt");
    }
    if indexed > 0 {
        tracing::info!(from = index_from, to, indexed, "index rebuilt");
    }
    Ok(())
}
