//! Master/slave replication with RocketMQ's classic HA wire (protocol reference §8.1): a raw TCP
//! stream on the master's `haListenPort`, not remoting frames. Only the wire codec is here so
//! far; the master's streamer, the slave's client and the sync-replication wait come next
//! (issue 11). Never reads or writes store files itself.

pub mod wire;
