//! `RemotingCommand`: one request or response, independent of how its header is serialized.

use bytes::Bytes;

use crate::ext::{CommandHeader, ExtFields};
use crate::HeaderError;

/// Bit 0 of `flag`: the command is a response.
pub const FLAG_RESPONSE: i32 = 1;
/// Bit 1 of `flag`: the sender expects no response.
pub const FLAG_ONEWAY: i32 = 2;

/// How a command's header is serialized on the wire (the high byte of the header-length word).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SerializeType {
    #[default]
    Json = 0,
    RocketMq = 1,
}

/// `LanguageCode` of the sender. We always send `JAVA`: old fastjson decoders may reject names they
/// do not know (reference §1.2).
pub const LANGUAGE_JAVA: u8 = 0;

/// The version we advertise: V4_9_4 (401), so that peers use the standard-JSON route format.
pub const VERSION: i32 = 401;

/// A message body: one contiguous buffer, or several slices sent back to back (a pull answer
/// hands the stored records as they are, without joining them).
#[derive(Debug, Clone, Default)]
pub enum Body {
    #[default]
    Empty,
    One(Bytes),
    Chunks(Vec<Bytes>),
}

impl Body {
    pub fn len(&self) -> usize {
        match self {
            Body::Empty => 0,
            Body::One(b) => b.len(),
            Body::Chunks(c) => c.iter().map(Bytes::len).sum(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The body as one buffer (joins chunks; free for the other variants).
    pub fn to_bytes(&self) -> Bytes {
        match self {
            Body::Empty => Bytes::new(),
            Body::One(b) => b.clone(),
            Body::Chunks(c) => {
                let mut all = Vec::with_capacity(self.len());
                for chunk in c {
                    all.extend_from_slice(chunk);
                }
                Bytes::from(all)
            }
        }
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Self {
        if b.is_empty() {
            Body::Empty
        } else {
            Body::One(b)
        }
    }
}

impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Self {
        Body::from(Bytes::from(v))
    }
}

#[derive(Debug, Clone, Default)]
pub struct RemotingCommand {
    pub code: i32,
    pub language: u8,
    pub version: i32,
    pub opaque: i32,
    pub flag: i32,
    pub remark: Option<String>,
    pub ext_fields: ExtFields,
    pub body: Body,
    pub serialize_type: SerializeType,
}

impl RemotingCommand {
    pub fn request(code: i32) -> Self {
        RemotingCommand {
            code,
            language: LANGUAGE_JAVA,
            version: VERSION,
            ..Default::default()
        }
    }

    pub fn request_with_header<H: CommandHeader>(code: i32, header: &H) -> Self {
        let mut cmd = Self::request(code);
        header.encode(&mut cmd.ext_fields);
        cmd
    }

    /// A response to `request`: same opaque, same header serialization (the C++ client only
    /// understands JSON, so we answer in whatever the peer spoke).
    pub fn response_to(request: &RemotingCommand, code: i32, remark: Option<String>) -> Self {
        RemotingCommand {
            code,
            language: LANGUAGE_JAVA,
            version: VERSION,
            opaque: request.opaque,
            flag: FLAG_RESPONSE,
            remark,
            serialize_type: request.serialize_type,
            ..Default::default()
        }
    }

    pub fn success(request: &RemotingCommand) -> Self {
        Self::response_to(request, crate::code::response::SUCCESS, None)
    }

    pub fn error(request: &RemotingCommand, code: i32, remark: impl Into<String>) -> Self {
        Self::response_to(request, code, Some(remark.into()))
    }

    pub fn with_header<H: CommandHeader>(mut self, header: &H) -> Self {
        header.encode(&mut self.ext_fields);
        self
    }

    pub fn with_body(mut self, body: impl Into<Body>) -> Self {
        self.body = body.into();
        self
    }

    pub fn with_remark(mut self, remark: impl Into<String>) -> Self {
        self.remark = Some(remark.into());
        self
    }

    pub fn decode_header<H: CommandHeader>(&self) -> Result<H, HeaderError> {
        H::decode(&self.ext_fields)
    }

    pub fn is_response(&self) -> bool {
        self.flag & FLAG_RESPONSE != 0
    }

    pub fn is_oneway(&self) -> bool {
        self.flag & FLAG_ONEWAY != 0
    }

    pub fn mark_oneway(&mut self) {
        self.flag |= FLAG_ONEWAY;
    }

    /// The body as one buffer; requests always arrive as one.
    pub fn body_bytes(&self) -> Bytes {
        self.body.to_bytes()
    }
}
