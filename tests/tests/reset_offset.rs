//! Resetting a consumer group's offsets to a point in time (INVOKE_BROKER_TO_RESET_OFFSET, what
//! `mqadmin resetOffsetByTime` and `petrel admin reset-offset` send), with the group consuming
//! and with the group offline.

use std::sync::Arc;
use std::time::Duration;

use petrel_client::admin::Admin;
use petrel_client::{ClientConfig, ClientError, Message, Producer};
use petrel_common::msg_id::now_ms;
use petrel_remoting::code::response;
use petrel_tests::{counting_consumer, wait_for, KeyCounts, Standalone};

async fn send(producer: &Producer, topic: &str, prefix: &str, n: usize) {
    for i in 0..n {
        let msg = Message::new(topic, format!("{prefix}-{i}").into_bytes())
            .with_keys(format!("{prefix}-{i}"));
        producer.send(msg).await.unwrap();
    }
}

fn times(seen: &KeyCounts, prefix: &str, n: usize) -> Vec<u32> {
    let seen = seen.lock().unwrap();
    (0..n)
        .map(|i| seen.get(&format!("{prefix}-{i}")).copied().unwrap_or(0))
        .collect()
}

async fn start(dir: &std::path::Path, topic: &str) -> (Standalone, Admin, Producer) {
    let petrel = Standalone::start(dir).await.unwrap();
    petrel.create_topic(topic, 4).await.unwrap();
    let admin = Admin::new(ClientConfig::new(&petrel.namesrv_addr));
    let producer = petrel.producer("reset-pg").await.unwrap();
    (petrel, admin, producer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_to_a_time_replays_from_there_while_the_group_consumes() {
    let dir = tempfile::tempdir().unwrap();
    let topic = "ResetLive";
    let (petrel, admin, producer) = start(dir.path(), topic).await;
    let seen: KeyCounts = Arc::default();
    let c = counting_consumer(
        &petrel.namesrv_addr,
        "reset-live",
        "reset-c",
        topic,
        seen.clone(),
    );
    c.start().await.unwrap();

    send(&producer, topic, "old", 40).await;
    // Store times are milliseconds: leave a clear gap around the reset point.
    tokio::time::sleep(Duration::from_millis(30)).await;
    let reset_point = now_ms() as i64;
    tokio::time::sleep(Duration::from_millis(30)).await;
    send(&producer, topic, "new", 40).await;
    wait_for("all 80 messages once", || seen.lock().unwrap().len() == 80).await;
    // Let the consumer commit its progress, so the reset has to move offsets backwards.
    tokio::time::sleep(Duration::from_millis(600)).await;

    let rows = admin
        .reset_offset_by_time(topic, "reset-live", reset_point, true)
        .await
        .unwrap();
    assert_eq!(rows.len(), 4, "one new offset per queue: {rows:?}");
    assert_eq!(
        rows.iter().map(|(_, o)| o).sum::<i64>(),
        40,
        "the reset points at the 40 older messages: {rows:?}"
    );
    wait_for("the 40 newer messages a second time", || {
        times(&seen, "new", 40).iter().all(|&t| t == 2)
    })
    .await;
    // Nothing before the reset point comes back, and the replay does not run away.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(times(&seen, "old", 40).iter().all(|&t| t == 1));
    assert!(times(&seen, "new", 40).iter().all(|&t| t == 2));
    c.shutdown().await;
    petrel.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_while_the_group_is_offline_applies_when_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let topic = "ResetOffline";
    let (petrel, admin, producer) = start(dir.path(), topic).await;
    send(&producer, topic, "m", 30).await;
    let seen: KeyCounts = Arc::default();
    let c = counting_consumer(
        &petrel.namesrv_addr,
        "reset-offline",
        "reset-c",
        topic,
        seen.clone(),
    );
    c.start().await.unwrap();
    wait_for("all 30 messages", || seen.lock().unwrap().len() == 30).await;
    c.shutdown().await;

    // Back to the start of every queue.
    let rows = admin
        .reset_offset_by_time(topic, "reset-offline", 0, true)
        .await
        .unwrap();
    assert!(rows.iter().all(|(_, o)| *o == 0), "{rows:?}");

    let c = counting_consumer(
        &petrel.namesrv_addr,
        "reset-offline",
        "reset-c",
        topic,
        seen.clone(),
    );
    c.start().await.unwrap();
    wait_for("all 30 messages a second time", || {
        times(&seen, "m", 30).iter().all(|&t| t == 2)
    })
    .await;
    c.shutdown().await;
    petrel.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_of_an_unknown_topic_or_group_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let topic = "ResetErrors";
    let (petrel, admin, _producer) = start(dir.path(), topic).await;
    let err = admin
        .reset_offset_by_time(topic, "nobody-ever-used-this-group", 0, true)
        .await
        .unwrap_err();
    match err {
        ClientError::Broker { code, remark } => {
            assert_eq!(code, response::SUBSCRIPTION_GROUP_NOT_EXIST);
            assert!(remark.contains("nobody-ever-used-this-group"), "{remark}");
        }
        other => panic!("unexpected error: {other}"),
    }
    petrel.shutdown().await.unwrap();
}
