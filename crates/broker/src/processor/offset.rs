//! Consumer offsets and queue offsets: QUERY/UPDATE_CONSUMER_OFFSET, GET_MAX/MIN_OFFSET,
//! SEARCH_OFFSET_BY_TIMESTAMP, GET_EARLIEST_MSG_STORETIME.

use petrel_remoting::code::response;
use petrel_remoting::headers::{
    EarliestMsgStoretimeResponseHeader, OffsetResponseHeader, QueryConsumerOffsetRequestHeader,
    QueueRequestHeader, SearchOffsetRequestHeader, UpdateConsumerOffsetRequestHeader,
};
use petrel_remoting::RemotingCommand;

use super::bad_header;
use crate::broker::Broker;

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
    b.offsets
        .commit(&h.consumer_group, &h.topic, h.queue_id, h.commit_offset);
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
