//! The official RocketMQ 4.9.7 broker as the slave of a Petrel master: a `petrel namesrv`, a
//! `petrel broker` SYNC_MASTER and an official SLAVE as separate processes, over RocketMQ's
//! classic HA wire. The official Java client 4.9.8 sends 100,000 messages (each SEND_OK, so
//! on the official slave too); the official slave's commit log is Petrel's byte for byte;
//! after a SIGKILL of the Petrel master a Java push consumer gets all 100,000 from the
//! official slave, with their bodies. The official broker registers with Petrel's name server,
//! which hands it the master's HA address, and learns the topic from Petrel's metadata
//! answers (GET_ALL_TOPIC_CONFIG), so this is also a mixed cluster's control plane.
//!
//! Needs `target/<profile>/petrel` (`cargo test --workspace` builds it) and Java.

use std::time::{Duration, Instant};

use petrel_client::admin::Admin;
use petrel_client::ClientConfig;
use petrel_tests::cluster::{
    start_namesrv, wait_for_route_without_master, wait_for_topic_on, BrokerSpec,
};
use petrel_tests::java::unique_run_name;
use petrel_tests::official::{
    java_consume_all, java_send_all, wait_for_identical_commit_logs, OfficialBrokerSpec,
};

/// Bound of waits on the cluster: the official slave's metadata sync (every 10 s), route
/// changes, the slave catching up.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn an_official_slave_replicates_a_petrel_sync_master_byte_for_byte_and_serves_its_messages() {
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for the admin client");
    let dir = tempfile::tempdir().expect("temp dir");
    let ns = start_namesrv();
    let master_spec = BrokerSpec::new(dir.path(), "master", "SYNC_MASTER", 0, "");
    let master = master_spec.start(&ns.addr);
    let slave_spec = OfficialBrokerSpec::new(dir.path(), "slave", "SLAVE", 1, &ns.addr);
    let slave = slave_spec.start();
    eprintln!("cluster up after {:?}", started.elapsed());

    let run = unique_run_name();
    let topic = format!("MixedPairTopic_{run}");
    let admin = Admin::new(ClientConfig::new(ns.addr.clone()).with_instance_name("mixed-admin"));
    rt.block_on(admin.create_topic(&master.addr, &topic, 4))
        .expect("create the topic on the Petrel master");
    rt.block_on(wait_for_topic_on(
        &admin,
        &slave.addr,
        &topic,
        SETTLE_TIMEOUT,
    ));

    java_send_all(&ns.addr, &run, &topic);
    let bytes = wait_for_identical_commit_logs(
        &master_spec.data.join("commitlog"),
        &slave_spec.commit_log_dir(),
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
            "--- petrel master\n{master_log}\n--- official slave\n{}",
            slave.output()
        );
        std::panic::resume_unwind(panic);
    }
    eprintln!("test took {:?}", started.elapsed());
}
