//! The official `mqadmin` (rocketmq-tools 4.9.8, `MQAdminStartup` behind `petrel.compat.MqAdmin`,
//! which only gives it the `ROCKETMQ_HOME` it insists on) against Petrel standalone.
//!
//! mqadmin prints a failed command's exception and still exits 0, so every run is checked
//! for what it must print and, unless the failure is the point, for no "Exception" / "Error" in
//! either stream. The commands that look at live clients run while a producer and a push
//! consumer of the official Java client (`AdminClients.liveProducerAndConsumer`) are online in a
//! second JVM. Each test has its own broker; the tests run side by side.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use petrel::standalone::StandaloneConfig;
use petrel_tests::java::{classpath, run_main, unique_run_name};
use petrel_tests::process::ProgramRun;
use petrel_tests::Standalone;

const CLUSTER: &str = "DefaultCluster";
const BROKER_NAME: &str = "broker-a";
/// Bound of every wait for a state mqadmin polls (a committed offset, a reset's redelivery).
const WAIT: Duration = Duration::from_secs(90);

/// A fresh Petrel standalone on loopback with the runtime it runs on.
struct Petrel {
    rt: tokio::runtime::Runtime,
    servers: Option<Standalone>,
    namesrv: String,
    broker: String,
    _dir: tempfile::TempDir,
}

impl Petrel {
    fn start() -> Petrel {
        let dir = tempfile::tempdir().expect("a data directory");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime for Petrel");
        let servers = rt
            .block_on(Standalone::start_with(StandaloneConfig::ephemeral(
                dir.path(),
            )))
            .expect("Petrel starts");
        Petrel {
            namesrv: servers.namesrv_addr.clone(),
            broker: servers.broker_addr.clone(),
            servers: Some(servers),
            rt,
            _dir: dir,
        }
    }

    /// Runs `mqadmin <args> -n <namesrv>`.
    fn mqadmin(&self, args: &[&str]) -> Output {
        let mut argv: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        argv.push("-n".into());
        argv.push(self.namesrv.clone());
        Output::of(args, run_main("petrel.compat.MqAdmin", &argv))
    }

    /// Runs `mqadmin <args>` and checks it printed no exception or error.
    fn ok(&self, args: &[&str]) -> Output {
        let out = self.mqadmin(args);
        out.assert_clean();
        out
    }

    /// Runs `mqadmin <args>` until `done` holds for its clean output.
    fn until(&self, args: &[&str], what: &str, done: impl Fn(&Output) -> bool) -> Output {
        let deadline = Instant::now() + WAIT;
        loop {
            let out = self.ok(args);
            if done(&out) {
                return out;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last `mqadmin {}` printed\n{}",
                args.join(" "),
                out.stdout
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Petrel {
    /// Stops the broker and name server and starts them again on the same data (new ports).
    fn restart(&mut self) {
        let servers = self.servers.take().expect("running");
        self.rt
            .block_on(servers.shutdown())
            .expect("Petrel stops cleanly");
        let servers = self
            .rt
            .block_on(Standalone::start_with(StandaloneConfig::ephemeral(
                self._dir.path(),
            )))
            .expect("Petrel starts again");
        self.namesrv = servers.namesrv_addr.clone();
        self.broker = servers.broker_addr.clone();
        self.servers = Some(servers);
    }

    /// Sends a body of `bytes` bytes to `topic` with our client; the broker's refusal as an
    /// error.
    fn send_body(&self, topic: &str, bytes: usize) -> petrel_client::Result<()> {
        let mut config = petrel_client::ClientConfig::new(self.namesrv.clone())
            .with_instance_name(format!("mqadmin-send-{bytes}"));
        config.request_timeout = Duration::from_secs(5);
        self.rt.block_on(async {
            let producer = petrel_client::Producer::new("MqadminSizeProducer", config);
            producer.start().await?;
            let r = producer
                .send(petrel_client::Message::new(topic, vec![b'x'; bytes]))
                .await;
            producer.shutdown().await;
            r.map(|_| ())
        })
    }
}

impl Drop for Petrel {
    fn drop(&mut self) {
        if let Some(servers) = self.servers.take() {
            let _ = self.rt.block_on(servers.shutdown());
        }
    }
}

/// What one mqadmin run printed.
struct Output {
    command: String,
    stdout: String,
    stderr: String,
}

impl Output {
    fn of(args: &[&str], run: ProgramRun) -> Output {
        assert!(
            run.success,
            "mqadmin {} did not finish\n--- stdout\n{}\n--- stderr\n{}",
            args.join(" "),
            run.stdout,
            run.stderr
        );
        Output {
            command: args.join(" "),
            stdout: run.stdout,
            stderr: run.stderr,
        }
    }

    fn assert_clean(&self) {
        for word in ["Exception", "Error"] {
            assert!(
                !self.stdout.contains(word) && !self.stderr.contains(word),
                "`mqadmin {}` printed {word:?}\n--- stdout\n{}\n--- stderr\n{}",
                self.command,
                self.stdout,
                self.stderr
            );
        }
    }

    fn has(&self, text: &str) -> bool {
        self.stdout.contains(text)
    }

    fn assert_has(&self, text: &str) {
        assert!(
            self.has(text),
            "`mqadmin {}` should print {text:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.command,
            self.stdout,
            self.stderr
        );
    }

    /// For a command meant to fail: mqadmin prints the exception, with the broker's or name
    /// server's code and remark, to standard error.
    fn assert_failed_with(&self, text: &str) {
        assert!(
            self.stderr.contains(text),
            "`mqadmin {}` should fail with {text:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.command,
            self.stdout,
            self.stderr
        );
    }

    /// The whitespace-separated fields of every line whose first fields are `first`.
    fn rows(&self, first: &[&str]) -> Vec<Vec<String>> {
        self.stdout
            .lines()
            .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
            .filter(|f| f.len() >= first.len() && f.iter().zip(first).all(|(a, b)| a == b))
            .collect()
    }

    /// The only line starting with the fields `first`.
    fn row(&self, first: &[&str]) -> Vec<String> {
        let rows = self.rows(first);
        assert_eq!(
            rows.len(),
            1,
            "`mqadmin {}` should print one line starting {first:?}\n{}",
            self.command,
            self.stdout
        );
        rows.into_iter().next().unwrap()
    }

    /// The value of `key` on a `key <sep> value` line (brokerStatus, getBrokerConfig, ...).
    fn kv(&self, key: &str, sep: char) -> String {
        self.stdout
            .lines()
            .filter_map(|l| l.split_once(sep))
            .find(|(k, _)| k.trim() == key)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_else(|| {
                panic!(
                    "`mqadmin {}` printed no {key:?}\n{}",
                    self.command, self.stdout
                )
            })
    }

    /// The value printed after `label` (`Topic:   T` -> `T`), on the first line with it.
    fn field(&self, label: &str) -> String {
        self.stdout
            .lines()
            .find_map(|l| l.trim_start().strip_prefix(label))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| {
                panic!(
                    "`mqadmin {}` printed no {label:?}\n{}",
                    self.command, self.stdout
                )
            })
    }
}

/// `java -cp <compat classpath> <main> <args>` in `cwd`, with its logs kept in `home`.
fn spawn_java(main: &str, args: &[String], home: &Path, cwd: &Path) -> Child {
    Command::new("java")
        .arg("-Xms64m")
        .arg("-Xmx512m")
        .arg("-XX:+UseSerialGC")
        .arg("-XX:TieredStopAtLevel=1")
        .arg(format!("-Drocketmq.client.logRoot={}", home.display()))
        .arg("-Drocketmq.client.logLevel=WARN")
        .arg(format!("-Duser.home={}", home.display()))
        .arg("-cp")
        .arg(classpath())
        .arg(main)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("java starts")
}

/// The lines a child prints, collected as they come.
struct Lines {
    buf: Arc<Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Lines {
    fn follow(child: &mut Child) -> Lines {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().expect("piped stdout");
        let err = child.stderr.take().expect("piped stderr");
        let readers = vec![
            Self::reader(out, "", Arc::clone(&buf)),
            Self::reader(err, "stderr: ", Arc::clone(&buf)),
        ];
        Lines { buf, readers }
    }

    fn reader(
        stream: impl std::io::Read + Send + 'static,
        prefix: &'static str,
        sink: Arc<Mutex<Vec<String>>>,
    ) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(format!("{prefix}{line}"));
            }
        })
    }

    fn snapshot(&self) -> Vec<String> {
        self.buf.lock().unwrap().clone()
    }

    /// Everything the child printed, once it has ended.
    fn finish(self) -> Vec<String> {
        for r in self.readers {
            let _ = r.join();
        }
        let lines = self.buf.lock().unwrap().clone();
        lines
    }

    /// Waits until the lines satisfy `done`, failing if the child ends first.
    fn wait_for(&self, child: &mut Child, what: &str, done: impl Fn(&[String]) -> bool) {
        let deadline = Instant::now() + WAIT;
        loop {
            if done(&self.snapshot()) {
                return;
            }
            let exited = child.try_wait().expect("poll the child").is_some();
            assert!(
                !exited && Instant::now() < deadline,
                "{} waiting for {what}; it printed\n{}",
                if exited { "the JVM ended" } else { "timed out" },
                self.snapshot().join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Runs mqadmin in `cwd` (for the commands that write files under the working directory).
fn mqadmin_in(cwd: &Path, args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let mut child = spawn_java("petrel.compat.MqAdmin", &args, cwd, cwd);
    drop(child.stdin.take());
    let lines = Lines::follow(&mut child);
    let deadline = Instant::now() + WAIT;
    while child.try_wait().expect("poll mqadmin").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    lines.finish().join("\n")
}

/// One message the live producer sent, as its SendResult told it.
#[derive(Debug, Clone)]
struct Sent {
    msg_id: String,
    offset_msg_id: String,
    queue_id: u32,
    queue_offset: u64,
}

/// A producer and a push consumer of the official Java client, online until dropped.
struct LiveClients {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Lines,
    sent: Vec<Sent>,
    _home: tempfile::TempDir,
}

impl LiveClients {
    fn start(
        namesrv: &str,
        topic: &str,
        producer_group: &str,
        consumer_group: &str,
        count: usize,
    ) -> LiveClients {
        let home = tempfile::tempdir().expect("a home for the client JVM");
        let args: Vec<String> = [
            "AdminClients.liveProducerAndConsumer".to_owned(),
            format!("namesrv={namesrv}"),
            format!("run={}", unique_run_name()),
            format!("topic={topic}"),
            format!("producerGroup={producer_group}"),
            format!("consumerGroup={consumer_group}"),
            format!("count={count}"),
        ]
        .into();
        let mut child = spawn_java("petrel.compat.Main", &args, home.path(), home.path());
        let stdin = child.stdin.take();
        let lines = Lines::follow(&mut child);
        lines.wait_for(&mut child, "READY", |l| l.iter().any(|l| l == "READY"));
        let results: HashMap<String, String> = lines
            .snapshot()
            .iter()
            .filter_map(|l| l.strip_prefix("RESULT "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let sent = (0..count)
            .map(|i| {
                let line = &results[&format!("sent.{i}")];
                let f: Vec<&str> = line.split(' ').collect();
                Sent {
                    msg_id: f[0].to_owned(),
                    offset_msg_id: f[1].to_owned(),
                    queue_id: f[2].parse().unwrap(),
                    queue_offset: f[3].parse().unwrap(),
                }
            })
            .collect();
        LiveClients {
            child,
            stdin,
            lines,
            sent,
            _home: home,
        }
    }

    /// How many times the consumer got each body so far.
    fn deliveries(&self) -> HashMap<String, usize> {
        let mut n = HashMap::new();
        for l in self.lines.snapshot() {
            if let Some(body) = l.strip_prefix("CONSUMED ") {
                *n.entry(body.to_owned()).or_insert(0) += 1;
            }
        }
        n
    }

    fn wait_for(&mut self, what: &str, done: impl Fn(&[String]) -> bool) {
        self.lines.wait_for(&mut self.child, what, done);
    }
}

impl Drop for LiveClients {
    fn drop(&mut self) {
        // Closing standard input tells the scenario to shut its clients down.
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Regression: clusterList read `getTransferedTps` (RocketMQ's spelling), which Petrel sent as
/// `getTransferredTps`, and printed a NullPointerException. Also brokerStatus (every runtime
/// key), clusterList -m (totals), clusterRT (sends through the broker-name topic) and the
/// broker config commands.
#[test]
fn cluster_and_broker_commands() {
    let p = Petrel::start();
    let port = p.broker.rsplit(':').next().unwrap().to_owned();

    let list = p.ok(&["clusterList"]);
    list.assert_has("#Cluster Name");
    let row = list.row(&[CLUSTER, BROKER_NAME]);
    assert_eq!(row[2], "0", "broker id in {row:?}");
    assert_eq!(row[3], p.broker, "address in {row:?}");
    assert!(row[4].starts_with("PETREL_"), "version in {row:?}");
    assert_eq!(
        row[5], "0.00(0,0ms)",
        "InTPS(LOAD) of an idle broker in {row:?}"
    );
    assert_eq!(
        row[6], "0.00(0,0ms)",
        "OutTPS(LOAD) of an idle broker in {row:?}"
    );

    // clusterRT sends `-a` messages to the topic named after each broker, then sleeps `-i`
    // seconds and starts over until killed: one round is exactly 10 sends.
    let home = tempfile::tempdir().unwrap();
    let args: Vec<String> = ["clusterRT", "-a", "10", "-i", "120", "-n", &p.namesrv]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut rt = spawn_java("petrel.compat.MqAdmin", &args, home.path(), home.path());
    let lines = Lines::follow(&mut rt);
    lines.wait_for(&mut rt, "clusterRT's first round", |l| {
        l.iter().any(|l| l.starts_with(CLUSTER))
    });
    let _ = rt.kill();
    let _ = rt.wait();
    let printed = lines.finish();
    assert!(
        !printed.iter().any(|l| l.contains("Exception")),
        "clusterRT printed\n{}",
        printed.join("\n")
    );
    let round: Vec<&str> = printed
        .iter()
        .find(|l| l.starts_with(CLUSTER))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(round[1], BROKER_NAME, "{round:?}");
    assert!(round[2].parse::<f64>().is_ok(), "RT in {round:?}");
    assert_eq!(
        &round[3..],
        ["10", "0"],
        "success and fail counts in {round:?}"
    );

    // The 10 sends count as today's puts.
    let more = p.ok(&["clusterList", "-m"]);
    more.assert_has("#InTotalToday");
    assert_eq!(
        more.row(&[CLUSTER, BROKER_NAME])[2..],
        ["0", "0", "10", "0"],
        "clusterList -m\n{}",
        more.stdout
    );
    let list = p.ok(&["clusterList"]);
    let row = list.row(&[CLUSTER, BROKER_NAME]);
    let in_tps: f64 = row[5].split('(').next().unwrap().parse().unwrap();
    assert!(in_tps > 0.0, "InTPS after 10 sends in {row:?}");

    let status = p.ok(&["brokerStatus", "-b", &p.broker]);
    for (key, value) in [
        ("brokerVersionDesc", None),
        ("putTps", None),
        ("getTransferedTps", None),
        ("msgPutTotalTodayNow", Some("10")),
        ("msgGetTotalTodayNow", Some("0")),
        ("msgPutTotalTodayMorning", Some("0")),
        ("sendThreadPoolQueueSize", Some("0")),
        ("pullThreadPoolQueueSize", Some("0")),
        ("sendThreadPoolQueueHeadWaitTimeMills", Some("0")),
        ("pullThreadPoolQueueHeadWaitTimeMills", Some("0")),
        ("earliestMessageTimeStamp", None),
        ("commitLogDiskRatio", None),
        ("commitLogMinOffset", Some("0")),
        ("bootTimestamp", None),
        ("runtime", None),
    ] {
        let got = status.kv(key, ':');
        match value {
            Some(v) => assert_eq!(got, v, "brokerStatus {key}\n{}", status.stdout),
            None => assert!(!got.is_empty(), "brokerStatus {key}\n{}", status.stdout),
        }
    }

    let config = p.ok(&["getBrokerConfig", "-b", &p.broker]);
    config.assert_has(&format!("============{}============", p.broker));
    for (key, value) in [
        ("brokerName", BROKER_NAME),
        ("brokerClusterName", CLUSTER),
        ("listenPort", port.as_str()),
        ("brokerId", "0"),
        ("flushDiskType", "ASYNC_FLUSH"),
        ("namesrvAddr", p.namesrv.as_str()),
    ] {
        assert_eq!(
            config.kv(key, '='),
            value,
            "getBrokerConfig\n{}",
            config.stdout
        );
    }

    // flushDiskType is not a runtime setting: refused, naming the key.
    let update = p.mqadmin(&[
        "updateBrokerConfig",
        "-b",
        &p.broker,
        "-k",
        "flushDiskType",
        "-v",
        "SYNC_FLUSH",
    ]);
    assert!(
        !update.has("update broker config success"),
        "{}",
        update.stdout
    );
    update.assert_failed_with(
        "CODE: 29  DESC: flushDiskType cannot change while the broker runs: set it in the \
         broker's TOML file and restart",
    );
    let config = p.ok(&["getBrokerConfig", "-b", &p.broker]);
    assert_eq!(config.kv("flushDiskType", '='), "ASYNC_FLUSH");
}

/// updateBrokerConfig changes maxMessageSize at once (a larger send is refused), getBrokerConfig
/// shows it, a bad value is refused naming the key, and the change survives a restart.
#[test]
fn update_broker_config_changes_max_message_size_at_once_and_for_good() {
    let mut p = Petrel::start();
    let topic = "MqadminSizeTopic";
    p.ok(&[
        "updateTopic",
        "-b",
        &p.broker,
        "-t",
        topic,
        "-r",
        "1",
        "-w",
        "1",
    ]);
    p.until(&["topicRoute", "-t", topic], "the topic's route", |o| {
        o.has(BROKER_NAME)
    });
    p.send_body(topic, 4000)
        .expect("4000 bytes under the default limit");

    let update = p.ok(&[
        "updateBrokerConfig",
        "-b",
        &p.broker,
        "-k",
        "maxMessageSize",
        "-v",
        "2048",
    ]);
    update.assert_has("update broker config success");
    let refused = p.send_body(topic, 4000).expect_err("4000 bytes over 2048");
    assert_eq!(refused.code(), Some(13), "{refused}");
    assert!(
        refused.to_string().contains(
            "the message body is 4000 bytes, larger than the broker's maxMessageSize of 2048 bytes"
        ),
        "{refused}"
    );
    p.send_body(topic, 2000)
        .expect("2000 bytes under the new limit");
    let config = p.ok(&["getBrokerConfig", "-b", &p.broker]);
    assert_eq!(config.kv("maxMessageSize", '='), "2048");

    let bad = p.mqadmin(&[
        "updateBrokerConfig",
        "-b",
        &p.broker,
        "-k",
        "maxMessageSize",
        "-v",
        "huge",
    ]);
    assert!(!bad.has("update broker config success"), "{}", bad.stdout);
    bad.assert_failed_with("CODE: 29  DESC: maxMessageSize must be a number of bytes");

    p.restart();
    let config = p.ok(&["getBrokerConfig", "-b", &p.broker]);
    assert_eq!(
        config.kv("maxMessageSize", '='),
        "2048",
        "kept across a restart"
    );
    p.until(&["topicRoute", "-t", topic], "the topic's route", |o| {
        o.has(BROKER_NAME)
    });
    let refused = p.send_body(topic, 4000).expect_err("still over 2048");
    assert_eq!(refused.code(), Some(13), "{refused}");
}

/// updateTopic, topicList, topicRoute, topicStatus, topicClusterList, deleteTopic.
#[test]
fn topic_commands() {
    let p = Petrel::start();
    let topic = format!("MqadminTopic_{}", unique_run_name());

    let create = p.ok(&[
        "updateTopic",
        "-c",
        CLUSTER,
        "-t",
        &topic,
        "-r",
        "4",
        "-w",
        "3",
    ]);
    create.assert_has(&format!("create topic to {} success.", p.broker));
    create.assert_has(&format!(
        "TopicConfig [topicName={topic}, readQueueNums=4, writeQueueNums=3, perm=RW-"
    ));

    let list = p.ok(&["topicList"]);
    assert_eq!(list.rows(&[&topic]).len(), 1, "topicList\n{}", list.stdout);
    let list = p.ok(&["topicList", "-c"]);
    assert_eq!(list.row(&[CLUSTER, &topic]).len(), 2, "{}", list.stdout);

    let route = p.ok(&["topicRoute", "-t", &topic]);
    for text in [
        format!("\"brokerAddrs\":{{0:\"{}\"", p.broker),
        format!("\"brokerName\":\"{BROKER_NAME}\""),
        format!("\"cluster\":\"{CLUSTER}\""),
        "\"perm\":6".to_owned(),
        "\"readQueueNums\":4".to_owned(),
        "\"writeQueueNums\":3".to_owned(),
    ] {
        route.assert_has(&text);
    }

    let status = p.ok(&["topicStatus", "-t", &topic]);
    status.assert_has("#Min Offset");
    let queues: Vec<Vec<String>> = status
        .rows(&[BROKER_NAME])
        .into_iter()
        .map(|r| r[1..4].to_vec())
        .collect();
    let empty: Vec<Vec<String>> = (0..4)
        .map(|q| vec![q.to_string(), "0".into(), "0".into()])
        .collect();
    assert_eq!(
        queues, empty,
        "topicStatus of an empty topic\n{}",
        status.stdout
    );

    let clusters = p.ok(&["topicClusterList", "-t", &topic]);
    assert_eq!(clusters.stdout.trim(), CLUSTER);

    let delete = p.ok(&["deleteTopic", "-c", CLUSTER, "-t", &topic]);
    delete.assert_has(&format!(
        "delete topic [{topic}] from cluster [{CLUSTER}] success."
    ));
    delete.assert_has(&format!("delete topic [{topic}] from NameServer success."));
    let list = p.ok(&["topicList"]);
    assert!(list.rows(&[&topic]).is_empty(), "{}", list.stdout);
    // The route is gone: mqadmin reports the name server's TOPIC_NOT_EXIST.
    let route = p.mqadmin(&["topicRoute", "-t", &topic]);
    route.assert_failed_with(&format!(
        "CODE: 17  DESC: No topic route info in name server for the topic: {topic}"
    ));
}

/// updateSubGroup and deleteSubGroup, each read back with getConsumerConfig.
#[test]
fn subscription_group_commands() {
    let p = Petrel::start();
    let group = format!("MqadminSubGroup_{}", unique_run_name());

    let update = p.ok(&[
        "updateSubGroup",
        "-b",
        &p.broker,
        "-g",
        &group,
        "-r",
        "5",
        "-q",
        "2",
    ]);
    update.assert_has(&format!(
        "create subscription group to {} success.",
        p.broker
    ));
    update.assert_has(&format!(
        "SubscriptionGroupConfig [groupName={group}, consumeEnable=true"
    ));
    let config = p.ok(&["getConsumerConfig", "-g", &group]);
    config.assert_has(&format!("{CLUSTER}:{BROKER_NAME}"));
    for (key, value) in [
        ("groupName", group.as_str()),
        ("retryMaxTimes", "5"),
        ("retryQueueNums", "2"),
        ("consumeEnable", "true"),
    ] {
        assert_eq!(
            config.kv(key, '='),
            value,
            "getConsumerConfig\n{}",
            config.stdout
        );
    }

    let delete = p.ok(&["deleteSubGroup", "-b", &p.broker, "-g", &group]);
    delete.assert_has(&format!(
        "delete subscription group [{group}] from broker [{}] success.",
        p.broker
    ));
    let config = p.ok(&["getConsumerConfig", "-g", &group]);
    assert!(!config.has("groupName"), "{}", config.stdout);
}

/// The commands about live clients and their messages: consumerProgress, consumerConnection,
/// producerConnection, consumerStatus, topicStatus with messages, the four message queries,
/// printMsg, cloneGroupOffset, statsAll and resetOffsetByTime with the consumer online.
#[test]
fn client_and_message_commands() {
    let p = Petrel::start();
    let run = unique_run_name();
    let topic = format!("MqadminLive_{run}");
    let producer_group = format!("MqadminPG_{run}");
    let group = format!("MqadminCG_{run}");
    let clone = format!("MqadminClone_{run}");
    const COUNT: usize = 8;

    p.ok(&[
        "updateTopic",
        "-c",
        CLUSTER,
        "-t",
        &topic,
        "-r",
        "4",
        "-w",
        "4",
    ]);
    let before_sends = now_ms();
    let mut clients = LiveClients::start(&p.namesrv, &topic, &producer_group, &group, COUNT);
    let sent = clients.sent.clone();
    let per_queue = |q: u32| sent.iter().filter(|s| s.queue_id == q).count().to_string();

    // consumerProgress once the consumer has committed everything.
    let progress = p.until(&["consumerProgress", "-g", &group], "Diff Total: 0", |o| {
        o.has("Diff Total: 0")
    });
    for q in 0..4 {
        let row = progress.row(&[&topic, BROKER_NAME, &q.to_string()]);
        assert_eq!(
            row[3..6],
            [per_queue(q), per_queue(q), "0".to_owned()],
            "broker offset, consumer offset, diff of queue {q}\n{}",
            progress.stdout
        );
    }
    progress.row(&[&format!("%RETRY%{group}"), BROKER_NAME, "0"]);
    let groups = p.ok(&["consumerProgress"]);
    assert_eq!(
        groups.row(&[&group])[1..],
        ["1", "V4_9_8", "PUSH", "CLUSTERING", "0", "0"],
        "consumerProgress without a group\n{}",
        groups.stdout
    );

    let conn = p.ok(&["consumerConnection", "-g", &group]);
    let clients_of_group: Vec<Vec<String>> = conn
        .stdout
        .lines()
        .map(|l| l.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .filter(|f| f.len() == 4 && f[2] == "JAVA")
        .collect();
    assert_eq!(clients_of_group.len(), 1, "{}", conn.stdout);
    let client_id = clients_of_group[0][0].clone();
    assert!(client_id.contains(&format!("@{group}_")), "{client_id}");
    assert!(clients_of_group[0][1].starts_with("127.0.0.1:"));
    assert_eq!(clients_of_group[0][3], "V4_9_8");
    assert_eq!(conn.row(&[&topic])[1..], ["*"]);
    for text in [
        "ConsumeType: CONSUME_PASSIVELY",
        "MessageModel: CLUSTERING",
        "ConsumeFromWhere: CONSUME_FROM_FIRST_OFFSET",
    ] {
        conn.assert_has(text);
    }

    let producers = p.ok(&["producerConnection", "-g", &producer_group, "-t", &topic]);
    let row = producers.row(&["0001"]);
    assert!(row[1].contains(&format!("@{producer_group}_")), "{row:?}");
    assert!(row[2].starts_with("127.0.0.1:"), "{row:?}");
    assert_eq!(row[3..], ["JAVA", "V4_9_8"]);

    // consumerStatus asks the consumer itself, through the broker.
    let status = p.ok(&["consumerStatus", "-g", &group, "-i", &client_id]);
    assert_eq!(status.kv("consumerGroup", ':'), group);
    assert_eq!(status.kv("messageModel", ':'), "CLUSTERING");
    for q in 0..4 {
        // The #Consumer Offset# table; #Consumer MQ Detail# rows start alike but run on.
        let offsets: Vec<Vec<String>> = status
            .rows(&[&topic, BROKER_NAME, &q.to_string()])
            .into_iter()
            .filter(|r| r.len() == 4)
            .collect();
        assert_eq!(
            offsets,
            [vec![
                topic.clone(),
                BROKER_NAME.into(),
                q.to_string(),
                per_queue(q)
            ]],
            "#Consumer Offset# of queue {q}\n{}",
            status.stdout
        );
    }
    // Without -i it writes each client's report under the working directory.
    let cwd = tempfile::tempdir().unwrap();
    let printed = mqadmin_in(
        cwd.path(),
        &["consumerStatus", "-g", &group, "-n", &p.namesrv],
    );
    assert!(!printed.contains("Exception"), "{printed}");
    for text in [
        "Same subscription in the same group of consumer",
        "Rebalance OK",
        client_id.as_str(),
    ] {
        assert!(
            printed.contains(text),
            "consumerStatus should print {text:?}\n{printed}"
        );
    }

    let topic_status = p.ok(&["topicStatus", "-t", &topic]);
    for q in 0..4 {
        assert_eq!(
            topic_status.row(&[BROKER_NAME, &q.to_string()])[2..4],
            ["0".to_owned(), per_queue(q)],
            "{}",
            topic_status.stdout
        );
    }

    // The message queries, each for a different message.
    let mut tag_lines = Vec::new();
    let check_message = |out: &Output, i: usize| {
        let s = &sent[i];
        assert_eq!(out.field("Topic:"), topic, "{}", out.stdout);
        assert_eq!(out.field("Keys:"), format!("[key-{i}]"), "{}", out.stdout);
        assert_eq!(out.field("Queue ID:"), s.queue_id.to_string());
        assert_eq!(out.field("Queue Offset:"), s.queue_offset.to_string());
        assert_eq!(out.field("Store Host:"), p.broker);
        assert!(
            out.field("Properties:")
                .contains(&format!("UNIQ_KEY={}", s.msg_id)),
            "{}",
            out.stdout
        );
        // mqadmin writes the body to a file and prints its path.
        let path = out.field("Message Body Path:");
        let body = std::fs::read_to_string(&path).expect("the body file mqadmin wrote");
        let _ = std::fs::remove_file(&path);
        assert_eq!(body, format!("body-{i}"), "{path}");
        out.assert_has(&format!(
            "MessageTrack [consumerGroup={group}, trackType=CONSUMED"
        ));
        out.field("Tags:")
    };

    let by_id = p.ok(&["queryMsgById", "-i", &sent[1].offset_msg_id]);
    assert_eq!(by_id.field("OffsetID:"), sent[1].offset_msg_id);
    tag_lines.push(("queryMsgById", check_message(&by_id, 1)));

    let by_key = p.ok(&["queryMsgByKey", "-t", &topic, "-k", "key-3"]);
    assert_eq!(
        by_key.row(&[&sent[3].msg_id])[1..],
        [
            sent[3].queue_id.to_string(),
            sent[3].queue_offset.to_string()
        ],
        "queryMsgByKey\n{}",
        by_key.stdout
    );
    assert_eq!(
        by_key
            .stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count(),
        2,
        "header and one message\n{}",
        by_key.stdout
    );

    let s = &sent[5];
    let by_offset = p.ok(&[
        "queryMsgByOffset",
        "-t",
        &topic,
        "-b",
        BROKER_NAME,
        "-i",
        &s.queue_id.to_string(),
        "-o",
        &s.queue_offset.to_string(),
    ]);
    assert_eq!(by_offset.field("OffsetID:"), s.offset_msg_id);
    tag_lines.push(("queryMsgByOffset", check_message(&by_offset, 5)));

    let by_unique = p.ok(&["queryMsgByUniqueKey", "-t", &topic, "-i", &sent[6].msg_id]);
    tag_lines.push(("queryMsgByUniqueKey", check_message(&by_unique, 6)));

    // With a group and a client: the broker relays CONSUME_MESSAGE_DIRECTLY to the consumer.
    let direct = p.ok(&[
        "queryMsgByUniqueKey",
        "-t",
        &topic,
        "-i",
        &sent[6].msg_id,
        "-g",
        &group,
        "-d",
        &client_id,
    ]);
    direct.assert_has("consumeResult=CR_SUCCESS");
    clients.wait_for("body-6 consumed directly", |l| {
        l.iter().filter(|l| *l == "CONSUMED body-6").count() >= 2
    });

    let print = p.ok(&["printMsg", "-t", &topic]);
    for (i, s) in sent.iter().enumerate() {
        let line = print
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("MSGID: {} ", s.msg_id)))
            .unwrap_or_else(|| panic!("printMsg has no message {i}\n{}", print.stdout));
        assert!(line.ends_with(&format!("BODY: body-{i}")), "{line}");
        assert!(line.contains(&format!("KEYS=key-{i}")), "{line}");
        assert!(line.contains(&format!("queueId={}", s.queue_id)), "{line}");
        assert!(
            line.contains(&format!("queueOffset={}", s.queue_offset)),
            "{line}"
        );
        assert!(
            line.contains(&format!("msgId={}", s.offset_msg_id)),
            "{line}"
        );
    }
    for q in 0..4 {
        print.assert_has(&format!(
            "minOffset=0, maxOffset={}, MessageQueue [topic={topic}, brokerName={BROKER_NAME}, queueId={q}]",
            per_queue(q)
        ));
    }

    let cloned = p.ok(&["cloneGroupOffset", "-s", &group, "-d", &clone, "-t", &topic]);
    cloned.assert_has(&format!(
        "clone group offset success. srcGroup[{group}], destGroup=[{clone}], topic[{topic}]"
    ));
    // statsAll lists every group holding offsets on the topic with its backlog (the clone
    // has the source's offsets: nothing to consume) and the topic's puts (VIEW_BROKER_STATS_DATA
    // TOPIC_PUT_NUMS: all 8 within 24 hours). A group's gets (GROUP_GET_NUMS) are not
    // counted; mqadmin swallows that answer and prints 0.
    let stats = p.ok(&["statsAll", "-t", &topic]);
    stats.assert_has("#Accumulation");
    for g in [&group, &clone] {
        let row = stats.row(&[&topic, g]);
        assert_eq!(row[2], "0", "accumulation of {g}\n{}", stats.stdout);
        assert_eq!(
            row[4..],
            ["0.00", &COUNT.to_string(), "0"],
            "{}",
            stats.stdout
        );
        let in_tps: f64 = row[3].parse().unwrap();
        assert!(
            in_tps <= (COUNT as f64 / 60.0) + 0.005,
            "InTPS over the last minute {in_tps}\n{}",
            stats.stdout
        );
    }
    // -a: only topics with puts in the last 24 hours; the system topics have none but the
    // broker's own trace, which recorded the deliveries.
    let active = p.ok(&["statsAll", "-a"]);
    let topics: Vec<String> = active
        .stdout
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    let trace_topic = petrel_common::trace::BROKER_TRACE_TOPIC.to_owned();
    assert!(topics.contains(&trace_topic), "{}", active.stdout);
    let user_topics: Vec<&String> = topics.iter().filter(|t| **t != trace_topic).collect();
    assert_eq!(user_topics, [&topic, &topic], "{}", active.stdout);
    let stats_all = p.ok(&["statsAll"]);
    assert_eq!(stats_all.rows(&[&topic]).len(), 2, "{}", stats_all.stdout);

    // resetOffsetByTime to before the first send: every queue back to 0, and the live
    // consumer gets every message again.
    let delivered = clients.deliveries();
    let reset = p.ok(&[
        "resetOffsetByTime",
        "-g",
        &group,
        "-t",
        &topic,
        "-s",
        &before_sends.to_string(),
    ]);
    reset.assert_has(&format!(
        "rollback consumer offset by specified group[{group}], topic[{topic}], force[true]"
    ));
    let mut queues: Vec<Vec<String>> = reset.rows(&[BROKER_NAME]);
    queues.sort();
    assert_eq!(
        queues,
        (0..4)
            .map(|q| vec![BROKER_NAME.to_owned(), q.to_string(), "0".to_owned()])
            .collect::<Vec<_>>(),
        "{}",
        reset.stdout
    );
    let want: Vec<(String, usize)> = (0..COUNT)
        .map(|i| {
            let body = format!("body-{i}");
            let n = delivered.get(&body).copied().unwrap_or(0);
            (body, n)
        })
        .collect();
    clients.wait_for("every message again after the reset", move |lines| {
        want.iter().all(|(body, n)| {
            lines
                .iter()
                .filter(|l| l.strip_prefix("CONSUMED ") == Some(body.as_str()))
                .count()
                > *n
        })
    });

    // Tags as the producer set them (kept for last: the broker used to glue its own
    // properties onto the last one the 4.9.x producer sends).
    for (command, tags) in tag_lines {
        assert_eq!(tags, "[TagA]", "Tags: printed by {command}");
    }
}
