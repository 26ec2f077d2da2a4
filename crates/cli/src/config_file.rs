//! The broker's and the name server's TOML configuration files, with RocketMQ's key names so an
//! operator's `broker.conf` knowledge carries over. Every key is optional; an unknown key is an
//! error (a typo must not silently leave a default in force). `docs/configuration.md` lists the
//! keys.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use petrel_broker::BrokerConfig;
use petrel_namesrv::NamesrvConfig;
use petrel_remoting::TlsConfig;
use petrel_store::FlushDiskType;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BrokerConfigFile {
    pub broker_name: Option<String>,
    pub broker_cluster_name: Option<String>,
    pub broker_id: Option<i64>,
    /// `ASYNC_MASTER` (default), `SYNC_MASTER` or `SLAVE` (docs/replication.md).
    pub broker_role: Option<String>,
    /// A master's HA port (remoting port + 1).
    pub ha_listen_port: Option<u16>,
    /// A slave's master, `host:haPort` (else what the name servers answer).
    pub ha_master_address: Option<String>,
    /// Bytes a slave may lag and still count as in sync (256 MiB).
    pub ha_max_gap_not_in_sync: Option<u64>,
    /// The controllers decide master and slave (docs/replication.md).
    pub enable_controller_mode: Option<bool>,
    /// The controllers, `host:port;host:port`.
    pub controller_addr: Option<String>,
    pub listen_port: Option<u16>,
    #[serde(rename = "brokerIP1")]
    pub broker_ip1: Option<IpAddr>,
    pub namesrv_addr: Option<String>,
    pub region_id: Option<String>,
    pub trace_on: Option<bool>,
    pub trace_topic_enable: Option<bool>,
    pub compressed_register: Option<bool>,
    pub auto_create_topic_enable: Option<bool>,
    pub auto_create_subscription_group: Option<bool>,
    /// Accept SQL92 subscriptions (default true).
    pub enable_property_filter: Option<bool>,
    pub default_topic_queue_nums: Option<i32>,
    pub max_message_size: Option<usize>,
    pub store_path_root_dir: Option<PathBuf>,
    pub mapped_file_size_commit_log: Option<u64>,
    /// `ASYNC_FLUSH` or `SYNC_FLUSH`.
    pub flush_disk_type: Option<String>,
    pub flush_interval_commit_log: Option<u64>,
    pub sync_flush_timeout: Option<u64>,
    pub long_polling_max_millis: Option<u64>,
    /// How long an orderly consumer's queue lock lives without renewal, ms.
    pub rebalance_lock_max_live_time: Option<u64>,
    /// `registerNameServerPeriod` (ms): the periodic round with the name servers.
    pub register_name_server_period: Option<u64>,
    /// Delay of each level, e.g. `1s 5s 10s 30s 1m …` (units ms/s/m/h/d).
    pub message_delay_level: Option<String>,
    /// Seconds: the furthest ahead a timer message may be delivered (3 days).
    pub timer_max_delay_sec: Option<u64>,
    /// Milliseconds: the width of one timing-wheel slot (1000).
    pub timer_precision_ms: Option<u64>,
    /// Hours a commit-log segment is kept after its last write.
    pub file_reserved_time: Option<u64>,
    /// Local hours, `;`-separated, in which expired segments are deleted.
    pub delete_when: Option<String>,
    /// Percent.
    pub disk_max_used_space_ratio: Option<u32>,
    pub disk_space_clean_forcibly_ratio: Option<f64>,
    pub disk_space_warning_level_ratio: Option<f64>,
    /// Milliseconds.
    pub clean_resource_interval: Option<u64>,
    /// Milliseconds.
    pub delete_commit_log_files_interval: Option<u64>,
    /// Milliseconds (RocketMQ's spelling, one `p`).
    pub destroy_maped_file_interval_forcibly: Option<u64>,
    pub delete_file_batch_max: Option<usize>,
    /// Milliseconds before an unresolved half message is checked back (RocketMQ's spelling).
    #[serde(alias = "transactionTimeout")]
    pub transaction_time_out: Option<u64>,
    /// Milliseconds between two checks of one half message.
    pub transaction_check_interval: Option<u64>,
    /// Checks before a half message goes to TRANS_CHECK_MAX_TIME_TOPIC.
    pub transaction_check_max: Option<u32>,
    /// `PROM` (default: count, and serve `/metrics`) or `DISABLE` (count nothing, serve
    /// nothing).
    pub metrics_exporter_type: Option<String>,
    /// The address `/metrics` and `/health` listen on (0.0.0.0).
    pub metrics_prom_exporter_host: Option<IpAddr>,
    /// Their port (5557; 0 picks a free one).
    pub metrics_prom_exporter_port: Option<u16>,
    /// The port of the gRPC endpoint of the 5.x clients (8081; 0 picks a free one, a negative
    /// value serves none).
    pub grpc_server_port: Option<i32>,
    /// Check every request against the plain ACL rules (false; `docs/acl.md`).
    pub acl_enable: Option<bool>,
    /// The rules file (`<storePathRootDir>/config/plain_acl.yml`). A relative path is read
    /// from the broker's working directory.
    pub acl_file: Option<PathBuf>,
    /// Seconds a signed send's bornTimestamp may be from the broker's clock; its signature is
    /// refused when seen again meanwhile (120; 0 = no check; `docs/acl.md`).
    pub acl_signature_max_age_sec: Option<u64>,
    /// Signatures remembered at most for that (2097152).
    pub acl_replay_cache_max_entries: Option<usize>,
    /// `disabled`, `permissive` (default: TLS and plaintext) or `enforcing` (`docs/tls.md`).
    pub tls_server_mode: Option<String>,
    /// PEM certificate chain; with `tlsServerKeyPath`. Neither: a self-signed certificate.
    pub tls_server_cert_path: Option<PathBuf>,
    /// PEM private key, unencrypted.
    pub tls_server_key_path: Option<PathBuf>,
    /// Register with the name servers over TLS (false).
    pub tls_enable: Option<bool>,
}

/// The name server's TOML file (`petrel namesrv --config`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NamesrvConfigFile {
    pub listen_port: Option<u16>,
    pub tls_server_mode: Option<String>,
    pub tls_server_cert_path: Option<PathBuf>,
    pub tls_server_key_path: Option<PathBuf>,
}

impl NamesrvConfigFile {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        load(path)
    }

    /// Applies the keys that are set onto `config`.
    pub fn apply(self, config: &mut NamesrvConfig) -> anyhow::Result<()> {
        if let Some(port) = self.listen_port {
            config.listen_addr = SocketAddr::new(config.listen_addr.ip(), port);
        }
        apply_tls(
            self.tls_server_mode,
            self.tls_server_cert_path,
            self.tls_server_key_path,
            &mut config.tls,
        )
    }
}

fn load<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
}

/// `tlsServerMode`, `tlsServerCertPath` and `tlsServerKeyPath`, the same in both files.
fn apply_tls(
    mode: Option<String>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    tls: &mut TlsConfig,
) -> anyhow::Result<()> {
    if let Some(v) = mode {
        tls.mode = v.parse().map_err(anyhow::Error::msg)?;
    }
    if cert.is_some() != key.is_some() {
        bail!("tlsServerCertPath and tlsServerKeyPath go together; only one is set");
    }
    if cert.is_some() {
        tls.cert_path = cert;
        tls.key_path = key;
    }
    Ok(())
}

impl BrokerConfigFile {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        load(path)
    }

    /// Applies the keys that are set onto `config`.
    pub fn apply(self, config: &mut BrokerConfig) -> anyhow::Result<()> {
        let c = config;
        self.apply_retention(&mut c.store)?;
        apply_tls(
            self.tls_server_mode,
            self.tls_server_cert_path,
            self.tls_server_key_path,
            &mut c.tls,
        )?;
        if let Some(v) = self.tls_enable {
            c.tls_enable = v;
        }
        if let Some(v) = self.broker_name {
            c.broker_name = v;
        }
        if let Some(v) = self.broker_cluster_name {
            c.cluster_name = v;
        }
        if let Some(v) = self.broker_id {
            c.broker_id = v;
        }
        if let Some(v) = self.broker_role {
            c.broker_role = v.parse().map_err(anyhow::Error::msg)?;
        }
        if let Some(v) = self.ha_listen_port {
            c.ha_listen_port = Some(v);
        }
        if let Some(v) = self.ha_master_address {
            c.ha_master_address = Some(v);
        }
        if let Some(v) = self.ha_max_gap_not_in_sync {
            c.ha_max_gap_not_in_sync = v;
        }
        if let Some(v) = self.enable_controller_mode {
            c.enable_controller_mode = v;
        }
        if let Some(v) = self.controller_addr {
            c.controller_addr = v;
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
        if let Some(v) = self.trace_topic_enable {
            c.trace_topic_enable = v;
        }
        if let Some(v) = self.compressed_register {
            c.compressed_register = v;
        }
        if let Some(v) = self.auto_create_topic_enable {
            c.auto_create_topic_enable = v;
        }
        if let Some(v) = self.auto_create_subscription_group {
            c.auto_create_subscription_group = v;
        }
        if let Some(v) = self.enable_property_filter {
            c.enable_property_filter = v;
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
        if let Some(v) = self.transaction_time_out {
            c.transaction_timeout = Duration::from_millis(v);
        }
        if let Some(v) = self.transaction_check_interval {
            c.transaction_check_interval = Duration::from_millis(v);
        }
        if let Some(v) = self.transaction_check_max {
            c.transaction_check_max = v;
        }
        if let Some(v) = self.metrics_exporter_type {
            match v.as_str() {
                "PROM" => c.metrics_enable = true,
                "DISABLE" => {
                    c.metrics_enable = false;
                    c.metrics_listen = None;
                }
                other => bail!("metricsExporterType must be PROM or DISABLE, got {other:?}"),
            }
        }
        if c.metrics_enable
            && (self.metrics_prom_exporter_host.is_some()
                || self.metrics_prom_exporter_port.is_some())
        {
            let default = SocketAddr::from((
                [0, 0, 0, 0],
                petrel_broker::DEFAULT_METRICS_PROM_EXPORTER_PORT,
            ));
            let at = c.metrics_listen.unwrap_or(default);
            c.metrics_listen = Some(SocketAddr::new(
                self.metrics_prom_exporter_host.unwrap_or(at.ip()),
                self.metrics_prom_exporter_port.unwrap_or(at.port()),
            ));
        }
        if let Some(port) = self.grpc_server_port {
            c.grpc_listen = match port {
                ..0 => None,
                0..=65535 => {
                    let ip = c.grpc_listen.map_or(c.listen_addr.ip(), |a| a.ip());
                    Some(SocketAddr::new(ip, port as u16))
                }
                _ => bail!(
                    "grpcServerPort must be a port (0 picks one, negative serves none), got {port}"
                ),
            };
        }
        if let Some(v) = self.acl_enable {
            c.acl_enable = v;
        }
        if let Some(v) = self.acl_file {
            c.acl_file = Some(v);
        }
        if let Some(v) = self.acl_signature_max_age_sec {
            c.acl_signature_max_age_sec = v;
        }
        if let Some(v) = self.acl_replay_cache_max_entries {
            c.acl_replay_cache_max_entries = v;
        }
        if let Some(v) = self.register_name_server_period {
            if !(100..=60_000).contains(&v) {
                bail!("registerNameServerPeriod must be between 100 and 60000 ms, not {v}");
            }
            c.register_namesrv_interval = Duration::from_millis(v);
        }
        if let Some(v) = self.rebalance_lock_max_live_time {
            c.rebalance_lock_max_live = Duration::from_millis(v);
        }
        if let Some(v) = self.message_delay_level {
            c.message_delay_level = v;
        }
        if let Some(v) = self.timer_max_delay_sec {
            if v == 0 {
                bail!("timerMaxDelaySec must be positive");
            }
            c.timer_max_delay = Duration::from_secs(v);
        }
        if let Some(v) = self.timer_precision_ms {
            if !(1..=60_000).contains(&v) {
                bail!("timerPrecisionMs must be 1..=60000, got {v}");
            }
            c.timer_precision = Duration::from_millis(v);
        }
        Ok(())
    }

    /// The retention keys; the store checks their ranges when it opens.
    fn apply_retention(&self, s: &mut petrel_store::StoreConfig) -> anyhow::Result<()> {
        if let Some(hours) = self.file_reserved_time {
            let secs = hours
                .checked_mul(3600)
                .context("fileReservedTime is too large")?;
            s.file_reserved_time = Duration::from_secs(secs);
        }
        if let Some(v) = &self.delete_when {
            s.delete_when.clone_from(v);
        }
        if let Some(v) = self.disk_max_used_space_ratio {
            s.disk_max_used_space_ratio = v;
        }
        if let Some(v) = self.disk_space_clean_forcibly_ratio {
            s.disk_space_clean_forcibly_ratio = v;
        }
        if let Some(v) = self.disk_space_warning_level_ratio {
            s.disk_space_warning_level_ratio = v;
        }
        if let Some(v) = self.clean_resource_interval {
            s.clean_resource_interval_ms = v;
        }
        if let Some(v) = self.delete_commit_log_files_interval {
            s.delete_commit_log_files_interval_ms = v;
        }
        if let Some(v) = self.destroy_maped_file_interval_forcibly {
            s.destroy_mapped_file_interval_forcibly_ms = v;
        }
        if let Some(v) = self.delete_file_batch_max {
            s.delete_file_batch_max = v;
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
            rebalanceLockMaxLiveTime = 90000
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
        assert_eq!(config.rebalance_lock_max_live, Duration::from_secs(90));
        assert!(toml::from_str::<BrokerConfigFile>("brokerNmae = \"x\"").is_err());
        let bad: BrokerConfigFile = toml::from_str("flushDiskType = \"SOMETIMES\"").unwrap();
        assert!(bad.apply(&mut config).is_err());
    }

    #[test]
    fn retention_keys_use_rocketmq_names_and_units() {
        let file: BrokerConfigFile = toml::from_str(
            r#"
            fileReservedTime = 48
            deleteWhen = "03;15"
            diskMaxUsedSpaceRatio = 70
            diskSpaceCleanForciblyRatio = 0.8
            diskSpaceWarningLevelRatio = 0.95
            cleanResourceInterval = 5000
            deleteCommitLogFilesInterval = 50
            destroyMapedFileIntervalForcibly = 60000
            deleteFileBatchMax = 4
            "#,
        )
        .unwrap();
        let mut config = BrokerConfig::new(petrel_store::StoreConfig::new("/tmp/x"));
        file.apply(&mut config).unwrap();
        let s = &config.store;
        assert_eq!(s.file_reserved_time, Duration::from_secs(48 * 3600));
        assert_eq!(s.delete_when, "03;15");
        assert_eq!(s.disk_max_used_space_ratio, 70);
        assert_eq!(s.disk_space_clean_forcibly_ratio, 0.8);
        assert_eq!(s.disk_space_warning_level_ratio, 0.95);
        assert_eq!(s.clean_resource_interval_ms, 5000);
        assert_eq!(s.delete_commit_log_files_interval_ms, 50);
        assert_eq!(s.destroy_mapped_file_interval_forcibly_ms, 60000);
        assert_eq!(s.delete_file_batch_max, 4);
    }

    #[test]
    fn grpc_server_port_moves_or_turns_off_the_grpc_endpoint() {
        let mut config = BrokerConfig::new(petrel_store::StoreConfig::new("/tmp/x"));
        assert_eq!(config.grpc_listen, Some("0.0.0.0:8081".parse().unwrap()));
        let file: BrokerConfigFile = toml::from_str("grpcServerPort = 18081").unwrap();
        file.apply(&mut config).unwrap();
        assert_eq!(config.grpc_listen, Some("0.0.0.0:18081".parse().unwrap()));
        let off: BrokerConfigFile = toml::from_str("grpcServerPort = -1").unwrap();
        off.apply(&mut config).unwrap();
        assert_eq!(config.grpc_listen, None);
        let bad: BrokerConfigFile = toml::from_str("grpcServerPort = 70000").unwrap();
        assert!(bad.apply(&mut config).is_err());
    }

    #[test]
    fn metrics_keys_use_rocketmq_names() {
        let mut config = BrokerConfig::new(petrel_store::StoreConfig::new("/tmp/x"));
        assert_eq!(
            config.metrics_listen,
            Some("0.0.0.0:5557".parse().unwrap()),
            "RocketMQ's metricsPromExporterPort by default"
        );
        let file: BrokerConfigFile = toml::from_str(
            r#"
            metricsExporterType = "PROM"
            metricsPromExporterHost = "127.0.0.1"
            metricsPromExporterPort = 15557
            "#,
        )
        .unwrap();
        file.apply(&mut config).unwrap();
        assert!(config.metrics_enable);
        assert_eq!(
            config.metrics_listen,
            Some("127.0.0.1:15557".parse().unwrap())
        );
        let off: BrokerConfigFile = toml::from_str("metricsExporterType = \"DISABLE\"").unwrap();
        off.apply(&mut config).unwrap();
        assert!(!config.metrics_enable);
        assert_eq!(config.metrics_listen, None);
        let bad: BrokerConfigFile = toml::from_str("metricsExporterType = \"OTLP_GRPC\"").unwrap();
        assert!(bad.apply(&mut config).is_err());
    }

    #[test]
    fn tls_keys_set_the_mode_and_the_certificate_of_both_servers() {
        let mut config = BrokerConfig::new(petrel_store::StoreConfig::new("/tmp/x"));
        assert_eq!(config.tls.mode, petrel_remoting::TlsMode::Permissive);
        let file: BrokerConfigFile = toml::from_str(
            r#"
            tlsServerMode = "enforcing"
            tlsServerCertPath = "/etc/petrel/server.pem"
            tlsServerKeyPath = "/etc/petrel/server.key"
            tlsEnable = true
            "#,
        )
        .unwrap();
        file.apply(&mut config).unwrap();
        assert_eq!(config.tls.mode, petrel_remoting::TlsMode::Enforcing);
        assert!(config.tls_enable);
        assert_eq!(
            config.tls.cert_path.as_deref(),
            Some(Path::new("/etc/petrel/server.pem"))
        );
        assert_eq!(
            config.tls.key_path.as_deref(),
            Some(Path::new("/etc/petrel/server.key"))
        );
        let bad: BrokerConfigFile = toml::from_str("tlsServerMode = \"strict\"").unwrap();
        assert!(bad.apply(&mut config).is_err());
        let half: BrokerConfigFile = toml::from_str("tlsServerCertPath = \"/a.pem\"").unwrap();
        assert!(half.apply(&mut config).is_err());

        let mut ns = NamesrvConfig::default();
        let file: NamesrvConfigFile =
            toml::from_str("listenPort = 19876\ntlsServerMode = \"disabled\"").unwrap();
        file.apply(&mut ns).unwrap();
        assert_eq!(ns.listen_addr.port(), 19876);
        assert_eq!(ns.tls.mode, petrel_remoting::TlsMode::Disabled);
        assert!(toml::from_str::<NamesrvConfigFile>("brokerName = \"x\"").is_err());
    }

    #[test]
    fn acl_keys_turn_access_control_on_and_name_the_file() {
        let mut config = BrokerConfig::new(petrel_store::StoreConfig::new("/tmp/x"));
        assert!(!config.acl_enable, "off by default");
        assert_eq!(config.acl_file, None);
        let file: BrokerConfigFile =
            toml::from_str("aclEnable = true\naclFile = \"/etc/petrel/plain_acl.yml\"").unwrap();
        file.apply(&mut config).unwrap();
        assert!(config.acl_enable);
        assert_eq!(
            config.acl_file.as_deref(),
            Some(Path::new("/etc/petrel/plain_acl.yml"))
        );
    }
}
