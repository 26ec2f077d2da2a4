//! Registration with the name servers: the topics that changed at once, every
//! `register_namesrv_interval` (30 s) a check, and an unregistration at shutdown.
//!
//! A topic change sends only the changed topics (an increment, as RocketMQ's broker does after
//! UPDATE_AND_CREATE_TOPIC); the name server merges them into its routes. Changes made while a
//! registration is on its way go together in the next one, so creating 100,000 topics costs a
//! few thousand small registrations, not 100,000 copies of a table that grows to megabytes.
//!
//! The periodic round asks each name server whether it still holds this broker's data version
//! (QUERY_DATA_VERSION, which also counts as a heartbeat) and registers in full only where it
//! does not, or where an increment failed: with many topics the full body is megabytes
//! (RocketMQ's weak point), and nothing has changed in most rounds.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use petrel_common::protocol::{RegisterBrokerBody, TopicConfigSerializeWrapper};
use petrel_common::register_body;
use petrel_remoting::code::{request, response};
use petrel_remoting::headers::{
    QueryDataVersionRequestHeader, QueryDataVersionResponseHeader, RegisterBrokerRequestHeader,
    RegisterBrokerResponseHeader, UnregisterBrokerRequestHeader,
};
use petrel_remoting::{CancellationToken, Connection, NoRequests, RemotingCommand};

use crate::broker::Broker;

const NAMESRV_TIMEOUT: Duration = Duration::from_secs(3);
/// A slave registers at least this often.
const SLAVE_REGISTER_PERIOD: Duration = Duration::from_secs(2);
/// Above this many topics the registration body is always sent compressed
/// (`compressedRegister` forces it for any number): its JSON grows by about 150 bytes a topic.
const COMPRESS_ABOVE_TOPICS: usize = 1000;

pub struct NamesrvRegistrar {
    addrs: Vec<String>,
    conns: Mutex<Vec<Option<Connection>>>,
    /// Speak TLS to the name servers (`tlsEnable`).
    tls: bool,
    /// Full REGISTER_BROKER requests answered with success, over all name servers.
    full_registrations: AtomicU64,
    /// Increments (REGISTER_BROKER with the changed topics only) answered with success.
    increments: AtomicU64,
    /// Topics changed since a registration last drained this set.
    changed: Mutex<BTreeSet<String>>,
    /// Per name server: an increment failed, so its copy may lack topics whatever its data
    /// version says; the next round registers there in full.
    missed_increment: Mutex<Vec<bool>>,
    /// One registration at a time: a registration that drained a topic has reached the name
    /// servers (or failed) before the next one starts, so waiting for our turn and finding the
    /// set empty means our change is registered.
    turn: tokio::sync::Mutex<()>,
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
        let missed_increment = Mutex::new(vec![false; addrs.len()]);
        NamesrvRegistrar {
            addrs,
            conns,
            tls,
            full_registrations: AtomicU64::new(0),
            increments: AtomicU64::new(0),
            changed: Mutex::default(),
            missed_increment,
            turn: tokio::sync::Mutex::new(()),
        }
    }

    /// Increments the name servers accepted so far.
    pub fn increments(&self) -> u64 {
        self.increments.load(Ordering::Relaxed)
    }

    /// Notes a created, updated or deleted topic for the next registration.
    pub fn topic_changed(&self, topic: &str) {
        self.changed.lock().insert(topic.to_owned());
    }

    /// Registers the topics changed so far (see [`NamesrvRegistrar::topic_changed`]) with every
    /// name server and returns when they have answered. A deleted topic is sent only by
    /// omission: the name server keeps it until DELETE_TOPIC_IN_NAMESRV.
    pub async fn register_changes(&self, broker: &Broker) {
        let _turn = self.turn.lock().await;
        let names = std::mem::take(&mut *self.changed.lock());
        if names.is_empty() || self.addrs.is_empty() {
            return;
        }
        let wrapper = broker.topics.snapshot_of(&names);
        let all: Vec<usize> = (0..self.addrs.len()).collect();
        let failed = self.send(broker, wrapper, &all, &self.increments).await;
        let mut missed = self.missed_increment.lock();
        for i in failed {
            missed[i] = true;
        }
    }

    /// Full registrations (the whole topic table) the name servers accepted so far.
    pub fn full_registrations(&self) -> u64 {
        self.full_registrations.load(Ordering::Relaxed)
    }

    pub async fn run(self: Arc<Self>, broker: Arc<Broker>, shutdown: CancellationToken) {
        if self.addrs.is_empty() {
            return;
        }
        // A slave learns (and relearns, when it moves) its master from every registration's
        // answer: it registers in full, and often.
        let slave = !broker.config.broker_role.is_master();
        let period = if slave {
            broker
                .config
                .register_namesrv_interval
                .min(SLAVE_REGISTER_PERIOD)
        } else {
            broker.config.register_namesrv_interval
        };
        let mut tick = tokio::time::interval(period);
        tick.tick().await; // the first tick is immediate; start() has just registered
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {
                    if slave {
                        self.register_all(&broker).await
                    } else {
                        self.refresh_all(&broker).await
                    }
                }
                _ = broker.topics_changed.notified() => self.register_changes(&broker).await,
            }
        }
    }

    /// The periodic round: a full registration only where the name server's copy is stale.
    async fn refresh_all(&self, broker: &Broker) {
        let version = broker.topics.snapshot().data_version;
        let body = match serde_json::to_vec(&version) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!("cannot encode the data version: {e}");
                return;
            }
        };
        let header = QueryDataVersionRequestHeader {
            broker_name: broker.config.broker_name.clone(),
            broker_addr: broker.broker_addr(),
            cluster_name: broker.config.cluster_name.clone(),
            broker_id: broker.config.broker_id,
        };
        let mut stale = Vec::new();
        for i in 0..self.addrs.len() {
            let Some(conn) = self.connection(i).await else {
                continue;
            };
            let cmd = RemotingCommand::request_with_header(request::QUERY_DATA_VERSION, &header)
                .with_body(body.clone());
            let unchanged = match conn.request(cmd, NAMESRV_TIMEOUT).await {
                _ if self.missed_increment.lock()[i] => false,
                Ok(resp) if resp.code == response::SUCCESS => resp
                    .decode_header::<QueryDataVersionResponseHeader>()
                    .is_ok_and(|h| !h.changed),
                Ok(_) | Err(_) => false,
            };
            if !unchanged {
                stale.push(i);
            }
        }
        // Increments on their way carry the version the name server lacks: a full registration
        // now would resend the table for nothing in the middle of a burst of creations.
        let increments_pending = !self.changed.lock().is_empty() || self.turn.try_lock().is_err();
        if !stale.is_empty() && !increments_pending {
            self.register(broker, &stale).await;
        }
    }

    /// A full registration with every name server.
    pub async fn register_all(&self, broker: &Broker) {
        let all: Vec<usize> = (0..self.addrs.len()).collect();
        self.register(broker, &all).await;
    }

    /// A full registration with the name servers `targets` (indexes into `addrs`).
    async fn register(&self, broker: &Broker, targets: &[usize]) {
        let _turn = self.turn.lock().await;
        // The full table covers every change made before the snapshot.
        self.changed.lock().clear();
        let wrapper = broker.topics.snapshot();
        let failed = self
            .send(broker, wrapper, targets, &self.full_registrations)
            .await;
        let mut missed = self.missed_increment.lock();
        for &i in targets {
            missed[i] = failed.contains(&i);
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

    /// REGISTER_BROKER carrying `wrapper` with the name servers `targets`; counts each success
    /// in `accepted` and returns the targets that did not accept it.
    async fn send(
        &self,
        broker: &Broker,
        wrapper: TopicConfigSerializeWrapper,
        targets: &[usize],
        accepted: &AtomicU64,
    ) -> Vec<usize> {
        let body = RegisterBrokerBody {
            topic_config_serialize_wrapper: wrapper,
            filter_server_list: Vec::new(),
        };
        let compressed = broker.config.compressed_register
            || body.topic_config_serialize_wrapper.topic_config_table.len() > COMPRESS_ABOVE_TOPICS;
        let encoded = if compressed {
            register_body::encode_compressed(&body).map_err(|e| e.to_string())
        } else {
            serde_json::to_vec(&body).map_err(|e| e.to_string())
        };
        let body = match encoded {
            Ok(b) => b,
            Err(e) => {
                tracing::error!("cannot encode the registration body: {e}");
                return targets.to_vec();
            }
        };
        let crc = register_body::body_crc32(&body);
        let header = RegisterBrokerRequestHeader {
            broker_name: broker.config.broker_name.clone(),
            broker_addr: broker.broker_addr(),
            cluster_name: broker.config.cluster_name.clone(),
            // A slave has no HA port of its own; RocketMQ's default is what it would be.
            ha_server_addr: format!(
                "{}:{}",
                broker.store_host.ip(),
                broker
                    .ha
                    .listen_addr()
                    .map_or(broker.store_host.port().saturating_add(1), |a| a.port())
            ),
            broker_id: broker.config.broker_id,
            heartbeat_timeout_millis: None,
            compressed: Some(compressed),
            body_crc32: Some(crc),
        };
        let mut failed = Vec::new();
        for &i in targets {
            let Some(conn) = self.connection(i).await else {
                failed.push(i);
                continue;
            };
            let cmd = RemotingCommand::request_with_header(request::REGISTER_BROKER, &header)
                .with_body(body.clone());
            match conn.request(cmd, NAMESRV_TIMEOUT).await {
                Ok(resp) if resp.code == response::SUCCESS => {
                    accepted.fetch_add(1, Ordering::Relaxed);
                    // A slave learns its master from the answer.
                    if let Ok(h) = resp.decode_header::<RegisterBrokerResponseHeader>() {
                        broker.ha.learn_master(h.ha_server_addr, h.master_addr);
                    }
                }
                Ok(resp) => {
                    tracing::warn!(
                        namesrv = %self.addrs[i],
                        code = resp.code,
                        remark = ?resp.remark,
                        "name server refused the registration"
                    );
                    failed.push(i);
                }
                Err(e) => {
                    tracing::warn!(namesrv = %self.addrs[i], "registration failed: {e}");
                    failed.push(i);
                }
            }
        }
        failed
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
