//! Petrel standalone driven by Petrel's own Rust client: produce, consume with a group of two,
//! restart in the middle, offsets resumed, long polling latency, and clear errors.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use petrel_client::{
    ClientConfig, ConsumeFromWhere, ConsumeStatus, Message, MessageExt, Producer, PushConsumer,
};
use petrel_remoting::code::response;
use petrel_tests::{wait_for, Standalone};

/// What a listener saw: key → (body, tag, times delivered).
type Seen = Arc<Mutex<HashMap<String, (Vec<u8>, String, u32)>>>;

fn consumer(ns: &str, group: &str, instance: &str, topic: &str, seen: Seen) -> PushConsumer {
    let config = ClientConfig::new(ns).with_instance_name(instance);
    let mut c = PushConsumer::new(group, config);
    c.subscribe(topic, "*").unwrap();
    c.set_consume_from(ConsumeFromWhere::FirstOffset);
    c.options.offset_commit_interval = Duration::from_millis(200);
    c.register_listener(move |msgs: &[MessageExt]| {
        let mut seen = seen.lock().unwrap();
        for m in msgs {
            let key = m.keys().unwrap_or_default().to_owned();
            let entry = seen
                .entry(key)
                .or_insert_with(|| (m.body.to_vec(), m.tags().unwrap_or_default().to_owned(), 0));
            entry.2 += 1;
        }
        ConsumeStatus::Success
    });
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_of_two_receives_every_message_across_a_broker_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut petrel = Standalone::start(dir.path()).await.unwrap();
    let ns = petrel.namesrv_addr.clone();
    let topic = "OwnClientOrders";
    let admin = petrel_client::admin::Admin::new(ClientConfig::new(&ns));
    admin
        .create_topic(&petrel.broker_addr, topic, 4)
        .await
        .unwrap();

    // The group settles first, so no rebalance happens while the first half is consumed.
    let seen: Seen = Arc::default();
    let c1 = consumer(&ns, "own-cg", "c1", topic, seen.clone());
    let c2 = consumer(&ns, "own-cg", "c2", topic, seen.clone());
    c1.start().await.unwrap();
    c2.start().await.unwrap();
    wait_for("the queues to be split between both consumers", || {
        let of_topic = |c: &PushConsumer| {
            c.assigned_queues()
                .iter()
                .filter(|q| q.topic == topic)
                .count()
        };
        of_topic(&c1) == 2 && of_topic(&c2) == 2
    })
    .await;

    let producer = Producer::new("own-pg", ClientConfig::new(&ns).with_instance_name("p"));
    producer.start().await.unwrap();
    let mut acked = HashMap::new();
    for i in 0..1000 {
        if i == 500 {
            // Everything before the restart arrives exactly once: a stable group never repeats.
            wait_for("the first half", || seen.lock().unwrap().len() == 500).await;
            let before = seen.lock().unwrap().clone();
            assert!(before.values().all(|(_, _, times)| *times == 1));
            petrel.restart().await.unwrap();
        }
        let tag = if i % 2 == 0 { "TagA" } else { "TagB" };
        let key = format!("key-{i}");
        let body = format!("body-{i}").into_bytes();
        let msg = Message::new(topic, body.clone())
            .with_tags(tag)
            .with_keys(key.clone());
        let result = producer.send(msg).await;
        assert!(result.is_ok(), "send {i} failed: {:?}", result.err());
        acked.insert(key, (body, tag.to_owned()));
    }

    wait_for("every acknowledged message", || {
        let seen = seen.lock().unwrap();
        acked.keys().all(|k| seen.contains_key(k))
    })
    .await;
    let seen = seen.lock().unwrap().clone();
    let mut repeated = 0;
    for (key, (body, tag)) in &acked {
        let (got_body, got_tag, times) = &seen[key];
        assert_eq!(got_body, body, "body of {key}");
        assert_eq!(got_tag, tag, "tag of {key}");
        repeated += times - 1;
    }
    // RocketMQ promises at-least-once; Petrel does better across a restart: the broker lets the
    // group re-register before telling anyone to rebalance, so no queue gets two owners.
    assert_eq!(seen.len(), 1000);
    assert_eq!(repeated, 0, "deliveries repeated around the restart");
    c1.shutdown().await;
    c2.shutdown().await;
    producer.shutdown().await;
    petrel.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_consumer_resumes_from_its_committed_offset() {
    let dir = tempfile::tempdir().unwrap();
    let petrel = Standalone::start(dir.path()).await.unwrap();
    let ns = petrel.namesrv_addr.clone();
    let topic = "ResumeTopic";
    let producer = Producer::new("resume-pg", ClientConfig::new(&ns));
    producer.start().await.unwrap();
    let send = |range: std::ops::Range<i32>| {
        let producer = &producer;
        async move {
            for i in range {
                let msg = Message::new(topic, format!("m{i}")).with_keys(format!("k{i}"));
                producer.send(msg).await.unwrap();
            }
        }
    };
    send(0..50).await;
    let seen: Seen = Arc::default();
    let c = consumer(&ns, "resume-cg", "r1", topic, seen.clone());
    c.start().await.unwrap();
    wait_for("the first 50", || seen.lock().unwrap().len() == 50).await;
    c.shutdown().await;

    send(50..80).await;
    let seen2: Seen = Arc::default();
    let c = consumer(&ns, "resume-cg", "r1", topic, seen2.clone());
    c.start().await.unwrap();
    wait_for("the next 30", || seen2.lock().unwrap().len() == 30).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen2 = seen2.lock().unwrap().clone();
    assert_eq!(seen2.len(), 30, "only the new messages are delivered again");
    assert!((50..80).all(|i| seen2.contains_key(&format!("k{i}"))));
    c.shutdown().await;
    producer.shutdown().await;
    petrel.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_consumer_gets_a_new_message_within_50ms() {
    let dir = tempfile::tempdir().unwrap();
    let petrel = Standalone::start(dir.path()).await.unwrap();
    let ns = petrel.namesrv_addr.clone();
    let topic = "LatencyTopic";
    let admin = petrel_client::admin::Admin::new(ClientConfig::new(&ns));
    admin
        .create_topic(&petrel.broker_addr, topic, 1)
        .await
        .unwrap();
    let producer = Producer::new("lat-pg", ClientConfig::new(&ns));
    producer.start().await.unwrap();

    let arrived: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let a = arrived.clone();
    let mut c = PushConsumer::new("lat-cg", ClientConfig::new(&ns));
    c.subscribe(topic, "*").unwrap();
    c.register_listener(move |msgs: &[MessageExt]| {
        a.lock()
            .unwrap()
            .extend(msgs.iter().map(|_| Instant::now()));
        ConsumeStatus::Success
    });
    c.start().await.unwrap();
    // Let the consumer's pull reach the broker and park there.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut worst = Duration::ZERO;
    for i in 0..5 {
        let sent = Instant::now();
        producer
            .send(Message::new(topic, format!("ping{i}")))
            .await
            .unwrap();
        wait_for("the message", || arrived.lock().unwrap().len() > i).await;
        let latency = arrived.lock().unwrap()[i].duration_since(sent);
        worst = worst.max(latency);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        worst < Duration::from_millis(50),
        "worst send-to-listener latency {worst:?}"
    );
    c.shutdown().await;
    producer.shutdown().await;
    petrel.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_message_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let petrel = Standalone::start(dir.path()).await.unwrap();
    let producer = Producer::new("big-pg", ClientConfig::new(&petrel.namesrv_addr));
    producer.start().await.unwrap();
    producer
        .send(Message::new("BigTopic", "warm-up"))
        .await
        .unwrap();
    let err = producer
        .send(Message::new("BigTopic", vec![1u8; 4 * 1024 * 1024 + 1]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(response::MESSAGE_ILLEGAL), "{err}");
    assert!(err.to_string().contains("maxMessageSize"), "{err}");
    // The producer and broker go on serving.
    producer
        .send(Message::new("BigTopic", "after"))
        .await
        .unwrap();
    producer.shutdown().await;
    petrel.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_lands_in_one_queue_at_consecutive_offsets_and_is_consumed_whole() {
    let dir = tempfile::tempdir().unwrap();
    let petrel = Standalone::start(dir.path()).await.unwrap();
    let ns = petrel.namesrv_addr.clone();
    let topic = "BatchTopic";
    let producer = Producer::new("batch-pg", ClientConfig::new(&ns));
    producer.start().await.unwrap();
    producer.send(Message::new(topic, "warm-up")).await.unwrap();
    let mut results = Vec::new();
    for b in 0..3 {
        let msgs = (0..10)
            .map(|i| {
                Message::new(topic, format!("b{b}-{i}"))
                    .with_keys(format!("k{b}-{i}"))
                    .with_tags("batched")
            })
            .collect();
        let r = producer.send_batch(msgs).await.unwrap();
        assert_eq!(r.msg_id.split(',').count(), 10, "{}", r.msg_id);
        results.push(r);
    }

    // key → (body, tag, queue id, queue offset)
    type Where = Arc<Mutex<HashMap<String, (Vec<u8>, String, i32, i64)>>>;
    let seen: Where = Arc::default();
    let s = seen.clone();
    let mut c = PushConsumer::new("batch-cg", ClientConfig::new(&ns));
    c.subscribe(topic, "batched").unwrap();
    c.set_consume_from(ConsumeFromWhere::FirstOffset);
    c.register_listener(move |msgs: &[MessageExt]| {
        let mut s = s.lock().unwrap();
        for m in msgs {
            let key = m.keys().unwrap_or_default().to_owned();
            let tag = m.tags().unwrap_or_default().to_owned();
            let at = (m.body.to_vec(), tag, m.queue_id, m.queue_offset);
            assert!(s.insert(key, at).is_none(), "delivered twice");
        }
        ConsumeStatus::Success
    });
    c.start().await.unwrap();
    wait_for("the 30 batched messages", || {
        seen.lock().unwrap().len() == 30
    })
    .await;
    let seen = seen.lock().unwrap().clone();
    for (b, r) in results.iter().enumerate() {
        for i in 0..10 {
            let (body, tag, queue_id, offset) = &seen[&format!("k{b}-{i}")];
            assert_eq!(body, format!("b{b}-{i}").as_bytes());
            assert_eq!(tag, "batched");
            assert_eq!(*queue_id, r.queue.queue_id, "batch {b} is in one queue");
            assert_eq!(*offset, r.queue_offset + i as i64, "batch {b}, message {i}");
        }
    }
    c.shutdown().await;

    // What a batch cannot hold is refused before anything is sent.
    assert!(producer.send_batch(Vec::new()).await.is_err());
    let mixed = vec![Message::new(topic, "a"), Message::new("OtherTopic", "b")];
    assert!(producer.send_batch(mixed).await.is_err());
    let delayed = vec![Message::new(topic, "d").with_delay(Duration::from_secs(5))];
    let err = producer.send_batch(delayed).await.unwrap_err();
    assert!(err.to_string().contains("delayed"), "{err}");
    producer.shutdown().await;
    petrel.shutdown().await.unwrap();
}
