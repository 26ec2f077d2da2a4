//! The master's side of the HA wire: accepts slaves on `haListenPort` and streams each one the
//! commit log from the offset it reports, in transfers of at most
//! [`wire::HA_TRANSFER_BATCH_BYTES`], waking when the log grows and sending an empty transfer
//! every [`HEARTBEAT_INTERVAL`] when it has nothing new. A slave's reports are what a
//! SYNC_MASTER's sends wait for.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;

use petrel_remoting::CancellationToken;

use super::wire::{self, TransferHeader, HA_TRANSFER_BATCH_BYTES};
use super::{AbortOnDrop, HEARTBEAT_INTERVAL, HOUSEKEEPING_INTERVAL};
use crate::broker::Broker;

#[derive(Debug, thiserror::Error)]
enum StreamError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the slave sent no offset report for {0:?}")]
    Silent(Duration),
    #[error("the slave asks for offset {asked}; this log holds [{min}, {max})")]
    OutOfLog { asked: i64, min: i64, max: i64 },
}

/// Accepts slaves until `shutdown`.
pub async fn serve(listener: TcpListener, broker: Arc<Broker>, shutdown: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) => {
                let broker = broker.clone();
                let shutdown = shutdown.clone();
                tokio::spawn(async move {
                    tracing::info!(slave = %peer, "slave connected");
                    match stream_to_slave(stream, broker, shutdown).await {
                        Ok(()) => tracing::info!(slave = %peer, "slave disconnected"),
                        Err(e) => tracing::warn!(slave = %peer, "slave connection closed: {e}"),
                    }
                });
            }
            Err(e) => {
                tracing::warn!("HA accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn stream_to_slave(
    stream: TcpStream,
    broker: Arc<Broker>,
    shutdown: CancellationToken,
) -> Result<(), StreamError> {
    stream.set_nodelay(true)?;
    let (reader, mut writer) = stream.into_split();
    let (report_tx, mut reports) = watch::channel(None::<(i64, Instant)>);
    let reading = tokio::spawn(read_reports(broker.clone(), reader, report_tx));
    let _reading = AbortOnDrop(reading);

    let first = tokio::time::timeout(HOUSEKEEPING_INTERVAL, reports.wait_for(Option::is_some))
        .await
        .map_err(|_| StreamError::Silent(HOUSEKEEPING_INTERVAL))?
        .map_err(|_| std::io::Error::other("the slave closed before reporting"))?
        .map(|(offset, _)| offset)
        .unwrap_or_default();
    let store = &broker.store;
    let (min, max) = (store.min_physical_offset(), store.max_physical_offset());
    let mut next = if first == 0 {
        // A slave with nothing starts at the master's last segment, as RocketMQ's does.
        let segment = store.config().commit_log_file_size as i64;
        (max - max % segment).max(min)
    } else {
        first
    };
    if next < min || next > max {
        return Err(StreamError::OutOfLog {
            asked: next,
            min,
            max,
        });
    }
    tracing::info!(from = next, "streaming the commit log to a slave");
    let _counted = broker.ha.slave_connected();
    let mut log_end = store.watch_log_end();
    let mut last_sent = Instant::now();
    loop {
        let last_heard = reports.borrow().map_or(last_sent, |(_, at)| at);
        if last_heard.elapsed() > HOUSEKEEPING_INTERVAL {
            return Err(StreamError::Silent(HOUSEKEEPING_INTERVAL));
        }
        // Marked seen before the log is read, not after: a log end published between the read
        // and the mark would otherwise go unnoticed, and the senders of a SYNC_MASTER would
        // wait for the next heartbeat (5 s) for data that was already there.
        log_end.borrow_and_update();
        let chunk = store
            .replication_chunk(next, HA_TRANSFER_BATCH_BYTES)
            .ok_or(StreamError::OutOfLog {
                asked: next,
                min: store.min_physical_offset(),
                max: store.max_physical_offset(),
            })?;
        if !chunk.is_empty() {
            let len = chunk.len();
            send(&mut writer, next, chunk).await?;
            next += len as i64;
            last_sent = Instant::now();
            continue;
        }
        let heartbeat_at = last_sent + HEARTBEAT_INTERVAL;
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            changed = log_end.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
            }
            changed = reports.changed() => {
                if changed.is_err() {
                    return Ok(()); // the slave closed its side
                }
            }
            _ = tokio::time::sleep_until(heartbeat_at) => {
                send(&mut writer, next, Bytes::new()).await?;
                last_sent = Instant::now();
            }
        }
    }
}

async fn send(
    writer: &mut tokio::net::tcp::OwnedWriteHalf,
    offset: i64,
    body: Bytes,
) -> std::io::Result<()> {
    let header = TransferHeader {
        phy_offset: offset,
        body_size: body.len() as i32,
    };
    let mut buf = Bytes::copy_from_slice(&header.encode()).chain(body);
    writer.write_all_buf(&mut buf).await
}

/// Reads the slave's 8-byte reports; each one moves what SYNC_MASTER sends wait for.
async fn read_reports(
    broker: Arc<Broker>,
    mut reader: OwnedReadHalf,
    reports: watch::Sender<Option<(i64, Instant)>>,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 1024];
    let mut filled = 0;
    loop {
        let n = reader.read(&mut buf[filled..]).await?;
        if n == 0 {
            return Ok(()); // dropping `reports` tells the streamer
        }
        filled += n;
        if let Some((offset, used)) = wire::last_report(&buf[..filled]) {
            buf.copy_within(used..filled, 0);
            filled -= used;
            broker.ha.note_report(offset);
            reports.send_replace(Some((offset, Instant::now())));
        }
    }
}
