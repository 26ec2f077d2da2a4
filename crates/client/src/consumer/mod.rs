//! Consumers. `PushConsumer` heartbeats its subscriptions, splits the topic's queues with the
//! other consumers of its group (rebalance, by the chosen strategy), runs one long-polling pull
//! loop per assigned queue and commits offsets. Its listener is concurrent or orderly (queues
//! locked at the broker, see `orderly`); in broadcast mode every instance reads every queue and
//! keeps its own offsets in a local file, the only state a consumer keeps outside the broker.
//! `PullConsumer` is the low-level one-request-at-a-time form.

mod allocate;
mod direct;
mod local_offset;
mod orderly;
mod process_queue;
mod pull;
mod send_back;

pub(crate) use direct::consume_directly;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use petrel_common::msg_id::now_ms;
use petrel_common::protocol::{ConsumerData, MessageQueue, SubscriptionData};
use petrel_common::topic::{retry_topic, validate_group, validate_topic};
use petrel_remoting::CancellationToken;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

pub use allocate::{
    allocate_averagely, allocate_averagely_by_circle, allocate_consistent_hash, AllocateStrategy,
    DEFAULT_VIRTUAL_NODES,
};
pub use local_offset::default_offset_store_dir;
pub use pull::PullConsumer;

use crate::config::ClientConfig;
use crate::error::{ClientError, Result};
use crate::instance::{subscribe_queues, ClientInstance};
use crate::message::MessageExt;
use local_offset::LocalOffsetStore;
use process_queue::ProcessQueue;

/// What the listener made of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeStatus {
    Success,
    /// Consume the batch again later: each message is sent back to the broker, which delivers
    /// it again through the group's retry topic after a growing delay (to the dead-letter topic
    /// after `max_reconsume_times` attempts). The queue moves on meanwhile.
    Later,
}

/// What an orderly listener made of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeOrderlyStatus {
    Success,
    /// Hold the queue and consume the same batch again after `suspend_current_queue_time`
    /// (after `max_reconsume_times` attempts a message goes to the dead-letter topic instead).
    SuspendCurrentQueueAMoment,
}

/// How a group's instances share messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MessageModel {
    /// The instances split the queues: each message goes to one of them. Offsets at the broker.
    #[default]
    Clustering,
    /// Every instance reads every queue: each message goes to all of them. Offsets are kept by
    /// each client in a local file; failed messages are not retried (Java drops them with a
    /// warning, and so do we).
    Broadcasting,
}

impl MessageModel {
    /// The name heartbeats carry.
    pub fn wire_name(self) -> &'static str {
        match self {
            MessageModel::Clustering => "CLUSTERING",
            MessageModel::Broadcasting => "BROADCASTING",
        }
    }
}

/// Where a group starts on a queue it has no committed offset for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConsumeFromWhere {
    /// New messages only (GET_MAX_OFFSET).
    #[default]
    LastOffset,
    /// Everything still stored (GET_MIN_OFFSET).
    FirstOffset,
}

impl ConsumeFromWhere {
    /// The name heartbeats carry.
    pub fn wire_name(self) -> &'static str {
        match self {
            ConsumeFromWhere::LastOffset => "CONSUME_FROM_LAST_OFFSET",
            ConsumeFromWhere::FirstOffset => "CONSUME_FROM_FIRST_OFFSET",
        }
    }
}

/// Tuning of a push consumer; the defaults are the Java client's.
#[derive(Debug, Clone)]
pub struct PushConsumerOptions {
    pub consume_from: ConsumeFromWhere,
    /// `maxMsgNums` of each pull.
    pub pull_batch_size: i32,
    /// Most messages handed to one listener call.
    pub consume_batch_max_size: usize,
    pub offset_commit_interval: Duration,
    pub rebalance_interval: Duration,
    /// How long the broker may hold a pull that finds nothing.
    pub suspend_timeout: Duration,
    /// RPC timeout of a pull; longer than `suspend_timeout`.
    pub pull_timeout: Duration,
    /// Pause after a failed pull or offset lookup.
    pub pull_error_delay: Duration,
    /// Pause before re-delivering, in place, messages the listener answered `Later` for that
    /// could not be sent back to the broker.
    pub later_retry_delay: Duration,
    /// Attempts before a failing message goes to `%DLQ%<group>` (`maxReconsumeTimes`, 16).
    pub max_reconsume_times: i32,
    /// How long `shutdown` waits for pull loops to finish and commit.
    pub shutdown_timeout: Duration,
    /// Orderly: pause before consuming a suspended batch again (`suspendCurrentQueueTimeMillis`).
    pub suspend_current_queue_time: Duration,
    /// Orderly: how often the locks of assigned queues are renewed at the brokers.
    pub lock_renew_interval: Duration,
    /// Orderly: how long after being granted a lock counts as held without renewal; shorter
    /// than the broker's lock lifetime (60 s).
    pub lock_valid: Duration,
    /// Orderly: pause before asking again for a queue lock another client holds.
    pub lock_retry_delay: Duration,
    /// How the group's queues are split; every member of a group must use the same one.
    pub allocate_strategy: AllocateStrategy,
    pub message_model: MessageModel,
    /// Broadcasting: where offset files go, `<dir>/<clientId>/<group>/offsets.json`
    /// (default `~/.rocketmq_offsets`, Java's `rocketmq.client.localOffsetStoreDir`).
    pub offset_store_dir: PathBuf,
}

impl Default for PushConsumerOptions {
    fn default() -> Self {
        PushConsumerOptions {
            consume_from: ConsumeFromWhere::LastOffset,
            pull_batch_size: 32,
            consume_batch_max_size: 1,
            offset_commit_interval: Duration::from_secs(5),
            rebalance_interval: Duration::from_secs(20),
            suspend_timeout: Duration::from_secs(15),
            pull_timeout: Duration::from_secs(30),
            pull_error_delay: Duration::from_secs(1),
            later_retry_delay: Duration::from_secs(1),
            max_reconsume_times: 16,
            shutdown_timeout: Duration::from_secs(10),
            suspend_current_queue_time: Duration::from_secs(1),
            lock_renew_interval: Duration::from_secs(20),
            lock_valid: Duration::from_secs(30),
            lock_retry_delay: Duration::from_millis(500),
            allocate_strategy: AllocateStrategy::Averagely,
            message_model: MessageModel::Clustering,
            offset_store_dir: default_offset_store_dir(),
        }
    }
}

pub type MessageListener = Arc<dyn Fn(&[MessageExt]) -> ConsumeStatus + Send + Sync>;
pub type OrderlyMessageListener = Arc<dyn Fn(&[MessageExt]) -> ConsumeOrderlyStatus + Send + Sync>;

/// How a consumer hands messages over: concurrently (failed ones are sent back and the queue
/// moves on) or orderly (one locked queue, one batch at a time, failures retried in place).
#[derive(Clone)]
pub(crate) enum Listener {
    Concurrently(MessageListener),
    Orderly(OrderlyMessageListener),
}

/// A push consumer: clustering (the default) or broadcasting, concurrent or orderly.
pub struct PushConsumer {
    group: String,
    instance: Arc<ClientInstance>,
    owns_instance: bool,
    pub options: PushConsumerOptions,
    /// By topic; each gets its subVersion at `start`.
    subscriptions: BTreeMap<String, SubscriptionData>,
    listener: Option<Listener>,
    running: Mutex<Option<Running>>,
}

struct Running {
    core: Arc<Core>,
    background: Vec<JoinHandle<()>>,
}

/// What the background tasks of a started consumer share.
pub(crate) struct Core {
    group: String,
    instance: Arc<ClientInstance>,
    options: PushConsumerOptions,
    subscriptions: Vec<SubscriptionData>,
    listener: Listener,
    queues: Mutex<HashMap<MessageQueue, Arc<ProcessQueue>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    stop: CancellationToken,
    /// One per queue ever assigned: held by the queue's task for its whole life, so a queue
    /// assigned again waits for its previous task to finish.
    queue_turns: Mutex<HashMap<MessageQueue, Arc<tokio::sync::Mutex<()>>>>,
    /// Serializes lock renewals with unlocks, so a renewal never re-locks a queue just released.
    lock_requests: tokio::sync::Mutex<()>,
    /// Broadcasting: this client's own offsets; clustering keeps them at the broker.
    local_offsets: Option<Arc<LocalOffsetStore>>,
}

impl PushConsumer {
    /// A consumer with its own client instance.
    pub fn new(group: impl Into<String>, config: ClientConfig) -> Self {
        Self::build(group.into(), ClientInstance::new(config), true)
    }

    /// A consumer sharing `instance` with other clients.
    pub fn with_instance(group: impl Into<String>, instance: Arc<ClientInstance>) -> Self {
        Self::build(group.into(), instance, false)
    }

    fn build(group: String, instance: Arc<ClientInstance>, owns_instance: bool) -> Self {
        PushConsumer {
            group,
            instance,
            owns_instance,
            options: PushConsumerOptions::default(),
            subscriptions: BTreeMap::new(),
            listener: None,
            running: Mutex::new(None),
        }
    }

    pub fn group(&self) -> &str {
        &self.group
    }

    pub fn instance(&self) -> &Arc<ClientInstance> {
        &self.instance
    }

    /// Subscribes `topic` with a TAG expression: `*` or `TagA || TagB`. Takes effect at `start`.
    pub fn subscribe(&mut self, topic: &str, tag_expression: &str) -> Result<()> {
        validate_topic(topic).map_err(ClientError::InvalidArgument)?;
        self.subscriptions.insert(
            topic.to_owned(),
            SubscriptionData::tags(topic, tag_expression, 0),
        );
        Ok(())
    }

    /// Subscribes `topic` with a SQL92 filter on message properties, e.g. `a > 5 AND b = 'x'`.
    /// The brokers filter; `start` fails with the broker's remark if one refuses the expression.
    pub fn subscribe_sql(&mut self, topic: &str, expression: &str) -> Result<()> {
        validate_topic(topic).map_err(ClientError::InvalidArgument)?;
        self.subscriptions.insert(
            topic.to_owned(),
            SubscriptionData::sql92(topic, expression, 0),
        );
        Ok(())
    }

    pub fn register_listener<F>(&mut self, listener: F)
    where
        F: Fn(&[MessageExt]) -> ConsumeStatus + Send + Sync + 'static,
    {
        self.listener = Some(Listener::Concurrently(Arc::new(listener)));
    }

    /// Consumes orderly: each queue only while this client holds its lock at the broker, one
    /// batch at a time in offset order. Replaces a listener registered before.
    pub fn register_orderly_listener<F>(&mut self, listener: F)
    where
        F: Fn(&[MessageExt]) -> ConsumeOrderlyStatus + Send + Sync + 'static,
    {
        self.listener = Some(Listener::Orderly(Arc::new(listener)));
    }

    pub fn set_consume_from(&mut self, from: ConsumeFromWhere) {
        self.options.consume_from = from;
    }

    /// Heartbeats, rebalances once (so queues are assigned when this returns, if the broker
    /// answered) and starts the background tasks.
    pub async fn start(&self) -> Result<()> {
        validate_group(&self.group).map_err(ClientError::InvalidArgument)?;
        let listener = self
            .listener
            .clone()
            .ok_or_else(|| ClientError::InvalidArgument("no listener registered".to_owned()))?;
        if self.subscriptions.is_empty() {
            return Err(ClientError::InvalidArgument("no subscription".to_owned()));
        }
        if self.running.lock().is_some() {
            return Err(ClientError::InvalidArgument("already started".to_owned()));
        }
        let sub_version = now_ms() as i64;
        let mut subscriptions: Vec<SubscriptionData> = self
            .subscriptions
            .values()
            .map(|sub| SubscriptionData {
                sub_version,
                ..sub.clone()
            })
            .collect();
        // Only clustering consumers retry through the group's retry topic.
        let broadcasting = self.options.message_model == MessageModel::Broadcasting;
        let retry = retry_topic(&self.group);
        if !broadcasting && !self.subscriptions.contains_key(&retry) {
            subscriptions.push(SubscriptionData::tags(&retry, "*", sub_version));
        }
        let local_offsets = if broadcasting {
            Some(Arc::new(LocalOffsetStore::open(
                &self.options.offset_store_dir,
                self.instance.client_id(),
                &self.group,
            )?))
        } else {
            None
        };
        let core = Arc::new(Core {
            group: self.group.clone(),
            instance: self.instance.clone(),
            options: self.options.clone(),
            subscriptions,
            listener,
            queues: Mutex::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
            stop: CancellationToken::new(),
            queue_turns: Mutex::new(HashMap::new()),
            lock_requests: tokio::sync::Mutex::new(()),
            local_offsets,
        });
        let notify = Arc::new(Notify::new());
        self.instance.register_consumer(
            core.consumer_data(),
            notify.clone(),
            core.listener.clone(),
        );
        if let Err(e) = self.instance.start() {
            self.instance.unregister_consumer(&self.group);
            return Err(e);
        }
        for sub in &core.subscriptions {
            if let Err(e) = self.instance.update_topic_route(&sub.topic).await {
                tracing::debug!(topic = %sub.topic, "no route yet: {e}");
            }
        }
        for sub in core.subscriptions.iter().filter(|s| !s.is_tag_type()) {
            if let Err(e) = self.instance.check_client_config(&self.group, sub).await {
                self.instance.unregister_consumer(&self.group);
                return Err(e);
            }
        }
        self.instance.send_heartbeat_to_all_brokers().await;
        core.rebalance().await;

        let mut background = vec![
            tokio::spawn(rebalance_loop(core.clone(), notify)),
            tokio::spawn(commit_loop(core.clone())),
        ];
        if core.needs_queue_locks() {
            background.push(tokio::spawn(lock_renew_loop(core.clone())));
        }
        *self.running.lock() = Some(Running { core, background });
        Ok(())
    }

    /// Stops pulling, commits every queue's offset, unregisters the group from the brokers.
    pub async fn shutdown(&self) {
        let Some(running) = self.running.lock().take() else {
            return;
        };
        let core = running.core;
        core.stop.cancel();
        for h in running.background {
            let _ = h.await;
        }
        let tasks: Vec<JoinHandle<()>> = core.tasks.lock().drain(..).collect();
        let deadline = tokio::time::Instant::now() + core.options.shutdown_timeout;
        for t in tasks {
            if tokio::time::timeout_at(deadline, t).await.is_err() {
                tracing::warn!(group = %core.group, "a pull loop did not stop in time");
                break;
            }
        }
        self.instance.unregister_consumer(&self.group);
        self.instance
            .unregister_client(None, Some(&self.group))
            .await;
        if self.owns_instance || !self.instance.has_groups() {
            self.instance.shutdown();
        }
    }

    /// The queues this consumer currently reads.
    pub fn assigned_queues(&self) -> Vec<MessageQueue> {
        let running = self.running.lock();
        let Some(r) = running.as_ref() else {
            return Vec::new();
        };
        let mut v: Vec<MessageQueue> = r.core.queues.lock().keys().cloned().collect();
        v.sort();
        v
    }

    /// Commits every assigned queue's offset now (oneway).
    pub async fn commit_offsets(&self) {
        let core = self.running.lock().as_ref().map(|r| r.core.clone());
        if let Some(core) = core {
            core.commit_all().await;
        }
    }
}

impl Drop for PushConsumer {
    fn drop(&mut self) {
        if let Some(r) = self.running.get_mut().take() {
            r.core.stop.cancel();
        }
    }
}

async fn rebalance_loop(core: Arc<Core>, notify: Arc<Notify>) {
    loop {
        tokio::select! {
            _ = core.stop.cancelled() => return,
            _ = tokio::time::sleep(core.options.rebalance_interval) => {}
            _ = notify.notified() => {}
        }
        core.rebalance().await;
    }
}

async fn lock_renew_loop(core: Arc<Core>) {
    loop {
        tokio::select! {
            _ = core.stop.cancelled() => return,
            _ = tokio::time::sleep(core.options.lock_renew_interval) => {}
        }
        orderly::renew_locks(&core).await;
    }
}

async fn commit_loop(core: Arc<Core>) {
    loop {
        tokio::select! {
            _ = core.stop.cancelled() => return,
            _ = tokio::time::sleep(core.options.offset_commit_interval) => {}
        }
        core.commit_all().await;
    }
}

impl Core {
    fn consumer_data(&self) -> ConsumerData {
        ConsumerData {
            group_name: self.group.clone(),
            consume_type: "CONSUME_PASSIVELY".to_owned(),
            message_model: self.options.message_model.wire_name().to_owned(),
            consume_from_where: self.options.consume_from.wire_name().to_owned(),
            subscription_data_set: self.subscriptions.clone(),
            unit_mode: false,
        }
    }

    /// Orderly clustering consumers lock their queues; broadcasting ones read every queue anyway.
    fn needs_queue_locks(&self) -> bool {
        matches!(self.listener, Listener::Orderly(_)) && self.local_offsets.is_none()
    }

    fn queue_turn(&self, mq: &MessageQueue) -> Arc<tokio::sync::Mutex<()>> {
        self.queue_turns
            .lock()
            .entry(mq.clone())
            .or_default()
            .clone()
    }

    fn subscription(&self, topic: &str) -> Option<SubscriptionData> {
        self.subscriptions
            .iter()
            .find(|s| s.topic == topic)
            .cloned()
    }

    async fn rebalance(self: &Arc<Self>) {
        for sub in &self.subscriptions {
            if self.stop.is_cancelled() {
                return;
            }
            let topic = &sub.topic;
            let queues = match self.instance.topic_route(topic).await {
                Ok(route) => subscribe_queues(topic, &route),
                Err(e) => {
                    tracing::debug!(%topic, "rebalance: no route: {e}");
                    continue;
                }
            };
            if self.local_offsets.is_some() {
                self.assign(topic, queues);
                continue;
            }
            let ids = match self.instance.consumer_id_list(topic, &self.group).await {
                Ok(ids) => ids,
                Err(e) => {
                    tracing::debug!(%topic, "rebalance: no consumer list: {e}");
                    continue;
                }
            };
            let mine =
                self.options
                    .allocate_strategy
                    .allocate(&queues, &ids, self.instance.client_id());
            self.assign(topic, mine);
        }
    }

    /// Makes `mine` the assigned queues of `topic`: stops loops of queues no longer ours (each
    /// commits its offset as it ends) and starts loops for new ones.
    fn assign(self: &Arc<Self>, topic: &str, mine: Vec<MessageQueue>) {
        let mut queues = self.queues.lock();
        if self.stop.is_cancelled() {
            return;
        }
        queues.retain(|mq, pq| {
            let keep = mq.topic != topic || mine.contains(mq);
            if !keep {
                tracing::info!(group = %self.group, queue = ?mq, "queue released");
                pq.stop.cancel();
            }
            keep
        });
        let mut tasks = self.tasks.lock();
        tasks.retain(|t| !t.is_finished());
        for mq in mine {
            if queues.contains_key(&mq) {
                continue;
            }
            tracing::info!(group = %self.group, queue = ?mq, "queue assigned");
            let pq = Arc::new(ProcessQueue::new(mq.clone(), &self.stop));
            tasks.push(tokio::spawn(process_queue::run(self.clone(), pq.clone())));
            queues.insert(mq, pq);
        }
    }

    /// Broadcast: offsets are this client's own. Records `pending` in its local file and marks
    /// them committed once the file is written.
    pub(crate) async fn save_local_offsets(
        &self,
        local: &Arc<LocalOffsetStore>,
        pending: &[(&ProcessQueue, i64)],
    ) {
        for (pq, offset) in pending {
            local.update(&pq.mq, *offset);
        }
        match local.persist_off_runtime().await {
            Ok(()) => {
                for (pq, offset) in pending {
                    pq.committed.store(*offset, Ordering::Release);
                }
            }
            Err(e) => tracing::warn!(group = %self.group, "could not save offsets: {e}"),
        }
    }

    async fn commit_all(&self) {
        let pending: Vec<(Arc<ProcessQueue>, i64)> = self
            .queues
            .lock()
            .values()
            .filter_map(|pq| pq.uncommitted().map(|o| (pq.clone(), o)))
            .collect();
        if pending.is_empty() {
            return;
        }
        if let Some(local) = &self.local_offsets {
            let pending: Vec<(&ProcessQueue, i64)> =
                pending.iter().map(|(pq, o)| (pq.as_ref(), *o)).collect();
            self.save_local_offsets(local, &pending).await;
            return;
        }
        for (pq, offset) in pending {
            match self
                .instance
                .update_consumer_offset_oneway(&self.group, &pq.mq, offset)
                .await
            {
                Ok(()) => pq.committed.store(offset, Ordering::Release),
                Err(e) => tracing::debug!(queue = ?pq.mq, "offset commit failed: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn start_refuses_without_listener_or_subscription() {
        let mut c = PushConsumer::new("cg", ClientConfig::default());
        assert!(matches!(
            c.start().await,
            Err(ClientError::InvalidArgument(_))
        ));
        c.register_listener(|_| ConsumeStatus::Success);
        assert!(matches!(
            c.start().await,
            Err(ClientError::InvalidArgument(_))
        ));
        assert!(c.subscribe("bad topic!", "*").is_err());
        assert!(c.assigned_queues().is_empty());
        c.shutdown().await;
    }

    #[test]
    fn consumer_data_carries_the_retry_subscription() {
        let instance = ClientInstance::new(ClientConfig::default());
        let core = Core {
            group: "cg".into(),
            instance,
            options: PushConsumerOptions::default(),
            subscriptions: vec![
                SubscriptionData::tags("T", "a || b", 1),
                SubscriptionData::tags(&retry_topic("cg"), "*", 1),
            ],
            listener: Listener::Concurrently(Arc::new(|_| ConsumeStatus::Success)),
            queues: Mutex::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
            stop: CancellationToken::new(),
            queue_turns: Mutex::new(HashMap::new()),
            lock_requests: tokio::sync::Mutex::new(()),
            local_offsets: None,
        };
        let d = core.consumer_data();
        assert_eq!(d.consume_type, "CONSUME_PASSIVELY");
        assert_eq!(d.message_model, "CLUSTERING");
        assert_eq!(d.consume_from_where, "CONSUME_FROM_LAST_OFFSET");
        let json = serde_json::to_string(&d).unwrap();
        assert!(json.contains("%RETRY%cg"), "{json}");
        assert!(core.subscription("T").unwrap().tags_set.contains("a"));
    }
}
