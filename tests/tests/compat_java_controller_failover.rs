//! Automatic failover as the official Java client 4.9.8 sees it: three `petrel controller`s, a
//! name server and two controller-mode SYNC_MASTER brokers as processes; four Java producer
//! threads send without pause while the master is SIGKILLed, cycle after cycle. Each time the
//! controllers elect the slave, the Java producer gets SEND_OK again on its own (with
//! `pollNameServerInterval` = 1 s), the killed broker restarts and rejoins in sync; at the end a
//! Java push consumer gets every message that was acknowledged with SEND_OK.
//!
//! Needs `target/<profile>/petrel` and the Java programs (`cargo test --workspace` and
//! `compat/build.sh` provide them).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use petrel_client::admin::Admin;
use petrel_client::ClientConfig;
use petrel_controller::client::{ControllerClient, ReplicaInfo};
use petrel_tests::cluster::{
    master_index, start_namesrv, wait_for_master, wait_for_topic_on, BrokerSpec, Controllers,
};
use petrel_tests::java::{spawn_scenario, unique_run_name, JavaChild};

/// Kill cycles; `PETREL_FAILOVER_CYCLES` runs more (the proof is 20).
fn cycles() -> usize {
    std::env::var("PETREL_FAILOVER_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}
const SENDS_PER_CYCLE: u64 = 300;
/// A new master within this long of the old one's death (issue 11).
const ELECTION_BOUND: Duration = Duration::from_secs(10);
/// The Java producer also waits for its route poll and its own retry back-off.
const RESUME_BOUND: Duration = Duration::from_secs(20);
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_millis() as u64
}

/// The next TICK line: (acknowledged so far, epoch ms of the last SEND_OK).
fn tick(java: &mut JavaChild) -> (u64, u64) {
    let line = java
        .wait_for_line("TICK ", SETTLE_TIMEOUT)
        .expect("the Java producer reports");
    let field = |name: &str| -> u64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {line:?}"))
    };
    (field("acked="), field("last_ok_ms="))
}

#[test]
fn java_producer_sends_through_automatic_failovers_and_loses_nothing_acknowledged() {
    let started = Instant::now();
    let rt = petrel_tests::runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let _controllers = Controllers::start(dir.path());
    let ns = start_namesrv();
    let extra = _controllers.broker_config();
    let specs = [
        BrokerSpec::new(dir.path(), "a", "SYNC_MASTER", 0, &extra),
        BrokerSpec::new(dir.path(), "b", "SYNC_MASTER", 0, &extra),
    ];
    let mut brokers: Vec<_> = specs.iter().map(|s| Some(s.start(&ns.addr))).collect();
    let index_of = |info: &ReplicaInfo| master_index(&specs, info);
    let controller = ControllerClient::new(&_controllers.addrs());
    let in_sync = |i: &ReplicaInfo| {
        i.master_broker_id.is_some() && i.sync_state_set.sync_state_set.len() == 2
    };
    let info = rt.block_on(wait_for_master(
        &controller,
        "a master with its slave in sync",
        SETTLE_TIMEOUT,
        in_sync,
    ));
    let mut master = index_of(&info);

    let run_name = unique_run_name();
    let topic = format!("JavaFailover_{run_name}");
    let admin =
        Admin::new(ClientConfig::new(ns.addr.clone()).with_instance_name("java-failover-admin"));
    let addr = |i: usize| format!("127.0.0.1:{}", specs[i].port);
    rt.block_on(admin.create_topic(&addr(master), &topic, 4))
        .expect("create the topic on the master");
    rt.block_on(wait_for_topic_on(
        &admin,
        &addr(1 - master),
        &topic,
        SETTLE_TIMEOUT,
    ));

    let stop = dir.path().join("stop");
    let name = "Replication.sendThroughFailovers";
    let mut java = spawn_scenario(
        name,
        &ns.addr,
        &run_name,
        &[
            ("topic", topic.clone()),
            ("threads", "4".into()),
            ("stop", stop.display().to_string()),
        ],
    )
    // Each cycle takes about 10 s.
    .with_timeout(Duration::from_secs(120 + 30 * cycles() as u64));
    let mut epoch = info.master_epoch;
    for cycle in 1..=cycles() {
        let (start, _) = tick(&mut java);
        while tick(&mut java).0 < start + SENDS_PER_CYCLE {}
        brokers[master].take().expect("the master runs").kill_9();
        let killed = Instant::now();
        let killed_ms = now_ms();
        let after = rt.block_on(wait_for_master(
            &controller,
            "a new master",
            SETTLE_TIMEOUT,
            |i| i.master_epoch > epoch && i.master_broker_id.is_some(),
        ));
        let elected = killed.elapsed();
        let elected_ms = now_ms();
        let new_master = index_of(&after);
        assert_ne!(new_master, master, "the killed broker cannot be elected");
        // A SEND_OK the Java threads note after the kill may still be the old master's (its
        // answer was on the way): only one noted after the election is the new master's.
        let resumed = loop {
            let (_, last_ok_ms) = tick(&mut java);
            if last_ok_ms >= elected_ms {
                break Duration::from_millis(last_ok_ms - killed_ms);
            }
            assert!(
                killed.elapsed() < SETTLE_TIMEOUT,
                "cycle {cycle}: the Java producer never got SEND_OK from the new master"
            );
        };
        println!(
            "cycle {cycle}: broker {master} killed; broker {new_master} elected (epoch {}) after {elected:?}; the Java producer got SEND_OK again after {resumed:?}",
            after.master_epoch
        );
        assert!(
            elected <= ELECTION_BOUND,
            "cycle {cycle}: elected after {elected:?}"
        );
        assert!(
            resumed <= RESUME_BOUND,
            "cycle {cycle}: resumed after {resumed:?}"
        );
        brokers[master] = Some(specs[master].start(&ns.addr));
        rt.block_on(wait_for_master(
            &controller,
            "the restarted broker back in sync",
            SETTLE_TIMEOUT,
            |i| in_sync(i) && i.master_epoch == after.master_epoch,
        ));
        epoch = after.master_epoch;
        master = new_master;
    }
    std::fs::write(&stop, b"").expect("tell the Java program to stop");
    let run = java.finish();
    admin.shutdown();
    for line in run.stdout.lines().filter(|l| l.starts_with("RESULT ")) {
        println!("{line}");
    }
    assert!(
        run.success,
        "{name} failed\n--- java stdout\n{}\n--- java stderr\n{}",
        run.stdout, run.stderr
    );
    let acknowledged = run.result("acknowledged").expect("RESULT acknowledged=");
    assert_eq!(
        run.result("consumed_acknowledged"),
        Some(acknowledged),
        "every SEND_OK is consumed"
    );
    println!("test took {:?}", started.elapsed());
    drop(brokers);
}
