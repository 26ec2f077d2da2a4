//! The cluster's topic and group tables as the dashboard lists them: one GET_ALL_TOPIC_CONFIG
//! and one GET_ALL_SUBSCRIPTIONGROUP_CONFIG per master, kept for [`TABLE_CACHE_MS`] so that
//! paging and searching 10,000 topics costs no request per page; and the paging and query
//! parameters every list takes.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use petrel_client::admin::Admin;
use petrel_common::topic::{SubscriptionGroupConfig, TopicConfig};

use crate::error::{ApiError, ApiResult};

/// How long a fetched table answers before it is fetched again.
pub const TABLE_CACHE_MS: u64 = 2_000;
pub const DEFAULT_PAGE_SIZE: usize = 50;
pub const MAX_PAGE_SIZE: usize = 500;

/// A table fetched from every master, merged by name (the first master's config wins).
struct Cached<T> {
    fetched_at: Instant,
    table: Arc<BTreeMap<String, T>>,
}

/// The async mutexes make the fetch single-flight: requests that arrive while the table is
/// fetched wait for that fetch rather than each asking every master again.
#[derive(Default)]
pub struct Tables {
    topics: tokio::sync::Mutex<Option<Cached<TopicConfig>>>,
    groups: tokio::sync::Mutex<Option<Cached<SubscriptionGroupConfig>>>,
    /// Broker and cluster names: RocketMQ keeps a topic for each, which are system topics.
    names: parking_lot::Mutex<Vec<String>>,
}

impl Tables {
    /// Every topic of the cluster's masters.
    pub async fn topics(&self, admin: &Admin) -> ApiResult<Arc<BTreeMap<String, TopicConfig>>> {
        let mut slot = self.topics.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| fresh(c.fetched_at)) {
            return Ok(c.table.clone());
        }
        let info = admin.cluster_info().await.map_err(ApiError::context(
            "cannot read the cluster from the name server",
        ))?;
        let mut names: Vec<String> = info.cluster_addr_table.keys().cloned().collect();
        names.extend(info.broker_addr_table.keys().cloned());
        *self.names.lock() = names;
        let masters: Vec<(String, String)> = info
            .broker_addr_table
            .iter()
            .filter_map(|(n, b)| Some((n.clone(), b.master_addr()?.to_owned())))
            .collect();
        let answers = futures::future::join_all(
            masters
                .iter()
                .map(|(_, addr)| admin.all_topic_configs(addr)),
        )
        .await;
        let mut table = BTreeMap::new();
        for ((name, addr), answer) in masters.iter().zip(answers) {
            let configs = answer.map_err(ApiError::context(format!(
                "cannot read the topics of {name} ({addr})"
            )))?;
            for (topic, config) in configs {
                table.entry(topic).or_insert(config);
            }
        }
        let table = Arc::new(table);
        *slot = Some(Cached {
            fetched_at: Instant::now(),
            table: table.clone(),
        });
        Ok(table)
    }

    /// Every subscription group of the cluster's masters.
    pub async fn groups(
        &self,
        admin: &Admin,
    ) -> ApiResult<Arc<BTreeMap<String, SubscriptionGroupConfig>>> {
        let mut slot = self.groups.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| fresh(c.fetched_at)) {
            return Ok(c.table.clone());
        }
        let masters = masters(admin).await?;
        let answers = futures::future::join_all(
            masters
                .iter()
                .map(|(_, addr)| admin.all_subscription_groups(addr)),
        )
        .await;
        let mut table = BTreeMap::new();
        for ((name, addr), answer) in masters.iter().zip(answers) {
            let configs = answer.map_err(ApiError::context(format!(
                "cannot read the subscription groups of {name} ({addr})"
            )))?;
            for (group, config) in configs {
                table.entry(group).or_insert(config);
            }
        }
        let table = Arc::new(table);
        *slot = Some(Cached {
            fetched_at: Instant::now(),
            table: table.clone(),
        });
        Ok(table)
    }

    /// Forget the cached topics (after a change made through the dashboard).
    pub async fn topics_changed(&self) {
        *self.topics.lock().await = None;
    }

    pub async fn groups_changed(&self) {
        *self.groups.lock().await = None;
    }

    /// Whether `topic` names a broker or cluster (RocketMQ's per-broker system topics).
    pub fn is_broker_or_cluster_name(&self, topic: &str) -> bool {
        self.names.lock().iter().any(|n| n == topic)
    }
}

fn fresh(at: Instant) -> bool {
    at.elapsed() < Duration::from_millis(TABLE_CACHE_MS)
}

/// `(broker name, master address)` of every master; none is an error (nothing to ask).
pub async fn masters(admin: &Admin) -> ApiResult<Vec<(String, String)>> {
    let masters = admin.master_brokers().await.map_err(ApiError::context(
        "cannot read the cluster from the name server",
    ))?;
    if masters.is_empty() {
        return Err(ApiError::bad_gateway(
            "the name server knows no broker with a master",
        ));
    }
    Ok(masters)
}

/// Query parameters as text, by name.
pub type Params = HashMap<String, String>;

/// The page and page size of `params` (`page` from 1, `pageSize` up to [`MAX_PAGE_SIZE`]).
pub fn paging(params: &Params) -> ApiResult<(usize, usize)> {
    let page = number(params, "page")?.unwrap_or(1);
    let size = number(params, "pageSize")?.unwrap_or(DEFAULT_PAGE_SIZE as i64);
    if page < 1 {
        return Err(ApiError::bad_request(format!(
            "page must be 1 or more, got {page}"
        )));
    }
    if size < 1 || size > MAX_PAGE_SIZE as i64 {
        return Err(ApiError::bad_request(format!(
            "pageSize must be from 1 to {MAX_PAGE_SIZE}, got {size}"
        )));
    }
    Ok((page as usize, size as usize))
}

/// The items of page `page` (from 1) of `size` items.
pub fn page_of<T>(items: Vec<T>, page: usize, size: usize) -> Vec<T> {
    items
        .into_iter()
        .skip((page - 1).saturating_mul(size))
        .take(size)
        .collect()
}

/// An integer parameter; absent or empty is `None`, anything else not a number is a 400.
pub fn number(params: &Params, name: &str) -> ApiResult<Option<i64>> {
    match params.get(name).map(|s| s.trim()) {
        None | Some("") => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|_| {
            ApiError::bad_request(format!("{name} must be a whole number, got `{text}`"))
        }),
    }
}

/// A parameter that must be there and not empty.
pub fn required<'a>(params: &'a Params, name: &str) -> ApiResult<&'a str> {
    match params.get(name).map(|s| s.trim()) {
        None | Some("") => Err(ApiError::bad_request(format!(
            "the query parameter {name} is required"
        ))),
        Some(v) => Ok(v),
    }
}

/// Whether `name` holds `search` ignoring case (an empty search matches all).
pub fn matches(name: &str, search: &str) -> bool {
    search.is_empty() || name.to_lowercase().contains(&search.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn paging_defaults_and_bounds() {
        assert_eq!(paging(&params(&[])).unwrap(), (1, 50));
        assert_eq!(
            paging(&params(&[("page", "3"), ("pageSize", "500")])).unwrap(),
            (3, 500)
        );
        assert_eq!(paging(&params(&[("page", "0")])).unwrap_err().status, 400);
        assert_eq!(
            paging(&params(&[("pageSize", "501")])).unwrap_err().status,
            400
        );
        assert_eq!(paging(&params(&[("page", "x")])).unwrap_err().status, 400);
    }

    #[test]
    fn a_page_is_a_slice() {
        let items: Vec<i32> = (1..=7).collect();
        assert_eq!(page_of(items.clone(), 2, 3), vec![4, 5, 6]);
        assert_eq!(page_of(items.clone(), 3, 3), vec![7]);
        assert!(page_of(items, 4, 3).is_empty());
    }
}
