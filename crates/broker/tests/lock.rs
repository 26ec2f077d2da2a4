//! LOCK_BATCH_MQ / UNLOCK_BATCH_MQ over a real socket, with the JSON bodies a Java orderly
//! consumer sends.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use petrel_broker::BrokerHandle;
use petrel_common::protocol::{LockBatchRequestBody, LockBatchResponseBody, MessageQueue};
use petrel_remoting::code::{request, response};
use petrel_remoting::{Connection, RemotingCommand};

use common::{connect, start_broker_with, TIMEOUT};

async fn start_broker(dir: &std::path::Path, lock_max_live: Duration) -> BrokerHandle {
    start_broker_with(dir, |c| c.rebalance_lock_max_live = lock_max_live).await
}

fn mqs(ids: &[i32]) -> BTreeSet<MessageQueue> {
    ids.iter()
        .map(|&queue_id| MessageQueue {
            topic: "OrderTopic".into(),
            broker_name: "broker-a".into(),
            queue_id,
        })
        .collect()
}

fn body(client_id: &str, ids: &[i32]) -> Vec<u8> {
    serde_json::to_vec(&LockBatchRequestBody {
        consumer_group: "order-cg".into(),
        client_id: client_id.into(),
        only_this_broker: false,
        mq_set: mqs(ids),
    })
    .unwrap()
}

/// Sends LOCK_BATCH_MQ and returns the queue ids the broker says `client_id` holds.
async fn lock(conn: &Connection, client_id: &str, ids: &[i32]) -> Vec<i32> {
    let cmd = RemotingCommand::request(request::LOCK_BATCH_MQ).with_body(body(client_id, ids));
    let resp = conn.request(cmd, TIMEOUT).await.unwrap();
    assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
    let text = resp.body_bytes();
    assert!(
        std::str::from_utf8(&text)
            .unwrap()
            .contains("\"lockOKMQSet\""),
        "{text:?}"
    );
    let answer: LockBatchResponseBody = serde_json::from_slice(&text).unwrap();
    answer.lock_ok_mq_set.iter().map(|m| m.queue_id).collect()
}

async fn unlock(conn: &Connection, client_id: &str, ids: &[i32]) {
    let cmd = RemotingCommand::request(request::UNLOCK_BATCH_MQ).with_body(body(client_id, ids));
    let resp = conn.request(cmd, TIMEOUT).await.unwrap();
    assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
}

#[tokio::test]
async fn a_locked_queue_is_refused_to_another_client_until_unlocked() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path(), Duration::from_secs(60)).await;
    let a = connect(&broker).await;
    let b = connect(&broker).await;

    assert_eq!(lock(&a, "10.0.0.1@a", &[0, 1, 2]).await, vec![0, 1, 2]);
    assert_eq!(lock(&b, "10.0.0.2@b", &[2, 3]).await, vec![3]);
    // The owner renews by locking again.
    assert_eq!(lock(&a, "10.0.0.1@a", &[1, 2]).await, vec![1, 2]);
    // Unlocking queues one does not hold changes nothing.
    unlock(&b, "10.0.0.2@b", &[2]).await;
    assert!(lock(&b, "10.0.0.2@b", &[2]).await.is_empty());

    unlock(&a, "10.0.0.1@a", &[2]).await;
    assert_eq!(lock(&b, "10.0.0.2@b", &[1, 2]).await, vec![2]);
    broker.shutdown().await;
}

#[tokio::test]
async fn an_unrenewed_lock_expires() {
    let dir = tempfile::tempdir().unwrap();
    let max_live = Duration::from_millis(300);
    let broker = start_broker(dir.path(), max_live).await;
    let conn = connect(&broker).await;
    assert_eq!(lock(&conn, "c1", &[0]).await, vec![0]);
    assert!(lock(&conn, "c2", &[0]).await.is_empty());
    tokio::time::sleep(max_live + Duration::from_millis(200)).await;
    assert_eq!(lock(&conn, "c2", &[0]).await, vec![0]);
    assert!(lock(&conn, "c1", &[0]).await.is_empty());
    broker.shutdown().await;
}

#[tokio::test]
async fn a_bad_lock_body_is_refused_with_invalid_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path(), Duration::from_secs(60)).await;
    let conn = connect(&broker).await;
    for (code, text) in [
        (request::LOCK_BATCH_MQ, &b"not json"[..]),
        (
            request::LOCK_BATCH_MQ,
            br#"{"consumerGroup":"cg","clientId":"","mqSet":[]}"#,
        ),
        (
            request::UNLOCK_BATCH_MQ,
            br#"{"consumerGroup":"bad group!","clientId":"c","mqSet":[]}"#,
        ),
    ] {
        let cmd = RemotingCommand::request(code).with_body(text.to_vec());
        let resp = conn.request(cmd, TIMEOUT).await.unwrap();
        assert_eq!(resp.code, response::INVALID_PARAMETER);
        assert!(resp.remark.as_deref().is_some_and(|r| !r.is_empty()));
    }
    broker.shutdown().await;
}
