//! Running a scenario of an official RocketMQ 5.x client (gRPC: the programs under
//! `compat/python`, `compat/node`, `compat/java5`) against Petrel's gRPC endpoint: Petrel
//! started in-process, the scenario's topic (with its message type) and group (FIFO when
//! asked) created through the admin client, then the program run with
//! `endpoint=HOST:PORT topic=T group=G`. The facts it prints are checked by [`expect`], all
//! at once, so a failure lists every difference.

use std::path::Path;
use std::sync::Mutex;

use petrel::standalone::StandaloneConfig;

use crate::process::ProgramRun;

/// A topic's `message.type` attribute: which messages its queues accept over gRPC.
#[derive(Clone, Copy, Debug)]
pub enum MessageType {
    Normal,
    Fifo,
    Delay,
    Transaction,
}

impl MessageType {
    fn attribute(self) -> &'static str {
        match self {
            MessageType::Normal => "NORMAL",
            MessageType::Fifo => "FIFO",
            MessageType::Delay => "DELAY",
            MessageType::Transaction => "TRANSACTION",
        }
    }
}

/// What a scenario needs created before it starts.
#[derive(Clone, Copy, Debug)]
pub struct Setup {
    pub message_type: MessageType,
    pub queues: i32,
    /// The group is a FIFO group (`consumeMessageOrderly`).
    pub fifo_group: bool,
}

impl Setup {
    pub fn topic(message_type: MessageType, queues: i32) -> Setup {
        Setup {
            message_type,
            queues,
            fifo_group: false,
        }
    }

    pub fn fifo(queues: i32) -> Setup {
        Setup {
            message_type: MessageType::Fifo,
            queues,
            fifo_group: true,
        }
    }
}

/// Where a scenario's client connects and what it uses.
pub struct Target {
    pub endpoint: String,
    pub topic: String,
    pub group: String,
}

impl Target {
    /// The scenario's command-line options.
    pub fn args(&self) -> Vec<String> {
        vec![
            format!("endpoint={}", self.endpoint),
            format!("topic={}", self.topic),
            format!("group={}", self.group),
        ]
    }
}

/// One scenario at a time per test binary: they measure time (redelivery after the invisible
/// duration, a delay message's lateness), and several clients plus brokers at once on a
/// two-core machine would measure the machine instead.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Petrel for gRPC scenarios: ephemeral ports (the gRPC endpoint's too), data under `dir`, and
/// half messages checked 1 s after they are stored, then every second, so a transaction
/// left unknown is checked within seconds.
pub fn config(dir: &Path) -> StandaloneConfig {
    let path = dir.join("broker.toml");
    std::fs::write(
        &path,
        "transactionTimeOut = 1000\ntransactionCheckInterval = 1000\n",
    )
    .expect("write the broker config");
    let mut c = StandaloneConfig::ephemeral(dir.join("data"));
    c.broker_config_file = Some(path);
    c
}

/// Starts a fresh Petrel, creates what `setup` says under names unique to this run, runs
/// `program` against it, stops Petrel, and panics with the program's output unless it ran to
/// its end (`PASSED`).
pub fn run_scenario(
    what: &str,
    setup: &Setup,
    program: impl FnOnce(&Target) -> ProgramRun,
) -> ProgramRun {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().expect("a data directory");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime for Petrel");
    let petrel = rt
        .block_on(crate::Standalone::start_with(config(dir.path())))
        .expect("Petrel starts");
    let endpoint = petrel
        .grpc_addr()
        .expect("Petrel serves gRPC (StandaloneConfig::ephemeral sets grpc_listen)");
    // Topic and group names are [%a-zA-Z0-9_-]: a Java scenario's `Class.method` loses its dot.
    let name: String = what
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let run = crate::java::unique_run_name();
    let target = Target {
        endpoint: endpoint.to_string(),
        topic: format!("grpc_{name}_{run}"),
        group: format!("grpc_{name}_group_{run}"),
    };
    rt.block_on(async {
        petrel
            .create_topic_with_attributes(
                &target.topic,
                setup.queues,
                &[("message.type", setup.message_type.attribute())],
            )
            .await
            .expect("create the topic");
        if setup.fifo_group {
            petrel.create_fifo_group(&target.group).await
        } else {
            petrel.create_group(&target.group).await
        }
        .expect("create the group");
    });
    let out = program(&target);
    rt.block_on(petrel.shutdown()).expect("Petrel stops");
    out.assert_passed(what);
    out
}

/// The last `lines` lines of the file at `path` (a client's log), or a note that there is none.
pub fn log_tail(path: &Path, lines: usize) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            let from = all.len().saturating_sub(lines);
            format!(
                "\n--- last {} lines of {}\n{}",
                all.len() - from,
                path.display(),
                all[from..].join("\n")
            )
        }
        Err(e) => format!("\n--- no client log at {}: {e}", path.display()),
    }
}

/// Checks every `(key, value)` against the program's `RESULT key=value` lines and panics
/// listing each one that differs, with everything the program printed.
pub fn expect(run: &ProgramRun, expected: &[(&str, &str)]) {
    let wrong: Vec<String> = expected
        .iter()
        .filter(|(k, v)| run.result(k) != Some(v))
        .map(|(k, v)| format!("{k}: expected {v:?}, got {:?}", run.result(k)))
        .collect();
    assert!(
        wrong.is_empty(),
        "{}\n--- stdout\n{}\n--- stderr\n{}",
        wrong.join("\n"),
        run.stdout,
        run.stderr
    );
}

/// The number a `RESULT key=N` line says, checked to lie in `range`.
pub fn expect_within(run: &ProgramRun, key: &str, range: std::ops::Range<i64>) -> i64 {
    let n = run
        .result(key)
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or_else(|| panic!("no number {key}\n--- stdout\n{}", run.stdout));
    assert!(
        range.contains(&n),
        "{key} = {n}, not within {range:?}\n--- stdout\n{}\n--- stderr\n{}",
        run.stdout,
        run.stderr
    );
    n
}

/// `0,1,...,n-1`: a FIFO message group's expected order.
pub fn in_order(n: usize) -> String {
    (0..n).map(|i| i.to_string()).collect::<Vec<_>>().join(",")
}

/// What every client's scenarios must have seen: the same facts, whichever client printed them.
pub mod scenarios {
    use super::{expect, expect_within, in_order};
    use crate::process::ProgramRun;

    /// The invisible duration of `redeliver`, in seconds: the smallest the Apache proxy takes
    /// (`minInvisibleTimeMillsForRecv`); none of the three clients checks it itself.
    pub const REDELIVER_INVISIBLE_S: i64 = 10;

    /// `normal`: 1,000 TagA messages each received once on its first attempt, every field as
    /// sent, none of the 100 TagB ones. `body_check` names the client's fact for the body
    /// digest: `digest_ok` (a known digest that matched, Python and Node) or `not_corrupted`
    /// (the Java client keeps only whether the digest matched).
    pub fn normal(run: &ProgramRun, body_check: &str) {
        expect(
            run,
            &[
                ("sent", "1000"),
                ("sent_other_tag", "100"),
                ("received", "1000"),
                ("distinct", "1000"),
                ("mismatched", "0"),
                ("other_tag", "0"),
                ("unknown", "0"),
                ("first_attempt", "1000"),
                (body_check, "1000"),
                ("acked", "1000"),
            ],
        );
    }

    /// `redeliver`: the unacked message comes back (same id, attempt 2) no sooner than its
    /// invisible duration and within 10 s after it (a parked 5 s long poll at most, plus
    /// slack); once acked it does not come back within another invisible duration.
    pub fn redeliver(run: &ProgramRun) {
        expect(
            run,
            &[
                ("first_received", "true"),
                ("first_id_matches", "true"),
                ("first_attempt", "1"),
                ("second_received", "true"),
                ("second_id_matches", "true"),
                ("second_attempt", "2"),
                ("second_body_matches", "true"),
                ("acked", "true"),
                ("after_ack", "0"),
            ],
        );
        let invisible_ms = REDELIVER_INVISIBLE_S * 1000;
        expect_within(
            run,
            "redelivered_after_ms",
            invisible_ms..invisible_ms + 10_000,
        );
    }

    /// `fifo`: each of the 3 message groups in send order, 30 messages in all, each carrying
    /// its message group; the producer refuses a message without a group, as the route says
    /// the topic takes FIFO messages only (`message.type=FIFO`).
    pub fn fifo(run: &ProgramRun) {
        let order = in_order(10);
        expect(
            run,
            &[
                ("order_mg0", order.as_str()),
                ("order_mg1", order.as_str()),
                ("order_mg2", order.as_str()),
                ("received", "30"),
                ("group_mismatched", "0"),
                ("plain_refused", "true"),
            ],
        );
    }

    /// `delay`: delivered once, never before its time, within 2 s after it (Petrel files a
    /// due timer within milliseconds; the consumer's long poll is already parked), carrying
    /// the delivery timestamp it was sent with.
    pub fn delay(run: &ProgramRun) {
        expect(
            run,
            &[
                ("received", "true"),
                ("id_matches", "true"),
                ("delivery_timestamp_matches", "true"),
            ],
        );
        expect_within(run, "lateness_ms", 0..2_000);
    }

    /// `transaction`: the committed and the checked-then-committed messages delivered, the
    /// rolled-back one never; only the unknown one checked, once, before its delivery.
    pub fn transaction(run: &ProgramRun) {
        expect(
            run,
            &[
                ("received", "commit,unknown"),
                ("checked", "unknown"),
                ("checks", "1"),
                ("unknown_delivered_after_check", "true"),
            ],
        );
    }

    /// `push`: 100 messages, each consumed; the one failed on its first delivery came back
    /// once as attempt 2, every other was delivered once (attempt 1).
    pub fn push(run: &ProgramRun) {
        expect(
            run,
            &[
                ("distinct", "100"),
                ("deliveries", "101"),
                ("failed_attempts", "1,2"),
                ("other_attempts", "1"),
            ],
        );
    }
}
