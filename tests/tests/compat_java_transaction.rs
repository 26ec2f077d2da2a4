//! Transactional messages with the official Java 4.9.8 `TransactionMQProducer` against Petrel
//! (compat/java Transactions.java), with a short transactionTimeOut and check interval so the
//! broker's check-back happens within seconds.

use std::io::Write;

use petrel::standalone::StandaloneConfig;
use petrel_tests::java::{scenario, scenario_on, unique_run_name};
use petrel_tests::Standalone;

/// Checks per half message before it is given up on, in the never-resolved test.
const CHECK_MAX: u32 = 2;

/// Petrel whose half messages are checked 1 s after they are stored, then every second.
fn config(dir: &std::path::Path) -> StandaloneConfig {
    let path = dir.join("broker.toml");
    let mut f = std::fs::File::create(&path).unwrap();
    writeln!(
        f,
        "transactionTimeOut = 1000\ntransactionCheckInterval = 1000\ntransactionCheckMax = {CHECK_MAX}"
    )
    .unwrap();
    let mut c = StandaloneConfig::ephemeral(dir.join("data"));
    c.broker_config_file = Some(path);
    c
}

#[test]
fn committed_delivered_once_rolled_back_never_unknown_resolved_by_check() {
    let dir = tempfile::tempdir().unwrap();
    let run = scenario_on(config(dir.path()), "Transactions.outcomes", &[]);
    assert_eq!(run.result("checked"), Some("10"), "{}", run.stdout);
}

#[test]
fn a_transaction_never_resolved_ends_in_trans_check_max_time_topic() {
    let dir = tempfile::tempdir().unwrap();
    scenario_on(
        config(dir.path()),
        "Transactions.neverResolved",
        &[("checkMax", CHECK_MAX.to_string())],
    );
}

/// The producer dies between its half messages and their end; Petrel restarts (the pending
/// transactions are rebuilt from the commit log); a second instance of the producer group
/// answers the checks.
#[test]
fn another_producer_of_the_group_resolves_what_a_dead_one_left_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut petrel = rt
        .block_on(Standalone::start_with(config(dir.path())))
        .unwrap();
    let run = unique_run_name();
    let count = ("count", "20".to_owned());
    scenario(
        "Transactions.abandon",
        &petrel.namesrv_addr,
        &run,
        std::slice::from_ref(&count),
    )
    .assert_passed("the producer that dies");
    rt.block_on(petrel.restart()).unwrap();
    scenario(
        "Transactions.recoverByCheck",
        &petrel.namesrv_addr,
        &run,
        &[count],
    )
    .assert_passed("the second producer of the group");
    rt.block_on(petrel.shutdown()).unwrap();
}
