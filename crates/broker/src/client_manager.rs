//! Who is connected: producers by group, consumers by group with their subscriptions (and
//! their SQL92 filters, compiled once). Filled by heartbeats, emptied by unregistration, closed
//! connections and silence. A client is reached over its remoting connection, or, for a gRPC
//! client of the proxy, through what the proxy registered for it ([`GrpcClient`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use petrel_common::filter::{FilterError, Sql92Filter};
use petrel_common::protocol::{ConsumerData, SubscriptionData};
use petrel_remoting::Connection;

use crate::transaction::TransactionCheck;

#[derive(Clone)]
pub struct ClientChannel {
    pub client_id: String,
    pub conn: ClientConn,
    pub language: u8,
    pub version: i32,
    pub last_update: Instant,
}

/// How the broker reaches a registered client.
#[derive(Clone)]
pub enum ClientConn {
    /// A client of the remoting protocol, over its connection.
    Remoting(Connection),
    /// A 5.x client of the gRPC endpoint, through the proxy (one object per client id).
    Grpc(Arc<dyn GrpcClient>),
}

/// A gRPC client as the proxy keeps it: the broker asks it things through its telemetry stream.
pub trait GrpcClient: Send + Sync {
    /// Where the client connects from.
    fn peer_addr(&self) -> SocketAddr;
    /// Asks the client to settle a half message (a RecoverOrphanedTransactionCommand); an error
    /// when the client cannot be reached now.
    fn check_transaction(&self, check: TransactionCheck) -> Result<(), String>;
}

impl ClientConn {
    pub fn peer_addr(&self) -> SocketAddr {
        match self {
            ClientConn::Remoting(conn) => conn.peer_addr(),
            ClientConn::Grpc(client) => client.peer_addr(),
        }
    }

    /// The remoting connection, if the client has one.
    pub fn remoting(&self) -> Option<&Connection> {
        match self {
            ClientConn::Remoting(conn) => Some(conn),
            ClientConn::Grpc(_) => None,
        }
    }

    /// Whether both reach the client the same way (the same connection, or the same gRPC client).
    fn same(&self, other: &ClientConn) -> bool {
        match (self, other) {
            (ClientConn::Remoting(a), ClientConn::Remoting(b)) => a.id() == b.id(),
            (ClientConn::Grpc(a), ClientConn::Grpc(b)) => {
                std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
            }
            _ => false,
        }
    }

    /// Whether this is the remoting connection `conn_id`.
    fn is_connection(&self, conn_id: u64) -> bool {
        self.remoting().is_some_and(|c| c.id() == conn_id)
    }
}

#[derive(Clone)]
pub struct ConsumerGroupInfo {
    pub consume_type: String,
    pub message_model: String,
    pub consume_from_where: String,
    pub channels: HashMap<String, ClientChannel>,
    pub subscriptions: HashMap<String, SubscriptionData>,
}

#[derive(Default)]
pub struct ConsumerManager {
    groups: RwLock<HashMap<String, ConsumerGroupInfo>>,
    /// Compiled filters of the groups' SQL92 subscriptions (and of pulls that carry one).
    pub sql_filters: SqlFilterCache,
}

/// The cache holds at most this many compiled filters; a full cache starts over (stale entries
/// of departed groups go with it, live ones are compiled again at their next pull).
pub const MAX_CACHED_SQL_FILTERS: usize = 4096;

/// Compiled SQL92 filters by group and topic: a subscription is compiled at the heartbeat that
/// brings it, and every pull reuses it. An entry is reused while the expression is the same,
/// whatever the subVersion: members of a group started at different times send different
/// subVersions of one expression, and must not make each other recompile.
#[derive(Default)]
pub struct SqlFilterCache {
    by_group: RwLock<HashMap<String, HashMap<String, CachedSqlFilter>>>,
}

struct CachedSqlFilter {
    expression: String,
    filter: Arc<Sql92Filter>,
}

impl SqlFilterCache {
    /// The compiled filter of `group`'s SQL92 subscription `sub`, compiling it on first use.
    pub fn get_or_compile(
        &self,
        group: &str,
        sub: &SubscriptionData,
    ) -> Result<Arc<Sql92Filter>, FilterError> {
        let cached = self
            .by_group
            .read()
            .get(group)
            .and_then(|topics| topics.get(&sub.topic))
            .filter(|c| c.expression == sub.sub_string)
            .map(|c| c.filter.clone());
        if let Some(filter) = cached {
            return Ok(filter);
        }
        let filter = Arc::new(Sql92Filter::compile(&sub.sub_string)?);
        let mut by_group = self.by_group.write();
        let size: usize = by_group.values().map(HashMap::len).sum();
        if size >= MAX_CACHED_SQL_FILTERS {
            by_group.clear();
        }
        by_group.entry(group.to_owned()).or_default().insert(
            sub.topic.clone(),
            CachedSqlFilter {
                expression: sub.sub_string.clone(),
                filter: filter.clone(),
            },
        );
        Ok(filter)
    }
}

impl ConsumerManager {
    /// Registers or refreshes a consumer; true if the group's membership changed.
    pub fn register(&self, channel: ClientChannel, data: &ConsumerData) -> bool {
        let mut groups = self.groups.write();
        let info = groups
            .entry(data.group_name.clone())
            .or_insert_with(|| ConsumerGroupInfo {
                consume_type: String::new(),
                message_model: String::new(),
                consume_from_where: String::new(),
                channels: HashMap::new(),
                subscriptions: HashMap::new(),
            });
        info.consume_type.clone_from(&data.consume_type);
        info.message_model.clone_from(&data.message_model);
        info.consume_from_where.clone_from(&data.consume_from_where);
        let changed = match info.channels.get(&channel.client_id) {
            Some(old) => !old.conn.same(&channel.conn),
            None => true,
        };
        info.channels.insert(channel.client_id.clone(), channel);
        for sub in &data.subscription_data_set {
            let newer = info
                .subscriptions
                .get(&sub.topic)
                .is_none_or(|old| old.sub_version <= sub.sub_version);
            if newer {
                info.subscriptions.insert(sub.topic.clone(), sub.clone());
            }
        }
        changed
    }

    /// Removes a client from a group; true if it was there.
    pub fn unregister(&self, group: &str, client_id: &str) -> bool {
        let mut groups = self.groups.write();
        let Some(info) = groups.get_mut(group) else {
            return false;
        };
        let removed = info.channels.remove(client_id).is_some();
        if info.channels.is_empty() {
            groups.remove(group);
        }
        removed
    }

    /// Drops every registration made over a closed connection; returns the groups that changed.
    pub fn connection_closed(&self, conn_id: u64) -> Vec<String> {
        self.remove_where(|c| c.conn.is_connection(conn_id))
    }

    /// Drops clients silent for longer than `timeout`; returns the groups that changed.
    pub fn scan_expired(&self, timeout: Duration) -> Vec<String> {
        let now = Instant::now();
        self.remove_where(|c| now.duration_since(c.last_update) > timeout)
    }

    fn remove_where(&self, pred: impl Fn(&ClientChannel) -> bool) -> Vec<String> {
        let mut changed = Vec::new();
        let mut groups = self.groups.write();
        groups.retain(|group, info| {
            let before = info.channels.len();
            info.channels.retain(|_, c| !pred(c));
            if info.channels.len() != before {
                changed.push(group.clone());
            }
            !info.channels.is_empty()
        });
        changed
    }

    pub fn subscription(&self, group: &str, topic: &str) -> Option<SubscriptionData> {
        self.groups
            .read()
            .get(group)
            .and_then(|g| g.subscriptions.get(topic).cloned())
    }

    pub fn group(&self, group: &str) -> Option<ConsumerGroupInfo> {
        self.groups.read().get(group).cloned()
    }

    /// The id of the client of `group` on connection `conn_id`, if it has sent a heartbeat.
    pub fn client_id_of(&self, group: &str, conn_id: u64) -> Option<String> {
        let groups = self.groups.read();
        groups
            .get(group)?
            .channels
            .values()
            .find(|c| c.conn.is_connection(conn_id))
            .map(|c| c.client_id.clone())
    }

    pub fn has_group(&self, group: &str) -> bool {
        self.groups.read().contains_key(group)
    }

    /// Client ids of a group, sorted (clients allocate queues over this list).
    pub fn client_ids(&self, group: &str) -> Vec<String> {
        let mut ids: Vec<String> = self
            .groups
            .read()
            .get(group)
            .map(|g| g.channels.keys().cloned().collect())
            .unwrap_or_default();
        ids.sort();
        ids
    }

    /// The remoting connections of a group's clients (gRPC clients have none).
    pub fn connections(&self, group: &str) -> Vec<Connection> {
        self.groups
            .read()
            .get(group)
            .map(|g| {
                g.channels
                    .values()
                    .filter_map(|c| c.conn.remoting().cloned())
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn group_names(&self) -> Vec<String> {
        self.groups.read().keys().cloned().collect()
    }

    /// Calls `f` with each group, its consume type and each of its clients (metrics).
    pub fn for_each_channel(&self, mut f: impl FnMut(&str, &str, &ClientChannel)) {
        for (group, info) in self.groups.read().iter() {
            for c in info.channels.values() {
                f(group, &info.consume_type, c);
            }
        }
    }

    /// Every (group, topic) with a live subscription.
    pub fn subscriptions(&self) -> Vec<(String, String)> {
        let groups = self.groups.read();
        let mut v = Vec::new();
        for (group, info) in groups.iter() {
            v.extend(
                info.subscriptions
                    .keys()
                    .map(|t| (group.clone(), t.clone())),
            );
        }
        v
    }

    /// Groups with a live subscription to `topic`.
    pub fn groups_subscribing(&self, topic: &str) -> Vec<String> {
        self.groups
            .read()
            .iter()
            .filter(|(_, g)| g.subscriptions.contains_key(topic))
            .map(|(name, _)| name.clone())
            .collect()
    }
}

/// Producers by group: needed for transaction check-backs and admin listings.
#[derive(Default)]
pub struct ProducerManager {
    groups: RwLock<HashMap<String, HashMap<String, ClientChannel>>>,
}

impl ProducerManager {
    pub fn register(&self, group: &str, channel: ClientChannel) {
        self.groups
            .write()
            .entry(group.to_owned())
            .or_default()
            .insert(channel.client_id.clone(), channel);
    }

    pub fn unregister(&self, group: &str, client_id: &str) {
        let mut groups = self.groups.write();
        if let Some(g) = groups.get_mut(group) {
            g.remove(client_id);
            if g.is_empty() {
                groups.remove(group);
            }
        }
    }

    pub fn connection_closed(&self, conn_id: u64) {
        self.retain(|c| !c.conn.is_connection(conn_id));
    }

    pub fn scan_expired(&self, timeout: Duration) {
        let now = Instant::now();
        self.retain(|c| now.duration_since(c.last_update) <= timeout);
    }

    fn retain(&self, keep: impl Fn(&ClientChannel) -> bool) {
        let mut groups = self.groups.write();
        groups.retain(|_, g| {
            g.retain(|_, c| keep(c));
            !g.is_empty()
        });
    }

    /// Calls `f` with each producer group and each of its clients (metrics).
    pub fn for_each_channel(&self, mut f: impl FnMut(&str, &ClientChannel)) {
        for (group, channels) in self.groups.read().iter() {
            for c in channels.values() {
                f(group, c);
            }
        }
    }

    pub fn channels(&self, group: &str) -> Vec<ClientChannel> {
        self.groups
            .read()
            .get(group)
            .map(|g| g.values().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sql_filter_is_compiled_once_per_group_topic_and_expression() {
        let cache = SqlFilterCache::default();
        let v1 = SubscriptionData::sql92("T", "a > 5", 1);
        let first = cache.get_or_compile("cg", &v1).unwrap();
        let again = cache.get_or_compile("cg", &v1).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        let other_member = SubscriptionData::sql92("T", "a > 5", 7);
        assert!(Arc::ptr_eq(
            &first,
            &cache.get_or_compile("cg", &other_member).unwrap()
        ));
        let other_group = cache.get_or_compile("cg2", &v1).unwrap();
        assert!(!Arc::ptr_eq(&first, &other_group));
        let v2 = SubscriptionData::sql92("T", "a > 6", 2);
        let changed = cache.get_or_compile("cg", &v2).unwrap();
        assert_eq!(changed.expression(), "a > 6");
        assert!(Arc::ptr_eq(
            &changed,
            &cache.get_or_compile("cg", &v2).unwrap()
        ));
        let bad = SubscriptionData::sql92("T", "a >", 3);
        assert!(cache.get_or_compile("cg", &bad).is_err());
        assert!(Arc::ptr_eq(
            &changed,
            &cache.get_or_compile("cg", &v2).unwrap()
        ));
    }
}
