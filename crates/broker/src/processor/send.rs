//! SEND_MESSAGE, SEND_MESSAGE_V2 and SEND_BATCH_MESSAGE: validate, encode once into the stored
//! record format, append, answer with the offsetMsgId. A single message to a `%RETRY%` topic past
//! its max reconsume times goes to `%DLQ%<group>`; one with `DELAY > 0` to `SCHEDULE_TOPIC_XXXX`;
//! one with a future timer time to `rmq_sys_wheel_timer`. [`store_message`] is the one way a
//! client's message gets stored: the gRPC endpoint (crates/proxy) calls it too, with the message
//! put in a send header's terms, and maps [`SendError`] to its own codes.
//!
//! This is the hot path the official benchmark drives (binary headers, one message per
//! request): one header decode, one properties scan, one encode into a buffer the store copies
//! into its mapped segment.

use std::sync::Arc;

use bytes::{Buf, BytesMut};
use petrel_common::msg_id::offset_msg_id;
use petrel_common::properties::{Properties, CLUSTER, DELAY, RETRY_TOPIC, TAGS, UNIQ_KEY};
use petrel_common::record::{
    self, java_string_hash, RecordFields, SYSFLAG_TRANSACTION_MASK, SYSFLAG_TRANSACTION_PREPARED,
};
use petrel_common::topic::{
    dlq_topic, perm, validate_topic, TopicConfig, RETRY_GROUP_TOPIC_PREFIX, TRANS_HALF_TOPIC,
};
use petrel_remoting::code::{request, response};
use petrel_remoting::headers::{
    SendMessageRequestHeader, SendMessageRequestHeaderV2, SendMessageResponseHeader,
};
use petrel_remoting::{Connection, HeaderError, RemotingCommand};
use petrel_store::{AppendRequest, AppendResult, AppendStatus, StoreError};

use crate::ha::SlaveStatus;

use super::bad_header;
use crate::broker::Broker;
use crate::metrics::MessageType;
use crate::topic_config::TopicLookup;
use crate::transaction;

/// `retryMaxTimes` of a group the broker has no config for.
pub(crate) const DEFAULT_MAX_RECONSUME_TIMES: i32 = 16;

fn decode_send_header(req: &RemotingCommand) -> Result<SendMessageRequestHeader, HeaderError> {
    if req.code == request::SEND_MESSAGE {
        req.decode_header()
    } else {
        req.decode_header::<SendMessageRequestHeaderV2>()
            .map(Into::into)
    }
}

/// SEND_MESSAGE / SEND_MESSAGE_V2.
pub async fn send_message(
    b: &Arc<Broker>,
    conn: &Connection,
    req: &RemotingCommand,
) -> RemotingCommand {
    let h = match decode_send_header(req) {
        Ok(h) => h,
        Err(e) => return bad_header(req, e),
    };
    let body = req.body_bytes();
    let result = store_message(b, h, &body, conn.peer_addr()).await;
    respond(b, req, result)
}

/// SEND_BATCH_MESSAGE.
pub async fn send_batch(
    b: &Arc<Broker>,
    conn: &Connection,
    req: &RemotingCommand,
) -> RemotingCommand {
    let h = match decode_send_header(req) {
        Ok(h) => h,
        Err(e) => return bad_header(req, e),
    };
    let body = req.body_bytes();
    let result = store_batch(b, h, &body, conn.peer_addr()).await;
    respond(b, req, result)
}

/// Why a message was not stored. Each protocol maps these to its own codes: remoting in
/// [`SendError::response_code`], gRPC in the proxy.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("{0}")]
    IllegalTopic(String),
    #[error("{0}")]
    TopicNotFound(String),
    /// The topic may not be written (its permission, or the auto-create template).
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BodyTooLarge(String),
    /// A delay or timer time the broker cannot honour.
    #[error("{0}")]
    IllegalDelivery(String),
    /// A queue id the topic does not have.
    #[error("{0}")]
    BadQueue(String),
    /// A message the record format cannot hold, or a malformed batch.
    #[error("{0}")]
    Illegal(String),
    #[error("broker metadata write failed: {0}")]
    Metadata(std::io::Error),
    #[error("store refused the message: {0}")]
    Store(StoreError),
    /// A master in controller mode that has not heard from the controllers for its lease:
    /// another replica may be elected at any moment, so it takes no more writes.
    #[error("this master's controller lease ran out ({0}); it takes no writes until a controller confirms it")]
    LeaseExpired(String),
}

impl SendError {
    /// The remoting response code of this refusal.
    pub fn response_code(&self) -> i32 {
        match self {
            SendError::IllegalTopic(_) | SendError::BadQueue(_) => response::INVALID_PARAMETER,
            SendError::TopicNotFound(_) => response::TOPIC_NOT_EXIST,
            SendError::Forbidden(_) => response::NO_PERMISSION,
            SendError::BodyTooLarge(_) | SendError::IllegalDelivery(_) | SendError::Illegal(_) => {
                response::MESSAGE_ILLEGAL
            }
            SendError::Metadata(_) => response::SYSTEM_ERROR,
            SendError::Store(StoreError::MessageTooLarge { .. }) => response::MESSAGE_ILLEGAL,
            // The remark carries the used ratio and the limit (RocketMQ: "disk is full").
            SendError::Store(_) | SendError::LeaseExpired(_) => response::SERVICE_NOT_AVAILABLE,
        }
    }
}

/// What the store made of a send.
#[derive(Debug, Clone)]
pub struct Stored {
    pub status: AppendStatus,
    /// The queue of the topic sent to (a delayed or half message waits elsewhere first).
    pub queue_id: i32,
    /// The first message's offset in the queue it was stored in (for a half message: in the
    /// half queue).
    pub queue_offset: i64,
    /// Each message's commit-log offset, in the order sent.
    pub physical_offsets: Vec<i64>,
    /// The UNIQ_KEY of a single message (also its transaction id).
    pub uniq_key: Option<String>,
    /// What a SYNC_MASTER's slave made of it.
    pub slave: SlaveStatus,
}

/// Validates and stores one message sent to `h.topic`, whichever protocol brought it:
/// `h.properties` holds its properties in the wire form, `born_host` is where it came from.
/// A retry past its last attempt goes to the dead-letter queue, a prepared transactional message
/// to the half queue, a delayed one to its schedule or timer queue (reference §2.4).
pub async fn store_message(
    b: &Arc<Broker>,
    mut h: SendMessageRequestHeader,
    body: &[u8],
    born_host: std::net::SocketAddr,
) -> Result<Stored, SendError> {
    check_writable_role(b)?;
    check_body_size(b, body.len())?;
    let queue_id = prepare(b, &h).await?;
    let mut props = Properties::from_wire(h.properties.take().unwrap_or_default());
    let message_type = b.metrics.enabled().then(|| MessageType::of(&props));
    let mut dead_lettered = None;
    let uniq_key = stamp_properties(b, &mut props);
    let mut tags_code = tags_code_of(&props);

    let reconsume_times = h.reconsume_times.unwrap_or(0);
    let mut store_topic = h.topic.clone();
    let mut store_queue_id = queue_id;
    if let Some(group) = h.topic.strip_prefix(RETRY_GROUP_TOPIC_PREFIX) {
        let max = match h.max_reconsume_times {
            Some(m) if m >= 0 => m,
            _ => b
                .groups
                .get(group)
                .map_or(DEFAULT_MAX_RECONSUME_TIMES, |g| g.retry_max_times),
        };
        // The 4.9.x Java orderly consumer re-sends a message after its last attempt with
        // reconsumeTimes equal to the maximum (its broker dead-letters at `>=`; 5.x clients add
        // one). As in RocketMQ 5.x, a group holding queue locks consumes orderly, and its
        // re-sends are dead-lettered whatever the count; in the retry topic they would come
        // back forever.
        if reconsume_times > max || b.rebalance_locks.group_has_live_locks(group) {
            let dlq = dead_letter_topic(b, group).map_err(SendError::Metadata)?;
            props.insert(DELAY, "-1");
            dead_lettered = Some(group);
            store_topic = dlq;
            store_queue_id = 0;
        }
    }
    let mut sys_flag = h.sys_flag;
    let half = sys_flag & SYSFLAG_TRANSACTION_MASK == SYSFLAG_TRANSACTION_PREPARED;
    if half {
        // Invisible until END_TRANSACTION (reference §6.4); delay levels do not apply.
        store_queue_id = transaction::to_half(&mut props, &store_topic, store_queue_id, &uniq_key);
        store_topic = TRANS_HALF_TOPIC.to_owned();
        sys_flag = transaction::half_sys_flag(sys_flag);
    } else {
        let scheduled = b
            .delay_levels
            .redirect(sys_flag, &store_topic, store_queue_id, &mut props)
            .map_err(SendError::IllegalDelivery)?;
        if let Some(s) = scheduled {
            store_topic = s.topic.to_owned();
            store_queue_id = s.queue_id;
            tags_code = s.tags_code;
        }
    }

    let fields = RecordFields {
        queue_id: store_queue_id,
        flag: h.flag,
        queue_offset: 0,
        physical_offset: 0,
        sys_flag,
        born_timestamp: h.born_timestamp,
        born_host,
        store_timestamp: 0,
        store_host: b.store_host,
        reconsume_times,
        prepared_transaction_offset: 0,
        body,
        topic: &store_topic,
        properties: props.as_str().as_bytes(),
    };
    let append =
        encode_append(&fields, tags_code).map_err(|e| SendError::Illegal(e.to_string()))?;
    let r = b
        .store
        .put_message(append)
        .await
        .map_err(SendError::Store)?;
    if let Some(message_type) = message_type {
        b.metrics.message_in(&h.topic, message_type, body.len());
        if let Some(group) = dead_lettered {
            let topic = props.get(RETRY_TOPIC).unwrap_or(h.topic.as_str());
            b.metrics.send_to_dlq(group, topic);
        }
    }
    if half {
        b.half_stored(
            r.first_queue_offset,
            r.first_physical_offset,
            &props,
            &h.producer_group,
        );
    }
    Ok(stored(b, r, queue_id, Some(uniq_key)).await)
}

/// Validates and stores a SEND_BATCH_MESSAGE body: messages asking for a delay go to their
/// schedule queues one by one; the rest are one atomic batch. (RocketMQ's broker silently
/// ignores DELAY inside a batch.)
pub async fn store_batch(
    b: &Arc<Broker>,
    h: SendMessageRequestHeader,
    body: &[u8],
    born_host: std::net::SocketAddr,
) -> Result<Stored, SendError> {
    check_writable_role(b)?;
    let queue_id = prepare(b, &h).await?;
    let inner = match decode_batch(body) {
        Ok(m) if !m.is_empty() => m,
        Ok(_) => return Err(SendError::Illegal("the batch is empty".into())),
        Err(remark) => return Err(SendError::Illegal(remark)),
    };
    let mut batch = Vec::with_capacity(inner.len());
    let mut delayed = Vec::new();
    // (body bytes, type) of each message, for the metrics once the batch is stored.
    let mut counted = Vec::with_capacity(if b.metrics.enabled() { inner.len() } else { 0 });
    for (i, m) in inner.into_iter().enumerate() {
        check_body_size(b, m.body.len())?;
        let mut props = Properties::from_stored(m.properties);
        if b.metrics.enabled() {
            counted.push((m.body.len(), MessageType::of(&props)));
        }
        stamp_properties(b, &mut props);
        let mut tags_code = tags_code_of(&props);
        let (mut topic, mut store_queue_id) = (h.topic.as_str(), queue_id);
        let scheduled = b
            .delay_levels
            .redirect(h.sys_flag, topic, queue_id, &mut props)
            .map_err(SendError::IllegalDelivery)?;
        if let Some(s) = scheduled {
            topic = s.topic;
            store_queue_id = s.queue_id;
            tags_code = s.tags_code;
        }
        let fields = RecordFields {
            queue_id: store_queue_id,
            flag: m.flag,
            queue_offset: 0,
            physical_offset: 0,
            sys_flag: h.sys_flag,
            born_timestamp: h.born_timestamp,
            born_host,
            store_timestamp: 0,
            store_host: b.store_host,
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            body: m.body,
            topic,
            properties: props.as_str().as_bytes(),
        };
        let append =
            encode_append(&fields, tags_code).map_err(|e| SendError::Illegal(e.to_string()))?;
        if scheduled.is_some() {
            delayed.push((i, append));
        } else {
            batch.push(append);
        }
    }
    let r = if delayed.is_empty() {
        b.store.put_messages(batch).await
    } else {
        put_split_batch(b, batch, delayed).await
    }
    .map_err(SendError::Store)?;
    for (body_bytes, message_type) in counted {
        b.metrics.message_in(&h.topic, message_type, body_bytes);
    }
    Ok(stored(b, r, queue_id, None).await)
}

/// Stores a batch some of whose messages were redirected to schedule queues: the rest (`batch`,
/// in the sender's order) as one batch, then each redirected one (with its position in the
/// sender's batch). The result lists physical offsets in the sender's order, so message ids
/// line up with the messages sent.
async fn put_split_batch(
    b: &Broker,
    batch: Vec<AppendRequest>,
    delayed: Vec<(usize, AppendRequest)>,
) -> Result<AppendResult, StoreError> {
    let total = batch.len() + delayed.len();
    let mut offsets = vec![0i64; total];
    let mut status = AppendStatus::PutOk;
    let mut first_queue_offset = 0;
    let mut store_timestamp = 0;
    let mut end_physical_offset = 0;
    if !batch.is_empty() {
        let r = b.store.put_messages(batch).await?;
        // The plain messages' positions: every position no delayed message took, in order.
        let plain = (0..total).filter(|i| delayed.binary_search_by_key(i, |(d, _)| *d).is_err());
        for (i, o) in plain.zip(&r.physical_offsets) {
            offsets[i] = *o;
        }
        first_queue_offset = r.first_queue_offset;
        store_timestamp = r.store_timestamp;
        end_physical_offset = r.end_physical_offset;
        if r.status != AppendStatus::PutOk {
            status = r.status;
        }
    }
    for (i, append) in delayed {
        let r = b.store.put_message(append).await?;
        offsets[i] = r.first_physical_offset;
        store_timestamp = store_timestamp.max(r.store_timestamp);
        end_physical_offset = end_physical_offset.max(r.end_physical_offset);
        if r.status != AppendStatus::PutOk {
            status = r.status;
        }
    }
    Ok(AppendResult {
        status,
        first_physical_offset: offsets[0],
        first_queue_offset,
        physical_offsets: offsets,
        end_physical_offset,
        store_timestamp,
    })
}

/// Header checks shared by single and batch sends: the topic (auto-created if allowed and
/// writable), the queue.
async fn prepare(b: &Arc<Broker>, h: &SendMessageRequestHeader) -> Result<i32, SendError> {
    let topic = writable_topic(b, h).await?;
    pick_queue(h, &topic)
}

fn check_body_size(b: &Broker, len: usize) -> Result<(), SendError> {
    let max = b.settings.max_message_bytes();
    if len > max {
        return Err(SendError::BodyTooLarge(format!(
            "the message body is {len} bytes, larger than the broker's maxMessageSize of {max} bytes"
        )));
    }
    Ok(())
}

/// Adds what the broker stamps on every message it is sent: a UNIQ_KEY if the producer gave
/// none, and CLUSTER. Returns the message's UNIQ_KEY.
fn stamp_properties(b: &Broker, props: &mut Properties) -> String {
    let uniq_key = match props.get(UNIQ_KEY) {
        Some(k) => k.to_owned(),
        None => {
            let id = b.uniq_ids.next_id();
            props.insert(UNIQ_KEY, &id);
            id
        }
    };
    props.insert(CLUSTER, &b.config.cluster_name);
    uniq_key
}

/// The consume-queue tag hash of a message with `props`: Java's `String.hashCode` of its tags.
pub(crate) fn tags_code_of(props: &Properties) -> i64 {
    props.get(TAGS).map_or(0, |t| java_string_hash(t) as i64)
}

/// Encodes a record for the store after checking the format's limits. Every path that writes a
/// message (send, batch, send-back, scheduled delivery) goes through here.
pub(crate) fn encode_append(
    fields: &RecordFields,
    tags_code: i64,
) -> Result<AppendRequest, record::RecordError> {
    record::check_limits(fields)?;
    let mut buf = BytesMut::with_capacity(record::encoded_len(fields));
    record::encode(fields, &mut buf);
    Ok(AppendRequest {
        record: buf,
        topic: fields.topic.to_owned(),
        queue_id: fields.queue_id,
        tags_code,
    })
}

/// The fields to store a stored record `rec` again under `topic`/`queue_id` with `props`, by
/// this broker (`store_host`): the store assigns the offsets and the store time; everything
/// else is as it was. Send-back, scheduled delivery and transactions copy records this way.
pub(crate) fn copy_fields<'a>(
    rec: &record::DecodedRecord<'a>,
    topic: &'a str,
    queue_id: i32,
    props: &'a Properties,
    store_host: std::net::SocketAddr,
) -> RecordFields<'a> {
    let mut fields = rec.fields();
    fields.topic = topic;
    fields.queue_id = queue_id;
    fields.properties = props.as_str().as_bytes();
    fields.store_host = store_host;
    fields.queue_offset = 0;
    fields.physical_offset = 0;
    fields.store_timestamp = 0;
    fields
}

/// The fields of a message the broker writes itself (transaction op records, its trace) to
/// queue 0 of `topic`: born and stored by this broker (`host`), now.
pub(crate) fn broker_made<'a>(
    topic: &'a str,
    body: &'a [u8],
    props: &'a Properties,
    host: std::net::SocketAddr,
) -> RecordFields<'a> {
    RecordFields {
        queue_id: 0,
        flag: 0,
        queue_offset: 0,
        physical_offset: 0,
        sys_flag: 0,
        born_timestamp: petrel_common::msg_id::now_ms() as i64,
        born_host: host,
        store_timestamp: 0,
        store_host: host,
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body,
        topic,
        properties: props.as_str().as_bytes(),
    }
}

/// `%DLQ%<group>`, created (one queue, read-write) on its first dead letter.
pub(crate) fn dead_letter_topic(b: &Broker, group: &str) -> std::io::Result<String> {
    let name = dlq_topic(group);
    let lookup =
        b.topics
            .create_if_absent(TopicConfig::new(name.clone(), 1, perm::READ | perm::WRITE))?;
    if matches!(lookup, TopicLookup::Created(_)) {
        b.topic_changed(&name);
    }
    Ok(name)
}

/// The topic's config if a send to it is allowed, creating it from the template if needed.
async fn writable_topic(
    b: &Arc<Broker>,
    h: &SendMessageRequestHeader,
) -> Result<TopicConfig, SendError> {
    validate_topic(&h.topic).map_err(SendError::IllegalTopic)?;
    if h.topic == h.default_topic || h.topic == petrel_common::topic::AUTO_CREATE_TOPIC_KEY {
        return Err(SendError::Forbidden(format!(
            "the topic {} is the auto-create template and cannot receive messages",
            h.topic
        )));
    }
    let lookup = match h.topic.strip_prefix(RETRY_GROUP_TOPIC_PREFIX) {
        // A consumer's own re-send of a failed message: the retry topic has the group's
        // retryQueueNums queues, whatever the template says.
        Some(group) if b.topics.get(&h.topic).is_none() => {
            let queues = b.groups.get(group).map_or(1, |g| g.retry_queue_nums.max(1));
            b.topics.create_if_absent(TopicConfig::new(
                h.topic.clone(),
                queues,
                perm::READ | perm::WRITE,
            ))
        }
        _ => b.topics.get_or_create_for_send(
            &h.topic,
            &h.default_topic,
            h.default_topic_queue_nums,
            b.settings.auto_create_topic_enable(),
        ),
    };
    let topic = match lookup.map_err(SendError::Metadata)? {
        TopicLookup::Found(t) => t,
        TopicLookup::Created(t) => {
            // Registered before the answer, as RocketMQ does: a client that sends and then
            // starts a consumer of the new topic must find its route.
            b.publish_topic(&t.topic_name).await;
            t
        }
        TopicLookup::NotExist => {
            return Err(SendError::TopicNotFound(format!(
                "topic[{}] not exist, apply first please!",
                h.topic
            )))
        }
    };
    if !perm::writeable(topic.perm) {
        return Err(SendError::Forbidden(format!(
            "the topic[{}] sending message is forbidden",
            h.topic
        )));
    }
    Ok(topic)
}

fn pick_queue(h: &SendMessageRequestHeader, topic: &TopicConfig) -> Result<i32, SendError> {
    let queues = topic.write_queue_nums.max(1);
    if h.queue_id < 0 {
        return Ok(rand::random_range(0..queues));
    }
    if h.queue_id >= queues {
        return Err(SendError::BadQueue(format!(
            "queueId {} is out of range: topic {} has {} write queues",
            h.queue_id, h.topic, queues
        )));
    }
    Ok(h.queue_id)
}

/// A slave takes no sends: its log holds only its master's bytes (RocketMQ answers
/// SERVICE_NOT_AVAILABLE). Nor does a controlled master whose lease ran out.
fn check_writable_role(b: &Broker) -> Result<(), SendError> {
    if !b.config.broker_role.is_master() {
        return Err(SendError::Store(StoreError::Replica));
    }
    b.ha.check_lease().map_err(SendError::LeaseExpired)
}

/// Counts what was stored, waits for a SYNC_MASTER's slave, and says where it went.
async fn stored(b: &Broker, r: AppendResult, queue_id: i32, uniq_key: Option<String>) -> Stored {
    b.count_put(r.physical_offsets.len() as u64);
    let slave = if r.status == AppendStatus::PutOk {
        let timeout = std::time::Duration::from_millis(b.config.store.sync_flush_timeout_ms);
        b.ha.wait_replicated(r.end_physical_offset, timeout).await
    } else {
        SlaveStatus::Ok
    };
    Stored {
        slave,
        status: r.status,
        queue_id,
        queue_offset: r.first_queue_offset,
        physical_offsets: r.physical_offsets,
        uniq_key,
    }
}

/// The remoting answer to a send: the offsetMsgIds and the queue, or the refusal.
fn respond(
    b: &Broker,
    req: &RemotingCommand,
    result: Result<Stored, SendError>,
) -> RemotingCommand {
    let s = match result {
        Ok(s) => s,
        Err(e) => return RemotingCommand::error(req, e.response_code(), e.to_string()),
    };
    let code = match (s.status, s.slave) {
        (AppendStatus::FlushDiskTimeout, _) => response::FLUSH_DISK_TIMEOUT,
        (AppendStatus::PutOk, SlaveStatus::Ok) => response::SUCCESS,
        (AppendStatus::PutOk, SlaveStatus::FlushSlaveTimeout) => response::FLUSH_SLAVE_TIMEOUT,
        (AppendStatus::PutOk, SlaveStatus::SlaveNotAvailable) => response::SLAVE_NOT_AVAILABLE,
    };
    let msg_id = s
        .physical_offsets
        .iter()
        .map(|o| offset_msg_id(b.store_host, *o))
        .collect::<Vec<_>>()
        .join(",");
    let header = SendMessageResponseHeader {
        msg_id,
        queue_id: s.queue_id,
        queue_offset: s.queue_offset,
        transaction_id: s.uniq_key,
        region: Some(b.config.region_id.clone()),
        trace_on: Some(b.config.trace_on.to_string()),
    };
    RemotingCommand::response_to(req, code, None).with_header(&header)
}

/// One message of a SEND_BATCH_MESSAGE body (reference §4.8).
struct BatchEntry<'a> {
    flag: i32,
    body: &'a [u8],
    properties: &'a [u8],
}

fn decode_batch(mut buf: &[u8]) -> Result<Vec<BatchEntry<'_>>, String> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        if buf.len() < 20 {
            return Err(format!("batch entry {} is truncated", out.len()));
        }
        let total = i32::from_be_bytes(buf[0..4].try_into().expect("4 bytes"));
        if total < 22 || total as usize > buf.len() {
            return Err(format!(
                "batch entry {} has an invalid size {total}",
                out.len()
            ));
        }
        let mut entry = &buf[..total as usize];
        entry.advance(12); // total size, magic, body crc: unused in batches
        let flag = entry.get_i32();
        let body_len = entry.get_i32();
        if body_len < 0 || body_len as usize + 2 > entry.len() {
            return Err(format!(
                "batch entry {} has an invalid body length",
                out.len()
            ));
        }
        let (body, mut rest) = entry.split_at(body_len as usize);
        let props_len = rest.get_i16();
        if props_len < 0 || props_len as usize != rest.len() {
            return Err(format!(
                "batch entry {} has an invalid properties length",
                out.len()
            ));
        }
        out.push(BatchEntry {
            flag,
            body,
            properties: rest,
        });
        buf.advance(total as usize);
    }
    Ok(out)
}
