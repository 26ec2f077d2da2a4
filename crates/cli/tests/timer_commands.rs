//! The timer commands as a user runs them against the real `petrel standalone` binary:
//! `petrel send --delay/--deliver-at` asks for a delivery time (and refuses both at once), and a
//! small `petrel bench timer` run gets every timer back, none early, none twice.

#[allow(dead_code)] // each test binary uses part of the helpers
mod common;

use std::process::{Command, Output};
use std::time::Duration;

use common::{read_topic, Petrel};
use petrel_common::msg_id::now_ms;

/// How long two timers due within 2 s may take to show up on a loaded machine.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(20);

fn petrel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_petrel"))
        .args(args)
        .env("RUST_LOG", "warn")
        .env("NO_COLOR", "1")
        .output()
        .expect("cannot run the petrel binary")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn send_refuses_a_delay_and_a_delivery_time_together() {
    let out = petrel(&[
        "send",
        "--topic",
        "T",
        "--body",
        "x",
        "--deliver-at",
        "2026-12-24T18:00:00Z",
        "--delay",
        "10s",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("'--deliver-at <TIME>' cannot be used with '--delay <DURATION>'"),
        "{stderr}"
    );
    let out = petrel(&["send", "--topic", "T", "--body", "x", "--delay", "10"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("has no unit"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sent_timers_are_delivered_at_their_time_with_their_id() {
    let dir = tempfile::tempdir().expect("temp dir");
    let petrel_server = Petrel::start(&dir.path().join("data"), "async");
    let topic = "TimerCommands";
    petrel_server.create_topic(topic, 1).await;
    let before = now_ms() as i64;
    let at = before + 1_500;
    let at_text = petrel::time_arg::format_rfc3339(at);
    let delayed = petrel(&[
        "send",
        "--namesrv",
        &petrel_server.namesrv,
        "--topic",
        topic,
        "--body",
        "delayed",
        "--delay",
        "1s",
    ]);
    assert!(delayed.status.success(), "{}", text(&delayed.stderr));
    let at_sent = petrel(&[
        "send",
        "--namesrv",
        &petrel_server.namesrv,
        "--topic",
        topic,
        "--body",
        "at",
        "--deliver-at",
        &at_text,
    ]);
    assert!(at_sent.status.success(), "{}", text(&at_sent.stderr));
    let stdout = text(&at_sent.stdout);
    assert!(stdout.contains(&format!("deliverAt={at_text}")), "{stdout}");
    let msg_id = stdout
        .split_whitespace()
        .find_map(|w| w.strip_prefix("msgId="))
        .expect("msgId= in the send output")
        .to_owned();

    let deadline = std::time::Instant::now() + DELIVERY_TIMEOUT;
    let messages = loop {
        let messages: Vec<_> = read_topic(&petrel_server, topic)
            .await
            .into_values()
            .flatten()
            .collect();
        if messages.len() >= 2 || std::time::Instant::now() > deadline {
            break messages;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(messages.len(), 2, "{messages:?}");
    for m in &messages {
        let due = m
            .deliver_at_ms()
            .expect("TIMER_DELIVER_MS on the delivered message");
        assert!(m.store_timestamp >= due, "delivered early: {m:?}");
        match &m.body[..] {
            b"delayed" => assert!(due >= before + 1_000, "{m:?}"),
            b"at" => {
                assert_eq!(due, at);
                assert_eq!(m.msg_id(), msg_id);
            }
            other => panic!("unexpected body {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_timer_bench_gets_every_timer_back_none_early() {
    let dir = tempfile::tempdir().expect("temp dir");
    let petrel_server = Petrel::start(&dir.path().join("data"), "async");
    let pid = petrel_server.pid().to_string();
    let namesrv = petrel_server.namesrv.clone();
    let out = tokio::task::spawn_blocking(move || {
        petrel(&[
            "bench",
            "timer",
            "--namesrv",
            &namesrv,
            "--broker-pid",
            &pid,
            "--timers",
            "500",
            "--window",
            "2s",
            "--delay",
            "4s",
            "--in-flight",
            "32",
            "--grace",
            "20s",
        ])
    })
    .await
    .expect("bench thread");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("summary: "))
        .unwrap_or_else(|| panic!("no summary line in:\n{stdout}"));
    for fact in [
        "500 timers sent",
        "received 500/500",
        "0 duplicates",
        "0 missing",
        "0 early",
        "extra RssAnon",
    ] {
        assert!(summary.contains(fact), "`{fact}` not in: {summary}");
    }
    let row = stdout
        .lines()
        .find(|l| l.starts_with("| 500 |"))
        .unwrap_or_else(|| panic!("no table row in:\n{stdout}"));
    assert_eq!(row.matches('|').count(), 17, "{row}");
}
