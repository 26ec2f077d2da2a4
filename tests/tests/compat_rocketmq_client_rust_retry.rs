//! Compatibility: retries and dead letters with the third-party `rocketmq-client-rust` 1.0.0.
//!
//! Its push consumer's listener fails every third message on the first delivery
//! (`ReconsumeLater`, so the client sends it back with CONSUMER_SEND_MSG_BACK). The other
//! messages must all arrive without waiting for the failed ones, and each failed one must come
//! back once, after its retry delay, through `%RETRY%<group>`. A "poison" message that always
//! fails must land in `%DLQ%<group>` after the client's `maxReconsumeTimes` (3 here), with its
//! original body and properties; it is read back with our pull consumer.
//!
//! The broker runs with short delay levels so the retries take milliseconds. Like the other
//! compat test, the client owns its runtime and the test is a plain `#[test]` in its own binary.

#![recursion_limit = "256"]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rocketmq_client_rust::{
    ClientResult, ClientRuntime, ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus,
    DefaultMQProducer, MQPushConsumer,
};
use rocketmq_model::common::message::message_ext::MessageExt;
use rocketmq_model::common::message::message_single::Message;
use rocketmq_model::common::message::MessageTrait;

use petrel::standalone::StandaloneConfig;
use petrel_client::{MessageQueue, PullConsumer, PullStatus};
use petrel_common::msg_id::now_ms;
use petrel_tests::rmq_rust::{self, client_config, err};
use petrel_tests::{bounded, try_wait_for, Standalone, WAIT};

/// Retries use levels 3, 4, 5 …: 300 ms each.
const LEVELS: &str =
    "100ms 200ms 300ms 300ms 300ms 300ms 300ms 300ms 300ms 300ms 300ms 300ms 300ms 300ms 300ms 300ms 300ms 300ms";
/// The first retry waits level 3.
const FIRST_RETRY_DELAY_MS: i64 = 300;
const TOPIC: &str = "CompatRetryOrders";
const GROUP: &str = "compat_rmq_rust_retry";
const MESSAGES: usize = 30;
const MAX_RECONSUME_TIMES: i32 = 3;
const POISON: &str = "poison";

/// Per key: (wall-clock ms, reconsume times) of each delivery.
type Deliveries = Arc<Mutex<HashMap<String, Vec<(i64, i32)>>>>;

fn key(i: usize) -> String {
    format!("retry-{i}")
}

/// Every third message fails its first delivery.
fn fails_first_time(i: usize) -> bool {
    i.is_multiple_of(3)
}

#[test]
fn rocketmq_client_rust_retries_without_blocking_and_dead_letters_after_max_times() {
    rmq_rust::run("compat-retry", scenario);
}

async fn scenario(client_runtime: Arc<ClientRuntime>) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut config = StandaloneConfig::ephemeral(dir.path());
    config.message_delay_level = Some(LEVELS.to_owned());
    let petrel = bounded("Standalone::start", Standalone::start_with(config)).await??;
    let ns = petrel.namesrv_addr.clone();
    let admin = petrel_client::admin::Admin::new(petrel_client::ClientConfig::new(&ns));
    admin.create_topic(&petrel.broker_addr, TOPIC, 2).await?;

    let deliveries: Deliveries = Arc::default();
    let mut consumer =
        rmq_rust::push_consumer(&client_runtime, &ns, GROUP, "compat-retry-consumer")
            .consume_message_batch_max_size(1)
            .max_reconsume_times(MAX_RECONSUME_TIMES)
            .build();
    bounded("consumer.subscribe", consumer.subscribe(TOPIC, "*"))
        .await?
        .map_err(err)?;
    {
        let deliveries = Arc::clone(&deliveries);
        consumer.register_message_listener_concurrently(
            move |msgs: &[&MessageExt],
                  _ctx: &ConsumeConcurrentlyContext|
                  -> ClientResult<ConsumeConcurrentlyStatus> {
                let now = now_ms() as i64;
                let mut status = ConsumeConcurrentlyStatus::ConsumeSuccess;
                let mut d = deliveries.lock().unwrap();
                for m in msgs {
                    let k = m.get_keys().map(|k| k.to_string()).unwrap_or_default();
                    let times = m.reconsume_times();
                    d.entry(k.clone()).or_default().push((now, times));
                    let fail = k == POISON
                        || (times == 0
                            && k.strip_prefix("retry-")
                                .and_then(|i| i.parse().ok())
                                .is_some_and(fails_first_time));
                    if fail {
                        status = ConsumeConcurrentlyStatus::ReconsumeLater;
                    }
                }
                Ok(status)
            },
        );
    }
    bounded("consumer.start", consumer.start())
        .await?
        .map_err(err)?;

    let mut producer = DefaultMQProducer::builder(Arc::clone(&client_runtime))
        .client_config(client_config(&ns, "compat-retry-producer"))
        .producer_group("compat_rmq_rust_retry_pg")
        .name_server_addr(ns.clone())
        .send_msg_timeout(3_000)
        .build();
    bounded("producer.start", producer.start())
        .await?
        .map_err(err)?;
    let sent_at = now_ms() as i64;
    for i in 0..MESSAGES {
        send(&producer, &key(i), format!("body-{i}").as_bytes()).await?;
    }
    send(&producer, POISON, b"poison body").await?;

    // Every message that does not fail arrives, without waiting for those that do.
    let good: Vec<String> = (0..MESSAGES)
        .filter(|&i| !fails_first_time(i))
        .map(key)
        .collect();
    try_wait_for("every message that does not fail", || {
        let d = deliveries.lock().unwrap();
        good.iter().all(|k| d.contains_key(k))
    })
    .await?;
    // Each failed one comes back once, after its delay.
    let failed: Vec<String> = (0..MESSAGES)
        .filter(|&i| fails_first_time(i))
        .map(key)
        .collect();
    try_wait_for("every failed message to come back", || {
        let d = deliveries.lock().unwrap();
        failed
            .iter()
            .all(|k| d.get(k).is_some_and(|v| v.len() >= 2))
    })
    .await?;
    // The poison message: consumed, retried MAX_RECONSUME_TIMES times, then dead.
    try_wait_for("the poison message's last attempt", || {
        let d = deliveries.lock().unwrap();
        d.get(POISON)
            .is_some_and(|v| v.len() > MAX_RECONSUME_TIMES as usize)
    })
    .await?;

    let reader = PullConsumer::new(
        "compat-retry-reader",
        petrel_client::ClientConfig::new(&ns).with_instance_name("reader"),
    );
    reader.start().await?;
    let dlq = format!("%DLQ%{GROUP}");
    let dead = pull_one(&reader, &dlq).await?;
    // Nothing more: a dead letter is not retried.
    tokio::time::sleep(Duration::from_secs(1)).await;

    bounded("producer.shutdown", producer.shutdown()).await?;
    bounded("consumer.shutdown", consumer.shutdown()).await?;
    reader.shutdown().await;
    bounded("Standalone::shutdown", petrel.shutdown()).await??;

    let d = deliveries.lock().unwrap();
    let last_good = good.iter().map(|k| d[k][0].0).max().unwrap_or(sent_at);
    let first_retry = failed.iter().map(|k| d[k][1].0).min().unwrap_or(i64::MAX);
    eprintln!(
        "rocketmq-client-rust retry: {} good messages all consumed {} ms after the first send; \
         the first retry came {} ms after the first send",
        good.len(),
        last_good - sent_at,
        first_retry - sent_at
    );
    for k in &good {
        assert_eq!(d[k].len(), 1, "{k} succeeded once and must not come back");
    }
    for k in &failed {
        let v = &d[k];
        assert_eq!(v.len(), 2, "{k}: deliveries {v:?}");
        assert_eq!(v[0].1, 0);
        assert_eq!(v[1].1, 1, "{k}: the retry carries reconsumeTimes 1");
        assert!(
            v[1].0 - v[0].0 >= FIRST_RETRY_DELAY_MS,
            "{k} came back {} ms after failing, before its {FIRST_RETRY_DELAY_MS} ms delay",
            v[1].0 - v[0].0
        );
    }
    let poison: Vec<i32> = d[POISON].iter().map(|(_, t)| *t).collect();
    assert_eq!(
        poison,
        [0, 1, 2, 3],
        "consumed once, retried 3 times, then dead"
    );

    assert_eq!(dead.topic, dlq);
    assert_eq!(&dead.body[..], b"poison body");
    assert_eq!(dead.keys(), Some(POISON));
    assert_eq!(dead.tags(), Some("TagR"));
    assert_eq!(dead.property("origin"), Some("compat"));
    assert_eq!(dead.property("RETRY_TOPIC"), Some(TOPIC));
    Ok(())
}

async fn send(producer: &DefaultMQProducer, key: &str, body: &[u8]) -> anyhow::Result<()> {
    let mut message = Message::builder()
        .topic(TOPIC)
        .tags("TagR")
        .key(key)
        .body_slice(body)
        .build_unchecked();
    message.put_property("origin".into(), "compat".into());
    rmq_rust::send_ok(producer, message)
        .await
        .map_err(|e| e.context(format!("send of {key}")))?;
    Ok(())
}

/// The one message of the dead-letter topic's queue 0.
async fn pull_one(reader: &PullConsumer, topic: &str) -> anyhow::Result<petrel_client::MessageExt> {
    let mq = MessageQueue {
        topic: topic.to_owned(),
        broker_name: "broker-a".to_owned(),
        queue_id: 0,
    };
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(r) = reader.pull(&mq, 0, 32).await {
            if let PullStatus::Found(mut msgs) = r.status {
                anyhow::ensure!(msgs.len() == 1, "{} dead letters, not 1", msgs.len());
                return Ok(msgs.remove(0));
            }
        }
        anyhow::ensure!(Instant::now() < deadline, "no dead letter in {topic}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
