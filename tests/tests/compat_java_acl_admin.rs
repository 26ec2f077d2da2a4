//! mqadmin 4.9.8's ACL commands (compat/java AclAdmin.java, mqadmin run in-process and signed
//! with the admin account through its `conf/tools.yml`) against a Petrel with `aclEnable` whose
//! `plain_acl.yml` holds only that admin: `updateAclConfig` creates an account a signed producer
//! then sends with exactly where granted, a non-admin's and a bad permission's attempts are
//! refused, `deleteAccessConfig` removes the account, `updateGlobalWhiteAddr` lets an unsigned
//! client in, and `clusterAclConfigVersion` shows a version that grew after each change. The
//! file left behind holds the admin and the whitelist, not the deleted account.

use petrel_tests::java::{scenario, unique_run_name};

const RULES: &str = "accounts:
  - accessKey: rocketmq_admin
    secretKey: admin-secret-1
    admin: true
";

#[test]
fn mqadmin_acl_commands_change_plain_acl_yml_and_apply_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let run = unique_run_name();
    let acl_file = dir.path().join("plain_acl.yml");
    std::fs::write(&acl_file, RULES).unwrap();
    let out = petrel_tests::process::run_against_petrel(
        petrel_tests::config_with_acl(dir.path(), &acl_file, ""),
        "AclAdmin.commands",
        |petrel| scenario("AclAdmin.commands", &petrel.namesrv_addr, &run, &[]),
    );
    // Shown with --nocapture: every mqadmin command, what it printed, and each refusal.
    println!("{}", out.stdout);
    let versions = out
        .result("versions")
        .expect("the scenario reports the versions");
    let versions: Vec<u64> = versions.split(',').map(|v| v.parse().unwrap()).collect();
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
    for what in [
        "the new account sending to TopicQ",
        "updateAclConfig signed by",
        "the deleted account",
        "no AccessKey before the whitelist",
    ] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.starts_with("REFUSED ") && l.contains(what)),
            "no refusal of {what}\n{}",
            out.stdout
        );
    }
    let text = std::fs::read_to_string(&acl_file).unwrap();
    assert!(text.contains("rocketmq_admin"), "{text}");
    assert!(!text.contains("ak_mqadmin_user"), "{text}");
    assert!(text.contains("127.0.0.1"), "{text}");
    assert!(
        !dir.path().join("plain_acl.yml.tmp").exists(),
        "no temporary file left"
    );
}
