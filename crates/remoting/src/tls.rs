//! Optional TLS on a remoting server, as RocketMQ's `tls.server.mode` has it: `disabled`
//! (plaintext only), `permissive` (the first byte of each connection decides: 0x16, a TLS
//! handshake record, means TLS; anything else plaintext) and `enforcing` (TLS only). It owns the
//! sniffing, the handshake, loading or generating the server's certificate, and a client side that
//! trusts any certificate (the Java client's default `tls.test.mode.enable=true`). It never reads
//! or writes a frame: once the stream is chosen, [`Connection`] runs as over plaintext.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_util::sync::CancellationToken;

use crate::connection::{Connection, RequestHandler};
use crate::RemotingError;

/// The first byte of a TLS record carrying a handshake message (a ClientHello opens with one).
pub const TLS_HANDSHAKE_RECORD: u8 = 0x16;
/// A TLS handshake that takes longer than this is given up and its connection closed.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The file names of a generated self-signed certificate and its key, in the directory given to
/// [`ServerTls::new`].
pub const SELF_SIGNED_CERT_FILE: &str = "server.crt";
pub const SELF_SIGNED_KEY_FILE: &str = "server.key";

/// `tlsServerMode`: what a server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsMode {
    /// Plaintext only; a TLS handshake is read as a malformed frame and the connection closed.
    Disabled,
    /// TLS and plaintext on the same port, told apart by the first byte.
    #[default]
    Permissive,
    /// TLS only; a plaintext connection is closed (and logged).
    Enforcing,
}

impl FromStr for TlsMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "disabled" => Ok(TlsMode::Disabled),
            "permissive" => Ok(TlsMode::Permissive),
            "enforcing" => Ok(TlsMode::Enforcing),
            other => Err(format!(
                "tlsServerMode must be disabled, permissive or enforcing, got {other:?}"
            )),
        }
    }
}

/// The TLS settings of a server: `tlsServerMode`, `tlsServerCertPath`, `tlsServerKeyPath`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsConfig {
    pub mode: TlsMode,
    /// PEM certificate chain; with `key_path`. Neither: a self-signed certificate is used.
    pub cert_path: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1), unencrypted.
    pub key_path: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("tlsServerCertPath and tlsServerKeyPath go together; only one is set")]
    HalfConfigured,
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a PEM {what}: {detail}")]
    Pem {
        path: PathBuf,
        what: &'static str,
        detail: String,
    },
    #[error("cannot generate a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("unusable certificate or key: {0}")]
    Rustls(#[from] rustls::Error),
}

/// What a server does with each accepted connection; cheap to clone.
#[derive(Clone)]
pub struct ServerTls {
    mode: TlsMode,
    /// Present unless the mode is disabled.
    acceptor: Option<TlsAcceptor>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ServerTls({:?})", self.mode)
    }
}

impl ServerTls {
    /// Plaintext only.
    pub fn disabled() -> ServerTls {
        ServerTls {
            mode: TlsMode::Disabled,
            acceptor: None,
        }
    }

    /// The server side of `config`, with the certificate [`server_config`] loads or makes.
    pub fn new(config: &TlsConfig, self_signed_dir: Option<&Path>) -> Result<ServerTls, TlsError> {
        Ok(match server_config(config, self_signed_dir, Vec::new())? {
            None => ServerTls::disabled(),
            Some(server) => ServerTls {
                mode: config.mode,
                acceptor: Some(TlsAcceptor::from(server)),
            },
        })
    }

    pub fn mode(&self) -> TlsMode {
        self.mode
    }

    /// Looks at the first byte of `stream`, then starts a [`Connection`] over TLS or plaintext as
    /// the mode allows, or closes it.
    pub(crate) async fn accept<H: RequestHandler>(
        self,
        stream: TcpStream,
        peer: SocketAddr,
        handler: Arc<H>,
        shutdown: CancellationToken,
    ) {
        let mut first = [0u8; 1];
        let peeked = tokio::select! {
            _ = shutdown.cancelled() => return,
            p = stream.peek(&mut first) => p,
        };
        match peeked {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) => {
                tracing::debug!(%peer, "connection failed before its first byte: {e}");
                return;
            }
        }
        let acceptor = match (&self.acceptor, first[0] == TLS_HANDSHAKE_RECORD) {
            (Some(acceptor), true) => acceptor,
            (_, false) if self.mode != TlsMode::Enforcing => {
                if let Err(e) = Connection::start(stream, handler, &shutdown) {
                    tracing::warn!(%peer, "could not start a connection: {e}");
                }
                return;
            }
            _ => {
                tracing::warn!(%peer, "closing a plaintext connection: tlsServerMode is enforcing");
                return;
            }
        };
        let local = match prepare(&stream) {
            Ok(local) => local,
            Err(e) => {
                tracing::warn!(%peer, "could not start a connection: {e}");
                return;
            }
        };
        let handshake = tokio::select! {
            _ = shutdown.cancelled() => return,
            h = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)) => h,
        };
        match handshake {
            Ok(Ok(tls)) => {
                let (read_half, write_half) = tokio::io::split(tls);
                Connection::start_halves(read_half, write_half, peer, local, handler, &shutdown);
            }
            Ok(Err(e)) => tracing::warn!(%peer, "TLS handshake failed: {e}"),
            Err(_) => tracing::warn!(%peer, "TLS handshake not done in {TLS_HANDSHAKE_TIMEOUT:?}"),
        }
    }
}

/// The rustls server side of `config`, offering the ALPN protocols `alpn` (none for remoting;
/// `h2` for gRPC); `None` when the mode is disabled. Without a configured certificate, the
/// self-signed one in `self_signed_dir` (`server.crt`, `server.key`) is used, generated there on
/// first use (the key readable by its owner only); with no directory, a fresh one is made in
/// memory. Every server of a process shares the one certificate this way.
pub fn server_config(
    config: &TlsConfig,
    self_signed_dir: Option<&Path>,
    alpn: Vec<Vec<u8>>,
) -> Result<Option<Arc<rustls::ServerConfig>>, TlsError> {
    if config.mode == TlsMode::Disabled {
        return Ok(None);
    }
    let (certs, key) = match (&config.cert_path, &config.key_path) {
        (Some(cert), Some(key)) => (read_certs(cert)?, read_key(key)?),
        (None, None) => match self_signed_dir {
            Some(dir) => self_signed_in(dir)?,
            None => {
                let (cert_pem, key_pem) = generate_self_signed()?;
                let memory = Path::new("<generated>");
                (
                    parse_certs(memory, cert_pem.as_bytes())?,
                    parse_key(memory, key_pem.as_bytes())?,
                )
            }
        },
        _ => return Err(TlsError::HalfConfigured),
    };
    let mut server = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    server.alpn_protocols = alpn;
    Ok(Some(Arc::new(server)))
}

impl Connection {
    /// [`Connection::connect`] over TLS, trusting any server certificate, as the Java client
    /// does by default (`tls.test.mode.enable=true`): the traffic is encrypted, the server is not
    /// authenticated.
    pub async fn connect_tls<H: RequestHandler>(
        addr: &str,
        handler: Arc<H>,
        timeout: Duration,
    ) -> Result<Connection, RemotingError> {
        let host = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_owned()).map_err(|e| {
            RemotingError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{addr}: {e}"),
            ))
        })?;
        let dial = async {
            let stream = TcpStream::connect(addr).await?;
            let local = prepare(&stream)?;
            let peer = stream.peer_addr()?;
            let tls = client_connector().connect(name, stream).await?;
            Ok::<_, std::io::Error>((tls, peer, local))
        };
        let (tls, peer, local) = tokio::time::timeout(timeout, dial)
            .await
            .map_err(|_| RemotingError::Timeout(timeout.as_millis() as u64))??;
        let (read_half, write_half) = tokio::io::split(tls);
        Ok(Connection::start_halves(
            read_half,
            write_half,
            peer,
            local,
            handler,
            &CancellationToken::new(),
        ))
    }
}

/// What [`Connection::start`] does to a plain socket before use; its local address.
fn prepare(stream: &TcpStream) -> std::io::Result<SocketAddr> {
    stream.set_nodelay(true)?;
    stream.local_addr()
}

/// ring, named explicitly: another crate in the same build may enable a second provider, and
/// then rustls cannot pick one by itself.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A connector whose verifier accepts any server certificate (signatures are still checked).
fn client_connector() -> TlsConnector {
    use std::sync::OnceLock;
    static CONNECTOR: OnceLock<TlsConnector> = OnceLock::new();
    CONNECTOR
        .get_or_init(|| {
            let provider = provider();
            let config = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .expect("ring supports the default protocol versions")
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
                .with_no_client_auth();
            TlsConnector::from(Arc::new(config))
        })
        .clone()
}

#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The self-signed certificate kept in `dir`, made there if it is not yet.
fn self_signed_in(
    dir: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let cert = dir.join(SELF_SIGNED_CERT_FILE);
    let key = dir.join(SELF_SIGNED_KEY_FILE);
    if !(cert.exists() && key.exists()) {
        let (cert_pem, key_pem) = generate_self_signed()?;
        std::fs::create_dir_all(dir).map_err(|source| TlsError::Write {
            path: dir.to_owned(),
            source,
        })?;
        // The key first: a certificate on disk always has its key beside it.
        write_new(&key, key_pem.as_bytes(), 0o600)?;
        write_new(&cert, cert_pem.as_bytes(), 0o644)?;
        tracing::info!(cert = %cert.display(), "generated a self-signed TLS certificate");
    }
    Ok((read_certs(&cert)?, read_key(&key)?))
}

/// A certificate for `localhost` and the loopback addresses, signed by its own key (ECDSA P-256).
fn generate_self_signed() -> Result<(String, String), TlsError> {
    let names = ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec();
    let certified = rcgen::generate_simple_self_signed(names)?;
    Ok((certified.cert.pem(), certified.key_pair.serialize_pem()))
}

/// Writes `path` whole or not at all (through a temporary file renamed over it), with `mode`.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let write = || -> std::io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|source| TlsError::Write {
        path: path.to_owned(),
        source,
    })
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    parse_certs(path, &read(path)?)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    parse_key(path, &read(path)?)
}

fn parse_certs(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bad = |detail: String| TlsError::Pem {
        path: path.to_owned(),
        what: "certificate",
        detail,
    };
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no CERTIFICATE block".into()));
    }
    Ok(certs)
}

fn parse_key(path: &Path, pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| TlsError::Pem {
        path: path.to_owned(),
        what: "private key",
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::code::{request, response};
    use crate::connection::tests::Echo;
    use crate::{serve, NoRequests, RemotingCommand};
    use tokio::net::TcpListener;

    const WAIT: Duration = Duration::from_secs(5);

    async fn server(tls: ServerTls) -> (String, CancellationToken) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let shutdown = CancellationToken::new();
        tokio::spawn(serve(listener, Arc::new(Echo), tls, shutdown.clone()));
        (addr, shutdown)
    }

    fn mode(mode: TlsMode) -> ServerTls {
        let config = TlsConfig {
            mode,
            ..TlsConfig::default()
        };
        ServerTls::new(&config, None).unwrap()
    }

    /// A heartbeat carrying `body` comes back with it.
    async fn round_trip(conn: &Connection, body: &[u8]) {
        let resp = conn
            .request(
                RemotingCommand::request(request::HEART_BEAT).with_body(body.to_vec()),
                WAIT,
            )
            .await
            .unwrap();
        assert_eq!(resp.code, response::SUCCESS);
        assert_eq!(&resp.body_bytes()[..], body);
    }

    #[tokio::test]
    async fn permissive_serves_tls_and_plaintext_on_one_port() {
        let (addr, _s) = server(mode(TlsMode::Permissive)).await;
        let tls = Connection::connect_tls(&addr, Arc::new(NoRequests), WAIT)
            .await
            .unwrap();
        let plain = Connection::connect(&addr, Arc::new(NoRequests), WAIT)
            .await
            .unwrap();
        round_trip(&tls, b"over tls").await;
        round_trip(&plain, b"in the clear").await;
        // Bodies past the writer's copy limit go out from their own buffers, through TLS too.
        let large = vec![7u8; 1024 * 1024];
        round_trip(&tls, &large).await;
        round_trip(&plain, &large).await;
    }

    #[tokio::test]
    async fn enforcing_refuses_plaintext_and_serves_tls() {
        let (addr, _s) = server(mode(TlsMode::Enforcing)).await;
        let plain = Connection::connect(&addr, Arc::new(NoRequests), WAIT)
            .await
            .unwrap();
        let refused = plain
            .request(RemotingCommand::request(request::HEART_BEAT), WAIT)
            .await;
        assert!(refused.is_err(), "plaintext answered: {refused:?}");
        let tls = Connection::connect_tls(&addr, Arc::new(NoRequests), WAIT)
            .await
            .unwrap();
        round_trip(&tls, b"tls only").await;
    }

    #[tokio::test]
    async fn disabled_refuses_tls_and_serves_plaintext() {
        let (addr, _s) = server(ServerTls::disabled()).await;
        let refused = Connection::connect_tls(&addr, Arc::new(NoRequests), WAIT).await;
        assert!(refused.is_err(), "a TLS handshake succeeded");
        let plain = Connection::connect(&addr, Arc::new(NoRequests), WAIT)
            .await
            .unwrap();
        round_trip(&plain, b"plaintext only").await;
    }

    #[tokio::test]
    async fn self_signed_certificate_is_generated_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let tls_dir = dir.path().join("config/tls");
        let config = TlsConfig::default();
        ServerTls::new(&config, Some(&tls_dir)).unwrap();
        let cert = std::fs::read(tls_dir.join(SELF_SIGNED_CERT_FILE)).unwrap();
        let key = std::fs::read(tls_dir.join(SELF_SIGNED_KEY_FILE)).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = std::fs::metadata(tls_dir.join(SELF_SIGNED_KEY_FILE)).unwrap();
            assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        }
        let again = ServerTls::new(&config, Some(&tls_dir)).unwrap();
        assert_eq!(
            std::fs::read(tls_dir.join(SELF_SIGNED_CERT_FILE)).unwrap(),
            cert
        );
        assert_eq!(
            std::fs::read(tls_dir.join(SELF_SIGNED_KEY_FILE)).unwrap(),
            key
        );
        // The kept files also work as a configured certificate.
        let configured = TlsConfig {
            mode: TlsMode::Enforcing,
            cert_path: Some(tls_dir.join(SELF_SIGNED_CERT_FILE)),
            key_path: Some(tls_dir.join(SELF_SIGNED_KEY_FILE)),
        };
        let (addr, _s) = server(ServerTls::new(&configured, None).unwrap()).await;
        let tls = Connection::connect_tls(&addr, Arc::new(NoRequests), WAIT)
            .await
            .unwrap();
        round_trip(&tls, b"configured").await;
        assert_eq!(again.mode(), TlsMode::Permissive);
    }

    #[test]
    fn bad_settings_are_errors() {
        let half = TlsConfig {
            cert_path: Some("/nonexistent/server.crt".into()),
            ..TlsConfig::default()
        };
        assert!(matches!(
            ServerTls::new(&half, None),
            Err(TlsError::HalfConfigured)
        ));
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not pem").unwrap();
        let bad = TlsConfig {
            cert_path: Some(junk.clone()),
            key_path: Some(junk),
            ..TlsConfig::default()
        };
        assert!(matches!(
            ServerTls::new(&bad, None),
            Err(TlsError::Pem { .. })
        ));
        assert_eq!("enforcing".parse(), Ok(TlsMode::Enforcing));
        assert!("strict".parse::<TlsMode>().is_err());
    }
}
