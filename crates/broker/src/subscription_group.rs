//! Subscription groups (consumer groups' settings), persisted to `config/subscriptionGroup.json`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use parking_lot::RwLock;
use petrel_common::topic::{DataVersion, SubscriptionGroupConfig};
use serde::{Deserialize, Serialize};

use petrel_store::metadata;

use crate::topic_config::TableReplaced;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionGroupTable {
    pub subscription_group_table: BTreeMap<String, SubscriptionGroupConfig>,
    #[serde(default)]
    pub data_version: DataVersion,
}

pub struct SubscriptionGroupManager {
    path: PathBuf,
    table: RwLock<SubscriptionGroupTable>,
}

impl SubscriptionGroupManager {
    pub fn load(path: PathBuf) -> std::io::Result<Self> {
        let table = metadata::read_json(&path)?.unwrap_or_default();
        Ok(SubscriptionGroupManager {
            path,
            table: RwLock::new(table),
        })
    }

    pub fn get(&self, group: &str) -> Option<SubscriptionGroupConfig> {
        self.table
            .read()
            .subscription_group_table
            .get(group)
            .cloned()
    }

    /// The group's config, created with defaults when `auto_create` allows.
    pub fn get_or_create(
        &self,
        group: &str,
        auto_create: bool,
    ) -> std::io::Result<Option<SubscriptionGroupConfig>> {
        if let Some(c) = self.get(group) {
            return Ok(Some(c));
        }
        if !auto_create {
            return Ok(None);
        }
        let config = SubscriptionGroupConfig::new(group);
        self.upsert(config.clone())?;
        Ok(Some(config))
    }

    pub fn upsert(&self, config: SubscriptionGroupConfig) -> std::io::Result<()> {
        {
            let mut t = self.table.write();
            t.subscription_group_table
                .insert(config.group_name.clone(), config);
            t.data_version.bump();
        }
        self.persist()
    }

    pub fn delete(&self, group: &str) -> std::io::Result<bool> {
        let removed = {
            let mut t = self.table.write();
            let removed = t.subscription_group_table.remove(group).is_some();
            if removed {
                t.data_version.bump();
            }
            removed
        };
        if removed {
            self.persist()?;
        }
        Ok(removed)
    }

    /// Makes the table `master`'s (a slave following its master): every group the master has,
    /// as it has it, and no other. Writes the file, with a new data version, only when something
    /// changed.
    pub fn replace_all(
        &self,
        master: BTreeMap<String, SubscriptionGroupConfig>,
    ) -> std::io::Result<TableReplaced> {
        let change = {
            let mut t = self.table.write();
            let change = TableReplaced::apply(&mut t.subscription_group_table, master);
            if !change.is_empty() {
                t.data_version.bump();
            }
            change
        };
        if !change.is_empty() {
            self.persist()?;
        }
        Ok(change)
    }

    pub fn snapshot(&self) -> SubscriptionGroupTable {
        self.table.read().clone()
    }

    fn persist(&self) -> std::io::Result<()> {
        metadata::write_json(&self.path, &*self.table.read())
    }
}
