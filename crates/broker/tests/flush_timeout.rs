//! SYNC_FLUSH over the wire with a disk slower than `syncFlushTimeout` (the store's
//! `flush_fault` hook): the sender gets FLUSH_DISK_TIMEOUT with the message's id and offset, and
//! the message can be pulled like any other.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use petrel_broker::BrokerHandle;
use petrel_common::properties::{Properties, KEYS, UNIQ_KEY};
use petrel_common::record;
use petrel_remoting::code::response;
use petrel_remoting::headers::*;
use petrel_remoting::{Connection, NoRequests, RemotingCommand};
use petrel_store::{FlushDiskType, FlushFault};

use common::{heartbeat, pull_request, start_broker_with, TIMEOUT};

const SYNC_FLUSH_TIMEOUT: Duration = Duration::from_millis(300);
const SLOW_FLUSH: Duration = Duration::from_secs(2);

async fn start_sync_flush_broker(dir: &std::path::Path) -> (BrokerHandle, FlushFault) {
    let mut fault = None;
    let broker = start_broker_with(dir, |c| {
        c.store.flush_disk_type = FlushDiskType::SyncFlush;
        c.store.sync_flush_timeout_ms = SYNC_FLUSH_TIMEOUT.as_millis() as u64;
        fault = Some(c.store.flush_fault.clone());
    })
    .await;
    (broker, fault.expect("configured"))
}

fn send_request(topic: &str, body: &[u8], key: &str) -> RemotingCommand {
    let mut props = Properties::new();
    props.insert(KEYS, key);
    props.insert(UNIQ_KEY, format!("UNIQ-{key}"));
    common::send_request(topic, 0, body, &props)
}

async fn pull_bodies(conn: &Connection, group: &str, topic: &str) -> Vec<Vec<u8>> {
    heartbeat(conn, group, topic).await;
    let pull = pull_request(group, topic, 0, 0, 0);
    let resp = conn.request(pull, TIMEOUT).await.unwrap();
    assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
    let body = resp.body_bytes();
    let mut pos = 0;
    let mut bodies = Vec::new();
    while pos < body.len() {
        let rec = record::decode(&body[pos..], true).unwrap();
        bodies.push(rec.body.to_vec());
        pos += rec.total_size as usize;
    }
    bodies
}

#[tokio::test]
async fn a_send_whose_flush_times_out_gets_flush_disk_timeout_and_can_be_pulled() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, fault) = start_sync_flush_broker(dir.path()).await;
    let conn = Connection::connect(
        &broker.local_addr().to_string(),
        Arc::new(NoRequests),
        TIMEOUT,
    )
    .await
    .unwrap();

    let resp = conn
        .request(send_request("SlowDisk", b"durable", "k0"), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);

    fault.set_delay(SLOW_FLUSH);
    let started = Instant::now();
    let resp = conn
        .request(send_request("SlowDisk", b"late", "k1"), TIMEOUT)
        .await
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(resp.code, response::FLUSH_DISK_TIMEOUT, "{:?}", resp.remark);
    assert_eq!(response::FLUSH_DISK_TIMEOUT, 10);
    assert!(
        waited < SLOW_FLUSH,
        "answered after {waited:?}, i.e. after the flush rather than at the timeout"
    );
    // A RocketMQ client treats FLUSH_DISK_TIMEOUT as stored: the answer names the message.
    let h: SendMessageResponseHeader = resp.decode_header().unwrap();
    assert_eq!((h.queue_id, h.queue_offset), (0, 1));
    assert_eq!(h.msg_id.len(), 32);
    assert_eq!(h.transaction_id.as_deref(), Some("UNIQ-k1"));

    assert_eq!(
        pull_bodies(&conn, "cg", "SlowDisk").await,
        [b"durable".to_vec(), b"late".to_vec()]
    );
    fault.set_delay(Duration::ZERO);
    broker.shutdown().await;
}
