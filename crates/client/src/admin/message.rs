//! Finding stored messages, as `mqadmin`'s queryMsg* and printMsg do: by offsetMsgId
//! (VIEW_MESSAGE_BY_ID), by key or client message id (QUERY_MESSAGE on the key index), by queue
//! and offset (a pull that commits nothing), and by store time (SEARCH_OFFSET_BY_TIMESTAMP,
//! then pulls). Only reads; never commits an offset.

use petrel_common::msg_id::decode_offset_msg_id;
use petrel_common::protocol::MessageQueue;
use petrel_remoting::code::{request, response};
use petrel_remoting::headers::{
    OffsetResponseHeader, QueryMessageRequestHeader, SearchOffsetRequestHeader,
    ViewMessageRequestHeader,
};
use petrel_remoting::RemotingCommand;

use super::Admin;
use crate::consumer::PullConsumer;
use crate::error::{ClientError, Result};
use crate::instance::{PullResult, PullStatus};
use crate::message::{decode_messages, MessageExt};

/// The group admin pulls are made in, as `mqadmin`'s: it never commits an offset.
pub const TOOLS_CONSUMER_GROUP: &str = "TOOLS_CONSUMER";
/// extField that makes QUERY_MESSAGE look the key up as a client message id (UNIQ_KEY).
const UNIQUE_KEY_QUERY: &str = "_UNIQUE_KEY_QUERY";
/// Messages asked for per pull while reading a time range.
const PULL_BATCH_MESSAGES: i32 = 32;

impl Admin {
    /// VIEW_MESSAGE_BY_ID: the message stored at `commit_log_offset` of the broker at
    /// `broker_addr`.
    pub async fn view_message(
        &self,
        broker_addr: &str,
        commit_log_offset: i64,
    ) -> Result<MessageExt> {
        let header = ViewMessageRequestHeader {
            offset: commit_log_offset,
            topic: None,
        };
        let cmd = RemotingCommand::request_with_header(request::VIEW_MESSAGE_BY_ID, &header);
        let resp = self.call(broker_addr, cmd).await?;
        decode_messages(&resp.body_bytes())?
            .into_iter()
            .next()
            .ok_or_else(|| ClientError::Decode("VIEW_MESSAGE_BY_ID answered no message".into()))
    }

    /// The message an offsetMsgId names (store address + commit-log offset), read from that
    /// broker.
    pub async fn view_message_by_offset_msg_id(&self, offset_msg_id: &str) -> Result<MessageExt> {
        let (addr, offset) = decode_offset_msg_id(offset_msg_id).ok_or_else(|| {
            ClientError::InvalidArgument(format!("{offset_msg_id} is not an offsetMsgId"))
        })?;
        self.view_message(&addr.to_string(), offset).await
    }

    /// QUERY_MESSAGE on one broker: up to `max_num` messages of `topic` stored between
    /// `begin_ms` and `end_ms` whose KEYS hold `key` (with `unique_key`, whose client message
    /// id is `key`). None found is an empty list, not an error.
    #[allow(clippy::too_many_arguments)]
    pub async fn query_message(
        &self,
        broker_addr: &str,
        topic: &str,
        key: &str,
        max_num: i32,
        begin_ms: i64,
        end_ms: i64,
        unique_key: bool,
    ) -> Result<Vec<MessageExt>> {
        let header = QueryMessageRequestHeader {
            topic: topic.to_owned(),
            key: key.to_owned(),
            max_num,
            begin_timestamp: begin_ms,
            end_timestamp: end_ms,
        };
        let mut cmd = RemotingCommand::request_with_header(request::QUERY_MESSAGE, &header);
        if unique_key {
            cmd.ext_fields.insert(UNIQUE_KEY_QUERY, "true");
        }
        let resp = self
            .instance
            .invoke(broker_addr, cmd, self.instance.config().request_timeout)
            .await?;
        match resp.code {
            response::SUCCESS => decode_messages(&resp.body_bytes()),
            response::QUERY_NOT_FOUND => Ok(Vec::new()),
            code => Err(ClientError::broker(code, resp.remark)),
        }
    }

    /// Messages of `topic` whose KEYS hold `key`, from every broker of the topic's route (up
    /// to `max_num` from each), in store order.
    pub async fn query_messages_by_key(
        &self,
        topic: &str,
        key: &str,
        max_num: i32,
        begin_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<MessageExt>> {
        let mut found = Vec::new();
        for addr in self.topic_brokers(topic).await? {
            found.extend(
                self.query_message(&addr, topic, key, max_num, begin_ms, end_ms, false)
                    .await?,
            );
        }
        found.sort_by_key(|m| (m.store_timestamp, m.commit_log_offset));
        Ok(found)
    }

    /// The messages of `topic` whose client message id (UNIQ_KEY) is `msg_id`, from every
    /// broker of the topic's route; more than one when a producer's retry stored it twice.
    pub async fn query_message_by_unique_key(
        &self,
        topic: &str,
        msg_id: &str,
    ) -> Result<Vec<MessageExt>> {
        let mut found = Vec::new();
        for addr in self.topic_brokers(topic).await? {
            let msgs = self
                .query_message(&addr, topic, msg_id, 32, 0, i64::MAX, true)
                .await?;
            found.extend(msgs.into_iter().filter(|m| m.msg_id() == msg_id));
        }
        found.sort_by_key(|m| (m.store_timestamp, m.commit_log_offset));
        Ok(found)
    }

    /// SEARCH_OFFSET_BY_TIMESTAMP: the offset in `mq` of the first message stored at or after
    /// `timestamp_ms` (the queue's max offset when there is none).
    pub async fn search_offset(&self, mq: &MessageQueue, timestamp_ms: i64) -> Result<i64> {
        let addr = self
            .instance
            .find_master_addr(&mq.broker_name, &mq.topic)
            .await?;
        let header = SearchOffsetRequestHeader {
            topic: mq.topic.clone(),
            queue_id: mq.queue_id,
            timestamp: timestamp_ms,
        };
        let cmd =
            RemotingCommand::request_with_header(request::SEARCH_OFFSET_BY_TIMESTAMP, &header);
        let resp = self.call(&addr, cmd).await?;
        Ok(resp.decode_header::<OffsetResponseHeader>()?.offset)
    }

    /// One pull of up to `max` messages of `mq` from `offset`, in the tools group, committing
    /// nothing and never parked by the broker.
    pub async fn pull(&self, mq: &MessageQueue, offset: i64, max: i32) -> Result<PullResult> {
        PullConsumer::with_instance(TOOLS_CONSUMER_GROUP, self.instance.clone())
            .pull(mq, offset, max)
            .await
    }

    /// The readable queues of `topic`, sorted, from a fresh route.
    pub async fn topic_queues(&self, topic: &str) -> Result<Vec<MessageQueue>> {
        let route = self.instance.update_topic_route(topic).await?;
        Ok(crate::instance::subscribe_queues(topic, &route))
    }

    /// The messages of `mq` stored from `begin_ms` (inclusive) to `end_ms` (exclusive), in
    /// queue order, at most `max` of them: SEARCH_OFFSET_BY_TIMESTAMP for the first, then
    /// pulls until a message stored at or after `end_ms` or the end of the queue.
    pub async fn queue_messages_between(
        &self,
        mq: &MessageQueue,
        begin_ms: i64,
        end_ms: i64,
        max: usize,
    ) -> Result<Vec<MessageExt>> {
        let mut offset = self.search_offset(mq, begin_ms).await?;
        let mut out = Vec::new();
        while out.len() < max {
            let r = self.pull(mq, offset, PULL_BATCH_MESSAGES).await?;
            let PullStatus::Found(batch) = r.status else {
                break;
            };
            if batch.is_empty() {
                break;
            }
            for m in batch {
                if m.store_timestamp >= end_ms || out.len() >= max {
                    return Ok(out);
                }
                if m.store_timestamp >= begin_ms {
                    out.push(m);
                }
            }
            if r.next_begin_offset <= offset {
                break;
            }
            offset = r.next_begin_offset;
        }
        Ok(out)
    }

    /// CONSUME_MESSAGE_DIRECTLY (`mqadmin queryMsgById -g -d`): the broker that stores the
    /// message `offset_msg_id` hands it to one online client of `group`, which consumes it
    /// again; its answer (ConsumeMessageDirectlyResult) comes back as JSON.
    pub async fn consume_message_directly(
        &self,
        group: &str,
        offset_msg_id: &str,
        topic: &str,
        msg_id: &str,
    ) -> Result<serde_json::Value> {
        let (addr, _) = decode_offset_msg_id(offset_msg_id).ok_or_else(|| {
            ClientError::InvalidArgument(format!("{offset_msg_id} is not an offsetMsgId"))
        })?;
        let addr = addr.to_string();
        let clients = self.consumer_connection(&addr, group).await?;
        let client = clients.connection_set.first().ok_or_else(|| {
            ClientError::InvalidArgument(format!("consumer group {group} has no client online"))
        })?;
        let mut cmd = RemotingCommand::request(request::CONSUME_MESSAGE_DIRECTLY);
        cmd.ext_fields.insert("consumerGroup", group);
        cmd.ext_fields.insert("clientId", client.client_id.as_str());
        cmd.ext_fields.insert("msgId", offset_msg_id);
        cmd.ext_fields.insert("topic", topic);
        cmd.ext_fields.insert("uniqKey", msg_id);
        let resp = self.call(&addr, cmd).await?;
        petrel_common::protocol::from_fastjson(&resp.body_bytes())
            .map_err(|e| ClientError::Decode(format!("consume message directly: {e}")))
    }
}
