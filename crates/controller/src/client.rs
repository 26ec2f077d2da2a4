//! What a broker in controller mode uses: requests go to the controller that led last time, and
//! on CONTROLLER_NOT_LEADER or a dead connection to the next one, until one answers.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use petrel_remoting::code::{request, response};
use petrel_remoting::{CommandHeader, Connection, NoRequests, RemotingCommand, RemotingError};
use tokio::sync::Mutex;

use crate::headers::{
    BrokerHeartbeatRequestHeader, GetReplicaInfoRequestHeader, RegisterBrokerRequestHeader,
    ReplicaInfoResponseHeader,
};
use crate::SyncStateSet;

/// One try at one controller; a dead controller must not eat the whole heartbeat interval.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(1500);

#[derive(Debug, thiserror::Error)]
pub enum ControllerClientError {
    #[error("no controller address configured")]
    NoAddress,
    #[error("no controller answered: {0}")]
    Unreachable(String),
    #[error("controller answered code {code}: {remark}")]
    Refused { code: i32, remark: String },
    #[error("controller answered with a bad header: {0}")]
    BadAnswer(String),
}

/// A group's master as the controllers agreed it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplicaInfo {
    /// The asking broker's id, on registrations and heartbeats.
    pub broker_id: Option<u64>,
    pub master_broker_id: Option<u64>,
    pub master_address: Option<String>,
    pub master_ha_address: Option<String>,
    pub master_epoch: i32,
    pub sync_state_set: SyncStateSet,
}

pub struct ControllerClient {
    addrs: Vec<String>,
    conns: Mutex<HashMap<String, Connection>>,
    /// Where to start: the controller that answered last.
    first: Mutex<usize>,
}

impl ControllerClient {
    /// `addrs` as RocketMQ's `controllerAddr`: `host:port` separated by `;` (or `,`).
    pub fn new(addrs: &str) -> Arc<ControllerClient> {
        Arc::new(ControllerClient {
            addrs: addrs
                .split([';', ','])
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .collect(),
            conns: Mutex::new(HashMap::new()),
            first: Mutex::new(0),
        })
    }

    async fn connection(&self, addr: &str) -> Result<Connection, RemotingError> {
        let mut conns = self.conns.lock().await;
        if let Some(c) = conns.get(addr).filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let c = Connection::connect(addr, Arc::new(NoRequests), REQUEST_TIMEOUT).await?;
        conns.insert(addr.to_owned(), c.clone());
        Ok(c)
    }

    async fn call(&self, cmd: RemotingCommand) -> Result<RemotingCommand, ControllerClientError> {
        if self.addrs.is_empty() {
            return Err(ControllerClientError::NoAddress);
        }
        let start = *self.first.lock().await;
        let mut failures = Vec::new();
        for i in 0..self.addrs.len() {
            let n = (start + i) % self.addrs.len();
            let addr = &self.addrs[n];
            let conn = match self.connection(addr).await {
                Ok(c) => c,
                Err(e) => {
                    failures.push(format!("{addr}: {e}"));
                    continue;
                }
            };
            match conn.request(cmd.clone(), REQUEST_TIMEOUT).await {
                Ok(answer) if answer.code == response::CONTROLLER_NOT_LEADER => {
                    failures.push(format!("{addr}: not the leader"));
                }
                Ok(answer) if answer.code == response::SUCCESS => {
                    *self.first.lock().await = n;
                    return Ok(answer);
                }
                Ok(answer) => {
                    return Err(ControllerClientError::Refused {
                        code: answer.code,
                        remark: answer.remark.unwrap_or_default(),
                    })
                }
                Err(e) => failures.push(format!("{addr}: {e}")),
            }
        }
        Err(ControllerClientError::Unreachable(failures.join("; ")))
    }

    async fn replica_call(
        &self,
        cmd: RemotingCommand,
    ) -> Result<ReplicaInfo, ControllerClientError> {
        let answer = self.call(cmd).await?;
        let header: ReplicaInfoResponseHeader = answer
            .decode_header()
            .map_err(|e| ControllerClientError::BadAnswer(e.to_string()))?;
        let body = answer.body_bytes();
        let sync_state_set = if body.is_empty() {
            SyncStateSet::default()
        } else {
            serde_json::from_slice(&body)
                .map_err(|e| ControllerClientError::BadAnswer(e.to_string()))?
        };
        Ok(ReplicaInfo {
            broker_id: header.broker_id,
            master_broker_id: header.master_broker_id,
            master_address: header.master_address,
            master_ha_address: header.master_ha_address,
            master_epoch: header.master_epoch,
            sync_state_set,
        })
    }

    pub async fn register(
        &self,
        header: &RegisterBrokerRequestHeader,
    ) -> Result<ReplicaInfo, ControllerClientError> {
        self.replica_call(request_with(request::CONTROLLER_REGISTER_BROKER, header))
            .await
    }

    pub async fn heartbeat(
        &self,
        header: &BrokerHeartbeatRequestHeader,
    ) -> Result<ReplicaInfo, ControllerClientError> {
        self.replica_call(request_with(request::BROKER_HEARTBEAT, header))
            .await
    }

    pub async fn replica_info(
        &self,
        broker_name: &str,
    ) -> Result<ReplicaInfo, ControllerClientError> {
        let header = GetReplicaInfoRequestHeader {
            broker_name: broker_name.to_owned(),
        };
        self.replica_call(request_with(request::CONTROLLER_GET_REPLICA_INFO, &header))
            .await
    }

    /// Any controller request; the raw answer.
    pub async fn request(
        &self,
        cmd: RemotingCommand,
    ) -> Result<RemotingCommand, ControllerClientError> {
        self.call(cmd).await
    }
}

fn request_with<H: CommandHeader>(code: i32, header: &H) -> RemotingCommand {
    RemotingCommand::request_with_header(code, header)
}
