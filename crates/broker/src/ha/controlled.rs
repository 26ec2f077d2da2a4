//! Controller mode (`enableControllerMode`): the controllers (`controllerAddr`, see
//! `petrel controller`) decide whether this broker is its group's master or a slave, and elect
//! a new master when one fails. [`run`] registers with them, heartbeats every
//! [`HEARTBEAT_INTERVAL`] with the log end, and runs the broker in the role the last answer
//! gave. When the role changes it stops the broker and starts it again in the new role, on the
//! same data and ports: a slave becomes master in about a second (no store is rebuilt, the log
//! is only recovered), and a returning master comes back as a slave that first cuts any tail
//! the new master does not have ([`reconcile_with_master`]).
//!
//! One brain: a master may take writes only for [`LEASE`] after a heartbeat the controllers
//! answered was *sent*. The controllers elect another master only after
//! `brokerNotActiveTimeout` (5 s) without a heartbeat *received*, which is later, so a master
//! cut off from the controllers stops writing before anyone else starts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use petrel_controller::client::{ControllerClient, ControllerClientError, ReplicaInfo};
use petrel_controller::headers::{BrokerHeartbeatRequestHeader, RegisterBrokerRequestHeader};
use petrel_remoting::code::{request, response};
use petrel_remoting::{CancellationToken, Connection, NoRequests, RemotingCommand};
use petrel_store::{divergence_point, EpochEntry};
use serde::{Deserialize, Serialize};

use super::{BrokerRole, ControlledRole};
use crate::broker::{Broker, BrokerHandle};
use crate::config::BrokerConfig;
use crate::error::BrokerError;

pub use petrel_controller::replica::{HEARTBEAT_INTERVAL, LEASE};
/// A slave's request for its master's epoch history.
const EPOCH_REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// The role the controllers gave this broker.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Assignment {
    Master {
        epoch: i32,
    },
    Slave {
        epoch: i32,
        /// The master's remoting and HA addresses; `None` while the group has none.
        master: Option<(String, String)>,
    },
}

impl Assignment {
    fn from_info(info: &ReplicaInfo, me: u64) -> Assignment {
        match (
            info.master_broker_id,
            &info.master_address,
            &info.master_ha_address,
        ) {
            (Some(id), _, _) if id == me => Assignment::Master {
                epoch: info.master_epoch,
            },
            (Some(_), Some(addr), Some(ha)) => Assignment::Slave {
                epoch: info.master_epoch,
                master: Some((addr.clone(), ha.clone())),
            },
            _ => Assignment::Slave {
                epoch: info.master_epoch,
                master: None,
            },
        }
    }

    fn epoch(&self) -> i32 {
        match self {
            Assignment::Master { epoch } | Assignment::Slave { epoch, .. } => *epoch,
        }
    }

    /// The configuration of one incarnation in this role; `info` is the answer that gave it.
    fn configure(&self, base: &BrokerConfig, me: u64, info: &ReplicaInfo) -> BrokerConfig {
        let mut config = base.clone();
        let set = &info.sync_state_set;
        let mut role = ControlledRole {
            epoch: self.epoch(),
            master_addr: None,
            slave_in_set: set.sync_state_set.iter().any(|id| *id != me),
            sync_state_set_epoch: set.sync_state_set_epoch,
        };
        match self {
            Assignment::Master { .. } => {
                config.broker_id = 0;
                config.ha_master_address = None;
            }
            Assignment::Slave { master, .. } => {
                config.broker_role = BrokerRole::Slave;
                config.broker_id = me as i64;
                config.ha_master_address = master.as_ref().map(|(_, ha)| ha.clone());
                role.master_addr = master.as_ref().map(|(addr, _)| addr.clone());
            }
        }
        config.controlled = Some(role);
        config
    }
}

fn check_config(config: &BrokerConfig) -> Result<(), BrokerError> {
    if config.controller_addr.trim().is_empty() {
        return Err(BrokerError::Config(
            "enableControllerMode needs controllerAddr (host:port;host:port)".into(),
        ));
    }
    if config.broker_role == BrokerRole::Slave {
        return Err(BrokerError::Config(
            "in controller mode brokerRole says how the broker acts as master: \
             SYNC_MASTER or ASYNC_MASTER; the controllers make it a slave"
                .into(),
        ));
    }
    if config.listen_addr.port() == 0 {
        return Err(BrokerError::Config(
            "controller mode needs a fixed listen port: the controllers know a broker by its address"
                .into(),
        ));
    }
    Ok(())
}

/// Runs a broker in controller mode until `shutdown`.
pub async fn run(
    base: BrokerConfig,
    shutdown: CancellationToken,
    extra_routes: Option<axum::Router>,
) -> Result<(), BrokerError> {
    check_config(&base)?;
    let client = ControllerClient::new(&base.controller_addr);
    let address = std::net::SocketAddr::new(base.broker_ip, base.listen_addr.port()).to_string();
    let ha_port = base
        .ha_listen_port
        .unwrap_or(base.listen_addr.port().saturating_add(1));
    let ha_address = std::net::SocketAddr::new(base.broker_ip, ha_port).to_string();
    let registration = RegisterBrokerRequestHeader {
        cluster_name: base.cluster_name.clone(),
        broker_name: base.broker_name.clone(),
        broker_address: address.clone(),
        ha_address,
    };
    let Some(info) = register(&client, &registration, &shutdown).await else {
        return Ok(());
    };
    let mut me = info.broker_id.ok_or_else(|| {
        BrokerError::Config("the controller answered the registration without an id".into())
    })?;
    tracing::info!(id = me, %address, "registered with the controllers");
    let mut assignment = Assignment::from_info(&info, me);
    let mut info = info;
    loop {
        tracing::info!(?assignment, "starting in the role the controllers gave");
        let config = assignment.configure(&base, me, &info);
        let handle = match start_incarnation(config, &extra_routes, &shutdown).await {
            Some(h) => h?,
            None => return Ok(()),
        };
        let next =
            heartbeat_until_change(&client, &base, &handle, me, &assignment, &info, &shutdown)
                .await;
        handle.shutdown().await;
        match next {
            Next::Register => {
                let Some(again) = register(&client, &registration, &shutdown).await else {
                    return Ok(());
                };
                me = again.broker_id.unwrap_or(me);
                assignment = Assignment::from_info(&again, me);
                info = again;
            }
            Next::Role(n, answer) => {
                tracing::warn!(from = ?assignment, to = ?n, "the controllers changed this broker's role");
                assignment = n;
                info = answer;
            }
            Next::Stop => return Ok(()),
        }
    }
}

async fn register(
    client: &ControllerClient,
    header: &RegisterBrokerRequestHeader,
    shutdown: &CancellationToken,
) -> Option<ReplicaInfo> {
    let mut last_error = String::new();
    loop {
        match client.register(header).await {
            Ok(info) => return Some(info),
            Err(e) => {
                let e = e.to_string();
                if e != last_error {
                    tracing::warn!("cannot register with the controllers yet: {e}");
                    last_error = e;
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(HEARTBEAT_INTERVAL) => {}
        }
    }
}

/// Starts the broker in `assignment`'s role; the ports of the previous incarnation may take a
/// moment to be free again. `None` when `shutdown` fired first.
async fn start_incarnation(
    config: BrokerConfig,
    extra_routes: &Option<axum::Router>,
    shutdown: &CancellationToken,
) -> Option<Result<BrokerHandle, BrokerError>> {
    let mut tries = 0;
    loop {
        match Broker::start_with_routes(
            config.clone(),
            CancellationToken::new(),
            extra_routes.clone(),
        )
        .await
        {
            Ok(h) => return Some(Ok(h)),
            Err(e) if tries < 20 => {
                tries += 1;
                tracing::warn!("could not start the broker ({e}); trying again");
            }
            Err(e) => return Some(Err(e)),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
}

/// Why a broker incarnation ends.
enum Next {
    /// The controllers gave another role, in this answer.
    Role(Assignment, ReplicaInfo),
    /// The controllers do not know this replica (their state was wiped): register again.
    Register,
    /// `shutdown` fired.
    Stop,
}

/// Heartbeats until the controllers give another role or `shutdown`.
async fn heartbeat_until_change(
    client: &ControllerClient,
    base: &BrokerConfig,
    handle: &BrokerHandle,
    me: u64,
    assignment: &Assignment,
    first: &ReplicaInfo,
    shutdown: &CancellationToken,
) -> Next {
    let broker = &handle.broker;
    let is_master = matches!(assignment, Assignment::Master { .. });
    let mut set_epoch = first.sync_state_set.sync_state_set_epoch;
    let mut tick = tokio::time::interval(HEARTBEAT_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_error = String::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Next::Stop,
            _ = tick.tick() => {}
        }
        let sent = Instant::now();
        let max_offset = broker.store.max_physical_offset();
        let in_sync = is_master.then(|| broker.ha.sync_tick(max_offset, set_epoch));
        let header = BrokerHeartbeatRequestHeader {
            cluster_name: base.cluster_name.clone(),
            broker_name: base.broker_name.clone(),
            broker_addr: broker.broker_addr(),
            broker_id: me,
            epoch: assignment.epoch(),
            max_offset,
            sync_state_set_epoch: in_sync.map(|_| set_epoch),
            slaves_in_sync: in_sync,
        };
        match client.heartbeat(&header).await {
            Ok(info) => {
                broker.ha.renew_lease(sent + LEASE);
                last_error.clear();
                let next = Assignment::from_info(&info, me);
                if next != *assignment {
                    return Next::Role(next, info);
                }
                let set = &info.sync_state_set;
                set_epoch = set.sync_state_set_epoch;
                if is_master {
                    broker
                        .ha
                        .sync_answer(set.sync_state_set.iter().any(|id| *id != me), set_epoch);
                }
            }
            Err(ControllerClientError::Refused { code, remark })
                if code == response::CONTROLLER_INVALID_REPLICAS
                    || code == response::CONTROLLER_BROKER_METADATA_NOT_EXIST =>
            {
                tracing::warn!(
                    "the controllers do not know this broker ({remark}); registering again"
                );
                return Next::Register;
            }
            Err(e) => {
                let e = e.to_string();
                if e != last_error {
                    tracing::warn!("heartbeat to the controllers failed: {e}");
                    last_error = e;
                }
            }
        }
    }
}

/// GET_BROKER_EPOCH_CACHE's body: a broker's epoch history (RocketMQ's `EpochEntryCache`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EpochEntryCache {
    pub cluster_name: String,
    pub broker_name: String,
    pub broker_id: i64,
    pub epoch_list: Vec<EpochEntry>,
    pub max_offset: i64,
}

/// A controlled master notes the epoch it starts at the end of its log (the new epoch's first
/// byte), unless it is restarting within the epoch it already has.
pub(crate) fn begin_epoch(broker: &Broker) -> Result<(), BrokerError> {
    let Some(role) = broker.ha.controlled() else {
        return Ok(());
    };
    if !broker.config.broker_role.is_master() {
        return Ok(());
    }
    let epochs = broker.store.epochs();
    if epochs.last().is_some_and(|last| last.epoch >= role.epoch) {
        return Ok(());
    }
    let entry = EpochEntry {
        epoch: role.epoch,
        start_offset: broker.store.max_physical_offset(),
    };
    epochs.append(entry)?;
    tracing::info!(
        epoch = entry.epoch,
        start = entry.start_offset,
        "master epoch begins"
    );
    Ok(())
}

/// A controlled slave, before it follows its master: cuts the tail of its log the master does
/// not have (what it wrote as master after another was elected), and takes the master's epoch
/// history up to where its log now ends.
pub(crate) async fn reconcile_with_master(broker: &Broker) -> Result<(), String> {
    let Some(master_addr) = broker.ha.master_addr() else {
        return Err("no master to follow yet".into());
    };
    let conn = Connection::connect(&master_addr, Arc::new(NoRequests), EPOCH_REQUEST_TIMEOUT)
        .await
        .map_err(|e| format!("cannot reach the master at {master_addr}: {e}"))?;
    let answer = conn
        .request(
            RemotingCommand::request(request::GET_BROKER_EPOCH_CACHE),
            EPOCH_REQUEST_TIMEOUT,
        )
        .await
        .map_err(|e| format!("the master's epoch history: {e}"))?;
    conn.close();
    if answer.code != response::SUCCESS {
        return Err(format!(
            "the master refused its epoch history: {}",
            answer.remark.unwrap_or_default()
        ));
    }
    let cache: EpochEntryCache = serde_json::from_slice(&answer.body_bytes())
        .map_err(|e| format!("the master's epoch history is malformed: {e}"))?;
    let store = &broker.store;
    let local = store.epochs().entries();
    let end = store.replica_write_end();
    let cut = divergence_point(&local, end, &cache.epoch_list);
    if cut < end {
        tracing::warn!(
            cut,
            dropped = end - cut,
            "cutting the tail the new master does not have"
        );
        store.truncate_to(cut).map_err(|e| e.to_string())?;
    }
    let kept = store.max_physical_offset();
    let last = store.epochs().last().map_or(i32::MIN, |e| e.epoch);
    for entry in cache.epoch_list {
        if entry.epoch > last && entry.start_offset <= kept {
            store.epochs().append(entry).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// The answer to GET_BROKER_EPOCH_CACHE.
pub(crate) fn epoch_cache(broker: &Broker) -> EpochEntryCache {
    EpochEntryCache {
        cluster_name: broker.config.cluster_name.clone(),
        broker_name: broker.config.broker_name.clone(),
        broker_id: broker.config.broker_id,
        epoch_list: broker.store.epochs().entries(),
        max_offset: broker.store.max_physical_offset(),
    }
}
