//! Consumer offsets and queue offsets: QUERY/UPDATE_CONSUMER_OFFSET, GET_MAX/MIN_OFFSET,
//! SEARCH_OFFSET_BY_TIMESTAMP, GET_EARLIEST_MSG_STORETIME, CLONE_GROUP_OFFSET.

use petrel_remoting::code::response;
use petrel_remoting::headers::{
    CloneGroupOffsetRequestHeader, EarliestMsgStoretimeResponseHeader, OffsetResponseHeader,
    QueryConsumerOffsetRequestHeader, QueueRequestHeader, SearchOffsetRequestHeader,
    UpdateConsumerOffsetRequestHeader,
};
use petrel_remoting::RemotingCommand;

use super::bad_header;
use crate::broker::Broker;

/// CLONE_GROUP_OFFSET (`mqadmin cloneGroupOffset`): the destination group takes the source
/// group's offsets on the topic, or on every topic the source holds offsets on when none is
/// named. As in Java, topics the broker does not have are skipped, and so, unless `offline`, are
/// topics an online source group does not subscribe to. The copy is set as an operator's reset,
/// so online consumers of the destination move to it. (Java's loop clones the header's topic on
/// every pass, which copies nothing when the topic is blank; this clones each topic found.)
pub fn clone_group_offset(b: &Broker, req: &RemotingCommand) -> RemotingCommand {
    let h: CloneGroupOffsetRequestHeader = match req.decode_header() {
        Ok(h) => h,
        Err(e) => return bad_header(req, e),
    };
    let topics = match h.topic.as_deref().map(str::trim) {
        Some(t) if !t.is_empty() => vec![t.to_owned()],
        _ => b.offsets.topics_of_group(&h.src_group),
    };
    let src_online = b.consumers.group(&h.src_group);
    for topic in topics {
        if b.topics.get(&topic).is_none() {
            continue;
        }
        let unsubscribed = src_online
            .as_ref()
            .is_some_and(|g| !g.subscriptions.is_empty() && !g.subscriptions.contains_key(&topic));
        if h.offline != Some(true) && unsubscribed {
            continue;
        }
        for (queue_id, offset) in b.offsets.queue_offsets(&h.src_group, &topic) {
            b.offsets.reset(&h.dest_group, &topic, queue_id, offset);
        }
    }
    b.flow.wake();
    RemotingCommand::success(req)
}

fn offset_response(req: &RemotingCommand, offset: i64) -> RemotingCommand {
    RemotingCommand::success(req).with_header(&OffsetResponseHeader { offset })
}

pub fn query_consumer_offset(b: &Broker, req: &RemotingCommand) -> RemotingCommand {
    let h: QueryConsumerOffsetRequestHeader = match req.decode_header() {
        Ok(h) => h,
        Err(e) => return bad_header(req, e),
    };
    if let Some(offset) = b.offsets.query(&h.consumer_group, &h.topic, h.queue_id) {
        return offset_response(req, offset);
    }
    // A new group on a queue that still holds its first message starts from 0, as RocketMQ
    // does, unless the client asked not to.
    let min = b.store.min_offset(&h.topic, h.queue_id);
    if min <= 0 && h.set_zero_if_not_found != Some(false) {
        return offset_response(req, 0);
    }
    RemotingCommand::error(
        req,
        response::QUERY_NOT_FOUND,
        "Not found, V3_0_6_SNAPSHOT maybe this group consumer boot first",
    )
}

pub fn update_consumer_offset(b: &Broker, req: &RemotingCommand) -> RemotingCommand {
    let h: UpdateConsumerOffsetRequestHeader = match req.decode_header() {
        Ok(h) => h,
        Err(e) => return bad_header(req, e),
    };
    b.commit_offset(&h.consumer_group, &h.topic, h.queue_id, h.commit_offset);
    RemotingCommand::success(req)
}

pub fn get_max_offset(b: &Broker, req: &RemotingCommand) -> RemotingCommand {
    match req.decode_header::<QueueRequestHeader>() {
        Ok(h) => offset_response(req, b.store.max_offset(&h.topic, h.queue_id)),
        Err(e) => bad_header(req, e),
    }
}

pub fn get_min_offset(b: &Broker, req: &RemotingCommand) -> RemotingCommand {
    match req.decode_header::<QueueRequestHeader>() {
        Ok(h) => offset_response(req, b.store.min_offset(&h.topic, h.queue_id)),
        Err(e) => bad_header(req, e),
    }
}

pub fn search_offset_by_timestamp(b: &Broker, req: &RemotingCommand) -> RemotingCommand {
    match req.decode_header::<SearchOffsetRequestHeader>() {
        Ok(h) => offset_response(
            req,
            b.store
                .offset_by_timestamp(&h.topic, h.queue_id, h.timestamp),
        ),
        Err(e) => bad_header(req, e),
    }
}

pub fn get_earliest_msg_storetime(b: &Broker, req: &RemotingCommand) -> RemotingCommand {
    match req.decode_header::<QueueRequestHeader>() {
        Ok(h) => match b.store.earliest_message_time(&h.topic, h.queue_id) {
            Some(timestamp) => RemotingCommand::success(req)
                .with_header(&EarliestMsgStoretimeResponseHeader { timestamp }),
            None => RemotingCommand::error(
                req,
                response::SYSTEM_ERROR,
                format!("no message in {}:{}", h.topic, h.queue_id),
            ),
        },
        Err(e) => bad_header(req, e),
    }
}
