//! The stored message record: RocketMQ's commit-log format (protocol reference §4.1), which is
//! also the unit of pull, query and view-by-id bodies. This module owns the byte layout — encode,
//! decode, the positions the store patches in place — and nothing else: no I/O, no policy about
//! which properties a message carries.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use bytes::{BufMut, BytesMut};

/// V1 magic (1-byte topic length). Signed: −626843481.
pub const MESSAGE_MAGIC_V1: i32 = 0xDAA3_20A7_u32 as i32;
/// V2 magic (2-byte topic length), used only for topics longer than [`MAX_V1_TOPIC_BYTES`].
pub const MESSAGE_MAGIC_V2: i32 = 0xDAA3_20AB_u32 as i32;
/// Magic of the filler that pads the end of a commit-log segment.
pub const BLANK_MAGIC: i32 = 0xCBD4_3194_u32 as i32;
/// A segment's tail always keeps room for a blank header (TOTALSIZE + MAGIC).
pub const END_FILE_MIN_BLANK_BYTES: usize = 8;

/// Longest topic a V1 record can carry; 4.x clients only parse V1.
pub const MAX_V1_TOPIC_BYTES: usize = 127;
/// The topic and properties lengths are Java shorts.
pub const MAX_TOPIC_BYTES: usize = i16::MAX as usize;
pub const MAX_PROPERTIES_BYTES: usize = i16::MAX as usize;

pub const TOTAL_SIZE_POS: usize = 0;
pub const MAGIC_POS: usize = 4;
pub const BODY_CRC_POS: usize = 8;
pub const QUEUE_ID_POS: usize = 12;
pub const FLAG_POS: usize = 16;
pub const QUEUE_OFFSET_POS: usize = 20;
pub const PHYSICAL_OFFSET_POS: usize = 28;
pub const SYS_FLAG_POS: usize = 36;
pub const BORN_TIMESTAMP_POS: usize = 40;
pub const BORN_HOST_POS: usize = 48;

/// SYSFLAG bits (§4.3) this module interprets.
pub const SYSFLAG_BORN_HOST_V6: i32 = 0x10;
pub const SYSFLAG_STORE_HOST_V6: i32 = 0x20;
pub const SYSFLAG_TRANSACTION_MASK: i32 = 0xC;
pub const SYSFLAG_TRANSACTION_PREPARED: i32 = 0x4;
pub const SYSFLAG_TRANSACTION_COMMIT: i32 = 0x8;
pub const SYSFLAG_TRANSACTION_ROLLBACK: i32 = 0xC;

/// Every byte of a record that is not body, topic or properties, with IPv4 hosts and a V1
/// topic length (the reference's "91 bytes").
pub const FIXED_OVERHEAD_V4_BYTES: usize = 91;

const IPV4_HOST_BYTES: usize = 8;
const IPV6_HOST_BYTES: usize = 20;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("record truncated: need {needed} bytes, have {available}")]
    Truncated { needed: usize, available: usize },
    #[error("bad magic code {0:#010x}")]
    BadMagic(i32),
    #[error("record fields add up to {computed} bytes but TOTALSIZE says {total_size}")]
    SizeMismatch { total_size: i32, computed: usize },
    #[error("body CRC mismatch: stored {stored:#x}, computed {computed:#x}")]
    CrcMismatch { stored: i32, computed: i32 },
    #[error("topic is not valid UTF-8")]
    BadTopic,
    #[error("{what} is {len} bytes, limit {limit}")]
    TooLong {
        what: &'static str,
        len: usize,
        limit: usize,
    },
}

/// Everything a record holds. `properties` is the raw `k\u{1}v\u{2}…` string (§4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordFields<'a> {
    pub queue_id: i32,
    pub flag: i32,
    pub queue_offset: i64,
    pub physical_offset: i64,
    pub sys_flag: i32,
    pub born_timestamp: i64,
    pub born_host: SocketAddr,
    pub store_timestamp: i64,
    pub store_host: SocketAddr,
    pub reconsume_times: i32,
    pub prepared_transaction_offset: i64,
    pub body: &'a [u8],
    pub topic: &'a str,
    pub properties: &'a [u8],
}

/// A record read back from bytes, borrowing body, topic and properties from the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodedRecord<'a> {
    pub total_size: i32,
    pub magic: i32,
    pub body_crc: i32,
    pub queue_id: i32,
    pub flag: i32,
    pub queue_offset: i64,
    pub physical_offset: i64,
    pub sys_flag: i32,
    pub born_timestamp: i64,
    pub born_host: SocketAddr,
    pub store_timestamp: i64,
    pub store_host: SocketAddr,
    pub reconsume_times: i32,
    pub prepared_transaction_offset: i64,
    pub body: &'a [u8],
    pub topic: &'a str,
    pub properties: &'a [u8],
}

impl<'a> DecodedRecord<'a> {
    /// The fields needed to encode this record again.
    pub fn fields(&self) -> RecordFields<'a> {
        RecordFields {
            queue_id: self.queue_id,
            flag: self.flag,
            queue_offset: self.queue_offset,
            physical_offset: self.physical_offset,
            sys_flag: self.sys_flag,
            born_timestamp: self.born_timestamp,
            born_host: self.born_host,
            store_timestamp: self.store_timestamp,
            store_host: self.store_host,
            reconsume_times: self.reconsume_times,
            prepared_transaction_offset: self.prepared_transaction_offset,
            body: self.body,
            topic: self.topic,
            properties: self.properties,
        }
    }
}

/// Bytes a host field takes given the record's sysflag bit for it.
fn host_bytes(sys_flag: i32, v6_bit: i32) -> usize {
    if sys_flag & v6_bit != 0 {
        IPV6_HOST_BYTES
    } else {
        IPV4_HOST_BYTES
    }
}

fn host_sysflag_bits(born: &SocketAddr, store: &SocketAddr) -> i32 {
    let mut bits = 0;
    if born.is_ipv6() {
        bits |= SYSFLAG_BORN_HOST_V6;
    }
    if store.is_ipv6() {
        bits |= SYSFLAG_STORE_HOST_V6;
    }
    bits
}

/// Where STORETIMESTAMP sits: right after the born host, whose size depends on its IPv6 bit.
pub fn store_timestamp_pos(sys_flag: i32) -> usize {
    BORN_HOST_POS + host_bytes(sys_flag, SYSFLAG_BORN_HOST_V6)
}

/// Where STOREHOSTADDRESS sits.
pub fn store_host_pos(sys_flag: i32) -> usize {
    store_timestamp_pos(sys_flag) + 8
}

/// Where RECONSUMETIMES sits: right after the store host.
pub fn reconsume_times_pos(sys_flag: i32) -> usize {
    store_host_pos(sys_flag) + host_bytes(sys_flag, SYSFLAG_STORE_HOST_V6)
}

fn topic_len_bytes(topic_len: usize) -> usize {
    if topic_len > MAX_V1_TOPIC_BYTES {
        2
    } else {
        1
    }
}

/// Checks the limits [`encode`] relies on; call it on anything a peer sent before encoding.
pub fn check_limits(fields: &RecordFields) -> Result<(), RecordError> {
    if fields.topic.len() > MAX_TOPIC_BYTES {
        return Err(RecordError::TooLong {
            what: "topic",
            len: fields.topic.len(),
            limit: MAX_TOPIC_BYTES,
        });
    }
    if fields.properties.len() > MAX_PROPERTIES_BYTES {
        return Err(RecordError::TooLong {
            what: "properties",
            len: fields.properties.len(),
            limit: MAX_PROPERTIES_BYTES,
        });
    }
    let limit = i32::MAX as usize - 2 * IPV6_HOST_BYTES - 2 * MAX_TOPIC_BYTES - 128;
    if fields.body.len() > limit {
        return Err(RecordError::TooLong {
            what: "body",
            len: fields.body.len(),
            limit,
        });
    }
    Ok(())
}

/// Length of the encoded record, TOTALSIZE.
pub fn encoded_len(fields: &RecordFields) -> usize {
    let hosts = host_sysflag_bits(&fields.born_host, &fields.store_host);
    FIXED_OVERHEAD_V4_BYTES - 2 * IPV4_HOST_BYTES - 1
        + host_bytes(hosts, SYSFLAG_BORN_HOST_V6)
        + host_bytes(hosts, SYSFLAG_STORE_HOST_V6)
        + topic_len_bytes(fields.topic.len())
        + fields.body.len()
        + fields.topic.len()
        + fields.properties.len()
}

/// CRC-32 (IEEE) masked to a non-negative Java int, as `UtilAll.crc32` (§4.4).
pub fn body_crc(body: &[u8]) -> i32 {
    (crc32fast::hash(body) & 0x7FFF_FFFF) as i32
}

fn put_host(out: &mut BytesMut, addr: &SocketAddr) {
    match addr.ip() {
        IpAddr::V4(ip) => out.put_slice(&ip.octets()),
        IpAddr::V6(ip) => out.put_slice(&ip.octets()),
    }
    out.put_i32(i32::from(addr.port()));
}

/// Appends the record to `out`, computing BODYCRC and setting the IPv6 host bits of SYSFLAG
/// from the address types. Uses V2 magic only when the topic exceeds 127 bytes.
///
/// # Panics
/// If the fields break [`check_limits`]; validate peer input first.
pub fn encode(fields: &RecordFields, out: &mut BytesMut) {
    if let Err(e) = check_limits(fields) {
        panic!("record::encode called with out-of-limit fields: {e}");
    }
    let total = encoded_len(fields);
    let sys_flag = (fields.sys_flag & !(SYSFLAG_BORN_HOST_V6 | SYSFLAG_STORE_HOST_V6))
        | host_sysflag_bits(&fields.born_host, &fields.store_host);
    let v2 = fields.topic.len() > MAX_V1_TOPIC_BYTES;
    out.reserve(total);
    let start = out.len();

    out.put_i32(total as i32);
    out.put_i32(if v2 {
        MESSAGE_MAGIC_V2
    } else {
        MESSAGE_MAGIC_V1
    });
    out.put_i32(body_crc(fields.body));
    out.put_i32(fields.queue_id);
    out.put_i32(fields.flag);
    out.put_i64(fields.queue_offset);
    out.put_i64(fields.physical_offset);
    out.put_i32(sys_flag);
    out.put_i64(fields.born_timestamp);
    put_host(out, &fields.born_host);
    out.put_i64(fields.store_timestamp);
    put_host(out, &fields.store_host);
    out.put_i32(fields.reconsume_times);
    out.put_i64(fields.prepared_transaction_offset);
    out.put_i32(fields.body.len() as i32);
    out.put_slice(fields.body);
    if v2 {
        out.put_i16(fields.topic.len() as i16);
    } else {
        out.put_u8(fields.topic.len() as u8);
    }
    out.put_slice(fields.topic.as_bytes());
    out.put_i16(fields.properties.len() as i16);
    out.put_slice(fields.properties);

    assert_eq!(
        out.len() - start,
        total,
        "encoded_len disagrees with encode"
    );
}

/// TOTALSIZE and MAGIC of the record (or blank) at the start of `buf`, if 8 bytes are there.
pub fn peek_total_size(buf: &[u8]) -> Option<(i32, i32)> {
    if buf.len() < 8 {
        return None;
    }
    Some((read_i32(buf, TOTAL_SIZE_POS), read_i32(buf, MAGIC_POS)))
}

fn read_i32(buf: &[u8], pos: usize) -> i32 {
    i32::from_be_bytes(buf[pos..pos + 4].try_into().expect("4 bytes"))
}

fn read_i64(buf: &[u8], pos: usize) -> i64 {
    i64::from_be_bytes(buf[pos..pos + 8].try_into().expect("8 bytes"))
}

/// A bounds-checked reader over one record.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    total_size: i32,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        match end {
            Some(end) => {
                let s = &self.buf[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(RecordError::SizeMismatch {
                total_size: self.total_size,
                computed: self.pos.saturating_add(n),
            }),
        }
    }
    fn i16(&mut self) -> Result<i16, RecordError> {
        Ok(i16::from_be_bytes(self.take(2)?.try_into().expect("2")))
    }
    fn i32(&mut self) -> Result<i32, RecordError> {
        Ok(read_i32(self.take(4)?, 0))
    }
    fn i64(&mut self) -> Result<i64, RecordError> {
        Ok(read_i64(self.take(8)?, 0))
    }
    fn host(&mut self, v6: bool) -> Result<SocketAddr, RecordError> {
        if v6 {
            let ip: [u8; 16] = self.take(16)?.try_into().expect("16");
            let port = self.i32()? as u16;
            Ok(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(ip),
                port,
                0,
                0,
            )))
        } else {
            let ip: [u8; 4] = self.take(4)?.try_into().expect("4");
            let port = self.i32()? as u16;
            Ok(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port)))
        }
    }
}

/// Decodes the record at the start of `buf` (which may continue past it). A length field that
/// runs past TOTALSIZE, or fields that do not add up to exactly TOTALSIZE, is `SizeMismatch`.
pub fn decode(buf: &[u8], verify_crc: bool) -> Result<DecodedRecord<'_>, RecordError> {
    let (total_size, magic) = peek_total_size(buf).ok_or(RecordError::Truncated {
        needed: 8,
        available: buf.len(),
    })?;
    if magic != MESSAGE_MAGIC_V1 && magic != MESSAGE_MAGIC_V2 {
        return Err(RecordError::BadMagic(magic));
    }
    let total = usize::try_from(total_size)
        .ok()
        .filter(|&t| t >= FIXED_OVERHEAD_V4_BYTES)
        .ok_or(RecordError::SizeMismatch {
            total_size,
            computed: FIXED_OVERHEAD_V4_BYTES,
        })?;
    if buf.len() < total {
        return Err(RecordError::Truncated {
            needed: total,
            available: buf.len(),
        });
    }
    let mut r = Reader {
        buf: &buf[..total],
        pos: BODY_CRC_POS,
        total_size,
    };
    let body_crc_stored = r.i32()?;
    let queue_id = r.i32()?;
    let flag = r.i32()?;
    let queue_offset = r.i64()?;
    let physical_offset = r.i64()?;
    let sys_flag = r.i32()?;
    let born_timestamp = r.i64()?;
    let born_host = r.host(sys_flag & SYSFLAG_BORN_HOST_V6 != 0)?;
    let store_timestamp = r.i64()?;
    let store_host = r.host(sys_flag & SYSFLAG_STORE_HOST_V6 != 0)?;
    let reconsume_times = r.i32()?;
    let prepared_transaction_offset = r.i64()?;
    let body_len = r.i32()?;
    let body = r.take(
        usize::try_from(body_len).map_err(|_| RecordError::SizeMismatch {
            total_size,
            computed: r.pos,
        })?,
    )?;
    let topic_len = if magic == MESSAGE_MAGIC_V2 {
        r.i16()? as u16 as usize
    } else {
        r.take(1)?[0] as usize
    };
    let topic = std::str::from_utf8(r.take(topic_len)?).map_err(|_| RecordError::BadTopic)?;
    let props_len = r.i16()? as u16 as usize;
    let properties = r.take(props_len)?;
    if r.pos != total {
        return Err(RecordError::SizeMismatch {
            total_size,
            computed: r.pos,
        });
    }
    if verify_crc {
        let computed = body_crc(body);
        if computed != body_crc_stored {
            return Err(RecordError::CrcMismatch {
                stored: body_crc_stored,
                computed,
            });
        }
    }
    Ok(DecodedRecord {
        total_size,
        magic,
        body_crc: body_crc_stored,
        queue_id,
        flag,
        queue_offset,
        physical_offset,
        sys_flag,
        born_timestamp,
        born_host,
        store_timestamp,
        store_host,
        reconsume_times,
        prepared_transaction_offset,
        body,
        topic,
        properties,
    })
}

/// Java `String.hashCode` over UTF-16 code units with wrapping arithmetic: the consume-queue
/// tags code of a TAGS value, and the index hash of keys.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v4(a: [u8; 4], port: u16) -> SocketAddr {
        SocketAddr::from((a, port))
    }

    fn sample<'a>(body: &'a [u8], topic: &'a str, properties: &'a [u8]) -> RecordFields<'a> {
        RecordFields {
            queue_id: 3,
            flag: 7,
            queue_offset: 42,
            physical_offset: 1 << 33,
            sys_flag: SYSFLAG_TRANSACTION_COMMIT,
            born_timestamp: 1_700_000_000_000,
            born_host: v4([10, 0, 0, 1], 54321),
            store_timestamp: 1_700_000_000_123,
            store_host: v4([10, 0, 0, 2], 10911),
            reconsume_times: 2,
            prepared_transaction_offset: 99,
            body,
            topic,
            properties,
        }
    }

    fn round_trip(f: &RecordFields) -> BytesMut {
        let mut out = BytesMut::new();
        encode(f, &mut out);
        assert_eq!(out.len(), encoded_len(f));
        let d = decode(&out, true).expect("decodes");
        assert_eq!(d.total_size as usize, out.len());
        let mut expected = *f;
        expected.sys_flag = (f.sys_flag & !0x30) | host_sysflag_bits(&f.born_host, &f.store_host);
        assert_eq!(d.fields(), expected);
        out
    }

    #[test]
    fn ipv4_v1_layout_matches_reference_offsets() {
        let f = sample(b"hello", "TopicA", b"TAGS\x01a\x02");
        let out = round_trip(&f);
        assert_eq!(out.len(), FIXED_OVERHEAD_V4_BYTES + 5 + 6 + 7);
        assert_eq!(read_i32(&out, MAGIC_POS), MESSAGE_MAGIC_V1);
        assert_eq!(MESSAGE_MAGIC_V1, -626843481);
        assert_eq!(MESSAGE_MAGIC_V2, -626843477);
        assert_eq!(BLANK_MAGIC, -875286124);
        assert_eq!(read_i64(&out, QUEUE_OFFSET_POS), 42);
        assert_eq!(read_i64(&out, PHYSICAL_OFFSET_POS), 1 << 33);
        assert_eq!(store_timestamp_pos(0), 56);
        assert_eq!(read_i64(&out, 56), 1_700_000_000_123);
        assert_eq!(store_host_pos(0), 64);
        assert_eq!(&out[64..68], &[10, 0, 0, 2]);
        assert_eq!(read_i32(&out, 84), 5);
        assert_eq!(read_i32(&out, BODY_CRC_POS), body_crc(b"hello"));
    }

    #[test]
    fn empty_body_and_properties() {
        round_trip(&sample(b"", "t", b""));
    }

    #[test]
    fn four_mib_body() {
        let body = vec![0xABu8; 4 * 1024 * 1024];
        round_trip(&sample(&body, "big", b"KEYS\x01k\x02"));
    }

    #[test]
    fn non_ascii_properties_and_topic() {
        let props = "TAGS\u{1}标签\u{2}KEYS\u{1}ключ 😀\u{2}".as_bytes();
        round_trip(&sample(b"x", "主题", props));
    }

    #[test]
    fn ipv6_hosts_set_sysflag_and_shift_offsets() {
        let mut f = sample(b"body", "t6", b"");
        f.born_host = "[2001:db8::1]:1234".parse().unwrap();
        f.store_host = "[::1]:10911".parse().unwrap();
        let out = round_trip(&f);
        let sys_flag = read_i32(&out, SYS_FLAG_POS);
        assert_eq!(sys_flag & 0x30, 0x30);
        assert_eq!(store_timestamp_pos(sys_flag), 68);
        assert_eq!(read_i64(&out, 68), f.store_timestamp);
        assert_eq!(out.len(), FIXED_OVERHEAD_V4_BYTES + 24 + 4 + 2);
    }

    #[test]
    fn stale_ipv6_bits_are_cleared_for_ipv4_hosts() {
        let mut f = sample(b"b", "t", b"");
        f.sys_flag = 0x30 | 0x1;
        let mut out = BytesMut::new();
        encode(&f, &mut out);
        assert_eq!(read_i32(&out, SYS_FLAG_POS), 0x1);
    }

    #[test]
    fn long_topic_uses_v2_magic() {
        let topic = "t".repeat(200);
        let out = round_trip(&sample(b"b", &topic, b""));
        assert_eq!(read_i32(&out, MAGIC_POS), MESSAGE_MAGIC_V2);
        let topic127 = "t".repeat(127);
        let out = round_trip(&sample(b"b", &topic127, b""));
        assert_eq!(read_i32(&out, MAGIC_POS), MESSAGE_MAGIC_V1);
    }

    #[test]
    fn decode_rejects_damage() {
        let f = sample(b"hello", "TopicA", b"");
        let mut out = BytesMut::new();
        encode(&f, &mut out);
        let len = out.len();
        assert!(matches!(
            decode(&out[..len - 1], true),
            Err(RecordError::Truncated { .. })
        ));
        assert!(matches!(
            decode(&out[..4], true),
            Err(RecordError::Truncated { .. })
        ));

        let mut bad = out.clone();
        bad[88] ^= 0xFF; // first body byte
        assert!(matches!(
            decode(&bad, true),
            Err(RecordError::CrcMismatch { .. })
        ));
        assert!(decode(&bad, false).is_ok());

        let mut bad = out.clone();
        bad[MAGIC_POS] = 0;
        assert!(matches!(decode(&bad, true), Err(RecordError::BadMagic(_))));

        let mut bad = out.clone();
        bad[84..88].copy_from_slice(&1000i32.to_be_bytes());
        assert!(matches!(
            decode(&bad, true),
            Err(RecordError::SizeMismatch { .. })
        ));

        let mut longer = out.clone();
        longer.extend_from_slice(&[0u8; 16]);
        let mut bad = longer.clone();
        bad[0..4].copy_from_slice(&((len + 16) as i32).to_be_bytes());
        assert!(matches!(
            decode(&bad, true),
            Err(RecordError::SizeMismatch { .. })
        ));
        assert!(decode(&longer, true).is_ok(), "trailing bytes are ignored");

        let mut blank = BytesMut::new();
        blank.put_i32(64);
        blank.put_i32(BLANK_MAGIC);
        assert_eq!(peek_total_size(&blank), Some((64, BLANK_MAGIC)));
        assert_eq!(
            decode(&blank, true),
            Err(RecordError::BadMagic(BLANK_MAGIC))
        );
    }

    #[test]
    fn java_string_hash_matches_java() {
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("TagA"), 2598919);
        assert_eq!(java_string_hash("hello world"), 1794106052);
        // "😀" is a surrogate pair in UTF-16: 0xD83D, 0xDE00.
        assert_eq!(java_string_hash("😀"), 0xD83D * 31 + 0xDE00);
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
    }

    fn any_addr() -> impl Strategy<Value = SocketAddr> {
        prop_oneof![
            (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, p)| SocketAddr::from((ip, p))),
            (any::<[u8; 16]>(), any::<u16>())
                .prop_map(|(ip, p)| SocketAddr::from((Ipv6Addr::from(ip), p))),
        ]
    }

    proptest! {
        #[test]
        fn encode_decode_round_trips(
            queue_id in any::<i32>(), flag in any::<i32>(), queue_offset in any::<i64>(),
            physical_offset in any::<i64>(), sys_flag in any::<i32>(), born_timestamp in any::<i64>(),
            born_host in any_addr(), store_timestamp in any::<i64>(), store_host in any_addr(),
            reconsume_times in any::<i32>(), prepared_transaction_offset in any::<i64>(),
            body in proptest::collection::vec(any::<u8>(), 0..2048),
            topic in "\\PC{0,300}",
            properties in "\\PC{0,200}",
        ) {
            prop_assume!(topic.len() <= MAX_TOPIC_BYTES);
            let f = RecordFields {
                queue_id, flag, queue_offset, physical_offset, sys_flag, born_timestamp, born_host,
                store_timestamp, store_host, reconsume_times, prepared_transaction_offset,
                body: &body, topic: &topic, properties: properties.as_bytes(),
            };
            round_trip(&f);
        }
    }
}
