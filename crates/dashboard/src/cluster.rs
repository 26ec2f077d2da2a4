//! `/api/cluster` and `/api/brokers/{addr}/config`: what the name server lists and what each
//! broker says of itself. A broker that does not answer is listed with its error.

use axum::extract::rejection::PathRejection;
use axum::extract::Path;
use axum::Json;
use petrel_client::admin::{cluster_brokers, ClusterListRow};
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult};
use crate::AppState;

pub async fn cluster(state: AppState) -> ApiResult<Json<Value>> {
    let d = &state.0;
    let info = d.admin.cluster_info().await.map_err(ApiError::context(
        "cannot read the cluster from the name server",
    ))?;
    let brokers = cluster_brokers(&info);
    let answers =
        futures::future::join_all(brokers.iter().map(|b| d.admin.broker_runtime_info(&b.addr)))
            .await;
    let mut rows = Vec::new();
    for (b, answer) in brokers.iter().zip(answers) {
        let role = if b.broker_id == 0 { "MASTER" } else { "SLAVE" };
        let (table, error) = match answer {
            Ok(kv) => (kv.table, Value::Null),
            Err(e) => (Default::default(), Value::from(ApiError::from(e).message)),
        };
        let row = ClusterListRow::new(b, &table);
        let sampled = d.charts.latest_tps(&b.broker_name);
        let (put_tps, get_tps) = match (sampled, b.broker_id) {
            (Some(tps), 0) => tps,
            _ => (parse_f64(&row.put_tps), parse_f64(&row.get_tps)),
        };
        rows.push(json!({
            "cluster": row.cluster,
            "brokerName": row.broker_name,
            "brokerId": row.broker_id,
            "role": role,
            "addr": row.addr,
            "version": row.version,
            "putTps": put_tps,
            "getTps": get_tps,
            "msgPutTotalToday": parse_i64(&row.msg_put_total_today_now),
            "msgGetTotalToday": parse_i64(&row.msg_get_total_today_now),
            "diskUsedRatio": table.get("commitLogDiskRatio").and_then(|v| v.trim().parse::<f64>().ok()),
            "error": error,
        }));
    }
    Ok(Json(json!({
        "namesrv": d.admin.instance().config().namesrv_addr,
        "brokers": rows,
    })))
}

pub async fn broker_config(
    state: AppState,
    addr: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Value>> {
    let Path(addr) = addr?;
    let d = &state.0;
    let info = d.admin.cluster_info().await.map_err(ApiError::context(
        "cannot read the cluster from the name server",
    ))?;
    if !cluster_brokers(&info).iter().any(|b| b.addr == addr) {
        return Err(ApiError::not_found(format!(
            "the name server knows no broker at {addr}"
        )));
    }
    let config = d
        .admin
        .broker_config(&addr)
        .await
        .map_err(ApiError::context(format!(
            "cannot read the config of {addr}"
        )))?;
    Ok(Json(json!({ "addr": addr, "config": config })))
}

/// The first number of a runtime figure (`12.50`, or Java's `12.5 11.0 10.2`), 0 when none.
pub fn parse_f64(text: &str) -> f64 {
    text.split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

pub fn parse_i64(text: &str) -> i64 {
    text.trim().parse().unwrap_or(0)
}
