//! The low-level pull consumer: one PULL_MESSAGE per call, offsets in the caller's hands. It
//! sends its subscription with every pull, so it needs no heartbeat to be served.

use std::sync::Arc;
use std::time::Duration;

use petrel_common::msg_id::now_ms;
use petrel_common::protocol::{MessageQueue, SubscriptionData};
use petrel_remoting::headers::pull_sys_flag;

use crate::config::ClientConfig;
use crate::error::{ClientError, Result};
use crate::instance::{ClientInstance, PullRequest, PullResult};

pub struct PullConsumer {
    group: String,
    instance: Arc<ClientInstance>,
    owns_instance: bool,
}

impl PullConsumer {
    pub fn new(group: impl Into<String>, config: ClientConfig) -> Self {
        PullConsumer {
            group: group.into(),
            instance: ClientInstance::new(config),
            owns_instance: true,
        }
    }

    pub fn with_instance(group: impl Into<String>, instance: Arc<ClientInstance>) -> Self {
        PullConsumer {
            group: group.into(),
            instance,
            owns_instance: false,
        }
    }

    pub fn instance(&self) -> &Arc<ClientInstance> {
        &self.instance
    }

    pub async fn start(&self) -> Result<()> {
        petrel_common::topic::validate_group(&self.group).map_err(ClientError::InvalidArgument)?;
        self.instance.start()
    }

    pub async fn shutdown(&self) {
        if self.owns_instance || !self.instance.has_groups() {
            self.instance.shutdown();
        }
    }

    /// Readable queues of `topic`, from a fresh route.
    pub async fn fetch_queues(&self, topic: &str) -> Result<Vec<MessageQueue>> {
        let route = self.instance.update_topic_route(topic).await?;
        Ok(crate::instance::subscribe_queues(topic, &route))
    }

    /// Pulls up to `max` messages of every tag from `offset`, without long polling.
    pub async fn pull(&self, mq: &MessageQueue, offset: i64, max: i32) -> Result<PullResult> {
        self.pull_with(mq, "*", offset, max, Duration::ZERO).await
    }

    /// Pulls up to `max` messages matching `tag_expression` from `offset`; with a non-zero
    /// `long_poll` the broker may hold the request that long when nothing is there yet.
    pub async fn pull_with(
        &self,
        mq: &MessageQueue,
        tag_expression: &str,
        offset: i64,
        max: i32,
        long_poll: Duration,
    ) -> Result<PullResult> {
        let sub = SubscriptionData::tags(&mq.topic, tag_expression, now_ms() as i64);
        self.pull_subscription(mq, &sub, offset, max, long_poll)
            .await
    }

    /// Pulls up to `max` messages whose properties satisfy the SQL92 `expression` (the broker
    /// filters; a bad expression is its SUBSCRIPTION_PARSE_FAILED error).
    pub async fn pull_sql(
        &self,
        mq: &MessageQueue,
        expression: &str,
        offset: i64,
        max: i32,
        long_poll: Duration,
    ) -> Result<PullResult> {
        let sub = SubscriptionData::sql92(&mq.topic, expression, now_ms() as i64);
        self.pull_subscription(mq, &sub, offset, max, long_poll)
            .await
    }

    async fn pull_subscription(
        &self,
        mq: &MessageQueue,
        sub: &SubscriptionData,
        offset: i64,
        max: i32,
        long_poll: Duration,
    ) -> Result<PullResult> {
        let mut sys_flag = pull_sys_flag::SUBSCRIPTION;
        if !long_poll.is_zero() {
            sys_flag |= pull_sys_flag::SUSPEND;
        }
        let req = PullRequest {
            group: &self.group,
            queue: mq,
            offset,
            max_msg_nums: max,
            sys_flag,
            commit_offset: 0,
            suspend_timeout: long_poll,
            subscription: sub,
            timeout: long_poll + self.instance.config().request_timeout,
        };
        self.instance.pull_message(&req).await
    }

    /// The group's committed offset of `mq`, `None` when there is none.
    pub async fn committed_offset(&self, mq: &MessageQueue) -> Result<Option<i64>> {
        self.instance.query_consumer_offset(&self.group, mq).await
    }

    /// Commits the group's offset of `mq`, waiting for the broker.
    pub async fn commit_offset(&self, mq: &MessageQueue, offset: i64) -> Result<()> {
        self.instance
            .update_consumer_offset(&self.group, mq, offset)
            .await
    }

    pub async fn min_offset(&self, mq: &MessageQueue) -> Result<i64> {
        self.instance.min_offset(mq).await
    }

    pub async fn max_offset(&self, mq: &MessageQueue) -> Result<i64> {
        self.instance.max_offset(mq).await
    }
}
