//! POP consumption against a real broker: messages sent over the remoting wire, received,
//! acknowledged, redelivered, dead-lettered and kept in order, across a restart.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use petrel_broker::pop::{PopError, PopRequest, Popped};
use petrel_broker::BrokerHandle;
use petrel_common::properties::{Properties, KEYS, TAGS};
use petrel_common::protocol::SubscriptionData;
use petrel_common::record;
use petrel_common::topic::{perm, SubscriptionGroupConfig, TopicConfig};
use petrel_remoting::code::response;
use petrel_remoting::Connection;

use common::{connect, send_request, start_broker, TIMEOUT};

async fn send(conn: &Connection, topic: &str, queue_id: i32, key: &str, tag: &str) {
    let mut props = Properties::default();
    props.insert(KEYS, key);
    props.insert(TAGS, tag);
    let resp = conn
        .request(
            send_request(topic, queue_id, key.as_bytes(), &props),
            TIMEOUT,
        )
        .await
        .unwrap();
    assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
}

fn request(group: &str, topic: &str, max: u32, invisible: Duration, expr: &str) -> PopRequest {
    PopRequest {
        group: group.into(),
        topic: topic.into(),
        queue_id: None,
        max_messages: max,
        invisible,
        filter: SubscriptionData::tags(topic, expr, 0),
        long_poll: Duration::ZERO,
        client_id: "test-client".into(),
        auto_renew: false,
        client_addr: SocketAddr::from(([127, 0, 0, 1], 1)),
    }
}

fn keys(popped: &[Popped]) -> Vec<String> {
    let mut keys: Vec<String> = popped
        .iter()
        .map(|p| {
            let rec = record::decode(&p.record, false).unwrap();
            Properties::from_stored(rec.properties)
                .get(KEYS)
                .unwrap()
                .to_owned()
        })
        .collect();
    keys.sort();
    keys
}

fn set_group(b: &BrokerHandle, group: &str, retry_max_times: i32, fifo: bool) {
    let mut g = SubscriptionGroupConfig::new(group);
    g.retry_max_times = retry_max_times;
    g.consume_message_orderly = fifo;
    b.broker.groups.upsert(g).unwrap();
}

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test]
async fn unacked_messages_come_back_with_their_attempt_counted() {
    let dir = tempfile::tempdir().unwrap();
    let b = start_broker(dir.path()).await;
    let conn = connect(&b).await;
    for i in 0..8 {
        send(&conn, "Orders", i % 4, &format!("k{i}"), "A").await;
    }
    let first = b
        .broker
        .pop(request("G", "Orders", 32, SECOND, "*"))
        .await
        .unwrap();
    assert_eq!(keys(&first).len(), 8);
    assert!(first.iter().all(|p| p.delivery_attempt == 1));
    // Invisible now: nothing more to hand out.
    let none = b
        .broker
        .pop(request("G", "Orders", 32, SECOND, "*"))
        .await
        .unwrap();
    assert!(none.is_empty());
    for p in &first[..5] {
        b.broker.ack("G", "Orders", &p.receipt_handle).unwrap();
    }
    // Acking twice is fine.
    b.broker
        .ack("G", "Orders", &first[0].receipt_handle)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let again = b
        .broker
        .pop(request("G", "Orders", 32, SECOND * 5, "*"))
        .await
        .unwrap();
    assert_eq!(keys(&again), keys(&first[5..]));
    assert!(again.iter().all(|p| p.delivery_attempt == 2));
    // The first delivery's handle no longer acks: the message went out again since.
    let stale = b.broker.ack("G", "Orders", &first[5].receipt_handle);
    assert!(
        matches!(stale, Err(PopError::InvalidHandle(_))),
        "{stale:?}"
    );
    for p in &again {
        b.broker.ack("G", "Orders", &p.receipt_handle).unwrap();
    }
    // Everything acked: the group's consumer offsets are at the end of every queue.
    for q in 0..4 {
        assert_eq!(
            b.broker.offsets.query("G", "Orders", q),
            Some(2),
            "queue {q}"
        );
    }
    b.shutdown().await;
}

#[tokio::test]
async fn invisibility_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let b = start_broker(dir.path()).await;
    let conn = connect(&b).await;
    for i in 0..3 {
        send(&conn, "Pay", 0, &format!("k{i}"), "A").await;
    }
    let popped = b
        .broker
        .pop(request("G", "Pay", 2, SECOND * 30, "*"))
        .await
        .unwrap();
    assert_eq!(keys(&popped), ["k0", "k1"]);
    b.broker.ack("G", "Pay", &popped[0].receipt_handle).unwrap();
    drop(conn);
    b.shutdown().await;

    let b = start_broker(dir.path()).await;
    // k1 is still invisible; k2 was never handed out; k0 is done.
    let next = b
        .broker
        .pop(request("G", "Pay", 32, SECOND, "*"))
        .await
        .unwrap();
    assert_eq!(keys(&next), ["k2"]);
    // The handle issued before the restart still acks.
    b.broker.ack("G", "Pay", &popped[1].receipt_handle).unwrap();
    b.broker.ack("G", "Pay", &next[0].receipt_handle).unwrap();
    assert_eq!(b.broker.offsets.query("G", "Pay", 0), Some(3));
    b.shutdown().await;
}

#[tokio::test]
async fn a_message_past_its_last_attempt_is_dead_lettered() {
    let dir = tempfile::tempdir().unwrap();
    let b = start_broker(dir.path()).await;
    let conn = connect(&b).await;
    set_group(&b, "G", 1, false);
    send(&conn, "Mail", 0, "poison", "A").await;
    for attempt in 1..=2 {
        let p = b
            .broker
            .pop(request("G", "Mail", 1, SECOND, "*"))
            .await
            .unwrap();
        assert_eq!(p.len(), 1, "attempt {attempt}");
        assert_eq!(p[0].delivery_attempt, attempt);
        tokio::time::sleep(Duration::from_millis(1_100)).await;
    }
    // Two attempts allowed (one retry): the third receive finds it gone to the DLQ.
    let p = b
        .broker
        .pop(request("G", "Mail", 1, SECOND, "*"))
        .await
        .unwrap();
    assert!(p.is_empty());
    assert_eq!(b.broker.store.max_offset("%DLQ%G", 0), 1);
    assert_eq!(b.broker.offsets.query("G", "Mail", 0), Some(1));
    let dlq = b
        .broker
        .pop(request("D", "%DLQ%G", 1, SECOND, "*"))
        .await
        .unwrap();
    assert_eq!(keys(&dlq), ["poison"]);
    b.shutdown().await;
}

#[tokio::test]
async fn a_fifo_group_gets_a_queue_s_next_message_only_after_the_previous_is_acked() {
    let dir = tempfile::tempdir().unwrap();
    let b = start_broker(dir.path()).await;
    let conn = connect(&b).await;
    set_group(&b, "F", 16, true);
    for i in 0..3 {
        send(&conn, "Seq", 1, &format!("k{i}"), "A").await;
    }
    let mut order = Vec::new();
    for _ in 0..3 {
        let p = b
            .broker
            .pop(request("F", "Seq", 1, SECOND * 30, "*"))
            .await
            .unwrap();
        assert_eq!(p.len(), 1);
        let blocked = b
            .broker
            .pop(request("F", "Seq", 32, SECOND * 30, "*"))
            .await
            .unwrap();
        assert!(blocked.is_empty(), "the queue waits for the ack");
        order.extend(keys(&p));
        b.broker.ack("F", "Seq", &p[0].receipt_handle).unwrap();
    }
    assert_eq!(order, ["k0", "k1", "k2"]);
    b.shutdown().await;
}

#[tokio::test]
async fn tags_are_matched_exactly_and_a_receive_waits_for_arrivals() {
    let dir = tempfile::tempdir().unwrap();
    let b = start_broker(dir.path()).await;
    let conn = connect(&b).await;
    send(&conn, "Tagged", 0, "a1", "A").await;
    send(&conn, "Tagged", 0, "b1", "B").await;
    let p = b
        .broker
        .pop(request("G", "Tagged", 32, SECOND * 30, "B"))
        .await
        .unwrap();
    assert_eq!(keys(&p), ["b1"]);

    let mut waiting = request("G", "Tagged", 32, SECOND * 30, "B");
    waiting.long_poll = Duration::from_secs(10);
    let broker = b.broker.clone();
    let started = Instant::now();
    let receive = tokio::spawn(async move { broker.pop(waiting).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    send(&conn, "Tagged", 2, "a2", "A").await;
    send(&conn, "Tagged", 3, "b2", "B").await;
    let p = receive.await.unwrap().unwrap();
    assert_eq!(keys(&p), ["b2"]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    b.shutdown().await;
}

#[tokio::test]
async fn changing_the_invisible_time_gives_a_new_handle() {
    let dir = tempfile::tempdir().unwrap();
    let b = start_broker(dir.path()).await;
    let conn = connect(&b).await;
    send(&conn, "Slow", 0, "k", "A").await;
    let p = b
        .broker
        .pop(request("G", "Slow", 1, SECOND * 30, "*"))
        .await
        .unwrap();
    let renewed = b
        .broker
        .change_invisible("G", "Slow", &p[0].receipt_handle, Duration::ZERO, true)
        .unwrap();
    assert_ne!(renewed, p[0].receipt_handle);
    // Visible again at once, as the second attempt.
    let again = b
        .broker
        .pop(request("G", "Slow", 1, SECOND * 30, "*"))
        .await
        .unwrap();
    assert_eq!(again[0].delivery_attempt, 2);
    for bad in ["", "p1:0:0:1:1:Other", "garbage"] {
        let r = b.broker.ack("G", "Slow", bad);
        assert!(
            matches!(r, Err(PopError::InvalidHandle(_))),
            "{bad:?}: {r:?}"
        );
    }
    let r = b
        .broker
        .change_invisible("G", "Slow", &renewed, SECOND, true);
    assert!(matches!(r, Err(PopError::InvalidHandle(_))), "{r:?}");
    let unknown = b
        .broker
        .pop(request("G", "NoSuchTopic", 1, SECOND, "*"))
        .await;
    assert!(
        matches!(unknown, Err(PopError::TopicNotFound(_))),
        "{unknown:?}"
    );
    b.shutdown().await;
}

#[tokio::test]
async fn auto_renew_holds_messages_while_their_consumer_is_connected() {
    let dir = tempfile::tempdir().unwrap();
    let b = start_broker(dir.path()).await;
    let conn = connect(&b).await;
    common::heartbeat(&conn, "R", "Renew").await;
    send(&conn, "Renew", 0, "held", "A").await;
    send(&conn, "Renew", 0, "orphan", "A").await;
    let mut held = request("R", "Renew", 1, SECOND, "*");
    held.auto_renew = true;
    held.client_id = "127.0.0.1@R".into();
    let mut orphan = held.clone();
    orphan.client_id = "a-client-that-left".into();
    let h = b.broker.pop(held).await.unwrap();
    let o = b.broker.pop(orphan).await.unwrap();
    assert_eq!(
        (keys(&h), keys(&o)),
        (vec!["held".into()], vec!["orphan".into()])
    );
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    // Only the message of the client that is gone comes back.
    let again = b
        .broker
        .pop(request("R", "Renew", 32, SECOND, "*"))
        .await
        .unwrap();
    assert_eq!(keys(&again), ["orphan"]);
    assert_eq!(again[0].delivery_attempt, 2);
    b.broker.ack("R", "Renew", &h[0].receipt_handle).unwrap();
    b.shutdown().await;
}

mod remoting {
    use super::*;
    use petrel_remoting::code::request;
    use petrel_remoting::headers::{
        AckMessageRequestHeader, ChangeInvisibleTimeRequestHeader,
        ChangeInvisibleTimeResponseHeader, PopMessageRequestHeader, PopMessageResponseHeader,
    };
    use petrel_remoting::RemotingCommand;

    fn pop(group: &str, topic: &str, invisible_ms: i64, poll_ms: i64) -> RemotingCommand {
        RemotingCommand::request_with_header(
            request::POP_MESSAGE,
            &PopMessageRequestHeader {
                consumer_group: group.into(),
                topic: topic.into(),
                queue_id: -1,
                max_msg_nums: 32,
                invisible_time: invisible_ms,
                poll_time: poll_ms,
                born_time: 0,
                init_mode: 0,
                exp_type: Some("TAG".into()),
                exp: Some("*".into()),
                order: Some(false),
                attempt_id: None,
            },
        )
    }

    /// The receipt a 5.x Java client builds from a POP answer for one of its messages.
    fn extra_info(h: &PopMessageResponseHeader, queue_id: i32, offset: i64) -> String {
        format!(
            "{offset} {} {} {} 0 broker-a {queue_id} {offset}",
            h.pop_time, h.invisible_time, h.revive_qid
        )
    }

    #[tokio::test]
    async fn pop_ack_and_change_invisible_time_over_the_wire() {
        let dir = tempfile::tempdir().unwrap();
        let b = start_broker(dir.path()).await;
        let conn = connect(&b).await;
        send(&conn, "Wire", 0, "k0", "A").await;
        send(&conn, "Wire", 0, "k1", "A").await;

        let resp = conn
            .request(pop("G", "Wire", 1_000, 0), TIMEOUT)
            .await
            .unwrap();
        assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
        let h: PopMessageResponseHeader = resp.decode_header().unwrap();
        assert_eq!(h.invisible_time, 1_000);
        let body = resp.body_bytes();
        let first = record::decode(&body, false).unwrap();
        let second = record::decode(&body[first.total_size as usize..], false).unwrap();
        assert_eq!((first.queue_offset, second.queue_offset), (0, 1));

        let ack = RemotingCommand::request_with_header(
            request::ACK_MESSAGE,
            &AckMessageRequestHeader {
                consumer_group: "G".into(),
                topic: "Wire".into(),
                queue_id: 0,
                extra_info: extra_info(&h, 0, 0),
                offset: 0,
            },
        );
        let resp = conn.request(ack, TIMEOUT).await.unwrap();
        assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);

        // k1 given back at once: it comes back as the second attempt.
        let change = RemotingCommand::request_with_header(
            request::CHANGE_MESSAGE_INVISIBLETIME,
            &ChangeInvisibleTimeRequestHeader {
                consumer_group: "G".into(),
                topic: "Wire".into(),
                queue_id: 0,
                extra_info: extra_info(&h, 0, 1),
                offset: 1,
                invisible_time: 0,
            },
        );
        let resp = conn.request(change, TIMEOUT).await.unwrap();
        assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
        let changed: ChangeInvisibleTimeResponseHeader = resp.decode_header().unwrap();
        assert!(changed.pop_time > h.pop_time);
        let resp = conn
            .request(pop("G", "Wire", 5_000, 0), TIMEOUT)
            .await
            .unwrap();
        assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
        let body = resp.body_bytes();
        let again = record::decode(&body, false).unwrap();
        assert_eq!(
            (again.queue_offset, again.reconsume_times),
            (1, 1),
            "offset 1, reconsumed once"
        );

        // Nothing left: the poll times out with POLLING_TIMEOUT after its poll time.
        let started = Instant::now();
        let resp = conn
            .request(pop("G", "Wire", 5_000, 300), TIMEOUT)
            .await
            .unwrap();
        assert_eq!(resp.code, response::POLLING_TIMEOUT, "{:?}", resp.remark);
        assert!(started.elapsed() >= Duration::from_millis(250));

        // A stale receipt (the first delivery of k1) is refused with NO_MESSAGE.
        let stale = RemotingCommand::request_with_header(
            request::ACK_MESSAGE,
            &AckMessageRequestHeader {
                consumer_group: "G".into(),
                topic: "Wire".into(),
                queue_id: 0,
                extra_info: extra_info(&h, 0, 1),
                offset: 1,
            },
        );
        let resp = conn.request(stale, TIMEOUT).await.unwrap();
        assert_eq!(resp.code, response::NO_MESSAGE, "{:?}", resp.remark);
        b.shutdown().await;
    }

    /// A 5.x Java client builds the receipt of every message of a POP answer from the
    /// answer's one `popTime`, so every message in it must have been handed out at that time,
    /// whichever queue it came from: otherwise its ack is refused and it comes back after the
    /// invisible time. Many queues per answer, so a pass over them crosses millisecond
    /// boundaries.
    #[tokio::test]
    async fn every_message_of_an_answer_is_acked_with_the_answer_s_pop_time() {
        const QUEUES: i32 = 64;
        let dir = tempfile::tempdir().unwrap();
        let b = start_broker(dir.path()).await;
        b.broker
            .topics
            .upsert(TopicConfig::new("Spread", QUEUES, perm::READ | perm::WRITE))
            .unwrap();
        let conn = connect(&b).await;
        let mut refused = Vec::new();
        for round in 0..10 {
            for q in 0..QUEUES {
                send(&conn, "Spread", q, &format!("k{round}-{q}"), "A").await;
            }
            let mut left = QUEUES;
            while left > 0 {
                let resp = conn
                    .request(pop("G", "Spread", 60_000, 0), TIMEOUT)
                    .await
                    .unwrap();
                assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
                let h: PopMessageResponseHeader = resp.decode_header().unwrap();
                let body = resp.body_bytes();
                let mut at = 0;
                while at < body.len() {
                    let rec = record::decode(&body[at..], false).unwrap();
                    at += rec.total_size as usize;
                    left -= 1;
                    let ack = RemotingCommand::request_with_header(
                        request::ACK_MESSAGE,
                        &AckMessageRequestHeader {
                            consumer_group: "G".into(),
                            topic: "Spread".into(),
                            queue_id: rec.queue_id,
                            extra_info: extra_info(&h, rec.queue_id, rec.queue_offset),
                            offset: rec.queue_offset,
                        },
                    );
                    let resp = conn.request(ack, TIMEOUT).await.unwrap();
                    if resp.code != response::SUCCESS {
                        refused.push((rec.queue_id, rec.queue_offset, resp.remark));
                    }
                }
            }
        }
        assert!(
            refused.is_empty(),
            "{} of {} acks refused, the first: {:?}",
            refused.len(),
            10 * QUEUES,
            refused[0]
        );
        b.shutdown().await;
    }

    #[tokio::test]
    async fn query_assignment_follows_the_group_s_request_mode() {
        let dir = tempfile::tempdir().unwrap();
        let b = start_broker(dir.path()).await;
        let conn = connect(&b).await;
        send(&conn, "Assigned", 0, "k", "A").await;
        common::heartbeat(&conn, "G", "Assigned").await;
        let query = || {
            RemotingCommand::request(request::QUERY_ASSIGNMENT).with_body(
                br#"{"topic":"Assigned","consumerGroup":"G","clientId":"127.0.0.1@G","strategyName":"AVG","messageModel":"CLUSTERING"}"#
                    .to_vec(),
            )
        };
        let resp = conn.request(query(), TIMEOUT).await.unwrap();
        assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
        let body: serde_json::Value = serde_json::from_slice(&resp.body_bytes()).unwrap();
        let assigned = body["messageQueueAssignments"].as_array().unwrap();
        assert_eq!(
            assigned.len(),
            4,
            "the only consumer pulls every queue: {body}"
        );
        assert!(assigned.iter().all(|a| a["mode"] == "PULL"));

        let set = RemotingCommand::request(request::SET_MESSAGE_REQUEST_MODE).with_body(
            br#"{"topic":"Assigned","consumerGroup":"G","mode":"POP","popShareQueueNum":0}"#
                .to_vec(),
        );
        let resp = conn.request(set, TIMEOUT).await.unwrap();
        assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
        let resp = conn.request(query(), TIMEOUT).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&resp.body_bytes()).unwrap();
        assert_eq!(
            body["messageQueueAssignments"],
            serde_json::json!([{"messageQueue":{"topic":"Assigned","brokerName":"broker-a","queueId":-1},"mode":"POP"}])
        );
        b.shutdown().await;
    }
}

#[tokio::test]
async fn a_receive_that_names_a_queue_gets_only_that_queue() {
    let dir = tempfile::tempdir().unwrap();
    let b = start_broker(dir.path()).await;
    let conn = connect(&b).await;
    for q in 0..4 {
        send(&conn, "Assigned1", q, &format!("q{q}"), "A").await;
    }
    let mut only = request("G", "Assigned1", 32, SECOND * 30, "*");
    only.queue_id = Some(2);
    let p = b.broker.pop(only.clone()).await.unwrap();
    assert_eq!(keys(&p), ["q2"]);
    only.queue_id = Some(9);
    let r = b.broker.pop(only).await;
    assert!(matches!(r, Err(PopError::Illegal(_))), "{r:?}");
    let rest = b
        .broker
        .pop(request("G", "Assigned1", 32, SECOND * 30, "*"))
        .await
        .unwrap();
    assert_eq!(keys(&rest), ["q0", "q1", "q3"]);
    b.shutdown().await;
}
