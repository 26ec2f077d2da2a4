//! The store's error type. Callers map it to RocketMQ response codes; the store never does.

use std::io;

use petrel_common::record::RecordError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store I/O error: {0}")]
    Io(#[from] io::Error),
    #[error("invalid record: {0}")]
    Record(#[from] RecordError),
    #[error("message of {len} bytes exceeds the limit of {limit} bytes")]
    MessageTooLarge { len: usize, limit: usize },
    #[error("invalid append request: {0}")]
    BadRequest(&'static str),
    #[error("store files are corrupt: {0}")]
    Corrupt(String),
    #[error(
        "the disk is full: {:.1}% of the store's filesystem is used, above \
         diskSpaceWarningLevelRatio {limit}; sends resume once retention frees space",
        used_ratio * 100.0
    )]
    DiskFull { used_ratio: f64, limit: f64 },
    #[error("the store is shut down")]
    ShutDown,
    /// The store follows a master (a slave's): only replicated bytes are written.
    #[error("this broker is a slave; it takes no writes of its own")]
    Replica,
    /// A master's transfer the slave cannot place: the two logs disagree or the bytes are bad.
    #[error("replication: {0}")]
    Replication(String),
    /// A commit-log cut ([`crate::MessageStore::truncate_to`]) that cannot be done.
    #[error("cannot truncate the commit log: {0}")]
    Truncate(String),
}
