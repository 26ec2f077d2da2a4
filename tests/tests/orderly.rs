//! Orderly consumption with Petrel's own client against Petrel standalone: messages sent by
//! sharding key reach orderly consumers in per-key send order while consumers join and leave,
//! and a queue is never consumed by two clients at once.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use petrel_client::{
    ClientConfig, ConsumeFromWhere, ConsumeOrderlyStatus, Message, MessageExt, Producer,
    PullConsumer, PullStatus, PushConsumer,
};
use petrel_tests::{wait_for, Standalone};

const WAIT: Duration = Duration::from_secs(45);
const KEYS: usize = 100;
const PER_KEY: usize = 100;
/// Listener time per message, so that joins and leaves happen while there is work left.
const WORK_PER_MESSAGE: Duration = Duration::from_millis(2);
/// The broker does not push membership changes for this long after its start (its
/// `consumer_rejoin_grace`, 5 s by default); consumers start after it so that joins and leaves
/// move queues between live consumers at once.
const BROKER_REJOIN_GRACE: Duration = Duration::from_millis(5_500);

/// What the orderly listeners of all consumers observed.
#[derive(Default)]
struct Observed {
    /// key → sequence numbers in the order of their first delivery.
    first_deliveries: HashMap<usize, Vec<usize>>,
    delivered: HashSet<(usize, usize)>,
    duplicates: usize,
    /// queue id → the consumer inside the listener with a batch of it right now.
    in_flight: HashMap<i32, String>,
    /// Two consumers inside the listener with batches of one queue at the same time.
    overlaps: Vec<String>,
    per_consumer: HashMap<String, usize>,
    /// (key, seq) already suspended once.
    suspended: HashSet<(usize, usize)>,
}

fn parse(m: &MessageExt) -> (usize, usize) {
    let text = std::str::from_utf8(&m.body).unwrap();
    let (key, seq) = text.split_once(':').unwrap();
    (key.parse().unwrap(), seq.parse().unwrap())
}

fn orderly_consumer(
    ns: &str,
    group: &str,
    name: &str,
    topic: &str,
    seen: Arc<Mutex<Observed>>,
) -> PushConsumer {
    let config = ClientConfig::new(ns).with_instance_name(name);
    let mut c = PushConsumer::new(group, config);
    c.subscribe(topic, "*").unwrap();
    c.set_consume_from(ConsumeFromWhere::FirstOffset);
    c.options.offset_commit_interval = Duration::from_millis(200);
    c.options.suspend_current_queue_time = Duration::from_millis(20);
    c.options.lock_retry_delay = Duration::from_millis(100);
    let name = name.to_owned();
    c.register_orderly_listener(move |msgs: &[MessageExt]| {
        let queue_id = msgs[0].queue_id;
        {
            let mut o = seen.lock().unwrap();
            if let Some(other) = o.in_flight.insert(queue_id, name.clone()) {
                o.overlaps
                    .push(format!("queue {queue_id}: {other} and {name}"));
            }
        }
        std::thread::sleep(WORK_PER_MESSAGE * msgs.len() as u32);
        let mut o = seen.lock().unwrap();
        o.in_flight.remove(&queue_id);
        // Every 37th message is suspended once on its first delivery: it must be consumed again
        // in place, before the messages after it.
        for m in msgs {
            let (key, seq) = parse(m);
            if seq % 37 == 5 && o.suspended.insert((key, seq)) {
                return ConsumeOrderlyStatus::SuspendCurrentQueueAMoment;
            }
        }
        for m in msgs {
            let (key, seq) = parse(m);
            if o.delivered.insert((key, seq)) {
                o.first_deliveries.entry(key).or_default().push(seq);
            } else {
                o.duplicates += 1;
            }
        }
        *o.per_consumer.entry(name.clone()).or_default() += msgs.len();
        ConsumeOrderlyStatus::Success
    });
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_messages_arrive_in_send_order_while_consumers_join_and_leave() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let petrel = Standalone::start(dir.path()).await.unwrap();
    let ns = petrel.namesrv_addr.clone();
    let topic = "OrderlyOrders";
    let group = "orderly-cg";
    let admin = petrel_client::admin::Admin::new(ClientConfig::new(&ns));
    admin
        .create_topic(&petrel.broker_addr, topic, 8)
        .await
        .unwrap();

    let producer = Arc::new(Producer::new(
        "orderly-pg",
        ClientConfig::new(&ns).with_instance_name("p"),
    ));
    producer.start().await.unwrap();
    // One task per key: each key's messages are sent one after another, keys side by side.
    let mut sends = Vec::new();
    for key in 0..KEYS {
        let producer = producer.clone();
        sends.push(tokio::spawn(async move {
            for seq in 0..PER_KEY {
                let msg = Message::new(topic, format!("{key}:{seq}"));
                let r = producer.send_orderly(msg, &format!("order-{key}")).await;
                assert!(r.is_ok(), "send {key}:{seq} failed: {:?}", r.err());
            }
        }));
    }
    for s in sends {
        s.await.unwrap();
    }
    let sent_in = started.elapsed();
    tokio::time::sleep(BROKER_REJOIN_GRACE.saturating_sub(started.elapsed())).await;

    let seen: Arc<Mutex<Observed>> = Arc::default();
    let count = || seen.lock().unwrap().delivered.len();
    let c1 = orderly_consumer(&ns, group, "c1", topic, seen.clone());
    let c2 = orderly_consumer(&ns, group, "c2", topic, seen.clone());
    c1.start().await.unwrap();
    c2.start().await.unwrap();

    wait_for("a fifth of the messages", || count() >= KEYS * PER_KEY / 5).await;
    let c3 = orderly_consumer(&ns, group, "c3", topic, seen.clone());
    c3.start().await.unwrap();
    let joined_at = count();

    wait_for("three fifths of the messages", || {
        count() >= KEYS * PER_KEY * 3 / 5
    })
    .await;
    let before_leave = seen.lock().unwrap().per_consumer.clone();
    c1.shutdown().await;
    let left_at = count();
    // Both handovers happened between live consumers: c2 and c3 consumed while c1 still ran.
    for name in ["c2", "c3"] {
        assert!(
            before_leave.get(name).copied().unwrap_or(0) > 0,
            "{name} consumed nothing before c1 left: {before_leave:?}"
        );
    }

    wait_for("every message", || count() == KEYS * PER_KEY).await;
    // Anything delivered a second time would show up within this pause.
    tokio::time::sleep(Duration::from_millis(300)).await;
    check_observed(&seen.lock().unwrap(), sent_in, joined_at, left_at, started);
    c2.shutdown().await;
    c3.shutdown().await;
    producer.shutdown().await;
    petrel.shutdown().await.unwrap();
}

/// The properties the orderly test proves, from what the listeners observed.
fn check_observed(
    o: &Observed,
    sent_in: Duration,
    joined_at: usize,
    left_at: usize,
    started: Instant,
) {
    assert!(
        o.overlaps.is_empty(),
        "a queue was consumed by two clients at once: {:?}",
        o.overlaps
    );
    for key in 0..KEYS {
        let order = &o.first_deliveries[&key];
        let expected: Vec<usize> = (0..PER_KEY).collect();
        assert_eq!(
            order, &expected,
            "first deliveries of key {key} out of send order"
        );
    }
    assert!(
        o.per_consumer.get("c3").copied().unwrap_or(0) > 0,
        "the late consumer took no queue: {:?}",
        o.per_consumer
    );
    assert!(
        o.suspended.len() >= KEYS * 2,
        "suspensions: {}",
        o.suspended.len()
    );
    eprintln!(
        "orderly: {} messages sent in {sent_in:?}, consumed by {:?}, c3 joined at {joined_at}, \
         c1 left at {left_at}, {} duplicates, {} suspended batches, total {:?}",
        KEYS * PER_KEY,
        o.per_consumer,
        o.duplicates,
        o.suspended.len(),
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_suspended_past_max_reconsume_times_is_dead_lettered_and_the_queue_moves_on() {
    let dir = tempfile::tempdir().unwrap();
    let petrel = Standalone::start(dir.path()).await.unwrap();
    let ns = petrel.namesrv_addr.clone();
    let topic = "OrderlyPoison";
    let group = "orderly-dlq-cg";
    let admin = petrel_client::admin::Admin::new(ClientConfig::new(&ns));
    admin
        .create_topic(&petrel.broker_addr, topic, 1)
        .await
        .unwrap();
    let producer = Producer::new("orderly-dlq-pg", ClientConfig::new(&ns));
    producer.start().await.unwrap();
    for seq in 0..5 {
        producer
            .send_orderly(Message::new(topic, format!("0:{seq}")), "k")
            .await
            .unwrap();
    }

    let attempts: Arc<Mutex<Vec<(usize, i32)>>> = Arc::default();
    let mut c = PushConsumer::new(group, ClientConfig::new(&ns).with_instance_name("d1"));
    c.subscribe(topic, "*").unwrap();
    c.set_consume_from(ConsumeFromWhere::FirstOffset);
    c.options.suspend_current_queue_time = Duration::from_millis(20);
    c.options.max_reconsume_times = 3;
    {
        let attempts = attempts.clone();
        c.register_orderly_listener(move |msgs| {
            let (_, seq) = parse(&msgs[0]);
            attempts
                .lock()
                .unwrap()
                .push((seq, msgs[0].reconsume_times));
            if seq == 2 {
                ConsumeOrderlyStatus::SuspendCurrentQueueAMoment
            } else {
                ConsumeOrderlyStatus::Success
            }
        });
    }
    c.start().await.unwrap();
    wait_for("the messages after the poisoned one", || {
        attempts.lock().unwrap().iter().any(|(seq, _)| *seq == 4)
    })
    .await;
    let got = attempts.lock().unwrap().clone();
    // In place and in order: 0, 1, then 2 with reconsume times 0..=3, then 3, 4.
    let expected = vec![
        (0, 0),
        (1, 0),
        (2, 0),
        (2, 1),
        (2, 2),
        (2, 3),
        (3, 0),
        (4, 0),
    ];
    assert_eq!(got, expected);
    c.shutdown().await;

    let pull = PullConsumer::new("dlq-reader", ClientConfig::new(&ns));
    pull.start().await.unwrap();
    let dlq = petrel_client::MessageQueue {
        topic: format!("%DLQ%{group}"),
        broker_name: "broker-a".to_owned(),
        queue_id: 0,
    };
    let deadline = Instant::now() + WAIT;
    let bodies = loop {
        if let Ok(r) = pull.pull(&dlq, 0, 32).await {
            if let PullStatus::Found(msgs) = r.status {
                break msgs
                    .iter()
                    .map(|m| String::from_utf8_lossy(&m.body).into_owned())
                    .collect::<Vec<_>>();
            }
        }
        assert!(Instant::now() < deadline, "nothing in {dlq:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(bodies, vec!["0:2".to_owned()]);
    pull.shutdown().await;
    producer.shutdown().await;
    petrel.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_keeps_its_queue_locks_by_renewing_them_and_frees_them_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    // Broker locks live 1 s; the consumer renews every 200 ms.
    let lock_max_live = Duration::from_secs(1);
    let config_file = dir.path().join("broker.toml");
    std::fs::write(
        &config_file,
        format!("rebalanceLockMaxLiveTime = {}\n", lock_max_live.as_millis()),
    )
    .unwrap();
    let mut config = petrel::standalone::StandaloneConfig::ephemeral(dir.path().join("data"));
    config.broker_config_file = Some(config_file);
    let petrel = Standalone::start_with(config).await.unwrap();
    let ns = petrel.namesrv_addr.clone();
    let topic = "OrderlyRenew";
    let group = "orderly-renew-cg";
    let admin = petrel_client::admin::Admin::new(ClientConfig::new(&ns));
    admin
        .create_topic(&petrel.broker_addr, topic, 2)
        .await
        .unwrap();

    let consumed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut c = PushConsumer::new(group, ClientConfig::new(&ns).with_instance_name("holder"));
    c.subscribe(topic, "*").unwrap();
    c.options.lock_renew_interval = Duration::from_millis(200);
    c.options.lock_valid = Duration::from_millis(600);
    {
        let consumed = consumed.clone();
        c.register_orderly_listener(move |msgs| {
            consumed.fetch_add(msgs.len(), std::sync::atomic::Ordering::SeqCst);
            ConsumeOrderlyStatus::Success
        });
    }
    c.start().await.unwrap();
    let producer = Producer::new("orderly-renew-pg", ClientConfig::new(&ns));
    producer.start().await.unwrap();
    for key in ["a", "b", "c", "d"] {
        producer
            .send_orderly(Message::new(topic, key), key)
            .await
            .unwrap();
    }
    wait_for("the holder to consume", || {
        consumed.load(std::sync::atomic::Ordering::SeqCst) == 4
    })
    .await;

    // Well past the broker's lock lifetime, another client of the group is still refused.
    tokio::time::sleep(lock_max_live * 3).await;
    let intruder =
        petrel_client::ClientInstance::new(ClientConfig::new(&ns).with_instance_name("intruder"));
    let queues: std::collections::BTreeSet<_> = c.assigned_queues().into_iter().collect();
    let of_topic: std::collections::BTreeSet<_> = queues
        .iter()
        .filter(|q| q.topic == topic)
        .cloned()
        .collect();
    assert_eq!(of_topic.len(), 2);
    let got = intruder
        .lock_batch_mq(&petrel.broker_addr, group, of_topic.clone())
        .await
        .unwrap();
    assert!(got.is_empty(), "renewed locks were given away: {got:?}");

    // Shutdown unlocks at once, without waiting for expiry.
    c.shutdown().await;
    let got = intruder
        .lock_batch_mq(&petrel.broker_addr, group, of_topic.clone())
        .await
        .unwrap();
    assert_eq!(got, of_topic, "shutdown left queues locked");
    intruder.shutdown();
    producer.shutdown().await;
    petrel.shutdown().await.unwrap();
}
