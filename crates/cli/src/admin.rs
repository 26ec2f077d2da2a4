//! `petrel admin`: operations on a running cluster (offset resets, pausing and throttling
//! consumer groups, pending transactions), through the name server like `mqadmin`.

use anyhow::{bail, Context};
use clap::Subcommand;
use petrel_client::admin::Admin;
use petrel_client::ClientConfig;
use petrel_common::duration;
use petrel_common::msg_id::now_ms;

#[derive(Subcommand)]
pub enum AdminCommand {
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
    },
    /// Pause a consumer group, or only some of its clients: they stay connected and receive
    /// nothing until `resume`.
    Pause {
        #[arg(long)]
        group: String,
        /// Client ids to pause (see GET_CONSUMER_CONNECTION_LIST); none pauses the whole group.
        #[arg(long = "client")]
        clients: Vec<String>,
    },
    /// Lift every pause of a consumer group.
    Resume {
        #[arg(long)]
        group: String,
    },
    /// List the transactional half messages still waiting for their commit or rollback.
    HalfMessages {
        /// Only this producer group's.
        #[arg(long)]
        group: Option<String>,
    },
    /// Cap the messages each broker hands a consumer group per second (0 lifts the cap).
    RateLimit {
        #[arg(long)]
        group: String,
        #[arg(long)]
        per_second: f64,
    },
}

pub async fn run(namesrv: &str, command: AdminCommand) -> anyhow::Result<()> {
    let admin = Admin::new(ClientConfig::new(namesrv));
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
        AdminCommand::ResetOffset {
            topic,
            group,
            time,
            backwards_only,
        } => {
            let timestamp = parse_time(&time, now_ms() as i64)?;
            let rows = admin
                .reset_offset_by_time(&topic, &group, timestamp, !backwards_only)
                .await
                .with_context(|| format!("cannot reset group {group} on topic {topic}"))?;
            println!("{:<24} {:>6} {:>14}", "broker", "queue", "new offset");
            for (mq, offset) in rows {
                println!("{:<24} {:>6} {:>14}", mq.broker_name, mq.queue_id, offset);
            }
        }
        AdminCommand::Pause { group, clients } => {
            let n = admin.pause_group(&group, &clients).await?;
            println!("paused {} on {n} broker(s)", who(&group, &clients));
        }
        AdminCommand::Resume { group } => {
            let n = admin.resume_group(&group).await?;
            println!("resumed group {group} on {n} broker(s)");
        }
        AdminCommand::HalfMessages { group } => {
            let halves = admin
                .half_messages(group.as_deref())
                .await
                .context("cannot list the half messages")?;
            let now = now_ms() as i64;
            println!(
                "{:<16} {:<24} {:<32} {:<24} {:>6} {:>8} {:>7} {:>10}  keys",
                "broker", "group", "msgId", "topic", "queue", "age s", "checks", "next check"
            );
            for (broker, h) in &halves {
                println!(
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
            println!("{} pending half message(s)", halves.len());
        }
        AdminCommand::RateLimit { group, per_second } => {
            if !per_second.is_finite() || per_second < 0.0 {
                bail!("--per-second must be 0 (no limit) or more");
            }
            let n = admin.set_consume_rate_limit(&group, per_second).await?;
            println!("group {group}: {per_second} messages/s per broker, set on {n} broker(s)");
        }
    }
    Ok(())
}

fn who(group: &str, clients: &[String]) -> String {
    if clients.is_empty() {
        format!("group {group}")
    } else {
        format!("client(s) {} of group {group}", clients.join(", "))
    }
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
    use super::parse_time;

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
