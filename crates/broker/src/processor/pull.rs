//! PULL_MESSAGE with long polling: read from the consume queue, answer with the stored records
//! as they are on disk, or park until a message arrives or the client's suspend time is up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use petrel_common::filter::{MessageFilter, Sql92Filter, EXPRESSION_TYPE_TAG};
use petrel_common::protocol::SubscriptionData;
use petrel_common::topic::perm;
use petrel_remoting::code::response;
use petrel_remoting::headers::{
    pull_sys_flag, PullMessageRequestHeader, PullMessageResponseHeader,
};
use petrel_remoting::{Body, Connection, RemotingCommand};
use petrel_store::{GetResult, GetStatus};

use super::bad_header;
use super::client::subscription_filter;
use crate::broker::Broker;
use crate::flow_control::Admission;

pub async fn pull_message(
    b: &Arc<Broker>,
    conn: &Connection,
    req: &RemotingCommand,
) -> Option<RemotingCommand> {
    let h: PullMessageRequestHeader = match req.decode_header() {
        Ok(h) => h,
        Err(e) => return Some(bad_header(req, e)),
    };
    if b.stopping.is_cancelled() {
        return Some(shutting_down(req));
    }
    let (sub, sql) = match check(b, req, &h) {
        Ok(checked) => checked,
        Err(resp) => return Some(resp),
    };
    if h.sys_flag & pull_sys_flag::COMMIT_OFFSET != 0 {
        b.commit_offset(&h.consumer_group, &h.topic, h.queue_id, h.commit_offset);
    }
    let max_count = (h.max_msg_nums.max(1) as u32).min(b.config.max_pull_msg_nums);
    let may_suspend = h.sys_flag & pull_sys_flag::SUSPEND != 0;
    let hold =
        Duration::from_millis(h.suspend_timeout_millis.max(0) as u64).min(b.config.long_poll_max);
    let started = Instant::now();
    let deadline = started + hold;
    let filter = PullFilter {
        sub: &sub,
        sql: sql.as_deref(),
    };
    let group = &h.consumer_group;
    let mut settings = b.flow.changed();
    let mut may_park = may_suspend;
    loop {
        // An operator reset the consumer has not followed yet: send it there first.
        if let Some(reset) = b.offsets.pending_reset(group, &h.topic, h.queue_id) {
            if reset != h.queue_offset {
                return Some(held_back(
                    b,
                    req,
                    &h,
                    response::PULL_OFFSET_MOVED,
                    reset,
                    "the consumer offset was reset",
                ));
            }
            b.offsets.reset_reached(group, &h.topic, h.queue_id);
        }
        let granted = match b.flow.admit(
            group,
            || b.consumers.client_id_of(group, conn.id()),
            max_count,
        ) {
            Admission::Granted(n) => n,
            blocked => {
                let (until, why) = match blocked {
                    Admission::Wait(d) => {
                        // A pull that may not be parked still waits out a short rate gap.
                        let patience = if may_suspend {
                            deadline
                        } else {
                            started + RATE_WAIT_WITHOUT_SUSPEND
                        };
                        (
                            (Instant::now() + d).min(patience),
                            "the consumer group is over its rate limit",
                        )
                    }
                    _ => (
                        if may_suspend { deadline } else { started },
                        "the consumer is paused",
                    ),
                };
                if Instant::now() >= until {
                    return Some(held_back(
                        b,
                        req,
                        &h,
                        response::PULL_NOT_FOUND,
                        h.queue_offset,
                        why,
                    ));
                }
                tokio::select! {
                    _ = conn.closed() => return None,
                    _ = b.stopping.cancelled() => return Some(shutting_down(req)),
                    _ = changed(&mut settings) => {}
                    _ = tokio::time::sleep_until(until.into()) => {}
                }
                continue;
            }
        };
        let result = b
            .store
            .get_messages(&h.topic, h.queue_id, h.queue_offset, granted, &filter);
        b.flow
            .refund(group, granted.saturating_sub(result.messages.len() as u32));
        let code = response_code(&result, h.queue_offset);
        if code == response::PULL_NOT_FOUND && may_park && Instant::now() < deadline {
            let store = &b.store;
            tokio::select! {
                _ = conn.closed() => return None,
                // A stopping broker tells parked pulls to back off rather than pull again
                // into a connection about to close.
                _ = b.stopping.cancelled() => return Some(shutting_down(req)),
                // A reset or a pause: look again.
                _ = changed(&mut settings) => {}
                arrived = b.pull_hold.wait_for(&h.topic, h.queue_id, h.queue_offset, deadline, || {
                    store.max_offset(&h.topic, h.queue_id)
                }) => {
                    // Timed out: answer with what the store says after one last read.
                    may_park = arrived;
                }
            }
            continue;
        }
        if code == response::SUCCESS {
            b.trace
                .delivered(group, conn.id(), conn.peer_addr(), &result.messages);
        }
        return Some(answer(b, req, &h, result, code));
    }
}

/// How long a pull without the suspend flag may wait for the group's next rate-limit token.
const RATE_WAIT_WITHOUT_SUSPEND: Duration = Duration::from_secs(1);

/// Resolves at the next change of flow-control settings or offset resets.
async fn changed(rx: &mut tokio::sync::watch::Receiver<u64>) {
    if rx.changed().await.is_err() {
        // The broker is going away; its stopping token answers the pull.
        std::future::pending::<()>().await;
    }
}

/// An answer with no messages that tells the consumer where to pull next.
fn held_back(
    b: &Broker,
    req: &RemotingCommand,
    h: &PullMessageRequestHeader,
    code: i32,
    next_begin_offset: i64,
    why: &str,
) -> RemotingCommand {
    let header = PullMessageResponseHeader {
        suggest_which_broker_id: 0,
        next_begin_offset,
        min_offset: b.store.min_offset(&h.topic, h.queue_id),
        max_offset: b.store.max_offset(&h.topic, h.queue_id),
    };
    RemotingCommand::response_to(req, code, Some(why.to_owned())).with_header(&header)
}

fn shutting_down(req: &RemotingCommand) -> RemotingCommand {
    RemotingCommand::error(
        req,
        response::SERVICE_NOT_AVAILABLE,
        "the broker is shutting down",
    )
}

/// What a pull keeps: entries whose tag hash the subscription accepts and, for a SQL92
/// subscription, whose stored properties satisfy its compiled filter.
pub(crate) struct PullFilter<'a> {
    pub(crate) sub: &'a SubscriptionData,
    pub(crate) sql: Option<&'a Sql92Filter>,
}

impl MessageFilter for PullFilter<'_> {
    fn matches_tags_code(&self, tags_code: i64) -> bool {
        self.sub.matches_tags_code(tags_code)
    }

    fn needs_properties(&self) -> bool {
        self.sql.is_some()
    }

    fn matches_properties(&self, properties: &[u8]) -> bool {
        self.sql.is_none_or(|f| f.matches_encoded(properties))
    }
}

/// The subscription to filter with (and its compiled SQL92 filter, if it is one), after the
/// checks RocketMQ makes before reading.
fn check(
    b: &Broker,
    req: &RemotingCommand,
    h: &PullMessageRequestHeader,
) -> Result<(SubscriptionData, Option<Arc<Sql92Filter>>), RemotingCommand> {
    let sub = subscription(b, req, h)?;
    let sql = subscription_filter(b, &h.consumer_group, &sub).map_err(|r| r.response(req))?;
    Ok((sub, sql))
}

/// The subscription of the pull: from its header when it carries one, else the group's
/// registered one.
fn subscription(
    b: &Broker,
    req: &RemotingCommand,
    h: &PullMessageRequestHeader,
) -> Result<SubscriptionData, RemotingCommand> {
    let Some(topic) = b.topics.get(&h.topic) else {
        return Err(RemotingCommand::error(
            req,
            response::TOPIC_NOT_EXIST,
            format!("topic[{}] not exist, apply first please!", h.topic),
        ));
    };
    if !perm::readable(topic.perm) {
        return Err(RemotingCommand::error(
            req,
            response::NO_PERMISSION,
            format!("the topic[{}] pulling message is forbidden", h.topic),
        ));
    }
    if h.queue_id < 0 || h.queue_id >= topic.read_queue_nums {
        return Err(RemotingCommand::error(
            req,
            response::INVALID_PARAMETER,
            format!(
                "queueId[{}] is illegal, topic:[{}] topicConfig.readQueueNums:[{}]",
                h.queue_id, h.topic, topic.read_queue_nums
            ),
        ));
    }
    if let Some(group) = b.groups.get(&h.consumer_group) {
        if !group.consume_enable {
            return Err(RemotingCommand::error(
                req,
                response::NO_PERMISSION,
                format!(
                    "subscription group [{}] does not allow consuming",
                    h.consumer_group
                ),
            ));
        }
    }
    if h.sys_flag & pull_sys_flag::SUBSCRIPTION != 0 {
        let expr = h.subscription.as_deref().unwrap_or("*");
        let expression_type = h
            .expression_type
            .as_deref()
            .filter(|t| !t.is_empty())
            .unwrap_or(EXPRESSION_TYPE_TAG);
        if expression_type.eq_ignore_ascii_case(EXPRESSION_TYPE_TAG) {
            return Ok(SubscriptionData::tags(&h.topic, expr, h.sub_version));
        }
        // SQL92, or a type `subscription_filter` refuses by name.
        return Ok(SubscriptionData {
            expression_type: expression_type.to_owned(),
            ..SubscriptionData::sql92(&h.topic, expr, h.sub_version)
        });
    }
    if !b.consumers.has_group(&h.consumer_group) {
        return Err(RemotingCommand::error(
            req,
            response::SUBSCRIPTION_NOT_EXIST,
            format!("the consumer's group info not exist: {}", h.consumer_group),
        ));
    }
    match b.consumers.subscription(&h.consumer_group, &h.topic) {
        None => Err(RemotingCommand::error(
            req,
            response::SUBSCRIPTION_NOT_EXIST,
            format!(
                "the consumer's subscription not exist: group {} topic {}",
                h.consumer_group, h.topic
            ),
        )),
        Some(sub) if sub.sub_version < h.sub_version => Err(RemotingCommand::error(
            req,
            response::SUBSCRIPTION_NOT_LATEST,
            "the consumer's subscription not latest",
        )),
        Some(sub) => Ok(sub),
    }
}

/// RocketMQ's mapping of store outcomes to pull response codes (reference §2.5).
fn response_code(r: &GetResult, requested: i64) -> i32 {
    match r.status {
        GetStatus::Found => response::SUCCESS,
        GetStatus::NoMessageInQueue if requested != 0 => response::PULL_OFFSET_MOVED,
        GetStatus::NoMessageInQueue => response::PULL_NOT_FOUND,
        GetStatus::OffsetTooSmall | GetStatus::OffsetOverflowBadly => response::PULL_OFFSET_MOVED,
        GetStatus::OffsetOverflowOne | GetStatus::OffsetFoundNull => response::PULL_NOT_FOUND,
        GetStatus::NoMatchedMessage => response::PULL_RETRY_IMMEDIATELY,
    }
}

fn answer(
    b: &Broker,
    req: &RemotingCommand,
    h: &PullMessageRequestHeader,
    r: GetResult,
    code: i32,
) -> RemotingCommand {
    let header = PullMessageResponseHeader {
        suggest_which_broker_id: 0,
        next_begin_offset: r.next_begin_offset,
        min_offset: r.min_offset,
        max_offset: r.max_offset,
    };
    let remark = format!("{:?}", r.status);
    let mut resp = RemotingCommand::response_to(req, code, Some(remark)).with_header(&header);
    if code == response::SUCCESS {
        b.count_get(r.messages.len() as u64);
        b.metrics.messages_out(
            &h.consumer_group,
            &h.topic,
            h.queue_id,
            &r.messages,
            r.next_begin_offset,
        );
        resp.body = Body::Chunks(r.messages);
    }
    resp
}
