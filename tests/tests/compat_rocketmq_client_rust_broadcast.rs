//! Compatibility: broadcast consumption with the third-party `rocketmq-client-rust` 1.0.0.
//! Three instances of one group in BROADCASTING mode (offsets kept by each client in its own
//! files) are all registered with the broker and each receive every message.

#![recursion_limit = "256"]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rocketmq_client_rust::{
    ClientResult, ClientRuntime, ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus,
    MQPushConsumer,
};
use rocketmq_model::common::message::message_ext::MessageExt;
use rocketmq_model::common::message::MessageTrait;
use rocketmq_protocol::protocol::heartbeat::message_model::MessageModel;

use petrel_client::{ClientConfig, Message, Producer};
use petrel_tests::rmq_rust::{self, err};
use petrel_tests::{bounded, try_wait_for, Standalone};

const TOPIC: &str = "CompatBroadcastNews";
const GROUP: &str = "compat_rmq_rust_broadcast";
const INSTANCES: [&str; 3] = ["broadcast-1", "broadcast-2", "broadcast-3"];
const MESSAGES: usize = 60;

/// Instance → key → times delivered.
type Seen = Arc<Mutex<BTreeMap<&'static str, BTreeMap<String, u32>>>>;

#[test]
fn rocketmq_client_rust_broadcast_instances_each_get_every_message() {
    // Broadcast offsets live in client files; keep them out of the home directory.
    let offsets = tempfile::tempdir().expect("offset dir");
    std::env::set_var("rocketmq.client.localOffsetStoreDir", offsets.path());
    rmq_rust::run("compat-broadcast", scenario);
}

async fn scenario(client_runtime: Arc<ClientRuntime>) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let petrel = bounded("Standalone::start", Standalone::start(dir.path())).await??;
    let ns = petrel.namesrv_addr.clone();
    let admin = petrel_client::admin::Admin::new(ClientConfig::new(&ns));
    admin.create_topic(&petrel.broker_addr, TOPIC, 4).await?;

    let seen: Seen = Arc::default();
    let mut consumers = Vec::new();
    for instance in INSTANCES {
        let mut consumer = rmq_rust::push_consumer(&client_runtime, &ns, GROUP, instance)
            .message_model(MessageModel::Broadcasting)
            .build();
        bounded("consumer.subscribe", consumer.subscribe(TOPIC, "*"))
            .await?
            .map_err(err)?;
        let seen = Arc::clone(&seen);
        consumer.register_message_listener_concurrently(
            move |msgs: &[&MessageExt],
                  _ctx: &ConsumeConcurrentlyContext|
                  -> ClientResult<ConsumeConcurrentlyStatus> {
                let mut seen = seen.lock().unwrap();
                let mine = seen.entry(instance).or_default();
                for m in msgs {
                    let key = m.get_keys().map(|k| k.to_string()).unwrap_or_default();
                    *mine.entry(key).or_default() += 1;
                }
                Ok(ConsumeConcurrentlyStatus::ConsumeSuccess)
            },
        );
        bounded("consumer.start", consumer.start())
            .await?
            .map_err(err)?;
        consumers.push(consumer);
    }

    let producer = Producer::new(
        "compat-broadcast-pg",
        ClientConfig::new(&ns).with_instance_name("p"),
    );
    producer.start().await?;
    for i in 0..MESSAGES {
        let msg = Message::new(TOPIC, format!("news-{i}").into_bytes()).with_keys(format!("n-{i}"));
        producer.send(msg).await?;
    }
    try_wait_for("every instance to get every message", || {
        let seen = seen.lock().unwrap();
        INSTANCES
            .iter()
            .all(|i| seen.get(i).is_some_and(|keys| keys.len() == MESSAGES))
    })
    .await?;
    // In-flight redeliveries, if any, get a moment to show up in the counts.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let connections = admin.consumer_ids(TOPIC, GROUP).await?;
    producer.shutdown().await;
    for mut consumer in consumers {
        bounded("consumer.shutdown", consumer.shutdown()).await?;
    }
    bounded("Standalone::shutdown", petrel.shutdown()).await??;

    assert_eq!(connections.len(), INSTANCES.len(), "{connections:?}");
    let seen = seen.lock().unwrap();
    for instance in INSTANCES {
        let keys = &seen[instance];
        let duplicates: u32 = keys.values().map(|n| n - 1).sum();
        eprintln!(
            "{instance}: {} distinct messages, {duplicates} duplicates",
            keys.len()
        );
        assert_eq!(keys.len(), MESSAGES, "{instance} missed messages");
        assert!(
            (0..MESSAGES).all(|i| keys.contains_key(&format!("n-{i}"))),
            "{instance} got keys that were never sent"
        );
    }
    Ok(())
}
