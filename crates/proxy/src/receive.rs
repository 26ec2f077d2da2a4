//! ReceiveMessage, AckMessage, ChangeInvisibleDuration and ForwardMessageToDeadLetterQueue, on
//! the broker's POP mechanism (`petrel_broker::pop`), the one remoting POP consumers use too.
//!
//! A receive answers as RocketMQ's proxy does: status OK, the messages, then the delivery
//! timestamp; or MESSAGE_NOT_FOUND and the timestamp when the long poll found nothing; or a
//! single status for an error. Long polls last 5 to 20 s, within the call's own deadline.

use std::sync::Arc;
use std::time::Duration;

use petrel_broker::pop::{PopError, PopRequest, MAX_INVISIBLE, MIN_INVISIBLE};
use petrel_broker::processor::client::subscription_filter;
use petrel_broker::Broker;
use petrel_common::msg_id::now_ms;
use petrel_common::record;
use petrel_common::topic::{validate_group, validate_topic};
use petrel_remoting::CancellationToken;

use crate::clients::subscription_data;
use crate::context::{ok, resource_name, status, Caller};
use crate::message::{std_duration, timestamp_ms, to_message, Delivery};
use crate::pb::receive_message_response::Content;
use crate::pb::{
    AckMessageRequest, AckMessageResponse, AckMessageResultEntry, ChangeInvisibleDurationRequest,
    ChangeInvisibleDurationResponse, Code, ForwardMessageToDeadLetterQueueRequest,
    ForwardMessageToDeadLetterQueueResponse, ReceiveMessageRequest, ReceiveMessageResponse,
    Resource, Status,
};

/// Bounds of a receive's long poll (RocketMQ's proxy: 5 s and 20 s).
pub const MIN_LONG_POLL: Duration = Duration::from_secs(5);
pub const MAX_LONG_POLL: Duration = Duration::from_secs(20);
/// What a long poll leaves of the call's deadline for the answer to travel back.
const DEADLINE_MARGIN: Duration = Duration::from_secs(1);
/// The invisible time of what a push consumer (auto renew) receives; the broker renews it.
pub const AUTO_RENEW_INVISIBLE: Duration = Duration::from_secs(60);
/// Most messages one receive hands out.
pub const MAX_BATCH: u32 = 32;

/// The v2 status of a POP refusal.
fn pop_refused(e: PopError) -> Status {
    let code = match &e {
        PopError::InvalidHandle(_) => Code::InvalidReceiptHandle,
        PopError::TopicNotFound(_) => Code::TopicNotFound,
        PopError::GroupNotFound(_) => Code::ConsumerGroupNotFound,
        PopError::Forbidden(_) => Code::Forbidden,
        PopError::Illegal(_) => Code::BadRequest,
        PopError::Store(_) => Code::InternalServerError,
    };
    status(code, e.to_string())
}

fn group_and_topic(
    group: Option<&Resource>,
    topic: Option<&Resource>,
) -> Result<(String, String), Status> {
    let group = group.map(resource_name).unwrap_or_default();
    validate_group(&group).map_err(|e| status(Code::IllegalConsumerGroup, e))?;
    let topic = topic.map(resource_name).unwrap_or_default();
    validate_topic(&topic).map_err(|e| status(Code::IllegalTopic, e))?;
    Ok((group, topic))
}

/// The responses of one receive. `deadline` is what is left of the call's own timeout, if it
/// sent one.
pub async fn receive(
    b: &Arc<Broker>,
    caller: &Caller,
    req: ReceiveMessageRequest,
    deadline: Option<Duration>,
    shutdown: &CancellationToken,
) -> Vec<ReceiveMessageResponse> {
    let only = |s: Status| {
        vec![ReceiveMessageResponse {
            content: Some(Content::Status(s)),
        }]
    };
    let queue = req.message_queue.unwrap_or_default();
    let (group, topic) = match group_and_topic(req.group.as_ref(), queue.topic.as_ref()) {
        Ok(gt) => gt,
        Err(s) => return only(s),
    };
    let long_poll = match long_poll(req.long_polling_timeout.as_ref(), deadline) {
        Ok(d) => d,
        Err(s) => return only(s),
    };
    let invisible = if req.auto_renew {
        AUTO_RENEW_INVISIBLE
    } else {
        match req.invisible_duration.as_ref().and_then(std_duration) {
            Some(d) if (MIN_INVISIBLE..=MAX_INVISIBLE).contains(&d) => d,
            other => {
                return only(status(
                    Code::IllegalInvisibleTime,
                    format!(
                        "the invisible duration {other:?} is outside {MIN_INVISIBLE:?}..={MAX_INVISIBLE:?}"
                    ),
                ))
            }
        }
    };
    let filter = subscription_data(&topic, req.filter_expression.as_ref(), now_ms() as i64);
    if let Err(r) = subscription_filter(b, &group, &filter) {
        return only(status(Code::IllegalFilterExpression, r.remark));
    }
    let pop = PopRequest {
        group,
        topic,
        // Any queue: a 5.x client names the queue it picked from the route, but waiting on
        // that one while another holds messages would only slow it down.
        queue_id: None,
        max_messages: (req.batch_size.max(1) as u32).min(MAX_BATCH),
        invisible,
        filter,
        long_poll,
        client_id: caller.client_id.clone(),
        auto_renew: req.auto_renew,
        client_addr: caller.peer,
    };
    let popped = tokio::select! {
        p = b.pop(pop) => p,
        _ = shutdown.cancelled() => Ok(Vec::new()),
    };
    let popped = match popped {
        Ok(p) => p,
        Err(e) => return only(pop_refused(e)),
    };
    let mut out = Vec::with_capacity(popped.len() + 2);
    if popped.is_empty() {
        out.push(ReceiveMessageResponse {
            content: Some(Content::Status(status(
                Code::MessageNotFound,
                "no new message",
            ))),
        });
    } else {
        out.push(ReceiveMessageResponse {
            content: Some(Content::Status(ok())),
        });
        for p in popped {
            let rec = match record::decode(&p.record, false) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(
                        queue_id = p.queue_id,
                        offset = p.queue_offset,
                        "unreadable popped record skipped: {e}"
                    );
                    continue;
                }
            };
            let message = to_message(
                &rec,
                Delivery {
                    receipt_handle: Some(p.receipt_handle),
                    attempt: p.delivery_attempt,
                    invisible: Some(invisible),
                },
            );
            out.push(ReceiveMessageResponse {
                content: Some(Content::Message(message)),
            });
        }
    }
    out.push(ReceiveMessageResponse {
        content: Some(Content::DeliveryTimestamp(timestamp_ms(now_ms() as i64))),
    });
    out
}

/// How long a receive may wait: what it asked (else the most), within 5..=20 s, and ending a
/// second before its deadline; a deadline too short for the shortest wait is
/// ILLEGAL_POLLING_TIME.
fn long_poll(
    asked: Option<&prost_types::Duration>,
    deadline: Option<Duration>,
) -> Result<Duration, Status> {
    let wanted = asked
        .and_then(std_duration)
        .unwrap_or(MAX_LONG_POLL)
        .clamp(MIN_LONG_POLL, MAX_LONG_POLL);
    match deadline.map(|d| d.saturating_sub(DEADLINE_MARGIN)) {
        Some(left) if left < wanted => {
            if left >= MIN_LONG_POLL {
                Ok(left)
            } else {
                Err(status(
                    Code::IllegalPollingTime,
                    format!("the call's deadline ({left:?}) leaves no time for a long poll"),
                ))
            }
        }
        _ => Ok(wanted),
    }
}

pub fn ack(b: &Broker, req: AckMessageRequest) -> AckMessageResponse {
    let (group, topic) = match group_and_topic(req.group.as_ref(), req.topic.as_ref()) {
        Ok(gt) => gt,
        Err(s) => {
            return AckMessageResponse {
                status: Some(s),
                entries: Vec::new(),
            }
        }
    };
    let entries: Vec<AckMessageResultEntry> = req
        .entries
        .into_iter()
        .map(|e| {
            let status = match b.ack(&group, &topic, &e.receipt_handle) {
                Ok(()) => ok(),
                Err(err) => pop_refused(err),
            };
            AckMessageResultEntry {
                message_id: e.message_id,
                receipt_handle: e.receipt_handle,
                status: Some(status),
            }
        })
        .collect();
    let status = match entries.first().and_then(|e| e.status.clone()) {
        None => ok(),
        Some(first)
            if entries
                .iter()
                .all(|e| e.status.as_ref().map(|s| s.code) == Some(first.code)) =>
        {
            first
        }
        Some(_) => status(Code::MultipleResults, "the entries had different results"),
    };
    AckMessageResponse {
        status: Some(status),
        entries,
    }
}

pub fn change_invisible_duration(
    b: &Broker,
    req: ChangeInvisibleDurationRequest,
) -> ChangeInvisibleDurationResponse {
    let refused = |s| ChangeInvisibleDurationResponse {
        status: Some(s),
        receipt_handle: String::new(),
    };
    let (group, topic) = match group_and_topic(req.group.as_ref(), req.topic.as_ref()) {
        Ok(gt) => gt,
        Err(s) => return refused(s),
    };
    let Some(invisible) = req.invisible_duration.as_ref().and_then(std_duration) else {
        return refused(status(
            Code::IllegalInvisibleTime,
            "the invisible duration is missing or negative",
        ));
    };
    if invisible > MAX_INVISIBLE {
        return refused(status(
            Code::IllegalInvisibleTime,
            format!("the invisible duration is longer than {MAX_INVISIBLE:?}"),
        ));
    }
    let count_attempt = !req.suspend.unwrap_or(false);
    match b.change_invisible(
        &group,
        &topic,
        &req.receipt_handle,
        invisible,
        count_attempt,
    ) {
        Ok(handle) => ChangeInvisibleDurationResponse {
            status: Some(ok()),
            receipt_handle: handle,
        },
        Err(e) => refused(pop_refused(e)),
    }
}

pub async fn forward_to_dead_letter_queue(
    b: &Broker,
    req: ForwardMessageToDeadLetterQueueRequest,
) -> ForwardMessageToDeadLetterQueueResponse {
    let status = match group_and_topic(req.group.as_ref(), req.topic.as_ref()) {
        Err(s) => s,
        Ok((group, topic)) => match b
            .pop_to_dead_letter(&group, &topic, &req.receipt_handle)
            .await
        {
            Ok(()) => ok(),
            Err(e) => pop_refused(e),
        },
    };
    ForwardMessageToDeadLetterQueueResponse {
        status: Some(status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_polls_stay_within_bounds_and_the_deadline() {
        let d = |s| prost_types::Duration {
            seconds: s,
            nanos: 0,
        };
        assert_eq!(long_poll(None, None).unwrap(), MAX_LONG_POLL);
        assert_eq!(long_poll(Some(&d(1)), None).unwrap(), MIN_LONG_POLL);
        assert_eq!(long_poll(Some(&d(60)), None).unwrap(), MAX_LONG_POLL);
        assert_eq!(
            long_poll(Some(&d(15)), Some(Duration::from_secs(8))).unwrap(),
            Duration::from_secs(7)
        );
        assert_eq!(
            long_poll(Some(&d(15)), Some(Duration::from_secs(2)))
                .unwrap_err()
                .code,
            Code::IllegalPollingTime as i32
        );
    }
}
