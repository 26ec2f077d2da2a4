//! Petrel's Rust client SDK: a producer, a clustering push consumer, a low-level pull consumer and
//! a few admin helpers, speaking RocketMQ's remoting protocol to name servers and brokers.

pub mod admin;
pub mod config;
pub mod consumer;
pub mod error;
pub mod instance;
pub mod message;
pub mod producer;
pub mod transaction;

pub use config::{ClientConfig, Credentials, SerializeType};
pub use consumer::{
    AllocateStrategy, ConsumeFromWhere, ConsumeOrderlyStatus, ConsumeStatus, MessageModel,
    PullConsumer, PushConsumer, PushConsumerOptions,
};
pub use error::{ClientError, Result};
pub use instance::{ClientInstance, PullResult, PullStatus};
pub use message::{Message, MessageExt};
pub use petrel_common::protocol::MessageQueue;
pub use producer::{Producer, SendResult, SendStatus};
pub use transaction::{LocalTransactionState, TransactionChecker, TransactionSendResult};
