//! The `checkpoint` file: how far the commit log and the consume queues are known durable.
//! RocketMQ's five big-endian i64 fields come first (physicMsgTimestamp, logicsMsgTimestamp,
//! indexMsgTimestamp, masterFlushedOffset, confirmPhyOffset); Petrel adds the flushed commit-log
//! offset, the commit-log offset below which every consume-queue entry is flushed, and a CRC so a
//! torn checkpoint is ignored rather than trusted. Owns only this file.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

const CHECKPOINT_FILE_BYTES: u64 = 4096;
const FIELDS: usize = 7;
const CRC_POS: usize = FIELDS * 8;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckpointData {
    pub physic_msg_timestamp: i64,
    pub logics_msg_timestamp: i64,
    pub index_msg_timestamp: i64,
    pub master_flushed_offset: i64,
    pub confirm_phy_offset: i64,
    /// Commit-log bytes below this offset are on disk.
    pub physic_flushed_offset: i64,
    /// Every record below this commit-log offset has its consume-queue entry on disk.
    pub logics_flushed_offset: i64,
}

impl CheckpointData {
    fn encode(&self) -> [u8; CRC_POS + 4] {
        let fields = [
            self.physic_msg_timestamp,
            self.logics_msg_timestamp,
            self.index_msg_timestamp,
            self.master_flushed_offset,
            self.confirm_phy_offset,
            self.physic_flushed_offset,
            self.logics_flushed_offset,
        ];
        let mut b = [0u8; CRC_POS + 4];
        for (i, v) in fields.iter().enumerate() {
            b[i * 8..i * 8 + 8].copy_from_slice(&v.to_be_bytes());
        }
        let crc = crc32fast::hash(&b[..CRC_POS]);
        b[CRC_POS..].copy_from_slice(&crc.to_be_bytes());
        b
    }

    fn decode(b: &[u8; CRC_POS + 4]) -> Option<CheckpointData> {
        let crc = u32::from_be_bytes(b[CRC_POS..].try_into().expect("4"));
        if crc != crc32fast::hash(&b[..CRC_POS]) {
            return None;
        }
        let f = |i: usize| i64::from_be_bytes(b[i * 8..i * 8 + 8].try_into().expect("8"));
        Some(CheckpointData {
            physic_msg_timestamp: f(0),
            logics_msg_timestamp: f(1),
            index_msg_timestamp: f(2),
            master_flushed_offset: f(3),
            confirm_phy_offset: f(4),
            physic_flushed_offset: f(5),
            logics_flushed_offset: f(6),
        })
    }
}

pub struct Checkpoint {
    file: File,
}

impl Checkpoint {
    /// Opens (or creates) the file and returns what it holds, `None` if it is new or torn.
    pub fn open(path: &Path) -> io::Result<(Checkpoint, Option<CheckpointData>)> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let mut buf = [0u8; CRC_POS + 4];
        let data = if file.metadata()?.len() >= buf.len() as u64 {
            file.read_exact_at(&mut buf, 0)?;
            CheckpointData::decode(&buf)
        } else {
            None
        };
        if file.metadata()?.len() < CHECKPOINT_FILE_BYTES {
            file.set_len(CHECKPOINT_FILE_BYTES)?;
        }
        Ok((Checkpoint { file }, data))
    }

    /// Writes the fields in one small write at offset 0 and waits for the disk.
    pub fn write(&self, data: &CheckpointData) -> io::Result<()> {
        self.file.write_all_at(&data.encode(), 0)?;
        self.file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_torn_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint");
        let (cp, data) = Checkpoint::open(&path).unwrap();
        assert_eq!(data, None);
        let d = CheckpointData {
            physic_msg_timestamp: 1,
            logics_msg_timestamp: 2,
            physic_flushed_offset: 300,
            logics_flushed_offset: 200,
            ..Default::default()
        };
        cp.write(&d).unwrap();
        assert_eq!(Checkpoint::open(&path).unwrap().1, Some(d));
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 4096);
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(&[0xFF], 3).unwrap();
        assert_eq!(Checkpoint::open(&path).unwrap().1, None);
    }
}
