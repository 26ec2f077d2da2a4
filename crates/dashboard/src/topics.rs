//! `/api/topics…`: the cluster's topics listed from the cached tables (searched and paged here,
//! not per topic at the brokers), created and deleted on every master, their queues and route,
//! and a test message sent from the page.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query};
use axum::Json;
use petrel_client::admin::combine_topic_stats;
use petrel_client::{Message, SendStatus};
use petrel_common::protocol::TopicStatsTable;
use petrel_common::topic::{
    perm, TopicConfig, AUTO_CREATE_TOPIC_KEY, DLQ_GROUP_TOPIC_PREFIX, RETRY_GROUP_TOPIC_PREFIX,
    SCHEDULE_TOPIC, TIMER_TOPIC, TRANS_CHECK_MAX_TIME_TOPIC, TRANS_HALF_TOPIC, TRANS_OP_HALF_TOPIC,
};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{topic_error, ApiError, ApiResult};
use crate::tables::{masters, matches, page_of, paging, Params};
use crate::{AppState, Dashboard};

/// Queue numbers a topic created from the page may have.
const MAX_QUEUE_NUMS: i32 = 1024;
const DEFAULT_QUEUE_NUMS: i32 = 8;

/// What a topic is for, as the list shows it.
fn kind(topic: &str, broker_or_cluster_name: bool) -> &'static str {
    if topic.starts_with(RETRY_GROUP_TOPIC_PREFIX) {
        "retry"
    } else if topic.starts_with(DLQ_GROUP_TOPIC_PREFIX) {
        "dlq"
    } else if broker_or_cluster_name
        || matches!(
            topic,
            AUTO_CREATE_TOPIC_KEY
                | SCHEDULE_TOPIC
                | TIMER_TOPIC
                | TRANS_HALF_TOPIC
                | TRANS_OP_HALF_TOPIC
                | TRANS_CHECK_MAX_TIME_TOPIC
                | "SELF_TEST_TOPIC"
                | "OFFSET_MOVED_EVENT"
                | "RMQ_SYS_TRACE_TOPIC"
        )
        || topic.starts_with("rmq_sys_")
        || topic.starts_with("RMQ_SYS_")
    {
        "system"
    } else {
        "normal"
    }
}

pub async fn list(
    state: AppState,
    params: Result<Query<Params>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(params) = params?;
    let (page, size) = paging(&params)?;
    let search = params.get("search").map(|s| s.trim()).unwrap_or("");
    let include_system = params.get("includeSystem").is_some_and(|v| v == "true");
    let d = &state.0;
    let table = d.tables.topics(&d.admin).await?;
    let found: Vec<(&TopicConfig, &'static str)> = table
        .values()
        .filter(|c| matches(&c.topic_name, search))
        .map(|c| {
            let name = &c.topic_name;
            (c, kind(name, d.tables.is_broker_or_cluster_name(name)))
        })
        .filter(|(_, k)| include_system || *k == "normal")
        .collect();
    let total = found.len();
    let items: Vec<Value> = page_of(found, page, size)
        .into_iter()
        .map(|(c, k)| {
            json!({
                "topic": c.topic_name,
                "kind": k,
                "readQueueNums": c.read_queue_nums,
                "writeQueueNums": c.write_queue_nums,
                "perm": c.perm,
                "order": c.order,
            })
        })
        .collect();
    Ok(Json(json!({
        "total": total,
        "page": page,
        "pageSize": size,
        "items": items,
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewTopic {
    topic: String,
    read_queue_nums: Option<i32>,
    write_queue_nums: Option<i32>,
    perm: Option<i32>,
    order: Option<bool>,
}

pub async fn create(
    state: AppState,
    body: Result<Json<NewTopic>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let Json(t) = body?;
    let mut config = TopicConfig::new(
        t.topic.trim(),
        DEFAULT_QUEUE_NUMS,
        t.perm.unwrap_or(perm::READ | perm::WRITE),
    );
    config.read_queue_nums = t.read_queue_nums.unwrap_or(DEFAULT_QUEUE_NUMS);
    config.write_queue_nums = t.write_queue_nums.unwrap_or(DEFAULT_QUEUE_NUMS);
    config.order = t.order.unwrap_or(false);
    for (what, n) in [
        ("readQueueNums", config.read_queue_nums),
        ("writeQueueNums", config.write_queue_nums),
    ] {
        if !(1..=MAX_QUEUE_NUMS).contains(&n) {
            return Err(ApiError::bad_request(format!(
                "{what} must be from 1 to {MAX_QUEUE_NUMS}, got {n}"
            )));
        }
    }
    if config.perm & !(perm::READ | perm::WRITE | perm::INHERIT) != 0 {
        return Err(ApiError::bad_request(format!(
            "perm {} is not a permission: 2 (write), 4 (read) or 6 (read and write)",
            config.perm
        )));
    }
    let d = &state.0;
    for (name, addr) in masters(&d.admin).await? {
        d.admin
            .update_topic(&addr, &config)
            .await
            .map_err(ApiError::context(format!(
                "cannot create topic {} on {name} ({addr})",
                config.topic_name
            )))?;
    }
    d.tables.topics_changed().await;
    Ok(Json(json!({ "topic": config.topic_name })))
}

pub async fn delete(
    state: AppState,
    topic: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Value>> {
    let Path(topic) = topic?;
    let d = &state.0;
    d.tables.topics_changed().await;
    if !d.tables.topics(&d.admin).await?.contains_key(&topic) {
        return Err(ApiError::not_found(format!("topic {topic} does not exist")));
    }
    for (name, addr) in masters(&d.admin).await? {
        d.admin
            .delete_topic_in_broker(&addr, &topic)
            .await
            .map_err(ApiError::context(format!(
                "cannot delete topic {topic} on {name} ({addr})"
            )))?;
    }
    d.admin
        .delete_topic_in_namesrv(&topic)
        .await
        .map_err(ApiError::context(format!(
            "cannot delete topic {topic} from the name server"
        )))?;
    d.tables.topics_changed().await;
    Ok(Json(json!({ "deleted": topic })))
}

/// `topic`'s queues on every master of its route.
pub async fn stats(d: &Dashboard, topic: &str) -> ApiResult<TopicStatsTable> {
    let route = d.admin.topic_route(topic).await.map_err(topic_error(
        topic,
        format!("cannot read the route of {topic}"),
    ))?;
    let mut answers = Vec::new();
    for b in &route.broker_datas {
        let Some(addr) = b.master_addr() else {
            continue;
        };
        answers.push(
            d.admin
                .topic_stats(addr, topic)
                .await
                .map_err(ApiError::context(format!(
                    "cannot read the queues of {topic} on {} ({addr})",
                    b.broker_name
                )))?,
        );
    }
    Ok(combine_topic_stats(answers))
}

pub async fn status(
    state: AppState,
    topic: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Value>> {
    let Path(topic) = topic?;
    let d = &state.0;
    let stats = stats(d, &topic).await?;
    d.charts.topic_viewed(
        &topic,
        petrel_common::msg_id::now_ms() as i64,
        crate::charts::stored_total(&stats),
        stats.topic_put_tps,
    );
    let total: i64 = stats
        .offset_table
        .iter()
        .map(|q| q.offset.max_offset - q.offset.min_offset)
        .sum();
    let queues: Vec<Value> = stats
        .offset_table
        .iter()
        .map(|q| {
            json!({
                "brokerName": q.queue.broker_name,
                "queueId": q.queue.queue_id,
                "minOffset": q.offset.min_offset,
                "maxOffset": q.offset.max_offset,
                "lastUpdateTimestamp": q.offset.last_update_timestamp,
            })
        })
        .collect();
    Ok(Json(json!({
        "topic": topic,
        "queues": queues,
        "totalMessages": total,
    })))
}

pub async fn route(
    state: AppState,
    topic: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Value>> {
    let Path(topic) = topic?;
    let route = state
        .0
        .admin
        .topic_route(&topic)
        .await
        .map_err(topic_error(
            &topic,
            format!("cannot read the route of {topic}"),
        ))?;
    Ok(Json(serde_json::to_value(route).unwrap_or(Value::Null)))
}

#[derive(Deserialize)]
pub struct TestMessage {
    body: String,
    tags: Option<String>,
    keys: Option<String>,
}

pub async fn send(
    state: AppState,
    topic: Result<Path<String>, PathRejection>,
    body: Result<Json<TestMessage>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let Path(topic) = topic?;
    let Json(m) = body?;
    let d = &state.0;
    if !d.tables.topics(&d.admin).await?.contains_key(&topic) {
        d.tables.topics_changed().await;
        if !d.tables.topics(&d.admin).await?.contains_key(&topic) {
            return Err(ApiError::not_found(format!("topic {topic} does not exist")));
        }
    }
    let mut msg = Message::new(topic.clone(), m.body.into_bytes());
    if let Some(tags) = m.tags.filter(|t| !t.is_empty()) {
        msg = msg.with_tags(tags);
    }
    if let Some(keys) = m.keys.filter(|k| !k.is_empty()) {
        msg = msg.with_keys(keys);
    }
    let result = d
        .producer()
        .await?
        .send(msg)
        .await
        .map_err(ApiError::context(format!("cannot send to {topic}")))?;
    // The producer's first heartbeat went out before it knew any broker: announce it now so
    // that it is listed under its group at once rather than at the next heartbeat.
    if !d
        .producer_announced
        .swap(true, std::sync::atomic::Ordering::SeqCst)
    {
        d.admin.instance().send_heartbeat_to_all_brokers().await;
    }
    Ok(Json(json!({
        "msgId": result.msg_id,
        "offsetMsgId": result.offset_msg_id,
        "brokerName": result.queue.broker_name,
        "queueId": result.queue.queue_id,
        "queueOffset": result.queue_offset,
        "status": match result.status {
            SendStatus::SendOk => "SEND_OK",
            SendStatus::FlushDiskTimeout => "FLUSH_DISK_TIMEOUT",
            SendStatus::FlushSlaveTimeout => "FLUSH_SLAVE_TIMEOUT",
            SendStatus::SlaveNotAvailable => "SLAVE_NOT_AVAILABLE",
        },
    })))
}

#[cfg(test)]
mod tests {
    use super::kind;

    #[test]
    fn topics_are_told_apart_by_name() {
        assert_eq!(kind("Orders", false), "normal");
        assert_eq!(kind("%RETRY%G", false), "retry");
        assert_eq!(kind("%DLQ%G", false), "dlq");
        assert_eq!(kind("TBW102", false), "system");
        assert_eq!(kind("rmq_sys_broker_trace", false), "system");
        assert_eq!(kind("RMQ_SYS_TRANS_HALF_TOPIC", false), "system");
        assert_eq!(kind("broker-a", true), "system");
    }
}
