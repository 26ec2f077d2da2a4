//! Behaviour of `MessageStore` through its public API: appends, pulls, offsets, rollover,
//! clean restarts and crash recovery with torn tails.

mod common;

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use petrel_common::record::{self, java_string_hash};
use petrel_store::{
    AppendRequest, AppendStatus, FlushDiskType, GetStatus, MessageStore, StoreConfig,
};

use common::append_request;

fn config(root: &Path) -> StoreConfig {
    StoreConfig {
        commit_log_file_size: 64 * 1024,
        consume_queue_entries_per_file: 16,
        flush_interval_ms: 20,
        ..StoreConfig::new(root)
    }
}

fn request_with_flag(
    topic: &str,
    queue_id: i32,
    body: &[u8],
    tag: &str,
    sys_flag: i32,
) -> AppendRequest {
    let props = format!("TAGS\u{1}{tag}\u{2}");
    let tags_code = i64::from(java_string_hash(tag));
    append_request(topic, queue_id, body, &props, sys_flag, tags_code)
}

fn request(topic: &str, queue_id: i32, body: &[u8]) -> AppendRequest {
    request_with_flag(topic, queue_id, body, "TagA", 0)
}

fn body(i: usize) -> Vec<u8> {
    format!("message-{i}").into_bytes()
}

fn all(_: i64) -> bool {
    true
}

/// Bodies of every message of a queue, checking each record's own queue offset.
fn bodies(store: &MessageStore, topic: &str, queue_id: i32) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let r = store.get_messages(topic, queue_id, offset, 32, &all);
        if r.status != GetStatus::Found {
            return out;
        }
        for m in &r.messages {
            let d = record::decode(m, true).unwrap();
            assert_eq!(d.queue_offset, offset, "queue offsets are contiguous");
            assert_eq!(d.topic, topic);
            out.push(d.body.to_vec());
            offset += 1;
        }
        assert_eq!(r.next_begin_offset, offset);
    }
}

async fn put_n(store: &MessageStore, topic: &str, queue_id: i32, range: std::ops::Range<usize>) {
    for i in range {
        let r = store
            .put_message(request(topic, queue_id, &body(i)))
            .await
            .unwrap();
        assert_eq!(r.status, AppendStatus::PutOk);
        assert_eq!(r.first_queue_offset, i as i64);
    }
}

fn commit_log_files(root: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(root.join("commitlog"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn appended_messages_are_pulled_back_byte_exact() {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(config(dir.path())).unwrap();
    let mut offsets = Vec::new();
    for i in 0..10 {
        let req = request("T", 1, &body(i));
        let r = store.put_message(req).await.unwrap();
        assert_eq!(r.physical_offsets, vec![r.first_physical_offset]);
        offsets.push((r.first_physical_offset, r.store_timestamp));
    }
    assert_eq!(store.max_offset("T", 1), 10);
    assert_eq!(store.min_offset("T", 1), 0);
    assert_eq!(store.max_offset("T", 0), 0);

    let r = store.get_messages("T", 1, 0, 32, &all);
    assert_eq!(r.status, GetStatus::Found);
    assert_eq!(r.messages.len(), 10);
    assert_eq!(
        (r.min_offset, r.max_offset, r.next_begin_offset),
        (0, 10, 10)
    );
    for (i, m) in r.messages.iter().enumerate() {
        let d = record::decode(m, true).unwrap();
        assert_eq!(d.body, body(i).as_slice());
        assert_eq!(d.queue_offset, i as i64);
        assert_eq!(d.physical_offset, offsets[i].0);
        assert_eq!(d.store_timestamp, offsets[i].1);
        assert_eq!(d.queue_id, 1);
        assert_eq!(store.read_record(d.physical_offset).unwrap(), m);
    }
    assert_eq!(store.read_record(offsets[0].0 + 1), None);
    assert_eq!(
        store.max_physical_offset(),
        offsets[9].0 + r.messages[9].len() as i64
    );
    assert_eq!(store.min_physical_offset(), 0);
    assert_eq!(store.topics_and_queues(), vec![("T".to_owned(), 1)]);
    store.shutdown();
}

#[tokio::test]
async fn batch_gets_consecutive_queue_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(config(dir.path())).unwrap();
    put_n(&store, "T", 0, 0..3).await;
    let batch = (3..8).map(|i| request("T", 0, &body(i))).collect();
    let r = store.put_messages(batch).await.unwrap();
    assert_eq!(r.first_queue_offset, 3);
    assert_eq!(r.physical_offsets.len(), 5);
    assert!(r.physical_offsets.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(bodies(&store, "T", 0), (0..8).map(body).collect::<Vec<_>>());

    let mixed = vec![request("T", 0, b"a"), request("T", 1, b"b")];
    assert!(store.put_messages(mixed).await.is_err());
    assert!(store.put_messages(Vec::new()).await.is_err());
    store.shutdown();
}

#[tokio::test]
async fn concurrent_producers_get_contiguous_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(config(dir.path())).unwrap();
    let mut tasks = Vec::new();
    for t in 0..4 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                let q = (i % 2) as i32;
                store
                    .put_message(request("T", q, &body(t * 100 + i)))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(bodies(&store, "T", 0).len(), 100);
    assert_eq!(bodies(&store, "T", 1).len(), 100);
    store.shutdown();
}

#[tokio::test]
async fn segments_roll_over_with_a_blank_filler() {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(config(dir.path())).unwrap();
    let big = vec![7u8; 1000];
    for i in 0..200 {
        let r = store.put_message(request("T", 0, &big)).await.unwrap();
        assert_eq!(r.first_queue_offset, i);
        let start = r.first_physical_offset % (64 * 1024);
        assert!(
            start + 1100 <= 64 * 1024,
            "a record never straddles segments"
        );
    }
    assert!(commit_log_files(dir.path()).len() >= 3);
    assert_eq!(bodies(&store, "T", 0).len(), 200);
    store.shutdown();

    let store = MessageStore::open(config(dir.path())).unwrap();
    let got = bodies(&store, "T", 0);
    assert_eq!(got.len(), 200);
    assert!(got.iter().all(|b| *b == big));
    put_n(&store, "T", 1, 0..1).await;
    store.shutdown();
}

/// Batches written with one vectored write per segment: a batch that crosses a segment's end
/// gets the BLANK filler and continues in the next segment, every record readable before and
/// after a restart.
#[tokio::test]
async fn batches_roll_over_segments_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(config(dir.path())).unwrap();
    let mut sent = Vec::new();
    for b in 0..12 {
        let batch: Vec<_> = (0..20)
            .map(|i| {
                let payload = vec![(b * 20 + i) as u8; 300 + i * 7];
                sent.push(payload.clone());
                request("T", 0, &payload)
            })
            .collect();
        let r = store.put_messages(batch).await.unwrap();
        assert_eq!(r.first_queue_offset, b as i64 * 20);
        assert_eq!(r.physical_offsets.len(), 20);
        for (k, phys) in r.physical_offsets.iter().enumerate() {
            let start = phys % (64 * 1024);
            let len = 300 + k as i64 * 7;
            assert!(
                start + len <= 64 * 1024,
                "a record never straddles segments"
            );
            let bytes = store.read_record(*phys).unwrap();
            let rec = record::decode(&bytes, true).unwrap();
            assert_eq!(rec.physical_offset, *phys);
            assert_eq!(rec.queue_offset, b as i64 * 20 + k as i64);
        }
    }
    assert!(commit_log_files(dir.path()).len() >= 2);
    assert_eq!(bodies(&store, "T", 0), sent);
    store.shutdown();

    let store = MessageStore::open(config(dir.path())).unwrap();
    assert_eq!(bodies(&store, "T", 0), sent);
    store.shutdown();
}

#[tokio::test]
async fn clean_restart_continues_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(config(dir.path())).unwrap();
    assert!(dir.path().join("abort").exists());
    put_n(&store, "A", 0, 0..5).await;
    put_n(&store, "B", 3, 0..2).await;
    let end = store.max_physical_offset();
    store.shutdown();
    store.shutdown();
    assert!(!dir.path().join("abort").exists());
    assert!(store.put_message(request("A", 0, b"late")).await.is_err());
    drop(store);

    let store = MessageStore::open(config(dir.path())).unwrap();
    assert_eq!(store.max_physical_offset(), end);
    assert_eq!(store.max_offset("A", 0), 5);
    assert_eq!(store.max_offset("B", 3), 2);
    put_n(&store, "A", 0, 5..8).await;
    assert_eq!(bodies(&store, "A", 0), (0..8).map(body).collect::<Vec<_>>());
    assert_eq!(
        store.topics_and_queues(),
        vec![("A".to_owned(), 0), ("B".to_owned(), 3)]
    );
    store.shutdown();
}

#[tokio::test]
async fn crash_keeps_every_acknowledged_message() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig {
        flush_interval_ms: 60_000,
        ..config(dir.path())
    };
    let store = MessageStore::open(cfg.clone()).unwrap();
    put_n(&store, "T", 0, 0..300).await;
    drop(store); // no shutdown: abort marker stays, nothing flushed or checkpointed
    assert!(dir.path().join("abort").exists());

    let store = MessageStore::open(cfg).unwrap();
    assert_eq!(
        bodies(&store, "T", 0),
        (0..300).map(body).collect::<Vec<_>>()
    );
    put_n(&store, "T", 0, 300..301).await;
    store.shutdown();
}

/// Physical offset and size of the last record of queue `topic`/0.
fn last_record(store: &MessageStore, topic: &str) -> (i64, usize) {
    let max = store.max_offset(topic, 0);
    let r = store.get_messages(topic, 0, max - 1, 1, &all);
    let d = record::decode(&r.messages[0], true).unwrap();
    (d.physical_offset, d.total_size as usize)
}

fn segment_of(root: &Path, physical_offset: i64) -> (std::fs::File, u64) {
    let segment = 64 * 1024;
    let start = physical_offset - physical_offset % segment;
    let path = root.join("commitlog").join(format!("{start:020}"));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    (file, (physical_offset - start) as u64)
}

#[tokio::test]
async fn crash_with_torn_tail_drops_only_the_torn_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(config(dir.path())).unwrap();
    put_n(&store, "T", 0, 0..100).await;
    let (phys, size) = last_record(&store, "T");
    drop(store);

    // The last record was only half written when the machine died.
    let (file, pos) = segment_of(dir.path(), phys);
    file.write_all_at(&vec![0u8; size / 2], pos + (size / 2) as u64)
        .unwrap();

    let store = MessageStore::open(config(dir.path())).unwrap();
    assert_eq!(store.max_offset("T", 0), 99);
    assert_eq!(store.max_physical_offset(), phys);
    assert_eq!(
        bodies(&store, "T", 0),
        (0..99).map(body).collect::<Vec<_>>()
    );
    put_n(&store, "T", 0, 99..101).await;
    store.shutdown();

    let store = MessageStore::open(config(dir.path())).unwrap();
    assert_eq!(bodies(&store, "T", 0).len(), 101);
    store.shutdown();
}

#[tokio::test]
async fn crash_with_corrupt_last_record_drops_only_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(config(dir.path())).unwrap();
    put_n(&store, "T", 0, 0..40).await;
    put_n(&store, "U", 0, 0..2).await;
    let (phys, size) = last_record(&store, "U");
    drop(store);

    // Flip a byte in the body of the last record: its CRC no longer matches.
    let (file, pos) = segment_of(dir.path(), phys);
    let at = pos + size as u64 - 12;
    let mut b = [0u8; 1];
    file.read_exact_at(&mut b, at).unwrap();
    file.write_all_at(&[b[0] ^ 0xFF], at).unwrap();

    let store = MessageStore::open(config(dir.path())).unwrap();
    assert_eq!(store.max_physical_offset(), phys);
    assert_eq!(
        bodies(&store, "T", 0),
        (0..40).map(body).collect::<Vec<_>>()
    );
    assert_eq!(bodies(&store, "U", 0), vec![body(0)]);
    put_n(&store, "U", 0, 1..2).await;
    store.shutdown();
}

#[tokio::test]
async fn crash_rebuilds_lost_consume_queue_entries() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig {
        flush_interval_ms: 60_000,
        ..config(dir.path())
    };
    let store = MessageStore::open(cfg.clone()).unwrap();
    put_n(&store, "T", 2, 0..20).await;
    drop(store);
    // The consume queue never reached the disk.
    std::fs::remove_dir_all(dir.path().join("consumequeue/T")).unwrap();

    let store = MessageStore::open(cfg).unwrap();
    assert_eq!(
        bodies(&store, "T", 2),
        (0..20).map(body).collect::<Vec<_>>()
    );
    store.shutdown();
}

#[tokio::test]
async fn sync_flush_acknowledges_after_the_flush() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig {
        flush_disk_type: FlushDiskType::SyncFlush,
        flush_interval_ms: 60_000,
        ..config(dir.path())
    };
    let store = MessageStore::open(cfg).unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            store
                .put_message(request("T", 0, &body(i)))
                .await
                .unwrap()
                .status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), AppendStatus::PutOk);
    }
    store.shutdown();
}

#[tokio::test]
async fn get_messages_statuses_follow_rocketmq() {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(config(dir.path())).unwrap();
    let r = store.get_messages("T", 0, 5, 32, &all);
    assert_eq!(
        (r.status, r.next_begin_offset),
        (GetStatus::NoMessageInQueue, 0)
    );

    for i in 0..6 {
        let tag = if i % 2 == 0 { "even" } else { "odd" };
        store
            .put_message(request_with_flag("T", 0, &body(i), tag, 0))
            .await
            .unwrap();
    }
    let r = store.get_messages("T", 0, 6, 32, &all);
    assert_eq!(
        (r.status, r.next_begin_offset),
        (GetStatus::OffsetOverflowOne, 6)
    );
    let r = store.get_messages("T", 0, 9, 32, &all);
    assert_eq!(
        (r.status, r.next_begin_offset),
        (GetStatus::OffsetOverflowBadly, 6)
    );
    let r = store.get_messages("T", 0, -1, 32, &all);
    assert_eq!(
        (r.status, r.next_begin_offset),
        (GetStatus::OffsetTooSmall, 0)
    );

    let r = store.get_messages("T", 0, 1, 2, &all);
    assert_eq!(
        (r.status, r.messages.len(), r.next_begin_offset),
        (GetStatus::Found, 2, 3)
    );

    let odd = i64::from(java_string_hash("odd"));
    let only_odd = move |code: i64| code == odd;
    let r = store.get_messages("T", 0, 0, 32, &only_odd);
    assert_eq!(r.messages.len(), 3);
    assert_eq!(r.next_begin_offset, 6);
    let none = |_: i64| false;
    let r = store.get_messages("T", 0, 0, 32, &none);
    assert_eq!(
        (r.status, r.next_begin_offset),
        (GetStatus::NoMatchedMessage, 6)
    );
    store.shutdown();
}

/// Keeps `TagA` entries (tag hash) whose stored `n` property is even (SQL92), counting how
/// many records it was asked about.
struct TagAndEvenN {
    tag_a: i64,
    even_n: petrel_common::filter::Sql92Filter,
    properties_checked: AtomicI64,
}

impl petrel_common::filter::MessageFilter for TagAndEvenN {
    fn matches_tags_code(&self, tags_code: i64) -> bool {
        tags_code == self.tag_a
    }

    fn needs_properties(&self) -> bool {
        true
    }

    fn matches_properties(&self, properties: &[u8]) -> bool {
        self.properties_checked.fetch_add(1, Ordering::Relaxed);
        self.even_n.matches_encoded(properties)
    }
}

#[tokio::test]
async fn get_messages_checks_the_tag_hash_then_the_stored_properties() {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(config(dir.path())).unwrap();
    for i in 0..12 {
        let tag = if i % 3 == 0 { "TagB" } else { "TagA" };
        let props = format!("TAGS\u{1}{tag}\u{2}n\u{1}{i}\u{2}");
        let tags_code = i64::from(java_string_hash(tag));
        let req = append_request("T", 0, &body(i), &props, 0, tags_code);
        store.put_message(req).await.unwrap();
    }
    let filter = TagAndEvenN {
        tag_a: i64::from(java_string_hash("TagA")),
        even_n: petrel_common::filter::Sql92Filter::compile("n IN ('2', '4', '8', '10')").unwrap(),
        properties_checked: AtomicI64::new(0),
    };
    let r = store.get_messages("T", 0, 0, 32, &filter);
    let ns: Vec<String> = r
        .messages
        .iter()
        .map(|m| {
            let d = record::decode(m, false).unwrap();
            String::from_utf8(d.body.to_vec()).unwrap()
        })
        .collect();
    let want: Vec<String> = [2, 4, 8, 10]
        .iter()
        .map(|&i| String::from_utf8(body(i)).unwrap())
        .collect();
    assert_eq!(ns, want);
    assert_eq!(r.next_begin_offset, 12);
    // Only the 8 TagA entries were read from the commit log.
    assert_eq!(filter.properties_checked.load(Ordering::Relaxed), 8);
    store.shutdown();
}

#[tokio::test]
async fn pull_stops_at_the_transfer_byte_cap() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig {
        commit_log_file_size: 4 * 1024 * 1024,
        ..config(dir.path())
    };
    let store = MessageStore::open(cfg).unwrap();
    let big = vec![1u8; 100 * 1024];
    for _ in 0..4 {
        store.put_message(request("T", 0, &big)).await.unwrap();
    }
    let r = store.get_messages("T", 0, 0, 32, &all);
    assert_eq!((r.messages.len(), r.next_begin_offset), (2, 2));

    let huge = vec![2u8; 300 * 1024];
    store.put_message(request("T", 0, &huge)).await.unwrap();
    let r = store.get_messages("T", 0, 4, 32, &all);
    assert_eq!(r.messages.len(), 1, "always at least one message");
    store.shutdown();
}

#[tokio::test]
async fn offset_by_timestamp_finds_first_message_at_or_after() {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(config(dir.path())).unwrap();
    let mut times = Vec::new();
    for i in 0..6 {
        let r = store.put_message(request("T", 0, &body(i))).await.unwrap();
        times.push(r.store_timestamp);
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    assert!(times.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(store.offset_by_timestamp("T", 0, 0), 0);
    assert_eq!(store.offset_by_timestamp("T", 0, times[3]), 3);
    assert_eq!(store.offset_by_timestamp("T", 0, times[3] - 1), 3);
    assert_eq!(store.offset_by_timestamp("T", 0, times[5] + 1), 6);
    assert_eq!(store.offset_by_timestamp("X", 0, 0), 0);
    assert_eq!(store.earliest_message_time("T", 0), Some(times[0]));
    assert_eq!(store.earliest_message_time("X", 0), None);
    store.shutdown();
}

#[tokio::test]
async fn arrival_listener_sees_new_max_offset() {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(config(dir.path())).unwrap();
    let seen = Arc::new(AtomicI64::new(-1));
    let s = Arc::clone(&seen);
    store.set_arrival_listener(Arc::new(move |topic, queue_id, max| {
        assert_eq!((topic, queue_id), ("T", 4));
        s.store(max, Ordering::SeqCst);
    }));
    put_n(&store, "T", 4, 0..3).await;
    assert_eq!(seen.load(Ordering::SeqCst), 3);
    store.shutdown();
}

#[tokio::test]
async fn prepared_transaction_records_get_no_queue_entry() {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(config(dir.path())).unwrap();
    let prepared = record::SYSFLAG_TRANSACTION_PREPARED;
    let r = store
        .put_message(request_with_flag("T", 0, b"half", "t", prepared))
        .await
        .unwrap();
    assert_eq!(r.first_queue_offset, 0);
    assert_eq!(store.max_offset("T", 0), 0);
    assert!(store.read_record(r.first_physical_offset).is_some());
    put_n(&store, "T", 0, 0..1).await;
    store.shutdown();
}

#[tokio::test]
async fn oversized_and_malformed_records_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig {
        max_message_bytes: 1024,
        ..config(dir.path())
    };
    let store = MessageStore::open(cfg).unwrap();
    let too_big = vec![0u8; 70 * 1024];
    assert!(store.put_message(request("T", 0, &too_big)).await.is_err());
    let mut bad = request("T", 0, b"x");
    bad.record.truncate(50);
    assert!(store.put_message(bad).await.is_err());
    assert_eq!(store.max_physical_offset(), 0);
    store.shutdown();
}

#[tokio::test]
async fn crash_after_checkpoints_recovers_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    // A long flush interval, so that once a checkpoint is seen the next one is half a second
    // away: the appends below land after it and before the crash, whatever the machine's load.
    let slow_checkpoints = StoreConfig {
        flush_interval_ms: 500,
        ..config(dir.path())
    };
    let store = MessageStore::open(slow_checkpoints).unwrap();
    let big = vec![3u8; 900];
    for _ in 0..100 {
        store.put_message(request("T", 0, &big)).await.unwrap();
    }
    let logics_flushed = || {
        std::fs::read(dir.path().join("checkpoint"))
            .ok()
            .filter(|c| c.len() >= 56)
            .map_or(0, |c| i64::from_be_bytes(c[48..56].try_into().unwrap()))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while logics_flushed() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint was written"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    for _ in 0..100 {
        store.put_message(request("T", 0, &big)).await.unwrap();
        store.put_message(request("V", 1, b"v")).await.unwrap();
    }
    let end = store.max_physical_offset();
    drop(store);
    assert!(commit_log_files(dir.path()).len() >= 4);
    let logics_flushed = logics_flushed();
    assert!(
        logics_flushed > 0 && logics_flushed < end,
        "recovery starts mid-log"
    );

    let store = MessageStore::open(config(dir.path())).unwrap();
    assert_eq!(store.max_physical_offset(), end);
    assert_eq!(bodies(&store, "T", 0).len(), 200);
    assert_eq!(bodies(&store, "V", 1).len(), 100);
    store.shutdown();
}

/// The warmer creates the next segment ahead of need; after a crash or a clean stop that empty
/// file is just an empty last segment, and the log carries on from the real end.
#[tokio::test]
async fn a_prepared_standby_segment_survives_crash_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(config(dir.path())).unwrap();
    // With 64 KiB segments the warmer prepares the next one as soon as there is a first.
    put_n(&store, "S", 0, 0..40).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while commit_log_files(dir.path()).len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "no standby segment was prepared"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let end = store.max_physical_offset();
    drop(store); // crash

    let store = MessageStore::open(config(dir.path())).unwrap();
    assert_eq!(store.max_physical_offset(), end);
    put_n(&store, "S", 0, 40..120).await; // rolls over into (and past) the standby segment
    assert_eq!(
        bodies(&store, "S", 0),
        (0..120).map(body).collect::<Vec<_>>()
    );
    store.shutdown();
    drop(store);

    let store = MessageStore::open(config(dir.path())).unwrap();
    assert_eq!(
        bodies(&store, "S", 0),
        (0..120).map(body).collect::<Vec<_>>()
    );
    store.shutdown();
}

/// After a clean stop recovery trusts the checkpoint; if the last record was damaged on disk
/// while the broker was down, the rebuild finds it and recovery falls back to the crash path:
/// scan, cut the damaged record, serve the rest.
#[tokio::test]
async fn damage_after_a_clean_stop_is_cut_like_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(config(dir.path())).unwrap();
    put_n(&store, "T", 0, 0..100).await;
    let (phys, size) = last_record(&store, "T");
    store.shutdown();
    drop(store);

    // The index rebuild starts at the last indexed record, so it meets the damage.
    let (file, pos) = segment_of(dir.path(), phys);
    file.write_all_at(&vec![0u8; size / 2], pos + (size / 2) as u64)
        .unwrap();

    let store = MessageStore::open(config(dir.path())).unwrap();
    assert_eq!(store.max_offset("T", 0), 99);
    assert_eq!(store.max_physical_offset(), phys);
    assert_eq!(
        bodies(&store, "T", 0),
        (0..99).map(body).collect::<Vec<_>>()
    );
    put_n(&store, "T", 0, 99..101).await;
    store.shutdown();
}
