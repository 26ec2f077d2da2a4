//! What the broker's wire tests share: a broker on a loopback port, a raw connection to it, and
//! the requests a client would send, built the way RocketMQ clients build them.

// Each test binary includes this module and uses part of it.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use petrel_broker::{Broker, BrokerConfig, BrokerHandle};
use petrel_common::properties::Properties;
use petrel_common::protocol::{ConsumerData, HeartbeatData, SubscriptionData};
use petrel_remoting::code::{request, response};
use petrel_remoting::headers::{
    pull_sys_flag, PullMessageRequestHeader, SendMessageRequestHeaderV2,
};
use petrel_remoting::{CancellationToken, Connection, NoRequests, RemotingCommand};
use petrel_store::StoreConfig;

/// Bound of one request; generous for a loaded CI machine.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A broker on a free loopback port with 1 MiB segments, after `configure` had its say.
pub async fn start_broker_with(
    dir: &Path,
    configure: impl FnOnce(&mut BrokerConfig),
) -> BrokerHandle {
    let mut store = StoreConfig::new(dir);
    store.commit_log_file_size = 1024 * 1024;
    let mut config = BrokerConfig::new(store);
    config.listen_addr = "127.0.0.1:0".parse().unwrap();
    config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    configure(&mut config);
    Broker::start(config, CancellationToken::new())
        .await
        .unwrap()
}

pub async fn start_broker(dir: &Path) -> BrokerHandle {
    start_broker_with(dir, |_| {}).await
}

pub async fn connect(b: &BrokerHandle) -> Connection {
    Connection::connect(&b.local_addr().to_string(), Arc::new(NoRequests), TIMEOUT)
        .await
        .unwrap()
}

/// SEND_MESSAGE_V2 of `body` to `topic`/`queue_id` with `props`, as a Java producer sends it.
pub fn send_request(
    topic: &str,
    queue_id: i32,
    body: &[u8],
    props: &Properties,
) -> RemotingCommand {
    let header = SendMessageRequestHeaderV2 {
        producer_group: "pg".into(),
        topic: topic.into(),
        default_topic: "TBW102".into(),
        default_topic_queue_nums: 4,
        queue_id,
        sys_flag: 0,
        born_timestamp: 1,
        flag: 0,
        properties: Some(props.as_str().to_owned()),
        ..Default::default()
    };
    RemotingCommand::request_with_header(request::SEND_MESSAGE_V2, &header).with_body(body.to_vec())
}

/// A consumer heartbeat that makes `group` known with a `*` subscription to `topic`.
pub async fn heartbeat(conn: &Connection, group: &str, topic: &str) {
    let hb = HeartbeatData {
        client_id: format!("127.0.0.1@{group}"),
        producer_data_set: vec![],
        consumer_data_set: vec![ConsumerData {
            group_name: group.into(),
            consume_type: "CONSUME_PASSIVELY".into(),
            message_model: "CLUSTERING".into(),
            consume_from_where: "CONSUME_FROM_FIRST_OFFSET".into(),
            subscription_data_set: vec![SubscriptionData::tags(topic, "*", 1)],
            unit_mode: false,
        }],
    };
    let cmd =
        RemotingCommand::request(request::HEART_BEAT).with_body(serde_json::to_vec(&hb).unwrap());
    let resp = conn.request(cmd, TIMEOUT).await.unwrap();
    assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
}

/// PULL_MESSAGE of up to 32 messages from `offset`; `suspend_ms` 0 answers at once, more may
/// park the pull that long.
pub fn pull_request(
    group: &str,
    topic: &str,
    queue_id: i32,
    offset: i64,
    suspend_ms: i64,
) -> RemotingCommand {
    let header = PullMessageRequestHeader {
        consumer_group: group.into(),
        topic: topic.into(),
        queue_id,
        queue_offset: offset,
        max_msg_nums: 32,
        sys_flag: if suspend_ms > 0 {
            pull_sys_flag::SUSPEND
        } else {
            0
        },
        commit_offset: 0,
        suspend_timeout_millis: suspend_ms,
        subscription: None,
        sub_version: 0,
        expression_type: None,
        max_msg_bytes: None,
    };
    RemotingCommand::request_with_header(request::PULL_MESSAGE, &header)
}
