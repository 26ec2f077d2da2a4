//! `petrel bench timer`: the proof of the timer-message requirement. It loads N timer messages
//! (`TIMER_DELIVER_MS`), all due in a window that opens after the sending is done, as fast as
//! the client can with many sends in flight; measures the broker's anonymous memory before and
//! while they are all pending; then consumes the topic and measures, for every message, how late
//! it came: receive time − due time, and the broker's store timestamp of the delivered message −
//! due time (its own lateness). It counts duplicates, missing and early deliveries.
//!
//! Every body carries the run's id, the timer's index and its due time, so a message of another
//! run is counted apart and never taken for one of ours, and the due time is known even if a
//! broker dropped the property. The run stops by itself: once every timer sent has arrived (and
//! a short watch for duplicates), or a grace period after the last due time.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use petrel_client::{
    Credentials, Message, MessageExt, MessageQueue, Producer, PullConsumer, PullStatus,
    SerializeType,
};
use petrel_common::msg_id::now_ms;
use rand::Rng;

use super::{histogram, line, Cleanup};
use crate::progress;
use crate::standalone::{Standalone, StandaloneConfig};

/// How long the plain sends before the timers run: they create the topic, warm the route and
/// the broker, and give the send rate the automatic delay is computed from.
const WARMUP: Duration = Duration::from_secs(2);
/// The automatic delay allows this many times the send time the warm-up rate predicts...
const AUTO_DELAY_SAFETY: f64 = 2.0;
/// ...plus this much, so the window opens after the last send even on a loaded machine.
const AUTO_DELAY_MARGIN: Duration = Duration::from_secs(5);
/// After every timer has arrived, how long to keep consuming to catch duplicates.
const DUPLICATE_WATCH: Duration = Duration::from_secs(2);
/// How long a pull may wait at the broker for a message (long polling).
const PULL_LONG_POLL: Duration = Duration::from_secs(1);
/// Messages asked for per pull.
const PULL_BATCH_MESSAGES: i32 = 32;
/// Pause after a failed pull.
const PULL_ERROR_PAUSE: Duration = Duration::from_millis(200);
/// How long the name server may take to route the topic the warm-up created.
const ROUTE_TIMEOUT: Duration = Duration::from_secs(15);
/// How long after the last send the pending RSS is read (at the latest when the window opens).
const RSS_SETTLE: Duration = Duration::from_secs(1);
/// How often the delivery phase checks whether it is done and samples the broker's memory.
const DELIVERY_TICK: Duration = Duration::from_millis(100);
/// Lags are recorded in milliseconds up to an hour; a later one counts as an hour.
const MAX_LAG_MS: u64 = 3_600_000;
/// The body's header: `ptimer <run id, 16 hex> <index, 10 digits> <due ms, 13 digits>`.
pub const BODY_HEADER_BYTES: usize = 48;

/// Where the broker under test is.
pub enum TimerBroker {
    /// A running cluster; its broker's RSS is read from `/proc/<broker_pid>` when given.
    Namesrv {
        addr: String,
        broker_pid: Option<u32>,
    },
    /// A standalone started in this process on loopback ports, data in `data` (a fresh
    /// directory under the current one, removed afterwards, when `None`). Its RSS is this
    /// process's, so the client's own memory is in the difference too.
    InProcess { data: Option<PathBuf> },
}

pub struct TimerOptions {
    pub broker: TimerBroker,
    pub topic: String,
    /// The pull consumer's group.
    pub group: String,
    pub timers: usize,
    /// Due times are spread uniformly over this window...
    pub window: Duration,
    /// ...which opens this long after the first send; `None` picks it from the warm-up's send
    /// rate so that sending is over first.
    pub delay: Option<Duration>,
    /// Sends in flight at once.
    pub in_flight: usize,
    /// Body size in bytes; at least [`BODY_HEADER_BYTES`].
    pub message_bytes: usize,
    pub report_interval: Duration,
    /// How long after the last due time to wait for timers that have not arrived.
    pub grace: Duration,
    /// The ACL account every request is signed with.
    pub credentials: Option<Credentials>,
}

/// What a run measured (also printed).
#[derive(Debug, Clone)]
pub struct TimerReport {
    pub timers: usize,
    pub delay: Duration,
    pub window: Duration,
    pub sent: u64,
    pub failed_sends: u64,
    /// Sends acknowledged only after their timer's due time (the window opened too early).
    pub sent_after_due: u64,
    pub send_secs: f64,
    pub send_latency_us: Histogram<u64>,
    pub rss_anon_before: Option<u64>,
    pub rss_anon_pending: Option<u64>,
    pub rss_anon_peak: Option<u64>,
    pub deliveries: Deliveries,
    /// Timers sent and acknowledged that never arrived.
    pub missing: u64,
}

/// Runs `bench timer` against `opts.broker`: warm-up, load, memory, deliveries, report.
pub async fn timer(opts: TimerOptions) -> anyhow::Result<TimerReport> {
    let (namesrv, rss_pid, standalone, _cleanup) = match &opts.broker {
        TimerBroker::Namesrv { addr, broker_pid } => (addr.clone(), *broker_pid, None, None),
        TimerBroker::InProcess { data } => {
            let (dir, cleanup) = match data {
                Some(d) => (d.clone(), Cleanup(Vec::new())),
                None => {
                    let d = std::env::current_dir()?
                        .join(format!("petrel-bench-timer.{}", std::process::id()));
                    (d.clone(), Cleanup(vec![d]))
                }
            };
            let mut config = StandaloneConfig::new(&dir);
            config.namesrv_listen = "127.0.0.1:0".parse().expect("static address");
            config.broker_listen = "127.0.0.1:0".parse().expect("static address");
            let standalone = Standalone::start(config).await?;
            println!(
                "bench timer: broker in this process, data in {} (RSS is this process's)",
                dir.display()
            );
            (
                standalone.namesrv_addr().to_string(),
                Some(std::process::id()),
                Some(standalone),
                Some(cleanup),
            )
        }
    };
    let result = run(&opts, &namesrv, rss_pid).await;
    if let Some(s) = standalone {
        s.shutdown().await;
    }
    result
}

async fn run(
    opts: &TimerOptions,
    namesrv: &str,
    rss_pid: Option<u32>,
) -> anyhow::Result<TimerReport> {
    let n = opts.timers;
    anyhow::ensure!(
        n > 0 && n <= u32::MAX as usize,
        "--timers must be between 1 and {}",
        u32::MAX
    );
    let in_flight = opts.in_flight.max(1);
    let config = crate::tools::client_config(namesrv, opts.credentials.clone())
        .with_instance_name("petrel-bench-timer")
        .with_serialize_type(SerializeType::RocketMq);
    let producer = Arc::new(Producer::new("petrel_bench_timer_producer", config.clone()));
    producer
        .start()
        .await
        .context("cannot start the producer")?;
    let consumer = Arc::new(PullConsumer::new(&opts.group, config));
    consumer
        .start()
        .await
        .context("cannot start the pull consumer")?;

    let warm_tps = warm_up(&producer, &opts.topic, opts.message_bytes, in_flight).await?;
    let delay = opts.delay.unwrap_or_else(|| auto_delay(n, warm_tps));
    // Timer messages enter the topic's queues only when they are delivered, so everything from
    // the queues' ends now on is this run's (or another client's, told apart by the body).
    let queues = route_queues(&consumer, &opts.topic).await?;
    let mut start_offsets = Vec::with_capacity(queues.len());
    for mq in &queues {
        start_offsets.push(consumer.max_offset(mq).await.context("max offset")?);
    }

    // Everything the run tracks is allocated before the baseline, so it is not counted as the
    // broker's when the broker runs in this process.
    let window_ms = (opts.window.as_millis() as u64).min(u32::MAX as u64) as u32;
    let due_offsets: Arc<Vec<u32>> = Arc::new({
        let mut rng = rand::rng();
        (0..n).map(|_| rng.random_range(0..=window_ms)).collect()
    });
    let mut due_sorted = due_offsets.to_vec();
    due_sorted.sort_unstable();
    let acked: Arc<Vec<AtomicBool>> = Arc::new((0..n).map(|_| AtomicBool::new(false)).collect());
    let run_id: u64 = rand::random();
    let deliveries = Arc::new(Mutex::new(Deliveries::new(run_id, n)));

    println!(
        "bench timer: topic {} timers {} window {:?} delay {:?}{} in flight {} size {} B \
         (warm-up: {:.0} sends/s)",
        opts.topic,
        n,
        opts.window,
        delay,
        if opts.delay.is_none() { " (auto)" } else { "" },
        in_flight,
        opts.message_bytes.max(BODY_HEADER_BYTES),
        warm_tps
    );
    let rss_before = rss_pid.and_then(rss_anon_bytes);

    // (a) Load the timers.
    let t0 = now_ms() as i64;
    let first_due = t0 + delay.as_millis() as i64;
    let next = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let after_due = Arc::new(AtomicU64::new(0));
    let interval_hist = Arc::new(Mutex::new(histogram()));
    let total_hist = Arc::new(Mutex::new(histogram()));
    let started = Instant::now();
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..in_flight {
        let (producer, topic, next, due_offsets, acked) = (
            producer.clone(),
            opts.topic.clone(),
            next.clone(),
            due_offsets.clone(),
            acked.clone(),
        );
        let (ih, th, failures, after_due) = (
            interval_hist.clone(),
            total_hist.clone(),
            failures.clone(),
            after_due.clone(),
        );
        let size = opts.message_bytes;
        senders.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= due_offsets.len() {
                    break;
                }
                let due = first_due + i64::from(due_offsets[i]);
                let msg = Message::new(&topic, encode_body(run_id, i as u32, due, size))
                    .with_deliver_at_ms(due);
                let t = Instant::now();
                match producer.send(msg).await {
                    Ok(_) => {
                        let us = (t.elapsed().as_micros() as u64).max(1);
                        let _ = ih.lock().record(us);
                        let _ = th.lock().record(us);
                        acked[i].store(true, Ordering::Relaxed);
                        if now_ms() as i64 > due {
                            after_due.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(e) => {
                        if failures.fetch_add(1, Ordering::Relaxed) < 5 {
                            eprintln!("send failed: {e}");
                        }
                    }
                }
            }
        });
    }
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + opts.report_interval,
        opts.report_interval,
    );
    let mut last = Instant::now();
    let mut failures_reported = 0;
    let bar = progress::steps(n as u64, "bench timer: sending");
    loop {
        tokio::select! {
            joined = senders.join_next() => match joined {
                Some(r) => r.context("a sender panicked")?,
                None => break,
            },
            _ = tick.tick() => {
                let snapshot = std::mem::replace(&mut *interval_hist.lock(), histogram());
                let secs = last.elapsed().as_secs_f64();
                last = Instant::now();
                let failed = failures.load(Ordering::Relaxed);
                let acked = total_hist.lock().len();
                bar.set_position(acked);
                progress::println(
                    &bar,
                    format_args!("send {}/{}  {}", acked, n, line(&snapshot, 1, secs, failed - failures_reported)),
                );
                failures_reported = failed;
            }
        }
    }
    bar.finish_and_clear();
    let send_secs = started.elapsed().as_secs_f64();
    let sent_at = now_ms() as i64;
    // (b) Every timer is pending now (unless the window opened during the sends). A broker may
    // file them behind the appends, as it builds the index: give it a moment, never past the
    // window's opening.
    let settle_ms = (first_due - sent_at).clamp(0, RSS_SETTLE.as_millis() as i64);
    tokio::time::sleep(Duration::from_millis(settle_ms as u64)).await;
    let rss_pending = rss_pid.and_then(rss_anon_bytes);
    let send_latency_us = total_hist.lock().clone();
    let sent = send_latency_us.len();
    let failed_sends = failures.load(Ordering::Relaxed);
    println!(
        "sent: {}",
        line(&send_latency_us, 1, send_secs, failed_sends)
    );
    if sent_at > first_due {
        println!(
            "warning: sending ended {} ms after the window opened; {} timers were acknowledged \
             after their due time, and their receive lag includes the send. Give a longer --delay.",
            sent_at - first_due,
            after_due.load(Ordering::Relaxed)
        );
    }

    // (c) Consume.
    let mut pullers = Vec::with_capacity(queues.len());
    for (mq, offset) in queues.into_iter().zip(start_offsets) {
        pullers.push(tokio::spawn(pull_queue(
            consumer.clone(),
            mq,
            offset,
            deliveries.clone(),
        )));
    }
    let last_due = first_due + i64::from(*due_sorted.last().expect("at least one timer"));
    let deadline_ms = last_due + opts.grace.as_millis() as i64;
    let mut rss_peak = rss_pending;
    let mut all_in_since: Option<Instant> = None;
    let mut last_report = Instant::now();
    let bar = progress::steps(sent, "bench timer: receiving");
    loop {
        tokio::time::sleep(DELIVERY_TICK).await;
        if let Some(rss) = rss_pid.and_then(rss_anon_bytes) {
            rss_peak = Some(rss_peak.map_or(rss, |p| p.max(rss)));
        }
        let now = now_ms() as i64;
        let received = deliveries.lock().received;
        bar.set_position(received);
        if all_in_since.is_none()
            && received >= sent
            && count_missing(&acked, &deliveries.lock()) == 0
        {
            all_in_since = Some(Instant::now());
        }
        if last_report.elapsed() >= opts.report_interval {
            last_report = Instant::now();
            let due_now = due_sorted.partition_point(|&o| first_due + i64::from(o) <= now);
            let mut d = deliveries.lock();
            let (recv, store) = d.take_interval();
            let report = format!(
                "received {}/{} (due so far {})  receive lag p50 {} ms p99 {} ms max {} ms  \
                 store lag p50 {} ms p99 {} ms max {} ms  duplicates {} early {}",
                d.received,
                sent,
                due_now,
                recv.value_at_quantile(0.5),
                recv.value_at_quantile(0.99),
                recv.max(),
                store.value_at_quantile(0.5),
                store.value_at_quantile(0.99),
                store.max(),
                d.duplicates,
                d.early
            );
            progress::println(&bar, report);
        }
        if all_in_since.is_some_and(|t| t.elapsed() >= DUPLICATE_WATCH) || now > deadline_ms {
            break;
        }
    }
    bar.finish_and_clear();
    for p in &pullers {
        p.abort();
    }
    let deliveries = deliveries.lock().clone();
    let missing = count_missing(&acked, &deliveries);
    producer.shutdown().await;
    consumer.shutdown().await;

    let report = TimerReport {
        timers: n,
        delay,
        window: opts.window,
        sent,
        failed_sends,
        sent_after_due: after_due.load(Ordering::Relaxed),
        send_secs,
        send_latency_us,
        rss_anon_before: rss_before,
        rss_anon_pending: rss_pending,
        rss_anon_peak: rss_peak,
        deliveries,
        missing,
    };
    // (d) Summary.
    println!("summary: {}", report.summary());
    println!("{}", TimerReport::TABLE_HEADER);
    println!("{}", TimerReport::TABLE_RULE);
    println!("{}", report.table_row());
    Ok(report)
}

/// Plain sends from `in_flight` senders for [`WARMUP`]; their rate.
async fn warm_up(
    producer: &Arc<Producer>,
    topic: &str,
    message_bytes: usize,
    in_flight: usize,
) -> anyhow::Result<f64> {
    // One first: creates the topic.
    producer
        .send(Message::new(topic, "petrel bench timer warm-up"))
        .await
        .context("the warm-up send failed")?;
    let body = bytes::Bytes::from(vec![b'w'; message_bytes.max(BODY_HEADER_BYTES)]);
    let sent = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(in_flight);
    for _ in 0..in_flight {
        let (producer, topic, body, sent) = (
            producer.clone(),
            topic.to_owned(),
            body.clone(),
            sent.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while started.elapsed() < WARMUP {
                if producer
                    .send(Message::new(&topic, body.clone()))
                    .await
                    .is_ok()
                {
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        t.await.context("a warm-up sender panicked")?;
    }
    Ok(sent.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// A delay that lets `timers` sends at `tps` finish before the window opens.
fn auto_delay(timers: usize, tps: f64) -> Duration {
    let predicted = timers as f64 / tps.max(1.0);
    Duration::from_millis((predicted * AUTO_DELAY_SAFETY * 1000.0).ceil() as u64)
        + AUTO_DELAY_MARGIN
}

/// The topic's readable queues, once the name server routes it.
async fn route_queues(consumer: &PullConsumer, topic: &str) -> anyhow::Result<Vec<MessageQueue>> {
    let deadline = Instant::now() + ROUTE_TIMEOUT;
    loop {
        match consumer.fetch_queues(topic).await {
            Ok(q) if !q.is_empty() => return Ok(q),
            other if Instant::now() >= deadline => {
                anyhow::bail!("no route for {topic} within {ROUTE_TIMEOUT:?}: {other:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Pulls `mq` from `offset` on, long polling, until aborted.
async fn pull_queue(
    consumer: Arc<PullConsumer>,
    mq: MessageQueue,
    mut offset: i64,
    deliveries: Arc<Mutex<Deliveries>>,
) {
    let mut errors = 0u64;
    loop {
        match consumer
            .pull_with(&mq, "*", offset, PULL_BATCH_MESSAGES, PULL_LONG_POLL)
            .await
        {
            Ok(r) => {
                let received_ms = now_ms() as i64;
                if let PullStatus::Found(msgs) = &r.status {
                    let mut d = deliveries.lock();
                    for m in msgs {
                        d.record(m, received_ms);
                    }
                }
                offset = r.next_begin_offset;
            }
            Err(e) => {
                errors += 1;
                if errors <= 5 {
                    eprintln!("pull of queue {} failed: {e}", mq.queue_id);
                }
                tokio::time::sleep(PULL_ERROR_PAUSE).await;
            }
        }
    }
}

fn count_missing(acked: &[AtomicBool], d: &Deliveries) -> u64 {
    acked
        .iter()
        .zip(&d.times_received)
        .filter(|(a, &times)| a.load(Ordering::Relaxed) && times == 0)
        .count() as u64
}

/// `ptimer <run id> <index> <due ms>`, padded with `.` to `size` bytes.
pub fn encode_body(run_id: u64, index: u32, due_ms: i64, size: usize) -> bytes::Bytes {
    let mut body = format!("ptimer {run_id:016x} {index:010} {due_ms:013}").into_bytes();
    debug_assert_eq!(body.len(), BODY_HEADER_BYTES);
    body.resize(size.max(BODY_HEADER_BYTES), b'.');
    body.into()
}

/// The run id, index and due time of a body [`encode_body`] made.
pub fn decode_body(body: &[u8]) -> Option<(u64, u32, i64)> {
    let header = std::str::from_utf8(body.get(..BODY_HEADER_BYTES)?).ok()?;
    let mut fields = header.strip_prefix("ptimer ")?.split(' ');
    let run_id = u64::from_str_radix(fields.next()?, 16).ok()?;
    let index = fields.next()?.parse().ok()?;
    let due = fields.next()?.parse().ok()?;
    Some((run_id, index, due))
}

/// What the consumer saw.
#[derive(Debug, Clone)]
pub struct Deliveries {
    run_id: u64,
    /// Per timer index, how many times it arrived (saturating).
    times_received: Vec<u8>,
    /// Distinct timers received.
    pub received: u64,
    /// Arrivals of a timer already received.
    pub duplicates: u64,
    /// Messages of another run or client.
    pub foreign: u64,
    /// Timers delivered before their due time: stored or received earlier than it.
    pub early: u64,
    /// Delivered without `TIMER_DELIVER_MS` (the body's due time was used).
    pub without_property: u64,
    /// Delivered with a `TIMER_DELIVER_MS` other than the one sent (the property was used).
    pub property_changed: u64,
    /// Most negative lags seen (0 when none was early).
    pub min_receive_lag_ms: i64,
    pub min_store_lag_ms: i64,
    /// Receive time − due time, ms, first arrivals only (early ones as 0).
    pub receive_lag_ms: Histogram<u64>,
    /// Store timestamp of the delivered message − due time, ms.
    pub store_lag_ms: Histogram<u64>,
    interval_receive: Histogram<u64>,
    interval_store: Histogram<u64>,
}

fn lag_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LAG_MS, 3).expect("static histogram bounds")
}

impl Deliveries {
    pub fn new(run_id: u64, timers: usize) -> Self {
        Deliveries {
            run_id,
            times_received: vec![0; timers],
            received: 0,
            duplicates: 0,
            foreign: 0,
            early: 0,
            without_property: 0,
            property_changed: 0,
            min_receive_lag_ms: 0,
            min_store_lag_ms: 0,
            receive_lag_ms: lag_histogram(),
            store_lag_ms: lag_histogram(),
            interval_receive: lag_histogram(),
            interval_store: lag_histogram(),
        }
    }

    pub fn record(&mut self, m: &MessageExt, received_ms: i64) {
        let Some((run_id, index, body_due)) = decode_body(&m.body) else {
            self.foreign += 1;
            return;
        };
        let Some(times) = self
            .times_received
            .get_mut(index as usize)
            .filter(|_| run_id == self.run_id)
        else {
            self.foreign += 1;
            return;
        };
        *times = times.saturating_add(1);
        if *times > 1 {
            self.duplicates += 1;
            return;
        }
        self.received += 1;
        let due = match m.deliver_at_ms() {
            Some(due) => {
                if due != body_due {
                    self.property_changed += 1;
                }
                due
            }
            None => {
                self.without_property += 1;
                body_due
            }
        };
        let receive_lag = received_ms - due;
        let store_lag = m.store_timestamp - due;
        if receive_lag < 0 || store_lag < 0 {
            self.early += 1;
        }
        self.min_receive_lag_ms = self.min_receive_lag_ms.min(receive_lag);
        self.min_store_lag_ms = self.min_store_lag_ms.min(store_lag);
        for (h, lag) in [
            (&mut self.receive_lag_ms, receive_lag),
            (&mut self.interval_receive, receive_lag),
            (&mut self.store_lag_ms, store_lag),
            (&mut self.interval_store, store_lag),
        ] {
            h.saturating_record((lag.max(0) as u64).min(MAX_LAG_MS));
        }
    }

    /// The lags since the last call: (receive, store).
    fn take_interval(&mut self) -> (Histogram<u64>, Histogram<u64>) {
        (
            std::mem::replace(&mut self.interval_receive, lag_histogram()),
            std::mem::replace(&mut self.interval_store, lag_histogram()),
        )
    }
}

impl TimerReport {
    pub const TABLE_HEADER: &'static str =
        "| timers | window s | delay s | sent/s | send p99 ms | \
        failed sends | RssAnon before MiB | RssAnon pending MiB | extra MiB | extra B per timer | \
        received | duplicates | missing | early | receive lag p50 / p99 / max ms | \
        store lag p50 / p99 / max ms |";
    pub const TABLE_RULE: &'static str =
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|";

    pub fn send_tps(&self) -> f64 {
        self.sent as f64 / self.send_secs.max(1e-9)
    }

    /// RssAnon while every timer is pending minus before the sends, bytes.
    pub fn extra_rss_anon(&self) -> Option<i64> {
        Some(self.rss_anon_pending? as i64 - self.rss_anon_before? as i64)
    }

    pub fn summary(&self) -> String {
        let d = &self.deliveries;
        let rss = match (
            self.extra_rss_anon(),
            self.rss_anon_before,
            self.rss_anon_pending,
        ) {
            (Some(extra), Some(before), Some(pending)) => format!(
                "extra RssAnon {:+.1} MiB ({:.1} → {:.1} MiB, peak {:.1} MiB while delivering)",
                mib(extra),
                mib(before as i64),
                mib(pending as i64),
                mib(self.rss_anon_peak.unwrap_or(pending) as i64)
            ),
            _ => "RssAnon not measured (give --broker-pid)".to_owned(),
        };
        let mut s = format!(
            "{} timers sent in {:.2} s ({:.0}/s, {} failed), {rss}; received {}/{}, {} duplicates, \
             {} missing, {} early; receive lag p50 {} ms p99 {} ms max {} ms; \
             store lag p50 {} ms p99 {} ms max {} ms",
            self.sent,
            self.send_secs,
            self.send_tps(),
            self.failed_sends,
            d.received,
            self.sent,
            d.duplicates,
            self.missing,
            d.early,
            d.receive_lag_ms.value_at_quantile(0.5),
            d.receive_lag_ms.value_at_quantile(0.99),
            d.receive_lag_ms.max(),
            d.store_lag_ms.value_at_quantile(0.5),
            d.store_lag_ms.value_at_quantile(0.99),
            d.store_lag_ms.max(),
        );
        if d.early > 0 {
            s += &format!(
                " (earliest: received {} ms, stored {} ms before due)",
                -d.min_receive_lag_ms, -d.min_store_lag_ms
            );
        }
        if self.sent_after_due > 0 {
            s += &format!(
                "; {} acknowledged after their due time",
                self.sent_after_due
            );
        }
        if d.foreign > 0 {
            s += &format!("; {} messages of other runs ignored", d.foreign);
        }
        if d.without_property > 0 || d.property_changed > 0 {
            s += &format!(
                "; {} delivered without TIMER_DELIVER_MS, {} with it changed",
                d.without_property, d.property_changed
            );
        }
        s
    }

    pub fn table_row(&self) -> String {
        let d = &self.deliveries;
        let opt_mib =
            |b: Option<u64>| b.map_or("n/a".to_owned(), |b| format!("{:.1}", mib(b as i64)));
        let (extra, per_timer) = match self.extra_rss_anon() {
            Some(e) => (
                format!("{:+.1}", mib(e)),
                format!("{:.1}", e as f64 / self.sent.max(1) as f64),
            ),
            None => ("n/a".to_owned(), "n/a".to_owned()),
        };
        format!(
            "| {} | {:.0} | {:.1} | {:.0} | {:.3} | {} | {} | {} | {extra} | {per_timer} | {} | {} | \
             {} | {} | {} / {} / {} | {} / {} / {} |",
            self.timers,
            self.window.as_secs_f64(),
            self.delay.as_secs_f64(),
            self.send_tps(),
            self.send_latency_us.value_at_quantile(0.99) as f64 / 1000.0,
            self.failed_sends,
            opt_mib(self.rss_anon_before),
            opt_mib(self.rss_anon_pending),
            d.received,
            d.duplicates,
            self.missing,
            d.early,
            d.receive_lag_ms.value_at_quantile(0.5),
            d.receive_lag_ms.value_at_quantile(0.99),
            d.receive_lag_ms.max(),
            d.store_lag_ms.value_at_quantile(0.5),
            d.store_lag_ms.value_at_quantile(0.99),
            d.store_lag_ms.max(),
        )
    }
}

fn mib(bytes: i64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// `RssAnon` of a process, bytes (Linux `/proc/<pid>/status`).
fn rss_anon_bytes(pid: u32) -> Option<u64> {
    parse_rss_anon(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

fn parse_rss_anon(status: &str) -> Option<u64> {
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivered(
        body: bytes::Bytes,
        due_property: Option<i64>,
        store_timestamp: i64,
    ) -> MessageExt {
        let mut props = petrel_common::properties::Properties::new();
        if let Some(due) = due_property {
            props.insert(petrel_common::properties::TIMER_DELIVER_MS, due.to_string());
        }
        let addr = "127.0.0.1:10911".parse().unwrap();
        MessageExt {
            topic: "T".to_owned(),
            body,
            flag: 0,
            properties: props,
            queue_id: 0,
            queue_offset: 0,
            commit_log_offset: 0,
            sys_flag: 0,
            body_crc: 0,
            born_timestamp: 0,
            born_host: addr,
            store_timestamp,
            store_host: addr,
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            offset_msg_id: String::new(),
        }
    }

    #[test]
    fn bodies_carry_run_index_and_due_time() {
        let b = encode_body(0xABCD, 123_456, 1_767_225_600_000, 128);
        assert_eq!(b.len(), 128);
        assert_eq!(decode_body(&b), Some((0xABCD, 123_456, 1_767_225_600_000)));
        let short = encode_body(u64::MAX, u32::MAX, 9_999_999_999_999, 0);
        assert_eq!(short.len(), BODY_HEADER_BYTES);
        assert_eq!(
            decode_body(&short),
            Some((u64::MAX, u32::MAX, 9_999_999_999_999))
        );
        assert_eq!(decode_body(b"petrel bench timer warm-up"), None);
        assert_eq!(decode_body(&[b'w'; 64]), None);
    }

    #[test]
    fn deliveries_count_lag_duplicates_early_and_strangers() {
        let mut d = Deliveries::new(7, 3);
        let due = 1_000_000;
        d.record(
            &delivered(encode_body(7, 0, due, 64), Some(due), due + 40),
            due + 45,
        );
        d.record(
            &delivered(encode_body(7, 0, due, 64), Some(due), due + 40),
            due + 900,
        );
        d.record(
            &delivered(encode_body(7, 1, due, 64), None, due - 5),
            due + 1,
        );
        d.record(&delivered(encode_body(8, 2, due, 64), Some(due), due), due);
        d.record(&delivered(encode_body(7, 9, due, 64), Some(due), due), due);
        d.record(&delivered(bytes::Bytes::from_static(b"x"), None, 0), 0);
        assert_eq!(d.received, 2);
        assert_eq!(d.duplicates, 1);
        assert_eq!(d.foreign, 3);
        assert_eq!(d.early, 1);
        assert_eq!(d.without_property, 1);
        assert_eq!(d.min_store_lag_ms, -5);
        assert_eq!(d.min_receive_lag_ms, 0);
        assert_eq!(d.receive_lag_ms.len(), 2);
        assert_eq!(d.receive_lag_ms.max(), 45);
        assert_eq!(d.store_lag_ms.max(), 40);
        assert_eq!(d.times_received, vec![2, 1, 0]);
        let acked: Vec<AtomicBool> = [true, true, true].map(AtomicBool::new).into();
        assert_eq!(count_missing(&acked, &d), 1);
    }

    #[test]
    fn a_changed_due_property_is_the_one_measured() {
        let mut d = Deliveries::new(1, 1);
        d.record(
            &delivered(encode_body(1, 0, 1_000, 64), Some(2_000), 2_010),
            2_020,
        );
        assert_eq!(d.property_changed, 1);
        assert_eq!(d.receive_lag_ms.max(), 20);
    }

    #[test]
    fn the_automatic_delay_leaves_room_for_the_sends() {
        assert_eq!(auto_delay(1_000_000, 50_000.0), Duration::from_secs(45));
        assert_eq!(auto_delay(20_000, 40_000.0), Duration::from_secs(6));
        assert_eq!(auto_delay(10, 0.0), Duration::from_secs(25));
    }

    #[test]
    fn rss_anon_is_read_from_proc_status() {
        let status =
            "Name:\tpetrel\nVmRSS:\t  204800 kB\nRssAnon:\t   10240 kB\nRssFile:\t 194560 kB\n";
        assert_eq!(parse_rss_anon(status), Some(10 * 1024 * 1024));
        assert_eq!(parse_rss_anon("VmRSS: 1 kB\n"), None);
        assert!(rss_anon_bytes(std::process::id()).is_some_and(|b| b > 0));
    }
}
