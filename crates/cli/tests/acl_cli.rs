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

/// Starts a `petrel standalone` with `aclEnable` and [`RULES`] in `dir`; returns it and the
/// ACL file's path.
fn start_with_acl(dir: &std::path::Path) -> (Petrel, std::path::PathBuf) {
    let acl_file = dir.join("plain_acl.yml");
    std::fs::write(&acl_file, RULES).unwrap();
    let toml = dir.join("broker.toml");
    std::fs::write(
        &toml,
        format!(
            "aclEnable = true\naclFile = {:?}\n",
            acl_file.display().to_string()
        ),
    )
    .unwrap();
    let server = Petrel::start_with(
        &dir.join("data"),
        "async",
        &[
            OsStr::new("--config"),
            toml.as_os_str(),
            OsStr::new("--metrics-listen"),
            OsStr::new("127.0.0.1:0"),
        ],
    );
    (server, acl_file)
}

const ADMIN_KEYS: [&str; 4] = [
    "--access-key",
    "rocketmq_admin",
    "--secret-key",
    "admin-secret-1",
];

/// `petrel admin --namesrv <ns> <args>`, signed by the admin account.
fn admin_cmd(ns: &str, args: &[&str]) -> Run {
    let mut all = vec!["admin", "--namesrv", ns];
    all.extend_from_slice(args);
    all.extend_from_slice(&ADMIN_KEYS);
    petrel(&all, &[])
}

/// `petrel send` of one message to `topic`, signed by `ak`/`sk`.
fn send_as(ns: &str, topic: &str, ak: &str, sk: &str) -> Run {
    petrel(
        &[
            "send",
            "--namesrv",
            ns,
            "--topic",
            topic,
            "--body",
            "hi",
            "--access-key",
            ak,
            "--secret-key",
            sk,
        ],
        &[],
    )
}

/// Waits until the name server routes `topic`, so a send does not race its registration.
fn wait_for_route(ns: &str, topic: &str) {
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    loop {
        let route = admin_cmd(ns, &["topic-route", "--topic", topic]);
        if route.success {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no route for {topic}: {}",
            route.stderr
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The version counter `cluster-acl-config-version --json` prints for the only broker.
fn acl_version(ns: &str, broker: &str) -> i64 {
    let run = admin_cmd(
        ns,
        &[
            "cluster-acl-config-version",
            "--broker-addr",
            broker,
            "--json",
        ],
    );
    assert!(run.success, "{}{}", run.stdout, run.stderr);
    let rows: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1, "{}", run.stdout);
    assert_eq!(rows[0]["brokerAddr"], broker, "{}", run.stdout);
    rows[0]["counter"].as_i64().unwrap()
}

#[test]
fn acl_commands_create_and_delete_accounts_set_the_whitelist_and_show_versions() {
    let dir = tempfile::tempdir().unwrap();
    let (server, acl_file) = start_with_acl(dir.path());
    let ns = server.namesrv.clone();
    let broker = server.broker.clone();
    for topic in [TOPIC, "AclCliOther"] {
        let created = admin_cmd(
            &ns,
            &[
                "update-topic",
                "--topic",
                topic,
                "--read-queue-nums",
                "1",
                "--write-queue-nums",
                "1",
                "--broker-addr",
                &broker,
            ],
        );
        assert!(created.success, "{}{}", created.stdout, created.stderr);
        wait_for_route(&ns, topic);
    }
    let v0 = acl_version(&ns, &broker);

    // Only an admin may create an account.
    let mut by_user = vec![
        "admin",
        "--namesrv",
        &ns,
        "updateAclConfig",
        "-a",
        "ak_made",
        "-s",
        "made-secret",
        "--broker-addr",
        &broker,
    ];
    by_user.extend_from_slice(&["--access-key", "ak_cli", "--secret-key", "cli-secret"]);
    let refused = petrel(&by_user, &[]);
    assert!(
        !refused.success
            && refused
                .stderr
                .contains("needs an admin account and accessKey ak_cli is not one"),
        "{}{}",
        refused.stdout,
        refused.stderr
    );

    let made = admin_cmd(
        &ns,
        &[
            "update-acl-config",
            "-a",
            "ak_made",
            "-s",
            "made-secret",
            "--default-topic-perm",
            "DENY",
            "--default-group-perm",
            "DENY",
            "--topic-perms",
            &format!("{TOPIC}=PUB,AclCliOther=SUB"),
            "--group-perms",
            "AclCliGroup=SUB",
            "--cluster",
            "DefaultCluster",
        ],
    );
    assert!(made.success, "{}{}", made.stdout, made.stderr);
    assert_eq!(
        made.stdout.trim(),
        format!("account ak_made updated on broker-a ({broker})"),
        "{}",
        made.stdout
    );
    assert!(!made.stdout.contains("made-secret"));
    let v1 = acl_version(&ns, &broker);
    assert!(v1 > v0, "{v0} -> {v1}");
    let text = std::fs::read_to_string(&acl_file).unwrap();
    assert!(text.contains("ak_made"), "{text}");

    // The new account sends where it may publish and is refused where it may only subscribe.
    let sent = send_as(&ns, TOPIC, "ak_made", "made-secret");
    assert!(sent.success, "{}{}", sent.stdout, sent.stderr);
    assert_eq!(sent.stdout.matches("SendOk").count(), 1, "{}", sent.stdout);
    let sub_only = send_as(&ns, "AclCliOther", "ak_made", "made-secret");
    assert!(
        !sub_only.success
            && sub_only
                .stderr
                .contains("No permission to PUB topic AclCliOther for account ak_made"),
        "{}{}",
        sub_only.stdout,
        sub_only.stderr
    );

    // Deleted, it is refused.
    let deleted = admin_cmd(
        &ns,
        &[
            "deleteAccessConfig",
            "-a",
            "ak_made",
            "--broker-addr",
            &broker,
        ],
    );
    assert!(deleted.success, "{}{}", deleted.stdout, deleted.stderr);
    assert_eq!(
        deleted.stdout.trim(),
        format!("account ak_made deleted on broker-a ({broker})")
    );
    let gone = send_as(&ns, TOPIC, "ak_made", "made-secret");
    assert!(
        !gone.success && gone.stderr.contains("unknown accessKey ak_made"),
        "{}{}",
        gone.stdout,
        gone.stderr
    );
    let text = std::fs::read_to_string(&acl_file).unwrap();
    assert!(!text.contains("ak_made"), "{text}");
    let again = admin_cmd(
        &ns,
        &[
            "delete-access-config",
            "-a",
            "ak_made",
            "--broker-addr",
            &broker,
        ],
    );
    assert!(
        !again.success && again.stderr.contains("no account with accessKey ak_made"),
        "{}{}",
        again.stdout,
        again.stderr
    );

    // The global whitelist lands in the file.
    let white = admin_cmd(
        &ns,
        &[
            "update-global-white-addr",
            "-g",
            "10.*,192.168.*",
            "--broker-addr",
            &broker,
            "--json",
        ],
    );
    assert!(white.success, "{}{}", white.stdout, white.stderr);
    let answer: serde_json::Value = serde_json::from_str(&white.stdout).unwrap();
    assert_eq!(answer["change"], "global whitelist set to 10.*,192.168.*");
    assert_eq!(answer["brokers"][0]["addr"], broker.as_str());
    let text = std::fs::read_to_string(&acl_file).unwrap();
    let whitelist: Vec<String> = text
        .lines()
        .skip_while(|l| !l.starts_with("globalWhiteRemoteAddresses:"))
        .skip(1)
        .take_while(|l| l.trim_start().starts_with("- "))
        .map(|l| {
            l.trim_start()[2..]
                .trim_matches(|c| c == '\'' || c == '"')
                .to_owned()
        })
        .collect();
    assert_eq!(whitelist, ["10.*", "192.168.*"], "{text}");

    // Each change bumped the version; the table shows it.
    let v2 = acl_version(&ns, &broker);
    assert!(v2 > v1, "{v1} -> {v2}");
    let table = admin_cmd(
        &ns,
        &["clusterAclConfigVersion", "--cluster", "DefaultCluster"],
    );
    assert!(table.success, "{}{}", table.stdout, table.stderr);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", table.stdout);
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(
        header,
        ["cluster", "broker", "address", "version", "updated"]
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        row[..4],
        [
            "DefaultCluster",
            "broker-a",
            broker.as_str(),
            &v2.to_string()
        ],
        "{}",
        table.stdout
    );
}
