//! SYNC_FLUSH with a disk slower than `sync_flush_timeout_ms`: the put answers
//! FlushDiskTimeout on time, the message stays stored and readable, and the store recovers once
//! the disk is fast again. The slow disk is the store's `flush_fault` hook.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use petrel_common::record::{self};
use petrel_store::{
    AppendRequest, AppendStatus, FlushDiskType, GetStatus, MessageStore, StoreConfig,
};

use common::append_request;

const SYNC_FLUSH_TIMEOUT: Duration = Duration::from_millis(300);
/// Far beyond the timeout, so a put that waited for the flush cannot pass for one that timed out.
const SLOW_FLUSH: Duration = Duration::from_secs(2);

fn config(root: &Path, flush: FlushDiskType) -> StoreConfig {
    StoreConfig {
        commit_log_file_size: 1024 * 1024,
        flush_disk_type: flush,
        // Only the group-commit path flushes during the test.
        flush_interval_ms: 60_000,
        sync_flush_timeout_ms: SYNC_FLUSH_TIMEOUT.as_millis() as u64,
        ..StoreConfig::new(root)
    }
}

fn request(body: &[u8]) -> AppendRequest {
    append_request("Slow", 0, body, "", 0, 0)
}

fn stored_bodies(store: &MessageStore) -> Vec<Vec<u8>> {
    let r = store.get_messages("Slow", 0, 0, 32, &|_| true);
    assert_eq!(r.status, GetStatus::Found, "{r:?}");
    r.messages
        .iter()
        .map(|m| record::decode(m, true).unwrap().body.to_vec())
        .collect()
}

#[tokio::test]
async fn a_flush_slower_than_the_timeout_answers_flush_disk_timeout_and_keeps_the_message() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), FlushDiskType::SyncFlush);
    let fault = cfg.flush_fault.clone();
    let store = MessageStore::open(cfg.clone()).unwrap();

    // Fast disk: the ordinary answer.
    let ok = store.put_message(request(b"before")).await.unwrap();
    assert_eq!(ok.status, AppendStatus::PutOk);

    fault.set_delay(SLOW_FLUSH);
    let started = Instant::now();
    let slow = store.put_message(request(b"slow")).await.unwrap();
    let waited = started.elapsed();
    assert_eq!(slow.status, AppendStatus::FlushDiskTimeout);
    assert!(
        waited >= SYNC_FLUSH_TIMEOUT && waited < SLOW_FLUSH,
        "answered after {waited:?}: should be the timeout ({SYNC_FLUSH_TIMEOUT:?}), not the flush"
    );
    // Stored all the same, at the next offsets, and visible to consumers at once.
    assert_eq!(slow.first_queue_offset, 1);
    assert!(slow.first_physical_offset > ok.first_physical_offset);
    assert_eq!(
        stored_bodies(&store),
        [b"before".to_vec(), b"slow".to_vec()]
    );

    // The disk recovers: once the stalled flush is over, puts are acknowledged again.
    fault.set_delay(Duration::ZERO);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let r = store
            .put_message(request(format!("after-{attempt}").as_bytes()))
            .await
            .unwrap();
        if r.status == AppendStatus::PutOk {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still FlushDiskTimeout {attempt} puts after the disk recovered"
        );
    }
    store.shutdown();
    drop(store);

    // Every message, the timed-out one included, survives a restart.
    let store = MessageStore::open(cfg).unwrap();
    let bodies = stored_bodies(&store);
    assert_eq!(bodies.len(), 2 + attempt);
    assert_eq!(bodies[..2], [b"before".to_vec(), b"slow".to_vec()]);
    store.shutdown();
}

#[tokio::test]
async fn every_waiter_of_a_stalled_group_commit_times_out_on_time() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), FlushDiskType::SyncFlush);
    cfg.flush_fault.set_delay(SLOW_FLUSH);
    let store = MessageStore::open(cfg.clone()).unwrap();
    let started = Instant::now();
    let puts: Vec<_> = (0..16)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let r = store
                    .put_message(request(format!("m{i}").as_bytes()))
                    .await
                    .unwrap();
                (r.status, started.elapsed())
            })
        })
        .collect();
    for p in puts {
        let (status, at) = p.await.unwrap();
        assert_eq!(status, AppendStatus::FlushDiskTimeout);
        assert!(at < SLOW_FLUSH, "a waiter was answered after {at:?}");
    }
    assert_eq!(store.max_offset("Slow", 0), 16);
    cfg.flush_fault.set_delay(Duration::ZERO);
    store.shutdown();
}

#[tokio::test]
async fn async_flush_puts_do_not_wait_for_a_slow_disk() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig {
        flush_interval_ms: 50,
        ..config(dir.path(), FlushDiskType::AsyncFlush)
    };
    cfg.flush_fault.set_delay(SLOW_FLUSH);
    let store = MessageStore::open(cfg.clone()).unwrap();
    let started = Instant::now();
    for i in 0..10 {
        let r = store
            .put_message(request(format!("m{i}").as_bytes()))
            .await
            .unwrap();
        assert_eq!(r.status, AppendStatus::PutOk);
    }
    let took = started.elapsed();
    assert!(took < SYNC_FLUSH_TIMEOUT, "10 async puts took {took:?}");
    cfg.flush_fault.set_delay(Duration::ZERO);
    store.shutdown();
}
