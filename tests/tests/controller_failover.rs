//! Automatic failover with real processes: three `petrel controller`s, a name server and two
//! brokers in controller mode (SYNC_MASTER) as separate `petrel` processes. A producer sends
//! without pause while, cycle after cycle, the master is killed with SIGKILL: the controllers
//! elect the slave, the producer resumes on its own through the name server, the killed broker
//! restarts on its data and ports and rejoins as a slave (cutting any tail the new master does
//! not have) until it is in sync again. At the end every message the producer got SEND_OK for is
//! consumed.
//!
//! Needs `target/<profile>/petrel` (`cargo test --workspace` builds it).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use petrel_client::admin::Admin;
use petrel_client::{ClientConfig, Message, Producer, SendStatus};
use petrel_controller::client::{ControllerClient, ReplicaInfo};
use petrel_tests::cluster::{
    master_index, start_namesrv, wait_for_master, wait_for_topic_on, BrokerSpec, Controllers,
    PetrelProcess,
};

const CYCLES: usize = 3;
const QUEUES: i32 = 4;
/// Sends acknowledged in each cycle before its master is killed.
const SENDS_PER_CYCLE: usize = 300;
/// The promise: a new master serves within this long of the old one's death.
const FAILOVER_BOUND: Duration = Duration::from_secs(10);
const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn the_controllers_replace_a_killed_master_and_no_acknowledged_message_is_lost() {
    let started = Instant::now();
    let rt = petrel_tests::runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let controllers = Controllers::start(dir.path());
    let ns = start_namesrv();
    let extra = controllers.broker_config();
    let specs = [
        BrokerSpec::new(dir.path(), "a", "SYNC_MASTER", 0, &extra),
        BrokerSpec::new(dir.path(), "b", "SYNC_MASTER", 0, &extra),
    ];
    let mut brokers: Vec<Option<PetrelProcess>> =
        specs.iter().map(|s| Some(s.start(&ns.addr))).collect();
    let index_of = |info: &ReplicaInfo| master_index(&specs, info);
    let controller = ControllerClient::new(&controllers.addrs());
    let info = rt.block_on(wait_for_master(
        &controller,
        "a master with its slave in sync",
        SETTLE_TIMEOUT,
        |i| i.master_broker_id.is_some() && i.sync_state_set.sync_state_set.len() == 2,
    ));
    let first = index_of(&info);
    println!(
        "first master: broker {} (epoch {}) after {:?}",
        first,
        info.master_epoch,
        started.elapsed()
    );

    let topic = "FailoverTopic";
    let admin = Admin::new(ClientConfig::new(ns.addr.clone()).with_instance_name("failover-admin"));
    let master_addr = format!("127.0.0.1:{}", specs[first].port);
    let slave_addr = format!("127.0.0.1:{}", specs[1 - first].port);
    rt.block_on(admin.create_topic(&master_addr, topic, QUEUES))
        .expect("create the topic on the master");
    rt.block_on(wait_for_topic_on(
        &admin,
        &slave_addr,
        topic,
        SETTLE_TIMEOUT,
    ));

    // A producer sends without pause for the whole test and keeps what got SEND_OK.
    let mut config = ClientConfig::new(ns.addr.clone()).with_instance_name("failover-producer");
    config.poll_namesrv_interval = Duration::from_secs(1);
    let producer = Arc::new(Producer::new("failover-producer", config));
    rt.block_on(producer.start()).expect("start the producer");
    let acked: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (producer, acked, stop) = (producer.clone(), acked.clone(), stop.clone());
        rt.spawn(async move {
            let mut n = 0u64;
            let mut failed = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let key = format!("k{n}");
                let msg = Message::new(topic, format!("body {n}")).with_keys(&key);
                match producer.send(msg).await {
                    Ok(r) if r.status == SendStatus::SendOk => {
                        acked.lock().unwrap().push((key, Instant::now()))
                    }
                    _ => {
                        failed += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
            failed
        })
    };

    let acked_count = || acked.lock().unwrap().len();
    let mut master = first;
    for cycle in 1..=CYCLES {
        let target = acked_count() + SENDS_PER_CYCLE;
        rt.block_on(petrel_tests::bounded("sends before the kill", async {
            while acked_count() < target {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }))
        .expect("the producer sends");
        let before = rt
            .block_on(controller.replica_info("broker-a"))
            .expect("the controllers answer");
        assert_eq!(index_of(&before), master);
        brokers[master].take().expect("the master runs").kill_9();
        let killed = Instant::now();

        let after = rt.block_on(wait_for_master(
            &controller,
            "a new master",
            SETTLE_TIMEOUT,
            |i| i.master_epoch > before.master_epoch && i.master_broker_id.is_some(),
        ));
        let elected = killed.elapsed();
        let new_master = index_of(&after);
        assert_ne!(new_master, master, "the killed broker cannot be elected");
        rt.block_on(petrel_tests::bounded("a send after the kill", async {
            loop {
                if acked
                    .lock()
                    .unwrap()
                    .last()
                    .is_some_and(|(_, at)| *at > killed)
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }))
        .unwrap_or_else(|e| {
            panic!(
                "the producer did not resume on its own: {e}\n{}",
                brokers[new_master]
                    .as_ref()
                    .map(|b| b.output())
                    .unwrap_or_default()
            )
        });
        let resumed = killed.elapsed();
        println!(
            "cycle {cycle}: broker {master} killed; broker {new_master} elected (epoch {}) after {elected:?}; producer got SEND_OK again after {resumed:?}",
            after.master_epoch
        );
        assert!(
            resumed <= FAILOVER_BOUND,
            "cycle {cycle}: the new master served only after {resumed:?}"
        );

        // The killed broker comes back as a slave and catches up.
        brokers[master] = Some(specs[master].start(&ns.addr));
        let old = master;
        rt.block_on(wait_for_master(
            &controller,
            "the restarted broker back in sync",
            SETTLE_TIMEOUT,
            |i| i.sync_state_set.sync_state_set.len() == 2 && i.master_epoch == after.master_epoch,
        ));
        println!(
            "cycle {cycle}: broker {old} is in sync again after {:?}",
            killed.elapsed()
        );
        master = new_master;
    }
    stop.store(true, Ordering::Relaxed);
    let failed = rt.block_on(sender).expect("the sender task");
    rt.block_on(producer.shutdown());

    let acked: Vec<String> = acked
        .lock()
        .unwrap()
        .iter()
        .map(|(k, _)| k.clone())
        .collect();
    let missing = rt.block_on(petrel_tests::missing_after_consuming(
        &ns.addr,
        "failover-check",
        topic,
        &acked,
    ));
    println!(
        "{} sends acknowledged ({failed} failed during failovers), {missing} of them not consumed; {:?} in all",
        acked.len(),
        started.elapsed()
    );
    assert_eq!(missing, 0, "acknowledged messages were lost");
    drop(brokers);
}
