//! Timers across kill -9, against the real `petrel standalone` binary: 10,000 timer messages
//! with random delivery times, the process SIGKILLed while some have been delivered and most
//! wait in the wheel, restarted on the same data directory. Every timer must arrive, never
//! before its time; only one due before the kill may arrive twice (the crash window); the ones
//! due after the restart arrive within 100 ms of their time (p99, as the broker stores them).

#[allow(dead_code)] // each test binary uses part of the helpers
mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{read_topic, Petrel};
use parking_lot::Mutex;
use petrel_client::{Message, Producer, SendStatus};
use petrel_common::msg_id::now_ms;
use petrel_common::properties::TIMER_DELIVER_MS;
use rand::Rng;

const TOPIC: &str = "TimerCrash";
const QUEUES: i32 = 4;
const TIMERS: usize = 10_000;
const SENDERS: usize = 8;
/// Each timer is due this long after its send: a random point in [min, max).
const DELAY_MIN_MS: i64 = 1_000;
const DELAY_MAX_MS: i64 = 12_000;
/// The kill lands this long after the last send.
const KILL_AFTER_SENDS: Duration = Duration::from_secs(2);
/// After the last timer's time, how long delivery may take before the topic is read.
const SETTLE: Duration = Duration::from_secs(4);
/// Broker-side lateness allowed for timers due after the restart (store time − due time).
const P99_LATE_MS: i64 = 100;
const MAX_LATE_MS: i64 = 1_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_timers_survive_kill_9_each_delivered_on_time() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let petrel = Petrel::start(&data, "async");
    petrel.create_topic(TOPIC, QUEUES).await;

    // key -> due time
    let due: Arc<Mutex<HashMap<String, i64>>> = Arc::default();
    let producer = Arc::new(Producer::new(
        "petrel_timer_crash_producer",
        petrel.client_config("timer-crash"),
    ));
    producer.start().await.expect("start producer");
    let mut tasks = Vec::new();
    for s in 0..SENDERS {
        let (producer, due) = (Arc::clone(&producer), Arc::clone(&due));
        tasks.push(tokio::spawn(async move {
            for i in (s..TIMERS).step_by(SENDERS) {
                let at = now_ms() as i64 + rand::rng().random_range(DELAY_MIN_MS..DELAY_MAX_MS);
                let key = format!("timer-{i}");
                let msg = Message::new(TOPIC, format!("due at {at}"))
                    .with_keys(key.clone())
                    .with_property(TIMER_DELIVER_MS, at.to_string());
                let r = producer.send(msg).await.expect("send a timer");
                assert_eq!(r.status, SendStatus::SendOk);
                due.lock().insert(key, at);
            }
        }));
    }
    for t in tasks {
        t.await.expect("sender panicked");
    }
    let sent_at = Instant::now();
    producer.shutdown().await;
    let due = std::mem::take(&mut *due.lock());
    assert_eq!(due.len(), TIMERS);
    let last_due = *due.values().max().expect("timers");

    tokio::time::sleep(KILL_AFTER_SENDS).await;
    let killed_at = now_ms() as i64;
    let due_before_kill = due.values().filter(|&&t| t <= killed_at).count();
    petrel.kill_9();
    eprintln!(
        "sent {TIMERS} timers, killed {} ms after the last send with {due_before_kill} due",
        sent_at.elapsed().as_millis()
    );

    let petrel = Petrel::start(&data, "async");
    let up_at = now_ms() as i64;
    let wait = (last_due - up_at).max(0) as u64;
    tokio::time::sleep(Duration::from_millis(wait) + SETTLE).await;

    let stored = read_topic(&petrel, TOPIC).await;
    let mut seen: HashMap<String, u32> = HashMap::new();
    let mut late_after_restart = Vec::new();
    for m in stored.values().flatten() {
        let key = m.keys().expect("a key").to_owned();
        let at = due[&key];
        let stored_due: i64 = m
            .property(TIMER_DELIVER_MS)
            .expect("the delivered message keeps TIMER_DELIVER_MS")
            .parse()
            .expect("a number");
        assert_eq!(stored_due, at, "{key}: the due time it was sent with");
        assert!(
            m.store_timestamp >= at,
            "{key} delivered {} ms early",
            at - m.store_timestamp
        );
        if at > up_at + 1_000 {
            late_after_restart.push(m.store_timestamp - at);
        }
        *seen.entry(key).or_default() += 1;
    }
    let missing: Vec<_> = due.keys().filter(|k| !seen.contains_key(*k)).collect();
    assert!(
        missing.is_empty(),
        "{} timers lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    let twice: Vec<_> = seen.iter().filter(|(_, &n)| n > 1).collect();
    for (key, n) in &twice {
        assert!(
            due[*key] <= killed_at,
            "{key} arrived {n} times though it was due {} ms after the kill",
            due[*key] - killed_at
        );
    }
    late_after_restart.sort_unstable();
    let n = late_after_restart.len();
    assert!(
        n > TIMERS / 10,
        "too few timers due after the restart ({n})"
    );
    let p99 = late_after_restart[(n * 99 / 100).min(n - 1)];
    let max = late_after_restart[n - 1];
    eprintln!(
        "{} delivered twice (all due before the kill); {n} due after the restart: \
         p50 {} ms, p99 {p99} ms, max {max} ms late",
        twice.len(),
        late_after_restart[n / 2]
    );
    assert!(p99 <= P99_LATE_MS, "p99 lateness {p99} ms");
    assert!(max <= MAX_LATE_MS, "max lateness {max} ms");
    drop(petrel);
}
