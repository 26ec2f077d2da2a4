//! Errors of the remoting layer.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum RemotingError {
    #[error("frame of {0} bytes exceeds the {max} byte limit", max = crate::frame::MAX_FRAME_BYTES)]
    FrameTooLarge(usize),
    #[error("malformed frame: {0}")]
    MalformedFrame(String),
    #[error("malformed header: {0}")]
    MalformedHeader(String),
    #[error("connection closed")]
    ConnectionClosed,
    #[error("request timed out after {0} ms")]
    Timeout(u64),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// A typed header could not be read from a command's extFields.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum HeaderError {
    #[error("the header field {0} is missing")]
    Missing(&'static str),
    #[error("the header field {field} has an invalid value {value:?}")]
    Invalid { field: &'static str, value: String },
}
