//! Retention end to end: a broker started from a config file with retention keys deletes old
//! segments on its own, and a push consumer group that fell behind them is moved to the new
//! minimum (PULL_OFFSET_MOVED) and consumes everything still kept, once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use petrel_client::admin::Admin;
use petrel_client::MessageQueue;
use petrel_client::{ClientConfig, Message, Producer};
use petrel_tests::{counting_consumer, wait_for, KeyCounts, Standalone};

const WAIT: Duration = Duration::from_secs(60);
const TOPIC: &str = "Retained";
const GROUP: &str = "retention-lagging";
const QUEUES: i32 = 2;

async fn send(producer: &Producer, prefix: &str, n: usize) {
    for i in 0..n {
        let mut body = format!("{prefix}-{i}-").into_bytes();
        body.resize(1000, b'x');
        let msg = Message::new(TOPIC, body).with_keys(format!("{prefix}-{i}"));
        producer.send(msg).await.unwrap();
    }
}

fn queue(broker_name: &str, queue_id: i32) -> MessageQueue {
    MessageQueue {
        topic: TOPIC.into(),
        broker_name: broker_name.into(),
        queue_id,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_consumer_behind_deleted_segments_moves_to_the_minimum_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    // Every segment but the current one is due as soon as the disk holds anything.
    let config = petrel_tests::config_deleting_full_segments(dir.path(), 64 * 1024);
    let petrel = Standalone::start_with(config).await.unwrap();
    let ns = petrel.namesrv_addr.clone();
    petrel.create_topic(TOPIC, QUEUES).await.unwrap();
    let admin = Admin::new(ClientConfig::new(&ns));
    let broker_name = admin.topic_route(TOPIC).await.unwrap().broker_datas[0]
        .broker_name
        .clone();
    let producer = petrel.producer("retention-pg").await.unwrap();

    // The group consumes a few messages, commits, and goes away.
    let seen: KeyCounts = Arc::default();
    send(&producer, "early", 4).await;
    let c = counting_consumer(&ns, GROUP, "retention-c", TOPIC, seen.clone());
    c.start().await.unwrap();
    wait_for("the early messages", || seen.lock().unwrap().len() == 4).await;
    c.shutdown().await;
    let mut committed = Vec::new();
    for q in 0..QUEUES {
        let mq = queue(&broker_name, q);
        committed.push(
            admin
                .consumer_offset(GROUP, &mq)
                .await
                .unwrap()
                .unwrap_or(0),
        );
    }

    // Meanwhile some five segments are written, and all but the last deleted.
    const LATE: usize = 300;
    send(&producer, "late", LATE).await;
    // Wait until the minimums have passed the group and retention has settled (no change over
    // several passes), so that what the group reads next is exactly what is kept.
    let deadline = Instant::now() + WAIT;
    let mut previous = Vec::new();
    loop {
        let mut mins = Vec::new();
        for q in 0..QUEUES {
            mins.push(admin.min_offset(&queue(&broker_name, q)).await.unwrap());
        }
        let passed = mins.iter().zip(&committed).all(|(min, c)| min > c);
        if passed && mins == previous {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "retention never passed the group: {mins:?}"
        );
        previous = mins;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut kept = 0;
    for q in 0..QUEUES {
        let mq = queue(&broker_name, q);
        kept += admin.max_offset(&mq).await.unwrap() - admin.min_offset(&mq).await.unwrap();
    }
    assert!(kept > 0 && kept < LATE as i64, "{kept}");

    // Back again: its committed offsets are gone from the log; it is moved, and reads the rest.
    let late_seen: KeyCounts = Arc::default();
    let c = counting_consumer(&ns, GROUP, "retention-c", TOPIC, late_seen.clone());
    c.start().await.unwrap();
    wait_for("every message still kept", || {
        late_seen.lock().unwrap().len() as i64 >= kept
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    {
        let late_seen = late_seen.lock().unwrap();
        assert_eq!(late_seen.len() as i64, kept, "nothing below the minimum");
        assert!(late_seen.values().all(|&t| t == 1), "each once");
        assert!(late_seen.contains_key(&format!("late-{}", LATE - 1)));
        assert!(late_seen.keys().all(|k| k.starts_with("late-")));
    }
    // Its progress is committed from the new minimum on, up to the end of each queue.
    c.shutdown().await;
    for q in 0..QUEUES {
        let mq = queue(&broker_name, q);
        let max = admin.max_offset(&mq).await.unwrap();
        assert_eq!(admin.consumer_offset(GROUP, &mq).await.unwrap(), Some(max));
    }
    producer.shutdown().await;
    petrel.shutdown().await.unwrap();
}
