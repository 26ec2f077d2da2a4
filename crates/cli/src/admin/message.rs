//! `petrel admin query-msg-by-id`, `query-msg-by-key`, `query-msg-by-offset` and `print-msg`:
//! finding stored messages and showing them whole. Reads only; commits no offset.

use std::collections::BTreeMap;

use anyhow::{bail, Context};
use petrel_client::admin::Admin;
use petrel_client::{MessageExt, MessageQueue, PullStatus};
use petrel_common::msg_id::decode_offset_msg_id;
use serde::Serialize;

use super::table::{out, print_json, print_pairs, Table};
use super::time_text;

/// A stored message as the admin commands show it. The body is text when it is UTF-8 (else
/// lossily decoded; `bodyBytes` is its real length).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageView {
    pub topic: String,
    pub msg_id: String,
    pub offset_msg_id: String,
    pub queue_id: i32,
    pub queue_offset: i64,
    pub commit_log_offset: i64,
    pub tags: Option<String>,
    pub keys: Option<String>,
    pub born_timestamp: i64,
    pub born_host: String,
    pub store_timestamp: i64,
    pub store_host: String,
    pub reconsume_times: i32,
    pub sys_flag: i32,
    pub flag: i32,
    pub body_crc: i32,
    pub body_bytes: usize,
    pub body: String,
    pub properties: BTreeMap<String, String>,
}

impl From<&MessageExt> for MessageView {
    fn from(m: &MessageExt) -> Self {
        MessageView {
            topic: m.topic.clone(),
            msg_id: m.msg_id().to_owned(),
            offset_msg_id: m.offset_msg_id.clone(),
            queue_id: m.queue_id,
            queue_offset: m.queue_offset,
            commit_log_offset: m.commit_log_offset,
            tags: m.tags().map(str::to_owned),
            keys: m.keys().map(str::to_owned),
            born_timestamp: m.born_timestamp,
            born_host: m.born_host.to_string(),
            store_timestamp: m.store_timestamp,
            store_host: m.store_host.to_string(),
            reconsume_times: m.reconsume_times,
            sys_flag: m.sys_flag,
            flag: m.flag,
            body_crc: m.body_crc,
            body_bytes: m.body.len(),
            body: String::from_utf8_lossy(&m.body).into_owned(),
            properties: m
                .properties
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        }
    }
}

/// By offsetMsgId (VIEW_MESSAGE_BY_ID at the address inside it), or by the producer's msgId
/// through the topic's key index (QUERY_MESSAGE as a unique-key query), as mqadmin tries both.
pub async fn query_by_id(
    admin: &Admin,
    id: &str,
    topic: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    let found = if decode_offset_msg_id(id).is_some() {
        vec![admin
            .view_message_by_offset_msg_id(id)
            .await
            .with_context(|| format!("cannot read the message with offsetMsgId {id}"))?]
    } else {
        let Some(topic) = topic else {
            bail!("{id} is not an offsetMsgId; to look a msgId up give its --topic");
        };
        admin
            .query_message_by_unique_key(topic, id)
            .await
            .with_context(|| format!("cannot look msgId {id} up in topic {topic}"))?
    };
    if found.is_empty() {
        bail!(
            "no message with msgId {id} in topic {}",
            topic.unwrap_or_default()
        );
    }
    print_messages_in_full(&found, json)
}

pub async fn query_by_key(
    admin: &Admin,
    topic: &str,
    key: &str,
    max: i32,
    begin_ms: i64,
    end_ms: i64,
    json: bool,
) -> anyhow::Result<()> {
    let found = admin
        .query_messages_by_key(topic, key, max, begin_ms, end_ms)
        .await
        .with_context(|| format!("cannot look key {key} up in topic {topic}"))?;
    print_message_list(&found, json)
}

pub async fn query_by_offset(
    admin: &Admin,
    mq: &MessageQueue,
    offset: i64,
    json: bool,
) -> anyhow::Result<()> {
    let result = admin.pull(mq, offset, 1).await.with_context(|| {
        format!(
            "cannot pull {}/{}/{} at offset {offset}",
            mq.topic, mq.broker_name, mq.queue_id
        )
    })?;
    let message = match result.status {
        PullStatus::Found(mut msgs) if !msgs.is_empty() => msgs.swap_remove(0),
        status => bail!(
            "no message at offset {offset} of {}/{}/{} ({status:?}; the queue holds {}..{})",
            mq.topic,
            mq.broker_name,
            mq.queue_id,
            result.min_offset,
            result.max_offset
        ),
    };
    print_messages_in_full(&[message], json)
}

/// Most messages `print-msg` reads from one queue unless told otherwise.
pub const DEFAULT_MAX_PER_QUEUE: usize = 1000;

/// The messages of every queue of `topic` stored from `begin_ms` to before `end_ms`.
pub async fn print_msg(
    admin: &Admin,
    topic: &str,
    begin_ms: i64,
    end_ms: i64,
    max_per_queue: usize,
    json: bool,
) -> anyhow::Result<()> {
    if end_ms <= begin_ms {
        bail!("--end must come after --begin");
    }
    let queues = admin
        .topic_queues(topic)
        .await
        .with_context(|| format!("cannot read the route of topic {topic}"))?;
    let mut found = Vec::new();
    let bar = crate::progress::steps(queues.len() as u64, &format!("reading {topic}'s queues"));
    for mq in &queues {
        found.extend(
            admin
                .queue_messages_between(mq, begin_ms, end_ms, max_per_queue)
                .await
                .with_context(|| {
                    format!(
                        "cannot read {}/{}/{} between {} and {}",
                        mq.topic,
                        mq.broker_name,
                        mq.queue_id,
                        time_text(begin_ms),
                        time_text(end_ms)
                    )
                })?,
        );
        bar.inc(1);
        bar.set_message(format!(
            "reading {topic}'s queues: {} message(s)",
            found.len()
        ));
    }
    bar.finish_and_clear();
    print_message_list(&found, json)
}

fn print_message_list(msgs: &[MessageExt], json: bool) -> anyhow::Result<()> {
    if json {
        let views: Vec<MessageView> = msgs.iter().map(MessageView::from).collect();
        return print_json(&views);
    }
    let mut table = Table::new(&["msgId", "queue", "offset", "stored", "tags", "keys", "body"]);
    for m in msgs {
        table.row(vec![
            m.msg_id().to_owned(),
            m.queue_id.to_string(),
            m.queue_offset.to_string(),
            time_text(m.store_timestamp),
            m.tags().unwrap_or_default().to_owned(),
            m.keys().unwrap_or_default().to_owned(),
            body_preview(&m.body),
        ]);
    }
    table.print();
    out!("{} message(s)", msgs.len());
    Ok(())
}

fn print_messages_in_full(msgs: &[MessageExt], json: bool) -> anyhow::Result<()> {
    let views: Vec<MessageView> = msgs.iter().map(MessageView::from).collect();
    if json {
        return print_json(&views);
    }
    for (i, v) in views.into_iter().enumerate() {
        if i > 0 {
            out!();
        }
        print_pairs([
            ("topic", v.topic),
            ("msgId", v.msg_id),
            ("offsetMsgId", v.offset_msg_id),
            ("queue", v.queue_id.to_string()),
            ("queue offset", v.queue_offset.to_string()),
            ("commit-log offset", v.commit_log_offset.to_string()),
            ("tags", v.tags.unwrap_or_default()),
            ("keys", v.keys.unwrap_or_default()),
            (
                "born",
                format!("{} from {}", time_text(v.born_timestamp), v.born_host),
            ),
            (
                "stored",
                format!("{} on {}", time_text(v.store_timestamp), v.store_host),
            ),
            ("reconsume times", v.reconsume_times.to_string()),
            ("properties", format!("{:?}", v.properties)),
            ("body", format!("{} byte(s): {}", v.body_bytes, v.body)),
        ]);
    }
    Ok(())
}

/// Characters of a body shown in a table cell.
const BODY_PREVIEW_CHARS: usize = 40;

fn body_preview(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut preview: String = text
        .chars()
        .take(BODY_PREVIEW_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > BODY_PREVIEW_CHARS {
        preview.push('…');
    }
    preview
}
