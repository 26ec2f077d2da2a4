//! The charts' history, in memory: every [`SAMPLE_INTERVAL_MS`] the sampler reads each master's
//! runtime figures (put and get totals, whose differences are the TPS), the lag of the groups
//! and the stored totals of the topics someone viewed in the last [`WATCH_MS`], and keeps
//! [`HISTORY_MS`] of points. It stops when the server's shutdown token fires.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use axum::Json;
use petrel_client::admin::{cluster_brokers, ClusterListRow};
use petrel_remoting::CancellationToken;
use serde_json::{json, Value};

use crate::cluster::{parse_f64, parse_i64};
use crate::error::ApiResult;
use crate::tables::{required, Params};
use crate::{AppState, Dashboard};

pub const SAMPLE_INTERVAL_MS: u64 = 10_000;
/// How much history each series keeps.
pub const HISTORY_MS: u64 = 3_600_000;
/// A group's lag and a topic's TPS are sampled for this long after they were last viewed.
pub const WATCH_MS: u64 = 3_600_000;
const MAX_POINTS: usize = (HISTORY_MS / SAMPLE_INTERVAL_MS) as usize;

#[derive(Default)]
struct BrokerSeries {
    /// `(epoch ms, put tps, get tps)`, oldest first.
    points: VecDeque<(i64, f64, f64)>,
    /// The last totals read and when, for the next difference.
    last: Option<(i64, i64, i64)>,
}

#[derive(Default)]
struct LagSeries {
    points: VecDeque<(i64, i64)>,
    viewed_at: Option<Instant>,
}

#[derive(Default)]
struct TopicSeries {
    /// `(epoch ms, messages stored per second)`, oldest first.
    points: VecDeque<(i64, f64)>,
    /// The last total of the queues' max offsets and when.
    last: Option<(i64, i64)>,
    viewed_at: Option<Instant>,
}

#[derive(Default)]
pub struct Charts {
    tps: parking_lot::Mutex<HashMap<String, BrokerSeries>>,
    lag: parking_lot::Mutex<HashMap<String, LagSeries>>,
    topics: parking_lot::Mutex<HashMap<String, TopicSeries>>,
}

fn push<T>(points: &mut VecDeque<T>, p: T) {
    points.push_back(p);
    while points.len() > MAX_POINTS {
        points.pop_front();
    }
}

impl Charts {
    /// The newest sampled `(put, get)` TPS of `broker_name`'s master.
    pub fn latest_tps(&self, broker_name: &str) -> Option<(f64, f64)> {
        self.tps
            .lock()
            .get(broker_name)
            .and_then(|s| s.points.back())
            .map(|&(_, p, g)| (p, g))
    }

    /// Someone looked at `group`, whose lag is `lag` now: sample it from now on.
    pub fn viewed(&self, group: &str, lag: i64) {
        let mut all = self.lag.lock();
        let s = all.entry(group.to_owned()).or_default();
        let first = s.viewed_at.is_none() && s.points.is_empty();
        s.viewed_at = Some(Instant::now());
        if first {
            push(&mut s.points, (now_ms(), lag));
        }
    }

    /// One broker's totals at `at`: a TPS point from the difference with the last ones, or,
    /// for the first, the broker's own average.
    fn record_tps(&self, broker_name: &str, at: i64, row: &ClusterListRow) {
        let put_total = parse_i64(&row.msg_put_total_today_now);
        let get_total = parse_i64(&row.msg_get_total_today_now);
        let mut all = self.tps.lock();
        let s = all.entry(broker_name.to_owned()).or_default();
        let point = match s.last {
            Some((t, p, g)) if at > t && put_total >= p && get_total >= g => {
                let secs = (at - t) as f64 / 1000.0;
                (
                    at,
                    (put_total - p) as f64 / secs,
                    (get_total - g) as f64 / secs,
                )
            }
            _ => (at, parse_f64(&row.put_tps), parse_f64(&row.get_tps)),
        };
        s.last = Some((at, put_total, get_total));
        push(&mut s.points, point);
    }

    /// The groups viewed lately; the others stop being sampled (their history stays).
    fn watched_groups(&self) -> Vec<String> {
        let watch = Duration::from_millis(WATCH_MS);
        self.lag
            .lock()
            .iter()
            .filter(|(_, s)| s.viewed_at.is_some_and(|t| t.elapsed() < watch))
            .map(|(g, _)| g.clone())
            .collect()
    }

    /// Someone looked at `topic`: sample its TPS from now on. `stored` is the sum of its queues'
    /// max offsets now, `put_tps` what its brokers say of its rate.
    pub fn topic_viewed(&self, topic: &str, at: i64, stored: i64, put_tps: f64) {
        let mut all = self.topics.lock();
        let s = all.entry(topic.to_owned()).or_default();
        let first = s.viewed_at.is_none() && s.points.is_empty();
        s.viewed_at = Some(Instant::now());
        if first {
            push(&mut s.points, (at, put_tps));
            s.last = Some((at, stored));
        }
    }

    fn watched_topics(&self) -> Vec<String> {
        let watch = Duration::from_millis(WATCH_MS);
        self.topics
            .lock()
            .iter()
            .filter(|(_, s)| s.viewed_at.is_some_and(|t| t.elapsed() < watch))
            .map(|(t, _)| t.clone())
            .collect()
    }

    /// `topic`'s stored total at `at`: a point from the difference with the last one.
    fn record_topic(&self, topic: &str, at: i64, stored: i64) {
        if let Some(s) = self.topics.lock().get_mut(topic) {
            if let Some((t, n)) = s.last.filter(|&(t, n)| at > t && stored >= n) {
                let tps = (stored - n) as f64 / ((at - t) as f64 / 1000.0);
                push(&mut s.points, (at, tps));
            }
            s.last = Some((at, stored));
        }
    }

    fn record_lag(&self, group: &str, at: i64, lag: i64) {
        if let Some(s) = self.lag.lock().get_mut(group) {
            push(&mut s.points, (at, lag));
        }
    }
}

fn now_ms() -> i64 {
    petrel_common::msg_id::now_ms() as i64
}

/// Samples until `shutdown` fires, then shuts the admin client down. The first sample is taken
/// at once, and again every second until one finds a broker (the dashboard may start before
/// its broker has registered).
pub async fn sample(d: Arc<Dashboard>, shutdown: CancellationToken) {
    loop {
        let sampled = tokio::select! {
            _ = shutdown.cancelled() => break,
            sampled = sample_once(&d) => sampled,
        };
        let wait = if sampled {
            Duration::from_millis(SAMPLE_INTERVAL_MS)
        } else {
            RETRY_EMPTY_SAMPLE
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
    }
    d.admin.shutdown();
}

/// How soon a sample that found no broker is tried again.
const RETRY_EMPTY_SAMPLE: Duration = Duration::from_secs(1);

/// One sample of every master and watched group; whether any broker answered.
async fn sample_once(d: &Dashboard) -> bool {
    let info = match d.admin.cluster_info().await {
        Ok(info) => info,
        Err(e) => {
            tracing::debug!("dashboard sampler: cannot read the cluster: {e}");
            return false;
        }
    };
    let masters: Vec<_> = cluster_brokers(&info)
        .into_iter()
        .filter(|b| b.broker_id == 0)
        .collect();
    let answers =
        futures::future::join_all(masters.iter().map(|b| d.admin.broker_runtime_info(&b.addr)))
            .await;
    let at = now_ms();
    let mut sampled = false;
    for (b, answer) in masters.iter().zip(answers) {
        match answer {
            Ok(kv) => {
                sampled = true;
                d.charts
                    .record_tps(&b.broker_name, at, &ClusterListRow::new(b, &kv.table));
            }
            Err(e) => tracing::debug!(broker = %b.addr, "dashboard sampler: {e}"),
        }
    }
    for topic in d.charts.watched_topics() {
        if let Ok(stats) = crate::topics::stats(d, &topic).await {
            d.charts
                .record_topic(&topic, now_ms(), stored_total(&stats));
        }
    }
    let groups = d.charts.watched_groups();
    let addrs: Vec<(String, String)> = masters
        .iter()
        .map(|b| (b.broker_name.clone(), b.addr.clone()))
        .collect();
    for group in groups {
        if let Ok(p) = crate::groups::progress(d, &addrs, &group).await {
            d.charts.record_lag(&group, now_ms(), p.diff);
        }
    }
    sampled
}

/// The sum of a topic's queues' max offsets: every message it ever stored.
pub fn stored_total(stats: &petrel_common::protocol::TopicStatsTable) -> i64 {
    stats.offset_table.iter().map(|q| q.offset.max_offset).sum()
}

pub async fn topic_tps(
    state: AppState,
    params: Result<Query<Params>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(params) = params?;
    let topic = required(&params, "topic")?;
    let d = &state.0;
    if !d.charts.topics.lock().contains_key(topic) {
        let stats = crate::topics::stats(d, topic).await?;
        d.charts
            .topic_viewed(topic, now_ms(), stored_total(&stats), stats.topic_put_tps);
    } else if let Some(s) = d.charts.topics.lock().get_mut(topic) {
        s.viewed_at = Some(Instant::now());
    }
    let points: Vec<Value> = d
        .charts
        .topics
        .lock()
        .get(topic)
        .map(|s| s.points.iter().map(|&(t, tps)| json!([t, tps])).collect())
        .unwrap_or_default();
    Ok(Json(
        json!({ "intervalMs": SAMPLE_INTERVAL_MS, "points": points }),
    ))
}

pub async fn tps(state: AppState) -> Json<Value> {
    let all = state.0.charts.tps.lock();
    let mut names: Vec<&String> = all.keys().collect();
    names.sort();
    let series: Vec<Value> = names
        .into_iter()
        .map(|name| {
            let points: Vec<Value> = all[name]
                .points
                .iter()
                .map(|&(t, p, g)| json!([t, p, g]))
                .collect();
            json!({ "brokerName": name, "points": points })
        })
        .collect();
    Json(json!({ "intervalMs": SAMPLE_INTERVAL_MS, "series": series }))
}

pub async fn lag(
    state: AppState,
    params: Result<Query<Params>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let Query(params) = params?;
    let group = required(&params, "group")?;
    let d = &state.0;
    let known = d.charts.lag.lock().contains_key(group);
    if !known {
        // The first look: one point now, then the sampler's.
        let masters = crate::tables::masters(&d.admin).await?;
        let p = crate::groups::progress(d, &masters, group).await?;
        d.charts.viewed(group, p.diff);
    } else if let Some(s) = d.charts.lag.lock().get_mut(group) {
        s.viewed_at = Some(Instant::now());
    }
    let points: Vec<Value> = d
        .charts
        .lag
        .lock()
        .get(group)
        .map(|s| s.points.iter().map(|&(t, l)| json!([t, l])).collect())
        .unwrap_or_default();
    Ok(Json(
        json!({ "intervalMs": SAMPLE_INTERVAL_MS, "points": points }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use petrel_client::admin::ClusterBroker;

    fn row(put: i64, get: i64) -> ClusterListRow {
        let b = ClusterBroker {
            cluster: "c".into(),
            broker_name: "b".into(),
            broker_id: 0,
            addr: "127.0.0.1:1".into(),
        };
        let table = [
            ("msgPutTotalTodayNow", put.to_string()),
            ("msgGetTotalTodayNow", get.to_string()),
            ("putTps", "1.50".to_owned()),
            ("getTransferedTps", "0.50".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        ClusterListRow::new(&b, &table)
    }

    #[test]
    fn tps_is_the_difference_of_totals_over_the_interval() {
        let c = Charts::default();
        c.record_tps("b", 10_000, &row(100, 10));
        assert_eq!(c.latest_tps("b"), Some((1.5, 0.5)));
        c.record_tps("b", 20_000, &row(600, 110));
        assert_eq!(c.latest_tps("b"), Some((50.0, 10.0)));
    }

    #[test]
    fn a_topic_rate_is_the_difference_of_its_stored_totals() {
        let c = Charts::default();
        c.topic_viewed("T", 10_000, 100, 2.5);
        c.record_topic("T", 20_000, 300);
        let points: Vec<_> = c.topics.lock()["T"].points.iter().copied().collect();
        assert_eq!(points, vec![(10_000, 2.5), (20_000, 20.0)]);
    }

    #[test]
    fn history_keeps_an_hour() {
        let c = Charts::default();
        for i in 0..(MAX_POINTS as i64 + 10) {
            c.record_tps("b", i * 10_000, &row(i, i));
        }
        assert_eq!(c.tps.lock()["b"].points.len(), MAX_POINTS);
    }
}
