//! A connection carries commands both ways: a reader task decodes frames and hands requests to a
//! `RequestHandler` (each on its own task, so a parked pull never delays a send on the same
//! socket), and a writer task batches whatever responses and requests are queued into few writes.
//! Servers and clients share this type; only who dials differs.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use futures::StreamExt;
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use crate::code::response;
use crate::command::{Body, RemotingCommand};
use crate::frame::{self, FrameDecoder};
use crate::tls::{ServerTls, TlsMode};
use crate::RemotingError;

/// Commands queued for the writer before senders wait.
const WRITE_QUEUE_LEN: usize = 4096;
/// Bodies at least this large are written from their own buffers instead of being copied.
const COPY_BODY_LIMIT_BYTES: usize = 16 * 1024;
/// The writer flushes once this much is buffered even if more commands are queued.
const WRITE_BATCH_BYTES: usize = 256 * 1024;

/// Serves the requests arriving on a connection.
pub trait RequestHandler: Send + Sync + 'static {
    /// Handles one request; the returned command is sent back unless the request was oneway.
    fn handle(
        &self,
        conn: &Connection,
        request: RemotingCommand,
    ) -> impl Future<Output = Option<RemotingCommand>> + Send;

    /// Called once when the connection is gone.
    fn on_close(&self, _conn: &Connection) {}
}

/// For peers that never serve requests (a plain client): every request gets `REQUEST_CODE_NOT_SUPPORTED`.
pub struct NoRequests;

impl RequestHandler for NoRequests {
    async fn handle(
        &self,
        _conn: &Connection,
        request: RemotingCommand,
    ) -> Option<RemotingCommand> {
        Some(not_supported(&request))
    }
}

/// The answer to a request code nobody serves (reference §1.6).
pub fn not_supported(request: &RemotingCommand) -> RemotingCommand {
    RemotingCommand::error(
        request,
        response::REQUEST_CODE_NOT_SUPPORTED,
        format!(" request type {} not supported", request.code),
    )
}

static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

/// A cheap handle to a live connection.
#[derive(Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

struct Inner {
    id: u64,
    peer: SocketAddr,
    local: SocketAddr,
    outbound: mpsc::Sender<RemotingCommand>,
    pending: Mutex<HashMap<i32, oneshot::Sender<RemotingCommand>>>,
    next_opaque: AtomicI32,
    closed: CancellationToken,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Connection#{}({})", self.inner.id, self.inner.peer)
    }
}

impl Connection {
    /// Starts the reader and writer tasks of `stream`. The connection closes when the peer does,
    /// on a malformed frame, or when `shutdown` fires.
    pub fn start<H: RequestHandler>(
        stream: TcpStream,
        handler: Arc<H>,
        shutdown: &CancellationToken,
    ) -> Result<Connection, RemotingError> {
        stream.set_nodelay(true)?;
        let peer = stream.peer_addr()?;
        let local = stream.local_addr()?;
        let (read_half, write_half) = stream.into_split();
        Ok(Connection::start_halves(
            read_half, write_half, peer, local, handler, shutdown,
        ))
    }

    /// [`Connection::start`] over any byte stream split in two (a plain socket's owned halves,
    /// or the halves of a TLS stream); monomorphized, so the plaintext path pays nothing.
    pub(crate) fn start_halves<R, W, H>(
        read_half: R,
        write_half: W,
        peer: SocketAddr,
        local: SocketAddr,
        handler: Arc<H>,
        shutdown: &CancellationToken,
    ) -> Connection
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
        H: RequestHandler,
    {
        let (tx, rx) = mpsc::channel(WRITE_QUEUE_LEN);
        let conn = Connection {
            inner: Arc::new(Inner {
                id: NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed),
                peer,
                local,
                outbound: tx,
                pending: Mutex::new(HashMap::new()),
                next_opaque: AtomicI32::new(1),
                closed: shutdown.child_token(),
            }),
        };
        tokio::spawn(write_loop(write_half, rx, conn.inner.closed.clone()));
        let reader_conn = conn.clone();
        tokio::spawn(async move {
            let mut frames = FramedRead::new(read_half, FrameDecoder);
            let closed = reader_conn.inner.closed.clone();
            loop {
                let next = tokio::select! {
                    _ = closed.cancelled() => break,
                    next = frames.next() => next,
                };
                match next {
                    None => break,
                    Some(Err(e)) => {
                        tracing::warn!(peer = %reader_conn.inner.peer, "closing connection: {e}");
                        break;
                    }
                    Some(Ok(cmd)) if cmd.is_response() => reader_conn.complete(cmd),
                    Some(Ok(cmd)) => {
                        // Poll the handler once here: most requests (a send under async
                        // flush, an offset query) finish without waiting, and answering them
                        // inline saves a task spawn and a wake-up on another thread. Those
                        // that wait (a parked pull, a sync-flush send) go on on their own task.
                        let oneway = cmd.is_oneway();
                        let conn = reader_conn.clone();
                        let handler = handler.clone();
                        let mut task = Box::pin(async move {
                            if let Some(resp) = handler.handle(&conn, cmd).await {
                                if !oneway {
                                    let _ = conn.send(resp).await;
                                }
                            }
                        });
                        if futures::poll!(&mut task).is_pending() {
                            tokio::spawn(task);
                        }
                    }
                }
            }
            reader_conn.close();
            reader_conn.inner.pending.lock().clear();
            handler.on_close(&reader_conn);
        });
        conn
    }

    /// Dials `addr`; requests the peer sends us go to `handler`.
    pub async fn connect<H: RequestHandler>(
        addr: &str,
        handler: Arc<H>,
        timeout: Duration,
    ) -> Result<Connection, RemotingError> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| RemotingError::Timeout(timeout.as_millis() as u64))??;
        Connection::start(stream, handler, &CancellationToken::new())
    }

    pub fn id(&self) -> u64 {
        self.inner.id
    }

    pub fn peer_addr(&self) -> SocketAddr {
        self.inner.peer
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local
    }

    pub fn is_closed(&self) -> bool {
        self.inner.closed.is_cancelled()
    }

    pub fn close(&self) {
        self.inner.closed.cancel();
    }

    /// Resolves when the connection is closed.
    pub async fn closed(&self) {
        self.inner.closed.cancelled().await
    }

    /// Queues a command (a response, or a oneway request) for writing.
    pub async fn send(&self, cmd: RemotingCommand) -> Result<(), RemotingError> {
        self.inner
            .outbound
            .send(cmd)
            .await
            .map_err(|_| RemotingError::ConnectionClosed)
    }

    /// Sends a request that expects no response.
    pub async fn oneway(&self, mut cmd: RemotingCommand) -> Result<(), RemotingError> {
        cmd.mark_oneway();
        cmd.opaque = self.inner.next_opaque.fetch_add(1, Ordering::Relaxed);
        self.send(cmd).await
    }

    /// Sends a request and waits for its response (matched by opaque).
    pub async fn request(
        &self,
        mut cmd: RemotingCommand,
        timeout: Duration,
    ) -> Result<RemotingCommand, RemotingError> {
        let opaque = self.inner.next_opaque.fetch_add(1, Ordering::Relaxed);
        cmd.opaque = opaque;
        let (tx, rx) = oneshot::channel();
        self.inner.pending.lock().insert(opaque, tx);
        if let Err(e) = self.send(cmd).await {
            self.inner.pending.lock().remove(&opaque);
            return Err(e);
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(_)) => Err(RemotingError::ConnectionClosed),
            Err(_) => {
                self.inner.pending.lock().remove(&opaque);
                Err(RemotingError::Timeout(timeout.as_millis() as u64))
            }
        }
    }

    fn complete(&self, resp: RemotingCommand) {
        let waiter = self.inner.pending.lock().remove(&resp.opaque);
        match waiter {
            Some(tx) => {
                let _ = tx.send(resp);
            }
            None => tracing::debug!(opaque = resp.opaque, "response for no pending request"),
        }
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut socket: W,
    mut rx: mpsc::Receiver<RemotingCommand>,
    closed: CancellationToken,
) {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        let first = tokio::select! {
            // Closing: still write what is already queued (answers of a shutting-down server).
            _ = closed.cancelled() => match rx.try_recv() {
                Ok(c) => c,
                Err(_) => break,
            },
            cmd = rx.recv() => match cmd { Some(c) => c, None => break },
        };
        let mut next = Some(first);
        // Gather everything already queued into one write.
        while let Some(cmd) = next.take() {
            frame::encode_head(&cmd, &mut buf);
            let result = match &cmd.body {
                Body::Empty => Ok(()),
                Body::One(b) => append_body(&mut socket, &mut buf, b).await,
                Body::Chunks(chunks) => {
                    let mut r = Ok(());
                    for c in chunks {
                        r = append_body(&mut socket, &mut buf, c).await;
                        if r.is_err() {
                            break;
                        }
                    }
                    r
                }
            };
            if result.is_err() {
                closed.cancel();
                return;
            }
            if buf.len() < WRITE_BATCH_BYTES {
                next = rx.try_recv().ok();
            }
        }
        // The flush costs nothing on a plain socket; a TLS stream may hold the last record.
        if socket.write_all(&buf).await.is_err() || socket.flush().await.is_err() {
            closed.cancel();
            return;
        }
        buf.clear();
    }
    let _ = socket.shutdown().await;
}

async fn append_body<W: AsyncWrite + Unpin>(
    socket: &mut W,
    buf: &mut BytesMut,
    body: &[u8],
) -> std::io::Result<()> {
    if body.len() < COPY_BODY_LIMIT_BYTES {
        buf.put_slice(body);
        return Ok(());
    }
    socket.write_all(buf).await?;
    buf.clear();
    socket.write_all(body).await
}

/// Accepts connections on `listener` until `shutdown` fires. With `tls` other than disabled, each
/// connection's first byte decides between a TLS handshake and plaintext (see [`crate::tls`]).
pub async fn serve<H: RequestHandler>(
    listener: TcpListener,
    handler: Arc<H>,
    tls: ServerTls,
    shutdown: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, peer)) if tls.mode() == TlsMode::Disabled => {
                if let Err(e) = Connection::start(stream, handler.clone(), &shutdown) {
                    tracing::warn!(%peer, "could not start a connection: {e}");
                }
            }
            Ok((stream, peer)) => {
                // Waiting for the first byte and the handshake must not hold up other accepts.
                tokio::spawn(
                    tls.clone()
                        .accept(stream, peer, handler.clone(), shutdown.clone()),
                );
            }
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::code::request;

    pub(crate) struct Echo;
    impl RequestHandler for Echo {
        async fn handle(
            &self,
            _conn: &Connection,
            req: RemotingCommand,
        ) -> Option<RemotingCommand> {
            if req.code == request::HEART_BEAT {
                Some(RemotingCommand::success(&req).with_body(req.body_bytes()))
            } else {
                Some(not_supported(&req))
            }
        }
    }

    async fn server() -> (String, CancellationToken) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let shutdown = CancellationToken::new();
        tokio::spawn(serve(
            listener,
            Arc::new(Echo),
            ServerTls::disabled(),
            shutdown.clone(),
        ));
        (addr, shutdown)
    }

    #[tokio::test]
    async fn request_response_and_unknown_code() {
        let (addr, _s) = server().await;
        let conn = Connection::connect(&addr, Arc::new(NoRequests), Duration::from_secs(1))
            .await
            .unwrap();
        let resp = conn
            .request(
                RemotingCommand::request(request::HEART_BEAT).with_body(b"hi".to_vec()),
                Duration::from_secs(1),
            )
            .await
            .unwrap();
        assert_eq!(resp.code, response::SUCCESS);
        assert_eq!(&resp.body_bytes()[..], b"hi");
        let resp = conn
            .request(RemotingCommand::request(9999), Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(resp.code, response::REQUEST_CODE_NOT_SUPPORTED);
        assert!(resp.remark.unwrap().contains("9999"));
    }

    #[tokio::test]
    async fn garbage_closes_only_its_own_connection() {
        let (addr, _s) = server().await;
        let good = Connection::connect(&addr, Arc::new(NoRequests), Duration::from_secs(1))
            .await
            .unwrap();
        let mut bad = TcpStream::connect(&addr).await.unwrap();
        bad.write_all(b"\x00\x00\x00\x08\x07\x00\x00\x00garbage!")
            .await
            .unwrap();
        let mut sink = [0u8; 16];
        let n = tokio::time::timeout(
            Duration::from_secs(2),
            tokio::io::AsyncReadExt::read(&mut bad, &mut sink),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(n, 0, "the server should close the garbage connection");
        let resp = good
            .request(
                RemotingCommand::request(request::HEART_BEAT),
                Duration::from_secs(1),
            )
            .await
            .unwrap();
        assert_eq!(resp.code, response::SUCCESS);
    }
}
