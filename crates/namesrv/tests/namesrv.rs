//! A real name server on a loopback port, driven over remoting connections the way brokers and
//! clients drive it.

use std::sync::Arc;
use std::time::Duration;

use petrel_common::protocol::{ClusterInfo, RegisterBrokerBody, TopicList};
use petrel_common::topic::{DataVersion, TopicConfig};
use petrel_namesrv::register_body::body_crc32;
use petrel_namesrv::{NameServer, NamesrvConfig};
use petrel_remoting::code::{request, response};
use petrel_remoting::headers::{
    RegisterBrokerRequestHeader, RegisterBrokerResponseHeader, TopicRequestHeader,
    UnregisterBrokerRequestHeader,
};
use petrel_remoting::{CancellationToken, Connection, NoRequests, RemotingCommand};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(5);

struct Harness {
    server: NameServer,
    addr: String,
    shutdown: CancellationToken,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn start(broker_expired_ms: u64, scan_interval_ms: u64) -> Harness {
    let shutdown = CancellationToken::new();
    let server = NameServer::start(
        NamesrvConfig {
            listen_addr: "127.0.0.1:0".parse().unwrap(),
            broker_expired_ms,
            scan_interval_ms,
            ..NamesrvConfig::default()
        },
        shutdown.clone(),
    )
    .await
    .unwrap();
    let addr = server.local_addr().to_string();
    Harness {
        server,
        addr,
        shutdown,
    }
}

async fn connect(h: &Harness) -> Connection {
    Connection::connect(&h.addr, Arc::new(NoRequests), TIMEOUT)
        .await
        .unwrap()
}

fn register_request(name: &str, id: i64, addr: &str, topics: &[&str]) -> RemotingCommand {
    let mut body = RegisterBrokerBody::default();
    body.topic_config_serialize_wrapper.data_version = DataVersion {
        timestamp: 1_700_000_000_000,
        counter: topics.len() as i64,
        state_version: 0,
    };
    for t in topics {
        body.topic_config_serialize_wrapper
            .topic_config_table
            .insert(t.to_string(), TopicConfig::new(*t, 4, 6));
    }
    let body = serde_json::to_vec(&body).unwrap();
    let header = RegisterBrokerRequestHeader {
        broker_name: name.into(),
        broker_addr: addr.into(),
        cluster_name: "DefaultCluster".into(),
        ha_server_addr: format!("{addr}-ha"),
        broker_id: id,
        heartbeat_timeout_millis: None,
        compressed: Some(false),
        body_crc32: Some(body_crc32(&body)),
    };
    RemotingCommand::request_with_header(request::REGISTER_BROKER, &header).with_body(body)
}

fn topic_request(code: i32, topic: &str) -> RemotingCommand {
    RemotingCommand::request_with_header(
        code,
        &TopicRequestHeader {
            topic: topic.into(),
        },
    )
}

async fn call(conn: &Connection, req: RemotingCommand) -> RemotingCommand {
    conn.request(req, TIMEOUT).await.unwrap()
}

async fn route(conn: &Connection, topic: &str) -> RemotingCommand {
    call(conn, topic_request(request::GET_ROUTEINFO_BY_TOPIC, topic)).await
}

#[tokio::test]
async fn registered_topics_route_to_the_broker() {
    let h = start(120_000, 5_000).await;
    let broker = connect(&h).await;
    let resp = call(
        &broker,
        register_request("broker-a", 0, "10.0.0.1:10911", &["T1", "T2"]),
    )
    .await;
    assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);

    let client = connect(&h).await;
    let resp = route(&client, "T1").await;
    assert_eq!(resp.code, response::SUCCESS);
    let json: Value = serde_json::from_slice(&resp.body_bytes()).unwrap();
    assert_eq!(
        json["brokerDatas"][0]["brokerAddrs"],
        serde_json::json!({"0": "10.0.0.1:10911"})
    );
    assert_eq!(json["brokerDatas"][0]["brokerName"], "broker-a");
    assert_eq!(json["brokerDatas"][0]["cluster"], "DefaultCluster");
    assert_eq!(
        json["queueDatas"][0],
        serde_json::json!({"brokerName":"broker-a","readQueueNums":4,"writeQueueNums":4,"perm":6,"topicSysFlag":0})
    );
    assert_eq!(json["filterServerTable"], serde_json::json!({}));
    assert_eq!(route(&client, "T2").await.code, response::SUCCESS);
}

#[tokio::test]
async fn unknown_topic_is_topic_not_exist() {
    let h = start(120_000, 5_000).await;
    let client = connect(&h).await;
    let resp = route(&client, "Nope").await;
    assert_eq!(resp.code, response::TOPIC_NOT_EXIST);
    assert_eq!(
        resp.remark.as_deref(),
        Some("No topic route info in name server for the topic: Nope")
    );
}

#[tokio::test]
async fn cluster_info_and_topic_lists() {
    let h = start(120_000, 5_000).await;
    let conn = connect(&h).await;
    call(
        &conn,
        register_request("broker-a", 0, "10.0.0.1:10911", &["T1", "T2"]),
    )
    .await;
    let slave = call(
        &conn,
        register_request("broker-a", 1, "10.0.0.2:10911", &["T1"]),
    )
    .await;
    let header: RegisterBrokerResponseHeader = slave.decode_header().unwrap();
    assert_eq!(header.master_addr.as_deref(), Some("10.0.0.1:10911"));
    assert_eq!(header.ha_server_addr.as_deref(), Some("10.0.0.1:10911-ha"));

    let resp = call(
        &conn,
        RemotingCommand::request(request::GET_BROKER_CLUSTER_INFO),
    )
    .await;
    assert_eq!(resp.code, response::SUCCESS);
    let json: Value = serde_json::from_slice(&resp.body_bytes()).unwrap();
    assert_eq!(
        json["clusterAddrTable"],
        serde_json::json!({"DefaultCluster": ["broker-a"]})
    );
    assert_eq!(
        json["brokerAddrTable"]["broker-a"]["brokerAddrs"],
        serde_json::json!({"0": "10.0.0.1:10911", "1": "10.0.0.2:10911"})
    );
    let info: ClusterInfo = serde_json::from_value(json).unwrap();
    assert_eq!(info.broker_addr_table.len(), 1);

    let resp = call(
        &conn,
        RemotingCommand::request(request::GET_ALL_TOPIC_LIST_FROM_NAMESERVER),
    )
    .await;
    let json: Value = serde_json::from_slice(&resp.body_bytes()).unwrap();
    assert_eq!(json, serde_json::json!({"topicList": ["T1", "T2"]}));

    let mut by_cluster = RemotingCommand::request(request::GET_TOPICS_BY_CLUSTER);
    by_cluster.ext_fields.insert("cluster", "DefaultCluster");
    let list: TopicList =
        serde_json::from_slice(&call(&conn, by_cluster).await.body_bytes()).unwrap();
    assert_eq!(list.topic_list.len(), 2);

    let resp = call(&conn, topic_request(request::DELETE_TOPIC_IN_NAMESRV, "T2")).await;
    assert_eq!(resp.code, response::SUCCESS);
    assert_eq!(route(&conn, "T2").await.code, response::TOPIC_NOT_EXIST);
}

#[tokio::test]
async fn silent_broker_expires() {
    // Long scan period: the test drives the scan itself.
    let h = start(1, 3_600_000).await;
    let conn = connect(&h).await;
    call(
        &conn,
        register_request("broker-a", 0, "10.0.0.1:10911", &["T1"]),
    )
    .await;
    assert_eq!(route(&conn, "T1").await.code, response::SUCCESS);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let dropped = h
        .server
        .route_info()
        .scan_not_active(petrel_common::msg_id::now_ms());
    assert_eq!(dropped, vec!["10.0.0.1:10911".to_owned()]);
    assert_eq!(route(&conn, "T1").await.code, response::TOPIC_NOT_EXIST);
    let resp = call(
        &conn,
        RemotingCommand::request(request::GET_BROKER_CLUSTER_INFO),
    )
    .await;
    let info: ClusterInfo = serde_json::from_slice(&resp.body_bytes()).unwrap();
    assert!(info.broker_addr_table.is_empty());
}

#[tokio::test]
async fn the_scan_task_drops_silent_brokers_on_its_own() {
    let h = start(50, 10).await;
    let conn = connect(&h).await;
    call(
        &conn,
        register_request("broker-a", 0, "10.0.0.1:10911", &["T1"]),
    )
    .await;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while route(&conn, "T1").await.code == response::SUCCESS {
        assert!(
            tokio::time::Instant::now() < deadline,
            "broker never expired"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn closing_the_broker_connection_drops_the_broker() {
    let h = start(120_000, 5_000).await;
    let broker = connect(&h).await;
    call(
        &broker,
        register_request("broker-a", 0, "10.0.0.1:10911", &["T1"]),
    )
    .await;
    let client = connect(&h).await;
    assert_eq!(route(&client, "T1").await.code, response::SUCCESS);
    broker.close();
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while route(&client, "T1").await.code == response::SUCCESS {
        assert!(
            tokio::time::Instant::now() < deadline,
            "broker still routed"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(h.server.route_info().live_brokers().is_empty());
}

#[tokio::test]
async fn unregister_removes_the_broker() {
    let h = start(120_000, 5_000).await;
    let conn = connect(&h).await;
    call(
        &conn,
        register_request("broker-a", 0, "10.0.0.1:10911", &["T1"]),
    )
    .await;
    let header = UnregisterBrokerRequestHeader {
        broker_name: "broker-a".into(),
        broker_addr: "10.0.0.1:10911".into(),
        cluster_name: "DefaultCluster".into(),
        broker_id: 0,
    };
    let resp = call(
        &conn,
        RemotingCommand::request_with_header(request::UNREGISTER_BROKER, &header),
    )
    .await;
    assert_eq!(resp.code, response::SUCCESS);
    assert_eq!(route(&conn, "T1").await.code, response::TOPIC_NOT_EXIST);
}

#[tokio::test]
async fn crc_mismatch_is_rejected() {
    let h = start(120_000, 5_000).await;
    let conn = connect(&h).await;
    let mut req = register_request("broker-a", 0, "10.0.0.1:10911", &["T1"]);
    let good: i32 = req.ext_fields.get("bodyCrc32").unwrap().parse().unwrap();
    req.ext_fields
        .insert("bodyCrc32", (good ^ 0x10).to_string());
    let resp = call(&conn, req).await;
    assert_eq!(resp.code, response::SYSTEM_ERROR);
    assert_eq!(resp.remark.as_deref(), Some("crc32 not match"));
    assert_eq!(route(&conn, "T1").await.code, response::TOPIC_NOT_EXIST);
}

#[tokio::test]
async fn bad_headers_and_bodies_are_answered_not_fatal() {
    let h = start(120_000, 5_000).await;
    let conn = connect(&h).await;
    let mut req = register_request("broker-a", 0, "10.0.0.1:10911", &["T1"]);
    req.ext_fields.remove("brokerAddr");
    let resp = call(&conn, req).await;
    assert_eq!(resp.code, response::SYSTEM_ERROR);
    assert!(resp.remark.unwrap().contains("brokerAddr"));

    let mut req = register_request("broker-a", 0, "10.0.0.1:10911", &["T1"]);
    req.ext_fields.remove("bodyCrc32");
    req.body = b"{not json".to_vec().into();
    let resp = call(&conn, req).await;
    assert_eq!(resp.code, response::SYSTEM_ERROR);
    assert!(resp.remark.unwrap().contains("RegisterBrokerBody"));

    let resp = call(
        &conn,
        RemotingCommand::request(request::GET_ROUTEINFO_BY_TOPIC),
    )
    .await;
    assert_eq!(resp.code, response::SYSTEM_ERROR);
    assert!(resp.remark.unwrap().contains("topic"));

    let resp = call(&conn, RemotingCommand::request(request::SEND_MESSAGE)).await;
    assert_eq!(resp.code, response::REQUEST_CODE_NOT_SUPPORTED);
}

#[tokio::test]
async fn kv_config_round_trip() {
    let h = start(120_000, 5_000).await;
    let conn = connect(&h).await;
    let kv = |code: i32, fields: &[(&str, &str)]| {
        let mut req = RemotingCommand::request(code);
        for (k, v) in fields {
            req.ext_fields.insert(*k, *v);
        }
        req
    };
    let resp = call(
        &conn,
        kv(request::GET_KV_CONFIG, &[("namespace", "ns"), ("key", "k")]),
    )
    .await;
    assert_eq!(resp.code, response::QUERY_NOT_FOUND);
    let resp = call(
        &conn,
        kv(
            request::PUT_KV_CONFIG,
            &[("namespace", "ns"), ("key", "k"), ("value", "v")],
        ),
    )
    .await;
    assert_eq!(resp.code, response::SUCCESS);
    let resp = call(
        &conn,
        kv(request::GET_KV_CONFIG, &[("namespace", "ns"), ("key", "k")]),
    )
    .await;
    assert_eq!(resp.code, response::SUCCESS);
    assert_eq!(resp.ext_fields.get("value"), Some("v"));
    let resp = call(
        &conn,
        kv(request::GET_KVLIST_BY_NAMESPACE, &[("namespace", "ns")]),
    )
    .await;
    assert_eq!(&resp.body_bytes()[..], br#"{"table":{"k":"v"}}"#);
    let resp = call(
        &conn,
        kv(
            request::DELETE_KV_CONFIG,
            &[("namespace", "ns"), ("key", "k")],
        ),
    )
    .await;
    assert_eq!(resp.code, response::SUCCESS);
    let resp = call(
        &conn,
        kv(request::GET_KVLIST_BY_NAMESPACE, &[("namespace", "ns")]),
    )
    .await;
    assert_eq!(resp.code, response::QUERY_NOT_FOUND);
}
