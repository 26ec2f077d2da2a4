//! `petrel admin topic-list`, `topic-route`, `topic-status`, `update-topic` and `delete-topic`.

use anyhow::{bail, Context};
use petrel_client::admin::{combine_topic_stats, Admin};
use petrel_common::topic::{perm, TopicConfig};
use serde::Serialize;

use super::table::{out, print_json, Table};
use super::{time_text, BrokerRef, BrokerTarget};

pub async fn topic_list(admin: &Admin, json: bool) -> anyhow::Result<()> {
    let list = admin
        .topic_list()
        .await
        .context("cannot read the topic list from the name server")?;
    if json {
        return print_json(&list);
    }
    for topic in &list.topic_list {
        out!("{topic}");
    }
    Ok(())
}

pub async fn topic_route(admin: &Admin, topic: &str, json: bool) -> anyhow::Result<()> {
    let route = admin
        .topic_route(topic)
        .await
        .with_context(|| format!("cannot read the route of topic {topic}"))?;
    if json {
        return print_json(&route);
    }
    let mut brokers = Table::new(&["cluster", "broker", "id", "address"]);
    for b in &route.broker_datas {
        for (id, addr) in &b.broker_addrs {
            brokers.row(vec![
                b.cluster.clone(),
                b.broker_name.clone(),
                id.to_string(),
                addr.clone(),
            ]);
        }
    }
    brokers.print();
    out!();
    let mut queues = Table::new(&["broker", "read queues", "write queues", "perm"]);
    for q in &route.queue_datas {
        queues.row(vec![
            q.broker_name.clone(),
            q.read_queue_nums.to_string(),
            q.write_queue_nums.to_string(),
            perm_text(q.perm),
        ]);
    }
    queues.print();
    Ok(())
}

pub async fn topic_status(admin: &Admin, topic: &str, json: bool) -> anyhow::Result<()> {
    let route = admin
        .topic_route(topic)
        .await
        .with_context(|| format!("cannot read the route of topic {topic}"))?;
    let mut answers = Vec::new();
    for b in &route.broker_datas {
        let Some(addr) = b.master_addr() else {
            continue;
        };
        answers.push(admin.topic_stats(addr, topic).await.with_context(|| {
            format!(
                "cannot read the stats of topic {topic} on {} ({addr})",
                b.broker_name
            )
        })?);
    }
    let all = combine_topic_stats(answers);
    if json {
        return print_json(&all);
    }
    let mut table = Table::new(&[
        "broker",
        "queue",
        "min offset",
        "max offset",
        "last updated",
    ]);
    for q in &all.offset_table {
        table.row(vec![
            q.queue.broker_name.clone(),
            q.queue.queue_id.to_string(),
            q.offset.min_offset.to_string(),
            q.offset.max_offset.to_string(),
            time_text(q.offset.last_update_timestamp),
        ]);
    }
    table.print();
    Ok(())
}

/// What `update-topic` set, and where.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicUpdate {
    pub config: TopicConfig,
    pub brokers: Vec<BrokerRef>,
}

pub async fn update_topic(
    admin: &Admin,
    config: TopicConfig,
    target: &BrokerTarget,
    json: bool,
) -> anyhow::Result<()> {
    if config.perm & !(perm::READ | perm::WRITE | perm::INHERIT) != 0 {
        bail!(
            "--perm {} is not a permission: 2 (write), 4 (read) or 6 (read and write)",
            config.perm
        );
    }
    let mut brokers = Vec::new();
    for (name, addr) in target.resolve(admin).await? {
        admin.update_topic(&addr, &config).await.with_context(|| {
            format!(
                "cannot create or update topic {} on {name} ({addr})",
                config.topic_name
            )
        })?;
        brokers.push(BrokerRef {
            broker_name: name,
            addr,
        });
    }
    let done = TopicUpdate { config, brokers };
    if json {
        return print_json(&done);
    }
    for b in &done.brokers {
        out!(
            "topic {} on {} ({}): read queues {}, write queues {}, perm {}",
            done.config.topic_name,
            b.broker_name,
            b.addr,
            done.config.read_queue_nums,
            done.config.write_queue_nums,
            perm_text(done.config.perm)
        );
    }
    Ok(())
}

/// What `delete-topic` removed.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicDeletion {
    pub topic: String,
    pub brokers: Vec<BrokerRef>,
    /// Whether the name server dropped the route too.
    pub namesrv: bool,
}

/// DELETE_TOPIC_IN_BROKER on every targeted master, then DELETE_TOPIC_IN_NAMESRV, as mqadmin.
pub async fn delete_topic(
    admin: &Admin,
    topic: &str,
    target: &BrokerTarget,
    json: bool,
) -> anyhow::Result<()> {
    let mut brokers = Vec::new();
    for (name, addr) in target.resolve(admin).await? {
        admin
            .delete_topic_in_broker(&addr, topic)
            .await
            .with_context(|| format!("cannot delete topic {topic} on {name} ({addr})"))?;
        brokers.push(BrokerRef {
            broker_name: name,
            addr,
        });
    }
    admin
        .delete_topic_in_namesrv(topic)
        .await
        .with_context(|| format!("cannot delete topic {topic} from the name server"))?;
    let done = TopicDeletion {
        topic: topic.to_owned(),
        brokers,
        namesrv: true,
    };
    if json {
        return print_json(&done);
    }
    for b in &done.brokers {
        out!("deleted topic {topic} on {} ({})", b.broker_name, b.addr);
    }
    out!("deleted topic {topic} from the name server");
    Ok(())
}

/// `RW`, `R-`, `-W` (and `I` when inherited), as a permission reads.
fn perm_text(p: i32) -> String {
    format!(
        "{}{}{} ({p})",
        if perm::readable(p) { "R" } else { "-" },
        if perm::writeable(p) { "W" } else { "-" },
        if perm::inherited(p) { "I" } else { "" },
    )
}
