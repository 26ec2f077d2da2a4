//! `petrel bench produce|consume` as a regression check: a run that misses `--min-tps` or
//! `--max-cpu-us` exits non-zero after its summary, naming what it missed; one that reaches them
//! exits 0. Short runs against the real `petrel standalone` binary.

#[allow(dead_code)] // each test binary uses part of the helpers
mod common;

use std::process::{Command, Output};

use common::Petrel;

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_petrel"))
        .arg("bench")
        .args(args)
        .env("RUST_LOG", "warn")
        .env("NO_COLOR", "1")
        .output()
        .expect("cannot run the petrel binary")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_below_its_expectations_fails_and_one_that_meets_them_passes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let petrel = Petrel::start(&dir.path().join("data"), "async");
    let pid = petrel.pid().to_string();
    let ns = petrel.namesrv.as_str();
    let produce = |extra: &[&str]| {
        let mut args = vec![
            "produce",
            "--namesrv",
            ns,
            "--topic",
            "BenchExpect",
            "--threads",
            "4",
            "--duration",
            "2",
            "--interval",
            "1",
        ];
        args.extend_from_slice(extra);
        bench(&args)
    };

    let met = produce(&[
        "--min-tps",
        "1",
        "--broker-pid",
        &pid,
        "--max-cpu-us",
        "1000000",
    ]);
    let (stdout, stderr) = text(&met);
    assert!(met.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("summary: tps"), "{stdout}");
    assert!(stdout.contains("µs per message"), "{stdout}");

    let slow = produce(&["--min-tps", "1000000000"]);
    let (stdout, stderr) = text(&slow);
    assert!(!slow.status.success(), "{stdout}");
    assert!(
        stdout.contains("summary: tps"),
        "the summary comes first: {stdout}"
    );
    assert!(
        stderr.contains("bench produce:") && stderr.contains("is below --min-tps 1000000000"),
        "{stderr}"
    );

    let costly = produce(&["--broker-pid", &pid, "--max-cpu-us", "0.000001"]);
    let (stdout, stderr) = text(&costly);
    assert!(!costly.status.success(), "{stdout}");
    assert!(
        stderr.contains("of broker CPU per message is above --max-cpu-us 0.000001"),
        "{stderr}"
    );

    let no_pid = produce(&["--max-cpu-us", "5"]);
    assert!(!no_pid.status.success());
    assert!(
        text(&no_pid).1.contains("--broker-pid"),
        "{}",
        text(&no_pid).1
    );

    // The drain of what the runs sent: far below an impossible rate, and fine against 1 msg/s.
    let consume = |group: &str, min: &str| {
        bench(&[
            "consume",
            "--namesrv",
            ns,
            "--topic",
            "BenchExpect",
            "--group",
            group,
            "--duration",
            "3",
            "--interval",
            "1",
            "--broker-pid",
            &pid,
            "--min-tps",
            min,
        ])
    };
    let drained = consume("bench_expect_ok", "1");
    let (stdout, stderr) = text(&drained);
    assert!(drained.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("µs per message"), "{stdout}");
    let too_slow = consume("bench_expect_slow", "1000000000000");
    let (stdout, stderr) = text(&too_slow);
    assert!(!too_slow.status.success(), "{stdout}");
    assert!(
        stderr.contains("bench consume:") && stderr.contains("below --min-tps"),
        "{stderr}"
    );
}
