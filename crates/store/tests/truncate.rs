//! A slave's store cut back to a divergence point (controller mode): the log, the consume
//! queues, key queries and the epoch history all end at the cut, replicated bytes continue
//! exactly there, and neither a crash nor a clean restart brings the cut records back.

mod common;

use std::path::Path;

use petrel_common::record::{self, java_string_hash};
use petrel_store::{EpochEntry, GetStatus, MessageStore, StoreConfig, StoreError};

use common::{all, append_request};

const SEGMENT: u64 = common::SMALL_SEGMENT;
const TOPIC: &str = "Cut";

fn config(root: &Path) -> StoreConfig {
    common::small_files_config(root)
}

/// Puts `n` messages with keys `k0..`; returns each one's physical offset and queue.
async fn fill(master: &MessageStore, n: usize) -> Vec<(i64, i32)> {
    let mut out = Vec::new();
    for i in 0..n {
        let props = format!("TAGS\u{1}t\u{2}KEYS\u{1}k{i}\u{2}");
        let body = vec![b'a' + (i % 26) as u8; 100 + (i * 37) % 900];
        let q = (i % 3) as i32;
        let r = master
            .put_message(append_request(
                TOPIC,
                q,
                &body,
                &props,
                0,
                i64::from(java_string_hash("t")),
            ))
            .await
            .unwrap();
        out.push((r.first_physical_offset, q));
    }
    out
}

/// Streams the master's log into the slave from the slave's write end.
fn stream(master: &MessageStore, slave: &MessageStore, chunk: usize) {
    let mut next = slave.replica_write_end();
    loop {
        let bytes = master
            .replication_chunk(next, chunk)
            .expect("offset in the log");
        if bytes.is_empty() {
            return;
        }
        next = slave.append_replicated(next, &bytes).unwrap();
    }
}

fn found_by_key(store: &MessageStore, key: &str) -> usize {
    store
        .query_by_key(TOPIC, key, 8, 0, i64::MAX)
        .messages
        .len()
}

/// Checks that `store` holds exactly messages `0..kept` of `offsets`.
fn assert_cut(store: &MessageStore, offsets: &[(i64, i32)], kept: usize) {
    assert_eq!(store.max_physical_offset(), offsets[kept].0);
    assert_eq!(store.replica_write_end(), offsets[kept].0);
    for q in 0..3 {
        let expected = offsets[..kept].iter().filter(|(_, qq)| *qq == q).count() as i64;
        assert_eq!(store.max_offset(TOPIC, q), expected, "queue {q}");
        let r = store.get_messages(TOPIC, q, expected, 32, &all);
        assert!(r.messages.is_empty());
        assert_eq!(r.status, GetStatus::OffsetOverflowOne);
        if expected > 0 {
            let r = store.get_messages(TOPIC, q, expected - 1, 32, &all);
            assert_eq!(r.messages.len(), 1);
        }
    }
    assert!(store.read_record(offsets[kept].0).is_none());
    assert_eq!(found_by_key(store, &format!("k{kept}")), 0);
    assert_eq!(found_by_key(store, &format!("k{}", offsets.len() - 1)), 0);
    assert_eq!(found_by_key(store, &format!("k{}", kept - 1)), 1);
}

#[tokio::test]
async fn a_cut_in_the_middle_of_a_record_drops_it_and_everything_after_for_good() {
    let (m_dir, s_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let master = MessageStore::open(config(m_dir.path())).unwrap();
    let offsets = fill(&master, 400).await;
    assert!(master.max_physical_offset() > 3 * SEGMENT as i64);
    // A record in the second segment: later segments go entirely.
    let kept = offsets
        .iter()
        .position(|(o, _)| *o > SEGMENT as i64 + 1000)
        .unwrap();
    let cut = offsets[kept].0;
    {
        let slave = MessageStore::open(config(s_dir.path())).unwrap();
        slave.set_replica(true);
        stream(&master, &slave, 1000);
        assert_eq!(found_by_key(&slave, &format!("k{kept}")), 1);
        let epochs = [(1, 0), (2, cut), (3, cut + 1), (4, offsets[kept + 20].0)];
        for (epoch, start_offset) in epochs {
            slave
                .epochs()
                .append(EpochEntry {
                    epoch,
                    start_offset,
                })
                .unwrap();
        }

        // Inside the record: the cut goes to its start.
        slave.truncate_to(cut + 10).unwrap();
        assert_cut(&slave, &offsets, kept);
        let left: Vec<_> = slave.epochs().entries().iter().map(|e| e.epoch).collect();
        assert_eq!(left, vec![1, 2], "the epoch starting at the cut stays");
        // A cut at a record boundary that is already the end changes nothing.
        slave.truncate_to(cut).unwrap();
        assert_cut(&slave, &offsets, kept);
        drop(slave); // a crash: no shutdown
    }
    {
        let slave = MessageStore::open(config(s_dir.path())).unwrap();
        assert_cut(&slave, &offsets, kept);
        assert_eq!(slave.epochs().entries().len(), 2);
        slave.shutdown();
    }
    let slave = MessageStore::open(config(s_dir.path())).unwrap();
    assert_cut(&slave, &offsets, kept);
    slave.set_replica(true);

    // Replicated bytes continue exactly at the cut (append_replicated refuses any other
    // offset), and the records they bring are dispatched and indexed again.
    assert_eq!(slave.replica_write_end(), cut);
    let wrong = master.replication_chunk(cut + 1, 100).unwrap();
    assert!(matches!(
        slave.append_replicated(cut + 1, &wrong),
        Err(StoreError::Replication(_))
    ));
    stream(&master, &slave, 777);
    assert_eq!(slave.max_physical_offset(), master.max_physical_offset());
    for q in 0..3 {
        assert_eq!(slave.max_offset(TOPIC, q), master.max_offset(TOPIC, q));
    }
    let r = slave.get_messages(
        TOPIC,
        offsets[kept].1,
        slave.max_offset(TOPIC, offsets[kept].1) - 1,
        1,
        &all,
    );
    assert_eq!(r.messages.len(), 1);
    assert_eq!(found_by_key(&slave, &format!("k{kept}")), 1);
    assert_eq!(found_by_key(&slave, "k399"), 1);
    let m = slave.read_record(cut).unwrap();
    assert_eq!(record::decode(&m, true).unwrap().physical_offset, cut);
    master.shutdown();
    slave.shutdown();
}

#[tokio::test]
async fn a_partial_chunk_past_the_last_whole_record_is_dropped() {
    let (m_dir, s_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let master = MessageStore::open(config(m_dir.path())).unwrap();
    let offsets = fill(&master, 50).await;
    let slave = MessageStore::open(config(s_dir.path())).unwrap();
    slave.set_replica(true);
    let chunk = master.replication_chunk(0, 5000).unwrap();
    slave.append_replicated(0, &chunk).unwrap();
    let whole = slave.max_physical_offset();
    assert!(whole < 5000);
    slave.truncate_to(5000).unwrap();
    assert_eq!(slave.max_physical_offset(), whole);
    assert_eq!(slave.replica_write_end(), whole);
    stream(&master, &slave, 333);
    assert_eq!(slave.max_physical_offset(), master.max_physical_offset());
    assert_eq!(found_by_key(&slave, "k49"), 1);
    assert!(offsets.iter().any(|(o, _)| *o == whole));
    slave.shutdown();
    master.shutdown();
}

#[tokio::test]
async fn a_cut_is_refused_on_a_master_past_the_end_and_below_the_minimum() {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(config(dir.path())).unwrap();
    let offsets = fill(&store, 10).await;
    let end = store.max_physical_offset();
    assert!(matches!(
        store.truncate_to(offsets[5].0),
        Err(StoreError::Truncate(_))
    ));
    store.set_replica(true);
    assert!(matches!(
        store.truncate_to(end + 1),
        Err(StoreError::Truncate(_))
    ));
    assert!(matches!(
        store.truncate_to(-1),
        Err(StoreError::Truncate(_))
    ));
    assert_eq!(store.max_physical_offset(), end, "refusals change nothing");
    assert_eq!(store.max_offset(TOPIC, 0), 4);
    // Down to nothing is allowed.
    store.truncate_to(0).unwrap();
    assert_eq!(store.max_physical_offset(), 0);
    assert_eq!(store.max_offset(TOPIC, 0), 0);
    store.shutdown();
    let store = MessageStore::open(config(dir.path())).unwrap();
    assert_eq!(store.max_physical_offset(), 0);
    assert_eq!(store.max_offset(TOPIC, 0), 0);
    store.shutdown();
}
