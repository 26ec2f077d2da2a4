//! One message's path (`petrel admin trace`), put together from three sources on every broker
//! of the cluster, all found through the key index:
//! - its stored copies: the message itself and what it became (a half message, a delayed or
//!   timer copy, retries, a dead letter), which share its client message id;
//! - the brokers' own trace in `rmq_sys_broker_trace`: deliveries, commits, retries, dead
//!   letters, transaction outcomes;
//! - its clients' trace in `RMQ_SYS_TRACE_TOPIC` when they had message trace on (Pub,
//!   SubBefore, SubAfter, EndTransaction).

use std::collections::{BTreeSet, HashSet};

use petrel_common::msg_id::decode_offset_msg_id;
use petrel_common::topic::{SCHEDULE_TOPIC, TIMER_TOPIC, TRANS_HALF_TOPIC};
use petrel_common::trace::BrokerTraceKind;
use petrel_common::trace::{
    commit_key, decode_client_trace, traced_msg_id, BrokerTraceBatch, BrokerTraceEvent,
    ClientTraceRecord, TracedMessage, BROKER_TRACE_TOPIC, CLIENT_TRACE_TOPIC,
};

use super::Admin;
use crate::error::{ClientError, Result};
use crate::message::MessageExt;

/// Trace messages read per broker and topic; a message with more trace records than this
/// (thousands of redeliveries) shows the newest.
const MAX_TRACE_MESSAGES: i32 = 64;
/// The windows after a delivery its commit is looked for in, one after the other: 10 s, a
/// minute, ten minutes, 100 minutes, then the rest of time.
const COMMIT_WINDOWS_MS: [i64; 5] = [10_000, 60_000, 600_000, 6_000_000, i64::MAX];
/// A commit is stored with the time of its note, which may be a little before the delivery's
/// on another clock tick.
const COMMIT_CLOCK_SLACK_MS: i64 = 1_000;

/// A stored copy of the traced message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredCopy {
    pub broker: String,
    pub topic: String,
    pub queue_id: i32,
    pub queue_offset: i64,
    pub store_timestamp: i64,
    pub born_timestamp: i64,
    /// The producer's address (the record's born host).
    pub born_host: String,
    pub store_host: String,
    pub offset_msg_id: String,
    pub reconsume_times: i32,
}

impl StoredCopy {
    fn of(broker: &str, m: &MessageExt) -> StoredCopy {
        StoredCopy {
            broker: broker.to_owned(),
            topic: m.topic.clone(),
            queue_id: m.queue_id,
            queue_offset: m.queue_offset,
            store_timestamp: m.store_timestamp,
            born_timestamp: m.born_timestamp,
            born_host: m.born_host.to_string(),
            store_host: m.store_host.to_string(),
            offset_msg_id: m.offset_msg_id.clone(),
            reconsume_times: m.reconsume_times,
        }
    }
}

/// A broker trace event about the traced message, with the broker that recorded it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BrokerStep {
    pub broker: String,
    #[serde(flatten)]
    pub event: BrokerTraceEvent,
}

/// Everything known of one message's path.
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageTrace {
    /// The id the message is traced under (its client message id when it has one).
    pub msg_id: String,
    /// Oldest first.
    pub stored: Vec<StoredCopy>,
    /// Oldest first.
    pub broker_events: Vec<BrokerStep>,
    /// Oldest first.
    pub client_records: Vec<ClientTraceRecord>,
    /// Whether the message's topic was known (given, or named by a trace or by the id): only
    /// then were its stored copies looked for in it.
    pub topic_known: bool,
}

impl Admin {
    /// The path of the message `id` names: a client message id (UNIQ_KEY) or an offsetMsgId.
    /// `topic` narrows nothing but adds a topic to look for stored copies in when no trace
    /// names it yet.
    pub async fn trace_message(&self, id: &str, topic: Option<&str>) -> Result<MessageTrace> {
        let brokers = self.master_brokers().await?;
        if brokers.is_empty() {
            return Err(ClientError::InvalidArgument(
                "the name server knows no broker with a master".into(),
            ));
        }
        let mut topics: BTreeSet<String> = topic.into_iter().map(str::to_owned).collect();
        let viewed = self.offset_msg_id_target(id).await;
        let msg_id = match &viewed {
            Some(m) => {
                topics.insert(m.topic.clone());
                traced_msg_id(m.properties.as_str(), m.store_host, m.commit_log_offset)
            }
            None => id.to_owned(),
        };
        let mut trace = MessageTrace {
            msg_id: msg_id.clone(),
            ..MessageTrace::default()
        };
        if let Some(m) = &viewed {
            // Found whether or not it has a client message id to look it up by.
            let store = m.store_host.to_string();
            let broker = brokers
                .iter()
                .find(|(_, addr)| *addr == store)
                .map_or(store.as_str(), |(name, _)| name.as_str());
            trace.stored.push(StoredCopy::of(broker, m));
        }
        // Deliveries name a range of a queue; each is placed by the stored copy it covers.
        let mut deliveries: Vec<(String, BrokerTraceEvent)> = Vec::new();
        for (name, addr) in &brokers {
            for m in self
                .query_all(addr, BROKER_TRACE_TOPIC, &msg_id, false)
                .await?
            {
                let Ok(batch) = serde_json::from_slice::<BrokerTraceBatch>(&m.body) else {
                    continue;
                };
                let broker = if batch.broker.is_empty() {
                    name.clone()
                } else {
                    batch.broker.clone()
                };
                for e in &batch.events {
                    if e.kind == BrokerTraceKind::Delivered {
                        topics.insert(e.topic.clone());
                        deliveries.push((broker.clone(), e.clone()));
                    } else if let Some(event) = e.about(&msg_id) {
                        topics.insert(event.topic.clone());
                        topics.extend(event.to_topic.clone());
                        trace.broker_events.push(BrokerStep {
                            broker: broker.clone(),
                            event,
                        });
                    }
                }
            }
            for m in self
                .query_all(addr, CLIENT_TRACE_TOPIC, &msg_id, false)
                .await?
            {
                let body = String::from_utf8_lossy(&m.body);
                for r in decode_client_trace(&body) {
                    if r.msg_id() != msg_id {
                        continue;
                    }
                    if let ClientTraceRecord::Pub { topic, .. }
                    | ClientTraceRecord::EndTransaction { topic, .. } = &r
                    {
                        topics.insert(topic.clone());
                    }
                    trace.client_records.push(r);
                }
            }
        }
        let topic_known = !topics.is_empty();
        for t in [TRANS_HALF_TOPIC, SCHEDULE_TOPIC, TIMER_TOPIC] {
            topics.insert(t.to_owned());
        }
        for (name, addr) in &brokers {
            for t in &topics {
                for m in self.query_all(addr, t, &msg_id, true).await? {
                    if m.msg_id() == msg_id || m.offset_msg_id == msg_id {
                        trace.stored.push(StoredCopy::of(name, &m));
                    }
                }
            }
        }
        trace
            .stored
            .sort_by_key(|s| (s.store_timestamp, s.offset_msg_id.clone()));
        trace.stored.dedup();
        for (broker, mut event) in deliveries {
            let Some(copy) = trace.stored.iter().find(|c| {
                c.broker == broker
                    && c.topic == event.topic
                    && c.queue_id == event.queue_id
                    && event.covers(c.queue_offset)
            }) else {
                continue;
            };
            event.messages = vec![TracedMessage {
                msg_id: msg_id.clone(),
                queue_offset: copy.queue_offset,
                attempt: copy.reconsume_times,
            }];
            trace.broker_events.push(BrokerStep { broker, event });
        }
        self.add_commits(&brokers, &mut trace).await?;
        date_old_sub_afters(&mut trace.client_records);
        // Each client writes its trace on its own; put them in time order.
        trace
            .client_records
            .sort_by_key(|r| r.time_ms().unwrap_or(i64::MAX));
        trace.topic_known = topic_known;
        trace.broker_events.sort_by_key(|s| s.event.time_ms);
        trace.broker_events.dedup();
        Ok(trace)
    }

    /// The message an offsetMsgId names, if `id` is one and its broker has it.
    async fn offset_msg_id_target(&self, id: &str) -> Option<MessageExt> {
        decode_offset_msg_id(id)?;
        self.view_message_by_offset_msg_id(id).await.ok()
    }

    /// For each delivery of the traced message, the first commit of its group past it.
    async fn add_commits(
        &self,
        brokers: &[(String, String)],
        trace: &mut MessageTrace,
    ) -> Result<()> {
        // Ordered by queue, then time: a message's deliveries one after the other.
        let deliveries: BTreeSet<Delivery> = trace
            .broker_events
            .iter()
            .filter(|s| s.event.kind == BrokerTraceKind::Delivered)
            .filter_map(|s| {
                let m = s.event.messages.first()?;
                Some(Delivery {
                    broker: s.broker.clone(),
                    group: s.event.group.clone(),
                    topic: s.event.topic.clone(),
                    queue_id: s.event.queue_id,
                    queue_offset: m.queue_offset,
                    time_ms: s.event.time_ms,
                })
            })
            .collect();
        // Each delivery has its own commit: a message delivered again after an offset reset is
        // committed again. A commit given to an earlier delivery is not given to a later one,
        // whose search window may hold it too.
        let mut claimed = HashSet::new();
        for d in deliveries {
            let Some((_, addr)) = brokers.iter().find(|(name, _)| *name == d.broker) else {
                continue;
            };
            let found = self
                .find_commit(addr, &d, |e| {
                    !claimed.contains(&(d.broker.clone(), commit_identity(e)))
                })
                .await?;
            if let Some(mut event) = found {
                claimed.insert((d.broker.clone(), commit_identity(&event)));
                event.messages = vec![TracedMessage {
                    msg_id: trace.msg_id.clone(),
                    queue_offset: d.queue_offset,
                    attempt: 0,
                }];
                trace.broker_events.push(BrokerStep {
                    broker: d.broker,
                    event,
                });
            }
        }
        Ok(())
    }

    /// The first commit, of those `unclaimed` accepts, of the delivery's group past its
    /// message. Commits are stored once per queue and second, so they are looked for in
    /// widening windows from the delivery on: a query answers at most its newest
    /// [`MAX_TRACE_MESSAGES`], and a narrow window keeps the earliest commit among them.
    async fn find_commit(
        &self,
        addr: &str,
        d: &Delivery,
        unclaimed: impl Fn(&BrokerTraceEvent) -> bool,
    ) -> Result<Option<BrokerTraceEvent>> {
        let key = commit_key(&d.group, &d.topic, d.queue_id);
        let not_before = d.time_ms.saturating_sub(COMMIT_CLOCK_SLACK_MS);
        let mut begin = not_before;
        for width in COMMIT_WINDOWS_MS {
            let end = begin.saturating_add(width);
            let found = self
                .query_message(
                    addr,
                    BROKER_TRACE_TOPIC,
                    &key,
                    MAX_TRACE_MESSAGES,
                    begin,
                    end,
                    false,
                )
                .await?;
            // The window is of the trace messages' store times; a batch may hold a commit
            // noted before it, so the events' own times are checked too.
            let first = found
                .iter()
                .filter_map(|m| serde_json::from_slice::<BrokerTraceBatch>(&m.body).ok())
                .flat_map(|b| b.events)
                .filter(|e| {
                    e.group == d.group
                        && e.topic == d.topic
                        && e.queue_id == d.queue_id
                        && e.commits(d.queue_offset)
                        && e.time_ms >= not_before
                        && unclaimed(e)
                })
                .min_by_key(|e| e.time_ms);
            if first.is_some() {
                return Ok(first);
            }
            if end == i64::MAX {
                break;
            }
            begin = end;
        }
        Ok(None)
    }

    async fn query_all(
        &self,
        addr: &str,
        topic: &str,
        key: &str,
        unique_key: bool,
    ) -> Result<Vec<MessageExt>> {
        self.query_message(
            addr,
            topic,
            key,
            MAX_TRACE_MESSAGES,
            0,
            i64::MAX,
            unique_key,
        )
        .await
    }
}

/// One delivery of the traced message.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Delivery {
    broker: String,
    group: String,
    topic: String,
    queue_id: i32,
    queue_offset: i64,
    time_ms: i64,
}

/// What tells one stored commit event from another of the same group and queue.
fn commit_identity(e: &BrokerTraceEvent) -> (String, String, i32, i64, Option<i64>, Option<i64>) {
    (
        e.group.clone(),
        e.topic.clone(),
        e.queue_id,
        e.time_ms,
        e.from_offset,
        e.to_offset,
    )
}

/// Older clients' SubAfter carries no time: give it its SubBefore's (same consume request).
fn date_old_sub_afters(records: &mut [ClientTraceRecord]) {
    let started: std::collections::HashMap<String, i64> = records
        .iter()
        .filter_map(|r| match r {
            ClientTraceRecord::SubBefore {
                request_id,
                time_ms,
                ..
            } => Some((request_id.clone(), *time_ms)),
            _ => None,
        })
        .collect();
    for r in records {
        if let ClientTraceRecord::SubAfter {
            request_id,
            time_ms: time_ms @ None,
            ..
        } = r
        {
            *time_ms = started.get(request_id.as_str()).copied();
        }
    }
}

/// One line of the timeline.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceStep {
    /// Epoch ms; 0 when the record does not say.
    pub time_ms: i64,
    /// `broker` (its store or its trace) or `client` (the client's own trace).
    pub source: &'static str,
    pub what: String,
    pub detail: String,
}

impl MessageTrace {
    /// Every step of `t`, oldest first.
    pub fn timeline(&self) -> Vec<TraceStep> {
        let t = self;
        let mut steps = Vec::new();
        for s in &t.stored {
            let what = match s.topic.as_str() {
                TRANS_HALF_TOPIC => "stored as half message",
                SCHEDULE_TOPIC | TIMER_TOPIC => "stored for later delivery",
                topic if topic.starts_with("%RETRY%") => "stored for retry",
                topic if topic.starts_with("%DLQ%") => "stored as dead letter",
                _ => "stored",
            };
            steps.push(TraceStep {
                time_ms: s.store_timestamp,
                source: "broker",
                what: what.to_owned(),
                detail: format!(
                    "{} {} queue {} offset {}, from producer {}, offsetMsgId {}",
                    s.broker, s.topic, s.queue_id, s.queue_offset, s.born_host, s.offset_msg_id
                ),
            });
        }
        for step in &t.broker_events {
            let e = &step.event;
            let attempt = e.messages.first().map_or(0, |m| m.attempt);
            let (what, detail) = match e.kind {
                BrokerTraceKind::Delivered => (
                    "delivered",
                    format!(
                        "to {} ({}) of group {}, from {} queue {}, attempt {}",
                        e.client_id.as_deref().unwrap_or("an unknown client"),
                        e.client_addr.as_deref().unwrap_or("-"),
                        e.group,
                        e.topic,
                        e.queue_id,
                        attempt + 1
                    ),
                ),
                BrokerTraceKind::Committed => (
                    "committed",
                    format!(
                        "group {} committed past it on {} queue {}",
                        e.group, e.topic, e.queue_id
                    ),
                ),
                BrokerTraceKind::Retried => (
                    "retried",
                    format!(
                        "group {} sent it back after attempt {}; retry in {} at delay level {}",
                        e.group,
                        attempt + 1,
                        e.to_topic.as_deref().unwrap_or("-"),
                        e.delay_level.unwrap_or(0)
                    ),
                ),
                BrokerTraceKind::DeadLettered => (
                    "dead-lettered",
                    format!(
                        "group {} sent it back after attempt {}; moved to {}",
                        e.group,
                        attempt + 1,
                        e.to_topic.as_deref().unwrap_or("-")
                    ),
                ),
                BrokerTraceKind::TransactionCommitted | BrokerTraceKind::TransactionRolledBack => (
                    if e.kind == BrokerTraceKind::TransactionCommitted {
                        "transaction committed"
                    } else {
                        "transaction rolled back"
                    },
                    format!(
                        "by producer group {}{}, for {} queue {}",
                        e.group,
                        if e.from_check {
                            " answering a check"
                        } else {
                            ""
                        },
                        e.topic,
                        e.queue_id
                    ),
                ),
            };
            steps.push(TraceStep {
                time_ms: e.time_ms,
                source: "broker",
                what: what.to_owned(),
                detail: format!("{detail} [{}]", step.broker),
            });
        }
        for r in &t.client_records {
            let (time_ms, what, detail) = match r {
                ClientTraceRecord::Pub {
                    time_ms,
                    group,
                    topic,
                    store_host,
                    cost_ms,
                    success,
                    ..
                } => (
                    *time_ms,
                    "Pub",
                    format!(
                        "producer group {group} sent it to {topic} on {store_host}: {}, {cost_ms} ms",
                        if *success { "success" } else { "failed" }
                    ),
                ),
                ClientTraceRecord::SubBefore {
                    time_ms,
                    group,
                    retry_times,
                    ..
                } => (
                    *time_ms,
                    "SubBefore",
                    format!("consumer group {group} received it, retry times {retry_times}"),
                ),
                ClientTraceRecord::SubAfter {
                    cost_ms,
                    success,
                    time_ms,
                    group,
                    ..
                } => (
                    time_ms.unwrap_or(0),
                    "SubAfter",
                    format!(
                        "consumer group {} consumed it: {}, {cost_ms} ms",
                        group.as_deref().unwrap_or("-"),
                        if *success { "success" } else { "failed" }
                    ),
                ),
                ClientTraceRecord::EndTransaction {
                    time_ms,
                    group,
                    transaction_state,
                    from_transaction_check,
                    ..
                } => (
                    *time_ms,
                    "EndTransaction",
                    format!(
                        "producer group {group} ended it: {transaction_state}{}",
                        if *from_transaction_check {
                            " (answering a check)"
                        } else {
                            ""
                        }
                    ),
                ),
            };
            steps.push(TraceStep {
                time_ms,
                source: "client",
                what: what.to_owned(),
                detail,
            });
        }
        steps.sort_by_key(|s| (s.time_ms, rank(&s.what)));
        steps
    }
}

/// The order of steps stored or recorded in the same millisecond: the order in which they
/// can happen to one message.
fn rank(what: &str) -> u8 {
    match what {
        "stored as half message" | "Pub" => 0,
        "transaction committed" | "transaction rolled back" | "EndTransaction" => 1,
        "stored" => 2,
        "delivered" | "SubBefore" => 3,
        "SubAfter" => 4,
        "retried" | "dead-lettered" => 5,
        "stored for later delivery" | "stored for retry" | "stored as dead letter" => 6,
        _ => 7,
    }
}
