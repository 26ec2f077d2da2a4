//! Apache's RocketMQ 5.x client for Rust (crate `rocketmq` 5.0.0, gRPC, plaintext) against
//! Petrel's gRPC endpoint: one test per scenario, each on a fresh Petrel whose topic and group
//! it creates first (`petrel_tests::rmq_grpc`, which also lists the crate's quirks).
//!
//! The crate has no push consumer and no ChangeInvisibleDuration, so there is no `push`
//! scenario here as there is for the Java, Python and Node clients.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use petrel_tests::bounded;
use petrel_tests::rmq_grpc::{host_name, now_ms, Scenario};
use rocketmq::model::message::{MessageBuilder, MessageView};
use rocketmq::model::transaction::{Transaction, TransactionResolution};
use rocketmq::SimpleConsumer;

/// The invisible duration of what is received and acked at once.
const INVISIBLE: Duration = Duration::from_secs(15);
/// `redeliver`'s invisible duration: the client sends whatever it is given; Petrel's
/// shortest is 1 s (RocketMQ's proxy: 10 s).
const SHORT_INVISIBLE: Duration = Duration::from_secs(1);
/// The redelivery's invisible duration: long enough for its ack to land in time on a loaded
/// machine, shorter than the receives that then prove it does not come back.
const REDELIVERY_INVISIBLE: Duration = Duration::from_secs(3);
/// Receives that prove nothing more comes: two in a row, so the second one starts after
/// anything the first one's long poll could have missed (a message that became visible again
/// while it was parked).
const EMPTY_RECEIVES: usize = 2;

/// Receives (and acks) from `queues` queues round robin, `rounds` times each, and returns what
/// came: nothing, when a scenario is over.
async fn leftovers(
    s: &Scenario,
    c: &SimpleConsumer,
    queues: usize,
    rounds: usize,
) -> anyhow::Result<Vec<String>> {
    let mut left = Vec::new();
    for _ in 0..queues * rounds {
        for m in s.receive(c, "*", INVISIBLE).await? {
            left.push(format!(
                "{} (attempt {}, body {:?})",
                m.message_id(),
                m.delivery_attempt(),
                String::from_utf8_lossy(m.body())
            ));
            c.ack(&m).await?;
        }
    }
    Ok(left)
}

/// Receives from the route's queues in turn until a receive returns something.
async fn receive_some(
    s: &Scenario,
    c: &SimpleConsumer,
    tags: &str,
    invisible: Duration,
) -> anyhow::Result<Vec<MessageView>> {
    bounded("a receive that returns messages", async {
        loop {
            let got = s.receive(c, tags, invisible).await?;
            if !got.is_empty() {
                return Ok(got);
            }
        }
    })
    .await?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normal_messages_arrive_once_each_on_attempt_1_with_tag_keys_property_and_body(
) -> anyhow::Result<()> {
    const QUEUES: usize = 4;
    const MESSAGES: usize = 1000;
    const OTHER_TAG: usize = 100;
    let s = Scenario::start("NORMAL", QUEUES as i32, false).await?;
    let producer = s.producer().await?;
    let sent_from_s = now_ms() / 1000;
    // Message id → index.
    let mut sent = HashMap::new();
    for i in 0..MESSAGES {
        let m = MessageBuilder::builder()
            .set_topic(&s.topic)
            .set_tag("TagA")
            .set_keys(vec![format!("key-{i}")])
            .set_properties(HashMap::from([("index", i.to_string())]))
            .set_body(format!("body-{i}").into_bytes())
            .build()?;
        let receipt = producer.send(m).await?;
        assert!(
            sent.insert(receipt.message_id().to_owned(), i).is_none(),
            "message id {} handed out twice",
            receipt.message_id()
        );
    }
    let mut other_tag = BTreeSet::new();
    for i in 0..OTHER_TAG {
        let m = MessageBuilder::builder()
            .set_topic(&s.topic)
            .set_tag("TagB")
            .set_body(format!("other-{i}").into_bytes())
            .build()?;
        other_tag.insert(producer.send(m).await?.message_id().to_owned());
    }
    let sent_until_s = now_ms() / 1000;
    producer.shutdown().await?;

    let consumer = s.consumer().await?;
    let host = host_name();
    // Message id → deliveries.
    let mut deliveries: HashMap<String, u32> = HashMap::new();
    let mut wrong = Vec::new();
    bounded("1,000 TagA messages", async {
        while deliveries.len() < MESSAGES {
            for m in s.receive(&consumer, "TagA", INVISIBLE).await? {
                *deliveries.entry(m.message_id().to_owned()).or_default() += 1;
                match sent.get(m.message_id()) {
                    None if other_tag.contains(m.message_id()) => {
                        wrong.push(format!("{}: TagB passed the filter", m.message_id()))
                    }
                    None => wrong.push(format!("{}: never sent", m.message_id())),
                    Some(&i) => {
                        let expected = (
                            s.topic.as_str(),
                            Some("TagA"),
                            vec![format!("key-{i}")],
                            HashMap::from([("index".to_owned(), i.to_string())]),
                            format!("body-{i}").into_bytes(),
                            1,
                            host.as_str(),
                        );
                        let got = (
                            m.topic(),
                            m.tag(),
                            m.keys().to_vec(),
                            m.properties().clone(),
                            m.body().to_vec(),
                            m.delivery_attempt(),
                            m.born_host(),
                        );
                        if got != expected {
                            wrong.push(format!("message {i}: {got:?}, sent {expected:?}"));
                        }
                        if !(sent_from_s..=sent_until_s).contains(&m.born_timestamp()) {
                            wrong.push(format!(
                                "message {i}: born at {} s, sent within {sent_from_s}..={sent_until_s}",
                                m.born_timestamp()
                            ));
                        }
                    }
                }
                consumer.ack(&m).await?;
            }
        }
        anyhow::Ok(())
    })
    .await??;
    let more = leftovers(&s, &consumer, QUEUES, 1).await?;
    consumer.shutdown().await?;
    s.stop().await?;

    assert_eq!(wrong, Vec::<String>::new(), "messages not as sent");
    let twice: Vec<_> = deliveries.iter().filter(|(_, n)| **n > 1).collect();
    assert_eq!(
        twice,
        Vec::<(&String, &u32)>::new(),
        "delivered more than once"
    );
    assert_eq!(deliveries.len(), MESSAGES);
    assert_eq!(more, Vec::<String>::new(), "received after all were acked");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unacked_message_comes_back_after_its_invisible_time_as_attempt_2() -> anyhow::Result<()>
{
    let s = Scenario::start("NORMAL", 1, false).await?;
    let producer = s.producer().await?;
    let m = MessageBuilder::builder()
        .set_topic(&s.topic)
        .set_tag("TagA")
        .set_body(b"redeliver".to_vec())
        .build()?;
    let id = producer.send(m).await?.message_id().to_owned();
    producer.shutdown().await?;

    let consumer = s.consumer().await?;
    // Below Petrel's shortest invisible duration: refused, whatever the client allows.
    let too_short = s
        .receive(&consumer, "TagA", SHORT_INVISIBLE / 2)
        .await
        .map(|ms| ms.len())
        .map_err(|e| e.to_string());
    let first = receive_some(&s, &consumer, "TagA", SHORT_INVISIBLE).await?;
    let first_at = Instant::now();
    // Not acked: it comes back once its invisible time is over.
    let second = receive_some(&s, &consumer, "TagA", REDELIVERY_INVISIBLE).await?;
    let after = first_at.elapsed();
    for m in &second {
        consumer.ack(m).await?;
    }
    // Acked within its invisible time: it does not come back, though the receives take longer.
    let more = leftovers(&s, &consumer, 1, EMPTY_RECEIVES).await?;
    consumer.shutdown().await?;
    s.stop().await?;

    let seen = |ms: &[MessageView]| -> Vec<(String, i32, Vec<u8>)> {
        ms.iter()
            .map(|m| {
                (
                    m.message_id().to_owned(),
                    m.delivery_attempt(),
                    m.body().to_vec(),
                )
            })
            .collect()
    };
    assert!(
        too_short
            .as_ref()
            .is_err_and(|e| e.contains("ILLEGAL_INVISIBLE_TIME")),
        "a receive invisible for {:?}: {too_short:?}",
        SHORT_INVISIBLE / 2
    );
    assert_eq!(seen(&first), [(id.clone(), 1, b"redeliver".to_vec())]);
    assert_eq!(seen(&second), [(id, 2, b"redeliver".to_vec())]);
    println!("redelivered {after:?} after the first delivery");
    // A parked 5 s long poll at most, plus slack.
    assert!(
        (SHORT_INVISIBLE..SHORT_INVISIBLE + Duration::from_secs(10)).contains(&after),
        "redelivered {after:?} after the first delivery, invisible for {SHORT_INVISIBLE:?}"
    );
    assert_eq!(more, Vec::<String>::new(), "received after the ack");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_group_gets_each_message_group_in_send_order() -> anyhow::Result<()> {
    const QUEUES: usize = 2;
    const GROUPS: usize = 3;
    const PER_GROUP: usize = 10;
    let s = Scenario::start("FIFO", QUEUES as i32, true).await?;
    let producer = s.producer().await?;
    // Interleaved: 0:0, 1:0, 2:0, 0:1, ...
    for i in 0..PER_GROUP {
        for g in 0..GROUPS {
            let m = MessageBuilder::fifo_message_builder(
                s.topic.clone(),
                format!("{g}:{i}").into_bytes(),
                format!("mg{g}"),
            )
            .set_tag("TagA")
            .build()?;
            producer.send(m).await?;
        }
    }
    producer.shutdown().await?;

    let consumer = s.consumer().await?;
    // Message group → the indexes as received.
    let mut order: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut wrong = Vec::new();
    let mut received = 0;
    bounded("30 FIFO messages", async {
        while received < GROUPS * PER_GROUP {
            for m in s.receive(&consumer, "TagA", INVISIBLE).await? {
                received += 1;
                let body = String::from_utf8_lossy(m.body()).into_owned();
                let parsed = body
                    .split_once(':')
                    .and_then(|(g, i)| Some((g.parse::<usize>().ok()?, i.parse::<usize>().ok()?)));
                match parsed {
                    Some((g, i)) => {
                        let group = format!("mg{g}");
                        if m.message_group() != Some(group.as_str()) || m.delivery_attempt() != 1 {
                            wrong.push(format!(
                                "{body}: message group {:?}, attempt {}",
                                m.message_group(),
                                m.delivery_attempt()
                            ));
                        }
                        order.entry(group).or_default().push(i);
                    }
                    None => wrong.push(format!("unexpected body {body:?}")),
                }
                consumer.ack(&m).await?;
            }
        }
        anyhow::Ok(())
    })
    .await??;
    let more = leftovers(&s, &consumer, QUEUES, 1).await?;
    consumer.shutdown().await?;
    s.stop().await?;

    let in_order: Vec<usize> = (0..PER_GROUP).collect();
    let expected: BTreeMap<String, Vec<usize>> = (0..GROUPS)
        .map(|g| (format!("mg{g}"), in_order.clone()))
        .collect();
    assert_eq!(order, expected, "each message group in send order");
    assert_eq!(wrong, Vec::<String>::new());
    assert_eq!(more, Vec::<String>::new(), "received after all were acked");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delay_message_is_delivered_at_its_time_not_before() -> anyhow::Result<()> {
    let s = Scenario::start("DELAY", 1, false).await?;
    let producer = s.producer().await?;
    let consumer = s.consumer().await?;
    // The crate sends whole seconds: the first whole second at least 3 s ahead.
    let deliver_at_s = (now_ms() + 3_000 + 999) / 1000;
    let m = MessageBuilder::delay_message_builder(s.topic.clone(), b"delay".to_vec(), deliver_at_s)
        .set_tag("TagA")
        .build()?;
    let id = producer.send(m).await?.message_id().to_owned();
    producer.shutdown().await?;

    let got = receive_some(&s, &consumer, "TagA", INVISIBLE).await?;
    let lateness_ms = now_ms() - deliver_at_s * 1000;
    for m in &got {
        consumer.ack(m).await?;
    }
    let more = leftovers(&s, &consumer, 1, EMPTY_RECEIVES).await?;
    consumer.shutdown().await?;
    s.stop().await?;

    let seen: Vec<_> = got
        .iter()
        .map(|m| {
            (
                m.message_id().to_owned(),
                m.delivery_timestamp(),
                m.delivery_attempt(),
                m.body().to_vec(),
            )
        })
        .collect();
    assert_eq!(seen, [(id, Some(deliver_at_s), 1, b"delay".to_vec())]);
    println!("received {lateness_ms} ms after its delivery time");
    // Never before its time; within 2 s after it (the long poll is already parked).
    assert!(
        (0..2_000).contains(&lateness_ms),
        "received {lateness_ms} ms after its delivery time"
    );
    assert_eq!(more, Vec::<String>::new(), "received again");
    Ok(())
}

/// What the transaction checker was asked: the transaction id and message id, the body, and
/// when.
type Checks = Arc<Mutex<Vec<(String, String, String, Instant)>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_delivered_rolled_back_never_unknown_committed_by_the_check() -> anyhow::Result<()>
{
    let s = Scenario::start("TRANSACTION", 1, false).await?;
    let checks: Checks = Arc::default();
    let checker = {
        let checks = Arc::clone(&checks);
        Box::new(move |transaction_id: String, m: MessageView| {
            let body = String::from_utf8_lossy(m.body()).into_owned();
            let resolution = if body == "unknown" {
                TransactionResolution::COMMIT
            } else {
                TransactionResolution::ROLLBACK
            };
            checks.lock().unwrap().push((
                transaction_id,
                m.message_id().to_owned(),
                body,
                Instant::now(),
            ));
            resolution
        })
    };
    let producer = s.transaction_producer(checker).await?;
    let consumer = s.consumer().await?;
    let half = |body: &str| {
        MessageBuilder::transaction_message_builder(s.topic.clone(), body.as_bytes().to_vec())
            .set_tag("TagA")
            .set_keys(vec![body])
            .build()
    };
    let commit = producer.send_transaction_message(half("commit")?).await?;
    let commit_id = commit.message_id().to_owned();
    commit.commit().await?;
    let rollback = producer.send_transaction_message(half("rollback")?).await?;
    rollback.rollback().await?;
    // Left unknown: neither committed nor rolled back, only the server's check decides.
    let unknown = producer.send_transaction_message(half("unknown")?).await?;
    let (unknown_id, unknown_transaction) = (
        unknown.message_id().to_owned(),
        unknown.transaction_id().to_owned(),
    );
    drop(unknown);

    // Message id → (body, when received).
    let mut received: BTreeMap<String, (String, Instant)> = BTreeMap::new();
    bounded("the committed and the checked message", async {
        while received.len() < 2 {
            for m in s.receive(&consumer, "TagA", INVISIBLE).await? {
                let body = String::from_utf8_lossy(m.body()).into_owned();
                received.insert(m.message_id().to_owned(), (body, Instant::now()));
                consumer.ack(&m).await?;
            }
        }
        anyhow::Ok(())
    })
    .await??;
    // The rolled-back one never comes, nor a second delivery of the others.
    let more = leftovers(&s, &consumer, 1, EMPTY_RECEIVES).await?;
    producer.shutdown().await?;
    consumer.shutdown().await?;
    s.stop().await?;

    let bodies: BTreeMap<&str, &str> = received
        .iter()
        .map(|(id, (body, _))| (id.as_str(), body.as_str()))
        .collect();
    assert_eq!(
        bodies,
        BTreeMap::from([
            (commit_id.as_str(), "commit"),
            (unknown_id.as_str(), "unknown")
        ])
    );
    assert_eq!(more, Vec::<String>::new(), "received more");
    let checks = checks.lock().unwrap().clone();
    let asked: Vec<_> = checks
        .iter()
        .map(|(t, id, body, _)| (t.clone(), id.clone(), body.clone()))
        .collect();
    assert_eq!(
        asked,
        [(
            unknown_transaction,
            unknown_id.clone(),
            "unknown".to_owned()
        )],
        "only the unknown transaction is checked, once"
    );
    let checked_at = checks[0].3;
    let delivered_at = received[&unknown_id].1;
    println!(
        "the unknown transaction was checked, then delivered {:?} later",
        delivered_at.saturating_duration_since(checked_at)
    );
    assert!(
        checked_at <= delivered_at,
        "the unknown message was delivered before its check"
    );
    Ok(())
}
