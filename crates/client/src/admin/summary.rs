//! What a cluster says once the answers of its brokers are put together: the brokers of the
//! cluster list with their runtime figures, every topic and group config of a broker in one
//! request, a group's progress over all masters, a topic's queues over all its brokers. Shared
//! by `petrel admin` and the dashboard so that both show the same numbers. Reads only.

use std::collections::BTreeMap;

use petrel_common::protocol::{
    ClusterInfo, ConsumeStats, ConsumerConnection, ProducerConnection, QueueConsumeStats,
    TopicConfigSerializeWrapper, TopicStatsTable,
};
use petrel_common::topic::{SubscriptionGroupConfig, TopicConfig};
use petrel_remoting::code::request;
use petrel_remoting::RemotingCommand;
use serde::Serialize;

use super::{decode, Admin, GroupTable};
use crate::error::Result;

/// One broker process of the cluster (master or slave), as the name server lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterBroker {
    pub cluster: String,
    pub broker_name: String,
    pub broker_id: i64,
    pub addr: String,
}

/// Every broker process of `info`, by cluster, name and id.
pub fn cluster_brokers(info: &ClusterInfo) -> Vec<ClusterBroker> {
    let mut out = Vec::new();
    for (cluster, names) in &info.cluster_addr_table {
        for name in names {
            let Some(broker) = info.broker_addr_table.get(name) else {
                continue;
            };
            for (id, addr) in &broker.broker_addrs {
                out.push(ClusterBroker {
                    cluster: cluster.clone(),
                    broker_name: name.clone(),
                    broker_id: *id,
                    addr: addr.clone(),
                });
            }
        }
    }
    out
}

/// One broker of `cluster-list`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterListRow {
    pub cluster: String,
    pub broker_name: String,
    pub broker_id: i64,
    pub addr: String,
    pub version: String,
    /// Messages stored per second (Petrel: the average since the broker started).
    pub put_tps: String,
    /// Messages handed to consumers per second (same average).
    pub get_tps: String,
    pub msg_put_total_today_now: String,
    pub msg_get_total_today_now: String,
}

impl ClusterListRow {
    /// The row of `broker` from its GET_BROKER_RUNTIME_INFO table.
    pub fn new(broker: &ClusterBroker, runtime: &BTreeMap<String, String>) -> Self {
        let take = |k: &str| runtime.get(k).cloned().unwrap_or_default();
        ClusterListRow {
            cluster: broker.cluster.clone(),
            broker_name: broker.broker_name.clone(),
            broker_id: broker.broker_id,
            addr: broker.addr.clone(),
            version: take("brokerVersionDesc"),
            put_tps: take("putTps"),
            get_tps: take("getTransferedTps"),
            msg_put_total_today_now: take("msgPutTotalTodayNow"),
            msg_get_total_today_now: take("msgGetTotalTodayNow"),
        }
    }
}

/// One queue of a group's progress: the broker's figures and their difference.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgressRow {
    #[serde(flatten)]
    pub stats: QueueConsumeStats,
    /// Messages stored and not yet consumed (broker offset − consumer offset).
    pub diff: i64,
}

/// A group's progress: every queue of the group on every master, and the sums.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerProgress {
    pub group: String,
    pub queues: Vec<ProgressRow>,
    pub broker_offset: i64,
    pub consumer_offset: i64,
    pub diff: i64,
    pub consume_tps: f64,
}

impl ConsumerProgress {
    /// Puts together the GET_CONSUME_STATS answers of every master, queues sorted.
    pub fn combine(group: &str, answers: impl IntoIterator<Item = ConsumeStats>) -> Self {
        let mut rows = Vec::new();
        let mut consume_tps = 0.0;
        for stats in answers {
            consume_tps += stats.consume_tps;
            rows.extend(stats.offset_table.into_iter().map(|s| ProgressRow {
                diff: s.offset.diff(),
                stats: s,
            }));
        }
        rows.sort_by(|a, b| a.stats.queue.cmp(&b.stats.queue));
        ConsumerProgress {
            group: group.to_owned(),
            broker_offset: rows.iter().map(|r| r.stats.offset.broker_offset).sum(),
            consumer_offset: rows.iter().map(|r| r.stats.offset.consumer_offset).sum(),
            diff: rows.iter().map(|r| r.diff).sum(),
            queues: rows,
            consume_tps,
        }
    }
}

/// Adds one broker's view of a group's connections to what the others said: each client once,
/// every subscription.
pub fn merge_consumer_connection(merged: &mut Option<ConsumerConnection>, c: ConsumerConnection) {
    match merged.as_mut() {
        None => *merged = Some(c),
        Some(m) => {
            add_clients(&mut m.connection_set, c.connection_set);
            m.subscription_table.extend(c.subscription_table);
        }
    }
}

/// Adds one broker's view of a producer group's connections: each client once.
pub fn merge_producer_connection(merged: &mut ProducerConnection, c: ProducerConnection) {
    add_clients(&mut merged.connection_set, c.connection_set);
}

fn add_clients(
    merged: &mut Vec<petrel_common::protocol::Connection>,
    more: Vec<petrel_common::protocol::Connection>,
) {
    for conn in more {
        if !merged.iter().any(|x| x.client_id == conn.client_id) {
            merged.push(conn);
        }
    }
}

/// Puts together a topic's GET_TOPIC_STATS_INFO answers of its brokers, queues sorted.
pub fn combine_topic_stats(answers: impl IntoIterator<Item = TopicStatsTable>) -> TopicStatsTable {
    let mut all = TopicStatsTable::default();
    for stats in answers {
        all.offset_table.extend(stats.offset_table);
        all.topic_put_tps += stats.topic_put_tps;
    }
    all.offset_table.sort_by(|a, b| a.queue.cmp(&b.queue));
    all
}

impl Admin {
    /// GET_ALL_TOPIC_CONFIG: every topic config of one broker, in one request.
    pub async fn all_topic_configs(
        &self,
        broker_addr: &str,
    ) -> Result<BTreeMap<String, TopicConfig>> {
        let resp = self
            .call(
                broker_addr,
                RemotingCommand::request(request::GET_ALL_TOPIC_CONFIG),
            )
            .await?;
        let wrapper: TopicConfigSerializeWrapper = decode(&resp, "topic configs")?;
        Ok(wrapper.topic_config_table)
    }

    /// GET_ALL_SUBSCRIPTIONGROUP_CONFIG: every subscription group config of one broker.
    pub async fn all_subscription_groups(
        &self,
        broker_addr: &str,
    ) -> Result<BTreeMap<String, SubscriptionGroupConfig>> {
        let resp = self
            .call(
                broker_addr,
                RemotingCommand::request(request::GET_ALL_SUBSCRIPTIONGROUP_CONFIG),
            )
            .await?;
        let table: GroupTable = decode(&resp, "subscription groups")?;
        Ok(table.subscription_group_table)
    }
}
