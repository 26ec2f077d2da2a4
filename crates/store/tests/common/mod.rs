//! What the store's integration tests share: building an append request the way the broker
//! does, with the fields a test does not care about fixed.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;

use bytes::BytesMut;
use petrel_common::record::{self, RecordFields};
use petrel_store::{AppendRequest, StoreConfig};

/// The commit-log segment size of [`small_files_config`].
pub const SMALL_SEGMENT: u64 = 64 * 1024;

/// Small segments and queue files, so a few hundred messages span several of each (the
/// replication and truncation tests).
pub fn small_files_config(root: &Path) -> StoreConfig {
    StoreConfig {
        commit_log_file_size: SMALL_SEGMENT,
        consume_queue_entries_per_file: 16,
        flush_interval_ms: 20,
        ..StoreConfig::new(root)
    }
}

/// A tag filter that takes every message.
pub fn all(_: i64) -> bool {
    true
}

/// A record of `topic`/`queue_id` with `body` and the raw `properties` string
/// (`name\u{1}value\u{2}…`), ready for `put_message`.
pub fn append_request(
    topic: &str,
    queue_id: i32,
    body: &[u8],
    properties: &str,
    sys_flag: i32,
    tags_code: i64,
) -> AppendRequest {
    let fields = RecordFields {
        queue_id,
        flag: 0,
        queue_offset: 0,
        physical_offset: 0,
        sys_flag,
        born_timestamp: 1,
        born_host: SocketAddr::from(([127, 0, 0, 1], 5000)),
        store_timestamp: 0,
        store_host: SocketAddr::from(([127, 0, 0, 1], 10911)),
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body,
        topic,
        properties: properties.as_bytes(),
    };
    let mut record = BytesMut::new();
    record::encode(&fields, &mut record);
    AppendRequest {
        record,
        topic: topic.to_owned(),
        queue_id,
        tags_code,
    }
}
