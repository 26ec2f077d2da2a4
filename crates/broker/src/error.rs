//! Errors that stop a broker from starting.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum BrokerError {
    #[error("cannot open the message store: {0}")]
    Store(#[from] petrel_store::StoreError),
    #[error("invalid broker configuration: {0}")]
    Config(String),
    #[error("cannot read or write broker metadata: {0}")]
    Metadata(#[from] std::io::Error),
}
