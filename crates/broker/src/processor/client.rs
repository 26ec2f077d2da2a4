//! Client management: HEART_BEAT, UNREGISTER_CLIENT, GET_CONSUMER_LIST_BY_GROUP,
//! CHECK_CLIENT_CONFIG, the subscription check they share with pulls, and the
//! NOTIFY_CONSUMER_IDS_CHANGED push that makes a group rebalance at once.

use std::sync::Arc;
use std::time::Instant;

use petrel_common::filter::Sql92Filter;
use petrel_common::protocol::{
    CheckClientRequestBody, ConsumerListBody, HeartbeatData, SubscriptionData,
};
use petrel_common::topic::{perm, retry_topic, validate_group, TopicConfig};
use petrel_remoting::code::{request, response};
use petrel_remoting::headers::{ConsumerGroupHeader, UnregisterClientRequestHeader};
use petrel_remoting::{Connection, RemotingCommand};

use super::{bad_header, io_failure};
use crate::broker::Broker;
use crate::client_manager::{ClientChannel, ClientConn};
use crate::topic_config::TopicLookup;

pub async fn heartbeat(
    b: &Arc<Broker>,
    conn: &Connection,
    req: &RemotingCommand,
) -> RemotingCommand {
    let data: HeartbeatData = match serde_json::from_slice(&req.body_bytes()) {
        Ok(d) => d,
        Err(e) => {
            return RemotingCommand::error(
                req,
                response::SYSTEM_ERROR,
                format!("the heartbeat body is not valid HeartbeatData JSON: {e}"),
            )
        }
    };
    // Every subscription is checked before any is registered: a consumer with a bad filter
    // must learn it now, not from pulls that can never succeed.
    for consumer in &data.consumer_data_set {
        for sub in &consumer.subscription_data_set {
            if let Err(refused) = subscription_filter(b, &consumer.group_name, sub) {
                return refused.response(req);
            }
        }
    }
    let channel = ClientChannel {
        client_id: data.client_id.clone(),
        conn: ClientConn::Remoting(conn.clone()),
        language: req.language,
        version: req.version,
        last_update: Instant::now(),
    };
    for consumer in &data.consumer_data_set {
        if let Err(e) = validate_group(&consumer.group_name) {
            return RemotingCommand::error(req, response::INVALID_PARAMETER, e);
        }
        let group = match b.groups.get_or_create(
            &consumer.group_name,
            b.config.auto_create_subscription_group,
        ) {
            Ok(Some(g)) => g,
            Ok(None) => {
                return RemotingCommand::error(
                    req,
                    response::SUBSCRIPTION_GROUP_NOT_EXIST,
                    format!(
                        "subscription group {} does not exist and auto-creation is off",
                        consumer.group_name
                    ),
                )
            }
            Err(e) => return io_failure(req, e),
        };
        let retry = TopicConfig::new(
            retry_topic(&consumer.group_name),
            group.retry_queue_nums.max(1),
            perm::READ | perm::WRITE,
        );
        // A new retry topic is published before the answer: the consumer looks up its route
        // right after this heartbeat, and a miss would leave retries unconsumed until its next
        // route refresh (30 s).
        match b.topics.create_if_absent(retry) {
            Ok(TopicLookup::Created(t)) => b.publish_topic(&t.topic_name).await,
            Ok(_) => {}
            Err(e) => return io_failure(req, e),
        }
        if b.consumers.register(channel.clone(), consumer) {
            tracing::info!(group = %consumer.group_name, client = %data.client_id, "consumer joined");
            notify_consumer_ids_changed(b, &consumer.group_name);
        }
    }
    for producer in &data.producer_data_set {
        b.producers.register(&producer.group_name, channel.clone());
    }
    RemotingCommand::success(req)
}

/// CHECK_CLIENT_CONFIG: whether this broker accepts a subscription (a consumer with a SQL92
/// filter asks before it starts). No body, or no subscription in it, has nothing to refuse.
pub fn check_client_config(b: &Broker, req: &RemotingCommand) -> RemotingCommand {
    let body = req.body_bytes();
    if body.is_empty() {
        return RemotingCommand::success(req);
    }
    let check: CheckClientRequestBody = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => {
            return RemotingCommand::error(
                req,
                response::SYSTEM_ERROR,
                format!("the body is not valid CheckClientRequestBody JSON: {e}"),
            )
        }
    };
    let Some(sub) = &check.subscription_data else {
        return RemotingCommand::success(req);
    };
    match subscription_filter(b, &check.group, sub) {
        Ok(_) => RemotingCommand::success(req),
        Err(refused) => {
            tracing::info!(group = %check.group, client = %check.client_id, topic = %sub.topic, "subscription refused: {}", refused.remark);
            refused.response(req)
        }
    }
}

/// Why a subscription is refused, as RocketMQ answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionRefused {
    pub code: i32,
    pub remark: String,
}

impl SubscriptionRefused {
    pub fn response(&self, req: &RemotingCommand) -> RemotingCommand {
        RemotingCommand::error(req, self.code, self.remark.clone())
    }
}

/// The compiled filter of a subscription (`None` for tag expressions, which the consume-queue
/// hash decides), from the cache when this group/topic/subVersion was compiled before.
pub fn subscription_filter(
    b: &Broker,
    group: &str,
    sub: &SubscriptionData,
) -> Result<Option<Arc<Sql92Filter>>, SubscriptionRefused> {
    if sub.is_tag_type() {
        return Ok(None);
    }
    if !sub.is_sql92() {
        return Err(SubscriptionRefused {
            code: response::SUBSCRIPTION_PARSE_FAILED,
            remark: format!(
                "expression type {} is not supported (topic {}); use TAG or SQL92",
                sub.expression_type, sub.topic
            ),
        });
    }
    if !b.config.enable_property_filter {
        // The Java broker's words, which the Java client shows its user.
        return Err(SubscriptionRefused {
            code: response::SYSTEM_ERROR,
            remark: format!(
                "The broker does not support consumer to filter message by {}",
                sub.expression_type
            ),
        });
    }
    b.consumers
        .sql_filters
        .get_or_compile(group, sub)
        .map(Some)
        .map_err(|e| SubscriptionRefused {
            code: response::SUBSCRIPTION_PARSE_FAILED,
            remark: format!(
                "the SQL92 subscription of group {group} to topic {} does not parse: {e} (expression: {})",
                sub.topic, sub.sub_string
            ),
        })
}

pub fn unregister_client(b: &Arc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let h: UnregisterClientRequestHeader = match req.decode_header() {
        Ok(h) => h,
        Err(e) => return bad_header(req, e),
    };
    if let Some(group) = &h.producer_group {
        b.producers.unregister(group, &h.client_id);
    }
    if let Some(group) = &h.consumer_group {
        if b.consumers.unregister(group, &h.client_id) {
            tracing::info!(%group, client = %h.client_id, "consumer left");
            notify_consumer_ids_changed(b, group);
        }
    }
    RemotingCommand::success(req)
}

pub fn get_consumer_list_by_group(b: &Broker, req: &RemotingCommand) -> RemotingCommand {
    let h: ConsumerGroupHeader = match req.decode_header() {
        Ok(h) => h,
        Err(e) => return bad_header(req, e),
    };
    let ids = b.consumers.client_ids(&h.consumer_group);
    if ids.is_empty() {
        return RemotingCommand::error(
            req,
            response::SYSTEM_ERROR,
            format!("no consumer for this group, {}", h.consumer_group),
        );
    }
    let body = ConsumerListBody {
        consumer_id_list: ids,
    };
    RemotingCommand::success(req).with_body(serde_json::to_vec(&body).unwrap_or_default())
}

/// Tells every consumer of `group` to rebalance now (oneway, in the background).
pub fn notify_consumer_ids_changed(b: &Arc<Broker>, group: &str) {
    if b.in_rejoin_grace() {
        return;
    }
    let notify = b
        .groups
        .get(group)
        .is_none_or(|g| g.notify_consumer_ids_changed_enable);
    if !notify {
        return;
    }
    let header = ConsumerGroupHeader {
        consumer_group: group.to_owned(),
    };
    tell_group(b, group, "membership change", move || {
        RemotingCommand::request_with_header(request::NOTIFY_CONSUMER_IDS_CHANGED, &header)
    });
}

/// Sends a oneway request built by `request` to every connection of `group`, on a task of its
/// own so the caller does not wait on slow clients; returns how many connections there were.
pub(crate) fn tell_group(
    b: &Broker,
    group: &str,
    what: &'static str,
    request: impl Fn() -> RemotingCommand + Send + 'static,
) -> usize {
    let conns = b.consumers.connections(group);
    let count = conns.len();
    if count > 0 {
        tokio::spawn(async move {
            for conn in conns {
                if let Err(e) = conn.oneway(request()).await {
                    tracing::debug!(?conn, "could not tell a consumer about a {what}: {e}");
                }
            }
        });
    }
    count
}
