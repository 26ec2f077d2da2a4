//! Delivery at any time (RocketMQ 5.x timer properties `TIMER_DELIVER_MS`, `TIMER_DELAY_SEC`,
//! `TIMER_DELAY_MS`, and the older `__STARTDELIVERTIME`) against a real broker: never early,
//! stored in its topic within 100 ms of its time, across a broker restart, and a clear error
//! for a time too far ahead. (kill -9 is in crates/cli/tests/timer_crash.rs.)

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use petrel::standalone::StandaloneConfig;
use petrel_client::{
    ClientConfig, ClientError, ConsumeFromWhere, ConsumeStatus, Message, MessageExt, PushConsumer,
};
use petrel_common::msg_id::now_ms;
use petrel_common::properties::{
    START_DELIVER_TIME, TIMER_DELAY_MS, TIMER_DELAY_SEC, TIMER_DELIVER_MS,
};
use petrel_remoting::code::response;
use petrel_tests::{wait_for, Standalone};

/// Timers do not use the levels; short ones keep a delay-level send in these tests fast.
const LEVELS: &str = "100ms 300ms 1s 3s";
/// How late the broker may store a timer message in its topic (the promise).
const STORED_LATE: i64 = 100;
/// How late a consumer may see it on a loaded machine: the above plus the consumer's pull and
/// slack for a busy CI runner.
const LATE: i64 = 1_500;

/// Per key: arrival time (epoch ms), how often it came, its store time and its
/// `TIMER_DELIVER_MS` as delivered.
type Arrivals = Arc<Mutex<HashMap<String, Arrival>>>;

#[derive(Debug, Clone, Copy)]
struct Arrival {
    at: i64,
    times: u32,
    stored: i64,
    deliver_ms: Option<i64>,
}

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
                .or_insert(Arrival {
                    at: now,
                    times: 0,
                    stored: m.store_timestamp,
                    deliver_ms: m.property(TIMER_DELIVER_MS).and_then(|v| v.parse().ok()),
                });
            e.times += 1;
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
            "legacy-at-2500",
            START_DELIVER_TIME,
            (now + 2_500).to_string(),
            now + 2_500,
        ),
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
        let a = arrivals[*key];
        eprintln!(
            "{key}: stored {} ms and consumed {} ms after its time",
            a.stored - due,
            a.at - due
        );
        assert_eq!(a.times, 1, "{key} arrived {} times", a.times);
        if *key == "in-the-past" {
            assert_eq!(
                a.deliver_ms,
                Some(now - 5_000),
                "a past time is not a timer"
            );
            continue;
        }
        // The broker's own time for relative asks: at or after the client's estimate.
        let due = a
            .deliver_ms
            .expect("TIMER_DELIVER_MS on the delivered message");
        assert!(due >= now, "{key}: due {due}");
        assert!(a.stored >= due, "{key} stored {} ms early", due - a.stored);
        assert!(
            a.stored <= due + STORED_LATE,
            "{key} stored {} ms late",
            a.stored - due
        );
        assert!(a.at >= due, "{key} arrived {} ms early", due - a.at);
        assert!(a.at <= due + LATE, "{key} arrived {} ms late", a.at - due);
    }
    let mut order: Vec<_> = arrivals.iter().map(|(k, a)| (a.at, k.clone())).collect();
    order.sort();
    let order: Vec<_> = order.into_iter().map(|(_, k)| k).collect();
    assert_eq!(
        order,
        [
            "in-the-past",
            "in-500ms",
            "at-1200",
            "in-2s",
            "legacy-at-2500"
        ]
    );

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
    // While it waits in the wheel; the clean stop checkpoints the wheel and the start trusts it.
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
    let a = arrivals.lock().unwrap()["later"];
    assert_eq!(a.times, 1);
    assert!(a.at >= due, "arrived {} ms early", due - a.at);
    assert!(
        a.stored >= due && a.stored <= due + STORED_LATE,
        "stored {} ms after its time",
        a.stored - due
    );
    c.shutdown().await;
    producer.shutdown().await;
    petrel.shutdown().await.unwrap();
}
