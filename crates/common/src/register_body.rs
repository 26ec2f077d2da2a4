//! REGISTER_BROKER bodies: the JSON `RegisterBrokerBody`, or the zlib-compressed form a broker
//! sends with `compressedRegister=true` (reference §2.13), plus the body checksum. Brokers encode
//! with [`encode_compressed`]; name servers decode with [`decode`].
//!
//! Decoding is pure functions over bytes a peer sent: every length is checked, nothing panics,
//! and inflating stops at `MAX_INFLATED_BODY_BYTES`.

use std::io::Read;

use std::io::Write;

use crate::protocol::{from_fastjson, RegisterBrokerBody};
use crate::topic::{DataVersion, TopicConfig};
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use flate2::Compression;
use thiserror::Error;

/// The most a compressed registration may inflate to.
pub const MAX_INFLATED_BODY_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Error)]
pub enum RegisterBodyError {
    #[error("malformed RegisterBrokerBody JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("malformed compressed RegisterBrokerBody: {0}")]
    Compressed(String),
}

/// `UtilAll.crc32`: CRC-32 (IEEE) of `body`, masked to a non-negative i32 (reference §4.4).
pub fn body_crc32(body: &[u8]) -> i32 {
    (crc32fast::hash(body) & 0x7FFF_FFFF) as i32
}

/// Whether `expected` (the `bodyCrc32` header) matches `body`. Zero means "not computed".
/// The unmasked CRC is accepted too: it proves the same integrity.
pub fn crc32_matches(body: &[u8], expected: i32) -> bool {
    expected == 0 || expected == body_crc32(body) || expected == crc32fast::hash(body) as i32
}

/// The compressed form of `body` (the layout [`decode`] reads, as RocketMQ 4.9's
/// `RegisterBrokerBody.encode(true)` writes it): a tenth or less of the JSON for a large topic
/// table.
pub fn encode_compressed(body: &RegisterBrokerBody) -> Result<Vec<u8>, RegisterBodyError> {
    let wrapper = &body.topic_config_serialize_wrapper;
    let mut raw = Vec::new();
    let framed = |raw: &mut Vec<u8>, bytes: &[u8]| {
        raw.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
        raw.extend_from_slice(bytes);
    };
    framed(&mut raw, &serde_json::to_vec(&wrapper.data_version)?);
    raw.extend_from_slice(&(wrapper.topic_config_table.len() as i32).to_be_bytes());
    for config in wrapper.topic_config_table.values() {
        framed(&mut raw, encode_topic_config(config)?.as_bytes());
    }
    framed(&mut raw, &serde_json::to_vec(&body.filter_server_list)?);
    let mut encoder = ZlibEncoder::new(Vec::with_capacity(raw.len() / 8), Compression::default());
    encoder
        .write_all(&raw)
        .and_then(|()| encoder.finish())
        .map_err(|e| RegisterBodyError::Compressed(format!("deflate failed: {e}")))
}

/// `TopicConfig.encode()`, the inverse of [`decode_topic_config`].
fn encode_topic_config(config: &TopicConfig) -> Result<String, RegisterBodyError> {
    let mut text = format!(
        "{} {} {} {} {}",
        config.topic_name,
        config.read_queue_nums,
        config.write_queue_nums,
        config.perm,
        config.topic_filter_type
    );
    if !config.attributes.is_empty() {
        text.push(' ');
        text.push_str(&serde_json::to_string(&config.attributes)?);
    }
    Ok(text)
}

/// Decodes a registration body; an empty body registers no topics.
pub fn decode(body: &[u8], compressed: bool) -> Result<RegisterBrokerBody, RegisterBodyError> {
    if body.is_empty() {
        return Ok(RegisterBrokerBody::default());
    }
    if compressed {
        decode_compressed(body)
    } else {
        Ok(from_fastjson(body)?)
    }
}

/// The compressed layout: i32 length + DataVersion JSON, i32 topic count, per topic i32 length +
/// `TopicConfig.encode()` text, i32 length + filter-server JSON array, then (5.x brokers) i32
/// count + per static-topic mapping i32 length + JSON, which the name server does not use.
fn decode_compressed(body: &[u8]) -> Result<RegisterBrokerBody, RegisterBodyError> {
    let mut inflated = Vec::new();
    ZlibDecoder::new(body)
        .take(MAX_INFLATED_BODY_BYTES as u64 + 1)
        .read_to_end(&mut inflated)
        .map_err(|e| RegisterBodyError::Compressed(format!("inflate failed: {e}")))?;
    if inflated.len() > MAX_INFLATED_BODY_BYTES {
        return Err(RegisterBodyError::Compressed(format!(
            "inflates past {MAX_INFLATED_BODY_BYTES} bytes"
        )));
    }
    let mut cursor = Cursor {
        buf: &inflated,
        pos: 0,
    };
    let mut result = RegisterBrokerBody::default();
    let wrapper = &mut result.topic_config_serialize_wrapper;
    wrapper.data_version = from_fastjson::<DataVersion>(cursor.chunk("dataVersion")?)?;
    let topics = cursor.count("topic count")?;
    for _ in 0..topics {
        let text = std::str::from_utf8(cursor.chunk("topic config")?)
            .map_err(|_| RegisterBodyError::Compressed("topic config is not UTF-8".into()))?;
        let config = decode_topic_config(text)?;
        wrapper
            .topic_config_table
            .insert(config.topic_name.clone(), config);
    }
    let filter_servers = cursor.chunk("filter server list")?;
    result.filter_server_list = from_fastjson(filter_servers).unwrap_or_default();
    Ok(result)
}

/// `TopicConfig.encode()`: `name readQueueNums writeQueueNums perm filterType [attributesJson]`,
/// space separated. It carries neither topicSysFlag nor order.
fn decode_topic_config(text: &str) -> Result<TopicConfig, RegisterBodyError> {
    let bad = || RegisterBodyError::Compressed(format!("malformed topic config {text:?}"));
    let mut parts = text.splitn(6, ' ');
    let mut next = || parts.next().filter(|p| !p.is_empty()).ok_or_else(bad);
    let name = next()?;
    let read: i32 = next()?.parse().map_err(|_| bad())?;
    let write: i32 = next()?.parse().map_err(|_| bad())?;
    let perm: i32 = next()?.parse().map_err(|_| bad())?;
    let filter_type = next()?;
    let attributes = next()
        .ok()
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_default();
    let mut config = TopicConfig::new(name, read, perm);
    config.write_queue_nums = write;
    config.topic_filter_type = filter_type.to_owned();
    config.attributes = attributes;
    Ok(config)
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn count(&mut self, what: &str) -> Result<usize, RegisterBodyError> {
        let Some(bytes) = self.buf.get(self.pos..self.pos + 4) else {
            return Err(RegisterBodyError::Compressed(format!(
                "truncated before the {what}"
            )));
        };
        self.pos += 4;
        let n = i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        usize::try_from(n)
            .map_err(|_| RegisterBodyError::Compressed(format!("negative {what} {n}")))
    }

    fn chunk(&mut self, what: &str) -> Result<&'a [u8], RegisterBodyError> {
        let len = self.count(what)?;
        let end = self
            .pos
            .checked_add(len)
            .filter(|end| *end <= self.buf.len());
        let Some(end) = end else {
            return Err(RegisterBodyError::Compressed(format!(
                "the {what} runs past the end"
            )));
        };
        let chunk = &self.buf[self.pos..end];
        self.pos = end;
        Ok(chunk)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::write::ZlibEncoder;
    use flate2::Compression;

    use super::*;

    fn framed(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
        out.extend_from_slice(bytes);
    }

    fn compress(raw: &[u8]) -> Vec<u8> {
        let mut enc = ZlibEncoder::new(Vec::new(), Compression::best());
        enc.write_all(raw).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn decodes_a_compressed_registration() {
        let mut raw = Vec::new();
        framed(
            &mut raw,
            br#"{"counter":3,"stateVersion":0,"timestamp":17}"#,
        );
        raw.extend_from_slice(&2i32.to_be_bytes());
        framed(&mut raw, b"T 8 4 6 SINGLE_TAG ");
        framed(
            &mut raw,
            br#"TBW102 8 8 7 SINGLE_TAG {"+message.type":"NORMAL"}"#,
        );
        framed(&mut raw, b"[]");
        raw.extend_from_slice(&0i32.to_be_bytes());
        let body = decode(&compress(&raw), true).unwrap();
        let wrapper = body.topic_config_serialize_wrapper;
        assert_eq!(wrapper.data_version.counter, 3);
        let t = &wrapper.topic_config_table["T"];
        assert_eq!((t.read_queue_nums, t.write_queue_nums, t.perm), (8, 4, 6));
        let tbw = &wrapper.topic_config_table["TBW102"];
        assert_eq!(tbw.perm, 7);
        assert_eq!(tbw.attributes["+message.type"], "NORMAL");
    }

    #[test]
    fn what_a_broker_compresses_decodes_to_the_same_table() {
        let mut body = RegisterBrokerBody::default();
        let wrapper = &mut body.topic_config_serialize_wrapper;
        wrapper.data_version = DataVersion {
            timestamp: 17,
            counter: 9,
            ..DataVersion::default()
        };
        for i in 0..2000 {
            let mut t = TopicConfig::new(format!("Topic{i}"), 4 + i % 4, 6);
            t.write_queue_nums = 8;
            if i % 2 == 0 {
                t.attributes.insert("+message.type".into(), "FIFO".into());
            }
            wrapper.topic_config_table.insert(t.topic_name.clone(), t);
        }
        let compressed = encode_compressed(&body).unwrap();
        let json = serde_json::to_vec(&body).unwrap();
        assert!(
            compressed.len() * 10 < json.len(),
            "{} vs {}",
            compressed.len(),
            json.len()
        );
        let back = decode(&compressed, true).unwrap();
        let (got, sent) = (
            &back.topic_config_serialize_wrapper,
            &body.topic_config_serialize_wrapper,
        );
        assert_eq!(got.data_version, sent.data_version);
        assert_eq!(got.topic_config_table, sent.topic_config_table);
    }

    #[test]
    fn truncated_or_garbage_compressed_bodies_are_errors() {
        let mut raw = Vec::new();
        framed(&mut raw, br#"{"counter":3,"timestamp":17}"#);
        raw.extend_from_slice(&5i32.to_be_bytes());
        framed(&mut raw, b"T 8 4 6 SINGLE_TAG");
        assert!(decode(&compress(&raw), true).is_err());
        assert!(decode(b"not zlib at all", true).is_err());
        let mut huge = Vec::new();
        huge.extend_from_slice(&i32::MAX.to_be_bytes());
        assert!(decode(&compress(&huge), true).is_err());
    }

    #[test]
    fn crc_is_masked_like_java() {
        let body = b"some registration body";
        let crc = body_crc32(body);
        assert!(crc >= 0);
        assert!(crc32_matches(body, crc));
        assert!(crc32_matches(body, 0));
        assert!(!crc32_matches(body, crc ^ 1));
    }
}
