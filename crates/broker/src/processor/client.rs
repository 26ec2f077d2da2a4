//! Client management: HEART_BEAT, UNREGISTER_CLIENT, GET_CONSUMER_LIST_BY_GROUP, and the
//! NOTIFY_CONSUMER_IDS_CHANGED push that makes a group rebalance at once.

use std::sync::Arc;
use std::time::Instant;

use petrel_common::protocol::{ConsumerListBody, HeartbeatData};
use petrel_common::topic::{perm, retry_topic, validate_group, TopicConfig};
use petrel_remoting::code::{request, response};
use petrel_remoting::headers::{ConsumerGroupHeader, UnregisterClientRequestHeader};
use petrel_remoting::{Connection, RemotingCommand};

use super::{bad_header, io_failure};
use crate::broker::Broker;
use crate::client_manager::ClientChannel;
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
    let channel = ClientChannel {
        client_id: data.client_id.clone(),
        conn: conn.clone(),
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
            Ok(TopicLookup::Created(_)) => b.publish_topics().await,
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
    let conns = b.consumers.connections(group);
    let header = ConsumerGroupHeader {
        consumer_group: group.to_owned(),
    };
    tokio::spawn(async move {
        for conn in conns {
            let cmd =
                RemotingCommand::request_with_header(request::NOTIFY_CONSUMER_IDS_CHANGED, &header);
            if let Err(e) = conn.oneway(cmd).await {
                tracing::debug!(?conn, "could not notify a consumer: {e}");
            }
        }
    });
}
