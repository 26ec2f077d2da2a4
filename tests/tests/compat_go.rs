//! The official Apache RocketMQ Go client (rocketmq-client-go v2, remoting; `compat/go`)
//! against Petrel standalone: each test runs one scenario in its own process against a fresh
//! broker; the scenario asserts what it receives exactly and fails on the first difference.

use std::time::{Duration, Instant};

use petrel::standalone::StandaloneConfig;
use petrel_tests::go::{scenario, scenario_on, scenario_on_fresh_petrel};
use petrel_tests::java::unique_run_name;
use petrel_tests::Standalone;

/// Petrel holds NOTIFY_CONSUMER_IDS_CHANGED for a while after its start (the broker's
/// `consumer_rejoin_grace`, 5 s by default); a scenario about two members of one group starts
/// after it, so the first member hears of the second at once.
const BROKER_REJOIN_GRACE: Duration = Duration::from_millis(5_500);

/// SEND_MESSAGE (code 10, JSON header) to a topic Petrel creates on first use: SEND_OK, a
/// message id and consecutive offsets per queue; one consumer then gets each message once,
/// with its exact body (every byte value; one over 4 KiB that the producer compresses), its
/// id, queue and offset.
#[test]
fn sync_send_is_consumed_with_exact_bodies() {
    let run = scenario_on_fresh_petrel("send-sync", &[]);
    assert_eq!(run.result("queues"), Some("4"), "{}", run.stdout);
}

/// Two push consumers of one group on a 4-queue topic created by the Go admin: each message is
/// consumed once, and the queues are split between them (the broker tells the first of the
/// second, NOTIFY_CONSUMER_IDS_CHANGED).
#[test]
fn clustering_consumers_of_one_group_share_the_messages() {
    petrel_tests::go::program();
    let dir = tempfile::tempdir().expect("a data directory");
    let rt = tokio::runtime::Runtime::new().expect("a runtime for Petrel");
    let petrel = rt
        .block_on(Standalone::start_with(StandaloneConfig::ephemeral(
            dir.path(),
        )))
        .expect("Petrel starts");
    let started = Instant::now();
    std::thread::sleep(BROKER_REJOIN_GRACE.saturating_sub(started.elapsed()));
    let run = scenario(
        "clustering",
        &petrel.namesrv_addr,
        &petrel.broker_addr,
        &unique_run_name(),
        &[],
    );
    rt.block_on(petrel.shutdown()).expect("Petrel stops");
    run.assert_passed("clustering");
    assert!(
        run.result("queues_A").is_some() && run.result("queues_B").is_some(),
        "{}",
        run.stdout
    );
}

/// Messages sent with the hash queue selector on a sharding key stay on their key's queue, and
/// the orderly consumer (LOCK_BATCH_MQ first) gets each key's messages once, in order.
#[test]
fn orderly_consumer_keeps_per_key_order() {
    scenario_on_fresh_petrel("orderly", &[]);
}

/// ConsumeRetryLater: the message is sent back (CONSUMER_SEND_MSG_BACK), comes again through
/// `%RETRY%<group>` after its delay level with ReconsumeTimes 1, then 2, same id, topic, tags,
/// properties and body, and not again once consumed.
#[test]
fn retry_later_comes_back_with_reconsume_times_incremented() {
    let dir = tempfile::tempdir().expect("a data directory");
    let mut config = StandaloneConfig::ephemeral(dir.path());
    // Levels 3 and 4 (the first two retries) are 300 and 400 ms, as the scenario expects.
    config.message_delay_level = Some(
        "100ms 1s 300ms 400ms 500ms 600ms 700ms 800ms 900ms 1s 1s 1s 1s 1s 1s 1s 1s 1s".into(),
    );
    scenario_on(config, "retry", &[]);
}

/// Tag subscriptions "A", "A || C" and "*" each get exactly their messages, with tags, keys,
/// user properties and bodies intact (the Go client sends the tag hash codes as strings).
#[test]
fn tag_subscriptions_get_exactly_their_messages() {
    scenario_on_fresh_petrel("tags", &[]);
}
