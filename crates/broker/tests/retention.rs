//! Retention as a client sees it on the wire: once old segments are deleted, GET_MIN_OFFSET,
//! pull answers and topic stats report the new minimum, and a consumer pulling from below it is
//! told PULL_OFFSET_MOVED with nextBeginOffset at the minimum; while the disk is above the
//! warning level a SEND gets SERVICE_NOT_AVAILABLE saying so, and sends resume when it drains.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use petrel_broker::BrokerHandle;
use petrel_common::properties::{Properties, TAGS};
use petrel_common::record;
use petrel_remoting::code::{request, response};
use petrel_remoting::headers::*;
use petrel_remoting::{Connection, RemotingCommand};
use petrel_store::{DiskUsageFn, StoreConfig};

use common::{connect, start_broker_with, TIMEOUT};

/// Retention runs on its own thread; on a loaded machine give it plenty of time.
const RETENTION_WAIT: Duration = Duration::from_secs(30);
const TOPIC: &str = "Retained";
const EVERY_HOUR: &str = "00;01;02;03;04;05;06;07;08;09;10;11;12;13;14;15;16;17;18;19;20;21;22;23";

/// The used ratio of a simulated disk, settable while the broker runs.
fn fake_disk(used: f64) -> (Arc<AtomicU64>, DiskUsageFn) {
    let ratio = Arc::new(AtomicU64::new(used.to_bits()));
    let probe = {
        let ratio = Arc::clone(&ratio);
        DiskUsageFn::new(move |_| Ok(f64::from_bits(ratio.load(Ordering::Acquire))))
    };
    (ratio, probe)
}

/// 64 KiB segments kept one second, deletable at any hour, retention every 100 ms.
async fn start_broker(dir: &std::path::Path, disk: DiskUsageFn) -> BrokerHandle {
    start_broker_with(dir, |c| {
        c.store = StoreConfig {
            commit_log_file_size: 64 * 1024,
            consume_queue_entries_per_file: 16,
            file_reserved_time: Duration::from_secs(1),
            delete_when: EVERY_HOUR.into(),
            clean_resource_interval_ms: 100,
            delete_commit_log_files_interval_ms: 0,
            disk_usage_of: disk,
            ..StoreConfig::new(dir)
        };
    })
    .await
}

fn send_request(i: usize) -> RemotingCommand {
    let mut props = Properties::new();
    props.insert(TAGS, "TagA");
    let mut body = format!("message-{i}-").into_bytes();
    body.resize(1000, b'x');
    common::send_request(TOPIC, 0, &body, &props)
}

/// Makes the group known to the broker, as a consumer's first heartbeat does.
async fn heartbeat(conn: &Connection) {
    common::heartbeat(conn, "lagging", TOPIC).await;
}

fn pull_request(offset: i64) -> RemotingCommand {
    common::pull_request("lagging", TOPIC, 0, offset, 0)
}

async fn queue_offset(conn: &Connection, code: i32) -> i64 {
    let q = QueueRequestHeader {
        topic: TOPIC.into(),
        queue_id: 0,
    };
    let resp = conn
        .request(RemotingCommand::request_with_header(code, &q), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
    resp.decode_header::<OffsetResponseHeader>().unwrap().offset
}

#[tokio::test]
async fn a_consumer_that_fell_behind_is_moved_to_the_new_minimum() {
    let dir = tempfile::tempdir().unwrap();
    let (_disk, probe) = fake_disk(0.10);
    let broker = start_broker(dir.path(), probe).await;
    let conn = connect(&broker).await;
    // About four segments of 1 KiB messages.
    const SENT: i64 = 240;
    for i in 0..SENT as usize {
        let resp = conn.request(send_request(i), TIMEOUT).await.unwrap();
        assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
    }

    let deadline = Instant::now() + RETENTION_WAIT;
    let min = loop {
        let min = queue_offset(&conn, request::GET_MIN_OFFSET).await;
        if min > 0 {
            break min;
        }
        assert!(
            Instant::now() < deadline,
            "retention never moved the min offset"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(min < SENT, "the segment being written stays: {min}");
    assert_eq!(queue_offset(&conn, request::GET_MAX_OFFSET).await, SENT);

    // The group still at offset 0 is moved, not failed.
    heartbeat(&conn).await;
    let moved = conn.request(pull_request(0), TIMEOUT).await.unwrap();
    assert_eq!(
        moved.code,
        response::PULL_OFFSET_MOVED,
        "{:?}",
        moved.remark
    );
    let h: PullMessageResponseHeader = moved.decode_header().unwrap();
    assert_eq!(h.next_begin_offset, min);
    assert_eq!(h.min_offset, min);
    assert_eq!(h.max_offset, SENT);

    // From there it reads on, starting with the oldest message still kept.
    let found = conn
        .request(pull_request(h.next_begin_offset), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(found.code, response::SUCCESS, "{:?}", found.remark);
    let h: PullMessageResponseHeader = found.decode_header().unwrap();
    assert_eq!(h.min_offset, min);
    let body = found.body_bytes();
    let first = record::decode(&body, true).unwrap();
    assert_eq!(first.queue_offset, min);
    assert!(first.body.starts_with(format!("message-{min}-").as_bytes()));

    // Admin tools see the same minimum.
    let stats = conn
        .request(
            RemotingCommand::request_with_header(
                request::GET_TOPIC_STATS_INFO,
                &TopicRequestHeader {
                    topic: TOPIC.into(),
                },
            ),
            TIMEOUT,
        )
        .await
        .unwrap();
    assert_eq!(stats.code, response::SUCCESS, "{:?}", stats.remark);
    let text = String::from_utf8(stats.body_bytes().to_vec()).unwrap();
    assert!(
        text.contains(&format!(r#""maxOffset":{SENT},"minOffset":{min}}}"#)),
        "{text}"
    );

    // Sends go on.
    let resp = conn.request(send_request(999), TIMEOUT).await.unwrap();
    assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
    let h: SendMessageResponseHeader = resp.decode_header().unwrap();
    assert_eq!(h.queue_offset, SENT);
    broker.shutdown().await;
}

#[tokio::test]
async fn a_send_on_a_full_disk_gets_service_not_available_until_it_drains() {
    let dir = tempfile::tempdir().unwrap();
    let (disk, probe) = fake_disk(0.10);
    let broker = start_broker(dir.path(), probe).await;
    let conn = connect(&broker).await;
    let resp = conn.request(send_request(0), TIMEOUT).await.unwrap();
    assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);

    disk.store(0.96f64.to_bits(), Ordering::Release);
    let deadline = Instant::now() + RETENTION_WAIT;
    let refused = loop {
        let resp = conn.request(send_request(1), TIMEOUT).await.unwrap();
        if resp.code != response::SUCCESS {
            break resp;
        }
        assert!(Instant::now() < deadline, "sends were never refused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(refused.code, response::SERVICE_NOT_AVAILABLE);
    let remark = refused.remark.unwrap_or_default();
    assert!(remark.contains("disk is full"), "{remark}");
    assert!(
        remark.contains("96.0%") && remark.contains("diskSpaceWarningLevelRatio 0.9"),
        "{remark}"
    );
    let stored = queue_offset(&conn, request::GET_MAX_OFFSET).await;

    disk.store(0.50f64.to_bits(), Ordering::Release);
    let deadline = Instant::now() + RETENTION_WAIT;
    loop {
        let resp = conn.request(send_request(2), TIMEOUT).await.unwrap();
        if resp.code == response::SUCCESS {
            let h: SendMessageResponseHeader = resp.decode_header().unwrap();
            assert_eq!(h.queue_offset, stored, "refused sends stored nothing");
            break;
        }
        assert_eq!(resp.code, response::SERVICE_NOT_AVAILABLE);
        assert!(Instant::now() < deadline, "sends never resumed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    broker.shutdown().await;
}
