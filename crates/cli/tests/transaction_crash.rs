//! Transactions across a broker kill -9, against the real `petrel standalone` binary: half
//! messages committed, rolled back and left unknown, then SIGKILL. After the restart the broker
//! rebuilds the pending set from the half and op queues in the commit log: the committed ones
//! are delivered once and never checked again, the rolled-back ones never delivered nor
//! checked, and each unknown one is checked with a live instance of the group and ends as
//! that instance answers.

#[allow(dead_code)] // each test binary uses part of the helpers
mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{read_topic, Petrel};
use petrel_client::{LocalTransactionState, Message, MessageExt, Producer};

const TOPIC: &str = "TxCrash";
const GROUP: &str = "petrel_tx_crash";
const PER_KIND: usize = 10;
/// How long the restarted broker may take to check and settle every unknown transaction.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(40);

/// "commit-3" → Commit, "rollback-3" → Rollback, "keep-3"/"drop-3" → Unknown at send time.
fn local_state(key: &str) -> LocalTransactionState {
    match key.split('-').next() {
        Some("commit") => LocalTransactionState::Commit,
        Some("rollback") => LocalTransactionState::Rollback,
        _ => LocalTransactionState::Unknown,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transaction_state_survives_kill_9() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let conf = dir.path().join("broker.toml");
    writeln!(
        std::fs::File::create(&conf).unwrap(),
        "transactionTimeOut = 1000\ntransactionCheckInterval = 500"
    )
    .unwrap();
    let extra = [std::ffi::OsStr::new("--config"), conf.as_os_str()];
    let petrel = Petrel::start_with(&data, "async", &extra);
    petrel.create_topic(TOPIC, 2).await;

    // The sender never answers a check (it is killed with the broker in effect: shut down).
    let sender = Producer::new(GROUP, petrel.client_config("tx-sender"));
    sender.start().await.expect("start producer");
    for kind in ["commit", "rollback", "keep", "drop"] {
        for i in 0..PER_KIND {
            let key = format!("{kind}-{i}");
            let r = sender
                .send_in_transaction(Message::new(TOPIC, key.clone()).with_keys(&key), |m| {
                    local_state(m.keys().unwrap())
                })
                .await
                .expect("transactional send");
            assert_eq!(r.local_state, local_state(&key));
        }
    }
    // Oneway ENDs are written by now on loopback; give them a moment anyway.
    tokio::time::sleep(Duration::from_millis(200)).await;
    petrel.kill_9();
    sender.shutdown().await;

    let petrel = Petrel::start_with(&data, "async", &extra);
    let checked: Arc<Mutex<Vec<String>>> = Arc::default();
    let answering = Producer::new(GROUP, petrel.client_config("tx-checker"));
    let seen = checked.clone();
    answering.set_transaction_checker(Arc::new(move |m: &MessageExt| {
        let key = m.keys().unwrap_or_default().to_owned();
        seen.lock().unwrap().push(key.clone());
        if key.starts_with("keep-") {
            LocalTransactionState::Commit
        } else {
            LocalTransactionState::Rollback
        }
    }));
    answering.start().await.expect("start checker");
    answering.fetch_queues(TOPIC).await.expect("route");
    answering.instance().send_heartbeat_to_all_brokers().await;

    let admin = petrel_client::admin::Admin::new(petrel.client_config("tx-admin"));
    admin.instance().start().unwrap();
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let pending = admin.half_messages(Some(GROUP)).await.expect("list");
        if pending.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} half messages still pending: {:?}",
            pending.len(),
            pending.iter().map(|(_, h)| &h.keys).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    admin.shutdown();

    let mut delivered: BTreeMap<String, u32> = BTreeMap::new();
    for m in read_topic(&petrel, TOPIC).await.values().flatten() {
        *delivered
            .entry(m.keys().expect("keys").to_owned())
            .or_default() += 1;
    }
    let mut want = BTreeMap::new();
    for kind in ["commit", "keep"] {
        for i in 0..PER_KIND {
            want.insert(format!("{kind}-{i}"), 1);
        }
    }
    assert_eq!(delivered, want, "delivered keys and how often");

    let mut checked = checked.lock().unwrap().clone();
    checked.sort();
    checked.dedup();
    let mut unknown: Vec<String> = ["drop", "keep"]
        .iter()
        .flat_map(|k| (0..PER_KIND).map(move |i| format!("{k}-{i}")))
        .collect();
    unknown.sort();
    assert_eq!(checked, unknown, "only the unknown ones are checked");
    answering.shutdown().await;
    drop(petrel);
}
