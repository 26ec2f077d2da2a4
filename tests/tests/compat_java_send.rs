//! The official Apache RocketMQ Java client 4.9.8 (`compat/java`) sending to Petrel every way
//! it can (sync, async, one-way, batch), finding messages again (viewMessage, queryMessage) and
//! consuming with the lite pull consumer, a new group's first start and across a broker
//! restart. Each scenario asserts exactly what it gets back and fails on the first difference.

use std::sync::Mutex;
use std::time::Duration;

use petrel::standalone::StandaloneConfig;
use petrel_tests::java::{scenario, spawn_scenario, unique_run_name};
use petrel_tests::process::ProgramRun;
use petrel_tests::Standalone;

/// One scenario at a time: each runs a JVM and a broker, and the machine has two cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime for Petrel")
}

/// Runs `name` against a fresh Petrel, telling it the broker's address (`broker=`), which the
/// scenarios compare with the store host inside offsetMsgIds.
fn run(name: &str) -> ProgramRun {
    let dir = tempfile::tempdir().expect("a data directory");
    run_on(StandaloneConfig::ephemeral(dir.path()), name)
}

/// [`run`] on a Petrel started from `config`.
fn run_on(config: StandaloneConfig, name: &str) -> ProgramRun {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let rt = runtime();
    let petrel = rt
        .block_on(Standalone::start_with(config))
        .expect("Petrel starts");
    let run = scenario(
        name,
        &petrel.namesrv_addr,
        &unique_run_name(),
        &[("broker", petrel.broker_addr.clone())],
    );
    rt.block_on(petrel.shutdown()).expect("Petrel stops");
    run.assert_passed(name);
    run
}

fn result<'a>(run: &'a ProgramRun, key: &str) -> &'a str {
    run.result(key)
        .unwrap_or_else(|| panic!("no RESULT {key}= in\n{}", run.stdout))
}

#[test]
fn sync_send_ids_offsets_and_bodies_read_back_exactly() {
    let run = run("Sending.syncSend");
    // An auto-created topic has RocketMQ's default of 4 queues, and round-robin fills them all.
    assert_eq!(result(&run, "queues"), "4");
}

#[test]
fn async_send_2000_in_flight_all_ok_and_consumed_exactly_once() {
    let run = run("Sending.asyncSend");
    assert_eq!(result(&run, "consumed"), "2000");
}

#[test]
fn oneway_sends_all_arrive() {
    let run = run("Sending.onewaySend");
    assert_eq!(result(&run, "consumed"), "500");
}

#[test]
fn batch_send_one_result_comma_joined_ids_each_message_intact() {
    let run = run("Sending.batchSend");
    assert_eq!(result(&run, "first_msgId").split(',').count(), 16);
}

#[test]
fn view_message_by_offset_msg_id_and_unique_key_and_query_by_key() {
    run("Lookup.viewAndQuery");
}

#[test]
fn lite_pull_subscribe_consumes_every_message_once() {
    let run = run("LitePull.subscribe");
    assert_eq!(result(&run, "queues"), "4");
}

#[test]
fn lite_pull_assign_and_seek_polls_exactly_from_the_offset() {
    run("LitePull.assignAndSeek");
}

/// RocketMQ's first-start rule: without a committed offset, the broker answers
/// QUERY_CONSUMER_OFFSET with 0 for a queue that still holds its first message, so even
/// CONSUME_FROM_LAST_OFFSET (the default) reads the topic from the start.
#[test]
fn new_group_with_default_consume_from_last_offset_gets_existing_messages() {
    run("Durability.firstStart");
}

/// The other branch of the same rule: once retention deleted a queue's first messages, the
/// broker answers QUERY_NOT_FOUND and the default group starts at the end of every queue.
#[test]
fn new_group_behind_deleted_messages_starts_at_the_end() {
    let dir = tempfile::tempdir().expect("a data directory");
    // 400 messages of 1 KB fill one segment and part of the next, so every queue loses its
    // first messages while the later ones (a few KB) rarely roll the current segment.
    let config = petrel_tests::config_deleting_full_segments(dir.path(), 256 * 1024);
    let run = run_on(config, "Durability.firstStartBehindDeletedMessages");
    let kept: i64 = result(&run, "kept").parse().unwrap();
    assert!(kept > 0, "{kept} messages kept");
}

/// Petrel is restarted (clean stop, same ports and data directory) once the consumer has seen
/// half of the messages, while the producer is still sending: every acknowledged message is
/// consumed afterwards, and sending resumes by itself.
#[test]
fn broker_restart_mid_consumption_loses_no_acknowledged_message() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("a data directory");
    let rt = runtime();
    let mut petrel = rt
        .block_on(Standalone::start_with(StandaloneConfig::ephemeral(
            dir.path(),
        )))
        .expect("Petrel starts");
    let total = 2000;
    let name = "Durability.restartMidConsumption";
    let mut java = spawn_scenario(
        name,
        &petrel.namesrv_addr,
        &unique_run_name(),
        &[
            ("broker", petrel.broker_addr.clone()),
            ("messages", total.to_string()),
        ],
    );
    let half = java.wait_for_line("RESULT half_consumed=", Duration::from_secs(120));
    let restarted = half.is_some();
    if restarted {
        rt.block_on(petrel.restart()).expect("Petrel restarts");
    }
    let run = java.finish();
    rt.block_on(petrel.shutdown()).expect("Petrel stops");
    assert!(restarted, "the consumer never reached half\n{}", run.stdout);
    run.assert_passed(name);
    for line in run.stdout.lines().filter(|l| l.starts_with("RESULT ")) {
        eprintln!("{line}");
    }
    let at_half: usize = result(&run, "acknowledged_at_half").parse().unwrap();
    assert!(
        at_half < total,
        "the producer had finished before the restart ({at_half} sent), so it proved nothing about sending across it"
    );
    assert_eq!(result(&run, "acknowledged"), total.to_string());
    let consumed: usize = result(&run, "consumed").parse().unwrap();
    assert!(consumed >= total, "{consumed} distinct messages consumed");
}
