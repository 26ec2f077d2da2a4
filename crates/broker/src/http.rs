//! The broker's HTTP endpoint (RocketMQ's `metricsPromExporterPort`, 5557): `/metrics` in
//! Prometheus text format and `/health`, and the routes its starter adds (the dashboard). It
//! only reads the broker; a port it cannot bind is logged and the broker serves on without it.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use petrel_remoting::CancellationToken;
use tokio::net::TcpListener;

use crate::broker::Broker;

/// Binds `addr`; `None` (logged) if it cannot.
pub(crate) async fn bind(addr: SocketAddr) -> Option<TcpListener> {
    match TcpListener::bind(addr).await {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::warn!(%addr, "cannot listen for /metrics; serving without it: {e}");
            None
        }
    }
}

/// Serves `/metrics`, `/health` and `extra` until `shutdown` fires.
pub(crate) async fn serve(
    listener: TcpListener,
    broker: Arc<Broker>,
    extra: Option<Router>,
    shutdown: CancellationToken,
) {
    let mut app = Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .with_state(broker);
    if let Some(extra) = extra {
        app = app.merge(extra);
    }
    let stopped = shutdown.cancelled_owned();
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stopped)
        .await
    {
        tracing::warn!("the metrics endpoint stopped: {e}");
    }
}

async fn metrics(State(b): State<Arc<Broker>>) -> impl IntoResponse {
    // Gauges read the store and walk its directory: off the async workers.
    let text = tokio::task::spawn_blocking(move || crate::metrics::render(&b))
        .await
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

async fn health(State(b): State<Arc<Broker>>) -> impl IntoResponse {
    if b.stopping.is_cancelled() {
        (StatusCode::SERVICE_UNAVAILABLE, "stopping")
    } else {
        (StatusCode::OK, "ok")
    }
}
