//! Running the official Apache RocketMQ Go client (`github.com/apache/rocketmq-client-go/v2`,
//! remoting protocol) in a test: the program under `compat/go`, built by `compat/build.sh go`
//! from the Go module proxy at the versions its go.sum pins (once per test binary; `.ci/run`
//! builds it beforehand while cargo compiles).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use petrel::standalone::StandaloneConfig;

/// Longest a scenario may run before it is killed and the test fails. The retry scenario
/// alone waits up to ~50 s for the client's periodic route lookup and rebalance.
pub const SCENARIO_TIMEOUT: Duration = Duration::from_secs(180);

/// What the Go program printed, and whether it passed.
#[derive(Debug)]
pub struct GoRun {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl GoRun {
    /// The value of a `RESULT key=value` line (up to the next space).
    pub fn result(&self, key: &str) -> Option<&str> {
        let prefix = format!("{key}=");
        self.stdout
            .lines()
            .filter_map(|l| l.strip_prefix("RESULT "))
            .flat_map(|l| l.split(' '))
            .find_map(|kv| kv.strip_prefix(prefix.as_str()))
    }

    /// Panics with everything the program printed unless it passed.
    pub fn assert_passed(&self, what: &str) -> &Self {
        assert!(
            self.success,
            "{what} failed\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// The scenario program, building it first if needed.
pub fn program() -> &'static Path {
    static PROGRAM: OnceLock<PathBuf> = OnceLock::new();
    PROGRAM.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("tests/ is inside the workspace")
            .join("compat");
        let status = Command::new("bash")
            .arg(dir.join("build.sh"))
            .arg("go")
            .status()
            .expect("bash runs compat/build.sh");
        assert!(status.success(), "compat/build.sh go failed: {status}");
        let program = dir.join("go/target/petrel-compat-go");
        assert!(program.is_file(), "{} after the build", program.display());
        program
    })
}

/// Runs the scenario `name` against the name server `namesrv` and the broker `broker` (the Go
/// admin creates topics there), with `run` naming its topics and groups, plus `extra`
/// options (`key=value`); kills it after [`SCENARIO_TIMEOUT`].
pub fn scenario(
    name: &str,
    namesrv: &str,
    broker: &str,
    run: &str,
    extra: &[(&str, String)],
) -> GoRun {
    // The client keeps nothing on disk in these scenarios (clustering offsets live at the
    // broker); a home of its own keeps it so if that changes.
    let home = tempfile::tempdir().expect("a temporary home for the client");
    let mut child = Command::new(program())
        .arg(name)
        .arg(format!("namesrv={namesrv}"))
        .arg(format!("broker={broker}"))
        .arg(format!("run={run}"))
        .args(extra.iter().map(|(k, v)| format!("{k}={v}")))
        .env("HOME", home.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("petrel-compat-go starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || read_all(stdout));
    let err = std::thread::spawn(move || read_all(stderr));
    let deadline = Instant::now() + SCENARIO_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for petrel-compat-go") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = err.join().expect("stderr reader");
    if status.is_none() {
        stderr.push_str(&format!("\n(killed after {SCENARIO_TIMEOUT:?})"));
    }
    GoRun {
        success: status.is_some_and(|s| s.success()),
        stdout: out.join().expect("stdout reader"),
        stderr,
    }
}

fn read_all(mut r: impl std::io::Read) -> String {
    let mut buf = Vec::new();
    let _ = r.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// Starts a fresh Petrel standalone on loopback, runs the scenario `name` against it and
/// panics with the program's output unless it passed.
pub fn scenario_on_fresh_petrel(name: &str, extra: &[(&str, String)]) -> GoRun {
    let dir = tempfile::tempdir().expect("a data directory");
    scenario_on(StandaloneConfig::ephemeral(dir.path()), name, extra)
}

/// [`scenario_on_fresh_petrel`] with Petrel started from `config` (short delay levels, ...).
pub fn scenario_on(config: StandaloneConfig, name: &str, extra: &[(&str, String)]) -> GoRun {
    // Built before Petrel starts, so a first build's minutes are not spent with it running.
    program();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime for Petrel");
    let petrel = rt
        .block_on(crate::Standalone::start_with(config))
        .expect("Petrel starts");
    let run = scenario(
        name,
        &petrel.namesrv_addr,
        &petrel.broker_addr,
        &crate::java::unique_run_name(),
        extra,
    );
    rt.block_on(petrel.shutdown()).expect("Petrel stops");
    run.assert_passed(name);
    run
}
