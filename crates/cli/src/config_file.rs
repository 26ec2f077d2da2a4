//! The broker's TOML configuration file, with RocketMQ's key names so an operator's
//! `broker.conf` knowledge carries over. Every key is optional; an unknown key is an error (a
//! typo must not silently leave a default in force). `docs/configuration.md` lists the keys.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use petrel_broker::BrokerConfig;
use petrel_store::FlushDiskType;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BrokerConfigFile {
    pub broker_name: Option<String>,
    pub broker_cluster_name: Option<String>,
    pub broker_id: Option<i64>,
    pub listen_port: Option<u16>,
    #[serde(rename = "brokerIP1")]
    pub broker_ip1: Option<IpAddr>,
    pub namesrv_addr: Option<String>,
    pub region_id: Option<String>,
    pub trace_on: Option<bool>,
    pub auto_create_topic_enable: Option<bool>,
    pub auto_create_subscription_group: Option<bool>,
    pub default_topic_queue_nums: Option<i32>,
    pub max_message_size: Option<usize>,
    pub store_path_root_dir: Option<PathBuf>,
    pub mapped_file_size_commit_log: Option<u64>,
    /// `ASYNC_FLUSH` or `SYNC_FLUSH`.
    pub flush_disk_type: Option<String>,
    pub flush_interval_commit_log: Option<u64>,
    pub sync_flush_timeout: Option<u64>,
    pub long_polling_max_millis: Option<u64>,
    /// Delay of each level, e.g. `1s 5s 10s 30s 1m …` (units ms/s/m/h/d).
    pub message_delay_level: Option<String>,
}

impl BrokerConfigFile {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
    }

    /// Applies the keys that are set onto `config`.
    pub fn apply(self, config: &mut BrokerConfig) -> anyhow::Result<()> {
        let c = config;
        if let Some(v) = self.broker_name {
            c.broker_name = v;
        }
        if let Some(v) = self.broker_cluster_name {
            c.cluster_name = v;
        }
        if let Some(v) = self.broker_id {
            c.broker_id = v;
        }
        if let Some(port) = self.listen_port {
            c.listen_addr = SocketAddr::new(c.listen_addr.ip(), port);
        }
        if let Some(v) = self.broker_ip1 {
            c.broker_ip = v;
        }
        if let Some(v) = self.namesrv_addr {
            c.namesrv_addr = v;
        }
        if let Some(v) = self.region_id {
            c.region_id = v;
        }
        if let Some(v) = self.trace_on {
            c.trace_on = v;
        }
        if let Some(v) = self.auto_create_topic_enable {
            c.auto_create_topic_enable = v;
        }
        if let Some(v) = self.auto_create_subscription_group {
            c.auto_create_subscription_group = v;
        }
        if let Some(v) = self.default_topic_queue_nums {
            if !(1..=1024).contains(&v) {
                bail!("defaultTopicQueueNums must be 1..=1024, got {v}");
            }
            c.default_topic_queue_nums = v;
        }
        if let Some(v) = self.max_message_size {
            c.max_message_bytes = v;
            c.store.max_message_bytes = v;
        }
        if let Some(v) = self.store_path_root_dir {
            c.store.root_dir = v;
        }
        if let Some(v) = self.mapped_file_size_commit_log {
            c.store.commit_log_file_size = v;
        }
        if let Some(v) = self.flush_disk_type {
            c.store.flush_disk_type = match v.as_str() {
                "ASYNC_FLUSH" => FlushDiskType::AsyncFlush,
                "SYNC_FLUSH" => FlushDiskType::SyncFlush,
                other => bail!("flushDiskType must be ASYNC_FLUSH or SYNC_FLUSH, got {other:?}"),
            };
        }
        if let Some(v) = self.flush_interval_commit_log {
            c.store.flush_interval_ms = v;
        }
        if let Some(v) = self.sync_flush_timeout {
            c.store.sync_flush_timeout_ms = v;
        }
        if let Some(v) = self.long_polling_max_millis {
            c.long_poll_max = Duration::from_millis(v);
        }
        if let Some(v) = self.message_delay_level {
            c.message_delay_level = v;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_apply_and_typos_are_errors() {
        let file: BrokerConfigFile = toml::from_str(
            r#"
            brokerName = "broker-b"
            listenPort = 20911
            flushDiskType = "SYNC_FLUSH"
            autoCreateTopicEnable = false
            brokerIP1 = "10.0.0.5"
            "#,
        )
        .unwrap();
        let mut config = BrokerConfig::new(petrel_store::StoreConfig::new("/tmp/x"));
        file.apply(&mut config).unwrap();
        assert_eq!(config.broker_name, "broker-b");
        assert_eq!(config.listen_addr.port(), 20911);
        assert_eq!(config.store.flush_disk_type, FlushDiskType::SyncFlush);
        assert!(!config.auto_create_topic_enable);
        assert_eq!(config.broker_ip.to_string(), "10.0.0.5");
        assert!(toml::from_str::<BrokerConfigFile>("brokerNmae = \"x\"").is_err());
        let bad: BrokerConfigFile = toml::from_str("flushDiskType = \"SOMETIMES\"").unwrap();
        assert!(bad.apply(&mut config).is_err());
    }
}
