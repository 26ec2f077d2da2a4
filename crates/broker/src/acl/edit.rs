//! Changes to `plain_acl.yml` asked for over the wire (mqadmin's `updateAclConfig`,
//! `deleteAccessConfig`, `updateGlobalWhiteAddr`), made on the file's YAML document so the keys
//! and entries a change does not touch stay as they were written. Text in, text out: it never
//! touches the disk, and it never puts a secret in an error.

use serde_yaml_ng::{Mapping, Value};

/// RocketMQ 4.9.8 refuses keys and secrets of 6 characters or fewer.
const MIN_KEY_CHARS: usize = 7;

const ACCOUNTS: &str = "accounts";
const GLOBAL_WHITE: &str = "globalWhiteRemoteAddresses";

/// What `CreateAccessConfigRequestHeader` carries; `None` leaves the account's value as it is.
#[derive(Debug, Default, Clone)]
pub struct AccountUpdate {
    pub access_key: String,
    pub secret_key: String,
    pub white_remote_address: Option<String>,
    pub admin: bool,
    pub default_topic_perm: Option<String>,
    pub default_group_perm: Option<String>,
    pub topic_perms: Option<Vec<String>>,
    pub group_perms: Option<Vec<String>>,
}

/// The file's top-level mapping; a blank file is an empty one.
pub fn document(text: &str) -> Result<Mapping, String> {
    if text.trim().is_empty() {
        return Ok(Mapping::new());
    }
    match serde_yaml_ng::from_str::<Value>(text).map_err(|e| e.to_string())? {
        Value::Mapping(m) => Ok(m),
        Value::Null => Ok(Mapping::new()),
        _ => Err("the ACL file is not a YAML mapping".into()),
    }
}

pub fn render(doc: &Mapping) -> Result<String, String> {
    serde_yaml_ng::to_string(doc).map_err(|e| e.to_string())
}

/// Creates the account or updates it, as RocketMQ's `updateAccessConfig`: the secret and the
/// admin flag always, every other field only when given.
pub fn update_account(doc: &mut Mapping, u: &AccountUpdate) -> Result<(), String> {
    if u.access_key.chars().count() < MIN_KEY_CHARS {
        return Err(format!(
            "accessKey {:?} is too short: it needs at least {MIN_KEY_CHARS} characters",
            u.access_key
        ));
    }
    if u.secret_key.chars().count() < MIN_KEY_CHARS {
        return Err(format!(
            "the secretKey of accessKey {} is too short: it needs at least {MIN_KEY_CHARS} characters",
            u.access_key
        ));
    }
    let accounts = accounts(doc)?;
    let at = position(accounts, &u.access_key);
    let account = match at {
        Some(i) => match &mut accounts[i] {
            Value::Mapping(m) => m,
            _ => unreachable!("position only finds mappings"),
        },
        None => {
            accounts.push(Value::Mapping(Mapping::new()));
            match accounts.last_mut() {
                Some(Value::Mapping(m)) => m,
                _ => unreachable!("a mapping was just pushed"),
            }
        }
    };
    let mut set = |k: &str, v: Value| {
        account.insert(Value::String(k.into()), v);
    };
    set("accessKey", Value::String(u.access_key.clone()));
    set("secretKey", Value::String(u.secret_key.clone()));
    if let Some(w) = &u.white_remote_address {
        set("whiteRemoteAddress", Value::String(w.clone()));
    }
    set("admin", Value::Bool(u.admin));
    if let Some(p) = &u.default_topic_perm {
        set("defaultTopicPerm", Value::String(p.clone()));
    }
    if let Some(p) = &u.default_group_perm {
        set("defaultGroupPerm", Value::String(p.clone()));
    }
    if let Some(list) = &u.topic_perms {
        set("topicPerms", strings(list));
    }
    if let Some(list) = &u.group_perms {
        set("groupPerms", strings(list));
    }
    Ok(())
}

/// Removes the account; an unknown one is an error.
pub fn delete_account(doc: &mut Mapping, access_key: &str) -> Result<(), String> {
    let accounts = accounts(doc)?;
    match position(accounts, access_key) {
        Some(i) => {
            accounts.remove(i);
            Ok(())
        }
        None => Err(format!("no account with accessKey {access_key}")),
    }
}

/// Replaces the global whitelist.
pub fn set_global_white_addrs(doc: &mut Mapping, addrs: &[String]) {
    doc.insert(Value::String(GLOBAL_WHITE.into()), strings(addrs));
}

fn strings(list: &[String]) -> Value {
    Value::Sequence(list.iter().cloned().map(Value::String).collect())
}

fn accounts(doc: &mut Mapping) -> Result<&mut Vec<Value>, String> {
    let key = Value::String(ACCOUNTS.into());
    if matches!(doc.get(&key), None | Some(Value::Null)) {
        doc.insert(key.clone(), Value::Sequence(Vec::new()));
    }
    match doc.get_mut(&key) {
        Some(Value::Sequence(s)) => Ok(s),
        _ => Err("accounts: a list expected".into()),
    }
}

fn position(accounts: &[Value], access_key: &str) -> Option<usize> {
    accounts.iter().position(|a| {
        let Value::Mapping(m) = a else { return false };
        match m.get("accessKey") {
            Some(Value::String(s)) => s == access_key,
            Some(Value::Number(n)) => n.to_string() == access_key,
            _ => false,
        }
    })
}

/// Splits a comma-separated header value as RocketMQ's `UtilAll.split`: blank parts dropped.
pub fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::Rules;

    const FILE: &str = "
# a comment
globalWhiteRemoteAddresses:
  - 10.10.103.*
accounts:
  - accessKey: RocketMQ
    secretKey: 12345678
    defaultTopicPerm: DENY
    topicPerms:
      - topicA=DENY
";

    fn user(ak: &str) -> AccountUpdate {
        AccountUpdate {
            access_key: ak.into(),
            secret_key: "secret-new".into(),
            topic_perms: Some(vec!["T1=PUB".into()]),
            ..Default::default()
        }
    }

    #[test]
    fn a_new_account_is_added_and_the_rest_of_the_file_stays() {
        let mut doc = document(FILE).unwrap();
        update_account(&mut doc, &user("ak_new_1")).unwrap();
        let rules = Rules::parse(&render(&doc).unwrap()).unwrap();
        assert_eq!(rules.accounts.len(), 2);
        assert_eq!(
            rules.accounts["ak_new_1"].resource_perms["T1"],
            super::super::PUB
        );
        assert_eq!(rules.accounts["RocketMQ"].secret_key, "12345678");
        assert_eq!(rules.global_white_remote_addresses.len(), 1);
    }

    #[test]
    fn an_update_changes_only_what_it_names() {
        let mut doc = document(FILE).unwrap();
        let u = AccountUpdate {
            access_key: "RocketMQ".into(),
            secret_key: "another-secret".into(),
            admin: true,
            ..Default::default()
        };
        update_account(&mut doc, &u).unwrap();
        let rules = Rules::parse(&render(&doc).unwrap()).unwrap();
        let a = &rules.accounts["RocketMQ"];
        assert_eq!(a.secret_key, "another-secret");
        assert!(a.admin);
        assert!(a.resource_perms.contains_key("topicA"), "topicPerms kept");
    }

    #[test]
    fn delete_and_whitelist() {
        let mut doc = document(FILE).unwrap();
        assert_eq!(
            delete_account(&mut doc, "nobody"),
            Err("no account with accessKey nobody".into())
        );
        delete_account(&mut doc, "RocketMQ").unwrap();
        set_global_white_addrs(&mut doc, &split_list("127.0.0.1, 10.0.*,"));
        let rules = Rules::parse(&render(&doc).unwrap()).unwrap();
        assert!(rules.accounts.is_empty());
        assert!(rules.global_white_remote_addresses[0].matches("127.0.0.1"));
        assert!(rules.global_white_remote_addresses[1].matches("10.0.3.4"));
    }

    #[test]
    fn short_keys_are_refused_without_the_secret_and_a_blank_file_is_empty() {
        let mut doc = document("").unwrap();
        let e = update_account(&mut doc, &user("ak1")).unwrap_err();
        assert!(e.contains("accessKey \"ak1\" is too short"), "{e}");
        let mut u = user("ak_long_enough");
        u.secret_key = "s3cr".into();
        let e = update_account(&mut doc, &u).unwrap_err();
        assert!(!e.contains("s3cr"), "{e}");
        update_account(&mut doc, &user("ak_long_enough")).unwrap();
        assert_eq!(
            Rules::parse(&render(&doc).unwrap()).unwrap().accounts.len(),
            1
        );
    }
}
