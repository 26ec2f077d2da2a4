//! `petrel bench`: throughput and latency of a running Petrel (or any RocketMQ broker), in the
//! spirit of RocketMQ's benchmark tool. Sync sends from many concurrent senders sharing one
//! producer (as the Java benchmark's threads share one producer), a report every few seconds
//! and a summary. With `--broker-pid` it also reports the broker's CPU time per message.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use petrel_client::{
    ClientConfig, ConsumeFromWhere, ConsumeStatus, Message, MessageExt, Producer, PushConsumer,
    SerializeType,
};

pub struct ProduceOptions {
    pub namesrv: String,
    pub topic: String,
    pub threads: usize,
    pub message_bytes: usize,
    pub duration: Duration,
    pub report_interval: Duration,
    /// ROCKETMQ binary headers, as the official benchmark sends them.
    pub binary_headers: bool,
    pub broker_pid: Option<u32>,
}

/// Latencies in microseconds, 1 µs to 60 s.
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("static histogram bounds")
}

pub async fn produce(opts: ProduceOptions) -> anyhow::Result<()> {
    let mut config = ClientConfig::new(&opts.namesrv).with_instance_name("petrel-bench");
    if opts.binary_headers {
        config = config.with_serialize_type(SerializeType::RocketMq);
    }
    let producer = Arc::new(Producer::new("petrel_bench_producer", config));
    producer
        .start()
        .await
        .context("cannot start the producer")?;
    // One send first: creates the topic and warms the route.
    producer
        .send(Message::new(&opts.topic, vec![b'w'; opts.message_bytes]))
        .await
        .context("the warm-up send failed")?;

    let interval_hist = Arc::new(Mutex::new(histogram()));
    let total_hist = Arc::new(Mutex::new(histogram()));
    let failures = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let body = bytes::Bytes::from(vec![b'x'; opts.message_bytes]);

    println!(
        "bench produce: topic {} threads {} size {} B headers {} duration {:?}",
        opts.topic,
        opts.threads,
        opts.message_bytes,
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
    for _ in 0..opts.threads {
        let producer = producer.clone();
        let topic = opts.topic.clone();
        let body = body.clone();
        let (ih, th, failures, stop) = (
            interval_hist.clone(),
            total_hist.clone(),
            failures.clone(),
            stop.clone(),
        );
        senders.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                match producer.send(Message::new(&topic, body.clone())).await {
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
    while started.elapsed() < opts.duration {
        tick.tick().await;
        let snapshot = std::mem::replace(&mut *interval_hist.lock(), histogram());
        let secs = last.elapsed().as_secs_f64();
        last = Instant::now();
        println!(
            "{}",
            line(&snapshot, secs, failures.swap(0, Ordering::Relaxed))
        );
    }
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        let _ = s.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_end = opts.broker_pid.and_then(process_cpu_time);
    let total = total_hist.lock().clone();
    println!("summary: {}", line(&total, elapsed, 0));
    if let (Some(a), Some(b)) = (cpu_start, cpu_end) {
        let cpu = b.saturating_sub(a).as_secs_f64();
        println!(
            "broker CPU: {:.2} s over {:.1} s ({:.0}% of one core), {:.2} µs per message",
            cpu,
            elapsed,
            cpu / elapsed * 100.0,
            cpu * 1e6 / total.len().max(1) as f64
        );
    }
    producer.shutdown().await;
    Ok(())
}

fn line(h: &Histogram<u64>, secs: f64, failures: u64) -> String {
    format!(
        "tps {:>9.0}  avg {:>7.3} ms  p50 {:>7.3} ms  p99 {:>7.3} ms  max {:>8.3} ms  failed {}",
        h.len() as f64 / secs,
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
}

/// Consumes as fast as the listener returns; reports messages per second (from a counter) and
/// the delay from store time to delivery, and in the summary how long it took to drain what it
/// received (time of the last message), which is the throughput figure for a backlog.
pub async fn consume(opts: ConsumeOptions) -> anyhow::Result<()> {
    let config = ClientConfig::new(&opts.namesrv).with_instance_name("petrel-bench-consumer");
    let mut consumer = PushConsumer::new(&opts.group, config);
    consumer.subscribe(&opts.topic, "*")?;
    consumer.set_consume_from(ConsumeFromWhere::FirstOffset);
    consumer.options.consume_batch_max_size = 32;
    let interval_hist = Arc::new(Mutex::new(histogram()));
    let total = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    // Microseconds from `started` to the latest delivery.
    let last_at_us = Arc::new(AtomicU64::new(0));
    {
        let (ih, total, last_at_us) = (interval_hist.clone(), total.clone(), last_at_us.clone());
        consumer.register_listener(move |msgs: &[MessageExt]| {
            let now = petrel_common::msg_id::now_ms() as i64;
            let mut h = ih.lock();
            for m in msgs {
                // A backlog can be older than the histogram's range: clamp, never drop.
                let delay_us = ((now - m.store_timestamp).max(0) as u64 * 1000).clamp(1, h.high());
                let _ = h.record(delay_us);
            }
            total.fetch_add(msgs.len() as u64, Ordering::Relaxed);
            last_at_us.fetch_max(started.elapsed().as_micros() as u64, Ordering::Relaxed);
            ConsumeStatus::Success
        });
    }
    consumer
        .start()
        .await
        .context("cannot start the consumer")?;
    println!(
        "bench consume: topic {} group {} duration {:?} (latency = store time to delivery)",
        opts.topic, opts.group, opts.duration
    );
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::now() + opts.report_interval,
        opts.report_interval,
    );
    let mut last = Instant::now();
    let mut last_total = 0;
    while started.elapsed() < opts.duration {
        tick.tick().await;
        let snapshot = std::mem::replace(&mut *interval_hist.lock(), histogram());
        let secs = last.elapsed().as_secs_f64();
        last = Instant::now();
        let now_total = total.load(Ordering::Relaxed);
        println!(
            "tps {:>9.0}  latency avg {:>9.3} ms  p50 {:>9.3} ms  p99 {:>9.3} ms",
            (now_total - last_total) as f64 / secs,
            snapshot.mean() / 1000.0,
            snapshot.value_at_quantile(0.5) as f64 / 1000.0,
            snapshot.value_at_quantile(0.99) as f64 / 1000.0,
        );
        last_total = now_total;
    }
    let n = total.load(Ordering::Relaxed);
    let drained = Duration::from_micros(last_at_us.load(Ordering::Relaxed)).as_secs_f64();
    println!(
        "summary: {} messages, the last {:.2} s after start: {:.0} msg/s",
        n,
        drained,
        n as f64 / drained.max(1e-6)
    );
    consumer.shutdown().await;
    Ok(())
}
