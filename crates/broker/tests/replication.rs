//! Master/slave replication between two real brokers on loopback, over RocketMQ's HA wire: the
//! slave's commit log is the master's byte for byte, it serves pulls of what the master
//! stored, refuses sends, and a SYNC_MASTER answers a send only once the slave has it.

mod common;

use std::time::{Duration, Instant};

use petrel_broker::ha::BrokerRole;
use petrel_broker::BrokerHandle;
use petrel_common::properties::Properties;
use petrel_common::record;
use petrel_remoting::code::{request, response};
use petrel_remoting::headers::{
    pull_sys_flag, PullMessageRequestHeader, UpdateConsumerOffsetRequestHeader,
};
use petrel_remoting::{Connection, RemotingCommand};

use petrel_namesrv::{NameServer, NamesrvConfig};
use petrel_remoting::CancellationToken;

use common::{connect, pull_request, send_request, start_broker_with, TIMEOUT};

const TOPIC: &str = "Replicated";

/// A name server on loopback: the slave learns its master's addresses from it, as in RocketMQ.
async fn start_namesrv() -> String {
    let config = NamesrvConfig {
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        ..NamesrvConfig::default()
    };
    // Lives as long as the test process; each test has its own.
    let ns = NameServer::start(config, CancellationToken::new())
        .await
        .unwrap();
    ns.local_addr().to_string()
}

async fn start_master(dir: &std::path::Path, namesrv: &str, role: BrokerRole) -> BrokerHandle {
    start_broker_with(dir, |c| {
        c.broker_role = role;
        c.namesrv_addr = namesrv.to_owned();
        c.grpc_listen = None;
    })
    .await
}

async fn start_slave(dir: &std::path::Path, namesrv: &str) -> BrokerHandle {
    start_broker_with(dir, |c| {
        c.broker_role = BrokerRole::Slave;
        c.broker_id = 1;
        c.namesrv_addr = namesrv.to_owned();
        c.grpc_listen = None;
    })
    .await
}

/// The slave's metadata follows the master's every few seconds; pulls need the topic there.
async fn wait_for_topic(slave: &BrokerHandle) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while slave.broker.topics.get(TOPIC).is_none() {
        assert!(
            Instant::now() < deadline,
            "the topic never reached the slave"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn send(conn: &Connection, body: &str) -> i32 {
    let mut props = Properties::default();
    props.insert("TAGS", "t");
    let req = send_request(TOPIC, 0, body.as_bytes(), &props);
    conn.request(req, TIMEOUT).await.unwrap().code
}

fn log_bytes(b: &BrokerHandle, from: i64) -> Vec<u8> {
    let store = &b.broker.store;
    let mut out = Vec::new();
    let mut at = from;
    while let Some(chunk) = store
        .replication_chunk(at, 1 << 20)
        .filter(|c| !c.is_empty())
    {
        at += chunk.len() as i64;
        out.extend_from_slice(&chunk);
    }
    out
}

async fn pulled_bodies(conn: &Connection) -> Vec<String> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        // A pull carrying its subscription, as a consumer without a heartbeat here sends it.
        let header = PullMessageRequestHeader {
            sys_flag: pull_sys_flag::SUBSCRIPTION,
            subscription: Some("*".into()),
            ..pull_request("readers", TOPIC, 0, offset, 0)
                .decode_header()
                .unwrap()
        };
        let req = RemotingCommand::request_with_header(request::PULL_MESSAGE, &header);
        let resp = conn.request(req, TIMEOUT).await.unwrap();
        if resp.code == response::PULL_NOT_FOUND {
            return out;
        }
        assert_eq!(
            resp.code,
            response::SUCCESS,
            "pull at {offset}: {:?}",
            resp.remark
        );
        let body = resp.body_bytes();
        let mut pos = 0;
        while pos < body.len() {
            let r = record::decode(&body[pos..], true).unwrap();
            out.push(String::from_utf8(r.body.to_vec()).unwrap());
            offset = r.queue_offset + 1;
            pos += r.total_size as usize;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_master_answers_once_its_slave_has_the_message_and_the_slave_serves_it() {
    let (m_dir, s_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ns = start_namesrv().await;
    let master = start_master(m_dir.path(), &ns, BrokerRole::SyncMaster).await;
    let producer = connect(&master).await;
    // No slave yet: stored, but the producer hears SLAVE_NOT_AVAILABLE.
    assert_eq!(
        send(&producer, "before-slave").await,
        response::SLAVE_NOT_AVAILABLE
    );

    let slave = start_slave(s_dir.path(), &ns).await;
    wait_until("the slave is connected", || {
        master.broker.ha.connected_slaves() == 1
    })
    .await;
    for i in 0..200 {
        assert_eq!(send(&producer, &format!("m{i}")).await, response::SUCCESS);
        // Answered only once the slave wrote it.
        assert!(
            slave.broker.store.replica_write_end() >= master.broker.store.max_physical_offset(),
            "send {i} was answered before the slave had it"
        );
    }
    let expected: Vec<String> = std::iter::once("before-slave".to_owned())
        .chain((0..200).map(|i| format!("m{i}")))
        .collect();
    let reader = connect(&slave).await;
    wait_until("the slave dispatched everything", || {
        slave.broker.store.max_offset(TOPIC, 0) == 201
    })
    .await;
    wait_for_topic(&slave).await;
    assert_eq!(pulled_bodies(&reader).await, expected);
    assert!(
        log_bytes(&slave, 0) == log_bytes(&master, 0),
        "byte for byte"
    );
    assert_eq!(
        send(&reader, "to-the-slave").await,
        response::SERVICE_NOT_AVAILABLE,
        "a slave takes no sends"
    );

    // The slave goes away: sends are stored and say so; back, it catches up and sync resumes.
    slave.shutdown().await;
    wait_until("the master saw the slave go", || {
        master.broker.ha.connected_slaves() == 0
    })
    .await;
    assert_eq!(
        send(&producer, "while-away").await,
        response::SLAVE_NOT_AVAILABLE
    );
    let slave = start_slave(s_dir.path(), &ns).await;
    wait_until("the slave is back", || {
        master.broker.ha.connected_slaves() == 1
    })
    .await;
    assert_eq!(send(&producer, "after").await, response::SUCCESS);
    let reader = connect(&slave).await;
    wait_until("the slave caught up", || {
        slave.broker.store.max_offset(TOPIC, 0) == 203
    })
    .await;
    wait_for_topic(&slave).await;
    let got = pulled_bodies(&reader).await;
    assert_eq!(&got[201..], ["while-away", "after"]);
    assert!(log_bytes(&slave, 0) == log_bytes(&master, 0));
    slave.shutdown().await;
    master.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_master_answers_at_once_and_a_late_slave_catches_up() {
    let (m_dir, s_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ns = start_namesrv().await;
    let master = start_master(m_dir.path(), &ns, BrokerRole::AsyncMaster).await;
    let producer = connect(&master).await;
    for i in 0..300 {
        assert_eq!(send(&producer, &format!("a{i}")).await, response::SUCCESS);
    }
    let slave = start_slave(s_dir.path(), &ns).await;
    wait_until("the slave caught up", || {
        slave.broker.store.max_physical_offset() == master.broker.store.max_physical_offset()
    })
    .await;
    assert!(log_bytes(&slave, 0) == log_bytes(&master, 0));
    let reader = connect(&slave).await;
    wait_for_topic(&slave).await;
    let got = pulled_bodies(&reader).await;
    assert_eq!(got.len(), 300);
    assert_eq!(got[299], "a299");
    slave.shutdown().await;
    master.shutdown().await;
}

/// A consumer that commits to the slave while the master is down keeps that progress: the
/// slave hands its commits to the master when the master is back, whose offset only moves up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_committed_on_the_slave_reach_the_returning_master() {
    let (m_dir, s_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ns = start_namesrv().await;
    let master = start_master(m_dir.path(), &ns, BrokerRole::AsyncMaster).await;
    let producer = connect(&master).await;
    for i in 0..20 {
        assert_eq!(send(&producer, &format!("o{i}")).await, response::SUCCESS);
    }
    let to_master = connect(&master).await;
    assert_eq!(commit(&to_master, 5).await, response::SUCCESS);
    let slave = start_slave(s_dir.path(), &ns).await;
    let slave_offset = || slave.broker.offsets.query("readers", TOPIC, 0);
    wait_until("the master's offset reached the slave", || {
        slave_offset() == Some(5)
    })
    .await;

    master.shutdown().await;
    let to_slave = connect(&slave).await;
    assert_eq!(commit(&to_slave, 12).await, response::SUCCESS);
    assert_eq!(slave_offset(), Some(12));

    let master = start_master(m_dir.path(), &ns, BrokerRole::AsyncMaster).await;
    assert_eq!(master.broker.offsets.query("readers", TOPIC, 0), Some(5));
    let master_offset = || master.broker.offsets.query("readers", TOPIC, 0);
    wait_until("the slave's commit reached the master", || {
        master_offset() == Some(12)
    })
    .await;
    // A stale, lower commit moves neither.
    assert_eq!(commit(&connect(&master).await, 7).await, response::SUCCESS);
    tokio::time::sleep(one_sync_round()).await;
    assert_eq!(master_offset(), Some(12));
    assert_eq!(slave_offset(), Some(12));
    slave.shutdown().await;
    master.shutdown().await;
}

fn one_sync_round() -> Duration {
    petrel_broker::ha::METADATA_SYNC_INTERVAL + Duration::from_secs(1)
}

async fn commit(conn: &Connection, offset: i64) -> i32 {
    let header = UpdateConsumerOffsetRequestHeader {
        consumer_group: "readers".into(),
        topic: TOPIC.into(),
        queue_id: 0,
        commit_offset: offset,
    };
    let req = RemotingCommand::request_with_header(request::UPDATE_CONSUMER_OFFSET, &header);
    conn.request(req, TIMEOUT).await.unwrap().code
}
