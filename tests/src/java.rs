//! Running the official Apache RocketMQ Java client (4.9.8) and mqadmin in a test: the
//! programs under `compat/java`, built by `compat/build.sh java` from Maven Central (once per
//! test binary; `.ci/run` builds them beforehand while cargo compiles). [`remoting5`] runs the
//! 5.x remoting client's programs the same way, on a classpath of their own.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use petrel::standalone::StandaloneConfig;

use crate::process::{self, read_all, ProgramRun, SCENARIO_TIMEOUT};

pub mod remoting5;

/// The classpath of the scenario classes and the official jars, building them first if needed.
pub fn classpath() -> &'static str {
    static CLASSPATH: OnceLock<String> = OnceLock::new();
    CLASSPATH.get_or_init(|| classpath_of("java"))
}

/// The classpath of the Maven part `compat/<part>` (its classes and the jars its
/// `target/classpath.txt` lists), built first by `compat/build.sh <part>`.
fn classpath_of(part: &str) -> String {
    let target = process::build_compat(part).join(part).join("target");
    let deps = std::fs::read_to_string(target.join("classpath.txt"))
        .unwrap_or_else(|e| panic!("compat/{part}/target/classpath.txt after the build: {e}"));
    format!("{}:{}", target.join("classes").display(), deps.trim())
}

/// `java -cp <classpath> <main> <args>` with the client's logs kept in `logs`, out of the home
/// directory.
fn java_command(classpath: &str, main: &str, args: &[String], logs: &Path) -> Command {
    let mut cmd = Command::new("java");
    cmd.arg("-Xms64m")
        .arg("-Xmx512m")
        .arg("-XX:+UseSerialGC")
        .arg("-XX:TieredStopAtLevel=1")
        .arg(format!("-Drocketmq.client.logRoot={}", logs.display()))
        .arg("-Drocketmq.client.logLevel=WARN")
        .arg(format!("-Duser.home={}", logs.display()))
        .arg("-cp")
        .arg(classpath)
        .arg(main)
        .args(args);
    cmd
}

/// Runs the Java program `main` to its end (killed after [`SCENARIO_TIMEOUT`]).
pub fn run_main(main: &str, args: &[String]) -> ProgramRun {
    let logs = tempfile::tempdir().expect("a temporary directory for client logs");
    process::run(java_command(classpath(), main, args, logs.path()))
}

/// Runs the scenario `name` (`Class.method` of `compat/java`) against the name server `namesrv`, with `run`
/// naming its topics and groups, plus `extra` options (`key=value`).
pub fn scenario(name: &str, namesrv: &str, run: &str, extra: &[(&str, String)]) -> ProgramRun {
    let mut args = vec![
        name.to_owned(),
        format!("namesrv={namesrv}"),
        format!("run={run}"),
    ];
    args.extend(extra.iter().map(|(k, v)| format!("{k}={v}")));
    run_main("petrel.compat.Main", &args)
}

/// Starts a fresh Petrel standalone on loopback, runs the scenario `name` against it and
/// panics with the program's output unless it passed.
pub fn scenario_on_fresh_petrel(name: &str, extra: &[(&str, String)]) -> ProgramRun {
    let dir = tempfile::tempdir().expect("a data directory");
    scenario_on(StandaloneConfig::ephemeral(dir.path()), name, extra)
}

/// [`scenario_on_fresh_petrel`] with Petrel started from `config` (short delay levels, a
/// config file, ...).
pub fn scenario_on(config: StandaloneConfig, name: &str, extra: &[(&str, String)]) -> ProgramRun {
    process::run_against_petrel(config, name, |petrel| {
        scenario(name, &petrel.namesrv_addr, &unique_run_name(), extra)
    })
}

/// A suffix for topic and group names, distinct per scenario run.
pub fn unique_run_name() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A Java program still running, whose stdout is read line by line as it comes, so a test can
/// act (restart the broker, ...) when the program reaches a point it prints.
pub struct JavaChild {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    stdout: String,
    stderr: Option<std::thread::JoinHandle<String>>,
    deadline: Instant,
    _logs: tempfile::TempDir,
}

/// [`run_main`], returning at once with the program running; [`JavaChild::finish`] waits for it
/// (within the same [`SCENARIO_TIMEOUT`] from the start).
pub fn spawn_main(main: &str, args: &[String]) -> JavaChild {
    let logs = tempfile::tempdir().expect("a temporary directory for client logs");
    let mut child = java_command(classpath(), main, args, logs.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("java starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    JavaChild {
        child,
        lines,
        stdout: String::new(),
        stderr: Some(std::thread::spawn(move || read_all(stderr))),
        deadline: Instant::now() + SCENARIO_TIMEOUT,
        _logs: logs,
    }
}

/// [`scenario`], returning at once with the program running.
pub fn spawn_scenario(name: &str, namesrv: &str, run: &str, extra: &[(&str, String)]) -> JavaChild {
    let mut args = vec![
        name.to_owned(),
        format!("namesrv={namesrv}"),
        format!("run={run}"),
    ];
    args.extend(extra.iter().map(|(k, v)| format!("{k}={v}")));
    spawn_main("petrel.compat.Main", &args)
}

impl JavaChild {
    /// Reads stdout until a line starting with `prefix` and returns the rest of that line;
    /// `None` if the program ended or `timeout` passed first.
    pub fn wait_for_line(&mut self, prefix: &str, timeout: Duration) -> Option<String> {
        let deadline = (Instant::now() + timeout).min(self.deadline);
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let line = self.lines.recv_timeout(left).ok()?;
            self.stdout.push_str(&line);
            self.stdout.push('\n');
            if let Some(rest) = line.strip_prefix(prefix) {
                return Some(rest.to_owned());
            }
        }
    }

    /// Gives the program `timeout` from now, instead of [`SCENARIO_TIMEOUT`] from its start,
    /// before it is killed.
    pub fn with_timeout(mut self, timeout: Duration) -> JavaChild {
        self.deadline = Instant::now() + timeout;
        self
    }

    /// Waits for the program to end (killing it at its deadline) and returns all it printed.
    pub fn finish(mut self) -> ProgramRun {
        let status = process::wait_until(&mut self.child, self.deadline);
        // The reader ends with the program's stdout.
        while let Ok(line) = self.lines.recv() {
            self.stdout.push_str(&line);
            self.stdout.push('\n');
        }
        let stderr = self
            .stderr
            .take()
            .map(|h| h.join().expect("stderr reader"))
            .unwrap_or_default();
        process::finished(status, std::mem::take(&mut self.stdout), stderr)
    }
}

impl Drop for JavaChild {
    fn drop(&mut self) {
        // A test that panics before finish() must not leave its JVM behind.
        if self.stderr.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
