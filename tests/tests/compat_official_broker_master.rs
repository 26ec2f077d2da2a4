//! A Petrel slave of the official RocketMQ 4.9.7 broker: the official name server, an official
//! SYNC_MASTER and a `petrel broker` SLAVE as separate processes, over RocketMQ's classic HA
//! wire. The official Java client 4.9.8 sends 100,000 messages (each SEND_OK, so on the
//! Petrel slave too); the Petrel slave's commit log is the master's byte for byte (same
//! segments, same offsets, same CRCs); after a SIGKILL of the official master a Java push
//! consumer gets all 100,000 from the Petrel slave, with their bodies.
//!
//! Needs `target/<profile>/petrel` (`cargo test --workspace` builds it) and Java.

use std::time::{Duration, Instant};

use petrel_client::admin::Admin;
use petrel_client::ClientConfig;
use petrel_tests::cluster::{wait_for_route_without_master, wait_for_topic_on, BrokerSpec};
use petrel_tests::java::unique_run_name;
use petrel_tests::official::{
    self, java_consume_all, java_send_all, wait_for_identical_commit_logs, OfficialBrokerSpec,
};

/// Bound of waits on the cluster: metadata sync (every 5 s on Petrel), route changes, the
/// slave catching up.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn a_petrel_slave_replicates_an_official_sync_master_byte_for_byte_and_serves_its_messages() {
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for the admin client");
    let dir = tempfile::tempdir().expect("temp dir");
    let ns = official::start_namesrv(dir.path());
    let master_spec = OfficialBrokerSpec::new(dir.path(), "master", "SYNC_MASTER", 0, &ns.addr);
    let master = master_spec.start();
    let slave_spec = BrokerSpec::new(dir.path(), "slave", "SLAVE", 1, "");
    let slave = slave_spec.start(&ns.addr);
    eprintln!("cluster up after {:?}", started.elapsed());

    let run = unique_run_name();
    let topic = format!("MixedPairTopic_{run}");
    let admin = Admin::new(ClientConfig::new(ns.addr.clone()).with_instance_name("mixed-admin"));
    rt.block_on(admin.create_topic(&master.addr, &topic, 4))
        .expect("create the topic on the official master");
    rt.block_on(wait_for_topic_on(
        &admin,
        &slave.addr,
        &topic,
        SETTLE_TIMEOUT,
    ));

    java_send_all(&ns.addr, &run, &topic);
    let bytes = wait_for_identical_commit_logs(
        &master_spec.commit_log_dir(),
        &slave_spec.data.join("commitlog"),
        // 100,000 records of at least 100 bytes each.
        10_000_000,
        SETTLE_TIMEOUT,
    );
    eprintln!(
        "commit logs identical: {bytes} bytes, after {:?}",
        started.elapsed()
    );

    let master_log = master.kill_9();
    rt.block_on(wait_for_route_without_master(
        &admin,
        &topic,
        SETTLE_TIMEOUT,
    ));
    admin.shutdown();
    let consumer = std::panic::catch_unwind(|| java_consume_all(&ns.addr, &run, &topic));
    if let Err(panic) = consumer {
        eprintln!(
            "--- official master\n{master_log}\n--- petrel slave\n{}",
            slave.output()
        );
        std::panic::resume_unwind(panic);
    }
    eprintln!("test took {:?}", started.elapsed());
}
