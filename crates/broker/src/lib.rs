//! The broker: request processors and services on top of the store. It wires the remoting
//! server, the message store, the topic/group/offset tables, long polling and the name-server
//! registration, and owns the order in which they start and stop.

pub mod acl;
mod broker;
mod client_manager;
mod config;
mod consumer_offset;
mod error;
pub mod flow_control;
pub mod ha;
mod http;
mod message_request_mode;
pub mod metrics;
mod namesrv_client;
pub mod pop;
pub mod processor;
mod pull_hold;
mod rebalance_lock;
pub mod runtime_config;
pub mod schedule;
mod subscription_group;
pub mod timer;
mod topic_config;
pub mod trace;
pub mod transaction;

pub use broker::{Broker, BrokerHandle};
pub use client_manager::{
    ClientChannel, ClientConn, ConsumerGroupInfo, ConsumerManager, GrpcClient, ProducerManager,
};
pub use config::{BrokerConfig, DEFAULT_GRPC_SERVER_PORT, DEFAULT_METRICS_PROM_EXPORTER_PORT};
pub use consumer_offset::ConsumerOffsetManager;
pub use error::BrokerError;
pub use pull_hold::PullRequestHold;
pub use rebalance_lock::RebalanceLockManager;
pub use subscription_group::SubscriptionGroupManager;
pub use topic_config::{TopicConfigManager, TopicLookup};
