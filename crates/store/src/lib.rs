//! Petrel's message store: RocketMQ's on-disk model — one commit log of fixed-size mapped
//! segments, a consume queue per topic/queue, key index files, a checkpoint and an abort marker —
//! with group commit, crash recovery, retention and atomic metadata files. Knows nothing about
//! the network.

pub mod checkpoint;
pub mod commit_log;
pub mod config;
pub mod consume_queue;
pub mod epoch;
pub mod error;
mod flush;
pub mod index;
mod index_dispatch;
pub mod mapped_file;
pub mod message_store;
pub mod metadata;
mod recovery;
mod retention;
pub mod timer_wheel;
mod warm;

pub use config::{DiskUsageFn, FlushDiskType, StoreConfig, TagsCodeFn};
pub use epoch::{divergence_point, EpochEntry, EpochFile};
pub use error::StoreError;
pub use flush::FlushFault;
pub use message_store::{
    AppendRequest, AppendResult, AppendStatus, ArrivalListener, GetResult, GetStatus, MessageStore,
    QueryResult,
};
pub use retention::RetentionReport;
