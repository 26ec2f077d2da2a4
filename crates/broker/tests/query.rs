//! QUERY_MESSAGE and VIEW_MESSAGE_BY_ID over a real socket: what `mqadmin queryMsgByKey`,
//! `queryMsgByUniqueKey` and `queryMsgById` see.

mod common;

use petrel_broker::BrokerHandle;
use petrel_common::msg_id::decode_offset_msg_id;
use petrel_common::properties::{Properties, KEYS, TAGS, UNIQ_KEY};
use petrel_common::record;
use petrel_remoting::code::{request, response};
use petrel_remoting::headers::*;
use petrel_remoting::{Connection, RemotingCommand};

use common::{connect, start_broker_with, TIMEOUT};

async fn start_broker(dir: &std::path::Path) -> BrokerHandle {
    start_broker_with(dir, |c| {
        c.store.max_hash_slot_num = 1024;
        c.store.max_index_num = 4096;
    })
    .await
}

fn send_request(topic: &str, body: &str, keys: &str, uniq: &str) -> RemotingCommand {
    let mut props = Properties::new();
    props.insert(TAGS, "TagA");
    props.insert(KEYS, keys);
    props.insert(UNIQ_KEY, uniq);
    common::send_request(topic, 0, body.as_bytes(), &props)
}

/// Sends one message; returns the offsetMsgId of the send response.
async fn send(conn: &Connection, topic: &str, body: &str, keys: &str, uniq: &str) -> String {
    let resp = conn
        .request(send_request(topic, body, keys, uniq), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
    resp.decode_header::<SendMessageResponseHeader>()
        .unwrap()
        .msg_id
}

fn query_request(topic: &str, key: &str, max_num: i32, unique: bool) -> RemotingCommand {
    let header = QueryMessageRequestHeader {
        topic: topic.into(),
        key: key.into(),
        max_num,
        begin_timestamp: 0,
        end_timestamp: i64::MAX,
    };
    let mut cmd = RemotingCommand::request_with_header(request::QUERY_MESSAGE, &header);
    if unique {
        cmd.ext_fields.insert("_UNIQUE_KEY_QUERY", "true");
    }
    cmd
}

/// Bodies of the records concatenated in a response body.
fn bodies(body: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        let rec = record::decode(&body[pos..], true).unwrap();
        out.push(String::from_utf8(rec.body.to_vec()).unwrap());
        pos += rec.total_size as usize;
    }
    out
}

#[tokio::test]
async fn query_message_finds_messages_by_key_and_by_unique_key() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path()).await;
    let conn = connect(&broker).await;
    for i in 0..6 {
        let keys = format!("order-{} all", i % 3);
        send(
            &conn,
            "Orders",
            &format!("body-{i}"),
            &keys,
            &format!("UNIQ{i}"),
        )
        .await;
    }
    send(&conn, "Other", "elsewhere", "order-1", "UNIQ-other").await;

    let resp = conn
        .request(query_request("Orders", "order-1", 32, false), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
    assert_eq!(bodies(&resp.body_bytes()), ["body-1", "body-4"]);
    let h: QueryMessageResponseHeader = resp.decode_header().unwrap();
    assert!(h.index_last_update_timestamp > 0);
    assert!(h.index_last_update_phyoffset > 0);

    let resp = conn
        .request(query_request("Orders", "all", 2, false), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(
        bodies(&resp.body_bytes()),
        ["body-4", "body-5"],
        "maxNum newest"
    );

    // A unique-key query ignores maxNum.
    let resp = conn
        .request(query_request("Orders", "UNIQ3", 0, true), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
    assert_eq!(bodies(&resp.body_bytes()), ["body-3"]);

    let resp = conn
        .request(query_request("Orders", "order-9", 32, false), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(resp.code, response::QUERY_NOT_FOUND);
    assert!(resp.remark.is_some());
    broker.shutdown().await;
}

#[tokio::test]
async fn view_message_by_id_returns_the_record_the_send_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path()).await;
    let conn = connect(&broker).await;
    send(&conn, "Orders", "first", "k1", "U1").await;
    let msg_id = send(&conn, "Orders", "second", "k2", "U2").await;
    let (_, offset) = decode_offset_msg_id(&msg_id).unwrap();
    let view = |offset| {
        RemotingCommand::request_with_header(
            request::VIEW_MESSAGE_BY_ID,
            &ViewMessageRequestHeader {
                offset,
                topic: None,
            },
        )
    };
    let resp = conn.request(view(offset), TIMEOUT).await.unwrap();
    assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
    let body = resp.body_bytes();
    let rec = record::decode(&body, true).unwrap();
    assert_eq!(rec.total_size as usize, body.len());
    assert_eq!((rec.topic, rec.body), ("Orders", &b"second"[..]));
    assert_eq!(rec.physical_offset, offset);

    let resp = conn
        .request(view(offset + 1_000_000), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(resp.code, response::SYSTEM_ERROR);
    broker.shutdown().await;
}
