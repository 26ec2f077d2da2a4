//! `petrel send`, `petrel consume` and `petrel admin` against a `petrel standalone` with
//! `aclEnable`: the real binaries, keys given as `--access-key`/`--secret-key` or as
//! `PETREL_ACCESS_KEY`/`PETREL_SECRET_KEY`; the right account works, a wrong secret and an
//! account that is not an admin are refused with the broker's remark.

#[allow(dead_code)] // each test binary uses part of the helpers
mod common;

use std::ffi::OsStr;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Petrel;

const TOPIC: &str = "AclCliTopic";
const GROUP: &str = "AclCliGroup";
/// Bound on one command, so a command that hangs fails the test.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

const RULES: &str = "accounts:
  - accessKey: rocketmq_admin
    secretKey: admin-secret-1
    admin: true
  - accessKey: ak_cli
    secretKey: cli-secret
    admin: false
    defaultTopicPerm: DENY
    defaultGroupPerm: DENY
    topicPerms:
      - AclCliTopic=PUB|SUB
    groupPerms:
      - AclCliGroup=SUB
";

struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

/// `petrel <args>` with `env` set (and no ACL variables inherited), killed after
/// [`COMMAND_TIMEOUT`].
fn petrel(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_petrel"));
    cmd.args(args)
        .env_remove("PETREL_ACCESS_KEY")
        .env_remove("PETREL_SECRET_KEY")
        .env_remove("PETREL_SECURITY_TOKEN")
        .env("RUST_LOG", "warn")
        .env("RUST_BACKTRACE", "0")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("cannot run the petrel binary");
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for petrel") {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().expect("killing petrel");
            panic!(
                "petrel {} did not finish in {COMMAND_TIMEOUT:?}",
                args.join(" ")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    Run {
        success: status.success(),
        stdout,
        stderr,
    }
}

#[test]
fn cli_commands_sign_with_flags_or_environment_and_get_what_the_account_may() {
    let dir = tempfile::tempdir().unwrap();
    let acl_file = dir.path().join("plain_acl.yml");
    std::fs::write(&acl_file, RULES).unwrap();
    let toml = dir.path().join("broker.toml");
    std::fs::write(
        &toml,
        format!(
            "aclEnable = true\naclFile = {:?}\n",
            acl_file.display().to_string()
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let server = Petrel::start_with(
        &data,
        "async",
        &[
            OsStr::new("--config"),
            toml.as_os_str(),
            OsStr::new("--metrics-listen"),
            OsStr::new("127.0.0.1:0"),
        ],
    );
    let ns = server.namesrv.clone();
    let broker = server.broker.clone();
    let create = |keys: &[&str]| {
        let mut args = vec![
            "admin",
            "--namesrv",
            &ns,
            "update-topic",
            "--topic",
            TOPIC,
            "--read-queue-nums",
            "2",
            "--write-queue-nums",
            "2",
            "--broker-addr",
            &broker,
        ];
        args.extend_from_slice(keys);
        petrel(&args, &[])
    };

    // An admin command needs the admin account (the keys may follow the subcommand).
    let refused = create(&["--access-key", "ak_cli", "--secret-key", "cli-secret"]);
    assert!(
        !refused.success
            && refused
                .stderr
                .contains("needs an admin account and accessKey ak_cli is not one"),
        "{}{}",
        refused.stdout,
        refused.stderr
    );
    let created = create(&[
        "--access-key",
        "rocketmq_admin",
        "--secret-key",
        "admin-secret-1",
    ]);
    assert!(created.success, "{}{}", created.stdout, created.stderr);

    // Keys from the environment send; a wrong secret is refused with the remark.
    let send = |secret: &str| {
        petrel(
            &[
                "send",
                "--namesrv",
                &ns,
                "--topic",
                TOPIC,
                "--body",
                "hello",
                "--count",
                "3",
            ],
            &[
                ("PETREL_ACCESS_KEY", "ak_cli"),
                ("PETREL_SECRET_KEY", secret),
            ],
        )
    };
    let wrong = send("not-the-secret");
    assert!(
        !wrong.success
            && wrong
                .stderr
                .contains("signature mismatch for accessKey ak_cli"),
        "{}{}",
        wrong.stdout,
        wrong.stderr
    );
    let sent = send("cli-secret");
    assert!(sent.success, "{}{}", sent.stdout, sent.stderr);
    assert_eq!(sent.stdout.matches("SendOk").count(), 3, "{}", sent.stdout);

    // The same account consumes them as its group, keys as flags.
    let consumed = petrel(
        &[
            "consume",
            "--namesrv",
            &ns,
            "--topic",
            TOPIC,
            "--group",
            GROUP,
            "--from-first",
            "--count",
            "3",
            "--access-key",
            "ak_cli",
            "--secret-key",
            "cli-secret",
        ],
        &[],
    );
    assert!(consumed.success, "{}{}", consumed.stdout, consumed.stderr);
    assert_eq!(
        consumed.stdout.matches("body=hello").count(),
        3,
        "{}",
        consumed.stdout
    );
}
