//! Plain ACL with Petrel's own Rust client: Petrel runs with `aclEnable` and a `plain_acl.yml`,
//! and the client signs every request with `ClientConfig::credentials` the way the Java
//! client's `AclClientRPCHook` does. An account sends and consumes exactly what the file grants;
//! a wrong secret, no credentials, a group not granted and an admin request from an account
//! that is not an admin are refused with NO_PERMISSION and their remark. A transaction left
//! unknown is committed by the broker's check, whose answer is signed too.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use petrel::standalone::StandaloneConfig;
use petrel_client::admin::Admin;
use petrel_client::{
    ClientConfig, ClientError, ConsumeFromWhere, ConsumeStatus, Credentials, LocalTransactionState,
    Message, MessageExt, Producer, PullConsumer, PushConsumer,
};
use petrel_remoting::code::response;
use petrel_tests::{wait_for, Standalone};

const TOPIC: &str = "AclOwnTopicA";
const GROUP: &str = "AclOwnGroupG";
/// A group the consuming account has no permission on.
const OTHER_GROUP: &str = "AclOwnGroupH";
const MESSAGES: usize = 20;

/// No address is whitelisted for these accounts: every request from loopback must be signed.
const RULES: &str = "globalWhiteRemoteAddresses:
  - 10.10.103.*

accounts:
  - accessKey: rocketmq_admin
    secretKey: admin-secret-1
    admin: true
  - accessKey: ak_pub
    secretKey: pub-secret
    admin: false
    defaultTopicPerm: DENY
    defaultGroupPerm: DENY
    topicPerms:
      - AclOwnTopicA=PUB
      - AclOwnTx=PUB
  - accessKey: ak_sub
    secretKey: sub-secret
    admin: false
    defaultTopicPerm: DENY
    defaultGroupPerm: DENY
    topicPerms:
      - AclOwnTopicA=SUB
    groupPerms:
      - AclOwnGroupG=SUB
";

/// A standalone with `aclEnable` and [`RULES`]; `extra` is more of its TOML file.
fn acl_config(dir: &Path, extra: &str) -> StandaloneConfig {
    let acl_file = dir.join("plain_acl.yml");
    std::fs::write(&acl_file, RULES).unwrap();
    petrel_tests::config_with_acl(dir, &acl_file, extra)
}

fn config(ns: &str, instance: &str, credentials: Option<Credentials>) -> ClientConfig {
    let mut c = ClientConfig::new(ns).with_instance_name(instance);
    c.credentials = credentials;
    c.request_timeout = Duration::from_secs(5);
    c
}

/// The code and remark of a refusal; panics on success or another error.
fn refusal<T: std::fmt::Debug>(what: &str, r: petrel_client::Result<T>) -> String {
    match r {
        Err(ClientError::Broker { code, remark }) => {
            assert_eq!(
                code,
                response::NO_PERMISSION,
                "{what}: code {code} ({remark})"
            );
            remark
        }
        other => panic!("{what}: expected NO_PERMISSION, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_client_signs_and_gets_exactly_what_plain_acl_yml_grants() {
    let dir = tempfile::tempdir().unwrap();
    let petrel = Standalone::start_with(acl_config(dir.path(), ""))
        .await
        .unwrap();
    let ns = petrel.namesrv_addr.clone();
    let broker = petrel.broker_addr.clone();

    // Admin requests need the admin account.
    let not_admin = Admin::new(config(
        &ns,
        "acl-not-admin",
        Some(Credentials::new("ak_pub", "pub-secret")),
    ));
    let remark = refusal(
        "ak_pub creating a topic",
        not_admin.create_topic(&broker, TOPIC, 2).await,
    );
    assert_eq!(
        remark,
        "request code 17 needs an admin account and accessKey ak_pub is not one"
    );
    not_admin.shutdown();
    let admin = Admin::new(config(
        &ns,
        "acl-admin",
        Some(Credentials::new("rocketmq_admin", "admin-secret-1")),
    ));
    admin.create_topic(&broker, TOPIC, 2).await.unwrap();
    wait_for_route(&admin, TOPIC).await;

    // The PUB account sends.
    let producer = Producer::new(
        "AclOwnProducer",
        config(
            &ns,
            "acl-producer",
            Some(Credentials::new("ak_pub", "pub-secret").with_security_token("token-1")),
        ),
    );
    producer.start().await.unwrap();
    for i in 0..MESSAGES {
        let msg = Message::new(TOPIC, format!("body-{i}")).with_keys(format!("key-{i}"));
        producer.send(msg).await.unwrap();
    }
    producer.shutdown().await;

    // A wrong secret, and no credentials at all, are refused with their remark.
    let wrong = Producer::new(
        "AclOwnProducer",
        config(
            &ns,
            "acl-wrong-secret",
            Some(Credentials::new("ak_pub", "not-the-secret")),
        ),
    );
    wrong.start().await.unwrap();
    let remark = refusal(
        "a wrong secret",
        wrong.send(Message::new(TOPIC, "refused")).await,
    );
    assert_eq!(remark, "signature mismatch for accessKey ak_pub");
    wrong.shutdown().await;
    let unsigned = Producer::new("AclOwnProducer", config(&ns, "acl-unsigned", None));
    unsigned.start().await.unwrap();
    let remark = refusal(
        "no credentials",
        unsigned.send(Message::new(TOPIC, "refused")).await,
    );
    assert!(
        remark.starts_with("the request carries no AccessKey and address 127.0.0.1"),
        "{remark}"
    );
    unsigned.shutdown().await;

    // The SUB account consumes everything as the group it may use, exactly once...
    let seen: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let sub = || Some(Credentials::new("ak_sub", "sub-secret"));
    let mut consumer = PushConsumer::new(GROUP, config(&ns, "acl-consumer", sub()));
    consumer.subscribe(TOPIC, "*").unwrap();
    consumer.set_consume_from(ConsumeFromWhere::FirstOffset);
    consumer.options.offset_commit_interval = Duration::from_millis(200);
    {
        let seen = seen.clone();
        consumer.register_listener(move |msgs: &[MessageExt]| {
            let mut seen = seen.lock().unwrap();
            for m in msgs {
                *seen
                    .entry(m.keys().unwrap_or_default().to_owned())
                    .or_default() += 1;
            }
            ConsumeStatus::Success
        });
    }
    consumer.start().await.unwrap();
    wait_for("every message at the SUB account's consumer", || {
        seen.lock().unwrap().len() == MESSAGES
    })
    .await;
    // A moment for a duplicate to show up, and for the offsets to be committed.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(seen.lock().unwrap().values().all(|n| *n == 1), "{seen:?}");
    consumer.shutdown().await;

    // ...but not as another group.
    let puller = PullConsumer::new(OTHER_GROUP, config(&ns, "acl-puller", sub()));
    puller.start().await.unwrap();
    let queues = puller.fetch_queues(TOPIC).await.unwrap();
    let remark = refusal(
        "pulling as a group without SUB",
        puller.pull(&queues[0], 0, 32).await,
    );
    assert_eq!(
        remark,
        format!("No permission to SUB group {OTHER_GROUP} for account ak_sub")
    );
    puller.shutdown().await;

    admin.shutdown();
    petrel.shutdown().await.unwrap();
}

async fn wait_for_route(admin: &Admin, topic: &str) {
    for _ in 0..250 {
        if admin.topic_route(topic).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no route for {topic}");
}

/// The END_TRANSACTION that answers the broker's check goes out on the connection the check came
/// in on, not through the instance's request path: unsigned, it would be refused and the
/// message never committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_check_is_answered_with_a_signed_end_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let extra = "transactionTimeOut = 500\ntransactionCheckInterval = 500\n";
    let petrel = Standalone::start_with(acl_config(dir.path(), extra))
        .await
        .unwrap();
    let ns = petrel.namesrv_addr.clone();
    let topic = "AclOwnTx";
    let admin_keys = || Some(Credentials::new("rocketmq_admin", "admin-secret-1"));
    let admin = Admin::new(config(&ns, "acl-tx-admin", admin_keys()));
    admin
        .create_topic(&petrel.broker_addr, topic, 1)
        .await
        .unwrap();
    wait_for_route(&admin, topic).await;

    let pub_keys = || Some(Credentials::new("ak_pub", "pub-secret"));
    let producer = Producer::new("AclOwnTxProducer", config(&ns, "acl-tx", pub_keys()));
    let checks: Arc<Mutex<u32>> = Arc::default();
    {
        let checks = checks.clone();
        producer.set_transaction_checker(Arc::new(move |_: &MessageExt| {
            *checks.lock().unwrap() += 1;
            LocalTransactionState::Commit
        }));
    }
    producer.start().await.unwrap();
    for (key, state) in [
        ("committed", LocalTransactionState::Commit),
        ("checked", LocalTransactionState::Unknown),
    ] {
        let r = producer
            .send_in_transaction(Message::new(topic, key).with_keys(key), |_| state)
            .await
            .unwrap();
        assert_eq!(r.local_state, state);
    }
    // The broker checks producers it has a heartbeat from: send one now rather than in 30 s.
    assert_eq!(producer.instance().send_heartbeat_to_all_brokers().await, 1);

    // The admin account (no permissions listed) reaches every topic and group.
    let seen: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let mut consumer = PushConsumer::new("AclOwnTxGroup", config(&ns, "acl-tx-c", admin_keys()));
    consumer.subscribe(topic, "*").unwrap();
    consumer.set_consume_from(ConsumeFromWhere::FirstOffset);
    {
        let seen = seen.clone();
        consumer.register_listener(move |msgs: &[MessageExt]| {
            let mut seen = seen.lock().unwrap();
            for m in msgs {
                *seen
                    .entry(m.keys().unwrap_or_default().to_owned())
                    .or_default() += 1;
            }
            ConsumeStatus::Success
        });
    }
    consumer.start().await.unwrap();
    wait_for("the committed and the checked transaction", || {
        let seen = seen.lock().unwrap();
        seen.contains_key("committed") && seen.contains_key("checked")
    })
    .await;
    assert!(*checks.lock().unwrap() >= 1);
    consumer.shutdown().await;
    producer.shutdown().await;
    admin.shutdown();
    petrel.shutdown().await.unwrap();
}
