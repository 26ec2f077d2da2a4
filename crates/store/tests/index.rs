//! The key index through `MessageStore::query_by_key`: lookups by KEYS and UNIQ_KEY, hash
//! collisions and time ranges, index file rollover, and rebuilding after restarts and crashes.

mod common;

use std::path::Path;

use petrel_common::record::{self, SYSFLAG_TRANSACTION_ROLLBACK};
use petrel_store::{AppendRequest, MessageStore, QueryResult, StoreConfig};

use common::append_request;

fn config(root: &Path) -> StoreConfig {
    StoreConfig {
        commit_log_file_size: 64 * 1024,
        consume_queue_entries_per_file: 16,
        flush_interval_ms: 20,
        max_hash_slot_num: 64,
        max_index_num: 1000,
        ..StoreConfig::new(root)
    }
}

fn request(topic: &str, body: &str, keys: &str, uniq: &str, sys_flag: i32) -> AppendRequest {
    let props = format!("TAGS\u{1}t\u{2}KEYS\u{1}{keys}\u{2}UNIQ_KEY\u{1}{uniq}\u{2}");
    append_request(topic, 0, body.as_bytes(), &props, sys_flag, 0)
}

/// Stores one message; returns its store timestamp.
async fn put(store: &MessageStore, topic: &str, body: &str, keys: &str, uniq: &str) -> i64 {
    store
        .put_message(request(topic, body, keys, uniq, 0))
        .await
        .unwrap()
        .store_timestamp
}

fn bodies(r: &QueryResult) -> Vec<String> {
    r.messages
        .iter()
        .map(|m| String::from_utf8(record::decode(m, true).unwrap().body.to_vec()).unwrap())
        .collect()
}

fn query(store: &MessageStore, topic: &str, key: &str) -> Vec<String> {
    bodies(&store.query_by_key(topic, key, 32, 0, i64::MAX))
}

fn index_files(root: &Path) -> usize {
    std::fs::read_dir(root.join("index")).unwrap().count()
}

#[tokio::test]
async fn finds_messages_by_each_key_and_by_uniq_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(config(dir.path())).unwrap();
    put(&store, "T", "a", "order-1 user-7", "U1").await;
    let ts = put(&store, "T", "b", "order-2", "U2").await;
    assert_eq!(query(&store, "T", "order-1"), ["a"]);
    assert_eq!(query(&store, "T", "user-7"), ["a"]);
    assert_eq!(query(&store, "T", "U2"), ["b"]);
    assert!(query(&store, "T", "order-3").is_empty());
    assert!(
        query(&store, "Other", "order-1").is_empty(),
        "keys are per topic"
    );
    assert!(query(&store, "T", "order").is_empty(), "no prefix matches");
    let r = store.query_by_key("T", "order-2", 32, 0, i64::MAX);
    assert_eq!(r.index_last_update_timestamp, ts);
    assert_eq!(
        r.index_last_update_phyoffset,
        record::decode(&r.messages[0], true)
            .unwrap()
            .physical_offset
    );
    store.shutdown();
}

#[tokio::test]
async fn several_messages_with_one_key_come_back_oldest_first_newest_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(config(dir.path())).unwrap();
    for i in 0..10 {
        put(&store, "T", &format!("m{i}"), "shared", &format!("U{i}")).await;
        put(
            &store,
            "T",
            &format!("other{i}"),
            "different",
            &format!("V{i}"),
        )
        .await;
    }
    let all: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    assert_eq!(query(&store, "T", "shared"), all);
    let newest = store.query_by_key("T", "shared", 3, 0, i64::MAX);
    assert_eq!(bodies(&newest), ["m7", "m8", "m9"]);
    store.shutdown();
}

#[tokio::test]
async fn hash_collisions_never_leak_into_answers() {
    let dir = tempfile::tempdir().unwrap();
    // One slot: every key shares one chain.
    let cfg = StoreConfig {
        max_hash_slot_num: 1,
        ..config(dir.path())
    };
    let store = MessageStore::open(cfg).unwrap();
    // "Aa" and "BB" have the same Java hash, so "T#Aa" and "T#BB" collide in full.
    assert_eq!(
        record::java_string_hash("T#Aa"),
        record::java_string_hash("T#BB")
    );
    put(&store, "T", "aa", "Aa", "U1").await;
    put(&store, "T", "bb", "BB", "U2").await;
    put(&store, "T", "cc", "C", "U3").await;
    assert_eq!(query(&store, "T", "Aa"), ["aa"]);
    assert_eq!(query(&store, "T", "BB"), ["bb"]);
    assert_eq!(query(&store, "T", "C"), ["cc"]);
    assert!(query(&store, "T", "D").is_empty());
    store.shutdown();
}

#[tokio::test]
async fn time_range_keeps_only_messages_stored_within_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(config(dir.path())).unwrap();
    let t0 = put(&store, "T", "early", "k", "U1").await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let t1 = put(&store, "T", "late", "k", "U2").await;
    assert!(t1 > t0);
    assert_eq!(bodies(&store.query_by_key("T", "k", 32, 0, t0)), ["early"]);
    assert_eq!(
        bodies(&store.query_by_key("T", "k", 32, t0 + 1, i64::MAX)),
        ["late"]
    );
    assert_eq!(
        bodies(&store.query_by_key("T", "k", 32, t0, t1)),
        ["early", "late"]
    );
    assert!(store
        .query_by_key("T", "k", 32, t1 + 1, i64::MAX)
        .messages
        .is_empty());
    store.shutdown();
}

#[tokio::test]
async fn rollback_records_are_not_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(config(dir.path())).unwrap();
    store
        .put_message(request(
            "T",
            "rolled",
            "k",
            "U1",
            SYSFLAG_TRANSACTION_ROLLBACK,
        ))
        .await
        .unwrap();
    put(&store, "T", "kept", "k", "U2").await;
    assert_eq!(query(&store, "T", "k"), ["kept"]);
    store.shutdown();
}

#[tokio::test]
async fn index_rolls_over_to_new_files_and_still_finds_everything() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = StoreConfig {
        max_index_num: 5,
        ..config(dir.path())
    };
    let store = MessageStore::open(cfg.clone()).unwrap();
    // Two entries per message (KEYS and UNIQ_KEY), four per file: 20 messages need 10 files.
    for i in 0..20 {
        put(
            &store,
            "T",
            &format!("m{i}"),
            &format!("k{i}"),
            &format!("U{i}"),
        )
        .await;
    }
    for i in 0..20 {
        assert_eq!(query(&store, "T", &format!("k{i}")), [format!("m{i}")]);
        assert_eq!(query(&store, "T", &format!("U{i}")), [format!("m{i}")]);
    }
    // Counted after a query: indexing follows the appends on its own thread, and a query
    // waits for it to reach the log end.
    assert_eq!(index_files(dir.path()), 10);
    store.shutdown();
    drop(store);
    let store = MessageStore::open(cfg).unwrap();
    put(&store, "T", "after", "k0", "U-after").await;
    assert_eq!(query(&store, "T", "k0"), ["m0", "after"]);
    assert_eq!(index_files(dir.path()), 11);
    store.shutdown();
}

#[tokio::test]
async fn index_survives_a_clean_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(config(dir.path())).unwrap();
    for i in 0..5 {
        put(&store, "T", &format!("m{i}"), "k", &format!("U{i}")).await;
    }
    store.shutdown();
    drop(store);
    let store = MessageStore::open(config(dir.path())).unwrap();
    assert_eq!(query(&store, "T", "k"), ["m0", "m1", "m2", "m3", "m4"]);
    put(&store, "T", "m5", "k", "U5").await;
    assert_eq!(query(&store, "T", "k").len(), 6);
    store.shutdown();
}

#[tokio::test]
async fn crash_rebuilds_a_lost_index_from_the_commit_log() {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(config(dir.path())).unwrap();
    for i in 0..500 {
        put(
            &store,
            "T",
            &format!("m{i}"),
            &format!("k{}", i % 7),
            &format!("U{i}"),
        )
        .await;
    }
    drop(store); // no shutdown: a crash
    std::fs::remove_dir_all(dir.path().join("index")).unwrap();
    let store = MessageStore::open(config(dir.path())).unwrap();
    assert_eq!(query(&store, "T", "U499"), ["m499"]);
    let k3: Vec<String> = (0..500)
        .filter(|i| i % 7 == 3)
        .map(|i| format!("m{i}"))
        .collect();
    assert_eq!(
        query(&store, "T", "k3"),
        k3[k3.len() - 32..],
        "the newest 32"
    );
    store.shutdown();
}

#[tokio::test]
async fn crash_indexes_only_what_the_index_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(config(dir.path())).unwrap();
    for i in 0..5 {
        put(&store, "T", &format!("m{i}"), "k", &format!("U{i}")).await;
    }
    store.shutdown();
    drop(store);
    // Keep the index as it stood after five messages; then five more and a crash.
    let saved = std::fs::read_dir(dir.path().join("index"))
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (p.clone(), std::fs::read(p).unwrap())
        })
        .collect::<Vec<_>>();
    let store = MessageStore::open(config(dir.path())).unwrap();
    for i in 5..10 {
        put(&store, "T", &format!("m{i}"), "k", &format!("U{i}")).await;
    }
    drop(store);
    for (path, bytes) in saved {
        std::fs::write(path, bytes).unwrap();
    }
    let store = MessageStore::open(config(dir.path())).unwrap();
    let all: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    assert_eq!(query(&store, "T", "k"), all, "each message once");
    assert_eq!(query(&store, "T", "U7"), ["m7"]);
    store.shutdown();
}
