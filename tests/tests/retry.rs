//! Per-message retry, delay levels and dead letters against a real standalone broker with short
//! delay levels: a failed message is sent back and comes again later without holding its queue;
//! one failed too often lands in `%DLQ%<group>`; `DELAY` messages are neither early nor late;
//! delay progress survives a restart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use petrel::standalone::StandaloneConfig;
use petrel_client::{
    ClientConfig, ConsumeFromWhere, ConsumeStatus, Message, MessageExt, MessageQueue, Producer,
    PullConsumer, PullStatus, PushConsumer,
};
use petrel_common::msg_id::now_ms;
use petrel_tests::{wait_for, Standalone};

const WAIT: Duration = Duration::from_secs(30);
/// Level 1 = 100 ms, level 2 = 1 s (the delayed-send tests), 3 = 300 ms (first retry), …
const SHORT_LEVELS: &str =
    "100ms 1s 300ms 400ms 500ms 600ms 700ms 800ms 900ms 1s 1s 1s 1s 1s 1s 1s 1s 1s";
const BROKER_NAME: &str = "broker-a";

async fn start(dir: &std::path::Path) -> Standalone {
    let mut config = StandaloneConfig::ephemeral(dir);
    config.message_delay_level = Some(SHORT_LEVELS.to_owned());
    Standalone::start_with(config).await.unwrap()
}

fn push_consumer(ns: &str, group: &str, topic: &str) -> PushConsumer {
    let mut c = PushConsumer::new(group, ClientConfig::new(ns).with_instance_name(group));
    c.subscribe(topic, "*").unwrap();
    c.set_consume_from(ConsumeFromWhere::FirstOffset);
    // The retry topic is created by the first heartbeat; find its route soon after.
    c.options.rebalance_interval = Duration::from_millis(300);
    c
}

async fn producer(ns: &str, group: &str) -> Producer {
    let p = Producer::new(group, ClientConfig::new(ns).with_instance_name(group));
    p.start().await.unwrap();
    p
}

/// Everything in `mq` from offset 0, pulled until `n` messages are there or `WAIT` passes.
async fn pull_all(reader: &PullConsumer, mq: &MessageQueue, n: usize) -> Vec<MessageExt> {
    let deadline = Instant::now() + WAIT;
    let mut out = Vec::new();
    let mut offset = 0;
    while out.len() < n {
        assert!(
            Instant::now() < deadline,
            "timed out pulling {mq:?}: {} of {n}",
            out.len()
        );
        match reader.pull(mq, offset, 32).await {
            Ok(r) => {
                if let PullStatus::Found(msgs) = r.status {
                    out.extend(msgs);
                }
                offset = r.next_begin_offset;
            }
            Err(e) => tracing::debug!("pull failed (retrying): {e}"),
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    out
}

fn queue(topic: &str, queue_id: i32) -> MessageQueue {
    MessageQueue {
        topic: topic.to_owned(),
        broker_name: BROKER_NAME.to_owned(),
        queue_id,
    }
}

/// Per key: wall-clock ms of each delivery and the reconsume times and topic it came with.
type Deliveries = Arc<Mutex<HashMap<String, Vec<(i64, i32, String)>>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_message_comes_back_later_without_holding_up_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let petrel = start(dir.path()).await;
    let ns = petrel.namesrv_addr.clone();
    let topic = "RetryOrders";
    let admin = petrel_client::admin::Admin::new(ClientConfig::new(&ns));
    admin
        .create_topic(&petrel.broker_addr, topic, 2)
        .await
        .unwrap();

    let seen: Deliveries = Arc::default();
    let mut c = push_consumer(&ns, "retry-cg", topic);
    {
        let seen = seen.clone();
        c.register_listener(move |msgs: &[MessageExt]| {
            let now = now_ms() as i64;
            let mut seen = seen.lock().unwrap();
            let mut status = ConsumeStatus::Success;
            for m in msgs {
                let key = m.keys().unwrap().to_owned();
                let i: usize = key[1..].parse().unwrap();
                seen.entry(key)
                    .or_default()
                    .push((now, m.reconsume_times, m.topic.clone()));
                if i.is_multiple_of(3) && m.reconsume_times == 0 {
                    status = ConsumeStatus::Later;
                }
            }
            status
        });
    }
    c.start().await.unwrap();

    let p = producer(&ns, "retry-pg").await;
    let n = 300;
    let sent_at = Instant::now();
    for i in 0..n {
        let m = Message::new(topic, format!("body-{i}"))
            .with_keys(format!("k{i}"))
            .with_tags("TagA");
        p.send(m).await.unwrap();
    }
    let healthy = (0..n).filter(|i| i % 3 != 0).count();
    let healthy_seen = |seen: &Deliveries| {
        let seen = seen.lock().unwrap();
        (0..n)
            .filter(|i| i % 3 != 0 && seen.contains_key(&format!("k{i}")))
            .count()
    };
    wait_for("the healthy messages", || healthy_seen(&seen) == healthy).await;
    let healthy_done = sent_at.elapsed();

    wait_for("every failed message to come back", || {
        let seen = seen.lock().unwrap();
        (0..n)
            .filter(|i| i % 3 == 0)
            .all(|i| seen.get(&format!("k{i}")).is_some_and(|d| d.len() >= 2))
    })
    .await;
    let all_done = sent_at.elapsed();
    let seen = seen.lock().unwrap().clone();
    for i in 0..n {
        let d = &seen[&format!("k{i}")];
        if i % 3 != 0 {
            assert_eq!(d.len(), 1, "k{i} was consumed once: {d:?}");
            continue;
        }
        assert_eq!(d.len(), 2, "k{i} failed once and came back once: {d:?}");
        let (failed_at, first_times, _) = d[0];
        let (back_at, times, ref back_topic) = d[1];
        assert_eq!(first_times, 0);
        assert_eq!(times, 1, "k{i} came back with reconsume_times 1");
        assert_eq!(back_topic, topic, "a retry shows its original topic");
        // First retry: level 3 + 0 = 300 ms after the send-back was stored.
        assert!(
            back_at - failed_at >= 290,
            "k{i} came back after {} ms, before its 300 ms delay",
            back_at - failed_at
        );
    }
    eprintln!(
        "{n} messages, every third failed once: healthy ones all consumed {healthy_done:?} \
         after the first send, the failed ones back by {all_done:?}"
    );
    c.shutdown().await;
    p.shutdown().await;
    petrel.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_failed_max_times_lands_in_the_dead_letter_queue() {
    let dir = tempfile::tempdir().unwrap();
    let petrel = start(dir.path()).await;
    let ns = petrel.namesrv_addr.clone();
    let topic = "DlqOrders";
    let group = "dlq-cg";
    let admin = petrel_client::admin::Admin::new(ClientConfig::new(&ns));
    admin
        .create_topic(&petrel.broker_addr, topic, 1)
        .await
        .unwrap();

    let attempts: Arc<Mutex<Vec<i32>>> = Arc::default();
    let mut c = push_consumer(&ns, group, topic);
    c.options.max_reconsume_times = 2;
    {
        let attempts = attempts.clone();
        c.register_listener(move |msgs: &[MessageExt]| {
            let mut a = attempts.lock().unwrap();
            a.extend(msgs.iter().map(|m| m.reconsume_times));
            ConsumeStatus::Later
        });
    }
    c.start().await.unwrap();

    let p = producer(&ns, "dlq-pg").await;
    let sent = p
        .send(
            Message::new(topic, "poison")
                .with_keys("poison-1")
                .with_tags("TagP")
                .with_flag(7)
                .with_property("origin", "test"),
        )
        .await
        .unwrap();

    let deadline = Instant::now() + WAIT;
    while attempts.lock().unwrap().len() < 3 {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for three attempts, saw reconsume times {:?}",
            attempts.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reader = PullConsumer::new("dlq-reader", ClientConfig::new(&ns).with_instance_name("r"));
    reader.start().await.unwrap();
    let dlq = format!("%DLQ%{group}");
    let dead = pull_all(&reader, &queue(&dlq, 0), 1).await;
    assert_eq!(dead.len(), 1);
    let m = &dead[0];
    assert_eq!(m.topic, dlq);
    assert_eq!(&m.body[..], b"poison");
    assert_eq!(m.flag, 7);
    assert_eq!(m.tags(), Some("TagP"));
    assert_eq!(m.keys(), Some("poison-1"));
    assert_eq!(m.property("origin"), Some("test"));
    assert_eq!(m.msg_id(), sent.msg_id, "the UNIQ_KEY is kept");
    assert_eq!(m.property("RETRY_TOPIC"), Some(topic));
    assert_eq!(
        m.property("ORIGIN_MESSAGE_ID"),
        Some(sent.offset_msg_id.as_str())
    );
    assert_eq!(m.property("DELAY"), None);
    assert_eq!(m.reconsume_times, 3);
    assert_eq!(
        *attempts.lock().unwrap(),
        vec![0, 1, 2],
        "consumed once and retried twice, then dead"
    );

    // Nothing else arrives: the dead letter is not retried.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(attempts.lock().unwrap().len(), 3);
    reader.shutdown().await;
    c.shutdown().await;
    p.shutdown().await;
    petrel.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delayed_message_is_neither_early_nor_late() {
    let dir = tempfile::tempdir().unwrap();
    let petrel = start(dir.path()).await;
    let ns = petrel.namesrv_addr.clone();
    let topic = "DelayedOrders";
    let admin = petrel_client::admin::Admin::new(ClientConfig::new(&ns));
    admin
        .create_topic(&petrel.broker_addr, topic, 4)
        .await
        .unwrap();
    let p = producer(&ns, "delay-pg").await;
    let reader = PullConsumer::new(
        "delay-reader",
        ClientConfig::new(&ns).with_instance_name("r"),
    );
    reader.start().await.unwrap();

    let mq = queue(topic, 2);
    let before = now_ms() as i64;
    p.send_to_queue(
        Message::new(topic, "later")
            .with_keys("d-1")
            .with_tags("TagD")
            .with_property("DELAY", "2"),
        &mq,
    )
    .await
    .unwrap();
    let after = now_ms() as i64;

    // Level 2 is 1 s: nothing on the real queue for most of it.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let early = reader.pull(&mq, 0, 32).await.unwrap();
    assert!(
        !matches!(early.status, PullStatus::Found(_)),
        "delivered before its due time"
    );

    let got = pull_all(&reader, &mq, 1).await;
    let seen_at = now_ms() as i64;
    let m = &got[0];
    assert_eq!(m.topic, topic);
    assert_eq!(m.queue_id, 2);
    assert_eq!(&m.body[..], b"later");
    assert_eq!(m.keys(), Some("d-1"));
    assert_eq!(m.tags(), Some("TagD"));
    for gone in ["DELAY", "REAL_TOPIC", "REAL_QID"] {
        assert_eq!(m.property(gone), None, "{gone} is removed on delivery");
    }
    // Due between `before + 1 s` and `after + 1 s`; re-posted (stored) within 100 ms of that.
    let lateness = m.store_timestamp - (before + 1000);
    assert!(
        m.store_timestamp >= before + 1000,
        "delivered {} ms early",
        -lateness
    );
    assert!(
        m.store_timestamp <= after + 1000 + 100,
        "delivered {} ms after the earliest due time (send took {} ms)",
        lateness,
        after - before
    );
    eprintln!(
        "DELAY=2 (1 s): re-posted {lateness} ms after the earliest possible due time, \
         pulled {} ms after it",
        seen_at - (before + 1000)
    );
    reader.shutdown().await;
    p.shutdown().await;
    petrel.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_progress_survives_a_broker_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut petrel = start(dir.path()).await;
    let ns = petrel.namesrv_addr.clone();
    let topic = "DelayedAcrossRestart";
    let admin = petrel_client::admin::Admin::new(ClientConfig::new(&ns));
    admin
        .create_topic(&petrel.broker_addr, topic, 1)
        .await
        .unwrap();
    let mq = queue(topic, 0);
    let p = producer(&ns, "restart-pg").await;
    let reader = PullConsumer::new(
        "restart-reader",
        ClientConfig::new(&ns).with_instance_name("r"),
    );
    reader.start().await.unwrap();

    // Five quick ones (100 ms) are delivered before the restart, so progress is not zero.
    for i in 0..5 {
        let m = Message::new(topic, "quick")
            .with_keys(format!("q{i}"))
            .with_property("DELAY", "1");
        p.send_to_queue(m, &mq).await.unwrap();
    }
    assert_eq!(pull_all(&reader, &mq, 5).await.len(), 5);

    // Twenty slow ones (1 s) are still pending when the broker stops.
    let before = now_ms() as i64;
    for i in 0..20 {
        let m = Message::new(topic, "slow")
            .with_keys(format!("s{i}"))
            .with_property("DELAY", "2");
        p.send_to_queue(m, &mq).await.unwrap();
    }
    petrel.restart().await.unwrap();
    assert!(
        (now_ms() as i64) < before + 1000,
        "the restart took longer than the delay; the test proves nothing"
    );

    let all = pull_all(&reader, &mq, 25).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = pull_all(&reader, &mq, 25).await;
    assert_eq!(again.len(), 25, "nothing is delivered twice");
    let mut keys: Vec<&str> = all.iter().map(|m| m.keys().unwrap()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 25);
    for m in all.iter().filter(|m| m.keys().unwrap().starts_with('s')) {
        assert!(m.store_timestamp >= before + 1000, "delivered early");
    }
    reader.shutdown().await;
    p.shutdown().await;
    petrel.shutdown().await.unwrap();
}

/// The broker side of the client's fallback: an ordinary send to `%RETRY%<group>` is delayed by
/// its DELAY level, and one whose reconsume times exceed its max goes to the dead-letter queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_send_to_a_retry_topic_is_delayed_or_dead_lettered() {
    use petrel_common::properties::Properties;
    use petrel_remoting::code::{request, response};
    use petrel_remoting::headers::SendMessageRequestHeaderV2;
    use petrel_remoting::RemotingCommand;

    let dir = tempfile::tempdir().unwrap();
    let petrel = start(dir.path()).await;
    let ns = petrel.namesrv_addr.clone();
    let instance = petrel_client::ClientInstance::new(ClientConfig::new(&ns));
    instance.start().unwrap();
    let group = "raw-cg";
    let send = |reconsume_times: i32, delay: &str, key: &str| {
        let mut props = Properties::new();
        props.insert("KEYS", key);
        props.insert("RETRY_TOPIC", "RawOrders");
        props.insert("DELAY", delay);
        let header = SendMessageRequestHeaderV2 {
            producer_group: "CLIENT_INNER_PRODUCER".into(),
            topic: format!("%RETRY%{group}"),
            default_topic: "TBW102".into(),
            default_topic_queue_nums: 4,
            queue_id: 0,
            sys_flag: 0,
            born_timestamp: now_ms() as i64,
            flag: 0,
            properties: Some(props.as_str().to_owned()),
            reconsume_times: Some(reconsume_times),
            unit_mode: Some(false),
            max_reconsume_times: Some(2),
            batch: Some(false),
            broker_name: Some(BROKER_NAME.into()),
        };
        RemotingCommand::request_with_header(request::SEND_MESSAGE_V2, &header)
            .with_body(bytes::Bytes::from_static(b"raw"))
    };
    let timeout = Duration::from_secs(5);
    let resp = instance
        .invoke(&petrel.broker_addr, send(1, "1", "retry-me"), timeout)
        .await
        .unwrap();
    assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
    let resp = instance
        .invoke(&petrel.broker_addr, send(3, "5", "dead"), timeout)
        .await
        .unwrap();
    assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);

    let reader = PullConsumer::new("raw-reader", ClientConfig::new(&ns).with_instance_name("r"));
    reader.start().await.unwrap();
    let dead = pull_all(&reader, &queue(&format!("%DLQ%{group}"), 0), 1).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].keys(), Some("dead"));
    assert_eq!(dead[0].property("DELAY"), Some("-1"));
    assert_eq!(dead[0].reconsume_times, 3);

    let retried = pull_all(&reader, &queue(&format!("%RETRY%{group}"), 0), 1).await;
    assert_eq!(retried.len(), 1);
    let m = &retried[0];
    assert_eq!(m.keys(), Some("retry-me"));
    assert_eq!(m.reconsume_times, 1);
    assert_eq!(m.property("RETRY_TOPIC"), Some("RawOrders"));
    assert_eq!(m.property("DELAY"), None);
    assert!(
        m.store_timestamp - m.born_timestamp >= 100,
        "delayed by level 1"
    );
    reader.shutdown().await;
    instance.shutdown();
    petrel.shutdown().await.unwrap();
}
