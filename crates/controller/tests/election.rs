//! Three controllers on loopback agree on a group's master, replace a silent master with its
//! in-sync slave, survive the loss of their leader, and keep the state across a restart.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use petrel_controller::client::{ControllerClient, ReplicaInfo};
use petrel_controller::headers::{BrokerHeartbeatRequestHeader, RegisterBrokerRequestHeader};
use petrel_controller::{Controller, ControllerConfig, ControllerHandle};
use petrel_remoting::CancellationToken;

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

async fn start(id: u64, peers: &BTreeMap<u64, String>, root: &Path) -> ControllerHandle {
    let addr: SocketAddr = peers[&id].parse().unwrap();
    let mut config = ControllerConfig::new(id, addr, root.join(format!("c{id}")));
    config.peers = peers.clone();
    config.broker_not_active_timeout = Duration::from_secs(2);
    config.scan_interval = Duration::from_millis(100);
    Controller::start(config, CancellationToken::new())
        .await
        .unwrap()
}

async fn wait_for<T>(what: &str, timeout: Duration, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn register_header(address: &str) -> RegisterBrokerRequestHeader {
    RegisterBrokerRequestHeader {
        cluster_name: "DefaultCluster".into(),
        broker_name: "broker-a".into(),
        broker_address: address.into(),
        ha_address: format!("{address}-ha"),
    }
}

async fn heartbeat(client: &ControllerClient, id: u64, epoch: i32, offset: i64) -> ReplicaInfo {
    claim(client, id, epoch, offset, None).await
}

/// A heartbeat; with `set_epoch`, the master's claim that its slaves are in sync.
async fn claim(
    client: &ControllerClient,
    id: u64,
    epoch: i32,
    offset: i64,
    set_epoch: Option<i32>,
) -> ReplicaInfo {
    client
        .heartbeat(&BrokerHeartbeatRequestHeader {
            cluster_name: "DefaultCluster".into(),
            broker_name: "broker-a".into(),
            broker_addr: format!("127.0.0.1:{}", 10910 + id),
            broker_id: id,
            epoch,
            max_offset: offset,
            sync_state_set_epoch: set_epoch,
            slaves_in_sync: set_epoch.map(|_| true),
        })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_controllers_elect_fail_over_and_remember() {
    let root = tempfile::tempdir().unwrap();
    let peers: BTreeMap<u64, String> = (1..=3).map(|id| (id, free_addr().to_string())).collect();
    let mut controllers = Vec::new();
    for id in 1..=3 {
        controllers.push(Some(start(id, &peers, root.path()).await));
    }
    let addrs = peers.values().cloned().collect::<Vec<_>>().join(";");
    let client = ControllerClient::new(&addrs);

    let first = wait_for(
        "a leader to take a registration",
        Duration::from_secs(10),
        async || {
            client
                .register(&register_header("127.0.0.1:10911"))
                .await
                .ok()
        },
    )
    .await;
    assert_eq!(first.broker_id, Some(1));
    assert_eq!(first.master_broker_id, None);
    let second = client
        .register(&register_header("127.0.0.1:10912"))
        .await
        .unwrap();
    assert_eq!(second.broker_id, Some(2));

    // Only replica 1 heartbeats: a group never led takes whoever it heard from.
    let info = wait_for("the first election", Duration::from_secs(5), async || {
        let info = heartbeat(&client, 1, 0, 0).await;
        info.master_broker_id.is_some().then_some(info)
    })
    .await;
    assert_eq!(info.master_broker_id, Some(1));
    assert_eq!(info.master_epoch, 1);
    assert_eq!(
        info.master_ha_address.as_deref(),
        Some("127.0.0.1:10911-ha")
    );

    // Replica 2 follows epoch 1, and its master says it has all it acknowledged: it joins.
    let set_epoch = info.sync_state_set.sync_state_set_epoch;
    wait_for("replica 2 in sync", Duration::from_secs(5), async || {
        heartbeat(&client, 2, 1, 990).await;
        let info = claim(&client, 1, 1, 1000, Some(set_epoch)).await;
        info.sync_state_set
            .sync_state_set
            .contains(&2)
            .then_some(())
    })
    .await;

    // The master goes silent; within the timeout (2 s) and a scan, replica 2 is elected.
    let silent = Instant::now();
    let info = wait_for("replica 2 elected", Duration::from_secs(6), async || {
        let info = heartbeat(&client, 2, 1, 1000).await;
        (info.master_broker_id == Some(2)).then_some(info)
    })
    .await;
    assert_eq!(info.master_epoch, 2);
    assert!(
        silent.elapsed() >= Duration::from_secs(2),
        "elected before the timeout"
    );

    // The leading controller goes down: another takes over, and the state is the same.
    let leader = wait_for("a leader", Duration::from_secs(5), async || {
        controllers
            .iter()
            .flatten()
            .find(|c| c.controller.is_leader())
            .map(|c| c.controller.config.node_id)
    })
    .await;
    let index = (leader - 1) as usize;
    controllers[index].take().unwrap().shutdown().await;
    let info = wait_for("a new leader", Duration::from_secs(10), async || {
        // Replica 2 keeps heartbeating meanwhile: the new leader's grace keeps it master.
        client
            .heartbeat(&BrokerHeartbeatRequestHeader {
                cluster_name: "DefaultCluster".into(),
                broker_name: "broker-a".into(),
                broker_addr: "127.0.0.1:10912".into(),
                broker_id: 2,
                epoch: 2,
                max_offset: 1000,
                sync_state_set_epoch: None,
                slaves_in_sync: None,
            })
            .await
            .ok()
    })
    .await;
    assert_eq!((info.master_broker_id, info.master_epoch), (Some(2), 2));

    // The old leader comes back from its files and catches up with the rest.
    controllers[index] = Some(start(leader, &peers, root.path()).await);
    let back = controllers[index].as_ref().unwrap().controller.clone();
    wait_for(
        "the restarted controller's state",
        Duration::from_secs(10),
        async || {
            let group = back.state.state().groups.get("broker-a").cloned()?;
            (group.master == Some(2) && group.master_epoch == 2).then_some(())
        },
    )
    .await;
    for c in controllers.into_iter().flatten() {
        c.shutdown().await;
    }
    drop(Arc::clone(&back));
}
