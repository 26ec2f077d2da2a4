//! Plain access control, compatible with RocketMQ 4.9's plain ACL: the rules of
//! `plain_acl.yml`, checked on every request (whitelists, the `AclClientRPCHook` signature,
//! admin codes, topic and group permissions), and reloaded when the file changes. It owns the
//! current rule set; it never logs or answers with a secret, and a file that does not parse
//! never replaces rules that did.

pub mod edit;
mod plain;
mod replay;
mod resource;
mod signature;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use parking_lot::{Mutex, RwLock};
use petrel_common::topic::DataVersion;
use petrel_remoting::{CancellationToken, RemotingCommand};
use serde_yaml_ng::Mapping;

pub use plain::{AddressPattern, Rules};
pub use replay::{
    ReplayGuard, DEFAULT_ACL_REPLAY_CACHE_MAX_ENTRIES, DEFAULT_ACL_SIGNATURE_MAX_AGE_SEC,
};
pub use signature::{sign, ACCESS_KEY, SECURITY_TOKEN, SIGNATURE};

use plain::{check_permission, perm_name, PUB};
use resource::{needed, needs_admin};

/// How often the file's modification time and size are looked at.
pub const ACL_RELOAD_POLL_MS: u64 = 1000;

/// RocketMQ skips the permission check of trace messages sent to this topic.
const RMQ_SYS_TRACE_TOPIC: &str = "RMQ_SYS_TRACE_TOPIC";

/// The file's identity at its last load: a change of either means "read it again".
type Stamp = Option<(SystemTime, u64)>;

/// The rules in force and the file they come from.
pub struct PlainAcl {
    path: PathBuf,
    rules: RwLock<Arc<Rules>>,
    /// Held across a reload and across a change, so the two never interleave.
    loaded: Mutex<Loaded>,
    /// Refuses stale and replayed signed sends.
    replay: ReplayGuard,
}

/// The file as last loaded or written.
struct Loaded {
    stamp: Stamp,
    /// Bumped whenever new rules come into force (`mqadmin clusterAclConfigVersion` shows it).
    version: DataVersion,
}

/// Why a change asked for over the wire was not made.
#[derive(Debug, thiserror::Error)]
pub enum AclChangeError {
    /// Bad input, or a result the parser would refuse; the file is untouched.
    #[error("{0}")]
    Invalid(String),
    #[error("cannot write {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl PlainAcl {
    /// Loads `path`. A missing file is an empty rule set (everything refused) that the reload
    /// picks up once the file appears; a file that does not parse stops the start.
    pub fn load(path: PathBuf) -> Result<PlainAcl, String> {
        let stamp = stamp(&path);
        let rules = match std::fs::read_to_string(&path) {
            Ok(text) => Rules::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::warn!(file = %path.display(), "ACL is on but the file is missing: every request is refused until it appears");
                Rules::default()
            }
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        tracing::info!(file = %path.display(), accounts = rules.accounts.len(), "ACL rules loaded");
        Ok(PlainAcl {
            path,
            rules: RwLock::new(Arc::new(rules)),
            loaded: Mutex::new(Loaded {
                stamp,
                version: DataVersion::now(),
            }),
            replay: ReplayGuard::new(
                DEFAULT_ACL_SIGNATURE_MAX_AGE_SEC,
                DEFAULT_ACL_REPLAY_CACHE_MAX_ENTRIES,
            ),
        })
    }

    /// Signed sends must be born within `max_age_sec` of the broker's clock (0: any time) and
    /// not seen before; at most `max_entries` signatures are remembered.
    pub fn with_signature_window(mut self, max_age_sec: u64, max_entries: usize) -> PlainAcl {
        self.replay = ReplayGuard::new(max_age_sec, max_entries);
        self
    }

    /// Fresh signed sends let through unremembered because the replay cache was full.
    pub fn replay_cache_overflows(&self) -> u64 {
        self.replay.overflows()
    }

    /// The version of the rules in force.
    pub fn version(&self) -> DataVersion {
        self.loaded.lock().version
    }

    /// Applies `edit` to the file's current document, checks that the result parses, writes it
    /// atomically (a temporary file, fsync, rename) and puts it in force at once. Nothing
    /// changes when `edit` or the check fails. The watcher does not read the file meanwhile,
    /// and afterwards sees the stamp of the file written here, so it does not load it twice.
    pub fn change(
        &self,
        edit: impl FnOnce(&mut Mapping) -> Result<(), String>,
    ) -> Result<(), AclChangeError> {
        let mut loaded = self.loaded.lock();
        let io = |source| AclChangeError::Io {
            path: self.path.display().to_string(),
            source,
        };
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io(e)),
        };
        let mut doc = edit::document(&text).map_err(AclChangeError::Invalid)?;
        edit(&mut doc).map_err(AclChangeError::Invalid)?;
        let text = edit::render(&doc).map_err(AclChangeError::Invalid)?;
        let rules = Rules::parse(&text).map_err(AclChangeError::Invalid)?;
        petrel_store::metadata::write_atomic(&self.path, text.as_bytes()).map_err(io)?;
        loaded.stamp = stamp(&self.path);
        loaded.version.bump();
        tracing::info!(file = %self.path.display(), accounts = rules.accounts.len(), "ACL rules changed by an admin request");
        *self.rules.write() = Arc::new(rules);
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the file again if it changed since the last load. A file that does not parse keeps
    /// the old rules and says why in the log. Returns whether new rules are in force.
    pub fn reload_if_changed(&self) -> bool {
        let mut loaded = self.loaded.lock();
        let now = stamp(&self.path);
        if now == loaded.stamp || now.is_none() {
            return false;
        }
        loaded.stamp = now;
        let parsed = std::fs::read_to_string(&self.path)
            .map_err(|e| e.to_string())
            .and_then(|text| Rules::parse(&text));
        match parsed {
            Ok(rules) => {
                tracing::info!(file = %self.path.display(), accounts = rules.accounts.len(), "ACL rules reloaded");
                *self.rules.write() = Arc::new(rules);
                loaded.version.bump();
                true
            }
            Err(e) => {
                tracing::error!(file = %self.path.display(), "ACL file not reloaded, the previous rules stay in force: {e}");
                false
            }
        }
    }

    /// Polls the file until `shutdown`.
    pub async fn watch(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_millis(ACL_RELOAD_POLL_MS));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            self.reload_if_changed();
        }
    }

    /// Checks `req` from `peer` against the rules in force; `Err` is the remark of the
    /// NO_PERMISSION answer.
    pub fn check(&self, req: &RemotingCommand, peer: IpAddr) -> Result<(), String> {
        let rules = self.rules.read().clone();
        let now_ms = petrel_common::msg_id::now_ms() as i64;
        check_at(&rules, req, peer, Some((&self.replay, now_ms)))
    }
}

fn stamp(path: &Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// RocketMQ's `PlainPermissionManager.validate`, with remarks that say what was missing.
pub fn check(rules: &Rules, req: &RemotingCommand, peer: IpAddr) -> Result<(), String> {
    check_at(rules, req, peer, None)
}

/// [`check`], and with `replay` (the guard and the broker's clock) a signed send must also be
/// fresh and new.
fn check_at(
    rules: &Rules,
    req: &RemotingCommand,
    peer: IpAddr,
    replay: Option<(&ReplayGuard, i64)>,
) -> Result<(), String> {
    let ip = match peer {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(peer)
            .to_string(),
        IpAddr::V4(_) => peer.to_string(),
    };
    if rules
        .global_white_remote_addresses
        .iter()
        .any(|p| p.matches(&ip))
    {
        return Ok(());
    }
    let Some(access_key) = req.ext_fields.get(ACCESS_KEY) else {
        return Err(format!(
            "the request carries no AccessKey and address {ip} is not whitelisted"
        ));
    };
    let Some(account) = rules.accounts.get(access_key) else {
        return Err(format!("unknown accessKey {access_key}"));
    };
    if account.white_remote_address.matches(&ip) {
        return Ok(());
    }
    match req.ext_fields.get(SIGNATURE) {
        None => {
            return Err(format!(
                "the request carries no Signature for accessKey {access_key}"
            ))
        }
        Some(s) if !signature::verify(&account.secret_key, req, s) => {
            return Err(format!("signature mismatch for accessKey {access_key}"))
        }
        Some(s) => {
            if let Some((guard, now_ms)) = replay {
                guard.admit(req, access_key, s, now_ms)?;
            }
        }
    }
    if needs_admin(req.code) && !account.admin {
        return Err(format!(
            "request code {} needs an admin account and accessKey {access_key} is not one",
            req.code
        ));
    }
    let needs = needed(req)?;
    if needs
        .iter()
        .any(|n| n.resource == RMQ_SYS_TRACE_TOPIC && n.perm == PUB)
    {
        return Ok(());
    }
    if account.admin && account.resource_perms.is_empty() {
        return Ok(());
    }
    for n in &needs {
        let owned = account
            .resource_perms
            .get(&n.resource)
            .copied()
            .unwrap_or(if n.is_group() {
                account.default_group_perm
            } else {
                account.default_topic_perm
            });
        if !check_permission(n.perm, owned) {
            return Err(format!(
                "No permission to {} {} for account {access_key}",
                perm_name(n.perm),
                n.describe()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use petrel_remoting::code::request;

    const RULES: &str = "
globalWhiteRemoteAddresses:
  - 10.10.103.*
accounts:
  - accessKey: ak1
    secretKey: secret-one
    whiteRemoteAddress: 192.168.9.9
    defaultTopicPerm: DENY
    defaultGroupPerm: DENY
    topicPerms: [A=PUB|SUB, C=SUB]
    groupPerms: [G=SUB]
  - accessKey: root1
    secretKey: secret-root
    admin: true
";

    fn rules() -> Rules {
        Rules::parse(RULES).unwrap()
    }

    fn local() -> IpAddr {
        "127.0.0.1".parse().unwrap()
    }

    fn signed(mut req: RemotingCommand, ak: &str, secret: &str) -> RemotingCommand {
        req.ext_fields.insert(ACCESS_KEY, ak);
        let s = sign(secret, &req);
        req.ext_fields.insert(SIGNATURE, s);
        req
    }

    fn send(topic: &str) -> RemotingCommand {
        let mut r = RemotingCommand::request(request::SEND_MESSAGE_V2);
        r.ext_fields.insert("a", "P");
        r.ext_fields.insert("b", topic);
        r
    }

    fn pull(topic: &str, group: &str) -> RemotingCommand {
        let mut r = RemotingCommand::request(request::PULL_MESSAGE);
        r.ext_fields.insert("topic", topic);
        r.ext_fields.insert("consumerGroup", group);
        r
    }

    #[test]
    fn an_account_gets_exactly_its_permissions() {
        let r = rules();
        let ok = |req| check(&r, &signed(req, "ak1", "secret-one"), local());
        assert_eq!(ok(send("A")), Ok(()));
        assert_eq!(ok(pull("A", "G")), Ok(()));
        assert_eq!(
            ok(send("B")),
            Err("No permission to PUB topic B for account ak1".into())
        );
        assert_eq!(
            ok(send("C")),
            Err("No permission to PUB topic C for account ak1".into())
        );
        assert_eq!(
            ok(pull("A", "H")),
            Err("No permission to SUB group H for account ak1".into())
        );
        assert!(
            ok(RemotingCommand::request(request::UPDATE_AND_CREATE_TOPIC))
                .unwrap_err()
                .contains("needs an admin account")
        );
    }

    #[test]
    fn wrong_secrets_unknown_keys_and_strangers_are_refused_without_the_secret() {
        let r = rules();
        let e = check(&r, &signed(send("A"), "ak1", "guess"), local()).unwrap_err();
        assert_eq!(e, "signature mismatch for accessKey ak1");
        assert!(!e.contains("secret-one"));
        let e = check(&r, &signed(send("A"), "ak9", "x"), local()).unwrap_err();
        assert_eq!(e, "unknown accessKey ak9");
        let e = check(&r, &send("A"), local()).unwrap_err();
        assert_eq!(
            e,
            "the request carries no AccessKey and address 127.0.0.1 is not whitelisted"
        );
        let mut unsigned = send("A");
        unsigned.ext_fields.insert(ACCESS_KEY, "ak1");
        assert!(check(&r, &unsigned, local())
            .unwrap_err()
            .contains("no Signature"));
        let mut tampered = signed(send("A"), "ak1", "secret-one");
        tampered.ext_fields.insert("b", "B");
        assert!(check(&r, &tampered, local())
            .unwrap_err()
            .contains("signature mismatch"));
    }

    #[test]
    fn whitelisted_addresses_pass_without_a_signature() {
        let r = rules();
        let global: IpAddr = "10.10.103.5".parse().unwrap();
        assert_eq!(check(&r, &send("Z"), global), Ok(()));
        let mapped: IpAddr = "::ffff:10.10.103.5".parse().unwrap();
        assert_eq!(check(&r, &send("Z"), mapped), Ok(()));
        let mut own = send("Z");
        own.ext_fields.insert(ACCESS_KEY, "ak1");
        assert_eq!(check(&r, &own, "192.168.9.9".parse().unwrap()), Ok(()));
        assert!(check(&r, &own, "192.168.9.8".parse().unwrap()).is_err());
    }

    #[test]
    fn admins_without_permissions_reach_everything_and_trace_sends_pass() {
        let r = rules();
        let root = |req| check(&r, &signed(req, "root1", "secret-root"), local());
        assert_eq!(root(send("anything")), Ok(()));
        assert_eq!(
            root(RemotingCommand::request(request::DELETE_TOPIC_IN_BROKER)),
            Ok(())
        );
        let trace = signed(send(RMQ_SYS_TRACE_TOPIC), "ak1", "secret-one");
        assert_eq!(check(&r, &trace, local()), Ok(()));
    }

    #[test]
    fn a_changed_file_is_reloaded_and_a_bad_one_keeps_the_old_rules() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plain_acl.yml");
        std::fs::write(&path, RULES).unwrap();
        // These check one request again and again: no replay check.
        let acl = PlainAcl::load(path.clone())
            .unwrap()
            .with_signature_window(0, 0);
        let req = signed(send("B"), "ak1", "secret-one");
        assert!(acl.check(&req, local()).is_err());
        assert!(!acl.reload_if_changed(), "unchanged");
        std::fs::write(&path, RULES.replace("C=SUB", "C=SUB, B=PUB")).unwrap();
        assert!(acl.reload_if_changed());
        assert_eq!(acl.check(&req, local()), Ok(()));
        std::fs::write(&path, "accounts: [").unwrap();
        assert!(!acl.reload_if_changed());
        assert_eq!(acl.check(&req, local()), Ok(()), "old rules kept");
    }

    #[test]
    fn a_change_is_written_whole_in_force_at_once_and_not_reloaded_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plain_acl.yml");
        std::fs::write(&path, RULES).unwrap();
        // These check one request again and again: no replay check.
        let acl = PlainAcl::load(path.clone())
            .unwrap()
            .with_signature_window(0, 0);
        let before = acl.version();
        let req = signed(send("B"), "ak_new_1", "secret-new");
        assert!(acl.check(&req, local()).is_err());
        let update = edit::AccountUpdate {
            access_key: "ak_new_1".into(),
            secret_key: "secret-new".into(),
            topic_perms: Some(vec!["B=PUB".into()]),
            ..Default::default()
        };
        acl.change(|doc| edit::update_account(doc, &update))
            .unwrap();
        assert_eq!(acl.check(&req, local()), Ok(()));
        assert!(acl.version().counter > before.counter);
        assert!(
            !acl.reload_if_changed(),
            "the watcher does not load the change again"
        );
        assert!(Rules::parse(&std::fs::read_to_string(&path).unwrap())
            .unwrap()
            .accounts
            .contains_key("ak_new_1"));
        let written = std::fs::read_to_string(&path).unwrap();
        let e = acl
            .change(|doc| edit::delete_account(doc, "nobody"))
            .unwrap_err();
        assert_eq!(e.to_string(), "no account with accessKey nobody");
        let bad = acl.change(|doc| {
            edit::set_global_white_addrs(doc, &["300.1.1.1".into()]);
            Ok(())
        });
        assert!(bad.is_err());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            written,
            "file untouched"
        );
        assert_eq!(acl.check(&req, local()), Ok(()), "rules untouched");
    }

    #[test]
    fn a_replayed_or_stale_signed_send_is_refused_and_pulls_may_repeat() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plain_acl.yml");
        std::fs::write(&path, RULES).unwrap();
        let acl = PlainAcl::load(path).unwrap();
        let now = petrel_common::msg_id::now_ms() as i64;
        let born = |t: i64| {
            let mut r = send("A");
            r.ext_fields.insert("g", t.to_string());
            signed(r, "ak1", "secret-one")
        };
        let fresh = born(now);
        assert_eq!(acl.check(&fresh, local()), Ok(()));
        let e = acl.check(&fresh, local()).unwrap_err();
        assert!(e.starts_with("replayed signature for accessKey ak1"), "{e}");
        assert!(!e.contains("secret-one"));
        let e = acl.check(&born(now - 3_600_000), local()).unwrap_err();
        assert!(e.starts_with("expired signature for accessKey ak1"), "{e}");
        assert_eq!(acl.check(&born(now + 1), local()), Ok(()));
        let pull = signed(pull("A", "G"), "ak1", "secret-one");
        assert_eq!(acl.check(&pull, local()), Ok(()));
        assert_eq!(acl.check(&pull, local()), Ok(()), "a pull may repeat");
        let off = PlainAcl::load(dir.path().join("plain_acl.yml"))
            .unwrap()
            .with_signature_window(0, 10);
        let old = born(now - 3_600_000);
        assert_eq!(off.check(&old, local()), Ok(()));
        assert_eq!(off.check(&old, local()), Ok(()), "window 0: no check");
    }

    #[test]
    fn a_missing_file_refuses_everything_and_a_bad_one_stops_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plain_acl.yml");
        let acl = PlainAcl::load(path.clone()).unwrap();
        assert!(acl.check(&send("A"), local()).is_err());
        std::fs::write(&path, "accounts: [").unwrap();
        assert!(PlainAcl::load(path).is_err());
    }
}
