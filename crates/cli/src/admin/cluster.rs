//! `petrel admin cluster-list`, `broker-status` and `get-broker-config`: what the name server
//! and each broker say about themselves. Reads only.

use std::collections::BTreeMap;

use anyhow::Context;
use petrel_client::admin::{cluster_brokers, Admin, ClusterListRow};
use serde::Serialize;

use super::table::{out, print_json, print_pairs, Table};
use super::BrokerTarget;

/// One broker's key-value answer (runtime figures or settings).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BrokerTable {
    pub broker_name: String,
    pub addr: String,
    pub table: BTreeMap<String, String>,
}

pub async fn cluster_list(admin: &Admin, json: bool) -> anyhow::Result<()> {
    let info = admin
        .cluster_info()
        .await
        .context("cannot read the cluster info from the name server")?;
    let mut rows = Vec::new();
    for b in cluster_brokers(&info) {
        let runtime = admin.broker_runtime_info(&b.addr).await.with_context(|| {
            format!(
                "cannot read the runtime info of {} ({})",
                b.broker_name, b.addr
            )
        })?;
        rows.push(ClusterListRow::new(&b, &runtime.table));
    }
    if json {
        return print_json(&rows);
    }
    let mut table = Table::new(&[
        "cluster",
        "broker",
        "id",
        "address",
        "version",
        "in tps",
        "out tps",
        "in total",
        "out total",
    ]);
    for r in rows {
        table.row(vec![
            r.cluster,
            r.broker_name,
            r.broker_id.to_string(),
            r.addr,
            r.version,
            r.put_tps,
            r.get_tps,
            r.msg_put_total_today_now,
            r.msg_get_total_today_now,
        ]);
    }
    table.print();
    Ok(())
}

pub async fn broker_status(admin: &Admin, target: &BrokerTarget, json: bool) -> anyhow::Result<()> {
    let mut out = Vec::new();
    for (name, addr) in target.resolve(admin).await? {
        let table = admin
            .broker_runtime_info(&addr)
            .await
            .with_context(|| format!("cannot read the runtime info of {name} ({addr})"))?
            .table;
        out.push(BrokerTable {
            broker_name: name,
            addr,
            table,
        });
    }
    print_tables(&out, json)
}

pub async fn broker_config(admin: &Admin, target: &BrokerTarget, json: bool) -> anyhow::Result<()> {
    let mut out = Vec::new();
    for (name, addr) in target.resolve(admin).await? {
        let table = admin
            .broker_config(&addr)
            .await
            .with_context(|| format!("cannot read the config of {name} ({addr})"))?;
        out.push(BrokerTable {
            broker_name: name,
            addr,
            table,
        });
    }
    print_tables(&out, json)
}

/// What `update-broker-config` changed, and where.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BrokerConfigChange {
    pub key: String,
    pub value: String,
    pub brokers: Vec<super::BrokerRef>,
}

pub async fn update_broker_config(
    admin: &Admin,
    key: &str,
    value: &str,
    target: &BrokerTarget,
    json: bool,
) -> anyhow::Result<()> {
    let settings = BTreeMap::from([(key.to_owned(), value.to_owned())]);
    let mut brokers = Vec::new();
    for (name, addr) in target.resolve(admin).await? {
        admin
            .update_broker_config(&addr, &settings)
            .await
            .with_context(|| format!("cannot set {key} on {name} ({addr})"))?;
        brokers.push(super::BrokerRef {
            broker_name: name,
            addr,
        });
    }
    if json {
        return print_json(&BrokerConfigChange {
            key: key.to_owned(),
            value: value.to_owned(),
            brokers,
        });
    }
    for b in &brokers {
        out!("{key}={value} on {} ({})", b.broker_name, b.addr);
    }
    Ok(())
}

fn print_tables(tables: &[BrokerTable], json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(tables);
    }
    for (i, t) in tables.iter().enumerate() {
        if i > 0 {
            out!();
        }
        out!("# {} ({})", t.broker_name, t.addr);
        print_pairs(t.table.iter().map(|(k, v)| (k.as_str(), v.clone())));
    }
    Ok(())
}
