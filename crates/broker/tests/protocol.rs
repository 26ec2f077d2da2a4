//! The broker over real sockets, driven with raw remoting commands: what a client of any
//! language sees on the wire.

mod common;

use std::time::{Duration, Instant};

use petrel_common::properties::{Properties, KEYS, TAGS, UNIQ_KEY};
use petrel_common::record;
use petrel_remoting::code::{request, response};
use petrel_remoting::headers::*;
use petrel_remoting::{Connection, RemotingCommand, SerializeType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use common::{connect, heartbeat, pull_request, start_broker, TIMEOUT};

fn send_request(topic: &str, queue_id: i32, body: &[u8], tag: &str, key: &str) -> RemotingCommand {
    let mut props = Properties::new();
    props.insert(TAGS, tag);
    props.insert(KEYS, key);
    props.insert(UNIQ_KEY, format!("UNIQ-{key}"));
    common::send_request(topic, queue_id, body, &props)
}

#[tokio::test]
async fn send_then_pull_returns_the_stored_records() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path()).await;
    let conn = connect(&broker).await;
    for i in 0..10 {
        let resp = conn
            .request(
                send_request(
                    "Orders",
                    i % 2,
                    format!("body-{i}").as_bytes(),
                    "TagA",
                    &format!("k{i}"),
                ),
                TIMEOUT,
            )
            .await
            .unwrap();
        assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
        let h: SendMessageResponseHeader = resp.decode_header().unwrap();
        assert_eq!(h.queue_id, i % 2);
        assert_eq!(h.queue_offset, (i / 2) as i64);
        assert_eq!(h.msg_id.len(), 32);
        assert_eq!(
            h.transaction_id.as_deref(),
            Some(format!("UNIQ-k{i}").as_str())
        );
        assert_eq!(resp.ext_fields.get("MSG_REGION"), Some("DefaultRegion"));
    }
    heartbeat(&conn, "cg", "Orders").await;
    let resp = conn
        .request(pull_request("cg", "Orders", 1, 0, 1000), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
    let h: PullMessageResponseHeader = resp.decode_header().unwrap();
    assert_eq!((h.next_begin_offset, h.min_offset, h.max_offset), (5, 0, 5));
    let body = resp.body_bytes();
    let mut pos = 0;
    let mut bodies = Vec::new();
    while pos < body.len() {
        let rec = record::decode(&body[pos..], true).unwrap();
        assert_eq!(rec.topic, "Orders");
        assert_eq!(rec.queue_id, 1);
        bodies.push(String::from_utf8(rec.body.to_vec()).unwrap());
        pos += rec.total_size as usize;
    }
    assert_eq!(bodies, ["body-1", "body-3", "body-5", "body-7", "body-9"]);
    broker.shutdown().await;
}

/// The 4.9.x Java producer sends properties without the trailing separator; what the broker
/// adds (UNIQ_KEY, CLUSTER) must not be glued onto the producer's last value.
#[tokio::test]
async fn properties_without_a_trailing_separator_keep_their_last_value() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path()).await;
    let conn = connect(&broker).await;
    let java_style = "KEYS\u{1}k1\u{2}WAIT\u{1}true\u{2}TAGS\u{1}A";
    let mut send = common::send_request("Tags", 0, b"b", &Properties::new());
    let mut h: SendMessageRequestHeaderV2 = send.decode_header().unwrap();
    h.properties = Some(java_style.to_owned());
    send =
        RemotingCommand::request_with_header(request::SEND_MESSAGE_V2, &h).with_body(b"b".to_vec());
    let resp = conn.request(send, TIMEOUT).await.unwrap();
    assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);

    heartbeat(&conn, "cg", "Tags").await;
    let resp = conn
        .request(pull_request("cg", "Tags", 0, 0, 0), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
    let body = resp.body_bytes();
    let rec = record::decode(&body, true).unwrap();
    let props = Properties::from_stored(rec.properties);
    assert_eq!(props.get(TAGS), Some("A"));
    assert_eq!(props.get(KEYS), Some("k1"));
    assert_eq!(props.get("CLUSTER"), Some("DefaultCluster"));
    assert_eq!(props.get(UNIQ_KEY).map(str::len), Some(32));
    broker.shutdown().await;
}

#[tokio::test]
async fn a_parked_pull_answers_within_50ms_of_a_send() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path()).await;
    let conn = connect(&broker).await;
    let resp = conn
        .request(send_request("Wake", 0, b"first", "t", "k0"), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(resp.code, response::SUCCESS);
    heartbeat(&conn, "cg", "Wake").await;
    let puller = conn.clone();
    let parked = tokio::spawn(async move {
        let resp = puller
            .request(
                pull_request("cg", "Wake", 0, 1, 15_000),
                Duration::from_secs(30),
            )
            .await
            .unwrap();
        (resp, Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !parked.is_finished(),
        "the pull should be parked, not answered"
    );
    let sent_at = Instant::now();
    let resp = conn
        .request(send_request("Wake", 0, b"second", "t", "k1"), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(resp.code, response::SUCCESS);
    let (resp, answered_at) = parked.await.unwrap();
    assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
    let waited = answered_at.duration_since(sent_at);
    assert!(
        waited < Duration::from_millis(50),
        "answered {waited:?} after the send"
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn a_parked_pull_times_out_with_pull_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path()).await;
    let conn = connect(&broker).await;
    conn.request(send_request("Idle", 0, b"x", "t", "k"), TIMEOUT)
        .await
        .unwrap();
    heartbeat(&conn, "cg", "Idle").await;
    let started = Instant::now();
    let resp = conn
        .request(pull_request("cg", "Idle", 0, 1, 300), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(resp.code, response::PULL_NOT_FOUND);
    assert!(started.elapsed() >= Duration::from_millis(290));
    let h: PullMessageResponseHeader = resp.decode_header().unwrap();
    assert_eq!(h.next_begin_offset, 1);
    broker.shutdown().await;
}

#[tokio::test]
async fn an_oversized_message_is_refused_with_message_illegal() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path()).await;
    let conn = connect(&broker).await;
    let big = vec![7u8; 4 * 1024 * 1024 + 1];
    let resp = conn
        .request(send_request("Big", 0, &big, "t", "k"), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(resp.code, response::MESSAGE_ILLEGAL);
    assert!(resp.remark.unwrap().contains("maxMessageSize"));
    // The connection is still good.
    let resp = conn
        .request(send_request("Big", 0, b"small", "t", "k"), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(resp.code, response::SUCCESS);
    broker.shutdown().await;
}

#[tokio::test]
async fn bad_topic_names_and_unknown_codes_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path()).await;
    let conn = connect(&broker).await;
    let resp = conn
        .request(send_request("bad topic!", 0, b"x", "t", "k"), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(resp.code, response::INVALID_PARAMETER);
    assert!(resp.remark.unwrap().contains("topic"));
    let resp = conn
        .request(RemotingCommand::request(4242), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(resp.code, response::REQUEST_CODE_NOT_SUPPORTED);
    let mut missing = RemotingCommand::request(request::SEND_MESSAGE_V2);
    missing.ext_fields.insert("b", "T");
    let resp = conn.request(missing, TIMEOUT).await.unwrap();
    assert_eq!(resp.code, response::INVALID_PARAMETER);
    assert!(resp.remark.unwrap().contains("missing"));
    broker.shutdown().await;
}

#[tokio::test]
async fn binary_headers_get_binary_answers() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path()).await;
    let conn = connect(&broker).await;
    let mut cmd = send_request("Bin", 0, b"x", "t", "k");
    cmd.serialize_type = SerializeType::RocketMq;
    let resp = conn.request(cmd, TIMEOUT).await.unwrap();
    assert_eq!(resp.code, response::SUCCESS);
    assert_eq!(resp.serialize_type, SerializeType::RocketMq);
    broker.shutdown().await;
}

#[tokio::test]
async fn a_garbage_frame_closes_only_its_own_connection() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path()).await;
    let good = connect(&broker).await;
    let mut bad = tokio::net::TcpStream::connect(broker.local_addr())
        .await
        .unwrap();
    bad.write_all(&[0, 0, 0, 12, 9, 0, 0, 4, b'j', b'u', b'n', b'k', 0, 0, 0, 0])
        .await
        .unwrap();
    let mut buf = [0u8; 8];
    let n = tokio::time::timeout(TIMEOUT, bad.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 0);
    let resp = good
        .request(send_request("Still", 0, b"x", "t", "k"), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(resp.code, response::SUCCESS);
    broker.shutdown().await;
}

#[tokio::test]
async fn acknowledged_messages_and_offsets_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path()).await;
    let conn = connect(&broker).await;
    for i in 0..100 {
        let resp = conn
            .request(
                send_request("Durable", 0, format!("m{i}").as_bytes(), "t", "k"),
                TIMEOUT,
            )
            .await
            .unwrap();
        assert_eq!(resp.code, response::SUCCESS);
    }
    let commit = UpdateConsumerOffsetRequestHeader {
        consumer_group: "cg".into(),
        topic: "Durable".into(),
        queue_id: 0,
        commit_offset: 42,
    };
    let resp = conn
        .request(
            RemotingCommand::request_with_header(request::UPDATE_CONSUMER_OFFSET, &commit),
            TIMEOUT,
        )
        .await
        .unwrap();
    assert_eq!(resp.code, response::SUCCESS);
    broker.shutdown().await;

    let broker = start_broker(dir.path()).await;
    let conn = connect(&broker).await;
    let q = QueueRequestHeader {
        topic: "Durable".into(),
        queue_id: 0,
    };
    let resp = conn
        .request(
            RemotingCommand::request_with_header(request::GET_MAX_OFFSET, &q),
            TIMEOUT,
        )
        .await
        .unwrap();
    assert_eq!(
        resp.decode_header::<OffsetResponseHeader>().unwrap().offset,
        100
    );
    let query = QueryConsumerOffsetRequestHeader {
        consumer_group: "cg".into(),
        topic: "Durable".into(),
        queue_id: 0,
        set_zero_if_not_found: None,
    };
    let resp = conn
        .request(
            RemotingCommand::request_with_header(request::QUERY_CONSUMER_OFFSET, &query),
            TIMEOUT,
        )
        .await
        .unwrap();
    assert_eq!(
        resp.decode_header::<OffsetResponseHeader>().unwrap().offset,
        42
    );
    broker.shutdown().await;
}

/// One message of a SEND_BATCH_MESSAGE body (reference §4.8).
fn batch_entry(body: &[u8], props: &str) -> Vec<u8> {
    let total = 4 + 4 + 4 + 4 + 4 + body.len() + 2 + props.len();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as i32).to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes()); // magic: unused in batches
    out.extend_from_slice(&0i32.to_be_bytes()); // body crc: unused in batches
    out.extend_from_slice(&0i32.to_be_bytes()); // flag
    out.extend_from_slice(&(body.len() as i32).to_be_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&(props.len() as i16).to_be_bytes());
    out.extend_from_slice(props.as_bytes());
    out
}

/// A SEND_BATCH_MESSAGE header for `queue_id` of `topic`.
fn batch_header(topic: &str, queue_id: i32) -> SendMessageRequestHeaderV2 {
    SendMessageRequestHeaderV2 {
        producer_group: "pg".into(),
        topic: topic.into(),
        default_topic: "TBW102".into(),
        default_topic_queue_nums: 4,
        queue_id,
        sys_flag: 0,
        born_timestamp: 1,
        flag: 0,
        batch: Some(true),
        ..Default::default()
    }
}

/// (queue offset, body) of each record of a pull answer.
fn stored_bodies(resp: &RemotingCommand) -> Vec<(i64, String)> {
    let body = resp.body_bytes();
    let mut pos = 0;
    let mut got = Vec::new();
    while pos < body.len() {
        let rec = record::decode(&body[pos..], true).unwrap();
        got.push((
            rec.queue_offset,
            String::from_utf8(rec.body.to_vec()).unwrap(),
        ));
        pos += rec.total_size as usize;
    }
    got
}

#[tokio::test]
async fn a_batch_is_stored_as_consecutive_messages() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path()).await;
    let conn = connect(&broker).await;
    let mut body = Vec::new();
    for i in 0..5 {
        let mut p = Properties::new();
        p.insert(KEYS, format!("b{i}"));
        p.insert(UNIQ_KEY, format!("BATCH-{i}"));
        body.extend(batch_entry(format!("batch-{i}").as_bytes(), p.as_str()));
    }
    let header = batch_header("Batched", 2);
    let cmd =
        RemotingCommand::request_with_header(request::SEND_BATCH_MESSAGE, &header).with_body(body);
    let resp = conn.request(cmd, TIMEOUT).await.unwrap();
    assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
    let h: SendMessageResponseHeader = resp.decode_header().unwrap();
    assert_eq!(h.queue_offset, 0);
    assert_eq!(h.msg_id.split(',').count(), 5);

    heartbeat(&conn, "cg", "Batched").await;
    let resp = conn
        .request(pull_request("cg", "Batched", 2, 0, 1000), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(resp.code, response::SUCCESS);
    let got = stored_bodies(&resp);
    let want: Vec<_> = (0..5).map(|i| (i as i64, format!("batch-{i}"))).collect();
    assert_eq!(got, want);

    // A malformed batch is refused and stores nothing.
    let cmd = RemotingCommand::request_with_header(request::SEND_BATCH_MESSAGE, &header)
        .with_body(vec![0, 0, 0, 99, 1, 2, 3]);
    let resp = conn.request(cmd, TIMEOUT).await.unwrap();
    assert_eq!(resp.code, response::MESSAGE_ILLEGAL);
    let q = QueueRequestHeader {
        topic: "Batched".into(),
        queue_id: 2,
    };
    let resp = conn
        .request(
            RemotingCommand::request_with_header(request::GET_MAX_OFFSET, &q),
            TIMEOUT,
        )
        .await
        .unwrap();
    assert_eq!(
        resp.decode_header::<OffsetResponseHeader>().unwrap().offset,
        5
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn delayed_messages_in_a_batch_wait_while_the_rest_arrive_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path()).await;
    let conn = connect(&broker).await;
    // b1 waits for delay level 1 (1 s), b3 for a 5.x timer; b0 and b2 are plain.
    let asks: [&[(&str, &str)]; 4] = [&[], &[("DELAY", "1")], &[], &[("TIMER_DELAY_MS", "300")]];
    let mut body = Vec::new();
    for (i, ask) in asks.iter().enumerate() {
        let mut p = Properties::new();
        p.insert(KEYS, format!("b{i}"));
        for (name, value) in *ask {
            p.insert(name, value);
        }
        body.extend(batch_entry(format!("mixed-{i}").as_bytes(), p.as_str()));
    }
    let header = batch_header("MixedBatch", 1);
    let cmd =
        RemotingCommand::request_with_header(request::SEND_BATCH_MESSAGE, &header).with_body(body);
    let resp = conn.request(cmd, TIMEOUT).await.unwrap();
    assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
    let h: SendMessageResponseHeader = resp.decode_header().unwrap();
    assert_eq!(h.msg_id.split(',').count(), 4, "one id per message sent");

    let max_offset = |conn: &Connection| {
        let q = QueueRequestHeader {
            topic: "MixedBatch".into(),
            queue_id: 1,
        };
        let cmd = RemotingCommand::request_with_header(request::GET_MAX_OFFSET, &q);
        let conn = conn.clone();
        async move {
            let resp = conn.request(cmd, TIMEOUT).await.unwrap();
            resp.decode_header::<OffsetResponseHeader>().unwrap().offset
        }
    };
    assert_eq!(
        max_offset(&conn).await,
        2,
        "only the plain messages are there at once"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while max_offset(&conn).await < 4 {
        assert!(Instant::now() < deadline, "the delayed messages never came");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    heartbeat(&conn, "cg", "MixedBatch").await;
    let resp = conn
        .request(pull_request("cg", "MixedBatch", 1, 0, 1000), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(resp.code, response::SUCCESS);
    let got: Vec<String> = stored_bodies(&resp).into_iter().map(|(_, b)| b).collect();
    assert_eq!(&got[..2], ["mixed-0", "mixed-2"]);
    let mut later = got[2..].to_vec();
    later.sort();
    assert_eq!(later, ["mixed-1", "mixed-3"]);
    broker.shutdown().await;
}

#[tokio::test]
async fn search_offset_by_timestamp_finds_the_first_message_at_or_after() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path()).await;
    let conn = connect(&broker).await;
    for i in 0..3 {
        conn.request(
            send_request("Timed", 0, b"early", "t", &format!("e{i}")),
            TIMEOUT,
        )
        .await
        .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let middle = petrel_common::msg_id::now_ms() as i64;
    tokio::time::sleep(Duration::from_millis(20)).await;
    for i in 0..2 {
        conn.request(
            send_request("Timed", 0, b"late", "t", &format!("l{i}")),
            TIMEOUT,
        )
        .await
        .unwrap();
    }
    let search = |timestamp: i64| SearchOffsetRequestHeader {
        topic: "Timed".into(),
        queue_id: 0,
        timestamp,
    };
    for (ts, want) in [(0, 0), (middle, 3), (i64::MAX, 5)] {
        let resp = conn
            .request(
                RemotingCommand::request_with_header(
                    request::SEARCH_OFFSET_BY_TIMESTAMP,
                    &search(ts),
                ),
                TIMEOUT,
            )
            .await
            .unwrap();
        assert_eq!(resp.code, response::SUCCESS);
        assert_eq!(
            resp.decode_header::<OffsetResponseHeader>().unwrap().offset,
            want,
            "at {ts}"
        );
    }
    broker.shutdown().await;
}
