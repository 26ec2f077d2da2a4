//! Stored records as v2 `Message`s, the way the 5.x clients expect them delivered: RocketMQ's
//! own properties become system properties (tag, keys, message group, delivery time, ...), the
//! rest are the user's; every message carries the upper-case MD5 of its body (the clients check
//! it, and the Node.js client fails without it). Compressed bodies (zlib, as 4.x producers
//! write them) are inflated first, so the client gets what was sent.

use std::io::Read;
use std::time::Duration;

use md5::{Digest as _, Md5};
use petrel_common::msg_id::{hex_upper, offset_msg_id};
use petrel_common::properties::{
    Properties, DELAY, KEYS, SHARDING_KEY, TAGS, TIMER_DELAY_SEC, TIMER_DELIVER_MS, TRAN_MSG,
    UNIQ_KEY,
};
use petrel_common::record::DecodedRecord;

use crate::pb::{
    DeadLetterQueue, Digest, DigestType, Encoding, Message, MessageType, Resource, SystemProperties,
};

/// `__BORNHOST`: the born host a gRPC producer reported.
pub const BORN_HOST: &str = "__BORNHOST";
/// `TRACE_CONTEXT`: a message's trace context.
pub const TRACE_CONTEXT: &str = "TRACE_CONTEXT";
/// Where a dead-lettered message came from, and its id there.
pub const DLQ_ORIGIN_TOPIC: &str = "DLQ_ORIGIN_TOPIC";
pub const DLQ_ORIGIN_MESSAGE_ID: &str = "DLQ_ORIGIN_MESSAGE_ID";
/// The separator of several keys in `KEYS`.
pub const KEY_SEPARATOR: char = ' ';

/// SYSFLAG bit: the body is compressed; and the bits naming how (0 and 0x300: zlib).
const SYSFLAG_COMPRESSED: i32 = 0x1;
const SYSFLAG_COMPRESSION_TYPE_MASK: i32 = 0x700;
const COMPRESSION_ZLIB: i32 = 0x300;

/// RocketMQ's reserved property names (its `MessageConst` set): never user properties, and
/// refused as user property names on send.
pub const SYSTEM_PROPERTIES: &[&str] = &[
    "TRACE_ON",
    "MSG_REGION",
    "KEYS",
    "TAGS",
    "WAIT",
    "DELAY",
    "RETRY_TOPIC",
    "REAL_TOPIC",
    "REAL_QID",
    "TRAN_MSG",
    "PGROUP",
    "MIN_OFFSET",
    "MAX_OFFSET",
    "BUYER_ID",
    "ORIGIN_MESSAGE_ID",
    "TRANSFER_FLAG",
    "CORRECTION_FLAG",
    "MQ2_FLAG",
    "RECONSUME_TIME",
    "UNIQ_KEY",
    "MAX_RECONSUME_TIMES",
    "CONSUME_START_TIME",
    "POP_CK",
    "POP_CK_OFFSET",
    "1ST_POP_TIME",
    "TRAN_PREPARED_QUEUE_OFFSET",
    "DUP_INFO",
    "EXTEND_UNIQ_INFO",
    "INSTANCE_ID",
    "CORRELATION_ID",
    "REPLY_TO_CLIENT",
    "TTL",
    "ARRIVE_TIME",
    "PUSH_REPLY_TIME",
    "CLUSTER",
    "MSG_TYPE",
    "INNER_MULTI_QUEUE_OFFSET",
    "TIMER_DELAY_MS",
    "TIMER_DELAY_SEC",
    "TIMER_DELIVER_MS",
    "TIMER_ENQUEUE_MS",
    "TIMER_DEQUEUE_MS",
    "TIMER_ROLL_TIMES",
    "TIMER_OUT_MS",
    "TIMER_DEL_UNIQKEY",
    "TIMER_DELAY_LEVEL",
    "__BORNHOST",
    "BORN_TIMESTAMP",
    "DLQ_ORIGIN_TOPIC",
    "DLQ_ORIGIN_MESSAGE_ID",
    "__CRC32#",
    // Not in RocketMQ's set, but the broker's own bookkeeping all the same.
    "__transactionId__",
    "CHECK_IMMUNITY_TIME_IN_SECONDS",
    "TRANSACTION_CHECK_TIMES",
    "__SHARDINGKEY",
    "__STARTDELIVERTIME",
    "TRACE_CONTEXT",
];

pub fn is_system_property(name: &str) -> bool {
    SYSTEM_PROPERTIES.contains(&name)
}

/// How a message is being handed out: by a receive (with its receipt handle), or as the
/// message of a transaction check (neither).
#[derive(Debug, Clone, Default)]
pub struct Delivery {
    pub receipt_handle: Option<String>,
    /// 1 on the first delivery.
    pub attempt: u32,
    pub invisible: Option<Duration>,
}

/// The v2 message of the stored record `rec`. A compressed body that cannot be inflated goes as
/// stored.
pub fn to_message(rec: &DecodedRecord<'_>, delivery: Delivery) -> Message {
    let props = Properties::from_stored(rec.properties);
    let body = inflate(rec.body, rec.sys_flag).unwrap_or_else(|| rec.body.to_vec());
    let mut user = std::collections::HashMap::new();
    for (k, v) in props.iter() {
        if !is_system_property(k) {
            user.insert(k.to_owned(), v.to_owned());
        }
    }
    let get = |name| props.get(name).map(str::to_owned);
    let message_type = if props.get(TRAN_MSG) == Some("true") {
        MessageType::Transaction
    } else if props.get(DELAY).is_some()
        || props.get(TIMER_DELIVER_MS).is_some()
        || props.get(TIMER_DELAY_SEC).is_some()
    {
        MessageType::Delay
    } else if props.get(SHARDING_KEY).is_some() {
        MessageType::Fifo
    } else {
        MessageType::Normal
    };
    let dead_letter_queue = match (
        props.get(DLQ_ORIGIN_TOPIC),
        props.get(DLQ_ORIGIN_MESSAGE_ID),
    ) {
        (Some(topic), Some(id)) => Some(DeadLetterQueue {
            topic: topic.to_owned(),
            message_id: id.to_owned(),
        }),
        _ => None,
    };
    let system = SystemProperties {
        tag: get(TAGS),
        keys: props
            .get(KEYS)
            .map(|k| {
                k.split(KEY_SEPARATOR)
                    .filter(|k| !k.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        message_id: get(UNIQ_KEY)
            .unwrap_or_else(|| offset_msg_id(rec.store_host, rec.physical_offset)),
        body_digest: Some(Digest {
            r#type: DigestType::Md5 as i32,
            checksum: hex_upper(&Md5::digest(&body)),
        }),
        body_encoding: Encoding::Identity as i32,
        message_type: message_type as i32,
        born_timestamp: Some(timestamp_ms(rec.born_timestamp)),
        born_host: get(BORN_HOST).unwrap_or_else(|| rec.born_host.ip().to_string()),
        store_timestamp: Some(timestamp_ms(rec.store_timestamp)),
        store_host: rec.store_host.to_string(),
        delivery_timestamp: props
            .get(TIMER_DELIVER_MS)
            .and_then(|t| t.parse().ok())
            .map(timestamp_ms),
        receipt_handle: delivery.receipt_handle,
        queue_id: rec.queue_id,
        queue_offset: Some(rec.queue_offset),
        invisible_duration: delivery.invisible.map(duration),
        delivery_attempt: (delivery.attempt > 0).then_some(delivery.attempt as i32),
        message_group: get(SHARDING_KEY),
        trace_context: get(TRACE_CONTEXT),
        orphaned_transaction_recovery_duration: None,
        dead_letter_queue,
        lite_topic: None,
        priority: None,
    };
    Message {
        topic: Some(resource(rec.topic)),
        user_properties: user,
        system_properties: Some(system),
        body,
    }
}

/// A broker-side name as a resource: `ns%name` is name `name` in namespace `ns` (retry and
/// dead-letter topics, which start with `%`, have no namespace).
pub fn resource(name: &str) -> Resource {
    match name.split_once('%') {
        Some((ns, rest)) if !ns.is_empty() && !rest.is_empty() => Resource {
            resource_namespace: ns.to_owned(),
            name: rest.to_owned(),
        },
        _ => Resource {
            resource_namespace: String::new(),
            name: name.to_owned(),
        },
    }
}

pub fn timestamp_ms(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

/// Milliseconds since the epoch of a timestamp (saturating).
pub fn ms_of_timestamp(t: &prost_types::Timestamp) -> i64 {
    t.seconds
        .saturating_mul(1000)
        .saturating_add(i64::from(t.nanos) / 1_000_000)
}

pub fn duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

/// A protobuf duration as a `Duration`; negative ones are `None`.
pub fn std_duration(d: &prost_types::Duration) -> Option<Duration> {
    if d.seconds < 0 || d.nanos < 0 {
        return None;
    }
    Some(Duration::new(d.seconds as u64, d.nanos as u32))
}

/// The inflated body of a zlib-compressed record; `None` when it is not compressed, or cannot
/// be inflated within `MAX_INFLATED_BYTES`.
fn inflate(body: &[u8], sys_flag: i32) -> Option<Vec<u8>> {
    /// A body that inflates past this goes as stored: a zip bomb must not take the broker down.
    const MAX_INFLATED_BYTES: u64 = 64 * 1024 * 1024;
    if sys_flag & SYSFLAG_COMPRESSED == 0 {
        return None;
    }
    let kind = sys_flag & SYSFLAG_COMPRESSION_TYPE_MASK;
    if kind != 0 && kind != COMPRESSION_ZLIB {
        return None;
    }
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(body)
        .take(MAX_INFLATED_BYTES + 1)
        .read_to_end(&mut out)
        .ok()?;
    (out.len() as u64 <= MAX_INFLATED_BYTES).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use petrel_common::record::{self, RecordFields};

    fn stored(props: &str, body: &[u8], sys_flag: i32) -> Vec<u8> {
        let props = Properties::from_wire(props);
        let fields = RecordFields {
            queue_id: 3,
            flag: 0,
            queue_offset: 42,
            physical_offset: 1000,
            sys_flag,
            born_timestamp: 1_700_000_000_123,
            born_host: "10.0.0.9:5555".parse().unwrap(),
            store_timestamp: 1_700_000_000_456,
            store_host: "127.0.0.1:10911".parse().unwrap(),
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            body,
            topic: "Orders",
            properties: props.as_str().as_bytes(),
        };
        let mut buf = bytes::BytesMut::new();
        record::encode(&fields, &mut buf);
        buf.to_vec()
    }

    #[test]
    fn a_stored_record_becomes_a_message_with_system_and_user_properties() {
        let bytes = stored(
            "TAGS\u{1}A\u{2}KEYS\u{1}k1 k2\u{2}UNIQ_KEY\u{1}01AB\u{2}__SHARDINGKEY\u{1}g1\u{2}color\u{1}red\u{2}CLUSTER\u{1}DefaultCluster",
            b"hello",
            0,
        );
        let rec = record::decode(&bytes, false).unwrap();
        let m = to_message(
            &rec,
            Delivery {
                receipt_handle: Some("h".into()),
                attempt: 2,
                invisible: Some(Duration::from_secs(30)),
            },
        );
        let s = m.system_properties.unwrap();
        assert_eq!(s.tag.as_deref(), Some("A"));
        assert_eq!(s.keys, vec!["k1", "k2"]);
        assert_eq!(s.message_id, "01AB");
        assert_eq!(s.message_group.as_deref(), Some("g1"));
        assert_eq!(s.message_type, MessageType::Fifo as i32);
        // MD5("hello")
        assert_eq!(
            s.body_digest.unwrap().checksum,
            "5D41402ABC4B2A76B9719D911017C592"
        );
        assert_eq!(s.delivery_attempt, Some(2));
        assert_eq!(s.queue_id, 3);
        assert_eq!(s.queue_offset, Some(42));
        assert_eq!(s.born_host, "10.0.0.9");
        assert_eq!(s.store_host, "127.0.0.1:10911");
        assert_eq!(s.born_timestamp, Some(timestamp_ms(1_700_000_000_123)));
        assert_eq!(s.receipt_handle.as_deref(), Some("h"));
        assert_eq!(m.user_properties.len(), 1);
        assert_eq!(m.user_properties["color"], "red");
        assert_eq!(m.topic.unwrap().name, "Orders");
        assert_eq!(m.body, b"hello");
    }

    #[test]
    fn a_zlib_body_is_delivered_inflated() {
        use std::io::Write;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(b"compressed body").unwrap();
        let bytes = stored("", &z.finish().unwrap(), SYSFLAG_COMPRESSED);
        let rec = record::decode(&bytes, false).unwrap();
        let m = to_message(&rec, Delivery::default());
        assert_eq!(m.body, b"compressed body");
        let s = m.system_properties.unwrap();
        assert_eq!(s.body_encoding, Encoding::Identity as i32);
        assert_eq!(s.delivery_attempt, None);
    }

    #[test]
    fn namespaced_names_split_and_timestamps_round_trip() {
        assert_eq!(resource("ns%T").resource_namespace, "ns");
        assert_eq!(resource("%RETRY%g").name, "%RETRY%g");
        assert_eq!(ms_of_timestamp(&timestamp_ms(1_234_567)), 1_234_567);
        assert_eq!(ms_of_timestamp(&timestamp_ms(-1)), -1);
    }
}
