//! `petrel admin trace` as an operator runs it: the real binary against a real `petrel
//! standalone`, with our own client (which does not trace) producing and consuming, so every
//! step shown comes from the broker's own trace and the stored copies: a plain message stored,
//! delivered to the consumer, committed; a transactional one committed and one rolled back.

#[allow(dead_code)] // each test binary uses part of the helpers
mod common;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Petrel;
use petrel_client::{
    ConsumeFromWhere, ConsumeStatus, LocalTransactionState, Message, MessageExt, Producer,
    PushConsumer,
};
use serde_json::Value;

/// How long consumption and its traced commit may take.
const TRACE_WAIT: Duration = Duration::from_secs(30);

fn admin(namesrv: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_petrel"))
        .arg("admin")
        .args(["--namesrv", namesrv])
        .args(args)
        .env("RUST_LOG", "warn")
        .env("NO_COLOR", "1")
        .output()
        .expect("cannot run the petrel binary");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The `what` of each timeline step of `petrel admin trace <args> --json`.
fn steps(namesrv: &str, args: &[&str]) -> (Vec<String>, Value) {
    let mut argv = vec!["trace"];
    argv.extend_from_slice(args);
    argv.push("--json");
    let (ok, stdout, stderr) = admin(namesrv, &argv);
    assert!(ok, "petrel admin {argv:?} failed:\n{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let what = v["timeline"]
        .as_array()
        .expect("a timeline")
        .iter()
        .map(|s| s["what"].as_str().unwrap().to_owned())
        .collect();
    (what, v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_shows_a_messages_path_by_id_and_by_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let petrel = Petrel::start(&dir.path().join("data"), "async");
    let ns = petrel.namesrv.as_str();
    let topic = "TracedOrders";
    petrel.create_topic(topic, 2).await;

    let producer = Producer::new("TracePG", petrel.client_config("trace-p"));
    producer.start().await.expect("start producer");
    let plain = producer
        .send(Message::new(topic, "plain body").with_keys("order-7"))
        .await
        .expect("send");
    let committed = producer
        .send_in_transaction(Message::new(topic, "tx commit").with_keys("tx-c"), |_| {
            LocalTransactionState::Commit
        })
        .await
        .expect("send in transaction");
    let rolled_back = producer
        .send_in_transaction(Message::new(topic, "tx rollback").with_keys("tx-r"), |_| {
            LocalTransactionState::Rollback
        })
        .await
        .expect("send in transaction");

    let consumed: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut consumer = PushConsumer::new("TraceCG", petrel.client_config("trace-c"));
    consumer.subscribe(topic, "*").unwrap();
    consumer.set_consume_from(ConsumeFromWhere::FirstOffset);
    consumer.options.offset_commit_interval = Duration::from_millis(200);
    {
        let consumed = consumed.clone();
        consumer.register_listener(move |msgs: &[MessageExt]| {
            let mut c = consumed.lock().unwrap();
            c.extend(msgs.iter().map(|m| m.msg_id().to_owned()));
            ConsumeStatus::Success
        });
    }
    consumer.start().await.expect("start consumer");
    let client_id = consumer.instance().client_id().to_owned();

    // The plain message: stored, delivered to our consumer, committed.
    let deadline = Instant::now() + TRACE_WAIT;
    let (what, v) = loop {
        let (what, v) = steps(ns, &["--msg-id", &plain.msg_id, "--topic", topic]);
        if what.iter().any(|w| w == "committed") {
            break (what, v);
        }
        assert!(Instant::now() < deadline, "no commit traced: {v:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(what, ["stored", "delivered", "committed"], "{v:#}");
    assert_eq!(v["msgId"], plain.msg_id.as_str());
    assert_eq!(v["stored"][0]["topic"], topic);
    assert_eq!(v["stored"][0]["offsetMsgId"], plain.offset_msg_id.as_str());
    let delivered = &v["brokerEvents"][0];
    assert_eq!(delivered["kind"], "Delivered");
    assert_eq!(delivered["group"], "TraceCG");
    assert_eq!(delivered["clientId"], client_id.as_str());
    assert_eq!(v["clientRecords"], serde_json::json!([]));

    // The same path without the topic (the trace names it), by offsetMsgId and by key; the
    // table names the consumer.
    let (without_topic, _) = steps(ns, &["--msg-id", &plain.msg_id]);
    assert_eq!(without_topic, what);
    let (by_offset_id, _) = steps(ns, &["--msg-id", &plain.offset_msg_id]);
    assert_eq!(by_offset_id, what);
    let (by_key, _) = steps(ns, &["--key", "order-7", "--topic", topic]);
    assert_eq!(by_key, what);
    let (ok, table, stderr) = admin(ns, &["trace", "--msg-id", &plain.msg_id]);
    assert!(ok, "{stderr}");
    assert!(
        table.starts_with(&format!("Message {}\n", plain.msg_id)),
        "{table}"
    );
    assert!(
        table.contains("TIME") && table.contains("DETAIL"),
        "{table}"
    );
    assert!(
        table.contains(&format!("to {client_id} (")) && table.contains("of group TraceCG"),
        "{table}"
    );

    // Transactions: the half message, the outcome, and for the committed one its delivery.
    let deadline = Instant::now() + TRACE_WAIT;
    loop {
        let (what, v) = steps(ns, &["--msg-id", &committed.send.msg_id, "--topic", topic]);
        if what.iter().any(|w| w == "committed") {
            assert_eq!(
                what,
                [
                    "stored as half message",
                    "transaction committed",
                    "stored",
                    "delivered",
                    "committed"
                ],
                "{v:#}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no commit traced: {v:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (what, v) = steps(ns, &["--msg-id", &rolled_back.send.msg_id]);
    assert_eq!(
        what,
        ["stored as half message", "transaction rolled back"],
        "{v:#}"
    );
    assert_eq!(v["brokerEvents"][0]["group"], "TracePG");
    assert_eq!(v["brokerEvents"][0]["topic"], topic);
    assert!(!consumed.lock().unwrap().contains(&rolled_back.send.msg_id));

    // Unknown ids and bad arguments are clear errors.
    let unknown = "0123456789ABCDEF0123456789ABCDEF";
    let (ok, _, stderr) = admin(ns, &["trace", "--msg-id", unknown]);
    assert!(!ok);
    assert!(
        stderr.contains("no trace names its topic") && stderr.contains("--topic"),
        "{stderr}"
    );
    let (ok, _, stderr) = admin(ns, &["trace", "--msg-id", unknown, "--topic", topic]);
    assert!(!ok);
    assert!(
        stderr.contains("nothing is known of message") && stderr.contains("no stored copy"),
        "{stderr}"
    );
    let (ok, _, stderr) = admin(ns, &["trace", "--key", "order-7"]);
    assert!(!ok && stderr.contains("--topic"), "{stderr}");

    // An operator's reset to the beginning: the plain message is delivered and committed again,
    // and the trace shows both rounds. (The second delivery and its commit may be stored in
    // different trace batches, so the wait is for both.)
    let admin = petrel_client::admin::Admin::new(petrel.client_config("trace-admin"));
    admin.instance().start().unwrap();
    admin
        .reset_offset_by_time(topic, "TraceCG", 0, true)
        .await
        .expect("reset offset");
    let deadline = Instant::now() + TRACE_WAIT;
    loop {
        let (what, v) = steps(ns, &["--msg-id", &plain.msg_id]);
        let count = |step: &str| what.iter().filter(|w| *w == step).count();
        if count("delivered") == 2 && count("committed") == 2 {
            assert_eq!(
                what,
                ["stored", "delivered", "committed", "delivered", "committed"],
                "{v:#}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the second round is not traced: {v:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    admin.shutdown();
    consumer.shutdown().await;
    producer.shutdown().await;
}
