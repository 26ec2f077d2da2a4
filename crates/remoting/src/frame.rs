//! Frames: `[length i32][serialize type u8 | header length u24][header][body]` (reference §1.1).
//! This module turns bytes into commands and back, and nothing else.

use bytes::{Buf, BufMut, BytesMut};
use tokio_util::codec::Decoder;

use crate::command::{Body, RemotingCommand, SerializeType};
use crate::{header, RemotingError};

/// The largest frame we accept (as RocketMQ's `frameMaxLength`). A larger length field closes
/// the connection: the stream cannot be resynchronised.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// Decodes frames from a byte stream (use with `FramedRead`).
#[derive(Debug, Default)]
pub struct FrameDecoder;

impl Decoder for FrameDecoder {
    type Item = RemotingCommand;
    type Error = RemotingError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<RemotingCommand>, RemotingError> {
        if src.len() < 4 {
            return Ok(None);
        }
        let length = i32::from_be_bytes([src[0], src[1], src[2], src[3]]);
        if length < 4 {
            return Err(RemotingError::MalformedFrame(format!(
                "length field {length} is smaller than the header-length word"
            )));
        }
        let length = length as usize;
        if length > MAX_FRAME_BYTES {
            return Err(RemotingError::FrameTooLarge(length));
        }
        if src.len() < 4 + length {
            src.reserve(4 + length - src.len());
            return Ok(None);
        }
        src.advance(4);
        let mut frame = src.split_to(length).freeze();
        decode_frame(&mut frame).map(Some)
    }
}

/// Decodes one frame without its leading length field.
fn decode_frame(frame: &mut bytes::Bytes) -> Result<RemotingCommand, RemotingError> {
    let word = frame.get_u32();
    let kind = match word >> 24 {
        0 => SerializeType::Json,
        1 => SerializeType::RocketMq,
        other => {
            return Err(RemotingError::MalformedFrame(format!(
                "unknown serialize type {other}"
            )))
        }
    };
    let header_len = (word & 0x00FF_FFFF) as usize;
    if header_len > frame.len() {
        return Err(RemotingError::MalformedFrame(format!(
            "header length {header_len} exceeds the frame"
        )));
    }
    let header_bytes = frame.split_to(header_len);
    let h = header::decode(kind, &header_bytes)?;
    Ok(RemotingCommand {
        code: h.code,
        language: h.language,
        version: h.version,
        opaque: h.opaque,
        flag: h.flag,
        remark: h.remark,
        ext_fields: h.ext_fields,
        body: Body::from(std::mem::take(frame)),
        serialize_type: kind,
    })
}

/// Appends the length field, header-length word and header of `cmd` to `out`. The body is
/// written after it by the caller, so that large bodies need not be copied into `out`.
pub fn encode_head(cmd: &RemotingCommand, out: &mut BytesMut) {
    let start = out.len();
    out.put_u32(0); // length, patched below
    out.put_u32(0); // header-length word, patched below
    header::encode(cmd, out);
    let header_len = out.len() - start - 8;
    let length = 4 + header_len + cmd.body.len();
    out[start..start + 4].copy_from_slice(&(length as u32).to_be_bytes());
    let word = ((cmd.serialize_type as u32) << 24) | (header_len as u32 & 0x00FF_FFFF);
    out[start + 4..start + 8].copy_from_slice(&word.to_be_bytes());
}

/// Encodes a whole command into one buffer (tests and small messages).
pub fn encode(cmd: &RemotingCommand, out: &mut BytesMut) {
    encode_head(cmd, out);
    match &cmd.body {
        Body::Empty => {}
        Body::One(b) => out.put_slice(b),
        Body::Chunks(chunks) => {
            for c in chunks {
                out.put_slice(c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn round_trip(cmd: &RemotingCommand) -> RemotingCommand {
        let mut buf = BytesMut::new();
        encode(cmd, &mut buf);
        let mut dec = FrameDecoder;
        let out = dec.decode(&mut buf).unwrap().unwrap();
        assert!(buf.is_empty());
        out
    }

    #[test]
    fn json_and_binary_round_trip() {
        for kind in [SerializeType::Json, SerializeType::RocketMq] {
            let mut cmd = RemotingCommand::request(310);
            cmd.serialize_type = kind;
            cmd.opaque = 42;
            cmd.remark = Some("h\u{1}i \"there\"".into());
            cmd.ext_fields.insert("i", "UNIQ_KEY\u{1}ABC\u{2}");
            cmd.ext_fields.insert("b", "Tópico");
            cmd.body = Body::One(Bytes::from_static(b"hello"));
            let out = round_trip(&cmd);
            assert_eq!(out.code, 310);
            assert_eq!(out.opaque, 42);
            assert_eq!(out.remark, cmd.remark);
            assert_eq!(out.ext_fields, cmd.ext_fields);
            assert_eq!(out.body_bytes(), Bytes::from_static(b"hello"));
            assert_eq!(out.serialize_type, kind);
        }
    }

    #[test]
    fn decodes_the_reference_binary_frame() {
        // Reference §1.4: code 34, opaque 7, one ext field k=v.
        let hex = "000000210100001d002200000000000007000000000000000000000008000\
                   16b0000000176";
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        let mut buf = BytesMut::from(&bytes[..]);
        let cmd = FrameDecoder.decode(&mut buf).unwrap().unwrap();
        assert_eq!(cmd.code, 34);
        assert_eq!(cmd.opaque, 7);
        assert_eq!(cmd.ext_fields.get("k"), Some("v"));
    }

    #[test]
    fn accepts_java_json_with_numeric_ext_values() {
        let header = br#"{"code":14,"extFields":{"queueId":3,"topic":"T","x":null},"flag":0,"language":"GO","opaque":9,"remark":"","version":317}"#;
        let mut buf = BytesMut::new();
        buf.put_u32(4 + header.len() as u32);
        buf.put_u32(header.len() as u32);
        buf.put_slice(header);
        let cmd = FrameDecoder.decode(&mut buf).unwrap().unwrap();
        assert_eq!(cmd.ext_fields.get("queueId"), Some("3"));
        assert_eq!(cmd.ext_fields.get("x"), None);
        assert_eq!(cmd.language, 9);
    }

    #[test]
    fn waits_for_a_whole_frame() {
        let mut full = BytesMut::new();
        encode(&RemotingCommand::request(34), &mut full);
        let mut partial = BytesMut::from(&full[..full.len() - 1]);
        assert!(FrameDecoder.decode(&mut partial).unwrap().is_none());
    }

    #[test]
    fn rejects_garbage_and_oversized_frames() {
        let mut garbage = BytesMut::from(&b"GET / HTTP/1.1\r\n\r\n"[..]);
        assert!(FrameDecoder.decode(&mut garbage).is_err());
        let mut huge = BytesMut::new();
        huge.put_u32((MAX_FRAME_BYTES + 1) as u32);
        assert!(matches!(
            FrameDecoder.decode(&mut huge),
            Err(RemotingError::FrameTooLarge(_))
        ));
        let mut bad_header = BytesMut::new();
        bad_header.put_u32(4 + 3);
        bad_header.put_u32(3);
        bad_header.put_slice(b"{{{");
        assert!(FrameDecoder.decode(&mut bad_header).is_err());
    }
}
