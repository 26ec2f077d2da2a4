//! `/api/messages…` and `/api/trace`: stored messages found by topic and store time, by key, by
//! message id, re-consumed by a group, and one message's path. Reads only, except the resend,
//! which asks one consumer of the group to consume the message again.

use std::collections::BTreeMap;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::Query;
use axum::Json;
use base64::Engine;
use petrel_client::admin::cluster_brokers;
use petrel_client::MessageExt;
use petrel_common::msg_id::decode_offset_msg_id;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{topic_error, ApiError, ApiResult};
use crate::tables::{number, page_of, paging, required, Params};
use crate::{AppState, Dashboard};

/// Most messages a time range is read for; `total` says this many when there are more.
pub const MAX_RANGE_MESSAGES: usize = 10_000;
/// Messages asked of each broker for a key.
const MAX_KEY_MESSAGES: i32 = 64;
const DEFAULT_RANGE_MS: i64 = 3_600_000;

/// What the page shows of a message.
pub fn view(m: &MessageExt) -> Value {
    let properties: BTreeMap<&str, &str> = m.properties.iter().collect();
    json!({
        "topic": m.topic,
        "msgId": m.msg_id(),
        "offsetMsgId": m.offset_msg_id,
        "queueId": m.queue_id,
        "queueOffset": m.queue_offset,
        "tags": m.tags(),
        "keys": m.keys(),
        "bornTimestamp": m.born_timestamp,
        "bornHost": m.born_host.to_string(),
        "storeTimestamp": m.store_timestamp,
        "storeHost": m.store_host.to_string(),
        "reconsumeTimes": m.reconsume_times,
        "bodyBytes": m.body.len(),
        "body": String::from_utf8_lossy(&m.body),
        "bodyBase64": base64::engine::general_purpose::STANDARD.encode(&m.body),
        "properties": properties,
    })
}

pub async fn by_time(
    state: AppState,
    params: Result<Query<Params>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(params) = params?;
    let topic = required(&params, "topic")?;
    let (page, size) = paging(&params)?;
    let now = petrel_common::msg_id::now_ms() as i64;
    let end = number(&params, "end")?.unwrap_or(now + 1);
    let begin = number(&params, "begin")?.unwrap_or(end - DEFAULT_RANGE_MS);
    if begin > end {
        return Err(ApiError::bad_request(format!(
            "begin ({begin}) is after end ({end})"
        )));
    }
    let d = &state.0;
    let queues = d.admin.topic_queues(topic).await.map_err(topic_error(
        topic,
        format!("cannot read the route of {topic}"),
    ))?;
    let mut found = Vec::new();
    for mq in &queues {
        let left = MAX_RANGE_MESSAGES - found.len();
        if left == 0 {
            break;
        }
        found.extend(
            d.admin
                .queue_messages_between(mq, begin, end, left)
                .await
                .map_err(ApiError::context(format!(
                    "cannot read {topic} queue {} of {}",
                    mq.queue_id, mq.broker_name
                )))?,
        );
    }
    // Newest first.
    found.sort_by(|a, b| {
        (b.store_timestamp, &b.offset_msg_id).cmp(&(a.store_timestamp, &a.offset_msg_id))
    });
    let total = found.len();
    let items: Vec<Value> = page_of(found, page, size).iter().map(view).collect();
    Ok(Json(json!({
        "total": total,
        "page": page,
        "pageSize": size,
        "items": items,
    })))
}

pub async fn by_key(
    state: AppState,
    params: Result<Query<Params>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(params) = params?;
    let topic = required(&params, "topic")?;
    let key = required(&params, "key")?;
    let found = state
        .0
        .admin
        .query_messages_by_key(topic, key, MAX_KEY_MESSAGES, 0, i64::MAX)
        .await
        .map_err(topic_error(
            topic,
            format!("cannot look up key {key} in {topic}"),
        ))?;
    let items: Vec<Value> = found.iter().map(view).collect();
    Ok(Json(json!({ "items": items })))
}

/// The stored messages `id` names: the client message id in `topic` (when given), else an
/// offsetMsgId of one of the cluster's brokers.
async fn find_by_id(d: &Dashboard, id: &str, topic: Option<&str>) -> ApiResult<Vec<MessageExt>> {
    if let Some(topic) = topic {
        let found = d
            .admin
            .query_message_by_unique_key(topic, id)
            .await
            .map_err(topic_error(
                topic,
                format!("cannot look up {id} in {topic}"),
            ))?;
        if !found.is_empty() {
            return Ok(found);
        }
    }
    // A client message id decodes as an offsetMsgId too, of an address nobody listens on:
    // only ask a broker the cluster has.
    if let Some((addr, _)) = decode_offset_msg_id(id) {
        let info = d.admin.cluster_info().await.map_err(ApiError::context(
            "cannot read the cluster from the name server",
        ))?;
        let addr = addr.to_string();
        if cluster_brokers(&info).iter().any(|b| b.addr == addr) {
            match d.admin.view_message_by_offset_msg_id(id).await {
                Ok(m) if topic.is_none_or(|t| t == m.topic) => return Ok(vec![m]),
                Ok(_) => {}
                Err(petrel_client::ClientError::Broker { .. }) => {}
                Err(e) => return Err(ApiError::context(format!("cannot read {id}"))(e)),
            }
        }
    }
    Err(ApiError::not_found(match topic {
        Some(topic) => format!("no message {id} in topic {topic}"),
        None => format!("no message with offsetMsgId {id}; for a client message id give its topic"),
    }))
}

pub async fn by_id(
    state: AppState,
    params: Result<Query<Params>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(params) = params?;
    let id = required(&params, "id")?;
    let topic = params
        .get("topic")
        .map(|t| t.trim())
        .filter(|t| !t.is_empty());
    let found = find_by_id(&state.0, id, topic).await?;
    let items: Vec<Value> = found.iter().map(view).collect();
    Ok(Json(json!({ "items": items })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resend {
    topic: String,
    msg_id: String,
    group: String,
}

pub async fn resend(
    state: AppState,
    body: Result<Json<Resend>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let Json(r) = body?;
    let d = &state.0;
    let found = find_by_id(d, &r.msg_id, Some(&r.topic)).await?;
    let m = found
        .last()
        .expect("find_by_id answers at least one message");
    let result = d
        .admin
        .consume_message_directly(&r.group, &m.offset_msg_id, &m.topic, m.msg_id())
        .await
        .map_err(ApiError::context(format!(
            "cannot have {} consume {} again",
            r.group, r.msg_id
        )))?;
    Ok(Json(json!({ "result": result })))
}

pub async fn trace(
    state: AppState,
    params: Result<Query<Params>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(params) = params?;
    let id = required(&params, "msgId")?;
    let topic = params
        .get("topic")
        .map(|t| t.trim())
        .filter(|t| !t.is_empty());
    let trace = state
        .0
        .admin
        .trace_message(id, topic)
        .await
        .map_err(ApiError::context(format!("cannot trace {id}")))?;
    if trace.stored.is_empty() && trace.broker_events.is_empty() && trace.client_records.is_empty()
    {
        return Err(ApiError::not_found(format!(
            "nothing is known of message {id}{}",
            topic.map(|t| format!(" in topic {t}")).unwrap_or_default()
        )));
    }
    let mut out = serde_json::to_value(&trace).unwrap_or_else(|_| json!({}));
    out["timeline"] = serde_json::to_value(trace.timeline()).unwrap_or_else(|_| json!([]));
    Ok(Json(out))
}
