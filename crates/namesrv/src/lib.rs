//! The name server: a routing registry. Brokers register every 30 s with their topic configs,
//! clients ask which broker groups serve a topic, and a broker that goes silent (or whose
//! connection closes) is dropped. Stateless apart from an in-memory KV config: several run side
//! by side without talking to each other.
//!
//! - `route_info`: the routing tables and their rules (no sockets).
//! - `processor`: request codes → responses over those tables.
//! - `register_body` (from `petrel_common`, which brokers encode with): REGISTER_BROKER bodies
//!   (JSON or compressed) and their CRC.
//! - `kv_config`: the namespace/key/value store.
//! - `headers`: typed headers of the name-server-only requests.
//!
//! [`NameServer::start`] wires them to a listening socket and a scan task; cancelling the
//! shutdown token stops both and closes every connection.

pub mod headers;
pub mod kv_config;
pub mod processor;
pub use petrel_common::register_body;
pub mod route_info;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use petrel_common::msg_id::now_ms;
use petrel_remoting::{serve, CancellationToken, ServerTls, TlsConfig};
use tokio::net::TcpListener;

pub use kv_config::{KvConfigManager, KvTable};
pub use processor::{NamesrvError, NamesrvProcessor};
pub use route_info::{
    BrokerRegistration, RegisterBrokerResult, RouteInfoManager, BROKER_CHANNEL_EXPIRED_MS,
};

/// The default name server port.
pub const DEFAULT_LISTEN_PORT: u16 = 9876;
/// How often silent brokers are looked for (RocketMQ scans every 5 s).
pub const SCAN_NOT_ACTIVE_BROKER_INTERVAL_MS: u64 = 5_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamesrvConfig {
    /// Where to listen; port 0 picks a free port (see [`NameServer::local_addr`]). Default `0.0.0.0:9876`.
    pub listen_addr: SocketAddr,
    /// A broker silent this long is dropped, unless it sent its own `heartbeatTimeoutMillis`. Default 120 000.
    pub broker_expired_ms: u64,
    /// Period of the scan for silent brokers. Default 5 000.
    pub scan_interval_ms: u64,
    /// TLS on the port (permissive: TLS and plaintext both accepted).
    pub tls: TlsConfig,
    /// Where a self-signed certificate is kept when `tls` names none; `None` (the default, the
    /// name server having no data directory) makes a fresh one in memory at each start.
    pub tls_self_signed_dir: Option<PathBuf>,
}

impl Default for NamesrvConfig {
    fn default() -> Self {
        NamesrvConfig {
            listen_addr: SocketAddr::from(([0, 0, 0, 0], DEFAULT_LISTEN_PORT)),
            broker_expired_ms: BROKER_CHANNEL_EXPIRED_MS,
            scan_interval_ms: SCAN_NOT_ACTIVE_BROKER_INTERVAL_MS,
            tls: TlsConfig::default(),
            tls_self_signed_dir: None,
        }
    }
}

/// A running name server.
#[derive(Debug)]
pub struct NameServer {
    local_addr: SocketAddr,
    processor: Arc<NamesrvProcessor>,
}

impl NameServer {
    /// Binds `config.listen_addr`, then serves requests and scans for silent brokers until
    /// `shutdown` is cancelled.
    pub async fn start(
        config: NamesrvConfig,
        shutdown: CancellationToken,
    ) -> std::io::Result<NameServer> {
        let tls = ServerTls::new(&config.tls, config.tls_self_signed_dir.as_deref())
            .map_err(std::io::Error::other)?;
        let listener = TcpListener::bind(config.listen_addr).await?;
        let local_addr = listener.local_addr()?;
        let routes = Arc::new(RouteInfoManager::new(config.broker_expired_ms));
        let processor = Arc::new(NamesrvProcessor::new(routes.clone()));
        tokio::spawn(serve(listener, processor.clone(), tls, shutdown.clone()));
        let period = Duration::from_millis(config.scan_interval_ms.max(1));
        tokio::spawn(scan_not_active_brokers(routes, period, shutdown));
        tracing::info!(addr = %local_addr, "name server listening");
        Ok(NameServer {
            local_addr,
            processor,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The live routing tables (for in-process use, e.g. `petrel standalone` and tests).
    pub fn route_info(&self) -> &Arc<RouteInfoManager> {
        self.processor.routes()
    }

    pub fn kv_config(&self) -> &KvConfigManager {
        self.processor.kv_config()
    }
}

async fn scan_not_active_brokers(
    routes: Arc<RouteInfoManager>,
    period: Duration,
    shutdown: CancellationToken,
) {
    // Nothing can be silent yet at start: the first scan comes one period in.
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {
                routes.scan_not_active(now_ms());
            }
        }
    }
}
