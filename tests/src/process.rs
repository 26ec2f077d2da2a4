//! Running a program of `compat/` (a Java or Go client driver) as a child process: its output
//! gathered, and killed at a deadline so a hung client fails its test instead of the run.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Longest a scenario may run before it is killed and the test fails. The slowest ones wait
/// up to ~50 s for a client's periodic route lookup and rebalance.
pub const SCENARIO_TIMEOUT: Duration = Duration::from_secs(180);

/// Set by `.ci/run` once it has built every part of `compat/`: the tests then use the build as
/// it is instead of running `compat/build.sh` again in each test binary.
pub const PREBUILT_ENV: &str = "PETREL_COMPAT_PREBUILT";

/// The `compat/` directory, with `part` (`java`, `go`) built by `compat/build.sh` unless
/// `.ci/run` built everything already.
pub fn build_compat(part: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .join("compat");
    if std::env::var_os(PREBUILT_ENV).is_none() {
        let status = Command::new("bash")
            .arg(dir.join("build.sh"))
            .arg(part)
            .status()
            .expect("bash runs compat/build.sh");
        assert!(status.success(), "compat/build.sh {part} failed: {status}");
    }
    dir
}

/// Starts Petrel from `config` on a runtime of its own, runs `program` against it (a blocking
/// child process), stops Petrel, and panics with the program's output unless it passed.
pub fn run_against_petrel(
    config: petrel::standalone::StandaloneConfig,
    what: &str,
    program: impl FnOnce(&crate::Standalone) -> ProgramRun,
) -> ProgramRun {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime for Petrel");
    let petrel = rt
        .block_on(crate::Standalone::start_with(config))
        .expect("Petrel starts");
    let run = program(&petrel);
    rt.block_on(petrel.shutdown()).expect("Petrel stops");
    run.assert_passed(what);
    run
}

/// What a program printed, and whether it passed.
#[derive(Debug)]
pub struct ProgramRun {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

impl ProgramRun {
    /// The value of a `RESULT key=value` line (one fact a line; the value runs to its end).
    pub fn result(&self, key: &str) -> Option<&str> {
        let prefix = format!("RESULT {key}=");
        self.stdout
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
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

/// Runs `cmd` with its output piped, killing it after [`SCENARIO_TIMEOUT`].
pub fn run(mut cmd: Command) -> ProgramRun {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?} does not start: {e}"));
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let out = std::thread::spawn(move || read_all(stdout));
    let err = std::thread::spawn(move || read_all(stderr));
    let status = wait_until(&mut child, Instant::now() + SCENARIO_TIMEOUT);
    finished(
        status,
        out.join().expect("stdout reader"),
        err.join().expect("stderr reader"),
    )
}

/// Waits for `child` to end, killing it at `deadline`; `None` if it was killed.
pub(crate) fn wait_until(child: &mut Child, deadline: Instant) -> Option<std::process::ExitStatus> {
    loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The run of a program that ended with `status` (`None`: killed at its deadline).
pub(crate) fn finished(
    status: Option<std::process::ExitStatus>,
    stdout: String,
    mut stderr: String,
) -> ProgramRun {
    if status.is_none() {
        stderr.push_str(&format!("\n(killed after {SCENARIO_TIMEOUT:?})"));
    }
    ProgramRun {
        success: status.is_some_and(|s| s.success()),
        stdout,
        stderr,
    }
}

pub(crate) fn read_all(mut r: impl std::io::Read) -> String {
    let mut buf = Vec::new();
    let _ = r.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}
