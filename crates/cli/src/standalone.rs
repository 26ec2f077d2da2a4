//! Standalone mode: a name server, a broker and its gRPC endpoint (the 5.x clients') in one
//! process, the broker registered with the name server. All serve the broker's TLS settings, with
//! one self-signed certificate kept under its store.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use petrel_broker::{BrokerConfig, BrokerHandle};
use petrel_namesrv::{NameServer, NamesrvConfig};
use petrel_proxy::ProxyHandle;
use petrel_remoting::CancellationToken;
use petrel_store::{FlushDiskType, StoreConfig};

#[derive(Debug, Clone)]
pub struct StandaloneConfig {
    pub data_dir: PathBuf,
    pub namesrv_listen: SocketAddr,
    pub broker_listen: SocketAddr,
    /// The IP the broker advertises to clients.
    pub broker_ip: IpAddr,
    pub flush_disk_type: FlushDiskType,
    /// Commit-log segment size; 1 GiB unless a test wants small files.
    pub commit_log_file_size: u64,
    /// A broker TOML file (see `config_file`) applied over these settings.
    pub broker_config_file: Option<PathBuf>,
    /// The broker's `messageDelayLevel`; `None` keeps RocketMQ's default.
    pub message_delay_level: Option<String>,
    /// Where the broker serves `/metrics` and `/health` (0.0.0.0:5557); `None` serves nothing.
    pub metrics_listen: Option<SocketAddr>,
    /// Where the gRPC endpoint of the 5.x clients listens (0.0.0.0:8081, RocketMQ's
    /// `grpcServerPort`); `None` serves none. The config file's `grpcServerPort` wins.
    pub grpc_listen: Option<SocketAddr>,
}

impl StandaloneConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        StandaloneConfig {
            data_dir: data_dir.into(),
            namesrv_listen: "0.0.0.0:9876".parse().expect("static address"),
            broker_listen: "0.0.0.0:10911".parse().expect("static address"),
            broker_ip: "127.0.0.1".parse().expect("static address"),
            flush_disk_type: FlushDiskType::AsyncFlush,
            commit_log_file_size: 1024 * 1024 * 1024,
            broker_config_file: None,
            message_delay_level: None,
            metrics_listen: Some(SocketAddr::from((
                [0, 0, 0, 0],
                petrel_broker::DEFAULT_METRICS_PROM_EXPORTER_PORT,
            ))),
            grpc_listen: Some(SocketAddr::from((
                [0, 0, 0, 0],
                petrel_broker::DEFAULT_GRPC_SERVER_PORT,
            ))),
        }
    }

    /// Every server on a free loopback port (tests).
    pub fn ephemeral(data_dir: impl Into<PathBuf>) -> Self {
        let mut c = Self::new(data_dir);
        c.namesrv_listen = "127.0.0.1:0".parse().expect("static address");
        c.broker_listen = "127.0.0.1:0".parse().expect("static address");
        c.metrics_listen = Some("127.0.0.1:0".parse().expect("static address"));
        c.grpc_listen = Some("127.0.0.1:0".parse().expect("static address"));
        c.commit_log_file_size = 64 * 1024 * 1024;
        c
    }

    pub fn broker_config(&self, namesrv_addr: SocketAddr) -> BrokerConfig {
        let mut store = StoreConfig::new(&self.data_dir);
        store.flush_disk_type = self.flush_disk_type;
        store.commit_log_file_size = self.commit_log_file_size;
        let mut b = BrokerConfig::new(store);
        b.listen_addr = self.broker_listen;
        b.metrics_listen = self.metrics_listen;
        b.grpc_listen = self.grpc_listen;
        b.broker_ip = self.broker_ip;
        let ns_ip = if namesrv_addr.ip().is_unspecified() {
            IpAddr::from([127, 0, 0, 1])
        } else {
            namesrv_addr.ip()
        };
        b.namesrv_addr = SocketAddr::new(ns_ip, namesrv_addr.port()).to_string();
        if let Some(levels) = &self.message_delay_level {
            b.message_delay_level = levels.clone();
        }
        b
    }
}

pub struct Standalone {
    namesrv: NameServer,
    broker: BrokerHandle,
    grpc: Option<ProxyHandle>,
    shutdown: CancellationToken,
}

impl Standalone {
    pub async fn start(config: StandaloneConfig) -> anyhow::Result<Standalone> {
        let shutdown = CancellationToken::new();
        let mut broker_config = config.broker_config(config.namesrv_listen);
        if let Some(path) = &config.broker_config_file {
            crate::config_file::BrokerConfigFile::load(path)?.apply(&mut broker_config)?;
        }
        let ns_config = NamesrvConfig {
            listen_addr: config.namesrv_listen,
            tls: broker_config.tls.clone(),
            tls_self_signed_dir: Some(broker_config.tls_self_signed_dir()),
            ..NamesrvConfig::default()
        };
        let namesrv = NameServer::start(ns_config, shutdown.clone())
            .await
            .with_context(|| {
                format!("cannot start the name server on {}", config.namesrv_listen)
            })?;
        // In standalone the broker always registers with the name server beside it, over TLS
        // when that one takes nothing else.
        broker_config.namesrv_addr = config.broker_config(namesrv.local_addr()).namesrv_addr;
        broker_config.tls_enable |= broker_config.tls.mode == petrel_remoting::TlsMode::Enforcing;
        let dashboard = crate::dashboard::for_namesrv(
            &broker_config.namesrv_addr,
            crate::dashboard::broker_credentials(broker_config.acl_enable)?,
            &shutdown,
        );
        let broker = petrel_broker::Broker::start_with_routes(
            broker_config,
            CancellationToken::new(),
            Some(dashboard),
        )
        .await
        .with_context(|| format!("cannot start the broker on {}", config.broker_listen))?;
        if let Some(addr) = broker.metrics_addr() {
            crate::dashboard::log_url(addr);
        }
        let grpc = start_grpc(&broker).await;
        Ok(Standalone {
            namesrv,
            broker,
            grpc,
            shutdown,
        })
    }

    pub fn namesrv_addr(&self) -> SocketAddr {
        loopback_if_unspecified(self.namesrv.local_addr())
    }

    pub fn broker_addr(&self) -> SocketAddr {
        self.broker.broker.store_host
    }

    /// Where `/metrics` and `/health` are served, if they are (loopback for an unspecified IP).
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.broker.metrics_addr().map(loopback_if_unspecified)
    }

    /// Where the gRPC endpoint of the 5.x clients listens, if it does (loopback for an
    /// unspecified IP).
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc
            .as_ref()
            .map(|g| loopback_if_unspecified(g.local_addr()))
    }

    pub fn broker(&self) -> &BrokerHandle {
        &self.broker
    }

    /// Clean shutdown: the gRPC endpoint stops, the broker flushes and removes its abort
    /// marker, then the name server stops.
    pub async fn shutdown(self) {
        if let Some(grpc) = self.grpc {
            grpc.shutdown().await;
        }
        self.broker.shutdown().await;
        self.shutdown.cancel();
    }
}

/// Starts the gRPC endpoint of `broker` where its config says. A port that cannot be bound
/// is logged, not fatal (as the metrics port): the remoting clients are served all the same.
pub async fn start_grpc(broker: &BrokerHandle) -> Option<ProxyHandle> {
    let addr = broker.broker.config.grpc_listen?;
    match petrel_proxy::start(broker.broker.clone(), addr).await {
        Ok(handle) => Some(handle),
        Err(e) => {
            tracing::warn!("the gRPC endpoint of the 5.x clients is off: {e}");
            None
        }
    }
}

fn loopback_if_unspecified(a: SocketAddr) -> SocketAddr {
    if a.ip().is_unspecified() {
        SocketAddr::new(IpAddr::from([127, 0, 0, 1]), a.port())
    } else {
        a
    }
}
