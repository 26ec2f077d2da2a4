//! Compatibility: `mqadmin`'s daily operations through the third-party `DefaultMQAdminExt` of
//! `rocketmq-client-rust` 1.0.0, a port of Java's admin client API.
//!
//! One scenario against a real name server and broker: the cluster and broker reads
//! (clusterList, brokerStatus, getBrokerConfig), the topic life cycle (updateTopic,
//! topicRoute, topicList, topicStatus, deleteTopic), subscription groups (updateSubGroup, read
//! back, deleteSubGroup), a consuming group's progress and connections (consumerProgress,
//! consumerConnection), message lookups (queryMsgByKey, queryMsgById) and resetOffsetByTime
//! while the group consumes, plus producerConnection, the groups consuming a topic, a message
//! track, the list of all subscription groups, a topic's config, a group's topics and
//! subscription, cloneGroupOffset, and the two requests the broker relays to a consumer
//! (consumerStatus, queryMsgById's consume-directly). Every answer is checked against what the
//! test did, not only for success. What `DefaultMQAdminExt` asks that Petrel does not serve is
//! listed in docs/compat-rocketmq-client-rust.md. Like the other compat tests, the client owns
//! its runtime and the test is a plain `#[test]` in its own binary.

#![recursion_limit = "256"]

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rocketmq_client_rust::{
    BrokerAdmin, ClientResult, ClientRuntime, ConsumeConcurrentlyContext,
    ConsumeConcurrentlyStatus, ConsumerAdmin, DefaultMQAdminExt, DefaultMQProducer,
    DefaultMQPushConsumer, MQPushConsumer, OffsetAdmin, RouteAdmin, TopicAdmin,
};
use rocketmq_model::common::message::message_ext::MessageExt;
use rocketmq_model::common::message::message_single::Message;
use rocketmq_model::common::message::MessageTrait;
use rocketmq_model::topic::TopicConfig;
use rocketmq_protocol::protocol::subscription::subscription_group_config::SubscriptionGroupConfig;

use petrel::standalone::StandaloneConfig;
use petrel_common::msg_id::now_ms;
use petrel_tests::rmq_rust::{self, client_config, err};
use petrel_tests::{bounded, try_wait_for, Standalone, WAIT};

const CLUSTER: &str = "DefaultCluster";
const BROKER_NAME: &str = "broker-a";
const TOPIC: &str = "CompatAdminOrders";
const DOOMED_TOPIC: &str = "CompatAdminDoomed";
const GROUP: &str = "compat_admin_cg";
const ADMIN_GROUP: &str = "compat_admin_sg";
const PRODUCER_GROUP: &str = "compat_admin_pg";
const CLONE_GROUP: &str = "compat_admin_clone";
const QUEUES: u32 = 4;
/// Messages sent before the reset point, then after it.
const BEFORE: usize = 12;
const AFTER: usize = 8;

/// Per key: how many times it was delivered.
type Deliveries = Arc<Mutex<HashMap<String, u32>>>;

/// What the producer was told about one message.
struct Sent {
    key: String,
    body: Vec<u8>,
    queue_id: i32,
    queue_offset: u64,
    offset_msg_id: String,
    /// The client's message id (`UNIQ_KEY`).
    uniq_key: String,
}

#[test]
fn mqadmin_daily_operations_against_petrel() {
    rmq_rust::run("compat-admin", scenario);
}

async fn scenario(client_runtime: Arc<ClientRuntime>) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let petrel = bounded(
        "Standalone::start",
        Standalone::start_with(StandaloneConfig::ephemeral(dir.path())),
    )
    .await??;
    let ns = petrel.namesrv_addr.clone();
    let broker = petrel.broker_addr.clone();

    let mut admin = DefaultMQAdminExt::with_admin_ext_group_and_timeout(
        Arc::clone(&client_runtime),
        "compat_admin_tools",
        Duration::from_secs(5),
    );
    admin
        .client_config_mut()
        .set_instance_name("compat-admin".into());
    admin.set_namesrv_addr(ns.as_str());
    bounded("admin.start", admin.start()).await?.map_err(err)?;

    // clusterList
    let cluster = call(
        "examineBrokerClusterInfo",
        admin.examine_broker_cluster_info(),
    )
    .await?;
    let clusters = cluster.cluster_addr_table.clone().unwrap_or_default();
    anyhow::ensure!(
        clusters.get(CLUSTER).is_some_and(
            |names| names.len() == 1 && names.iter().any(|n| n.as_str() == BROKER_NAME)
        ),
        "clusterAddrTable: {clusters:?}"
    );
    let brokers = cluster.broker_addr_table.clone().unwrap_or_default();
    let data = brokers
        .get(BROKER_NAME)
        .ok_or_else(|| anyhow::anyhow!("no {BROKER_NAME} in brokerAddrTable: {brokers:?}"))?;
    anyhow::ensure!(data.cluster() == CLUSTER, "cluster {}", data.cluster());
    anyhow::ensure!(
        data.broker_addrs().get(&0).map(|a| a.as_str()) == Some(broker.as_str()),
        "master address {:?}, broker listens on {broker}",
        data.broker_addrs()
    );

    // getBrokerConfig
    let config = call(
        "getBrokerConfig",
        admin.get_broker_config(broker.as_str().into()),
    )
    .await?;
    let config: HashMap<String, String> = config
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    anyhow::ensure!(
        config.get("brokerName").map(String::as_str) == Some(BROKER_NAME),
        "brokerName in {config:?}"
    );
    anyhow::ensure!(config.get("brokerClusterName").map(String::as_str) == Some(CLUSTER));
    anyhow::ensure!(
        config.get("listenPort").map(String::as_str) == broker.rsplit(':').next(),
        "listenPort {:?}, broker {broker}",
        config.get("listenPort")
    );

    // updateTopic, then read it back through the route and the topic list.
    let mut topic_config = TopicConfig::with_perm(TOPIC, QUEUES, QUEUES, 6);
    topic_config.order = false;
    call(
        "updateTopic",
        admin.create_and_update_topic_config(broker.as_str().into(), topic_config),
    )
    .await?;
    call(
        "updateTopic (to delete)",
        admin.create_and_update_topic_config(
            broker.as_str().into(),
            TopicConfig::with_perm(DOOMED_TOPIC, 2, 2, 6),
        ),
    )
    .await?;
    let config_back = call(
        "examineTopicConfig",
        admin.examine_topic_config(broker.as_str().into(), TOPIC.into()),
    )
    .await?;
    anyhow::ensure!(
        config_back.topic_name.as_ref().map(|t| t.as_str()) == Some(TOPIC)
            && (
                config_back.read_queue_nums,
                config_back.write_queue_nums,
                config_back.perm
            ) == (QUEUES, QUEUES, 6),
        "topic config read back {config_back:?}"
    );
    let route = wait_for_route(&admin, TOPIC, true).await?;
    anyhow::ensure!(route.queue_datas.len() == 1, "{:?}", route.queue_datas);
    let q = &route.queue_datas[0];
    anyhow::ensure!(q.broker_name().as_str() == BROKER_NAME);
    anyhow::ensure!(
        (q.read_queue_nums(), q.write_queue_nums(), q.perm()) == (QUEUES, QUEUES, 6),
        "route queue data {q:?}"
    );
    anyhow::ensure!(
        route.broker_datas.len() == 1
            && route.broker_datas[0]
                .broker_addrs()
                .get(&0)
                .map(|a| a.as_str())
                == Some(broker.as_str()),
        "route broker data {:?}",
        route.broker_datas
    );
    let topics = call("topicList", admin.fetch_all_topic_list()).await?;
    for t in [TOPIC, DOOMED_TOPIC] {
        anyhow::ensure!(
            topics.topic_list.iter().any(|x| x.as_str() == t),
            "{t} not in the topic list {:?}",
            topics.topic_list
        );
    }

    // deleteTopic: gone from the broker, the route and the list.
    call(
        "deleteTopic",
        admin.delete_topic(DOOMED_TOPIC.into(), CLUSTER.into()),
    )
    .await?;
    wait_for_route(&admin, DOOMED_TOPIC, false).await?;
    let topics = call("topicList", admin.fetch_all_topic_list()).await?;
    anyhow::ensure!(
        !topics.topic_list.iter().any(|x| x.as_str() == DOOMED_TOPIC),
        "{DOOMED_TOPIC} still listed after deleteTopic"
    );

    // updateSubGroup, read back, deleteSubGroup.
    let mut group_config = SubscriptionGroupConfig::new(ADMIN_GROUP.into());
    group_config.set_retry_max_times(5);
    group_config.set_retry_queue_nums(2);
    group_config.set_consume_broadcast_enable(false);
    call(
        "updateSubGroup",
        admin.create_and_update_subscription_group_config(broker.as_str().into(), group_config),
    )
    .await?;
    let back = call(
        "examineSubscriptionGroupConfig",
        admin.examine_subscription_group_config(broker.as_str().into(), ADMIN_GROUP.into()),
    )
    .await?;
    anyhow::ensure!(
        back.group_name().as_str() == ADMIN_GROUP
            && back.retry_max_times() == 5
            && back.retry_queue_nums() == 2
            && !back.consume_broadcast_enable(),
        "read back {back:?}"
    );
    call(
        "deleteSubGroup",
        admin.delete_subscription_group(broker.as_str().into(), ADMIN_GROUP.into(), Some(true)),
    )
    .await?;
    let gone = bounded(
        "examineSubscriptionGroupConfig after delete",
        admin.examine_subscription_group_config(broker.as_str().into(), ADMIN_GROUP.into()),
    )
    .await?;
    anyhow::ensure!(
        gone.is_err(),
        "the deleted group still reads back: {gone:?}"
    );

    // Produce, then consume with a push consumer so the group is online.
    let mut producer = DefaultMQProducer::builder(Arc::clone(&client_runtime))
        .client_config(client_config(&ns, "compat-admin-producer"))
        .producer_group(PRODUCER_GROUP)
        .name_server_addr(ns.clone())
        .send_msg_timeout(3_000)
        .build();
    bounded("producer.start", producer.start())
        .await?
        .map_err(err)?;
    let first_send_ms = now_ms();
    let mut sent = Vec::new();
    for i in 0..BEFORE {
        sent.push(send(&producer, &format!("admin-{i}")).await?);
    }
    // The reset point: store times of the first batch are at or before it, of the second after.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let reset_at = now_ms();
    tokio::time::sleep(Duration::from_millis(50)).await;
    for i in BEFORE..BEFORE + AFTER {
        sent.push(send(&producer, &format!("admin-{i}")).await?);
    }
    let mut sent_per_queue = [0u64; QUEUES as usize];
    for s in &sent {
        sent_per_queue[s.queue_id as usize] += 1;
    }

    // topicStatus: each queue holds exactly what was sent to it.
    let stats = call("topicStatus", admin.examine_topic_stats(TOPIC.into(), None)).await?;
    let table = stats.get_offset_table();
    anyhow::ensure!(table.len() == QUEUES as usize, "topicStatus rows {table:?}");
    for (mq, offsets) in table {
        anyhow::ensure!(mq.topic_str() == TOPIC && mq.broker_name().as_str() == BROKER_NAME);
        let q = mq.queue_id() as usize;
        anyhow::ensure!(
            offsets.get_min_offset() == 0 && offsets.get_max_offset() == sent_per_queue[q] as i64,
            "queue {q}: {offsets:?}, sent {}",
            sent_per_queue[q]
        );
        if sent_per_queue[q] > 0 {
            anyhow::ensure!(
                offsets.get_last_update_timestamp() >= first_send_ms as i64,
                "queue {q}: lastUpdateTimestamp {}",
                offsets.get_last_update_timestamp()
            );
        }
    }

    // queryMsgByKey and queryMsgById: body and properties as sent.
    let probe = &sent[3];
    let found = call(
        "queryMsgByKey",
        admin.inner().query_message_by_key(
            None,
            TOPIC.into(),
            probe.key.as_str().into(),
            32,
            0,
            i64::MAX,
            "K".into(),
            None,
        ),
    )
    .await?;
    let hits: Vec<&MessageExt> = found
        .message_list()
        .iter()
        .filter(|m| m.get_keys().is_some_and(|k| k.as_str() == probe.key))
        .collect();
    anyhow::ensure!(
        hits.len() == 1 && found.message_list().len() == 1,
        "queryMsgByKey {}: {} messages, {} with the key",
        probe.key,
        found.message_list().len(),
        hits.len()
    );
    check_message(hits[0], probe)?;
    let viewed = call(
        "queryMsgById",
        admin.query_message(
            CLUSTER.into(),
            TOPIC.into(),
            probe.offset_msg_id.as_str().into(),
        ),
    )
    .await?;
    check_message(&viewed, probe)?;
    let by_uniq = call(
        "queryMsgByUniqueKey",
        admin.inner().query_message_by_unique_key(
            None,
            TOPIC.into(),
            probe.uniq_key.as_str().into(),
            32,
            0,
            i64::MAX,
        ),
    )
    .await?;
    anyhow::ensure!(
        by_uniq.message_list().len() == 1,
        "queryMsgByUniqueKey {}: {} messages",
        probe.uniq_key,
        by_uniq.message_list().len()
    );
    check_message(&by_uniq.message_list()[0], probe)?;

    let deliveries: Deliveries = Arc::default();
    let mut consumer = start_consumer(&client_runtime, &ns, Arc::clone(&deliveries)).await?;
    let all: Vec<String> = sent.iter().map(|s| s.key.clone()).collect();
    try_wait_for("every message consumed once", || {
        let d = deliveries.lock().unwrap();
        all.iter().all(|k| d.contains_key(k))
    })
    .await?;

    // consumerProgress: the committed offsets reach the broker offsets (the client commits
    // every second here), diff 0.
    let progress = caught_up_progress(&admin).await?;
    for (mq, w) in progress.get_offset_table() {
        if mq.topic_str() != TOPIC {
            continue;
        }
        let q = mq.queue_id() as usize;
        anyhow::ensure!(
            w.get_broker_offset() == sent_per_queue[q] as i64
                && w.get_consumer_offset() == sent_per_queue[q] as i64,
            "consumerProgress queue {q}: {w:?}, sent {}",
            sent_per_queue[q]
        );
    }
    anyhow::ensure!(
        progress
            .get_offset_table()
            .keys()
            .filter(|mq| mq.topic_str() == TOPIC)
            .count()
            == QUEUES as usize
            && progress.compute_total_diff() == 0,
        "consumerProgress never caught up: {progress:?}"
    );

    // The group's topics (by its offsets) and its subscription to the topic.
    let group_topics = call(
        "queryTopicsByConsumer",
        admin.query_topics_by_consumer(GROUP.into()),
    )
    .await?;
    anyhow::ensure!(
        group_topics.topic_list.iter().any(|t| t.as_str() == TOPIC),
        "topics of {GROUP}: {:?}",
        group_topics.topic_list
    );
    let subscription = call(
        "querySubscription",
        admin.query_subscription(GROUP.into(), TOPIC.into()),
    )
    .await?;
    anyhow::ensure!(
        subscription.topic.as_str() == TOPIC && subscription.sub_string.as_str() == "*",
        "subscription {subscription:?}"
    );

    // consumerConnection: one client, subscribed to the topic, clustering push.
    let conn = call(
        "consumerConnection",
        admin.examine_consumer_connection_info(GROUP.into(), None),
    )
    .await?;
    let conns: Vec<_> = conn.get_connection_set().iter().collect();
    anyhow::ensure!(conns.len() == 1, "connections {conns:?}");
    anyhow::ensure!(
        conns[0].get_client_id().ends_with("@compat-admin-consumer"),
        "client id {}",
        conns[0].get_client_id()
    );
    anyhow::ensure!(
        conn.get_subscription_table().contains_key(TOPIC),
        "subscriptions {:?}",
        conn.get_subscription_table().keys().collect::<Vec<_>>()
    );
    anyhow::ensure!(
        format!("{:?}", conn.get_message_model()).contains("Clustering"),
        "message model {:?}",
        conn.get_message_model()
    );

    // producerConnection: the producer, as it announced itself in its heartbeat.
    let producers = call(
        "producerConnection",
        admin.examine_producer_connection_info(PRODUCER_GROUP.into(), TOPIC.into()),
    )
    .await?;
    let pconns: Vec<_> = producers.connection_set().iter().collect();
    anyhow::ensure!(
        pconns.len() == 1
            && pconns[0]
                .get_client_id()
                .ends_with("@compat-admin-producer")
            && format!("{:?}", pconns[0].get_language()) == "RUST",
        "producer connections {pconns:?}"
    );

    // Who consumes the topic (consumerProgress without a group asks each topic this).
    let who = call(
        "queryTopicConsumeByWho",
        admin.query_topic_consume_by_who(TOPIC.into()),
    )
    .await?;
    anyhow::ensure!(
        who.group_list.len() == 1 && who.group_list.iter().any(|g| g.as_str() == GROUP),
        "groups consuming {TOPIC}: {:?}",
        who.group_list
    );

    // queryMsgById's track: the group has consumed the message.
    let tracks = call(
        "messageTrackDetail",
        admin.message_track_detail(viewed.clone()),
    )
    .await?;
    anyhow::ensure!(consumed_by_group(&tracks), "tracks {tracks:?}");

    // Every subscription group: the consuming one (created by its heartbeat), not the deleted.
    let all_groups = call(
        "getAllSubscriptionGroup",
        admin.get_all_subscription_group(broker.as_str().into(), 5_000),
    )
    .await?;
    let table = all_groups.get_subscription_group_table();
    anyhow::ensure!(
        table.contains_key(GROUP) && !table.contains_key(ADMIN_GROUP),
        "subscription groups {:?}",
        table.keys().collect::<Vec<_>>()
    );

    // brokerStatus: counts what went through this broker.
    let status = call(
        "brokerStatus",
        admin.fetch_broker_runtime_stats(broker.as_str().into()),
    )
    .await?;
    let stat = |k: &str| -> anyhow::Result<i64> {
        status
            .table
            .get(k)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("brokerStatus has no number {k}: {:?}", status.table))
    };
    anyhow::ensure!(stat("msgPutTotalTodayNow")? >= (BEFORE + AFTER) as i64);
    anyhow::ensure!(stat("msgGetTotalTodayNow")? >= (BEFORE + AFTER) as i64);

    // resetOffsetByTime while the group consumes: the second batch comes again, the first not.
    let reset = call(
        "resetOffsetByTime",
        admin.reset_offset_by_timestamp(None, TOPIC.into(), GROUP.into(), reset_at, true),
    )
    .await?;
    for (mq, offset) in &reset {
        let q = mq.queue_id() as usize;
        let expected = sent
            .iter()
            .filter(|s| s.queue_id as usize == q && s.key_index() < BEFORE)
            .count() as u64;
        anyhow::ensure!(
            *offset == expected,
            "reset queue {q} to {offset}, the first batch holds {expected} there"
        );
    }
    anyhow::ensure!(reset.len() == QUEUES as usize, "reset rows {reset:?}");
    let second: Vec<String> = sent[BEFORE..].iter().map(|s| s.key.clone()).collect();
    try_wait_for("the second batch consumed again after the reset", || {
        let d = deliveries.lock().unwrap();
        second.iter().all(|k| d.get(k).is_some_and(|&n| n >= 2))
    })
    .await?;
    // Give a wrong reset (to the start) time to show itself.
    tokio::time::sleep(Duration::from_secs(1)).await;
    {
        let d = deliveries.lock().unwrap();
        for s in &sent[..BEFORE] {
            anyhow::ensure!(
                d[&s.key] == 1,
                "{} was stored before the reset point but came {} times",
                s.key,
                d[&s.key]
            );
        }
    }

    // consumerStatus: the broker relays GET_CONSUMER_RUNNING_INFO to the consumer.
    let client_id = conns[0].get_client_id();
    let running = call(
        "consumerStatus",
        admin.get_consumer_running_info(GROUP.into(), client_id.clone(), false, None),
    )
    .await?;
    anyhow::ensure!(
        running
            .properties
            .get("PROP_CONSUME_TYPE")
            .map(String::as_str)
            == Some("CONSUME_PASSIVELY")
            && running
                .subscription_set
                .iter()
                .any(|sub| sub.topic.as_str() == TOPIC)
            && running
                .mq_table
                .keys()
                .filter(|mq| mq.topic_str() == TOPIC)
                .count()
                == QUEUES as usize,
        "running info {:?} {:?} {:?}",
        running.properties,
        running.subscription_set,
        running.mq_table.keys().collect::<Vec<_>>()
    );

    // queryMsgById -d: the broker hands the stored message to the consumer's listener once more.
    let resent = &sent[0];
    let before = deliveries.lock().unwrap()[&resent.key];
    let direct = call(
        "consumeMessageDirectly",
        admin.consume_message_directly(
            GROUP.into(),
            client_id,
            TOPIC.into(),
            resent.offset_msg_id.as_str().into(),
        ),
    )
    .await?;
    anyhow::ensure!(
        format!("{:?}", direct.consume_result()) == "Some(CRSuccess)",
        "consume directly {direct:?}"
    );
    let after = deliveries.lock().unwrap()[&resent.key];
    anyhow::ensure!(
        after == before + 1,
        "{} delivered {before} times before consumeMessageDirectly, {after} after",
        resent.key
    );

    // cloneGroupOffset: a new group starts where the consuming one is (last: from here on the
    // clone counts among the topic's consumers).
    caught_up_progress(&admin).await?;
    call(
        "cloneGroupOffset",
        admin.clone_group_offset(GROUP.into(), CLONE_GROUP.into(), TOPIC.into(), false),
    )
    .await?;
    let cloned = call(
        "consumerProgress of the clone",
        admin.examine_consume_stats(
            CLONE_GROUP.into(),
            Some(TOPIC.into()),
            None,
            Some(broker.as_str().into()),
            None,
        ),
    )
    .await?;
    for (q, &sent_to_queue) in sent_per_queue.iter().enumerate() {
        let row = cloned
            .get_offset_table()
            .iter()
            .find(|(mq, _)| mq.topic_str() == TOPIC && mq.queue_id() as usize == q)
            .map(|(_, w)| w.get_consumer_offset());
        anyhow::ensure!(
            row == Some(sent_to_queue as i64),
            "clone's offset on queue {q}: {row:?}, source at {sent_to_queue}"
        );
    }

    bounded("producer.shutdown", producer.shutdown()).await?;
    bounded("consumer.shutdown", consumer.shutdown()).await?;
    bounded("admin.shutdown", admin.shutdown()).await?;
    bounded("Standalone::shutdown", petrel.shutdown()).await??;
    Ok(())
}

/// The group's consumerProgress once its committed offsets reach the end of every queue of the
/// topic, or the last one read when that does not happen within `WAIT`.
async fn caught_up_progress(
    admin: &DefaultMQAdminExt,
) -> anyhow::Result<rocketmq_protocol::protocol::admin::consume_stats::ConsumeStats> {
    let deadline = Instant::now() + WAIT;
    loop {
        let p = call(
            "consumerProgress",
            admin.examine_consume_stats(GROUP.into(), None, None, None, None),
        )
        .await?;
        let done = p
            .get_offset_table()
            .iter()
            .filter(|(mq, _)| mq.topic_str() == TOPIC)
            .count()
            == QUEUES as usize
            && p.compute_total_diff() == 0;
        if done || Instant::now() > deadline {
            return Ok(p);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

impl Sent {
    fn key_index(&self) -> usize {
        self.key
            .strip_prefix("admin-")
            .and_then(|i| i.parse().ok())
            .expect("keys are admin-<i>")
    }
}

/// One track, the group's, saying the message was consumed. 1.0.0 marks MessageTrack and
/// TrackType deprecated with a note pointing at themselves; they are still what
/// `message_track_detail` returns.
#[allow(deprecated)]
fn consumed_by_group(
    tracks: &[rocketmq_model::common::tools::message_track::MessageTrack],
) -> bool {
    use rocketmq_model::common::tools::track_type::TrackType;
    tracks.len() == 1
        && tracks[0].consumer_group == GROUP
        && tracks[0].track_type == Some(TrackType::Consumed)
}

fn check_message(m: &MessageExt, sent: &Sent) -> anyhow::Result<()> {
    anyhow::ensure!(m.topic().as_str() == TOPIC, "topic {}", m.topic());
    anyhow::ensure!(
        m.body().as_deref() == Some(&sent.body[..]),
        "{}: body {:?}",
        sent.key,
        m.body()
    );
    anyhow::ensure!(m.get_keys().is_some_and(|k| k.as_str() == sent.key));
    anyhow::ensure!(m.get_tags().is_some_and(|t| t.as_str() == "TagA"));
    anyhow::ensure!(
        m.get_property(&"origin".into())
            .is_some_and(|v| v.as_str() == "admin-compat"),
        "{}: properties {:?}",
        sent.key,
        m.properties()
    );
    anyhow::ensure!(m.queue_id() == sent.queue_id);
    anyhow::ensure!(m.queue_offset() == sent.queue_offset as i64);
    Ok(())
}

async fn start_consumer(
    client_runtime: &Arc<ClientRuntime>,
    ns: &str,
    deliveries: Deliveries,
) -> anyhow::Result<DefaultMQPushConsumer> {
    let mut config = client_config(ns, "compat-admin-consumer");
    config.set_persist_consumer_offset_interval(1_000);
    let mut consumer = rmq_rust::push_consumer(client_runtime, ns, GROUP, "compat-admin-consumer")
        .client_config(config)
        .build();
    bounded("consumer.subscribe", consumer.subscribe(TOPIC, "*"))
        .await?
        .map_err(err)?;
    consumer.register_message_listener_concurrently(
        move |msgs: &[&MessageExt],
              _ctx: &ConsumeConcurrentlyContext|
              -> ClientResult<ConsumeConcurrentlyStatus> {
            let mut d = deliveries.lock().unwrap();
            for m in msgs {
                let k = m.get_keys().map(|k| k.to_string()).unwrap_or_default();
                *d.entry(k).or_default() += 1;
            }
            Ok(ConsumeConcurrentlyStatus::ConsumeSuccess)
        },
    );
    bounded("consumer.start", consumer.start())
        .await?
        .map_err(err)?;
    Ok(consumer)
}

async fn send(producer: &DefaultMQProducer, key: &str) -> anyhow::Result<Sent> {
    let body = format!("body of {key}").into_bytes();
    let mut message = Message::builder()
        .topic(TOPIC)
        .tags("TagA")
        .key(key)
        .body_slice(&body)
        .build_unchecked();
    message.put_property("origin".into(), "admin-compat".into());
    let result = rmq_rust::send_ok(producer, message)
        .await
        .map_err(|e| e.context(format!("send of {key}")))?;
    let mq = result
        .message_queue
        .ok_or_else(|| anyhow::anyhow!("send of {key}: no queue"))?;
    Ok(Sent {
        key: key.to_owned(),
        body,
        queue_id: mq.queue_id(),
        queue_offset: result.queue_offset,
        offset_msg_id: result
            .offset_msg_id
            .ok_or_else(|| anyhow::anyhow!("send of {key}: no offset message id"))?,
        uniq_key: result
            .msg_id
            .map(|id| id.to_string())
            .ok_or_else(|| anyhow::anyhow!("send of {key}: no message id"))?,
    })
}

/// The route of `topic` once it exists (`present`), or `None` once it is gone.
async fn wait_for_route(
    admin: &DefaultMQAdminExt,
    topic: &str,
    present: bool,
) -> anyhow::Result<rocketmq_protocol::protocol::route::topic_route_data::TopicRouteData> {
    let deadline = Instant::now() + WAIT;
    loop {
        let route = bounded(
            "examineTopicRouteInfo",
            admin.examine_topic_route_info(topic.into()),
        )
        .await?;
        match (present, route) {
            (true, Ok(Some(r))) if !r.queue_datas.is_empty() => return Ok(r),
            (false, Err(_)) | (false, Ok(None)) => {
                return Ok(Default::default());
            }
            (false, Ok(Some(r))) if r.queue_datas.is_empty() => return Ok(r),
            (_, last) => {
                anyhow::ensure!(
                    Instant::now() < deadline,
                    "route of {topic} (expected present: {present}): {last:?}"
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A bounded admin call whose error names the mqadmin command.
async fn call<T>(what: &str, f: impl Future<Output = ClientResult<T>>) -> anyhow::Result<T> {
    bounded(what, f)
        .await?
        .map_err(|e| anyhow::anyhow!("{what}: rocketmq-client-rust: {e}"))
}
