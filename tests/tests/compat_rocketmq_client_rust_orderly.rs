//! Compatibility: orderly consumption with the third-party `rocketmq-client-rust` 1.0.0.
//!
//! Messages are sent by sharding key (our producer's `send_orderly`); two orderly push consumers
//! of the crate, the second joining while the first is consuming, lock their queues with
//! LOCK_BATCH_MQ at Petrel. Every message must arrive, each key's first deliveries in send order,
//! and no queue may be inside two listeners at once. Like the other compat tests, the client owns
//! its runtime and the test is a plain `#[test]` in its own binary.

#![recursion_limit = "256"]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rocketmq_client_rust::{
    ClientResult, ClientRuntime, ConsumeOrderlyContext, ConsumeOrderlyStatus,
    DefaultMQPushConsumer, MQPushConsumer,
};
use rocketmq_model::common::message::message_ext::MessageExt;

use petrel_client::{Message, Producer};
use petrel_tests::rmq_rust::{self, err};
use petrel_tests::{bounded, try_wait_for, Standalone};

const TOPIC: &str = "CompatOrderlyOrders";
const GROUP: &str = "compat_rmq_rust_orderly";
const KEYS: usize = 20;
const PER_KEY: usize = 50;
/// Listener time per message, so the second consumer joins while there is work left.
const WORK_PER_MESSAGE: Duration = Duration::from_millis(3);

#[derive(Default)]
struct Observed {
    first_deliveries: HashMap<usize, Vec<usize>>,
    delivered: HashSet<(usize, usize)>,
    duplicates: usize,
    in_flight: HashMap<i32, String>,
    overlaps: Vec<String>,
    per_consumer: HashMap<String, usize>,
}

type Shared = Arc<Mutex<Observed>>;

#[test]
fn rocketmq_client_rust_orderly_consumers_see_each_key_in_send_order() {
    rmq_rust::run("compat-orderly", scenario);
}

fn parse(m: &MessageExt) -> (usize, usize) {
    let body = m.body().unwrap_or_default();
    let text = String::from_utf8_lossy(&body).into_owned();
    let (key, seq) = text.split_once(':').unwrap_or(("0", "0"));
    (key.parse().unwrap_or(0), seq.parse().unwrap_or(0))
}

async fn orderly_consumer(
    client_runtime: &Arc<ClientRuntime>,
    ns: &str,
    name: &str,
    seen: Shared,
) -> anyhow::Result<DefaultMQPushConsumer> {
    let mut consumer = rmq_rust::push_consumer(client_runtime, ns, GROUP, name)
        .consume_message_batch_max_size(1)
        .build();
    bounded("consumer.subscribe", consumer.subscribe(TOPIC, "*"))
        .await?
        .map_err(err)?;
    let name = name.to_owned();
    consumer.register_message_listener_orderly(
        move |msgs: &[&MessageExt],
              _ctx: &mut ConsumeOrderlyContext|
              -> ClientResult<ConsumeOrderlyStatus> {
            let Some(first) = msgs.first() else {
                return Ok(ConsumeOrderlyStatus::Success);
            };
            let queue_id = first.queue_id();
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
            for m in msgs {
                let (key, seq) = parse(m);
                if o.delivered.insert((key, seq)) {
                    o.first_deliveries.entry(key).or_default().push(seq);
                } else {
                    o.duplicates += 1;
                }
            }
            *o.per_consumer.entry(name.clone()).or_default() += msgs.len();
            Ok(ConsumeOrderlyStatus::Success)
        },
    );
    bounded("consumer.start", consumer.start())
        .await?
        .map_err(err)?;
    Ok(consumer)
}

async fn scenario(client_runtime: Arc<ClientRuntime>) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let petrel = bounded("Standalone::start", Standalone::start(dir.path())).await??;
    let ns = petrel.namesrv_addr.clone();
    let admin = petrel_client::admin::Admin::new(petrel_client::ClientConfig::new(&ns));
    admin.create_topic(&petrel.broker_addr, TOPIC, 4).await?;

    let producer = Producer::new("compat-orderly-pg", petrel_client::ClientConfig::new(&ns));
    producer.start().await?;
    for seq in 0..PER_KEY {
        for key in 0..KEYS {
            let msg = Message::new(TOPIC, format!("{key}:{seq}"));
            producer.send_orderly(msg, &format!("order-{key}")).await?;
        }
    }

    let seen: Shared = Arc::default();
    let count = || seen.lock().unwrap().delivered.len();
    let mut c1 = orderly_consumer(&client_runtime, &ns, "rmq-orderly-1", seen.clone()).await?;
    try_wait_for("a fifth of the messages", || count() >= KEYS * PER_KEY / 5).await?;
    let mut c2 = orderly_consumer(&client_runtime, &ns, "rmq-orderly-2", seen.clone()).await?;
    let joined_at = count();
    try_wait_for("every message", || count() == KEYS * PER_KEY).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;

    bounded("c2.shutdown", c2.shutdown()).await?;
    bounded("c1.shutdown", c1.shutdown()).await?;
    producer.shutdown().await;
    bounded("Standalone::shutdown", petrel.shutdown()).await??;

    let o = seen.lock().unwrap();
    anyhow::ensure!(
        o.overlaps.is_empty(),
        "a queue was consumed by two clients at once: {:?}",
        o.overlaps
    );
    let expected: Vec<usize> = (0..PER_KEY).collect();
    for key in 0..KEYS {
        anyhow::ensure!(
            o.first_deliveries.get(&key) == Some(&expected),
            "first deliveries of key {key} out of send order: {:?}",
            o.first_deliveries.get(&key)
        );
    }
    eprintln!(
        "rocketmq-client-rust orderly: {} messages, consumed by {:?}, second consumer joined at \
         {joined_at}, {} duplicates",
        KEYS * PER_KEY,
        o.per_consumer,
        o.duplicates
    );
    Ok(())
}
