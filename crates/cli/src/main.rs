//! `petrel`: every Petrel role and tool in one binary.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use petrel::acl_args::AclArgs;
use petrel::standalone::{Standalone, StandaloneConfig};
use petrel_namesrv::{NameServer, NamesrvConfig};
use petrel_remoting::CancellationToken;
use petrel_store::FlushDiskType;

/// mimalloc: the send path allocates a few small buffers per message; glibc's malloc showed up
/// as a fifth of the broker's CPU in profiles.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

/// `bench timer --quick`: timers and window of a run small enough to try.
const QUICK_TIMERS: usize = 20_000;
const QUICK_WINDOW: Duration = Duration::from_secs(10);

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
        /// Where the broker serves Prometheus `/metrics` and `/health` (RocketMQ's
        /// metricsPromExporterPort, 5557).
        #[arg(long, default_value = "0.0.0.0:5557")]
        metrics_listen: SocketAddr,
        /// Where the gRPC endpoint of the RocketMQ 5.x clients listens (RocketMQ's
        /// grpcServerPort, 8081), or `off`.
        #[arg(long, default_value = "0.0.0.0:8081", value_parser = parse_listen_or_off)]
        grpc_listen: Listen,
        /// Broker settings in a TOML file with RocketMQ's key names (docs/configuration.md);
        /// its keys win over the flags above.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// A controller: with its peers, elects the master of each broker group whose brokers run
    /// with `enableControllerMode` (docs/replication.md).
    Controller {
        /// This controller's id among the peers.
        #[arg(long, default_value_t = 1)]
        id: u64,
        /// Every controller, this one included: `1=host:9878;2=host:9878;3=host:9878`.
        /// Default: this controller alone, on `--listen`.
        #[arg(long)]
        peers: Option<String>,
        #[arg(long, default_value = "0.0.0.0:9878")]
        listen: SocketAddr,
        /// Where the Raft log, vote and snapshot are kept.
        #[arg(long, default_value = "./controller")]
        data: PathBuf,
        /// A master silent this long is replaced (`brokerNotActiveTimeoutMillis`).
        #[arg(long, default_value_t = 5000)]
        broker_not_active_timeout_ms: u64,
        /// With no in-sync replica alive, elect any (`enableElectUncleanMaster`; loses what
        /// only the old master had).
        #[arg(long)]
        elect_unclean_master: bool,
    },
    /// A name server alone.
    Namesrv {
        #[arg(long, default_value = "0.0.0.0:9876")]
        listen: SocketAddr,
        /// Name server settings in a TOML file (listenPort, tlsServerMode, ...;
        /// docs/configuration.md); its keys win over the flag above.
        #[arg(long)]
        config: Option<PathBuf>,
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
        /// Where the gRPC endpoint of the RocketMQ 5.x clients listens (RocketMQ's
        /// grpcServerPort, 8081), or `off`.
        #[arg(long, default_value = "0.0.0.0:8081", value_parser = parse_listen_or_off)]
        grpc_listen: Listen,
        /// Broker settings in a TOML file with RocketMQ's key names (docs/configuration.md);
        /// its keys win over the flags above.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// The web dashboard of a cluster, alone (brokers serve it on their HTTP port too).
    Dashboard {
        /// Name servers of the cluster, `host:port;host:port`.
        #[arg(long, default_value = "127.0.0.1:9876")]
        namesrv: String,
        #[arg(long, default_value = "0.0.0.0:8080")]
        listen: SocketAddr,
        #[command(flatten)]
        acl: AclArgs,
    },
    /// Send messages (for a human at a terminal).
    Send {
        #[arg(long, default_value = "127.0.0.1:9876")]
        namesrv: String,
        #[arg(long)]
        topic: String,
        #[arg(long)]
        body: String,
        #[arg(long)]
        tags: Option<String>,
        #[arg(long)]
        keys: Option<String>,
        #[arg(long, default_value_t = 1)]
        count: u64,
        /// Deliver at this time: epoch milliseconds or RFC 3339 (2026-12-24T18:00:00Z,
        /// 2026-12-24T19:00:00.250+01:00). Sets TIMER_DELIVER_MS.
        #[arg(long, value_name = "TIME", value_parser = petrel::time_arg::parse_epoch_ms,
              conflicts_with = "delay")]
        deliver_at: Option<i64>,
        /// Deliver this long after the broker receives each message: 500ms, 10s, 2m, 1h, 1d.
        /// Sets TIMER_DELAY_MS.
        #[arg(long, value_name = "DURATION", value_parser = petrel::time_arg::parse_duration)]
        delay: Option<Duration>,
        #[command(flatten)]
        acl: AclArgs,
    },
    /// Consume and print messages.
    Consume {
        #[arg(long, default_value = "127.0.0.1:9876")]
        namesrv: String,
        #[arg(long)]
        topic: String,
        #[arg(long, default_value = "petrel_cli_consumer")]
        group: String,
        /// Tag expression: `*` or `TagA || TagB`.
        #[arg(long, default_value = "*")]
        expression: String,
        /// Start from the oldest stored message when the group has no offset yet.
        #[arg(long)]
        from_first: bool,
        /// Stop after this many messages (0 = until Ctrl-C).
        #[arg(long, default_value_t = 0)]
        count: u64,
        #[command(flatten)]
        acl: AclArgs,
    },
    /// Operate on a running cluster: the daily mqadmin commands (clusters, brokers, topics,
    /// groups, consumer progress, connections, message queries), offset resets, pausing and
    /// throttling consumer groups, pending transactions.
    Admin {
        #[arg(long, default_value = "127.0.0.1:9876")]
        namesrv: String,
        #[command(flatten)]
        acl: AclArgs,
        #[command(subcommand)]
        what: petrel::admin::AdminCommand,
    },
    /// Benchmarks against a running broker.
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
}

/// What a bench run must reach; the command exits non-zero, after its summary, when it does not.
#[derive(clap::Args)]
struct ExpectArgs {
    /// Fail unless the run reaches this many messages per second (consume: the drain rate).
    #[arg(long)]
    min_tps: Option<f64>,
    /// Fail if the broker used more CPU per message than this, in µs (needs --broker-pid).
    #[arg(long, requires = "broker_pid")]
    max_cpu_us: Option<f64>,
}

impl From<ExpectArgs> for petrel::bench::Expectations {
    fn from(a: ExpectArgs) -> Self {
        petrel::bench::Expectations {
            min_tps: a.min_tps,
            max_cpu_us: a.max_cpu_us,
        }
    }
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Sync sends from many concurrent senders.
    Produce {
        #[arg(long, default_value = "127.0.0.1:9876")]
        namesrv: String,
        #[arg(long, default_value = "BenchmarkTest")]
        topic: String,
        /// Concurrent senders (the Java benchmark's threads).
        #[arg(long, default_value_t = 32)]
        threads: usize,
        /// Message body size in bytes.
        #[arg(long, default_value_t = 1024)]
        size: usize,
        /// Messages per send call; above 1, each call is one SEND_BATCH_MESSAGE (the Java
        /// client's send(Collection)); TPS counts messages, latency is per call.
        #[arg(long, default_value_t = 1)]
        batch: usize,
        /// Send round robin over this many topics, `<topic>_000000`…, created first with
        /// `--queues` queues each on every master of `--cluster`.
        #[arg(long, default_value_t = 1)]
        topics: usize,
        #[arg(long, default_value_t = 4)]
        queues: i32,
        #[arg(long, default_value = "DefaultCluster")]
        cluster: String,
        /// Seconds to run.
        #[arg(long, default_value_t = 30)]
        duration: u64,
        /// Seconds between reports.
        #[arg(long, default_value_t = 5)]
        interval: u64,
        /// Send JSON headers instead of the ROCKETMQ binary ones the official benchmark uses.
        #[arg(long)]
        json: bool,
        /// Report this process's CPU time per message (the broker's pid).
        #[arg(long)]
        broker_pid: Option<u32>,
        #[command(flatten)]
        expect: ExpectArgs,
        #[command(flatten)]
        acl: AclArgs,
    },
    /// Consume as fast as possible.
    Consume {
        #[arg(long, default_value = "127.0.0.1:9876")]
        namesrv: String,
        #[arg(long, default_value = "BenchmarkTest")]
        topic: String,
        #[arg(long, default_value = "petrel_bench_consumer")]
        group: String,
        #[arg(long, default_value_t = 30)]
        duration: u64,
        #[arg(long, default_value_t = 5)]
        interval: u64,
        /// Messages per listener call (consumeMessageBatchMaxSize).
        #[arg(long, default_value_t = 32)]
        batch: usize,
        /// Percentage of first deliveries the listener fails (answers Later), so they go to
        /// the retry topic.
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=100))]
        fail_percent: u32,
        /// Report this process's CPU time per message consumed (the broker's pid).
        #[arg(long)]
        broker_pid: Option<u32>,
        #[command(flatten)]
        expect: ExpectArgs,
        #[command(flatten)]
        acl: AclArgs,
    },
    /// Timer messages: load N pending timers, measure the broker's extra memory while they
    /// wait and how late each is delivered (docs/benchmarks.md).
    Timer {
        #[arg(long, default_value = "127.0.0.1:9876", conflicts_with = "in_process")]
        namesrv: String,
        /// The broker's pid: its RssAnon is read before and while the timers are pending.
        #[arg(long, conflicts_with = "in_process")]
        broker_pid: Option<u32>,
        /// Start a standalone broker in this process (on loopback ports) instead; RSS is then
        /// this process's, client included.
        #[arg(long)]
        in_process: bool,
        /// The in-process broker's data directory (default: a fresh one under the current
        /// directory, removed afterwards).
        #[arg(long, requires = "in_process")]
        data: Option<PathBuf>,
        #[arg(long, default_value = "BenchTimer")]
        topic: String,
        #[arg(long, default_value = "petrel_bench_timer")]
        group: String,
        /// Timer messages to load.
        #[arg(long, default_value_t = 1_000_000)]
        timers: usize,
        /// Due times are spread uniformly over this window: 10s, 1m, ...
        #[arg(long, default_value = "60s", value_parser = petrel::time_arg::parse_duration)]
        window: Duration,
        /// The window opens this long after the first send (default: twice the send time the
        /// warm-up's rate predicts, plus 5 s).
        #[arg(long, value_parser = petrel::time_arg::parse_duration)]
        delay: Option<Duration>,
        /// A small run to try it: 20,000 timers in a 10 s window.
        #[arg(long, conflicts_with_all = ["timers", "window"])]
        quick: bool,
        /// Sends in flight at once.
        #[arg(long, default_value_t = 512)]
        in_flight: usize,
        /// Message body size in bytes (at least 48: the run id, index and due time).
        #[arg(long, default_value_t = 128)]
        size: usize,
        /// Seconds between reports.
        #[arg(long, default_value_t = 5)]
        interval: u64,
        /// How long after the last due time to wait for timers that have not arrived.
        #[arg(long, default_value = "30s", value_parser = petrel::time_arg::parse_duration)]
        grace: Duration,
        #[command(flatten)]
        acl: AclArgs,
    },
    /// The message store alone, in process, against the raw disk under it.
    Store {
        /// Directory for the stores and raw-disk probes (default: a fresh one under the
        /// current directory, removed afterwards).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Message body sizes in bytes.
        #[arg(long, value_delimiter = ',', default_value = "1024,16384")]
        sizes: Vec<usize>,
        /// Concurrent writers (tokio tasks calling the store).
        #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
        writers: Vec<usize>,
        #[arg(long, value_delimiter = ',', default_value = "async,sync")]
        flush: Vec<Flush>,
        /// Messages per put_messages call for the batched cases; 0 runs single puts only.
        #[arg(long, default_value_t = 32)]
        batch: usize,
        /// Skip the single-message cases.
        #[arg(long)]
        batched_only: bool,
        /// Seconds per case.
        #[arg(long, default_value_t = 4)]
        duration: u64,
        /// MiB for the raw sequential probe (1 MiB writes, then fdatasync).
        #[arg(long, default_value_t = 1024)]
        raw_mib: u64,
        /// Sequential probes before the cases (the best is the reference; one more runs after).
        #[arg(long, default_value_t = 3)]
        raw_repeats: u32,
        /// Seconds of 4 KiB O_DSYNC writes for the synchronous-write probe.
        #[arg(long, default_value_t = 3)]
        dsync_secs: u64,
        /// Commit-log segment size in MiB.
        #[arg(long, default_value_t = 1024)]
        segment_mib: u64,
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
            metrics_listen,
            grpc_listen,
            config: config_file,
        } => {
            let mut config = StandaloneConfig::new(data);
            config.broker_config_file = config_file;
            config.metrics_listen = Some(metrics_listen);
            config.grpc_listen = grpc_listen.0;
            config.namesrv_listen = namesrv_listen;
            config.broker_listen = broker_listen;
            config.broker_ip = broker_ip;
            config.flush_disk_type = flush.into();
            let standalone = Standalone::start(config).await?;
            // "off" when the endpoint is disabled or its port could not be bound.
            let metrics = standalone
                .metrics_addr()
                .map_or_else(|| "off".to_owned(), |a| a.to_string());
            let grpc = standalone
                .grpc_addr()
                .map_or_else(|| "off".to_owned(), |a| a.to_string());
            tracing::info!(
                namesrv = %standalone.namesrv_addr(),
                broker = %standalone.broker_addr(),
                grpc = %grpc,
                metrics = %metrics,
                "petrel standalone is up; Ctrl-C to stop"
            );
            wait_for_signal().await;
            standalone.shutdown().await;
        }
        Command::Controller {
            id,
            peers,
            listen,
            data,
            broker_not_active_timeout_ms,
            elect_unclean_master,
        } => {
            let mut config = petrel_controller::ControllerConfig::new(id, listen, data);
            if let Some(peers) = peers {
                config.peers = parse_peers(&peers)?;
            }
            config.broker_not_active_timeout =
                std::time::Duration::from_millis(broker_not_active_timeout_ms);
            config.elect_unclean_master = elect_unclean_master;
            let shutdown = CancellationToken::new();
            let controller = petrel_controller::Controller::start(config, shutdown.clone())
                .await
                .with_context(|| format!("cannot start the controller on {listen}"))?;
            tracing::info!(addr = %controller.local_addr(), "controller is up; Ctrl-C to stop");
            wait_for_signal().await;
            controller.shutdown().await;
        }
        Command::Namesrv {
            listen,
            config: config_file,
        } => {
            let shutdown = CancellationToken::new();
            let mut config = NamesrvConfig {
                listen_addr: listen,
                ..NamesrvConfig::default()
            };
            if let Some(path) = config_file {
                petrel::config_file::NamesrvConfigFile::load(&path)?.apply(&mut config)?;
            }
            let listen = config.listen_addr;
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
            grpc_listen,
            config: config_file,
        } => {
            let mut store = petrel_store::StoreConfig::new(data);
            store.flush_disk_type = flush.into();
            let mut config = petrel_broker::BrokerConfig::new(store);
            config.grpc_listen = grpc_listen.0;
            config.namesrv_addr = namesrv;
            config.listen_addr = listen;
            config.broker_ip = broker_ip;
            config.broker_name = broker_name;
            config.cluster_name = cluster;
            if let Some(path) = config_file {
                petrel::config_file::BrokerConfigFile::load(&path)?.apply(&mut config)?;
            }
            let stopped = CancellationToken::new();
            let dashboard = petrel::dashboard::for_namesrv(
                &config.namesrv_addr,
                petrel::dashboard::broker_credentials(config.acl_enable)?,
                &stopped,
            );
            if config.enable_controller_mode {
                // The role changes under the controllers' direction; the gRPC endpoint (which
                // serves one broker incarnation) is not offered in this mode yet.
                let shutdown = CancellationToken::new();
                let mut supervisor = tokio::spawn(petrel_broker::ha::controlled::run(
                    config,
                    shutdown.clone(),
                    Some(dashboard),
                ));
                // The supervisor ends early only on a configuration error.
                let outcome = tokio::select! {
                    _ = wait_for_signal() => {
                        shutdown.cancel();
                        (&mut supervisor).await
                    }
                    r = &mut supervisor => r,
                };
                outcome
                    .context("the controller-mode broker panicked")?
                    .with_context(|| format!("the broker on {listen} failed"))?;
                stopped.cancel();
                return Ok(());
            }
            let broker = petrel_broker::Broker::start_with_routes(
                config,
                CancellationToken::new(),
                Some(dashboard),
            )
            .await
            .with_context(|| format!("cannot start the broker on {listen}"))?;
            if let Some(addr) = broker.metrics_addr() {
                petrel::dashboard::log_url(addr);
            }
            let grpc = petrel::standalone::start_grpc(&broker).await;
            wait_for_signal().await;
            if let Some(grpc) = grpc {
                grpc.shutdown().await;
            }
            broker.shutdown().await;
            stopped.cancel();
        }
        Command::Dashboard {
            namesrv,
            listen,
            acl,
        } => {
            let shutdown = CancellationToken::new();
            let stop = shutdown.clone();
            tokio::spawn(async move {
                wait_for_signal().await;
                stop.cancel();
            });
            petrel::dashboard::serve(&namesrv, acl.credentials()?, listen, shutdown).await?;
        }
        Command::Send {
            namesrv,
            topic,
            body,
            tags,
            keys,
            count,
            deliver_at,
            delay,
            acl,
        } => {
            petrel::tools::send(petrel::tools::SendOptions {
                namesrv,
                topic,
                body,
                tags,
                keys,
                count,
                deliver_at_ms: deliver_at,
                delay,
                credentials: acl.credentials()?,
            })
            .await?
        }
        Command::Consume {
            namesrv,
            topic,
            group,
            expression,
            from_first,
            count,
            acl,
        } => {
            petrel::tools::consume(petrel::tools::ConsumeOptions {
                namesrv,
                topic,
                group,
                expression,
                from_first,
                count,
                credentials: acl.credentials()?,
            })
            .await?
        }
        Command::Admin { namesrv, acl, what } => {
            petrel::admin::run(&namesrv, acl.credentials()?, what).await?
        }
        Command::Bench { what } => match what {
            BenchCommand::Produce {
                namesrv,
                topic,
                threads,
                size,
                batch,
                topics,
                queues,
                cluster,
                duration,
                interval,
                json,
                broker_pid,
                expect,
                acl,
            } => {
                petrel::bench::produce(petrel::bench::ProduceOptions {
                    namesrv,
                    topic,
                    threads,
                    message_bytes: size,
                    batch,
                    topics,
                    queues,
                    cluster,
                    duration: Duration::from_secs(duration),
                    report_interval: Duration::from_secs(interval),
                    binary_headers: !json,
                    broker_pid,
                    credentials: acl.credentials()?,
                    expect: expect.into(),
                })
                .await?
            }
            BenchCommand::Consume {
                namesrv,
                topic,
                group,
                duration,
                interval,
                batch,
                fail_percent,
                broker_pid,
                expect,
                acl,
            } => {
                petrel::bench::consume(petrel::bench::ConsumeOptions {
                    namesrv,
                    topic,
                    group,
                    duration: Duration::from_secs(duration),
                    report_interval: Duration::from_secs(interval),
                    batch,
                    fail_percent,
                    credentials: acl.credentials()?,
                    broker_pid,
                    expect: expect.into(),
                })
                .await?
            }
            BenchCommand::Timer {
                namesrv,
                broker_pid,
                in_process,
                data,
                topic,
                group,
                timers,
                window,
                delay,
                quick,
                in_flight,
                size,
                interval,
                grace,
                acl,
            } => {
                use petrel::bench::timer::{TimerBroker, TimerOptions};
                let (timers, window) = if quick {
                    (QUICK_TIMERS, QUICK_WINDOW)
                } else {
                    (timers, window)
                };
                petrel::bench::timer::timer(TimerOptions {
                    broker: if in_process {
                        TimerBroker::InProcess { data }
                    } else {
                        TimerBroker::Namesrv {
                            addr: namesrv,
                            broker_pid,
                        }
                    },
                    topic,
                    group,
                    timers,
                    window,
                    delay,
                    in_flight,
                    message_bytes: size,
                    report_interval: Duration::from_secs(interval.max(1)),
                    grace,
                    credentials: acl.credentials()?,
                })
                .await?;
            }
            BenchCommand::Store {
                data,
                sizes,
                writers,
                flush,
                batch,
                batched_only,
                duration,
                raw_mib,
                raw_repeats,
                dsync_secs,
                segment_mib,
            } => {
                use petrel::bench::AppendMode;
                let mut modes = Vec::new();
                if !batched_only {
                    modes.push(AppendMode::Single);
                }
                if batch > 0 {
                    modes.push(AppendMode::Batch(batch));
                }
                petrel::bench::store(petrel::bench::StoreBenchOptions {
                    data,
                    message_bytes: sizes,
                    writers,
                    flush: flush.into_iter().map(FlushDiskType::from).collect(),
                    modes,
                    duration: Duration::from_secs(duration),
                    raw_bytes: raw_mib << 20,
                    raw_repeats,
                    dsync_duration: Duration::from_secs(dsync_secs),
                    segment_bytes: segment_mib << 20,
                })
                .await?
            }
        },
    }
    Ok(())
}

/// Ctrl-C or SIGTERM.
/// A listen address, or none (`off`).
#[derive(Debug, Clone, Copy)]
struct Listen(Option<SocketAddr>);

/// `1=host:port;2=host:port` (`,` also separates).
fn parse_peers(s: &str) -> anyhow::Result<std::collections::BTreeMap<u64, String>> {
    let mut peers = std::collections::BTreeMap::new();
    for part in s.split([';', ',']).map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addr) = part
            .split_once('=')
            .with_context(|| format!("peer {part:?} is not id=host:port"))?;
        let id: u64 = id
            .trim()
            .parse()
            .with_context(|| format!("peer id {id:?} is not a number"))?;
        if peers.insert(id, addr.trim().to_owned()).is_some() {
            anyhow::bail!("peer id {id} is given twice");
        }
    }
    Ok(peers)
}

fn parse_listen_or_off(s: &str) -> Result<Listen, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(Listen(None));
    }
    s.parse()
        .map(|a| Listen(Some(a)))
        .map_err(|e| format!("{s:?} is neither host:port nor off: {e}"))
}

async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler cannot fail on unix");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}
