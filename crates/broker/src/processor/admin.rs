//! Admin requests behind `mqadmin`'s daily commands: topics, subscription groups, broker config,
//! VIEW_MESSAGE_BY_ID, and the two questions an admin tool asks one consumer through the broker;
//! and the GET_ALL_* tables a slave pulls from its master (RocketMQ's SlaveSynchronize).
//! `handle` returns `None` for codes it does not serve.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use petrel_common::msg_id::decode_offset_msg_id;
use petrel_common::topic::{
    perm, validate_group, validate_topic, SubscriptionGroupConfig, TopicConfig,
};
use petrel_remoting::code::{request, response};
use petrel_remoting::headers::{
    CreateTopicRequestHeader, GetBrokerConfigResponseHeader,
    GetSubscriptionGroupConfigRequestHeader, GroupTopicRequestHeader, TopicRequestHeader,
    ViewMessageRequestHeader,
};
use petrel_remoting::RemotingCommand;

use super::{bad_header, io_failure};
use crate::broker::Broker;
use crate::flow_control::FlowSettings;

pub fn handle(b: &Arc<Broker>, code: i32, req: &RemotingCommand) -> Option<RemotingCommand> {
    Some(match code {
        request::GET_ALL_TOPIC_CONFIG => json(req, &b.topics.snapshot()),
        request::GET_BROKER_EPOCH_CACHE => json(req, &crate::ha::controlled::epoch_cache(b)),
        request::GET_TOPIC_CONFIG => get_topic_config(b, req),
        request::QUERY_TOPICS_BY_CONSUMER => topics_by_consumer(b, req),
        request::CLONE_GROUP_OFFSET => super::offset::clone_group_offset(b, req),
        request::QUERY_SUBSCRIPTION_BY_CONSUMER => subscription_by_consumer(b, req),
        request::DELETE_TOPIC_IN_BROKER => delete_topic(b, req),
        request::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP => update_subscription_group(b, req),
        request::GET_ALL_SUBSCRIPTIONGROUP_CONFIG => all_subscription_groups(b, req),
        request::GET_ALL_CONSUMER_OFFSET => all_consumer_offsets(b, req),
        request::GET_ALL_DELAY_OFFSET => all_delay_offsets(b, req),
        request::GET_SUBSCRIPTIONGROUP_CONFIG => get_subscription_group(b, req),
        request::DELETE_SUBSCRIPTIONGROUP => delete_subscription_group(b, req),
        request::VIEW_MESSAGE_BY_ID => view_message_by_id(b, req),
        request::GET_BROKER_CONFIG => get_broker_config(b, req),
        request::GET_BROKER_RUNTIME_INFO => super::stats::broker_runtime_info(b, req),
        request::GET_TOPIC_STATS_INFO => super::stats::topic_stats_info(b, req),
        request::GET_CONSUME_STATS => super::stats::consume_stats(b, req),
        request::GET_CONSUMER_CONNECTION_LIST => super::stats::consumer_connection_list(b, req),
        request::GET_PRODUCER_CONNECTION_LIST => super::stats::producer_connection_list(b, req),
        request::QUERY_TOPIC_CONSUME_BY_WHO => super::stats::topic_consumed_by_who(b, req),
        request::UPDATE_BROKER_CONFIG => update_broker_config(b, req),
        VIEW_BROKER_STATS_DATA => super::stats::view_broker_stats_data(b, req),
        _ => return None,
    })
}

/// VIEW_BROKER_STATS_DATA (`mqadmin statsAll`'s TPS and 24-hour counts).
pub(crate) const VIEW_BROKER_STATS_DATA: i32 = 315;

fn json<T: serde::Serialize>(req: &RemotingCommand, value: &T) -> RemotingCommand {
    match serde_json::to_vec(value) {
        Ok(body) => RemotingCommand::success(req).with_body(body),
        Err(e) => {
            RemotingCommand::error(req, response::SYSTEM_ERROR, format!("encoding failed: {e}"))
        }
    }
}

pub async fn update_and_create_topic(b: &Arc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let h: CreateTopicRequestHeader = match req.decode_header() {
        Ok(h) => h,
        Err(e) => return bad_header(req, e),
    };
    if let Err(e) = validate_topic(&h.topic) {
        return RemotingCommand::error(req, response::INVALID_PARAMETER, e);
    }
    if h.read_queue_nums <= 0
        || h.write_queue_nums <= 0
        || h.read_queue_nums > 1024
        || h.write_queue_nums > 1024
    {
        return RemotingCommand::error(
            req,
            response::INVALID_PARAMETER,
            format!(
                "queue numbers must be 1..=1024, got read {} write {}",
                h.read_queue_nums, h.write_queue_nums
            ),
        );
    }
    // RocketMQ 5's topic attributes (`mqadmin updateTopic -a +message.type=FIFO`): changes to
    // those the topic has; an update without them keeps them.
    let mut attributes = b
        .topics
        .get(&h.topic)
        .map(|t| t.attributes)
        .unwrap_or_default();
    if let Some(changes) = req.ext_fields.get("attributes") {
        if let Err(e) = change_topic_attributes(&mut attributes, changes) {
            return RemotingCommand::error(req, response::INVALID_PARAMETER, e);
        }
    }
    let mut config = TopicConfig::new(h.topic, h.write_queue_nums, h.perm);
    config.attributes = attributes;
    config.read_queue_nums = h.read_queue_nums;
    config.topic_sys_flag = h.topic_sys_flag.unwrap_or(0);
    config.order = h.order.unwrap_or(false);
    if let Some(t) = h.topic_filter_type {
        config.topic_filter_type = t;
    }
    let name = config.topic_name.clone();
    // Off the runtime's workers: the write of topics.json blocks, and creations waiting for
    // one write share the next (see `TopicConfigManager::persist`).
    let topics = b.clone();
    let upserted = tokio::task::spawn_blocking(move || topics.topics.upsert(config))
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
    if let Err(e) = upserted {
        return io_failure(req, e);
    }
    b.publish_topic(&name).await;
    RemotingCommand::success(req)
}

/// The topic attributes RocketMQ 5 knows, with the values each may take (`None`: an integer).
const TOPIC_ATTRIBUTES: &[(&str, Option<&[&str]>)] = &[
    (
        "message.type",
        Some(&[
            "UNSPECIFIED",
            "NORMAL",
            "FIFO",
            "DELAY",
            "TRANSACTION",
            "MIXED",
        ]),
    ),
    ("queue.type", Some(&["BatchCQ", "SimpleCQ"])),
    ("cleanup.policy", Some(&["DELETE", "COMPACTION"])),
    ("reserve.time", None),
];

/// Applies RocketMQ's attribute changes (`+key=value` sets, `-key` removes, comma-separated)
/// to `attributes`; an unknown key or value is an error and changes nothing.
fn change_topic_attributes(
    attributes: &mut std::collections::BTreeMap<String, String>,
    changes: &str,
) -> Result<(), String> {
    let mut changed = attributes.clone();
    for change in changes.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        let (key, value) = match change.split_once('=') {
            Some((k, v)) => match k.strip_prefix('+') {
                Some(k) => (k, Some(v)),
                None => return Err(format!("attribute change {change:?} must start with +")),
            },
            None => match change.strip_prefix('-') {
                Some(k) => (k, None),
                None => return Err(format!("attribute removal {change:?} must start with -")),
            },
        };
        let Some((_, allowed)) = TOPIC_ATTRIBUTES.iter().find(|(name, _)| *name == key) else {
            return Err(format!("unsupported topic attribute {key:?}"));
        };
        match value {
            Some(v) => {
                let valid = match allowed {
                    Some(values) => values.contains(&v),
                    None => v.parse::<i64>().is_ok_and(|n| n >= -1),
                };
                if !valid {
                    return Err(format!(
                        "{v:?} is not a valid value of topic attribute {key}"
                    ));
                }
                changed.insert(key.to_owned(), v.to_owned());
            }
            None => {
                changed.remove(key);
            }
        }
    }
    *attributes = changed;
    Ok(())
}

/// GET_TOPIC_CONFIG: one topic's config as JSON (Java's TopicConfigAndQueueMapping, whose mapping
/// part is null for a topic without static queues and so not written).
fn get_topic_config(b: &Arc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let h: TopicRequestHeader = match req.decode_header() {
        Ok(h) => h,
        Err(e) => return bad_header(req, e),
    };
    match b.topics.get(&h.topic) {
        Some(config) => json(req, &config),
        None => RemotingCommand::error(
            req,
            response::TOPIC_NOT_EXIST,
            format!("No topic in this broker. topic: {}", h.topic),
        ),
    }
}

/// QUERY_TOPICS_BY_CONSUMER: TopicList of the topics the group holds offsets on, with this
/// broker's address, as Java answers.
fn topics_by_consumer(b: &Arc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let h: GroupTopicRequestHeader = match req.decode_header() {
        Ok(h) => h,
        Err(e) => return bad_header(req, e),
    };
    let mut topics = b.offsets.topics_of_group(&h.group);
    topics.sort();
    json(
        req,
        &serde_json::json!({ "topicList": topics, "brokerAddr": b.broker_addr() }),
    )
}

/// QUERY_SUBSCRIPTION_BY_CONSUMER: the group's live subscription to the topic
/// (`subscriptionData` null when it has none), as Java's QuerySubscriptionResponseBody.
fn subscription_by_consumer(b: &Arc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let h: GroupTopicRequestHeader = match req.decode_header() {
        Ok(h) => h,
        Err(e) => return bad_header(req, e),
    };
    let topic = h.topic.unwrap_or_default();
    let subscription = b.consumers.subscription(&h.group, &topic);
    json(
        req,
        &serde_json::json!({
            "group": h.group,
            "subscriptionData": subscription,
            "topic": topic,
        }),
    )
}

fn delete_topic(b: &Arc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let h: TopicRequestHeader = match req.decode_header() {
        Ok(h) => h,
        Err(e) => return bad_header(req, e),
    };
    match b.topics.delete(&h.topic) {
        Ok(_) => {
            // Sent by omission: the name server keeps the route until DELETE_TOPIC_IN_NAMESRV,
            // which mqadmin and `petrel admin` send next.
            b.topic_changed(&h.topic);
            RemotingCommand::success(req)
        }
        Err(e) => io_failure(req, e),
    }
}

fn update_subscription_group(b: &Arc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let config: SubscriptionGroupConfig = match serde_json::from_slice(&req.body_bytes()) {
        Ok(c) => c,
        Err(e) => {
            return RemotingCommand::error(
                req,
                response::SYSTEM_ERROR,
                format!("the body is not a valid SubscriptionGroupConfig: {e}"),
            )
        }
    };
    if let Err(e) = validate_group(&config.group_name) {
        return RemotingCommand::error(req, response::INVALID_PARAMETER, e);
    }
    let flow = match FlowSettings::from_attributes(&config.attributes) {
        Ok(f) => f,
        Err(e) => return RemotingCommand::error(req, response::INVALID_PARAMETER, e),
    };
    let group = config.group_name.clone();
    if let Err(e) = b.groups.upsert(config) {
        return io_failure(req, e);
    }
    b.flow.set(&group, flow);
    RemotingCommand::success(req)
}

/// GET_ALL_SUBSCRIPTIONGROUP_CONFIG: Java's SubscriptionGroupWrapper. Its `forbiddenTable`
/// (groups barred from reading a topic) is always empty here, Petrel having no such bar, but it
/// is written: fastjson writes every field and strict readers (rocketmq-client-rust) require it.
fn all_subscription_groups(b: &Arc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let mut wrapper = match serde_json::to_value(b.groups.snapshot()) {
        Ok(v) => v,
        Err(e) => {
            return RemotingCommand::error(
                req,
                response::SYSTEM_ERROR,
                format!("encoding failed: {e}"),
            )
        }
    };
    if let Some(fields) = wrapper.as_object_mut() {
        fields.insert("forbiddenTable".to_owned(), serde_json::json!({}));
    }
    json(req, &wrapper)
}

/// GET_ALL_CONSUMER_OFFSET: every committed offset, as a Java master answers it (its
/// ConsumerOffsetManager written by fastjson, which a Java slave reads as a
/// ConsumerOffsetSerializeWrapper).
fn all_consumer_offsets(b: &Arc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    RemotingCommand::success(req).with_body(consumer_offset_body(&b.offsets.offset_table()))
}

/// GET_ALL_DELAY_OFFSET: the delay progress per level, the content of `delayOffset.json` in
/// Java's form, which a Java slave writes to its own file as it is.
fn all_delay_offsets(b: &Arc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    match crate::schedule::read_delay_offsets(&b.config.store.root_dir) {
        Ok(table) => RemotingCommand::success(req).with_body(delay_offset_body(&table)),
        Err(e) => io_failure(req, e),
    }
}

/// `{"offsetTable":{"topic@group":{0:12,1:34}}}`: fastjson writes integer map keys unquoted.
fn consumer_offset_body(table: &BTreeMap<String, BTreeMap<i32, i64>>) -> Vec<u8> {
    let mut out = String::from(r#"{"offsetTable":{"#);
    for (i, (key, queues)) in table.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&serde_json::Value::from(key.as_str()).to_string());
        out.push(':');
        push_integer_key_map(&mut out, queues);
    }
    out.push_str("}}");
    out.into_bytes()
}

/// `{"offsetTable":{1:100,2:0}}`: Java's DelayOffsetSerializeWrapper as fastjson writes it.
fn delay_offset_body(table: &BTreeMap<i32, i64>) -> Vec<u8> {
    let mut out = String::from(r#"{"offsetTable":"#);
    push_integer_key_map(&mut out, table);
    out.push('}');
    out.into_bytes()
}

/// A `Map<Integer, Long>` as fastjson writes it: `{0:12,1:34}`.
fn push_integer_key_map(out: &mut String, map: &BTreeMap<i32, i64>) {
    out.push('{');
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!("{k}:{v}"));
    }
    out.push('}');
}

/// GET_SUBSCRIPTIONGROUP_CONFIG: one group's config as JSON, how 5.x admin tools read a group
/// back after `updateSubGroup`. A group this broker does not know is SUBSCRIPTION_GROUP_NOT_EXIST.
fn get_subscription_group(b: &Arc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let h: GetSubscriptionGroupConfigRequestHeader = match req.decode_header() {
        Ok(h) => h,
        Err(e) => return bad_header(req, e),
    };
    match b.groups.get(&h.group) {
        Some(config) => json(req, &config),
        None => RemotingCommand::error(
            req,
            response::SUBSCRIPTION_GROUP_NOT_EXIST,
            format!("no subscription group {} in this broker", h.group),
        ),
    }
}

fn delete_subscription_group(b: &Arc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let Some(group) = req.ext_fields.get("groupName") else {
        return RemotingCommand::error(
            req,
            response::INVALID_PARAMETER,
            "the header field groupName is missing",
        );
    };
    b.flow.remove(group);
    match b.groups.delete(group) {
        Ok(_) => RemotingCommand::success(req),
        Err(e) => io_failure(req, e),
    }
}

fn view_message_by_id(b: &Arc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let h: ViewMessageRequestHeader = match req.decode_header() {
        Ok(h) => h,
        Err(e) => return bad_header(req, e),
    };
    match b.store.read_record(h.offset) {
        Some(record) => RemotingCommand::success(req).with_body(record),
        None => RemotingCommand::error(
            req,
            response::SYSTEM_ERROR,
            format!("no message at commit-log offset {}", h.offset),
        ),
    }
}

/// How long the broker waits for a consumer's answer to a relayed admin request (Java's
/// `Broker2Client.callClient` waits as long).
const CALL_CONSUMER_TIMEOUT: Duration = Duration::from_secs(10);

/// GET_CONSUMER_RUNNING_INFO (`mqadmin consumerStatus`, `consumerProgress -s`, `queryMsgById`)
/// and CONSUME_MESSAGE_DIRECTLY (`queryMsgById -g -d`): relayed to the consumer `clientId` of
/// `consumerGroup`, whose answer goes back as it is. For CONSUME_MESSAGE_DIRECTLY the broker
/// adds what the consumer needs: the stored record named by `msgId` as the body, and its own
/// `brokerName`.
pub async fn call_consumer(b: &Arc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let (Some(group), Some(client_id)) = (
        req.ext_fields.get("consumerGroup"),
        req.ext_fields.get("clientId"),
    ) else {
        return RemotingCommand::error(
            req,
            response::INVALID_PARAMETER,
            "the header fields consumerGroup and clientId are required",
        );
    };
    let Some(channel) = b
        .consumers
        .group(group)
        .and_then(|g| g.channels.into_values().find(|c| c.client_id == client_id))
    else {
        return RemotingCommand::error(
            req,
            response::SYSTEM_ERROR,
            format!("The Consumer <{group}> <{client_id}> not online"),
        );
    };
    let mut relayed = RemotingCommand::request(req.code);
    relayed.ext_fields = req.ext_fields.clone();
    relayed.body = req.body.clone();
    if req.code == request::CONSUME_MESSAGE_DIRECTLY {
        let record = req
            .ext_fields
            .get("msgId")
            .and_then(decode_offset_msg_id)
            .and_then(|(_, offset)| b.store.read_record(offset));
        let Some(record) = record else {
            return RemotingCommand::error(
                req,
                response::SYSTEM_ERROR,
                format!(
                    "no stored message for msgId {:?}",
                    req.ext_fields.get("msgId")
                ),
            );
        };
        relayed
            .ext_fields
            .insert("brokerName", b.config.broker_name.clone());
        relayed.body = record.into();
    }
    let Some(conn) = channel.conn.remoting() else {
        return RemotingCommand::error(
            req,
            response::SYSTEM_ERROR,
            format!(
                "The Consumer <{group}> <{client_id}> is a gRPC client, which cannot be called"
            ),
        );
    };
    match conn.request(relayed, CALL_CONSUMER_TIMEOUT).await {
        Ok(answer) => {
            let mut resp = RemotingCommand::success(req);
            resp.code = answer.code;
            resp.remark = answer.remark;
            resp.ext_fields = answer.ext_fields;
            resp.body = answer.body;
            resp
        }
        Err(e) => RemotingCommand::error(
            req,
            response::SYSTEM_ERROR,
            format!("invoke consumer <{group}> <{client_id}> failed: {e}"),
        ),
    }
}

/// UPDATE_BROKER_CONFIG: the body is Java properties text (`key=value` lines). Every key must
/// be one [`crate::runtime_config`] changes at runtime with a valid value, or nothing changes
/// and the answer (INVALID_PARAMETER) names the key and why. A change is saved to the overrides
/// file before it is in force; the template topic TBW102 follows `autoCreateTopicEnable` and
/// `defaultTopicQueueNums`.
fn update_broker_config(b: &Arc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    use crate::runtime_config::{parse_all, Setting};
    let text = String::from_utf8_lossy(&req.body_bytes()).into_owned();
    let pairs = petrel_common::protocol::parse_properties(&text);
    let settings = match parse_all(&pairs) {
        Ok(s) => s,
        Err(e) => return RemotingCommand::error(req, response::INVALID_PARAMETER, e),
    };
    if let Err(e) = b.settings.change(&settings) {
        return io_failure(req, e);
    }
    let template_changed = settings.iter().any(|s| {
        matches!(
            s,
            Setting::AutoCreateTopicEnable(true) | Setting::DefaultTopicQueueNums(_)
        )
    });
    if template_changed && b.settings.auto_create_topic_enable() {
        let q = b.settings.default_topic_queue_nums();
        let template = TopicConfig::new(
            petrel_common::topic::AUTO_CREATE_TOPIC_KEY,
            q,
            perm::INHERIT | perm::READ | perm::WRITE,
        );
        let differs = b
            .topics
            .with(&template.topic_name, |t| {
                t.write_queue_nums != q || t.read_queue_nums != q
            })
            .unwrap_or(true);
        if differs {
            let name = template.topic_name.clone();
            if let Err(e) = b.topics.upsert(template) {
                return io_failure(req, e);
            }
            b.topic_changed(&name);
        }
    }
    RemotingCommand::success(req)
}

/// The broker's settings as Java properties text, as `mqadmin getBrokerConfig` prints them.
fn get_broker_config(b: &Arc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let c = &b.config;
    let s = &c.store;
    let flush = match s.flush_disk_type {
        petrel_store::FlushDiskType::AsyncFlush => "ASYNC_FLUSH",
        petrel_store::FlushDiskType::SyncFlush => "SYNC_FLUSH",
    };
    let lines = [
        ("brokerName", c.broker_name.clone()),
        ("brokerClusterName", c.cluster_name.clone()),
        ("brokerId", c.broker_id.to_string()),
        ("brokerIP1", c.broker_ip.to_string()),
        ("listenPort", b.store_host.port().to_string()),
        ("namesrvAddr", c.namesrv_addr.clone()),
        ("regionId", c.region_id.clone()),
        ("traceOn", c.trace_on.to_string()),
        (
            "autoCreateTopicEnable",
            b.settings.auto_create_topic_enable().to_string(),
        ),
        (
            "autoCreateSubscriptionGroup",
            c.auto_create_subscription_group.to_string(),
        ),
        (
            "defaultTopicQueueNums",
            b.settings.default_topic_queue_nums().to_string(),
        ),
        ("maxMessageSize", b.settings.max_message_bytes().to_string()),
        ("storePathRootDir", s.root_dir.display().to_string()),
        (
            "mappedFileSizeCommitLog",
            s.commit_log_file_size.to_string(),
        ),
        ("flushDiskType", flush.to_string()),
        ("flushIntervalCommitLog", s.flush_interval_ms.to_string()),
        ("syncFlushTimeout", s.sync_flush_timeout_ms.to_string()),
        ("brokerRole", "ASYNC_MASTER".to_string()),
    ];
    let mut text = String::new();
    for (k, v) in lines {
        text.push_str(k);
        text.push('=');
        text.push_str(&v);
        text.push('\n');
    }
    let version =
        serde_json::json!({"counter": 0, "timestamp": b.started_at_ms, "stateVersion": 0});
    RemotingCommand::success(req)
        .with_header(&GetBrokerConfigResponseHeader {
            version: version.to_string(),
        })
        .with_body(text.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_attributes_change_as_rocketmq_writes_them() {
        let mut a = std::collections::BTreeMap::new();
        change_topic_attributes(&mut a, "+message.type=FIFO,+reserve.time=72").unwrap();
        assert_eq!(a["message.type"], "FIFO");
        assert_eq!(a["reserve.time"], "72");
        change_topic_attributes(&mut a, "-reserve.time").unwrap();
        assert!(!a.contains_key("reserve.time"));
        for bad in [
            "+message.type=SOMETIMES",
            "+color=red",
            "message.type=FIFO",
            "reserve.time",
        ] {
            assert!(change_topic_attributes(&mut a, bad).is_err(), "{bad}");
        }
        assert_eq!(a.len(), 1, "a refused change changes nothing");
    }

    #[test]
    fn offset_bodies_are_written_as_fastjson_writes_them() {
        let offsets = BTreeMap::from([
            ("T@g".to_owned(), BTreeMap::from([(0, 12), (1, 34)])),
            ("%RETRY%g@g".to_owned(), BTreeMap::from([(0, 0)])),
        ]);
        assert_eq!(
            String::from_utf8(consumer_offset_body(&offsets)).unwrap(),
            r#"{"offsetTable":{"%RETRY%g@g":{0:0},"T@g":{0:12,1:34}}}"#
        );
        assert_eq!(
            String::from_utf8(consumer_offset_body(&BTreeMap::new())).unwrap(),
            r#"{"offsetTable":{}}"#
        );
        let delay = BTreeMap::from([(1, 100), (2, 0)]);
        assert_eq!(
            String::from_utf8(delay_offset_body(&delay)).unwrap(),
            r#"{"offsetTable":{1:100,2:0}}"#
        );
        assert_eq!(
            String::from_utf8(delay_offset_body(&BTreeMap::new())).unwrap(),
            r#"{"offsetTable":{}}"#
        );
    }
}
