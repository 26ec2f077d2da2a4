//! Plain ACL with Petrel's own Rust client: Petrel runs with `aclEnable` and a `plain_acl.yml`,
//! and the client signs every request with `ClientConfig::credentials` the way the Java
//! client's `AclClientRPCHook` does. An account sends and consumes exactly what the file grants;
//! a wrong secret, no credentials, a group not granted and an admin request from an account
//! that is not an admin are refused with NO_PERMISSION and their remark. A transaction left
//! unknown is committed by the broker's check, whose answer is signed too. A signed send replayed
//! byte for byte, or born outside `aclSignatureMaxAgeSec`, is refused.

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

/// A SEND_MESSAGE_V2 of one message to `topic` queue 0, born at `born_ms`, signed by `ak_pub`
/// as `AclClientRPCHook` signs it.
fn signed_send(topic: &str, born_ms: i64, body: &str) -> petrel_remoting::RemotingCommand {
    use petrel_common::acl_signature::{sign, ACCESS_KEY, SIGNATURE};
    use petrel_remoting::code::request;
    use petrel_remoting::headers::SendMessageRequestHeaderV2;
    let header = SendMessageRequestHeaderV2 {
        producer_group: "AclOwnRawProducer".into(),
        topic: topic.into(),
        default_topic: "TBW102".into(),
        default_topic_queue_nums: 4,
        queue_id: 0,
        sys_flag: 0,
        born_timestamp: born_ms,
        flag: 0,
        properties: Some(format!("UNIQ_KEY\u{1}{body}\u{2}")),
        reconsume_times: None,
        unit_mode: None,
        max_reconsume_times: None,
        batch: None,
        broker_name: None,
    };
    let mut cmd =
        petrel_remoting::RemotingCommand::request_with_header(request::SEND_MESSAGE_V2, &header)
            .with_body(bytes::Bytes::from(body.to_owned()));
    cmd.ext_fields.insert(ACCESS_KEY, "ak_pub");
    let signature = sign("pub-secret", cmd.ext_fields.iter(), &cmd.body_bytes());
    cmd.ext_fields.insert(SIGNATURE, signature);
    cmd
}

/// RocketMQ's signature carries no timestamp or nonce: the broker refuses a signed send whose
/// signature it has already seen, and one born outside `aclSignatureMaxAgeSec`; sends made the
/// ordinary way keep working, and so do pulls, which repeat byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_or_expired_signed_send_is_refused_and_fresh_sends_pass() {
    use petrel_remoting::{Connection, NoRequests};
    let dir = tempfile::tempdir().unwrap();
    let petrel = Standalone::start_with(acl_config(dir.path(), "aclSignatureMaxAgeSec = 60\n"))
        .await
        .unwrap();
    let ns = petrel.namesrv_addr.clone();
    let broker = petrel.broker_addr.clone();
    let admin = Admin::new(config(
        &ns,
        "acl-replay-admin",
        Some(Credentials::new("rocketmq_admin", "admin-secret-1")),
    ));
    admin.create_topic(&broker, TOPIC, 1).await.unwrap();
    wait_for_route(&admin, TOPIC).await;

    let timeout = Duration::from_secs(5);
    let conn = Connection::connect(&broker, Arc::new(NoRequests), timeout)
        .await
        .unwrap();
    let now = petrel_common::msg_id::now_ms() as i64;
    let first = signed_send(TOPIC, now, "raw-1");
    let resp = conn.request(first.clone(), timeout).await.unwrap();
    assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
    // The same signed bytes again (a new opaque, which is not signed): refused.
    let again = conn.request(first.clone(), timeout).await.unwrap();
    assert_eq!(again.code, response::NO_PERMISSION);
    assert_eq!(
        again.remark.as_deref(),
        Some(
            "replayed signature for accessKey ak_pub: this signed send was already received \
             within aclSignatureMaxAgeSec 60"
        )
    );
    // On another connection too.
    let conn2 = Connection::connect(&broker, Arc::new(NoRequests), timeout)
        .await
        .unwrap();
    let replayed = conn2.request(first, timeout).await.unwrap();
    assert_eq!(replayed.code, response::NO_PERMISSION);
    assert!(
        replayed.remark.as_deref().unwrap().contains("replayed"),
        "{:?}",
        replayed.remark
    );
    // Born two minutes ago, beyond the 60 s window.
    let old = conn
        .request(signed_send(TOPIC, now - 120_000, "raw-old"), timeout)
        .await
        .unwrap();
    assert_eq!(old.code, response::NO_PERMISSION);
    let remark = old.remark.unwrap();
    assert!(
        remark.starts_with("expired signature for accessKey ak_pub: bornTimestamp")
            && remark.ends_with("more than aclSignatureMaxAgeSec 60")
            && !remark.contains("pub-secret"),
        "{remark}"
    );
    // Another message, freshly born, passes.
    let fresh = conn
        .request(signed_send(TOPIC, now, "raw-2"), timeout)
        .await
        .unwrap();
    assert_eq!(fresh.code, response::SUCCESS, "{:?}", fresh.remark);
    conn.close();
    conn2.close();

    // The client's own sends, and pulls that repeat, keep working.
    let producer = Producer::new(
        "AclOwnProducer",
        config(
            &ns,
            "acl-replay-producer",
            Some(Credentials::new("ak_pub", "pub-secret")),
        ),
    );
    producer.start().await.unwrap();
    for i in 0..MESSAGES {
        producer
            .send(Message::new(TOPIC, format!("body-{i}")))
            .await
            .unwrap();
    }
    producer.shutdown().await;
    let puller = PullConsumer::new(
        GROUP,
        config(
            &ns,
            "acl-replay-puller",
            Some(Credentials::new("ak_sub", "sub-secret")),
        ),
    );
    puller.start().await.unwrap();
    let queues = puller.fetch_queues(TOPIC).await.unwrap();
    for _ in 0..2 {
        let r = puller.pull(&queues[0], 0, 32).await.unwrap();
        match r.status {
            petrel_client::PullStatus::Found(batch) => {
                assert_eq!(
                    batch.len(),
                    2 + MESSAGES,
                    "the two raw sends and the client's"
                )
            }
            other => panic!("pull answered {other:?}"),
        }
    }
    puller.shutdown().await;
    admin.shutdown();
    petrel.shutdown().await.unwrap();
}
