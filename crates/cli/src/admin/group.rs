//! `petrel admin update-sub-group`, `delete-sub-group`, `consumer-progress`,
//! `consumer-connection`, `producer-connection` and `clone-group-offset`.

use anyhow::{bail, Context};
use petrel_client::admin::{
    merge_consumer_connection, merge_producer_connection, Admin, ConsumerProgress,
};
use petrel_client::ClientError;
use petrel_common::protocol::{Connection, ConsumerConnection, ProducerConnection};
use petrel_common::topic::SubscriptionGroupConfig;
use petrel_remoting::code::response;
use serde::Serialize;

use super::table::{out, print_json, print_pairs, Table};
use super::{time_text, BrokerRef, BrokerTarget};

/// The settings `update-sub-group` changes; `None` keeps what the broker has (or the default
/// for a new group).
#[derive(Debug, Default, clap::Args)]
pub struct GroupSettings {
    /// Whether the group may consume at all.
    #[arg(long)]
    pub consume_enable: Option<bool>,
    /// Whether a new group may start from the first offset.
    #[arg(long)]
    pub consume_from_min_enable: Option<bool>,
    /// Whether the group may consume in BROADCASTING mode.
    #[arg(long)]
    pub consume_broadcast_enable: Option<bool>,
    #[arg(long)]
    pub retry_queue_nums: Option<i32>,
    /// Deliveries before a message goes to the group's dead-letter topic.
    #[arg(long)]
    pub retry_max_times: Option<i32>,
    /// A FIFO group (RocketMQ 5's consumeMessageOrderly): POP and the 5.x clients hand out a
    /// queue's next message only after the one before it is acknowledged.
    #[arg(long)]
    pub consume_message_orderly: Option<bool>,
}

impl GroupSettings {
    fn apply(&self, c: &mut SubscriptionGroupConfig) {
        if let Some(v) = self.consume_enable {
            c.consume_enable = v;
        }
        if let Some(v) = self.consume_from_min_enable {
            c.consume_from_min_enable = v;
        }
        if let Some(v) = self.consume_broadcast_enable {
            c.consume_broadcast_enable = v;
        }
        if let Some(v) = self.retry_queue_nums {
            c.retry_queue_nums = v;
        }
        if let Some(v) = self.retry_max_times {
            c.retry_max_times = v;
        }
        if let Some(v) = self.consume_message_orderly {
            c.consume_message_orderly = v;
        }
    }
}

/// What `update-sub-group` wrote, per broker (each keeps its own attributes).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupUpdate {
    #[serde(flatten)]
    pub broker: BrokerRef,
    pub config: SubscriptionGroupConfig,
}

pub async fn update_sub_group(
    admin: &Admin,
    group: &str,
    settings: &GroupSettings,
    target: &BrokerTarget,
    json: bool,
) -> anyhow::Result<()> {
    if settings.retry_queue_nums.is_some_and(|n| n < 0) {
        bail!("--retry-queue-nums cannot be negative");
    }
    let mut done = Vec::new();
    for (name, addr) in target.resolve(admin).await? {
        let mut config = match admin.subscription_group(&addr, group).await {
            Ok(c) => c,
            Err(e) if e.code() == Some(response::SUBSCRIPTION_GROUP_NOT_EXIST) => {
                SubscriptionGroupConfig::new(group)
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("cannot read subscription group {group} on {name} ({addr})")
                })
            }
        };
        settings.apply(&mut config);
        admin
            .update_subscription_group(&addr, &config)
            .await
            .with_context(|| {
                format!("cannot create or update subscription group {group} on {name} ({addr})")
            })?;
        done.push(GroupUpdate {
            broker: BrokerRef {
                broker_name: name,
                addr,
            },
            config,
        });
    }
    if json {
        return print_json(&done);
    }
    for d in &done {
        let c = &d.config;
        out!(
            "subscription group {group} on {} ({}): consumeEnable {}, consumeFromMinEnable {}, \
             consumeBroadcastEnable {}, retryQueueNums {}, retryMaxTimes {}, consumeMessageOrderly {}",
            d.broker.broker_name,
            d.broker.addr,
            c.consume_enable,
            c.consume_from_min_enable,
            c.consume_broadcast_enable,
            c.retry_queue_nums,
            c.retry_max_times,
            c.consume_message_orderly
        );
    }
    Ok(())
}

/// What `delete-sub-group` removed.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupDeletion {
    pub group: String,
    pub brokers: Vec<BrokerRef>,
}

pub async fn delete_sub_group(
    admin: &Admin,
    group: &str,
    target: &BrokerTarget,
    json: bool,
) -> anyhow::Result<()> {
    let mut brokers = Vec::new();
    for (name, addr) in target.resolve(admin).await? {
        admin
            .delete_subscription_group(&addr, group)
            .await
            .with_context(|| {
                format!("cannot delete subscription group {group} on {name} ({addr})")
            })?;
        brokers.push(BrokerRef {
            broker_name: name,
            addr,
        });
    }
    let done = GroupDeletion {
        group: group.to_owned(),
        brokers,
    };
    if json {
        return print_json(&done);
    }
    for b in &done.brokers {
        out!(
            "deleted subscription group {group} on {} ({})",
            b.broker_name,
            b.addr
        );
    }
    Ok(())
}

pub async fn consumer_progress(
    admin: &Admin,
    group: &str,
    topic: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    let mut answers = Vec::new();
    for (name, addr) in admin.master_brokers().await? {
        answers.push(
            admin
                .consume_stats(&addr, group, topic)
                .await
                .with_context(|| {
                    format!("cannot read the progress of {group} on {name} ({addr})")
                })?,
        );
    }
    let progress = ConsumerProgress::combine(group, answers);
    if json {
        return print_json(&progress);
    }
    let mut table = Table::new(&[
        "topic",
        "broker",
        "queue",
        "broker offset",
        "consumer offset",
        "diff",
        "last consumed",
    ]);
    for r in &progress.queues {
        let (q, o) = (&r.stats.queue, &r.stats.offset);
        table.row(vec![
            q.topic.clone(),
            q.broker_name.clone(),
            q.queue_id.to_string(),
            o.broker_offset.to_string(),
            o.consumer_offset.to_string(),
            r.diff.to_string(),
            time_text(o.last_timestamp),
        ]);
    }
    table.row(vec![
        "total".to_owned(),
        String::new(),
        String::new(),
        progress.broker_offset.to_string(),
        progress.consumer_offset.to_string(),
        progress.diff.to_string(),
        String::new(),
    ]);
    table.print();
    Ok(())
}

pub async fn consumer_connection(admin: &Admin, group: &str, json: bool) -> anyhow::Result<()> {
    let mut merged: Option<ConsumerConnection> = None;
    let mut last_refusal = None;
    for (name, addr) in admin.master_brokers().await? {
        match admin.consumer_connection(&addr, group).await {
            Ok(c) => merge_consumer_connection(&mut merged, c),
            Err(e @ ClientError::Broker { .. }) => last_refusal = Some(e),
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("cannot read the connections of {group} on {name} ({addr})")
                })
            }
        }
    }
    let Some(mut conn) = merged else {
        return match last_refusal {
            Some(e) => Err(e).with_context(|| format!("consumer group {group} is not online")),
            None => bail!("no broker to ask about consumer group {group}"),
        };
    };
    conn.connection_set
        .sort_by(|a, b| a.client_id.cmp(&b.client_id));
    if json {
        return print_json(&conn);
    }
    print_clients(&conn.connection_set);
    out!();
    let mut subs = Table::new(&["topic", "type", "expression"]);
    for (topic, s) in &conn.subscription_table {
        subs.row(vec![
            topic.clone(),
            s.expression_type.clone(),
            s.sub_string.clone(),
        ]);
    }
    subs.print();
    out!();
    print_pairs([
        ("consume type", conn.consume_type.clone()),
        ("message model", conn.message_model.clone()),
        ("consume from where", conn.consume_from_where.clone()),
    ]);
    Ok(())
}

pub async fn producer_connection(admin: &Admin, group: &str, json: bool) -> anyhow::Result<()> {
    let mut merged = ProducerConnection::default();
    let mut last_refusal = None;
    for (name, addr) in admin.master_brokers().await? {
        match admin.producer_connection(&addr, group).await {
            Ok(c) => merge_producer_connection(&mut merged, c),
            Err(e @ ClientError::Broker { .. }) => last_refusal = Some(e),
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("cannot read the connections of {group} on {name} ({addr})")
                })
            }
        }
    }
    if merged.connection_set.is_empty() {
        return match last_refusal {
            Some(e) => Err(e).with_context(|| format!("producer group {group} is not online")),
            None => bail!("no broker to ask about producer group {group}"),
        };
    }
    merged
        .connection_set
        .sort_by(|a, b| a.client_id.cmp(&b.client_id));
    if json {
        return print_json(&merged);
    }
    print_clients(&merged.connection_set);
    Ok(())
}

/// What `clone-group-offset` did.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupOffsetClone {
    pub src_group: String,
    pub dest_group: String,
    pub topic: Option<String>,
    pub brokers: Vec<BrokerRef>,
}

pub async fn clone_group_offset(
    admin: &Admin,
    src_group: &str,
    dest_group: &str,
    topic: Option<&str>,
    offline: bool,
    json: bool,
) -> anyhow::Result<()> {
    let mut brokers = Vec::new();
    for (name, addr) in admin.master_brokers().await? {
        admin
            .clone_group_offset(&addr, src_group, dest_group, topic, offline)
            .await
            .with_context(|| {
                format!(
                    "cannot clone the offsets of {src_group} to {dest_group} on {name} ({addr})"
                )
            })?;
        brokers.push(BrokerRef {
            broker_name: name,
            addr,
        });
    }
    let done = GroupOffsetClone {
        src_group: src_group.to_owned(),
        dest_group: dest_group.to_owned(),
        topic: topic.map(str::to_owned),
        brokers,
    };
    if json {
        return print_json(&done);
    }
    for b in &done.brokers {
        out!(
            "cloned the offsets of {src_group} to {dest_group}{} on {} ({})",
            topic.map(|t| format!(" on topic {t}")).unwrap_or_default(),
            b.broker_name,
            b.addr
        );
    }
    Ok(())
}

/// The clients of a consumer or producer group, one row each.
fn print_clients(connections: &[Connection]) {
    let mut clients = Table::new(&["client id", "address", "language", "version"]);
    for c in connections {
        clients.row(vec![
            c.client_id.clone(),
            c.client_addr.clone(),
            c.language.clone(),
            c.version.to_string(),
        ]);
    }
    clients.print();
}
