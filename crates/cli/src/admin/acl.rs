//! `petrel admin update-acl-config`, `delete-access-config`, `update-global-white-addr` and
//! `cluster-acl-config-version`: mqadmin's plain-ACL commands, sent to each targeted broker
//! (the brokers only take them signed by an admin account: `--access-key`/`--secret-key`).
//! Never prints a secret key.

use anyhow::{bail, Context};
use clap::Args;
use petrel_client::admin::{AclAccountConfig, Admin};
use serde::Serialize;

use super::table::{out, print_json, Table};
use super::{BrokerRef, BrokerTarget};

/// The account `update-acl-config` creates or changes (mqadmin's `updateAclConfig` options).
#[derive(Debug, Clone, Args)]
pub struct AccountArgs {
    /// The account's access key (mqadmin `-a`; not `--access-key`, which signs the request).
    #[arg(short = 'a', long = "account")]
    pub account: String,
    /// The account's secret key (mqadmin `-s`).
    #[arg(short = 's', long = "account-secret")]
    pub account_secret: String,
    /// Address pattern from which the account passes unsigned (mqadmin `-w`).
    #[arg(short = 'w', long)]
    pub white_remote_address: Option<String>,
    /// DENY, PUB, SUB or PUB|SUB for topics not listed (mqadmin `-i`).
    #[arg(short = 'i', long)]
    pub default_topic_perm: Option<String>,
    /// DENY, PUB, SUB or PUB|SUB for groups not listed (mqadmin `-u`).
    #[arg(short = 'u', long)]
    pub default_group_perm: Option<String>,
    /// `Topic=PERM` entries, comma-separated: "A=PUB,B=SUB" (mqadmin `-t`).
    #[arg(short = 't', long)]
    pub topic_perms: Option<String>,
    /// `Group=PERM` entries, comma-separated (mqadmin `-g`).
    #[arg(short = 'g', long)]
    pub group_perms: Option<String>,
    /// Make the account an admin (mqadmin `-m true`).
    #[arg(short = 'm', long)]
    pub admin: bool,
}

impl AccountArgs {
    fn config(&self) -> AclAccountConfig {
        AclAccountConfig {
            access_key: self.account.clone(),
            secret_key: self.account_secret.clone(),
            white_remote_address: self.white_remote_address.clone(),
            default_topic_perm: self.default_topic_perm.clone(),
            default_group_perm: self.default_group_perm.clone(),
            topic_perms: self.topic_perms.as_deref().map(split_list),
            group_perms: self.group_perms.as_deref().map(split_list),
            admin: self.admin,
        }
    }
}

/// What an ACL change did on each broker.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AclChange {
    /// What changed: `account ak1 updated`, `account ak1 deleted`, `global whitelist set`.
    pub change: String,
    pub brokers: Vec<BrokerRef>,
}

/// One broker of `cluster-acl-config-version`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AclVersionRow {
    pub cluster_name: String,
    pub broker_name: String,
    pub broker_addr: String,
    pub timestamp: i64,
    pub counter: i64,
    /// The version per ACL file, keyed by path.
    pub files: std::collections::BTreeMap<String, i64>,
}

/// `A=PUB, B=SUB` as its entries, blanks dropped.
fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

pub async fn update_acl_config(
    admin: &Admin,
    account: &AccountArgs,
    target: &BrokerTarget,
    json: bool,
) -> anyhow::Result<()> {
    let config = account.config();
    let change = format!("account {} updated", config.access_key);
    let brokers = for_each(admin, target, |addr| {
        let config = config.clone();
        async move { admin.update_acl_config(&addr, &config).await }
    })
    .await
    .with_context(|| format!("cannot update account {}", config.access_key))?;
    report(AclChange { change, brokers }, json)
}

pub async fn delete_access_config(
    admin: &Admin,
    access_key: &str,
    target: &BrokerTarget,
    json: bool,
) -> anyhow::Result<()> {
    let brokers = for_each(admin, target, |addr| async move {
        admin.delete_acl_config(&addr, access_key).await
    })
    .await
    .with_context(|| format!("cannot delete account {access_key}"))?;
    let change = format!("account {access_key} deleted");
    report(AclChange { change, brokers }, json)
}

pub async fn update_global_white_addr(
    admin: &Admin,
    addrs: &str,
    target: &BrokerTarget,
    json: bool,
) -> anyhow::Result<()> {
    let list = split_list(addrs);
    if list.is_empty() {
        bail!("give at least one address pattern, e.g. -g \"10.*,192.168.*\"");
    }
    let brokers = for_each(admin, target, |addr| {
        let list = list.clone();
        async move { admin.update_global_white_addrs(&addr, &list).await }
    })
    .await
    .context("cannot update the global whitelist")?;
    let change = format!("global whitelist set to {}", list.join(","));
    report(AclChange { change, brokers }, json)
}

pub async fn cluster_acl_config_version(
    admin: &Admin,
    target: &BrokerTarget,
    json: bool,
) -> anyhow::Result<()> {
    let mut rows = Vec::new();
    for (name, addr) in target.resolve(admin).await? {
        let v = admin
            .acl_config_version(&addr)
            .await
            .with_context(|| format!("cannot read the ACL version of {name} ({addr})"))?;
        rows.push(AclVersionRow {
            cluster_name: v.cluster_name,
            broker_name: v.broker_name,
            broker_addr: v.broker_addr,
            timestamp: v.version.timestamp,
            counter: v.version.counter,
            files: v
                .file_versions
                .into_iter()
                .map(|(file, v)| (file, v.counter))
                .collect(),
        });
    }
    if json {
        return print_json(&rows);
    }
    let mut table = Table::new(&["cluster", "broker", "address", "version", "updated"]);
    for r in rows {
        table.row(vec![
            r.cluster_name,
            r.broker_name,
            r.broker_addr,
            r.counter.to_string(),
            super::time_text(r.timestamp),
        ]);
    }
    table.print();
    Ok(())
}

/// Runs `request` on each targeted broker, stopping at the first refusal.
async fn for_each<F, Fut>(
    admin: &Admin,
    target: &BrokerTarget,
    request: F,
) -> anyhow::Result<Vec<BrokerRef>>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = petrel_client::Result<()>>,
{
    let mut done = Vec::new();
    for (broker_name, addr) in target.resolve(admin).await? {
        request(addr.clone())
            .await
            .with_context(|| format!("refused by {broker_name} ({addr})"))?;
        done.push(BrokerRef { broker_name, addr });
    }
    Ok(done)
}

fn report(change: AclChange, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(&change);
    }
    for b in &change.brokers {
        out!("{} on {} ({})", change.change, b.broker_name, b.addr);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_lists_are_split_on_commas_without_blanks() {
        assert_eq!(split_list("A=PUB, B=SUB,,"), vec!["A=PUB", "B=SUB"]);
        assert!(split_list(" ").is_empty());
    }
}
