//! Running the official RocketMQ 5.x Java client (Maven `rocketmq-client-java`, gRPC) in a
//! test: the programs under `compat/java5`, built by `compat/build.sh java5` from Maven
//! Central (once per test binary; `.ci/run` builds them beforehand while cargo compiles).

use std::process::Command;
use std::sync::OnceLock;

use crate::grpc::{self, Setup, Target};
use crate::process::{self, ProgramRun};

/// The classpath of the scenario classes and the client's jar, building them first if needed.
pub fn classpath() -> &'static str {
    static CLASSPATH: OnceLock<String> = OnceLock::new();
    CLASSPATH.get_or_init(|| {
        let java5 = process::build_compat("java5").join("java5/target");
        let deps = std::fs::read_to_string(java5.join("classpath.txt"))
            .expect("compat/java5/target/classpath.txt after the build");
        format!("{}:{}", java5.join("classes").display(), deps.trim())
    })
}

/// Runs the scenario `name` (`Class.method` of `compat/java5`) against `target`, plus `extra`
/// options (`key=value`). The client logs to `rocketmq.log.root`, a directory of its own,
/// whose log's end is added to stderr (shown when the test fails).
pub fn scenario(name: &str, target: &Target, extra: &[(&str, String)]) -> ProgramRun {
    let logs = tempfile::tempdir().expect("a temporary directory for client logs");
    let mut cmd = Command::new("java");
    cmd.arg("-Xms64m")
        .arg("-Xmx512m")
        .arg("-XX:+UseSerialGC")
        .arg("-XX:TieredStopAtLevel=1")
        .arg(format!("-Drocketmq.log.root={}", logs.path().display()))
        .arg("-Drocketmq.log.level=INFO")
        .arg(format!("-Duser.home={}", logs.path().display()))
        .arg("-cp")
        .arg(classpath())
        .arg("petrel.compat5.Main")
        .arg(name)
        .args(target.args())
        .args(extra.iter().map(|(k, v)| format!("{k}={v}")));
    let mut run = process::run(cmd);
    run.stderr.push_str(&grpc::log_tail(
        &logs.path().join("rocketmq-client.log"),
        200,
    ));
    run
}

/// Starts a fresh Petrel with what `setup` says created, runs the scenario `name` against its
/// gRPC endpoint and panics with the program's output unless it ran to its end.
pub fn scenario_on_fresh_petrel(name: &str, setup: &Setup, extra: &[(&str, String)]) -> ProgramRun {
    // Built before Petrel starts, so a first build's minutes are not spent with it running.
    classpath();
    grpc::run_scenario(name, setup, |target| scenario(name, target, extra))
}
