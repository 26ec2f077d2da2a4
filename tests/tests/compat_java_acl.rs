//! Plain ACL with the official Java 4.9.8 client and its `AclClientRPCHook` (compat/java
//! Acl.java): Petrel runs with `aclEnable` and a `plain_acl.yml` naming this run's topics and
//! groups; the scenario proves an account can do exactly what the file grants, that a wrong
//! secret, an unknown account, a stranger and a tampered request are refused with NO_PERMISSION
//! and a remark, and that granting more in the file applies without a restart.

use petrel_tests::java::{scenario, unique_run_name};

/// The rules of the run `run`; `grant_b` also gives ak_user1 PUB on TopicB.
fn rules(run: &str, grant_b: bool) -> String {
    let b = if grant_b {
        format!("\n      - TopicB_{run}=PUB")
    } else {
        String::new()
    };
    format!(
        "globalWhiteRemoteAddresses:
  - 10.10.103.*

accounts:
  - accessKey: rocketmq_admin
    secretKey: admin-secret-1
    admin: true
  - accessKey: ak_user1
    secretKey: user1-secret
    whiteRemoteAddress:
    admin: false
    defaultTopicPerm: DENY
    defaultGroupPerm: DENY
    topicPerms:
      - TopicA_{run}=PUB|SUB{b}
    groupPerms:
      - GroupG_{run}=SUB
  - accessKey: ak_local
    secretKey: local-secret
    whiteRemoteAddress: 127.0.0.1
"
    )
}

#[test]
fn an_account_does_exactly_what_plain_acl_yml_grants_and_a_change_applies_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let run = unique_run_name();
    let acl_file = dir.path().join("plain_acl.yml");
    let granted = dir.path().join("plain_acl_granted.yml");
    std::fs::write(&acl_file, rules(&run, false)).unwrap();
    std::fs::write(&granted, rules(&run, true)).unwrap();
    let out = petrel_tests::process::run_against_petrel(
        petrel_tests::config_with_acl(dir.path(), &acl_file, ""),
        "Acl.accounts",
        |petrel| {
            scenario(
                "Acl.accounts",
                &petrel.namesrv_addr,
                &run,
                &[
                    ("aclFile", acl_file.display().to_string()),
                    ("granted", granted.display().to_string()),
                ],
            )
        },
    );
    let millis: u64 = out
        .result("reloadMillis")
        .and_then(|v| v.parse().ok())
        .expect("the scenario reports how long the reload took");
    assert!(millis < 5_000, "reloaded after {millis} ms\n{}", out.stdout);
    // Shown with --nocapture: each refusal and its remark.
    println!("{}", out.stdout);
    let refused: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("REFUSED "))
        .collect();
    for what in [
        "ak_user1 creating a topic",
        "ak_user1 sending to TopicB",
        "as GroupH",
        "as GroupG",
        "a wrong secret",
        "an unknown account",
        "no AccessKey",
        "changed after signing",
    ] {
        assert!(
            refused.iter().any(|l| l.contains(what)),
            "no refusal of {what}\n{}",
            out.stdout
        );
    }
}
