//! The remoting side of POP consumption (RocketMQ 5.x, reference §2.16): POP_MESSAGE,
//! ACK_MESSAGE and CHANGE_MESSAGE_INVISIBLETIME on the broker's one POP mechanism
//! (`crate::pop`), and QUERY_ASSIGNMENT / SET_MESSAGE_REQUEST_MODE, through which a 5.x push
//! consumer with `clientRebalance = false` learns its queues and whether to pull or pop them.
//!
//! A remoting client builds its receipt itself from the POP answer (`popTime`,
//! `invisibleTime`) and the message's queue and offset, and sends those back: they map onto
//! the broker's receipt handle, whose token is the delivery's pop time.

use std::sync::Arc;
use std::time::Duration;

use petrel_common::filter::{EXPRESSION_TYPE_SQL92, EXPRESSION_TYPE_TAG};
use petrel_common::protocol::{MessageQueue, SubscriptionData};
use petrel_remoting::code::response;
use petrel_remoting::headers::{
    AckMessageRequestHeader, ChangeInvisibleTimeRequestHeader, ChangeInvisibleTimeResponseHeader,
    PopMessageRequestHeader, PopMessageResponseHeader,
};
use petrel_remoting::{Body, Connection, RemotingCommand};
use serde::{Deserialize, Serialize};

use super::bad_header;
use crate::broker::Broker;
use crate::message_request_mode::{RequestMode, RequestModeSetting};
use crate::pop::{with_reconsume_times, PopError, PopRequest, ReceiptHandle};

/// The revive queue RocketMQ's clients echo back; Petrel keeps no revive queues.
const REVIVE_QID: i32 = 0;

pub async fn pop_message(
    b: &Arc<Broker>,
    conn: &Connection,
    req: &RemotingCommand,
) -> RemotingCommand {
    let h: PopMessageRequestHeader = match req.decode_header() {
        Ok(h) => h,
        Err(e) => return bad_header(req, e),
    };
    if h.invisible_time <= 0 || h.max_msg_nums <= 0 {
        return RemotingCommand::error(
            req,
            response::INVALID_PARAMETER,
            format!(
                "invisibleTime ({}) and maxMsgNums ({}) must be positive",
                h.invisible_time, h.max_msg_nums
            ),
        );
    }
    let expr = h.exp.as_deref().filter(|e| !e.is_empty()).unwrap_or("*");
    let filter = match h.exp_type.as_deref().filter(|t| !t.is_empty()) {
        None => SubscriptionData::tags(&h.topic, expr, 0),
        Some(t) if t.eq_ignore_ascii_case(EXPRESSION_TYPE_TAG) => {
            SubscriptionData::tags(&h.topic, expr, 0)
        }
        Some(t) if t.eq_ignore_ascii_case(EXPRESSION_TYPE_SQL92) => {
            SubscriptionData::sql92(&h.topic, expr, 0)
        }
        Some(t) => {
            return RemotingCommand::error(
                req,
                response::SUBSCRIPTION_PARSE_FAILED,
                format!("expression type {t} is not supported; use TAG or SQL92"),
            )
        }
    };
    let pop = PopRequest {
        group: h.consumer_group.clone(),
        topic: h.topic.clone(),
        queue_id: (h.queue_id >= 0).then_some(h.queue_id),
        max_messages: h.max_msg_nums as u32,
        invisible: Duration::from_millis(h.invisible_time as u64),
        filter,
        long_poll: Duration::from_millis(h.poll_time.max(0) as u64),
        client_id: b
            .consumers
            .client_id_of(&h.consumer_group, conn.id())
            .unwrap_or_default(),
        auto_renew: false,
        client_addr: conn.peer_addr(),
    };
    let popped = tokio::select! {
        r = b.pop(pop) => r,
        _ = conn.closed() => return RemotingCommand::error(req, response::SYSTEM_ERROR, "the connection closed"),
    };
    let popped = match popped {
        Ok(p) => p,
        Err(e) => return refused(req, e),
    };
    let Some(first) = popped.first() else {
        return RemotingCommand::response_to(
            req,
            response::POLLING_TIMEOUT,
            Some("no message within the poll time".into()),
        )
        .with_header(&PopMessageResponseHeader {
            pop_time: now_ms(),
            invisible_time: h.invisible_time,
            revive_qid: REVIVE_QID,
            rest_num: 0,
            start_offset_info: None,
            msg_offset_info: None,
            order_count_info: None,
        });
    };
    // One pop time for the whole answer, as the client assumes; a delivery whose token differs
    // (a second delivery within one millisecond) cannot be acked and comes back later.
    let handle = ReceiptHandle::parse(&first.receipt_handle).expect("the broker's own handle");
    let header = PopMessageResponseHeader {
        pop_time: handle.token as i64,
        invisible_time: handle.visible_at_ms - handle.token as i64,
        revive_qid: REVIVE_QID,
        rest_num: 0,
        start_offset_info: None,
        msg_offset_info: None,
        order_count_info: None,
    };
    let records = popped
        .iter()
        .map(|p| with_reconsume_times(&p.record, p.delivery_attempt.saturating_sub(1) as i32))
        .collect();
    let mut resp = RemotingCommand::response_to(req, response::SUCCESS, None).with_header(&header);
    resp.body = Body::Chunks(records);
    resp
}

pub fn ack_message(b: &Broker, req: &RemotingCommand) -> RemotingCommand {
    let h: AckMessageRequestHeader = match req.decode_header() {
        Ok(h) => h,
        Err(e) => return bad_header(req, e),
    };
    let handle = match handle_of(&h.topic, h.queue_id, h.offset, &h.extra_info) {
        Ok(handle) => handle,
        Err(remark) => return RemotingCommand::error(req, response::INVALID_PARAMETER, remark),
    };
    match b.ack(&h.consumer_group, &h.topic, &handle.to_string()) {
        Ok(()) => RemotingCommand::success(req),
        Err(e) => refused(req, e),
    }
}

pub fn change_invisible_time(b: &Broker, req: &RemotingCommand) -> RemotingCommand {
    let h: ChangeInvisibleTimeRequestHeader = match req.decode_header() {
        Ok(h) => h,
        Err(e) => return bad_header(req, e),
    };
    let handle = match handle_of(&h.topic, h.queue_id, h.offset, &h.extra_info) {
        Ok(handle) => handle,
        Err(remark) => return RemotingCommand::error(req, response::INVALID_PARAMETER, remark),
    };
    let invisible = Duration::from_millis(h.invisible_time.max(0) as u64);
    match b.change_invisible(
        &h.consumer_group,
        &h.topic,
        &handle.to_string(),
        invisible,
        true,
    ) {
        Ok(new) => {
            let new = ReceiptHandle::parse(&new).expect("the broker's own handle");
            RemotingCommand::success(req).with_header(&ChangeInvisibleTimeResponseHeader {
                pop_time: new.token as i64,
                invisible_time: new.visible_at_ms - new.token as i64,
                revive_qid: REVIVE_QID,
            })
        }
        Err(e) => refused(req, e),
    }
}

/// QUERY_ASSIGNMENT body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryAssignmentRequestBody {
    topic: String,
    consumer_group: String,
    client_id: String,
    #[serde(default)]
    message_model: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct MessageQueueAssignment {
    message_queue: MessageQueue,
    mode: RequestMode,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct QueryAssignmentResponseBody {
    message_queue_assignments: Vec<MessageQueueAssignment>,
}

/// QUERY_ASSIGNMENT (400): this broker's queues of the topic for one consumer of the group.
/// Pull mode shares them out evenly among the group's consumers (RocketMQ's averaging, the
/// one strategy Petrel applies whatever the client names); POP mode gives every consumer
/// queue −1, "pop from any", unless the group's setting shares queues out.
pub fn query_assignment(b: &Broker, req: &RemotingCommand) -> RemotingCommand {
    let body: QueryAssignmentRequestBody = match serde_json::from_slice(&req.body_bytes()) {
        Ok(body) => body,
        Err(e) => {
            return RemotingCommand::error(
                req,
                response::INVALID_PARAMETER,
                format!("the QUERY_ASSIGNMENT body does not parse: {e}"),
            )
        }
    };
    let Some(topic) = b.topics.get(&body.topic) else {
        return RemotingCommand::error(
            req,
            response::TOPIC_NOT_EXIST,
            format!("topic[{}] not exist, apply first please!", body.topic),
        );
    };
    let setting = b
        .request_modes
        .get(&body.topic, &body.consumer_group)
        .unwrap_or_default();
    let queue = |queue_id| MessageQueue {
        topic: body.topic.clone(),
        broker_name: b.config.broker_name.clone(),
        queue_id,
    };
    let broadcasting = body
        .message_model
        .as_deref()
        .is_some_and(|m| m.eq_ignore_ascii_case("BROADCASTING"));
    let all: Vec<i32> = (0..topic.read_queue_nums).collect();
    let mut clients = b.consumers.client_ids(&body.consumer_group);
    if !clients.contains(&body.client_id) {
        clients.push(body.client_id.clone());
        clients.sort();
    }
    let queues: Vec<i32> = match setting.mode {
        _ if broadcasting => all,
        RequestMode::Pop
            if setting.pop_share_queue_num <= 0
                || setting.pop_share_queue_num as usize >= clients.len().saturating_sub(1) =>
        {
            vec![-1]
        }
        _ => averaged(&all, &clients, &body.client_id),
    };
    let assignments = queues
        .into_iter()
        .map(|q| MessageQueueAssignment {
            message_queue: queue(q),
            mode: if broadcasting {
                RequestMode::Pull
            } else {
                setting.mode
            },
        })
        .collect();
    let body = QueryAssignmentResponseBody {
        message_queue_assignments: assignments,
    };
    RemotingCommand::success(req).with_body(serde_json::to_vec(&body).expect("plain JSON"))
}

/// SET_MESSAGE_REQUEST_MODE (401), from `mqadmin setConsumeMode`.
pub fn set_message_request_mode(b: &Broker, req: &RemotingCommand) -> RemotingCommand {
    let setting: RequestModeSetting = match serde_json::from_slice(&req.body_bytes()) {
        Ok(s) => s,
        Err(e) => {
            return RemotingCommand::error(
                req,
                response::INVALID_PARAMETER,
                format!("the SET_MESSAGE_REQUEST_MODE body does not parse: {e}"),
            )
        }
    };
    if setting
        .topic
        .starts_with(petrel_common::topic::RETRY_GROUP_TOPIC_PREFIX)
    {
        return RemotingCommand::error(
            req,
            response::NO_PERMISSION,
            "retry topics are always pulled",
        );
    }
    match b.request_modes.set(setting) {
        Ok(()) => RemotingCommand::success(req),
        Err(e) => super::io_failure(req, e),
    }
}

/// GET_ALL_MESSAGE_REQUEST_MODE (402): every setting, by topic then group.
pub fn get_all_message_request_mode(b: &Broker, req: &RemotingCommand) -> RemotingCommand {
    RemotingCommand::success(req).with_body(b.request_modes.encode())
}

/// RocketMQ's AllocateMessageQueueAveragely: consumer i of n gets a contiguous block of the
/// sorted queues, the first `len % n` consumers one more.
fn averaged(queues: &[i32], clients: &[String], me: &str) -> Vec<i32> {
    let Some(index) = clients.iter().position(|c| c == me) else {
        return Vec::new();
    };
    let (n, len) = (clients.len(), queues.len());
    if len == 0 {
        return Vec::new();
    }
    let rem = len % n;
    let size = if len <= n {
        1
    } else if rem > 0 && index < rem {
        len / n + 1
    } else {
        len / n
    };
    let start = if rem > 0 && index < rem {
        index * size
    } else {
        index * size + rem
    };
    (0..size.min(len.saturating_sub(start)))
        .map(|i| queues[(start + i) % len])
        .collect()
}

/// The broker's handle for what a remoting client sends back: its `extraInfo` holds the pop
/// time (the token) and the invisible time at field 2 and 3.
fn handle_of(
    topic: &str,
    queue_id: i32,
    offset: i64,
    extra_info: &str,
) -> Result<ReceiptHandle, String> {
    let fields: Vec<&str> = extra_info.split(' ').collect();
    let number = |i: usize| -> Result<i64, String> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| format!("extraInfo {extra_info:?} is not a POP receipt"))
    };
    let pop_time = number(1)?;
    let invisible_time = number(2)?;
    if queue_id < 0 || offset < 0 || pop_time < 0 {
        return Err(format!(
            "queueId {queue_id}, offset {offset} and popTime {pop_time} must not be negative"
        ));
    }
    Ok(ReceiptHandle {
        topic: topic.to_owned(),
        queue_id,
        queue_offset: offset,
        token: pop_time as u64,
        visible_at_ms: pop_time.saturating_add(invisible_time),
    })
}

fn refused(req: &RemotingCommand, e: PopError) -> RemotingCommand {
    let code = match &e {
        PopError::InvalidHandle(_) => response::NO_MESSAGE,
        PopError::TopicNotFound(_) => response::TOPIC_NOT_EXIST,
        PopError::GroupNotFound(_) => response::SUBSCRIPTION_GROUP_NOT_EXIST,
        PopError::Forbidden(_) => response::NO_PERMISSION,
        PopError::Illegal(_) => response::INVALID_PARAMETER,
        PopError::Store(_) => response::SYSTEM_ERROR,
    };
    RemotingCommand::error(req, code, e.to_string())
}

fn now_ms() -> i64 {
    petrel_common::msg_id::now_ms() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("c{i}")).collect()
    }

    #[test]
    fn queues_are_shared_out_as_rocketmq_averages_them() {
        let queues: Vec<i32> = (0..8).collect();
        let clients = ids(3);
        let got: Vec<Vec<i32>> = clients
            .iter()
            .map(|c| averaged(&queues, &clients, c))
            .collect();
        assert_eq!(got, vec![vec![0, 1, 2], vec![3, 4, 5], vec![6, 7]]);
        let many = ids(10);
        assert_eq!(averaged(&queues, &many, "c9"), Vec::<i32>::new());
        assert_eq!(averaged(&queues, &many, "c7"), vec![7]);
        assert_eq!(averaged(&queues, &clients, "stranger"), Vec::<i32>::new());
    }

    #[test]
    fn a_remoting_receipt_maps_onto_the_broker_s_handle() {
        let h = handle_of("T", 2, 17, "15 1700000000000 30000 0 0 broker-a 2 17").unwrap();
        assert_eq!(
            (h.queue_id, h.queue_offset, h.token),
            (2, 17, 1_700_000_000_000)
        );
        assert_eq!(h.visible_at_ms, 1_700_000_030_000);
        assert!(handle_of("T", 2, 17, "garbage").is_err());
        assert!(handle_of("T", -1, 17, "1 2 3").is_err());
    }
}
