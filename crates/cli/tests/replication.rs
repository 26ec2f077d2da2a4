//! Master/slave replication between real `petrel namesrv` and `petrel broker` processes:
//! producers send to a SYNC_MASTER, the master is SIGKILLed at a random moment, and every
//! message it acknowledged with SEND_OK must be readable from the slave (with its key, body and
//! queue offset) while the master is down, the client finding the slave through the name server
//! on its own. The master then restarts on its data and ports, its slave follows it again, and
//! the next cycle starts. What the slave serves is compared with the restarted master too.

#[allow(dead_code)] // each test binary uses part of the helpers
mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{field, read_topic_with, spawn_until, CLIENT_REQUEST_TIMEOUT};
use parking_lot::Mutex;
use petrel_client::admin::Admin;
use petrel_client::{ClientConfig, Message, Producer, SendStatus};
use rand::Rng;

/// Kill/restart cycles of the master.
const CYCLES: usize = 10;
const PRODUCERS: usize = 4;
const QUEUES: i32 = 4;
const TOPIC: &str = "ReplicatedTopic";
/// The kill lands this long into the load: a random point in [min, max).
const KILL_AFTER_MIN_MS: u64 = 200;
const KILL_AFTER_MAX_MS: u64 = 800;
/// Bound of waits on the cluster: a slave (re)connecting, metadata syncing, routes changing.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(30);

/// A child `petrel` process; dropping it kills it.
struct Node {
    child: Child,
    addr: String,
}

impl Node {
    fn kill_9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaping petrel");
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

fn start_namesrv() -> Node {
    let args = ["namesrv", "--listen", "127.0.0.1:0"].map(std::ffi::OsStr::new);
    let (child, line, _) = spawn_until(&args, "name server is up");
    let addr = field(&line, "addr").expect("addr= in the name server's up line");
    Node { child, addr }
}

/// One broker of the group `broker-a`: its data directory, ports and settings stay the same
/// across restarts, as a deployed broker's do.
struct BrokerSpec {
    data: PathBuf,
    config: PathBuf,
    port: u16,
}

impl BrokerSpec {
    fn new(dir: &Path, name: &str, role: &str, id: i64) -> BrokerSpec {
        let config = dir.join(format!("{name}.toml"));
        let ha_port = free_port();
        std::fs::write(
            &config,
            format!(
                "brokerRole = \"{role}\"\nbrokerId = {id}\nhaListenPort = {ha_port}\n\
                 metricsExporterType = \"DISABLE\"\nmappedFileSizeCommitLog = 4194304\n"
            ),
        )
        .expect("write the broker's config file");
        BrokerSpec {
            data: dir.join(name),
            config,
            port: free_port(),
        }
    }

    fn start(&self, namesrv: &str) -> Node {
        let listen = format!("127.0.0.1:{}", self.port);
        let args: Vec<&std::ffi::OsStr> = vec![
            "broker".as_ref(),
            "--namesrv".as_ref(),
            namesrv.as_ref(),
            "--data".as_ref(),
            self.data.as_os_str(),
            "--listen".as_ref(),
            listen.as_ref(),
            "--grpc-listen".as_ref(),
            "off".as_ref(),
            "--config".as_ref(),
            self.config.as_os_str(),
        ];
        let (child, line, _) = spawn_until(&args, "broker started");
        let addr = field(&line, "addr").expect("addr= in the broker's started line");
        Node { child, addr }
    }
}

fn client_config(namesrv: &str, instance: &str) -> ClientConfig {
    let mut config = ClientConfig::new(namesrv.to_owned()).with_instance_name(instance);
    config.request_timeout = CLIENT_REQUEST_TIMEOUT;
    config
}

/// One SEND_OK.
#[derive(Debug, Clone)]
struct Acked {
    key: String,
    body: String,
    queue_id: i32,
    queue_offset: i64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn what_a_sync_master_acknowledged_is_on_its_slave_after_kill_9() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    let ns = start_namesrv();
    let master_spec = BrokerSpec::new(dir.path(), "master", "SYNC_MASTER", 0);
    let slave_spec = BrokerSpec::new(dir.path(), "slave", "SLAVE", 1);
    let mut master = master_spec.start(&ns.addr);
    let slave = slave_spec.start(&ns.addr);

    let admin = Admin::new(client_config(&ns.addr, "replication-admin"));
    admin
        .create_topic(&master.addr, TOPIC, QUEUES)
        .await
        .expect("create the topic on the master");
    wait_for_topic_on(&admin, &slave.addr).await;

    let mut acked: Vec<Acked> = Vec::new();
    for cycle in 0..CYCLES {
        let cycle_started = Instant::now();
        // SEND_OK again means the slave is back in sync.
        acked.push(send_until_in_sync(&ns.addr, cycle).await);
        let kill_after =
            Duration::from_millis(rand::rng().random_range(KILL_AFTER_MIN_MS..KILL_AFTER_MAX_MS));
        let (new_acks, not_ok) = load_then_kill(master, &ns.addr, cycle, kill_after).await;
        let acked_this_cycle = new_acks.len();
        acked.extend(new_acks);

        // The master is gone: the name server drops it, and a client reads from the slave.
        wait_for_no_master(&admin).await;
        verify(&ns.addr, &acked, &format!("the slave, cycle {cycle}")).await;

        master = master_spec.start(&ns.addr);
        eprintln!(
            "cycle {cycle}: killed after {kill_after:?}, {acked_this_cycle} SEND_OK \
             ({not_ok} other answers), {} acked in all, all on the slave; cycle took {:?}",
            acked.len(),
            cycle_started.elapsed()
        );
    }
    acked.push(send_until_in_sync(&ns.addr, CYCLES).await);
    // The restarted master kept its own log: it serves the same messages.
    verify(&ns.addr, &acked, "the restarted master").await;
    assert!(
        acked.len() > 2 * CYCLES,
        "the load acknowledged next to nothing before the kills: the test proved nothing"
    );
    admin.instance().shutdown();
    drop((master, slave, ns));
    eprintln!(
        "{CYCLES} cycles, {} acknowledged messages read back from the slave, {:?}",
        acked.len(),
        started.elapsed()
    );
}

/// Waits until the slave's metadata synchronisation brought it the topic.
async fn wait_for_topic_on(admin: &Admin, slave: &str) {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        match admin.all_topic_configs(slave).await {
            Ok(topics) if topics.contains_key(TOPIC) => return,
            other => assert!(
                Instant::now() < deadline,
                "the slave never got {TOPIC}: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the name server's route of the topic lists no master (brokerId 0).
async fn wait_for_no_master(admin: &Admin) {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    loop {
        let route = admin.topic_route(TOPIC).await;
        match &route {
            Ok(r)
                if r.broker_datas
                    .iter()
                    .all(|b| !b.broker_addrs.contains_key(&0)) =>
            {
                return
            }
            _ => assert!(
                Instant::now() < deadline,
                "the name server still routes to the killed master: {route:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends one message until a SEND_OK, which a SYNC_MASTER gives only with its slave in sync.
async fn send_until_in_sync(namesrv: &str, cycle: usize) -> Acked {
    let producer = Producer::new(
        "petrel_replication_probe",
        client_config(namesrv, &format!("probe-{cycle}")),
    );
    producer.start().await.expect("start producer");
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    let mut i = 0;
    loop {
        let key = format!("probe-c{cycle}-{i}");
        i += 1;
        let body = format!("body of {key}");
        let last = match producer
            .send(Message::new(TOPIC, body.clone()).with_keys(key.clone()))
            .await
        {
            Ok(r) if r.status == SendStatus::SendOk => {
                producer.shutdown().await;
                return Acked {
                    key,
                    body,
                    queue_id: r.queue.queue_id,
                    queue_offset: r.queue_offset,
                };
            }
            other => format!("{other:?}"),
        };
        assert!(
            Instant::now() < deadline,
            "no SEND_OK within {SETTLE_TIMEOUT:?} of cycle {cycle}: the slave never caught up ({last})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs [`PRODUCERS`] sending loops, SIGKILLs the master after `kill_after`, and returns every
/// SEND_OK plus the count of other answers (FLUSH_SLAVE_TIMEOUT, SLAVE_NOT_AVAILABLE).
async fn load_then_kill(
    master: Node,
    namesrv: &str,
    cycle: usize,
    kill_after: Duration,
) -> (Vec<Acked>, usize) {
    let producer = Arc::new(Producer::new(
        "petrel_replication_producer",
        client_config(namesrv, &format!("load-{cycle}")),
    ));
    producer.start().await.expect("start producer");
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let not_ok = Arc::new(Mutex::new(0usize));
    let mut tasks = Vec::new();
    for p in 0..PRODUCERS {
        let (producer, stop, acked, not_ok) = (
            Arc::clone(&producer),
            Arc::clone(&stop),
            Arc::clone(&acked),
            Arc::clone(&not_ok),
        );
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("c{cycle}-p{p}-m{i}");
                let body = format!("body of {key}");
                i += 1;
                let msg = Message::new(TOPIC, body.clone()).with_keys(key.clone());
                match producer.send(msg).await {
                    Ok(r) if r.status == SendStatus::SendOk => acked.lock().push(Acked {
                        key,
                        body,
                        queue_id: r.queue.queue_id,
                        queue_offset: r.queue_offset,
                    }),
                    Ok(_) => *not_ok.lock() += 1,
                    // The master is dead (or dying): the message may or may not be stored.
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        }));
    }
    tokio::time::sleep(kill_after).await;
    master.kill_9();
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        tokio::time::timeout(SETTLE_TIMEOUT, task)
            .await
            .expect("a producer task did not stop after the kill")
            .expect("producer task panicked");
    }
    let _ = tokio::time::timeout(SETTLE_TIMEOUT, producer.shutdown()).await;
    let acked = std::mem::take(&mut *acked.lock());
    let not_ok = *not_ok.lock();
    (acked, not_ok)
}

/// Every acknowledged message is at its queue offset with its key and body, read through the
/// name server from whichever broker of the group it routes reads to (`from` says which).
async fn verify(namesrv: &str, acked: &[Acked], from: &str) {
    let stored = read_topic_with(client_config(namesrv, "reader"), TOPIC).await;
    let by_queue: HashMap<i32, &Vec<_>> = stored.iter().map(|(q, m)| (*q, m)).collect();
    for a in acked {
        let queue = by_queue
            .get(&a.queue_id)
            .unwrap_or_else(|| panic!("{from}: queue {} is gone", a.queue_id));
        let m = queue.get(a.queue_offset as usize).unwrap_or_else(|| {
            panic!(
                "{from}: acknowledged {} at queue {} offset {} is lost (the queue holds {})",
                a.key,
                a.queue_id,
                a.queue_offset,
                queue.len()
            )
        });
        assert_eq!(m.keys(), Some(a.key.as_str()), "{from}: key at {a:?}");
        assert_eq!(&m.body[..], a.body.as_bytes(), "{from}: body at {a:?}");
    }
}
