//! The real `petrel standalone` binary as a child process: start it on free loopback ports (read
//! back from its "is up" log line), stop it with a signal or kill it, and talk to it with our
//! client. Shared by the process-level tests; never touches the store in-process.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use petrel_client::admin::Admin;
use petrel_client::{ClientConfig, MessageExt, MessageQueue, PullConsumer, PullStatus};

/// How long a start (recovery included) may take on a loaded 2-core machine.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a signalled broker may take to flush and exit.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the name server may take to show a topic's route.
const ROUTE_TIMEOUT: Duration = Duration::from_secs(15);
/// Messages asked for per pull while reading a queue back.
const PULL_BATCH_MESSAGES: i32 = 32;
/// Bound on pulls per queue read, so a broker that never answers "no new message" fails the test.
const MAX_PULLS_PER_QUEUE: usize = 100_000;
/// Per-request bound of the test clients.
pub const CLIENT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The marker a running store keeps in its data directory.
pub fn abort_marker(data: &Path) -> PathBuf {
    data.join("abort")
}

/// A running `petrel standalone`. Dropping it kills the process.
pub struct Petrel {
    child: Child,
    pub namesrv: String,
    pub broker: String,
    /// The HTTP address (`/metrics`, `/health`, the dashboard), or `off`.
    pub metrics: String,
    stderr: Arc<Mutex<String>>,
}

impl Petrel {
    /// Starts `petrel standalone --data <data> --flush <flush>` on free loopback ports and waits
    /// for its "is up" line.
    pub fn start(data: &Path, flush: &str) -> Petrel {
        Self::start_with(data, flush, &[])
    }

    /// [`Petrel::start`] with more `petrel standalone` arguments (`--config FILE`, …).
    pub fn start_with(data: &Path, flush: &str, extra: &[&std::ffi::OsStr]) -> Petrel {
        let mut args: Vec<&std::ffi::OsStr> = vec!["standalone".as_ref(), "--data".as_ref()];
        args.push(data.as_os_str());
        for a in [
            "--namesrv-listen",
            "127.0.0.1:0",
            "--broker-listen",
            "127.0.0.1:0",
            "--flush",
            flush,
        ] {
            args.push(a.as_ref());
        }
        args.extend_from_slice(extra);
        let (child, line, stderr) = spawn_until(&args, "petrel standalone is up");
        let namesrv = field(&line, "namesrv").expect("namesrv= in the up line");
        let broker = field(&line, "broker").expect("broker= in the up line");
        let metrics = field(&line, "metrics").expect("metrics= in the up line");
        Petrel {
            child,
            namesrv,
            broker,
            metrics,
            stderr,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (`INT`, `TERM`) with kill(1) and waits for the exit.
    pub async fn stop_with(mut self, signal: &str) -> ExitStatus {
        let sent = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("cannot run kill");
        assert!(sent.success(), "kill -{signal} failed");
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for petrel") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "petrel did not exit within {STOP_TIMEOUT:?} of SIG{signal}; stderr:\n{}",
                self.stderr.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL, then reaps the process.
    pub fn kill_9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaping petrel");
    }

    pub fn client_config(&self, instance_name: &str) -> ClientConfig {
        let mut config = ClientConfig::new(self.namesrv.clone()).with_instance_name(instance_name);
        config.request_timeout = CLIENT_REQUEST_TIMEOUT;
        config
    }

    /// Creates `topic` with `queues` queues and waits until the name server routes it.
    pub async fn create_topic(&self, topic: &str, queues: i32) {
        let admin = Admin::new(self.client_config("petrel-test-admin"));
        admin
            .create_topic(&self.broker, topic, queues)
            .await
            .expect("create topic");
        admin.instance().shutdown();
        self.wait_for_route(topic, queues as usize).await;
    }

    /// Waits until the name server gives `topic` `queues` readable queues.
    pub async fn wait_for_route(&self, topic: &str, queues: usize) {
        let consumer = PullConsumer::new("petrel_test_route", self.client_config("route"));
        consumer.start().await.expect("start pull consumer");
        let deadline = Instant::now() + ROUTE_TIMEOUT;
        loop {
            match consumer.fetch_queues(topic).await {
                Ok(q) if q.len() == queues => break,
                other => assert!(
                    Instant::now() < deadline,
                    "no route of {queues} queues for {topic} within {ROUTE_TIMEOUT:?}: {other:?}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        consumer.shutdown().await;
    }
}

impl Drop for Petrel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every message of every queue of `topic`, read from offset 0, keyed by queue id. Asserts that
/// each queue's offsets run contiguously from 0 to its max offset.
pub async fn read_topic(petrel: &Petrel, topic: &str) -> BTreeMap<i32, Vec<MessageExt>> {
    read_topic_with(petrel.client_config("reader"), topic).await
}

/// [`read_topic`] through the name servers of `config`.
pub async fn read_topic_with(config: ClientConfig, topic: &str) -> BTreeMap<i32, Vec<MessageExt>> {
    let consumer = PullConsumer::new("petrel_test_reader", config);
    consumer.start().await.expect("start pull consumer");
    let queues = consumer.fetch_queues(topic).await.expect("route of topic");
    let mut all = BTreeMap::new();
    for mq in queues {
        let messages = read_queue(&consumer, &mq).await;
        all.insert(mq.queue_id, messages);
    }
    consumer.shutdown().await;
    all
}

async fn read_queue(consumer: &PullConsumer, mq: &MessageQueue) -> Vec<MessageExt> {
    let max = consumer.max_offset(mq).await.expect("max offset");
    let mut messages = Vec::new();
    let mut next = 0i64;
    for _ in 0..MAX_PULLS_PER_QUEUE {
        let r = consumer
            .pull(mq, next, PULL_BATCH_MESSAGES)
            .await
            .expect("pull");
        match r.status {
            PullStatus::Found(batch) => {
                assert!(
                    !batch.is_empty(),
                    "{mq:?}: FOUND with no messages at {next}"
                );
                for m in batch {
                    assert_eq!(
                        m.queue_offset, next,
                        "{mq:?}: queue offsets are not contiguous"
                    );
                    next += 1;
                    messages.push(m);
                }
                assert_eq!(r.next_begin_offset, next, "{mq:?}: next begin offset");
            }
            PullStatus::NoNewMsg => {
                assert_eq!(next, max, "{mq:?}: reading stopped short of the max offset");
                return messages;
            }
            other => panic!("{mq:?}: pull at {next} answered {other:?}"),
        }
    }
    panic!("{mq:?}: more than {MAX_PULLS_PER_QUEUE} pulls");
}

/// Runs the `petrel` binary with `args` and waits (at most [`START_TIMEOUT`]) for a stdout line
/// containing `marker`; returns the child, that line, and its stderr as it grows. Stdout keeps
/// being drained so the child's log writes never block. Panics with what it printed if the line
/// does not come.
pub fn spawn_until(args: &[&std::ffi::OsStr], marker: &str) -> (Child, String, Arc<Mutex<String>>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_petrel"))
        .args(args)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start the petrel binary");
    let stdout = child.stdout.take().expect("stdout is piped");
    let (lines_tx, lines_rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = lines_tx.send(strip_ansi(&line));
        }
    });
    let stderr = Arc::new(Mutex::new(String::new()));
    let mut stderr_pipe = child.stderr.take().expect("stderr is piped");
    let stderr_sink = Arc::clone(&stderr);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr_pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            stderr_sink
                .lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let deadline = Instant::now() + START_TIMEOUT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines_rx.recv_timeout(left) {
            // The reader thread goes on draining stdout after the receiver is gone.
            Ok(line) if line.contains(marker) => return (child, line, stderr),
            Ok(line) => seen.push(line),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                panic!(
                    "petrel {args:?} printed no {marker:?} within {START_TIMEOUT:?} (exit: {status:?})\nstdout:\n{}\nstderr:\n{}",
                    seen.join("\n"),
                    stderr.lock().unwrap()
                );
            }
        }
    }
}

/// The value of `name=` in a tracing fmt line.
pub fn field(line: &str, name: &str) -> Option<String> {
    let key = format!("{name}=");
    line.split_whitespace()
        .find_map(|token| token.strip_prefix(&key))
        .map(str::to_owned)
}

/// `line` without ANSI escape sequences (CSI: ESC '[' … final byte in '@'..='~').
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
