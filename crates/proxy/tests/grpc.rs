//! The gRPC endpoint against a real `petrel standalone` (name server, broker and endpoint on
//! loopback), driven by the tonic client generated from our own .proto files: routes, the
//! telemetry settings handshake, sends read back by a remoting consumer (and remoting sends
//! received over gRPC), transactions committed and recovered through telemetry, the error
//! codes of bad requests, and TLS and h2c on one port.

use std::path::Path;
use std::time::{Duration, Instant};

use petrel::standalone::{Standalone, StandaloneConfig};
use petrel_client::admin::Admin;
use petrel_client::{ClientConfig, MessageExt, Producer, PullConsumer, PullStatus};
use petrel_common::topic::{perm, TopicConfig};
use petrel_proxy::pb::messaging_service_client::MessagingServiceClient;
use petrel_proxy::pb::receive_message_response::Content;
use petrel_proxy::pb::telemetry_command::Command;
use petrel_proxy::pb::*;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

const WAIT: Duration = Duration::from_secs(10);
/// The broker's maxMessageSize in these tests, bytes.
const MAX_BODY: usize = 64 * 1024;
const CLIENT_ID: &str = "test-host@1@0@grpc";

type Client = MessagingServiceClient<Channel>;

async fn standalone(dir: &Path) -> Standalone {
    let conf = dir.join("broker.toml");
    std::fs::write(
        &conf,
        format!("autoCreateTopicEnable = false\nmaxMessageSize = {MAX_BODY}\n"),
    )
    .unwrap();
    let mut config = StandaloneConfig::ephemeral(dir.join("data"));
    config.broker_config_file = Some(conf);
    Standalone::start(config).await.unwrap()
}

async fn create_topic(s: &Standalone, topic: &str, queues: i32) {
    Admin::new(ClientConfig::new(s.namesrv_addr().to_string()))
        .create_topic(&s.broker_addr().to_string(), topic, queues)
        .await
        .unwrap();
}

async fn h2c(s: &Standalone) -> Client {
    let addr = s.grpc_addr().expect("the gRPC endpoint is on");
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(WAIT)
        .connect()
        .await
        .unwrap();
    MessagingServiceClient::new(channel)
}

/// A request as a 5.x client sends it: its id and the other headers every call carries.
fn call<T>(msg: T) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    let m = req.metadata_mut();
    m.insert("x-mq-client-id", CLIENT_ID.parse().unwrap());
    m.insert("x-mq-language", "JAVA".parse().unwrap());
    m.insert("x-mq-protocol", "v2".parse().unwrap());
    m.insert("x-mq-client-version", "5.0.7".parse().unwrap());
    m.insert(
        "x-mq-request-id",
        "00000000-0000-0000-0000-000000000000".parse().unwrap(),
    );
    m.insert(
        "authorization",
        "MQv2-HMAC-SHA1 Credential=, SignedHeaders=x-mq-date-time, Signature=00"
            .parse()
            .unwrap(),
    );
    req
}

fn resource(name: &str) -> Resource {
    Resource {
        resource_namespace: String::new(),
        name: name.into(),
    }
}

fn endpoints(s: &Standalone) -> Endpoints {
    let addr = s.grpc_addr().unwrap();
    Endpoints {
        scheme: AddressScheme::IPv4 as i32,
        addresses: vec![Address {
            host: addr.ip().to_string(),
            port: i32::from(addr.port()),
        }],
    }
}

fn code(status: &Option<Status>) -> Code {
    Code::try_from(status.as_ref().expect("a status").code).unwrap()
}

fn message(topic: &str, id: &str, body: &[u8]) -> Message {
    Message {
        topic: Some(resource(topic)),
        user_properties: [("color".to_owned(), "red".to_owned())].into(),
        system_properties: Some(SystemProperties {
            tag: Some("TagA".into()),
            keys: vec!["k1".into(), "k2".into()],
            message_id: id.into(),
            message_type: MessageType::Normal as i32,
            born_host: "10.1.2.3".into(),
            ..Default::default()
        }),
        body: body.to_vec(),
    }
}

async fn send(client: &mut Client, m: Message) -> SendMessageResponse {
    client
        .send_message(call(SendMessageRequest { messages: vec![m] }))
        .await
        .unwrap()
        .into_inner()
}

/// Every message of `topic` a remoting pull consumer finds, from offset 0 of each queue.
async fn pull_all(s: &Standalone, topic: &str) -> Vec<MessageExt> {
    let consumer = PullConsumer::new(
        "remoting-reader",
        ClientConfig::new(s.namesrv_addr().to_string()),
    );
    consumer.start().await.unwrap();
    let mut found = Vec::new();
    for queue in consumer.fetch_queues(topic).await.unwrap() {
        let r = consumer.pull(&queue, 0, 32).await.unwrap();
        if let PullStatus::Found(msgs) = r.status {
            found.extend(msgs);
        }
    }
    consumer.shutdown().await;
    found
}

/// Opens a telemetry stream with `settings`; returns its sender and the server's answers.
async fn telemetry(
    client: &mut Client,
    settings: Settings,
) -> (
    mpsc::Sender<TelemetryCommand>,
    tonic::Streaming<TelemetryCommand>,
) {
    let (tx, rx) = mpsc::channel(8);
    tx.send(TelemetryCommand {
        status: None,
        command: Some(Command::Settings(settings)),
    })
    .await
    .unwrap();
    let answers = client
        .telemetry(call(ReceiverStream::new(rx)))
        .await
        .unwrap()
        .into_inner();
    (tx, answers)
}

async fn next_command(answers: &mut tonic::Streaming<TelemetryCommand>) -> TelemetryCommand {
    tokio::time::timeout(WAIT, answers.message())
        .await
        .expect("a telemetry command in time")
        .unwrap()
        .expect("the stream is open")
}

fn producer_settings(s: &Standalone, topics: &[&str]) -> Settings {
    Settings {
        client_type: Some(ClientType::Producer as i32),
        access_point: Some(endpoints(s)),
        request_timeout: Some(prost_types::Duration {
            seconds: 3,
            nanos: 0,
        }),
        pub_sub: Some(settings::PubSub::Publishing(Publishing {
            topics: topics.iter().map(|t| resource(t)).collect(),
            max_body_size: 0,
            validate_message_type: false,
        })),
        user_agent: Some(Ua {
            language: Language::Java as i32,
            version: "5.0.7".into(),
            platform: "linux".into(),
            hostname: "test-host".into(),
        }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_settings_and_sends_over_h2c() {
    let dir = tempfile::tempdir().unwrap();
    let s = standalone(dir.path()).await;
    create_topic(&s, "GrpcTopic", 4).await;
    let mut client = h2c(&s).await;

    // QueryRoute: every queue of the topic, reached through the endpoints the client used.
    let route = client
        .query_route(call(QueryRouteRequest {
            topic: Some(resource("GrpcTopic")),
            endpoints: Some(endpoints(&s)),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&route.status), Code::Ok);
    assert_eq!(route.message_queues.len(), 4);
    for (i, q) in route.message_queues.iter().enumerate() {
        assert_eq!(q.id, i as i32);
        assert_eq!(q.permission, Permission::ReadWrite as i32);
        let broker = q.broker.as_ref().unwrap();
        assert_eq!(broker.name, "broker-a");
        assert_eq!(broker.endpoints.as_ref(), Some(&endpoints(&s)));
        assert_eq!(
            q.accept_message_types.len(),
            4,
            "untyped topics take every type"
        );
    }
    let unknown = client
        .query_route(call(QueryRouteRequest {
            topic: Some(resource("NoSuchTopic")),
            endpoints: Some(endpoints(&s)),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&unknown.status), Code::TopicNotFound);
    let anonymous = client
        .query_route(tonic::Request::new(QueryRouteRequest {
            topic: Some(resource("GrpcTopic")),
            endpoints: Some(endpoints(&s)),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&anonymous.status), Code::ClientIdRequired);

    // Telemetry: the settings come back with the server's values.
    let (_keep_open, mut answers) =
        telemetry(&mut client, producer_settings(&s, &["GrpcTopic"])).await;
    let answer = next_command(&mut answers).await;
    assert_eq!(code(&answer.status), Code::Ok);
    let Some(Command::Settings(merged)) = answer.command else {
        panic!("no settings in {answer:?}");
    };
    let Some(settings::PubSub::Publishing(p)) = merged.pub_sub else {
        panic!("no publishing in {merged:?}");
    };
    assert_eq!(p.max_body_size as usize, MAX_BODY);
    assert!(p.validate_message_type);
    let backoff = merged.backoff_policy.unwrap();
    assert_eq!(backoff.max_attempts, 3);
    assert!(matches!(
        backoff.strategy,
        Some(retry_policy::Strategy::ExponentialBackoff(_))
    ));
    assert_eq!(merged.user_agent.unwrap().hostname, "test-host");
    let producers = s.broker().broker.producers.channels("GrpcTopic");
    assert_eq!(producers.len(), 1, "registered under its topic");
    assert_eq!(producers[0].client_id, CLIENT_ID);
    let heartbeat = client
        .heartbeat(call(HeartbeatRequest {
            group: None,
            client_type: ClientType::Producer as i32,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&heartbeat.status), Code::Ok);

    // SendMessage, read back by a remoting consumer.
    let sent = send(
        &mut client,
        message("GrpcTopic", "01GRPC0000000001", b"over h2c"),
    )
    .await;
    assert_eq!(code(&sent.status), Code::Ok, "{sent:?}");
    assert_eq!(sent.entries[0].message_id, "01GRPC0000000001");
    let stored = pull_all(&s, "GrpcTopic").await;
    assert_eq!(stored.len(), 1);
    let m = &stored[0];
    assert_eq!(&m.body[..], b"over h2c");
    assert_eq!(m.property("UNIQ_KEY"), Some("01GRPC0000000001"));
    assert_eq!(m.tags(), Some("TagA"));
    assert_eq!(m.keys(), Some("k1 k2"));
    assert_eq!(m.property("color"), Some("red"));
    assert_eq!(m.queue_offset, sent.entries[0].offset);

    // A message group stays in one queue.
    for i in 0..3 {
        let mut m = message("GrpcTopic", &format!("01FIFO000000000{i}"), b"fifo");
        let sys = m.system_properties.as_mut().unwrap();
        sys.message_type = MessageType::Fifo as i32;
        sys.message_group = Some("order-42".into());
        assert_eq!(code(&send(&mut client, m).await.status), Code::Ok);
    }
    let fifo: Vec<MessageExt> = pull_all(&s, "GrpcTopic")
        .await
        .into_iter()
        .filter(|m| m.property("__SHARDINGKEY") == Some("order-42"))
        .collect();
    assert_eq!(fifo.len(), 3);
    assert!(fifo.iter().all(|m| m.queue_id == fifo[0].queue_id));
    let offsets: Vec<i64> = fifo.iter().map(|m| m.queue_offset).collect();
    assert!(
        offsets.windows(2).all(|w| w[0] < w[1]),
        "in order: {offsets:?}"
    );

    // A typed topic takes its type only.
    let mut typed = TopicConfig::new("FifoTopic", 2, perm::READ | perm::WRITE);
    typed
        .attributes
        .insert("message.type".into(), "FIFO".into());
    s.broker().broker.topics.upsert(typed).unwrap();
    let route = client
        .query_route(call(QueryRouteRequest {
            topic: Some(resource("FifoTopic")),
            endpoints: Some(endpoints(&s)),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        route.message_queues[0].accept_message_types,
        vec![MessageType::Fifo as i32]
    );
    let untyped = send(&mut client, message("FifoTopic", "01NORMAL", b"x")).await;
    assert_eq!(code(&untyped.status), Code::MessagePropertyConflictWithType);

    // Bad sends get the codes the clients map to their exceptions.
    let unknown = send(&mut client, message("NoSuchTopic", "01X", b"x")).await;
    assert_eq!(code(&unknown.status), Code::TopicNotFound);
    let large = send(
        &mut client,
        message("GrpcTopic", "01LARGE", &vec![b'x'; MAX_BODY + 1]),
    )
    .await;
    assert_eq!(code(&large.status), Code::MessageBodyTooLarge);
    let illegal = send(&mut client, message("bad topic!", "01ILLEGAL", b"x")).await;
    assert_eq!(code(&illegal.status), Code::IllegalTopic);
    let mut reserved = message("GrpcTopic", "01RESERVED", b"x");
    reserved
        .user_properties
        .insert("UNIQ_KEY".into(), "mine".into());
    assert_eq!(
        code(&send(&mut client, reserved).await.status),
        Code::IllegalMessagePropertyKey
    );
    let no_id = send(&mut client, message("GrpcTopic", "", b"x")).await;
    assert_eq!(code(&no_id.status), Code::IllegalMessageId);
    let empty = client
        .send_message(call(SendMessageRequest { messages: vec![] }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&empty.status), Code::MessageCorrupted);

    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_receives_and_acks_what_either_protocol_sent() {
    let dir = tempfile::tempdir().unwrap();
    let s = standalone(dir.path()).await;
    create_topic(&s, "PopTopic", 2).await;
    let mut client = h2c(&s).await;

    // A simple consumer's settings: registered in its group, FIFO off, the group's retries.
    let consumer_settings = Settings {
        client_type: Some(ClientType::SimpleConsumer as i32),
        access_point: Some(endpoints(&s)),
        pub_sub: Some(settings::PubSub::Subscription(Subscription {
            group: Some(resource("GrpcGroup")),
            subscriptions: vec![SubscriptionEntry {
                topic: Some(resource("PopTopic")),
                expression: Some(FilterExpression {
                    r#type: FilterType::Tag as i32,
                    expression: "*".into(),
                }),
            }],
            ..Default::default()
        })),
        ..Default::default()
    };
    let (_keep_open, mut answers) = telemetry(&mut client, consumer_settings).await;
    let answer = next_command(&mut answers).await;
    let Some(Command::Settings(merged)) = answer.command else {
        panic!("no settings in {answer:?}");
    };
    let Some(settings::PubSub::Subscription(sub)) = merged.pub_sub else {
        panic!("no subscription in {merged:?}");
    };
    assert_eq!(sub.fifo, Some(false));
    assert_eq!(sub.receive_batch_size, Some(32));
    let backoff = merged.backoff_policy.unwrap();
    assert_eq!(backoff.max_attempts, 17);
    let Some(retry_policy::Strategy::CustomizedBackoff(steps)) = backoff.strategy else {
        panic!("no customized backoff");
    };
    assert_eq!(steps.next.len(), 18);
    assert_eq!(steps.next[0].seconds, 1);
    assert_eq!(
        s.broker().broker.consumers.client_ids("GrpcGroup"),
        vec![CLIENT_ID.to_owned()],
        "what consumerConnection lists"
    );

    // One message sent over gRPC, one over remoting.
    let sent = send(
        &mut client,
        message("PopTopic", "01POP0000000001", b"from grpc"),
    )
    .await;
    assert_eq!(code(&sent.status), Code::Ok);
    let producer = Producer::new(
        "remoting-pg",
        ClientConfig::new(s.namesrv_addr().to_string()),
    );
    producer.start().await.unwrap();
    let remoting = producer
        .send(
            petrel_client::message::Message::new("PopTopic", &b"from remoting"[..])
                .with_tags("TagB")
                .with_property("size", "L"),
        )
        .await
        .unwrap();
    producer.shutdown().await;

    let mut received = Vec::new();
    let started = Instant::now();
    while received.len() < 2 && started.elapsed() < WAIT * 2 {
        let responses = receive(&mut client, 30).await;
        assert!(matches!(
            responses.first(),
            Some(Content::Status(s)) if s.code == Code::Ok as i32 || s.code == Code::MessageNotFound as i32
        ));
        assert!(
            matches!(responses.last(), Some(Content::DeliveryTimestamp(_))),
            "the stream ends with the delivery timestamp"
        );
        received.extend(responses.into_iter().filter_map(|c| match c {
            Content::Message(m) => Some(m),
            _ => None,
        }));
    }
    assert_eq!(received.len(), 2, "both messages received");
    received.sort_by_key(|m| m.body.clone());
    let (grpc, rem) = (&received[0], &received[1]);
    assert_eq!(grpc.body, b"from grpc");
    assert_eq!(rem.body, b"from remoting");
    let gs = grpc.system_properties.as_ref().unwrap();
    assert_eq!(gs.message_id, "01POP0000000001");
    assert_eq!(gs.tag.as_deref(), Some("TagA"));
    assert_eq!(gs.keys, vec!["k1", "k2"]);
    assert_eq!(gs.born_host, "10.1.2.3");
    assert_eq!(gs.delivery_attempt, Some(1));
    assert_eq!(gs.message_type, MessageType::Normal as i32);
    let digest = gs.body_digest.as_ref().unwrap();
    assert_eq!(digest.r#type, DigestType::Md5 as i32);
    assert_eq!(digest.checksum, md5_upper(b"from grpc"));
    assert_eq!(
        grpc.user_properties.get("color").map(String::as_str),
        Some("red")
    );
    let rs = rem.system_properties.as_ref().unwrap();
    assert_eq!(rs.message_id, remoting.msg_id);
    assert_eq!(rs.tag.as_deref(), Some("TagB"));
    assert_eq!(
        rem.user_properties.get("size").map(String::as_str),
        Some("L")
    );
    assert!(rs.store_timestamp.is_some() && rs.born_timestamp.is_some());
    assert_eq!(rs.store_host, s.broker_addr().to_string());

    // Ack both; a handle that is not one is refused.
    let ack = client
        .ack_message(call(AckMessageRequest {
            group: Some(resource("GrpcGroup")),
            topic: Some(resource("PopTopic")),
            entries: received
                .iter()
                .map(|m| {
                    let sys = m.system_properties.as_ref().unwrap();
                    AckMessageEntry {
                        message_id: sys.message_id.clone(),
                        receipt_handle: sys.receipt_handle.clone().unwrap(),
                        lite_topic: None,
                    }
                })
                .collect(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&ack.status), Code::Ok, "{ack:?}");
    let bad = client
        .ack_message(call(AckMessageRequest {
            group: Some(resource("GrpcGroup")),
            topic: Some(resource("PopTopic")),
            entries: vec![AckMessageEntry {
                message_id: "x".into(),
                receipt_handle: "not a handle".into(),
                lite_topic: None,
            }],
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&bad.status), Code::InvalidReceiptHandle);

    s.shutdown().await;
}

/// One receive of up to 32 messages of GrpcGroup on PopTopic, invisible for `invisible_secs`.
async fn receive(client: &mut Client, invisible_secs: i64) -> Vec<Content> {
    let mut stream = client
        .receive_message(call(ReceiveMessageRequest {
            group: Some(resource("GrpcGroup")),
            message_queue: Some(MessageQueue {
                topic: Some(resource("PopTopic")),
                id: -1,
                ..Default::default()
            }),
            filter_expression: Some(FilterExpression {
                r#type: FilterType::Tag as i32,
                expression: "*".into(),
            }),
            batch_size: 32,
            invisible_duration: Some(prost_types::Duration {
                seconds: invisible_secs,
                nanos: 0,
            }),
            auto_renew: false,
            long_polling_timeout: Some(prost_types::Duration {
                seconds: 5,
                nanos: 0,
            }),
            attempt_id: None,
        }))
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while let Some(r) = stream.message().await.unwrap() {
        out.push(r.content.expect("a content"));
    }
    out
}

fn md5_upper(body: &[u8]) -> String {
    use md5::{Digest, Md5};
    petrel_common::msg_id::hex_upper(&Md5::digest(body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_commit_and_orphans_are_recovered_over_telemetry() {
    let dir = tempfile::tempdir().unwrap();
    let s = standalone(dir.path()).await;
    create_topic(&s, "TxTopic", 2).await;
    let mut client = h2c(&s).await;
    let (_keep_open, mut answers) =
        telemetry(&mut client, producer_settings(&s, &["TxTopic"])).await;
    next_command(&mut answers).await;

    let half = |id: &str, recovery_secs: i64| {
        let mut m = message("TxTopic", id, id.as_bytes());
        let sys = m.system_properties.as_mut().unwrap();
        sys.message_type = MessageType::Transaction as i32;
        sys.orphaned_transaction_recovery_duration = Some(prost_types::Duration {
            seconds: recovery_secs,
            nanos: 0,
        });
        m
    };
    // Committed by the producer: delivered.
    let sent = send(&mut client, half("01TXCOMMIT", 60)).await;
    assert_eq!(code(&sent.status), Code::Ok, "{sent:?}");
    let tx_id = sent.entries[0].transaction_id.clone();
    assert!(!tx_id.is_empty());
    assert!(
        pull_all(&s, "TxTopic").await.is_empty(),
        "invisible until committed"
    );
    let end = client
        .end_transaction(call(EndTransactionRequest {
            topic: Some(resource("TxTopic")),
            message_id: "01TXCOMMIT".into(),
            transaction_id: tx_id,
            resolution: TransactionResolution::Commit as i32,
            source: TransactionSource::SourceClient as i32,
            trace_context: String::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&end.status), Code::Ok);
    let delivered = pull_all(&s, "TxTopic").await;
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].property("UNIQ_KEY"), Some("01TXCOMMIT"));

    // Left open: the broker asks the producer over its telemetry stream, which rolls it back.
    let sent = send(&mut client, half("01TXORPHAN", 1)).await;
    assert_eq!(code(&sent.status), Code::Ok);
    let check = tokio::time::timeout(WAIT, async {
        loop {
            let c = next_command(&mut answers).await;
            if let Some(Command::RecoverOrphanedTransactionCommand(r)) = c.command {
                return r;
            }
        }
    })
    .await
    .expect("a recover-orphaned-transaction command");
    assert_eq!(check.transaction_id, sent.entries[0].transaction_id);
    let m = check.message.unwrap();
    assert_eq!(m.topic.unwrap().name, "TxTopic");
    assert_eq!(m.body, b"01TXORPHAN");
    let sys = m.system_properties.unwrap();
    assert_eq!(sys.message_id, "01TXORPHAN");
    assert_eq!(sys.message_type, MessageType::Transaction as i32);
    let end = client
        .end_transaction(call(EndTransactionRequest {
            topic: Some(resource("TxTopic")),
            message_id: "01TXORPHAN".into(),
            transaction_id: check.transaction_id,
            resolution: TransactionResolution::Rollback as i32,
            source: TransactionSource::SourceServerCheck as i32,
            trace_context: String::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&end.status), Code::Ok);
    assert!(s.broker().broker.transactions.is_empty());
    assert_eq!(
        pull_all(&s, "TxTopic").await.len(),
        1,
        "the rollback delivered nothing"
    );
    let bad = client
        .end_transaction(call(EndTransactionRequest {
            topic: Some(resource("TxTopic")),
            message_id: "x".into(),
            transaction_id: "nonsense".into(),
            resolution: TransactionResolution::Commit as i32,
            source: TransactionSource::SourceClient as i32,
            trace_context: String::new(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&bad.status), Code::InvalidTransactionId);

    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_h2c_share_the_port() {
    let dir = tempfile::tempdir().unwrap();
    let s = standalone(dir.path()).await;
    create_topic(&s, "TlsTopic", 1).await;
    let addr = s.grpc_addr().unwrap();
    let ca = std::fs::read(dir.path().join("data/config/tls/server.crt")).unwrap();
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca))
        .domain_name("localhost");
    let channel = Channel::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_timeout(WAIT)
        .connect()
        .await
        .unwrap();
    let mut over_tls = MessagingServiceClient::new(channel);
    let mut plain = h2c(&s).await;
    for client in [&mut over_tls, &mut plain] {
        let route = client
            .query_route(call(QueryRouteRequest {
                topic: Some(resource("TlsTopic")),
                endpoints: Some(endpoints(&s)),
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(code(&route.status), Code::Ok);
        assert_eq!(route.message_queues.len(), 1);
    }
    let sent = send(&mut over_tls, message("TlsTopic", "01TLS", b"encrypted")).await;
    assert_eq!(code(&sent.status), Code::Ok);
    assert_eq!(pull_all(&s, "TlsTopic").await.len(), 1);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_consumers_nack_brings_the_message_back_as_the_next_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let s = standalone(dir.path()).await;
    create_topic(&s, "PopTopic", 1).await;
    let mut client = h2c(&s).await;
    let heartbeat = client
        .heartbeat(call(HeartbeatRequest {
            group: Some(resource("GrpcGroup")),
            client_type: ClientType::PushConsumer as i32,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&heartbeat.status), Code::Ok);
    let sent = send(&mut client, message("PopTopic", "01NACK", b"fails once")).await;
    assert_eq!(code(&sent.status), Code::Ok);
    let push_receive = |client: &mut Client| {
        let mut client = client.clone();
        async move {
            let mut stream = client
                .receive_message(call(ReceiveMessageRequest {
                    group: Some(resource("GrpcGroup")),
                    message_queue: Some(MessageQueue {
                        topic: Some(resource("PopTopic")),
                        id: -1,
                        ..Default::default()
                    }),
                    filter_expression: None,
                    batch_size: 32,
                    invisible_duration: None,
                    auto_renew: true,
                    long_polling_timeout: Some(prost_types::Duration {
                        seconds: 5,
                        nanos: 0,
                    }),
                    attempt_id: Some("a".into()),
                }))
                .await
                .unwrap()
                .into_inner();
            let mut got = Vec::new();
            while let Some(r) = stream.message().await.unwrap() {
                if let Some(Content::Message(m)) = r.content {
                    got.push(m);
                }
            }
            got
        }
    };
    let first = push_receive(&mut client).await;
    assert_eq!(first.len(), 1);
    let sys = first[0].system_properties.clone().unwrap();
    assert_eq!(sys.delivery_attempt, Some(1));
    // The consumer failed: it gives the message back for the first backoff step.
    let nack = client
        .change_invisible_duration(call(ChangeInvisibleDurationRequest {
            group: Some(resource("GrpcGroup")),
            topic: Some(resource("PopTopic")),
            receipt_handle: sys.receipt_handle.unwrap(),
            invisible_duration: Some(prost_types::Duration {
                seconds: 1,
                nanos: 0,
            }),
            message_id: sys.message_id.clone(),
            lite_topic: None,
            suspend: None,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&nack.status), Code::Ok);
    let again = push_receive(&mut client).await;
    assert_eq!(again.len(), 1, "the message comes back after its backoff");
    let sys = again[0].system_properties.as_ref().unwrap();
    assert_eq!(sys.message_id, "01NACK");
    assert_eq!(sys.delivery_attempt, Some(2));
    // Out of attempts (a FIFO consumer decides so itself): to the group's dead-letter queue.
    let forwarded = client
        .forward_message_to_dead_letter_queue(call(ForwardMessageToDeadLetterQueueRequest {
            group: Some(resource("GrpcGroup")),
            topic: Some(resource("PopTopic")),
            receipt_handle: sys.receipt_handle.clone().unwrap(),
            message_id: sys.message_id.clone(),
            delivery_attempt: 2,
            max_delivery_attempts: 2,
            lite_topic: None,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&forwarded.status), Code::Ok);
    assert_eq!(s.broker().broker.store.max_offset("%DLQ%GrpcGroup", 0), 1);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_acl_on_every_call_is_unauthorized() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("broker.toml");
    std::fs::write(&conf, "aclEnable = true\n").unwrap();
    let mut config = StandaloneConfig::ephemeral(dir.path().join("data"));
    config.broker_config_file = Some(conf);
    let s = Standalone::start(config).await.unwrap();
    let mut client = h2c(&s).await;
    let route = client
        .query_route(call(QueryRouteRequest {
            topic: Some(resource("AnyTopic")),
            endpoints: Some(endpoints(&s)),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(code(&route.status), Code::Unauthorized);
    let sent = send(&mut client, message("AnyTopic", "01ACL", b"x")).await;
    assert_eq!(code(&sent.status), Code::Unauthorized);
    let (_tx, rx) = mpsc::channel::<TelemetryCommand>(1);
    let refused = client.telemetry(call(ReceiverStream::new(rx))).await;
    assert_eq!(
        refused.err().map(|e| e.code()),
        Some(tonic::Code::Unauthenticated)
    );
    s.shutdown().await;
}
