//! Message filters against a real broker with Petrel's own client: tag expressions and SQL92
//! property filters each deliver exactly the matching messages (checked against predicates
//! written here in plain Rust, not with the broker's filter code), and a bad expression or a
//! broker with property filtering off fails the consumer's start with the broker's remark.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use petrel::standalone::StandaloneConfig;
use petrel_client::admin::Admin;
use petrel_client::{
    ClientConfig, ClientError, ConsumeFromWhere, ConsumeStatus, Message, MessageExt, Producer,
    PullConsumer, PullStatus, PushConsumer,
};
use petrel_remoting::code::{request, response};
use petrel_remoting::RemotingCommand;
use petrel_tests::{wait_for, Standalone};

/// After the expected set is complete, extra deliveries would show up within this time.
const QUIET: Duration = Duration::from_millis(700);
const MESSAGES: usize = 90;

/// The properties message `i` is sent with: tag, `a` (absent on every 7th), `b`, `c` (only on
/// every 4th) and a double `d`.
struct Sent {
    tag: &'static str,
    a: Option<i64>,
    b: &'static str,
    c: Option<String>,
    d: f64,
}

fn sent(i: usize) -> Sent {
    Sent {
        tag: ["TagA", "TagB", "TagC"][i % 3],
        a: (!i.is_multiple_of(7)).then_some((i % 10) as i64),
        b: ["x", "y", "z", "x", "w"][i % 5],
        c: i.is_multiple_of(4).then(|| format!("c{i}")),
        d: i as f64 / 8.0,
    }
}

fn message(topic: &str, i: usize) -> Message {
    let s = sent(i);
    let mut m = Message::new(topic, format!("body-{i}"))
        .with_tags(s.tag)
        .with_keys(format!("k{i}"))
        .with_property("b", s.b)
        .with_property("d", s.d.to_string());
    if let Some(a) = s.a {
        m = m.with_property("a", a.to_string());
    }
    if let Some(c) = s.c {
        m = m.with_property("c", c);
    }
    m
}

/// A consumer group's subscription: group, SQL92 (else TAG), expression, and which messages
/// it must deliver.
type Case = (&'static str, bool, &'static str, fn(&Sent) -> bool);

fn cases() -> Vec<Case> {
    vec![
        ("tags-ab", false, "TagA || TagB", |s| s.tag != "TagC"),
        ("sql-gt-and-eq", true, "a > 5 AND b = 'x'", |s| {
            s.a.is_some_and(|a| a > 5) && s.b == "x"
        }),
        ("sql-is-null", true, "c IS NULL", |s| s.c.is_none()),
        ("sql-between", true, "a BETWEEN 2 AND 4", |s| {
            s.a.is_some_and(|a| (2..=4).contains(&a))
        }),
        ("sql-in", true, "b IN ('x','y')", |s| {
            s.b == "x" || s.b == "y"
        }),
        (
            "sql-mixed",
            true,
            "(TAGS = 'TagC' OR d >= 10.5) AND NOT (b = 'w') AND c IS NOT NULL",
            |s| (s.tag == "TagC" || s.d >= 10.5) && s.b != "w" && s.c.is_some(),
        ),
    ]
}

fn expected(matches: fn(&Sent) -> bool) -> BTreeSet<String> {
    (0..MESSAGES)
        .filter(|&i| matches(&sent(i)))
        .map(|i| format!("k{i}"))
        .collect()
}

/// key → times delivered.
type Seen = Arc<Mutex<BTreeMap<String, u32>>>;

fn push_consumer(ns: &str, group: &str, topic: &str, sql: bool, expression: &str) -> PushConsumer {
    let mut c = PushConsumer::new(group, ClientConfig::new(ns).with_instance_name(group));
    if sql {
        c.subscribe_sql(topic, expression).unwrap();
    } else {
        c.subscribe(topic, expression).unwrap();
    }
    c.set_consume_from(ConsumeFromWhere::FirstOffset);
    c
}

async fn send_all(ns: &str, broker_addr: &str, topic: &str) {
    // One queue: deliveries follow send order, so once the last expected message is in, any
    // wrongly delivered earlier one is in too.
    Admin::new(ClientConfig::new(ns))
        .create_topic(broker_addr, topic, 1)
        .await
        .unwrap();
    let producer = Producer::new("filter-pg", ClientConfig::new(ns).with_instance_name("fp"));
    producer.start().await.unwrap();
    for i in 0..MESSAGES {
        producer.send(message(topic, i)).await.unwrap();
    }
    producer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_push_subscription_receives_exactly_its_matching_set() {
    let dir = tempfile::tempdir().unwrap();
    let petrel = Standalone::start(dir.path()).await.unwrap();
    let ns = petrel.namesrv_addr.clone();
    let topic = "FilterPush";
    send_all(&ns, &petrel.broker_addr, topic).await;

    let mut running = Vec::new();
    for (group, sql, expression, matches) in cases() {
        let seen: Seen = Arc::default();
        let mut c = push_consumer(&ns, group, topic, sql, expression);
        let s = seen.clone();
        c.register_listener(move |msgs: &[MessageExt]| {
            let mut s = s.lock().unwrap();
            for m in msgs {
                *s.entry(m.keys().unwrap_or_default().to_owned())
                    .or_default() += 1;
            }
            ConsumeStatus::Success
        });
        c.start()
            .await
            .unwrap_or_else(|e| panic!("{group} ({expression}) did not start: {e}"));
        running.push((c, seen, expression, expected(matches)));
    }
    for (_, seen, expression, want) in &running {
        assert!(!want.is_empty(), "{expression} must match something");
        assert!(
            want.len() < MESSAGES,
            "{expression} must not match everything"
        );
        wait_for(expression, || {
            want.iter().all(|k| seen.lock().unwrap().contains_key(k))
        })
        .await;
    }
    tokio::time::sleep(QUIET).await;
    for (c, seen, expression, want) in running {
        let got = seen.lock().unwrap().clone();
        let keys: BTreeSet<String> = got.keys().cloned().collect();
        assert_eq!(keys, want, "deliveries of `{expression}`");
        assert!(
            got.values().all(|&n| n == 1),
            "{expression}: repeated {got:?}"
        );
        c.shutdown().await;
    }
    petrel.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_consumer_with_a_sql_filter_gets_exactly_the_matching_set() {
    let dir = tempfile::tempdir().unwrap();
    let petrel = Standalone::start(dir.path()).await.unwrap();
    let ns = petrel.namesrv_addr.clone();
    let topic = "FilterPull";
    send_all(&ns, &petrel.broker_addr, topic).await;

    let consumer = PullConsumer::new("filter-pull-cg", ClientConfig::new(&ns));
    consumer.start().await.unwrap();
    let mq = consumer.fetch_queues(topic).await.unwrap().remove(0);
    for (_, _, expression, matches) in cases().into_iter().filter(|c| c.1) {
        let mut got = Vec::new();
        let mut offset = 0;
        while offset < MESSAGES as i64 {
            let r = consumer
                .pull_sql(&mq, expression, offset, 8, Duration::ZERO)
                .await
                .unwrap();
            match r.status {
                PullStatus::Found(msgs) => {
                    got.extend(msgs.iter().map(|m| m.keys().unwrap_or_default().to_owned()))
                }
                PullStatus::NoMatchedMsg => {}
                other => panic!("{expression}: pull at {offset} answered {other:?}"),
            }
            assert!(
                r.next_begin_offset > offset,
                "{expression}: no progress at {offset}"
            );
            offset = r.next_begin_offset;
        }
        let keys: BTreeSet<String> = got.iter().cloned().collect();
        assert_eq!(keys.len(), got.len(), "{expression}: repeated {got:?}");
        assert_eq!(keys, expected(matches), "pulled with `{expression}`");
    }
    consumer.shutdown().await;
    petrel.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_expression_fails_start_with_the_brokers_remark() {
    let dir = tempfile::tempdir().unwrap();
    let petrel = Standalone::start(dir.path()).await.unwrap();
    let ns = petrel.namesrv_addr.clone();
    let topic = "FilterBad";
    send_all(&ns, &petrel.broker_addr, topic).await;

    for (expression, says) in [
        ("a >", "column 4: expected a property, a literal"),
        ("a > 5 AND", "found end of expression"),
        ("b > 'x'", "'x' cannot be compared with >"),
        (
            "a BETWEEN 5 AND 2",
            "low bound of BETWEEN (5) is greater than the high bound (2)",
        ),
    ] {
        let mut c = push_consumer(&ns, "filter-bad-cg", topic, true, expression);
        c.register_listener(|_: &[MessageExt]| ConsumeStatus::Success);
        match c.start().await {
            Err(ClientError::Broker { code, remark }) => {
                assert_eq!(
                    code,
                    response::SUBSCRIPTION_PARSE_FAILED,
                    "{expression}: {remark}"
                );
                assert!(remark.contains(says), "{expression}: {remark}");
                assert!(remark.contains(expression), "{expression}: {remark}");
            }
            Err(other) => panic!("{expression}: start failed otherwise: {other}"),
            Ok(()) => panic!("{expression}: start succeeded"),
        }
    }

    // A client that skips the check still cannot register the subscription.
    let instance = petrel_client::ClientInstance::new(ClientConfig::new(&ns));
    // A heartbeat as a Java client writes it.
    let heartbeat = format!(
        r#"{{"clientID":"raw-client@1","consumerDataSet":[{{"consumeFromWhere":"CONSUME_FROM_FIRST_OFFSET","consumeType":"CONSUME_PASSIVELY","groupName":"filter-raw-cg","messageModel":"CLUSTERING","subscriptionDataSet":[{{"classFilterMode":false,"codeSet":[],"expressionType":"SQL92","subString":"a = = 1","subVersion":1,"tagsSet":[],"topic":"{topic}"}}],"unitMode":false}}],"producerDataSet":[]}}"#
    );
    let cmd = RemotingCommand::request(request::HEART_BEAT).with_body(heartbeat.into_bytes());
    let resp = instance
        .invoke(&petrel.broker_addr, cmd, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        resp.code,
        response::SUBSCRIPTION_PARSE_FAILED,
        "{:?}",
        resp.remark
    );
    let remark = resp.remark.unwrap_or_default();
    assert!(remark.contains("column 5"), "{remark}");
    let cmd = RemotingCommand::request_with_header(
        request::GET_CONSUMER_LIST_BY_GROUP,
        &petrel_remoting::headers::ConsumerGroupHeader {
            consumer_group: "filter-raw-cg".to_owned(),
        },
    );
    let resp = instance
        .invoke(&petrel.broker_addr, cmd, Duration::from_secs(10))
        .await
        .unwrap();
    assert_ne!(
        resp.code,
        response::SUCCESS,
        "the refused group was registered"
    );
    instance.shutdown();
    petrel.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_property_filter_off_sql_is_refused_and_tags_still_work() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("broker.toml");
    std::fs::write(&conf, "enablePropertyFilter = false\n").unwrap();
    let mut config = StandaloneConfig::ephemeral(dir.path().join("data"));
    config.broker_config_file = Some(conf);
    let petrel = Standalone::start_with(config).await.unwrap();
    let ns = petrel.namesrv_addr.clone();
    let topic = "FilterOff";
    send_all(&ns, &petrel.broker_addr, topic).await;

    let mut c = push_consumer(&ns, "filter-off-sql", topic, true, "a > 5");
    c.register_listener(|_: &[MessageExt]| ConsumeStatus::Success);
    match c.start().await {
        Err(ClientError::Broker { code, remark }) => {
            assert_eq!(code, response::SYSTEM_ERROR, "{remark}");
            assert_eq!(
                remark,
                "The broker does not support consumer to filter message by SQL92"
            );
        }
        other => panic!("start with SQL92 on a broker without property filter: {other:?}"),
    }

    let seen: Seen = Arc::default();
    let mut c = push_consumer(&ns, "filter-off-tags", topic, false, "TagC");
    let s = seen.clone();
    c.register_listener(move |msgs: &[MessageExt]| {
        let mut s = s.lock().unwrap();
        for m in msgs {
            *s.entry(m.keys().unwrap_or_default().to_owned())
                .or_default() += 1;
        }
        ConsumeStatus::Success
    });
    c.start().await.unwrap();
    let want = expected(|s| s.tag == "TagC");
    wait_for("the TagC messages", || {
        want.iter().all(|k| seen.lock().unwrap().contains_key(k))
    })
    .await;
    tokio::time::sleep(QUIET).await;
    let keys: BTreeSet<String> = seen.lock().unwrap().keys().cloned().collect();
    assert_eq!(keys, want);
    c.shutdown().await;
    petrel.shutdown().await.unwrap();
}
