//! A slave's store fed a master's commit log in chunks of awkward sizes (ending inside records,
//! spanning segment fillers): the slave's log is byte for byte the master's, its consume queues
//! answer the same pulls, and a crash in the middle of a record loses nothing the slave's
//! report did not already promise to re-fetch.

mod common;

use std::path::Path;

use petrel_common::record::{self, java_string_hash};
use petrel_store::{GetStatus, MessageStore, StoreConfig, StoreError};

use common::{all, append_request};

const SEGMENT: u64 = common::SMALL_SEGMENT;

fn config(root: &Path) -> StoreConfig {
    common::small_files_config(root)
}

async fn fill(master: &MessageStore, n: usize) {
    for i in 0..n {
        let tag = if i % 2 == 0 { "even" } else { "odd" };
        let props = format!("TAGS\u{1}{tag}\u{2}KEYS\u{1}k{i}\u{2}");
        let body = vec![b'a' + (i % 26) as u8; 100 + (i * 37) % 900];
        master
            .put_message(append_request(
                "Replicated",
                (i % 3) as i32,
                &body,
                &props,
                0,
                i64::from(java_string_hash(tag)),
            ))
            .await
            .unwrap();
    }
}

/// Streams the master's log into the slave from the slave's write end, `chunk` bytes at most
/// per transfer, as the HA master does.
fn stream(master: &MessageStore, slave: &MessageStore, chunk: usize) {
    let mut next = slave.replica_write_end().max(master.min_physical_offset());
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

fn queue_bodies(store: &MessageStore, queue_id: i32) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let r = store.get_messages("Replicated", queue_id, offset, 32, &all);
        if r.status != GetStatus::Found {
            return out;
        }
        for m in &r.messages {
            out.push(record::decode(m, true).unwrap().body.to_vec());
        }
        offset = r.next_begin_offset;
    }
}

fn log_bytes(store: &MessageStore) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = store.min_physical_offset();
    loop {
        let b = store.replication_chunk(at, 1 << 20).unwrap();
        if b.is_empty() {
            return out;
        }
        at += b.len() as i64;
        out.extend_from_slice(&b);
    }
}

#[tokio::test]
async fn a_slave_fed_in_odd_chunks_has_the_masters_log_and_queues() {
    let (m_dir, s_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let master = MessageStore::open(config(m_dir.path())).unwrap();
    let slave = MessageStore::open(config(s_dir.path())).unwrap();
    slave.set_replica(true);
    let mut log_end = slave.watch_log_end();
    // Enough to roll over several segments (fillers travel like any other bytes).
    fill(&master, 400).await;
    assert!(master.max_physical_offset() > 3 * SEGMENT as i64);
    stream(&master, &slave, 1000);

    assert_eq!(slave.max_physical_offset(), master.max_physical_offset());
    assert_eq!(slave.replica_write_end(), master.max_physical_offset());
    assert_eq!(*log_end.borrow_and_update(), master.max_physical_offset());
    assert!(log_bytes(&slave) == log_bytes(&master), "byte for byte");
    for q in 0..3 {
        assert_eq!(
            slave.max_offset("Replicated", q),
            master.max_offset("Replicated", q)
        );
        let got = queue_bodies(&slave, q);
        assert!(!got.is_empty());
        assert_eq!(got, queue_bodies(&master, q));
    }
    // The index follows too: a key query on the slave finds the message.
    let found = slave.query_by_key("Replicated", "k123", 8, 0, i64::MAX);
    assert_eq!(found.messages.len(), 1);
    // A slave's store takes no writes of its own.
    let refused = slave
        .put_message(append_request("Replicated", 0, b"x", "", 0, 0))
        .await;
    assert!(matches!(refused, Err(StoreError::Replica)));
    master.shutdown();
    slave.shutdown();
}

#[tokio::test]
async fn a_slave_crashed_inside_a_record_cuts_it_and_continues_from_its_report() {
    let (m_dir, s_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let master = MessageStore::open(config(m_dir.path())).unwrap();
    fill(&master, 50).await;
    {
        let slave = MessageStore::open(config(s_dir.path())).unwrap();
        slave.set_replica(true);
        // Half of a record past the last whole one.
        let first = master.replication_chunk(0, 5000).unwrap();
        slave.append_replicated(0, &first).unwrap();
        assert_eq!(slave.replica_write_end(), 5000);
        assert!(
            slave.max_physical_offset() < 5000,
            "the torn record is not visible"
        );
        drop(slave); // a crash: no shutdown
    }
    let slave = MessageStore::open(config(s_dir.path())).unwrap();
    slave.set_replica(true);
    let reported = slave.replica_write_end();
    assert!(
        reported < 5000 && reported > 0,
        "recovery cut the torn record"
    );
    assert_eq!(reported, slave.max_physical_offset());
    stream(&master, &slave, 777);
    assert!(log_bytes(&slave) == log_bytes(&master));
    for q in 0..3 {
        assert_eq!(queue_bodies(&slave, q), queue_bodies(&master, q));
    }
    master.shutdown();
    slave.shutdown();
}

#[tokio::test]
async fn bytes_from_the_wrong_offset_or_damaged_are_refused_and_leave_nothing() {
    let (m_dir, s_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let master = MessageStore::open(config(m_dir.path())).unwrap();
    let slave = MessageStore::open(config(s_dir.path())).unwrap();
    slave.set_replica(true);
    fill(&master, 20).await;
    let chunk = master.replication_chunk(0, 4096).unwrap();
    // An empty log starts only at a segment start.
    assert!(matches!(
        slave.append_replicated(100, &chunk),
        Err(StoreError::Replication(_))
    ));
    let end = slave.append_replicated(0, &chunk).unwrap();
    // A gap after its end.
    assert!(matches!(
        slave.append_replicated(end + 8, &chunk),
        Err(StoreError::Replication(_))
    ));
    // Damaged bytes: a body byte flipped fails the record's CRC.
    let whole = slave.max_physical_offset();
    let mut next = master.replication_chunk(end, 8192).unwrap().to_vec();
    // The first record wholly inside `next`: flip a byte in the middle of it (its body).
    let torn = master.read_record(whole).unwrap().len() as i64;
    let victim = master.read_record(whole + torn).unwrap().len() as i64;
    let flip = (whole + torn + victim / 2 - end) as usize;
    next[flip] ^= 0xff;
    assert!(slave.append_replicated(end, &next).is_err());
    assert_eq!(slave.replica_write_end(), slave.max_physical_offset());
    assert_eq!(
        slave.max_physical_offset(),
        whole + torn,
        "the cut keeps every whole good record"
    );
    // From there the real bytes go in.
    stream(&master, &slave, 3000);
    assert!(log_bytes(&slave) == log_bytes(&master));
    master.shutdown();
    slave.shutdown();
}
