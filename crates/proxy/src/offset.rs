//! UpdateOffset, GetOffset and QueryOffset, the progress calls of the 5.x pull consumer, on the
//! broker's consumer offsets and queues (the same offsets remoting consumers commit).

use petrel_broker::Broker;
use petrel_common::topic::{validate_group, validate_topic};

use crate::context::{ok, resource_name, status};
use crate::message::ms_of_timestamp;
use crate::pb::{
    Code, GetOffsetRequest, GetOffsetResponse, MessageQueue, QueryOffsetPolicy, QueryOffsetRequest,
    QueryOffsetResponse, Resource, Status, UpdateOffsetRequest,
};

/// The group (when one is asked), topic and queue id of a request, checked.
fn queue_of(
    group: Option<&Resource>,
    queue: Option<&MessageQueue>,
) -> Result<(Option<String>, String, i32), Status> {
    let group = group.map(resource_name);
    if let Some(g) = &group {
        validate_group(g).map_err(|e| status(Code::IllegalConsumerGroup, e))?;
    }
    let queue = queue.ok_or_else(|| status(Code::BadRequest, "the message queue is missing"))?;
    let topic = queue.topic.as_ref().map(resource_name).unwrap_or_default();
    validate_topic(&topic).map_err(|e| status(Code::IllegalTopic, e))?;
    Ok((group, topic, queue.id))
}

/// The queue must exist on this broker.
fn check_queue(b: &Broker, topic: &str, queue_id: i32) -> Result<(), Status> {
    let Some(config) = b.topics.get(topic) else {
        return Err(status(
            Code::TopicNotFound,
            format!("topic {topic} does not exist"),
        ));
    };
    if queue_id < 0 || queue_id >= config.read_queue_nums.max(config.write_queue_nums) {
        return Err(status(
            Code::BadRequest,
            format!("topic {topic} has no queue {queue_id}"),
        ));
    }
    Ok(())
}

pub fn update_offset(b: &Broker, req: UpdateOffsetRequest) -> Status {
    let (group, topic, queue_id) = match queue_of(req.group.as_ref(), req.message_queue.as_ref()) {
        Ok(q) => q,
        Err(s) => return s,
    };
    let Some(group) = group else {
        return status(Code::IllegalConsumerGroup, "the group is missing");
    };
    if let Err(s) = check_queue(b, &topic, queue_id) {
        return s;
    }
    if req.offset < 0 {
        return status(
            Code::IllegalOffset,
            format!("offset {} is negative", req.offset),
        );
    }
    b.commit_offset(&group, &topic, queue_id, req.offset);
    ok()
}

pub fn get_offset(b: &Broker, req: GetOffsetRequest) -> GetOffsetResponse {
    let answer = |status, offset| GetOffsetResponse {
        status: Some(status),
        offset,
    };
    let (group, topic, queue_id) = match queue_of(req.group.as_ref(), req.message_queue.as_ref()) {
        Ok(q) => q,
        Err(s) => return answer(s, 0),
    };
    let Some(group) = group else {
        return answer(
            status(Code::IllegalConsumerGroup, "the group is missing"),
            0,
        );
    };
    match b.offsets.query(&group, &topic, queue_id) {
        Some(offset) => answer(ok(), offset),
        None => answer(
            status(
                Code::OffsetNotFound,
                format!("group {group} has no offset on queue {queue_id} of {topic}"),
            ),
            0,
        ),
    }
}

pub fn query_offset(b: &Broker, req: QueryOffsetRequest) -> QueryOffsetResponse {
    let answer = |status, offset| QueryOffsetResponse {
        status: Some(status),
        offset,
    };
    let (_, topic, queue_id) = match queue_of(None, req.message_queue.as_ref()) {
        Ok(q) => q,
        Err(s) => return answer(s, 0),
    };
    if let Err(s) = check_queue(b, &topic, queue_id) {
        return answer(s, 0);
    }
    let offset = match QueryOffsetPolicy::try_from(req.query_offset_policy) {
        Ok(QueryOffsetPolicy::Beginning) => b.store.min_offset(&topic, queue_id),
        Ok(QueryOffsetPolicy::End) => b.store.max_offset(&topic, queue_id),
        Ok(QueryOffsetPolicy::Timestamp) => match &req.timestamp {
            Some(t) => b
                .store
                .offset_by_timestamp(&topic, queue_id, ms_of_timestamp(t)),
            None => return answer(status(Code::BadRequest, "the timestamp is missing"), 0),
        },
        Err(_) => return answer(status(Code::BadRequest, "unknown query offset policy"), 0),
    };
    answer(ok(), offset)
}
