//! Client configuration shared by producers, consumers and admin helpers.

use std::time::Duration;

pub use petrel_remoting::SerializeType;

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Name server addresses, `host:port;host2:port`.
    pub namesrv_addr: String,
    /// Second half of the client id `ip@instance_name`; two clients of one group in one process
    /// need different names.
    pub instance_name: String,
    /// Bound on every request except long-polling pulls (connects included).
    pub request_timeout: Duration,
    /// How often HEART_BEAT goes to every known broker.
    pub heartbeat_interval: Duration,
    /// How often cached topic routes are refreshed from the name server.
    pub poll_namesrv_interval: Duration,
    /// Header serialization of the requests we send: JSON (default) or RocketMQ binary.
    pub serialize_type: SerializeType,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            namesrv_addr: "127.0.0.1:9876".to_owned(),
            instance_name: std::process::id().to_string(),
            request_timeout: Duration::from_secs(3),
            heartbeat_interval: Duration::from_secs(30),
            poll_namesrv_interval: Duration::from_secs(30),
            serialize_type: SerializeType::Json,
        }
    }
}

impl ClientConfig {
    pub fn new(namesrv_addr: impl Into<String>) -> Self {
        ClientConfig {
            namesrv_addr: namesrv_addr.into(),
            ..Default::default()
        }
    }

    pub fn with_instance_name(mut self, name: impl Into<String>) -> Self {
        self.instance_name = name.into();
        self
    }

    pub fn with_serialize_type(mut self, serialize_type: SerializeType) -> Self {
        self.serialize_type = serialize_type;
        self
    }

    /// The name server addresses, trimmed, empty entries dropped.
    pub fn namesrv_addrs(&self) -> Vec<String> {
        self.namesrv_addr
            .split(';')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namesrv_list_is_split_on_semicolons() {
        let c = ClientConfig::new(" a:1; b:2 ;;");
        assert_eq!(c.namesrv_addrs(), vec!["a:1", "b:2"]);
        assert_eq!(c.request_timeout, Duration::from_secs(3));
    }
}
