//! The name server's key/value configuration, grouped by namespace (PUT/GET/DELETE_KV_CONFIG,
//! GET_KVLIST_BY_NAMESPACE). Namespace `ORDER_TOPIC_CONFIG` holds `mqadmin updateOrderConf`
//! entries, which route queries and broker registrations hand back.
//!
//! In memory only: unlike RocketMQ's `kvConfig.json`, entries do not survive a restart.

use std::collections::BTreeMap;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

/// The namespace whose entries (topic → `brokerName:queues;…`) describe ordered topics.
pub const NAMESPACE_ORDER_TOPIC_CONFIG: &str = "ORDER_TOPIC_CONFIG";

/// RocketMQ's `KVTable` body: `{"table":{"k":"v"}}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KvTable {
    pub table: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
pub struct KvConfigManager {
    namespaces: RwLock<BTreeMap<String, BTreeMap<String, String>>>,
}

impl KvConfigManager {
    pub fn put(&self, namespace: &str, key: &str, value: &str) {
        self.namespaces
            .write()
            .entry(namespace.to_owned())
            .or_default()
            .insert(key.to_owned(), value.to_owned());
    }

    pub fn get(&self, namespace: &str, key: &str) -> Option<String> {
        self.namespaces.read().get(namespace)?.get(key).cloned()
    }

    pub fn delete(&self, namespace: &str, key: &str) {
        let mut namespaces = self.namespaces.write();
        if let Some(entries) = namespaces.get_mut(namespace) {
            entries.remove(key);
            if entries.is_empty() {
                namespaces.remove(namespace);
            }
        }
    }

    /// Every entry of `namespace`, or `None` when it has none.
    pub fn list(&self, namespace: &str) -> Option<KvTable> {
        let namespaces = self.namespaces.read();
        let table = namespaces.get(namespace)?.clone();
        Some(KvTable { table })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_get_list_delete() {
        let kv = KvConfigManager::default();
        kv.put("ns", "k", "v");
        assert_eq!(kv.get("ns", "k").as_deref(), Some("v"));
        assert_eq!(
            serde_json::to_string(&kv.list("ns").unwrap()).unwrap(),
            r#"{"table":{"k":"v"}}"#
        );
        kv.delete("ns", "k");
        assert!(kv.get("ns", "k").is_none());
        assert!(kv.list("ns").is_none());
    }
}
