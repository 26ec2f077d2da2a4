//! Client configuration shared by producers, consumers and admin helpers.

use std::time::Duration;

use petrel_common::acl_signature::{self, ACCESS_KEY, SECURITY_TOKEN};
use petrel_remoting::RemotingCommand;
pub use petrel_remoting::SerializeType;

/// An account of the broker's plain ACL (`plain_acl.yml`): every request is signed with it the
/// way the Java client's `AclClientRPCHook` signs. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
    /// Sent as `SecurityToken` and signed like any field (RocketMQ does not check it).
    pub security_token: Option<String>,
}

impl Credentials {
    pub fn new(access_key: impl Into<String>, secret_key: impl Into<String>) -> Self {
        Credentials {
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            security_token: None,
        }
    }

    pub fn with_security_token(mut self, token: impl Into<String>) -> Self {
        self.security_token = Some(token.into());
        self
    }

    /// Adds `AccessKey` (and `SecurityToken`) to `cmd` and signs its fields and body
    /// (`Signature`), replacing an earlier signature. Sign last: any later change breaks it.
    pub fn sign(&self, cmd: &mut RemotingCommand) {
        cmd.ext_fields.insert(ACCESS_KEY, self.access_key.as_str());
        if let Some(token) = &self.security_token {
            cmd.ext_fields.insert(SECURITY_TOKEN, token.as_str());
        }
        let signature =
            acl_signature::sign(&self.secret_key, cmd.ext_fields.iter(), &cmd.body_bytes());
        cmd.ext_fields.insert(acl_signature::SIGNATURE, signature);
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<hidden>")
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "<hidden>"),
            )
            .finish()
    }
}

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
    /// Signs every request (brokers and name servers alike, as the Java client's RPC hook
    /// does) for a broker with ACL on; `None` sends unsigned requests.
    pub credentials: Option<Credentials>,
    /// Speak TLS to name servers and brokers, trusting any certificate (like the Java client's
    /// `setUseTLS(true)` with its default `tls.test.mode.enable=true`): encrypted, not
    /// authenticated. Off by default.
    pub tls: bool,
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
            credentials: None,
            tls: false,
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

    pub fn with_credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    pub fn with_tls(mut self, tls: bool) -> Self {
        self.tls = tls;
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

    /// The request of the broker's `acl::signature` tests, signed by the client: the same
    /// known vector of rocketmq-acl 4.9.8's recipe.
    #[test]
    fn client_signature_matches_the_brokers_known_vector() {
        let mut req = RemotingCommand::request(10);
        req.ext_fields.insert("topic", "TopicA");
        req.ext_fields.insert("b", "x");
        let mut req = req.with_body(bytes::Bytes::from_static(b"hello"));
        Credentials::new("ak1", "secret1").sign(&mut req);
        assert_eq!(req.ext_fields.get(ACCESS_KEY), Some("ak1"));
        assert_eq!(
            req.ext_fields.get(acl_signature::SIGNATURE),
            Some("Oh/tgtt8qKOJ2iONlE6/cL73Eb8=")
        );
        // Signing again (a retry) replaces the signature with the same one.
        Credentials::new("ak1", "secret1").sign(&mut req);
        assert_eq!(
            req.ext_fields.get(acl_signature::SIGNATURE),
            Some("Oh/tgtt8qKOJ2iONlE6/cL73Eb8=")
        );
        assert!(acl_signature::verify(
            "secret1",
            req.ext_fields.iter(),
            b"hello",
            "Oh/tgtt8qKOJ2iONlE6/cL73Eb8="
        ));
    }

    #[test]
    fn security_token_is_sent_and_signed_and_the_secret_never_printed() {
        let creds = Credentials::new("ak1", "secret1").with_security_token("t0ken-42");
        let mut req = RemotingCommand::request(10);
        creds.sign(&mut req);
        assert_eq!(req.ext_fields.get(SECURITY_TOKEN), Some("t0ken-42"));
        let expected = acl_signature::sign("secret1", [("a", "ak1"), ("b", "t0ken-42")], b"");
        assert_eq!(
            req.ext_fields.get(acl_signature::SIGNATURE),
            Some(&*expected)
        );
        let shown = format!("{:?}", ClientConfig::default().with_credentials(creds));
        assert!(shown.contains("ak1") && !shown.contains("secret1") && !shown.contains("t0ken-42"));
    }
}
