//! The listener: one TCP port (8081 by default) for TLS and plaintext HTTP/2 alike. The first
//! byte of each connection decides (0x16, a TLS handshake record: TLS with ALPN `h2`; anything
//! else: h2c), as the broker's `tlsServerMode` allows; the TLS certificate is the broker's own
//! (configured, or the self-signed one kept under its store). Handshakes run on their own tasks,
//! so a slow client never holds up the accept loop. It owns no RPC logic.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use petrel_broker::Broker;
use petrel_remoting::tls::{server_config, TLS_HANDSHAKE_RECORD, TLS_HANDSHAKE_TIMEOUT};
use petrel_remoting::{CancellationToken, TlsMode};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt;
use tonic::transport::server::Connected;

use crate::clients::{Clients, CLIENT_IDLE_EXPIRY};
use crate::context::PeerInfo;
use crate::pb::messaging_service_server::MessagingServiceServer;
use crate::service::Messaging;

/// The largest request accepted, bytes: a batch of messages at the broker's size limit each,
/// plus their properties, fits many times over.
const MAX_REQUEST_BYTES: usize = 128 * 1024 * 1024;
/// Connections whose first byte has not come by then are closed.
const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stop waits for open calls to end before it cuts the connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// Accepted connections waiting for the HTTP/2 server to take them.
const ACCEPT_BACKLOG: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("TLS: {0}")]
    Tls(#[from] petrel_remoting::tls::TlsError),
}

/// The running gRPC endpoint.
pub struct ProxyHandle {
    local_addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl ProxyHandle {
    /// Where it listens (the bound port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, ends the telemetry streams and parked receives, and waits a little
    /// for calls in flight.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        let mut task = self.task;
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
            .await
            .is_err()
        {
            tracing::warn!("gRPC calls still open after {SHUTDOWN_GRACE:?}; closing them");
            task.abort();
        }
    }
}

/// Serves `apache.rocketmq.v2.MessagingService` for `broker` on `listen` until
/// [`ProxyHandle::shutdown`].
pub async fn start(broker: Arc<Broker>, listen: SocketAddr) -> Result<ProxyHandle, ProxyError> {
    let tls = match broker.config.tls.mode {
        TlsMode::Disabled => None,
        mode => server_config(
            &broker.config.tls,
            Some(&broker.config.tls_self_signed_dir()),
            vec![b"h2".to_vec()],
        )?
        .map(|c| (mode, TlsAcceptor::from(c))),
    };
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| ProxyError::Bind {
            addr: listen,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| ProxyError::Bind {
        addr: listen,
        source,
    })?;
    let shutdown = CancellationToken::new();
    let (accepted, incoming) = mpsc::channel(ACCEPT_BACKLOG);
    tokio::spawn(accept_loop(listener, tls, accepted, shutdown.clone()));
    let clients = Arc::new(Clients::default());
    tokio::spawn(forget_idle_clients(clients.clone(), shutdown.clone()));
    let service = MessagingServiceServer::new(Messaging::new(
        broker,
        clients,
        shutdown.clone(),
        local_addr.port(),
    ))
    .max_decoding_message_size(MAX_REQUEST_BYTES);
    let stop = shutdown.clone();
    let task = tokio::spawn(async move {
        let incoming = ReceiverStream::new(incoming).map(Ok::<_, io::Error>);
        let served = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(incoming, stop.cancelled())
            .await;
        if let Err(e) = served {
            tracing::error!("the gRPC server failed: {e}");
        }
    });
    tracing::info!(addr = %local_addr, "gRPC endpoint (RocketMQ 5.x clients) listening");
    Ok(ProxyHandle {
        local_addr,
        shutdown,
        task,
    })
}

/// Drops what is kept of clients long gone, now and then.
async fn forget_idle_clients(clients: Arc<Clients>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(CLIENT_IDLE_EXPIRY / 4);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => clients.forget_idle(),
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<(TlsMode, TlsAcceptor)>,
    accepted: mpsc::Sender<GrpcStream>,
    shutdown: CancellationToken,
) {
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!("gRPC accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let tls = tls.clone();
        let accepted = accepted.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                s = open(stream, peer, tls) => if let Some(s) = s {
                    let _ = accepted.send(s).await;
                },
            }
        });
    }
}

/// Sniffs the first byte and does the TLS handshake where there is one.
async fn open(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<(TlsMode, TlsAcceptor)>,
) -> Option<GrpcStream> {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(%peer, "cannot set TCP_NODELAY: {e}");
    }
    let mut first = [0u8; 1];
    match tokio::time::timeout(FIRST_BYTE_TIMEOUT, stream.peek(&mut first)).await {
        Ok(Ok(1..)) => {}
        Ok(Ok(_)) => return None,
        Ok(Err(e)) => {
            tracing::debug!(%peer, "gRPC connection failed before its first byte: {e}");
            return None;
        }
        Err(_) => {
            tracing::debug!(%peer, "gRPC connection sent nothing in {FIRST_BYTE_TIMEOUT:?}");
            return None;
        }
    }
    let plain = |stream| {
        Some(GrpcStream {
            io: Io::Plain(stream),
            info: PeerInfo { peer },
        })
    };
    match tls {
        Some((_, acceptor)) if first[0] == TLS_HANDSHAKE_RECORD => {
            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => Some(GrpcStream {
                    io: Io::Tls(Box::new(tls)),
                    info: PeerInfo { peer },
                }),
                Ok(Err(e)) => {
                    tracing::debug!(%peer, "gRPC TLS handshake failed: {e}");
                    None
                }
                Err(_) => {
                    tracing::debug!(%peer, "gRPC TLS handshake not done in time");
                    None
                }
            }
        }
        Some((TlsMode::Enforcing, _)) => {
            tracing::warn!(%peer, "closing a plaintext gRPC connection: tlsServerMode is enforcing");
            None
        }
        _ => plain(stream),
    }
}

/// An accepted connection, in the clear or over TLS.
struct GrpcStream {
    io: Io,
    info: PeerInfo,
}

enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Connected for GrpcStream {
    type ConnectInfo = PeerInfo;

    fn connect_info(&self) -> PeerInfo {
        self.info
    }
}

impl AsyncRead for GrpcStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for GrpcStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
