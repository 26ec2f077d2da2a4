//! Retention through `MessageStore`'s public API: expired segments go (never the one being
//! written), consume-queue and index files below the log's minimum follow, min offsets move,
//! reads below them say OffsetTooSmall, appends go on, restarts (clean and crash) recover; and a
//! full disk (simulated through the injectable usage probe) refuses appends until it drains.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use petrel_common::record::{self, java_string_hash};
use petrel_store::{
    AppendRequest, AppendStatus, DiskUsageFn, GetStatus, MessageStore, StoreConfig, StoreError,
};

use common::append_request;

const SEGMENT_BYTES: u64 = 64 * 1024;
const RESERVED: Duration = Duration::from_secs(1);
const EVERY_HOUR: &str = "00;01;02;03;04;05;06;07;08;09;10;11;12;13;14;15;16;17;18;19;20;21;22;23";

/// A disk whose used ratio the test sets.
#[derive(Clone)]
struct FakeDisk(Arc<AtomicU64>);

impl FakeDisk {
    fn new(used: f64) -> FakeDisk {
        FakeDisk(Arc::new(AtomicU64::new(used.to_bits())))
    }

    fn set(&self, used: f64) {
        self.0.store(used.to_bits(), Ordering::Release);
    }

    fn probe(&self) -> DiskUsageFn {
        let used = Arc::clone(&self.0);
        DiskUsageFn::new(move |_| Ok(f64::from_bits(used.load(Ordering::Acquire))))
    }
}

/// Small segments, a one-second reservation, every hour a deletion hour, and a retention
/// thread too slow to interfere: the tests run passes themselves.
fn config(root: &Path, disk: &FakeDisk) -> StoreConfig {
    StoreConfig {
        commit_log_file_size: SEGMENT_BYTES,
        consume_queue_entries_per_file: 16,
        flush_interval_ms: 20,
        max_hash_slot_num: 64,
        max_index_num: 40,
        file_reserved_time: RESERVED,
        delete_when: EVERY_HOUR.to_owned(),
        clean_resource_interval_ms: 600_000,
        delete_commit_log_files_interval_ms: 0,
        disk_usage_of: disk.probe(),
        ..StoreConfig::new(root)
    }
}

fn request(topic: &str, queue_id: i32, i: usize) -> AppendRequest {
    let props = format!("TAGS\u{1}TagA\u{2}KEYS\u{1}key-{i}\u{2}");
    let tags_code = i64::from(java_string_hash("TagA"));
    append_request(topic, queue_id, &body(i), &props, 0, tags_code)
}

/// About 1 KiB, numbered, so a segment holds some sixty.
fn body(i: usize) -> Vec<u8> {
    let mut b = format!("message-{i}-").into_bytes();
    b.resize(1000, b'x');
    b
}

fn all(_: i64) -> bool {
    true
}

async fn put_range(store: &MessageStore, queue_id: i32, range: std::ops::Range<usize>) {
    for i in range {
        let r = store.put_message(request("T", queue_id, i)).await.unwrap();
        assert_eq!(r.status, AppendStatus::PutOk);
    }
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn start_offset_of(path: &Path) -> i64 {
    path.file_name().unwrap().to_str().unwrap().parse().unwrap()
}

/// Everything readable in queue `T`/`queue_id` from its min offset: checks each record's queue
/// offset and returns the message numbers from the bodies.
fn numbers_from_min(store: &MessageStore, queue_id: i32) -> Vec<usize> {
    let mut out = Vec::new();
    let mut offset = store.min_offset("T", queue_id);
    loop {
        let r = store.get_messages("T", queue_id, offset, 32, &all);
        if r.status != GetStatus::Found {
            return out;
        }
        for m in &r.messages {
            let d = record::decode(m, true).unwrap();
            assert_eq!(d.queue_offset, offset, "queue offsets are contiguous");
            assert!(d.physical_offset >= store.min_physical_offset());
            let text = std::str::from_utf8(&d.body[8..]).unwrap();
            out.push(text.split('-').next().unwrap().parse().unwrap());
            offset += 1;
        }
    }
}

/// What a reader of queue `queue_id` must see once segments are gone: the min offset is the
/// first entry still in the log, one below it is OffsetTooSmall pointing at it, and everything
/// from it up to the max offset reads back.
fn assert_min_offset_is_first_live_entry(store: &MessageStore, queue_id: i32, max: i64) {
    let min = store.min_offset("T", queue_id);
    assert!(min > 0, "queue {queue_id} min offset moved");
    let below = store.get_messages("T", queue_id, min - 1, 1, &all);
    assert_eq!(below.status, GetStatus::OffsetTooSmall);
    assert_eq!(below.next_begin_offset, min);
    assert_eq!(below.min_offset, min);
    let numbers = numbers_from_min(store, queue_id);
    assert_eq!(numbers.len() as i64, max - min);
    assert_eq!(store.max_offset("T", queue_id), max);
}

#[tokio::test]
async fn expired_segments_go_and_every_reader_moves_to_the_new_minimum() {
    let dir = tempfile::tempdir().unwrap();
    let disk = FakeDisk::new(0.10);
    let cfg = config(dir.path(), &disk);
    let store = MessageStore::open(cfg.clone()).unwrap();
    let first_write = Instant::now();
    // Queue 0 gets even numbers, queue 1 odd ones: about 5 segments of both.
    for i in 0..240 {
        put_range(&store, (i % 2) as i32, i..i + 1).await;
    }
    let segments_before = files_in(&cfg.commit_log_dir());
    assert!(segments_before.len() >= 4, "{segments_before:?}");
    let cq_files_before = files_in(&cfg.consume_queue_dir().join("T/0")).len();
    // The index is written behind the appends; a key query waits until it has caught up.
    store.query_by_key("T", "no-such-key", 1, 0, i64::MAX);
    let index_files_before = files_in(&cfg.index_dir()).len();
    assert!(index_files_before >= 4, "small index files roll over");
    // A zero-copy pull answer over the oldest segment, held across its deletion.
    let held = store.get_messages("T", 0, 0, 4, &all);
    assert_eq!(held.status, GetStatus::Found);

    // Before the reservation has run out nothing goes (a machine too loaded to write the
    // segments within it cannot show this).
    let nothing_expired = store.run_retention_pass();
    if first_write.elapsed() < RESERVED {
        assert_eq!(nothing_expired.deleted_segments, 0);
        assert_eq!(store.min_offset("T", 0), 0);
    }

    tokio::time::sleep(RESERVED + Duration::from_millis(300)).await;
    let current = store.max_physical_offset();
    let report = store.run_retention_pass();
    assert!(report.deleted_segments >= 3, "{report:?}");
    assert!(!report.disk_full);
    assert!(report.deleted_consume_queue_files > 0, "{report:?}");
    assert!(report.deleted_index_files > 0, "{report:?}");

    // Only the segment being written is left of the old run (plus, maybe, its prepared
    // successor), and the log now starts there.
    let log_min = store.min_physical_offset();
    assert_eq!(report.min_physical_offset, log_min);
    assert!(log_min <= current && current < log_min + SEGMENT_BYTES as i64);
    let remaining = files_in(&cfg.commit_log_dir());
    assert!(remaining.iter().all(|p| start_offset_of(p) >= log_min));
    assert_eq!(start_offset_of(&remaining[0]), log_min);
    assert!(store.read_record(0).is_none());
    assert!(store.earliest_commit_log_time().is_some());

    // The held answer still reads: deleting unlinks, it never unmaps under a reader.
    let first = record::decode(&held.messages[0], true).unwrap();
    assert_eq!(first.body, &body(0)[..]);
    drop(held);

    // Consume queues: files wholly below the log are gone, the min offset is the first entry
    // still in the log.
    let cq_files = files_in(&cfg.consume_queue_dir().join("T/0"));
    assert!(cq_files.len() < cq_files_before);
    for queue_id in 0..2 {
        assert_min_offset_is_first_live_entry(&store, queue_id, 120);
        assert!(
            start_offset_of(&files_in(&cfg.consume_queue_dir().join(format!("T/{queue_id}")))[0])
                / 20
                <= store.min_offset("T", queue_id)
        );
    }
    let min0 = store.min_offset("T", 0);
    assert_eq!(store.offset_by_timestamp("T", 0, 0), min0);

    // Index files below the log are gone; an old key finds nothing, a live one its message.
    assert!(files_in(&cfg.index_dir()).len() < index_files_before);
    let live = numbers_from_min(&store, 0)[0];
    assert_eq!(
        store
            .query_by_key("T", "key-0", 8, 0, i64::MAX)
            .messages
            .len(),
        0
    );
    assert_eq!(
        store
            .query_by_key("T", &format!("key-{live}"), 8, 0, i64::MAX)
            .messages
            .len(),
        1
    );

    // Appends go on with the next queue offsets.
    for i in 240..260 {
        put_range(&store, (i % 2) as i32, i..i + 1).await;
    }
    for queue_id in 0..2 {
        assert_min_offset_is_first_live_entry(&store, queue_id, 130);
    }

    // A clean restart sees the same minimums.
    let mins = (store.min_offset("T", 0), store.min_offset("T", 1));
    store.shutdown();
    drop(store);
    let store = MessageStore::open(cfg.clone()).unwrap();
    assert_eq!(store.min_physical_offset(), log_min);
    assert_eq!((store.min_offset("T", 0), store.min_offset("T", 1)), mins);
    for queue_id in 0..2 {
        assert_min_offset_is_first_live_entry(&store, queue_id, 130);
    }
    put_range(&store, 0, 260..261).await;
    assert_eq!(store.max_offset("T", 0), 131);

    // So does a start after a crash (abort marker left, nothing flushed at the end).
    drop(store);
    assert!(dir.path().join("abort").exists());
    let store = MessageStore::open(cfg).unwrap();
    assert_eq!(store.min_physical_offset(), log_min);
    assert_eq!((store.min_offset("T", 0), store.min_offset("T", 1)), mins);
    assert_min_offset_is_first_live_entry(&store, 0, 131);
    assert_min_offset_is_first_live_entry(&store, 1, 130);
    put_range(&store, 1, 261..262).await;
    assert_eq!(store.max_offset("T", 1), 131);
    store.shutdown();
}

#[tokio::test]
async fn outside_delete_when_only_disk_pressure_deletes_and_past_the_forcible_ratio_unexpired_too()
{
    let dir = tempfile::tempdir().unwrap();
    let disk = FakeDisk::new(0.10);
    let cfg = StoreConfig {
        // No deletion hour at all: only the disk can trigger deletion.
        delete_when: String::new(),
        delete_file_batch_max: 2,
        ..config(dir.path(), &disk)
    };
    let store = MessageStore::open(cfg.clone()).unwrap();
    put_range(&store, 0, 0..400).await;
    let segments = files_in(&cfg.commit_log_dir()).len();
    assert!(segments >= 6, "{segments}");
    tokio::time::sleep(RESERVED + Duration::from_millis(300)).await;

    assert_eq!(
        store.run_retention_pass().deleted_segments,
        0,
        "not the hour"
    );
    disk.set(0.80);
    let pressed = store.run_retention_pass();
    assert_eq!(
        pressed.deleted_segments, 2,
        "above 75 %: expired ones, up to the batch cap"
    );

    // Segments written from now on are not expired; above 85 % the oldest go anyway.
    put_range(&store, 0, 400..600).await;
    let unexpired = StoreConfig {
        file_reserved_time: Duration::from_secs(3600),
        ..cfg.clone()
    };
    store.shutdown();
    drop(store);
    let store = MessageStore::open(unexpired).unwrap();
    let before = store.min_physical_offset();
    disk.set(0.80);
    assert_eq!(
        store.run_retention_pass().deleted_segments,
        0,
        "none expired"
    );
    disk.set(0.87);
    let forced = store.run_retention_pass();
    assert_eq!(forced.deleted_segments, 2);
    assert!(!forced.disk_full, "0.87 is below the warning level");
    assert_eq!(
        store.min_physical_offset(),
        before + 2 * SEGMENT_BYTES as i64
    );
    let min = store.min_offset("T", 0);
    assert_eq!(
        store.get_messages("T", 0, min - 1, 1, &all).status,
        GetStatus::OffsetTooSmall
    );
    assert_eq!(
        store.get_messages("T", 0, min, 1, &all).status,
        GetStatus::Found
    );
    store.shutdown();
}

#[tokio::test]
async fn a_full_disk_refuses_appends_until_usage_drops() {
    let dir = tempfile::tempdir().unwrap();
    let disk = FakeDisk::new(0.10);
    let cfg = StoreConfig {
        clean_resource_interval_ms: 50,
        // Nothing is old enough to delete: the disk stays "full" until the test says otherwise.
        file_reserved_time: Duration::from_secs(3600),
        ..config(dir.path(), &disk)
    };
    let store = MessageStore::open(cfg.clone()).unwrap();
    put_range(&store, 0, 0..1).await;

    disk.set(0.93);
    let report = store.run_retention_pass();
    assert!(report.disk_full);
    assert_eq!(report.disk_used_ratio, Some(0.93));
    assert_eq!(store.disk_used_ratio(), Some(0.93));
    match store.put_message(request("T", 0, 1)).await {
        Err(e @ StoreError::DiskFull { .. }) => {
            let text = e.to_string();
            assert!(text.contains("disk is full"), "{text}");
            assert!(text.contains("93.0%") && text.contains("0.9"), "{text}");
        }
        other => panic!("expected DiskFull, got {other:?}"),
    }
    assert_eq!(store.max_offset("T", 0), 1, "nothing was stored");

    // The retention thread notices the disk draining on its own.
    disk.set(0.50);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match store.put_message(request("T", 0, 1)).await {
            Ok(r) => {
                assert_eq!(r.first_queue_offset, 1);
                break;
            }
            Err(StoreError::DiskFull { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("appends did not resume: {e}"),
        }
    }
    store.shutdown();
    drop(store);

    // A store opened on a full disk refuses its very first append.
    disk.set(0.95);
    let store = MessageStore::open(cfg).unwrap();
    assert!(matches!(
        store.put_message(request("T", 0, 2)).await,
        Err(StoreError::DiskFull { .. })
    ));
    store.shutdown();
}

#[test]
fn bad_retention_settings_are_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let disk = FakeDisk::new(0.10);
    let bad_hour = StoreConfig {
        delete_when: "04;25".into(),
        ..config(dir.path(), &disk)
    };
    assert!(matches!(
        MessageStore::open(bad_hour),
        Err(StoreError::BadRequest(_))
    ));
    let bad_ratio = StoreConfig {
        disk_space_warning_level_ratio: 90.0,
        ..config(dir.path(), &disk)
    };
    assert!(matches!(
        MessageStore::open(bad_ratio),
        Err(StoreError::BadRequest(_))
    ));
}
