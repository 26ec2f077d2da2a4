//! `petrel`: every Petrel role and tool in one binary.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use petrel::standalone::{Standalone, StandaloneConfig};
use petrel_namesrv::{NameServer, NamesrvConfig};
use petrel_remoting::CancellationToken;
use petrel_store::FlushDiskType;

#[derive(Parser)]
#[command(
    name = "petrel",
    version,
    about = "A RocketMQ-compatible message broker"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Flush {
    Async,
    Sync,
}

impl From<Flush> for FlushDiskType {
    fn from(f: Flush) -> Self {
        match f {
            Flush::Async => FlushDiskType::AsyncFlush,
            Flush::Sync => FlushDiskType::SyncFlush,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// A name server and a broker in one process.
    Standalone {
        /// Data directory (commit log, consume queues, metadata).
        #[arg(long, default_value = "./data")]
        data: PathBuf,
        #[arg(long, default_value = "0.0.0.0:9876")]
        namesrv_listen: SocketAddr,
        #[arg(long, default_value = "0.0.0.0:10911")]
        broker_listen: SocketAddr,
        /// IP the broker advertises to clients (brokerIP1).
        #[arg(long, default_value = "127.0.0.1")]
        broker_ip: IpAddr,
        #[arg(long, value_enum, default_value = "async")]
        flush: Flush,
    },
    /// A name server alone.
    Namesrv {
        #[arg(long, default_value = "0.0.0.0:9876")]
        listen: SocketAddr,
    },
    /// A broker alone, registering with name servers.
    Broker {
        /// Name servers, `host:port;host:port`.
        #[arg(long)]
        namesrv: String,
        #[arg(long, default_value = "./data")]
        data: PathBuf,
        #[arg(long, default_value = "0.0.0.0:10911")]
        listen: SocketAddr,
        #[arg(long, default_value = "127.0.0.1")]
        broker_ip: IpAddr,
        #[arg(long, default_value = "broker-a")]
        broker_name: String,
        #[arg(long, default_value = "DefaultCluster")]
        cluster: String,
        #[arg(long, value_enum, default_value = "async")]
        flush: Flush,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Standalone {
            data,
            namesrv_listen,
            broker_listen,
            broker_ip,
            flush,
        } => {
            let mut config = StandaloneConfig::new(data);
            config.namesrv_listen = namesrv_listen;
            config.broker_listen = broker_listen;
            config.broker_ip = broker_ip;
            config.flush_disk_type = flush.into();
            let standalone = Standalone::start(config).await?;
            tracing::info!(
                namesrv = %standalone.namesrv_addr(),
                broker = %standalone.broker_addr(),
                "petrel standalone is up; Ctrl-C to stop"
            );
            wait_for_signal().await;
            standalone.shutdown().await;
        }
        Command::Namesrv { listen } => {
            let shutdown = CancellationToken::new();
            let config = NamesrvConfig {
                listen_addr: listen,
                ..NamesrvConfig::default()
            };
            let ns = NameServer::start(config, shutdown.clone())
                .await
                .with_context(|| format!("cannot start the name server on {listen}"))?;
            tracing::info!(addr = %ns.local_addr(), "name server is up; Ctrl-C to stop");
            wait_for_signal().await;
            shutdown.cancel();
        }
        Command::Broker {
            namesrv,
            data,
            listen,
            broker_ip,
            broker_name,
            cluster,
            flush,
        } => {
            let mut store = petrel_store::StoreConfig::new(data);
            store.flush_disk_type = flush.into();
            let mut config = petrel_broker::BrokerConfig::new(store);
            config.namesrv_addr = namesrv;
            config.listen_addr = listen;
            config.broker_ip = broker_ip;
            config.broker_name = broker_name;
            config.cluster_name = cluster;
            let broker = petrel_broker::Broker::start(config, CancellationToken::new())
                .await
                .with_context(|| format!("cannot start the broker on {listen}"))?;
            wait_for_signal().await;
            broker.shutdown().await;
        }
    }
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler cannot fail on unix");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}
