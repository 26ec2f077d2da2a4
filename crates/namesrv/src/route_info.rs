//! The route registry: which clusters hold which broker groups, the addresses of each group's
//! members, which groups serve which topic with how many queues, and which brokers are alive.
//!
//! It owns every routing table of the name server behind one lock and knows nothing of sockets:
//! callers pass the clock (`now_ms`) and the id of the connection a broker registered on, so the
//! tables can be driven deterministically in tests. The lock is never held across an `.await`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use parking_lot::RwLock;
use petrel_common::protocol::{BrokerData, ClusterInfo, QueueData, TopicList, TopicRouteData};
use petrel_common::topic::{perm, DataVersion, TopicConfig};

/// A broker silent for longer than this is dropped (RocketMQ's DEFAULT_BROKER_CHANNEL_EXPIRED_TIME).
pub const BROKER_CHANNEL_EXPIRED_MS: u64 = 120_000;
/// The brokerId of a group's master.
pub const MASTER_ID: i64 = 0;

/// One REGISTER_BROKER request, already decoded.
#[derive(Debug, Clone, Default)]
pub struct BrokerRegistration {
    pub cluster_name: String,
    pub broker_name: String,
    pub broker_addr: String,
    pub ha_server_addr: String,
    pub broker_id: i64,
    pub enable_acting_master: bool,
    /// The broker's own expiry, when it sends one (`heartbeatTimeoutMillis`).
    pub heartbeat_timeout_ms: Option<u64>,
    /// The connection the registration arrived on; closing it drops the broker.
    pub connection_id: Option<u64>,
    pub data_version: DataVersion,
    pub topic_config_table: BTreeMap<String, TopicConfig>,
}

/// What a registering broker learns back: its master's address and HA address (slaves only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegisterBrokerResult {
    pub ha_server_addr: Option<String>,
    pub master_addr: Option<String>,
}

#[derive(Debug, Clone)]
struct BrokerLiveInfo {
    cluster_name: String,
    broker_name: String,
    last_update_ms: u64,
    timeout_ms: u64,
    connection_id: Option<u64>,
    data_version: DataVersion,
    ha_server_addr: String,
}

#[derive(Debug, Default)]
struct Tables {
    /// cluster name → broker names.
    clusters: BTreeMap<String, BTreeSet<String>>,
    /// broker name → the group's addresses by brokerId.
    brokers: BTreeMap<String, BrokerData>,
    /// topic → broker name → queues that group serves for it.
    topics: BTreeMap<String, BTreeMap<String, QueueData>>,
    /// broker address → liveness.
    live: HashMap<String, BrokerLiveInfo>,
}

/// The name server's routing tables.
#[derive(Debug)]
pub struct RouteInfoManager {
    broker_expired_ms: u64,
    tables: RwLock<Tables>,
}

impl Default for RouteInfoManager {
    fn default() -> Self {
        RouteInfoManager::new(BROKER_CHANNEL_EXPIRED_MS)
    }
}

impl RouteInfoManager {
    /// `broker_expired_ms` applies to brokers that do not send their own `heartbeatTimeoutMillis`.
    pub fn new(broker_expired_ms: u64) -> Self {
        RouteInfoManager {
            broker_expired_ms,
            tables: RwLock::new(Tables::default()),
        }
    }

    /// Records a broker's registration (or its periodic re-registration).
    ///
    /// Topic configs are taken from the group's master, or from its lowest-id slave while no master
    /// is registered. They are merged into the routes, as RocketMQ's name server does: a broker
    /// sends only the topics that changed (RocketMQ's `registerIncrementBrokerData` after
    /// UPDATE_AND_CREATE_TOPIC, Petrel's after any topic change), so a topic missing from a
    /// registration is not a deleted one; deletion is DELETE_TOPIC_IN_NAMESRV, which mqadmin and
    /// `petrel admin` send after deleting in the brokers. The configs are merged even when the
    /// data version did not change: two increments sent close together may carry the same one.
    pub fn register_broker(&self, reg: BrokerRegistration, now_ms: u64) -> RegisterBrokerResult {
        let mut guard = self.tables.write();
        let t = &mut *guard;

        // An address that now registers under another broker name leaves its old group first.
        let moved = t
            .live
            .get(&reg.broker_addr)
            .filter(|old| old.broker_name != reg.broker_name)
            .map(|old| old.broker_name.clone());
        if let Some(old_name) = moved {
            t.live.remove(&reg.broker_addr);
            remove_addr(t, &old_name, &reg.broker_addr);
        }

        t.clusters
            .entry(reg.cluster_name.clone())
            .or_default()
            .insert(reg.broker_name.clone());
        let group = t
            .brokers
            .entry(reg.broker_name.clone())
            .or_insert_with(|| BrokerData {
                cluster: reg.cluster_name.clone(),
                broker_name: reg.broker_name.clone(),
                broker_addrs: BTreeMap::new(),
                enable_acting_master: reg.enable_acting_master,
            });
        group.enable_acting_master = reg.enable_acting_master;
        // One address holds one id: a slave promoted to master drops its old slave entry.
        group
            .broker_addrs
            .retain(|id, addr| *id == reg.broker_id || *addr != reg.broker_addr);
        let register_first = group
            .broker_addrs
            .insert(reg.broker_id, reg.broker_addr.clone())
            .is_none();
        let is_master = reg.broker_id == MASTER_ID;
        let is_prime_slave = !is_master && group.broker_addrs.keys().next() == Some(&reg.broker_id);
        let master_addr = group.master_addr().map(str::to_owned);

        if is_master || is_prime_slave {
            let clear_write = is_prime_slave && reg.enable_acting_master;
            for (topic, config) in &reg.topic_config_table {
                let mut queue_perm = config.perm;
                if clear_write {
                    queue_perm &= !perm::WRITE;
                }
                t.topics.entry(topic.clone()).or_default().insert(
                    reg.broker_name.clone(),
                    QueueData {
                        broker_name: reg.broker_name.clone(),
                        read_queue_nums: config.read_queue_nums,
                        write_queue_nums: config.write_queue_nums,
                        perm: queue_perm,
                        topic_sys_flag: config.topic_sys_flag,
                    },
                );
            }
        }

        if register_first {
            tracing::info!(
                cluster = %reg.cluster_name,
                broker = %reg.broker_name,
                id = reg.broker_id,
                addr = %reg.broker_addr,
                "broker registered"
            );
        }
        t.live.insert(
            reg.broker_addr.clone(),
            BrokerLiveInfo {
                cluster_name: reg.cluster_name,
                broker_name: reg.broker_name,
                last_update_ms: now_ms,
                timeout_ms: reg.heartbeat_timeout_ms.unwrap_or(self.broker_expired_ms),
                connection_id: reg.connection_id,
                data_version: reg.data_version,
                ha_server_addr: reg.ha_server_addr,
            },
        );

        let mut result = RegisterBrokerResult::default();
        if !is_master {
            if let Some(master) = master_addr {
                if let Some(live) = t.live.get(&master) {
                    result.ha_server_addr = Some(live.ha_server_addr.clone());
                    result.master_addr = Some(master);
                }
            }
        }
        result
    }

    /// Removes a broker that is shutting down. When it was the last member of its group, the
    /// group and its queues leave every topic route.
    pub fn unregister_broker(&self, cluster_name: &str, broker_name: &str, broker_addr: &str) {
        let mut guard = self.tables.write();
        let t = &mut *guard;
        let name = match t.live.remove(broker_addr) {
            Some(live) => live.broker_name,
            None => broker_name.to_owned(),
        };
        remove_addr(t, &name, broker_addr);
        tracing::info!(cluster = %cluster_name, broker = %name, addr = %broker_addr, "broker unregistered");
    }

    /// Drops every broker not heard from within its timeout; returns their addresses.
    pub fn scan_not_active(&self, now_ms: u64) -> Vec<String> {
        self.remove_live_where(|live| live.last_update_ms.saturating_add(live.timeout_ms) < now_ms)
    }

    /// Drops every broker that registered over connection `connection_id`; returns their addresses.
    pub fn on_connection_closed(&self, connection_id: u64) -> Vec<String> {
        self.remove_live_where(|live| live.connection_id == Some(connection_id))
    }

    fn remove_live_where(&self, gone: impl Fn(&BrokerLiveInfo) -> bool) -> Vec<String> {
        let mut guard = self.tables.write();
        let t = &mut *guard;
        let dropped: Vec<(String, BrokerLiveInfo)> = t
            .live
            .iter()
            .filter(|(_, live)| gone(live))
            .map(|(addr, live)| (addr.clone(), live.clone()))
            .collect();
        for (addr, live) in &dropped {
            t.live.remove(addr);
            remove_addr(t, &live.broker_name, addr);
            tracing::warn!(
                cluster = %live.cluster_name,
                broker = %live.broker_name,
                addr = %addr,
                "broker dropped from the route tables"
            );
        }
        dropped.into_iter().map(|(addr, _)| addr).collect()
    }

    /// The route of `topic`, or `None` when no live broker group serves it.
    pub fn topic_route(&self, topic: &str) -> Option<TopicRouteData> {
        let t = self.tables.read();
        let queues = t.topics.get(topic)?;
        let broker_datas: Vec<BrokerData> = queues
            .keys()
            .filter_map(|name| t.brokers.get(name).cloned())
            .collect();
        if queues.is_empty() || broker_datas.is_empty() {
            return None;
        }
        Some(TopicRouteData {
            order_topic_conf: None,
            queue_datas: queues.values().cloned().collect(),
            broker_datas,
            filter_server_table: BTreeMap::new(),
        })
    }

    pub fn cluster_info(&self) -> ClusterInfo {
        let t = self.tables.read();
        ClusterInfo {
            broker_addr_table: t.brokers.clone(),
            cluster_addr_table: t.clusters.clone(),
        }
    }

    pub fn all_topics(&self) -> TopicList {
        let t = self.tables.read();
        TopicList {
            topic_list: t.topics.keys().cloned().collect(),
            broker_addr: None,
        }
    }

    /// Topics served by at least one broker group of `cluster`.
    pub fn topics_by_cluster(&self, cluster: &str) -> TopicList {
        let t = self.tables.read();
        let topic_list = match t.clusters.get(cluster) {
            Some(names) => t
                .topics
                .iter()
                .filter(|(_, queues)| queues.keys().any(|name| names.contains(name)))
                .map(|(topic, _)| topic.clone())
                .collect(),
            None => BTreeSet::new(),
        };
        TopicList {
            topic_list,
            broker_addr: None,
        }
    }

    /// Forgets the route of `topic`: everywhere, or only on the broker groups of `cluster`.
    pub fn delete_topic(&self, topic: &str, cluster: Option<&str>) {
        let mut guard = self.tables.write();
        let t = &mut *guard;
        match cluster {
            None => {
                t.topics.remove(topic);
            }
            Some(cluster) => {
                let Some(names) = t.clusters.get(cluster) else {
                    return;
                };
                if let Some(queues) = t.topics.get_mut(topic) {
                    queues.retain(|name, _| !names.contains(name));
                    if queues.is_empty() {
                        t.topics.remove(topic);
                    }
                }
            }
        }
    }

    /// QUERY_DATA_VERSION: whether `version` differs from what `broker_addr` last registered, and
    /// that recorded version. An unchanged broker counts as heard from at `now_ms`.
    pub fn query_data_version(
        &self,
        broker_addr: &str,
        version: &DataVersion,
        now_ms: u64,
    ) -> (bool, Option<DataVersion>) {
        let mut t = self.tables.write();
        match t.live.get_mut(broker_addr) {
            None => (true, None),
            Some(live) => {
                let changed = live.data_version != *version;
                if !changed {
                    live.last_update_ms = now_ms;
                }
                (changed, Some(live.data_version))
            }
        }
    }

    /// Addresses of the live brokers.
    pub fn live_brokers(&self) -> BTreeSet<String> {
        self.tables.read().live.keys().cloned().collect()
    }
}

/// Removes `addr` from group `broker_name`; an emptied group leaves its cluster and every topic.
fn remove_addr(t: &mut Tables, broker_name: &str, addr: &str) {
    let Some(group) = t.brokers.get_mut(broker_name) else {
        return;
    };
    group.broker_addrs.retain(|_, a| a != addr);
    if !group.broker_addrs.is_empty() {
        return;
    }
    let cluster = group.cluster.clone();
    t.brokers.remove(broker_name);
    if let Some(names) = t.clusters.get_mut(&cluster) {
        names.remove(broker_name);
        if names.is_empty() {
            t.clusters.remove(&cluster);
        }
    }
    t.topics.retain(|_, queues| {
        queues.remove(broker_name);
        !queues.is_empty()
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registration(name: &str, id: i64, addr: &str, topics: &[&str]) -> BrokerRegistration {
        BrokerRegistration {
            cluster_name: "DefaultCluster".into(),
            broker_name: name.into(),
            broker_addr: addr.into(),
            ha_server_addr: format!("{addr}-ha"),
            broker_id: id,
            connection_id: Some(id as u64 + 100),
            data_version: DataVersion {
                timestamp: 1,
                counter: topics.len() as i64,
                state_version: 0,
            },
            topic_config_table: topics
                .iter()
                .map(|t| {
                    (
                        t.to_string(),
                        TopicConfig::new(*t, 4, perm::READ | perm::WRITE),
                    )
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn slave_learns_its_master_and_keeps_the_masters_topics() {
        let routes = RouteInfoManager::default();
        routes.register_broker(registration("a", 0, "m:1", &["T"]), 0);
        let result = routes.register_broker(registration("a", 1, "s:1", &["T", "X"]), 0);
        assert_eq!(result.master_addr.as_deref(), Some("m:1"));
        assert_eq!(result.ha_server_addr.as_deref(), Some("m:1-ha"));
        assert!(
            routes.topic_route("X").is_none(),
            "slaves do not publish topics"
        );
        let route = routes.topic_route("T").unwrap();
        assert_eq!(route.broker_datas[0].broker_addrs.len(), 2);
    }

    #[test]
    fn a_registration_of_some_topics_keeps_the_others() {
        let routes = RouteInfoManager::default();
        routes.register_broker(registration("a", 0, "m:1", &["T", "U"]), 0);
        routes.register_broker(registration("b", 0, "n:1", &["U"]), 0);
        // An official broker's increment after UPDATE_AND_CREATE_TOPIC: one topic.
        routes.register_broker(registration("a", 0, "m:1", &["V"]), 1);
        for topic in ["T", "V"] {
            let route = routes.topic_route(topic).unwrap();
            assert_eq!(route.queue_datas.len(), 1, "{topic}");
            assert_eq!(route.queue_datas[0].broker_name, "a");
        }
        assert_eq!(routes.topic_route("U").unwrap().queue_datas.len(), 2);
        // Deleting is its own request.
        routes.delete_topic("U", None);
        assert!(routes.topic_route("U").is_none());
    }

    #[test]
    fn an_increment_with_an_unchanged_data_version_is_still_merged() {
        let routes = RouteInfoManager::default();
        routes.register_broker(registration("a", 0, "m:1", &["T"]), 0);
        let mut write_only = registration("a", 0, "m:1", &["T"]);
        write_only.topic_config_table.get_mut("T").unwrap().perm = perm::WRITE;
        routes.register_broker(write_only, 1);
        let route = routes.topic_route("T").unwrap();
        assert_eq!(route.queue_datas[0].perm, perm::WRITE);
    }

    #[test]
    fn unchanged_data_version_keeps_the_recorded_topics() {
        let routes = RouteInfoManager::default();
        routes.register_broker(registration("a", 0, "m:1", &["T"]), 0);
        let mut same_version = registration("a", 0, "m:1", &["T"]);
        same_version.topic_config_table.clear();
        routes.register_broker(same_version, 1);
        assert!(routes.topic_route("T").is_some());
    }

    #[test]
    fn a_master_keeps_its_group_alive_after_its_slave_expires() {
        let routes = RouteInfoManager::default();
        routes.register_broker(registration("a", 0, "m:1", &["T"]), 200_000);
        routes.register_broker(registration("a", 1, "s:1", &["T"]), 0);
        assert_eq!(routes.scan_not_active(200_001), vec!["s:1".to_owned()]);
        let route = routes.topic_route("T").unwrap();
        assert_eq!(route.broker_datas[0].broker_addrs.len(), 1);
        assert_eq!(routes.scan_not_active(400_000), vec!["m:1".to_owned()]);
        assert!(routes.topic_route("T").is_none());
        assert!(routes.cluster_info().cluster_addr_table.is_empty());
    }

    #[test]
    fn delete_topic_in_one_cluster_keeps_the_others() {
        let routes = RouteInfoManager::default();
        routes.register_broker(registration("a", 0, "m:1", &["T"]), 0);
        let mut other = registration("b", 0, "n:1", &["T"]);
        other.cluster_name = "Other".into();
        routes.register_broker(other, 0);
        routes.delete_topic("T", Some("Other"));
        let route = routes.topic_route("T").unwrap();
        assert_eq!(route.queue_datas.len(), 1);
        assert_eq!(routes.topics_by_cluster("Other").topic_list.len(), 0);
        routes.delete_topic("T", None);
        assert!(routes.topic_route("T").is_none());
    }

    #[test]
    fn query_data_version_reports_changes_and_refreshes_liveness() {
        let routes = RouteInfoManager::new(10);
        let reg = registration("a", 0, "m:1", &["T"]);
        let version = reg.data_version;
        routes.register_broker(reg, 0);
        assert_eq!(
            routes.query_data_version("m:1", &version, 100),
            (false, Some(version))
        );
        assert!(routes.scan_not_active(105).is_empty());
        let newer = DataVersion {
            counter: 9,
            ..version
        };
        assert!(routes.query_data_version("m:1", &newer, 100).0);
        assert!(routes.query_data_version("x:1", &newer, 100).0);
    }
}
