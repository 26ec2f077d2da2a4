//! INVOKE_BROKER_TO_RESET_OFFSET (`mqadmin resetOffsetByTime`, `petrel admin reset-offset`):
//! move a group's offsets on a topic to a point in time, or one queue to an exact offset.
//!
//! The broker applies the reset itself, so it holds whether or not the group's consumers are
//! online (RocketMQ's classic path refuses with CONSUMER_NOT_ONLINE and leaves it to the
//! clients). It then tells every online client with RESET_CONSUMER_CLIENT_OFFSET, as Java
//! clients expect, and wakes their parked pulls: until a consumer pulls from the reset offset,
//! its pulls get PULL_OFFSET_MOVED to it and its stale commits are ignored (see
//! `ConsumerOffsetManager`), so clients that ignore the notice move too.

use std::fmt::Write as _;
use std::sync::Arc;

use petrel_common::protocol::MessageQueue;
use petrel_common::topic::validate_group;
use petrel_remoting::code::{request, response};
use petrel_remoting::headers::ResetOffsetRequestHeader;
use petrel_remoting::RemotingCommand;

use super::bad_header;
use super::client::tell_group;
use super::stats::{message_queue, offset_table_body};
use crate::broker::Broker;

pub fn invoke_broker_to_reset_offset(b: &Arc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let h: ResetOffsetRequestHeader = match req.decode_header() {
        Ok(h) => h,
        Err(e) => return bad_header(req, e),
    };
    let rows = match plan(b, &h) {
        Ok(rows) => rows,
        Err((code, remark)) => return RemotingCommand::error(req, code, remark),
    };
    for (mq, offset) in &rows {
        b.offsets.reset(&h.group, &h.topic, mq.queue_id, *offset);
    }
    b.flow.wake();
    let body = offset_table_body(&rows, |out, o| write!(out, "{o}"));
    let online = tell_clients(b, &h, &body);
    tracing::info!(group = %h.group, topic = %h.topic, timestamp = h.timestamp, online, "offsets reset");
    let mut resp = RemotingCommand::success(req);
    if online == 0 {
        resp.remark = Some(format!(
            "no consumer of group {} is online; the new offsets apply when one starts",
            h.group
        ));
    }
    resp.body = body.into_bytes().into();
    resp
}

/// The new offset of each queue to reset, or the error code and remark.
fn plan(
    b: &Broker,
    h: &ResetOffsetRequestHeader,
) -> Result<Vec<(MessageQueue, i64)>, (i32, String)> {
    validate_group(&h.group).map_err(|e| (response::INVALID_PARAMETER, e))?;
    let Some(topic) = b.topics.get(&h.topic) else {
        return Err((
            response::TOPIC_NOT_EXIST,
            format!(
                "cannot reset offsets: topic {} does not exist on this broker",
                h.topic
            ),
        ));
    };
    let known = b.groups.get(&h.group).is_some()
        || b.consumers.has_group(&h.group)
        || !b.offsets.queue_offsets(&h.group, &h.topic).is_empty();
    if !known {
        return Err((
            response::SUBSCRIPTION_GROUP_NOT_EXIST,
            format!(
                "cannot reset offsets: consumer group {} does not exist",
                h.group
            ),
        ));
    }
    let store = &b.store;
    let by_time = |queue_id: i32| match h.timestamp {
        -1 => store.max_offset(&h.topic, queue_id),
        t => store.offset_by_timestamp(&h.topic, queue_id, t),
    };
    let queue_ids: Vec<i32> = match h.queue_id {
        Some(q) if q >= 0 => {
            if q >= topic.read_queue_nums {
                return Err((
                    response::INVALID_PARAMETER,
                    format!(
                        "queue {q} does not exist: topic {} has {} read queues",
                        h.topic, topic.read_queue_nums
                    ),
                ));
            }
            vec![q]
        }
        _ => (0..topic.read_queue_nums).collect(),
    };
    // RocketMQ's isForce defaults to true in mqadmin; without it a reset only moves backwards.
    let force = h.is_force.unwrap_or(true);
    let mut rows = Vec::with_capacity(queue_ids.len());
    for queue_id in queue_ids {
        let target = match (h.queue_id, h.offset) {
            (Some(q), Some(offset)) if q >= 0 && offset >= 0 => {
                let (min, max) = (store.min_offset(&h.topic, q), store.max_offset(&h.topic, q));
                if offset < min || offset > max {
                    return Err((
                        response::INVALID_PARAMETER,
                        format!("offset {offset} is outside queue {q}'s range [{min}, {max}]"),
                    ));
                }
                offset
            }
            _ => by_time(queue_id),
        };
        let current = b.offsets.query(&h.group, &h.topic, queue_id);
        let offset = match current {
            Some(c) if !force && c >= 0 && c < target => c,
            _ => target,
        };
        rows.push((message_queue(b, &h.topic, queue_id), offset));
    }
    Ok(rows)
}

/// Sends RESET_CONSUMER_CLIENT_OFFSET to each online client of the group; returns how many.
fn tell_clients(b: &Broker, h: &ResetOffsetRequestHeader, body: &str) -> usize {
    let header = ResetOffsetRequestHeader {
        topic: h.topic.clone(),
        group: h.group.clone(),
        timestamp: h.timestamp,
        is_force: h.is_force,
        queue_id: None,
        offset: None,
    };
    let body = bytes::Bytes::from(body.to_owned());
    tell_group(b, &h.group, "offset reset", move || {
        RemotingCommand::request_with_header(request::RESET_CONSUMER_CLIENT_OFFSET, &header)
            .with_body(body.clone())
    })
}
