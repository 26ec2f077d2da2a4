//! The gRPC endpoint of RocketMQ's 5.x clients: `apache.rocketmq.v2.MessagingService`, served
//! inside the broker process ("local mode") on port 8081, TLS and plaintext on one port. It
//! sits on top of one [`petrel_broker::Broker`] and owns only the protocol: routes come from the
//! broker's topic table, sends go through the broker's send path, receives through its POP
//! mechanism, transactions through its end-transaction logic. It never writes the store itself.

mod clients;
mod context;
mod message;
mod offset;
mod receive;
mod route;
mod send;
mod server;
mod service;
mod telemetry;
mod transaction;

/// The generated messages and service of `apache.rocketmq.v2` (from `proto/`).
pub mod pb {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("apache.rocketmq.v2");
}

pub use server::{start, ProxyError, ProxyHandle};
