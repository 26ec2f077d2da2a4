//! The official Apache RocketMQ name server and broker (4.9.7, the newest server jars Maven
//! Central serves) as child processes beside Petrel's, for the tests of mixed clusters: a
//! Petrel slave of an official master and an official slave of a Petrel master. The jars come
//! from `compat/build.sh servers` (the benchmark's Maven module `bench/java/servers`).
//!
//! Each server gets a home directory of its own (its `conf/` with a logback file that keeps
//! its logs out of the way, its store, its `user.home`), keeps its stdout and stderr in files
//! there, and is killed with SIGKILL when dropped.

use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::cluster::free_port;
use crate::process;

/// How long a JVM server may take to start on a loaded 2-core machine.
pub const START_TIMEOUT: Duration = Duration::from_secs(90);

/// The segment size both sides of a mixed pair use: the slave writes the master's bytes at the
/// same offsets into segments that must have the same names.
pub const COMMIT_LOG_SEGMENT: u64 = 4 * 1024 * 1024;

/// The official servers' classpath (the jars `bench/java/servers/target/classpath.txt` lists).
pub fn classpath() -> &'static str {
    static CLASSPATH: OnceLock<String> = OnceLock::new();
    CLASSPATH.get_or_init(|| {
        let root = process::build_compat("servers")
            .parent()
            .expect("compat/ is inside the workspace")
            .to_path_buf();
        let file = root.join("bench/java/servers/target/classpath.txt");
        std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("{} after the build: {e}", file.display()))
            .trim()
            .to_owned()
    })
}

/// A running official server; dropping it kills it.
pub struct OfficialProcess {
    child: Child,
    /// Where it serves remoting: `127.0.0.1:port`.
    pub addr: String,
    home: PathBuf,
}

impl OfficialProcess {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its stdout and stderr so far.
    pub fn output(&self) -> String {
        let read = |name: &str| std::fs::read_to_string(self.home.join(name)).unwrap_or_default();
        format!(
            "--- stdout\n{}--- stderr\n{}",
            read("stdout.log"),
            read("stderr.log")
        )
    }

    /// SIGKILL, then reaps the process; returns what it printed.
    pub fn kill_9(mut self) -> String {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaping the official server");
        self.output()
    }
}

impl Drop for OfficialProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The official name server on a free loopback port, its home under `dir/namesrv`.
pub fn start_namesrv(dir: &Path) -> OfficialProcess {
    let home = dir.join("namesrv");
    let port = free_port();
    write_conf(&home, "namesrv.properties", &format!("listenPort={port}\n"));
    let process = spawn(
        &home,
        "org.apache.rocketmq.namesrv.NamesrvStartup",
        "namesrv.properties",
        port,
    );
    wait_until_booted(process, "boot success")
}

/// One official broker of the group `broker-a` in `DefaultCluster`, with the settings a mixed
/// pair needs: the commit-log segment size of [`COMMIT_LOG_SEGMENT`], 127.0.0.1 as both its
/// remoting and its HA address (`brokerIP2`, which a slave is told to connect to).
pub struct OfficialBrokerSpec {
    pub home: PathBuf,
    pub port: u16,
    pub ha_port: u16,
}

impl OfficialBrokerSpec {
    /// A broker of role `role` (`SYNC_MASTER`, `ASYNC_MASTER`, `SLAVE`) and id `id` under
    /// `dir/name`, registering with `namesrv`.
    pub fn new(dir: &Path, name: &str, role: &str, id: i64, namesrv: &str) -> OfficialBrokerSpec {
        let home = dir.join(name);
        // The broker also listens on port - 2 (its "VIP" channel, not configurable in 4.9).
        let port = loop {
            let port = free_port();
            if port > 1026 && std::net::TcpListener::bind(("127.0.0.1", port - 2)).is_ok() {
                break port;
            }
        };
        let ha_port = free_port();
        let store = home.join("store");
        let mut conf = String::new();
        for (key, value) in [
            ("brokerClusterName", "DefaultCluster".to_owned()),
            ("brokerName", "broker-a".to_owned()),
            ("brokerId", id.to_string()),
            ("brokerRole", role.to_owned()),
            ("flushDiskType", "ASYNC_FLUSH".to_owned()),
            ("namesrvAddr", namesrv.to_owned()),
            ("brokerIP1", "127.0.0.1".to_owned()),
            ("brokerIP2", "127.0.0.1".to_owned()),
            ("listenPort", port.to_string()),
            ("haListenPort", ha_port.to_string()),
            ("storePathRootDir", store.display().to_string()),
            (
                "storePathCommitLog",
                store.join("commitlog").display().to_string(),
            ),
            ("mappedFileSizeCommitLog", COMMIT_LOG_SEGMENT.to_string()),
            // A shared CI disk may be fuller than the default 75 %.
            ("diskMaxUsedSpaceRatio", "95".to_owned()),
        ] {
            let _ = writeln!(conf, "{key}={value}");
        }
        write_conf(&home, "broker.conf", &conf);
        OfficialBrokerSpec {
            home,
            port,
            ha_port,
        }
    }

    /// The directory of its commit-log segments.
    pub fn commit_log_dir(&self) -> PathBuf {
        self.home.join("store").join("commitlog")
    }

    /// Starts it and waits for its "boot success" line.
    pub fn start(&self) -> OfficialProcess {
        let process = spawn(
            &self.home,
            "org.apache.rocketmq.broker.BrokerStartup",
            "broker.conf",
            self.port,
        );
        wait_until_booted(process, "boot success")
    }
}

fn write_conf(home: &Path, file: &str, text: &str) {
    let conf = home.join("conf");
    std::fs::create_dir_all(&conf).expect("the server's conf directory");
    std::fs::write(conf.join(file), text).expect("write the server's config file");
    // The servers load conf/logback_{namesrv,broker}.xml from the classpath: warnings only,
    // into a file in their home.
    for name in ["logback_namesrv.xml", "logback_broker.xml"] {
        let log = home.join(format!("{name}.log"));
        std::fs::write(
            conf.join(name),
            format!(
                "<configuration>\n  <appender name=\"FILE\" class=\"ch.qos.logback.core.FileAppender\">\n    \
                 <file>{}</file>\n    <encoder><pattern>%d %p %t - %m%n</pattern></encoder>\n  \
                 </appender>\n  <root level=\"WARN\"><appender-ref ref=\"FILE\"/></root>\n</configuration>\n",
                log.display()
            ),
        )
        .expect("write the server's logback file");
    }
}

fn spawn(home: &Path, main: &str, conf: &str, port: u16) -> OfficialProcess {
    let conf_dir = home.join("conf");
    let stdout = File::create(home.join("stdout.log")).expect("the server's stdout file");
    let stderr = File::create(home.join("stderr.log")).expect("the server's stderr file");
    let child = Command::new("java")
        .args(["-Xms128m", "-Xmx512m", "-XX:MaxDirectMemorySize=512m"])
        .args(["-XX:+UseSerialGC", "-XX:-OmitStackTraceInFastThrow"])
        // 4.9.7 predates JDK 17: it unmaps its files through DirectByteBuffer internals.
        .args(["--add-opens", "java.base/java.nio=ALL-UNNAMED"])
        .args(["--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED"])
        // Above 90 % disk use 4.9.7 stops taking writes, and above 85 % it deletes commit-log
        // segments, whatever diskMaxUsedSpaceRatio says: a shared CI disk may be that full.
        .arg("-Drocketmq.broker.diskSpaceWarningLevelRatio=0.99")
        .arg("-Drocketmq.broker.diskSpaceCleanForciblyRatio=0.99")
        .arg(format!("-Duser.home={}", home.display()))
        .arg(format!("-Drocketmq.home.dir={}", home.display()))
        .arg("-cp")
        .arg(format!("{}:{}", conf_dir.display(), classpath()))
        .arg(main)
        .arg("-c")
        .arg(conf_dir.join(conf))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .expect("cannot start java");
    OfficialProcess {
        child,
        addr: format!("127.0.0.1:{port}"),
        home: home.to_path_buf(),
    }
}

/// Waits until the server printed `marker` (its start-up is done: listening and, for a
/// broker, registered) or panics with its output if it exits or [`START_TIMEOUT`] passes.
fn wait_until_booted(mut process: OfficialProcess, marker: &str) -> OfficialProcess {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let out = std::fs::read_to_string(process.home.join("stdout.log")).unwrap_or_default();
        if out.contains(marker) {
            return process;
        }
        if let Ok(Some(status)) = process.child.try_wait() {
            panic!(
                "the official server in {} exited during start-up ({status})\n{}",
                process.home.display(),
                process.output()
            );
        }
        assert!(
            Instant::now() < deadline,
            "the official server in {} printed no {marker:?} within {START_TIMEOUT:?}\n{}",
            process.home.display(),
            process.output()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The commit-log segments of a store directory that hold any record, by name, with their
/// contents.
pub fn commit_log_segments(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut segments: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().is_file())
                .map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let bytes = std::fs::read(e.path()).unwrap_or_default();
                    (name, bytes)
                })
                // The official broker creates the next segment before it needs it.
                .filter(|(_, bytes)| bytes.iter().any(|&b| b != 0))
                .collect()
        })
        .unwrap_or_default();
    segments.sort();
    segments
}

/// Waits (up to `timeout`) until the two commit-log directories hold the same segments, byte
/// for byte, with at least `min_bytes` of records in them, and returns how many bytes they
/// hold up to the last non-zero byte. Panics with the first difference otherwise.
pub fn wait_for_identical_commit_logs(
    master: &Path,
    slave: &Path,
    min_bytes: u64,
    timeout: Duration,
) -> u64 {
    let deadline = Instant::now() + timeout;
    loop {
        let a = commit_log_segments(master);
        let b = commit_log_segments(slave);
        let written = written_bytes(&a);
        let difference = first_difference(&a, &b);
        match difference {
            None if written >= min_bytes => return written,
            _ if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(250)),
            None => panic!("the commit logs are equal but hold only {written} bytes, expected at least {min_bytes}"),
            Some(d) => panic!(
                "the slave's commit log ({}) is not the master's ({}) after {timeout:?}: {d}",
                slave.display(),
                master.display()
            ),
        }
    }
}

/// Bytes up to the last non-zero byte over all segments (named by their base offset).
fn written_bytes(segments: &[(String, Vec<u8>)]) -> u64 {
    segments
        .iter()
        .filter_map(|(name, bytes)| {
            let base: u64 = name.parse().ok()?;
            let end = bytes.iter().rposition(|&b| b != 0)? + 1;
            Some(base + end as u64)
        })
        .max()
        .unwrap_or(0)
}

fn first_difference(a: &[(String, Vec<u8>)], b: &[(String, Vec<u8>)]) -> Option<String> {
    let names = |s: &[(String, Vec<u8>)]| s.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
    if names(a) != names(b) {
        return Some(format!("segments {:?} against {:?}", names(a), names(b)));
    }
    for ((name, x), (_, y)) in a.iter().zip(b) {
        if x != y {
            let at = x
                .iter()
                .zip(y)
                .position(|(p, q)| p != q)
                .unwrap_or(x.len().min(y.len()));
            return Some(format!(
                "segment {name} differs at byte {at} (lengths {} and {})",
                x.len(),
                y.len()
            ));
        }
    }
    None
}

/// The messages each mixed-pair test replicates: about 20 MB of records, five segments.
pub const MIXED_PAIR_MESSAGES: usize = 100_000;

/// The official Java client 4.9.8 sends [`MIXED_PAIR_MESSAGES`] messages to `topic` through
/// the name server `namesrv` (8 threads, each send SEND_OK: under SYNC_MASTER, on the slave
/// too); panics with its output otherwise. Prints its send rate.
pub fn java_send_all(namesrv: &str, run: &str, topic: &str) {
    let sent = crate::java::scenario(
        "Replication.sendMany",
        namesrv,
        run,
        &[
            ("topic", topic.to_owned()),
            ("messages", MIXED_PAIR_MESSAGES.to_string()),
            ("threads", "8".to_owned()),
        ],
    );
    sent.assert_passed("Replication.sendMany");
    assert_eq!(
        sent.result("sent"),
        Some(MIXED_PAIR_MESSAGES.to_string().as_str())
    );
    eprintln!(
        "the Java client sent {MIXED_PAIR_MESSAGES} messages, {} per second",
        sent.result("sends_per_second").unwrap_or("?")
    );
}

/// A push consumer of the official Java client, of a new group, gets every message
/// [`java_send_all`] sent, with its body, through the name server `namesrv`; panics with its
/// output otherwise.
pub fn java_consume_all(namesrv: &str, run: &str, topic: &str) {
    let consumed = crate::java::scenario(
        "Replication.consumeAll",
        namesrv,
        run,
        &[
            ("topic", topic.to_owned()),
            ("messages", MIXED_PAIR_MESSAGES.to_string()),
            ("wait_s", "150".to_owned()),
        ],
    );
    consumed.assert_passed("Replication.consumeAll");
    assert_eq!(
        consumed.result("consumed"),
        Some(MIXED_PAIR_MESSAGES.to_string().as_str())
    );
    eprintln!(
        "the Java client consumed {MIXED_PAIR_MESSAGES} messages from the slave, {} per second, {} duplicates",
        consumed.result("consumed_per_second").unwrap_or("?"),
        consumed.result("duplicates").unwrap_or("?")
    );
}
