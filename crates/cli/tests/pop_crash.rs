//! kill -9 of `petrel standalone` with POP deliveries in flight: what was acknowledged stays
//! done, what was handed out stays invisible until its time is up (its receipt still acks),
//! and what was never handed out is handed out after the restart, each exactly once.

#[allow(dead_code)] // each test binary uses part of the helpers
mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::Petrel;
use petrel_client::{Message, Producer, SendStatus};
use petrel_common::properties::{Properties, KEYS};
use petrel_common::record;
use petrel_remoting::code::{request, response};
use petrel_remoting::headers::{
    AckMessageRequestHeader, PopMessageRequestHeader, PopMessageResponseHeader,
};
use petrel_remoting::{Connection, NoRequests, RemotingCommand};

const TOPIC: &str = "PopCrash";
const GROUP: &str = "PopCrashGroup";
const TIMEOUT: Duration = Duration::from_secs(10);

/// A delivery as a remoting POP client keeps it: the message's key, queue and offset, and the
/// receipt it would ack with.
struct Delivery {
    key: String,
    queue_id: i32,
    offset: i64,
    extra_info: String,
}

async fn pop(conn: &Connection, max: i32) -> Vec<Delivery> {
    let req = RemotingCommand::request_with_header(
        request::POP_MESSAGE,
        &PopMessageRequestHeader {
            consumer_group: GROUP.into(),
            topic: TOPIC.into(),
            queue_id: -1,
            max_msg_nums: max,
            invisible_time: 120_000,
            poll_time: 0,
            born_time: 0,
            init_mode: 0,
            exp_type: None,
            exp: None,
            order: None,
            attempt_id: None,
        },
    );
    let resp = conn.request(req, TIMEOUT).await.expect("POP_MESSAGE");
    if resp.code == response::POLLING_TIMEOUT {
        return Vec::new();
    }
    assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
    let h: PopMessageResponseHeader = resp.decode_header().expect("POP response header");
    let body = resp.body_bytes();
    let mut rest = &body[..];
    let mut out = Vec::new();
    while !rest.is_empty() {
        let rec = record::decode(rest, true).expect("a whole record");
        let key = Properties::from_stored(rec.properties)
            .get(KEYS)
            .expect("a key")
            .to_owned();
        out.push(Delivery {
            key,
            queue_id: rec.queue_id,
            offset: rec.queue_offset,
            extra_info: format!(
                "{} {} {} {} 0 broker-a {} {}",
                rec.queue_offset,
                h.pop_time,
                h.invisible_time,
                h.revive_qid,
                rec.queue_id,
                rec.queue_offset
            ),
        });
        rest = &rest[rec.total_size as usize..];
    }
    out
}

async fn ack(conn: &Connection, d: &Delivery) -> i32 {
    let req = RemotingCommand::request_with_header(
        request::ACK_MESSAGE,
        &AckMessageRequestHeader {
            consumer_group: GROUP.into(),
            topic: TOPIC.into(),
            queue_id: d.queue_id,
            extra_info: d.extra_info.clone(),
            offset: d.offset,
        },
    );
    conn.request(req, TIMEOUT).await.expect("ACK_MESSAGE").code
}

async fn connect(petrel: &Petrel) -> Connection {
    Connection::connect(&petrel.broker, Arc::new(NoRequests), TIMEOUT)
        .await
        .expect("connect to the broker")
}

fn keys(d: &[Delivery]) -> BTreeSet<String> {
    d.iter().map(|d| d.key.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pop_state_survives_kill_9() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let petrel = Petrel::start(&data, "async");
    petrel.create_topic(TOPIC, 4).await;
    let producer = Producer::new("PopCrashProducer", petrel.client_config("pop-crash"));
    producer.start().await.expect("start the producer");
    let mut sent = BTreeSet::new();
    for i in 0..20 {
        let key = format!("k{i:02}");
        let r = producer
            .send(Message::new(TOPIC, key.as_bytes().to_vec()).with_keys(&key))
            .await
            .expect("send");
        assert_eq!(r.status, SendStatus::SendOk);
        sent.insert(key);
    }
    producer.shutdown().await;

    let conn = connect(&petrel).await;
    let mut handed = Vec::new();
    while handed.len() < 10 {
        let got = pop(&conn, (10 - handed.len()) as i32).await;
        assert!(!got.is_empty(), "20 messages are there to pop");
        handed.extend(got);
    }
    let (acked, held) = handed.split_at(5);
    for d in acked {
        assert_eq!(ack(&conn, d).await, response::SUCCESS);
    }
    drop(conn);
    petrel.kill_9();

    let petrel = Petrel::start(&data, "async");
    let conn = connect(&petrel).await;
    let mut after = Vec::new();
    loop {
        let got = pop(&conn, 32).await;
        if got.is_empty() {
            break;
        }
        after.extend(got);
    }
    let expected: BTreeSet<String> = sent
        .iter()
        .filter(|k| !keys(&handed).contains(*k))
        .cloned()
        .collect();
    assert_eq!(keys(&after), expected, "only the never-delivered ten");
    assert_eq!(after.len(), 10, "each once");
    // The receipts from before the kill still ack what is held; the acked stay acked.
    for d in held.iter().chain(&after) {
        assert_eq!(ack(&conn, d).await, response::SUCCESS, "{}", d.key);
    }
    assert!(pop(&conn, 32).await.is_empty(), "everything is done");
    drop(conn);
    petrel.kill_9();
}
