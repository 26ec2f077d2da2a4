//! Topic and subscription-group configuration, permissions, names and their rules.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The auto-create template topic (reference §6.1).
pub const AUTO_CREATE_TOPIC_KEY: &str = "TBW102";
pub const RETRY_GROUP_TOPIC_PREFIX: &str = "%RETRY%";
pub const DLQ_GROUP_TOPIC_PREFIX: &str = "%DLQ%";
pub const SCHEDULE_TOPIC: &str = "SCHEDULE_TOPIC_XXXX";
/// Where timer messages wait for the timing wheel (RocketMQ 5's name), queue 0.
pub const TIMER_TOPIC: &str = "rmq_sys_wheel_timer";
pub const DEFAULT_CLUSTER: &str = "DefaultCluster";
/// Where transactional half messages wait for their outcome (one queue).
pub const TRANS_HALF_TOPIC: &str = "RMQ_SYS_TRANS_HALF_TOPIC";
/// Outcomes of half messages: body = the half message's queue offset.
pub const TRANS_OP_HALF_TOPIC: &str = "RMQ_SYS_TRANS_OP_HALF_TOPIC";
/// Half messages whose producer never answered `transactionCheckMax` checks.
pub const TRANS_CHECK_MAX_TIME_TOPIC: &str = "TRANS_CHECK_MAX_TIME_TOPIC";

pub const TOPIC_MAX_LEN: usize = 127;
/// Retry and dead-letter topics carry a group name and may be longer.
pub const SYSTEM_TOPIC_MAX_LEN: usize = 255;
pub const GROUP_MAX_LEN: usize = 120;

/// Permission bits (PermName).
pub mod perm {
    pub const PRIORITY: i32 = 8;
    pub const READ: i32 = 4;
    pub const WRITE: i32 = 2;
    pub const INHERIT: i32 = 1;

    pub fn readable(p: i32) -> bool {
        p & READ != 0
    }
    pub fn writeable(p: i32) -> bool {
        p & WRITE != 0
    }
    pub fn inherited(p: i32) -> bool {
        p & INHERIT != 0
    }
}

pub fn retry_topic(group: &str) -> String {
    format!("{RETRY_GROUP_TOPIC_PREFIX}{group}")
}

pub fn dlq_topic(group: &str) -> String {
    format!("{DLQ_GROUP_TOPIC_PREFIX}{group}")
}

/// Checks a topic name against RocketMQ's rules; the error says what is wrong.
pub fn validate_topic(topic: &str) -> Result<(), String> {
    if topic.is_empty() {
        return Err("the topic name is empty".into());
    }
    let max = if topic.starts_with(RETRY_GROUP_TOPIC_PREFIX)
        || topic.starts_with(DLQ_GROUP_TOPIC_PREFIX)
    {
        SYSTEM_TOPIC_MAX_LEN
    } else {
        TOPIC_MAX_LEN
    };
    if topic.len() > max {
        return Err(format!(
            "the topic name is {} characters long, the limit is {max}",
            topic.len()
        ));
    }
    if let Some(c) = topic.chars().find(|c| !valid_name_char(*c)) {
        return Err(format!(
            "the topic name {topic:?} contains {c:?}; allowed are letters, digits, %, |, _ and -"
        ));
    }
    Ok(())
}

pub fn validate_group(group: &str) -> Result<(), String> {
    if group.is_empty() {
        return Err("the group name is empty".into());
    }
    if group.len() > GROUP_MAX_LEN {
        return Err(format!(
            "the group name is {} characters long, the limit is {GROUP_MAX_LEN}",
            group.len()
        ));
    }
    if let Some(c) = group.chars().find(|c| !valid_name_char(*c)) {
        return Err(format!(
            "the group name {group:?} contains {c:?}; allowed are letters, digits, %, |, _ and -"
        ));
    }
    Ok(())
}

fn valid_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '%' | '|' | '_' | '-')
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicConfig {
    pub topic_name: String,
    pub read_queue_nums: i32,
    pub write_queue_nums: i32,
    pub perm: i32,
    #[serde(default = "single_tag")]
    pub topic_filter_type: String,
    #[serde(default)]
    pub topic_sys_flag: i32,
    #[serde(default)]
    pub order: bool,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

fn single_tag() -> String {
    "SINGLE_TAG".to_owned()
}

impl TopicConfig {
    pub fn new(name: impl Into<String>, queues: i32, perm: i32) -> Self {
        TopicConfig {
            topic_name: name.into(),
            read_queue_nums: queues,
            write_queue_nums: queues,
            perm,
            topic_filter_type: single_tag(),
            topic_sys_flag: 0,
            order: false,
            attributes: BTreeMap::new(),
        }
    }
}

/// Names of the subscription-group attributes behind the brokers' runtime flow control.
pub mod group_attribute {
    /// `true` pauses every client of the group.
    pub const PAUSED: &str = "consume.paused";
    /// Comma-separated ids of the clients to pause.
    pub const PAUSED_CLIENTS: &str = "consume.paused.clients";
    /// Most messages per second a broker hands the group (0 = no limit).
    pub const RATE_LIMIT: &str = "consume.rate.limit";
}

/// Subscription-group configuration (what `mqadmin updateSubGroup` sets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionGroupConfig {
    pub group_name: String,
    #[serde(default = "yes")]
    pub consume_enable: bool,
    #[serde(default = "yes")]
    pub consume_from_min_enable: bool,
    #[serde(default = "yes")]
    pub consume_broadcast_enable: bool,
    #[serde(default = "one")]
    pub retry_queue_nums: i32,
    #[serde(default = "sixteen")]
    pub retry_max_times: i32,
    #[serde(default)]
    pub broker_id: i64,
    #[serde(default = "one")]
    pub which_broker_when_consume_slowly: i64,
    #[serde(default = "yes")]
    pub notify_consumer_ids_changed_enable: bool,
    /// RocketMQ 5.x's FIFO group: POP hands out a queue's next messages only after the ones
    /// before them are acknowledged, and 5.x clients consume it in order.
    #[serde(default)]
    pub consume_message_orderly: bool,
    /// RocketMQ 5.x's free-form group attributes (`mqadmin updateSubGroup -a +key=value`).
    /// Petrel's runtime flow control lives here (`consume.paused`, `consume.rate.limit`, see
    /// the broker's `flow_control` module), so standard tools can read and set it.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

fn yes() -> bool {
    true
}
fn one<T: From<u8>>() -> T {
    T::from(1)
}
fn sixteen() -> i32 {
    16
}

impl SubscriptionGroupConfig {
    pub fn new(group: impl Into<String>) -> Self {
        SubscriptionGroupConfig {
            group_name: group.into(),
            consume_enable: true,
            consume_from_min_enable: true,
            consume_broadcast_enable: true,
            retry_queue_nums: 1,
            retry_max_times: 16,
            broker_id: 0,
            which_broker_when_consume_slowly: 1,
            notify_consumer_ids_changed_enable: true,
            consume_message_orderly: false,
            attributes: BTreeMap::new(),
        }
    }
}

/// Version stamp of a config table (`dataVersion` in RocketMQ's JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DataVersion {
    pub timestamp: i64,
    pub counter: i64,
    #[serde(default)]
    pub state_version: i64,
}

impl DataVersion {
    pub fn now() -> Self {
        DataVersion {
            timestamp: crate::msg_id::now_ms() as i64,
            counter: 0,
            state_version: 0,
        }
    }

    pub fn bump(&mut self) {
        self.timestamp = crate::msg_id::now_ms() as i64;
        self.counter += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        assert!(validate_topic("Order_Topic-1").is_ok());
        assert!(validate_topic("%RETRY%group").is_ok());
        assert!(validate_topic("bad topic").unwrap_err().contains("' '"));
        assert!(validate_topic(&"x".repeat(128)).is_err());
        assert!(validate_topic("").is_err());
    }

    #[test]
    fn topic_config_json_matches_rocketmq() {
        let json = r#"{"order":false,"perm":6,"readQueueNums":4,"topicFilterType":"SINGLE_TAG","topicName":"T","topicSysFlag":0,"writeQueueNums":4}"#;
        let c: TopicConfig = serde_json::from_str(json).unwrap();
        assert_eq!(c, TopicConfig::new("T", 4, 6));
    }
}
