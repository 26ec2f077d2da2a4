//! JSON bodies of the remoting protocol (route data, heartbeats, consumer lists, locks), with
//! RocketMQ's field names. Java's fastjson writes integer map keys unquoted; parse such text
//! with [`from_fastjson`].

use std::collections::{BTreeMap, BTreeSet};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::topic::{DataVersion, TopicConfig};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TopicRouteData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_topic_conf: Option<String>,
    pub queue_datas: Vec<QueueData>,
    pub broker_datas: Vec<BrokerData>,
    #[serde(default)]
    pub filter_server_table: BTreeMap<String, Vec<String>>,
}

impl TopicRouteData {
    /// The master address of each broker serving the topic.
    pub fn master_addrs(&self) -> impl Iterator<Item = &str> {
        self.broker_datas.iter().filter_map(BrokerData::master_addr)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueData {
    pub broker_name: String,
    pub read_queue_nums: i32,
    pub write_queue_nums: i32,
    pub perm: i32,
    #[serde(default)]
    pub topic_sys_flag: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BrokerData {
    pub cluster: String,
    pub broker_name: String,
    /// brokerId (0 = master) → "ip:port".
    pub broker_addrs: BTreeMap<i64, String>,
    #[serde(default)]
    pub enable_acting_master: bool,
}

impl BrokerData {
    pub fn master_addr(&self) -> Option<&str> {
        self.broker_addrs.get(&0).map(String::as_str)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ClusterInfo {
    pub broker_addr_table: BTreeMap<String, BrokerData>,
    pub cluster_addr_table: BTreeMap<String, BTreeSet<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TopicList {
    pub topic_list: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker_addr: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TopicConfigSerializeWrapper {
    pub topic_config_table: BTreeMap<String, TopicConfig>,
    pub data_version: DataVersion,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RegisterBrokerBody {
    pub topic_config_serialize_wrapper: TopicConfigSerializeWrapper,
    #[serde(default)]
    pub filter_server_list: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatData {
    #[serde(rename = "clientID")]
    pub client_id: String,
    #[serde(default)]
    pub producer_data_set: Vec<ProducerData>,
    #[serde(default)]
    pub consumer_data_set: Vec<ConsumerData>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ProducerData {
    pub group_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerData {
    pub group_name: String,
    /// `CONSUME_ACTIVELY` (pull) or `CONSUME_PASSIVELY` (push).
    #[serde(default)]
    pub consume_type: String,
    /// `CLUSTERING` or `BROADCASTING`.
    #[serde(default)]
    pub message_model: String,
    #[serde(default)]
    pub consume_from_where: String,
    #[serde(default)]
    pub subscription_data_set: Vec<SubscriptionData>,
    #[serde(default)]
    pub unit_mode: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionData {
    pub topic: String,
    pub sub_string: String,
    #[serde(default)]
    pub tags_set: BTreeSet<String>,
    /// Java sends numbers; the Go client (rocketmq-client-go v2) sends them as strings
    /// (`["65"]`), which the Java broker's fastjson accepts too.
    #[serde(default, deserialize_with = "tag_codes")]
    pub code_set: BTreeSet<i32>,
    #[serde(default)]
    pub sub_version: i64,
    #[serde(default = "tag_type")]
    pub expression_type: String,
    #[serde(default)]
    pub class_filter_mode: bool,
}

fn tag_codes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeSet<i32>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Code {
        Number(i32),
        Text(String),
    }
    Vec::<Code>::deserialize(d)?
        .into_iter()
        .map(|c| match c {
            Code::Number(n) => Ok(n),
            Code::Text(t) => t.trim().parse().map_err(|_| {
                serde::de::Error::custom(format!("tag hash code {t:?} is not a 32-bit integer"))
            }),
        })
        .collect()
}

fn tag_type() -> String {
    "TAG".to_owned()
}

pub const SUB_ALL: &str = "*";

impl SubscriptionData {
    /// A TAG subscription: `*` or `TagA || TagB`.
    pub fn tags(topic: &str, expression: &str, sub_version: i64) -> Self {
        let expression = expression.trim();
        let mut data = SubscriptionData {
            topic: topic.to_owned(),
            sub_string: if expression.is_empty() {
                SUB_ALL.to_owned()
            } else {
                expression.to_owned()
            },
            sub_version,
            expression_type: tag_type(),
            ..Default::default()
        };
        if data.sub_string != SUB_ALL {
            for tag in data
                .sub_string
                .split("||")
                .map(str::trim)
                .filter(|t| !t.is_empty())
            {
                data.code_set.insert(crate::record::java_string_hash(tag));
                data.tags_set.insert(tag.to_owned());
            }
        }
        data
    }

    /// A SQL92 subscription: `expression` filters on message properties.
    pub fn sql92(topic: &str, expression: &str, sub_version: i64) -> Self {
        SubscriptionData {
            topic: topic.to_owned(),
            sub_string: expression.trim().to_owned(),
            sub_version,
            expression_type: crate::filter::EXPRESSION_TYPE_SQL92.to_owned(),
            ..Default::default()
        }
    }

    /// Whether `sub_string` is a tag expression (`TAG`, also when the type is left out).
    pub fn is_tag_type(&self) -> bool {
        self.expression_type.is_empty()
            || self
                .expression_type
                .eq_ignore_ascii_case(crate::filter::EXPRESSION_TYPE_TAG)
    }

    pub fn is_sql92(&self) -> bool {
        self.expression_type
            .eq_ignore_ascii_case(crate::filter::EXPRESSION_TYPE_SQL92)
    }

    pub fn matches_all(&self) -> bool {
        self.sub_string == SUB_ALL || self.sub_string.is_empty()
    }

    /// Whether a consume-queue entry's tag hash may match (exact tag check happens in the
    /// client). Only tag subscriptions filter on the hash; others pass every entry here.
    pub fn matches_tags_code(&self, tags_code: i64) -> bool {
        !self.is_tag_type() || self.matches_all() || self.code_set.contains(&(tags_code as i32))
    }
}

/// CHECK_CLIENT_CONFIG body: a consumer asks whether the broker accepts its subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CheckClientRequestBody {
    #[serde(default)]
    pub client_id: String,
    #[serde(default)]
    pub group: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_data: Option<SubscriptionData>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerListBody {
    pub consumer_id_list: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageQueue {
    pub topic: String,
    pub broker_name: String,
    pub queue_id: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct LockBatchRequestBody {
    pub consumer_group: String,
    pub client_id: String,
    #[serde(default)]
    pub only_this_broker: bool,
    #[serde(default)]
    pub mq_set: BTreeSet<MessageQueue>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct LockBatchResponseBody {
    /// Java's field `lockOKMQSet`, which camelCase would not produce.
    #[serde(rename = "lockOKMQSet", default)]
    pub lock_ok_mq_set: BTreeSet<MessageQueue>,
}

/// UNLOCK_BATCH_MQ body: the same fields as a lock request.
pub type UnlockBatchRequestBody = LockBatchRequestBody;

/// Parses JSON written by fastjson, whose integer map keys are unquoted (`{0:"addr"}`).
pub fn from_fastjson<T: DeserializeOwned>(text: &[u8]) -> serde_json::Result<T> {
    match serde_json::from_slice(text) {
        Ok(v) => Ok(v),
        Err(first) => {
            let quoted = quote_bare_keys(text);
            serde_json::from_slice(&quoted).map_err(|_| first)
        }
    }
}

/// Quotes bare integer object keys outside strings: `{0:` → `{"0":`, `,12:` → `,"12":`.
fn quote_bare_keys(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 16);
    let mut in_string = false;
    let mut escaped = false;
    let mut i = 0;
    while i < text.len() {
        let c = text[i];
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        if c == b'"' {
            in_string = true;
            out.push(c);
            i += 1;
            continue;
        }
        if (c == b'{' || c == b',') && i + 1 < text.len() {
            out.push(c);
            let start = i + 1;
            let mut j = start;
            while j < text.len() && (text[j].is_ascii_digit() || text[j] == b'-') {
                j += 1;
            }
            if j > start && j < text.len() && text[j] == b':' {
                out.push(b'"');
                out.extend_from_slice(&text[start..j]);
                out.push(b'"');
                i = j;
                continue;
            }
            i += 1;
            continue;
        }
        out.push(c);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fastjson_route_data_with_unquoted_keys() {
        let text = br#"{"brokerDatas":[{"brokerAddrs":{0:"10.0.0.1:10911",1:"10.0.0.2:10911"},"brokerName":"broker-a","cluster":"DefaultCluster","enableActingMaster":false}],"filterServerTable":{},"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":4,"topicSysFlag":0,"writeQueueNums":4}]}"#;
        let route: TopicRouteData = from_fastjson(text).unwrap();
        assert_eq!(route.broker_datas[0].master_addr(), Some("10.0.0.1:10911"));
        assert_eq!(route.broker_datas[0].broker_addrs.len(), 2);
        let again = serde_json::to_vec(&route).unwrap();
        assert_eq!(from_fastjson::<TopicRouteData>(&again).unwrap(), route);
    }

    #[test]
    fn lock_bodies_use_java_field_names() {
        let text = br#"{"clientId":"cid","consumerGroup":"cg","mqSet":[{"brokerName":"broker-a","queueId":0,"topic":"T"}],"onlyThisBroker":false}"#;
        let req: LockBatchRequestBody = serde_json::from_slice(text).unwrap();
        assert_eq!(req.mq_set.len(), 1);
        let resp = LockBatchResponseBody {
            lock_ok_mq_set: req.mq_set.clone(),
        };
        let json = serde_json::to_string(&resp).unwrap();
        assert!(json.starts_with(r#"{"lockOKMQSet":[{"#), "{json}");
    }

    #[test]
    fn parses_a_java_check_client_body() {
        let text = br#"{"clientId":"10.0.0.9@12345","group":"cg","namespace":"","subscriptionData":{"classFilterMode":false,"codeSet":[],"expressionType":"SQL92","subString":"a > 5 AND b = 'x'","subVersion":1700000000000,"tagsSet":[],"topic":"T"}}"#;
        let body: CheckClientRequestBody = serde_json::from_slice(text).unwrap();
        let sub = body.subscription_data.unwrap();
        assert_eq!(
            sub,
            SubscriptionData::sql92("T", "a > 5 AND b = 'x'", 1700000000000)
        );
        assert!(sub.is_sql92() && !sub.is_tag_type());
        // SQL92 leaves the tag hash check open; the broker decides on the properties.
        assert!(sub.matches_tags_code(12345));
        let no_sub: CheckClientRequestBody =
            serde_json::from_slice(br#"{"clientId":"c","group":"cg"}"#).unwrap();
        assert!(no_sub.subscription_data.is_none());
    }

    #[test]
    fn parses_a_java_heartbeat() {
        let text = br#"{"clientID":"10.0.0.9@12345","consumerDataSet":[{"consumeFromWhere":"CONSUME_FROM_LAST_OFFSET","consumeType":"CONSUME_PASSIVELY","groupName":"cg","messageModel":"CLUSTERING","subscriptionDataSet":[{"classFilterMode":false,"codeSet":[97,98],"expressionType":"TAG","subString":"a || b","subVersion":1700000000000,"tagsSet":["a","b"],"topic":"T"}],"unitMode":false}],"producerDataSet":[{"groupName":"pg"}]}"#;
        let hb: HeartbeatData = serde_json::from_slice(text).unwrap();
        assert_eq!(
            hb.consumer_data_set[0].subscription_data_set[0],
            SubscriptionData::tags("T", "a || b", 1700000000000)
        );
    }

    /// rocketmq-client-go v2 sends the tag hash codes as strings; a heartbeat refused for that
    /// left its tag subscriptions without a registered consumer.
    #[test]
    fn parses_a_go_heartbeat() {
        let text = br#"{"clientID":"192.0.2.2@g_1","producerDataSet":[],"consumerDataSet":[{"groupName":"cg","consumeType":"CONSUME_PASSIVELY","messageModel":"CLUSTERING","consumeFromWhere":"CONSUME_FROM_FIRST_OFFSET","subscriptionDataSet":[{"classFilterMode":false,"topic":"T","subString":"A || C","tagsSet":["A","C"],"codeSet":["65","67"],"subVersion":1796163549886495198,"expressionType":"TAG"}],"unitMode":false}]}"#;
        let hb: HeartbeatData = serde_json::from_slice(text).unwrap();
        assert_eq!(
            hb.consumer_data_set[0].subscription_data_set[0],
            SubscriptionData::tags("T", "A || C", 1796163549886495198)
        );
        let bad = br#"{"topic":"T","subString":"A","codeSet":["A"]}"#;
        assert!(serde_json::from_slice::<SubscriptionData>(bad).is_err());
    }
}

/// Body of Petrel's PETREL_LIST_HALF_MESSAGES answer: a broker's pending half messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct HalfMessageList {
    pub half_messages: Vec<HalfMessageInfo>,
}

/// One transactional half message waiting for END_TRANSACTION or its check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct HalfMessageInfo {
    pub producer_group: String,
    /// The message id (UNIQ_KEY) the producer was given.
    pub msg_id: String,
    pub transaction_id: String,
    /// Where the message goes once committed.
    pub topic: String,
    pub queue_id: i32,
    pub keys: String,
    /// Offset in RMQ_SYS_TRANS_HALF_TOPIC, and in the commit log.
    pub half_queue_offset: i64,
    pub commit_log_offset: i64,
    pub store_timestamp: i64,
    /// When the broker next checks it back with the producer group.
    pub next_check_timestamp: i64,
    /// Checks sent since the broker started.
    pub check_times: u32,
}

/// GET_BROKER_RUNTIME_INFO's KVTable: `{"table":{"putTps":"..",...}}`, every value text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct KvTable {
    #[serde(default)]
    pub table: BTreeMap<String, String>,
}

/// Java properties text (GET_BROKER_CONFIG's body) as a map: `key=value` lines, comments and
/// blank lines skipped.
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| {
            let (k, v) = l.split_once(['=', ':'])?;
            Some((k.trim().to_owned(), v.trim().to_owned()))
        })
        .collect()
}

/// One queue's offsets in a TopicStatsTable (Java's `TopicOffset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TopicOffset {
    pub min_offset: i64,
    pub max_offset: i64,
    /// Store time of the queue's newest message, 0 when it is empty.
    #[serde(default)]
    pub last_update_timestamp: i64,
}

/// One row of a TopicStatsTable: a queue and its offsets, flattened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicQueueStats {
    #[serde(flatten)]
    pub queue: MessageQueue,
    #[serde(flatten)]
    pub offset: TopicOffset,
}

/// GET_TOPIC_STATS_INFO's TopicStatsTable. On the wire its `offsetTable` is a fastjson map with
/// MessageQueue keys (see [`crate::object_map`]); here it is a list sorted by queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TopicStatsTable {
    pub offset_table: Vec<TopicQueueStats>,
    #[serde(default)]
    pub topic_put_tps: f64,
}

/// The `offsetTable` of a broker's fastjson body, keyed by MessageQueue objects, as rows sorted
/// by queue.
fn queue_rows<V: DeserializeOwned, R>(
    text: &[u8],
    row: impl Fn(MessageQueue, V) -> R,
) -> Result<Vec<R>, String> {
    let mut rows: Vec<(MessageQueue, V)> =
        crate::object_map::parse_object_key_map::<MessageQueue, V>(text, "offsetTable")?;
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(rows.into_iter().map(|(q, v)| row(q, v)).collect())
}

impl TopicStatsTable {
    /// Reads the broker's fastjson body.
    pub fn from_fastjson(text: &[u8]) -> Result<Self, String> {
        Ok(TopicStatsTable {
            offset_table: queue_rows(text, |queue, offset| TopicQueueStats { queue, offset })?,
            topic_put_tps: number_field(text, "topicPutTps").unwrap_or(0.0),
        })
    }
}

/// One queue of a ConsumeStats (Java's `OffsetWrapper`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct OffsetWrapper {
    /// The queue's max offset: where the next message goes.
    pub broker_offset: i64,
    /// The group's committed offset.
    pub consumer_offset: i64,
    #[serde(default)]
    pub pull_offset: i64,
    /// Store time of the last message the group consumed, 0 when unknown.
    #[serde(default)]
    pub last_timestamp: i64,
}

impl OffsetWrapper {
    /// Messages stored and not yet consumed: broker offset − consumer offset.
    pub fn diff(&self) -> i64 {
        self.broker_offset - self.consumer_offset
    }
}

/// One row of a ConsumeStats: a queue and the group's offsets on it, flattened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueConsumeStats {
    #[serde(flatten)]
    pub queue: MessageQueue,
    #[serde(flatten)]
    pub offset: OffsetWrapper,
}

/// GET_CONSUME_STATS's ConsumeStats, its object-keyed `offsetTable` as a list sorted by queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ConsumeStats {
    pub offset_table: Vec<QueueConsumeStats>,
    #[serde(default)]
    pub consume_tps: f64,
}

impl ConsumeStats {
    /// Reads the broker's fastjson body.
    pub fn from_fastjson(text: &[u8]) -> Result<Self, String> {
        Ok(ConsumeStats {
            offset_table: queue_rows(text, |queue, offset| QueueConsumeStats { queue, offset })?,
            consume_tps: number_field(text, "consumeTps").unwrap_or(0.0),
        })
    }
}

/// The number after `"field":` at the top of a fastjson body that serde cannot read whole.
fn number_field(text: &[u8], field: &str) -> Option<f64> {
    let needle = format!("\"{field}\":");
    let at = text
        .windows(needle.len())
        .rposition(|w| w == needle.as_bytes())?
        + needle.len();
    let rest = std::str::from_utf8(&text[at..]).ok()?.trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E')))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// One client connection, as ConsumerConnection and ProducerConnection list them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    pub client_id: String,
    pub client_addr: String,
    #[serde(default)]
    pub language: String,
    /// The client's version code (RocketMQ's `MQVersion` ordinal).
    #[serde(default)]
    pub version: i32,
}

/// GET_CONSUMER_CONNECTION_LIST's ConsumerConnection: who is online in a group, and how it
/// consumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerConnection {
    #[serde(default)]
    pub connection_set: Vec<Connection>,
    #[serde(default)]
    pub subscription_table: BTreeMap<String, SubscriptionData>,
    #[serde(default)]
    pub consume_type: String,
    #[serde(default)]
    pub message_model: String,
    #[serde(default)]
    pub consume_from_where: String,
}

/// GET_PRODUCER_CONNECTION_LIST's ProducerConnection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ProducerConnection {
    #[serde(default)]
    pub connection_set: Vec<Connection>,
}

#[cfg(test)]
mod admin_body_tests {
    use super::*;

    #[test]
    fn reads_a_topic_stats_table_with_object_keys() {
        let text = br#"{"offsetTable":{{"brokerName":"b","queueId":1,"topic":"T"}:{"lastUpdateTimestamp":5,"maxOffset":3,"minOffset":0},{"brokerName":"b","queueId":0,"topic":"T"}:{"lastUpdateTimestamp":0,"maxOffset":0,"minOffset":0}},"topicPutTps":0.05}"#;
        let t = TopicStatsTable::from_fastjson(text).unwrap();
        assert_eq!(t.offset_table.len(), 2);
        assert_eq!(t.offset_table[0].queue.queue_id, 0);
        assert_eq!(t.offset_table[1].offset.max_offset, 3);
        assert_eq!(t.topic_put_tps, 0.05);
        let json = serde_json::to_value(&t.offset_table[1]).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"topic":"T","brokerName":"b","queueId":1,"minOffset":0,"maxOffset":3,"lastUpdateTimestamp":5})
        );
    }

    #[test]
    fn reads_consume_stats_and_properties() {
        let text = br#"{"consumeTps":0.0,"offsetTable":{{"brokerName":"b","queueId":0,"topic":"T"}:{"brokerOffset":9,"consumerOffset":4,"lastTimestamp":1,"pullOffset":4}}}"#;
        let s = ConsumeStats::from_fastjson(text).unwrap();
        assert_eq!(s.offset_table[0].offset.diff(), 5);
        let props = parse_properties("brokerName=broker-a\n# note\nlistenPort = 10911\n");
        assert_eq!(props.len(), 2);
        assert_eq!(props["listenPort"], "10911");
    }
}
