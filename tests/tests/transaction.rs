//! Transactional sends with Petrel's own Rust client: commit, rollback and unknown-then-checked
//! transactions end as they should, and a second producer instance of the group answers the
//! check for a transaction the first one left unknown.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use petrel::standalone::StandaloneConfig;
use petrel_client::{ClientConfig, LocalTransactionState, Message, MessageExt, Producer};
use petrel_tests::{counting_consumer, wait_for, KeyCounts, Standalone};

fn state_of(key: &str) -> LocalTransactionState {
    match key.split('-').next() {
        Some("commit") => LocalTransactionState::Commit,
        Some("rollback") => LocalTransactionState::Rollback,
        _ => LocalTransactionState::Unknown,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_commit_roll_back_and_are_checked_by_any_instance_of_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("broker.toml");
    writeln!(
        std::fs::File::create(&conf).unwrap(),
        "transactionTimeOut = 500\ntransactionCheckInterval = 500"
    )
    .unwrap();
    let mut config = StandaloneConfig::ephemeral(dir.path().join("data"));
    config.broker_config_file = Some(conf);
    let petrel = Standalone::start_with(config).await.unwrap();
    let topic = "OwnTx";
    petrel.create_topic(topic, 2).await.unwrap();

    // The sender leaves "unknown" ones to the check, and is not the instance that answers it.
    let sender = Producer::new(
        "own-tx",
        ClientConfig::new(&petrel.namesrv_addr).with_instance_name("tx-sender"),
    );
    sender.start().await.unwrap();
    let checked: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let answering = Producer::new(
        "own-tx",
        ClientConfig::new(&petrel.namesrv_addr).with_instance_name("tx-checker"),
    );
    let seen = checked.clone();
    answering.set_transaction_checker(Arc::new(move |m: &MessageExt| {
        seen.lock()
            .unwrap()
            .push(m.keys().unwrap_or_default().to_owned());
        LocalTransactionState::Commit
    }));
    answering.start().await.unwrap();
    // An instance that sends nothing learns of the broker from a route, then heartbeats to it.
    answering.fetch_queues(topic).await.unwrap();
    answering.instance().send_heartbeat_to_all_brokers().await;

    let mut want = Vec::new();
    for i in 0..5 {
        for kind in ["commit", "rollback", "unknown"] {
            let key = format!("{kind}-{i}");
            let r = sender
                .send_in_transaction(
                    Message::new(topic, key.clone().into_bytes()).with_keys(&key),
                    |m| state_of(m.keys().unwrap()),
                )
                .await
                .unwrap();
            assert_eq!(r.local_state, state_of(&key));
            if kind != "rollback" {
                want.push(key);
            }
        }
    }
    let counts: KeyCounts = Arc::default();
    let consumer = counting_consumer(
        &petrel.namesrv_addr,
        "own-tx-cg",
        "c",
        topic,
        counts.clone(),
    );
    consumer.start().await.unwrap();
    wait_for("every committed and checked message", || {
        let c = counts.lock().unwrap();
        want.iter().all(|k| c.contains_key(k))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let counts = counts.lock().unwrap().clone();
    for k in &want {
        assert_eq!(counts.get(k), Some(&1), "{k} delivered once: {counts:?}");
    }
    assert_eq!(
        counts.len(),
        want.len(),
        "nothing rolled back arrives: {counts:?}"
    );
    let mut checked = checked.lock().unwrap().clone();
    checked.sort();
    checked.dedup();
    assert_eq!(
        checked,
        (0..5).map(|i| format!("unknown-{i}")).collect::<Vec<_>>(),
        "only the unknown ones are checked"
    );
    consumer.shutdown().await;
    sender.shutdown().await;
    answering.shutdown().await;
    petrel.shutdown().await.unwrap();
}

/// `petrel admin half-messages` (Admin::half_messages): the half messages a group left unknown
/// are listed with their id, real topic, queue and keys until the check resolves them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_half_messages_are_listed_until_resolved() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("broker.toml");
    writeln!(
        std::fs::File::create(&conf).unwrap(),
        "transactionTimeOut = 3000\ntransactionCheckInterval = 500"
    )
    .unwrap();
    let mut config = StandaloneConfig::ephemeral(dir.path().join("data"));
    config.broker_config_file = Some(conf);
    let petrel = Standalone::start_with(config).await.unwrap();
    let topic = "ListedTx";
    petrel.create_topic(topic, 2).await.unwrap();
    let producer = Producer::new(
        "listed-tx",
        ClientConfig::new(&petrel.namesrv_addr).with_instance_name("listed-tx"),
    );
    producer.set_transaction_checker(Arc::new(|_: &MessageExt| LocalTransactionState::Commit));
    producer.start().await.unwrap();
    let mut ids = Vec::new();
    for i in 0..3 {
        let key = format!("pending-{i}");
        let r = producer
            .send_in_transaction(
                Message::new(topic, key.clone().into_bytes()).with_keys(&key),
                |_| LocalTransactionState::Unknown,
            )
            .await
            .unwrap();
        ids.push(r.send.msg_id.clone());
    }
    let admin = petrel_client::admin::Admin::new(ClientConfig::new(&petrel.namesrv_addr));
    admin.instance().start().unwrap();
    let listed = admin.half_messages(Some("listed-tx")).await.unwrap();
    assert_eq!(listed.len(), 3, "{listed:?}");
    for (i, (broker, h)) in listed.iter().enumerate() {
        assert_eq!(broker, "broker-a");
        assert_eq!(h.producer_group, "listed-tx");
        assert_eq!(h.msg_id, ids[i]);
        assert_eq!(h.topic, topic);
        assert!((0..2).contains(&h.queue_id));
        assert_eq!(h.keys, format!("pending-{i}"));
        assert!(h.next_check_timestamp > h.store_timestamp);
    }
    assert!(admin.half_messages(Some("other")).await.unwrap().is_empty());
    assert_eq!(admin.half_messages(None).await.unwrap().len(), 3);
    // The check commits them; then nothing is pending. (The broker checks back with the
    // producers it knows from heartbeats; send one now rather than wait for the 30 s one.)
    producer.instance().send_heartbeat_to_all_brokers().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !admin.half_messages(None).await.unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "never resolved");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    admin.shutdown();
    producer.shutdown().await;
    petrel.shutdown().await.unwrap();
}
