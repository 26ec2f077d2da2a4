//! The web dashboard as each role serves it: on the broker's HTTP port (standalone and
//! `petrel broker`), or alone for a cluster (`petrel dashboard`). The dashboard itself lives in
//! `petrel_dashboard`; this only points it at a name server and says where it is.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use anyhow::Context;
use petrel_client::admin::Admin;
use petrel_client::Credentials;
use petrel_remoting::CancellationToken;

/// The dashboard's routes for the cluster of name server(s) `namesrv`, its requests signed with
/// `credentials` (a cluster with aclEnable), its sampler stopping with `shutdown`.
pub fn for_namesrv(
    namesrv: &str,
    credentials: Option<Credentials>,
    shutdown: &CancellationToken,
) -> axum::Router {
    let admin = Arc::new(Admin::new(crate::tools::client_config(
        namesrv,
        credentials,
    )));
    petrel_dashboard::router(admin, shutdown.clone())
}

/// The account a broker's dashboard signs with when the broker has aclEnable: the
/// `PETREL_ACCESS_KEY`/`PETREL_SECRET_KEY` of the environment (none without aclEnable).
pub fn broker_credentials(acl_enable: bool) -> anyhow::Result<Option<Credentials>> {
    if !acl_enable {
        return Ok(None);
    }
    crate::acl_args::AclArgs::default()
        .credentials()
        .context("cannot read the dashboard's account")
}

/// Logs where the dashboard is served (loopback for an unspecified IP).
pub fn log_url(addr: SocketAddr) {
    let addr = if addr.ip().is_unspecified() {
        SocketAddr::new(IpAddr::from([127, 0, 0, 1]), addr.port())
    } else {
        addr
    };
    tracing::info!("dashboard: http://{addr}/");
}

/// `petrel dashboard`: serves only the dashboard of the cluster at `namesrv` on `listen`, signed
/// with `credentials`, until `shutdown` fires.
pub async fn serve(
    namesrv: &str,
    credentials: Option<Credentials>,
    listen: SocketAddr,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let app = for_namesrv(namesrv, credentials, &shutdown);
    log_url(listener.local_addr().unwrap_or(listen));
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .context("the dashboard stopped")
}
