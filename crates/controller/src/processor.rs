//! The requests a controller serves: brokers' registrations and heartbeats, tools' questions,
//! and its peers' Raft messages. Anything that changes or reports the agreed state is answered by
//! the leader only (after confirming it still leads); the others answer CONTROLLER_NOT_LEADER
//! with the leader's address in the remark, and the broker tries the next controller.

use std::collections::BTreeMap;
use std::sync::Arc;

use openraft::error::{ClientWriteError, RaftError};
use petrel_remoting::code::{request, response};
use petrel_remoting::{not_supported, Connection, RemotingCommand, RequestHandler};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::headers::{
    BrokerHeartbeatRequestHeader, ElectMasterRequestHeader, GetMetaDataResponseHeader,
    GetReplicaInfoRequestHeader, RegisterBrokerRequestHeader, ReplicaInfoResponseHeader,
};
use crate::raft::NodeId;
use crate::state::{choose_master, Applied, Command, Refusal, ReplicaGroup, ReplicaReport};
use crate::{Controller, SyncStateSet};

pub struct ControllerProcessor {
    controller: Arc<Controller>,
}

impl RequestHandler for ControllerProcessor {
    async fn handle(&self, _conn: &Connection, req: RemotingCommand) -> Option<RemotingCommand> {
        Some(match req.code {
            request::PETREL_RAFT_APPEND_ENTRIES => {
                self.raft_rpc(&req, |r, m| async move { r.append_entries(m).await })
                    .await
            }
            request::PETREL_RAFT_VOTE => {
                self.raft_rpc(&req, |r, m| async move { r.vote(m).await })
                    .await
            }
            request::PETREL_RAFT_INSTALL_SNAPSHOT => {
                self.raft_rpc(&req, |r, m| async move { r.install_snapshot(m).await })
                    .await
            }
            request::CONTROLLER_REGISTER_BROKER => answer(self.register(&req).await),
            request::BROKER_HEARTBEAT => answer(self.heartbeat(&req).await),
            request::CONTROLLER_GET_REPLICA_INFO => answer(self.replica_info(&req).await),
            request::CONTROLLER_ELECT_MASTER => answer(self.elect(&req).await),
            request::CONTROLLER_GET_METADATA_INFO => self.metadata(&req),
            request::CONTROLLER_GET_SYNC_STATE_DATA => answer(self.sync_state_data(&req).await),
            _ => not_supported(&req),
        })
    }
}

/// A handler's answer, a refusal included.
type Answer = Result<RemotingCommand, RemotingCommand>;

fn answer(a: Answer) -> RemotingCommand {
    a.unwrap_or_else(|refusal| refusal)
}

fn decode<H: petrel_remoting::CommandHeader>(req: &RemotingCommand) -> Result<H, RemotingCommand> {
    req.decode_header().map_err(|e| {
        RemotingCommand::error(req, response::CONTROLLER_INVALID_REQUEST, e.to_string())
    })
}

/// The answer describing a group's master, as registrations, heartbeats and replica-info
/// requests get it.
fn replica_info(
    req: &RemotingCommand,
    group: Option<&ReplicaGroup>,
    broker_id: Option<u64>,
) -> RemotingCommand {
    let master = group.and_then(|g| g.master_replica());
    let header = ReplicaInfoResponseHeader {
        broker_id,
        master_broker_id: master.map(|m| m.id),
        master_address: master.map(|m| m.address.clone()),
        master_ha_address: master.map(|m| m.ha_address.clone()),
        master_epoch: group.map_or(0, |g| g.master_epoch),
    };
    let set = SyncStateSet {
        sync_state_set: group.map(|g| g.sync_state_set.clone()).unwrap_or_default(),
        sync_state_set_epoch: group.map_or(0, |g| g.sync_state_set_epoch),
    };
    RemotingCommand::success(req)
        .with_header(&header)
        .with_body(serde_json::to_vec(&set).unwrap_or_default())
}

fn refusal_code(refusal: &Refusal) -> i32 {
    match refusal {
        Refusal::UnknownGroup(_) => response::CONTROLLER_BROKER_METADATA_NOT_EXIST,
        Refusal::UnknownReplica(_) => response::CONTROLLER_INVALID_REPLICAS,
        Refusal::FencedMasterEpoch { .. } => response::CONTROLLER_FENCED_MASTER_EPOCH,
        Refusal::FencedSyncStateSetEpoch { .. } => response::CONTROLLER_FENCED_SYNC_STATE_SET_EPOCH,
        Refusal::SetWithoutMaster(_) => response::CONTROLLER_INVALID_MASTER,
    }
}

impl ControllerProcessor {
    pub fn new(controller: Arc<Controller>) -> Self {
        ControllerProcessor { controller }
    }

    fn not_leader(&self, req: &RemotingCommand) -> RemotingCommand {
        let remark = match self.controller.leader() {
            Some((id, addr)) => format!("not the controller leader; the leader is {id} at {addr}"),
            None => "not the controller leader; no leader is elected yet".to_owned(),
        };
        RemotingCommand::error(req, response::CONTROLLER_NOT_LEADER, remark)
    }

    /// Confirms with a quorum that this controller still leads, so that what it answers is the
    /// agreed state and not what a deposed leader remembers.
    async fn confirm_leader(&self, req: &RemotingCommand) -> Result<(), RemotingCommand> {
        match self.controller.raft.ensure_linearizable().await {
            Ok(_) => Ok(()),
            Err(_) => Err(self.not_leader(req)),
        }
    }

    async fn write(
        &self,
        req: &RemotingCommand,
        command: Command,
    ) -> Result<Applied, RemotingCommand> {
        match self.controller.raft.client_write(command).await {
            Ok(done) => Ok(done.data),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {
                Err(self.not_leader(req))
            }
            Err(e) => Err(RemotingCommand::error(
                req,
                response::SYSTEM_ERROR,
                format!("the controllers could not agree: {e}"),
            )),
        }
    }

    async fn raft_rpc<Req, Resp, E, F, Fut>(
        &self,
        req: &RemotingCommand,
        call: F,
    ) -> RemotingCommand
    where
        Req: DeserializeOwned,
        Resp: Serialize,
        E: Serialize,
        F: FnOnce(crate::raft::Raft, Req) -> Fut,
        Fut: std::future::Future<Output = Result<Resp, E>>,
    {
        let message: Req = match serde_json::from_slice(&req.body_bytes()) {
            Ok(m) => m,
            Err(e) => {
                return RemotingCommand::error(
                    req,
                    response::CONTROLLER_INVALID_REQUEST,
                    format!("bad raft message: {e}"),
                )
            }
        };
        let result = call(self.controller.raft.clone(), message).await;
        match serde_json::to_vec(&result) {
            Ok(body) => RemotingCommand::success(req).with_body(body),
            Err(e) => RemotingCommand::error(req, response::SYSTEM_ERROR, e.to_string()),
        }
    }

    /// Confirms this controller still leads, then the group named.
    async fn led_group(
        &self,
        req: &RemotingCommand,
        broker_name: &str,
    ) -> Result<ReplicaGroup, RemotingCommand> {
        self.confirm_leader(req).await?;
        self.controller
            .state
            .state()
            .groups
            .get(broker_name)
            .cloned()
            .ok_or_else(|| {
                RemotingCommand::error(
                    req,
                    response::CONTROLLER_BROKER_METADATA_NOT_EXIST,
                    format!("broker group {broker_name:?} is not registered"),
                )
            })
    }

    async fn register(&self, req: &RemotingCommand) -> Answer {
        let header: RegisterBrokerRequestHeader = decode(req)?;
        let command = Command::RegisterBroker {
            cluster_name: header.cluster_name,
            broker_name: header.broker_name,
            address: header.broker_address,
            ha_address: header.ha_address,
        };
        let applied = self.write(req, command).await?;
        Ok(replica_info(
            req,
            applied.group.as_ref(),
            applied.replica_id,
        ))
    }

    async fn heartbeat(&self, req: &RemotingCommand) -> Answer {
        let header: BrokerHeartbeatRequestHeader = decode(req)?;
        let group = &self.led_group(req, &header.broker_name).await?;
        if !group.replicas.contains_key(&header.broker_id) {
            return Err(RemotingCommand::error(
                req,
                response::CONTROLLER_INVALID_REPLICAS,
                format!(
                    "replica {} is not registered in {:?}; register first",
                    header.broker_id, header.broker_name
                ),
            ));
        }
        let is_master = group.master == Some(header.broker_id);
        let claim = match (
            is_master,
            header.slaves_in_sync,
            header.sync_state_set_epoch,
        ) {
            (true, Some(true), Some(epoch)) => Some(epoch),
            _ => None,
        };
        let liveness = &self.controller.liveness;
        let now = std::time::Instant::now();
        liveness.heartbeat(
            now,
            &header.broker_name,
            header.broker_id,
            header.max_offset,
            header.epoch,
            claim,
        );
        // The master says its slave has everything it acknowledged and that it now waits for
        // it: the slave may join the set.
        if let Some(command) = liveness.on_claim(group, claim, now) {
            if let Applied {
                group: Some(after),
                refused: None,
                ..
            } = self.write(req, command).await?
            {
                tracing::info!(group = %after.broker_name, set = ?after.sync_state_set, "in-sync set grew");
                return Ok(replica_info(req, Some(&after), Some(header.broker_id)));
            }
        }
        Ok(replica_info(req, Some(group), Some(header.broker_id)))
    }

    async fn replica_info(&self, req: &RemotingCommand) -> Answer {
        let header: GetReplicaInfoRequestHeader = decode(req)?;
        let group = self.led_group(req, &header.broker_name).await?;
        Ok(replica_info(req, Some(&group), None))
    }

    /// An operator's election: of the replica named, or of whom the controller would pick.
    async fn elect(&self, req: &RemotingCommand) -> Answer {
        let header: ElectMasterRequestHeader = decode(req)?;
        let group = &self.led_group(req, &header.broker_name).await?;
        let liveness = &self.controller.liveness;
        let now = std::time::Instant::now();
        let alive = |id| liveness.is_alive(&group.broker_name, id, now);
        let candidate = match header.broker_id {
            Some(id) if !alive(id) => {
                return Err(RemotingCommand::error(
                    req,
                    response::CONTROLLER_BROKER_NOT_ALIVE,
                    format!("replica {id} of {:?} is not alive", group.broker_name),
                ))
            }
            Some(id) => Some(id),
            None => choose_master(
                group,
                |id| {
                    Some(ReplicaReport {
                        alive: alive(id),
                        max_offset: 0,
                        epoch: 0,
                    })
                },
                self.controller.config.elect_unclean_master,
            ),
        };
        let Some(new_master) = candidate else {
            return Err(RemotingCommand::error(
                req,
                response::CONTROLLER_ELECT_MASTER_FAILED,
                format!(
                    "no alive in-sync replica of {:?} to elect",
                    group.broker_name
                ),
            ));
        };
        let command = Command::ElectMaster {
            broker_name: group.broker_name.clone(),
            new_master,
            expected_epoch: group.master_epoch,
        };
        match self.write(req, command).await? {
            Applied {
                refused: Some(refused),
                ..
            } => Err(RemotingCommand::error(
                req,
                refusal_code(&refused),
                refused.to_string(),
            )),
            applied => Ok(replica_info(req, applied.group.as_ref(), None)),
        }
    }

    fn metadata(&self, req: &RemotingCommand) -> RemotingCommand {
        let leader = self.controller.leader();
        let peers = self
            .controller
            .config
            .peers
            .iter()
            .map(|(id, addr)| format!("n{id}-{addr}"))
            .collect::<Vec<_>>()
            .join(";");
        let header = GetMetaDataResponseHeader {
            group: "petrel-controller".to_owned(),
            controller_leader_id: leader.as_ref().map(|(id, _)| id.to_string()),
            controller_leader_address: leader.map(|(_, addr)| addr),
            is_leader: self.controller.is_leader(),
            peers,
        };
        RemotingCommand::success(req).with_header(&header)
    }

    /// CONTROLLER_GET_SYNC_STATE_DATA: the body names the groups (a JSON list); the answer gives
    /// each one's master, epochs and which replicas are in and out of sync.
    async fn sync_state_data(&self, req: &RemotingCommand) -> Answer {
        let names: Vec<String> = serde_json::from_slice(&req.body_bytes()).map_err(|e| {
            RemotingCommand::error(
                req,
                response::CONTROLLER_INVALID_REQUEST,
                format!("the body must be a JSON list of broker names: {e}"),
            )
        })?;
        self.confirm_leader(req).await?;
        let state = self.controller.state.state();
        let liveness = &self.controller.liveness;
        let mut table = BTreeMap::new();
        for name in names {
            let Some(group) = state.groups.get(&name) else {
                continue;
            };
            let member = |id: NodeId| {
                serde_json::json!({
                    "brokerName": name,
                    "brokerId": id,
                    "brokerAddress": group.replicas.get(&id).map(|r| r.address.clone()),
                    "alive": liveness.is_alive(&name, id, std::time::Instant::now()),
                })
            };
            let (inside, outside): (Vec<&NodeId>, Vec<&NodeId>) = group
                .replicas
                .keys()
                .partition(|id| group.sync_state_set.contains(id));
            table.insert(
                name.clone(),
                serde_json::json!({
                    "masterBrokerId": group.master,
                    "masterAddress": group.master_replica().map(|m| m.address.clone()),
                    "masterEpoch": group.master_epoch,
                    "syncStateSetEpoch": group.sync_state_set_epoch,
                    "inSyncReplicas": inside.into_iter().map(|id| member(*id)).collect::<Vec<_>>(),
                    "notInSyncReplicas": outside.into_iter().map(|id| member(*id)).collect::<Vec<_>>(),
                }),
            );
        }
        let body = serde_json::json!({ "replicasInfoTable": table });
        Ok(RemotingCommand::success(req).with_body(body.to_string().into_bytes()))
    }
}
