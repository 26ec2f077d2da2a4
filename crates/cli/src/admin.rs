//! `petrel admin`: operations on a running cluster through the name server, like `mqadmin`,
//! under mqadmin's command names (as aliases): the cluster and its brokers, topics, subscription
//! groups and their progress, connections, finding messages, offset resets, pausing and
//! throttling groups, pending transactions. Each command prints a table, or its answer as JSON
//! with `--json`. The requests themselves live in `petrel_client::admin`; this only parses
//! arguments, combines brokers' answers and prints.

mod acl;
mod cluster;
mod group;
mod message;
mod table;
mod topic;
pub mod trace;

use table::out;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use petrel_client::admin::Admin;
use petrel_client::{Credentials, MessageQueue};
use petrel_common::duration;
use petrel_common::msg_id::now_ms;
use petrel_common::topic::TopicConfig;
use serde::Serialize;

/// `--json`: print the answer as JSON instead of a table.
#[derive(Debug, Clone, Copy, Args)]
pub struct Format {
    /// Print the answer as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Which brokers a command goes to: one address, the masters of one cluster, or (neither) the
/// master of every broker the name server knows.
#[derive(Debug, Clone, Default, Args)]
pub struct BrokerTarget {
    /// Only the broker at this address (`mqadmin -b`).
    #[arg(long, conflicts_with = "cluster")]
    pub broker_addr: Option<String>,
    /// Only the masters of this cluster (`mqadmin -c`).
    #[arg(long)]
    pub cluster: Option<String>,
}

impl BrokerTarget {
    /// `(broker name, address)` of each targeted broker.
    async fn resolve(&self, admin: &Admin) -> anyhow::Result<Vec<(String, String)>> {
        let info = admin
            .cluster_info()
            .await
            .context("cannot read the cluster info from the name server")?;
        if let Some(addr) = &self.broker_addr {
            let name = info
                .broker_addr_table
                .values()
                .find(|b| b.broker_addrs.values().any(|a| a == addr))
                .map(|b| b.broker_name.clone())
                .with_context(|| format!("the name server knows no broker at {addr}"))?;
            return Ok(vec![(name, addr.clone())]);
        }
        let names: Vec<&String> = match &self.cluster {
            Some(c) => info
                .cluster_addr_table
                .get(c)
                .with_context(|| format!("the name server knows no cluster {c}"))?
                .iter()
                .collect(),
            None => info.broker_addr_table.keys().collect(),
        };
        let targets: Vec<(String, String)> = names
            .into_iter()
            .filter_map(|n| {
                let addr = info.broker_addr_table.get(n)?.master_addr()?;
                Some((n.clone(), addr.to_owned()))
            })
            .collect();
        if targets.is_empty() {
            bail!("no master broker is registered with the name server");
        }
        Ok(targets)
    }
}

/// A broker a command went to.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BrokerRef {
    pub broker_name: String,
    pub addr: String,
}

#[derive(Subcommand)]
pub enum AdminCommand {
    /// The brokers of every cluster with their version and message rates (`clusterList`).
    #[command(alias = "clusterList")]
    ClusterList {
        #[command(flatten)]
        format: Format,
    },
    /// A broker's runtime figures (`brokerStatus`).
    #[command(alias = "brokerStatus")]
    BrokerStatus {
        #[command(flatten)]
        target: BrokerTarget,
        #[command(flatten)]
        format: Format,
    },
    /// A broker's settings (`getBrokerConfig`).
    #[command(alias = "getBrokerConfig")]
    GetBrokerConfig {
        #[command(flatten)]
        target: BrokerTarget,
        #[command(flatten)]
        format: Format,
    },
    /// Change a broker setting while it runs (`updateBrokerConfig`); kept across restarts.
    #[command(alias = "updateBrokerConfig")]
    UpdateBrokerConfig {
        /// The setting, by RocketMQ's name: autoCreateTopicEnable, defaultTopicQueueNums,
        /// maxMessageSize (mqadmin `-k`).
        #[arg(short = 'k', long)]
        key: String,
        /// Its new value (mqadmin `-v`).
        #[arg(short = 'v', long)]
        value: String,
        #[command(flatten)]
        target: BrokerTarget,
        #[command(flatten)]
        format: Format,
    },
    /// Every topic the name server routes (`topicList`).
    #[command(alias = "topicList")]
    TopicList {
        #[command(flatten)]
        format: Format,
    },
    /// A topic's brokers and queues (`topicRoute`).
    #[command(alias = "topicRoute")]
    TopicRoute {
        #[arg(long)]
        topic: String,
        #[command(flatten)]
        format: Format,
    },
    /// Min and max offset and last store time of each queue of a topic (`topicStatus`).
    #[command(alias = "topicStatus")]
    TopicStatus {
        #[arg(long)]
        topic: String,
        #[command(flatten)]
        format: Format,
    },
    /// Create a topic, or change its queue numbers and permission (`updateTopic`).
    #[command(alias = "updateTopic")]
    UpdateTopic {
        #[arg(long)]
        topic: String,
        #[arg(long, default_value_t = 8)]
        read_queue_nums: i32,
        #[arg(long, default_value_t = 8)]
        write_queue_nums: i32,
        /// 2 (write only), 4 (read only) or 6 (read and write).
        #[arg(long, default_value_t = 6)]
        perm: i32,
        /// Mark the topic ordered.
        #[arg(long)]
        order: bool,
        #[command(flatten)]
        target: BrokerTarget,
        #[command(flatten)]
        format: Format,
    },
    /// Delete a topic on its brokers and from the name server (`deleteTopic`).
    #[command(alias = "deleteTopic")]
    DeleteTopic {
        #[arg(long)]
        topic: String,
        #[command(flatten)]
        target: BrokerTarget,
        #[command(flatten)]
        format: Format,
    },
    /// Create a subscription group or change its settings (`updateSubGroup`); its other
    /// settings and attributes are kept.
    #[command(alias = "updateSubGroup")]
    UpdateSubGroup {
        #[arg(long)]
        group: String,
        #[command(flatten)]
        settings: group::GroupSettings,
        #[command(flatten)]
        target: BrokerTarget,
        #[command(flatten)]
        format: Format,
    },
    /// Delete a subscription group's config (`deleteSubGroup`).
    #[command(alias = "deleteSubGroup")]
    DeleteSubGroup {
        #[arg(long)]
        group: String,
        #[command(flatten)]
        target: BrokerTarget,
        #[command(flatten)]
        format: Format,
    },
    /// A consumer group's offsets against each queue's end, and the backlog
    /// (`consumerProgress`).
    #[command(alias = "consumerProgress")]
    ConsumerProgress {
        #[arg(long)]
        group: String,
        /// Only this topic (default: every topic the group consumes).
        #[arg(long)]
        topic: Option<String>,
        #[command(flatten)]
        format: Format,
    },
    /// The online clients of a consumer group and what they subscribe to
    /// (`consumerConnection`).
    #[command(alias = "consumerConnection")]
    ConsumerConnection {
        #[arg(long)]
        group: String,
        #[command(flatten)]
        format: Format,
    },
    /// The online clients of a producer group (`producerConnection`).
    #[command(alias = "producerConnection")]
    ProducerConnection {
        #[arg(long)]
        group: String,
        #[command(flatten)]
        format: Format,
    },
    /// A message by offsetMsgId, or by msgId (then `--topic` is needed) (`queryMsgById`).
    #[command(alias = "queryMsgById")]
    QueryMsgById {
        #[arg(long)]
        id: String,
        #[arg(long)]
        topic: Option<String>,
        #[command(flatten)]
        format: Format,
    },
    /// Messages of a topic by key (`queryMsgByKey`).
    #[command(alias = "queryMsgByKey")]
    QueryMsgByKey {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        key: String,
        /// Most messages from each broker.
        #[arg(long, default_value_t = 64)]
        max: i32,
        /// Stored at or after (epoch ms, RFC 3339, `now` or an age like `2h`; default: ever).
        #[arg(long)]
        begin: Option<String>,
        /// Stored before (same forms; default: now and on).
        #[arg(long)]
        end: Option<String>,
        #[command(flatten)]
        format: Format,
    },
    /// The message at one offset of one queue (`queryMsgByOffset`).
    #[command(alias = "queryMsgByOffset")]
    QueryMsgByOffset {
        #[arg(long)]
        topic: String,
        /// The broker's name (as `topic-route` shows it).
        #[arg(long)]
        broker: String,
        #[arg(long)]
        queue: i32,
        #[arg(long)]
        offset: i64,
        #[command(flatten)]
        format: Format,
    },
    /// The messages of every queue of a topic stored between two times (`printMsg`,
    /// `queryMsgByTime`).
    #[command(alias = "printMsg", alias = "queryMsgByTime")]
    PrintMsg {
        #[arg(long)]
        topic: String,
        /// From (epoch ms, RFC 3339, `now` or an age like `2h`; default: the beginning).
        #[arg(long)]
        begin: Option<String>,
        /// Until, exclusive (same forms; default: now).
        #[arg(long)]
        end: Option<String>,
        /// Most messages read from each queue.
        #[arg(long, default_value_t = message::DEFAULT_MAX_PER_QUEUE)]
        max_per_queue: usize,
        #[command(flatten)]
        format: Format,
    },
    /// Give a group the committed offsets of another (`cloneGroupOffset`).
    #[command(alias = "cloneGroupOffset")]
    CloneGroupOffset {
        #[arg(long)]
        src_group: String,
        #[arg(long)]
        dest_group: String,
        /// Only this topic (default: every topic of the source group).
        #[arg(long)]
        topic: Option<String>,
        /// Also topics an online source group does not subscribe to.
        #[arg(long)]
        offline: bool,
        #[command(flatten)]
        format: Format,
    },
    /// Move a consumer group's offsets on a topic to a point in time (`resetOffsetByTime`).
    #[command(alias = "resetOffsetByTime")]
    ResetOffset {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        group: String,
        /// Milliseconds since the epoch, `now`, `end` (the end of every queue), or an age such
        /// as `90s`, `10m`, `2h`, `1d` (that long ago).
        #[arg(long)]
        time: String,
        /// Only move offsets backwards (RocketMQ's `isForce=false`).
        #[arg(long)]
        backwards_only: bool,
        #[command(flatten)]
        format: Format,
    },
    /// Pause a consumer group, or only some of its clients: they stay connected and receive
    /// nothing until `resume`.
    Pause {
        #[arg(long)]
        group: String,
        /// Client ids to pause (see GET_CONSUMER_CONNECTION_LIST); none pauses the whole group.
        #[arg(long = "client")]
        clients: Vec<String>,
        #[command(flatten)]
        format: Format,
    },
    /// Lift every pause of a consumer group.
    Resume {
        #[arg(long)]
        group: String,
        #[command(flatten)]
        format: Format,
    },
    /// List the transactional half messages still waiting for their commit or rollback.
    HalfMessages {
        /// Only this producer group's.
        #[arg(long)]
        group: Option<String>,
        #[command(flatten)]
        format: Format,
    },
    /// Cap the messages each broker hands a consumer group per second (0 lifts the cap).
    RateLimit {
        #[arg(long)]
        group: String,
        #[arg(long)]
        per_second: f64,
        #[command(flatten)]
        format: Format,
    },
    /// Create a plain-ACL account or change its settings (`updateAclConfig`).
    #[command(alias = "updateAclConfig")]
    UpdateAclConfig {
        #[command(flatten)]
        account: acl::AccountArgs,
        #[command(flatten)]
        target: BrokerTarget,
        #[command(flatten)]
        format: Format,
    },
    /// Delete a plain-ACL account (`deleteAccessConfig`).
    #[command(alias = "deleteAccessConfig")]
    DeleteAccessConfig {
        /// The account's access key (mqadmin `-a`).
        #[arg(short = 'a', long = "account")]
        account: String,
        #[command(flatten)]
        target: BrokerTarget,
        #[command(flatten)]
        format: Format,
    },
    /// Replace the global whitelist of the ACL (`updateGlobalWhiteAddr`).
    #[command(alias = "updateGlobalWhiteAddr")]
    UpdateGlobalWhiteAddr {
        /// Address patterns, comma-separated: "10.*,192.168.*" (mqadmin `-g`).
        #[arg(short = 'g', long = "global-white-addrs")]
        addrs: String,
        #[command(flatten)]
        target: BrokerTarget,
        #[command(flatten)]
        format: Format,
    },
    /// One message's path as a timeline: its stored copies, what the brokers did with it
    /// (delivered, committed, retried, dead-lettered, transaction ended) and what its clients
    /// traced (Pub, SubBefore, SubAfter), by msgId, offsetMsgId, or key and topic.
    Trace {
        /// The message's msgId (the client's) or offsetMsgId.
        #[arg(long, conflicts_with = "key")]
        msg_id: Option<String>,
        /// Trace every message of `--topic` with this key.
        #[arg(long, requires = "topic")]
        key: Option<String>,
        /// The message's topic: needed with `--key`, and with a msgId until a trace names it
        /// (a message not consumed yet, from a client without message trace).
        #[arg(long)]
        topic: Option<String>,
        #[command(flatten)]
        format: Format,
    },
    /// The version of each broker's ACL rules (`clusterAclConfigVersion`).
    #[command(alias = "clusterAclConfigVersion")]
    ClusterAclConfigVersion {
        #[command(flatten)]
        target: BrokerTarget,
        #[command(flatten)]
        format: Format,
    },
}

pub async fn run(
    namesrv: &str,
    credentials: Option<Credentials>,
    command: AdminCommand,
) -> anyhow::Result<()> {
    let admin = Admin::new(crate::tools::client_config(namesrv, credentials));
    admin
        .instance()
        .start()
        .context("cannot start the admin client")?;
    let result = execute(&admin, command).await;
    admin.shutdown();
    result
}

async fn execute(admin: &Admin, command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::ClusterList { format } => cluster::cluster_list(admin, format.json).await?,
        AdminCommand::BrokerStatus { target, format } => {
            cluster::broker_status(admin, &target, format.json).await?
        }
        AdminCommand::GetBrokerConfig { target, format } => {
            cluster::broker_config(admin, &target, format.json).await?
        }
        AdminCommand::UpdateBrokerConfig {
            key,
            value,
            target,
            format,
        } => cluster::update_broker_config(admin, &key, &value, &target, format.json).await?,
        AdminCommand::TopicList { format } => topic::topic_list(admin, format.json).await?,
        AdminCommand::TopicRoute { topic, format } => {
            topic::topic_route(admin, &topic, format.json).await?
        }
        AdminCommand::TopicStatus { topic, format } => {
            topic::topic_status(admin, &topic, format.json).await?
        }
        AdminCommand::UpdateTopic {
            topic,
            read_queue_nums,
            write_queue_nums,
            perm,
            order,
            target,
            format,
        } => {
            let mut config = TopicConfig::new(topic, write_queue_nums, perm);
            config.read_queue_nums = read_queue_nums;
            config.order = order;
            topic::update_topic(admin, config, &target, format.json).await?
        }
        AdminCommand::DeleteTopic {
            topic,
            target,
            format,
        } => topic::delete_topic(admin, &topic, &target, format.json).await?,
        AdminCommand::UpdateSubGroup {
            group,
            settings,
            target,
            format,
        } => group::update_sub_group(admin, &group, &settings, &target, format.json).await?,
        AdminCommand::DeleteSubGroup {
            group,
            target,
            format,
        } => group::delete_sub_group(admin, &group, &target, format.json).await?,
        AdminCommand::ConsumerProgress {
            group,
            topic,
            format,
        } => group::consumer_progress(admin, &group, topic.as_deref(), format.json).await?,
        AdminCommand::ConsumerConnection { group, format } => {
            group::consumer_connection(admin, &group, format.json).await?
        }
        AdminCommand::ProducerConnection { group, format } => {
            group::producer_connection(admin, &group, format.json).await?
        }
        AdminCommand::QueryMsgById { id, topic, format } => {
            message::query_by_id(admin, &id, topic.as_deref(), format.json).await?
        }
        AdminCommand::Trace {
            msg_id,
            key,
            topic,
            format,
        } => {
            trace::trace(
                admin,
                msg_id.as_deref(),
                key.as_deref(),
                topic.as_deref(),
                format.json,
            )
            .await?
        }
        AdminCommand::QueryMsgByKey {
            topic,
            key,
            max,
            begin,
            end,
            format,
        } => {
            let now = now_ms() as i64;
            let begin = instant_or(begin.as_deref(), 0, now)?;
            let end = instant_or(end.as_deref(), i64::MAX, now)?;
            message::query_by_key(admin, &topic, &key, max, begin, end, format.json).await?
        }
        AdminCommand::QueryMsgByOffset {
            topic,
            broker,
            queue,
            offset,
            format,
        } => {
            let mq = MessageQueue {
                topic,
                broker_name: broker,
                queue_id: queue,
            };
            message::query_by_offset(admin, &mq, offset, format.json).await?
        }
        AdminCommand::PrintMsg {
            topic,
            begin,
            end,
            max_per_queue,
            format,
        } => {
            let now = now_ms() as i64;
            let begin = instant_or(begin.as_deref(), 0, now)?;
            let end = instant_or(end.as_deref(), now + 1, now)?;
            message::print_msg(admin, &topic, begin, end, max_per_queue, format.json).await?
        }
        AdminCommand::CloneGroupOffset {
            src_group,
            dest_group,
            topic,
            offline,
            format,
        } => {
            group::clone_group_offset(
                admin,
                &src_group,
                &dest_group,
                topic.as_deref(),
                offline,
                format.json,
            )
            .await?
        }
        AdminCommand::ResetOffset {
            topic,
            group,
            time,
            backwards_only,
            format,
        } => {
            let timestamp = parse_time(&time, now_ms() as i64)?;
            let rows = admin
                .reset_offset_by_time(&topic, &group, timestamp, !backwards_only)
                .await
                .with_context(|| format!("cannot reset group {group} on topic {topic}"))?;
            if format.json {
                let rows: Vec<QueueOffset> = rows
                    .into_iter()
                    .map(|(queue, offset)| QueueOffset { queue, offset })
                    .collect();
                return table::print_json(&rows);
            }
            out!("{:<24} {:>6} {:>14}", "broker", "queue", "new offset");
            for (mq, offset) in rows {
                out!("{:<24} {:>6} {:>14}", mq.broker_name, mq.queue_id, offset);
            }
        }
        AdminCommand::Pause {
            group,
            clients,
            format,
        } => {
            let n = admin
                .pause_group(&group, &clients)
                .await
                .with_context(|| format!("cannot pause {}", who(&group, &clients)))?;
            if format.json {
                return table::print_json(&FlowChange::new(&group, clients, n));
            }
            out!("paused {} on {n} broker(s)", who(&group, &clients));
        }
        AdminCommand::Resume { group, format } => {
            let n = admin
                .resume_group(&group)
                .await
                .with_context(|| format!("cannot resume group {group}"))?;
            if format.json {
                return table::print_json(&FlowChange::new(&group, Vec::new(), n));
            }
            out!("resumed group {group} on {n} broker(s)");
        }
        AdminCommand::HalfMessages { group, format } => {
            let halves = admin
                .half_messages(group.as_deref())
                .await
                .context("cannot list the half messages")?;
            if format.json {
                let rows: Vec<BrokerHalfMessage> = halves
                    .into_iter()
                    .map(|(broker_name, half)| BrokerHalfMessage { broker_name, half })
                    .collect();
                return table::print_json(&rows);
            }
            let now = now_ms() as i64;
            out!(
                "{:<16} {:<24} {:<32} {:<24} {:>6} {:>8} {:>7} {:>10}  keys",
                "broker",
                "group",
                "msgId",
                "topic",
                "queue",
                "age s",
                "checks",
                "next check"
            );
            for (broker, h) in &halves {
                out!(
                    "{:<16} {:<24} {:<32} {:<24} {:>6} {:>8} {:>7} {:>9}s  {}",
                    broker,
                    h.producer_group,
                    h.msg_id,
                    h.topic,
                    h.queue_id,
                    (now - h.store_timestamp) / 1000,
                    h.check_times,
                    (h.next_check_timestamp - now).max(0) / 1000,
                    h.keys
                );
            }
            out!("{} pending half message(s)", halves.len());
        }
        AdminCommand::RateLimit {
            group,
            per_second,
            format,
        } => {
            if !per_second.is_finite() || per_second < 0.0 {
                bail!("--per-second must be 0 (no limit) or more");
            }
            let n = admin
                .set_consume_rate_limit(&group, per_second)
                .await
                .with_context(|| format!("cannot set the rate limit of group {group}"))?;
            if format.json {
                let mut change = FlowChange::new(&group, Vec::new(), n);
                change.per_second = Some(per_second);
                return table::print_json(&change);
            }
            out!("group {group}: {per_second} messages/s per broker, set on {n} broker(s)");
        }
        AdminCommand::UpdateAclConfig {
            account,
            target,
            format,
        } => acl::update_acl_config(admin, &account, &target, format.json).await?,
        AdminCommand::DeleteAccessConfig {
            account,
            target,
            format,
        } => acl::delete_access_config(admin, &account, &target, format.json).await?,
        AdminCommand::UpdateGlobalWhiteAddr {
            addrs,
            target,
            format,
        } => acl::update_global_white_addr(admin, &addrs, &target, format.json).await?,
        AdminCommand::ClusterAclConfigVersion { target, format } => {
            acl::cluster_acl_config_version(admin, &target, format.json).await?
        }
    }
    Ok(())
}

/// One queue's new offset after `reset-offset`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueOffset {
    #[serde(flatten)]
    pub queue: MessageQueue,
    pub offset: i64,
}

/// A pending half message and the broker holding it, as `half-messages --json` prints it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BrokerHalfMessage {
    pub broker_name: String,
    #[serde(flatten)]
    pub half: petrel_common::protocol::HalfMessageInfo,
}

/// What `pause`, `resume` and `rate-limit` changed.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowChange {
    pub group: String,
    /// The clients paused; empty for the whole group.
    pub clients: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_second: Option<f64>,
    /// How many brokers took the change.
    pub brokers: usize,
}

impl FlowChange {
    fn new(group: &str, clients: Vec<String>, brokers: usize) -> Self {
        FlowChange {
            group: group.to_owned(),
            clients,
            per_second: None,
            brokers,
        }
    }
}

fn who(group: &str, clients: &[String]) -> String {
    if clients.is_empty() {
        format!("group {group}")
    } else {
        format!("client(s) {} of group {group}", clients.join(", "))
    }
}

/// Epoch milliseconds as RFC 3339 UTC, `-` for 0 (never).
fn time_text(epoch_ms: i64) -> String {
    if epoch_ms <= 0 {
        "-".to_owned()
    } else {
        crate::time_arg::format_rfc3339(epoch_ms)
    }
}

/// A point in time for a search: epoch milliseconds, RFC 3339, `now` or an age like `10m`;
/// `default` when absent.
fn instant_or(text: Option<&str>, default: i64, now_ms: i64) -> anyhow::Result<i64> {
    let Some(text) = text else {
        return Ok(default);
    };
    if let Ok(ms) = crate::time_arg::parse_epoch_ms(text) {
        return Ok(ms);
    }
    let t = text.trim();
    if t == "now" {
        return Ok(now_ms);
    }
    let age = duration::parse_ms(t).map_err(|_| {
        anyhow::anyhow!(
            "`{t}` is not a time: give epoch milliseconds, an RFC 3339 time, now, or an age \
             like 10m"
        )
    })?;
    Ok(now_ms - age)
}

/// A reset time: epoch milliseconds, `now`, `end` (-1 on the wire), or an age like `10m`.
fn parse_time(text: &str, now_ms: i64) -> anyhow::Result<i64> {
    let t = text.trim();
    match t {
        "now" => return Ok(now_ms),
        "end" => return Ok(-1),
        _ => {}
    }
    if let Ok(ms) = t.parse::<i64>() {
        if ms < 0 {
            bail!("a time cannot be negative; use `end` for the end of the queues");
        }
        return Ok(ms);
    }
    let age = duration::parse_ms(t).map_err(|e| {
        anyhow::anyhow!("{e} (a time is milliseconds, now, end or an age like 10m)")
    })?;
    Ok(now_ms - age)
}

#[cfg(test)]
mod tests {
    use super::{instant_or, parse_time};

    #[test]
    fn search_times_are_epoch_ms_rfc3339_now_or_ages() {
        let now = 1_700_000_000_000;
        assert_eq!(instant_or(None, 7, now).unwrap(), 7);
        assert_eq!(
            instant_or(Some("1699999999999"), 0, now).unwrap(),
            1_699_999_999_999
        );
        assert_eq!(
            instant_or(Some("2023-11-14T22:13:20Z"), 0, now).unwrap(),
            1_700_000_000_000
        );
        assert_eq!(instant_or(Some("now"), 0, now).unwrap(), now);
        assert_eq!(instant_or(Some("1h"), 0, now).unwrap(), now - 3_600_000);
        assert!(instant_or(Some("yesterday"), 0, now).is_err());
    }

    #[test]
    fn times_are_milliseconds_keywords_or_ages() {
        let now = 1_700_000_000_000;
        assert_eq!(parse_time("1699999999999", now).unwrap(), 1_699_999_999_999);
        assert_eq!(parse_time("now", now).unwrap(), now);
        assert_eq!(parse_time("end", now).unwrap(), -1);
        assert_eq!(parse_time("10m", now).unwrap(), now - 600_000);
        assert_eq!(parse_time("2h", now).unwrap(), now - 7_200_000);
        assert!(parse_time("-5", now).is_err());
        assert!(parse_time("10y", now)
            .unwrap_err()
            .to_string()
            .contains("unknown unit"));
        assert!(parse_time("soon", now).is_err());
    }
}
