//! SendMessage: each v2 message is checked, put in the terms of a send header (its system
//! properties become RocketMQ's properties: UNIQ_KEY from the client's message id, TAGS, KEYS,
//! `__SHARDINGKEY` for the message group, TIMER_DELIVER_MS for a delivery time, TRAN_MSG for a
//! transactional one) and stored through the broker's own send path, so gRPC and remoting
//! messages are the same on disk and each protocol reads the other's.
//!
//! A FIFO message goes to the queue its message group hashes to, so a group stays in one queue;
//! a transactional one is stored as a half message whose producer group is its topic (what the
//! transaction checker asks), and answered with a transaction id naming it.

use std::io::Read;
use std::sync::Arc;

use petrel_broker::ha::SlaveStatus;
use petrel_broker::processor::send::{store_message, SendError, Stored};
use petrel_broker::Broker;
use petrel_common::properties::{
    Properties, CHECK_IMMUNITY_TIME_IN_SECONDS, KEYS, PGROUP, SHARDING_KEY, TAGS, TIMER_DELIVER_MS,
    TRAN_MSG, UNIQ_KEY,
};
use petrel_common::record::{java_string_hash, SYSFLAG_TRANSACTION_PREPARED};
use petrel_common::topic::AUTO_CREATE_TOPIC_KEY;
use petrel_remoting::headers::SendMessageRequestHeader;
use petrel_store::{AppendStatus, StoreError};

use crate::context::{ok, resource_name, status, Caller};
use crate::message::{
    is_system_property, ms_of_timestamp, BORN_HOST, KEY_SEPARATOR, TRACE_CONTEXT,
};
use crate::pb::{
    Code, Encoding, Message, MessageType, SendMessageRequest, SendMessageResponse, SendResultEntry,
    Status,
};
use crate::route::accepted_types;
use crate::transaction::TransactionId;

pub async fn send_message(
    b: &Arc<Broker>,
    caller: &Caller,
    req: SendMessageRequest,
) -> SendMessageResponse {
    let refused = |status| SendMessageResponse {
        status: Some(status),
        entries: Vec::new(),
    };
    let Some(first) = req.messages.first() else {
        return refused(status(Code::MessageCorrupted, "no message to send"));
    };
    let topic = first.topic.as_ref().map(resource_name).unwrap_or_default();
    if req
        .messages
        .iter()
        .any(|m| m.topic.as_ref().map(resource_name).unwrap_or_default() != topic)
    {
        return refused(status(
            Code::MessageCorrupted,
            "the messages of one request must have the same topic",
        ));
    }
    let mut entries = Vec::with_capacity(req.messages.len());
    for m in req.messages {
        let entry = match send_one(b, caller, &topic, m).await {
            Ok(e) => e,
            Err(s) => SendResultEntry {
                status: Some(s),
                ..SendResultEntry::default()
            },
        };
        entries.push(entry);
    }
    let first_code = entries[0].status.as_ref().map_or(0, |s| s.code);
    let status = if entries
        .iter()
        .all(|e| e.status.as_ref().map_or(0, |s| s.code) == first_code)
    {
        entries[0].status.clone()
    } else {
        Some(status(
            Code::MultipleResults,
            "the messages had different results",
        ))
    };
    SendMessageResponse { status, entries }
}

async fn send_one(
    b: &Arc<Broker>,
    caller: &Caller,
    topic: &str,
    m: Message,
) -> Result<SendResultEntry, Status> {
    let sys = m.system_properties.unwrap_or_default();
    let body = match Encoding::try_from(sys.body_encoding) {
        Ok(Encoding::Gzip) => gunzip(&m.body, b.settings.max_message_bytes())?,
        _ => m.body,
    };
    if body.is_empty() {
        return Err(status(Code::MessageBodyEmpty, "the message body is empty"));
    }
    if sys.message_id.trim().is_empty() {
        return Err(status(Code::IllegalMessageId, "the message id is empty"));
    }
    let message_type = MessageType::try_from(sys.message_type).unwrap_or(MessageType::Normal);
    let config = b.topics.get(topic);
    if let Some(config) = &config {
        let as_typed = if message_type == MessageType::Unspecified {
            MessageType::Normal
        } else {
            message_type
        };
        if !accepted_types(config).contains(&as_typed) {
            return Err(status(
                Code::MessagePropertyConflictWithType,
                format!(
                    "topic {topic} does not take {} messages",
                    as_typed.as_str_name()
                ),
            ));
        }
    }

    let mut props = Properties::new();
    for (k, v) in &m.user_properties {
        if is_system_property(k) {
            return Err(status(
                Code::IllegalMessagePropertyKey,
                format!("the property name {k} is reserved by RocketMQ"),
            ));
        }
        if k.is_empty() || has_control(k) || has_control(v) {
            return Err(status(
                Code::IllegalMessagePropertyKey,
                format!("the property {k:?} is empty or holds control characters"),
            ));
        }
        props.insert(k, v);
    }
    if let Some(tag) = &sys.tag {
        if tag.trim().is_empty() || has_control(tag) || tag.contains('|') {
            return Err(status(
                Code::IllegalMessageTag,
                format!("the tag {tag:?} is blank or holds '|' or control characters"),
            ));
        }
        props.insert(TAGS, tag);
    }
    if let Some(k) = sys
        .keys
        .iter()
        .find(|k| k.trim().is_empty() || has_control(k))
    {
        return Err(status(
            Code::IllegalMessageKey,
            format!("the key {k:?} is blank or holds control characters"),
        ));
    }
    if !sys.keys.is_empty() {
        props.insert(KEYS, sys.keys.join(&KEY_SEPARATOR.to_string()));
    }
    if has_control(&sys.message_id) {
        return Err(status(
            Code::IllegalMessageId,
            "the message id holds control characters",
        ));
    }
    props.insert(UNIQ_KEY, &sys.message_id);
    let transactional = message_type == MessageType::Transaction;
    if transactional {
        props.insert(TRAN_MSG, "true");
        if let Some(d) = &sys.orphaned_transaction_recovery_duration {
            props.insert(CHECK_IMMUNITY_TIME_IN_SECONDS, d.seconds.max(0).to_string());
        }
    }
    if let Some(at) = &sys.delivery_timestamp {
        props.insert(TIMER_DELIVER_MS, ms_of_timestamp(at).to_string());
    }
    // The transaction checker asks the producers registered under this group: the topic.
    props.insert(PGROUP, topic);
    if let Some(group) = sys.message_group.as_deref().filter(|g| !g.is_empty()) {
        if group.trim().is_empty() || has_control(group) {
            return Err(status(
                Code::IllegalMessageGroup,
                "the message group is blank or holds control characters",
            ));
        }
        props.insert(SHARDING_KEY, group);
    }
    if let Some(t) = sys.trace_context.as_deref().filter(|t| !t.is_empty()) {
        if !has_control(t) {
            props.insert(TRACE_CONTEXT, t);
        }
    }
    if !sys.born_host.is_empty() && !has_control(&sys.born_host) {
        props.insert(BORN_HOST, &sys.born_host);
    }

    let queue_id = match (sys.message_group.as_deref(), &config) {
        (Some(group), Some(config)) if !group.is_empty() => {
            queue_of_group(group, config.write_queue_nums)
        }
        _ => -1,
    };
    let born_timestamp = sys
        .born_timestamp
        .as_ref()
        .map(ms_of_timestamp)
        .unwrap_or_else(|| petrel_common::msg_id::now_ms() as i64);
    let h = SendMessageRequestHeader {
        producer_group: topic.to_owned(),
        topic: topic.to_owned(),
        default_topic: AUTO_CREATE_TOPIC_KEY.to_owned(),
        default_topic_queue_nums: b.config.default_topic_queue_nums,
        queue_id,
        sys_flag: if transactional {
            SYSFLAG_TRANSACTION_PREPARED
        } else {
            0
        },
        born_timestamp,
        flag: 0,
        properties: Some(props.into_wire()),
        reconsume_times: None,
        unit_mode: None,
        batch: None,
        max_reconsume_times: None,
        broker_name: None,
    };
    let stored = store_message(b, h, &body, caller.peer)
        .await
        .map_err(send_refused)?;
    Ok(entry(&stored, &sys.message_id, transactional))
}

fn entry(stored: &Stored, message_id: &str, transactional: bool) -> SendResultEntry {
    // As RocketMQ's proxy: a stored message a SYNC_MASTER's slave did not confirm is not OK.
    let status = match (stored.status, stored.slave) {
        (AppendStatus::FlushDiskTimeout, _) => status(
            Code::MasterPersistenceTimeout,
            "stored, but not flushed to disk in time",
        ),
        (AppendStatus::PutOk, SlaveStatus::Ok) => ok(),
        (AppendStatus::PutOk, SlaveStatus::FlushSlaveTimeout) => status(
            Code::SlavePersistenceTimeout,
            "stored on the master, but no slave confirmed it in time",
        ),
        (AppendStatus::PutOk, SlaveStatus::SlaveNotAvailable) => status(
            Code::HaNotAvailable,
            "stored on the master, but no slave in sync to replicate it",
        ),
    };
    let transaction_id = match (transactional, stored.physical_offsets.first()) {
        (true, Some(commit_log_offset)) => TransactionId {
            tran_state_table_offset: stored.queue_offset,
            commit_log_offset: *commit_log_offset,
        }
        .to_string(),
        _ => String::new(),
    };
    SendResultEntry {
        status: Some(status),
        message_id: stored
            .uniq_key
            .clone()
            .unwrap_or_else(|| message_id.to_owned()),
        transaction_id,
        offset: stored.queue_offset,
        recall_handle: String::new(),
    }
}

/// The v2 status of a refused send.
fn send_refused(e: SendError) -> Status {
    let code = match &e {
        SendError::IllegalTopic(_) => Code::IllegalTopic,
        SendError::TopicNotFound(_) => Code::TopicNotFound,
        SendError::Forbidden(_) => Code::Forbidden,
        SendError::BodyTooLarge(_) => Code::MessageBodyTooLarge,
        SendError::IllegalDelivery(_) => Code::IllegalDeliveryTime,
        SendError::BadQueue(_) | SendError::Illegal(_) => Code::BadRequest,
        SendError::Store(StoreError::MessageTooLarge { .. }) => Code::MessageBodyTooLarge,
        SendError::Metadata(_) | SendError::Store(_) => Code::InternalServerError,
        SendError::LeaseExpired(_) => Code::HaNotAvailable,
    };
    status(code, e.to_string())
}

/// The queue a message group's messages go to, out of `queues`: Guava's consistent hash (what
/// RocketMQ's proxy uses) of the group's Java hash code, so a group stays where it is as long as
/// the queue count does, and most groups stay when it grows.
fn queue_of_group(group: &str, queues: i32) -> i32 {
    let buckets = queues.max(1);
    let mut state = i64::from(java_string_hash(group));
    let mut candidate: i32 = 0;
    loop {
        state = state
            .wrapping_mul(2_862_933_555_777_941_757)
            .wrapping_add(1);
        let next_double = f64::from(((state as u64) >> 33) as i32 + 1) / f64::from(1u32 << 31);
        let next = (f64::from(candidate + 1) / next_double) as i64;
        if next >= 0 && next < i64::from(buckets) {
            candidate = next as i32;
        } else {
            return candidate;
        }
    }
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// The body of a GZIP-encoded message, inflated (stored plain, so remoting consumers, which
/// know zlib only, read it too); larger than `max` inflated is too large.
fn gunzip(body: &[u8], max: usize) -> Result<Vec<u8>, Status> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| {
            status(
                Code::MessageCorrupted,
                format!("the GZIP body does not inflate: {e}"),
            )
        })?;
    if out.len() > max {
        return Err(status(
            Code::MessageBodyTooLarge,
            format!("the body inflates to more than the broker's maxMessageSize of {max} bytes"),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_send_a_sync_masters_slave_did_not_confirm_is_not_ok() {
        let stored = |status, slave| Stored {
            status,
            queue_id: 0,
            queue_offset: 7,
            physical_offsets: vec![100],
            uniq_key: Some("id".into()),
            slave,
        };
        let code = |s: &Stored| entry(s, "id", false).status.map(|st| st.code);
        assert_eq!(
            code(&stored(AppendStatus::PutOk, SlaveStatus::Ok)),
            Some(Code::Ok as i32)
        );
        assert_eq!(
            code(&stored(AppendStatus::PutOk, SlaveStatus::FlushSlaveTimeout)),
            Some(Code::SlavePersistenceTimeout as i32)
        );
        assert_eq!(
            code(&stored(AppendStatus::PutOk, SlaveStatus::SlaveNotAvailable)),
            Some(Code::HaNotAvailable as i32)
        );
        assert_eq!(
            code(&stored(AppendStatus::FlushDiskTimeout, SlaveStatus::Ok)),
            Some(Code::MasterPersistenceTimeout as i32)
        );
        assert_eq!(
            send_refused(SendError::LeaseExpired("expired".into())).code,
            Code::HaNotAvailable as i32
        );
    }

    #[test]
    fn a_message_group_always_lands_in_one_queue() {
        for group in ["order-1", "order-2", "", "ü"] {
            let q = queue_of_group(group, 8);
            assert!((0..8).contains(&q));
            assert_eq!(q, queue_of_group(group, 8));
        }
        assert_eq!(queue_of_group("any", 1), 0);
        assert_eq!(queue_of_group("any", 0), 0);
        // Guava's Hashing.consistentHash(group.hashCode(), n), computed with Guava 32.0.1.
        for (group, of8, of3) in [
            ("order-1", 3, 0),
            ("order-2", 2, 2),
            ("", 0, 0),
            ("ü", 0, 0),
            ("order-42", 3, 2),
            ("g7", 0, 0),
        ] {
            assert_eq!(queue_of_group(group, 8), of8, "{group}");
            assert_eq!(queue_of_group(group, 3), of3, "{group}");
        }
        let spread: std::collections::BTreeSet<i32> = (0..200)
            .map(|i| queue_of_group(&format!("g{i}"), 8))
            .collect();
        assert_eq!(spread.len(), 8, "groups spread over every queue");
    }

    #[test]
    fn gzip_bodies_inflate_within_the_limit() {
        use std::io::Write;
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&[b'x'; 1000]).unwrap();
        let gz = z.finish().unwrap();
        assert_eq!(gunzip(&gz, 1000).unwrap().len(), 1000);
        assert_eq!(
            gunzip(&gz, 999).unwrap_err().code,
            Code::MessageBodyTooLarge as i32
        );
        assert_eq!(
            gunzip(b"not gzip", 10).unwrap_err().code,
            Code::MessageCorrupted as i32
        );
    }
}
