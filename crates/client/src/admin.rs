//! Small admin helpers over the client instance: create a topic on a broker or a whole cluster,
//! read routes and queue offsets. What `petrel admin` and tests need, nothing more.

use std::sync::Arc;

use std::collections::BTreeMap;

use petrel_common::object_map::parse_object_key_map;
use petrel_common::protocol::{
    from_fastjson, ClusterInfo, HalfMessageInfo, HalfMessageList, MessageQueue, TopicRouteData,
};
use petrel_common::topic::{
    group_attribute as flow, perm, validate_group, validate_topic, SubscriptionGroupConfig,
    AUTO_CREATE_TOPIC_KEY,
};
use petrel_remoting::code::request;
use petrel_remoting::headers::{
    CreateTopicRequestHeader, ListHalfMessagesRequestHeader, ResetOffsetRequestHeader,
};
use petrel_remoting::RemotingCommand;

use crate::config::ClientConfig;
use crate::error::{ClientError, Result};
use crate::instance::ClientInstance;

pub struct Admin {
    instance: Arc<ClientInstance>,
}

impl Admin {
    pub fn new(config: ClientConfig) -> Self {
        Admin {
            instance: ClientInstance::new(config),
        }
    }

    pub fn with_instance(instance: Arc<ClientInstance>) -> Self {
        Admin { instance }
    }

    pub fn instance(&self) -> &Arc<ClientInstance> {
        &self.instance
    }

    /// UPDATE_AND_CREATE_TOPIC on one broker: `queues` read and write queues, read-write.
    pub async fn create_topic(&self, broker_addr: &str, topic: &str, queues: i32) -> Result<()> {
        validate_topic(topic).map_err(ClientError::InvalidArgument)?;
        if queues <= 0 {
            return Err(ClientError::InvalidArgument(format!(
                "queue count {queues} must be positive"
            )));
        }
        let header = CreateTopicRequestHeader {
            topic: topic.to_owned(),
            default_topic: Some(AUTO_CREATE_TOPIC_KEY.to_owned()),
            read_queue_nums: queues,
            write_queue_nums: queues,
            perm: perm::READ | perm::WRITE,
            topic_filter_type: Some("SINGLE_TAG".to_owned()),
            topic_sys_flag: Some(0),
            order: Some(false),
        };
        let cmd = RemotingCommand::request_with_header(request::UPDATE_AND_CREATE_TOPIC, &header);
        self.instance
            .invoke_ok(broker_addr, cmd, self.instance.config().request_timeout)
            .await
            .map(|_| ())
    }

    /// GET_BROKER_CLUSTER_INFO from a name server.
    pub async fn cluster_info(&self) -> Result<ClusterInfo> {
        let resp = self
            .instance
            .invoke_namesrv(RemotingCommand::request(request::GET_BROKER_CLUSTER_INFO))
            .await?;
        if resp.code != petrel_remoting::code::response::SUCCESS {
            return Err(ClientError::Broker {
                code: resp.code,
                remark: resp.remark.unwrap_or_default(),
            });
        }
        from_fastjson(&resp.body_bytes())
            .map_err(|e| ClientError::Decode(format!("cluster info: {e}")))
    }

    /// Creates `topic` on the master of every broker of `cluster`; returns how many took it.
    pub async fn create_topic_in_cluster(
        &self,
        cluster: &str,
        topic: &str,
        queues: i32,
    ) -> Result<usize> {
        let info = self.cluster_info().await?;
        let names = info
            .cluster_addr_table
            .get(cluster)
            .ok_or_else(|| ClientError::InvalidArgument(format!("no cluster {cluster}")))?;
        let mut created = 0;
        for name in names {
            let Some(addr) = info
                .broker_addr_table
                .get(name)
                .and_then(|b| b.master_addr())
            else {
                continue;
            };
            self.create_topic(addr, topic, queues).await?;
            created += 1;
        }
        Ok(created)
    }

    /// The route of `topic`, fresh from a name server.
    pub async fn topic_route(&self, topic: &str) -> Result<TopicRouteData> {
        self.instance.update_topic_route(topic).await
    }

    /// Sorted ids of the live consumers of `group` on `topic`'s brokers.
    pub async fn consumer_ids(&self, topic: &str, group: &str) -> Result<Vec<String>> {
        self.instance.consumer_id_list(topic, group).await
    }

    pub async fn max_offset(&self, mq: &MessageQueue) -> Result<i64> {
        self.instance.max_offset(mq).await
    }

    pub async fn min_offset(&self, mq: &MessageQueue) -> Result<i64> {
        self.instance.min_offset(mq).await
    }

    /// The committed offset of `group` on `mq`, `None` when there is none.
    pub async fn consumer_offset(&self, group: &str, mq: &MessageQueue) -> Result<Option<i64>> {
        self.instance.query_consumer_offset(group, mq).await
    }

    /// Resets `group`'s offsets on `topic` to the first message stored at or after
    /// `timestamp_ms` (-1: the end of each queue), on every broker of the topic
    /// (INVOKE_BROKER_TO_RESET_OFFSET). Without `force` a queue only moves backwards. Returns
    /// the new offset of each queue.
    pub async fn reset_offset_by_time(
        &self,
        topic: &str,
        group: &str,
        timestamp_ms: i64,
        force: bool,
    ) -> Result<Vec<(MessageQueue, i64)>> {
        let header = ResetOffsetRequestHeader {
            topic: topic.to_owned(),
            group: group.to_owned(),
            timestamp: timestamp_ms,
            is_force: Some(force),
            queue_id: None,
            offset: None,
        };
        let mut rows = Vec::new();
        for addr in self.topic_brokers(topic).await? {
            rows.extend(self.reset_on(&addr, &header).await?);
        }
        Ok(rows)
    }

    /// Resets `group`'s offset on one queue to `offset`.
    pub async fn reset_queue_offset(
        &self,
        group: &str,
        mq: &MessageQueue,
        offset: i64,
    ) -> Result<()> {
        let addr = self
            .instance
            .find_master_addr(&mq.broker_name, &mq.topic)
            .await?;
        let header = ResetOffsetRequestHeader {
            topic: mq.topic.clone(),
            group: group.to_owned(),
            timestamp: 0,
            is_force: Some(true),
            queue_id: Some(mq.queue_id),
            offset: Some(offset),
        };
        self.reset_on(&addr, &header).await.map(|_| ())
    }

    async fn reset_on(
        &self,
        addr: &str,
        header: &ResetOffsetRequestHeader,
    ) -> Result<Vec<(MessageQueue, i64)>> {
        let cmd =
            RemotingCommand::request_with_header(request::INVOKE_BROKER_TO_RESET_OFFSET, header);
        let resp = self
            .instance
            .invoke_ok(addr, cmd, self.instance.config().request_timeout)
            .await?;
        parse_object_key_map(&resp.body_bytes(), "offsetTable")
            .map_err(|e| ClientError::Decode(format!("reset offset answer: {e}")))
    }

    /// Master addresses of the brokers that hold `topic`.
    async fn topic_brokers(&self, topic: &str) -> Result<Vec<String>> {
        let route = self.instance.update_topic_route(topic).await?;
        Ok(route.master_addrs().map(str::to_owned).collect())
    }

    /// Pauses `group` at every broker: all of its clients, or only `clients` (client ids).
    /// Paused consumers stay connected and receive nothing until [`Admin::resume_group`].
    pub async fn pause_group(&self, group: &str, clients: &[String]) -> Result<usize> {
        self.update_group_attributes(group, |a| {
            if clients.is_empty() {
                a.insert(flow::PAUSED.to_owned(), "true".to_owned());
            } else {
                a.insert(flow::PAUSED_CLIENTS.to_owned(), clients.join(","));
            }
        })
        .await
    }

    /// Lifts every pause of `group`.
    pub async fn resume_group(&self, group: &str) -> Result<usize> {
        self.update_group_attributes(group, |a| {
            a.remove(flow::PAUSED);
            a.remove(flow::PAUSED_CLIENTS);
        })
        .await
    }

    /// Limits what the brokers hand `group` to `per_second` messages a second at each broker
    /// (0 lifts the limit).
    pub async fn set_consume_rate_limit(&self, group: &str, per_second: f64) -> Result<usize> {
        self.update_group_attributes(group, |a| {
            if per_second > 0.0 {
                a.insert(flow::RATE_LIMIT.to_owned(), per_second.to_string());
            } else {
                a.remove(flow::RATE_LIMIT);
            }
        })
        .await
    }

    /// The pending transactional half messages of `group` (of every group if `None`) on every
    /// master broker, with the broker's name; a Petrel request, not RocketMQ's.
    pub async fn half_messages(
        &self,
        group: Option<&str>,
    ) -> Result<Vec<(String, HalfMessageInfo)>> {
        let info = self.cluster_info().await?;
        let timeout = self.instance.config().request_timeout;
        let mut all = Vec::new();
        for (name, broker) in &info.broker_addr_table {
            let Some(addr) = broker.master_addr() else {
                continue;
            };
            let header = ListHalfMessagesRequestHeader {
                producer_group: group.map(str::to_owned),
            };
            let cmd =
                RemotingCommand::request_with_header(request::PETREL_LIST_HALF_MESSAGES, &header);
            let resp = self.instance.invoke_ok(addr, cmd, timeout).await?;
            let list: HalfMessageList = serde_json::from_slice(&resp.body_bytes())
                .map_err(|e| ClientError::Decode(format!("half messages: {e}")))?;
            all.extend(list.half_messages.into_iter().map(|h| (name.clone(), h)));
        }
        Ok(all)
    }

    /// Reads `group`'s config from every master broker, changes its attributes and writes it
    /// back (UPDATE_AND_CREATE_SUBSCRIPTIONGROUP); returns how many brokers took it.
    async fn update_group_attributes(
        &self,
        group: &str,
        change: impl Fn(&mut BTreeMap<String, String>),
    ) -> Result<usize> {
        validate_group(group).map_err(ClientError::InvalidArgument)?;
        let info = self.cluster_info().await?;
        let timeout = self.instance.config().request_timeout;
        let mut updated = 0;
        for addr in info
            .broker_addr_table
            .values()
            .filter_map(|b| b.master_addr())
        {
            let resp = self
                .instance
                .invoke_ok(
                    addr,
                    RemotingCommand::request(request::GET_ALL_SUBSCRIPTIONGROUP_CONFIG),
                    timeout,
                )
                .await?;
            let mut table: GroupTable = from_fastjson(&resp.body_bytes())
                .map_err(|e| ClientError::Decode(format!("subscription groups: {e}")))?;
            let mut config = table
                .subscription_group_table
                .remove(group)
                .unwrap_or_else(|| SubscriptionGroupConfig::new(group));
            change(&mut config.attributes);
            let body = serde_json::to_vec(&config)
                .map_err(|e| ClientError::Decode(format!("subscription group: {e}")))?;
            let cmd = RemotingCommand::request(request::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP)
                .with_body(body);
            self.instance.invoke_ok(addr, cmd, timeout).await?;
            updated += 1;
        }
        Ok(updated)
    }

    pub fn shutdown(&self) {
        self.instance.shutdown();
    }
}

/// The part of GET_ALL_SUBSCRIPTIONGROUP_CONFIG's body we read.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupTable {
    #[serde(default)]
    subscription_group_table: BTreeMap<String, SubscriptionGroupConfig>,
}
