//! The web dashboard end to end: a real `petrel standalone`, the page in headless Chromium driven
//! by Playwright (`tests/dashboard/e2e.mjs`), and our own client for what a page cannot do: a
//! producer that makes a backlog and a real push consumer that drains it while the page watches.
//! The script asks for those with `@@ <request> <args>` lines on its stdout and waits for
//! `ok <request>` on its stdin. Screenshots go to `target/dashboard-screenshots/`, or to
//! `docs/dashboard/` with `PETREL_UPDATE_SCREENSHOTS=1`.

#[allow(dead_code)] // each test binary uses part of the helpers
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Petrel;
use petrel_client::{ConsumeFromWhere, ConsumeStatus, Message, Producer, PushConsumer};

/// Topics in the broker's metadata before it starts (as a broker that has run for years would
/// load them), for the script's page-load measurement of the Topics page.
const SEEDED_TOPICS: usize = 10_000;
/// The whole script: every page, a backlog drained twice, the Topics page loaded five times.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(600);
/// The producer group the script looks up on the Producers page.
const PRODUCER_GROUP: &str = "PetrelE2EProducer";
/// How long the consumer's listener takes per message, one message at a time, so a backlog of
/// 300 takes some 6 s and the page (refreshing every 2 s) sees the lag go down.
const CONSUME_DELAY_PER_MESSAGE: Duration = Duration::from_millis(20);
/// How often the consumer commits, so the page sees the lag move while it drains.
const OFFSET_COMMIT_INTERVAL: Duration = Duration::from_millis(500);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `npm ci` in tests/dashboard when playwright-core is not installed yet.
fn ensure_node_modules(dir: &Path) {
    if dir
        .join("node_modules/playwright-core/package.json")
        .exists()
    {
        return;
    }
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .output()
        .expect("cannot run npm (the dashboard test needs Node.js and npm)");
    assert!(
        out.status.success(),
        "npm ci in {} failed:\n{}\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes `<data>/config/topics.json` with `SEEDED_TOPICS` topics `LoadTopic00000`, ….
fn seed_topics(data: &Path) {
    let config = data.join("config");
    std::fs::create_dir_all(&config).expect("config directory");
    let mut table = serde_json::Map::new();
    for i in 0..SEEDED_TOPICS {
        let name = format!("LoadTopic{i:05}");
        table.insert(
            name.clone(),
            serde_json::json!({"topicName": name, "readQueueNums": 4, "writeQueueNums": 4,
                "perm": 6, "topicFilterType": "SINGLE_TAG", "topicSysFlag": 0, "order": false}),
        );
    }
    let topics = serde_json::json!({"topicConfigTable": table,
        "dataVersion": {"timestamp": 1, "counter": 1}});
    std::fs::write(config.join("topics.json"), topics.to_string()).expect("write topics.json");
}

fn screenshot_dir(root: &Path) -> PathBuf {
    if std::env::var("PETREL_UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        root.join("docs/dashboard")
    } else {
        root.join("target/dashboard-screenshots")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_pages_operate_a_real_standalone() {
    let root = repo_root();
    let e2e = root.join("tests/dashboard");
    ensure_node_modules(&e2e);
    let shots = screenshot_dir(&root);
    std::fs::create_dir_all(&shots).expect("screenshot directory");

    let data = tempfile::tempdir().unwrap();
    seed_topics(data.path());
    let petrel = Petrel::start_with(
        data.path(),
        "async",
        &["--metrics-listen".as_ref(), "127.0.0.1:0".as_ref()],
    );
    assert_ne!(petrel.metrics, "off", "the HTTP port must be on");
    let url = format!("http://{}/", petrel.metrics);

    let producer = Producer::new(PRODUCER_GROUP, petrel.client_config("e2e-producer"));
    producer.start().await.expect("start producer");
    let offsets = tempfile::tempdir().unwrap();
    let mut consumer: Option<PushConsumer> = None;

    let mut child = Command::new("node")
        .arg(e2e.join("e2e.mjs"))
        .arg(&url)
        .arg(&petrel.namesrv)
        .arg(&shots)
        .env("PETREL_E2E_PRODUCER_GROUP", PRODUCER_GROUP)
        .env("PETREL_E2E_TOPICS", SEEDED_TOPICS.to_string())
        .current_dir(&e2e)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run node (the dashboard test needs Node.js)");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let output = Arc::new(Mutex::new(String::new()));
    let (lines_tx, lines_rx) = mpsc::channel::<String>();
    let stdout = child.stdout.take().expect("stdout is piped");
    let stdout_sink = Arc::clone(&output);
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            stdout_sink.lock().unwrap().push_str(&format!("{line}\n"));
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut stderr_pipe = child.stderr.take().expect("stderr is piped");
    let stderr_sink = Arc::clone(&output);
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

    let deadline = Instant::now() + SCRIPT_TIMEOUT;
    loop {
        let line = match lines_rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if Instant::now() > deadline {
                    let _ = child.kill();
                    panic!(
                        "the dashboard script ran over {SCRIPT_TIMEOUT:?}:\n{}",
                        output.lock().unwrap()
                    );
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let Some(request) = line.strip_prefix("@@ ") else {
            continue;
        };
        let words: Vec<&str> = request.split_whitespace().collect();
        match words.as_slice() {
            ["backlog", topic, count] => {
                let count: usize = count.parse().expect("backlog count");
                for i in 0..count {
                    let msg = Message::new(*topic, format!("backlog message {i}"))
                        .with_tags("Backlog")
                        .with_keys(format!("backlog-{i}"));
                    producer.send(msg).await.expect("send backlog message");
                }
                // The broker lists a producer from its heartbeats; the first one at start knew
                // no broker yet, and the next is 30 s away.
                producer.instance().send_heartbeat_to_all_brokers().await;
            }
            ["start-consumer", group, topic] => {
                let mut c = PushConsumer::new(*group, petrel.client_config("e2e-consumer"));
                c.subscribe(topic, "*").expect("subscribe");
                c.set_consume_from(ConsumeFromWhere::FirstOffset);
                c.options.offset_commit_interval = OFFSET_COMMIT_INTERVAL;
                c.options.offset_store_dir = offsets.path().to_owned();
                // One batch at a time across the consume threads.
                let one_at_a_time = Arc::new(Mutex::new(()));
                c.register_listener(move |batch| {
                    let _turn = one_at_a_time.lock().unwrap();
                    std::thread::sleep(CONSUME_DELAY_PER_MESSAGE * batch.len() as u32);
                    ConsumeStatus::Success
                });
                c.start().await.expect("start push consumer");
                consumer = Some(c);
            }
            other => panic!("the dashboard script asked for {other:?}"),
        }
        writeln!(stdin, "ok {}", words[0]).expect("answer the script");
        stdin.flush().expect("answer the script");
    }
    let status = child.wait().expect("waiting for node");
    if let Some(c) = consumer {
        c.shutdown().await;
    }
    producer.shutdown().await;
    let output = output.lock().unwrap().clone();
    assert!(
        status.success(),
        "the dashboard end-to-end script failed ({status}):\n{output}"
    );
    assert!(
        output.contains("dashboard e2e: all steps passed"),
        "the script exited 0 without finishing:\n{output}"
    );
    println!("{output}");
}
