//! Petrel's web dashboard: the page (embedded in the binary) and the JSON API under `/api` that
//! it reads, built on the typed admin client. It owns a short-lived cache of the cluster's topic
//! and group tables and the in-memory history of the charts; it never keeps state a broker
//! should own, and every answer it cannot give is a `{"error": "..."}` with a status.
//! The API is written down in `docs/dashboard.md`.

mod charts;
mod cluster;
mod error;
mod groups;
mod messages;
mod tables;
mod topics;

use std::sync::Arc;

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use petrel_client::admin::Admin;
use petrel_remoting::CancellationToken;
use tokio::task::JoinHandle;

pub use error::ApiError;

/// The dashboard's state: the admin client, the cached tables, the charts' history.
pub struct Dashboard {
    admin: Arc<Admin>,
    tables: tables::Tables,
    charts: charts::Charts,
    producer: tokio::sync::OnceCell<petrel_client::Producer>,
    /// Whether the producer has heartbeated to the brokers it sends to.
    producer_announced: std::sync::atomic::AtomicBool,
}

impl Dashboard {
    pub fn new(admin: Arc<Admin>) -> Arc<Dashboard> {
        Arc::new(Dashboard {
            admin,
            tables: tables::Tables::default(),
            charts: charts::Charts::default(),
            producer: tokio::sync::OnceCell::new(),
            producer_announced: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Samples every broker's TPS and the viewed groups' lag every
    /// [`charts::SAMPLE_INTERVAL_MS`] until `shutdown` fires.
    pub fn spawn_sampler(self: &Arc<Self>, shutdown: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(charts::sample(self.clone(), shutdown))
    }

    /// The page and the API, to be served at `/`.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/", get(index))
            .route("/assets/app.js", get(app_js))
            .route("/assets/style.css", get(style_css))
            .route("/api/cluster", get(cluster::cluster))
            .route("/api/brokers/{addr}/config", get(cluster::broker_config))
            .route("/api/topics", get(topics::list).post(topics::create))
            .route("/api/topics/{topic}", axum::routing::delete(topics::delete))
            .route("/api/topics/{topic}/status", get(topics::status))
            .route("/api/topics/{topic}/route", get(topics::route))
            .route("/api/topics/{topic}/messages", post(topics::send))
            .route("/api/groups", get(groups::list).post(groups::create))
            .route(
                "/api/groups/{group}",
                get(groups::detail).delete(groups::delete),
            )
            .route("/api/groups/{group}/reset", post(groups::reset))
            .route("/api/groups/{group}/pause", post(groups::pause))
            .route("/api/groups/{group}/resume", post(groups::resume))
            .route(
                "/api/groups/{group}/rate-limit",
                post(groups::rate_limit_set),
            )
            .route("/api/producers", get(groups::producers))
            .route("/api/messages", get(messages::by_time))
            .route("/api/messages/by-key", get(messages::by_key))
            .route("/api/messages/by-id", get(messages::by_id))
            .route("/api/messages/resend", post(messages::resend))
            .route("/api/trace", get(messages::trace))
            .route("/api/charts/tps", get(charts::tps))
            .route("/api/charts/lag", get(charts::lag))
            .route("/api/charts/topic-tps", get(charts::topic_tps))
            .fallback(not_found)
            .with_state(self.clone())
    }

    /// A producer in the dashboard's own group for test messages, started on first use.
    async fn producer(&self) -> Result<&petrel_client::Producer, ApiError> {
        self.producer
            .get_or_try_init(|| async {
                let p = petrel_client::Producer::with_instance(
                    DASHBOARD_PRODUCER_GROUP,
                    self.admin.instance().clone(),
                );
                p.start().await.map(|()| p)
            })
            .await
            .map_err(ApiError::from)
    }
}

/// The producer group of the messages sent from the dashboard.
pub const DASHBOARD_PRODUCER_GROUP: &str = "PETREL_DASHBOARD_PRODUCER";

/// The dashboard for the cluster `admin` talks to, its sampler running until `shutdown`.
pub fn router(admin: Arc<Admin>, shutdown: CancellationToken) -> Router {
    let dashboard = Dashboard::new(admin);
    dashboard.spawn_sampler(shutdown);
    dashboard.router()
}

type AppState = axum::extract::State<Arc<Dashboard>>;

const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const STYLE_CSS: &str = include_str!("../assets/style.css");

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}

async fn index() -> impl IntoResponse {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn app_js() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", APP_JS)
}

async fn style_css() -> impl IntoResponse {
    asset("text/css; charset=utf-8", STYLE_CSS)
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("there is no page {}", uri.path()))
}
