//! POP consumption over remoting (RocketMQ 5.x) by the official 5.x Java client
//! (`compat/java5-remoting`): the operator creates the group and sets its request mode for the
//! topic to POP through the official admin API (`DefaultMQAdminExt.setMessageRequestMode`,
//! what `mqadmin setConsumeMode` sends), and a 5.x `DefaultMQPushConsumer` with
//! `clientRebalance = false` learns from QUERY_ASSIGNMENT to pop its queues, acks what it
//! consumed and hands a failed message back with CHANGE_MESSAGE_INVISIBLETIME.
//!
//! Each test runs one scenario in its own JVM against a fresh Petrel. The scenario prints what
//! its listener saw and what its client sent (counted by the client's own RPC hook); the test
//! checks every fact, then the group's committed offsets on the broker. Those are the proof
//! that the client popped: it never pulls the topic or commits an offset on it (its hook
//! counts zero PULL_MESSAGE and UPDATE_CONSUMER_OFFSET), so only the broker's POP acks can
//! have moved them to the end of every queue.

use petrel_tests::java::remoting5::{scenario_on_fresh_petrel, Outcome};

/// Queues of each scenario's topic.
const QUEUES: i32 = 4;

/// Checks every `(key, value)` against the program's `RESULT key=value` lines and panics
/// listing each one that differs, with everything the program printed.
fn expect(o: &Outcome, expected: &[(&str, &str)]) {
    let wrong: Vec<String> = expected
        .iter()
        .filter(|(k, v)| o.run.result(k) != Some(v))
        .map(|(k, v)| format!("{k}: expected {v:?}, got {:?}", o.run.result(k)))
        .collect();
    assert!(
        wrong.is_empty(),
        "{}\n--- stdout\n{}\n--- stderr\n{}",
        wrong.join("\n"),
        o.run.stdout,
        o.run.stderr
    );
}

/// The group's committed offset is at the end of every queue, and the queues hold `stored`
/// messages in all.
fn assert_group_done(o: &Outcome, stored: i64) {
    for q in &o.queues {
        assert_eq!(
            q.committed,
            Some(q.max),
            "group {} on queue {} of {}: {:?}",
            o.group,
            q.queue_id,
            o.topic,
            o.queues
        );
    }
    assert_eq!(
        o.queues.iter().map(|q| q.max).sum::<i64>(),
        stored,
        "{:?}",
        o.queues
    );
}

/// The scenario's RESULT lines on stderr, shown with `--nocapture`.
fn shown(o: Outcome) -> Outcome {
    for line in o.run.stdout.lines().filter(|l| l.starts_with("RESULT ")) {
        eprintln!("{line}");
    }
    o
}

/// 100 messages from a 5.x producer reach a POP push consumer subscribed to "*" once each,
/// except k7, whose first delivery the listener fails (RECONSUME_LATER): the client gives it
/// back for 10 s (the first of its POP retry delays) and it comes back once, with
/// reconsumeTimes 1. Every delivery carries the client's POP receipt; the topic is never
/// pulled nor an offset on it committed; 100 acks and one change of invisible time all
/// succeed; the group's offsets end at every queue's end.
#[test]
fn a_pop_push_consumer_gets_each_message_once_and_a_failed_one_again_after_its_retry_delay() {
    let o = shown(scenario_on_fresh_petrel("Pop.push", QUEUES, &[]));
    expect(
        &o,
        &[
            ("distinct_keys", "100"),
            ("deliveries", "101"),
            ("redelivered_keys", "k7"),
            ("k7_deliveries", "2"),
            ("k7_reconsume_times", "0,1"),
            ("k7_retry_waited_the_pop_delay", "true"),
            ("deliveries_with_pop_receipt", "101"),
            ("pull_requests", "0"),
            ("offset_commits", "0"),
            ("pop_found", "true"),
            ("acks", "100"),
            ("acks_ok", "100"),
            ("change_invisible", "1"),
            ("change_invisible_ok", "1"),
            ("lag", "0"),
        ],
    );
    // Visible again after the 10 s the client asked for, the broker hands it to the waiting
    // long poll at once (not at the next poll, 15 s later).
    let after: i64 = o
        .run
        .result("k7_retry_after_ms")
        .and_then(|v| v.parse().ok())
        .expect("RESULT k7_retry_after_ms");
    assert!(
        (9_500..15_000).contains(&after),
        "k7 came back after {after} ms"
    );
    assert_group_done(&o, 100);
}

/// A topic holding TagA and TagB messages (half sent before the consumer starts, half while
/// it waits in a long poll), popped with the subscription "TagA": the broker's POP answers
/// carry exactly the 20 TagA messages (the client checks tags again itself, so its hook looks
/// at the answers before that), each delivered once and acked, and the group's offsets still
/// reach the end of every queue, past the TagB messages no one was handed.
#[test]
fn a_pop_push_consumer_with_a_tag_subscription_is_handed_only_that_tag() {
    let o = shown(scenario_on_fresh_petrel("Pop.tag", QUEUES, &[]));
    expect(
        &o,
        &[
            ("keys", "20"),
            ("only_tag_a_keys", "true"),
            ("delivered_twice", "0"),
            ("consumed_tags", "{TagA=20}"),
            ("popped_tags", "{TagA=20}"),
            ("pull_requests", "0"),
            ("offset_commits", "0"),
            ("acks_ok", "20"),
            ("lag", "0"),
        ],
    );
    assert_group_done(&o, 40);
}
