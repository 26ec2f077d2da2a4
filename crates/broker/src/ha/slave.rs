//! The slave's side of the HA wire: connects to the master's HA address (`haMasterAddress`, or
//! what the name servers answered the registration with), reports how far its log goes, writes
//! each transfer at the same offsets ([`petrel_store::MessageStore::append_replicated`]) and
//! reports again — after every transfer, and every [`HEARTBEAT_INTERVAL`] when idle. A transfer
//! that does not continue the log, or silence for [`HOUSEKEEPING_INTERVAL`], drops the
//! connection; the next one starts again from the report.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::watch;

use petrel_remoting::CancellationToken;

use super::wire::{self, TransferHeader, WireError, TRANSFER_HEADER_BYTES};
use super::{AbortOnDrop, HEARTBEAT_INTERVAL, HOUSEKEEPING_INTERVAL};
use crate::broker::Broker;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Wait between two connection attempts.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
enum FollowError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Wire(#[from] WireError),
    #[error("{0}")]
    Store(#[from] petrel_store::StoreError),
    #[error("the master sent nothing for {0:?}")]
    Silent(Duration),
    #[error("{0}")]
    Reconcile(String),
}

/// Follows the master until `shutdown`, reconnecting after every failure.
pub async fn run(broker: Arc<Broker>, shutdown: CancellationToken) {
    let mut last_error = String::new();
    loop {
        if let Some(addr) = broker.ha.master_ha_addr() {
            let outcome = tokio::select! {
                _ = shutdown.cancelled() => return,
                o = reconcile_and_follow(&broker, &addr) => o,
            };
            if let Err(e) = outcome {
                let e = e.to_string();
                // Logged once per kind of failure, not once a second while the master is down.
                if e != last_error {
                    tracing::warn!(master = %addr, "not following the master: {e}");
                    last_error = e;
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(RECONNECT_DELAY) => {}
        }
    }
}

/// In controller mode the log is first made a prefix of the master's.
async fn reconcile_and_follow(broker: &Broker, addr: &str) -> Result<(), FollowError> {
    if broker.ha.controlled().is_some() {
        super::controlled::reconcile_with_master(broker)
            .await
            .map_err(FollowError::Reconcile)?;
    }
    connect_and_follow(broker, addr).await
}

async fn connect_and_follow(broker: &Broker, addr: &str) -> Result<(), FollowError> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| {
            std::io::Error::other(format!("connecting took over {CONNECT_TIMEOUT:?}"))
        })??;
    stream.set_nodelay(true)?;
    let (mut reader, writer) = stream.into_split();
    let store = &broker.store;
    let (written_tx, written) = watch::channel(store.replica_write_end());
    let reporting = tokio::spawn(report(writer, written));
    let _reporting = AbortOnDrop(reporting);
    tracing::info!(master = %addr, from = store.replica_write_end(), "following the master");

    // A master never sends more than one segment's bytes at once.
    let max_body = store.config().commit_log_file_size as usize;
    let mut header = [0u8; TRANSFER_HEADER_BYTES];
    let mut body = Vec::new();
    loop {
        tokio::time::timeout(HOUSEKEEPING_INTERVAL, reader.read_exact(&mut header))
            .await
            .map_err(|_| FollowError::Silent(HOUSEKEEPING_INTERVAL))??;
        let h = TransferHeader::decode(&header, max_body)?;
        let write_end = store.replica_write_end();
        // An empty log takes the master's first offset, whatever it is.
        if write_end != 0 {
            h.check_continues(write_end)?;
        }
        if h.body_size == 0 {
            continue;
        }
        body.resize(h.body_size as usize, 0);
        tokio::time::timeout(HOUSEKEEPING_INTERVAL, reader.read_exact(&mut body))
            .await
            .map_err(|_| FollowError::Silent(HOUSEKEEPING_INTERVAL))??;
        let end = store.append_replicated(h.phy_offset, &body)?;
        written_tx.send_replace(end);
    }
}

/// Reports the write end whenever it grows, and every heartbeat interval regardless.
async fn report(
    mut writer: OwnedWriteHalf,
    mut written: watch::Receiver<i64>,
) -> std::io::Result<()> {
    loop {
        let offset = *written.borrow_and_update();
        writer.write_all(&wire::encode_report(offset)).await?;
        tokio::select! {
            changed = written.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
            }
            _ = tokio::time::sleep(HEARTBEAT_INTERVAL) => {}
        }
    }
}
