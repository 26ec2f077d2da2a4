//! The broker's metrics, under RocketMQ 5's names and labels (`BrokerMetricsConstant`,
//! `RemotingMetricsConstant`, `DefaultStoreMetricsConstant`) so its Grafana dashboards work.
//! Owns the counters and histograms that the request paths bump, and computes every gauge (lag,
//! connections, counts, storage) at scrape time from the broker's own tables.
//!
//! What it must never do: allocate per message or take a contended lock on the send path. A
//! send finds its topic's counters by `&str` in a map under a read lock (created on first use
//! under the write lock) and adds to atomics; nothing else.
//!
//! The exporter is the `prometheus` crate (tikv) rather than `prometheus-client`: it ships a
//! process collector for Linux (CPU, RSS, open fds), its counters and histograms are plain
//! atomics, and a throwaway `Registry` per scrape carries the scrape-time gauges beside the
//! kept counters in one text encoding.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use parking_lot::RwLock;
use petrel_common::properties::{
    Properties, DELAY, NAME_VALUE_SEPARATOR, PROPERTY_SEPARATOR, REAL_TOPIC, SHARDING_KEY,
    START_DELIVER_TIME, TIMER_DELAY_MS, TIMER_DELAY_SEC, TIMER_DELIVER_MS, TRAN_MSG,
};
use petrel_common::record;
use petrel_common::topic::{
    AUTO_CREATE_TOPIC_KEY, RETRY_GROUP_TOPIC_PREFIX, SCHEDULE_TOPIC, TRANS_CHECK_MAX_TIME_TOPIC,
};
use petrel_remoting::code::{request, response};
use prometheus::core::Collector;
use prometheus::proto::MetricFamily;
use prometheus::{
    Encoder, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::broker::Broker;

/// `rocketmq_message_size` buckets, bytes: RocketMQ's 1 KiB, 4 KiB, 512 KiB, 1 MiB, 2 MiB, 4 MiB.
pub const MESSAGE_SIZE_BUCKETS_BYTES: [f64; 6] = [
    1024.0,
    4.0 * 1024.0,
    512.0 * 1024.0,
    1024.0 * 1024.0,
    2.0 * 1024.0 * 1024.0,
    4.0 * 1024.0 * 1024.0,
];

/// `rocketmq_rpc_latency` buckets, milliseconds (RocketMQ's `RemotingMetricsManager`).
pub const RPC_LATENCY_BUCKETS_MS: [f64; 7] = [1.0, 3.0, 5.0, 10.0, 100.0, 1000.0, 3000.0];

/// RocketMQ's `protocol_type` of the remoting protocol.
const PROTOCOL_TYPE_REMOTING: &str = "remoting";

/// RocketMQ's `TopicMessageType`, as its `message_type` label spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    Normal = 0,
    Fifo = 1,
    Delay = 2,
    Transaction = 3,
}

impl MessageType {
    /// RocketMQ's rule: a prepared transaction message; else one with a sharding key is FIFO;
    /// else one asking for any delay or timer is Delay. One pass over the encoded properties.
    pub fn of(props: &Properties) -> MessageType {
        let (mut transaction, mut fifo, mut delay) = (false, false, false);
        for pair in props.as_str().split(PROPERTY_SEPARATOR) {
            let Some((name, value)) = pair.split_once(NAME_VALUE_SEPARATOR) else {
                continue;
            };
            match name {
                TRAN_MSG => transaction = value.eq_ignore_ascii_case("true"),
                SHARDING_KEY => fifo = true,
                DELAY | START_DELIVER_TIME | TIMER_DELIVER_MS | TIMER_DELAY_SEC
                | TIMER_DELAY_MS => delay = true,
                _ => {}
            }
        }
        if transaction {
            MessageType::Transaction
        } else if fifo {
            MessageType::Fifo
        } else if delay {
            MessageType::Delay
        } else {
            MessageType::Normal
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            MessageType::Normal => "Normal",
            MessageType::Fifo => "FIFO",
            MessageType::Delay => "Delay",
            MessageType::Transaction => "Transaction",
        }
    }
}

/// RocketMQ's `TopicValidator.isSystemTopic`, for the `is_system` label.
pub fn is_system_topic(topic: &str) -> bool {
    topic.starts_with("rmq_sys_")
        || topic.starts_with("RMQ_SYS_")
        || matches!(
            topic,
            AUTO_CREATE_TOPIC_KEY
                | SCHEDULE_TOPIC
                | TRANS_CHECK_MAX_TIME_TOPIC
                | "SELF_TEST_TOPIC"
                | "OFFSET_MOVED_EVENT"
                | "BenchmarkTest"
        )
}

fn bool_label(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

/// The counters of messages in to one topic with one message type.
struct InCounters {
    messages: IntCounter,
    bytes: IntCounter,
    size: Histogram,
}

/// Counters of one topic, one per message type, created at its first message of that type.
#[derive(Default)]
struct TopicIn {
    by_type: [OnceLock<InCounters>; 4],
}

/// What one group pulled from one topic, and the next offset it will pull per queue.
struct GroupOut {
    messages: IntCounter,
    bytes: IntCounter,
    pull_offsets: RwLock<HashMap<i32, AtomicI64>>,
}

pub struct BrokerMetrics {
    /// Off (`metricsExporterType = "DISABLE"`): nothing is counted and nothing is served.
    enabled: bool,
    registry: Registry,
    const_labels: HashMap<String, String>,
    messages_in: IntCounterVec,
    throughput_in: IntCounterVec,
    message_size: HistogramVec,
    messages_out: IntCounterVec,
    throughput_out: IntCounterVec,
    send_to_dlq: IntCounterVec,
    commit: IntCounterVec,
    rollback: IntCounterVec,
    rpc_latency: HistogramVec,
    ins: RwLock<HashMap<String, TopicIn>>,
    /// Group → topic.
    outs: RwLock<HashMap<String, HashMap<String, GroupOut>>>,
    /// (request code, response code).
    rpcs: RwLock<HashMap<(i32, i32), Histogram>>,
}

impl BrokerMetrics {
    /// Metrics of broker `node_id` in `cluster` (the labels every series carries).
    pub fn new(enabled: bool, cluster: &str, node_id: &str) -> BrokerMetrics {
        let const_labels: HashMap<String, String> = [
            ("cluster", cluster),
            ("node_type", "broker"),
            ("node_id", node_id),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let registry =
            Registry::new_custom(None, Some(const_labels.clone())).expect("static labels");
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("static metric");
            registry.register(Box::new(c.clone())).expect("unique name");
            c
        };
        let histogram = |name: &str, help: &str, labels: &[&str], buckets: &[f64]| {
            let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
            let h = HistogramVec::new(opts, labels).expect("static metric");
            registry.register(Box::new(h.clone())).expect("unique name");
            h
        };
        let in_labels = ["topic", "message_type", "is_system"];
        let out_labels = ["topic", "consumer_group", "is_retry", "is_system"];
        let metrics = BrokerMetrics {
            enabled,
            messages_in: counter(
                "rocketmq_messages_in_total",
                "Total number of incoming messages",
                &in_labels,
            ),
            throughput_in: counter(
                "rocketmq_throughput_in_total",
                "Total body bytes of incoming messages",
                &in_labels,
            ),
            message_size: histogram(
                "rocketmq_message_size",
                "Incoming message body sizes, bytes",
                &in_labels,
                &MESSAGE_SIZE_BUCKETS_BYTES,
            ),
            messages_out: counter(
                "rocketmq_messages_out_total",
                "Total number of outgoing messages",
                &out_labels,
            ),
            throughput_out: counter(
                "rocketmq_throughput_out_total",
                "Total body bytes of outgoing messages",
                &out_labels,
            ),
            send_to_dlq: counter(
                "rocketmq_send_to_dlq_messages_total",
                "Messages sent to the dead-letter queue",
                &["topic", "consumer_group", "is_system"],
            ),
            commit: counter(
                "rocketmq_commit_messages_total",
                "Transactional messages committed",
                &["topic"],
            ),
            rollback: counter(
                "rocketmq_rollback_messages_total",
                "Transactional messages rolled back",
                &["topic"],
            ),
            rpc_latency: histogram(
                "rocketmq_rpc_latency",
                "Request handling time in milliseconds, by request and response code",
                &["protocol_type", "request_code", "response_code"],
                &RPC_LATENCY_BUCKETS_MS,
            ),
            registry,
            const_labels,
            ins: RwLock::default(),
            outs: RwLock::default(),
            rpcs: RwLock::default(),
        };
        #[cfg(target_os = "linux")]
        if enabled {
            let process = prometheus::process_collector::ProcessCollector::for_self();
            if let Err(e) = metrics.registry.register(Box::new(process)) {
                tracing::warn!("no process metrics: {e}");
            }
        }
        metrics
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// One message stored for a producer on `topic` (the topic it was sent to).
    pub fn message_in(&self, topic: &str, message_type: MessageType, body_bytes: usize) {
        if !self.enabled {
            return;
        }
        let slot = message_type as usize;
        let bump = |c: &InCounters| {
            c.messages.inc();
            c.bytes.inc_by(body_bytes as u64);
            c.size.observe(body_bytes as f64);
        };
        let make = || {
            let labels = [
                topic,
                message_type.label(),
                bool_label(is_system_topic(topic)),
            ];
            InCounters {
                messages: self.messages_in.with_label_values(&labels),
                bytes: self.throughput_in.with_label_values(&labels),
                size: self.message_size.with_label_values(&labels),
            }
        };
        if let Some(t) = self.ins.read().get(topic) {
            bump(t.by_type[slot].get_or_init(make));
            return;
        }
        let mut ins = self.ins.write();
        let t = ins.entry(topic.to_owned()).or_default();
        bump(t.by_type[slot].get_or_init(make));
    }

    /// A pull answered `group` with `records` (stored records, as the store returns them) of
    /// `topic`/`queue_id`; its next pull starts at `next_offset`.
    pub fn messages_out(
        &self,
        group: &str,
        topic: &str,
        queue_id: i32,
        records: &[bytes::Bytes],
        next_offset: i64,
    ) {
        if !self.enabled {
            return;
        }
        let bytes: usize = records.iter().map(|r| body_len(r)).sum();
        let bump = |o: &GroupOut| {
            o.messages.inc_by(records.len() as u64);
            o.bytes.inc_by(bytes as u64);
            if let Some(at) = o.pull_offsets.read().get(&queue_id) {
                at.store(next_offset, Ordering::Relaxed);
                return;
            }
            o.pull_offsets
                .write()
                .insert(queue_id, AtomicI64::new(next_offset));
        };
        if let Some(o) = self.outs.read().get(group).and_then(|g| g.get(topic)) {
            bump(o);
            return;
        }
        let labels = [
            topic,
            group,
            bool_label(topic.starts_with(RETRY_GROUP_TOPIC_PREFIX)),
            bool_label(is_system_topic(topic)),
        ];
        let mut outs = self.outs.write();
        let o = outs
            .entry(group.to_owned())
            .or_default()
            .entry(topic.to_owned())
            .or_insert_with(|| GroupOut {
                messages: self.messages_out.with_label_values(&labels),
                bytes: self.throughput_out.with_label_values(&labels),
                pull_offsets: RwLock::default(),
            });
        bump(o);
    }

    /// A message of `group` consumed from `topic` went to `%DLQ%<group>`.
    pub fn send_to_dlq(&self, group: &str, topic: &str) {
        if self.enabled {
            let labels = [topic, group, bool_label(is_system_topic(topic))];
            self.send_to_dlq.with_label_values(&labels).inc();
        }
    }

    /// A half message of `topic` was committed (or rolled back).
    pub fn transaction_ended(&self, topic: &str, committed: bool) {
        if !self.enabled {
            return;
        }
        let vec = if committed {
            &self.commit
        } else {
            &self.rollback
        };
        vec.with_label_values(&[topic]).inc();
    }

    /// A request with `request_code` answered with `response_code` after `elapsed`.
    pub fn rpc(&self, request_code: i32, response_code: i32, elapsed: Duration) {
        if !self.enabled {
            return;
        }
        let ms = elapsed.as_secs_f64() * 1000.0;
        let key = (request_code, response_code);
        if let Some(h) = self.rpcs.read().get(&key) {
            h.observe(ms);
            return;
        }
        let (req, resp) = (
            request_code_name(request_code),
            response_code_name(response_code),
        );
        let h = self
            .rpc_latency
            .with_label_values(&[PROTOCOL_TYPE_REMOTING, &req, &resp]);
        h.observe(ms);
        self.rpcs.write().entry(key).or_insert(h);
    }

    /// The next pull offset of every (group, topic) by queue.
    fn pull_offsets(&self) -> HashMap<(String, String), HashMap<i32, i64>> {
        let outs = self.outs.read();
        let mut all = HashMap::new();
        for (group, topics) in outs.iter() {
            for (topic, o) in topics {
                let queues = o
                    .pull_offsets
                    .read()
                    .iter()
                    .map(|(q, at)| (*q, at.load(Ordering::Relaxed)))
                    .collect();
                all.insert((group.clone(), topic.clone()), queues);
            }
        }
        all
    }
}

/// The body length of a stored record (0 if it is too short to tell).
fn body_len(rec: &[u8]) -> usize {
    let read_i32 = |pos: usize| {
        rec.get(pos..pos + 4)
            .map(|b| i32::from_be_bytes(b.try_into().expect("4 bytes")))
    };
    let Some(sys_flag) = read_i32(record::SYS_FLAG_POS) else {
        return 0;
    };
    let store_host_bytes = if sys_flag & record::SYSFLAG_STORE_HOST_V6 != 0 {
        20
    } else {
        8
    };
    // Store host, reconsume times (4), prepared transaction offset (8), then the body length.
    let pos = record::store_host_pos(sys_flag) + store_host_bytes + 12;
    read_i32(pos).map_or(0, |n| n.max(0) as usize)
}

/// The text exposition of every metric of `b`, the gauges computed now.
pub fn render(b: &Broker) -> String {
    let m = &b.metrics;
    let mut families = m.registry.gather();
    let gauges = Registry::new_custom(None, Some(m.const_labels.clone())).expect("static labels");
    collect_gauges(b, &gauges);
    families.extend(gauges.gather());
    families.sort_by(|a, b| a.name().cmp(b.name()));
    encode(&families)
}

fn encode(families: &[MetricFamily]) -> String {
    let mut out = Vec::new();
    if let Err(e) = TextEncoder::new().encode(families, &mut out) {
        tracing::warn!("metrics encoding failed: {e}");
    }
    String::from_utf8(out).unwrap_or_default()
}

fn register<C: Collector + Clone + 'static>(r: &Registry, c: C) -> C {
    r.register(Box::new(c.clone())).expect("unique name");
    c
}

fn int_gauge(r: &Registry, name: &str, help: &str, value: i64) {
    let g = register(r, IntGauge::new(name, help).expect("static metric"));
    g.set(value);
}

fn int_gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    register(
        r,
        IntGaugeVec::new(Opts::new(name, help), labels).expect("static metric"),
    )
}

fn collect_gauges(b: &Broker, r: &Registry) {
    int_gauge(
        r,
        "rocketmq_topic_number",
        "Topics in the broker's topic table",
        b.topics.topic_names().len() as i64,
    );
    int_gauge(
        r,
        "rocketmq_consumer_group_number",
        "Subscription groups in the broker's group table",
        b.groups.snapshot().subscription_group_table.len() as i64,
    );
    if let Some(acl) = &b.acl {
        int_gauge(
            r,
            "petrel_acl_replay_cache_overflows_total",
            "Fresh signed sends let through unremembered because the ACL replay cache was full",
            acl.replay_cache_overflows() as i64,
        );
    }
    collect_connections(b, r);
    collect_lag(b, r);
    collect_half_messages(b, r);
    collect_storage(b, r);
}

fn collect_connections(b: &Broker, r: &Registry) {
    let producers = int_gauge_vec(
        r,
        "rocketmq_producer_connections",
        "Producer connections",
        &["language", "version"],
    );
    b.producers.for_each_channel(|_, c| {
        let version = c.version.to_string();
        producers
            .with_label_values(&[petrel_remoting::language_name(c.language), &version])
            .inc();
    });
    let consumers = int_gauge_vec(
        r,
        "rocketmq_consumer_connections",
        "Consumer connections",
        &["consumer_group", "language", "version", "consume_mode"],
    );
    b.consumers.for_each_channel(|group, consume_type, c| {
        let version = c.version.to_string();
        let mode = if consume_type == "CONSUME_ACTIVELY" {
            "pull"
        } else {
            "push"
        };
        consumers
            .with_label_values(&[
                group,
                petrel_remoting::language_name(c.language),
                &version,
                mode,
            ])
            .inc();
    });
}

/// Where a group stands on one topic, summed over its queues.
#[derive(Default)]
struct Lag {
    /// Broker max offset − committed offset.
    messages: i64,
    /// Pulled but not committed.
    inflight: i64,
    /// Stored but not pulled.
    ready: i64,
    /// Store time of the oldest unconsumed message, ms since the epoch.
    oldest_unconsumed_ms: Option<i64>,
}

/// Per (group, topic): every group with committed offsets, live subscriptions or pulls. A queue
/// without a committed offset counts from its min offset.
fn lags(b: &Broker) -> BTreeMap<(String, String), Lag> {
    let mut committed: HashMap<(String, String), HashMap<i32, i64>> = HashMap::new();
    for (group, topic, queues) in b.offsets.all() {
        committed.insert((group, topic), queues);
    }
    let pulled = b.metrics.pull_offsets();
    let mut keys: Vec<(String, String)> = committed.keys().cloned().collect();
    keys.extend(pulled.keys().cloned());
    keys.extend(b.consumers.subscriptions());
    let mut out = BTreeMap::new();
    for key in keys {
        if out.contains_key(&key) {
            continue;
        }
        let topic = &key.1;
        let Some(config) = b.topics.get(topic) else {
            continue;
        };
        let empty = HashMap::new();
        let done = committed.get(&key).unwrap_or(&empty);
        let pull = pulled.get(&key).unwrap_or(&empty);
        let mut lag = Lag::default();
        for queue_id in 0..config.read_queue_nums.max(config.write_queue_nums) {
            let max = b.store.max_offset(topic, queue_id);
            let min = b.store.min_offset(topic, queue_id);
            let consumed = done.get(&queue_id).copied().unwrap_or(min).clamp(min, max);
            let next = pull
                .get(&queue_id)
                .copied()
                .unwrap_or(consumed)
                .clamp(consumed, max);
            lag.messages += max - consumed;
            lag.inflight += next - consumed;
            lag.ready += max - next;
            if consumed < max {
                if let Some(t) = b.store.store_time_of(topic, queue_id, consumed) {
                    lag.oldest_unconsumed_ms =
                        Some(lag.oldest_unconsumed_ms.map_or(t, |o: i64| o.min(t)));
                }
            }
        }
        out.insert(key, lag);
    }
    out
}

fn collect_lag(b: &Broker, r: &Registry) {
    let labels = ["topic", "consumer_group", "is_retry", "is_system"];
    let messages = int_gauge_vec(
        r,
        "rocketmq_consumer_lag_messages",
        "Messages not yet committed: max offset - committed offset, summed over queues",
        &labels,
    );
    let latency = int_gauge_vec(
        r,
        "rocketmq_consumer_lag_latency",
        "Milliseconds since the store time of the oldest message not yet committed",
        &labels,
    );
    let inflight = int_gauge_vec(
        r,
        "rocketmq_consumer_inflight_messages",
        "Messages pulled but not yet committed",
        &labels,
    );
    let ready = int_gauge_vec(
        r,
        "rocketmq_consumer_ready_messages",
        "Messages stored but not yet pulled",
        &labels,
    );
    let now = petrel_common::msg_id::now_ms() as i64;
    for ((group, topic), lag) in lags(b) {
        let is_retry = bool_label(topic.starts_with(RETRY_GROUP_TOPIC_PREFIX));
        let is_system = bool_label(
            is_system_topic(&topic) || group.to_ascii_lowercase().starts_with("cid_rmq_sys_"),
        );
        let values = [topic.as_str(), group.as_str(), is_retry, is_system];
        messages.with_label_values(&values).set(lag.messages);
        inflight.with_label_values(&values).set(lag.inflight);
        ready.with_label_values(&values).set(lag.ready);
        let behind = lag.oldest_unconsumed_ms.map_or(0, |t| (now - t).max(0));
        latency.with_label_values(&values).set(behind);
    }
}

/// The real topic of the stored half message at `commit_log_offset` (empty if unreadable).
pub(crate) fn real_topic_at(b: &Broker, commit_log_offset: i64) -> String {
    b.store
        .read_record(commit_log_offset)
        .and_then(|bytes| {
            let rec = record::decode(&bytes, false).ok()?;
            let props = Properties::from_stored(rec.properties);
            props.get(REAL_TOPIC).map(str::to_owned)
        })
        .unwrap_or_default()
}

fn collect_half_messages(b: &Broker, r: &Registry) {
    let half = int_gauge_vec(
        r,
        "rocketmq_half_messages",
        "Transactional half messages waiting for their outcome",
        &["topic"],
    );
    let mut by_topic: BTreeMap<String, i64> = BTreeMap::new();
    for (_, pending) in b.transactions.list(None) {
        *by_topic
            .entry(real_topic_at(b, pending.commit_log_offset))
            .or_default() += 1;
    }
    for (topic, n) in by_topic {
        half.with_label_values(&[&topic]).set(n);
    }
}

/// Bytes the files under `dir` take on disk (allocated blocks: segments are sparse until
/// written).
fn disk_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut total = 0;
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        if meta.is_dir() {
            total += disk_bytes(&entry.path());
        } else {
            #[cfg(unix)]
            {
                use std::os::unix::fs::MetadataExt;
                total += meta.blocks() * 512;
            }
            #[cfg(not(unix))]
            {
                total += meta.len();
            }
        }
    }
    total
}

fn collect_storage(b: &Broker, r: &Registry) {
    let labels = ["storage_type", "storage_medium"];
    let values = ["local", "disk"];
    let gauge = |name: &str, help: &str, value: i64| {
        int_gauge_vec(r, name, help, &labels)
            .with_label_values(&values)
            .set(value);
    };
    let store = &b.store;
    gauge(
        "rocketmq_storage_size",
        "Bytes the store's files take on disk",
        disk_bytes(&store.config().root_dir) as i64,
    );
    gauge(
        "rocketmq_storage_flush_behind_bytes",
        "Commit-log bytes appended but not yet flushed",
        (store.max_physical_offset() - store.flushed_physical_offset()).max(0),
    );
    gauge(
        "rocketmq_storage_dispatch_behind_bytes",
        "Commit-log bytes appended but not yet dispatched",
        store.dispatch_behind_bytes(),
    );
    let now = petrel_common::msg_id::now_ms() as i64;
    gauge(
        "rocketmq_storage_message_reserve_time",
        "Milliseconds since the store time of the oldest message kept",
        store
            .earliest_commit_log_time()
            .map_or(0, |t| (now - t).max(0)),
    );
    if let Some(ratio) = store.disk_used_ratio() {
        let g = register(
            r,
            GaugeVec::new(
                Opts::new(
                    "petrel_storage_disk_used_ratio",
                    "Used fraction of the commit log's filesystem (0..1)",
                ),
                &labels,
            )
            .expect("static metric"),
        );
        g.with_label_values(&values).set(ratio);
    }
    if b.trace.enabled() {
        int_gauge(
            r,
            "petrel_trace_dropped_notes_total",
            "Broker trace notes dropped because the trace writer was behind",
            b.trace.dropped() as i64,
        );
    }
}

/// RocketMQ's `RemotingHelper.getRequestCodeDesc`: the lower-case `RequestCode` name, or the
/// number for codes it has no name for.
pub fn request_code_name(code: i32) -> std::borrow::Cow<'static, str> {
    use request::*;
    let name = match code {
        SEND_MESSAGE => "send_message",
        PULL_MESSAGE => "pull_message",
        QUERY_MESSAGE => "query_message",
        QUERY_CONSUMER_OFFSET => "query_consumer_offset",
        UPDATE_CONSUMER_OFFSET => "update_consumer_offset",
        UPDATE_AND_CREATE_TOPIC => "update_and_create_topic",
        GET_ALL_TOPIC_CONFIG => "get_all_topic_config",
        GET_TOPIC_NAME_LIST => "get_topic_name_list",
        UPDATE_BROKER_CONFIG => "update_broker_config",
        GET_BROKER_CONFIG => "get_broker_config",
        GET_BROKER_RUNTIME_INFO => "get_broker_runtime_info",
        SEARCH_OFFSET_BY_TIMESTAMP => "search_offset_by_timestamp",
        GET_MAX_OFFSET => "get_max_offset",
        GET_MIN_OFFSET => "get_min_offset",
        GET_EARLIEST_MSG_STORETIME => "get_earliest_msg_storetime",
        VIEW_MESSAGE_BY_ID => "view_message_by_id",
        HEART_BEAT => "heart_beat",
        UNREGISTER_CLIENT => "unregister_client",
        CONSUMER_SEND_MSG_BACK => "consumer_send_msg_back",
        END_TRANSACTION => "end_transaction",
        GET_CONSUMER_LIST_BY_GROUP => "get_consumer_list_by_group",
        CHECK_TRANSACTION_STATE => "check_transaction_state",
        NOTIFY_CONSUMER_IDS_CHANGED => "notify_consumer_ids_changed",
        LOCK_BATCH_MQ => "lock_batch_mq",
        UNLOCK_BATCH_MQ => "unlock_batch_mq",
        GET_ALL_CONSUMER_OFFSET => "get_all_consumer_offset",
        GET_ALL_DELAY_OFFSET => "get_all_delay_offset",
        CHECK_CLIENT_CONFIG => "check_client_config",
        UPDATE_AND_CREATE_SUBSCRIPTIONGROUP => "update_and_create_subscriptiongroup",
        GET_ALL_SUBSCRIPTIONGROUP_CONFIG => "get_all_subscriptiongroup_config",
        GET_TOPIC_STATS_INFO => "get_topic_stats_info",
        GET_CONSUMER_CONNECTION_LIST => "get_consumer_connection_list",
        GET_PRODUCER_CONNECTION_LIST => "get_producer_connection_list",
        DELETE_SUBSCRIPTIONGROUP => "delete_subscriptiongroup",
        GET_CONSUME_STATS => "get_consume_stats",
        DELETE_TOPIC_IN_BROKER => "delete_topic_in_broker",
        INVOKE_BROKER_TO_RESET_OFFSET => "invoke_broker_to_reset_offset",
        QUERY_TOPIC_CONSUME_BY_WHO => "query_topic_consume_by_who",
        GET_CONSUMER_RUNNING_INFO => "get_consumer_running_info",
        CONSUME_MESSAGE_DIRECTLY => "consume_message_directly",
        CLONE_GROUP_OFFSET => "clone_group_offset",
        SEND_MESSAGE_V2 => "send_message_v2",
        SEND_BATCH_MESSAGE => "send_batch_message",
        QUERY_TOPICS_BY_CONSUMER => "query_topics_by_consumer",
        QUERY_SUBSCRIPTION_BY_CONSUMER => "query_subscription_by_consumer",
        GET_TOPIC_CONFIG => "get_topic_config",
        GET_SUBSCRIPTIONGROUP_CONFIG => "get_subscriptiongroup_config",
        LITE_PULL_MESSAGE => "lite_pull_message",
        _ => return code.to_string().into(),
    };
    name.into()
}

/// RocketMQ's `RemotingHelper.getResponseCodeDesc`: the lower-case `ResponseCode` name, or the
/// number.
pub fn response_code_name(code: i32) -> std::borrow::Cow<'static, str> {
    use response::*;
    let name = match code {
        SUCCESS => "success",
        SYSTEM_ERROR => "system_error",
        SYSTEM_BUSY => "system_busy",
        REQUEST_CODE_NOT_SUPPORTED => "request_code_not_supported",
        FLUSH_DISK_TIMEOUT => "flush_disk_timeout",
        SLAVE_NOT_AVAILABLE => "slave_not_available",
        FLUSH_SLAVE_TIMEOUT => "flush_slave_timeout",
        MESSAGE_ILLEGAL => "message_illegal",
        SERVICE_NOT_AVAILABLE => "service_not_available",
        VERSION_NOT_SUPPORTED => "version_not_supported",
        NO_PERMISSION => "no_permission",
        TOPIC_NOT_EXIST => "topic_not_exist",
        TOPIC_EXIST_ALREADY => "topic_exist_already",
        PULL_NOT_FOUND => "pull_not_found",
        PULL_RETRY_IMMEDIATELY => "pull_retry_immediately",
        PULL_OFFSET_MOVED => "pull_offset_moved",
        QUERY_NOT_FOUND => "query_not_found",
        SUBSCRIPTION_PARSE_FAILED => "subscription_parse_failed",
        SUBSCRIPTION_NOT_EXIST => "subscription_not_exist",
        SUBSCRIPTION_NOT_LATEST => "subscription_not_latest",
        SUBSCRIPTION_GROUP_NOT_EXIST => "subscription_group_not_exist",
        INVALID_PARAMETER => "invalid_parameter",
        CONSUMER_NOT_ONLINE => "consumer_not_online",
        FLOW_CONTROL => "flow_control",
        _ => return code.to_string().into(),
    };
    name.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> Properties {
        let mut p = Properties::default();
        for (k, v) in pairs {
            p.insert(k, *v);
        }
        p
    }

    #[test]
    fn message_types_follow_rocketmq_rules() {
        assert_eq!(
            MessageType::of(&props(&[("TAGS", "a")])),
            MessageType::Normal
        );
        assert_eq!(
            MessageType::of(&props(&[(SHARDING_KEY, "k")])),
            MessageType::Fifo
        );
        assert_eq!(MessageType::of(&props(&[(DELAY, "3")])), MessageType::Delay);
        assert_eq!(
            MessageType::of(&props(&[(TIMER_DELIVER_MS, "1")])),
            MessageType::Delay
        );
        assert_eq!(
            MessageType::of(&props(&[(TRAN_MSG, "true"), (SHARDING_KEY, "k")])),
            MessageType::Transaction
        );
    }

    /// The value of the sample `name` whose labels include all of `labels`.
    fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        text.lines().find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, "}"));
            let set = rest.strip_suffix('}')?;
            let has = |(k, v): &(&str, &str)| set.split(',').any(|p| p == format!("{k}=\"{v}\""));
            (n == name && labels.iter().all(has)).then(|| value.parse().ok())?
        })
    }

    #[test]
    fn text_output_uses_rocketmq_names_and_labels() {
        let m = BrokerMetrics::new(true, "DefaultCluster", "broker-a");
        m.message_in("T", MessageType::Normal, 100);
        m.message_in("T", MessageType::Normal, 5000);
        m.message_in("T", MessageType::Delay, 10);
        m.messages_out("G", "T", 0, &[], 3);
        m.send_to_dlq("G", "T");
        m.transaction_ended("T", true);
        m.transaction_ended("T", false);
        m.rpc(
            request::SEND_MESSAGE_V2,
            response::SUCCESS,
            Duration::from_millis(2),
        );
        let text = encode(&m.registry.gather());
        let node = [
            ("cluster", "DefaultCluster"),
            ("node_type", "broker"),
            ("node_id", "broker-a"),
        ];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut l = node.to_vec();
            l.extend_from_slice(extra);
            l
        };
        let normal = with(&[
            ("topic", "T"),
            ("message_type", "Normal"),
            ("is_system", "false"),
        ]);
        let bucket = |le: &'static str| {
            let mut l = normal.clone();
            l.push(("le", le));
            sample(&text, "rocketmq_message_size_bucket", &l)
        };
        let rpc = |le: &'static str| {
            let l = with(&[
                ("protocol_type", "remoting"),
                ("request_code", "send_message_v2"),
                ("response_code", "success"),
                ("le", le),
            ]);
            sample(&text, "rocketmq_rpc_latency_bucket", &l)
        };
        let out = with(&[
            ("topic", "T"),
            ("consumer_group", "G"),
            ("is_retry", "false"),
        ]);
        let topic = with(&[("topic", "T")]);
        let checks = [
            (sample(&text, "rocketmq_messages_in_total", &normal), 2.0),
            (
                sample(
                    &text,
                    "rocketmq_messages_in_total",
                    &with(&[("topic", "T"), ("message_type", "Delay")]),
                ),
                1.0,
            ),
            (
                sample(&text, "rocketmq_throughput_in_total", &normal),
                5100.0,
            ),
            (bucket("1024"), 1.0),
            (bucket("4096"), 1.0),
            (bucket("524288"), 2.0),
            (bucket("4194304"), 2.0),
            (bucket("+Inf"), 2.0),
            (sample(&text, "rocketmq_message_size_count", &normal), 2.0),
            (sample(&text, "rocketmq_messages_out_total", &out), 0.0),
            (
                sample(
                    &text,
                    "rocketmq_send_to_dlq_messages_total",
                    &with(&[("topic", "T"), ("consumer_group", "G")]),
                ),
                1.0,
            ),
            (sample(&text, "rocketmq_commit_messages_total", &topic), 1.0),
            (
                sample(&text, "rocketmq_rollback_messages_total", &topic),
                1.0,
            ),
            (rpc("1"), 0.0),
            (rpc("3"), 1.0),
            (rpc("3000"), 1.0),
        ];
        for (i, (got, want)) in checks.iter().enumerate() {
            assert_eq!(*got, Some(*want), "check {i} in\n{text}");
        }
        for line in [
            "# TYPE rocketmq_message_size histogram",
            "# TYPE rocketmq_rpc_latency histogram",
            "# TYPE rocketmq_messages_in_total counter",
        ] {
            assert!(text.lines().any(|l| l == line), "no {line} in\n{text}");
        }
        #[cfg(target_os = "linux")]
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
        ] {
            assert!(sample(&text, name, &node).is_some(), "no {name} in\n{text}");
        }
    }

    #[test]
    fn disabled_metrics_count_nothing() {
        let m = BrokerMetrics::new(false, "c", "b");
        m.message_in("T", MessageType::Normal, 100);
        m.rpc(request::SEND_MESSAGE, response::SUCCESS, Duration::ZERO);
        assert!(!encode(&m.registry.gather()).contains("rocketmq_"));
    }

    #[test]
    fn body_length_is_read_from_the_stored_record() {
        let fields = record::RecordFields {
            queue_id: 0,
            flag: 0,
            queue_offset: 0,
            physical_offset: 0,
            sys_flag: 0,
            born_timestamp: 0,
            born_host: "127.0.0.1:1".parse().unwrap(),
            store_timestamp: 0,
            store_host: "[::1]:2".parse().unwrap(),
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            body: &[7u8; 321],
            topic: "T",
            properties: b"",
        };
        let mut buf = bytes::BytesMut::new();
        record::encode(&fields, &mut buf);
        assert_eq!(body_len(&buf), 321);
    }
}
