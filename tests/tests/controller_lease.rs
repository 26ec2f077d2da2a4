//! One brain: a master in controller mode that cannot reach any controller stops taking writes
//! when its lease runs out (3 s after its last answered heartbeat was sent), before the
//! controllers could elect anyone else (5 s). Here all three controllers are killed with SIGKILL
//! under load; the master refuses sends with SERVICE_NOT_AVAILABLE and says why; the
//! controllers start again on their Raft logs, remember the group, keep the same master, and it
//! takes writes again.
//!
//! Needs `target/<profile>/petrel` (`cargo test --workspace` builds it).

use std::time::{Duration, Instant};

use petrel_client::admin::Admin;
use petrel_client::{ClientConfig, Message, Producer, SendStatus};
use petrel_controller::client::ControllerClient;
use petrel_remoting::code::response;
use petrel_tests::cluster::{
    start_namesrv, wait_for_master, wait_for_topic_on, BrokerSpec, Controllers,
};

const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The broker's lease (`petrel_broker::ha::controlled::LEASE`) and a heartbeat's worth of slack.
const LEASE_BOUND: Duration = Duration::from_millis(4500);

#[test]
fn a_master_without_controllers_stops_writing_when_its_lease_runs_out_and_resumes_after() {
    let rt = petrel_tests::runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut controllers = Controllers::start(dir.path());
    let ns = start_namesrv();
    let extra = controllers.broker_config();
    let specs = [
        BrokerSpec::new(dir.path(), "a", "SYNC_MASTER", 0, &extra),
        BrokerSpec::new(dir.path(), "b", "SYNC_MASTER", 0, &extra),
    ];
    let _brokers: Vec<_> = specs.iter().map(|s| s.start(&ns.addr)).collect();
    let client = ControllerClient::new(&controllers.addrs());
    let before = rt.block_on(wait_for_master(
        &client,
        "a master with its slave in sync",
        SETTLE_TIMEOUT,
        |i| i.master_broker_id.is_some() && i.sync_state_set.sync_state_set.len() == 2,
    ));
    let master_addr = before.master_address.clone().expect("the master's address");
    let slave_addr = specs
        .iter()
        .map(|s| format!("127.0.0.1:{}", s.port))
        .find(|a| *a != master_addr)
        .expect("the slave");
    let topic = "LeaseTopic";
    let admin = Admin::new(ClientConfig::new(ns.addr.clone()).with_instance_name("lease-admin"));
    rt.block_on(admin.create_topic(&master_addr, topic, 2))
        .expect("create the topic");
    rt.block_on(wait_for_topic_on(
        &admin,
        &slave_addr,
        topic,
        SETTLE_TIMEOUT,
    ));

    let mut config = ClientConfig::new(ns.addr.clone()).with_instance_name("lease-producer");
    config.poll_namesrv_interval = Duration::from_secs(1);
    let producer = Producer::new("lease-producer", config);
    rt.block_on(producer.start()).expect("start the producer");
    let send = |n: u64| {
        rt.block_on(
            producer.send(Message::new(topic, format!("body {n}")).with_keys(format!("k{n}"))),
        )
    };
    for n in 0..20 {
        let r = send(n).expect("a send with the controllers up");
        assert_eq!(r.status, SendStatus::SendOk);
    }

    controllers.kill_9_all();
    let killed = Instant::now();
    let mut n = 100;
    let mut last_ok = None;
    let refusal = loop {
        n += 1;
        match send(n) {
            Ok(r) if r.status == SendStatus::SendOk => last_ok = Some(killed.elapsed()),
            Ok(_) => {}
            Err(e) if e.code() == Some(response::SERVICE_NOT_AVAILABLE) => break e.to_string(),
            Err(e) => panic!("unexpected send failure: {e}"),
        }
        assert!(
            killed.elapsed() < Duration::from_secs(20),
            "the master kept taking writes without controllers"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let stopped = killed.elapsed();
    println!(
        "controllers killed: last SEND_OK after {last_ok:?}, writes refused after {stopped:?}: {refusal}"
    );
    assert!(refusal.contains("lease"), "the remark says why: {refusal}");
    assert!(
        stopped <= LEASE_BOUND,
        "the master took writes {stopped:?} after losing its controllers"
    );
    // Still refused a moment later: the lease does not come back on its own.
    std::thread::sleep(Duration::from_secs(1));
    let e = send(n + 1).expect_err("no writes without controllers");
    assert_eq!(e.code(), Some(response::SERVICE_NOT_AVAILABLE));

    controllers.restart_all();
    let restarted = Instant::now();
    let after = rt.block_on(wait_for_master(
        &client,
        "the controllers back with their state",
        SETTLE_TIMEOUT,
        |i| i.master_broker_id.is_some(),
    ));
    assert_eq!(
        (after.master_broker_id, after.master_epoch),
        (before.master_broker_id, before.master_epoch),
        "the controllers kept the master they had"
    );
    let resumed = loop {
        n += 1;
        if matches!(send(n), Ok(r) if r.status == SendStatus::SendOk) {
            break restarted.elapsed();
        }
        assert!(
            restarted.elapsed() < SETTLE_TIMEOUT,
            "no writes after the controllers came back"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    println!("controllers restarted: SEND_OK again after {resumed:?}");
    rt.block_on(producer.shutdown());
}
