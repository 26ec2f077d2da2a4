//! Message trace with the official Java 4.9.8 client (compat/java Trace.java), read back with
//! Petrel's admin client (what `petrel admin trace` prints):
//! - with `enableMsgTrace` in the client, its Pub, SubBefore and SubAfter records, next to the
//!   broker's own stored / delivered / committed steps;
//! - with trace off in the client, the broker's own trace of a message that failed twice:
//!   stored, delivered to the consumer, retried, stored for later, stored for retry, delivered
//!   again, dead-lettered, stored as a dead letter; and of one consumed at once: stored,
//!   delivered, committed.

use std::time::{Duration, Instant};

use petrel::standalone::StandaloneConfig;
use petrel_client::admin::{Admin, MessageTrace};
use petrel_client::ClientConfig;
use petrel_common::trace::{BrokerTraceKind, ClientTraceRecord};
use petrel_tests::java::{scenario, unique_run_name};
use petrel_tests::Standalone;

/// Retries at level 3 + reconsumeTimes come after 300 ms, 400 ms.
const SHORT_LEVELS: &str =
    "200ms 1s 300ms 400ms 500ms 600ms 700ms 800ms 900ms 1s 1s 1s 1s 1s 1s 1s 1s 2s";
/// How long the trace may take to be complete after the scenario ended (the broker writes its
/// trace every 100 ms; the Java client flushes its own at shutdown).
const TRACE_WAIT: Duration = Duration::from_secs(30);

/// Polls the trace of `msg_id` until `complete` holds, then returns it; panics with the last
/// trace seen after [`TRACE_WAIT`].
async fn trace_until(
    admin: &Admin,
    msg_id: &str,
    complete: impl Fn(&MessageTrace) -> bool,
) -> MessageTrace {
    let deadline = Instant::now() + TRACE_WAIT;
    loop {
        let t = admin.trace_message(msg_id, None).await.unwrap();
        if complete(&t) {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "the trace of {msg_id} is not complete after {TRACE_WAIT:?}:\n{t:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn kinds(t: &MessageTrace) -> Vec<BrokerTraceKind> {
    t.broker_events.iter().map(|s| s.event.kind).collect()
}

fn start(dir: &std::path::Path, rt: &tokio::runtime::Runtime) -> Standalone {
    let mut config = StandaloneConfig::ephemeral(dir);
    config.message_delay_level = Some(SHORT_LEVELS.to_owned());
    rt.block_on(Standalone::start_with(config)).unwrap()
}

#[test]
fn the_java_clients_own_trace_and_the_brokers_side_by_side() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let petrel = start(dir.path(), &rt);
    let run = unique_run_name();
    let out = scenario("Trace.clientTraced", &petrel.namesrv_addr, &run, &[]);
    out.assert_passed("Trace.clientTraced");
    let msg_id = out.result("msgId").unwrap().to_owned();
    let offset_msg_id = out.result("offsetMsgId").unwrap().to_owned();
    let client_id = out.result("clientId").unwrap().to_owned();
    let topic = format!("TraceTopic_{run}");
    let group = format!("TraceGroup_{run}");

    rt.block_on(async {
        let admin = Admin::new(ClientConfig::new(&petrel.namesrv_addr));
        admin.instance().start().unwrap();
        let t = trace_until(&admin, &msg_id, |t| {
            t.client_records.len() >= 3 && kinds(t).contains(&BrokerTraceKind::Committed)
        })
        .await;
        assert_eq!(t.msg_id, msg_id);

        // The client's records: one Pub, one SubBefore, one SubAfter, in that order.
        let types: Vec<&str> = t
            .client_records
            .iter()
            .map(|r| match r {
                ClientTraceRecord::Pub { .. } => "Pub",
                ClientTraceRecord::SubBefore { .. } => "SubBefore",
                ClientTraceRecord::SubAfter { .. } => "SubAfter",
                ClientTraceRecord::EndTransaction { .. } => "EndTransaction",
            })
            .collect();
        assert_eq!(types, ["Pub", "SubBefore", "SubAfter"], "{t:#?}");
        match &t.client_records[0] {
            ClientTraceRecord::Pub {
                topic: pub_topic,
                group: pg,
                keys,
                tags,
                success,
                offset_msg_id: pub_offset_id,
                body_length,
                ..
            } => {
                assert_eq!(pub_topic, &topic);
                assert_eq!(pg, &format!("TraceProducer_{run}"));
                assert_eq!((keys.as_str(), tags.as_str()), ("trace-key", "TagT"));
                assert!(*success);
                assert_eq!(pub_offset_id, &offset_msg_id);
                assert_eq!(*body_length, "traced body".len() as i32);
            }
            other => panic!("not a Pub: {other:?}"),
        }
        match &t.client_records[1] {
            ClientTraceRecord::SubBefore {
                group: g,
                retry_times,
                ..
            } => {
                assert_eq!(g, &group);
                assert_eq!(*retry_times, 0);
            }
            other => panic!("not a SubBefore: {other:?}"),
        }
        match &t.client_records[2] {
            ClientTraceRecord::SubAfter {
                success, group: g, ..
            } => {
                assert!(*success);
                assert_eq!(g.as_deref(), Some(group.as_str()));
            }
            other => panic!("not a SubAfter: {other:?}"),
        }

        // What `petrel admin trace` prints, in time order.
        let steps: Vec<String> = t.timeline().into_iter().map(|s| s.what).collect();
        assert_eq!(
            steps,
            [
                "Pub",
                "stored",
                "delivered",
                "SubBefore",
                "SubAfter",
                "committed"
            ],
            "{t:#?}"
        );

        // The broker's side of the same message.
        assert_eq!(t.stored.len(), 1, "{t:#?}");
        assert_eq!(t.stored[0].topic, topic);
        assert_eq!(t.stored[0].offset_msg_id, offset_msg_id);
        assert_eq!(
            kinds(&t),
            [BrokerTraceKind::Delivered, BrokerTraceKind::Committed],
            "{t:#?}"
        );
        let delivered = &t.broker_events[0].event;
        assert_eq!(delivered.group, group);
        assert_eq!(delivered.client_id.as_deref(), Some(client_id.as_str()));
        assert_eq!(t.broker_events[1].event.group, group);

        // Looked up by its offsetMsgId, the same message and path.
        let by_offset_id = admin.trace_message(&offset_msg_id, None).await.unwrap();
        assert_eq!(by_offset_id.msg_id, msg_id);
        assert_eq!(by_offset_id.stored, t.stored);
        admin.shutdown();
    });
    rt.block_on(petrel.shutdown()).unwrap();
}

#[test]
fn the_brokers_own_trace_of_a_message_retried_then_dead_lettered() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let petrel = start(dir.path(), &rt);
    let run = unique_run_name();
    let out = scenario("Trace.brokerTraced", &petrel.namesrv_addr, &run, &[]);
    out.assert_passed("Trace.brokerTraced");
    let ok_id = out.result("okId").unwrap().to_owned();
    let poison_id = out.result("poisonId").unwrap().to_owned();
    let client_id = out.result("clientId").unwrap().to_owned();
    let topic = format!("BrokerTraceTopic_{run}");
    let group = format!("BrokerTraceGroup_{run}");
    let retry_topic = format!("%RETRY%{group}");
    let dlq_topic = format!("%DLQ%{group}");

    rt.block_on(async {
        let admin = Admin::new(ClientConfig::new(&petrel.namesrv_addr));
        admin.instance().start().unwrap();

        let ok = trace_until(&admin, &ok_id, |t| {
            kinds(t).contains(&BrokerTraceKind::Committed)
        })
        .await;
        assert!(
            ok.client_records.is_empty(),
            "client trace was off: {ok:#?}"
        );
        assert_eq!(
            kinds(&ok),
            [BrokerTraceKind::Delivered, BrokerTraceKind::Committed]
        );
        assert_eq!(ok.stored.len(), 1);
        assert_eq!(ok.stored[0].topic, topic);
        let d = &ok.broker_events[0].event;
        assert_eq!(
            (d.group.as_str(), d.client_id.as_deref()),
            (group.as_str(), Some(client_id.as_str()))
        );

        let poison = trace_until(&admin, &poison_id, |t| {
            let k = kinds(t);
            k.contains(&BrokerTraceKind::DeadLettered)
                && k.iter()
                    .filter(|k| **k == BrokerTraceKind::Committed)
                    .count()
                    >= 2
        })
        .await;
        assert!(poison.client_records.is_empty());
        let steps: Vec<(BrokerTraceKind, String, i32)> = poison
            .broker_events
            .iter()
            .map(|s| {
                (
                    s.event.kind,
                    s.event.topic.clone(),
                    s.event.messages[0].attempt,
                )
            })
            .collect();
        // Delivered from the topic, sent back, delivered from the retry topic, sent back
        // again into the DLQ; each queue's offset committed past it (in either order with
        // the steps of the other queue).
        let without_commits: Vec<_> = steps
            .iter()
            .filter(|s| s.0 != BrokerTraceKind::Committed)
            .cloned()
            .collect();
        assert_eq!(
            without_commits,
            [
                (BrokerTraceKind::Delivered, topic.clone(), 0),
                (BrokerTraceKind::Retried, topic.clone(), 0),
                (BrokerTraceKind::Delivered, retry_topic.clone(), 1),
                (BrokerTraceKind::DeadLettered, retry_topic.clone(), 1),
            ],
            "{poison:#?}"
        );
        let mut committed: Vec<String> = steps
            .iter()
            .filter(|s| s.0 == BrokerTraceKind::Committed)
            .map(|s| s.1.clone())
            .collect();
        committed.sort();
        assert_eq!(committed, [retry_topic.clone(), topic.clone()]);
        for s in &poison.broker_events {
            assert_eq!(s.event.group, group);
            if s.event.kind == BrokerTraceKind::Delivered {
                assert_eq!(s.event.client_id.as_deref(), Some(client_id.as_str()));
            }
        }
        let retried = poison
            .broker_events
            .iter()
            .find(|s| s.event.kind == BrokerTraceKind::Retried)
            .unwrap();
        assert_eq!(
            retried.event.to_topic.as_deref(),
            Some(retry_topic.as_str())
        );
        assert_eq!(retried.event.delay_level, Some(3));
        let dead = poison
            .broker_events
            .iter()
            .find(|s| s.event.kind == BrokerTraceKind::DeadLettered)
            .unwrap();
        assert_eq!(dead.event.to_topic.as_deref(), Some(dlq_topic.as_str()));
        assert_eq!(dead.event.delay_level, None);

        // Stored: the message, its delayed copy, the retry, the dead letter.
        let stored: Vec<&str> = poison.stored.iter().map(|s| s.topic.as_str()).collect();
        assert_eq!(
            stored,
            [
                topic.as_str(),
                "SCHEDULE_TOPIC_XXXX",
                retry_topic.as_str(),
                dlq_topic.as_str()
            ],
            "{poison:#?}"
        );
        admin.shutdown();
    });
    rt.block_on(petrel.shutdown()).unwrap();
}
