//! Compatibility of SQL92 filters: push consumers of the third-party `rocketmq-client-rust`
//! 1.0.0 subscribed with `MessageSelector::by_sql` receive exactly the messages whose
//! properties match (checked against predicates written here in plain Rust). Messages are sent
//! with properties by Petrel's own producer; what is under test is the third-party client's
//! SQL92 heartbeat and pulls against Petrel's broker.
//!
//! As in `compat_rocketmq_client_rust.rs`, the client owns its Tokio runtime and the broker and
//! the test body run on a second runtime built here, so the test is a plain `#[test]`.

#![recursion_limit = "256"]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use petrel_client::admin::Admin;
use petrel_client::{ClientConfig as PetrelConfig, Message, Producer};
use petrel_tests::rmq_rust::{self, err};
use petrel_tests::{bounded, Standalone, WAIT};
use rocketmq_client_rust::{
    ClientResult, ClientRuntime, ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus,
    MQPushConsumer, MessageSelector,
};
use rocketmq_model::common::message::message_ext::MessageExt;
use rocketmq_model::common::message::MessageTrait;

/// After the expected set is complete, extra deliveries would show up within this time.
const QUIET: Duration = Duration::from_secs(1);
const MESSAGES: usize = 60;
const TOPIC: &str = "CompatRmqRustFilter";

/// Message `i` carries `a` (absent on every 7th), `b` and, on every 4th, `c`.
fn a(i: usize) -> Option<i64> {
    (!i.is_multiple_of(7)).then_some((i % 10) as i64)
}
fn b(i: usize) -> &'static str {
    ["x", "y", "z", "x", "w"][i % 5]
}
fn c(i: usize) -> Option<String> {
    i.is_multiple_of(4).then(|| format!("c{i}"))
}

/// Group, expression, and which messages it must deliver.
type Case = (&'static str, &'static str, fn(usize) -> bool);

const CASES: [Case; 3] = [
    ("compat_rmq_rust_sql_gt_eq", "a > 5 AND b = 'x'", |i| {
        a(i).is_some_and(|a| a > 5) && b(i) == "x"
    }),
    (
        "compat_rmq_rust_sql_null_between",
        "c IS NULL AND a BETWEEN 2 AND 4",
        |i| c(i).is_none() && a(i).is_some_and(|a| (2..=4).contains(&a)),
    ),
    (
        "compat_rmq_rust_sql_in",
        "b IN ('x','y') AND TAGS <> 'TagB'",
        |i| (b(i) == "x" || b(i) == "y") && i % 3 != 1,
    ),
];

fn tag(i: usize) -> &'static str {
    ["TagA", "TagB", "TagC"][i % 3]
}

#[test]
fn rocketmq_client_rust_sql_subscriptions_get_exactly_the_matching_set() {
    rmq_rust::run("compat-filter", scenario);
}

/// key → times delivered, per group.
type Seen = Arc<Mutex<BTreeMap<String, u32>>>;

async fn scenario(client_runtime: Arc<ClientRuntime>) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let petrel = bounded("Standalone::start", Standalone::start(dir.path())).await??;
    let ns = petrel.namesrv_addr.clone();
    // One queue: deliveries follow send order, so once the last expected message is in, any
    // wrongly delivered earlier one is in too.
    Admin::new(PetrelConfig::new(&ns))
        .create_topic(&petrel.broker_addr, TOPIC, 1)
        .await?;
    let producer = Producer::new("compat-filter-pg", PetrelConfig::new(&ns));
    producer.start().await?;
    for i in 0..MESSAGES {
        let mut m = Message::new(TOPIC, format!("body-{i}"))
            .with_tags(tag(i))
            .with_keys(format!("k{i}"))
            .with_property("b", b(i));
        if let Some(a) = a(i) {
            m = m.with_property("a", a.to_string());
        }
        if let Some(c) = c(i) {
            m = m.with_property("c", c);
        }
        producer.send(m).await?;
    }
    producer.shutdown().await;

    let mut consumers = Vec::new();
    for (group, expression, matches) in CASES {
        let mut consumer = rmq_rust::push_consumer(&client_runtime, &ns, group, group)
            .consume_thread_max(2)
            .build();
        bounded(
            "consumer.subscribe_with_selector",
            consumer.subscribe_with_selector(TOPIC, Some(MessageSelector::by_sql(expression))),
        )
        .await?
        .map_err(err)?;
        let seen: Seen = Arc::default();
        let s = Arc::clone(&seen);
        consumer.register_message_listener_concurrently(
            move |msgs: &[&MessageExt],
                  _ctx: &ConsumeConcurrentlyContext|
                  -> ClientResult<ConsumeConcurrentlyStatus> {
                let mut s = s.lock().unwrap();
                for m in msgs {
                    let key = m.get_keys().map(|k| k.to_string()).unwrap_or_default();
                    *s.entry(key).or_default() += 1;
                }
                Ok(ConsumeConcurrentlyStatus::ConsumeSuccess)
            },
        );
        bounded("consumer.start", consumer.start())
            .await?
            .map_err(err)?;
        let want: BTreeSet<String> = (0..MESSAGES)
            .filter(|&i| matches(i))
            .map(|i| format!("k{i}"))
            .collect();
        assert!(!want.is_empty() && want.len() < MESSAGES, "{expression}");
        consumers.push((consumer, seen, expression, want));
    }

    for (_, seen, expression, want) in &consumers {
        let deadline = Instant::now() + WAIT;
        while !want.iter().all(|k| seen.lock().unwrap().contains_key(k)) {
            if Instant::now() >= deadline {
                anyhow::bail!(
                    "`{expression}`: got {:?} of {want:?} within {WAIT:?}",
                    seen.lock().unwrap().keys().collect::<Vec<_>>()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    tokio::time::sleep(QUIET).await;
    for (mut consumer, seen, expression, want) in consumers {
        bounded("consumer.shutdown", consumer.shutdown()).await?;
        let got = seen.lock().unwrap().clone();
        let keys: BTreeSet<String> = got.keys().cloned().collect();
        assert_eq!(keys, want, "deliveries of `{expression}`");
        assert!(
            got.values().all(|&n| n == 1),
            "`{expression}`: repeated deliveries {got:?}"
        );
    }
    bounded("Standalone::shutdown", petrel.shutdown()).await??;
    Ok(())
}
