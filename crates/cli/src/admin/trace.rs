//! `petrel admin trace`: one message's path as a timeline — where it was stored, what the
//! brokers did with it, what its clients reported — from `Admin::trace_message`.

use anyhow::{bail, Context};
use petrel_client::admin::{Admin, MessageTrace};
use petrel_common::topic::{SCHEDULE_TOPIC, TIMER_TOPIC, TRANS_HALF_TOPIC};
use petrel_common::trace::{BrokerTraceKind, ClientTraceRecord};
use serde::Serialize;

use super::table::{out, print_json, Table};
use super::time_text;

/// One line of the timeline.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// Epoch ms; 0 when the record does not say.
    pub time_ms: i64,
    /// `broker` (its store or its trace) or `client` (the client's own trace).
    pub source: &'static str,
    pub what: String,
    pub detail: String,
}

pub async fn trace(
    admin: &Admin,
    msg_id: Option<&str>,
    key: Option<&str>,
    topic: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    let ids: Vec<String> = match (msg_id, key) {
        (Some(id), _) => vec![id.to_owned()],
        (None, Some(key)) => {
            let Some(topic) = topic else {
                bail!("--key needs the message's --topic");
            };
            let found = admin
                .query_messages_by_key(topic, key, 64, 0, i64::MAX)
                .await
                .with_context(|| format!("cannot look key {key} up in topic {topic}"))?;
            let mut ids: Vec<String> = found.iter().map(|m| m.msg_id().to_owned()).collect();
            ids.dedup();
            if ids.is_empty() {
                bail!("no message with key {key} in topic {topic}");
            }
            ids
        }
        (None, None) => bail!("give --msg-id, or --key with --topic"),
    };
    let mut traces = Vec::with_capacity(ids.len());
    for id in &ids {
        let trace = admin
            .trace_message(id, topic)
            .await
            .with_context(|| format!("cannot trace message {id}"))?;
        if trace.stored.is_empty()
            && trace.broker_events.is_empty()
            && trace.client_records.is_empty()
        {
            if trace.topic_known {
                bail!("nothing is known of message {id}: no stored copy and no trace");
            }
            bail!(
                "nothing is known of message {id}: no trace names its topic (it may not have \
                 been consumed yet); give its --topic to find where it is stored"
            );
        }
        traces.push(trace);
    }
    if json {
        #[derive(Serialize)]
        struct Traced<'a> {
            #[serde(flatten)]
            trace: &'a MessageTrace,
            timeline: Vec<Step>,
        }
        let all: Vec<Traced> = traces
            .iter()
            .map(|t| Traced {
                trace: t,
                timeline: timeline(t),
            })
            .collect();
        return if all.len() == 1 {
            print_json(&all[0])
        } else {
            print_json(&all)
        };
    }
    for (i, t) in traces.iter().enumerate() {
        if i > 0 {
            out!();
        }
        out!("Message {}", t.msg_id);
        let mut table = Table::new(&["TIME", "SOURCE", "STEP", "DETAIL"]);
        for s in timeline(t) {
            table.row(vec![
                time_text(s.time_ms),
                s.source.to_owned(),
                s.what,
                s.detail,
            ]);
        }
        table.print();
    }
    Ok(())
}

/// Every step of `t`, oldest first.
pub fn timeline(t: &MessageTrace) -> Vec<Step> {
    let mut steps = Vec::new();
    for s in &t.stored {
        let what = match s.topic.as_str() {
            TRANS_HALF_TOPIC => "stored as half message",
            SCHEDULE_TOPIC | TIMER_TOPIC => "stored for later delivery",
            topic if topic.starts_with("%RETRY%") => "stored for retry",
            topic if topic.starts_with("%DLQ%") => "stored as dead letter",
            _ => "stored",
        };
        steps.push(Step {
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
        steps.push(Step {
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
        steps.push(Step {
            time_ms,
            source: "client",
            what: what.to_owned(),
            detail,
        });
    }
    steps.sort_by_key(|s| (s.time_ms, rank(&s.what)));
    steps
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
