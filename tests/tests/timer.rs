//! Delivery at any time (RocketMQ 5.x timer properties `TIMER_DELIVER_MS`, `TIMER_DELAY_SEC`,
//! `TIMER_DELAY_MS`) against a real broker: never early, late by at most the shortest delay
//! level, across a broker restart, and a clear error for a time too far ahead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use petrel::standalone::StandaloneConfig;
use petrel_client::{
    ClientConfig, ClientError, ConsumeFromWhere, ConsumeStatus, Message, MessageExt, PushConsumer,
};
use petrel_common::msg_id::now_ms;
use petrel_common::properties::{TIMER_DELAY_MS, TIMER_DELAY_SEC, TIMER_DELIVER_MS};
use petrel_remoting::code::response;
use petrel_tests::{wait_for, Standalone};

/// Short levels keep the test fast; the shortest (100 ms) bounds how late a timer may be.
const LEVELS: &str = "100ms 300ms 1s 3s";
/// How late a delivery may be on a loaded machine: the shortest level, the schedule scan, the
/// consumer's pull, plus slack for a busy CI runner.
const LATE: i64 = 1_500;

/// Arrival time (epoch ms) of each key, and how often it came.
type Arrivals = Arc<Mutex<HashMap<String, (i64, u32)>>>;

/// A standalone with the short levels and `topic` created, so consumers find its route at once.
async fn start(dir: &std::path::Path, topic: &str) -> Standalone {
    let mut config = StandaloneConfig::ephemeral(dir);
    config.message_delay_level = Some(LEVELS.to_owned());
    let petrel = Standalone::start_with(config).await.unwrap();
    petrel.create_topic(topic, 2).await.unwrap();
    petrel
}

fn consumer(ns: &str, group: &str, topic: &str, arrivals: Arrivals) -> PushConsumer {
    let mut c = PushConsumer::new(group, ClientConfig::new(ns).with_instance_name(group));
    c.subscribe(topic, "*").unwrap();
    c.set_consume_from(ConsumeFromWhere::FirstOffset);
    c.register_listener(move |msgs: &[MessageExt]| {
        let now = now_ms() as i64;
        let mut a = arrivals.lock().unwrap();
        for m in msgs {
            let e = a
                .entry(m.keys().unwrap_or_default().to_owned())
                .or_insert((now, 0));
            e.1 += 1;
        }
        ConsumeStatus::Success
    });
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timer_messages_arrive_at_their_time_never_early() {
    let dir = tempfile::tempdir().unwrap();
    let topic = "TimerTopic";
    let petrel = start(dir.path(), topic).await;
    let ns = petrel.namesrv_addr.clone();
    let producer = petrel.producer("timer-pg").await.unwrap();
    let arrivals: Arrivals = Arc::default();
    let c = consumer(&ns, "timer-cg", topic, arrivals.clone());
    c.start().await.unwrap();

    let now = now_ms() as i64;
    // (key, property, value, due time)
    let cases = [
        (
            "at-1200",
            TIMER_DELIVER_MS,
            (now + 1_200).to_string(),
            now + 1_200,
        ),
        ("in-500ms", TIMER_DELAY_MS, "500".to_owned(), now + 500),
        ("in-2s", TIMER_DELAY_SEC, "2".to_owned(), now + 2_000),
        (
            "in-the-past",
            TIMER_DELIVER_MS,
            (now - 5_000).to_string(),
            now,
        ),
    ];
    for (key, name, value, _) in &cases {
        let msg = Message::new(topic, key.as_bytes().to_vec())
            .with_keys(*key)
            .with_property(*name, value.clone());
        producer.send(msg).await.unwrap();
    }
    wait_for("every timer message", || {
        arrivals.lock().unwrap().len() == cases.len()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let arrivals = arrivals.lock().unwrap().clone();
    for (key, _, _, due) in &cases {
        let (at, times) = arrivals[*key];
        eprintln!("{key}: delivered {} ms after its time", at - due);
        assert_eq!(times, 1, "{key} arrived {times} times");
        assert!(at >= *due, "{key} arrived {} ms early", due - at);
        assert!(at <= due + LATE, "{key} arrived {} ms late", at - due);
    }
    let mut order: Vec<_> = arrivals
        .iter()
        .map(|(k, (at, _))| (*at, k.clone()))
        .collect();
    order.sort();
    let order: Vec<_> = order.into_iter().map(|(_, k)| k).collect();
    assert_eq!(order, ["in-the-past", "in-500ms", "at-1200", "in-2s"]);

    // Further ahead than timerMaxDelaySec (3 days): refused, with the reason.
    let far = Message::new(topic, b"far".to_vec())
        .with_property(TIMER_DELAY_SEC, (4 * 86_400).to_string());
    match producer.send(far).await.unwrap_err() {
        ClientError::Broker { code, remark } => {
            assert_eq!(code, response::MESSAGE_ILLEGAL);
            assert!(remark.contains("timerMaxDelaySec"), "{remark}");
        }
        other => panic!("unexpected error: {other}"),
    }
    c.shutdown().await;
    producer.shutdown().await;
    petrel.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_message_survives_a_broker_restart_while_it_waits() {
    let dir = tempfile::tempdir().unwrap();
    let topic = "TimerRestart";
    let mut petrel = start(dir.path(), topic).await;
    let ns = petrel.namesrv_addr.clone();
    let producer = petrel.producer("timer-pg2").await.unwrap();
    let due = now_ms() as i64 + 4_500;
    let msg = Message::new(topic, b"later".to_vec())
        .with_keys("later")
        .with_property(TIMER_DELIVER_MS, due.to_string());
    producer.send(msg).await.unwrap();
    // Mid-way through its hops (3 s level, then 1 s, then 300 ms ...).
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    petrel.restart().await.unwrap();

    let arrivals: Arrivals = Arc::default();
    let c = consumer(&ns, "timer-cg2", topic, arrivals.clone());
    c.start().await.unwrap();
    wait_for("the timer message after the restart", || {
        arrivals.lock().unwrap().contains_key("later")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (at, times) = arrivals.lock().unwrap()["later"];
    assert_eq!(times, 1);
    assert!(at >= due, "arrived {} ms early", due - at);
    c.shutdown().await;
    producer.shutdown().await;
    petrel.shutdown().await.unwrap();
}
