//! Broker configuration, with RocketMQ's key names where they exist (`brokerName`,
//! `brokerClusterName`, `autoCreateTopicEnable`, `defaultTopicQueueNums`, `maxMessageSize`).

use std::net::SocketAddr;
use std::time::Duration;

use petrel_store::StoreConfig;

#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub broker_name: String,
    pub cluster_name: String,
    /// 0 = master; a slave's is above 0 (`brokerId`).
    pub broker_id: i64,
    /// `brokerRole`: ASYNC_MASTER (default), SYNC_MASTER or SLAVE (docs/replication.md).
    pub broker_role: crate::ha::BrokerRole,
    /// `haListenPort`: where a master streams its commit log to slaves. `None`: the remoting
    /// port + 1 (10912), or a free port when the remoting port is 0.
    pub ha_listen_port: Option<u16>,
    /// `haMasterAddress`: the master's HA `host:port` a slave follows; `None` takes the one the
    /// name servers answer the registration with.
    pub ha_master_address: Option<String>,
    /// `haMaxGapNotInSync`: a slave this many bytes behind is not in sync, and a SYNC_MASTER
    /// answers SLAVE_NOT_AVAILABLE instead of waiting for it (256 MiB).
    pub ha_max_gap_not_in_sync: u64,
    /// `enableControllerMode`: the controllers (`controllerAddr`) decide whether this broker is
    /// master or slave, and elect a new master when one fails (docs/replication.md).
    /// `brokerRole` then only says how it acts as master: SYNC_MASTER or ASYNC_MASTER.
    pub enable_controller_mode: bool,
    /// `controllerAddr`: the controllers, `host:port;host:port`.
    pub controller_addr: String,
    /// Set for each incarnation by the controller-mode supervisor; never read from a file.
    pub controlled: Option<crate::ha::ControlledRole>,
    /// Where the remoting server listens (port 0 picks a free port).
    pub listen_addr: SocketAddr,
    /// Also listen on `listen port - 2`, the "VIP channel" old Java clients (before 4.5.1) send to.
    pub vip_channel_enable: bool,
    /// The IP clients use to reach this broker (`brokerIP1`); also written into every stored
    /// record as the store host, from which message ids are derived.
    pub broker_ip: std::net::IpAddr,
    /// Name servers, `host:port;host:port`. Empty = register nowhere.
    pub namesrv_addr: String,
    pub region_id: String,
    /// `traceOn`: the broker traces what happens to each message after it is stored
    /// (delivered, committed, retried, dead-lettered, transaction ended) in
    /// `rmq_sys_broker_trace` (on).
    pub trace_on: bool,
    /// `compressedRegister`: always send the name servers the compressed registration body
    /// (off; a broker with more than 1,000 topics compresses it anyway).
    pub compressed_register: bool,
    /// `traceTopicEnable`: create `RMQ_SYS_TRACE_TOPIC`, where clients with message trace on
    /// write theirs (on; RocketMQ's default is off, which leaves tracing clients depending on
    /// topic auto-creation).
    pub trace_topic_enable: bool,
    /// Create a topic on its first send, from the `TBW102` template.
    pub auto_create_topic_enable: bool,
    /// Create a subscription group on its first heartbeat.
    pub auto_create_subscription_group: bool,
    pub default_topic_queue_nums: i32,
    /// Largest message body accepted (`maxMessageSize`), bytes.
    pub max_message_bytes: usize,
    /// Longest time a pull may be parked waiting for messages.
    pub long_poll_max: Duration,
    pub register_namesrv_interval: Duration,
    /// A client not heard from for this long is dropped.
    pub channel_expired: Duration,
    pub offset_persist_interval: Duration,
    /// After start, membership changes are not pushed to consumers for this long: a restarted
    /// broker relearns each group from heartbeats one member at a time, and telling the first
    /// one it is alone would make it take every queue from members still pulling them. At the
    /// end of the grace every group is told once.
    pub consumer_rejoin_grace: Duration,
    /// Most messages in one pull answer.
    pub max_pull_msg_nums: u32,
    /// `enablePropertyFilter`: accept SQL92 subscriptions. On by default (RocketMQ's is off).
    pub enable_property_filter: bool,
    /// How long an orderly consumer's queue lock lives without renewal
    /// (`rebalanceLockMaxLiveTime`, 60 s); clients renew every 20 s.
    pub rebalance_lock_max_live: Duration,
    /// `messageDelayLevel`: the delay of each level, space-separated, units ms/s/m/h/d (default
    /// RocketMQ's `1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h`). Parsed at
    /// start; a bad value stops the start.
    pub message_delay_level: String,
    /// `timerMaxDelaySec`: the furthest ahead a 5.x timer message (`TIMER_DELIVER_MS`,
    /// `TIMER_DELAY_SEC`, `TIMER_DELAY_MS`) may ask to be delivered; further is refused.
    pub timer_max_delay: Duration,
    /// `timerPrecisionMs`: the width of one slot of the timing wheel (1 s). Delivery is exact to
    /// the millisecond whatever the width; it sets how much of the wheel is read ahead.
    pub timer_precision: Duration,
    /// `transactionTimeout`: a half message unresolved this long is checked back with its
    /// producer group (60 s; RocketMQ's 6 s is too short for real local transactions). A
    /// message's `CHECK_IMMUNITY_TIME_IN_SECONDS` overrides it for the first check.
    pub transaction_timeout: Duration,
    /// `transactionCheckInterval`: the time between two checks of one half message.
    pub transaction_check_interval: Duration,
    /// `transactionCheckMax`: checks before a half message goes to TRANS_CHECK_MAX_TIME_TOPIC.
    pub transaction_check_max: u32,
    /// `metricsExporterType` other than `DISABLE`: count metrics (RocketMQ's default is
    /// DISABLE; Petrel's is PROM, on).
    pub metrics_enable: bool,
    /// Where `/metrics` and `/health` are served (`metricsPromExporterHost`,
    /// `metricsPromExporterPort`: 0.0.0.0:5557); `None` serves nothing. Port 0 picks a free port.
    pub metrics_listen: Option<SocketAddr>,
    /// `grpcServerPort`: where the gRPC endpoint of the 5.x clients
    /// (`apache.rocketmq.v2.MessagingService`, crates/proxy) listens beside the broker:
    /// 0.0.0.0:8081, TLS and plaintext on one port as `tls` allows. `None` serves none; port 0
    /// picks a free one. The broker itself does not serve it: whoever starts the broker starts
    /// the endpoint (`petrel broker`, `petrel standalone`).
    pub grpc_listen: Option<SocketAddr>,
    /// `aclEnable`: check every request against `plain_acl.yml` (off).
    pub acl_enable: bool,
    /// `aclFile`: where the rules are; `None` = `<store root>/config/plain_acl.yml`.
    pub acl_file: Option<std::path::PathBuf>,
    /// `aclSignatureMaxAgeSec`: a signed send must be born within this many seconds of the
    /// broker's clock, either way, and is refused if its signature was seen (120; 0 = off).
    pub acl_signature_max_age_sec: u64,
    /// `aclReplayCacheMaxEntries`: signatures of sends remembered at most (2097152).
    pub acl_replay_cache_max_entries: usize,
    /// `tlsServerMode`, `tlsServerCertPath`, `tlsServerKeyPath`: TLS on the remoting ports
    /// (permissive: TLS and plaintext both accepted). Without a certificate, a self-signed one
    /// kept in [`BrokerConfig::tls_self_signed_dir`] is used.
    pub tls: petrel_remoting::TlsConfig,
    /// `tlsEnable` (RocketMQ's `tls.enable`): register with the name servers over TLS, trusting
    /// any certificate (off; `petrel standalone` turns it on when its name server enforces TLS).
    pub tls_enable: bool,
    pub store: StoreConfig,
}

/// RocketMQ's `metricsPromExporterPort` default.
pub const DEFAULT_METRICS_PROM_EXPORTER_PORT: u16 = 5557;
/// RocketMQ's proxy `grpcServerPort` default.
pub const DEFAULT_GRPC_SERVER_PORT: u16 = 8081;

impl BrokerConfig {
    pub fn new(store: StoreConfig) -> Self {
        BrokerConfig {
            broker_name: "broker-a".into(),
            cluster_name: petrel_common::topic::DEFAULT_CLUSTER.into(),
            broker_id: 0,
            broker_role: crate::ha::BrokerRole::AsyncMaster,
            ha_listen_port: None,
            ha_master_address: None,
            ha_max_gap_not_in_sync: crate::ha::DEFAULT_HA_MAX_GAP_NOT_IN_SYNC,
            enable_controller_mode: false,
            controller_addr: String::new(),
            controlled: None,
            listen_addr: "0.0.0.0:10911".parse().expect("static address"),
            vip_channel_enable: true,
            broker_ip: "127.0.0.1".parse().expect("static address"),
            namesrv_addr: String::new(),
            region_id: "DefaultRegion".into(),
            trace_on: true,
            trace_topic_enable: true,
            compressed_register: false,
            auto_create_topic_enable: true,
            auto_create_subscription_group: true,
            default_topic_queue_nums: 8,
            max_message_bytes: 4 * 1024 * 1024,
            long_poll_max: Duration::from_secs(30),
            register_namesrv_interval: Duration::from_secs(30),
            channel_expired: Duration::from_secs(120),
            offset_persist_interval: Duration::from_secs(5),
            consumer_rejoin_grace: Duration::from_secs(5),
            max_pull_msg_nums: 32,
            enable_property_filter: true,
            rebalance_lock_max_live: Duration::from_secs(60),
            message_delay_level: crate::schedule::DEFAULT_MESSAGE_DELAY_LEVEL.to_owned(),
            timer_max_delay: Duration::from_millis(
                crate::schedule::DEFAULT_TIMER_MAX_DELAY_MS as u64,
            ),
            timer_precision: Duration::from_secs(1),
            transaction_timeout: Duration::from_secs(60),
            transaction_check_interval: Duration::from_secs(30),
            transaction_check_max: 15,
            metrics_enable: true,
            metrics_listen: Some(SocketAddr::from((
                [0, 0, 0, 0],
                DEFAULT_METRICS_PROM_EXPORTER_PORT,
            ))),
            grpc_listen: Some(SocketAddr::from(([0, 0, 0, 0], DEFAULT_GRPC_SERVER_PORT))),
            acl_enable: false,
            acl_file: None,
            acl_signature_max_age_sec: crate::acl::DEFAULT_ACL_SIGNATURE_MAX_AGE_SEC,
            acl_replay_cache_max_entries: crate::acl::DEFAULT_ACL_REPLAY_CACHE_MAX_ENTRIES,
            tls: petrel_remoting::TlsConfig::default(),
            tls_enable: false,
            store,
        }
    }

    /// Where the self-signed TLS certificate is generated and kept: `<store root>/config/tls`.
    pub fn tls_self_signed_dir(&self) -> std::path::PathBuf {
        self.store.root_dir.join("config").join("tls")
    }
}
