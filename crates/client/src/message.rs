//! Messages: `Message` is what a producer sends, `MessageExt` what a consumer receives, and
//! [`decode_messages`] turns a pull body (stored records back to back, reference §4.1) into
//! `MessageExt`s. Decoding never panics on what a broker sends.

use std::io::Read;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use petrel_common::msg_id::offset_msg_id;
use petrel_common::properties::{self, Properties};
use petrel_common::record;

use crate::error::{ClientError, Result};

/// SYSFLAG bit: the body is compressed (reference §4.3).
const SYSFLAG_COMPRESSED: i32 = 0x1;
/// SYSFLAG bits naming the compression type.
const SYSFLAG_COMPRESSION_TYPE_MASK: i32 = 0x700;
const COMPRESSION_ZLIB: i32 = 0x300;
/// A compressed body that inflates past this is left compressed (a zip bomb must not take the
/// consumer down).
pub const MAX_DECOMPRESSED_BODY_BYTES: u64 = 64 * 1024 * 1024;

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub topic: String,
    pub body: Bytes,
    /// User flag, stored verbatim by the broker.
    pub flag: i32,
    pub properties: Properties,
}

impl Message {
    pub fn new(topic: impl Into<String>, body: impl Into<Bytes>) -> Self {
        Message {
            topic: topic.into(),
            body: body.into(),
            flag: 0,
            properties: Properties::new(),
        }
    }

    pub fn with_tags(mut self, tags: impl AsRef<str>) -> Self {
        self.properties.insert(properties::TAGS, tags);
        self
    }

    /// Keys the broker indexes; several are separated by spaces.
    pub fn with_keys(mut self, keys: impl AsRef<str>) -> Self {
        self.properties.insert(properties::KEYS, keys);
        self
    }

    pub fn with_property(mut self, name: impl AsRef<str>, value: impl AsRef<str>) -> Self {
        self.properties.insert(name.as_ref(), value);
        self
    }

    pub fn with_flag(mut self, flag: i32) -> Self {
        self.flag = flag;
        self
    }

    /// Delivery at `at` (a RocketMQ 5.x timer message): sets `TIMER_DELIVER_MS` to `at` in
    /// epoch milliseconds, rounded up so it is never before `at`. A time already past is
    /// delivered at once; the broker refuses one further ahead than its `timerMaxDelaySec`.
    /// Replaces any delay or delivery time set before (`DELAY` included, which the broker
    /// would otherwise let win).
    pub fn with_deliver_at(self, at: SystemTime) -> Self {
        let epoch_ms = at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| ceil_ms(d).min(i64::MAX as u128) as i64);
        self.with_deliver_at_ms(epoch_ms)
    }

    /// [`Message::with_deliver_at`] with the time in epoch milliseconds.
    pub fn with_deliver_at_ms(mut self, epoch_ms: i64) -> Self {
        self.clear_delivery_time();
        self.properties
            .insert(properties::TIMER_DELIVER_MS, epoch_ms.to_string());
        self
    }

    /// Delivery `delay` after the broker receives the message (rounded up to whole
    /// milliseconds). Replaces any delay or delivery time set before.
    ///
    /// This sets the relative `TIMER_DELAY_MS`, not `TIMER_DELIVER_MS = now + delay`: the broker
    /// adds the delay to its own clock when the message arrives, so a client whose clock is off
    /// from the broker's still gets the delay it asked for, as with the Java 5.x client's
    /// `setDelayTimeMs`. The broker stores the absolute time it computed in `TIMER_DELIVER_MS`,
    /// so the delivered message carries it all the same. (A send the producer retries counts
    /// from the attempt that was stored.)
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.clear_delivery_time();
        let ms = ceil_ms(delay).min(i64::MAX as u128);
        self.properties
            .insert(properties::TIMER_DELAY_MS, ms.to_string());
        self
    }

    /// The delivery time asked for with [`Message::with_deliver_at`], in epoch milliseconds.
    pub fn deliver_at_ms(&self) -> Option<i64> {
        deliver_at_ms(&self.properties)
    }

    fn clear_delivery_time(&mut self) {
        for name in [
            properties::DELAY,
            properties::TIMER_DELIVER_MS,
            properties::TIMER_DELAY_SEC,
            properties::TIMER_DELAY_MS,
        ] {
            self.properties.remove(name);
        }
    }

    pub fn tags(&self) -> Option<&str> {
        self.properties.get(properties::TAGS)
    }

    pub fn keys(&self) -> Option<&str> {
        self.properties.get(properties::KEYS)
    }

    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties.get(name)
    }
}

/// A message as stored and delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageExt {
    pub topic: String,
    pub body: Bytes,
    pub flag: i32,
    pub properties: Properties,
    pub queue_id: i32,
    pub queue_offset: i64,
    pub commit_log_offset: i64,
    pub sys_flag: i32,
    pub body_crc: i32,
    pub born_timestamp: i64,
    pub born_host: SocketAddr,
    pub store_timestamp: i64,
    pub store_host: SocketAddr,
    pub reconsume_times: i32,
    pub prepared_transaction_offset: i64,
    /// The broker's id of this record: store host + commit-log offset (reference §4.7).
    pub offset_msg_id: String,
}

impl MessageExt {
    /// The producer's id (UNIQ_KEY) when present, else the offsetMsgId, as the Java client does.
    pub fn msg_id(&self) -> &str {
        self.properties
            .get(properties::UNIQ_KEY)
            .unwrap_or(&self.offset_msg_id)
    }

    pub fn tags(&self) -> Option<&str> {
        self.properties.get(properties::TAGS)
    }

    pub fn keys(&self) -> Option<&str> {
        self.properties.get(properties::KEYS)
    }

    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties.get(name)
    }

    /// When a timer message was due, in epoch milliseconds: the broker keeps `TIMER_DELIVER_MS`
    /// on the delivered message (relative delays are turned into it when it is stored).
    pub fn deliver_at_ms(&self) -> Option<i64> {
        deliver_at_ms(&self.properties)
    }
}

fn deliver_at_ms(props: &Properties) -> Option<i64> {
    props.get(properties::TIMER_DELIVER_MS)?.trim().parse().ok()
}

/// Whole milliseconds in `d`, rounded up: a delivery time must never come before the one asked.
fn ceil_ms(d: Duration) -> u128 {
    d.as_nanos().div_ceil(1_000_000)
}

/// Decodes a pull (or query) body: records back to back, no other framing. A body that does not
/// split exactly into valid records is an error; ZLIB-compressed bodies are inflated.
pub fn decode_messages(body: &[u8]) -> Result<Vec<MessageExt>> {
    let mut out = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        let rec = record::decode(rest, false).map_err(|e| {
            ClientError::Decode(format!(
                "record {} at byte {}: {e}",
                out.len(),
                body.len() - rest.len()
            ))
        })?;
        let size = rec.total_size as usize;
        out.push(to_message_ext(&rec));
        rest = &rest[size..];
    }
    Ok(out)
}

fn to_message_ext(rec: &record::DecodedRecord<'_>) -> MessageExt {
    let props = Properties::from_stored(rec.properties);
    let (body, sys_flag) = match inflate_if_compressed(rec.body, rec.sys_flag) {
        Some(inflated) => (Bytes::from(inflated), rec.sys_flag & !SYSFLAG_COMPRESSED),
        None => (Bytes::copy_from_slice(rec.body), rec.sys_flag),
    };
    MessageExt {
        topic: rec.topic.to_owned(),
        body,
        flag: rec.flag,
        properties: props,
        queue_id: rec.queue_id,
        queue_offset: rec.queue_offset,
        commit_log_offset: rec.physical_offset,
        sys_flag,
        body_crc: rec.body_crc,
        born_timestamp: rec.born_timestamp,
        born_host: rec.born_host,
        store_timestamp: rec.store_timestamp,
        store_host: rec.store_host,
        reconsume_times: rec.reconsume_times,
        prepared_transaction_offset: rec.prepared_transaction_offset,
        offset_msg_id: offset_msg_id(rec.store_host, rec.physical_offset),
    }
}

/// The inflated body of a ZLIB-compressed record (compression type bits 0 mean ZLIB for old
/// producers). `None` when the body is not compressed, uses a type we cannot inflate (LZ4,
/// ZSTD), is corrupt or too large: the message is then delivered as stored, COMPRESSED bit set.
fn inflate_if_compressed(body: &[u8], sys_flag: i32) -> Option<Vec<u8>> {
    if sys_flag & SYSFLAG_COMPRESSED == 0 {
        return None;
    }
    let kind = sys_flag & SYSFLAG_COMPRESSION_TYPE_MASK;
    if kind != 0 && kind != COMPRESSION_ZLIB {
        tracing::warn!(
            sys_flag,
            "compression type not supported; delivering the body compressed"
        );
        return None;
    }
    let mut out = Vec::new();
    let mut decoder = flate2::read::ZlibDecoder::new(body).take(MAX_DECOMPRESSED_BODY_BYTES + 1);
    match decoder.read_to_end(&mut out) {
        Ok(n) if (n as u64) <= MAX_DECOMPRESSED_BODY_BYTES => Some(out),
        Ok(_) => {
            tracing::warn!("compressed body inflates past the limit; delivering it compressed");
            None
        }
        Err(e) => {
            tracing::warn!("corrupt compressed body ({e}); delivering it compressed");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use std::io::Write;

    fn encode(
        topic: &str,
        body: &[u8],
        props: &str,
        queue_offset: i64,
        phys: i64,
        sys_flag: i32,
        out: &mut BytesMut,
    ) {
        let fields = record::RecordFields {
            queue_id: 3,
            flag: 7,
            queue_offset,
            physical_offset: phys,
            sys_flag,
            born_timestamp: 1_700_000_000_000,
            born_host: "10.0.0.9:50000".parse().unwrap(),
            store_timestamp: 1_700_000_000_001,
            store_host: "10.0.0.1:10911".parse().unwrap(),
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            body,
            topic,
            properties: props.as_bytes(),
        };
        record::encode(&fields, out);
    }

    #[test]
    fn message_builder_sets_properties() {
        let m = Message::new("T", "hello")
            .with_tags("TagA")
            .with_keys("k1 k2")
            .with_property("color", "red")
            .with_flag(5);
        assert_eq!(m.tags(), Some("TagA"));
        assert_eq!(m.keys(), Some("k1 k2"));
        assert_eq!(m.property("color"), Some("red"));
        assert_eq!(m.flag, 5);
        assert_eq!(&m.body[..], b"hello");
        assert_eq!(
            properties::find(m.properties.as_str(), properties::TAGS),
            Some("TagA")
        );
    }

    #[test]
    fn deliver_at_sets_the_absolute_time_in_epoch_ms() {
        let at = UNIX_EPOCH + Duration::from_millis(1_767_225_600_123);
        let m = Message::new("T", "x").with_deliver_at(at);
        assert_eq!(
            m.property(properties::TIMER_DELIVER_MS),
            Some("1767225600123")
        );
        assert_eq!(m.deliver_at_ms(), Some(1_767_225_600_123));
        let m = Message::new("T", "x").with_deliver_at_ms(42);
        assert_eq!(m.property(properties::TIMER_DELIVER_MS), Some("42"));
    }

    #[test]
    fn deliver_at_rounds_up_and_clamps_before_the_epoch() {
        let at = UNIX_EPOCH + Duration::from_micros(1_500);
        let m = Message::new("T", "x").with_deliver_at(at);
        assert_eq!(m.deliver_at_ms(), Some(2));
        let before_epoch = UNIX_EPOCH - Duration::from_secs(1);
        let m = Message::new("T", "x").with_deliver_at(before_epoch);
        assert_eq!(m.deliver_at_ms(), Some(0));
    }

    #[test]
    fn delay_sets_the_relative_milliseconds_rounded_up() {
        let m = Message::new("T", "x").with_delay(Duration::from_secs(10));
        assert_eq!(m.property(properties::TIMER_DELAY_MS), Some("10000"));
        assert_eq!(m.property(properties::TIMER_DELIVER_MS), None);
        assert_eq!(m.deliver_at_ms(), None);
        let m = Message::new("T", "x").with_delay(Duration::from_micros(2_001));
        assert_eq!(m.property(properties::TIMER_DELAY_MS), Some("3"));
        let m = Message::new("T", "x").with_delay(Duration::ZERO);
        assert_eq!(m.property(properties::TIMER_DELAY_MS), Some("0"));
        let m = Message::new("T", "x").with_delay(Duration::MAX);
        assert_eq!(
            m.property(properties::TIMER_DELAY_MS),
            Some(i64::MAX.to_string().as_str())
        );
    }

    #[test]
    fn the_last_delivery_time_asked_wins() {
        let m = Message::new("T", "x")
            .with_property(properties::DELAY, "3")
            .with_property(properties::TIMER_DELAY_SEC, "5")
            .with_delay(Duration::from_millis(250));
        assert_eq!(m.property(properties::DELAY), None);
        assert_eq!(m.property(properties::TIMER_DELAY_SEC), None);
        assert_eq!(m.property(properties::TIMER_DELAY_MS), Some("250"));
        let m = m.with_deliver_at_ms(1_000);
        assert_eq!(m.property(properties::TIMER_DELAY_MS), None);
        assert_eq!(m.deliver_at_ms(), Some(1_000));
        let m = m.with_delay(Duration::from_secs(1));
        assert_eq!(m.deliver_at_ms(), None);
        assert_eq!(m.property(properties::TIMER_DELAY_MS), Some("1000"));
    }

    #[test]
    fn a_delivered_timer_message_tells_its_due_time() {
        let mut buf = BytesMut::new();
        encode(
            "T",
            b"due",
            "TIMER_DELIVER_MS\u{1}1767225600000\u{2}UNIQ_KEY\u{1}ABC\u{2}",
            0,
            0,
            0,
            &mut buf,
        );
        encode("T", b"plain", "", 1, 100, 0, &mut buf);
        let msgs = decode_messages(&buf).unwrap();
        assert_eq!(msgs[0].deliver_at_ms(), Some(1_767_225_600_000));
        assert_eq!(msgs[1].deliver_at_ms(), None);
    }

    #[test]
    fn pull_body_decodes_into_messages_with_ids() {
        let mut buf = BytesMut::new();
        encode(
            "T",
            b"one",
            "TAGS\u{1}a\u{2}UNIQ_KEY\u{1}ABC\u{2}",
            10,
            0x1A2B,
            0,
            &mut buf,
        );
        encode("T", b"two", "TAGS\u{1}b\u{2}", 11, 0x2000, 0, &mut buf);
        let msgs = decode_messages(&buf).unwrap();
        assert_eq!(msgs.len(), 2);
        assert_eq!(&msgs[0].body[..], b"one");
        assert_eq!(msgs[0].tags(), Some("a"));
        assert_eq!(msgs[0].queue_offset, 10);
        assert_eq!(msgs[0].queue_id, 3);
        assert_eq!(msgs[0].flag, 7);
        assert_eq!(msgs[0].offset_msg_id, "0A00000100002A9F0000000000001A2B");
        assert_eq!(msgs[0].msg_id(), "ABC");
        assert_eq!(msgs[1].msg_id(), msgs[1].offset_msg_id);
        assert_eq!(msgs[1].born_host, "10.0.0.9:50000".parse().unwrap());
    }

    #[test]
    fn empty_body_is_no_messages() {
        assert!(decode_messages(&[]).unwrap().is_empty());
    }

    #[test]
    fn truncated_or_garbage_body_is_an_error_not_a_panic() {
        let mut buf = BytesMut::new();
        encode("T", b"one", "", 0, 0, 0, &mut buf);
        for cut in 0..buf.len() {
            let r = decode_messages(&buf[..cut]);
            assert_eq!(r.is_ok(), cut == 0, "cut at {cut}");
        }
        let mut junk = buf.to_vec();
        junk.extend_from_slice(&[0xFF; 13]);
        assert!(matches!(
            decode_messages(&junk),
            Err(ClientError::Decode(_))
        ));
        let mut bad_size = buf.to_vec();
        bad_size[0..4].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(decode_messages(&bad_size).is_err());
    }

    #[test]
    fn zlib_bodies_are_inflated_and_unknown_types_left_alone() {
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(5));
        z.write_all(b"compressed hello").unwrap();
        let compressed = z.finish().unwrap();
        let mut buf = BytesMut::new();
        encode("T", &compressed, "", 0, 0, SYSFLAG_COMPRESSED, &mut buf);
        encode(
            "T",
            &compressed,
            "",
            1,
            100,
            SYSFLAG_COMPRESSED | COMPRESSION_ZLIB,
            &mut buf,
        );
        encode(
            "T",
            b"lz4?",
            "",
            2,
            200,
            SYSFLAG_COMPRESSED | 0x100,
            &mut buf,
        );
        encode("T", b"not zlib", "", 3, 300, SYSFLAG_COMPRESSED, &mut buf);
        let msgs = decode_messages(&buf).unwrap();
        assert_eq!(&msgs[0].body[..], b"compressed hello");
        assert_eq!(msgs[0].sys_flag & SYSFLAG_COMPRESSED, 0);
        assert_eq!(&msgs[1].body[..], b"compressed hello");
        assert_eq!(&msgs[2].body[..], b"lz4?");
        assert_ne!(msgs[2].sys_flag & SYSFLAG_COMPRESSED, 0);
        assert_eq!(&msgs[3].body[..], b"not zlib");
    }
}
