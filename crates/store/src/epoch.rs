//! The epoch history of a broker's commit log (RocketMQ 5 controller mode): each time a broker
//! becomes master it starts a new epoch at its current commit-log end. The history, kept in the
//! `epochs` file under the store root, lets a broker that comes back as a slave find where its
//! log stops agreeing with the new master's ([`divergence_point`]) and cut the rest.
//!
//! File format: one `epoch start_offset` line per entry, in ascending order, decimal. Small and
//! rewritten whole on every change (temp file, fsync, rename, fsync of the directory), so a
//! crash leaves either the old or the new history, never a mix.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

/// One epoch: its number and the commit-log offset of its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

/// The `epochs` file and its entries, shared through `&self`.
pub struct EpochFile {
    path: PathBuf,
    entries: Mutex<Vec<EpochEntry>>,
}

impl EpochFile {
    /// Reads the history at `path`; a missing file is an empty history. A line that is not two
    /// integers, or entries out of order, is an `InvalidData` error naming the line.
    pub fn open(path: &Path) -> io::Result<EpochFile> {
        let text = match fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        let mut entries: Vec<EpochEntry> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            let bad = |why: &str| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} line {line_no}: {why}: {line:?}", path.display()),
                )
            };
            if line.trim().is_empty() {
                continue;
            }
            let mut fields = line.split_whitespace();
            let (Some(epoch), Some(start), None) = (fields.next(), fields.next(), fields.next())
            else {
                return Err(bad("expected `epoch start_offset`"));
            };
            let entry = EpochEntry {
                epoch: epoch.parse().map_err(|_| bad("epoch is not an i32"))?,
                start_offset: start
                    .parse()
                    .map_err(|_| bad("start offset is not an i64"))?,
            };
            if let Some(prev) = entries.last() {
                if !follows(prev, &entry) {
                    return Err(bad("entries out of order"));
                }
            }
            entries.push(entry);
        }
        Ok(EpochFile {
            path: path.to_path_buf(),
            entries: Mutex::new(entries),
        })
    }

    pub fn entries(&self) -> Vec<EpochEntry> {
        self.entries.lock().clone()
    }

    pub fn last(&self) -> Option<EpochEntry> {
        self.entries.lock().last().copied()
    }

    /// Adds a newer epoch: its number above the last one's, its start at or after the last
    /// one's (an epoch in which nothing was written has the next one start at the same offset).
    pub fn append(&self, entry: EpochEntry) -> io::Result<()> {
        let mut entries = self.entries.lock();
        if let Some(last) = entries.last() {
            if !follows(last, &entry) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("epoch {entry:?} does not follow the last one, {last:?}"),
                ));
            }
        }
        let mut next = entries.clone();
        next.push(entry);
        write_atomically(&self.path, &next)?;
        *entries = next;
        Ok(())
    }

    /// Forgets the epochs that started after `offset`, once the log has been cut there.
    ///
    /// An entry starting exactly at `offset` stays: its bytes are all gone, but the epoch still
    /// begins at `offset` — the new master whose epoch that may be starts there too, and
    /// [`divergence_point`] matches epochs by (number, start). Dropping it would make the slave
    /// look as if it never saw that epoch. Entries starting beyond `offset` describe bytes that
    /// no longer exist and would claim a history the log does not have.
    pub fn truncate_from(&self, offset: i64) -> io::Result<()> {
        let mut entries = self.entries.lock();
        let keep = entries.partition_point(|e| e.start_offset <= offset);
        if keep == entries.len() {
            return Ok(());
        }
        let next = entries[..keep].to_vec();
        write_atomically(&self.path, &next)?;
        *entries = next;
        Ok(())
    }
}

fn follows(prev: &EpochEntry, next: &EpochEntry) -> bool {
    next.epoch > prev.epoch && next.start_offset >= prev.start_offset
}

/// Temp file, fsync, rename over `path`, fsync of the directory: the rename is the commit point.
fn write_atomically(path: &Path, entries: &[EpochEntry]) -> io::Result<()> {
    let mut text = String::new();
    for e in entries {
        text.push_str(&format!("{} {}\n", e.epoch, e.start_offset));
    }
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

/// The commit-log offset at which a slave whose history is `local` and whose log ends at
/// `local_max` must cut its log before following a master whose history is `master`.
///
/// The newest local epoch the master also has (same number, same start) is the last point of
/// agreement: the slave's bytes of that epoch are the master's only up to where the master's
/// next epoch began (another broker took over there; what this one wrote after that is a
/// divergent tail). If no local epoch is on the master, nothing from the master's first epoch on
/// can be trusted. An empty local history (a fresh log, or one written in classic master/slave
/// mode) has nothing to compare, and nothing is cut.
pub fn divergence_point(local: &[EpochEntry], local_max: i64, master: &[EpochEntry]) -> i64 {
    if local.is_empty() {
        return local_max;
    }
    for l in local.iter().rev() {
        let Some(i) = master.iter().position(|m| m.epoch == l.epoch) else {
            continue;
        };
        if master[i].start_offset != l.start_offset {
            // Same number, different start: not the same epoch; look further back.
            continue;
        }
        let end = master.get(i + 1).map_or(i64::MAX, |next| next.start_offset);
        return local_max.min(end);
    }
    local_max.min(master.first().map_or(0, |m| m.start_offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(epoch: i32, start_offset: i64) -> EpochEntry {
        EpochEntry {
            epoch,
            start_offset,
        }
    }

    #[test]
    fn same_history_cuts_nothing() {
        let h = [e(1, 0), e(2, 1000)];
        assert_eq!(divergence_point(&h, 5000, &h), 5000);
    }

    #[test]
    fn old_master_tail_past_the_new_epoch_is_cut() {
        // We were master of epoch 2 up to 5000; the other broker took over at 3000 (epoch 3).
        let local = [e(1, 0), e(2, 1000)];
        let master = [e(1, 0), e(2, 1000), e(3, 3000)];
        assert_eq!(divergence_point(&local, 5000, &master), 3000);
    }

    #[test]
    fn slave_behind_the_master_cuts_nothing() {
        let local = [e(1, 0), e(2, 1000)];
        let master = [e(1, 0), e(2, 1000), e(3, 3000)];
        assert_eq!(divergence_point(&local, 2500, &master), 2500);
    }

    #[test]
    fn no_common_epoch_cuts_to_the_masters_first_start() {
        let local = [e(1, 0), e(2, 1000)];
        let master = [e(4, 800), e(5, 3000)];
        assert_eq!(divergence_point(&local, 5000, &master), 800);
        // Same number but a different start is not the same epoch.
        let master = [e(1, 0), e(2, 1200)];
        assert_eq!(divergence_point(&local, 5000, &master), 1200);
    }

    #[test]
    fn empty_local_history_cuts_nothing() {
        assert_eq!(divergence_point(&[], 5000, &[e(1, 0), e(2, 100)]), 5000);
    }

    #[test]
    fn file_round_trips_checks_order_and_truncates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("epochs");
        let f = EpochFile::open(&path).unwrap();
        assert_eq!(f.last(), None);
        f.append(e(1, 0)).unwrap();
        f.append(e(2, 100)).unwrap();
        f.append(e(3, 100)).unwrap();
        f.append(e(5, 900)).unwrap();
        let bad = [e(5, 1000), e(4, 2000), e(6, 800)];
        for b in bad {
            assert_eq!(f.append(b).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        }
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "1 0\n2 100\n3 100\n5 900\n"
        );
        let f = EpochFile::open(&path).unwrap();
        assert_eq!(f.entries(), vec![e(1, 0), e(2, 100), e(3, 100), e(5, 900)]);
        // The epoch starting exactly at the cut stays.
        f.truncate_from(100).unwrap();
        assert_eq!(f.entries(), vec![e(1, 0), e(2, 100), e(3, 100)]);
        assert_eq!(EpochFile::open(&path).unwrap().entries(), f.entries());
        f.truncate_from(99).unwrap();
        assert_eq!(EpochFile::open(&path).unwrap().last(), Some(e(1, 0)));
    }

    #[test]
    fn malformed_file_names_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("epochs");
        fs::write(&path, "1 0\n2 x\n").unwrap();
        let err = EpochFile::open(&path).err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("line 2"), "{err}");
        fs::write(&path, "2 0\n1 10\n").unwrap();
        let err = EpochFile::open(&path).err().unwrap();
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn serde_uses_camel_case() {
        let json = serde_json::to_string(&e(3, 42)).unwrap();
        assert_eq!(json, r#"{"epoch":3,"startOffset":42}"#);
    }
}
