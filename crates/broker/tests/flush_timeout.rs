//! SYNC_FLUSH over the wire with a disk slower than `syncFlushTimeout` (the store's
//! `flush_fault` hook): the sender gets FLUSH_DISK_TIMEOUT with the message's id and offset, and
//! the message can be pulled like any other.

use std::sync::Arc;
use std::time::{Duration, Instant};

use petrel_broker::{Broker, BrokerConfig, BrokerHandle};
use petrel_common::properties::{Properties, KEYS, UNIQ_KEY};
use petrel_common::protocol::{ConsumerData, HeartbeatData, SubscriptionData};
use petrel_common::record;
use petrel_remoting::code::{request, response};
use petrel_remoting::headers::*;
use petrel_remoting::{CancellationToken, Connection, NoRequests, RemotingCommand};
use petrel_store::{FlushDiskType, FlushFault, StoreConfig};

const TIMEOUT: Duration = Duration::from_secs(10);
const SYNC_FLUSH_TIMEOUT: Duration = Duration::from_millis(300);
const SLOW_FLUSH: Duration = Duration::from_secs(2);

async fn start_sync_flush_broker(dir: &std::path::Path) -> (BrokerHandle, FlushFault) {
    let mut store = StoreConfig::new(dir);
    store.commit_log_file_size = 1024 * 1024;
    store.flush_disk_type = FlushDiskType::SyncFlush;
    store.sync_flush_timeout_ms = SYNC_FLUSH_TIMEOUT.as_millis() as u64;
    let fault = store.flush_fault.clone();
    let mut config = BrokerConfig::new(store);
    config.listen_addr = "127.0.0.1:0".parse().unwrap();
    let broker = Broker::start(config, CancellationToken::new())
        .await
        .unwrap();
    (broker, fault)
}

fn send_request(topic: &str, body: &[u8], key: &str) -> RemotingCommand {
    let mut props = Properties::new();
    props.insert(KEYS, key);
    props.insert(UNIQ_KEY, format!("UNIQ-{key}"));
    let header = SendMessageRequestHeaderV2 {
        producer_group: "pg".into(),
        topic: topic.into(),
        default_topic: "TBW102".into(),
        default_topic_queue_nums: 4,
        queue_id: 0,
        sys_flag: 0,
        born_timestamp: 1,
        flag: 0,
        properties: Some(props.encode()),
        ..Default::default()
    };
    RemotingCommand::request_with_header(request::SEND_MESSAGE_V2, &header).with_body(body.to_vec())
}

async fn pull_bodies(conn: &Connection, group: &str, topic: &str) -> Vec<Vec<u8>> {
    let hb = HeartbeatData {
        client_id: "127.0.0.1@flush-timeout-test".into(),
        producer_data_set: vec![],
        consumer_data_set: vec![ConsumerData {
            group_name: group.into(),
            consume_type: "CONSUME_PASSIVELY".into(),
            message_model: "CLUSTERING".into(),
            consume_from_where: "CONSUME_FROM_FIRST_OFFSET".into(),
            subscription_data_set: vec![SubscriptionData::tags(topic, "*", 1)],
            unit_mode: false,
        }],
    };
    let cmd =
        RemotingCommand::request(request::HEART_BEAT).with_body(serde_json::to_vec(&hb).unwrap());
    let resp = conn.request(cmd, TIMEOUT).await.unwrap();
    assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);

    let header = PullMessageRequestHeader {
        consumer_group: group.into(),
        topic: topic.into(),
        queue_id: 0,
        queue_offset: 0,
        max_msg_nums: 32,
        sys_flag: 0,
        commit_offset: 0,
        suspend_timeout_millis: 0,
        subscription: None,
        sub_version: 0,
        expression_type: None,
        max_msg_bytes: None,
    };
    let pull = RemotingCommand::request_with_header(request::PULL_MESSAGE, &header);
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
