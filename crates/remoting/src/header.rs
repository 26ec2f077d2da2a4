//! The command header in its two serializations: JSON (type 0, every client's default) and the
//! ROCKETMQ binary form (type 1, the official benchmark's). Reference §1.3 and §1.4.

use std::fmt;

use bytes::{Buf, BufMut, BytesMut};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::command::{RemotingCommand, SerializeType};
use crate::ext::ExtFields;
use crate::RemotingError;

const LANGUAGE_NAMES: [&str; 14] = [
    "JAVA", "CPP", "DOTNET", "PYTHON", "DELPHI", "ERLANG", "RUBY", "OTHER", "HTTP", "GO", "PHP",
    "OMS", "RUST", "NODE_JS",
];

fn language_code(name: &str) -> u8 {
    LANGUAGE_NAMES
        .iter()
        .position(|n| *n == name)
        .map_or(7, |p| p as u8)
}

/// The `LanguageCode` name of a language number (`OTHER` for unknown ones).
pub fn language_name(code: u8) -> &'static str {
    LANGUAGE_NAMES
        .get(code as usize)
        .copied()
        .unwrap_or("OTHER")
}

/// The header fields of a command, as decoded from either serialization.
pub struct DecodedHeader {
    pub code: i32,
    pub language: u8,
    pub version: i32,
    pub opaque: i32,
    pub flag: i32,
    pub remark: Option<String>,
    pub ext_fields: ExtFields,
}

pub fn decode(kind: SerializeType, buf: &[u8]) -> Result<DecodedHeader, RemotingError> {
    match kind {
        SerializeType::Json => decode_json(buf),
        SerializeType::RocketMq => decode_binary(buf),
    }
}

/// Appends the header of `cmd` in `cmd.serialize_type` to `out`.
pub fn encode(cmd: &RemotingCommand, out: &mut BytesMut) {
    match cmd.serialize_type {
        SerializeType::Json => encode_json(cmd, out),
        SerializeType::RocketMq => encode_binary(cmd, out),
    }
}

#[derive(Deserialize)]
struct JsonHeader {
    #[serde(default)]
    code: i32,
    #[serde(default, deserialize_with = "language_field")]
    language: u8,
    #[serde(default)]
    version: i32,
    #[serde(default)]
    opaque: i32,
    #[serde(default)]
    flag: i32,
    #[serde(default)]
    remark: Option<String>,
    #[serde(default, rename = "extFields", deserialize_with = "ext_fields_field")]
    ext_fields: ExtFields,
}

fn decode_json(buf: &[u8]) -> Result<DecodedHeader, RemotingError> {
    let h: JsonHeader = serde_json::from_slice(buf)
        .map_err(|e| RemotingError::MalformedHeader(format!("JSON header: {e}")))?;
    Ok(DecodedHeader {
        code: h.code,
        language: h.language,
        version: h.version,
        opaque: h.opaque,
        flag: h.flag,
        remark: h.remark,
        ext_fields: h.ext_fields,
    })
}

/// `language` is an enum name in JSON, but accept a number too.
fn language_field<'de, D: Deserializer<'de>>(d: D) -> Result<u8, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = u8;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a language name or code")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<u8, E> {
            Ok(language_code(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u8, E> {
            Ok(u8::try_from(v).unwrap_or(7))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u8, E> {
            Ok(u8::try_from(v).unwrap_or(7))
        }
        fn visit_unit<E: de::Error>(self) -> Result<u8, E> {
            Ok(0)
        }
    }
    d.deserialize_any(V)
}

/// extFields values are strings, but some clients send numbers or booleans: accept any scalar.
fn ext_fields_field<'de, D: Deserializer<'de>>(d: D) -> Result<ExtFields, D::Error> {
    struct Scalar(Option<String>);
    impl<'de> Deserialize<'de> for Scalar {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Scalar;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a string, number or boolean")
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                    Ok(Scalar(Some(v.to_owned())))
                }
                fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
                    Ok(Scalar(Some(v)))
                }
                fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                    Ok(Scalar(Some(v.to_string())))
                }
                fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                    Ok(Scalar(Some(v.to_string())))
                }
                fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                    Ok(Scalar(Some(v.to_string())))
                }
                fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                    Ok(Scalar(Some(v.to_string())))
                }
                fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
                    Ok(Scalar(None))
                }
            }
            d.deserialize_any(V)
        }
    }

    struct MapV;
    impl<'de> Visitor<'de> for MapV {
        type Value = ExtFields;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a map of header fields")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ExtFields, A::Error> {
            let mut ext = ExtFields::new();
            while let Some((k, v)) = map.next_entry::<String, Scalar>()? {
                if let Some(v) = v.0 {
                    ext.push(k, v);
                }
            }
            Ok(ext)
        }
        fn visit_unit<E: de::Error>(self) -> Result<ExtFields, E> {
            Ok(ExtFields::new())
        }
    }
    d.deserialize_any(MapV)
}

fn put_json_string(out: &mut BytesMut, s: &str) {
    out.reserve(s.len() + 2);
    out.put_u8(b'"');
    for ch in s.chars() {
        match ch {
            '"' => out.put_slice(b"\\\""),
            '\\' => out.put_slice(b"\\\\"),
            '\n' => out.put_slice(b"\\n"),
            '\r' => out.put_slice(b"\\r"),
            '\t' => out.put_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                out.put_slice(format!("\\u{:04x}", c as u32).as_bytes());
            }
            c => {
                let mut buf = [0u8; 4];
                out.put_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.put_u8(b'"');
}

fn put_int(out: &mut BytesMut, v: i64) {
    let mut buf = itoa_buf(v);
    out.put_slice(buf.as_bytes_mut());
}

/// Formats an integer without allocating.
fn itoa_buf(v: i64) -> SmallNum {
    let mut n = SmallNum {
        buf: [0; 20],
        start: 20,
    };
    let neg = v < 0;
    let mut u = v.unsigned_abs();
    loop {
        n.start -= 1;
        n.buf[n.start] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    if neg {
        n.start -= 1;
        n.buf[n.start] = b'-';
    }
    n
}

struct SmallNum {
    buf: [u8; 20],
    start: usize,
}

impl SmallNum {
    fn as_bytes_mut(&mut self) -> &[u8] {
        &self.buf[self.start..]
    }
}

/// Keys in fastjson's sorted order, values always strings (the C++ client calls `asString()`).
fn encode_json(cmd: &RemotingCommand, out: &mut BytesMut) {
    out.put_slice(b"{\"code\":");
    put_int(out, cmd.code as i64);
    if !cmd.ext_fields.is_empty() {
        out.put_slice(b",\"extFields\":{");
        for (i, (k, v)) in cmd.ext_fields.iter().enumerate() {
            if i > 0 {
                out.put_u8(b',');
            }
            put_json_string(out, k);
            out.put_u8(b':');
            put_json_string(out, v);
        }
        out.put_u8(b'}');
    }
    out.put_slice(b",\"flag\":");
    put_int(out, cmd.flag as i64);
    out.put_slice(b",\"language\":\"");
    out.put_slice(language_name(cmd.language).as_bytes());
    out.put_slice(b"\",\"opaque\":");
    put_int(out, cmd.opaque as i64);
    if let Some(remark) = &cmd.remark {
        out.put_slice(b",\"remark\":");
        put_json_string(out, remark);
    }
    out.put_slice(b",\"serializeTypeCurrentRPC\":\"JSON\",\"version\":");
    put_int(out, cmd.version as i64);
    out.put_u8(b'}');
}

fn encode_binary(cmd: &RemotingCommand, out: &mut BytesMut) {
    // Codes above i16 cannot be represented in this form (reference §1.4); Java truncates too.
    out.put_i16(cmd.code as i16);
    out.put_u8(cmd.language);
    out.put_i16(cmd.version as i16);
    out.put_i32(cmd.opaque);
    out.put_i32(cmd.flag);
    match &cmd.remark {
        Some(r) if !r.is_empty() => {
            out.put_i32(r.len() as i32);
            out.put_slice(r.as_bytes());
        }
        _ => out.put_i32(0),
    }
    let map_len: usize = cmd
        .ext_fields
        .iter()
        .map(|(k, v)| 2 + k.len() + 4 + v.len())
        .sum();
    out.put_i32(map_len as i32);
    for (k, v) in cmd.ext_fields.iter() {
        out.put_i16(k.len() as i16);
        out.put_slice(k.as_bytes());
        out.put_i32(v.len() as i32);
        out.put_slice(v.as_bytes());
    }
}

fn decode_binary(mut buf: &[u8]) -> Result<DecodedHeader, RemotingError> {
    fn need(buf: &[u8], n: usize, what: &str) -> Result<(), RemotingError> {
        if buf.remaining() < n {
            return Err(RemotingError::MalformedHeader(format!(
                "binary header truncated in {what}"
            )));
        }
        Ok(())
    }
    fn utf8(bytes: &[u8], what: &str) -> Result<String, RemotingError> {
        String::from_utf8(bytes.to_vec())
            .map_err(|_| RemotingError::MalformedHeader(format!("{what} is not UTF-8")))
    }
    need(buf, 2 + 1 + 2 + 4 + 4 + 4, "fixed fields")?;
    let code = buf.get_i16() as i32;
    let language = buf.get_u8();
    let version = buf.get_i16() as i32;
    let opaque = buf.get_i32();
    let flag = buf.get_i32();
    let remark_len = buf.get_i32();
    let remark = if remark_len > 0 {
        let n = remark_len as usize;
        need(buf, n, "remark")?;
        let r = utf8(&buf[..n], "remark")?;
        buf.advance(n);
        Some(r)
    } else {
        None
    };
    need(buf, 4, "extFields length")?;
    let map_len = buf.get_i32();
    if map_len < 0 || map_len as usize > buf.remaining() {
        return Err(RemotingError::MalformedHeader(format!(
            "extFields length {map_len} exceeds the header"
        )));
    }
    let mut map = &buf[..map_len as usize];
    let mut ext_fields = ExtFields::new();
    while map.has_remaining() {
        need(map, 2, "extFields key length")?;
        let klen = map.get_i16();
        if klen < 0 {
            return Err(RemotingError::MalformedHeader("negative key length".into()));
        }
        need(map, klen as usize, "extFields key")?;
        let key = utf8(&map[..klen as usize], "extFields key")?;
        map.advance(klen as usize);
        need(map, 4, "extFields value length")?;
        let vlen = map.get_i32();
        if vlen < 0 {
            return Err(RemotingError::MalformedHeader(
                "negative value length".into(),
            ));
        }
        need(map, vlen as usize, "extFields value")?;
        let value = utf8(&map[..vlen as usize], "extFields value")?;
        map.advance(vlen as usize);
        ext_fields.push(key, value);
    }
    Ok(DecodedHeader {
        code,
        language,
        version,
        opaque,
        flag,
        remark,
        ext_fields,
    })
}
