//! kill -9 under load, against the real `petrel standalone` binary: several producers send in a
//! loop, the process is SIGKILLed at a random moment, restarted on the same data directory, and
//! every acknowledged message must be back with its body, key and tag at the queue offset it was
//! acknowledged with; every queue's offsets must run contiguously from 0; the broker must take
//! new sends. Both flush modes: a process kill leaves the page cache, so async flush loses
//! nothing acknowledged either.

#[allow(dead_code)] // each test binary uses part of the helpers
mod common;

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{abort_marker, read_topic, Petrel};
use parking_lot::Mutex;
use petrel_client::{Message, Producer, SendStatus};
use petrel_common::msg_id::decode_offset_msg_id;
use petrel_common::record::peek_total_size;
use rand::Rng;

/// Kill/restart cycles with `--flush sync`.
const SYNC_FLUSH_CYCLES: usize = 20;
/// Kill/restart cycles with `--flush async`.
const ASYNC_FLUSH_CYCLES: usize = 5;
/// Concurrent producers during the load.
const PRODUCERS: usize = 4;
/// The kill lands this long into the load: a random point in [min, max).
const KILL_AFTER_MIN_MS: u64 = 100;
const KILL_AFTER_MAX_MS: u64 = 600;
/// How long a producer task may take to notice the dead broker and stop.
const PRODUCER_STOP_TIMEOUT: Duration = Duration::from_secs(30);
const QUEUES: i32 = 4;
const TOPIC: &str = "CrashTest";

/// One acknowledged send.
#[derive(Debug, Clone)]
struct Acked {
    key: String,
    tag: String,
    body: String,
    queue_id: i32,
    queue_offset: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acked_messages_survive_kill_9_with_sync_flush() {
    acked_messages_survive_kill_9("sync", SYNC_FLUSH_CYCLES).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acked_messages_survive_kill_9_with_async_flush() {
    acked_messages_survive_kill_9("async", ASYNC_FLUSH_CYCLES).await;
}

async fn acked_messages_survive_kill_9(flush: &str, cycles: usize) {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let mut acked: Vec<Acked> = Vec::new();

    let mut petrel = Petrel::start(&data, flush);
    petrel.create_topic(TOPIC, QUEUES).await;
    for cycle in 0..cycles {
        let cycle_started = Instant::now();
        let kill_after =
            Duration::from_millis(rand::rng().random_range(KILL_AFTER_MIN_MS..KILL_AFTER_MAX_MS));
        let (new_acks, timeouts) = load_then_kill(petrel, flush, cycle, kill_after).await;
        assert!(
            abort_marker(&data).exists(),
            "a killed store leaves its abort marker"
        );
        let acked_this_cycle = new_acks.len();
        acked.extend(new_acks);

        petrel = Petrel::start(&data, flush);
        petrel.wait_for_route(TOPIC, QUEUES as usize).await;
        verify(&petrel, &acked).await;
        acked.push(send_one(&petrel, cycle).await);
        eprintln!(
            "{flush} cycle {cycle}: killed after {kill_after:?}, {acked_this_cycle} acked \
             ({timeouts} FLUSH_DISK_TIMEOUT), {} acked in all, cycle took {:?}",
            acked.len(),
            cycle_started.elapsed()
        );
    }
    assert!(
        acked.len() > cycles,
        "the load acknowledged nothing before the kills: the test proved nothing"
    );
    let status = petrel.stop_with("TERM").await;
    assert!(status.success(), "final SIGTERM exit status: {status}");
    eprintln!(
        "{flush}: {cycles} cycles, {} messages acknowledged and read back, {:?}",
        acked.len(),
        started.elapsed()
    );
}

/// Runs [`PRODUCERS`] sending loops against `petrel`, SIGKILLs it after `kill_after`, and
/// returns every SEND_OK acknowledgement plus the count of FLUSH_DISK_TIMEOUT answers.
async fn load_then_kill(
    petrel: Petrel,
    flush: &str,
    cycle: usize,
    kill_after: Duration,
) -> (Vec<Acked>, usize) {
    let producer = Arc::new(Producer::new(
        "petrel_crash_producer",
        petrel.client_config(&format!("crash-{flush}-{cycle}")),
    ));
    producer.start().await.expect("start producer");
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let timeouts = Arc::new(Mutex::new(0usize));
    let mut tasks = Vec::new();
    for p in 0..PRODUCERS {
        let flush = flush.to_owned();
        let (producer, stop, acked, timeouts) = (
            Arc::clone(&producer),
            Arc::clone(&stop),
            Arc::clone(&acked),
            Arc::clone(&timeouts),
        );
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("{flush}-c{cycle}-p{p}-m{i}");
                let tag = format!("Tag{}", i % 3);
                let body = format!("body of {key}");
                i += 1;
                let msg = Message::new(TOPIC, body.clone())
                    .with_keys(key.clone())
                    .with_tags(tag.clone());
                match producer.send(msg).await {
                    Ok(r) if r.status == SendStatus::SendOk => acked.lock().push(Acked {
                        key,
                        tag,
                        body,
                        queue_id: r.queue.queue_id,
                        queue_offset: r.queue_offset,
                    }),
                    Ok(_) => *timeouts.lock() += 1,
                    // The broker is dead (or dying): the message may or may not be stored.
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        }));
    }
    tokio::time::sleep(kill_after).await;
    petrel.kill_9();
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        tokio::time::timeout(PRODUCER_STOP_TIMEOUT, task)
            .await
            .expect("a producer task did not stop after the kill")
            .expect("producer task panicked");
    }
    let _ = tokio::time::timeout(PRODUCER_STOP_TIMEOUT, producer.shutdown()).await;
    let acked = std::mem::take(&mut *acked.lock());
    let timeouts = *timeouts.lock();
    (acked, timeouts)
}

/// Every acknowledged message is at its queue offset with its body, key and tag (the offsets
/// themselves are checked contiguous by `read_topic`).
async fn verify(petrel: &Petrel, acked: &[Acked]) {
    let stored = read_topic(petrel, TOPIC).await;
    let by_queue: HashMap<i32, &Vec<_>> = stored.iter().map(|(q, m)| (*q, m)).collect();
    for a in acked {
        let queue = by_queue
            .get(&a.queue_id)
            .unwrap_or_else(|| panic!("queue {} is gone", a.queue_id));
        let m = queue.get(a.queue_offset as usize).unwrap_or_else(|| {
            panic!(
                "acknowledged {} at queue {} offset {} is lost (the queue holds {})",
                a.key,
                a.queue_id,
                a.queue_offset,
                queue.len()
            )
        });
        assert_eq!(m.keys(), Some(a.key.as_str()), "key at {a:?}");
        assert_eq!(m.tags(), Some(a.tag.as_str()), "tag at {a:?}");
        assert_eq!(&m.body[..], a.body.as_bytes(), "body at {a:?}");
    }
}

/// The restarted broker takes a send; returns its acknowledgement.
async fn send_one(petrel: &Petrel, cycle: usize) -> Acked {
    let producer = Producer::new(
        "petrel_crash_producer",
        petrel.client_config("after-restart"),
    );
    producer.start().await.expect("start producer");
    let key = format!("after-restart-{cycle}");
    let body = format!("body of {key}");
    let r = producer
        .send(
            Message::new(TOPIC, body.clone())
                .with_keys(key.clone())
                .with_tags("After"),
        )
        .await
        .expect("the restarted broker takes a send");
    assert_eq!(r.status, SendStatus::SendOk);
    producer.shutdown().await;
    Acked {
        key,
        tag: "After".to_owned(),
        body,
        queue_id: r.queue.queue_id,
        queue_offset: r.queue_offset,
    }
}

/// Messages sent one by one before the kill in the torn-tail test.
const TORN_TAIL_MESSAGES: usize = 50;
/// Commit-log segment size of `petrel standalone` (the store's default).
const SEGMENT_BYTES: i64 = 1024 * 1024 * 1024;

/// A crash that tore the last record (its second half never reached the disk): the restart cuts
/// that record and its consume-queue entry, serves every earlier message, and the next send takes
/// the freed queue offset.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_torn_last_record_is_cut_on_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let petrel = Petrel::start(&data, "sync");
    petrel.create_topic(TOPIC, QUEUES).await;
    let producer = Producer::new("petrel_crash_producer", petrel.client_config("torn"));
    producer.start().await.expect("start producer");
    let mut acked = Vec::new();
    let mut last_physical_offset = -1;
    for i in 0..TORN_TAIL_MESSAGES {
        let key = format!("torn-{i}");
        let body = format!("body of {key}");
        let r = producer
            .send(
                Message::new(TOPIC, body.clone())
                    .with_keys(key.clone())
                    .with_tags("Torn"),
            )
            .await
            .expect("send");
        assert_eq!(r.status, SendStatus::SendOk);
        let (_, physical_offset) =
            decode_offset_msg_id(&r.offset_msg_id).expect("an offset message id");
        assert!(
            physical_offset > last_physical_offset,
            "sends are sequential"
        );
        last_physical_offset = physical_offset;
        acked.push(Acked {
            key,
            tag: "Torn".to_owned(),
            body,
            queue_id: r.queue.queue_id,
            queue_offset: r.queue_offset,
        });
    }
    producer.shutdown().await;
    petrel.kill_9();

    tear_record(&data, last_physical_offset);
    let torn = acked.pop().expect("at least one message");

    let petrel = Petrel::start(&data, "sync");
    petrel.wait_for_route(TOPIC, QUEUES as usize).await;
    let stored = read_topic(&petrel, TOPIC).await;
    assert_eq!(
        stored[&torn.queue_id].len() as i64,
        torn.queue_offset,
        "the torn record's queue ends just before it"
    );
    verify(&petrel, &acked).await;
    let after = send_one(&petrel, 0).await;
    if after.queue_id == torn.queue_id {
        assert_eq!(
            after.queue_offset, torn.queue_offset,
            "the freed offset is reused"
        );
    }
    acked.push(after);
    verify(&petrel, &acked).await;
    let status = petrel.stop_with("TERM").await;
    assert!(status.success(), "SIGTERM exit status: {status}");
}

/// Zeroes the second half of the record at `physical_offset`, which must be the last one.
fn tear_record(data: &Path, physical_offset: i64) {
    let segment_start = physical_offset - physical_offset % SEGMENT_BYTES;
    let path = data.join("commitlog").join(format!("{segment_start:020}"));
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
    let pos = (physical_offset - segment_start) as u64;
    let mut header = [0u8; 8];
    file.seek(SeekFrom::Start(pos)).expect("seek");
    file.read_exact(&mut header).expect("read record header");
    let (size, _) = peek_total_size(&header).expect("a record header");
    let size = u64::try_from(size).expect("a positive record size");
    let mut next = [0u8; 8];
    file.seek(SeekFrom::Start(pos + size)).expect("seek");
    file.read_exact(&mut next).expect("read past the record");
    assert_eq!(next, [0u8; 8], "the torn record is the last one");
    file.seek(SeekFrom::Start(pos + size / 2)).expect("seek");
    file.write_all(&vec![0u8; (size - size / 2) as usize])
        .expect("tear the record");
    file.sync_all().expect("sync");
}
