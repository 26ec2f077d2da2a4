//! Running the official Apache RocketMQ Go client (`github.com/apache/rocketmq-client-go/v2`,
//! remoting protocol) in a test: the program under `compat/go`, built by `compat/build.sh go`
//! from the Go module proxy at the versions its go.sum pins (once per test binary; `.ci/run`
//! builds it beforehand while cargo compiles).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use petrel::standalone::StandaloneConfig;

use crate::process::{self, ProgramRun};

/// The scenario program, building it first if needed.
pub fn program() -> &'static Path {
    static PROGRAM: OnceLock<PathBuf> = OnceLock::new();
    PROGRAM.get_or_init(|| {
        let dir = process::build_compat("go");
        let program = dir.join("go/target/petrel-compat-go");
        assert!(program.is_file(), "{} after the build", program.display());
        program
    })
}

/// Runs the scenario `name` against the name server `namesrv` and the broker `broker` (the Go
/// admin creates topics there), with `run` naming its topics and groups, plus `extra`
/// options (`key=value`); kills it after [`process::SCENARIO_TIMEOUT`].
pub fn scenario(
    name: &str,
    namesrv: &str,
    broker: &str,
    run: &str,
    extra: &[(&str, String)],
) -> ProgramRun {
    // The client keeps nothing on disk in these scenarios (clustering offsets live at the
    // broker); a home of its own keeps it so if that changes.
    let home = tempfile::tempdir().expect("a temporary home for the client");
    let mut cmd = Command::new(program());
    cmd.arg(name)
        .arg(format!("namesrv={namesrv}"))
        .arg(format!("broker={broker}"))
        .arg(format!("run={run}"))
        .args(extra.iter().map(|(k, v)| format!("{k}={v}")))
        .env("HOME", home.path());
    process::run(cmd)
}

/// Starts a fresh Petrel standalone on loopback, runs the scenario `name` against it and
/// panics with the program's output unless it passed.
pub fn scenario_on_fresh_petrel(name: &str, extra: &[(&str, String)]) -> ProgramRun {
    let dir = tempfile::tempdir().expect("a data directory");
    scenario_on(StandaloneConfig::ephemeral(dir.path()), name, extra)
}

/// [`scenario_on_fresh_petrel`] with Petrel started from `config` (short delay levels, ...).
pub fn scenario_on(config: StandaloneConfig, name: &str, extra: &[(&str, String)]) -> ProgramRun {
    // Built before Petrel starts, so a first build's minutes are not spent with it running.
    program();
    process::run_against_petrel(config, name, |petrel| {
        scenario(
            name,
            &petrel.namesrv_addr,
            &petrel.broker_addr,
            &crate::java::unique_run_name(),
            extra,
        )
    })
}
