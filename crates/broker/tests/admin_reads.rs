//! Admin reads over a real socket that `mqadmin` tools (here: rocketmq-client-rust's
//! `DefaultMQAdminExt`) send after a write, to show the operator what the broker now holds, and
//! the admin questions the broker relays to one consumer.

mod common;

use std::sync::{Arc, Mutex};

use petrel_common::protocol::{ConsumerData, HeartbeatData, ProducerData, SubscriptionData};
use petrel_common::record;
use petrel_remoting::code::{request, response};
use petrel_remoting::headers::{
    CloneGroupOffsetRequestHeader, CreateTopicRequestHeader,
    GetProducerConnectionListRequestHeader, GetSubscriptionGroupConfigRequestHeader,
    GroupTopicRequestHeader, QueryConsumerOffsetRequestHeader, SendMessageRequestHeaderV2,
    SendMessageResponseHeader, TopicRequestHeader, UpdateConsumerOffsetRequestHeader,
};
use petrel_remoting::{Connection, RemotingCommand, RequestHandler};

use common::{connect, start_broker, TIMEOUT};

async fn ok(conn: &Connection, req: RemotingCommand) -> serde_json::Value {
    let resp = conn.request(req, TIMEOUT).await.unwrap();
    assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
    serde_json::from_slice(&resp.body_bytes()).unwrap_or(serde_json::Value::Null)
}

fn get_group(group: &str) -> RemotingCommand {
    RemotingCommand::request_with_header(
        request::GET_SUBSCRIPTIONGROUP_CONFIG,
        &GetSubscriptionGroupConfigRequestHeader {
            group: group.into(),
        },
    )
}

#[tokio::test]
async fn get_subscription_group_config_reads_back_what_update_sub_group_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path()).await;
    let conn = connect(&broker).await;

    let update = RemotingCommand::request(request::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP).with_body(
        br#"{"groupName":"billing","retryMaxTimes":5,"retryQueueNums":2,"consumeBroadcastEnable":false}"#
            .to_vec(),
    );
    let resp = conn.request(update, TIMEOUT).await.unwrap();
    assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);

    let resp = conn.request(get_group("billing"), TIMEOUT).await.unwrap();
    assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
    let body: serde_json::Value = serde_json::from_slice(&resp.body_bytes()).unwrap();
    assert_eq!(body["groupName"], "billing");
    assert_eq!(body["retryMaxTimes"], 5);
    assert_eq!(body["retryQueueNums"], 2);
    assert_eq!(body["consumeBroadcastEnable"], false);
    assert_eq!(
        body["consumeEnable"], true,
        "defaults fill what was not sent"
    );

    let resp = conn.request(get_group("nobody"), TIMEOUT).await.unwrap();
    assert_eq!(resp.code, response::SUBSCRIPTION_GROUP_NOT_EXIST);
    assert!(
        resp.remark.as_deref().unwrap_or("").contains("nobody"),
        "{:?}",
        resp.remark
    );

    let resp = conn
        .request(
            RemotingCommand::request(request::GET_SUBSCRIPTIONGROUP_CONFIG),
            TIMEOUT,
        )
        .await
        .unwrap();
    assert_eq!(resp.code, response::INVALID_PARAMETER, "no group field");
    broker.shutdown().await;
}

#[tokio::test]
async fn all_subscription_groups_come_in_java_s_wrapper_with_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path()).await;
    let conn = connect(&broker).await;
    let update = RemotingCommand::request(request::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP)
        .with_body(br#"{"groupName":"billing"}"#.to_vec());
    ok(&conn, update).await;

    let body = ok(
        &conn,
        RemotingCommand::request(request::GET_ALL_SUBSCRIPTIONGROUP_CONFIG),
    )
    .await;
    assert_eq!(
        body["subscriptionGroupTable"]["billing"]["groupName"],
        "billing"
    );
    assert_eq!(body["forbiddenTable"], serde_json::json!({}));
    for field in ["counter", "timestamp", "stateVersion"] {
        assert!(body["dataVersion"][field].is_i64(), "{field}: {body}");
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn producer_connections_and_the_groups_consuming_a_topic() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path()).await;
    let admin = connect(&broker).await;
    let client = connect(&broker).await;
    let heartbeat = HeartbeatData {
        client_id: "127.0.0.1@admin-reads".into(),
        producer_data_set: vec![ProducerData {
            group_name: "orders_pg".into(),
        }],
        consumer_data_set: vec![ConsumerData {
            group_name: "live_cg".into(),
            consume_type: "CONSUME_PASSIVELY".into(),
            message_model: "CLUSTERING".into(),
            consume_from_where: "CONSUME_FROM_FIRST_OFFSET".into(),
            subscription_data_set: vec![SubscriptionData::tags("Orders", "*", 1)],
            unit_mode: false,
        }],
    };
    ok(
        &client,
        RemotingCommand::request(request::HEART_BEAT)
            .with_body(serde_json::to_vec(&heartbeat).unwrap()),
    )
    .await;
    // A group that is offline but has consumed Orders before.
    let commit = RemotingCommand::request_with_header(
        request::UPDATE_CONSUMER_OFFSET,
        &UpdateConsumerOffsetRequestHeader {
            consumer_group: "offline_cg".into(),
            topic: "Orders".into(),
            queue_id: 0,
            commit_offset: 3,
        },
    );
    let resp = admin.request(commit, TIMEOUT).await.unwrap();
    assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);

    let producers = |group: &str| {
        RemotingCommand::request_with_header(
            request::GET_PRODUCER_CONNECTION_LIST,
            &GetProducerConnectionListRequestHeader {
                producer_group: group.into(),
            },
        )
    };
    let body = ok(&admin, producers("orders_pg")).await;
    assert_eq!(
        body["connectionSet"],
        serde_json::json!([{
            "clientAddr": client.local_addr().to_string(),
            "clientId": "127.0.0.1@admin-reads",
            "language": "JAVA",
            "version": petrel_remoting::command::VERSION,
        }])
    );
    let resp = admin
        .request(producers("nobody_pg"), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(resp.code, response::SYSTEM_ERROR);
    assert_eq!(
        resp.remark.as_deref(),
        Some("the producer group[nobody_pg] not exist")
    );

    let who = |topic: &str| {
        RemotingCommand::request_with_header(
            request::QUERY_TOPIC_CONSUME_BY_WHO,
            &TopicRequestHeader {
                topic: topic.into(),
            },
        )
    };
    let body = ok(&admin, who("Orders")).await;
    assert_eq!(
        body["groupList"],
        serde_json::json!(["live_cg", "offline_cg"])
    );
    let body = ok(&admin, who("Nothing")).await;
    assert_eq!(body["groupList"], serde_json::json!([]));
    broker.shutdown().await;
}

/// A consumer that answers every broker request with `running-info` and keeps what it got.
struct AnsweringConsumer {
    received: Arc<Mutex<Vec<RemotingCommand>>>,
}

impl RequestHandler for AnsweringConsumer {
    async fn handle(&self, _conn: &Connection, req: RemotingCommand) -> Option<RemotingCommand> {
        let resp = RemotingCommand::success(&req).with_body(b"running-info".to_vec());
        self.received.lock().unwrap().push(req);
        Some(resp)
    }
}

#[tokio::test]
async fn consumer_running_info_and_consume_directly_are_relayed_to_the_named_consumer() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path()).await;
    let admin = connect(&broker).await;
    let received = Arc::new(Mutex::new(Vec::new()));
    let consumer = AnsweringConsumer {
        received: Arc::clone(&received),
    };
    let client = Connection::connect(
        &broker.local_addr().to_string(),
        Arc::new(consumer),
        TIMEOUT,
    )
    .await
    .unwrap();
    let heartbeat = HeartbeatData {
        client_id: "127.0.0.1@relay".into(),
        producer_data_set: vec![],
        consumer_data_set: vec![ConsumerData {
            group_name: "live_cg".into(),
            consume_type: "CONSUME_PASSIVELY".into(),
            message_model: "CLUSTERING".into(),
            consume_from_where: "CONSUME_FROM_FIRST_OFFSET".into(),
            subscription_data_set: vec![SubscriptionData::tags("Orders", "*", 1)],
            unit_mode: false,
        }],
    };
    ok(
        &client,
        RemotingCommand::request(request::HEART_BEAT)
            .with_body(serde_json::to_vec(&heartbeat).unwrap()),
    )
    .await;

    let mut running = RemotingCommand::request(request::GET_CONSUMER_RUNNING_INFO);
    running.ext_fields.insert("consumerGroup", "live_cg");
    running.ext_fields.insert("clientId", "127.0.0.1@relay");
    running.ext_fields.insert("jstackEnable", "false");
    let resp = admin.request(running, TIMEOUT).await.unwrap();
    assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
    assert_eq!(&resp.body_bytes()[..], b"running-info");

    let send = RemotingCommand::request_with_header(
        request::SEND_MESSAGE_V2,
        &SendMessageRequestHeaderV2 {
            producer_group: "pg".into(),
            topic: "Orders".into(),
            default_topic: "TBW102".into(),
            default_topic_queue_nums: 4,
            born_timestamp: 1,
            properties: Some(String::new()),
            ..Default::default()
        },
    )
    .with_body(b"resend me".to_vec());
    let resp = admin.request(send, TIMEOUT).await.unwrap();
    assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
    let msg_id = resp
        .decode_header::<SendMessageResponseHeader>()
        .unwrap()
        .msg_id;
    let mut directly = RemotingCommand::request(request::CONSUME_MESSAGE_DIRECTLY);
    directly.ext_fields.insert("consumerGroup", "live_cg");
    directly.ext_fields.insert("clientId", "127.0.0.1@relay");
    directly.ext_fields.insert("msgId", msg_id.as_str());
    let resp = admin.request(directly, TIMEOUT).await.unwrap();
    assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);

    {
        let received = received.lock().unwrap();
        assert_eq!(received.len(), 2);
        assert_eq!(received[0].code, request::GET_CONSUMER_RUNNING_INFO);
        assert_eq!(received[0].ext_fields.get("jstackEnable"), Some("false"));
        assert_eq!(received[1].code, request::CONSUME_MESSAGE_DIRECTLY);
        assert_eq!(received[1].ext_fields.get("brokerName"), Some("broker-a"));
        let body = received[1].body_bytes();
        let rec = record::decode(&body, true).unwrap();
        assert_eq!((rec.topic, rec.body), ("Orders", &b"resend me"[..]));
    }

    let mut stranger = RemotingCommand::request(request::GET_CONSUMER_RUNNING_INFO);
    stranger.ext_fields.insert("consumerGroup", "live_cg");
    stranger.ext_fields.insert("clientId", "127.0.0.1@gone");
    let resp = admin.request(stranger, TIMEOUT).await.unwrap();
    assert_eq!(resp.code, response::SYSTEM_ERROR);
    assert_eq!(
        resp.remark.as_deref(),
        Some("The Consumer <live_cg> <127.0.0.1@gone> not online")
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn topic_config_and_a_group_s_topics_and_subscription() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path()).await;
    let admin = connect(&broker).await;
    let create = RemotingCommand::request_with_header(
        request::UPDATE_AND_CREATE_TOPIC,
        &CreateTopicRequestHeader {
            topic: "Orders".into(),
            read_queue_nums: 3,
            write_queue_nums: 3,
            perm: 6,
            ..Default::default()
        },
    );
    ok(&admin, create).await;
    let topic_config = |topic: &str| {
        RemotingCommand::request_with_header(
            request::GET_TOPIC_CONFIG,
            &TopicRequestHeader {
                topic: topic.into(),
            },
        )
    };
    let body = ok(&admin, topic_config("Orders")).await;
    assert_eq!(body["topicName"], "Orders");
    assert_eq!(body["readQueueNums"], 3);
    assert_eq!(body["writeQueueNums"], 3);
    assert_eq!(body["perm"], 6);
    let resp = admin.request(topic_config("Nope"), TIMEOUT).await.unwrap();
    assert_eq!(resp.code, response::TOPIC_NOT_EXIST);
    assert_eq!(
        resp.remark.as_deref(),
        Some("No topic in this broker. topic: Nope")
    );

    let client = connect(&broker).await;
    let heartbeat = HeartbeatData {
        client_id: "127.0.0.1@subs".into(),
        producer_data_set: vec![],
        consumer_data_set: vec![ConsumerData {
            group_name: "billing".into(),
            consume_type: "CONSUME_PASSIVELY".into(),
            message_model: "CLUSTERING".into(),
            consume_from_where: "CONSUME_FROM_FIRST_OFFSET".into(),
            subscription_data_set: vec![SubscriptionData::tags("Orders", "TagA || TagB", 7)],
            unit_mode: false,
        }],
    };
    ok(
        &client,
        RemotingCommand::request(request::HEART_BEAT)
            .with_body(serde_json::to_vec(&heartbeat).unwrap()),
    )
    .await;
    for topic in ["Orders", "Audit"] {
        let commit = RemotingCommand::request_with_header(
            request::UPDATE_CONSUMER_OFFSET,
            &UpdateConsumerOffsetRequestHeader {
                consumer_group: "billing".into(),
                topic: topic.into(),
                queue_id: 0,
                commit_offset: 1,
            },
        );
        let resp = admin.request(commit, TIMEOUT).await.unwrap();
        assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
    }

    let by_group = |code: i32, topic: Option<&str>| {
        RemotingCommand::request_with_header(
            code,
            &GroupTopicRequestHeader {
                group: "billing".into(),
                topic: topic.map(str::to_owned),
            },
        )
    };
    let body = ok(&admin, by_group(request::QUERY_TOPICS_BY_CONSUMER, None)).await;
    assert_eq!(body["topicList"], serde_json::json!(["Audit", "Orders"]));
    assert_eq!(body["brokerAddr"], broker.local_addr().to_string());

    let body = ok(
        &admin,
        by_group(request::QUERY_SUBSCRIPTION_BY_CONSUMER, Some("Orders")),
    )
    .await;
    assert_eq!(body["group"], "billing");
    assert_eq!(body["topic"], "Orders");
    assert_eq!(body["subscriptionData"]["subString"], "TagA || TagB");
    assert_eq!(
        body["subscriptionData"]["tagsSet"],
        serde_json::json!(["TagA", "TagB"])
    );
    let body = ok(
        &admin,
        by_group(request::QUERY_SUBSCRIPTION_BY_CONSUMER, Some("Audit")),
    )
    .await;
    assert_eq!(body["subscriptionData"], serde_json::Value::Null);
    broker.shutdown().await;
}

#[tokio::test]
async fn clone_group_offset_copies_every_topic_the_source_consumed() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start_broker(dir.path()).await;
    let admin = connect(&broker).await;
    for topic in ["Orders", "Audit"] {
        let create = RemotingCommand::request_with_header(
            request::UPDATE_AND_CREATE_TOPIC,
            &CreateTopicRequestHeader {
                topic: topic.into(),
                read_queue_nums: 2,
                write_queue_nums: 2,
                perm: 6,
                ..Default::default()
            },
        );
        ok(&admin, create).await;
    }
    // "Gone" has offsets but no topic on this broker: skipped.
    for (topic, queue_id, offset) in [
        ("Orders", 0, 5),
        ("Orders", 1, 2),
        ("Audit", 1, 7),
        ("Gone", 0, 3),
    ] {
        let commit = RemotingCommand::request_with_header(
            request::UPDATE_CONSUMER_OFFSET,
            &UpdateConsumerOffsetRequestHeader {
                consumer_group: "src_cg".into(),
                topic: topic.into(),
                queue_id,
                commit_offset: offset,
            },
        );
        let resp = admin.request(commit, TIMEOUT).await.unwrap();
        assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
    }

    let clone = RemotingCommand::request_with_header(
        request::CLONE_GROUP_OFFSET,
        &CloneGroupOffsetRequestHeader {
            src_group: "src_cg".into(),
            dest_group: "dest_cg".into(),
            topic: None,
            offline: Some(true),
        },
    );
    ok(&admin, clone).await;

    let query = |topic: &str, queue_id: i32| {
        RemotingCommand::request_with_header(
            request::QUERY_CONSUMER_OFFSET,
            &QueryConsumerOffsetRequestHeader {
                consumer_group: "dest_cg".into(),
                topic: topic.into(),
                queue_id,
                set_zero_if_not_found: Some(false),
            },
        )
    };
    for (topic, queue_id, offset) in [("Orders", 0, 5), ("Orders", 1, 2), ("Audit", 1, 7)] {
        let resp = admin
            .request(query(topic, queue_id), TIMEOUT)
            .await
            .unwrap();
        assert_eq!(
            resp.code,
            response::SUCCESS,
            "{topic}/{queue_id}: {:?}",
            resp.remark
        );
        assert_eq!(
            resp.ext_fields.get("offset"),
            Some(offset.to_string().as_str())
        );
    }
    let resp = admin.request(query("Gone", 0), TIMEOUT).await.unwrap();
    assert_eq!(
        resp.code,
        response::QUERY_NOT_FOUND,
        "a topic the broker lacks is skipped"
    );
    broker.shutdown().await;
}
