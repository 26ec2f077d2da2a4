//! Compatibility: Petrel standalone driven by the third-party `rocketmq-client-rust` 1.0.0
//! (the rocketmq-rust project's remoting client, crates.io).
//!
//! Scenario: a producer sends 1,000 messages (alternating tags `TagA`/`TagB`, keys `key-<i>`)
//! to queue `i % 4` of an auto-created topic through a queue selector; a push consumer group
//! of two instances (clustering mode, distinct instance names) consumes them. After 500 sends
//! are acknowledged the broker is restarted on the same ports and data directory; every
//! acknowledged message must still be consumed.
//!
//! Delivery contract: RocketMQ is at-least-once. A message may be delivered again after a
//! rebalance or a broker restart (offsets committed lazily), and a send whose reply was lost may
//! have been stored anyway and sent again, so duplicates are tolerated and counted; what must
//! never happen is that an acknowledged message is missing, arrives with another body or tag,
//! or that an unknown key shows up.
//!
//! Wire facts about this client: docs/compat-rocketmq-client-rust.md.
//!
//! The client owns its Tokio runtime (`rocketmq_runtime::RuntimeOwner`, injected through
//! `ClientRuntime`); the broker and the test body run on a second runtime built here, so the
//! test is a plain `#[test]`.

#![recursion_limit = "256"]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rocketmq_client_rust::{
    ClientResult, ClientRuntime, ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus,
    DefaultMQProducer, MQPushConsumer,
};
use rocketmq_model::common::message::message_ext::MessageExt;
use rocketmq_model::common::message::message_queue::MessageQueue;
use rocketmq_model::common::message::message_single::Message;
use rocketmq_model::common::message::MessageTrait;
use rocketmq_model::result::SendStatus;

use petrel_tests::rmq_rust::{self, client_config, err};
use petrel_tests::{bounded, Standalone, WAIT};

const TOTAL: usize = 1_000;
const QUEUES: usize = 4;
const RESTART_AFTER: usize = 500;
const TOPIC: &str = "CompatRocketmqClientRustOrders";
const PRODUCER_GROUP: &str = "compat_rmq_rust_producer";
const CONSUMER_GROUP: &str = "compat_rmq_rust_consumers";
const CONSUMER_INSTANCES: [&str; 2] = ["compat-rmq-rust-consumer-1", "compat-rmq-rust-consumer-2"];

fn key(i: usize) -> String {
    format!("key-{i}")
}
fn tag(i: usize) -> &'static str {
    if i.is_multiple_of(2) {
        "TagA"
    } else {
        "TagB"
    }
}
fn body(i: usize) -> String {
    format!("compat-rocketmq-client-rust body #{i}")
}

/// One delivery as the listener saw it.
#[derive(Debug, Clone)]
struct Delivery {
    instance: &'static str,
    body: Vec<u8>,
    tag: String,
    queue_id: i32,
}

/// key → every delivery of that key.
type Seen = Arc<Mutex<HashMap<String, Vec<Delivery>>>>;

#[test]
fn rocketmq_client_rust_group_of_two_gets_every_acked_message_across_a_restart() {
    rmq_rust::run("compat", scenario);
}

async fn scenario(client_runtime: Arc<ClientRuntime>) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut petrel = bounded("Standalone::start", Standalone::start(dir.path())).await??;
    let ns = petrel.namesrv_addr.clone();

    // ---- producer; the first message auto-creates the topic (route of TBW102, 4 queues) ----
    let mut producer = DefaultMQProducer::builder(Arc::clone(&client_runtime))
        .client_config(client_config(&ns, "compat-rmq-rust-producer"))
        .producer_group(PRODUCER_GROUP)
        .name_server_addr(ns.clone())
        .default_topic_queue_nums(QUEUES as u32)
        .send_msg_timeout(3_000)
        .build();
    bounded("producer.start", producer.start())
        .await?
        .map_err(err)?;

    // queue id each acknowledged key was stored in, and how many sends it took
    let mut acked: BTreeMap<String, i32> = BTreeMap::new();
    let mut send_failures = 0usize;
    send_one(&producer, 0, &mut acked, &mut send_failures).await?;

    // ---- push consumer group of two, clustering, from the first offset ----
    let seen: Seen = Arc::default();
    let mut consumers = Vec::new();
    for instance in CONSUMER_INSTANCES {
        let mut consumer =
            rmq_rust::push_consumer(&client_runtime, &ns, CONSUMER_GROUP, instance).build();
        bounded("consumer.subscribe", consumer.subscribe(TOPIC, "*"))
            .await?
            .map_err(err)?;
        let seen = Arc::clone(&seen);
        consumer.register_message_listener_concurrently(
            move |msgs: &[&MessageExt],
                  _ctx: &ConsumeConcurrentlyContext|
                  -> ClientResult<ConsumeConcurrentlyStatus> {
                let mut seen = seen.lock().unwrap();
                for m in msgs {
                    let key = m.get_keys().map(|k| k.to_string()).unwrap_or_default();
                    seen.entry(key).or_default().push(Delivery {
                        instance,
                        body: m.body().map(|b| b.to_vec()).unwrap_or_default(),
                        tag: m.get_tags().map(|t| t.to_string()).unwrap_or_default(),
                        queue_id: m.queue_id(),
                    });
                }
                Ok(ConsumeConcurrentlyStatus::ConsumeSuccess)
            },
        );
        bounded("consumer.start", consumer.start())
            .await?
            .map_err(err)?;
        consumers.push(consumer);
    }
    // Let the group settle (both members registered, queues split) before the bulk of the load,
    // so that both instances take part; the assertions below do not depend on it.
    tokio::time::sleep(Duration::from_secs(3)).await;

    // ---- produce the rest, restarting the broker after 500 acknowledgements ----
    for i in 1..TOTAL {
        if i == RESTART_AFTER {
            assert_eq!(acked.len(), RESTART_AFTER);
            bounded("Standalone::restart", petrel.restart()).await??;
        }
        send_one(&producer, i, &mut acked, &mut send_failures).await?;
    }
    assert_eq!(acked.len(), TOTAL, "every message must be acknowledged");
    let expected: BTreeSet<String> = (0..TOTAL).map(key).collect();

    // ---- wait until every acknowledged key has been consumed ----
    let deadline = Instant::now() + WAIT;
    loop {
        let missing = {
            let seen = seen.lock().unwrap();
            acked.keys().filter(|k| !seen.contains_key(*k)).count()
        };
        if missing == 0 {
            break;
        }
        if Instant::now() >= deadline {
            let seen = seen.lock().unwrap();
            let sample: Vec<&String> = acked
                .keys()
                .filter(|k| !seen.contains_key(*k))
                .take(20)
                .collect();
            anyhow::bail!(
                "{missing} of {TOTAL} acknowledged messages were never consumed within {WAIT:?} \
                 (first missing: {sample:?})"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Give redeliveries that are already in flight a moment, so duplicates are counted.
    tokio::time::sleep(Duration::from_secs(1)).await;

    // ---- shut the clients down (bounded), then the broker ----
    bounded("producer.shutdown", producer.shutdown()).await?;
    for mut consumer in consumers {
        bounded("consumer.shutdown", consumer.shutdown()).await?;
    }
    bounded("Standalone::shutdown", petrel.shutdown()).await??;

    // ---- assertions ----
    let seen = seen.lock().unwrap();
    let consumed: BTreeSet<String> = seen.keys().cloned().collect();
    let unknown: Vec<&String> = consumed.difference(&expected).take(20).collect();
    assert!(
        unknown.is_empty(),
        "consumed keys that were never sent: {unknown:?}"
    );
    assert_eq!(
        consumed, expected,
        "the consumed key set must be exactly the 1,000 sent keys"
    );

    let mut duplicates = 0usize;
    let mut per_instance: BTreeMap<&str, usize> = BTreeMap::new();
    let mut per_queue: BTreeMap<i32, usize> = BTreeMap::new();
    for i in 0..TOTAL {
        let k = key(i);
        let deliveries = &seen[&k];
        duplicates += deliveries.len() - 1;
        let stored_in = acked[&k];
        assert_eq!(
            stored_in,
            (i % QUEUES) as i32,
            "{k}: acknowledged in queue {stored_in}"
        );
        *per_queue.entry(stored_in).or_default() += 1;
        for d in deliveries {
            assert_eq!(d.body, body(i).into_bytes(), "{k}: body");
            assert_eq!(d.tag, tag(i), "{k}: tag");
            assert_eq!(d.queue_id, stored_in, "{k}: delivered from another queue");
            *per_instance.entry(d.instance).or_default() += 1;
        }
    }
    eprintln!(
        "rocketmq-client-rust compat: {TOTAL} acked ({send_failures} failed send attempts \
         retried), {duplicates} duplicate deliveries (tolerated, at-least-once), per queue \
         {per_queue:?}, per instance {per_instance:?}"
    );
    assert_eq!(
        per_queue.len(),
        QUEUES,
        "the selector must have spread over 4 queues"
    );
    for instance in CONSUMER_INSTANCES {
        assert!(
            per_instance.get(instance).copied().unwrap_or(0) > 0,
            "consumer instance {instance} received nothing; the group did not share the queues \
             ({per_instance:?})"
        );
    }
    Ok(())
}

/// Sends message `i` to queue `i % 4`, retrying (bounded by [`WAIT`]) until it is acknowledged:
/// sends fail while the broker restarts. Records the queue the broker stored it in.
async fn send_one(
    producer: &DefaultMQProducer,
    i: usize,
    acked: &mut BTreeMap<String, i32>,
    failures: &mut usize,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + WAIT;
    loop {
        let message = Message::builder()
            .topic(TOPIC)
            .tags(tag(i))
            .key(key(i))
            .body_slice(body(i).as_bytes())
            .build_unchecked();
        let selector = |mqs: &[MessageQueue], _msg: &Message, wanted: &usize| {
            mqs.iter()
                .find(|mq| mq.queue_id() as usize == *wanted)
                .or_else(|| mqs.get(*wanted % mqs.len().max(1)))
                .cloned()
        };
        let attempt = tokio::time::timeout(
            Duration::from_secs(10),
            producer.send_with_selector_timeout(message, selector, i % QUEUES, 3_000),
        )
        .await;
        let last_error = match attempt {
            Ok(Ok(Some(result))) if result.send_status == SendStatus::SendOk => {
                let queue_id = result
                    .message_queue
                    .as_ref()
                    .map(|mq| mq.queue_id())
                    .ok_or_else(|| anyhow::anyhow!("send #{i}: result without a message queue"))?;
                acked.insert(key(i), queue_id);
                return Ok(());
            }
            Ok(Ok(Some(result))) => format!("status {:?}", result.send_status),
            Ok(Ok(None)) => "no send result for a synchronous send".to_string(),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "send did not return within 10 s".to_string(),
        };
        *failures += 1;
        if Instant::now() >= deadline {
            anyhow::bail!("send #{i} not acknowledged within {WAIT:?}; last error: {last_error}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
