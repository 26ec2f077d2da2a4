//! Rebalance of Petrel's own PushConsumer against Petrel standalone: members react to
//! NOTIFY_CONSUMER_IDS_CHANGED within a second of a join or a leave (the periodic rebalance is set
//! to a minute, so only the push can explain it), and the configured strategy decides the split.

use std::time::{Duration, Instant};

use petrel_client::{AllocateStrategy, ClientConfig, ConsumeStatus, PushConsumer};
use petrel_tests::Standalone;

/// The broker does not push membership changes for this long after its start (its
/// `consumer_rejoin_grace`, 5 s by default), so the measurement starts after it.
const BROKER_REJOIN_GRACE: Duration = Duration::from_millis(5_500);
const REACTION_LIMIT: Duration = Duration::from_secs(1);

fn consumer(ns: &str, name: &str, topic: &str) -> PushConsumer {
    let mut c = PushConsumer::new(
        "rebalance-cg",
        ClientConfig::new(ns).with_instance_name(name),
    );
    c.subscribe(topic, "*").unwrap();
    c.options.rebalance_interval = Duration::from_secs(60);
    c.options.allocate_strategy = AllocateStrategy::AveragelyByCircle;
    c.register_listener(|_| ConsumeStatus::Success);
    c
}

fn queue_ids(c: &PushConsumer, topic: &str) -> Vec<i32> {
    c.assigned_queues()
        .iter()
        .filter(|q| q.topic == topic)
        .map(|q| q.queue_id)
        .collect()
}

/// How long since `start` until `done` holds; panics after 10 s.
async fn time_until(what: &str, start: Instant, mut done: impl FnMut() -> bool) -> Duration {
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_rebalance_within_a_second_of_a_join_and_a_leave() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let petrel = Standalone::start(dir.path()).await.unwrap();
    let ns = petrel.namesrv_addr.clone();
    let topic = "RebalanceTopic";
    let admin = petrel_client::admin::Admin::new(ClientConfig::new(&ns));
    admin
        .create_topic(&petrel.broker_addr, topic, 8)
        .await
        .unwrap();

    let c1 = consumer(&ns, "a1", topic);
    c1.start().await.unwrap();
    assert_eq!(
        queue_ids(&c1, topic).len(),
        8,
        "alone, a1 reads every queue"
    );
    tokio::time::sleep(BROKER_REJOIN_GRACE.saturating_sub(started.elapsed())).await;

    let c2 = consumer(&ns, "a2", topic);
    // Measured from the join itself: a1 may well have moved before a2's start returns.
    let joined = Instant::now();
    c2.start().await.unwrap();
    // By circle over the sorted ids "…@a1" < "…@a2": a1 takes the even queues.
    let join = time_until("a1 to give up the odd queues", joined, || {
        queue_ids(&c1, topic) == vec![0, 2, 4, 6] && queue_ids(&c2, topic) == vec![1, 3, 5, 7]
    })
    .await;

    let left = Instant::now();
    c2.shutdown().await;
    let leave = time_until("a1 to take every queue back", left, || {
        queue_ids(&c1, topic).len() == 8
    })
    .await;
    eprintln!("rebalance reaction: join {join:?}, leave {leave:?}");
    assert!(join < REACTION_LIMIT, "join took {join:?}");
    assert!(leave < REACTION_LIMIT, "leave took {leave:?}");

    c1.shutdown().await;
    petrel.shutdown().await.unwrap();
}
