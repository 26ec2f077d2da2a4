//! Raft messages between controllers, carried as remoting requests on the controllers' own port
//! (Petrel's `PETREL_RAFT_*` codes, JSON bodies): one port per controller for brokers, admin
//! tools and peers alike.

use std::sync::Arc;
use std::time::Duration;

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use petrel_remoting::code::{request, response};
use petrel_remoting::{Connection, NoRequests, RemotingCommand, RemotingError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::sync::Mutex;

use crate::raft::{NodeId, TypeConfig};

/// How long dialling a peer may take; a dead peer must not hold up the others' heartbeats.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// Makes one [`PeerClient`] per peer.
#[derive(Clone, Default)]
pub struct PeerNetwork;

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerClient {
        PeerClient {
            target,
            addr: node.addr.clone(),
            conn: Arc::new(Mutex::new(None)),
        }
    }
}

/// A connection to one peer, dialled on first use and again after it breaks.
pub struct PeerClient {
    target: NodeId,
    addr: String,
    conn: Arc<Mutex<Option<Connection>>>,
}

#[derive(Debug, thiserror::Error)]
enum CallError {
    #[error("{0}")]
    Remoting(#[from] RemotingError),
    #[error("peer answered code {code}: {remark}")]
    Refused { code: i32, remark: String },
    #[error("bad answer: {0}")]
    Decode(#[from] serde_json::Error),
}

impl PeerClient {
    async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        code: i32,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp, CallError> {
        let body = serde_json::to_vec(req)?;
        let conn = {
            let mut slot = self.conn.lock().await;
            match slot.as_ref().filter(|c| !c.is_closed()) {
                Some(c) => c.clone(),
                None => {
                    let c = Connection::connect(
                        &self.addr,
                        Arc::new(NoRequests),
                        CONNECT_TIMEOUT.min(timeout),
                    )
                    .await?;
                    *slot = Some(c.clone());
                    c
                }
            }
        };
        let answer = conn
            .request(RemotingCommand::request(code).with_body(body), timeout)
            .await?;
        if answer.code != response::SUCCESS {
            return Err(CallError::Refused {
                code: answer.code,
                remark: answer.remark.unwrap_or_default(),
            });
        }
        Ok(serde_json::from_slice(&answer.body_bytes())?)
    }

    /// Sends a Raft message; the peer answers with its Raft's own result.
    async fn rpc<Req: Serialize, Resp: DeserializeOwned, E>(
        &self,
        code: i32,
        req: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, E>>
    where
        E: std::error::Error + DeserializeOwned,
    {
        match self
            .call::<Req, Result<Resp, E>>(code, req, option.hard_ttl())
            .await
        {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(remote)) => Err(RPCError::RemoteError(RemoteError::new(self.target, remote))),
            Err(e) => Err(RPCError::Network(NetworkError::new(&e))),
        }
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.rpc(request::PETREL_RAFT_APPEND_ENTRIES, &rpc, &option)
            .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.rpc(request::PETREL_RAFT_INSTALL_SNAPSHOT, &rpc, &option)
            .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.rpc(request::PETREL_RAFT_VOTE, &rpc, &option).await
    }
}
