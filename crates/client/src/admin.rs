//! Small admin helpers over the client instance: create a topic on a broker or a whole cluster,
//! read routes and queue offsets. What `petrel admin` and tests need, nothing more.

use std::sync::Arc;

use petrel_common::protocol::{from_fastjson, ClusterInfo, MessageQueue, TopicRouteData};
use petrel_common::topic::{perm, validate_topic, AUTO_CREATE_TOPIC_KEY};
use petrel_remoting::code::request;
use petrel_remoting::headers::CreateTopicRequestHeader;
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

    pub fn shutdown(&self) {
        self.instance.shutdown();
    }
}
