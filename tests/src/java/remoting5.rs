//! Running the official RocketMQ 5.x remoting Java client in a test: `rocketmq-client` and
//! `rocketmq-tools` 5.x, the programs under `compat/java5-remoting`, built by
//! `compat/build.sh java5-remoting` from Maven Central (once per test binary). Apart from the
//! 4.9.8 programs of the parent module: the two clients cannot share a classpath.
//!
//! Each scenario gets a fresh Petrel with its topic created first; after the program ran, the
//! group's committed offsets are read back through the admin API, so a test can check what the
//! broker itself recorded.

use std::path::Path;
use std::sync::{Mutex, OnceLock};

use petrel::standalone::StandaloneConfig;
use petrel_client::admin::Admin;
use petrel_client::ClientConfig;
use petrel_common::protocol::MessageQueue;

use crate::process::{self, ProgramRun};

/// The programs' entry point: `Main <Class.method> key=value...`.
const MAIN: &str = "petrel.compat5r.Main";

/// Lines of each client log shown when a scenario fails.
const LOG_TAIL_LINES: usize = 80;

/// One scenario at a time per test binary: each starts a JVM and a broker, and the machine
/// has two cores.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The classpath of the scenario classes and the official 5.x jars, building them first if
/// needed.
pub fn classpath() -> &'static str {
    static CLASSPATH: OnceLock<String> = OnceLock::new();
    CLASSPATH.get_or_init(|| super::classpath_of("java5-remoting"))
}

/// Where one queue of the scenario's topic stands after the program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueProgress {
    pub queue_id: i32,
    /// The group's committed offset (QUERY_CONSUMER_OFFSET), `None` if it has none.
    pub committed: Option<i64>,
    /// The queue's end (GET_MAX_OFFSET).
    pub max: i64,
}

/// A scenario's run and what the broker recorded for its group.
#[derive(Debug)]
pub struct Outcome {
    pub run: ProgramRun,
    pub topic: String,
    pub group: String,
    /// Every queue of the topic, in queue order.
    pub queues: Vec<QueueProgress>,
}

/// Starts a fresh Petrel, creates a topic of `queues` queues named after `name` and this run,
/// runs the scenario `name` (`Class.method` of `petrel.compat5r`) with
/// `namesrv=… topic=… group=…` plus `extra` (`key=value`), reads the group's committed offset
/// and the end of each queue, stops Petrel, and panics with the program's output and the
/// client's log unless it passed.
pub fn scenario_on_fresh_petrel(name: &str, queues: i32, extra: &[(&str, String)]) -> Outcome {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("a data directory");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime for Petrel");
    let petrel = rt
        .block_on(crate::Standalone::start_with(StandaloneConfig::ephemeral(
            dir.path(),
        )))
        .expect("Petrel starts");
    // Topic and group names are [%a-zA-Z0-9_-]: `Class.method` loses its dot.
    let stem: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let run_name = super::unique_run_name();
    let topic = format!("{stem}_{run_name}");
    let group = format!("{stem}_group_{run_name}");
    rt.block_on(petrel.create_topic(&topic, queues))
        .expect("create the topic");

    let mut args = vec![
        name.to_owned(),
        format!("namesrv={}", petrel.namesrv_addr),
        format!("topic={topic}"),
        format!("group={group}"),
    ];
    args.extend(extra.iter().map(|(k, v)| format!("{k}={v}")));
    let logs = tempfile::tempdir().expect("a temporary directory for client logs");
    let mut run = process::run(super::java_command(classpath(), MAIN, &args, logs.path()));
    let progress = rt.block_on(progress(&petrel.namesrv_addr, &topic, &group, queues));
    rt.block_on(petrel.shutdown()).expect("Petrel stops");
    if !run.success {
        run.stderr.push_str(&client_logs(logs.path()));
    }
    run.assert_passed(name);
    Outcome {
        run,
        topic,
        group,
        queues: progress.expect("read the group's offsets through the admin API"),
    }
}

/// The group's committed offset and the end of every queue of `topic`.
async fn progress(
    namesrv: &str,
    topic: &str,
    group: &str,
    queues: i32,
) -> anyhow::Result<Vec<QueueProgress>> {
    let admin = Admin::new(ClientConfig::new(namesrv));
    let route = admin.topic_route(topic).await?;
    let broker_name = route
        .broker_datas
        .first()
        .map(|b| b.broker_name.clone())
        .ok_or_else(|| anyhow::anyhow!("topic {topic} has no broker"))?;
    let mut out = Vec::new();
    for queue_id in 0..queues {
        let mq = MessageQueue {
            topic: topic.to_owned(),
            broker_name: broker_name.clone(),
            queue_id,
        };
        out.push(QueueProgress {
            queue_id,
            committed: admin.consumer_offset(group, &mq).await?,
            max: admin.max_offset(&mq).await?,
        });
    }
    admin.shutdown();
    Ok(out)
}

/// The last lines of every log the client wrote under `logs` (its home directory).
fn client_logs(logs: &Path) -> String {
    let dir = logs.join("logs").join("rocketmqlogs");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return format!("\n--- no client logs under {}", dir.display());
    };
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    paths.sort();
    let mut out = String::new();
    for path in paths {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let from = lines.len().saturating_sub(LOG_TAIL_LINES);
        out.push_str(&format!(
            "\n--- last {} lines of {}\n{}",
            lines.len() - from,
            path.display(),
            lines[from..].join("\n")
        ));
    }
    out
}
