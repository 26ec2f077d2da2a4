//! The broker's topic table: what `UPDATE_AND_CREATE_TOPIC` and auto-creation write, what the name
//! server learns at registration. Persisted to `config/topics.json` before a change returns;
//! changes made while the file is being written share the next write, so a burst of creations
//! does not write a table of megabytes once per topic.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use parking_lot::{Mutex, RwLock};
use petrel_common::protocol::TopicConfigSerializeWrapper;
use petrel_common::topic::{perm, DataVersion, TopicConfig, AUTO_CREATE_TOPIC_KEY};

use petrel_store::metadata;

pub struct TopicConfigManager {
    path: PathBuf,
    table: RwLock<TopicConfigSerializeWrapper>,
    /// The data-version counter (bumped by every change) the file holds; locked for the whole
    /// write, one write at a time.
    persisted: Mutex<Option<i64>>,
    /// The system topics this broker adds itself at load, from its own config: a slave keeps
    /// them when its master's table lacks them.
    own_system: Vec<TopicConfig>,
}

/// What replacing a whole table with another broker's changed, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableReplaced {
    pub added: Vec<String>,
    pub updated: Vec<String>,
    pub removed: Vec<String>,
}

impl TableReplaced {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.updated.is_empty() && self.removed.is_empty()
    }

    /// Turns `current` into `next`, noting what changed.
    pub(crate) fn apply<V: PartialEq>(
        current: &mut BTreeMap<String, V>,
        next: BTreeMap<String, V>,
    ) -> Self {
        let mut change = TableReplaced {
            removed: current
                .keys()
                .filter(|k| !next.contains_key(*k))
                .cloned()
                .collect(),
            ..TableReplaced::default()
        };
        for name in &change.removed {
            current.remove(name);
        }
        for (name, value) in next {
            match current.get(&name) {
                None => change.added.push(name.clone()),
                Some(old) if *old != value => change.updated.push(name.clone()),
                Some(_) => continue,
            }
            current.insert(name, value);
        }
        change
    }
}

/// Why a topic could not be had for a send.
#[derive(Debug)]
pub enum TopicLookup {
    Found(TopicConfig),
    /// Created now; the name server must hear of it.
    Created(TopicConfig),
    NotExist,
}

impl TopicConfigManager {
    /// Loads `config/topics.json` and adds the system topics a RocketMQ broker always has.
    pub fn load(path: PathBuf, config: &crate::BrokerConfig) -> std::io::Result<Self> {
        let mut table: TopicConfigSerializeWrapper =
            metadata::read_json(&path)?.unwrap_or_default();
        if table.data_version.timestamp == 0 {
            table.data_version = DataVersion::now();
        }
        let q = config.default_topic_queue_nums;
        let mut system = vec![
            TopicConfig::new("SELF_TEST_TOPIC", 1, perm::READ | perm::WRITE),
            TopicConfig::new(config.cluster_name.clone(), 16, perm::INHERIT),
            TopicConfig::new(
                config.broker_name.clone(),
                1,
                perm::INHERIT | perm::READ | perm::WRITE,
            ),
            TopicConfig::new("OFFSET_MOVED_EVENT", 1, perm::READ | perm::WRITE),
        ];
        if config.trace_topic_enable {
            system.push(TopicConfig::new(
                petrel_common::trace::CLIENT_TRACE_TOPIC,
                1,
                perm::READ | perm::WRITE,
            ));
        }
        if config.trace_on {
            // Read-only for clients: only the broker writes its trace.
            system.push(TopicConfig::new(
                petrel_common::trace::BROKER_TRACE_TOPIC,
                1,
                perm::READ,
            ));
        }
        if config.auto_create_topic_enable {
            system.push(TopicConfig::new(
                AUTO_CREATE_TOPIC_KEY,
                q,
                perm::INHERIT | perm::READ | perm::WRITE,
            ));
        }
        for t in &system {
            table
                .topic_config_table
                .entry(t.topic_name.clone())
                .or_insert_with(|| t.clone());
        }
        let manager = TopicConfigManager {
            path,
            table: RwLock::new(table),
            persisted: Mutex::new(None),
            own_system: system,
        };
        manager.persist()?;
        Ok(manager)
    }

    pub fn get(&self, topic: &str) -> Option<TopicConfig> {
        self.table.read().topic_config_table.get(topic).cloned()
    }

    /// Runs `f` on a topic's config without cloning it (the send path).
    pub fn with<R>(&self, topic: &str, f: impl FnOnce(&TopicConfig) -> R) -> Option<R> {
        self.table.read().topic_config_table.get(topic).map(f)
    }

    /// Creates or replaces a topic. The same config again changes nothing (no new data
    /// version, no write), but still returns only once the file holds it.
    pub fn upsert(&self, config: TopicConfig) -> std::io::Result<()> {
        {
            let mut t = self.table.write();
            if t.topic_config_table.get(&config.topic_name) != Some(&config) {
                t.topic_config_table
                    .insert(config.topic_name.clone(), config);
                t.data_version.bump();
            }
        }
        self.persist()
    }

    pub fn delete(&self, topic: &str) -> std::io::Result<bool> {
        let removed = {
            let mut t = self.table.write();
            let removed = t.topic_config_table.remove(topic).is_some();
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

    /// Makes the table `master`'s (a slave following its master): adds and updates every topic
    /// the master has and deletes the others, except the system topics this broker adds itself
    /// at load (its broker-name and cluster topics, `TBW102`, the trace topics, …), which stay
    /// as this broker made them when the master has none of that name. Writes the file, with a
    /// new data version, only when something changed.
    pub fn replace_all(
        &self,
        mut master: BTreeMap<String, TopicConfig>,
    ) -> std::io::Result<TableReplaced> {
        for t in &self.own_system {
            master
                .entry(t.topic_name.clone())
                .or_insert_with(|| t.clone());
        }
        let change = {
            let mut t = self.table.write();
            let change = TableReplaced::apply(&mut t.topic_config_table, master);
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

    /// The topic for a send: existing, or created from the template `default_topic` (normally
    /// `TBW102`) when auto-creation is on and the template allows inheritance.
    pub fn get_or_create_for_send(
        &self,
        topic: &str,
        default_topic: &str,
        requested_queues: i32,
        auto_create: bool,
    ) -> std::io::Result<TopicLookup> {
        if let Some(c) = self.get(topic) {
            return Ok(TopicLookup::Found(c));
        }
        if !auto_create {
            return Ok(TopicLookup::NotExist);
        }
        let Some(template) = self.get(default_topic) else {
            return Ok(TopicLookup::NotExist);
        };
        if !perm::inherited(template.perm) {
            return Ok(TopicLookup::NotExist);
        }
        let queues = requested_queues.clamp(1, template.write_queue_nums.max(1));
        let created = TopicConfig::new(topic, queues, template.perm & !perm::INHERIT);
        self.create_if_absent(created)
    }

    /// Creates a system topic (retry, dead letter) unless it exists.
    pub fn create_if_absent(&self, config: TopicConfig) -> std::io::Result<TopicLookup> {
        {
            let mut t = self.table.write();
            if let Some(existing) = t.topic_config_table.get(&config.topic_name) {
                return Ok(TopicLookup::Found(existing.clone()));
            }
            t.topic_config_table
                .insert(config.topic_name.clone(), config.clone());
            t.data_version.bump();
        }
        self.persist()?;
        tracing::info!(topic = %config.topic_name, queues = config.write_queue_nums, "created topic");
        Ok(TopicLookup::Created(config))
    }

    pub fn snapshot(&self) -> TopicConfigSerializeWrapper {
        self.table.read().clone()
    }

    /// The configs of those of `topics` that exist, with the table's current data version.
    pub fn snapshot_of(&self, topics: &BTreeSet<String>) -> TopicConfigSerializeWrapper {
        let t = self.table.read();
        TopicConfigSerializeWrapper {
            topic_config_table: topics
                .iter()
                .filter_map(|name| Some((name.clone(), t.topic_config_table.get(name)?.clone())))
                .collect(),
            data_version: t.data_version,
        }
    }

    pub fn topic_names(&self) -> Vec<String> {
        self.table
            .read()
            .topic_config_table
            .keys()
            .cloned()
            .collect()
    }

    pub fn all(&self) -> BTreeMap<String, TopicConfig> {
        self.table.read().topic_config_table.clone()
    }

    /// Writes the table unless a write that began after our change has covered it.
    fn persist(&self) -> std::io::Result<()> {
        let ours = self.table.read().data_version.counter;
        let mut persisted = self.persisted.lock();
        if persisted.is_some_and(|p| p >= ours) {
            return Ok(());
        }
        let (json, covered) = {
            let t = self.table.read();
            let json = serde_json::to_vec_pretty(&*t).map_err(std::io::Error::other)?;
            (json, t.data_version.counter)
        };
        // Written outside the table's lock: sends keep reading the table meanwhile.
        metadata::write_atomic(&self.path, &json)?;
        *persisted = Some(covered);
        Ok(())
    }
}
