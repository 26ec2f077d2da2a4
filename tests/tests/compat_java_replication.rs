//! The official Apache RocketMQ Java client 4.9.8 (`compat/java`) against Petrel's master/slave
//! replication, with a name server, a SYNC_MASTER and its SLAVE as separate `petrel` processes
//! and a real SIGKILL of the master: what the master acknowledged with SEND_OK is consumed from
//! the slave by a new push consumer that finds it through the name server on its own, and once
//! the master restarts on its data and ports, the same producer gets SEND_OK again by itself.
//!
//! Needs `target/<profile>/petrel` (`cargo build -p petrel --bin petrel`; `cargo test
//! --workspace` builds it).

use std::time::{Duration, Instant};

use petrel_client::admin::Admin;
use petrel_client::ClientConfig;
use petrel_tests::cluster::{
    start_namesrv, wait_for_route_without_master, wait_for_topic_on, BrokerSpec, PetrelProcess,
};
use petrel_tests::java::{spawn_scenario, unique_run_name};
use petrel_tests::process::ProgramRun;

const MESSAGES: usize = 300;
const LATER: usize = 50;
const QUEUES: i32 = 4;
/// Bound of waits on the cluster: the slave's metadata sync (every 5 s), route changes.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound of each phase of the Java program.
const PHASE_TIMEOUT: Duration = Duration::from_secs(120);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime for the admin client")
}

fn result<'a>(run: &'a ProgramRun, key: &str) -> &'a str {
    run.result(key)
        .unwrap_or_else(|| panic!("no RESULT {key}=\n{}", run.stdout))
}

#[test]
fn java_client_consumes_from_the_slave_after_kill_9_of_the_sync_master_and_sends_again_after_its_restart(
) {
    let started = Instant::now();
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let ns = start_namesrv();
    let master_spec = BrokerSpec::new(dir.path(), "master", "SYNC_MASTER", 0, "");
    let slave_spec = BrokerSpec::new(dir.path(), "slave", "SLAVE", 1, "");
    let master = master_spec.start(&ns.addr);
    let slave = slave_spec.start(&ns.addr);

    let run_name = unique_run_name();
    let topic = format!("ReplicationTopic_{run_name}");
    let admin = Admin::new(ClientConfig::new(ns.addr.clone()).with_instance_name("repl-admin"));
    rt.block_on(admin.create_topic(&master.addr, &topic, QUEUES))
        .expect("create the topic on the master");
    // A consumer that comes after the kill reads the topic's queues from the slave, which learns
    // topics by its metadata sync from the master.
    rt.block_on(wait_for_topic_on(
        &admin,
        &slave.addr,
        &topic,
        SETTLE_TIMEOUT,
    ));

    let after_kill = dir.path().join("master-killed");
    let after_restart = dir.path().join("master-restarted");
    let name = "Replication.killMasterConsumeFromSlave";
    let mut java = spawn_scenario(
        name,
        &ns.addr,
        &run_name,
        &[
            ("topic", topic.clone()),
            ("messages", MESSAGES.to_string()),
            ("later", LATER.to_string()),
            ("after_kill", after_kill.display().to_string()),
            ("after_restart", after_restart.display().to_string()),
        ],
    );

    // 1. Every send was SEND_OK: on the slave too.
    let sent = java.wait_for_line("RESULT sent=", PHASE_TIMEOUT);
    if sent.is_none() {
        let run = java.finish();
        panic!(
            "the Java producer never sent its messages\n--- java stdout\n{}\n--- java stderr\n{}\n--- master\n{}\n--- slave\n{}",
            run.stdout,
            run.stderr,
            master.output(),
            slave.output()
        );
    }

    // 2. SIGKILL of the master, then the name server routes the topic to the slave alone.
    let killed_at = Instant::now();
    let master_log = master.kill_9();
    rt.block_on(wait_for_route_without_master(
        &admin,
        &topic,
        SETTLE_TIMEOUT,
    ));
    eprintln!(
        "master killed; the name server dropped it after {:?}",
        killed_at.elapsed()
    );
    std::fs::write(&after_kill, b"").expect("signal the Java program");

    // 3. The consumer reads everything from the slave, then the master restarts.
    let consumed = java.wait_for_line("RESULT consumed_from_slave=", PHASE_TIMEOUT);
    let master = consumed.as_ref().map(|_| master_spec.start(&ns.addr));
    if consumed.is_some() {
        std::fs::write(&after_restart, b"").expect("signal the Java program");
    }

    // 4. The same producer sends again, the same consumer gets those messages too.
    let run = java.finish();
    admin.shutdown();
    let restarted_log = master.as_ref().map(PetrelProcess::output);
    let slave_log = slave.output();
    drop((master, slave, ns));
    for line in run.stdout.lines().filter(|l| l.starts_with("RESULT ")) {
        eprintln!("{line}");
    }
    if !run.success {
        panic!(
            "{name} failed\n--- java stdout\n{}\n--- java stderr\n{}\n--- killed master\n{master_log}\n--- restarted master\n{}\n--- slave\n{slave_log}",
            run.stdout,
            run.stderr,
            restarted_log.unwrap_or_else(|| "(not restarted)".to_owned()),
        );
    }
    assert!(
        consumed.is_some(),
        "the consumer never got the messages from the slave"
    );
    assert_eq!(result(&run, "sent"), MESSAGES.to_string());
    assert_eq!(result(&run, "consumed_from_slave"), MESSAGES.to_string());
    assert_eq!(result(&run, "sent_after_restart"), LATER.to_string());
    assert_eq!(result(&run, "consumed_after_restart"), LATER.to_string());
    let recovery_ms: u64 = result(&run, "ms_to_send_ok_after_restart")
        .parse()
        .expect("a number of milliseconds");
    assert!(
        recovery_ms <= 60_000,
        "SEND_OK again only after {recovery_ms} ms"
    );
    eprintln!("test took {:?}", started.elapsed());
}
