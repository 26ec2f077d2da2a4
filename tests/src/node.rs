//! Running the official RocketMQ 5.x Node.js client (npm `rocketmq-client-nodejs`, gRPC) in a
//! test: `compat/node/scenario.js` with the packages that `compat/build.sh node` installs
//! (once per test binary; `.ci/run` installs them beforehand while cargo compiles).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use crate::grpc::{self, Setup, Target};
use crate::process::{self, ProgramRun};

/// `compat/node`, with its packages installed first if needed.
fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = process::build_compat("node").join("node");
        let client = dir.join("node_modules/rocketmq-client-nodejs/package.json");
        assert!(client.is_file(), "{} after the build", client.display());
        dir
    })
}

/// Runs the scenario `name` against `target`, plus `extra` options (`key=value`). The
/// scenario hands the client a logger that writes to stderr; a home of its own keeps anything
/// else the client might write.
pub fn scenario(name: &str, target: &Target, extra: &[(&str, String)]) -> ProgramRun {
    let home = tempfile::tempdir().expect("a temporary home for the client");
    let mut cmd = Command::new("node");
    cmd.arg(dir().join("scenario.js"))
        .arg(name)
        .args(target.args())
        .args(extra.iter().map(|(k, v)| format!("{k}={v}")))
        .env("HOME", home.path());
    process::run(cmd)
}

/// Starts a fresh Petrel with what `setup` says created, runs the scenario `name` against its
/// gRPC endpoint and panics with the program's output unless it ran to its end.
pub fn scenario_on_fresh_petrel(name: &str, setup: &Setup, extra: &[(&str, String)]) -> ProgramRun {
    // Installed before Petrel starts, so a first install's seconds are not spent with it running.
    dir();
    grpc::run_scenario(name, setup, |target| scenario(name, target, extra))
}
