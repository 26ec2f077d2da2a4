//! Test harness: Petrel standalone in-process on ephemeral loopback ports, restartable on the
//! same ports and data directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use petrel::standalone::{self, StandaloneConfig};

pub struct Standalone {
    pub namesrv_addr: String,
    pub broker_addr: String,
    data_dir: PathBuf,
    ports: Option<(SocketAddr, SocketAddr)>,
    inner: Option<standalone::Standalone>,
}

impl Standalone {
    pub async fn start(data_dir: &Path) -> anyhow::Result<Standalone> {
        init_tracing();
        Self::start_with(StandaloneConfig::ephemeral(data_dir)).await
    }

    pub async fn start_with(config: StandaloneConfig) -> anyhow::Result<Standalone> {
        init_tracing();
        let data_dir = config.data_dir.clone();
        let inner = standalone::Standalone::start(config).await?;
        Ok(Standalone {
            namesrv_addr: inner.namesrv_addr().to_string(),
            broker_addr: inner.broker_addr().to_string(),
            ports: Some((inner.namesrv_addr(), inner.broker_addr())),
            data_dir,
            inner: Some(inner),
        })
    }

    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(inner) = self.inner.take() {
            inner.shutdown().await;
        }
        Ok(())
    }

    /// Clean shutdown, then a start on the same ports and data directory.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        if let Some(inner) = self.inner.take() {
            inner.shutdown().await;
        }
        let (ns, broker) = self.ports.expect("started");
        let mut config = StandaloneConfig::ephemeral(&self.data_dir);
        config.namesrv_listen = ns;
        config.broker_listen = broker;
        self.inner = Some(standalone::Standalone::start(config).await?);
        Ok(())
    }
}

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_test_writer()
        .try_init();
}
