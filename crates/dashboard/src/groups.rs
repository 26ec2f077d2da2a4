//! `/api/groups…` and `/api/producers`: the cluster's subscription groups from the cached
//! tables (lag asked of the brokers only for the page shown), one group's queues and clients,
//! and what an operator does to a group: create, delete, reset its offsets, pause, resume,
//! rate-limit.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query};
use axum::Json;
use petrel_client::admin::{
    merge_consumer_connection, merge_producer_connection, ConsumerProgress,
};
use petrel_client::ClientError;
use petrel_common::protocol::{ConsumerConnection, ProducerConnection};
use petrel_common::topic::{group_attribute, SubscriptionGroupConfig};
use petrel_remoting::code::response;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{topic_error, ApiError, ApiResult};
use crate::tables::{masters, matches, page_of, paging, Params};
use crate::{AppState, Dashboard};

pub async fn list(
    state: AppState,
    params: Result<Query<Params>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(params) = params?;
    let (page, size) = paging(&params)?;
    let search = params.get("search").map(|s| s.trim()).unwrap_or("");
    let d = &state.0;
    let table = d.tables.groups(&d.admin).await?;
    let found: Vec<&SubscriptionGroupConfig> = table
        .values()
        .filter(|c| matches(&c.group_name, search))
        .collect();
    let total = found.len();
    let shown = page_of(found, page, size);
    let masters = masters(&d.admin).await?;
    let facts = futures::future::join_all(shown.iter().map(|c| async {
        let progress = progress(d, &masters, &c.group_name).await;
        let online = connection(d, &masters, &c.group_name)
            .await
            .ok()
            .flatten()
            .is_some_and(|c| !c.connection_set.is_empty());
        (progress.map(|p| p.diff), online)
    }))
    .await;
    let mut items = Vec::new();
    for (c, (lag, online)) in shown.iter().zip(facts) {
        items.push(json!({
            "group": c.group_name,
            "consumeEnable": c.consume_enable,
            "retryMaxTimes": c.retry_max_times,
            "lag": lag?,
            "online": online,
            "paused": paused(c),
            "rateLimit": rate_limit(c),
        }));
    }
    Ok(Json(json!({
        "total": total,
        "page": page,
        "pageSize": size,
        "items": items,
    })))
}

fn paused(c: &SubscriptionGroupConfig) -> bool {
    c.attributes
        .get(group_attribute::PAUSED)
        .is_some_and(|v| v == "true")
}

fn rate_limit(c: &SubscriptionGroupConfig) -> Option<f64> {
    c.attributes
        .get(group_attribute::RATE_LIMIT)
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| *v > 0.0)
}

/// The group's progress on every master; a broker that has no offsets of it adds nothing.
pub async fn progress(
    d: &Dashboard,
    masters: &[(String, String)],
    group: &str,
) -> ApiResult<ConsumerProgress> {
    let answers = futures::future::join_all(
        masters
            .iter()
            .map(|(_, addr)| d.admin.consume_stats(addr, group, None)),
    )
    .await;
    let mut stats = Vec::new();
    for ((name, addr), answer) in masters.iter().zip(answers) {
        match answer {
            Ok(s) => stats.push(s),
            Err(ClientError::Broker { .. }) => {}
            Err(e) => {
                return Err(ApiError::context(format!(
                    "cannot read the progress of {group} on {name} ({addr})"
                ))(e))
            }
        }
    }
    Ok(ConsumerProgress::combine(group, stats))
}

/// The group's online clients as all masters know them, `None` when none knows any.
async fn connection(
    d: &Dashboard,
    masters: &[(String, String)],
    group: &str,
) -> ApiResult<Option<ConsumerConnection>> {
    let answers = futures::future::join_all(
        masters
            .iter()
            .map(|(_, addr)| d.admin.consumer_connection(addr, group)),
    )
    .await;
    let mut merged = None;
    for ((name, addr), answer) in masters.iter().zip(answers) {
        match answer {
            Ok(c) => merge_consumer_connection(&mut merged, c),
            Err(ClientError::Broker { .. }) => {}
            Err(e) => {
                return Err(ApiError::context(format!(
                    "cannot read the connections of {group} on {name} ({addr})"
                ))(e))
            }
        }
    }
    Ok(merged)
}

/// The group's config, or a 404 when no master has it.
async fn known_group(d: &Dashboard, group: &str) -> ApiResult<SubscriptionGroupConfig> {
    if let Some(c) = d.tables.groups(&d.admin).await?.get(group) {
        return Ok(c.clone());
    }
    d.tables.groups_changed().await;
    d.tables
        .groups(&d.admin)
        .await?
        .get(group)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("consumer group {group} does not exist")))
}

pub async fn detail(
    state: AppState,
    group: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Value>> {
    let Path(group) = group?;
    let d = &state.0;
    let config = known_group(d, &group).await?;
    let masters = masters(&d.admin).await?;
    let (progress, conn) = tokio::join!(
        progress(d, &masters, &group),
        connection(d, &masters, &group)
    );
    let progress = progress?;
    let conn = conn?.unwrap_or_default();
    d.charts.viewed(&group, progress.diff);
    let queues: Vec<Value> = progress
        .queues
        .iter()
        .map(|r| {
            let (q, o) = (&r.stats.queue, &r.stats.offset);
            json!({
                "topic": q.topic,
                "brokerName": q.broker_name,
                "queueId": q.queue_id,
                "brokerOffset": o.broker_offset,
                "consumerOffset": o.consumer_offset,
                "lag": r.diff,
                "lastTimestamp": o.last_timestamp,
            })
        })
        .collect();
    let mut clients = conn.connection_set.clone();
    clients.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    let clients: Vec<Value> = clients
        .iter()
        .map(|c| {
            json!({
                "clientId": c.client_id,
                "addr": c.client_addr,
                "language": c.language,
                "version": c.version,
            })
        })
        .collect();
    let subscriptions: Vec<Value> = conn
        .subscription_table
        .values()
        .map(|s| {
            json!({
                "topic": s.topic,
                "expression": s.sub_string,
                "type": s.expression_type,
            })
        })
        .collect();
    Ok(Json(json!({
        "group": group,
        "paused": paused(&config),
        "rateLimit": rate_limit(&config),
        "config": config,
        "totalLag": progress.diff,
        "queues": queues,
        "clients": clients,
        "subscriptions": subscriptions,
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewGroup {
    group: String,
    consume_enable: Option<bool>,
    retry_max_times: Option<i32>,
    retry_queue_nums: Option<i32>,
}

pub async fn create(
    state: AppState,
    body: Result<Json<NewGroup>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let Json(g) = body?;
    let group = g.group.trim().to_owned();
    if g.retry_queue_nums.is_some_and(|n| n < 0) || g.retry_max_times.is_some_and(|n| n < 0) {
        return Err(ApiError::bad_request(
            "retryQueueNums and retryMaxTimes cannot be negative",
        ));
    }
    let d = &state.0;
    for (name, addr) in masters(&d.admin).await? {
        let mut config = match d.admin.subscription_group(&addr, &group).await {
            Ok(c) => c,
            Err(e) if e.code() == Some(response::SUBSCRIPTION_GROUP_NOT_EXIST) => {
                SubscriptionGroupConfig::new(group.as_str())
            }
            Err(e) => {
                return Err(ApiError::context(format!(
                    "cannot read group {group} on {name} ({addr})"
                ))(e))
            }
        };
        if let Some(v) = g.consume_enable {
            config.consume_enable = v;
        }
        if let Some(v) = g.retry_max_times {
            config.retry_max_times = v;
        }
        if let Some(v) = g.retry_queue_nums {
            config.retry_queue_nums = v;
        }
        d.admin
            .update_subscription_group(&addr, &config)
            .await
            .map_err(ApiError::context(format!(
                "cannot create group {group} on {name} ({addr})"
            )))?;
    }
    d.tables.groups_changed().await;
    Ok(Json(json!({ "group": group })))
}

pub async fn delete(
    state: AppState,
    group: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Value>> {
    let Path(group) = group?;
    let d = &state.0;
    known_group(d, &group).await?;
    for (name, addr) in masters(&d.admin).await? {
        d.admin
            .delete_subscription_group(&addr, &group)
            .await
            .map_err(ApiError::context(format!(
                "cannot delete group {group} on {name} ({addr})"
            )))?;
    }
    d.tables.groups_changed().await;
    Ok(Json(json!({ "deleted": group })))
}

#[derive(Deserialize)]
pub struct Reset {
    topic: String,
    time: Value,
}

/// A reset time: epoch ms, `now`, `end` (-1: the end of each queue) or a duration ago (`10m`).
fn reset_time(v: &Value, now_ms: i64) -> ApiResult<i64> {
    let bad = || {
        ApiError::bad_request(format!(
            "time must be epoch milliseconds, \"now\", \"end\" or a duration ago such as \"10m\", got {v}"
        ))
    };
    match v {
        Value::Number(n) => n.as_i64().filter(|t| *t >= 0).ok_or_else(bad),
        Value::String(s) => match s.trim() {
            "now" => Ok(now_ms),
            "end" => Ok(-1),
            t if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => {
                t.parse().map_err(|_| bad())
            }
            t => petrel_common::duration::parse_ms(t)
                .map(|ago| now_ms.saturating_sub(ago))
                .map_err(|_| bad()),
        },
        _ => Err(bad()),
    }
}

pub async fn reset(
    state: AppState,
    group: Result<Path<String>, PathRejection>,
    body: Result<Json<Reset>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let Path(group) = group?;
    let Json(r) = body?;
    let time = reset_time(&r.time, petrel_common::msg_id::now_ms() as i64)?;
    let d = &state.0;
    known_group(d, &group).await?;
    let moved = d
        .admin
        .reset_offset_by_time(&r.topic, &group, time, true)
        .await
        .map_err(topic_error(
            &r.topic,
            format!("cannot reset the offsets of {group} on {}", r.topic),
        ))?;
    let mut queues: Vec<Value> = moved
        .iter()
        .map(|(q, offset)| {
            json!({
                "brokerName": q.broker_name,
                "queueId": q.queue_id,
                "offset": offset,
            })
        })
        .collect();
    queues.sort_by_key(|q| {
        (
            q["brokerName"].as_str().unwrap_or_default().to_owned(),
            q["queueId"].as_i64(),
        )
    });
    Ok(Json(json!({ "queues": queues })))
}

pub async fn pause(
    state: AppState,
    group: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Value>> {
    let Path(group) = group?;
    let d = &state.0;
    known_group(d, &group).await?;
    let n = d
        .admin
        .pause_group(&group, &[])
        .await
        .map_err(ApiError::context(format!("cannot pause {group}")))?;
    d.tables.groups_changed().await;
    Ok(Json(json!({ "brokers": n })))
}

pub async fn resume(
    state: AppState,
    group: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Value>> {
    let Path(group) = group?;
    let d = &state.0;
    known_group(d, &group).await?;
    let n = d
        .admin
        .resume_group(&group)
        .await
        .map_err(ApiError::context(format!("cannot resume {group}")))?;
    d.tables.groups_changed().await;
    Ok(Json(json!({ "brokers": n })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimit {
    per_second: f64,
}

pub async fn rate_limit_set(
    state: AppState,
    group: Result<Path<String>, PathRejection>,
    body: Result<Json<RateLimit>, JsonRejection>,
) -> ApiResult<Json<Value>> {
    let Path(group) = group?;
    let Json(r) = body?;
    if !r.per_second.is_finite() || r.per_second < 0.0 {
        return Err(ApiError::bad_request(format!(
            "perSecond must be 0 (no limit) or more, got {}",
            r.per_second
        )));
    }
    let d = &state.0;
    known_group(d, &group).await?;
    let n = d
        .admin
        .set_consume_rate_limit(&group, r.per_second)
        .await
        .map_err(ApiError::context(format!("cannot rate-limit {group}")))?;
    d.tables.groups_changed().await;
    Ok(Json(json!({ "brokers": n })))
}

pub async fn producers(
    state: AppState,
    params: Result<Query<Params>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(params) = params?;
    let group = crate::tables::required(&params, "group")?.to_owned();
    let d = &state.0;
    let masters = masters(&d.admin).await?;
    let answers = futures::future::join_all(
        masters
            .iter()
            .map(|(_, addr)| d.admin.producer_connection(addr, &group)),
    )
    .await;
    let mut merged = ProducerConnection::default();
    for ((name, addr), answer) in masters.iter().zip(answers) {
        match answer {
            Ok(c) => merge_producer_connection(&mut merged, c),
            Err(ClientError::Broker { .. }) => {}
            Err(e) => {
                return Err(ApiError::context(format!(
                    "cannot read the producers of {group} on {name} ({addr})"
                ))(e))
            }
        }
    }
    merged
        .connection_set
        .sort_by(|a, b| a.client_id.cmp(&b.client_id));
    let connections: Vec<Value> = merged
        .connection_set
        .iter()
        .map(|c| {
            json!({
                "clientId": c.client_id,
                "addr": c.client_addr,
                "language": c.language,
                "version": c.version,
            })
        })
        .collect();
    Ok(Json(json!({ "group": group, "connections": connections })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_times_as_people_write_them() {
        let now = 1_000_000;
        assert_eq!(reset_time(&json!(1234), now).unwrap(), 1234);
        assert_eq!(reset_time(&json!("1234"), now).unwrap(), 1234);
        assert_eq!(reset_time(&json!("now"), now).unwrap(), now);
        assert_eq!(reset_time(&json!("end"), now).unwrap(), -1);
        assert_eq!(reset_time(&json!("10m"), now).unwrap(), now - 600_000);
        assert_eq!(reset_time(&json!("soon"), now).unwrap_err().status, 400);
        assert_eq!(reset_time(&json!(-5), now).unwrap_err().status, 400);
        assert_eq!(reset_time(&json!(true), now).unwrap_err().status, 400);
    }
}
