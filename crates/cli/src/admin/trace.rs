//! `petrel admin trace`: one message's path as a timeline — where it was stored, what the
//! brokers did with it, what its clients reported — from `Admin::trace_message` and
//! `MessageTrace::timeline`.

use anyhow::{bail, Context};
use petrel_client::admin::{Admin, MessageTrace, TraceStep};
use serde::Serialize;

use super::table::{out, print_json, Table};
use super::time_text;

pub async fn trace(
    admin: &Admin,
    msg_id: Option<&str>,
    key: Option<&str>,
    topic: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    let ids: Vec<String> = match (msg_id, key) {
        (Some(id), _) => vec![id.to_owned()],
        (None, Some(key)) => {
            let Some(topic) = topic else {
                bail!("--key needs the message's --topic");
            };
            let found = admin
                .query_messages_by_key(topic, key, 64, 0, i64::MAX)
                .await
                .with_context(|| format!("cannot look key {key} up in topic {topic}"))?;
            let mut ids: Vec<String> = found.iter().map(|m| m.msg_id().to_owned()).collect();
            ids.dedup();
            if ids.is_empty() {
                bail!("no message with key {key} in topic {topic}");
            }
            ids
        }
        (None, None) => bail!("give --msg-id, or --key with --topic"),
    };
    let mut traces = Vec::with_capacity(ids.len());
    for id in &ids {
        let trace = admin
            .trace_message(id, topic)
            .await
            .with_context(|| format!("cannot trace message {id}"))?;
        if trace.stored.is_empty()
            && trace.broker_events.is_empty()
            && trace.client_records.is_empty()
        {
            if trace.topic_known {
                bail!("nothing is known of message {id}: no stored copy and no trace");
            }
            bail!(
                "nothing is known of message {id}: no trace names its topic (it may not have \
                 been consumed yet); give its --topic to find where it is stored"
            );
        }
        traces.push(trace);
    }
    if json {
        #[derive(Serialize)]
        struct Traced<'a> {
            #[serde(flatten)]
            trace: &'a MessageTrace,
            timeline: Vec<TraceStep>,
        }
        let all: Vec<Traced> = traces
            .iter()
            .map(|t| Traced {
                trace: t,
                timeline: t.timeline(),
            })
            .collect();
        return if all.len() == 1 {
            print_json(&all[0])
        } else {
            print_json(&all)
        };
    }
    for (i, t) in traces.iter().enumerate() {
        if i > 0 {
            out!();
        }
        out!("Message {}", t.msg_id);
        let mut table = Table::new(&["TIME", "SOURCE", "STEP", "DETAIL"]);
        for s in t.timeline() {
            table.row(vec![
                time_text(s.time_ms),
                s.source.to_owned(),
                s.what,
                s.detail,
            ]);
        }
        table.print();
    }
    Ok(())
}
