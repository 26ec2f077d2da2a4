//! A cluster of real `petrel` processes: a name server and brokers (a master and its slaves),
//! each its own child process, so a test can SIGKILL one and restart it on the same data
//! directory, ports and configuration, as an operator would.
//!
//! The binary is `target/<profile>/petrel`, next to the test binary's `deps/` directory. Cargo
//! builds it when it builds the `petrel` package's integration tests (`cargo test
//! --workspace`); otherwise build it first with `cargo build -p petrel --bin petrel`.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use petrel_client::admin::Admin;
use petrel_controller::client::{ControllerClient, ReplicaInfo};

/// How long a start (recovery included) may take on a loaded 2-core machine.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The `petrel` binary cargo built next to this test binary.
pub fn petrel_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/<test> -> target/<profile>/petrel
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary is in target/<profile>/deps");
    let bin = profile_dir.join(format!("petrel{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} is missing: build it first with `cargo build -p petrel --bin petrel` \
         (`cargo test --workspace` builds it)",
        bin.display()
    );
    bin
}

/// A running `petrel` child process; dropping it kills it.
pub struct PetrelProcess {
    child: Child,
    /// The `addr=` of its marker line: where it listens.
    pub addr: String,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl PetrelProcess {
    /// Runs `petrel <args>` (`RUST_LOG=info`, `NO_COLOR=1`) and waits, at most
    /// [`START_TIMEOUT`], for a stdout line containing `marker` with an `addr=` field. Its
    /// output keeps being drained (and kept, for [`PetrelProcess::output`]) afterwards.
    pub fn spawn(args: &[&OsStr], marker: &str) -> PetrelProcess {
        Self::spawn_in(None, args, marker)
    }

    /// [`PetrelProcess::spawn`] inside the network namespace `netns` (`ip netns exec`, which
    /// execs petrel: the child's pid is petrel's), or in this one.
    pub fn spawn_in(netns: Option<&str>, args: &[&OsStr], marker: &str) -> PetrelProcess {
        let mut command = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(petrel_binary());
                c
            }
            None => Command::new(petrel_binary()),
        };
        let mut child = command
            .args(args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start the petrel binary");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, lines) = mpsc::channel::<String>();
        let pipe = child.stdout.take().expect("stdout is piped");
        let sink = Arc::clone(&stdout);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let line = strip_ansi(&line);
                let mut all = sink.lock().unwrap_or_else(|e| e.into_inner());
                all.push_str(&line);
                all.push('\n');
                drop(all);
                // The receiver is gone once the marker came; keep draining.
                let _ = tx.send(line);
            }
        });
        let mut pipe = child.stderr.take().expect("stderr is piped");
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let deadline = Instant::now() + START_TIMEOUT;
        let mut process = PetrelProcess {
            child,
            addr: String::new(),
            stdout,
            stderr,
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) if line.contains(marker) => {
                    process.addr = field(&line, "addr")
                        .unwrap_or_else(|| panic!("no addr= in petrel's line {line:?}"));
                    return process;
                }
                Ok(_) => {}
                Err(_) => {
                    let _ = process.child.kill();
                    let status = process.child.wait().ok();
                    panic!(
                        "petrel {args:?} printed no {marker:?} within {START_TIMEOUT:?} (exit: {status:?})\n{}",
                        process.output()
                    );
                }
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything it printed so far, stdout then stderr.
    pub fn output(&self) -> String {
        format!(
            "--- stdout\n{}--- stderr\n{}",
            self.stdout.lock().unwrap_or_else(|e| e.into_inner()),
            self.stderr.lock().unwrap_or_else(|e| e.into_inner())
        )
    }

    /// SIGKILL, then reaps the process; returns what it printed.
    pub fn kill_9(mut self) -> String {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaping petrel");
        self.output()
    }
}

impl Drop for PetrelProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `petrel namesrv` on a free loopback port.
pub fn start_namesrv() -> PetrelProcess {
    let args = ["namesrv", "--listen", "127.0.0.1:0"].map(OsStr::new);
    PetrelProcess::spawn(&args, "name server is up")
}

/// A free loopback port (the kernel's pick, released at once).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// One broker of the group `broker-a` in `DefaultCluster`: its data directory, ports and
/// settings stay the same across restarts, as a deployed broker's do.
pub struct BrokerSpec {
    pub data: PathBuf,
    pub config: PathBuf,
    pub port: u16,
}

impl BrokerSpec {
    /// A broker of role `role` (`SYNC_MASTER`, `ASYNC_MASTER`, `SLAVE`) and id `id` (0 for the
    /// master), its data and config file under `dir` named after `name`; `extra` TOML lines go
    /// into its config.
    pub fn new(dir: &Path, name: &str, role: &str, id: i64, extra: &str) -> BrokerSpec {
        let config = dir.join(format!("{name}.toml"));
        let ha_port = free_port();
        std::fs::write(
            &config,
            format!(
                "brokerRole = \"{role}\"\nbrokerId = {id}\nhaListenPort = {ha_port}\n\
                 metricsExporterType = \"DISABLE\"\nmappedFileSizeCommitLog = 4194304\n{extra}"
            ),
        )
        .expect("write the broker's config file");
        BrokerSpec {
            data: dir.join(name),
            config,
            port: free_port(),
        }
    }

    /// `petrel broker` registering with `namesrv`, remoting only (no gRPC).
    pub fn start(&self, namesrv: &str) -> PetrelProcess {
        self.start_at(namesrv, "127.0.0.1", None)
    }

    /// [`BrokerSpec::start`] listening on and advertising `ip`, inside `netns` if given.
    pub fn start_at(&self, namesrv: &str, ip: &str, netns: Option<&str>) -> PetrelProcess {
        let listen = format!("{ip}:{}", self.port);
        let args: Vec<&OsStr> = vec![
            "broker".as_ref(),
            "--broker-ip".as_ref(),
            ip.as_ref(),
            "--namesrv".as_ref(),
            namesrv.as_ref(),
            "--data".as_ref(),
            self.data.as_os_str(),
            "--listen".as_ref(),
            listen.as_ref(),
            "--grpc-listen".as_ref(),
            "off".as_ref(),
            "--config".as_ref(),
            self.config.as_os_str(),
        ];
        PetrelProcess::spawn_in(netns, &args, "broker started")
    }
}

/// The value of `name=` in a tracing fmt line.
pub fn field(line: &str, name: &str) -> Option<String> {
    let key = format!("{name}=");
    line.split_whitespace()
        .find_map(|token| token.strip_prefix(&key))
        .map(str::to_owned)
}

/// `line` without ANSI escape sequences (CSI: ESC '[' … final byte in '@'..='~').
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Waits, at most `timeout`, until `broker` (a slave) lists `topic`: its metadata
/// synchronisation brought it from the master.
pub async fn wait_for_topic_on(admin: &Admin, broker: &str, topic: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        match admin.all_topic_configs(broker).await {
            Ok(topics) if topics.contains_key(topic) => return,
            other => assert!(
                Instant::now() < deadline,
                "{broker} never got {topic}: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits, at most `timeout`, until the name server's route of `topic` lists no master
/// (brokerId 0) but still a broker: the slave.
pub async fn wait_for_route_without_master(admin: &Admin, topic: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let route = admin.topic_route(topic).await;
        match &route {
            Ok(r)
                if !r.broker_datas.is_empty()
                    && r.broker_datas
                        .iter()
                        .all(|b| !b.broker_addrs.contains_key(&0) && !b.broker_addrs.is_empty()) =>
            {
                return
            }
            _ => assert!(
                Instant::now() < deadline,
                "the name server still routes {topic} to the killed master (or to nothing): {route:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Three `petrel controller`s on loopback, their data under one directory so they can be killed
/// and started again on it.
pub struct Controllers {
    dir: PathBuf,
    ip: String,
    ports: Vec<u16>,
    pub processes: Vec<Option<PetrelProcess>>,
}

impl Controllers {
    pub fn start(dir: &Path) -> Controllers {
        Self::start_on(dir, "127.0.0.1")
    }

    /// Three controllers listening on `ip` (an address of this network namespace).
    pub fn start_on(dir: &Path, ip: &str) -> Controllers {
        let mut c = Controllers {
            dir: dir.to_path_buf(),
            ip: ip.to_owned(),
            ports: (0..3).map(|_| free_port()).collect(),
            processes: Vec::new(),
        };
        c.processes = (0..3).map(|i| Some(c.spawn(i))).collect();
        c
    }

    /// `controllerAddr` for the brokers.
    pub fn addrs(&self) -> String {
        self.ports
            .iter()
            .map(|p| format!("{}:{p}", self.ip))
            .collect::<Vec<_>>()
            .join(";")
    }

    fn spawn(&self, i: usize) -> PetrelProcess {
        let peers = self
            .ports
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{}={}:{p}", i + 1, self.ip))
            .collect::<Vec<_>>()
            .join(";");
        let id = (i + 1).to_string();
        let listen = format!("{}:{}", self.ip, self.ports[i]);
        let data = self.dir.join(format!("controller-{id}"));
        let args: Vec<&OsStr> = vec![
            "controller".as_ref(),
            "--id".as_ref(),
            id.as_ref(),
            "--peers".as_ref(),
            peers.as_ref(),
            "--listen".as_ref(),
            listen.as_ref(),
            "--data".as_ref(),
            data.as_os_str(),
        ];
        PetrelProcess::spawn(&args, "controller started")
    }

    pub fn kill_9_all(&mut self) {
        for p in self.processes.iter_mut() {
            if let Some(p) = p.take() {
                p.kill_9();
            }
        }
    }

    /// Starts again every controller that is down, on its data.
    pub fn restart_all(&mut self) {
        for i in 0..self.processes.len() {
            if self.processes[i].is_none() {
                self.processes[i] = Some(self.spawn(i));
            }
        }
    }

    /// `enableControllerMode` config lines for a broker of these controllers.
    pub fn broker_config(&self) -> String {
        format!(
            "enableControllerMode = true\ncontrollerAddr = \"{}\"\n",
            self.addrs()
        )
    }
}

/// Waits, at most `timeout`, until the controllers report a master of `broker-a` that passes
/// `ok`.
pub async fn wait_for_master(
    client: &ControllerClient,
    what: &str,
    timeout: Duration,
    ok: impl Fn(&ReplicaInfo) -> bool,
) -> ReplicaInfo {
    let deadline = Instant::now() + timeout;
    loop {
        match client.replica_info("broker-a").await {
            Ok(info) if ok(&info) => return info,
            other => assert!(Instant::now() < deadline, "{what}: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A network namespace joined to this one by a veth pair, for partitions a test makes and
/// heals (`ip`, as root; CI runs as root). This side holds `10.<n>.0.1` (everything) and
/// `10.<n>.1.1` (what [`NetNs::cut_off`] makes unreachable, such as the controllers); the
/// namespace holds `10.<n>.0.2`. Removed on drop.
pub struct NetNs {
    pub name: String,
    /// Second octet of the addresses, unique per test run.
    octet: u8,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("the ip command");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl NetNs {
    pub fn create() -> NetNs {
        let octet = 100 + (std::process::id() % 100) as u8;
        let name = format!("petrel{}", std::process::id());
        let (host, peer) = (format!("pv{octet}h"), format!("pv{octet}n"));
        ip(&["netns", "add", &name]);
        let ns = NetNs { name, octet };
        ip(&["link", "add", &host, "type", "veth", "peer", "name", &peer]);
        ip(&["link", "set", &peer, "netns", &ns.name]);
        ip(&["addr", "add", &format!("{}/24", ns.host_ip()), "dev", &host]);
        ip(&[
            "addr",
            "add",
            &format!("{}/24", ns.host_cut_ip()),
            "dev",
            &host,
        ]);
        ip(&["link", "set", &host, "up"]);
        ns.exec(&[
            "addr",
            "add",
            &format!("{}/24", ns.inside_ip()),
            "dev",
            &peer,
        ]);
        ns.exec(&["link", "set", &peer, "up"]);
        ns.exec(&["link", "set", "lo", "up"]);
        ns.exec(&["route", "add", "default", "via", &ns.host_ip()]);
        ns
    }

    fn exec(&self, args: &[&str]) {
        let mut all = vec!["netns", "exec", &self.name, "ip"];
        all.extend_from_slice(args);
        ip(&all);
    }

    /// This side's address, reachable from the namespace always.
    pub fn host_ip(&self) -> String {
        format!("10.{}.0.1", self.octet)
    }

    /// This side's second address, which [`NetNs::cut_off`] makes unreachable.
    pub fn host_cut_ip(&self) -> String {
        format!("10.{}.1.1", self.octet)
    }

    /// The namespace's address.
    pub fn inside_ip(&self) -> String {
        format!("10.{}.0.2", self.octet)
    }

    /// The namespace loses its route to [`NetNs::host_cut_ip`] (packets are dropped, no
    /// answer): a link cut between it and what listens there.
    pub fn cut_off(&self) {
        self.exec(&[
            "route",
            "add",
            "blackhole",
            &format!("{}/32", self.host_cut_ip()),
        ]);
    }

    pub fn heal(&self) {
        self.exec(&[
            "route",
            "del",
            "blackhole",
            &format!("{}/32", self.host_cut_ip()),
        ]);
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // Deleting the namespace deletes its end of the veth pair, and with it ours.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Which of `specs` (brokers on 127.0.0.1) the controllers report as master.
pub fn master_index(specs: &[BrokerSpec], info: &ReplicaInfo) -> usize {
    let addr = info.master_address.clone().unwrap_or_default();
    specs
        .iter()
        .position(|s| addr.ends_with(&format!(":{}", s.port)))
        .unwrap_or_else(|| panic!("the master {addr} is none of the brokers"))
}
