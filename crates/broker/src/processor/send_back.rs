//! CONSUMER_SEND_MSG_BACK (36): a consumer hands back a message it failed to consume (reference
//! §2.9). The broker copies the stored message to `%RETRY%<group>` with a delay level, or to
//! `%DLQ%<group>` once it has been retried enough. It never changes the original record.

use std::sync::Arc;

use petrel_common::msg_id::offset_msg_id;
use petrel_common::properties::{Properties, DELAY, ORIGIN_MESSAGE_ID, RETRY_TOPIC};
use petrel_common::record;
use petrel_common::topic::{perm, retry_topic, TopicConfig};
use petrel_remoting::code::response;
use petrel_remoting::headers::ConsumerSendMsgBackRequestHeader;
use petrel_remoting::RemotingCommand;

use super::send::dead_letter_topic;
use super::{bad_header, io_failure};
use crate::broker::Broker;
use crate::topic_config::TopicLookup;

/// First retry level when the consumer leaves the choice to the broker: `3 + reconsumeTimes`
/// (10 s, 30 s, 1 m, … with the default levels).
const FIRST_RETRY_DELAY_LEVEL: i32 = 3;

pub async fn consumer_send_msg_back(b: &Arc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let h: ConsumerSendMsgBackRequestHeader = match req.decode_header() {
        Ok(h) => h,
        Err(e) => return bad_header(req, e),
    };
    let group = match b
        .groups
        .get_or_create(&h.group, b.config.auto_create_subscription_group)
    {
        Ok(Some(g)) => g,
        Ok(None) => {
            return RemotingCommand::error(
                req,
                response::SUBSCRIPTION_GROUP_NOT_EXIST,
                format!("subscription group not exist, {}", h.group),
            )
        }
        Err(e) => return io_failure(req, e),
    };
    let Some(bytes) = b.store.read_record(h.offset) else {
        return RemotingCommand::error(
            req,
            response::SYSTEM_ERROR,
            format!("look message by offset failed, {}", h.offset),
        );
    };
    let original = match record::decode(&bytes, false) {
        Ok(r) => r,
        Err(e) => {
            return RemotingCommand::error(
                req,
                response::SYSTEM_ERROR,
                format!("the record at offset {} is unreadable: {e}", h.offset),
            )
        }
    };

    let mut props = Properties::from_stored(original.properties);
    if props.get(RETRY_TOPIC).is_none() {
        props.insert(RETRY_TOPIC, original.topic);
    }
    if props.get(ORIGIN_MESSAGE_ID).is_none() {
        props.insert(
            ORIGIN_MESSAGE_ID,
            offset_msg_id(original.store_host, original.physical_offset),
        );
    }
    props.remove(DELAY);

    let max_reconsume_times = match h.max_reconsume_times {
        Some(m) if m >= 0 => m,
        _ => group.retry_max_times,
    };
    let to_dlq = original.reconsume_times >= max_reconsume_times || h.delay_level < 0;
    let (topic, queue_id) = if to_dlq {
        match dead_letter_topic(b, &h.group) {
            Ok(t) => (t, 0),
            Err(e) => return io_failure(req, e),
        }
    } else {
        let level = if h.delay_level == 0 {
            FIRST_RETRY_DELAY_LEVEL + original.reconsume_times
        } else {
            h.delay_level
        };
        props.insert(DELAY, level.to_string());
        let queues = group.retry_queue_nums.max(1);
        let retry = TopicConfig::new(retry_topic(&h.group), queues, perm::READ | perm::WRITE);
        match b.topics.create_if_absent(retry) {
            Ok(TopicLookup::Created(t)) => {
                b.topic_changed(&t.topic_name);
                (t.topic_name, rand::random_range(0..queues))
            }
            Ok(TopicLookup::Found(t)) => {
                let queues = t.write_queue_nums.max(1);
                (t.topic_name, rand::random_range(0..queues))
            }
            Ok(TopicLookup::NotExist) => unreachable!("create_if_absent always has the topic"),
            Err(e) => return io_failure(req, e),
        }
    };

    let mut tags_code = super::send::tags_code_of(&props);
    let retry_level = props.get(DELAY).and_then(|l| l.parse::<i32>().ok());
    let destination = topic.clone();
    let (mut store_topic, mut store_queue_id) = (topic, queue_id);
    // Send-back always sets DELAY, which wins over any timer property, so this cannot fail;
    // a failure would still be reported, not swallowed.
    let scheduled =
        match b
            .delay_levels
            .redirect(original.sys_flag, &store_topic, store_queue_id, &mut props)
        {
            Ok(s) => s,
            Err(remark) => return RemotingCommand::error(req, response::MESSAGE_ILLEGAL, remark),
        };
    if let Some(s) = scheduled {
        store_topic = s.topic.to_owned();
        store_queue_id = s.queue_id;
        tags_code = s.tags_code;
    }
    let mut fields = super::send::copy_fields(
        &original,
        &store_topic,
        store_queue_id,
        &props,
        b.store_host,
    );
    fields.reconsume_times = original.reconsume_times + 1;
    fields.prepared_transaction_offset = 0;
    let append = match super::send::encode_append(&fields, tags_code) {
        Ok(a) => a,
        Err(e) => return RemotingCommand::error(req, response::MESSAGE_ILLEGAL, e.to_string()),
    };
    match b.store.put_message(append).await {
        Ok(_) => {
            b.count_put(1);
            b.trace
                .sent_back(&h.group, &bytes, &destination, retry_level);
            if to_dlq {
                let origin = props.get(RETRY_TOPIC).unwrap_or(original.topic);
                b.metrics.send_to_dlq(&h.group, origin);
            }
            RemotingCommand::success(req)
        }
        Err(e) => RemotingCommand::error(
            req,
            response::SYSTEM_ERROR,
            format!("store refused the message sent back: {e}"),
        ),
    }
}
