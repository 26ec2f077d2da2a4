//! Running the official RocketMQ 5.x Python client (PyPI `rocketmq-python-client`, gRPC) in a
//! test: `compat/python/scenario.py` in the venv that `compat/build.sh python` installs
//! (once per test binary; `.ci/run` installs it beforehand while cargo compiles).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use crate::grpc::{self, Setup, Target};
use crate::process::{self, ProgramRun};

/// `compat/python`, with its venv installed first if needed.
fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = process::build_compat("python").join("python");
        let python = dir.join("target/venv/bin/python");
        assert!(python.is_file(), "{} after the build", python.display());
        dir
    })
}

/// Runs the scenario `name` against `target`, plus `extra` options (`key=value`). The
/// client logs to `~/logs/rocketmq_python/`; a home of its own keeps that log, whose end is
/// added to stderr (shown when the test fails).
pub fn scenario(name: &str, target: &Target, extra: &[(&str, String)]) -> ProgramRun {
    let home = tempfile::tempdir().expect("a temporary home for the client");
    let mut cmd = Command::new(dir().join("target/venv/bin/python"));
    cmd.arg(dir().join("scenario.py"))
        .arg(name)
        .args(target.args())
        .args(extra.iter().map(|(k, v)| format!("{k}={v}")))
        .env("HOME", home.path())
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let mut run = process::run(cmd);
    let log = home.path().join("logs/rocketmq_python/rocketmq_client.log");
    run.stderr.push_str(&grpc::log_tail(&log, 200));
    run
}

/// Starts a fresh Petrel with what `setup` says created, runs the scenario `name` against its
/// gRPC endpoint and panics with the program's output unless it ran to its end.
pub fn scenario_on_fresh_petrel(name: &str, setup: &Setup, extra: &[(&str, String)]) -> ProgramRun {
    // Installed before Petrel starts, so a first install's seconds are not spent with it running.
    dir();
    grpc::run_scenario(name, setup, |target| scenario(name, target, extra))
}
