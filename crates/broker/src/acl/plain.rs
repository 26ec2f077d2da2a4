//! `plain_acl.yml` in RocketMQ 4.9's format, compiled into [`Rules`]: the global address
//! whitelist and the accounts with their whitelists, admin flags and permissions. Parsing only;
//! it never reads the clock or the network. A file that does not parse is an error naming the
//! entry at fault, never a partial rule set.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use petrel_common::topic::retry_topic;
use serde::Deserialize;

/// RocketMQ's `Permission` bits.
pub const DENY: u8 = 1;
pub const ANY: u8 = 1 << 1;
pub const PUB: u8 = 1 << 2;
pub const SUB: u8 = 1 << 3;

/// Java's `Permission.checkPermission`: DENY wins, ANY is PUB or SUB, else the bits must meet.
pub fn check_permission(needed: u8, owned: u8) -> bool {
    if owned & DENY != 0 {
        return false;
    }
    if needed & ANY != 0 {
        return owned & (PUB | SUB) != 0;
    }
    needed & owned != 0
}

/// `DENY`, `PUB`, `SUB`, `PUB|SUB` or `SUB|PUB`; `None` for anything else.
pub fn parse_perm(s: &str) -> Option<u8> {
    match s.trim() {
        "DENY" => Some(DENY),
        "PUB" => Some(PUB),
        "SUB" => Some(SUB),
        "PUB|SUB" | "SUB|PUB" => Some(PUB | SUB),
        _ => None,
    }
}

/// `PUB`, `SUB` or `PUB|SUB`, for remarks.
pub fn perm_name(perm: u8) -> &'static str {
    match perm & (PUB | SUB) {
        PUB => "PUB",
        SUB => "SUB",
        _ => "PUB|SUB",
    }
}

/// One `whiteRemoteAddress` pattern, IPv4 as RocketMQ writes them: `*`, one address, a
/// comma-separated list, `192.168.1.{1,2,3}`, or segments with `*` / `n-m` (`10.10.103.*`,
/// `192.168.1.1-100`). A blank pattern matches nothing.
#[derive(Debug, Clone, PartialEq)]
pub enum AddressPattern {
    Nothing,
    Any,
    Exact(Vec<String>),
    Range(Vec<Segment>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Segment {
    Any,
    Between(u8, u8),
}

impl AddressPattern {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(AddressPattern::Nothing);
        }
        if s == "*" || s == "*.*.*.*" {
            return Ok(AddressPattern::Any);
        }
        if let Some(open) = s.find('{') {
            let (prefix, rest) = s.split_at(open);
            let inner = rest
                .strip_prefix('{')
                .and_then(|r| r.strip_suffix('}'))
                .filter(|_| prefix.ends_with('.'))
                .ok_or_else(|| format!("bad address pattern {s:?}"))?;
            let list = inner
                .split(',')
                .map(|last| one_address(&format!("{prefix}{}", last.trim())))
                .collect::<Result<_, _>>()?;
            return Ok(AddressPattern::Exact(list));
        }
        if s.contains(',') {
            let list = s
                .split(',')
                .map(|a| one_address(a.trim()))
                .collect::<Result<_, _>>()?;
            return Ok(AddressPattern::Exact(list));
        }
        if s.contains('*') || s.contains('-') {
            return range(s);
        }
        Ok(AddressPattern::Exact(vec![one_address(s)?]))
    }

    /// Whether `ip` (the peer's address without its port) matches.
    pub fn matches(&self, ip: &str) -> bool {
        match self {
            AddressPattern::Nothing => false,
            AddressPattern::Any => true,
            AddressPattern::Exact(list) => list.iter().any(|a| a == ip),
            AddressPattern::Range(segments) => {
                let Ok(addr) = ip.parse::<Ipv4Addr>() else {
                    return false;
                };
                addr.octets()
                    .iter()
                    .zip(segments)
                    .all(|(&octet, seg)| match *seg {
                        Segment::Any => true,
                        Segment::Between(lo, hi) => (lo..=hi).contains(&octet),
                    })
            }
        }
    }
}

fn one_address(s: &str) -> Result<String, String> {
    s.parse::<Ipv4Addr>()
        .map(|a| a.to_string())
        .map_err(|_| format!("bad address {s:?} (IPv4 expected)"))
}

/// `10.10.*`, `10.10.103.*`, `192.168.1.1-100`: a trailing `*` covers the remaining segments.
fn range(s: &str) -> Result<AddressPattern, String> {
    let bad = || format!("bad address pattern {s:?}");
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() > 4 {
        return Err(bad());
    }
    let mut segments = Vec::with_capacity(4);
    for (i, part) in parts.iter().enumerate() {
        let seg = if *part == "*" {
            Segment::Any
        } else if let Some((lo, hi)) = part.split_once('-') {
            let lo: u8 = lo.trim().parse().map_err(|_| bad())?;
            let hi: u8 = hi.trim().parse().map_err(|_| bad())?;
            if lo > hi {
                return Err(bad());
            }
            Segment::Between(lo, hi)
        } else {
            let n: u8 = part.trim().parse().map_err(|_| bad())?;
            Segment::Between(n, n)
        };
        if i < 4 {
            segments.push(seg);
        }
    }
    if segments.len() < 4 {
        if parts.last() != Some(&"*") {
            return Err(bad());
        }
        segments.resize(4, Segment::Any);
    }
    Ok(AddressPattern::Range(segments))
}

/// One account, compiled.
#[derive(Debug, Clone)]
pub struct Account {
    pub access_key: String,
    pub secret_key: String,
    pub white_remote_address: AddressPattern,
    pub admin: bool,
    pub default_topic_perm: u8,
    pub default_group_perm: u8,
    /// Topics by name, groups by their retry topic (`%RETRY%G`), as RocketMQ keys them.
    pub resource_perms: HashMap<String, u8>,
}

/// The whole file, compiled.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    pub global_white_remote_addresses: Vec<AddressPattern>,
    pub accounts: HashMap<String, Account>,
}

/// A YAML scalar read as text: RocketMQ's sample file writes `secretKey: 12345678`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Scalar {
    fn into_string(self) -> String {
        match self {
            Scalar::Text(s) => s,
            Scalar::Int(n) => n.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct FileFormat {
    #[serde(default)]
    global_white_remote_addresses: Option<Vec<Scalar>>,
    #[serde(default)]
    accounts: Option<Vec<AccountFormat>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AccountFormat {
    access_key: Option<Scalar>,
    secret_key: Option<Scalar>,
    white_remote_address: Option<Scalar>,
    #[serde(default)]
    admin: Option<bool>,
    default_topic_perm: Option<String>,
    default_group_perm: Option<String>,
    topic_perms: Option<Vec<String>>,
    group_perms: Option<Vec<String>>,
}

impl Rules {
    /// Parses a `plain_acl.yml`. An empty file is an empty rule set (nobody gets in unless
    /// whitelisted — and nobody is).
    pub fn parse(text: &str) -> Result<Rules, String> {
        let file: FileFormat = if text.trim().is_empty() {
            FileFormat::default()
        } else {
            serde_yaml_ng::from_str::<Option<FileFormat>>(text)
                .map_err(|e| e.to_string())?
                .unwrap_or_default()
        };
        let mut rules = Rules::default();
        for a in file.global_white_remote_addresses.unwrap_or_default() {
            let a = a.into_string();
            rules.global_white_remote_addresses.push(
                AddressPattern::parse(&a)
                    .map_err(|e| format!("globalWhiteRemoteAddresses: {e}"))?,
            );
        }
        for (i, a) in file.accounts.unwrap_or_default().into_iter().enumerate() {
            let account = compile_account(a).map_err(|e| format!("accounts[{i}]: {e}"))?;
            if rules.accounts.contains_key(&account.access_key) {
                return Err(format!(
                    "accounts[{i}]: accessKey {} appears twice",
                    account.access_key
                ));
            }
            rules.accounts.insert(account.access_key.clone(), account);
        }
        Ok(rules)
    }
}

fn compile_account(a: AccountFormat) -> Result<Account, String> {
    let access_key = a
        .access_key
        .map(Scalar::into_string)
        .filter(|s| !s.is_empty())
        .ok_or("accessKey is missing")?;
    let secret_key = a
        .secret_key
        .map(Scalar::into_string)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("secretKey of {access_key} is missing"))?;
    let default_perm = |field: &str, v: Option<String>| match v {
        None => Ok(DENY),
        Some(s) => parse_perm(&s).ok_or_else(|| {
            format!("{field} of {access_key}: {s:?} is not DENY, PUB, SUB or PUB|SUB")
        }),
    };
    let mut resource_perms = HashMap::new();
    for (is_topic, list) in [(true, a.topic_perms), (false, a.group_perms)] {
        for entry in list.unwrap_or_default() {
            let field = if is_topic { "topicPerms" } else { "groupPerms" };
            let (name, perm) = entry
                .split_once('=')
                .filter(|(n, p)| !n.trim().is_empty() && !p.contains('='))
                .ok_or_else(|| format!("{field} of {access_key}: {entry:?} is not Name=PERM"))?;
            let perm = parse_perm(perm).ok_or_else(|| {
                format!("{field} of {access_key}: {entry:?}: the permission is not DENY, PUB, SUB or PUB|SUB")
            })?;
            let name = name.trim();
            let key = if is_topic {
                name.to_owned()
            } else {
                retry_topic(name)
            };
            resource_perms.insert(key, perm);
        }
    }
    Ok(Account {
        white_remote_address: AddressPattern::parse(
            &a.white_remote_address
                .map(Scalar::into_string)
                .unwrap_or_default(),
        )
        .map_err(|e| format!("whiteRemoteAddress of {access_key}: {e}"))?,
        admin: a.admin.unwrap_or(false),
        default_topic_perm: default_perm("defaultTopicPerm", a.default_topic_perm)?,
        default_group_perm: default_perm("defaultGroupPerm", a.default_group_perm)?,
        resource_perms,
        secret_key,
        access_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RocketMQ 4.9.8's distribution/conf/plain_acl.yml, verbatim but for the license header.
    const ROCKETMQ_SAMPLE: &str = "
globalWhiteRemoteAddresses:
  - 10.10.103.*
  - 192.168.0.*

accounts:
  - accessKey: RocketMQ
    secretKey: 12345678
    whiteRemoteAddress:
    admin: false
    defaultTopicPerm: DENY
    defaultGroupPerm: SUB
    topicPerms:
      - topicA=DENY
      - topicB=PUB|SUB
      - topicC=SUB
    groupPerms:
      # the group should convert to retry topic
      - groupA=DENY
      - groupB=PUB|SUB
      - groupC=SUB

  - accessKey: rocketmq2
    secretKey: 12345678
    whiteRemoteAddress: 192.168.1.*
    # if it is admin, it could access all resources
    admin: true
";

    #[test]
    fn rocketmqs_sample_file_parses() {
        let rules = Rules::parse(ROCKETMQ_SAMPLE).unwrap();
        assert_eq!(rules.global_white_remote_addresses.len(), 2);
        assert!(rules.global_white_remote_addresses[0].matches("10.10.103.7"));
        assert!(!rules.global_white_remote_addresses[0].matches("10.10.104.7"));
        let a = &rules.accounts["RocketMQ"];
        assert_eq!(
            a.secret_key, "12345678",
            "a numeric YAML scalar is read as text"
        );
        assert_eq!(a.white_remote_address, AddressPattern::Nothing);
        assert!(!a.admin);
        assert_eq!((a.default_topic_perm, a.default_group_perm), (DENY, SUB));
        assert_eq!(a.resource_perms["topicB"], PUB | SUB);
        assert_eq!(a.resource_perms["topicC"], SUB);
        assert_eq!(
            a.resource_perms["%RETRY%groupA"], DENY,
            "groups keyed by retry topic"
        );
        let admin = &rules.accounts["rocketmq2"];
        assert!(admin.admin);
        assert!(admin.white_remote_address.matches("192.168.1.200"));
        assert_eq!(admin.default_topic_perm, DENY, "unset default is DENY");
    }

    #[test]
    fn bad_files_are_refused_with_the_entry_at_fault() {
        let e = Rules::parse(
            "accounts:\n  - accessKey: ak1\n    secretKey: s\n    topicPerms: [\"A=WRITE\"]\n",
        )
        .unwrap_err();
        assert!(e.contains("accounts[0]") && e.contains("A=WRITE"), "{e}");
        let e = Rules::parse("accounts:\n  - accessKey: ak1\n").unwrap_err();
        assert!(e.contains("secretKey of ak1"), "{e}");
        let e = Rules::parse(
            "accounts:\n  - {accessKey: a, secretKey: b}\n  - {accessKey: a, secretKey: c}\n",
        )
        .unwrap_err();
        assert!(e.contains("twice"), "{e}");
        let e = Rules::parse("globalWhiteRemoteAddresses: [\"10.0.0.300\"]\n").unwrap_err();
        assert!(e.contains("globalWhiteRemoteAddresses"), "{e}");
        assert!(Rules::parse("accounts: [").is_err());
        assert!(Rules::parse("").unwrap().accounts.is_empty());
    }

    #[test]
    fn address_patterns_match_as_rocketmq_writes_them() {
        let p = |s| AddressPattern::parse(s).unwrap();
        assert!(p("*").matches("1.2.3.4"));
        assert!(!p("").matches("1.2.3.4"));
        assert!(p("127.0.0.1").matches("127.0.0.1"));
        assert!(!p("127.0.0.1").matches("127.0.0.2"));
        assert!(p("10.0.0.1,10.0.0.2").matches("10.0.0.2"));
        assert!(p("192.168.1.{1,2,3}").matches("192.168.1.3"));
        assert!(!p("192.168.1.{1,2,3}").matches("192.168.1.4"));
        assert!(p("192.168.1.1-100").matches("192.168.1.100"));
        assert!(!p("192.168.1.1-100").matches("192.168.1.101"));
        assert!(p("10.10.*").matches("10.10.9.9"));
        assert!(p("192.168.1-2.*").matches("192.168.2.77"));
        assert!(!p("192.168.1-2.*").matches("192.168.3.77"));
        for bad in ["10.*.1", "1.2.3.4.5", "a.b.c.d", "1.2.3.{4"] {
            assert!(AddressPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn permissions_follow_rocketmqs_bits() {
        assert!(check_permission(PUB, PUB | SUB));
        assert!(check_permission(SUB, SUB));
        assert!(!check_permission(PUB, SUB));
        assert!(!check_permission(SUB, DENY));
        assert!(!check_permission(PUB, DENY | PUB), "DENY wins");
        assert!(check_permission(ANY, SUB));
        assert_eq!(parse_perm(" SUB|PUB "), Some(PUB | SUB));
        assert_eq!(parse_perm("WRITE"), None);
    }
}
