//! RocketMQ's remoting protocol: frames, commands, JSON and binary headers, typed headers, and a
//! connection that carries requests both ways. It knows nothing of brokers or stores.

pub mod code;
pub mod command;
pub mod connection;
mod error;
pub mod ext;
pub mod frame;
mod header;
pub mod headers;
pub mod tls;

pub use command::{Body, RemotingCommand, SerializeType};
pub use connection::{not_supported, serve, Connection, NoRequests, RequestHandler};
pub use error::{HeaderError, RemotingError};
pub use ext::{CommandHeader, ExtFields, HeaderField, HeaderValue};
pub use header::language_name;
pub use tls::{ServerTls, TlsConfig, TlsMode};
pub use tokio_util::sync::CancellationToken;
