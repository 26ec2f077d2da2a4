//! `petrel bench`: throughput and latency of a running Petrel (or any RocketMQ broker), in the
//! spirit of RocketMQ's benchmark tool. Sync sends from many concurrent senders sharing one
//! producer (as the Java benchmark's threads share one producer), a report every few seconds
//! and a summary. With `--broker-pid` it also reports the broker's CPU time per message.
//! `bench consume` drains a backlog, optionally failing a share of messages into the retry
//! topic; `bench store` drives the message store in process, against the raw disk under it;
//! `bench timer` ([`timer`]) loads timer messages and measures how late they are delivered.

pub mod timer;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use petrel_client::{
    ConsumeFromWhere, ConsumeStatus, Credentials, Message, MessageExt, Producer, PushConsumer,
    SerializeType,
};

use crate::progress;

pub struct ProduceOptions {
    pub namesrv: String,
    pub topic: String,
    pub threads: usize,
    pub message_bytes: usize,
    /// Messages per send call; above 1 each call is one SEND_BATCH_MESSAGE.
    pub batch: usize,
    /// Above 1: the sends go round robin over this many topics, `<topic>_000000`…, created
    /// first (each with `queues` queues on every master of the cluster `cluster`).
    pub topics: usize,
    pub queues: i32,
    pub cluster: String,
    pub duration: Duration,
    pub report_interval: Duration,
    /// ROCKETMQ binary headers, as the official benchmark sends them.
    pub binary_headers: bool,
    pub broker_pid: Option<u32>,
    /// The ACL account every request is signed with.
    pub credentials: Option<Credentials>,
    pub expect: Expectations,
}

/// What a run must reach, or the command fails (exits non-zero) after printing its summary:
/// one command checks a change for a regression (`--min-tps`, `--max-cpu-us`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Expectations {
    /// Messages per second at least (sends, or for `consume` the drain rate).
    pub min_tps: Option<f64>,
    /// Broker CPU per message at most, in µs (needs `--broker-pid`).
    pub max_cpu_us: Option<f64>,
}

impl Expectations {
    /// `Err` naming each expectation the run missed.
    fn check(&self, what: &str, tps: f64, cpu_us: Option<f64>) -> anyhow::Result<()> {
        let mut missed = Vec::new();
        if let Some(min) = self.min_tps {
            if tps < min {
                missed.push(format!("{tps:.0} msg/s is below --min-tps {min}"));
            }
        }
        if let Some(max) = self.max_cpu_us {
            match cpu_us {
                Some(cpu) if cpu > max => missed.push(format!(
                    "{cpu:.2} µs of broker CPU per message is above --max-cpu-us {max}"
                )),
                Some(_) => {}
                None => missed
                    .push("--max-cpu-us needs the broker's CPU time: give --broker-pid".to_owned()),
            }
        }
        if missed.is_empty() {
            Ok(())
        } else {
            anyhow::bail!("{what}: {}", missed.join("; "))
        }
    }
}

/// The broker's CPU per message between two readings of its CPU time, printed.
fn broker_cpu_per_message(
    start: Option<Duration>,
    end: Option<Duration>,
    elapsed: f64,
    messages: u64,
) -> Option<f64> {
    let cpu = end?.saturating_sub(start?).as_secs_f64();
    let per_message = cpu * 1e6 / messages.max(1) as f64;
    println!(
        "broker CPU: {:.2} s over {:.1} s ({:.0}% of one core), {:.2} µs per message",
        cpu,
        elapsed,
        cpu / elapsed * 100.0,
        per_message
    );
    Some(per_message)
}

/// Latencies in microseconds, 1 µs to 60 s.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("static histogram bounds")
}

pub async fn produce(opts: ProduceOptions) -> anyhow::Result<()> {
    let mut config = crate::tools::client_config(&opts.namesrv, opts.credentials.clone())
        .with_instance_name("petrel-bench");
    if opts.binary_headers {
        config = config.with_serialize_type(SerializeType::RocketMq);
    }
    let producer = Arc::new(Producer::new("petrel_bench_producer", config));
    producer
        .start()
        .await
        .context("cannot start the producer")?;
    let topics: Arc<Vec<String>> = Arc::new(if opts.topics > 1 {
        let names: Vec<String> = (0..opts.topics)
            .map(|i| format!("{}_{i:06}", opts.topic))
            .collect();
        create_topics(&opts, &names).await?;
        names
    } else {
        vec![opts.topic.clone()]
    });
    // One send to each topic first: creates it (with one topic) and warms its route.
    let warmed = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let mut warmers = Vec::new();
    for _ in 0..opts.threads.clamp(1, 64) {
        let (producer, topics, next) = (producer.clone(), topics.clone(), next.clone());
        let body = vec![b'w'; opts.message_bytes];
        warmers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(topic) = topics.get(i) else {
                    return anyhow::Ok(());
                };
                producer
                    .send(Message::new(topic, body.clone()))
                    .await
                    .with_context(|| format!("the warm-up send to {topic} failed"))?;
            }
        }));
    }
    for w in warmers {
        w.await??;
    }
    if topics.len() > 1 {
        println!(
            "warm-up: one send to each of {} topics in {:.1} s",
            topics.len(),
            warmed.elapsed().as_secs_f64()
        );
    }

    let interval_hist = Arc::new(Mutex::new(histogram()));
    let total_hist = Arc::new(Mutex::new(histogram()));
    let failures = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let body = bytes::Bytes::from(vec![b'x'; opts.message_bytes]);
    let batch = opts.batch.max(1);

    println!(
        "bench produce: topic {} ({} topics) threads {} size {} B batch {} headers {} duration {:?}",
        opts.topic,
        topics.len(),
        opts.threads,
        opts.message_bytes,
        batch,
        if opts.binary_headers {
            "ROCKETMQ"
        } else {
            "JSON"
        },
        opts.duration
    );
    let cpu_start = opts.broker_pid.and_then(process_cpu_time);
    let started = Instant::now();
    let mut senders = Vec::new();
    let opts_threads = opts.threads.max(1);
    for sender in 0..opts.threads {
        let producer = producer.clone();
        let topics = topics.clone();
        let body = body.clone();
        let (ih, th, failures, stop) = (
            interval_hist.clone(),
            total_hist.clone(),
            failures.clone(),
            stop.clone(),
        );
        senders.push(tokio::spawn(async move {
            // Each sender walks the topics from its own start.
            let mut n = sender * topics.len() / opts_threads;
            while !stop.load(Ordering::Relaxed) {
                let topic = &topics[n % topics.len()];
                n += 1;
                let t = Instant::now();
                let sent = if batch == 1 {
                    producer.send(Message::new(topic, body.clone())).await
                } else {
                    let msgs = (0..batch)
                        .map(|_| Message::new(topic, body.clone()))
                        .collect();
                    producer.send_batch(msgs).await
                };
                match sent {
                    Ok(_) => {
                        let us = (t.elapsed().as_micros() as u64).max(1);
                        let _ = ih.lock().record(us);
                        let _ = th.lock().record(us);
                    }
                    Err(e) => {
                        if failures.fetch_add(1, Ordering::Relaxed) < 5 {
                            eprintln!("send failed: {e}");
                        }
                    }
                }
            }
        }));
    }
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + opts.report_interval,
        opts.report_interval,
    );
    let mut last = Instant::now();
    let bar = progress::timed(opts.duration, "bench produce");
    while started.elapsed() < opts.duration {
        tick.tick().await;
        let snapshot = std::mem::replace(&mut *interval_hist.lock(), histogram());
        let secs = last.elapsed().as_secs_f64();
        last = Instant::now();
        progress::set_elapsed(&bar, started.elapsed());
        progress::println(
            &bar,
            line(&snapshot, batch, secs, failures.swap(0, Ordering::Relaxed)),
        );
    }
    bar.finish_and_clear();
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        let _ = s.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_end = opts.broker_pid.and_then(process_cpu_time);
    let total = total_hist.lock().clone();
    println!("summary: {}", line(&total, batch, elapsed, 0));
    let messages = total.len() * batch as u64;
    let cpu_us = broker_cpu_per_message(cpu_start, cpu_end, elapsed, messages);
    producer.shutdown().await;
    opts.expect
        .check("bench produce", messages as f64 / elapsed, cpu_us)
}

/// Creates `names` on every master of `opts.cluster`, 64 requests in flight, and reports how
/// long that took and how the broker told the name server (each creation is routed when it
/// is answered).
async fn create_topics(opts: &ProduceOptions, names: &[String]) -> anyhow::Result<()> {
    let config = crate::tools::client_config(&opts.namesrv, opts.credentials.clone())
        .with_instance_name("petrel-bench-admin");
    let admin = Arc::new(petrel_client::admin::Admin::new(config));
    admin.instance().start()?;
    let info = admin.cluster_info().await.context("no cluster info")?;
    let masters: Vec<String> = info
        .cluster_addr_table
        .get(&opts.cluster)
        .with_context(|| format!("no cluster {}", opts.cluster))?
        .iter()
        .filter_map(|name| info.broker_addr_table.get(name)?.master_addr())
        .map(str::to_owned)
        .collect();
    anyhow::ensure!(
        !masters.is_empty(),
        "cluster {} has no master",
        opts.cluster
    );
    let started = Instant::now();
    let bar = progress::steps(names.len() as u64, "creating topics");
    let next = Arc::new(AtomicU64::new(0));
    let names = Arc::new(names.to_vec());
    let mut creators = Vec::new();
    for _ in 0..64 {
        let (admin, names, next, masters) =
            (admin.clone(), names.clone(), next.clone(), masters.clone());
        let (bar, queues) = (bar.clone(), opts.queues);
        creators.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(topic) = names.get(i) else {
                    return anyhow::Ok(());
                };
                for addr in &masters {
                    admin
                        .create_topic(addr, topic, queues)
                        .await
                        .with_context(|| format!("cannot create {topic} on {addr}"))?;
                }
                bar.inc(1);
            }
        }));
    }
    for c in creators {
        c.await??;
    }
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "created {} topics ({} queues) on {} master(s) in {secs:.1} s: {:.0} topics/s",
        names.len(),
        opts.queues,
        masters.len(),
        names.len() as f64 / secs
    );
    admin.shutdown();
    Ok(())
}

/// Messages per second (calls × `batch`) and latencies per call.
fn line(h: &Histogram<u64>, batch: usize, secs: f64, failures: u64) -> String {
    format!(
        "tps {:>9.0}  avg {:>7.3} ms  p50 {:>7.3} ms  p99 {:>7.3} ms  max {:>8.3} ms  failed {}",
        (h.len() * batch as u64) as f64 / secs,
        h.mean() / 1000.0,
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.max() as f64 / 1000.0,
        failures
    )
}

/// User + system CPU time of a process, from /proc (Linux).
fn process_cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // Clock ticks: 100 per second on every Linux this runs on (sysconf(_SC_CLK_TCK)).
    Some(Duration::from_millis((utime + stime) * 10))
}

pub struct ConsumeOptions {
    pub namesrv: String,
    pub topic: String,
    pub group: String,
    pub duration: Duration,
    pub report_interval: Duration,
    /// Messages per listener call (`consumeMessageBatchMaxSize`).
    pub batch: usize,
    /// Share of first deliveries the listener answers `Later`, so the client sends them back
    /// to the group's retry topic; their second delivery succeeds.
    pub fail_percent: u32,
    /// The ACL account every request is signed with.
    pub credentials: Option<Credentials>,
    /// Report this process's CPU time per message consumed (the broker's pid).
    pub broker_pid: Option<u32>,
    pub expect: Expectations,
}

/// Consumes as fast as the listener returns; reports messages per second (from a counter) and
/// the delay from store time to delivery, and in the summary how long it took to drain what it
/// received (time of the last first delivery), which is the throughput figure for a backlog.
/// With `fail_percent`, that share of first deliveries is failed, spread evenly (every tenth
/// message at 10 %), and the summary also counts the messages sent back and those that came
/// back through the retry topic (after the broker's retry delay, 10 s for a first retry).
pub async fn consume(opts: ConsumeOptions) -> anyhow::Result<()> {
    let config = crate::tools::client_config(&opts.namesrv, opts.credentials.clone())
        .with_instance_name("petrel-bench-consumer");
    let mut consumer = PushConsumer::new(&opts.group, config);
    consumer.subscribe(&opts.topic, "*")?;
    consumer.set_consume_from(ConsumeFromWhere::FirstOffset);
    consumer.options.consume_batch_max_size = opts.batch.max(1);
    let fail_percent = u64::from(opts.fail_percent.min(100));
    let interval_hist = Arc::new(Mutex::new(histogram()));
    let first = Arc::new(AtomicU64::new(0));
    let sent_back = Arc::new(AtomicU64::new(0));
    let retried = Arc::new(AtomicU64::new(0));
    let cpu_start = opts.broker_pid.and_then(process_cpu_time);
    let started = Instant::now();
    // Microseconds from `started` to the latest first delivery.
    let last_at_us = Arc::new(AtomicU64::new(0));
    {
        let (ih, first, sent_back, retried, last_at_us) = (
            interval_hist.clone(),
            first.clone(),
            sent_back.clone(),
            retried.clone(),
            last_at_us.clone(),
        );
        consumer.register_listener(move |msgs: &[MessageExt]| {
            let now = petrel_common::msg_id::now_ms() as i64;
            let mut fail = false;
            let mut firsts = 0;
            {
                let mut h = ih.lock();
                for m in msgs {
                    // A backlog can be older than the histogram's range: clamp, never drop.
                    let delay_us =
                        ((now - m.store_timestamp).max(0) as u64 * 1000).clamp(1, h.high());
                    let _ = h.record(delay_us);
                    if m.reconsume_times > 0 {
                        retried.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    firsts += 1;
                    // Message n fails when n·p/100 steps up: exactly p in every 100, evenly spread.
                    let n = first.fetch_add(1, Ordering::Relaxed);
                    fail |= n * fail_percent / 100 != (n + 1) * fail_percent / 100;
                }
            }
            if firsts > 0 {
                last_at_us.fetch_max(started.elapsed().as_micros() as u64, Ordering::Relaxed);
            }
            if fail {
                sent_back.fetch_add(msgs.len() as u64, Ordering::Relaxed);
                ConsumeStatus::Later
            } else {
                ConsumeStatus::Success
            }
        });
    }
    consumer
        .start()
        .await
        .context("cannot start the consumer")?;
    println!(
        "bench consume: topic {} group {} batch {} fail {}% duration {:?} \
         (latency = store time to delivery)",
        opts.topic, opts.group, opts.batch, fail_percent, opts.duration
    );
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + opts.report_interval,
        opts.report_interval,
    );
    let mut last = Instant::now();
    let mut last_total = 0;
    let bar = progress::timed(opts.duration, "bench consume");
    while started.elapsed() < opts.duration {
        tick.tick().await;
        let snapshot = std::mem::replace(&mut *interval_hist.lock(), histogram());
        let secs = last.elapsed().as_secs_f64();
        last = Instant::now();
        let now_total = first.load(Ordering::Relaxed) + retried.load(Ordering::Relaxed);
        progress::set_elapsed(&bar, started.elapsed());
        let report = format!(
            "tps {:>9.0}  latency avg {:>9.3} ms  p50 {:>9.3} ms  p99 {:>9.3} ms  \
             sent back {}  retries in {}",
            (now_total - last_total) as f64 / secs,
            snapshot.mean() / 1000.0,
            snapshot.value_at_quantile(0.5) as f64 / 1000.0,
            snapshot.value_at_quantile(0.99) as f64 / 1000.0,
            sent_back.load(Ordering::Relaxed),
            retried.load(Ordering::Relaxed),
        );
        progress::println(&bar, report);
        last_total = now_total;
    }
    bar.finish_and_clear();
    let n = first.load(Ordering::Relaxed);
    let drained = Duration::from_micros(last_at_us.load(Ordering::Relaxed)).as_secs_f64();
    println!(
        "summary: {} messages, the last {:.2} s after start: {:.0} msg/s; {} sent back, \
         {} redelivered from the retry topic",
        n,
        drained,
        n as f64 / drained.max(1e-6),
        sent_back.load(Ordering::Relaxed),
        retried.load(Ordering::Relaxed),
    );
    let cpu_end = opts.broker_pid.and_then(process_cpu_time);
    let delivered = n + retried.load(Ordering::Relaxed);
    let cpu_us = broker_cpu_per_message(
        cpu_start,
        cpu_end,
        started.elapsed().as_secs_f64(),
        delivered,
    );
    consumer.shutdown().await;
    opts.expect
        .check("bench consume", n as f64 / drained.max(1e-6), cpu_us)
}

/// How `bench store` calls the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendMode {
    /// One `put_message` per message, as SEND_MESSAGE does.
    Single,
    /// `put_messages` with this many messages per call, as SEND_BATCH_MESSAGE does.
    Batch(usize),
}

pub struct StoreBenchOptions {
    /// Where the stores and the raw-disk probe files go; a fresh directory under the current
    /// one when absent. Everything the run creates is removed afterwards.
    pub data: Option<std::path::PathBuf>,
    pub message_bytes: Vec<usize>,
    pub writers: Vec<usize>,
    pub flush: Vec<petrel_store::FlushDiskType>,
    pub modes: Vec<AppendMode>,
    /// Length of each case's append window.
    pub duration: Duration,
    /// Bytes for the raw sequential probe (1 MiB writes, then one fdatasync).
    pub raw_bytes: u64,
    /// How many times the sequential probe runs before the cases; the best one is the reference.
    pub raw_repeats: u32,
    /// How long the 4 KiB O_DSYNC write probe runs.
    pub dsync_duration: Duration,
    pub segment_bytes: u64,
}

/// Removes what the run created, also on an early return.
struct Cleanup(Vec<std::path::PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in self.0.iter().rev() {
            let _ = std::fs::remove_dir_all(p).or_else(|_| std::fs::remove_file(p));
        }
    }
}

/// Raw disk numbers of the directory the stores live in, measured as `dd` would.
struct RawDisk {
    sequential_mb_s: f64,
    dsync_writes_per_s: f64,
}

fn raw_sequential(dir: &std::path::Path, bytes: u64) -> anyhow::Result<f64> {
    use std::io::Write;
    let path = dir.join("raw-sequential.probe");
    let _cleanup = Cleanup(vec![path.clone()]);
    let chunk = vec![0u8; 1 << 20];
    let started = Instant::now();
    let mut f = std::fs::File::create(&path).context("cannot create the raw probe file")?;
    let mut written = 0u64;
    while written < bytes {
        f.write_all(&chunk)?;
        written += chunk.len() as u64;
    }
    // `dd conv=fdatasync`: one fdatasync at the end, inside the timing.
    f.sync_data()?;
    Ok(written as f64 / started.elapsed().as_secs_f64() / 1e6)
}

fn raw_dsync_rate(dir: &std::path::Path, duration: Duration) -> anyhow::Result<f64> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    // O_DSYNC as Linux defines it (asm-generic), as `dd oflag=dsync` opens the file; std has no
    // name for it and this crate takes no libc dependency for one constant.
    const O_DSYNC: i32 = 0o10000;
    let path = dir.join("raw-dsync.probe");
    let _cleanup = Cleanup(vec![path.clone()]);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(O_DSYNC)
        .open(&path)
        .context("cannot create the O_DSYNC probe file")?;
    let block = vec![0u8; 4096];
    let started = Instant::now();
    let mut writes = 0u64;
    while started.elapsed() < duration {
        f.write_all(&block)?;
        writes += 1;
    }
    Ok(writes as f64 / started.elapsed().as_secs_f64())
}

/// One encoded record whose UNIQ_KEY each append rewrites in place, so that every message
/// costs the store what a real send costs (index entries for a distinct key included) without
/// the benchmark encoding each one.
struct RecordTemplate {
    record: bytes::BytesMut,
    key_at: usize,
}

const KEY_WIDTH: usize = 32;

impl RecordTemplate {
    fn new(topic: &str, queue_id: i32, body_bytes: usize) -> RecordTemplate {
        let props = format!("UNIQ_KEY\u{1}{}\u{2}", "0".repeat(KEY_WIDTH));
        let body = vec![b'x'; body_bytes];
        let fields = petrel_common::record::RecordFields {
            queue_id,
            flag: 0,
            queue_offset: 0,
            physical_offset: 0,
            sys_flag: 0,
            born_timestamp: petrel_common::msg_id::now_ms() as i64,
            born_host: std::net::SocketAddr::from(([127, 0, 0, 1], 40000)),
            store_timestamp: 0,
            store_host: std::net::SocketAddr::from(([127, 0, 0, 1], 10911)),
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            body: &body,
            topic,
            properties: props.as_bytes(),
        };
        let mut record = bytes::BytesMut::new();
        petrel_common::record::encode(&fields, &mut record);
        let marker = b"UNIQ_KEY\x01";
        let key_at = record
            .windows(marker.len())
            .position(|w| w == marker)
            .expect("the encoded record holds its properties")
            + marker.len();
        RecordTemplate { record, key_at }
    }

    fn request(&self, topic: &str, queue_id: i32, key: u128) -> petrel_store::AppendRequest {
        let mut record = self.record.clone();
        let hex = format!("{key:0width$X}", width = KEY_WIDTH);
        record[self.key_at..self.key_at + KEY_WIDTH].copy_from_slice(hex.as_bytes());
        petrel_store::AppendRequest {
            record,
            topic: topic.to_owned(),
            queue_id,
            tags_code: 0,
        }
    }
}

struct CaseResult {
    flush: petrel_store::FlushDiskType,
    mode: AppendMode,
    message_bytes: usize,
    writers: usize,
    messages: u64,
    /// Whole records, headers included: what the commit log grew by.
    record_bytes: u64,
    window: Duration,
    /// The shutdown flush after the window: what async flush still owed the disk.
    drain: Duration,
    timeouts: u64,
    /// Nanoseconds per store call (one message, or one batch).
    latency: Histogram<u64>,
}

async fn store_case(
    dir: &std::path::Path,
    opts: &StoreBenchOptions,
    flush: petrel_store::FlushDiskType,
    mode: AppendMode,
    message_bytes: usize,
    writers: usize,
) -> anyhow::Result<CaseResult> {
    use petrel_store::{AppendStatus, MessageStore, StoreConfig};
    const TOPIC: &str = "BenchStore";
    let _cleanup = Cleanup(vec![dir.to_path_buf()]);
    let config = StoreConfig {
        commit_log_file_size: opts.segment_bytes,
        flush_disk_type: flush,
        ..StoreConfig::new(dir)
    };
    let store = MessageStore::open(config).context("cannot open the store")?;
    let started = Instant::now();
    // Each writer watches the clock itself: async-flush appends never wait, so busy writers
    // can keep every runtime thread from ever parking, and a timer would not fire.
    let deadline = started + opts.duration;
    let mut tasks = Vec::with_capacity(writers);
    for w in 0..writers {
        let store = store.clone();
        // Eight queues, as a topic has by default; the append lock is shared by all anyway.
        let queue_id = (w % 8) as i32;
        let template = RecordTemplate::new(TOPIC, queue_id, message_bytes);
        let record_bytes = template.record.len() as u64;
        tasks.push(tokio::spawn(async move {
            let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)
                .expect("static histogram bounds");
            let (mut messages, mut timeouts) = (0u64, 0u64);
            let mut key = (w as u128) << 64;
            while Instant::now() < deadline {
                let batch = match mode {
                    AppendMode::Single => 1,
                    AppendMode::Batch(n) => n.max(1),
                };
                let mut reqs: Vec<_> = (0..batch)
                    .map(|_| {
                        key += 1;
                        template.request(TOPIC, queue_id, key)
                    })
                    .collect();
                let t = Instant::now();
                let r = match mode {
                    AppendMode::Single => store.put_message(reqs.remove(0)).await?,
                    AppendMode::Batch(_) => store.put_messages(reqs).await?,
                };
                let _ = latency.record((t.elapsed().as_nanos() as u64).max(1));
                messages += batch as u64;
                if r.status == AppendStatus::FlushDiskTimeout {
                    timeouts += 1;
                }
                // Take turns, as writers on separate connections would.
                tokio::task::yield_now().await;
            }
            Ok::<_, petrel_store::StoreError>((
                latency,
                messages,
                messages * record_bytes,
                timeouts,
            ))
        }));
    }
    let mut latency = histogram_ns();
    let (mut messages, mut record_bytes, mut timeouts) = (0, 0, 0);
    for t in tasks {
        let (h, m, b, to) = t.await.context("a writer panicked")??;
        latency.add(&h).expect("same histogram bounds");
        messages += m;
        record_bytes += b;
        timeouts += to;
    }
    let window = started.elapsed();
    let drain_started = Instant::now();
    let drained = tokio::task::spawn_blocking(move || store.shutdown());
    drained.await.context("the store shutdown panicked")?;
    Ok(CaseResult {
        flush,
        mode,
        message_bytes,
        writers,
        messages,
        record_bytes,
        window,
        drain: drain_started.elapsed(),
        timeouts,
        latency,
    })
}

fn histogram_ns() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("static histogram bounds")
}

/// `petrel bench store`: the message store alone, in process, against the raw disk under it.
pub async fn store(opts: StoreBenchOptions) -> anyhow::Result<()> {
    let (root, mut cleanup) = match &opts.data {
        Some(d) => (d.clone(), Cleanup(Vec::new())),
        None => {
            let d =
                std::env::current_dir()?.join(format!("petrel-bench-store.{}", std::process::id()));
            (d.clone(), Cleanup(vec![d]))
        }
    };
    std::fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;
    println!("bench store: data in {}", root.display());

    // This VM's disk swings by 5x between runs of the same `dd` (host caching): probe several
    // times and compare against the best, so a slow probe cannot flatter the store.
    let raw = {
        let (root, raw_bytes, dsync, repeats) = (
            root.clone(),
            opts.raw_bytes,
            opts.dsync_duration,
            opts.raw_repeats.max(1),
        );
        tokio::task::spawn_blocking(move || -> anyhow::Result<RawDisk> {
            let mut best = 0f64;
            for i in 1..=repeats {
                let mb_s = raw_sequential(&root, raw_bytes)?;
                println!(
                    "raw disk: sequential probe {i}/{repeats}: {mb_s:.0} MB/s \
                     ({} MiB in 1 MiB writes + fdatasync)",
                    raw_bytes >> 20
                );
                best = best.max(mb_s);
            }
            Ok(RawDisk {
                sequential_mb_s: best,
                dsync_writes_per_s: raw_dsync_rate(&root, dsync)?,
            })
        })
        .await??
    };
    println!(
        "raw disk: best sequential {:.0} MB/s (the % raw columns use it); \
         4 KiB O_DSYNC writes {:.0}/s ({:.1} MB/s, {:.0} µs each)",
        raw.sequential_mb_s,
        raw.dsync_writes_per_s,
        raw.dsync_writes_per_s * 4096.0 / 1e6,
        1e6 / raw.dsync_writes_per_s
    );
    println!(
        "| flush | mode | size | writers | appends/s | MB/s | % raw | p50 µs | p99 µs | max µs | \
         drain s | MB/s with drain | % raw with drain | timeouts |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut case = 0;
    let cases = opts.flush.len() * opts.modes.len() * opts.message_bytes.len() * opts.writers.len();
    let bar = progress::steps(cases as u64, "bench store cases");
    for &flush in &opts.flush {
        for &mode in &opts.modes {
            for &size in &opts.message_bytes {
                for &writers in &opts.writers {
                    case += 1;
                    let dir = root.join(format!("case-{case}"));
                    let r = store_case(&dir, &opts, flush, mode, size, writers).await?;
                    bar.suspend(|| print_case(&r, raw.sequential_mb_s));
                    bar.inc(1);
                }
            }
        }
    }
    bar.finish_and_clear();
    let (root_after, raw_bytes) = (root.clone(), opts.raw_bytes);
    let after =
        tokio::task::spawn_blocking(move || raw_sequential(&root_after, raw_bytes)).await??;
    println!("raw disk: sequential probe after the cases: {after:.0} MB/s");
    if opts.data.is_some() {
        cleanup.0.clear();
    }
    drop(cleanup);
    Ok(())
}

fn print_case(r: &CaseResult, raw_mb_s: f64) {
    let secs = r.window.as_secs_f64();
    let mb_s = r.record_bytes as f64 / secs / 1e6;
    let with_drain = r.record_bytes as f64 / (secs + r.drain.as_secs_f64()) / 1e6;
    let flush = match r.flush {
        petrel_store::FlushDiskType::AsyncFlush => "async",
        petrel_store::FlushDiskType::SyncFlush => "sync",
    };
    let mode = match r.mode {
        AppendMode::Single => "single".to_owned(),
        AppendMode::Batch(n) => format!("batch {n}"),
    };
    println!(
        "| {flush} | {mode} | {} | {} | {:.0} | {:.1} | {:.0}% | {:.1} | {:.1} | {:.1} | {:.2} | {:.1} | {:.0}% | {} |",
        r.message_bytes,
        r.writers,
        r.messages as f64 / secs,
        mb_s,
        mb_s / raw_mb_s * 100.0,
        r.latency.value_at_quantile(0.5) as f64 / 1e3,
        r.latency.value_at_quantile(0.99) as f64 / 1e3,
        r.latency.max() as f64 / 1e3,
        r.drain.as_secs_f64(),
        with_drain,
        with_drain / raw_mb_s * 100.0,
        r.timeouts,
    );
}
