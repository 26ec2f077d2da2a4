//! Test harness: Petrel standalone in-process on ephemeral loopback ports, restartable on the
//! same ports and data directory.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use petrel::standalone::{self, StandaloneConfig};
use petrel_client::admin::Admin;
use petrel_client::{
    ClientConfig, ConsumeFromWhere, ConsumeStatus, MessageExt, Producer, PushConsumer,
};

pub mod cluster;
pub mod go;
pub mod grpc;
pub mod java;
pub mod java5;
pub mod node;
pub mod official;
pub mod process;
pub mod python;
pub mod rmq_grpc;
pub mod rmq_rust;

/// Bound of every single wait in the cross-crate tests: generous, for a loaded CI machine; a
/// test asserts what matters (order, counts, lateness) separately.
pub const WAIT: Duration = Duration::from_secs(60);

/// Polls `done` every 20 ms until it holds; panics naming `what` after [`WAIT`].
pub async fn wait_for(what: &str, done: impl FnMut() -> bool) {
    if let Err(e) = try_wait_for(what, done).await {
        panic!("{e}");
    }
}

/// [`wait_for`] for code that reports errors instead of panicking.
pub async fn try_wait_for(what: &str, mut done: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + WAIT;
    while !done() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "timed out after {WAIT:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// `f`, or an error naming `what` if it takes longer than [`WAIT`].
pub async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> anyhow::Result<T> {
    tokio::time::timeout(WAIT, f)
        .await
        .map_err(|_| anyhow::anyhow!("{what} did not complete within {WAIT:?}"))
}

/// How often each key (the `KEYS` property) was delivered.
pub type KeyCounts = Arc<Mutex<HashMap<String, u32>>>;

/// A push consumer of `group` (instance name `instance`) on every tag of `topic`, from the
/// first stored message, committing every 200 ms, that counts each delivery in `counts`.
pub fn counting_consumer(
    namesrv: &str,
    group: &str,
    instance: &str,
    topic: &str,
    counts: KeyCounts,
) -> PushConsumer {
    let mut c = PushConsumer::new(
        group,
        ClientConfig::new(namesrv).with_instance_name(instance),
    );
    c.subscribe(topic, "*")
        .expect("a valid topic and expression");
    c.set_consume_from(ConsumeFromWhere::FirstOffset);
    c.options.offset_commit_interval = Duration::from_millis(200);
    c.register_listener(move |msgs: &[MessageExt]| {
        let mut counts = counts.lock().unwrap();
        for m in msgs {
            *counts
                .entry(m.keys().unwrap_or_default().to_owned())
                .or_default() += 1;
        }
        ConsumeStatus::Success
    });
    c
}

/// Petrel with plain ACL on (`aclEnable`), its rules in `acl_file`, and `extra` TOML lines in
/// its broker config; data and config under `dir`.
pub fn config_with_acl(dir: &Path, acl_file: &Path, extra: &str) -> StandaloneConfig {
    let path = dir.join("broker.toml");
    std::fs::write(
        &path,
        format!(
            "aclEnable = true\naclFile = {:?}\n{extra}",
            acl_file.display().to_string()
        ),
    )
    .expect("write the broker config");
    let mut c = StandaloneConfig::ephemeral(dir.join("data"));
    c.broker_config_file = Some(path);
    c
}

/// Petrel whose retention deletes every full commit-log segment at once (the disk is always
/// above a clean-forcibly ratio of 0 and never above a warning level of 1), with segments of
/// `segment_bytes`; data and config under `dir`.
pub fn config_deleting_full_segments(dir: &Path, segment_bytes: u64) -> StandaloneConfig {
    let conf = dir.join("broker.toml");
    std::fs::write(
        &conf,
        "diskSpaceCleanForciblyRatio = 0.0\n\
         diskSpaceWarningLevelRatio = 1.0\n\
         cleanResourceInterval = 100\n\
         deleteCommitLogFilesInterval = 0\n",
    )
    .expect("write the broker config");
    let mut config = StandaloneConfig::ephemeral(dir.join("data"));
    config.commit_log_file_size = segment_bytes;
    config.broker_config_file = Some(conf);
    config
}

/// How long a restart keeps trying to bind the old ports.
const RESTART_BIND_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

pub struct Standalone {
    pub namesrv_addr: String,
    pub broker_addr: String,
    /// What the servers were started with; a restart reuses it on the same ports.
    config: StandaloneConfig,
    inner: Option<standalone::Standalone>,
}

impl Standalone {
    /// Creates `topic` with `queues` read and write queues on the broker, registered with the
    /// name server before this returns, so consumers find its route at once.
    pub async fn create_topic(&self, topic: &str, queues: i32) -> anyhow::Result<()> {
        let admin = Admin::new(ClientConfig::new(&self.namesrv_addr));
        let created = admin.create_topic(&self.broker_addr, topic, queues).await;
        admin.shutdown();
        Ok(created?)
    }

    /// [`Standalone::create_topic`] with RocketMQ 5's topic attributes, e.g.
    /// `("message.type", "FIFO")` (NORMAL, FIFO, DELAY, TRANSACTION: what a gRPC route offers
    /// as the queues' accept_message_types). Sent as mqadmin 5.x sends them, in the
    /// UPDATE_AND_CREATE_TOPIC header's `attributes` field (`+key=value`, comma-separated),
    /// which petrel-client's `Admin::update_topic` does not carry.
    ///
    /// FOR THE SERVER ENGINEERS: the broker must read `attributes` from this request into the
    /// topic's config (`TopicConfig::attributes`, keys as RocketMQ stores them: `+message.type`).
    pub async fn create_topic_with_attributes(
        &self,
        topic: &str,
        queues: i32,
        attributes: &[(&str, &str)],
    ) -> anyhow::Result<()> {
        use petrel_remoting::code::request::UPDATE_AND_CREATE_TOPIC;
        use petrel_remoting::headers::CreateTopicRequestHeader;
        let header = CreateTopicRequestHeader {
            topic: topic.to_owned(),
            default_topic: Some(petrel_common::topic::AUTO_CREATE_TOPIC_KEY.to_owned()),
            read_queue_nums: queues,
            write_queue_nums: queues,
            perm: petrel_common::topic::perm::READ | petrel_common::topic::perm::WRITE,
            topic_filter_type: Some("SINGLE_TAG".to_owned()),
            topic_sys_flag: Some(0),
            order: Some(false),
        };
        let mut cmd =
            petrel_remoting::RemotingCommand::request_with_header(UPDATE_AND_CREATE_TOPIC, &header);
        let attributes: Vec<String> = attributes
            .iter()
            .map(|(k, v)| format!("+{k}={v}"))
            .collect();
        cmd.ext_fields.insert("attributes", attributes.join(","));
        self.admin_call(cmd).await
    }

    /// Creates (or replaces) the consumer group `group` with RocketMQ's defaults.
    pub async fn create_group(&self, group: &str) -> anyhow::Result<()> {
        let admin = Admin::new(ClientConfig::new(&self.namesrv_addr));
        let config = petrel_common::topic::SubscriptionGroupConfig::new(group);
        let created = admin
            .update_subscription_group(&self.broker_addr, &config)
            .await;
        admin.shutdown();
        Ok(created?)
    }

    /// Creates (or replaces) `group` as a FIFO group: RocketMQ 5's `consumeMessageOrderly`
    /// (mqadmin 5.x `updateSubGroup -o true`). A gRPC consumer of it gets
    /// `Settings.subscription.fifo = true` and each queue in order.
    pub async fn create_fifo_group(&self, group: &str) -> anyhow::Result<()> {
        let admin = Admin::new(ClientConfig::new(&self.namesrv_addr));
        let config = petrel_common::topic::SubscriptionGroupConfig {
            consume_message_orderly: true,
            ..petrel_common::topic::SubscriptionGroupConfig::new(group)
        };
        let created = admin
            .update_subscription_group(&self.broker_addr, &config)
            .await;
        admin.shutdown();
        Ok(created?)
    }

    /// Sends an admin request to the broker; a non-SUCCESS answer is an error.
    async fn admin_call(&self, cmd: petrel_remoting::RemotingCommand) -> anyhow::Result<()> {
        let admin = Admin::new(ClientConfig::new(&self.namesrv_addr));
        let instance = admin.instance();
        let timeout = instance.config().request_timeout;
        let answered = instance.invoke_ok(&self.broker_addr, cmd, timeout).await;
        admin.shutdown();
        answered?;
        Ok(())
    }

    /// A started producer of `group` (also its instance name).
    pub async fn producer(&self, group: &str) -> anyhow::Result<Producer> {
        let producer = Producer::new(
            group,
            ClientConfig::new(&self.namesrv_addr).with_instance_name(group),
        );
        producer.start().await?;
        Ok(producer)
    }

    pub async fn start(data_dir: &Path) -> anyhow::Result<Standalone> {
        init_tracing();
        Self::start_with(StandaloneConfig::ephemeral(data_dir)).await
    }

    pub async fn start_with(config: StandaloneConfig) -> anyhow::Result<Standalone> {
        init_tracing();
        let mut config = config;
        // A restart binds the same ports again; a port the kernel picked (port 0) may by then
        // be the local port of some client's outgoing connection. Ports below the kernel's
        // ephemeral range are never handed out that way.
        if config.namesrv_listen.port() == 0 {
            config.namesrv_listen.set_port(free_fixed_port()?);
        }
        if config.broker_listen.port() == 0 {
            config.broker_listen.set_port(free_fixed_port()?);
        }
        if let Some(grpc) = config.grpc_listen.as_mut().filter(|a| a.port() == 0) {
            grpc.set_port(free_fixed_port()?);
        }
        let inner = standalone::Standalone::start(config.clone()).await?;
        config.namesrv_listen = inner.namesrv_addr();
        config.broker_listen = inner.broker_addr();
        config.grpc_listen = inner.grpc_addr();
        Ok(Standalone {
            namesrv_addr: inner.namesrv_addr().to_string(),
            broker_addr: inner.broker_addr().to_string(),
            config,
            inner: Some(inner),
        })
    }

    /// Where the broker serves RocketMQ 5.x's gRPC (`apache.rocketmq.v2.MessagingService`),
    /// if it does.
    pub fn grpc_addr(&self) -> Option<std::net::SocketAddr> {
        self.inner.as_ref().and_then(|s| s.grpc_addr())
    }

    /// Where the broker serves `/metrics` and `/health`, if it does.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.inner.as_ref().and_then(|s| s.metrics_addr())
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
        // The name server's listener closes a moment after its stop signal; retry the bind.
        let deadline = std::time::Instant::now() + RESTART_BIND_RETRY;
        loop {
            match standalone::Standalone::start(self.config.clone()).await {
                Ok(inner) => {
                    self.inner = Some(inner);
                    return Ok(());
                }
                Err(e) if std::time::Instant::now() < deadline => {
                    tracing::debug!("restart failed, retrying: {e:#}");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Fixed ports for test servers come from here: below Linux's default ephemeral range
/// (32768–60999), above the well-known and registered services a machine usually runs.
const FIXED_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A loopback port of [`FIXED_PORTS`] that nothing listens on now.
fn free_fixed_port() -> anyhow::Result<u16> {
    for _ in 0..200 {
        let port = rand::random_range(FIXED_PORTS);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    anyhow::bail!("no free port in {FIXED_PORTS:?}")
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

/// A two-worker runtime for tests that drive processes from a plain `#[test]`.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Consumes `topic` from the first offset with a new group until every key of `wanted` was
/// delivered, at most [`WAIT`]; returns how many never were.
pub async fn missing_after_consuming<'a>(
    namesrv: &str,
    group: &str,
    topic: &str,
    wanted: impl IntoIterator<Item = &'a String>,
) -> usize {
    let wanted: std::collections::HashSet<&String> = wanted.into_iter().collect();
    let counts: KeyCounts = Arc::default();
    let consumer = counting_consumer(namesrv, group, group, topic, counts.clone());
    consumer.start().await.expect("start the consumer");
    let deadline = Instant::now() + WAIT;
    let missing = loop {
        let missing = {
            let counts = counts.lock().unwrap();
            wanted
                .iter()
                .filter(|k| !counts.contains_key(k.as_str()))
                .count()
        };
        if missing == 0 || Instant::now() > deadline {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    consumer.shutdown().await;
    missing
}
