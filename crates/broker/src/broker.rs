//! `Broker`: the shared state every processor reads, and the start/stop sequence.
//!
//! Start: parse the delay levels, open the store (recovering if needed), load
//! topics/groups/offsets and pending transactions, bind the remoting server, start housekeeping,
//! the schedule and timer services and the transaction checker, register with the name servers.
//! Stop: stop accepting, unregister from the name servers, persist offsets, shut the store down
//! (flush, checkpoint, remove the abort marker).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use petrel_common::msg_id::{now_ms, UniqIdGenerator};
use petrel_remoting::{serve, CancellationToken, ServerTls};
use petrel_store::MessageStore;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::client_manager::{ConsumerManager, ProducerManager};
use crate::consumer_offset::ConsumerOffsetManager;
use crate::flow_control::FlowControl;
use crate::namesrv_client::NamesrvRegistrar;
use crate::processor::BrokerProcessor;
use crate::pull_hold::PullRequestHold;
use crate::rebalance_lock::RebalanceLockManager;
use crate::schedule::{DelayLevels, ScheduleMessageService};
use crate::subscription_group::SubscriptionGroupManager;
use crate::topic_config::TopicConfigManager;
use crate::transaction::TransactionTable;
use crate::{BrokerConfig, BrokerError};

/// Counters behind GET_BROKER_RUNTIME_INFO.
#[derive(Default)]
pub struct BrokerStats {
    pub msg_put_total: AtomicU64,
    pub msg_get_total: AtomicU64,
}

pub struct Broker {
    pub config: BrokerConfig,
    /// The settings UPDATE_BROKER_CONFIG changes while the broker runs: read these, not
    /// `config`'s copies.
    pub settings: crate::runtime_config::RuntimeSettings,
    pub store: Arc<MessageStore>,
    pub topics: TopicConfigManager,
    pub groups: SubscriptionGroupManager,
    pub offsets: ConsumerOffsetManager,
    /// Pause/resume and consume rate limits of groups, from their attributes.
    pub flow: FlowControl,
    pub consumers: ConsumerManager,
    pub producers: ProducerManager,
    pub pull_hold: Arc<PullRequestHold>,
    /// Queue locks of orderly consumers (LOCK_BATCH_MQ).
    pub rebalance_locks: RebalanceLockManager,
    pub uniq_ids: UniqIdGenerator,
    /// The parsed `message_delay_level`.
    pub delay_levels: DelayLevels,
    /// Transactional half messages waiting for their outcome.
    pub transactions: TransactionTable,
    /// What POP consumers were handed and have not acknowledged.
    pub pop_table: crate::pop::PopTable,
    /// Which groups pop rather than pull which topics (`mqadmin setConsumeMode`).
    pub request_modes: crate::message_request_mode::RequestModeManager,
    /// What the timer service reports of the timing wheel.
    pub timer_stats: crate::timer::TimerStats,
    /// The address written into stored records and message ids: `broker_ip` and the bound port.
    pub store_host: SocketAddr,
    pub stats: BrokerStats,
    /// What `/metrics` serves (RocketMQ 5's names).
    pub metrics: crate::metrics::BrokerMetrics,
    /// The plain ACL rules when `aclEnable` is on.
    pub acl: Option<Arc<crate::acl::PlainAcl>>,
    /// The broker's own message trace (`traceOn`).
    pub trace: crate::trace::BrokerTrace,
    pub started_at_ms: u64,
    /// Wakes the registrar to tell the name servers about topic changes now (see
    /// [`Broker::topic_changed`]).
    pub topics_changed: Notify,
    /// Master/slave replication: the role, connected slaves, the master followed.
    pub ha: crate::ha::HaService,
    registrar: Arc<NamesrvRegistrar>,
    /// Fired first at shutdown: parked pulls answer at once instead of being cut off (some
    /// clients only notice a lost request at their 30 s pull timeout).
    pub stopping: CancellationToken,
}

impl Broker {
    /// "ip:port" clients use to reach this broker.
    pub fn broker_addr(&self) -> String {
        self.store_host.to_string()
    }

    /// Full registrations (REGISTER_BROKER) the name servers accepted since start; the
    /// periodic round only asks whether they are needed (QUERY_DATA_VERSION).
    pub fn namesrv_registrations(&self) -> u64 {
        self.registrar.full_registrations()
    }

    /// Registrations of changed topics only that the name servers accepted since start.
    pub fn namesrv_increments(&self) -> u64 {
        self.registrar.increments()
    }

    /// A consumer's commit of its progress on a queue (UPDATE_CONSUMER_OFFSET or a pull's
    /// commit flag); traced when it moves the offset. On a slave it is also kept for the
    /// master, so that progress made while the master was away is not undone when it returns.
    pub fn commit_offset(&self, group: &str, topic: &str, queue_id: i32, offset: i64) {
        if let Some(previous) = self.offsets.commit(group, topic, queue_id, offset) {
            if !self.ha.role.is_master() {
                self.offsets.note_for_master(group, topic, queue_id, offset);
            }
            self.trace
                .committed(group, topic, queue_id, previous, offset);
        }
    }

    /// Opens the store and starts serving; the broker stops when `shutdown` fires or
    /// [`BrokerHandle::shutdown`] is called.
    pub async fn start(
        config: BrokerConfig,
        shutdown: CancellationToken,
    ) -> Result<BrokerHandle, BrokerError> {
        start(config, shutdown, None).await
    }

    /// [`Broker::start`], with `extra` routes (the dashboard) served beside `/metrics` and
    /// `/health` on the HTTP port.
    pub async fn start_with_routes(
        config: BrokerConfig,
        shutdown: CancellationToken,
        extra: Option<axum::Router>,
    ) -> Result<BrokerHandle, BrokerError> {
        start(config, shutdown, extra).await
    }
}

/// How long parked pulls get to send their answers before connections close.
const SHUTDOWN_DRAIN: std::time::Duration = std::time::Duration::from_millis(50);

/// A running broker.
pub struct BrokerHandle {
    pub broker: Arc<Broker>,
    local_addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    shutdown: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl BrokerHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Where `/metrics` and `/health` are served, if they are.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Stops the broker in order; everything acknowledged is on disk when this returns.
    pub async fn shutdown(self) {
        self.broker.stopping.cancel();
        tokio::time::sleep(SHUTDOWN_DRAIN).await;
        self.shutdown.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
        self.broker.registrar.unregister_all(&self.broker).await;
        if let Err(e) = self.broker.offsets.persist() {
            tracing::error!("could not persist consumer offsets: {e}");
        }
        let store = self.broker.store.clone();
        let _ = tokio::task::spawn_blocking(move || store.shutdown()).await;
        tracing::info!(broker = %self.broker.config.broker_name, "broker stopped");
    }
}

async fn start(
    mut config: BrokerConfig,
    shutdown: CancellationToken,
    extra_routes: Option<axum::Router>,
) -> Result<BrokerHandle, BrokerError> {
    crate::runtime_config::apply_saved_overrides(&mut config).map_err(BrokerError::Config)?;
    check_role(&config)?;
    let delay_levels = DelayLevels::parse(&config.message_delay_level)
        .map_err(BrokerError::Config)?
        .with_timer_max_delay_ms(config.timer_max_delay.as_millis() as i64);
    let mut store_config = config.store.clone();
    store_config.tags_code_of = delay_levels.tags_code_fn();
    let store = tokio::task::spawn_blocking(move || MessageStore::open(store_config))
        .await
        .map_err(|e| std::io::Error::other(format!("store open task failed: {e}")))??;
    let is_slave = !config.broker_role.is_master();
    // Before anything could write: a slave's log holds only its master's bytes.
    store.set_replica(is_slave);
    let config_dir = config.store.root_dir.join("config");
    std::fs::create_dir_all(&config_dir)?;
    let topics = TopicConfigManager::load(config_dir.join("topics.json"), &config)?;
    let groups = SubscriptionGroupManager::load(config_dir.join("subscriptionGroup.json"))?;
    let offsets = ConsumerOffsetManager::load(config_dir.join("consumerOffset.json"))?;
    let pop_table = crate::pop::PopTable::open(&config_dir)?;
    let request_modes = crate::message_request_mode::RequestModeManager::load(
        config_dir.join("messageRequestMode.json"),
    )?;
    let flow = FlowControl::default();
    for group in groups.snapshot().subscription_group_table.values() {
        // A bad attribute written by hand is reported, not fatal: the group runs unthrottled.
        if let Err(e) = flow.apply(group) {
            tracing::warn!(group = %group.group_name, "ignoring flow-control attributes: {e}");
        }
    }

    let tls = ServerTls::new(&config.tls, Some(&config.tls_self_signed_dir()))
        .map_err(|e| BrokerError::Config(e.to_string()))?;
    let listener = TcpListener::bind(config.listen_addr).await?;
    let local_addr = listener.local_addr()?;
    let store_host = SocketAddr::new(config.broker_ip, local_addr.port());
    let ha_listener = if is_slave {
        None
    } else {
        Some(ha_listener(&config, local_addr).await?)
    };

    let pull_hold = Arc::new(PullRequestHold::default());
    {
        let hold = pull_hold.clone();
        store.set_arrival_listener(Arc::new(move |topic: &str, queue_id: i32, max: i64| {
            hold.notify_arrival(topic, queue_id, max)
        }));
    }

    let metrics_listener = match config.metrics_listen {
        Some(addr) if config.metrics_enable => crate::http::bind(addr).await,
        _ => None,
    };
    let metrics_addr = metrics_listener.as_ref().and_then(|l| l.local_addr().ok());
    let metrics = crate::metrics::BrokerMetrics::new(
        config.metrics_enable,
        &config.cluster_name,
        &config.broker_name,
    );
    let acl = if config.acl_enable {
        let path = config
            .acl_file
            .clone()
            .unwrap_or_else(|| config_dir.join("plain_acl.yml"));
        Some(Arc::new(
            crate::acl::PlainAcl::load(path)
                .map_err(BrokerError::Config)?
                .with_signature_window(
                    config.acl_signature_max_age_sec,
                    config.acl_replay_cache_max_entries,
                ),
        ))
    } else {
        None
    };
    let config_namesrv_addr = config.namesrv_addr.clone();
    let config_tls_enable = config.tls_enable;
    // A slave writes nothing of its own, traces included.
    let (trace, trace_notes) = crate::trace::BrokerTrace::new(config.trace_on && !is_slave);
    let ha = crate::ha::HaService::new(
        config.broker_role,
        ha_listener.as_ref().map(|l| l.local_addr()).transpose()?,
        config.ha_master_address.clone(),
        config.ha_max_gap_not_in_sync,
        config.controlled.clone(),
    );
    let rebalance_locks = RebalanceLockManager::new(config.rebalance_lock_max_live);
    let broker = Arc::new(Broker {
        settings: crate::runtime_config::RuntimeSettings::new(&config),
        uniq_ids: UniqIdGenerator::new(config.broker_ip),
        delay_levels,
        transactions: TransactionTable::default(),
        pop_table,
        request_modes,
        timer_stats: crate::timer::TimerStats::default(),
        config,
        store,
        topics,
        groups,
        offsets,
        flow,
        consumers: ConsumerManager::default(),
        producers: ProducerManager::default(),
        pull_hold,
        rebalance_locks,
        store_host,
        stats: BrokerStats::default(),
        metrics,
        acl,
        trace,
        started_at_ms: now_ms(),
        topics_changed: Notify::new(),
        ha,
        stopping: CancellationToken::new(),
        registrar: Arc::new(NamesrvRegistrar::new(
            &config_namesrv_addr,
            config_tls_enable,
        )),
    });

    crate::ha::controlled::begin_epoch(&broker)?;
    let schedule = ScheduleMessageService::load(broker.clone())?;
    let timers = crate::timer::TimerService::open(broker.clone()).await?;
    broker.recover_transactions();
    let processor = Arc::new(BrokerProcessor::new(broker.clone()));
    let mut tasks = Vec::new();
    if let Some(vip) = vip_listener(&broker.config, local_addr).await {
        tasks.push(tokio::spawn(serve(
            vip,
            processor.clone(),
            tls.clone(),
            shutdown.clone(),
        )));
    }
    tasks.push(tokio::spawn(serve(
        listener,
        processor,
        tls,
        shutdown.clone(),
    )));
    tasks.push(tokio::spawn(housekeeping(broker.clone(), shutdown.clone())));
    if let Some(listener) = metrics_listener {
        tasks.push(tokio::spawn(crate::http::serve(
            listener,
            broker.clone(),
            extra_routes,
            shutdown.clone(),
        )));
    }
    if let Some(acl) = &broker.acl {
        tasks.push(tokio::spawn(acl.clone().watch(shutdown.clone())));
    }
    if let Some(notes) = trace_notes {
        tasks.push(crate::trace::spawn_writer(
            broker.clone(),
            notes,
            shutdown.clone(),
        ));
    }
    if is_slave {
        // Delayed delivery, timers and transaction checks write; the master runs them and its
        // results arrive here with the rest of its log.
        tasks.push(tokio::spawn(crate::ha::slave::run(
            broker.clone(),
            shutdown.clone(),
        )));
        let source = broker.clone();
        tasks.push(tokio::spawn(crate::ha::metadata_sync::run(
            broker.clone(),
            move || source.ha.master_addr(),
            crate::ha::METADATA_SYNC_INTERVAL,
            shutdown.clone(),
        )));
    } else {
        tasks.push(tokio::spawn(schedule.run(shutdown.clone())));
        tasks.push(tokio::spawn(timers.run(shutdown.clone())));
        tasks.push(tokio::spawn(crate::transaction::run_checker(
            broker.clone(),
            shutdown.clone(),
        )));
    }
    if let Some(l) = ha_listener {
        tasks.push(tokio::spawn(crate::ha::master::serve(
            l,
            broker.clone(),
            shutdown.clone(),
        )));
    }
    tasks.push(tokio::spawn(end_rejoin_grace(
        broker.clone(),
        shutdown.clone(),
    )));
    let registrar = broker.registrar.clone();
    // Register once before returning, so clients started next find the routes.
    registrar.register_all(&broker).await;
    tasks.push(tokio::spawn(
        registrar.clone().run(broker.clone(), shutdown.clone()),
    ));
    tracing::info!(
        broker = %broker.config.broker_name,
        addr = %local_addr,
        advertised = %store_host,
        role = broker.config.broker_role.as_str(),
        ha = %broker
            .ha
            .listen_addr()
            .map_or_else(|| "none".to_owned(), |a| a.to_string()),
        metrics = ?metrics_addr,
        data = %broker.config.store.root_dir.display(),
        "broker started"
    );
    Ok(BrokerHandle {
        broker,
        local_addr,
        metrics_addr,
        shutdown,
        tasks,
    })
}

/// The VIP channel listener on `port - 2`, when enabled and the port is fixed. Failing to bind it
/// is logged, not fatal: only old clients use it.
async fn vip_listener(config: &BrokerConfig, main: SocketAddr) -> Option<TcpListener> {
    if !config.vip_channel_enable || config.listen_addr.port() <= 2 {
        return None;
    }
    let addr = SocketAddr::new(config.listen_addr.ip(), main.port() - 2);
    match TcpListener::bind(addr).await {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::warn!(%addr, "cannot listen on the VIP channel port: {e}");
            None
        }
    }
}

/// At the end of the rejoin grace, tells every consumer group to rebalance once.
async fn end_rejoin_grace(broker: Arc<Broker>, shutdown: CancellationToken) {
    tokio::select! {
        _ = shutdown.cancelled() => return,
        _ = tokio::time::sleep(broker.config.consumer_rejoin_grace) => {}
    }
    for group in broker.consumers.group_names() {
        crate::processor::client::notify_consumer_ids_changed(&broker, &group);
    }
}

/// A slave is never broker 0 and a master always is: 4.x clients write to broker 0 only.
fn check_role(config: &BrokerConfig) -> Result<(), BrokerError> {
    let slave = !config.broker_role.is_master();
    if slave && config.broker_id == 0 {
        return Err(BrokerError::Config(
            "brokerRole SLAVE needs a brokerId above 0 (0 is the master's)".into(),
        ));
    }
    if !slave && config.broker_id != 0 {
        return Err(BrokerError::Config(format!(
            "brokerRole {} needs brokerId 0, not {}",
            config.broker_role.as_str(),
            config.broker_id
        )));
    }
    Ok(())
}

/// The master's HA port: `haListenPort`, else the remoting port + 1 (a free port when the
/// remoting port was picked freely).
async fn ha_listener(
    config: &BrokerConfig,
    remoting: SocketAddr,
) -> Result<TcpListener, BrokerError> {
    let port = match config.ha_listen_port {
        Some(p) => p,
        None if config.listen_addr.port() == 0 => 0,
        None => remoting.port().saturating_add(1),
    };
    let addr = SocketAddr::new(config.listen_addr.ip(), port);
    TcpListener::bind(addr)
        .await
        .map_err(|e| BrokerError::Config(format!("cannot listen on haListenPort {addr}: {e}")))
}

/// Periodic chores: persist offsets, evict silent clients, forget idle long-poll signals.
async fn housekeeping(broker: Arc<Broker>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(broker.config.offset_persist_interval);
    let mut ticks: u64 = 0;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        ticks += 1;
        if let Err(e) = broker.offsets.persist() {
            tracing::error!("could not persist consumer offsets: {e}");
        }
        broker.pull_hold.sweep();
        if let Err(e) = broker.pop_table.compact_if_large() {
            tracing::error!("could not compact the POP journal: {e}");
        }
        if ticks.is_multiple_of(2) {
            let expired = broker.config.channel_expired;
            broker.producers.scan_expired(expired);
            for group in broker.consumers.scan_expired(expired) {
                crate::processor::client::notify_consumer_ids_changed(&broker, &group);
            }
        }
    }
}

impl Broker {
    /// Tells the name servers about a changed `topic` now and waits for them to answer, so a
    /// client that learns of a new topic from us finds its route at once (as a RocketMQ broker
    /// registers before answering UPDATE_AND_CREATE_TOPIC). Changes made meanwhile by others go
    /// in the same registration.
    pub(crate) async fn publish_topic(&self, topic: &str) {
        self.registrar.topic_changed(topic);
        self.registrar.register_changes(self).await;
    }

    /// Tells the name servers about a changed `topic` soon, without waiting.
    pub(crate) fn topic_changed(&self, topic: &str) {
        self.registrar.topic_changed(topic);
        self.topics_changed.notify_one();
    }

    pub(crate) fn in_rejoin_grace(&self) -> bool {
        now_ms() < self.started_at_ms + self.config.consumer_rejoin_grace.as_millis() as u64
    }

    pub(crate) fn count_put(&self, n: u64) {
        self.stats.msg_put_total.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn count_get(&self, n: u64) {
        self.stats.msg_get_total.fetch_add(n, Ordering::Relaxed);
    }
}
