//! The statistics `mqadmin` prints: GET_BROKER_RUNTIME_INFO (`clusterList`, `brokerStatus`),
//! GET_TOPIC_STATS_INFO (`topicStatus`), GET_CONSUME_STATS (`consumerProgress`) and
//! GET_CONSUMER_CONNECTION_LIST (`consumerConnection`), GET_PRODUCER_CONNECTION_LIST
//! (`producerConnection`) and QUERY_TOPIC_CONSUME_BY_WHO (which groups consume a topic, what
//! `consumerProgress` without a group and `queryMsgById`'s track ask) and VIEW_BROKER_STATS_DATA for
//! a topic's puts (`statsAll`). It only reads broker state and never
//! changes it. It never invents a figure: a value that is zero by construction (no thread-pool
//! queue, no timer wheel) is reported as Java reports that state, and a figure Petrel does not
//! measure (`pageCacheLockTimeMills`) is left out of a KVTable, which Java's readers take as
//! absent. The typed bodies keep every field Java's class has, because fastjson always writes
//! primitive fields and strict readers (rocketmq-client-rust) require them: `topicPutTps` is
//! measured from the store, `consumeTps` is 0.0 (see `consume_stats_body`).
//!
//! TopicStatsTable and ConsumeStats are `Map<MessageQueue, _>` in Java, and fastjson writes such a
//! map key as a JSON object — `{{"brokerName":"b","queueId":0,"topic":"T"}:{...}}`, not valid JSON
//! (reference §2.15). Those two bodies are written by hand, byte for byte in fastjson's form
//! (fields in alphabetical order); the others are plain JSON.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::sync::atomic::Ordering;

use petrel_common::msg_id::now_ms;
use petrel_common::protocol::{MessageQueue, SubscriptionData};
use petrel_remoting::code::response;
use petrel_remoting::headers::{
    GetConsumeStatsRequestHeader, GetConsumerConnectionListRequestHeader,
    GetProducerConnectionListRequestHeader, TopicRequestHeader,
};
use petrel_remoting::{language_name, RemotingCommand};
use serde::Serialize;

use super::bad_header;
use crate::broker::Broker;
use crate::client_manager::ClientChannel;

/// GET_BROKER_RUNTIME_INFO: a KVTable `{"table":{...}}` of text values.
pub fn broker_runtime_info(b: &Broker, req: &RemotingCommand) -> RemotingCommand {
    #[derive(Serialize)]
    struct KvTable {
        table: BTreeMap<&'static str, String>,
    }
    let body = KvTable {
        table: runtime_info(b, now_ms()),
    };
    match serde_json::to_vec(&body) {
        Ok(body) => RemotingCommand::success(req).with_body(body),
        Err(e) => {
            RemotingCommand::error(req, response::SYSTEM_ERROR, format!("encoding failed: {e}"))
        }
    }
}

/// The runtime table, with every key `mqadmin clusterList` reads and the store figures
/// `mqadmin brokerStatus` shows.
fn runtime_info(b: &Broker, now_ms: u64) -> BTreeMap<&'static str, String> {
    let put_total = b.stats.msg_put_total.load(Ordering::Relaxed);
    let get_total = b.stats.msg_get_total.load(Ordering::Relaxed);
    let uptime_ms = now_ms.saturating_sub(b.started_at_ms);
    let store = &b.store;
    let mut t = BTreeMap::new();
    t.insert(
        "brokerVersionDesc",
        format!("PETREL_{}", env!("CARGO_PKG_VERSION")),
    );
    // Java's "special services" (delayed delivery, transaction check-back) run on masters.
    t.insert("brokerActive", (b.config.broker_id == 0).to_string());
    t.insert("bootTimestamp", b.started_at_ms.to_string());
    t.insert("runtime", format_runtime(uptime_ms));
    // Rates are averages since boot (counted messages / uptime), not Java's 10 s / 60 s / 600 s
    // windows: the broker keeps no samples. One figure; clusterList reads the first.
    t.insert("putTps", format!("{:.2}", per_second(put_total, uptime_ms)));
    // Java's spelling, one `r`: `mqadmin clusterList` reads this key and throws a
    // NullPointerException on a table without it.
    t.insert(
        "getTransferedTps",
        format!("{:.2}", per_second(get_total, uptime_ms)),
    );
    // Java snapshots the totals at midnight and reports 0 until its first midnight; Petrel takes
    // no snapshots, so its "today" is "since boot".
    for key in [
        "msgPutTotalYesterdayMorning",
        "msgPutTotalTodayMorning",
        "msgGetTotalYesterdayMorning",
        "msgGetTotalTodayMorning",
    ] {
        t.insert(key, "0".to_owned());
    }
    t.insert("msgPutTotalTodayNow", put_total.to_string());
    t.insert("msgGetTotalTodayNow", get_total.to_string());
    // Requests run as they arrive, one task each: there is no thread-pool queue to wait in.
    for key in [
        "sendThreadPoolQueueSize",
        "pullThreadPoolQueueSize",
        "sendThreadPoolQueueHeadWaitTimeMills",
        "pullThreadPoolQueueHeadWaitTimeMills",
    ] {
        t.insert(key, "0".to_owned());
    }
    // RocketMQ 5's timer figures: read behind in seconds, the timer topic's unfiled entries,
    // every pending timer, and filing/delivery rates over the last 10 s.
    let timers = &b.timer_stats;
    let filed = timers.filed_offset.load(Ordering::Relaxed);
    let timer_queue_end = store.max_offset(petrel_common::topic::TIMER_TOPIC, 0);
    t.insert(
        "timerReadBehind",
        (timers.read_behind_ms.load(Ordering::Relaxed) / 1000).to_string(),
    );
    t.insert(
        "timerOffsetBehind",
        (timer_queue_end - filed).max(0).to_string(),
    );
    t.insert(
        "timerCongestNum",
        timers.pending.load(Ordering::Relaxed).to_string(),
    );
    t.insert("timerEnqueueTps", format!("{:.1}", timers.enqueue_tps()));
    t.insert("timerDequeueTps", format!("{:.1}", timers.dequeue_tps()));
    // The commit log's end is published only once its records are dispatched to the queues.
    t.insert("dispatchBehindBytes", "0".to_owned());
    // As measured by the store's retention; -1 is Java's value for "unknown".
    let disk_ratio = store.disk_used_ratio().unwrap_or(-1.0);
    t.insert("commitLogDiskRatio", disk_ratio.to_string());
    t.insert(
        "earliestMessageTimeStamp",
        store.earliest_commit_log_time().unwrap_or(-1).to_string(),
    );
    t.insert(
        "commitLogMinOffset",
        store.min_physical_offset().to_string(),
    );
    t.insert(
        "commitLogMaxOffset",
        store.max_physical_offset().to_string(),
    );
    t
}

fn per_second(count: u64, elapsed_ms: u64) -> f64 {
    count as f64 * 1000.0 / elapsed_ms.max(1) as f64
}

/// Java's `[ 1 days, 2 hours, 3 minutes, 4 seconds ]`.
fn format_runtime(ms: u64) -> String {
    let s = ms / 1000;
    format!(
        "[ {} days, {} hours, {} minutes, {} seconds ]",
        s / 86_400,
        s % 86_400 / 3_600,
        s % 3_600 / 60,
        s % 60
    )
}

/// `TopicOffset`, one row of a TopicStatsTable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicOffset {
    pub min_offset: i64,
    pub max_offset: i64,
    /// Store time of the newest message, 0 if the queue is empty.
    pub last_update_timestamp: i64,
}

/// GET_TOPIC_STATS_INFO: min/max offset and last store time of every queue of a topic.
pub fn topic_stats_info(b: &Broker, req: &RemotingCommand) -> RemotingCommand {
    let h: TopicRequestHeader = match req.decode_header() {
        Ok(h) => h,
        Err(e) => return bad_header(req, e),
    };
    let Some(queues) = b
        .topics
        .with(&h.topic, |c| c.write_queue_nums.max(c.read_queue_nums))
    else {
        return RemotingCommand::error(
            req,
            response::TOPIC_NOT_EXIST,
            format!("topic[{}] not exist", h.topic),
        );
    };
    let rows: Vec<(MessageQueue, TopicOffset)> = (0..queues)
        .map(|queue_id| {
            let min_offset = b.store.min_offset(&h.topic, queue_id).max(0);
            let max_offset = b.store.max_offset(&h.topic, queue_id).max(0);
            let last_update_timestamp = if max_offset > 0 {
                b.store
                    .store_time_of(&h.topic, queue_id, max_offset - 1)
                    .unwrap_or(0)
            } else {
                0
            };
            let mq = message_queue(b, &h.topic, queue_id);
            let offsets = TopicOffset {
                min_offset,
                max_offset,
                last_update_timestamp,
            };
            (mq, offsets)
        })
        .collect();
    let topic_put_tps = topic_put_tps(b, &h.topic, queues, now_ms() as i64);
    RemotingCommand::success(req).with_body(topic_stats_body(&rows, topic_put_tps).into_bytes())
}

/// Window of `topicPutTps`: Java reports its per-minute put rate.
const TOPIC_PUT_TPS_WINDOW_MS: i64 = 60_000;

/// Messages of the topic stored in the last minute, per second, read from the store's queues
/// (Petrel keeps no per-topic counters; the consume queues already record each store time).
fn topic_put_tps(b: &Broker, topic: &str, queues: i32, now_ms: i64) -> f64 {
    let stored = topic_puts_since(b, topic, queues, now_ms - TOPIC_PUT_TPS_WINDOW_MS);
    stored as f64 * 1000.0 / TOPIC_PUT_TPS_WINDOW_MS as f64
}

/// Messages stored in `topic`'s queues since `since_ms`, counted from the consume queues.
fn topic_puts_since(b: &Broker, topic: &str, queues: i32, since_ms: i64) -> i64 {
    (0..queues)
        .map(|queue_id| {
            let max_offset = b.store.max_offset(topic, queue_id);
            max_offset - b.store.offset_by_timestamp(topic, queue_id, since_ms)
        })
        .sum()
}

/// VIEW_BROKER_STATS_DATA (`mqadmin statsAll`'s #InTPS and #InMsg24Hour): a BrokerStatsData
/// for `TOPIC_PUT_NUMS`, whose minute, hour and day figures are the messages the store holds
/// from that long ago to now, and their rate over the window. Java's `avgpt` (messages per put
/// call) is left out, so a reader takes 0: the store does not know how many calls brought
/// them. Other statistics (a group's gets, `GROUP_GET_NUMS`) are not counted per group and get
/// REQUEST_CODE_NOT_SUPPORTED saying so.
pub fn view_broker_stats_data(b: &Broker, req: &RemotingCommand) -> RemotingCommand {
    let (Some(name), Some(key)) = (
        req.ext_fields.get("statsName"),
        req.ext_fields.get("statsKey"),
    ) else {
        return RemotingCommand::error(
            req,
            response::INVALID_PARAMETER,
            "statsName and statsKey are required",
        );
    };
    if name != "TOPIC_PUT_NUMS" {
        return RemotingCommand::error(
            req,
            response::REQUEST_CODE_NOT_SUPPORTED,
            format!(
                "viewBrokerStatsData {name} is not supported: Petrel counts puts per topic \
                 (TOPIC_PUT_NUMS) from its store and keeps no other statistics"
            ),
        );
    }
    let Some(queues) = b
        .topics
        .with(key, |c| c.write_queue_nums.max(c.read_queue_nums))
    else {
        return RemotingCommand::error(
            req,
            response::SYSTEM_ERROR,
            format!("The stats <{name}> <{key}> not exist"),
        );
    };
    let now = now_ms() as i64;
    let item = |window_ms: i64| {
        let sum = topic_puts_since(b, key, queues, now - window_ms);
        format!(
            "{{\"sum\":{sum},\"tps\":{}}}",
            json_number(sum as f64 * 1000.0 / window_ms as f64)
        )
    };
    let body = format!(
        "{{\"statsDay\":{},\"statsHour\":{},\"statsMinute\":{}}}",
        item(86_400_000),
        item(3_600_000),
        item(TOPIC_PUT_TPS_WINDOW_MS)
    );
    RemotingCommand::success(req).with_body(body.into_bytes())
}

/// `{"offsetTable":{{mq}:{"lastUpdateTimestamp":..,"maxOffset":..,"minOffset":..},...},
/// "topicPutTps":..}`.
pub fn topic_stats_body(rows: &[(MessageQueue, TopicOffset)], topic_put_tps: f64) -> String {
    let table = offset_table(rows, |out, o| {
        write!(
            out,
            "{{\"lastUpdateTimestamp\":{},\"maxOffset\":{},\"minOffset\":{}}}",
            o.last_update_timestamp, o.max_offset, o.min_offset
        )
    });
    format!(
        "{{\"offsetTable\":{table},\"topicPutTps\":{}}}",
        json_number(topic_put_tps)
    )
}

/// `OffsetWrapper`, one row of ConsumeStats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetWrapper {
    /// The queue's max offset (next to be written).
    pub broker_offset: i64,
    /// The group's committed offset, 0 if none.
    pub consumer_offset: i64,
    /// Equal to the consumer offset: Petrel does not track pulled-but-uncommitted offsets,
    /// exactly what Java reports when it has none.
    pub pull_offset: i64,
    /// Store time of the last consumed message, 0 if unknown.
    pub last_timestamp: i64,
}

/// GET_CONSUME_STATS: the group's progress on each queue of its topics.
///
/// Topics: `topicList` (5.x, `;`-separated) if given; else the header topic; else every topic the
/// group has committed offsets for or subscribes to (a push consumer's `%RETRY%` topic is one of
/// them). As in Java, when the group is online, topics it does not subscribe to are dropped, and
/// a group with nothing to show gets SUCCESS with an empty table (mqadmin then explains).
pub fn consume_stats(b: &Broker, req: &RemotingCommand) -> RemotingCommand {
    let h: GetConsumeStatsRequestHeader = match req.decode_header() {
        Ok(h) => h,
        Err(e) => return bad_header(req, e),
    };
    let group = &h.consumer_group;
    let mut rows = Vec::new();
    for topic in consume_stats_topics(
        b,
        group,
        h.topic.as_deref(),
        req.ext_fields.get("topicList"),
    ) {
        let Some(queues) = b.topics.with(&topic, |c| c.read_queue_nums) else {
            continue;
        };
        let committed = b.offsets.queue_offsets(group, &topic);
        for queue_id in 0..queues {
            let consumer_offset = committed.get(&queue_id).copied().unwrap_or(0).max(0);
            let last_timestamp = if consumer_offset > 0 {
                b.store
                    .store_time_of(&topic, queue_id, consumer_offset - 1)
                    .unwrap_or(0)
            } else {
                0
            };
            let offsets = OffsetWrapper {
                broker_offset: b.store.max_offset(&topic, queue_id).max(0),
                consumer_offset,
                pull_offset: consumer_offset,
                last_timestamp,
            };
            rows.push((message_queue(b, &topic, queue_id), offsets));
        }
    }
    RemotingCommand::success(req).with_body(consume_stats_body(&rows).into_bytes())
}

fn consume_stats_topics(
    b: &Broker,
    group: &str,
    topic: Option<&str>,
    topic_list: Option<&str>,
) -> BTreeSet<String> {
    let listed: BTreeSet<String> = topic_list
        .unwrap_or("")
        .split(';')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    if !listed.is_empty() {
        return listed;
    }
    let subscribed: BTreeSet<String> = b
        .consumers
        .group(group)
        .map(|g| g.subscriptions.into_keys().collect())
        .unwrap_or_default();
    let mut topics: BTreeSet<String> = match topic.map(str::trim) {
        Some(t) if !t.is_empty() => BTreeSet::from([t.to_owned()]),
        _ => b
            .offsets
            .topics_of_group(group)
            .into_iter()
            .chain(subscribed.iter().cloned())
            .collect(),
    };
    if !subscribed.is_empty() {
        topics.retain(|t| subscribed.contains(t));
    }
    topics
}

/// `{"consumeTps":0.0,"offsetTable":{{mq}:{"brokerOffset":..,"consumerOffset":..,
/// "lastTimestamp":..,"pullOffset":..},...}}`. The broker counts gets per broker, not per group,
/// so `consumeTps` is 0.0, what Java's broker reports for a group it has no get count for.
pub fn consume_stats_body(rows: &[(MessageQueue, OffsetWrapper)]) -> String {
    let table = offset_table(rows, |out, o| {
        write!(
            out,
            "{{\"brokerOffset\":{},\"consumerOffset\":{},\"lastTimestamp\":{},\"pullOffset\":{}}}",
            o.broker_offset, o.consumer_offset, o.last_timestamp, o.pull_offset
        )
    });
    format!(
        "{{\"consumeTps\":{},\"offsetTable\":{table}}}",
        json_number(0.0)
    )
}

/// `{"offsetTable":{{mq}:<value>,...}}` with fastjson's object map keys.
pub(crate) fn offset_table_body<T>(
    rows: &[(MessageQueue, T)],
    value: impl Fn(&mut String, &T) -> std::fmt::Result,
) -> String {
    format!("{{\"offsetTable\":{}}}", offset_table(rows, value))
}

/// `{{mq}:<value>,...}`: a `Map<MessageQueue, _>` as fastjson writes it.
fn offset_table<T>(
    rows: &[(MessageQueue, T)],
    value: impl Fn(&mut String, &T) -> std::fmt::Result,
) -> String {
    let mut out = String::with_capacity(2 + rows.len() * 160);
    out.push('{');
    for (i, (mq, v)) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write!(
            out,
            "{{\"brokerName\":{},\"queueId\":{},\"topic\":{}}}:",
            json_string(&mq.broker_name),
            mq.queue_id,
            json_string(&mq.topic)
        )
        .expect("writing to a String cannot fail");
        value(&mut out, v).expect("writing to a String cannot fail");
    }
    out.push('}');
    out
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string always encodes")
}

/// A double as fastjson writes it (`0.0`, `1.5`).
fn json_number(x: f64) -> String {
    serde_json::to_string(&x).expect("a finite double always encodes")
}

pub(crate) fn message_queue(b: &Broker, topic: &str, queue_id: i32) -> MessageQueue {
    MessageQueue {
        topic: topic.to_owned(),
        broker_name: b.config.broker_name.clone(),
        queue_id,
    }
}

/// One client of a group, as ConsumerConnection lists it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConnectionBody {
    client_addr: String,
    client_id: String,
    language: &'static str,
    version: i32,
}

/// ConsumerConnection; fields in fastjson's (alphabetical) order. An enum never reported by the
/// group's heartbeat is left out rather than sent as an empty name fastjson cannot read.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConsumerConnectionBody<'a> {
    connection_set: Vec<ConnectionBody>,
    #[serde(skip_serializing_if = "str::is_empty")]
    consume_from_where: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    consume_type: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    message_model: &'a str,
    subscription_table: BTreeMap<&'a str, &'a SubscriptionData>,
}

/// GET_CONSUMER_CONNECTION_LIST: who is connected in a group, and what it subscribes to.
pub fn consumer_connection_list(b: &Broker, req: &RemotingCommand) -> RemotingCommand {
    let h: GetConsumerConnectionListRequestHeader = match req.decode_header() {
        Ok(h) => h,
        Err(e) => return bad_header(req, e),
    };
    let Some(info) = b.consumers.group(&h.consumer_group) else {
        return RemotingCommand::error(
            req,
            response::CONSUMER_NOT_ONLINE,
            format!("the consumer group[{}] not online", h.consumer_group),
        );
    };
    let mut connection_set: Vec<ConnectionBody> =
        info.channels.values().map(connection_body).collect();
    connection_set.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    let body = ConsumerConnectionBody {
        connection_set,
        consume_from_where: &info.consume_from_where,
        consume_type: &info.consume_type,
        message_model: &info.message_model,
        subscription_table: info
            .subscriptions
            .iter()
            .map(|(topic, sub)| (topic.as_str(), sub))
            .collect(),
    };
    match serde_json::to_vec(&body) {
        Ok(body) => RemotingCommand::success(req).with_body(body),
        Err(e) => {
            RemotingCommand::error(req, response::SYSTEM_ERROR, format!("encoding failed: {e}"))
        }
    }
}

/// GET_PRODUCER_CONNECTION_LIST: the live connections of a producer group, as ProducerConnection
/// `{"connectionSet":[..]}`. A group with none is SYSTEM_ERROR, with Java's remark.
pub fn producer_connection_list(b: &Broker, req: &RemotingCommand) -> RemotingCommand {
    let h: GetProducerConnectionListRequestHeader = match req.decode_header() {
        Ok(h) => h,
        Err(e) => return bad_header(req, e),
    };
    let mut connection_set: Vec<ConnectionBody> = b
        .producers
        .channels(&h.producer_group)
        .iter()
        .map(connection_body)
        .collect();
    if connection_set.is_empty() {
        return RemotingCommand::error(
            req,
            response::SYSTEM_ERROR,
            format!("the producer group[{}] not exist", h.producer_group),
        );
    }
    connection_set.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    json_body(req, &serde_json::json!({ "connectionSet": connection_set }))
}

/// QUERY_TOPIC_CONSUME_BY_WHO: GroupList `{"groupList":[..]}` of the groups subscribed to the
/// topic now or holding an offset on it, as Java's broker answers.
pub fn topic_consumed_by_who(b: &Broker, req: &RemotingCommand) -> RemotingCommand {
    let h: TopicRequestHeader = match req.decode_header() {
        Ok(h) => h,
        Err(e) => return bad_header(req, e),
    };
    let groups: BTreeSet<String> = b
        .consumers
        .groups_subscribing(&h.topic)
        .into_iter()
        .chain(b.offsets.groups_of_topic(&h.topic))
        .collect();
    json_body(req, &serde_json::json!({ "groupList": groups }))
}

fn connection_body(c: &ClientChannel) -> ConnectionBody {
    ConnectionBody {
        client_addr: c.conn.peer_addr().to_string(),
        client_id: c.client_id.clone(),
        language: language_name(c.language),
        version: c.version,
    }
}

fn json_body(req: &RemotingCommand, body: &serde_json::Value) -> RemotingCommand {
    match serde_json::to_vec(body) {
        Ok(body) => RemotingCommand::success(req).with_body(body),
        Err(e) => {
            RemotingCommand::error(req, response::SYSTEM_ERROR, format!("encoding failed: {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use petrel_common::protocol::{ConsumerData, HeartbeatData};
    use petrel_remoting::code::request;
    use petrel_remoting::headers::SendMessageRequestHeaderV2;
    use petrel_remoting::{CancellationToken, Connection, NoRequests};
    use petrel_store::StoreConfig;

    use super::*;
    use crate::{BrokerConfig, BrokerHandle};

    const TIMEOUT: Duration = Duration::from_secs(5);

    fn mq(topic: &str, queue_id: i32) -> MessageQueue {
        MessageQueue {
            topic: topic.into(),
            broker_name: "broker-a".into(),
            queue_id,
        }
    }

    #[test]
    fn topic_stats_body_writes_message_queue_keys_as_fastjson_objects() {
        let rows = [
            (
                mq("T", 0),
                TopicOffset {
                    min_offset: 0,
                    max_offset: 10,
                    last_update_timestamp: 1_700_000_000_000,
                },
            ),
            (
                mq("T", 1),
                TopicOffset {
                    min_offset: 2,
                    max_offset: 3,
                    last_update_timestamp: 0,
                },
            ),
        ];
        assert_eq!(
            topic_stats_body(&rows, 1.5),
            concat!(
                r#"{"offsetTable":{"#,
                r#"{"brokerName":"broker-a","queueId":0,"topic":"T"}:"#,
                r#"{"lastUpdateTimestamp":1700000000000,"maxOffset":10,"minOffset":0},"#,
                r#"{"brokerName":"broker-a","queueId":1,"topic":"T"}:"#,
                r#"{"lastUpdateTimestamp":0,"maxOffset":3,"minOffset":2}},"topicPutTps":1.5}"#
            )
        );
        assert_eq!(
            topic_stats_body(&[], 0.0),
            r#"{"offsetTable":{},"topicPutTps":0.0}"#
        );
    }

    #[test]
    fn consume_stats_body_writes_offset_wrappers_under_object_keys() {
        let rows = [(
            mq("%RETRY%cg", 0),
            OffsetWrapper {
                broker_offset: 10,
                consumer_offset: 5,
                pull_offset: 5,
                last_timestamp: 1_700_000_000_000,
            },
        )];
        assert_eq!(
            consume_stats_body(&rows),
            concat!(
                r#"{"consumeTps":0.0,"offsetTable":{"#,
                r#"{"brokerName":"broker-a","queueId":0,"topic":"%RETRY%cg"}:"#,
                r#"{"brokerOffset":10,"consumerOffset":5,"lastTimestamp":1700000000000,"#,
                r#""pullOffset":5}}}"#
            )
        );
    }

    #[test]
    fn runtime_is_formatted_like_java() {
        let ms = ((2 * 24 + 3) * 3600 + 4 * 60 + 5) * 1000 + 999;
        assert_eq!(
            format_runtime(ms),
            "[ 2 days, 3 hours, 4 minutes, 5 seconds ]"
        );
    }

    async fn start_broker(dir: &std::path::Path) -> BrokerHandle {
        let mut store = StoreConfig::new(dir);
        store.commit_log_file_size = 1024 * 1024;
        let mut config = BrokerConfig::new(store);
        config.listen_addr = "127.0.0.1:0".parse().unwrap();
        config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
        config.vip_channel_enable = false;
        Broker::start(config, CancellationToken::new())
            .await
            .unwrap()
    }

    async fn call(conn: &Connection, cmd: RemotingCommand) -> RemotingCommand {
        conn.request(cmd, TIMEOUT).await.unwrap()
    }

    async fn send(conn: &Connection, topic: &str, queue_id: i32) {
        let header = SendMessageRequestHeaderV2 {
            producer_group: "pg".into(),
            topic: topic.into(),
            default_topic: "TBW102".into(),
            default_topic_queue_nums: 2,
            queue_id,
            born_timestamp: 1,
            ..Default::default()
        };
        let cmd = RemotingCommand::request_with_header(request::SEND_MESSAGE_V2, &header)
            .with_body(b"hello".to_vec());
        let resp = call(conn, cmd).await;
        assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
    }

    async fn heartbeat(conn: &Connection, group: &str, topics: &[&str]) {
        let hb = HeartbeatData {
            client_id: "127.0.0.1@stats-test".into(),
            producer_data_set: vec![],
            consumer_data_set: vec![ConsumerData {
                group_name: group.into(),
                consume_type: "CONSUME_PASSIVELY".into(),
                message_model: "CLUSTERING".into(),
                consume_from_where: "CONSUME_FROM_FIRST_OFFSET".into(),
                subscription_data_set: topics
                    .iter()
                    .map(|t| SubscriptionData::tags(t, "*", 1))
                    .collect(),
                unit_mode: false,
            }],
        };
        let cmd = RemotingCommand::request(request::HEART_BEAT)
            .with_body(serde_json::to_vec(&hb).unwrap());
        let resp = call(conn, cmd).await;
        assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
    }

    fn body_text(resp: &RemotingCommand) -> String {
        assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
        String::from_utf8(resp.body_bytes().to_vec()).unwrap()
    }

    #[tokio::test]
    async fn broker_stats_data_counts_a_topics_puts_from_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let handle = start_broker(dir.path()).await;
        let conn = Connection::connect(
            &handle.local_addr().to_string(),
            Arc::new(NoRequests),
            TIMEOUT,
        )
        .await
        .unwrap();
        for q in [0, 0, 1] {
            send(&conn, "Orders", q).await;
        }
        let stats = |name: &str, key: &str| {
            let mut req = RemotingCommand::request(super::super::admin::VIEW_BROKER_STATS_DATA);
            req.ext_fields.insert("statsName", name);
            req.ext_fields.insert("statsKey", key);
            req
        };
        let resp = call(&conn, stats("TOPIC_PUT_NUMS", "Orders")).await;
        assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
        assert_eq!(
            body_text(&resp),
            format!(
                r#"{{"statsDay":{{"sum":3,"tps":{}}},"statsHour":{{"sum":3,"tps":{}}},"statsMinute":{{"sum":3,"tps":{}}}}}"#,
                json_number(3.0 / 86_400.0),
                json_number(3.0 / 3_600.0),
                json_number(3.0 / 60.0)
            )
        );
        let group = call(&conn, stats("GROUP_GET_NUMS", "Orders@cg")).await;
        assert_eq!(group.code, response::REQUEST_CODE_NOT_SUPPORTED);
        assert!(
            group.remark.as_deref().is_some_and(
                |r| r.starts_with("viewBrokerStatsData GROUP_GET_NUMS is not supported")
            ),
            "{:?}",
            group.remark
        );
        let unknown = call(&conn, stats("TOPIC_PUT_NUMS", "Nope")).await;
        assert_eq!(unknown.code, response::SYSTEM_ERROR);
        handle.shutdown().await;
    }

    #[tokio::test]
    async fn stats_bodies_from_a_running_broker() {
        let dir = tempfile::tempdir().unwrap();
        let handle = start_broker(dir.path()).await;
        let b = handle.broker.clone();
        let conn = Connection::connect(
            &handle.local_addr().to_string(),
            Arc::new(NoRequests),
            TIMEOUT,
        )
        .await
        .unwrap();
        for _ in 0..3 {
            send(&conn, "Orders", 0).await;
        }
        send(&conn, "Orders", 1).await;
        let last_q0 = b.store.store_time_of("Orders", 0, 2).unwrap();
        let first_q0 = b.store.store_time_of("Orders", 0, 0).unwrap();
        let last_q1 = b.store.store_time_of("Orders", 1, 0).unwrap();

        // topicStatus: both queues, in fastjson's object-key form; the 4 messages were stored
        // within the last minute, so the per-minute put rate is 4/60.
        let topic = |t: &str| {
            RemotingCommand::request_with_header(
                request::GET_TOPIC_STATS_INFO,
                &TopicRequestHeader { topic: t.into() },
            )
        };
        assert_eq!(
            body_text(&call(&conn, topic("Orders")).await),
            format!(
                concat!(
                    r#"{{"offsetTable":{{"#,
                    r#"{{"brokerName":"broker-a","queueId":0,"topic":"Orders"}}:"#,
                    r#"{{"lastUpdateTimestamp":{},"maxOffset":3,"minOffset":0}},"#,
                    r#"{{"brokerName":"broker-a","queueId":1,"topic":"Orders"}}:"#,
                    r#"{{"lastUpdateTimestamp":{},"maxOffset":1,"minOffset":0}}}},"#,
                    r#""topicPutTps":{}}}"#
                ),
                last_q0,
                last_q1,
                4.0 / 60.0
            )
        );
        let missing = call(&conn, topic("Nope")).await;
        assert_eq!(missing.code, response::TOPIC_NOT_EXIST);
        assert_eq!(missing.remark.as_deref(), Some("topic[Nope] not exist"));

        // consumerProgress: a group that consumed one message of queue 0 of what it subscribes
        // to, and has an offset on a topic it no longer subscribes to.
        send(&conn, "Audit", 0).await;
        let audit_q0 = b.store.store_time_of("Audit", 0, 0).unwrap();
        b.offsets.commit("cg", "Audit", 0, 1);
        let consumer = Connection::connect(
            &handle.local_addr().to_string(),
            Arc::new(NoRequests),
            TIMEOUT,
        )
        .await
        .unwrap();
        heartbeat(&consumer, "cg", &["Orders"]).await;
        b.offsets.commit("cg", "Orders", 0, 1);
        let stats = |t: Option<&str>| {
            RemotingCommand::request_with_header(
                request::GET_CONSUME_STATS,
                &GetConsumeStatsRequestHeader {
                    consumer_group: "cg".into(),
                    topic: t.map(str::to_owned),
                },
            )
        };
        let orders = format!(
            concat!(
                r#"{{"brokerName":"broker-a","queueId":0,"topic":"Orders"}}:"#,
                r#"{{"brokerOffset":3,"consumerOffset":1,"lastTimestamp":{},"pullOffset":1}},"#,
                r#"{{"brokerName":"broker-a","queueId":1,"topic":"Orders"}}:"#,
                r#"{{"brokerOffset":1,"consumerOffset":0,"lastTimestamp":0,"pullOffset":0}}"#
            ),
            first_q0
        );
        let expected = format!(r#"{{"consumeTps":0.0,"offsetTable":{{{orders}}}}}"#);
        assert_eq!(body_text(&call(&conn, stats(None)).await), expected);
        assert_eq!(
            body_text(&call(&conn, stats(Some("Orders"))).await),
            expected
        );
        // Online and not subscribed: dropped, as Java does.
        assert_eq!(
            body_text(&call(&conn, stats(Some("Audit"))).await),
            r#"{"consumeTps":0.0,"offsetTable":{}}"#
        );
        let mut listed = stats(None);
        listed.ext_fields.insert("topicList", "Orders;");
        assert_eq!(body_text(&call(&conn, listed).await), expected);

        // consumerConnection: the heartbeating connection and its subscription.
        let connections = |g: &str| {
            RemotingCommand::request_with_header(
                request::GET_CONSUMER_CONNECTION_LIST,
                &GetConsumerConnectionListRequestHeader {
                    consumer_group: g.into(),
                },
            )
        };
        let cc: serde_json::Value =
            serde_json::from_str(&body_text(&call(&conn, connections("cg")).await)).unwrap();
        assert_eq!(
            cc["connectionSet"],
            serde_json::json!([{
                "clientAddr": consumer.local_addr().to_string(),
                "clientId": "127.0.0.1@stats-test",
                "language": "JAVA",
                "version": petrel_remoting::command::VERSION,
            }])
        );
        assert_eq!(cc["consumeType"], "CONSUME_PASSIVELY");
        assert_eq!(cc["messageModel"], "CLUSTERING");
        assert_eq!(cc["consumeFromWhere"], "CONSUME_FROM_FIRST_OFFSET");
        assert_eq!(cc["subscriptionTable"]["Orders"]["subString"], "*");
        let offline = call(&conn, connections("ghost")).await;
        assert_eq!(offline.code, response::CONSUMER_NOT_ONLINE);
        assert_eq!(
            offline.remark.as_deref(),
            Some("the consumer group[ghost] not online")
        );

        // clusterList / brokerStatus.
        let kv: serde_json::Value = serde_json::from_str(&body_text(
            &call(
                &conn,
                RemotingCommand::request(request::GET_BROKER_RUNTIME_INFO),
            )
            .await,
        ))
        .unwrap();
        let table = kv["table"].as_object().unwrap();
        for key in [
            "brokerVersionDesc",
            "brokerActive",
            "putTps",
            "getTransferedTps",
            "msgPutTotalYesterdayMorning",
            "msgPutTotalTodayMorning",
            "msgGetTotalYesterdayMorning",
            "msgGetTotalTodayMorning",
            "msgGetTotalTodayNow",
            "sendThreadPoolQueueSize",
            "pullThreadPoolQueueSize",
            "sendThreadPoolQueueHeadWaitTimeMills",
            "pullThreadPoolQueueHeadWaitTimeMills",
            "commitLogDiskRatio",
            "timerReadBehind",
            "timerOffsetBehind",
            "timerCongestNum",
            "timerEnqueueTps",
            "timerDequeueTps",
            "bootTimestamp",
            "runtime",
            "commitLogMinOffset",
        ] {
            assert!(table[key].is_string(), "{key} missing from {table:?}");
        }
        assert_eq!(table["msgPutTotalTodayNow"], "5");
        assert_eq!(table["brokerActive"], "true");
        assert_eq!(table["earliestMessageTimeStamp"], first_q0.to_string());
        assert_eq!(
            table["commitLogMaxOffset"],
            b.store.max_physical_offset().to_string()
        );
        let put_tps: f64 = table["putTps"].as_str().unwrap().parse().unwrap();
        assert!(put_tps > 0.0, "{put_tps}");

        // Offline: every topic with an offset counts again.
        consumer.close();
        for _ in 0..200 {
            if b.consumers.group("cg").is_none() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            b.consumers.group("cg").is_none(),
            "the group is still online"
        );
        assert_eq!(
            body_text(&call(&conn, stats(None)).await),
            format!(
                concat!(
                    r#"{{"consumeTps":0.0,"offsetTable":{{"#,
                    r#"{{"brokerName":"broker-a","queueId":0,"topic":"Audit"}}:"#,
                    r#"{{"brokerOffset":1,"consumerOffset":1,"lastTimestamp":{},"pullOffset":1}},"#,
                    r#"{{"brokerName":"broker-a","queueId":1,"topic":"Audit"}}:"#,
                    r#"{{"brokerOffset":0,"consumerOffset":0,"lastTimestamp":0,"pullOffset":0}},"#,
                    "{}}}}}"
                ),
                audit_q0, orders
            )
        );

        handle.shutdown().await;
    }

    #[test]
    fn rates_are_counts_over_uptime() {
        assert_eq!(per_second(30, 10_000), 3.0);
        assert_eq!(per_second(5, 0), 5000.0);
    }
}
