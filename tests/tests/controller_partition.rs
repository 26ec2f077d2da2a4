//! A real network partition (`ip netns`, as root): the master runs in a network namespace of
//! its own and loses its link to the three controllers (a blackhole route), while clients, the
//! name server and its slave still reach it. It must stop taking writes when its lease runs out,
//! before the controllers elect the slave; at no moment do two masters take writes; after the
//! link heals the old master comes back as a slave, in sync, and nothing acknowledged is lost.
//!
//! Skipped (with a note) when not run as root. Needs `target/<profile>/petrel`.

use std::ffi::OsStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use petrel_client::admin::Admin;
use petrel_client::{ClientConfig, Message, Producer, SendStatus};
use petrel_controller::client::ControllerClient;
use petrel_tests::cluster::{
    free_port, wait_for_master, wait_for_topic_on, BrokerSpec, Controllers, NetNs, PetrelProcess,
};

const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The lease (3 s) and a heartbeat's slack.
const LEASE_BOUND: Duration = Duration::from_millis(4500);

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The store host of a broker's message id (`offsetMsgId`: IPv4, port, offset in hex).
fn stored_on(offset_msg_id: &str) -> String {
    let hex = |range: std::ops::Range<usize>| {
        u32::from_str_radix(&offset_msg_id[range], 16).expect("a hex message id")
    };
    let ip = std::net::Ipv4Addr::from(hex(0..8));
    format!("{ip}:{}", hex(8..16))
}

#[test]
fn a_master_cut_off_from_the_controllers_stops_writing_before_the_slave_takes_over() {
    if !is_root() {
        eprintln!("skipped: network namespaces need root");
        return;
    }
    let rt = petrel_tests::runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let net = NetNs::create();
    let controllers = Controllers::start_on(dir.path(), &net.host_cut_ip());
    let ns_listen = format!("{}:{}", net.host_ip(), free_port());
    let _ns = PetrelProcess::spawn(
        &["namesrv", "--listen", &ns_listen].map(OsStr::new),
        "name server is up",
    );
    let extra = controllers.broker_config();
    let inside = BrokerSpec::new(dir.path(), "inside", "SYNC_MASTER", 0, &extra);
    let outside = BrokerSpec::new(dir.path(), "outside", "SYNC_MASTER", 0, &extra);
    let inside_addr = format!("{}:{}", net.inside_ip(), inside.port);
    let outside_addr = format!("{}:{}", net.host_ip(), outside.port);
    let client = ControllerClient::new(&controllers.addrs());

    // The broker in the namespace starts first and becomes master; then its slave.
    let _inside_broker = inside.start_at(&ns_listen, &net.inside_ip(), Some(&net.name));
    let first = rt.block_on(wait_for_master(
        &client,
        "the broker in the namespace elected",
        SETTLE_TIMEOUT,
        |i| i.master_address.as_deref() == Some(inside_addr.as_str()),
    ));
    let _outside_broker = outside.start_at(&ns_listen, &net.host_ip(), None);
    rt.block_on(wait_for_master(
        &client,
        "its slave in sync",
        SETTLE_TIMEOUT,
        |i| i.sync_state_set.sync_state_set.len() == 2,
    ));
    let topic = "PartitionTopic";
    let admin = Admin::new(ClientConfig::new(ns_listen.clone()).with_instance_name("part-admin"));
    rt.block_on(admin.create_topic(&inside_addr, topic, 2))
        .expect("create the topic");
    rt.block_on(wait_for_topic_on(
        &admin,
        &outside_addr,
        topic,
        SETTLE_TIMEOUT,
    ));

    let mut config = ClientConfig::new(ns_listen.clone()).with_instance_name("part-producer");
    config.poll_namesrv_interval = Duration::from_secs(1);
    let producer = Arc::new(Producer::new("part-producer", config));
    rt.block_on(producer.start()).expect("start the producer");
    let mut acked = Vec::new();
    let mut n = 0u64;
    let mut send = |acked: &mut Vec<(String, String, Duration)>, since: Instant| {
        n += 1;
        let key = format!("k{n}");
        let msg = Message::new(topic, format!("body {n}")).with_keys(&key);
        match rt.block_on(producer.send(msg)) {
            Ok(r) if r.status == SendStatus::SendOk => {
                acked.push((key, stored_on(&r.offset_msg_id), since.elapsed()));
                true
            }
            _ => {
                std::thread::sleep(Duration::from_millis(20));
                false
            }
        }
    };
    let start = Instant::now();
    while acked.len() < 200 {
        send(&mut acked, start);
        assert!(start.elapsed() < SETTLE_TIMEOUT, "no sends before the cut");
    }

    net.cut_off();
    let cut = Instant::now();
    let before_cut = acked.len();
    // Send until the slave, elected, has taken writes for a while.
    let mut outside_since = None;
    loop {
        send(&mut acked, cut);
        if outside_since.is_none()
            && acked
                .last()
                .is_some_and(|(_, on, at)| *on == outside_addr && *at > Duration::ZERO)
        {
            outside_since = acked.last().map(|(_, _, at)| *at);
        }
        if outside_since.is_some_and(|s| cut.elapsed() > s + Duration::from_secs(2)) {
            break;
        }
        assert!(cut.elapsed() < SETTLE_TIMEOUT, "the slave never took over");
    }
    let after_cut = &acked[before_cut..];
    let last_inside = after_cut
        .iter()
        .filter(|(_, on, _)| *on == inside_addr)
        .map(|(_, _, at)| *at)
        .max();
    let first_outside = outside_since.expect("the slave took writes");
    let elected = rt
        .block_on(client.replica_info("broker-a"))
        .expect("the controllers answer");
    println!(
        "link cut: the old master's last SEND_OK after {last_inside:?}, the new master's first after {first_outside:?} (epoch {} -> {})",
        first.master_epoch, elected.master_epoch
    );
    assert_eq!(
        elected.master_address.as_deref(),
        Some(outside_addr.as_str())
    );
    assert!(
        last_inside.is_none_or(|t| t <= LEASE_BOUND),
        "the cut-off master took writes {last_inside:?} after the cut"
    );
    assert!(
        last_inside.is_none_or(|t| t < first_outside),
        "two masters took writes at once"
    );

    net.heal();
    let healed = Instant::now();
    rt.block_on(wait_for_master(
        &client,
        "the old master back as a slave, in sync",
        SETTLE_TIMEOUT,
        |i| {
            i.master_address.as_deref() == Some(outside_addr.as_str())
                && i.sync_state_set.sync_state_set.len() == 2
        },
    ));
    println!(
        "link healed: the old master is an in-sync slave after {:?}",
        healed.elapsed()
    );
    for _ in 0..50 {
        send(&mut acked, healed);
    }
    rt.block_on(producer.shutdown());

    let keys: Vec<String> = acked.iter().map(|(k, _, _)| k.clone()).collect();
    let missing = rt.block_on(petrel_tests::missing_after_consuming(
        &ns_listen,
        "part-check",
        topic,
        &keys,
    ));
    println!("{} acknowledged, {missing} not consumed", acked.len());
    assert_eq!(missing, 0, "acknowledged messages were lost");
}
