//! Registration with the name servers: every `register_namesrv_interval` (30 s), at once when a
//! topic is created or changed, and an unregistration at shutdown.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use petrel_common::protocol::RegisterBrokerBody;
use petrel_remoting::code::{request, response};
use petrel_remoting::headers::{RegisterBrokerRequestHeader, UnregisterBrokerRequestHeader};
use petrel_remoting::{CancellationToken, Connection, NoRequests, RemotingCommand};

use crate::broker::Broker;

const NAMESRV_TIMEOUT: Duration = Duration::from_secs(3);

pub struct NamesrvRegistrar {
    addrs: Vec<String>,
    conns: Mutex<Vec<Option<Connection>>>,
    /// Speak TLS to the name servers (`tlsEnable`).
    tls: bool,
}

impl NamesrvRegistrar {
    pub fn new(namesrv_addr: &str, tls: bool) -> Self {
        let addrs: Vec<String> = namesrv_addr
            .split(';')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect();
        let conns = Mutex::new(vec![None; addrs.len()]);
        NamesrvRegistrar { addrs, conns, tls }
    }

    pub async fn run(self: Arc<Self>, broker: Arc<Broker>, shutdown: CancellationToken) {
        if self.addrs.is_empty() {
            return;
        }
        let mut tick = tokio::time::interval(broker.config.register_namesrv_interval);
        tick.tick().await; // the first tick is immediate; start() has just registered
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
                _ = broker.topics_changed.notified() => {}
            }
            self.register_all(&broker).await;
        }
    }

    async fn connection(&self, i: usize) -> Option<Connection> {
        if let Some(c) = self.conns.lock()[i].clone().filter(|c| !c.is_closed()) {
            return Some(c);
        }
        let (addr, handler) = (&self.addrs[i], Arc::new(NoRequests));
        let connected = if self.tls {
            Connection::connect_tls(addr, handler, NAMESRV_TIMEOUT).await
        } else {
            Connection::connect(addr, handler, NAMESRV_TIMEOUT).await
        };
        match connected {
            Ok(c) => {
                self.conns.lock()[i] = Some(c.clone());
                Some(c)
            }
            Err(e) => {
                tracing::warn!(namesrv = %self.addrs[i], "cannot reach name server: {e}");
                None
            }
        }
    }

    pub async fn register_all(&self, broker: &Broker) {
        let body = RegisterBrokerBody {
            topic_config_serialize_wrapper: broker.topics.snapshot(),
            filter_server_list: Vec::new(),
        };
        let body = match serde_json::to_vec(&body) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!("cannot encode the registration body: {e}");
                return;
            }
        };
        let crc = (crc32fast::hash(&body) & 0x7FFF_FFFF) as i32;
        let header = RegisterBrokerRequestHeader {
            broker_name: broker.config.broker_name.clone(),
            broker_addr: broker.broker_addr(),
            cluster_name: broker.config.cluster_name.clone(),
            ha_server_addr: format!(
                "{}:{}",
                broker.store_host.ip(),
                broker.store_host.port().saturating_add(1)
            ),
            broker_id: broker.config.broker_id,
            heartbeat_timeout_millis: None,
            compressed: Some(false),
            body_crc32: Some(crc),
        };
        for i in 0..self.addrs.len() {
            let Some(conn) = self.connection(i).await else {
                continue;
            };
            let cmd = RemotingCommand::request_with_header(request::REGISTER_BROKER, &header)
                .with_body(body.clone());
            match conn.request(cmd, NAMESRV_TIMEOUT).await {
                Ok(resp) if resp.code == response::SUCCESS => {}
                Ok(resp) => tracing::warn!(
                    namesrv = %self.addrs[i],
                    code = resp.code,
                    remark = ?resp.remark,
                    "name server refused the registration"
                ),
                Err(e) => tracing::warn!(namesrv = %self.addrs[i], "registration failed: {e}"),
            }
        }
    }

    pub async fn unregister_all(&self, broker: &Broker) {
        let header = UnregisterBrokerRequestHeader {
            broker_name: broker.config.broker_name.clone(),
            broker_addr: broker.broker_addr(),
            cluster_name: broker.config.cluster_name.clone(),
            broker_id: broker.config.broker_id,
        };
        for i in 0..self.addrs.len() {
            let Some(conn) = self.connection(i).await else {
                continue;
            };
            let cmd = RemotingCommand::request_with_header(request::UNREGISTER_BROKER, &header);
            if let Err(e) = conn.request(cmd, NAMESRV_TIMEOUT).await {
                tracing::warn!(namesrv = %self.addrs[i], "unregistration failed: {e}");
            }
            conn.close();
        }
    }
}
