//! `petrel admin` as an operator runs it: the real binary against a real `petrel standalone`,
//! each command's `--json` answer checked value for value against what the test did to the
//! broker, and its table mode run too. The commands that look at live clients run while a
//! producer and a push consumer of our client are online.

#[allow(dead_code)] // each test binary uses part of the helpers
mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{read_topic, Petrel};
use petrel_client::{
    ConsumeStatus, Message, MessageExt, MessageQueue, Producer, PullConsumer, PushConsumer,
    SendResult,
};
use petrel_common::msg_id::now_ms;
use serde_json::{json, Value};

const BROKER_NAME: &str = "broker-a";
const CLUSTER: &str = "DefaultCluster";
/// How long a live client may take to show up at the broker.
const ONLINE_TIMEOUT: Duration = Duration::from_secs(30);

fn run(namesrv: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_petrel"))
        .arg("admin")
        .args(["--namesrv", namesrv])
        .args(args)
        .env("RUST_LOG", "warn")
        .env("RUST_BACKTRACE", "0")
        .env("NO_COLOR", "1")
        .output()
        .expect("cannot run the petrel binary")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `petrel admin <args>` in table mode: it must succeed; returns what it printed.
fn table(namesrv: &str, args: &[&str]) -> String {
    let out = run(namesrv, args);
    assert!(
        out.status.success(),
        "petrel admin {} failed:\n{}",
        args.join(" "),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// `petrel admin <args> --json`: it must succeed and print one JSON document.
fn json_of(namesrv: &str, args: &[&str]) -> Value {
    let mut argv = args.to_vec();
    argv.push("--json");
    let stdout = table(namesrv, &argv);
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("petrel admin {}: not JSON ({e}):\n{stdout}", argv.join(" ")))
}

/// `petrel admin <args>` must fail (exit 1); returns its stderr.
fn failure(namesrv: &str, args: &[&str]) -> String {
    let out = run(namesrv, args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "petrel admin {} should fail; stdout:\n{}",
        args.join(" "),
        text(&out.stdout)
    );
    text(&out.stderr)
}

fn broker_ref(petrel: &Petrel) -> Value {
    json!({"brokerName": BROKER_NAME, "addr": petrel.broker})
}

/// A message as the admin commands print it.
fn view(m: &MessageExt) -> Value {
    let properties: serde_json::Map<String, Value> = m
        .properties
        .iter()
        .filter(|(k, _)| !matches!(*k, "MIN_OFFSET" | "MAX_OFFSET"))
        .map(|(k, v)| (k.to_owned(), json!(v)))
        .collect();
    json!({
        "topic": m.topic,
        "msgId": m.msg_id(),
        "offsetMsgId": m.offset_msg_id,
        "queueId": m.queue_id,
        "queueOffset": m.queue_offset,
        "commitLogOffset": m.commit_log_offset,
        "tags": m.tags(),
        "keys": m.keys(),
        "bornTimestamp": m.born_timestamp,
        "bornHost": m.born_host.to_string(),
        "storeTimestamp": m.store_timestamp,
        "storeHost": m.store_host.to_string(),
        "reconsumeTimes": m.reconsume_times,
        "sysFlag": m.sys_flag,
        "flag": m.flag,
        "bodyCrc": m.body_crc,
        "bodyBytes": m.body.len(),
        "body": String::from_utf8_lossy(&m.body),
        "properties": properties,
    })
}

/// A pulled message's view: pulls add MIN_OFFSET/MAX_OFFSET, which the stored one lacks.
fn pulled_view(m: &MessageExt) -> Value {
    let mut v = view(m);
    v["properties"]["MIN_OFFSET"] = json!(m.property("MIN_OFFSET").unwrap());
    v["properties"]["MAX_OFFSET"] = json!(m.property("MAX_OFFSET").unwrap());
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_broker_and_topic_commands() {
    let dir = tempfile::tempdir().expect("temp dir");
    let petrel = Petrel::start(&dir.path().join("data"), "async");
    let ns = petrel.namesrv.as_str();
    let topic = "AdminTopic";

    let clusters = json_of(ns, &["cluster-list"]);
    let row = &clusters[0];
    assert_eq!(clusters.as_array().unwrap().len(), 1, "{clusters}");
    assert_eq!(row["cluster"], CLUSTER);
    assert_eq!(row["brokerName"], BROKER_NAME);
    assert_eq!(row["brokerId"], 0);
    assert_eq!(row["addr"], petrel.broker.as_str());
    assert_eq!(
        row["version"],
        format!("PETREL_{}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(row["msgPutTotalTodayNow"], "0");
    assert!(table(ns, &["clusterList"]).contains(&petrel.broker));

    let created = json_of(
        ns,
        &[
            "update-topic",
            "--topic",
            topic,
            "--read-queue-nums",
            "3",
            "--write-queue-nums",
            "2",
            "--perm",
            "6",
        ],
    );
    assert_eq!(
        created,
        json!({
            "config": {
                "topicName": topic, "readQueueNums": 3, "writeQueueNums": 2, "perm": 6,
                "topicFilterType": "SINGLE_TAG", "topicSysFlag": 0, "order": false,
                "attributes": {}
            },
            "brokers": [broker_ref(&petrel)],
        })
    );
    // The same again through mqadmin's name, now with equal queue numbers, in table mode.
    let updated = table(
        ns,
        &[
            "updateTopic",
            "--topic",
            topic,
            "--read-queue-nums",
            "2",
            "--write-queue-nums",
            "2",
        ],
    );
    assert!(
        updated.contains("read queues 2, write queues 2, perm RW (6)"),
        "{updated}"
    );
    petrel.wait_for_route(topic, 2).await;

    let route = json_of(ns, &["topic-route", "--topic", topic]);
    assert_eq!(
        route["queueDatas"],
        json!([{"brokerName": BROKER_NAME, "readQueueNums": 2, "writeQueueNums": 2, "perm": 6,
                "topicSysFlag": 0}])
    );
    assert_eq!(
        route["brokerDatas"][0]["brokerAddrs"],
        json!({"0": petrel.broker})
    );
    assert!(table(ns, &["topicRoute", "--topic", topic]).contains("RW (6)"));
    let topics = json_of(ns, &["topic-list"]);
    assert!(
        topics["topicList"]
            .as_array()
            .unwrap()
            .contains(&json!(topic)),
        "{topics}"
    );
    assert!(table(ns, &["topicList"]).lines().any(|l| l == topic));

    let producer = Producer::new("AdminTopicProducer", petrel.client_config("admin-topic-p"));
    producer.start().await.expect("start producer");
    for i in 0..5 {
        producer
            .send(Message::new(topic, format!("m{i}")))
            .await
            .expect("send");
    }
    producer.shutdown().await;
    let stored = read_topic(&petrel, topic).await;
    let status = json_of(ns, &["topic-status", "--topic", topic]);
    let expected: Vec<Value> = (0..2)
        .map(|q| {
            let msgs = &stored[&q];
            json!({
                "topic": topic, "brokerName": BROKER_NAME, "queueId": q,
                "minOffset": 0, "maxOffset": msgs.len(),
                "lastUpdateTimestamp": msgs.last().map_or(0, |m| m.store_timestamp),
            })
        })
        .collect();
    assert_eq!(status["offsetTable"], json!(expected));
    assert_eq!(stored[&0].len() + stored[&1].len(), 5);
    assert!(status["topicPutTps"].as_f64().unwrap() > 0.0);
    assert!(table(ns, &["topicStatus", "--topic", topic]).contains("last updated"));

    let brokers = json_of(ns, &["broker-status"]);
    assert_eq!(brokers[0]["brokerName"], BROKER_NAME);
    assert_eq!(brokers[0]["addr"], petrel.broker.as_str());
    assert_eq!(brokers[0]["table"]["msgPutTotalTodayNow"], "5");
    assert_eq!(brokers[0]["table"]["brokerActive"], "true");
    assert!(
        table(ns, &["brokerStatus", "--broker-addr", &petrel.broker])
            .contains("msgPutTotalTodayNow")
    );

    let config = json_of(ns, &["get-broker-config", "--cluster", CLUSTER]);
    let port = petrel.broker.rsplit(':').next().unwrap();
    assert_eq!(config[0]["table"]["brokerName"], BROKER_NAME);
    assert_eq!(config[0]["table"]["brokerClusterName"], CLUSTER);
    assert_eq!(config[0]["table"]["listenPort"], port);
    assert_eq!(config[0]["table"]["brokerId"], "0");
    assert!(table(ns, &["getBrokerConfig"]).contains("flushDiskType"));
    let unknown = failure(ns, &["get-broker-config", "--cluster", "NoSuchCluster"]);
    assert!(
        unknown.contains("the name server knows no cluster NoSuchCluster"),
        "{unknown}"
    );

    let deleted = json_of(ns, &["delete-topic", "--topic", topic]);
    assert_eq!(
        deleted,
        json!({"topic": topic, "brokers": [broker_ref(&petrel)], "namesrv": true})
    );
    let topics = json_of(ns, &["topic-list"]);
    assert!(!topics["topicList"]
        .as_array()
        .unwrap()
        .contains(&json!(topic)));
    let gone = failure(ns, &["topic-route", "--topic", topic]);
    assert!(
        gone.contains(&format!("cannot read the route of topic {topic}")),
        "{gone}"
    );
    assert!(gone.contains("broker answered code 17"), "{gone}");
    let again = table(ns, &["deleteTopic", "--topic", topic]);
    assert!(
        again.contains("deleted topic AdminTopic from the name server"),
        "{again}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_connection_and_message_commands() {
    let dir = tempfile::tempdir().expect("temp dir");
    let petrel = Petrel::start(&dir.path().join("data"), "async");
    let ns = petrel.namesrv.as_str();
    let topic = "AdminMessages";
    petrel.create_topic(topic, 2).await;

    let producer = Producer::new("AdminProducer", petrel.client_config("admin-p"));
    producer.start().await.expect("start producer");
    let mut early: Vec<SendResult> = Vec::new();
    for i in 0..6 {
        let msg = Message::new(topic, format!("body-{i}"))
            .with_keys(format!("key-{i} shared"))
            .with_tags(format!("T{}", i % 2));
        early.push(producer.send(msg).await.expect("send"));
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    let middle = now_ms() as i64;
    tokio::time::sleep(Duration::from_millis(5)).await;
    for i in 0..2 {
        producer
            .send(Message::new(topic, format!("late-{i}")))
            .await
            .expect("send");
    }
    let stored = read_topic(&petrel, topic).await;
    let all: Vec<&MessageExt> = stored.values().flatten().collect();
    assert_eq!(all.len(), 8);
    let by_id = |id: &str| *all.iter().find(|m| m.msg_id() == id).expect("stored");

    // Finding messages.
    let third = by_id(&early[3].msg_id);
    let found = json_of(ns, &["query-msg-by-id", "--id", &early[3].offset_msg_id]);
    assert_eq!(found, json!([view(third)]));
    let found = json_of(
        ns,
        &["queryMsgById", "--id", &early[3].msg_id, "--topic", topic],
    );
    assert_eq!(found, json!([view(third)]));
    let no_topic = failure(ns, &["query-msg-by-id", "--id", &early[3].msg_id]);
    assert!(no_topic.contains("is not an offsetMsgId; to look a msgId up give its --topic"));
    assert!(table(ns, &["query-msg-by-id", "--id", &early[3].offset_msg_id]).contains("body-3"));

    let found = json_of(
        ns,
        &["query-msg-by-key", "--topic", topic, "--key", "key-4"],
    );
    assert_eq!(found, json!([view(by_id(&early[4].msg_id))]));
    let shared = json_of(ns, &["queryMsgByKey", "--topic", topic, "--key", "shared"]);
    let mut want: Vec<&MessageExt> = early.iter().map(|r| by_id(&r.msg_id)).collect();
    want.sort_by_key(|m| (m.store_timestamp, m.commit_log_offset));
    assert_eq!(
        shared,
        json!(want.iter().map(|m| view(m)).collect::<Vec<_>>())
    );
    let none = json_of(
        ns,
        &["query-msg-by-key", "--topic", topic, "--key", "nobody"],
    );
    assert_eq!(none, json!([]));
    assert!(
        table(ns, &["queryMsgByKey", "--topic", topic, "--key", "shared"]).contains("6 message(s)")
    );

    let at = &stored[&1][1];
    let found = json_of(
        ns,
        &[
            "query-msg-by-offset",
            "--topic",
            topic,
            "--broker",
            BROKER_NAME,
            "--queue",
            "1",
            "--offset",
            "1",
        ],
    );
    assert_eq!(found, json!([pulled_view(at)]));
    let past = failure(
        ns,
        &[
            "queryMsgByOffset",
            "--topic",
            topic,
            "--broker",
            BROKER_NAME,
            "--queue",
            "1",
            "--offset",
            "99",
        ],
    );
    assert!(
        past.contains("no message at offset 99 of AdminMessages/broker-a/1"),
        "{past}"
    );

    let in_order: Vec<Value> = stored.values().flatten().map(pulled_view).collect();
    let everything = json_of(ns, &["print-msg", "--topic", topic]);
    assert_eq!(everything, json!(in_order));
    let middle_text = middle.to_string();
    let late = json_of(
        ns,
        &["queryMsgByTime", "--topic", topic, "--begin", &middle_text],
    );
    let late_bodies: Vec<&str> = late
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(late_bodies.len(), 2, "{late}");
    assert!(late_bodies.iter().all(|b| b.starts_with("late-")), "{late}");
    let early_only = json_of(ns, &["printMsg", "--topic", topic, "--end", &middle_text]);
    assert_eq!(early_only.as_array().unwrap().len(), 6);
    assert!(table(ns, &["printMsg", "--topic", topic, "--begin", "1h"]).contains("8 message(s)"));

    // Subscription groups and their progress.
    let group = "AdminProgress";
    let made = json_of(
        ns,
        &[
            "update-sub-group",
            "--group",
            group,
            "--retry-max-times",
            "3",
            "--consume-broadcast-enable",
            "false",
        ],
    );
    assert_eq!(
        made,
        json!([{
            "brokerName": BROKER_NAME, "addr": petrel.broker,
            "config": {
                "groupName": group, "consumeEnable": true, "consumeFromMinEnable": true,
                "consumeBroadcastEnable": false, "retryQueueNums": 1, "retryMaxTimes": 3,
                "brokerId": 0, "whichBrokerWhenConsumeSlowly": 1,
                "notifyConsumerIdsChangedEnable": true, "consumeMessageOrderly": false,
                "attributes": {}
            }
        }])
    );
    // A later update changes only what it names.
    let kept = json_of(
        ns,
        &[
            "updateSubGroup",
            "--group",
            group,
            "--consume-enable",
            "false",
        ],
    );
    assert_eq!(kept[0]["config"]["retryMaxTimes"], 3);
    assert_eq!(kept[0]["config"]["consumeBroadcastEnable"], false);
    assert_eq!(kept[0]["config"]["consumeEnable"], false);

    let committer = PullConsumer::new(group, petrel.client_config("admin-committer"));
    committer.start().await.expect("start pull consumer");
    let committed = [(0, 2i64), (1, 1i64)];
    for (q, offset) in committed {
        let mq = MessageQueue {
            topic: topic.to_owned(),
            broker_name: BROKER_NAME.to_owned(),
            queue_id: q,
        };
        committer.commit_offset(&mq, offset).await.expect("commit");
    }
    committer.shutdown().await;
    let progress = json_of(
        ns,
        &["consumer-progress", "--group", group, "--topic", topic],
    );
    let rows: Vec<Value> = committed
        .iter()
        .map(|&(q, offset)| {
            let end = stored[&q].len() as i64;
            json!({
                "topic": topic, "brokerName": BROKER_NAME, "queueId": q,
                "brokerOffset": end, "consumerOffset": offset, "pullOffset": offset,
                "lastTimestamp": stored[&q][offset as usize - 1].store_timestamp,
                "diff": end - offset,
            })
        })
        .collect();
    assert_eq!(
        progress,
        json!({"group": group, "queues": rows, "brokerOffset": 8, "consumerOffset": 3,
               "diff": 5, "consumeTps": 0.0})
    );
    let progress_table = table(ns, &["consumerProgress", "--group", group]);
    assert!(
        progress_table
            .lines()
            .any(|l| l.split_whitespace().eq(["total", "8", "3", "5"])),
        "{progress_table}"
    );

    let clone = "AdminProgressClone";
    let cloned = json_of(
        ns,
        &[
            "clone-group-offset",
            "--src-group",
            group,
            "--dest-group",
            clone,
            "--topic",
            topic,
        ],
    );
    assert_eq!(
        cloned,
        json!({"srcGroup": group, "destGroup": clone, "topic": topic,
               "brokers": [broker_ref(&petrel)]})
    );
    let cloned_progress = json_of(
        ns,
        &["consumer-progress", "--group", clone, "--topic", topic],
    );
    assert_eq!(cloned_progress["queues"], progress["queues"]);
    assert!(table(
        ns,
        &[
            "cloneGroupOffset",
            "--src-group",
            group,
            "--dest-group",
            clone
        ]
    )
    .contains("cloned the offsets"));

    // The older flow commands answer in JSON too.
    let mut reset = json_of(
        ns,
        &[
            "reset-offset",
            "--topic",
            topic,
            "--group",
            group,
            "--time",
            "0",
        ],
    );
    reset
        .as_array_mut()
        .unwrap()
        .sort_by_key(|r| r["queueId"].as_i64());
    assert_eq!(
        reset,
        json!([
            {"topic": topic, "brokerName": BROKER_NAME, "queueId": 0, "offset": 0},
            {"topic": topic, "brokerName": BROKER_NAME, "queueId": 1, "offset": 0},
        ])
    );
    assert_eq!(
        json_of(ns, &["pause", "--group", group, "--client", "c1"]),
        json!({"group": group, "clients": ["c1"], "brokers": 1})
    );
    assert_eq!(
        json_of(ns, &["resume", "--group", group]),
        json!({"group": group, "clients": [], "brokers": 1})
    );
    assert_eq!(
        json_of(ns, &["rate-limit", "--group", group, "--per-second", "5"]),
        json!({"group": group, "clients": [], "perSecond": 5.0, "brokers": 1})
    );
    assert_eq!(json_of(ns, &["half-messages"]), json!([]));

    let deleted = json_of(ns, &["delete-sub-group", "--group", group]);
    assert_eq!(
        deleted,
        json!({"group": group, "brokers": [broker_ref(&petrel)]})
    );
    let fresh = json_of(ns, &["update-sub-group", "--group", group]);
    assert_eq!(
        fresh[0]["config"]["retryMaxTimes"], 16,
        "deleted, then made anew"
    );
    assert!(table(ns, &["deleteSubGroup", "--group", group]).contains("deleted subscription group"));

    // Live clients.
    let mut consumer = PushConsumer::new("AdminLive", petrel.client_config("admin-live"));
    consumer.subscribe(topic, "T0 || T1").expect("subscribe");
    consumer.register_listener(|_: &[MessageExt]| ConsumeStatus::Success);
    consumer.start().await.expect("start consumer");
    producer.instance().send_heartbeat_to_all_brokers().await;
    let deadline = Instant::now() + ONLINE_TIMEOUT;
    let connection = loop {
        let out = run(
            ns,
            &["consumer-connection", "--group", "AdminLive", "--json"],
        );
        if out.status.success() {
            break serde_json::from_slice::<Value>(&out.stdout).expect("JSON");
        }
        assert!(Instant::now() < deadline, "{}", text(&out.stderr));
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let conns = connection["connectionSet"].as_array().unwrap();
    assert_eq!(conns.len(), 1, "{connection}");
    assert_eq!(conns[0]["clientId"], consumer.instance().client_id());
    assert!(conns[0]["clientAddr"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    assert_eq!(connection["consumeType"], "CONSUME_PASSIVELY");
    assert_eq!(connection["messageModel"], "CLUSTERING");
    let sub = &connection["subscriptionTable"][topic];
    assert_eq!(sub["subString"], "T0 || T1");
    assert_eq!(sub["expressionType"], "TAG");
    assert_eq!(sub["tagsSet"], json!(["T0", "T1"]));
    assert!(table(ns, &["consumerConnection", "--group", "AdminLive"]).contains("T0 || T1"));

    let producers = json_of(ns, &["producer-connection", "--group", "AdminProducer"]);
    let conns = producers["connectionSet"].as_array().unwrap();
    assert_eq!(conns.len(), 1, "{producers}");
    assert_eq!(conns[0]["clientId"], producer.instance().client_id());
    assert_eq!(
        conns[0]["language"],
        connection["connectionSet"][0]["language"]
    );
    assert!(
        table(ns, &["producerConnection", "--group", "AdminProducer"])
            .contains(producer.instance().client_id())
    );

    let offline = failure(ns, &["consumer-connection", "--group", "Nobody"]);
    assert!(
        offline.contains("consumer group Nobody is not online"),
        "{offline}"
    );
    assert!(
        offline.contains("the consumer group[Nobody] not online"),
        "{offline}"
    );
    let offline = failure(ns, &["producerConnection", "--group", "Nobody"]);
    assert!(
        offline.contains("the producer group[Nobody] not exist"),
        "{offline}"
    );

    consumer.shutdown().await;
    producer.shutdown().await;
}

/// `update-broker-config` changes a setting at once (a send over the new maxMessageSize is
/// refused with the broker's remark), `get-broker-config` shows it, a key that needs a restart
/// and a bad value are refused naming the key, and the change survives a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_settings_change_at_runtime_and_survive_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let petrel = Petrel::start(&data, "async");
    let ns = petrel.namesrv.clone();
    let topic = "AdminConfigTopic";
    petrel.create_topic(topic, 1).await;
    let producer = Producer::new("AdminConfigProducer", petrel.client_config("admin-cfg-p"));
    producer.start().await.expect("start producer");
    let big = vec![b'x'; 2000];
    producer
        .send(Message::new(topic, big.clone()))
        .await
        .expect("2000 bytes under the default limit");

    let changed = json_of(
        &ns,
        &[
            "update-broker-config",
            "-k",
            "maxMessageSize",
            "-v",
            "1024",
            "--broker-addr",
            &petrel.broker,
        ],
    );
    assert_eq!(
        changed,
        json!({"key": "maxMessageSize", "value": "1024", "brokers": [broker_ref(&petrel)]})
    );
    let refused = producer
        .send(Message::new(topic, big.clone()))
        .await
        .expect_err("2000 bytes over 1024");
    assert_eq!(refused.code(), Some(13), "{refused}");
    assert!(
        refused.to_string().contains(
            "the message body is 2000 bytes, larger than the broker's maxMessageSize of 1024 bytes"
        ),
        "{refused}"
    );
    producer
        .send(Message::new(topic, vec![b'y'; 1000]))
        .await
        .expect("1000 bytes under the new limit");
    producer.shutdown().await;

    let done = table(
        &ns,
        &[
            "updateBrokerConfig",
            "-k",
            "defaultTopicQueueNums",
            "-v",
            "3",
        ],
    );
    assert_eq!(
        done.trim(),
        format!(
            "defaultTopicQueueNums=3 on {BROKER_NAME} ({})",
            petrel.broker
        )
    );
    let config = json_of(&ns, &["get-broker-config", "--cluster", CLUSTER]);
    assert_eq!(config[0]["table"]["maxMessageSize"], "1024");
    assert_eq!(config[0]["table"]["defaultTopicQueueNums"], "3");

    let restart_key = failure(
        &ns,
        &[
            "update-broker-config",
            "-k",
            "flushDiskType",
            "-v",
            "SYNC_FLUSH",
        ],
    );
    assert!(
        restart_key.contains("broker answered code 29: flushDiskType cannot change while the broker runs: set it in the broker's TOML file and restart"),
        "{restart_key}"
    );
    let unknown = failure(&ns, &["update-broker-config", "-k", "noSuchKey", "-v", "1"]);
    assert!(
        unknown.contains("noSuchKey is not a setting Petrel can change at runtime"),
        "{unknown}"
    );
    let bad = failure(
        &ns,
        &["update-broker-config", "-k", "maxMessageSize", "-v", "lots"],
    );
    assert!(
        bad.contains("maxMessageSize must be a number of bytes from 1024 to 67108864, not `lots`"),
        "{bad}"
    );
    let config = json_of(&ns, &["get-broker-config"]);
    assert_eq!(
        config[0]["table"]["maxMessageSize"], "1024",
        "refusals change nothing"
    );
    let saved: Value = serde_json::from_str(
        &std::fs::read_to_string(data.join("config").join("brokerConfigOverrides.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        saved,
        json!({"defaultTopicQueueNums": "3", "maxMessageSize": "1024"})
    );

    assert!(petrel.stop_with("TERM").await.success());
    let petrel = Petrel::start(&data, "async");
    let config = json_of(&petrel.namesrv, &["get-broker-config"]);
    assert_eq!(
        config[0]["table"]["maxMessageSize"], "1024",
        "kept across a restart"
    );
    assert_eq!(config[0]["table"]["defaultTopicQueueNums"], "3");
    assert_eq!(config[0]["table"]["autoCreateTopicEnable"], "true");
    petrel.wait_for_route(topic, 1).await;
    let producer = Producer::new("AdminConfigProducer", petrel.client_config("admin-cfg-p2"));
    producer.start().await.expect("start producer");
    let refused = producer
        .send(Message::new(topic, big))
        .await
        .expect_err("still over 1024 after the restart");
    assert_eq!(refused.code(), Some(13), "{refused}");
    producer.shutdown().await;
}
