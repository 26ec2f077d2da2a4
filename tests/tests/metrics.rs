//! The broker's Prometheus endpoint against a real standalone on loopback: after a load of
//! messages of known sizes and a pull consumer that pulls some and commits fewer, every
//! RocketMQ 5 metric says what happened, scraped with a plain HTTP GET.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use petrel::standalone::StandaloneConfig;
use petrel_client::{
    ClientConfig, ConsumeStatus, Message, MessageExt, MessageQueue, Producer, PullConsumer,
    PullStatus, PushConsumer,
};
use petrel_remoting::code::{request, response};
use petrel_remoting::headers::ConsumerSendMsgBackRequestHeader;
use petrel_remoting::RemotingCommand;
use petrel_tests::Standalone;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOPIC: &str = "MetricsTopic";
const GROUP: &str = "metrics-cg";
const PUSH_GROUP: &str = "metrics-push";
const WAIT: Duration = Duration::from_secs(30);

/// `GET path` over a fresh connection: the status code and the body.
async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut raw))
        .await
        .expect("the endpoint answers")
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete response");
    assert!(
        !head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{head}"
    );
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    (status, body.to_owned())
}

async fn scrape(addr: SocketAddr) -> String {
    let (status, body) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The value of the sample `name` whose labels include all of `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (n, rest) = series.split_once('{').unwrap_or((series, "}"));
        let set = rest.strip_suffix('}')?;
        let has = |(k, v): &(&str, &str)| set.split(',').any(|p| p == format!("{k}=\"{v}\""));
        (n == name && labels.iter().all(has)).then(|| value.parse().ok())?
    })
}

/// The sum of every sample `name` whose labels include all of `labels`.
fn total(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| sample(l, name, labels))
        .sum()
}

/// Scrapes until `done` holds of the text, or panics naming `what` after `WAIT`.
async fn scrape_until(addr: SocketAddr, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = scrape(addr).await;
        if done(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The body sizes sent: 10 under 1 KiB, 6 under 4 KiB, 4 between 512 KiB and 1 MiB.
fn sizes() -> Vec<usize> {
    let mut v = vec![100; 10];
    v.extend([2000; 6]);
    v.extend([600 * 1024; 4]);
    v
}

/// Pulls from `mq` from offset 0 until `n` messages are in hand.
async fn pull_n(reader: &PullConsumer, mq: &MessageQueue, n: usize) -> Vec<MessageExt> {
    let deadline = Instant::now() + WAIT;
    let mut out = Vec::new();
    while out.len() < n {
        assert!(Instant::now() < deadline, "pulled {} of {n}", out.len());
        let r = reader
            .pull(mq, out.len() as i64, (n - out.len()) as i32)
            .await
            .unwrap();
        if let PullStatus::Found(msgs) = r.status {
            out.extend(msgs);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_follows_a_load_and_a_consumer() {
    let dir = tempfile::tempdir().unwrap();
    let petrel = Standalone::start(dir.path()).await.unwrap();
    let addr = petrel
        .metrics_addr()
        .expect("the test broker serves /metrics");
    assert!(addr.ip().is_loopback(), "{addr}");
    let ns = petrel.namesrv_addr.clone();

    let (status, body) = http_get(addr, "/health").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (status, _) = http_get(addr, "/nothing").await;
    assert_eq!(status, 404);

    let node = [
        ("cluster", "DefaultCluster"),
        ("node_type", "broker"),
        ("node_id", "broker-a"),
    ];
    let before = scrape(addr).await;
    let topics_before = sample(&before, "rocketmq_topic_number", &node).unwrap();
    let groups_before = sample(&before, "rocketmq_consumer_group_number", &node).unwrap();
    petrel.create_topic(TOPIC, 1).await.unwrap();
    let text = scrape(addr).await;
    assert_eq!(
        sample(&text, "rocketmq_topic_number", &node),
        Some(topics_before + 1.0)
    );

    // The load: N messages of known sizes to the topic's one queue.
    let mut config = ClientConfig::new(&ns).with_instance_name("metrics-pg");
    // Its first heartbeat comes one interval after the first send's route lookup.
    config.heartbeat_interval = Duration::from_millis(200);
    let producer = Producer::new("metrics-pg", config);
    producer.start().await.unwrap();
    let sizes = sizes();
    for (i, size) in sizes.iter().enumerate() {
        let msg = Message::new(TOPIC, vec![b'x'; *size]).with_keys(format!("k{i}"));
        producer.send(msg).await.unwrap();
    }
    let n = sizes.len() as f64;
    let bytes_in: usize = sizes.iter().sum();
    let text = scrape(addr).await;
    let normal = [
        ("topic", TOPIC),
        ("message_type", "Normal"),
        ("is_system", "false"),
    ];
    assert_eq!(
        sample(&text, "rocketmq_messages_in_total", &normal),
        Some(n)
    );
    assert_eq!(
        sample(&text, "rocketmq_throughput_in_total", &normal),
        Some(bytes_in as f64)
    );
    for (le, count) in [
        ("1024", 10.0),
        ("4096", 16.0),
        ("524288", 16.0),
        ("1048576", 20.0),
        ("2097152", 20.0),
        ("4194304", 20.0),
        ("+Inf", 20.0),
    ] {
        let mut labels = normal.to_vec();
        labels.push(("le", le));
        assert_eq!(
            sample(&text, "rocketmq_message_size_bucket", &labels),
            Some(count),
            "bucket le={le}"
        );
    }
    let sends = total(
        &text,
        "rocketmq_rpc_latency_count",
        &[("protocol_type", "remoting"), ("response_code", "success")],
    );
    let v1 = sample(
        &text,
        "rocketmq_rpc_latency_count",
        &[
            ("request_code", "send_message"),
            ("response_code", "success"),
        ],
    );
    let v2 = sample(
        &text,
        "rocketmq_rpc_latency_count",
        &[
            ("request_code", "send_message_v2"),
            ("response_code", "success"),
        ],
    );
    assert!(
        v1.unwrap_or(0.0) + v2.unwrap_or(0.0) >= n && sends >= n,
        "{text}"
    );
    let inf = sample(
        &text,
        "rocketmq_rpc_latency_bucket",
        &[("request_code", "send_message_v2"), ("le", "+Inf")],
    );
    assert_eq!(inf, v2, "the +Inf bucket holds every send");
    let text = scrape_until(addr, "the producer's connection", |t| {
        total(t, "rocketmq_producer_connections", &node) >= 1.0
    })
    .await;
    assert!(sample(
        &text,
        "rocketmq_producer_connections",
        &[("language", "JAVA")]
    )
    .is_some());

    // A pull consumer pulls the 12 smallest, commits 5.
    let reader = PullConsumer::new(GROUP, ClientConfig::new(&ns).with_instance_name(GROUP));
    reader.start().await.unwrap();
    let mq = reader
        .fetch_queues(TOPIC)
        .await
        .unwrap()
        .into_iter()
        .next()
        .unwrap();
    let (pulled, committed) = (12usize, 5i64);
    let msgs = pull_n(&reader, &mq, pulled).await;
    assert_eq!(msgs.len(), pulled);
    let bytes_out: usize = msgs.iter().map(|m| m.body.len()).sum();
    assert_eq!(bytes_out, 10 * 100 + 2 * 2000);
    reader.commit_offset(&mq, committed).await.unwrap();

    let text = scrape(addr).await;
    let out = [("topic", TOPIC), ("consumer_group", GROUP)];
    assert_eq!(
        sample(&text, "rocketmq_messages_out_total", &out),
        Some(pulled as f64)
    );
    assert_eq!(
        sample(&text, "rocketmq_throughput_out_total", &out),
        Some(bytes_out as f64)
    );
    let lag = |name| sample(&text, name, &out);
    assert_eq!(
        lag("rocketmq_consumer_lag_messages"),
        Some(n - committed as f64),
        "backlog minus committed"
    );
    assert_eq!(
        lag("rocketmq_consumer_inflight_messages"),
        Some((pulled as i64 - committed) as f64),
        "pulled minus committed"
    );
    assert_eq!(
        lag("rocketmq_consumer_ready_messages"),
        Some(n - pulled as f64),
        "stored but not pulled"
    );
    let oldest_unconsumed = msgs[committed as usize].store_timestamp as f64;
    let latency = lag("rocketmq_consumer_lag_latency").unwrap();
    let now = petrel_common::msg_id::now_ms() as f64;
    assert!(
        latency >= 0.0 && latency <= now - oldest_unconsumed + 1.0,
        "lag latency {latency} ms"
    );
    let pull_rpcs = sample(
        &text,
        "rocketmq_rpc_latency_count",
        &[
            ("request_code", "pull_message"),
            ("response_code", "success"),
        ],
    );
    assert!(pull_rpcs.unwrap_or(0.0) >= 1.0, "{text}");

    // A push consumer of another group: a consumer connection and a subscription group.
    let mut push = PushConsumer::new(
        PUSH_GROUP,
        ClientConfig::new(&ns).with_instance_name(PUSH_GROUP),
    );
    // It heartbeats only to brokers holding a topic it subscribes to; from the last offset, it
    // consumes none of the backlog.
    push.subscribe(TOPIC, "*").unwrap();
    push.register_listener(|_: &[MessageExt]| ConsumeStatus::Success);
    push.start().await.unwrap();
    let text = scrape_until(addr, "the push consumer's connection", |t| {
        sample(
            t,
            "rocketmq_consumer_connections",
            &[("consumer_group", PUSH_GROUP), ("consume_mode", "push")],
        ) == Some(1.0)
    })
    .await;
    assert!(
        sample(&text, "rocketmq_consumer_group_number", &node).unwrap() > groups_before,
        "the push group was created by its heartbeat"
    );

    // A message handed back with maxReconsumeTimes 0 goes to the dead-letter queue.
    let dead = &msgs[0];
    let header = ConsumerSendMsgBackRequestHeader {
        offset: dead.commit_log_offset,
        group: GROUP.into(),
        delay_level: 0,
        origin_msg_id: Some(dead.msg_id().to_owned()),
        origin_topic: Some(TOPIC.into()),
        unit_mode: Some(false),
        max_reconsume_times: Some(0),
    };
    let cmd = RemotingCommand::request_with_header(request::CONSUMER_SEND_MSG_BACK, &header);
    let resp = reader
        .instance()
        .invoke(&petrel.broker_addr, cmd, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
    let text = scrape(addr).await;
    assert_eq!(
        sample(
            &text,
            "rocketmq_send_to_dlq_messages_total",
            &[("topic", TOPIC), ("consumer_group", GROUP)],
        ),
        Some(1.0)
    );

    // Storage and process figures.
    let storage = [("storage_type", "local"), ("storage_medium", "disk")];
    let size = sample(&text, "rocketmq_storage_size", &storage).unwrap();
    assert!(size >= bytes_in as f64, "storage size {size}");
    for name in [
        "rocketmq_storage_flush_behind_bytes",
        "rocketmq_storage_dispatch_behind_bytes",
        "rocketmq_storage_message_reserve_time",
    ] {
        let v = sample(&text, name, &storage).unwrap_or_else(|| panic!("no {name}"));
        assert!(v >= 0.0, "{name} {v}");
    }
    let ratio = sample(&text, "petrel_storage_disk_used_ratio", &storage).unwrap();
    assert!((0.0..=1.0).contains(&ratio), "disk ratio {ratio}");
    assert!(sample(&text, "process_cpu_seconds_total", &node).is_some());
    for name in ["process_resident_memory_bytes", "process_open_fds"] {
        assert!(sample(&text, name, &node).unwrap() > 0.0, "{name}");
    }

    push.shutdown().await;
    reader.shutdown().await;
    producer.shutdown().await;
    petrel.shutdown().await.unwrap();
    // The endpoint goes with the broker.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_is_logged_not_fatal_and_disabled_serves_nothing() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = StandaloneConfig::ephemeral(dir.path());
    config.metrics_listen = Some(taken.local_addr().unwrap());
    let petrel = Standalone::start_with(config).await.unwrap();
    assert_eq!(petrel.metrics_addr(), None);
    let producer = petrel.producer("metrics-pg").await.unwrap();
    producer
        .send(Message::new(TOPIC, "still serving"))
        .await
        .unwrap();
    producer.shutdown().await;
    petrel.shutdown().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut config = StandaloneConfig::ephemeral(dir.path());
    config.metrics_listen = None;
    let petrel = Standalone::start_with(config).await.unwrap();
    assert_eq!(petrel.metrics_addr(), None);
    petrel.shutdown().await.unwrap();
}
