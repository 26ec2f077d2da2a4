//! The admin API over the client instance, what `petrel admin` (and later a dashboard) builds on:
//! one method per request of RocketMQ's admin protocol, each returning the typed body of the
//! answer (`petrel_common::protocol`), and a few helpers that run one request on every master.
//! It never prints and never retries: errors carry the broker's code and remark.

mod acl;
mod message;
mod summary;
mod trace;

pub use acl::{AclAccountConfig, BrokerAclVersion};
pub use summary::{
    cluster_brokers, combine_topic_stats, merge_consumer_connection, merge_producer_connection,
    ClusterBroker, ClusterListRow, ConsumerProgress, ProgressRow,
};
pub use trace::{BrokerStep, MessageTrace, StoredCopy, TraceStep};

use std::collections::BTreeMap;
use std::sync::Arc;

use petrel_common::object_map::parse_object_key_map;
use petrel_common::protocol::{
    from_fastjson, parse_properties, ClusterInfo, ConsumeStats, ConsumerConnection,
    HalfMessageInfo, HalfMessageList, KvTable, MessageQueue, ProducerConnection, TopicList,
    TopicRouteData, TopicStatsTable,
};
use petrel_common::topic::{
    group_attribute as flow, perm, validate_group, validate_topic, SubscriptionGroupConfig,
    TopicConfig, AUTO_CREATE_TOPIC_KEY,
};
use petrel_remoting::code::request;
use petrel_remoting::headers::{
    CloneGroupOffsetRequestHeader, CreateTopicRequestHeader, GetConsumeStatsRequestHeader,
    GetConsumerConnectionListRequestHeader, GetProducerConnectionListRequestHeader,
    GetSubscriptionGroupConfigRequestHeader, ListHalfMessagesRequestHeader,
    ResetOffsetRequestHeader, TopicRequestHeader,
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
        let config = TopicConfig::new(topic, queues, perm::READ | perm::WRITE);
        self.update_topic(broker_addr, &config).await
    }

    /// UPDATE_AND_CREATE_TOPIC on one broker: creates `config.topic_name` or replaces its
    /// queue numbers, permission, order flag and filter type.
    pub async fn update_topic(&self, broker_addr: &str, config: &TopicConfig) -> Result<()> {
        validate_topic(&config.topic_name).map_err(ClientError::InvalidArgument)?;
        if config.read_queue_nums <= 0 || config.write_queue_nums <= 0 {
            return Err(ClientError::InvalidArgument(format!(
                "queue numbers must be positive, got read {} write {}",
                config.read_queue_nums, config.write_queue_nums
            )));
        }
        let header = CreateTopicRequestHeader {
            topic: config.topic_name.clone(),
            default_topic: Some(AUTO_CREATE_TOPIC_KEY.to_owned()),
            read_queue_nums: config.read_queue_nums,
            write_queue_nums: config.write_queue_nums,
            perm: config.perm,
            topic_filter_type: Some(config.topic_filter_type.clone()),
            topic_sys_flag: Some(config.topic_sys_flag),
            order: Some(config.order),
        };
        let cmd = RemotingCommand::request_with_header(request::UPDATE_AND_CREATE_TOPIC, &header);
        self.call(broker_addr, cmd).await.map(|_| ())
    }

    /// Sends `cmd` to `addr` with the configured timeout; a non-SUCCESS answer is an error
    /// with the broker's code and remark.
    async fn call(&self, addr: &str, cmd: RemotingCommand) -> Result<RemotingCommand> {
        self.instance
            .invoke_ok(addr, cmd, self.instance.config().request_timeout)
            .await
    }

    /// Sends `cmd` to a name server; a non-SUCCESS answer is an error with its remark.
    async fn call_namesrv(&self, cmd: RemotingCommand) -> Result<RemotingCommand> {
        let resp = self.instance.invoke_namesrv(cmd).await?;
        if resp.code != petrel_remoting::code::response::SUCCESS {
            return Err(ClientError::broker(resp.code, resp.remark));
        }
        Ok(resp)
    }

    /// `(broker name, master address)` of every broker group the name server knows, sorted by
    /// name; groups without a live master are left out.
    pub async fn master_brokers(&self) -> Result<Vec<(String, String)>> {
        let info = self.cluster_info().await?;
        Ok(info
            .broker_addr_table
            .iter()
            .filter_map(|(name, b)| Some((name.clone(), b.master_addr()?.to_owned())))
            .collect())
    }

    /// GET_BROKER_RUNTIME_INFO: the broker's runtime figures (`mqadmin brokerStatus`).
    pub async fn broker_runtime_info(&self, broker_addr: &str) -> Result<KvTable> {
        let resp = self
            .call(
                broker_addr,
                RemotingCommand::request(request::GET_BROKER_RUNTIME_INFO),
            )
            .await?;
        decode(&resp, "broker runtime info")
    }

    /// GET_BROKER_CONFIG: the broker's settings, key by key (`mqadmin getBrokerConfig`).
    pub async fn broker_config(&self, broker_addr: &str) -> Result<BTreeMap<String, String>> {
        let resp = self
            .call(
                broker_addr,
                RemotingCommand::request(request::GET_BROKER_CONFIG),
            )
            .await?;
        Ok(parse_properties(&String::from_utf8_lossy(
            &resp.body_bytes(),
        )))
    }

    /// UPDATE_BROKER_CONFIG: changes `settings` (RocketMQ key names) on one broker while it
    /// runs (`mqadmin updateBrokerConfig`); the broker takes all of them or none.
    pub async fn update_broker_config(
        &self,
        broker_addr: &str,
        settings: &BTreeMap<String, String>,
    ) -> Result<()> {
        let mut body = String::new();
        for (k, v) in settings {
            if k.is_empty() || k.contains(['=', ':', '\n']) || v.contains('\n') {
                return Err(ClientError::InvalidArgument(format!(
                    "`{k}={v}` cannot be sent as a properties line"
                )));
            }
            body.push_str(&format!("{k}={v}\n"));
        }
        let cmd =
            RemotingCommand::request(request::UPDATE_BROKER_CONFIG).with_body(body.into_bytes());
        self.call(broker_addr, cmd).await.map(|_| ())
    }

    /// GET_ALL_TOPIC_LIST_FROM_NAMESERVER: every topic the name server routes.
    pub async fn topic_list(&self) -> Result<TopicList> {
        let resp = self
            .call_namesrv(RemotingCommand::request(
                request::GET_ALL_TOPIC_LIST_FROM_NAMESERVER,
            ))
            .await?;
        decode(&resp, "topic list")
    }

    /// GET_TOPIC_CONFIG: one topic's config on one broker.
    pub async fn topic_config(&self, broker_addr: &str, topic: &str) -> Result<TopicConfig> {
        let resp = self
            .call(broker_addr, topic_request(request::GET_TOPIC_CONFIG, topic))
            .await?;
        decode(&resp, "topic config")
    }

    /// GET_TOPIC_STATS_INFO: min and max offset and last store time of each of the topic's
    /// queues on one broker (`mqadmin topicStatus`).
    pub async fn topic_stats(&self, broker_addr: &str, topic: &str) -> Result<TopicStatsTable> {
        let resp = self
            .call(
                broker_addr,
                topic_request(request::GET_TOPIC_STATS_INFO, topic),
            )
            .await?;
        TopicStatsTable::from_fastjson(&resp.body_bytes())
            .map_err(|e| ClientError::Decode(format!("topic stats of {topic}: {e}")))
    }

    /// DELETE_TOPIC_IN_BROKER: the broker forgets the topic's config (its messages age out).
    pub async fn delete_topic_in_broker(&self, broker_addr: &str, topic: &str) -> Result<()> {
        self.call(
            broker_addr,
            topic_request(request::DELETE_TOPIC_IN_BROKER, topic),
        )
        .await
        .map(|_| ())
    }

    /// DELETE_TOPIC_IN_NAMESRV: the name server drops the topic's route.
    pub async fn delete_topic_in_namesrv(&self, topic: &str) -> Result<()> {
        self.call_namesrv(topic_request(request::DELETE_TOPIC_IN_NAMESRV, topic))
            .await
            .map(|_| ())
    }

    /// UPDATE_AND_CREATE_SUBSCRIPTIONGROUP on one broker.
    pub async fn update_subscription_group(
        &self,
        broker_addr: &str,
        config: &SubscriptionGroupConfig,
    ) -> Result<()> {
        validate_group(&config.group_name).map_err(ClientError::InvalidArgument)?;
        let body = serde_json::to_vec(config)
            .map_err(|e| ClientError::Decode(format!("subscription group: {e}")))?;
        let cmd =
            RemotingCommand::request(request::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP).with_body(body);
        self.call(broker_addr, cmd).await.map(|_| ())
    }

    /// GET_SUBSCRIPTIONGROUP_CONFIG: one group's config on one broker.
    pub async fn subscription_group(
        &self,
        broker_addr: &str,
        group: &str,
    ) -> Result<SubscriptionGroupConfig> {
        let header = GetSubscriptionGroupConfigRequestHeader {
            group: group.to_owned(),
        };
        let cmd =
            RemotingCommand::request_with_header(request::GET_SUBSCRIPTIONGROUP_CONFIG, &header);
        let resp = self.call(broker_addr, cmd).await?;
        decode(&resp, "subscription group")
    }

    /// DELETE_SUBSCRIPTIONGROUP on one broker.
    pub async fn delete_subscription_group(&self, broker_addr: &str, group: &str) -> Result<()> {
        let mut cmd = RemotingCommand::request(request::DELETE_SUBSCRIPTIONGROUP);
        cmd.ext_fields.insert("groupName", group);
        self.call(broker_addr, cmd).await.map(|_| ())
    }

    /// GET_CONSUME_STATS: `group`'s offsets on each queue of `topic` (of every topic it
    /// consumes when `None`) on one broker (`mqadmin consumerProgress`).
    pub async fn consume_stats(
        &self,
        broker_addr: &str,
        group: &str,
        topic: Option<&str>,
    ) -> Result<ConsumeStats> {
        let header = GetConsumeStatsRequestHeader {
            consumer_group: group.to_owned(),
            topic: topic.map(str::to_owned),
        };
        let cmd = RemotingCommand::request_with_header(request::GET_CONSUME_STATS, &header);
        let resp = self.call(broker_addr, cmd).await?;
        ConsumeStats::from_fastjson(&resp.body_bytes())
            .map_err(|e| ClientError::Decode(format!("consume stats of {group}: {e}")))
    }

    /// GET_CONSUMER_CONNECTION_LIST: the online clients of a consumer group on one broker.
    pub async fn consumer_connection(
        &self,
        broker_addr: &str,
        group: &str,
    ) -> Result<ConsumerConnection> {
        let header = GetConsumerConnectionListRequestHeader {
            consumer_group: group.to_owned(),
        };
        let cmd =
            RemotingCommand::request_with_header(request::GET_CONSUMER_CONNECTION_LIST, &header);
        let resp = self.call(broker_addr, cmd).await?;
        decode(&resp, "consumer connection")
    }

    /// GET_PRODUCER_CONNECTION_LIST: the online clients of a producer group on one broker.
    pub async fn producer_connection(
        &self,
        broker_addr: &str,
        group: &str,
    ) -> Result<ProducerConnection> {
        let header = GetProducerConnectionListRequestHeader {
            producer_group: group.to_owned(),
        };
        let cmd =
            RemotingCommand::request_with_header(request::GET_PRODUCER_CONNECTION_LIST, &header);
        let resp = self.call(broker_addr, cmd).await?;
        decode(&resp, "producer connection")
    }

    /// CLONE_GROUP_OFFSET on one broker: `dest_group` takes `src_group`'s committed offsets on
    /// `topic` (every topic of the source when `None`). Without `offline` the broker skips topics
    /// an online source group does not subscribe to.
    pub async fn clone_group_offset(
        &self,
        broker_addr: &str,
        src_group: &str,
        dest_group: &str,
        topic: Option<&str>,
        offline: bool,
    ) -> Result<()> {
        validate_group(dest_group).map_err(ClientError::InvalidArgument)?;
        let header = CloneGroupOffsetRequestHeader {
            src_group: src_group.to_owned(),
            dest_group: dest_group.to_owned(),
            topic: topic.map(str::to_owned),
            offline: Some(offline),
        };
        let cmd = RemotingCommand::request_with_header(request::CLONE_GROUP_OFFSET, &header);
        self.call(broker_addr, cmd).await.map(|_| ())
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

fn topic_request(code: i32, topic: &str) -> RemotingCommand {
    RemotingCommand::request_with_header(
        code,
        &TopicRequestHeader {
            topic: topic.to_owned(),
        },
    )
}

/// An answer's JSON body (fastjson's unquoted integer keys allowed) as `T`.
fn decode<T: serde::de::DeserializeOwned>(resp: &RemotingCommand, what: &str) -> Result<T> {
    from_fastjson(&resp.body_bytes()).map_err(|e| ClientError::Decode(format!("{what}: {e}")))
}

/// The part of GET_ALL_SUBSCRIPTIONGROUP_CONFIG's body we read.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupTable {
    #[serde(default)]
    subscription_group_table: BTreeMap<String, SubscriptionGroupConfig>,
}
