//! The client's error type. A broker or name server that answers with a non-success code becomes
//! `ClientError::Broker` carrying that code and remark; everything else says what failed locally.

use petrel_remoting::{HeaderError, RemotingError};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum ClientError {
    /// The peer answered with an error code.
    #[error("broker answered code {code}: {remark}")]
    Broker { code: i32, remark: String },
    /// The connection failed, closed or timed out.
    #[error("remoting error: {0}")]
    Remoting(#[from] RemotingError),
    /// A response header lacked a required field or had a bad value.
    #[error("bad response header: {0}")]
    Header(#[from] HeaderError),
    /// A response body could not be decoded.
    #[error("bad response body: {0}")]
    Decode(String),
    /// No name server knows a route with writable/readable queues for the topic.
    #[error("no route for topic {0}")]
    NoRoute(String),
    /// A broker named in a route has no known master address.
    #[error("no address for broker {0}")]
    NoBrokerAddr(String),
    /// The caller passed something the client cannot use.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A broadcasting consumer's local offset file could not be read or written.
    #[error("local offset store {path}: {message}")]
    LocalOffsetStore { path: String, message: String },
    /// The operation needs `start()` first, or came after `shutdown()`.
    #[error("client is not running: {0}")]
    NotRunning(&'static str),
}

impl ClientError {
    /// The broker's response code, if this error is one.
    pub fn code(&self) -> Option<i32> {
        match self {
            ClientError::Broker { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub(crate) fn broker(code: i32, remark: Option<String>) -> Self {
        ClientError::Broker {
            code,
            remark: remark.unwrap_or_default(),
        }
    }
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;
