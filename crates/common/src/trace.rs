//! Message trace records, both kinds a message's path is read from:
//!
//! - the broker's own trace (`traceOn`): what the broker did with a message after storing it —
//!   delivered to which client, committed past by which group, sent back for a retry, moved to
//!   the dead-letter queue, its transaction committed or rolled back. The broker writes batches
//!   of these as JSON messages to [`BROKER_TRACE_TOPIC`], each keyed (KEYS) by the client
//!   message ids it mentions, so the key index finds a message's events and retention keeps
//!   them as long as the log.
//! - the clients' trace (`enableMsgTrace` in the Java client): records the client writes to
//!   [`CLIENT_TRACE_TOPIC`] in RocketMQ's text format (fields split by `\u{1}`, records by
//!   `\u{2}`), decoded here by [`decode_client_trace`].

use serde::{Deserialize, Serialize};

/// Where the broker writes its own trace.
pub const BROKER_TRACE_TOPIC: &str = "rmq_sys_broker_trace";
/// RocketMQ's default trace topic (`msgTraceTopicName`), where clients write theirs.
pub const CLIENT_TRACE_TOPIC: &str = "RMQ_SYS_TRACE_TOPIC";

/// The body of one message in [`BROKER_TRACE_TOPIC`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BrokerTraceBatch {
    /// The broker that wrote it (`brokerName`).
    pub broker: String,
    pub events: Vec<BrokerTraceEvent>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BrokerTraceKind {
    /// Handed to a consumer in a pull answer: the messages of queue offsets
    /// `from_offset..to_offset` whose ids key the trace record (a tag filter may have left
    /// some out).
    Delivered,
    /// The group's committed offset on a queue moved from `from_offset` to `to_offset`, past
    /// the messages in between. Stored once per queue and second with no messages, keyed by
    /// [`commit_key`]; a message's commit is found from its delivery.
    Committed,
    /// Sent back by its consumer; stored again for a later attempt in `to_topic`.
    Retried,
    /// Sent back once too often; stored in the group's dead-letter topic `to_topic`.
    DeadLettered,
    TransactionCommitted,
    TransactionRolledBack,
}

/// One thing the broker did, to one or more messages of one queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BrokerTraceEvent {
    pub kind: BrokerTraceKind,
    pub time_ms: i64,
    /// The consumer group, or for a transaction the producer group.
    pub group: String,
    /// The consumer a delivery went to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The client's address, for a delivery.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_addr: Option<String>,
    /// Where the messages were read from (for a delivery or a commit) or stored (otherwise).
    pub topic: String,
    pub queue_id: i32,
    /// Where a retry or a dead letter was stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_topic: Option<String>,
    /// The delay level of a retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_level: Option<i32>,
    /// A delivery's or a commit's range of queue offsets, `from_offset..to_offset`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_offset: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_offset: Option<i64>,
    /// A transaction outcome that answered the broker's check rather than came on its own.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub from_check: bool,
    pub messages: Vec<TracedMessage>,
}

/// A message an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TracedMessage {
    /// The client message id (UNIQ_KEY); for a message without one, its offsetMsgId. A retry
    /// keeps its original's id, so one id follows a message through its retries.
    pub msg_id: String,
    pub queue_offset: i64,
    /// Earlier deliveries that failed (the record's RECONSUMETIMES).
    pub attempt: i32,
}

/// The key a group's commits on one queue are stored under in [`BROKER_TRACE_TOPIC`].
pub fn commit_key(group: &str, topic: &str, queue_id: i32) -> String {
    format!("commit@{group}@{topic}@{queue_id}")
}

impl BrokerTraceEvent {
    /// Whether this is a commit that moved past `queue_offset`.
    pub fn commits(&self, queue_offset: i64) -> bool {
        self.kind == BrokerTraceKind::Committed && self.covers(queue_offset)
    }

    /// Whether its range holds `queue_offset`.
    pub fn covers(&self, queue_offset: i64) -> bool {
        self.from_offset.is_some_and(|f| f <= queue_offset)
            && self.to_offset.is_some_and(|t| queue_offset < t)
    }

    /// This event as it concerns `msg_id` alone, if it does.
    pub fn about(&self, msg_id: &str) -> Option<BrokerTraceEvent> {
        let messages: Vec<TracedMessage> = self
            .messages
            .iter()
            .filter(|m| m.msg_id == msg_id)
            .cloned()
            .collect();
        (!messages.is_empty()).then(|| BrokerTraceEvent {
            messages,
            ..self.clone()
        })
    }
}

/// The id a message is traced under: its client message id (UNIQ_KEY), kept by every copy
/// (retries, delayed and transactional deliveries); without one, the id of the original a
/// retry came from (ORIGIN_MESSAGE_ID), and failing that its own offsetMsgId. `properties` are
/// the stored record's.
pub fn traced_msg_id(
    properties: &str,
    store_host: std::net::SocketAddr,
    physical_offset: i64,
) -> String {
    use crate::properties::{find, ORIGIN_MESSAGE_ID, UNIQ_KEY};
    find(properties, UNIQ_KEY)
        .or_else(|| find(properties, ORIGIN_MESSAGE_ID))
        .map(str::to_owned)
        .unwrap_or_else(|| crate::msg_id::offset_msg_id(store_host, physical_offset))
}

/// Splits the fields of one client trace record.
pub const CLIENT_TRACE_FIELD_SEPARATOR: char = '\u{1}';
/// Ends each client trace record.
pub const CLIENT_TRACE_RECORD_SEPARATOR: char = '\u{2}';

/// One record of a client's trace, as the Java client's trace hooks write it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type")]
pub enum ClientTraceRecord {
    /// A send, as the producer saw it.
    Pub {
        time_ms: i64,
        region_id: String,
        group: String,
        topic: String,
        msg_id: String,
        tags: String,
        keys: String,
        store_host: String,
        body_length: i32,
        cost_ms: i32,
        offset_msg_id: String,
        success: bool,
    },
    /// A consumer received the message and is about to consume it.
    SubBefore {
        time_ms: i64,
        region_id: String,
        group: String,
        request_id: String,
        msg_id: String,
        retry_times: i32,
        keys: String,
    },
    /// A consumer finished consuming it.
    SubAfter {
        request_id: String,
        msg_id: String,
        cost_ms: i32,
        success: bool,
        keys: String,
        /// The consume status as RocketMQ's `ConsumeReturnType` ordinal.
        context_code: i32,
        time_ms: Option<i64>,
        group: Option<String>,
    },
    /// The producer ended the message's transaction.
    EndTransaction {
        time_ms: i64,
        region_id: String,
        group: String,
        topic: String,
        msg_id: String,
        tags: String,
        keys: String,
        store_host: String,
        transaction_id: String,
        transaction_state: String,
        from_transaction_check: bool,
    },
}

impl ClientTraceRecord {
    pub fn msg_id(&self) -> &str {
        match self {
            ClientTraceRecord::Pub { msg_id, .. }
            | ClientTraceRecord::SubBefore { msg_id, .. }
            | ClientTraceRecord::SubAfter { msg_id, .. }
            | ClientTraceRecord::EndTransaction { msg_id, .. } => msg_id,
        }
    }

    /// When it happened, if the record says (old clients' SubAfter does not).
    pub fn time_ms(&self) -> Option<i64> {
        match self {
            ClientTraceRecord::Pub { time_ms, .. }
            | ClientTraceRecord::SubBefore { time_ms, .. }
            | ClientTraceRecord::EndTransaction { time_ms, .. } => Some(*time_ms),
            ClientTraceRecord::SubAfter { time_ms, .. } => *time_ms,
        }
    }
}

/// Decodes the body of a client trace message; records that are not one of the known kinds
/// or that do not parse are skipped (a trace is read for people, and one bad record must not
/// hide the others).
pub fn decode_client_trace(body: &str) -> Vec<ClientTraceRecord> {
    body.split(CLIENT_TRACE_RECORD_SEPARATOR)
        .filter(|r| !r.is_empty())
        .filter_map(|r| {
            decode_client_record(&r.split(CLIENT_TRACE_FIELD_SEPARATOR).collect::<Vec<_>>())
        })
        .collect()
}

fn decode_client_record(f: &[&str]) -> Option<ClientTraceRecord> {
    let s = |i: usize| f.get(i).map(|v| (*v).to_owned());
    let int = |i: usize| f.get(i)?.parse::<i64>().ok();
    let flag = |i: usize| f.get(i).is_some_and(|v| *v == "true");
    match *f.first()? {
        "Pub" => {
            // 13 fields: no offsetMsgId; 14 and more: offsetMsgId then success.
            let (offset_msg_id, success) = if f.len() >= 14 {
                (s(12)?, flag(13))
            } else {
                (String::new(), flag(12))
            };
            Some(ClientTraceRecord::Pub {
                time_ms: int(1)?,
                region_id: s(2)?,
                group: s(3)?,
                topic: s(4)?,
                msg_id: s(5)?,
                tags: s(6)?,
                keys: s(7)?,
                store_host: s(8)?,
                body_length: int(9)? as i32,
                cost_ms: int(10)? as i32,
                offset_msg_id,
                success,
            })
        }
        "SubBefore" => Some(ClientTraceRecord::SubBefore {
            time_ms: int(1)?,
            region_id: s(2)?,
            group: s(3)?,
            request_id: s(4)?,
            msg_id: s(5)?,
            retry_times: int(6)? as i32,
            keys: s(7)?,
        }),
        "SubAfter" => Some(ClientTraceRecord::SubAfter {
            request_id: s(1)?,
            msg_id: s(2)?,
            cost_ms: int(3)? as i32,
            success: flag(4),
            keys: s(5)?,
            context_code: int(6).unwrap_or(0) as i32,
            time_ms: int(7),
            group: s(8).filter(|g| !g.is_empty()),
        }),
        "EndTransaction" => Some(ClientTraceRecord::EndTransaction {
            time_ms: int(1)?,
            region_id: s(2)?,
            group: s(3)?,
            topic: s(4)?,
            msg_id: s(5)?,
            tags: s(6)?,
            keys: s(7)?,
            store_host: s(8)?,
            transaction_id: s(10)?,
            transaction_state: s(11)?,
            from_transaction_check: flag(12),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(fields: &[&str]) -> String {
        let mut r = fields.join("\u{1}");
        r.push('\u{2}');
        r
    }

    #[test]
    fn decodes_the_java_clients_records() {
        let body = [
            record(&[
                "Pub",
                "1700000000000",
                "DefaultRegion",
                "PG",
                "T",
                "MSG1",
                "TagA",
                "k1",
                "127.0.0.1:10911",
                "5",
                "3",
                "0",
                "7F00000100002A9F0000000000000000",
                "true",
            ]),
            record(&[
                "SubBefore",
                "1700000000100",
                "DefaultRegion",
                "CG",
                "req1",
                "MSG1",
                "0",
                "k1",
            ]),
            // SubAfter as 4.9.x writes it: a trailing separator after the context code, then
            // the time and the group.
            record(&[
                "SubAfter",
                "req1",
                "MSG1",
                "4",
                "true",
                "k1",
                "0",
                "1700000000200",
                "CG",
            ]),
            record(&["Unknown", "x"]),
            record(&["SubBefore", "not-a-number"]),
        ]
        .concat();
        let recs = decode_client_trace(&body);
        assert_eq!(recs.len(), 3, "{recs:?}");
        assert!(matches!(
            &recs[0],
            ClientTraceRecord::Pub { topic, msg_id, body_length: 5, success: true, offset_msg_id, .. }
                if topic == "T" && msg_id == "MSG1" && offset_msg_id.starts_with("7F00")
        ));
        assert!(matches!(
            &recs[1],
            ClientTraceRecord::SubBefore { group, retry_times: 0, .. } if group == "CG"
        ));
        assert_eq!(recs[2].time_ms(), Some(1_700_000_000_200));
        assert!(matches!(
            &recs[2],
            ClientTraceRecord::SubAfter { success: true, cost_ms: 4, group: Some(g), .. } if g == "CG"
        ));
    }

    #[test]
    fn an_event_narrowed_to_one_message() {
        let m = |id: &str, o| TracedMessage {
            msg_id: id.into(),
            queue_offset: o,
            attempt: 0,
        };
        let e = BrokerTraceEvent {
            kind: BrokerTraceKind::Delivered,
            time_ms: 1,
            group: "G".into(),
            client_id: Some("c".into()),
            client_addr: None,
            topic: "T".into(),
            queue_id: 0,
            to_topic: None,
            delay_level: None,
            from_offset: None,
            to_offset: None,
            from_check: false,
            messages: vec![m("a", 0), m("b", 1)],
        };
        assert_eq!(e.about("b").unwrap().messages, vec![m("b", 1)]);
        assert!(e.about("c").is_none());
        let json = serde_json::to_string(&BrokerTraceBatch {
            broker: "broker-a".into(),
            events: vec![e.clone()],
        })
        .unwrap();
        assert!(
            !json.contains("toTopic") && !json.contains("fromCheck"),
            "{json}"
        );
        let back: BrokerTraceBatch = serde_json::from_str(&json).unwrap();
        assert_eq!(back.events, vec![e]);
    }
}
