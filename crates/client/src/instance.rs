//! The shared client instance: name-server addresses, the topic route cache, one connection per
//! broker address, the heartbeat and route-refresh tasks, and the raw requests producers,
//! consumers and admin helpers are built from. It owns no consumption policy. Every request it
//! sends is bounded by a timeout, and nothing a peer sends can make it panic.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use petrel_common::msg_id::UniqIdGenerator;
use petrel_common::protocol::{
    from_fastjson, CheckClientRequestBody, ConsumerData, ConsumerListBody, HeartbeatData,
    LockBatchRequestBody, LockBatchResponseBody, MessageQueue, ProducerData, SubscriptionData,
    TopicRouteData,
};
use petrel_common::topic::perm;
use petrel_remoting::code::{request, response};
use petrel_remoting::headers::{
    pull_sys_flag, ConsumerGroupHeader, OffsetResponseHeader, PullMessageRequestHeader,
    PullMessageResponseHeader, QueryConsumerOffsetRequestHeader, QueueRequestHeader,
    TopicRequestHeader, UnregisterClientRequestHeader, UpdateConsumerOffsetRequestHeader,
};
use petrel_remoting::{
    not_supported, CancellationToken, Connection, RemotingCommand, RemotingError, RequestHandler,
};
use tokio::sync::Notify;

use crate::config::{ClientConfig, Credentials};
use crate::consumer::Listener;
use crate::error::{ClientError, Result};
use crate::message::{decode_messages, MessageExt};
use crate::transaction::TransactionChecker;

/// Producer group every Java client registers besides its own (reference §2.7).
pub const CLIENT_INNER_PRODUCER_GROUP: &str = "CLIENT_INNER_PRODUCER";

/// What a pull returned.
#[derive(Debug, Clone)]
pub enum PullStatus {
    /// Messages (code 0); they may all have been filtered out client-side.
    Found(Vec<MessageExt>),
    /// Nothing new (code 19).
    NoNewMsg,
    /// Entries existed but none matched the filter (code 20).
    NoMatchedMsg,
    /// The requested offset is invalid (code 21); continue at `next_begin_offset`.
    OffsetIllegal,
}

#[derive(Debug, Clone)]
pub struct PullResult {
    pub status: PullStatus,
    pub next_begin_offset: i64,
    pub min_offset: i64,
    pub max_offset: i64,
}

/// One pull request's parameters (reference §2.5).
#[derive(Debug, Clone)]
pub struct PullRequest<'a> {
    pub group: &'a str,
    pub queue: &'a MessageQueue,
    pub offset: i64,
    pub max_msg_nums: i32,
    pub sys_flag: i32,
    pub commit_offset: i64,
    pub suspend_timeout: Duration,
    /// Sent as the subscription when `sys_flag` has SUBSCRIPTION; its `sub_version` always.
    pub subscription: &'a SubscriptionData,
    pub timeout: Duration,
}

/// Serves what brokers send us: NOTIFY_CONSUMER_IDS_CHANGED wakes the group's rebalance;
/// CHECK_TRANSACTION_STATE asks the producer group's checker; CONSUME_MESSAGE_DIRECTLY runs a
/// message through the consumer group's listener.
#[derive(Default)]
pub(crate) struct ClientHandler {
    rebalance_notifiers: Mutex<HashMap<String, Arc<Notify>>>,
    listeners: Mutex<HashMap<String, Listener>>,
    transaction_checkers: Arc<Mutex<HashMap<String, TransactionChecker>>>,
    /// Signs the END_TRANSACTION answering a check, as every other request.
    credentials: Option<Credentials>,
}

impl RequestHandler for ClientHandler {
    async fn handle(&self, conn: &Connection, req: RemotingCommand) -> Option<RemotingCommand> {
        if req.code == request::CHECK_TRANSACTION_STATE {
            // The checker runs the application's code: never on the connection's reader.
            let checkers = self.transaction_checkers.clone();
            tokio::spawn(crate::transaction::answer_check(
                conn.clone(),
                req,
                self.credentials.clone(),
                move |group| checkers.lock().get(group).cloned(),
            ));
            return None;
        }
        if req.code == request::CONSUME_MESSAGE_DIRECTLY {
            let listener = req
                .ext_fields
                .get("consumerGroup")
                .and_then(|g| self.listeners.lock().get(g).cloned());
            return Some(crate::consumer::consume_directly(listener, &req).await);
        }
        if req.code != request::NOTIFY_CONSUMER_IDS_CHANGED {
            return Some(not_supported(&req));
        }
        match req.decode_header::<ConsumerGroupHeader>() {
            Ok(h) => {
                let notify = self
                    .rebalance_notifiers
                    .lock()
                    .get(&h.consumer_group)
                    .cloned();
                if let Some(n) = notify {
                    tracing::debug!(group = %h.consumer_group, "consumer ids changed; rebalancing");
                    n.notify_one();
                }
            }
            Err(e) => tracing::debug!("ignoring NOTIFY_CONSUMER_IDS_CHANGED: {e}"),
        }
        Some(RemotingCommand::success(&req))
    }
}

pub struct ClientInstance {
    config: ClientConfig,
    client_id: String,
    namesrv_addrs: Vec<String>,
    namesrv_index: AtomicUsize,
    ids: UniqIdGenerator,
    handler: Arc<ClientHandler>,
    connections: Mutex<HashMap<String, Connection>>,
    routes: Mutex<HashMap<String, TopicRouteData>>,
    producer_groups: Mutex<BTreeSet<String>>,
    consumers: Mutex<HashMap<String, ConsumerData>>,
    started: AtomicBool,
    last_heartbeat: Mutex<Option<Instant>>,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for ClientInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClientInstance({})", self.client_id)
    }
}

impl ClientInstance {
    pub fn new(config: ClientConfig) -> Arc<Self> {
        let namesrv_addrs = config.namesrv_addrs();
        let ip = local_ip(namesrv_addrs.first().map(String::as_str));
        Arc::new(ClientInstance {
            client_id: format!("{ip}@{}", config.instance_name),
            namesrv_index: AtomicUsize::new(rand::random::<u32>() as usize),
            namesrv_addrs,
            ids: UniqIdGenerator::new(ip),
            handler: Arc::new(ClientHandler {
                credentials: config.credentials.clone(),
                ..ClientHandler::default()
            }),
            connections: Mutex::new(HashMap::new()),
            routes: Mutex::new(HashMap::new()),
            producer_groups: Mutex::new(BTreeSet::new()),
            consumers: Mutex::new(HashMap::new()),
            started: AtomicBool::new(false),
            last_heartbeat: Mutex::new(None),
            shutdown: CancellationToken::new(),
            config,
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// `ip@instance_name`.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// A fresh UNIQ_KEY.
    pub fn next_uniq_id(&self) -> String {
        self.ids.next_id()
    }

    /// Starts the heartbeat and route-refresh tasks (once; later calls do nothing).
    pub fn start(self: &Arc<Self>) -> Result<()> {
        if self.shutdown.is_cancelled() {
            return Err(ClientError::NotRunning("the client instance was shut down"));
        }
        if self.started.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        if self.namesrv_addrs.is_empty() {
            return Err(ClientError::InvalidArgument(
                "namesrv_addr names no address".to_owned(),
            ));
        }
        let weak = Arc::downgrade(self);
        let stop = self.shutdown.clone();
        let every = self.config.heartbeat_interval;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
                let Some(me) = weak.upgrade() else { return };
                me.send_heartbeat_to_all_brokers().await;
            }
        });
        let weak = Arc::downgrade(self);
        let stop = self.shutdown.clone();
        let every = self.config.poll_namesrv_interval;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
                let Some(me) = weak.upgrade() else { return };
                me.refresh_all_routes().await;
            }
        });
        Ok(())
    }

    pub fn is_shut_down(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    /// Stops the background tasks and closes every connection.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
        for (_, conn) in self.connections.lock().drain() {
            conn.close();
        }
    }

    /// Whether any producer or consumer group is still registered.
    pub fn has_groups(&self) -> bool {
        !self.producer_groups.lock().is_empty() || !self.consumers.lock().is_empty()
    }

    pub(crate) fn register_producer(&self, group: &str) {
        self.producer_groups.lock().insert(group.to_owned());
    }

    pub(crate) fn unregister_producer(&self, group: &str) {
        self.producer_groups.lock().remove(group);
        self.handler.transaction_checkers.lock().remove(group);
    }

    /// Answers the brokers' transaction checks for `group` with `checker`.
    pub(crate) fn register_transaction_checker(&self, group: &str, checker: TransactionChecker) {
        self.handler
            .transaction_checkers
            .lock()
            .insert(group.to_owned(), checker);
    }

    /// Registers a consumer group for heartbeats; `notify` is woken on NOTIFY_CONSUMER_IDS_CHANGED.
    pub(crate) fn register_consumer(
        &self,
        data: ConsumerData,
        notify: Arc<Notify>,
        listener: Listener,
    ) {
        self.handler
            .rebalance_notifiers
            .lock()
            .insert(data.group_name.clone(), notify);
        self.handler
            .listeners
            .lock()
            .insert(data.group_name.clone(), listener);
        self.consumers.lock().insert(data.group_name.clone(), data);
    }

    pub(crate) fn unregister_consumer(&self, group: &str) {
        self.handler.rebalance_notifiers.lock().remove(group);
        self.handler.listeners.lock().remove(group);
        self.consumers.lock().remove(group);
    }

    // ---- connections and requests ----

    async fn connection(&self, addr: &str) -> Result<Connection> {
        if self.shutdown.is_cancelled() {
            return Err(ClientError::NotRunning("the client instance was shut down"));
        }
        if let Some(c) = self.connections.lock().get(addr).filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let (handler, timeout) = (self.handler.clone(), self.config.request_timeout);
        let fresh = if self.config.tls {
            Connection::connect_tls(addr, handler, timeout).await?
        } else {
            Connection::connect(addr, handler, timeout).await?
        };
        let mut map = self.connections.lock();
        if self.shutdown.is_cancelled() {
            fresh.close();
            return Err(ClientError::NotRunning("the client instance was shut down"));
        }
        match map.get(addr) {
            Some(existing) if !existing.is_closed() => {
                fresh.close();
                Ok(existing.clone())
            }
            _ => {
                map.insert(addr.to_owned(), fresh.clone());
                Ok(fresh)
            }
        }
    }

    fn drop_connection(&self, addr: &str, err: &RemotingError) {
        if matches!(err, RemotingError::ConnectionClosed | RemotingError::Io(_)) {
            if let Some(c) = self.connections.lock().remove(addr) {
                c.close();
            }
        }
    }

    /// The last touches before `cmd` goes out: our header serialization, then the signature
    /// when the config has credentials (last, as it covers every field and the body).
    fn prepare(&self, cmd: &mut RemotingCommand) {
        cmd.serialize_type = self.config.serialize_type;
        if let Some(credentials) = &self.config.credentials {
            credentials.sign(cmd);
        }
    }

    /// Sends `cmd` to `addr` and waits up to `timeout` for the answer (any code).
    pub async fn invoke(
        &self,
        addr: &str,
        mut cmd: RemotingCommand,
        timeout: Duration,
    ) -> Result<RemotingCommand> {
        self.prepare(&mut cmd);
        let conn = self.connection(addr).await?;
        match conn.request(cmd, timeout).await {
            Ok(resp) => Ok(resp),
            Err(e) => {
                self.drop_connection(addr, &e);
                Err(e.into())
            }
        }
    }

    /// Sends `cmd` to `addr` without waiting for an answer.
    pub async fn invoke_oneway(&self, addr: &str, mut cmd: RemotingCommand) -> Result<()> {
        self.prepare(&mut cmd);
        let conn = self.connection(addr).await?;
        let timeout = self.config.request_timeout;
        match tokio::time::timeout(timeout, conn.oneway(cmd)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                self.drop_connection(addr, &e);
                Err(e.into())
            }
            Err(_) => Err(RemotingError::Timeout(timeout.as_millis() as u64).into()),
        }
    }

    /// Sends `cmd` to a name server, trying the next one on connection failures.
    pub async fn invoke_namesrv(&self, cmd: RemotingCommand) -> Result<RemotingCommand> {
        let n = self.namesrv_addrs.len();
        if n == 0 {
            return Err(ClientError::InvalidArgument(
                "namesrv_addr names no address".to_owned(),
            ));
        }
        let start = self.namesrv_index.load(Ordering::Relaxed);
        let mut last_err = None;
        for i in 0..n {
            let idx = (start + i) % n;
            let addr = &self.namesrv_addrs[idx];
            match self
                .invoke(addr, cmd.clone(), self.config.request_timeout)
                .await
            {
                Ok(resp) => {
                    self.namesrv_index.store(idx, Ordering::Relaxed);
                    return Ok(resp);
                }
                Err(e) => {
                    tracing::debug!(namesrv = %addr, "name server request failed: {e}");
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.unwrap_or(ClientError::NotRunning("no name server")))
    }

    /// Sends `cmd` and returns the answer if its code is SUCCESS, else `ClientError::Broker`.
    pub async fn invoke_ok(
        &self,
        addr: &str,
        cmd: RemotingCommand,
        timeout: Duration,
    ) -> Result<RemotingCommand> {
        let resp = self.invoke(addr, cmd, timeout).await?;
        if resp.code == response::SUCCESS {
            Ok(resp)
        } else {
            Err(ClientError::broker(resp.code, resp.remark))
        }
    }

    // ---- routes ----

    /// Asks a name server for the route of `topic` and caches it.
    pub async fn update_topic_route(&self, topic: &str) -> Result<TopicRouteData> {
        let cmd = RemotingCommand::request_with_header(
            request::GET_ROUTEINFO_BY_TOPIC,
            &TopicRequestHeader {
                topic: topic.to_owned(),
            },
        );
        let resp = self.invoke_namesrv(cmd).await?;
        if resp.code != response::SUCCESS {
            return Err(ClientError::broker(resp.code, resp.remark));
        }
        let route: TopicRouteData = from_fastjson(&resp.body_bytes())
            .map_err(|e| ClientError::Decode(format!("route of {topic}: {e}")))?;
        self.routes.lock().insert(topic.to_owned(), route.clone());
        Ok(route)
    }

    /// The cached route of `topic`, fetched first if absent.
    pub async fn topic_route(&self, topic: &str) -> Result<TopicRouteData> {
        if let Some(r) = self.routes.lock().get(topic) {
            return Ok(r.clone());
        }
        self.update_topic_route(topic).await
    }

    pub fn cached_route(&self, topic: &str) -> Option<TopicRouteData> {
        self.routes.lock().get(topic).cloned()
    }

    async fn refresh_all_routes(&self) {
        let topics: Vec<String> = self.routes.lock().keys().cloned().collect();
        for topic in topics {
            if self.shutdown.is_cancelled() {
                return;
            }
            if let Err(e) = self.update_topic_route(&topic).await {
                tracing::debug!(%topic, "route refresh failed: {e}");
            }
        }
    }

    /// The master address of `broker_name`, from any cached route.
    pub fn master_addr(&self, broker_name: &str) -> Option<String> {
        let routes = self.routes.lock();
        routes
            .values()
            .flat_map(|r| r.broker_datas.iter())
            .find(|b| b.broker_name == broker_name)
            .and_then(|b| b.master_addr().map(str::to_owned))
    }

    /// The master address of `broker_name`, refreshing `topic`'s route once if it is unknown.
    pub async fn find_master_addr(&self, broker_name: &str, topic: &str) -> Result<String> {
        if let Some(a) = self.master_addr(broker_name) {
            return Ok(a);
        }
        self.update_topic_route(topic).await?;
        self.master_addr(broker_name)
            .ok_or_else(|| ClientError::NoBrokerAddr(broker_name.to_owned()))
    }

    /// Where reads and offset commits of `broker_name` go: its master, else its slave with the
    /// lowest id (RocketMQ's clients read from a slave while the master is down).
    pub fn read_addr(&self, broker_name: &str) -> Option<String> {
        let routes = self.routes.lock();
        routes
            .values()
            .flat_map(|r| r.broker_datas.iter())
            .find(|b| b.broker_name == broker_name)
            .and_then(|b| b.broker_addrs.values().next().cloned())
    }

    /// [`ClientInstance::read_addr`], refreshing `topic`'s route once if it is unknown.
    pub async fn find_read_addr(&self, broker_name: &str, topic: &str) -> Result<String> {
        if let Some(a) = self.read_addr(broker_name) {
            return Ok(a);
        }
        self.update_topic_route(topic).await?;
        self.read_addr(broker_name)
            .ok_or_else(|| ClientError::NoBrokerAddr(broker_name.to_owned()))
    }

    /// Readable queues of `topic`, sorted (the consumer's view of the route).
    pub async fn fetch_subscribe_queues(&self, topic: &str) -> Result<Vec<MessageQueue>> {
        let route = self.topic_route(topic).await?;
        Ok(subscribe_queues(topic, &route))
    }

    // ---- heartbeats and client management ----

    fn heartbeat_data(&self) -> HeartbeatData {
        let mut producer_data_set: Vec<ProducerData> = self
            .producer_groups
            .lock()
            .iter()
            .map(|g| ProducerData {
                group_name: g.clone(),
            })
            .collect();
        producer_data_set.push(ProducerData {
            group_name: CLIENT_INNER_PRODUCER_GROUP.to_owned(),
        });
        HeartbeatData {
            client_id: self.client_id.clone(),
            producer_data_set,
            consumer_data_set: self.consumers.lock().values().cloned().collect(),
        }
    }

    /// Every broker address of every cached route: masters always, slaves when consumers exist.
    fn broker_addrs(&self) -> BTreeSet<String> {
        let with_slaves = !self.consumers.lock().is_empty();
        let routes = self.routes.lock();
        let mut out = BTreeSet::new();
        for b in routes.values().flat_map(|r| r.broker_datas.iter()) {
            for (id, addr) in &b.broker_addrs {
                if *id == 0 || with_slaves {
                    out.insert(addr.clone());
                }
            }
        }
        out
    }

    /// Sends HEART_BEAT to every known broker; returns how many accepted it.
    pub async fn send_heartbeat_to_all_brokers(&self) -> usize {
        *self.last_heartbeat.lock() = Some(Instant::now());
        let data = self.heartbeat_data();
        let body = match serde_json::to_vec(&data) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!("could not encode the heartbeat: {e}");
                return 0;
            }
        };
        let mut ok = 0;
        for addr in self.broker_addrs() {
            let cmd = RemotingCommand::request(request::HEART_BEAT).with_body(body.clone());
            match self
                .invoke_ok(&addr, cmd, self.config.request_timeout)
                .await
            {
                Ok(_) => ok += 1,
                Err(e) => tracing::debug!(broker = %addr, "heartbeat failed: {e}"),
            }
        }
        ok
    }

    /// Heartbeats now unless one went out less than `min_gap` ago (pulls that find their
    /// subscription unknown call this; many queues must not cause a burst).
    pub async fn heartbeat_if_stale(&self, min_gap: Duration) {
        {
            let mut last = self.last_heartbeat.lock();
            if last.is_some_and(|t| t.elapsed() < min_gap) {
                return;
            }
            *last = Some(Instant::now());
        }
        self.send_heartbeat_to_all_brokers().await;
    }

    /// CHECK_CLIENT_CONFIG: asks the masters serving `sub.topic` (any known broker when the
    /// topic has no route yet) whether they accept the subscription; the first refusal is the
    /// error, with the broker's remark.
    pub async fn check_client_config(&self, group: &str, sub: &SubscriptionData) -> Result<()> {
        let mut addrs: BTreeSet<String> = self
            .cached_route(&sub.topic)
            .map(|r| r.master_addrs().map(str::to_owned).collect())
            .unwrap_or_default();
        if addrs.is_empty() {
            addrs = self.broker_addrs();
        }
        let body = CheckClientRequestBody {
            client_id: self.client_id.clone(),
            group: group.to_owned(),
            subscription_data: Some(sub.clone()),
            namespace: None,
        };
        let body = serde_json::to_vec(&body).map_err(|e| {
            ClientError::InvalidArgument(format!("subscription not encodable: {e}"))
        })?;
        for addr in addrs {
            let cmd =
                RemotingCommand::request(request::CHECK_CLIENT_CONFIG).with_body(body.clone());
            self.invoke_ok(&addr, cmd, self.config.request_timeout)
                .await?;
        }
        Ok(())
    }

    /// Sends UNREGISTER_CLIENT for a group to every known broker (errors are logged).
    pub async fn unregister_client(
        &self,
        producer_group: Option<&str>,
        consumer_group: Option<&str>,
    ) {
        let header = UnregisterClientRequestHeader {
            client_id: self.client_id.clone(),
            producer_group: producer_group.map(str::to_owned),
            consumer_group: consumer_group.map(str::to_owned),
        };
        for addr in self.broker_addrs() {
            let cmd = RemotingCommand::request_with_header(request::UNREGISTER_CLIENT, &header);
            if let Err(e) = self
                .invoke_ok(&addr, cmd, self.config.request_timeout)
                .await
            {
                tracing::debug!(broker = %addr, "unregister failed: {e}");
            }
        }
    }

    /// The ids of the live consumers of `group`, sorted, asked of a broker serving `topic`: a
    /// group's master, or its slave while the master is down (consumers keep heart-beating to
    /// every broker, so each knows the group).
    pub async fn consumer_id_list(&self, topic: &str, group: &str) -> Result<Vec<String>> {
        let route = self.topic_route(topic).await?;
        // Lowest id first: the master (0) when there is one.
        let addrs: Vec<&str> = route
            .broker_datas
            .iter()
            .filter_map(|b| b.broker_addrs.values().next().map(String::as_str))
            .collect();
        if addrs.is_empty() {
            return Err(ClientError::NoRoute(topic.to_owned()));
        }
        let addr = addrs[rand::random::<u32>() as usize % addrs.len()];
        let cmd = RemotingCommand::request_with_header(
            request::GET_CONSUMER_LIST_BY_GROUP,
            &ConsumerGroupHeader {
                consumer_group: group.to_owned(),
            },
        );
        let resp = self
            .invoke_ok(addr, cmd, self.config.request_timeout)
            .await?;
        let body: ConsumerListBody = from_fastjson(&resp.body_bytes())
            .map_err(|e| ClientError::Decode(format!("consumer list of {group}: {e}")))?;
        let mut ids = body.consumer_id_list;
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    // ---- orderly queue locks ----

    /// LOCK_BATCH_MQ to the broker at `addr`: locks (or renews) `mqs` for this client and
    /// returns the ones it now holds.
    pub async fn lock_batch_mq(
        &self,
        addr: &str,
        group: &str,
        mqs: BTreeSet<MessageQueue>,
    ) -> Result<BTreeSet<MessageQueue>> {
        let cmd =
            RemotingCommand::request(request::LOCK_BATCH_MQ).with_body(self.lock_body(group, mqs)?);
        let resp = self
            .invoke_ok(addr, cmd, self.config.request_timeout)
            .await?;
        let body: LockBatchResponseBody = from_fastjson(&resp.body_bytes())
            .map_err(|e| ClientError::Decode(format!("lock answer for {group}: {e}")))?;
        Ok(body.lock_ok_mq_set)
    }

    /// UNLOCK_BATCH_MQ to the broker at `addr`, waiting for its answer.
    pub async fn unlock_batch_mq(
        &self,
        addr: &str,
        group: &str,
        mqs: BTreeSet<MessageQueue>,
    ) -> Result<()> {
        let cmd = RemotingCommand::request(request::UNLOCK_BATCH_MQ)
            .with_body(self.lock_body(group, mqs)?);
        self.invoke_ok(addr, cmd, self.config.request_timeout)
            .await
            .map(|_| ())
    }

    fn lock_body(&self, group: &str, mq_set: BTreeSet<MessageQueue>) -> Result<Vec<u8>> {
        serde_json::to_vec(&LockBatchRequestBody {
            consumer_group: group.to_owned(),
            client_id: self.client_id.clone(),
            only_this_broker: false,
            mq_set,
        })
        .map_err(|e| ClientError::Decode(format!("lock body: {e}")))
    }

    // ---- offsets ----

    /// The group's committed offset of `mq`; `None` when the broker has none (QUERY_NOT_FOUND).
    pub async fn query_consumer_offset(
        &self,
        group: &str,
        mq: &MessageQueue,
    ) -> Result<Option<i64>> {
        let addr = self.find_read_addr(&mq.broker_name, &mq.topic).await?;
        let cmd = RemotingCommand::request_with_header(
            request::QUERY_CONSUMER_OFFSET,
            &QueryConsumerOffsetRequestHeader {
                consumer_group: group.to_owned(),
                topic: mq.topic.clone(),
                queue_id: mq.queue_id,
                set_zero_if_not_found: None,
            },
        );
        let resp = self.invoke(&addr, cmd, self.config.request_timeout).await?;
        match resp.code {
            response::SUCCESS => Ok(Some(resp.decode_header::<OffsetResponseHeader>()?.offset)),
            response::QUERY_NOT_FOUND => Ok(None),
            code => Err(ClientError::broker(code, resp.remark)),
        }
    }

    fn update_offset_cmd(group: &str, mq: &MessageQueue, offset: i64) -> RemotingCommand {
        RemotingCommand::request_with_header(
            request::UPDATE_CONSUMER_OFFSET,
            &UpdateConsumerOffsetRequestHeader {
                consumer_group: group.to_owned(),
                topic: mq.topic.clone(),
                queue_id: mq.queue_id,
                commit_offset: offset,
            },
        )
    }

    /// Commits the group's offset of `mq` without waiting for an answer.
    pub async fn update_consumer_offset_oneway(
        &self,
        group: &str,
        mq: &MessageQueue,
        offset: i64,
    ) -> Result<()> {
        let addr = self.find_read_addr(&mq.broker_name, &mq.topic).await?;
        self.invoke_oneway(&addr, Self::update_offset_cmd(group, mq, offset))
            .await
    }

    /// Commits the group's offset of `mq` and waits for the broker's answer.
    pub async fn update_consumer_offset(
        &self,
        group: &str,
        mq: &MessageQueue,
        offset: i64,
    ) -> Result<()> {
        let addr = self.find_read_addr(&mq.broker_name, &mq.topic).await?;
        self.invoke_ok(
            &addr,
            Self::update_offset_cmd(group, mq, offset),
            self.config.request_timeout,
        )
        .await
        .map(|_| ())
    }

    async fn queue_offset(&self, code: i32, mq: &MessageQueue) -> Result<i64> {
        let addr = self.find_read_addr(&mq.broker_name, &mq.topic).await?;
        let cmd = RemotingCommand::request_with_header(
            code,
            &QueueRequestHeader {
                topic: mq.topic.clone(),
                queue_id: mq.queue_id,
            },
        );
        let resp = self
            .invoke_ok(&addr, cmd, self.config.request_timeout)
            .await?;
        Ok(resp.decode_header::<OffsetResponseHeader>()?.offset)
    }

    /// GET_MAX_OFFSET: the offset the next message of `mq` will get.
    pub async fn max_offset(&self, mq: &MessageQueue) -> Result<i64> {
        self.queue_offset(request::GET_MAX_OFFSET, mq).await
    }

    /// GET_MIN_OFFSET: the smallest offset still stored in `mq`.
    pub async fn min_offset(&self, mq: &MessageQueue) -> Result<i64> {
        self.queue_offset(request::GET_MIN_OFFSET, mq).await
    }

    // ---- pull ----

    /// One PULL_MESSAGE to the master of `req.queue` (a slave while there is none). Found messages are decoded, filtered by tag
    /// against `req.subscription` and given MIN_OFFSET/MAX_OFFSET properties.
    pub async fn pull_message(&self, req: &PullRequest<'_>) -> Result<PullResult> {
        let mq = req.queue;
        let addr = self.find_read_addr(&mq.broker_name, &mq.topic).await?;
        let sub = req.subscription;
        let header = PullMessageRequestHeader {
            consumer_group: req.group.to_owned(),
            topic: mq.topic.clone(),
            queue_id: mq.queue_id,
            queue_offset: req.offset,
            max_msg_nums: req.max_msg_nums,
            sys_flag: req.sys_flag,
            commit_offset: req.commit_offset,
            suspend_timeout_millis: req.suspend_timeout.as_millis() as i64,
            subscription: (req.sys_flag & pull_sys_flag::SUBSCRIPTION != 0)
                .then(|| sub.sub_string.clone()),
            sub_version: sub.sub_version,
            expression_type: Some(sub.expression_type.clone()),
            max_msg_bytes: None,
        };
        let cmd = RemotingCommand::request_with_header(request::PULL_MESSAGE, &header);
        let resp = self.invoke(&addr, cmd, req.timeout).await?;
        let status = match resp.code {
            response::SUCCESS => PullStatus::Found(Vec::new()),
            response::PULL_NOT_FOUND => PullStatus::NoNewMsg,
            response::PULL_RETRY_IMMEDIATELY => PullStatus::NoMatchedMsg,
            response::PULL_OFFSET_MOVED => PullStatus::OffsetIllegal,
            code => return Err(ClientError::broker(code, resp.remark)),
        };
        let h: PullMessageResponseHeader = resp.decode_header()?;
        let status = match status {
            PullStatus::Found(_) => {
                let mut msgs = decode_messages(&resp.body_bytes())?;
                msgs.retain(|m| tag_matches(sub, m.tags()));
                for m in &mut msgs {
                    m.properties.insert(
                        petrel_common::properties::MIN_OFFSET,
                        h.min_offset.to_string(),
                    );
                    m.properties.insert(
                        petrel_common::properties::MAX_OFFSET,
                        h.max_offset.to_string(),
                    );
                }
                PullStatus::Found(msgs)
            }
            other => other,
        };
        Ok(PullResult {
            status,
            next_begin_offset: h.next_begin_offset,
            min_offset: h.min_offset,
            max_offset: h.max_offset,
        })
    }
}

impl Drop for ClientInstance {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Whether a message with `tags` passes a TAG subscription (the exact check the broker's hash
/// filter leaves to the client). Other expression types were decided by the broker in full.
pub fn tag_matches(sub: &SubscriptionData, tags: Option<&str>) -> bool {
    if !sub.is_tag_type() || sub.matches_all() {
        return true;
    }
    tags.is_some_and(|t| sub.tags_set.contains(t))
}

/// Readable queues of a route, sorted.
pub fn subscribe_queues(topic: &str, route: &TopicRouteData) -> Vec<MessageQueue> {
    let mut out: Vec<MessageQueue> = route
        .queue_datas
        .iter()
        .filter(|q| perm::readable(q.perm))
        .flat_map(|q| {
            (0..q.read_queue_nums.max(0)).map(move |id| MessageQueue {
                topic: topic.to_owned(),
                broker_name: q.broker_name.clone(),
                queue_id: id,
            })
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Writable queues of a route on brokers that have a master, sorted; at most `max_per_broker`
/// queues of each broker when given (the auto-create template's limit).
pub fn publish_queues(
    topic: &str,
    route: &TopicRouteData,
    max_per_broker: Option<i32>,
) -> Vec<MessageQueue> {
    let with_master: HashSet<&str> = route
        .broker_datas
        .iter()
        .filter(|b| b.master_addr().is_some())
        .map(|b| b.broker_name.as_str())
        .collect();
    let mut out: Vec<MessageQueue> = route
        .queue_datas
        .iter()
        .filter(|q| perm::writeable(q.perm) && with_master.contains(q.broker_name.as_str()))
        .flat_map(|q| {
            let n = match max_per_broker {
                Some(m) => q.write_queue_nums.min(m),
                None => q.write_queue_nums,
            };
            (0..n.max(0)).map(move |id| MessageQueue {
                topic: topic.to_owned(),
                broker_name: q.broker_name.clone(),
                queue_id: id,
            })
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The address other hosts reach us at: the local end of a UDP "connection" towards the name
/// server (no packet is sent), else loopback.
fn local_ip(namesrv: Option<&str>) -> IpAddr {
    let probe = || -> Option<IpAddr> {
        let target = namesrv?.to_socket_addrs().ok()?.next()?;
        let bind = if target.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        };
        let sock = UdpSocket::bind(bind).ok()?;
        sock.connect(target).ok()?;
        let ip = sock.local_addr().ok()?.ip();
        (!ip.is_unspecified()).then_some(ip)
    };
    probe().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use petrel_common::protocol::{BrokerData, QueueData};
    use std::collections::BTreeMap;

    pub(crate) fn route(brokers: &[(&str, Option<&str>, i32, i32, i32)]) -> TopicRouteData {
        TopicRouteData {
            queue_datas: brokers
                .iter()
                .map(|(name, _, r, w, p)| QueueData {
                    broker_name: (*name).to_owned(),
                    read_queue_nums: *r,
                    write_queue_nums: *w,
                    perm: *p,
                    topic_sys_flag: 0,
                })
                .collect(),
            broker_datas: brokers
                .iter()
                .map(|(name, master, ..)| BrokerData {
                    cluster: "c".into(),
                    broker_name: (*name).to_owned(),
                    broker_addrs: master
                        .map(|a| BTreeMap::from([(0, a.to_owned())]))
                        .unwrap_or_else(|| BTreeMap::from([(1, "slave:1".to_owned())])),
                    enable_acting_master: false,
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn publish_queues_skip_read_only_and_masterless_brokers() {
        let r = route(&[
            ("b", Some("b:1"), 4, 2, 6),
            ("a", Some("a:1"), 4, 3, 6),
            ("ro", Some("ro:1"), 4, 4, 4),
            ("nomaster", None, 4, 4, 6),
        ]);
        let q = publish_queues("T", &r, None);
        let names: Vec<(String, i32)> = q
            .iter()
            .map(|m| (m.broker_name.clone(), m.queue_id))
            .collect();
        assert_eq!(
            names,
            vec![
                ("a".into(), 0),
                ("a".into(), 1),
                ("a".into(), 2),
                ("b".into(), 0),
                ("b".into(), 1)
            ]
        );
        assert_eq!(publish_queues("T", &r, Some(1)).len(), 2);
        assert!(q.iter().all(|m| m.topic == "T"));
    }

    #[test]
    fn subscribe_queues_use_read_queue_nums_of_readable_brokers() {
        let r = route(&[("a", Some("a:1"), 2, 8, 6), ("w", Some("w:1"), 4, 4, 2)]);
        let q = subscribe_queues("T", &r);
        assert_eq!(q.len(), 2);
        assert!(q.iter().all(|m| m.broker_name == "a"));
    }

    #[test]
    fn tag_filter_is_exact() {
        let all = SubscriptionData::tags("T", "*", 1);
        assert!(tag_matches(&all, None));
        let ab = SubscriptionData::tags("T", "a || b", 1);
        assert!(tag_matches(&ab, Some("a")));
        assert!(tag_matches(&ab, Some("b")));
        assert!(!tag_matches(&ab, Some("c")));
        assert!(!tag_matches(&ab, None));
    }

    #[tokio::test]
    async fn client_id_is_ip_at_instance_name() {
        let inst = ClientInstance::new(ClientConfig::new("127.0.0.1:9876").with_instance_name("x"));
        assert_eq!(inst.client_id(), "127.0.0.1@x");
        assert_eq!(inst.next_uniq_id().len(), 32);
    }
}
