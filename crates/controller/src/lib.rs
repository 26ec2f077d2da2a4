//! `petrel controller`: decides, for each broker group, which replica is master — RocketMQ 5's
//! controller mode (reference §8.3). Three (or five) controllers agree through Raft (openraft)
//! on each group's replicas, master, master epoch and in-sync set ([`state`]). Brokers in
//! controller mode register, then heartbeat every second with their log end; the leading
//! controller notes the heartbeats ([`liveness`]) and, when a master goes silent, elects the
//! in-sync replica furthest ahead. Brokers learn the outcome from the answer to their next
//! heartbeat and switch roles on their own.
//!
//! - [`state`]: the agreed state and its commands (no clocks, no sockets).
//! - [`raft`]: openraft's types, the log file and the state machine.
//! - [`network`]: Raft messages between controllers over remoting.
//! - [`processor`]: the requests brokers, tools and peers send.
//! - [`liveness`]: heartbeats seen by the leader, the election and in-sync set scan.
//! - [`client`]: what a broker uses to talk to the controllers.
//! - [`replica`]: the broker's half of the protocol (lease, when a master waits for its slave).

pub mod client;
pub mod headers;
pub mod liveness;
pub mod network;
pub mod processor;
pub mod raft;
pub mod replica;
pub mod state;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::BasicNode;
use petrel_remoting::{serve, CancellationToken, ServerTls};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use crate::liveness::Liveness;
use crate::raft::{LogStore, NodeId, Raft, StateMachine};

/// The default controller port.
pub const DEFAULT_LISTEN_PORT: u16 = 9878;
/// `brokerNotActiveTimeoutMillis`: a master silent this long is replaced. RocketMQ's default is
/// 10 s; Petrel's is shorter so that a new master serves within 10 s of a failure.
pub const DEFAULT_BROKER_NOT_ACTIVE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the leader looks for silent masters and moves the in-sync sets.
pub const DEFAULT_SCAN_INTERVAL: Duration = Duration::from_millis(500);
/// A slave further behind its master than this leaves the in-sync set (`haMaxGapNotInSync`).
pub const DEFAULT_MAX_GAP_NOT_IN_SYNC: i64 = 256 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// This controller's id among `peers`.
    pub node_id: NodeId,
    pub listen_addr: SocketAddr,
    /// Every controller, this one included: id → `host:port`. The same on all of them.
    pub peers: BTreeMap<NodeId, String>,
    /// Where the Raft log, vote and snapshot live.
    pub data_dir: PathBuf,
    pub broker_not_active_timeout: Duration,
    pub scan_interval: Duration,
    /// `enableElectUncleanMaster`: with no in-sync replica alive, elect any alive one (and lose
    /// what only the old master had).
    pub elect_unclean_master: bool,
    pub max_gap_not_in_sync: i64,
}

impl ControllerConfig {
    pub fn new(node_id: NodeId, listen_addr: SocketAddr, data_dir: PathBuf) -> Self {
        ControllerConfig {
            node_id,
            listen_addr,
            peers: BTreeMap::from([(node_id, listen_addr.to_string())]),
            data_dir,
            broker_not_active_timeout: DEFAULT_BROKER_NOT_ACTIVE_TIMEOUT,
            scan_interval: DEFAULT_SCAN_INTERVAL,
            elect_unclean_master: false,
            max_gap_not_in_sync: DEFAULT_MAX_GAP_NOT_IN_SYNC,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("controller id {0} is not among the peers {1:?}")]
    NotAPeer(NodeId, Vec<NodeId>),
    #[error("raft configuration: {0}")]
    RaftConfig(String),
    #[error("raft: {0}")]
    Raft(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The in-sync set of a group, as RocketMQ's `SyncStateSet` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncStateSet {
    pub sync_state_set: BTreeSet<u64>,
    pub sync_state_set_epoch: i32,
}

/// One controller: its Raft, the state it applied, and the leader's view of the brokers.
pub struct Controller {
    pub config: ControllerConfig,
    pub raft: Raft,
    pub state: StateMachine,
    pub liveness: Liveness,
}

/// A running controller.
pub struct ControllerHandle {
    pub controller: Arc<Controller>,
    local_addr: SocketAddr,
    shutdown: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl ControllerHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub async fn shutdown(self) {
        self.shutdown.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
        let _ = self.controller.raft.shutdown().await;
    }
}

impl Controller {
    pub async fn start(
        config: ControllerConfig,
        shutdown: CancellationToken,
    ) -> Result<ControllerHandle, ControllerError> {
        if !config.peers.contains_key(&config.node_id) {
            return Err(ControllerError::NotAPeer(
                config.node_id,
                config.peers.keys().copied().collect(),
            ));
        }
        // Bound before Raft starts, so peers reach this controller as soon as it votes.
        let listener = TcpListener::bind(config.listen_addr).await?;
        let local_addr = listener.local_addr()?;
        let raft_config = openraft::Config {
            cluster_name: "petrel-controller".to_owned(),
            heartbeat_interval: 100,
            election_timeout_min: 400,
            election_timeout_max: 800,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(500),
            max_in_snapshot_log_to_keep: 100,
            ..Default::default()
        }
        .validate()
        .map_err(|e| ControllerError::RaftConfig(e.to_string()))?;
        let log = LogStore::open(&config.data_dir)?;
        let state = StateMachine::open(&config.data_dir)?;
        let raft = Raft::new(
            config.node_id,
            Arc::new(raft_config),
            network::PeerNetwork,
            log,
            state.clone(),
        )
        .await
        .map_err(|e| ControllerError::Raft(e.to_string()))?;
        let initialized = raft
            .is_initialized()
            .await
            .map_err(|e| ControllerError::Raft(e.to_string()))?;
        if !initialized {
            // Every controller proposes the same membership; the identical first entry makes
            // that safe whichever of them starts first.
            let members: BTreeMap<NodeId, BasicNode> = config
                .peers
                .iter()
                .map(|(id, addr)| (*id, BasicNode::new(addr)))
                .collect();
            if let Err(e) = raft.initialize(members).await {
                tracing::info!("raft already initialized by a peer: {e}");
            }
        }
        let controller = Arc::new(Controller {
            liveness: Liveness::new(config.broker_not_active_timeout),
            config,
            raft,
            state,
        });
        let tasks = vec![
            tokio::spawn(serve(
                listener,
                Arc::new(processor::ControllerProcessor::new(controller.clone())),
                ServerTls::disabled(),
                shutdown.clone(),
            )),
            tokio::spawn(liveness::scan(controller.clone(), shutdown.clone())),
        ];
        tracing::info!(id = controller.config.node_id, addr = %local_addr, "controller started");
        Ok(ControllerHandle {
            controller,
            local_addr,
            shutdown,
            tasks,
        })
    }

    /// The leader's id and address, if one is known.
    pub fn leader(&self) -> Option<(NodeId, String)> {
        let metrics = self.raft.metrics().borrow().clone();
        let id = metrics.current_leader?;
        let addr = metrics
            .membership_config
            .membership()
            .get_node(&id)
            .map(|n| n.addr.clone())
            .or_else(|| self.config.peers.get(&id).cloned())?;
        Some((id, addr))
    }

    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().current_leader == Some(self.config.node_id)
    }
}
