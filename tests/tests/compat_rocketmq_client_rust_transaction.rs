//! Compatibility: transactional messages with the third-party `rocketmq-client-rust` 1.0.0
//! (`TransactionMQProducer`, `TransactionListener`) against Petrel, whose half messages are
//! checked back 1 s after they are stored, then every 500 ms.
//!
//! 1. Instance A of producer group `compat_rmq_rust_tx` sends commit, rollback and unknown
//!    transactions; its check listener commits the unknown ones. A push consumer of this client
//!    gets every committed and every checked-then-committed message exactly once, with body,
//!    keys, tags, user property and message id as sent, and never a rolled-back one; only the
//!    unknown ones are checked, each with its real topic and body.
//! 2. A sends more transactions it leaves unknown (and cannot tell about when checked), then
//!    shuts down; instance B of the same group, which sends nothing, answers their checks:
//!    the ones B commits are delivered exactly once, the ones it rolls back never.
//! 3. Committed and checked-then-committed messages are found by key through the producer's
//!    own QUERY_MESSAGE (`MessageQuery::query`), with their original keys; a rolled-back one
//!    is not found.
//!
//! The broker checks back only producers it knows from heartbeats. A learns of the broker when
//! it sends; B, which never sends, is given its topic up front (`topics`, like Java's
//! `setTopics`) so that it has the broker's route at start and its first scheduled heartbeat,
//! 1 s later, reaches the broker. Nothing in the test sends a heartbeat for the client.
//!
//! Like the other compat tests, the client owns its runtime and the test is a plain `#[test]`
//! in its own binary.

#![recursion_limit = "256"]

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rocketmq_client_rust::{
    ClientResult, ClientRuntime, ConsumeConcurrentlyContext, ConsumeConcurrentlyStatus,
    LocalTransactionState, MQClientException, MQPushConsumer, MessageQuery, ProducerQueryRequest,
    ProducerQueryResponse, TransactionListener, TransactionMQProducer,
};
use rocketmq_model::common::message::message_ext::MessageExt;
use rocketmq_model::common::message::message_single::Message;
use rocketmq_model::common::message::MessageTrait;
use rocketmq_model::result::SendStatus;

use petrel::standalone::StandaloneConfig;
use petrel_tests::rmq_rust::{self, client_config, err};
use petrel_tests::{bounded, try_wait_for, Standalone, WAIT};

const TOPIC: &str = "CompatRmqRustTx";
const PRODUCER_GROUP: &str = "compat_rmq_rust_tx";
const CONSUMER_GROUP: &str = "compat_rmq_rust_tx_consumers";
const TAG: &str = "TagT";
/// Every message carries this second key, so "keys intact" means both keys.
const SHARED_KEY: &str = "rmq-rust-tx";
/// Transactions of each kind.
const EACH: usize = 5;
/// Key prefix of the transactions A leaves to another instance of the group.
const LEFT: &str = "left-";

/// Sender and checker: the local transaction's answer from the key's first word, and what
/// each check saw.
struct Listener {
    instance: &'static str,
    /// Whether this instance can tell the outcome of the `left-` transactions.
    knows_left: bool,
    checks: Checks,
}

/// One CHECK_TRANSACTION_STATE as the listener saw it.
#[derive(Debug, Clone)]
struct Check {
    instance: &'static str,
    key: String,
    topic: String,
    body: Vec<u8>,
    tags: String,
    uniq_key: String,
    transaction_id: String,
}

type Checks = Arc<Mutex<Vec<Check>>>;

/// One delivery as the consumer saw it.
#[derive(Debug, Clone)]
struct Delivery {
    keys: String,
    body: Vec<u8>,
    tags: String,
    order: String,
    uniq_key: String,
    sys_flag: i32,
}

/// First key → every delivery.
type Deliveries = Arc<Mutex<HashMap<String, Vec<Delivery>>>>;

/// RocketMQ's response code for "no message found by that key".
const NO_MESSAGE: i32 = 208;

/// The transaction bits of a sysflag (`MessageSysFlag` TRANSACTION_*_TYPE).
const SYSFLAG_TRANSACTION_MASK: i32 = 0x3 << 2;
const SYSFLAG_TRANSACTION_COMMIT: i32 = 0x2 << 2;

fn body(key: &str) -> Vec<u8> {
    format!("tx {key}").into_bytes()
}

fn first_key(keys: &str) -> String {
    keys.split(' ').next().unwrap_or_default().to_owned()
}

fn property(m: &impl MessageTrait, name: &str) -> String {
    m.property(&name.into())
        .map(|v| v.to_string())
        .unwrap_or_default()
}

/// The local transaction's outcome: `commit-` and `rollback-` ones are decided at once, every
/// other one is left unknown.
fn executed(key: &str) -> LocalTransactionState {
    if key.starts_with("commit-") {
        LocalTransactionState::CommitMessage
    } else if key.starts_with("rollback-") {
        LocalTransactionState::RollbackMessage
    } else {
        LocalTransactionState::Unknown
    }
}

impl TransactionListener for Listener {
    fn execute_local_transaction(
        &self,
        msg: &dyn MessageTrait,
        _arg: Option<&(dyn Any + Send + Sync)>,
    ) -> LocalTransactionState {
        executed(&first_key(
            msg.get_keys().as_ref().map_or("", |k| k.as_str()),
        ))
    }

    fn check_local_transaction(&self, msg: &MessageExt) -> LocalTransactionState {
        let key = first_key(msg.get_keys().as_ref().map_or("", |k| k.as_str()));
        self.checks.lock().unwrap().push(Check {
            instance: self.instance,
            key: key.clone(),
            topic: msg.topic().to_string(),
            body: msg.body().map(|b| b.to_vec()).unwrap_or_default(),
            tags: msg.get_tags().map(|t| t.to_string()).unwrap_or_default(),
            uniq_key: property(msg, "UNIQ_KEY"),
            transaction_id: msg
                .transaction_id()
                .map(|t| t.to_string())
                .unwrap_or_default(),
        });
        if let Some(left) = key.strip_prefix(LEFT) {
            // A lost track of these; B can tell.
            return if !self.knows_left {
                LocalTransactionState::Unknown
            } else if left.starts_with("commit-") {
                LocalTransactionState::CommitMessage
            } else {
                LocalTransactionState::RollbackMessage
            };
        }
        // The local transaction of an "unknown" message committed in the meantime.
        LocalTransactionState::CommitMessage
    }
}

#[test]
fn rocketmq_client_rust_transactions_commit_roll_back_and_are_checked_by_any_instance() {
    rmq_rust::run("compat-tx", scenario);
}

/// Petrel whose half messages are checked 1 s after they are stored, then every 500 ms.
fn config(dir: &std::path::Path) -> anyhow::Result<StandaloneConfig> {
    let conf = dir.join("broker.toml");
    writeln!(
        std::fs::File::create(&conf)?,
        "transactionTimeOut = 1000\ntransactionCheckInterval = 500"
    )?;
    let mut config = StandaloneConfig::ephemeral(dir.join("data"));
    config.broker_config_file = Some(conf);
    Ok(config)
}

fn producer(
    client_runtime: &Arc<ClientRuntime>,
    ns: &str,
    instance: &'static str,
    knows_left: bool,
    checks: &Checks,
) -> TransactionMQProducer {
    TransactionMQProducer::builder(Arc::clone(client_runtime))
        .client_config(client_config(ns, instance))
        .producer_group(PRODUCER_GROUP)
        .name_server_addr(ns.to_owned())
        // A loaded CI machine can take longer than the default 3 s for a first send.
        .send_msg_timeout(10_000)
        .transaction_listener(Listener {
            instance,
            knows_left,
            checks: Arc::clone(checks),
        })
        .build()
}

async fn scenario(client_runtime: Arc<ClientRuntime>) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let petrel = bounded(
        "Standalone::start",
        Standalone::start_with(config(dir.path())?),
    )
    .await??;
    let ns = petrel.namesrv_addr.clone();
    petrel.create_topic(TOPIC, 2).await?;

    let deliveries: Deliveries = Arc::default();
    let mut consumer =
        rmq_rust::push_consumer(&client_runtime, &ns, CONSUMER_GROUP, "compat-tx-consumer").build();
    bounded("consumer.subscribe", consumer.subscribe(TOPIC, "*"))
        .await?
        .map_err(err)?;
    {
        let deliveries = Arc::clone(&deliveries);
        consumer.register_message_listener_concurrently(
            move |msgs: &[&MessageExt],
                  _ctx: &ConsumeConcurrentlyContext|
                  -> ClientResult<ConsumeConcurrentlyStatus> {
                let mut d = deliveries.lock().unwrap();
                for m in msgs {
                    let keys = m.get_keys().map(|k| k.to_string()).unwrap_or_default();
                    d.entry(first_key(&keys)).or_default().push(Delivery {
                        keys,
                        body: m.body().map(|b| b.to_vec()).unwrap_or_default(),
                        tags: m.get_tags().map(|t| t.to_string()).unwrap_or_default(),
                        order: property(*m, "order"),
                        uniq_key: property(*m, "UNIQ_KEY"),
                        sys_flag: m.sys_flag(),
                    });
                }
                Ok(ConsumeConcurrentlyStatus::ConsumeSuccess)
            },
        );
    }
    bounded("consumer.start", consumer.start())
        .await?
        .map_err(err)?;

    // ---- 1. commit, rollback, unknown-then-checked, from instance A ----
    let checks: Checks = Arc::default();
    let mut a = producer(&client_runtime, &ns, "compat-tx-a", false, &checks);
    bounded("producer A start", a.start()).await?.map_err(err)?;
    // key → the message id (UNIQ_KEY) its send returned
    let mut sent: BTreeMap<String, String> = BTreeMap::new();
    for i in 0..EACH {
        for kind in ["commit", "rollback", "unknown"] {
            let key = format!("{kind}-{i}");
            let id = send_in_transaction(&a, &key).await?;
            sent.insert(key, id);
        }
    }
    let unknown_sent_at = Instant::now();
    let delivered_in_1: Vec<String> = sent
        .keys()
        .filter(|k| !k.starts_with("rollback-"))
        .cloned()
        .collect();
    wait_delivered(&deliveries, &delivered_in_1).await?;
    let unknown: BTreeSet<String> = (0..EACH).map(|i| format!("unknown-{i}")).collect();
    try_wait_for("A's checks of every unknown transaction", || {
        let c = checks.lock().unwrap();
        unknown.iter().all(|k| c.iter().any(|c| &c.key == k))
    })
    .await?;
    eprintln!(
        "rocketmq-client-rust transactions: the unknown ones were checked by A and delivered \
         {} ms after the last was sent",
        unknown_sent_at.elapsed().as_millis()
    );

    // ---- 3. found by key with the client's QUERY_MESSAGE ----
    for key in ["commit-3", "unknown-3"] {
        let found = query_by_key(&mut a, key).await?;
        anyhow::ensure!(
            found.len() == 1,
            "{} messages found by key {key}",
            found.len()
        );
        let m = &found[0];
        assert_eq!(m.topic().as_str(), TOPIC, "topic of {key}");
        assert_eq!(
            m.get_keys().map(|k| k.to_string()),
            Some(format!("{key} {SHARED_KEY}")),
            "keys of the message found by {key}"
        );
        assert_eq!(
            m.body().map(|b| b.to_vec()),
            Some(body(key)),
            "body of {key}"
        );
        assert_eq!(m.get_tags().map(|t| t.to_string()).as_deref(), Some(TAG));
        assert_eq!(property(m, "UNIQ_KEY"), sent[key], "message id of {key}");
    }
    // Found by the second key too (every key is indexed), each committed message once.
    let deadline = Instant::now() + WAIT;
    loop {
        let mut shared: Vec<String> = query_by_key(&mut a, SHARED_KEY)
            .await?
            .iter()
            .map(|m| first_key(&m.get_keys().map(|k| k.to_string()).unwrap_or_default()))
            .collect();
        shared.sort();
        if shared == delivered_in_1 {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline && shared.len() < delivered_in_1.len(),
            "found by key {SHARED_KEY}: {shared:?}, not {delivered_in_1:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Nothing is found by a rolled-back key: the client says so with an error of code
    // NO_MESSAGE (208), as Java's client does.
    match query(&mut a, "rollback-3").await? {
        Ok(list) => anyhow::bail!("found by a rolled-back key: {list:?}"),
        Err(e) => assert_eq!(
            e.source_ref::<MQClientException>()
                .map(MQClientException::response_code),
            Some(NO_MESSAGE),
            "query of a rolled-back key: {e}"
        ),
    }

    // ---- 2. A leaves transactions unknown and goes away; B of the same group answers ----
    let mut left: Vec<String> = Vec::new();
    for i in 0..EACH {
        for kind in ["commit", "rollback"] {
            let key = format!("{LEFT}{kind}-{i}");
            let id = send_in_transaction(&a, &key).await?;
            sent.insert(key.clone(), id);
            left.push(key);
        }
    }
    bounded("producer A shutdown", a.shutdown()).await?;
    let b_started_at = Instant::now();
    let mut b = TransactionMQProducer::builder(Arc::clone(&client_runtime))
        .client_config(client_config(&ns, "compat-tx-b"))
        .producer_group(PRODUCER_GROUP)
        .name_server_addr(ns.clone())
        // B sends nothing: with its topic given, it fetches the route at start, so its first
        // scheduled heartbeat (1 s after start) makes it known to the broker, which then
        // checks back through it. Without it, B would heartbeat to no broker at all.
        .topics(vec![TOPIC])
        .transaction_listener(Listener {
            instance: "compat-tx-b",
            knows_left: true,
            checks: Arc::clone(&checks),
        })
        .build();
    bounded("producer B start", b.start()).await?.map_err(err)?;
    try_wait_for("B's checks of every transaction A left", || {
        let c = checks.lock().unwrap();
        left.iter()
            .all(|k| c.iter().any(|c| c.instance == "compat-tx-b" && &c.key == k))
    })
    .await?;
    let first_check_by_b = b_started_at.elapsed();
    let delivered_in_2: Vec<String> = left
        .iter()
        .filter(|k| k.starts_with("left-commit-"))
        .cloned()
        .collect();
    wait_delivered(&deliveries, &delivered_in_2).await?;
    eprintln!(
        "rocketmq-client-rust transactions: B answered every check of what A left {} ms after \
         it started",
        first_check_by_b.as_millis()
    );
    // Late duplicates or a late rolled-back delivery would show up by now.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let admin = petrel_client::admin::Admin::new(petrel_client::ClientConfig::new(&ns));
    admin.instance().start()?;
    let pending = admin.half_messages(Some(PRODUCER_GROUP)).await?;
    admin.shutdown();

    bounded("producer B shutdown", b.shutdown()).await?;
    bounded("consumer.shutdown", consumer.shutdown()).await?;
    bounded("Standalone::shutdown", petrel.shutdown()).await??;

    // ---- assertions ----
    assert!(
        pending.is_empty(),
        "half messages left pending: {pending:?}"
    );
    let d = deliveries.lock().unwrap();
    let want: BTreeSet<&String> = delivered_in_1.iter().chain(&delivered_in_2).collect();
    let got: BTreeSet<&String> = d.keys().collect();
    assert_eq!(
        got, want,
        "delivered: every committed one, never a rolled-back one"
    );
    for key in want {
        let v = &d[key];
        assert_eq!(v.len(), 1, "{key} delivered once: {v:?}");
        let m = &v[0];
        assert_eq!(m.keys, format!("{key} {SHARED_KEY}"), "keys of {key}");
        assert_eq!(m.body, body(key), "body of {key}");
        assert_eq!(m.tags, TAG, "tags of {key}");
        assert_eq!(m.order, *key, "user property of {key}");
        assert_eq!(m.uniq_key, sent[key], "message id of {key}");
        assert_eq!(
            m.sys_flag & SYSFLAG_TRANSACTION_MASK,
            SYSFLAG_TRANSACTION_COMMIT,
            "{key} is stored as a committed transactional message"
        );
    }

    let c = checks.lock().unwrap();
    for check in c.iter() {
        let key = &check.key;
        assert!(
            key.starts_with("unknown-") || key.starts_with(LEFT),
            "{key} was resolved by its sender, yet checked"
        );
        assert_eq!(
            check.topic, TOPIC,
            "the check of {key} carries the real topic"
        );
        assert_eq!(check.body, body(key), "body of the checked {key}");
        assert_eq!(check.tags, TAG, "tags of the checked {key}");
        assert_eq!(check.uniq_key, sent[key], "message id of the checked {key}");
        assert_eq!(
            check.transaction_id, sent[key],
            "transaction id of the checked {key}"
        );
        if key.starts_with("unknown-") {
            assert_eq!(
                check.instance, "compat-tx-a",
                "{key} is checked before A leaves"
            );
        }
    }
    let checked_by = |instance: &str| -> BTreeSet<String> {
        c.iter()
            .filter(|c| c.instance == instance && c.key.starts_with("unknown-"))
            .map(|c| c.key.clone())
            .collect()
    };
    assert_eq!(
        checked_by("compat-tx-a"),
        unknown,
        "every unknown one is checked"
    );
    let answered_by_b: BTreeSet<&String> = c
        .iter()
        .filter(|c| c.instance == "compat-tx-b")
        .map(|c| &c.key)
        .collect();
    assert_eq!(
        answered_by_b,
        left.iter().collect::<BTreeSet<_>>(),
        "B is checked for exactly what A left"
    );
    Ok(())
}

/// Sends `key` as a transactional message and checks the local outcome the client reports;
/// returns the message id (UNIQ_KEY).
async fn send_in_transaction(p: &TransactionMQProducer, key: &str) -> anyhow::Result<String> {
    let mut message = Message::builder()
        .topic(TOPIC)
        .tags(TAG)
        .keys(vec![key.to_owned(), SHARED_KEY.to_owned()])
        .body_slice(&body(key))
        .build_unchecked();
    message.put_property("order".into(), key.into());
    let r = bounded(
        "send_message_in_transaction",
        p.send_message_in_transaction(message, None::<()>),
    )
    .await?
    .map_err(|e| err(e).context(format!("transactional send of {key}")))?;
    anyhow::ensure!(
        r.local_transaction_state == Some(executed(key)),
        "{key}: local state {:?}",
        r.local_transaction_state
    );
    let send = r
        .send_result
        .ok_or_else(|| anyhow::anyhow!("{key}: no send result"))?;
    anyhow::ensure!(
        send.send_status == SendStatus::SendOk,
        "{key}: send answered {:?}",
        send.send_status
    );
    send.msg_id
        .map(|id| id.to_string())
        .ok_or_else(|| anyhow::anyhow!("{key}: no message id"))
}

async fn wait_delivered(deliveries: &Deliveries, keys: &[String]) -> anyhow::Result<()> {
    try_wait_for("every committed message to be delivered", || {
        let d = deliveries.lock().unwrap();
        keys.iter().all(|k| d.contains_key(k))
    })
    .await
}

/// QUERY_MESSAGE through the producer, over all time: the client's own answer.
async fn query(
    p: &mut TransactionMQProducer,
    key: &str,
) -> anyhow::Result<ClientResult<Vec<MessageExt>>> {
    let request = ProducerQueryRequest::QueryMessages {
        topic: TOPIC.to_owned(),
        key: key.to_owned(),
        max_count: 32,
        begin_timestamp: 0,
        end_timestamp: i64::MAX as u64,
    };
    Ok(bounded("query by key", p.query(request))
        .await?
        .map(|answer| match answer {
            ProducerQueryResponse::Query(r) => r.message_list().clone(),
            _ => Vec::new(),
        }))
}

/// [`query`] until something is found: the index of a message just consumed may lag a moment.
async fn query_by_key(p: &mut TransactionMQProducer, key: &str) -> anyhow::Result<Vec<MessageExt>> {
    let deadline = Instant::now() + WAIT;
    loop {
        let outcome = query(p, key).await?;
        match outcome {
            Ok(found) if !found.is_empty() => return Ok(found),
            _ if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(_) => anyhow::bail!("nothing found by key {key}"),
            Err(e) => return Err(err(e).context(format!("nothing found by key {key}"))),
        }
    }
}
