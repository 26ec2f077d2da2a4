//! The signature `AclClientRPCHook` puts on every request: Base64(HMAC-SHA1(secretKey,
//! content)), where content is the values of the request's extFields sorted by key — all but
//! `Signature` (and `_UNIQUE_KEY_QUERY`, which RocketMQ's broker leaves out too) — concatenated
//! as UTF-8, followed by the body. Comparison is constant-time; nothing here logs a secret.
//!
//! The recipe itself lives in `petrel_common::acl_signature`, shared with Petrel's client; this
//! module applies it to a `RemotingCommand`.

use petrel_common::acl_signature;
use petrel_remoting::RemotingCommand;

pub use petrel_common::acl_signature::{ACCESS_KEY, SECURITY_TOKEN, SIGNATURE};

/// The signature a client holding `secret_key` puts on `req`.
pub fn sign(secret_key: &str, req: &RemotingCommand) -> String {
    acl_signature::sign(secret_key, req.ext_fields.iter(), &req.body_bytes())
}

/// Whether `signature` is the one `secret_key` gives `req`.
pub fn verify(secret_key: &str, req: &RemotingCommand, signature: &str) -> bool {
    acl_signature::verify(
        secret_key,
        req.ext_fields.iter(),
        &req.body_bytes(),
        signature,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use petrel_common::acl_signature::UNIQUE_MSG_QUERY_FLAG;

    fn request() -> RemotingCommand {
        let mut req = RemotingCommand::request(10);
        // Inserted out of order: the content sorts them (AccessKey, b, topic).
        req.ext_fields.insert("topic", "TopicA");
        req.ext_fields.insert(ACCESS_KEY, "ak1");
        req.ext_fields.insert("b", "x");
        req.with_body(Bytes::from_static(b"hello"))
    }

    /// Base64(HmacSHA1("secret1", "ak1" + "x" + "TopicA" + "hello")), as rocketmq-acl 4.9.8's
    /// own `AclUtils.calSignature(AclUtils.combineRequestContent(req, sortedExtFields),
    /// "secret1")` prints it for this request.
    #[test]
    fn signature_matches_a_known_vector_of_the_java_recipe() {
        let req = request();
        assert_eq!(sign("secret1", &req), "Oh/tgtt8qKOJ2iONlE6/cL73Eb8=");
    }

    #[test]
    fn signature_field_and_unique_key_flag_are_not_signed() {
        let mut req = request();
        let s = sign("secret1", &req);
        req.ext_fields.insert(SIGNATURE, s.clone());
        req.ext_fields.insert(UNIQUE_MSG_QUERY_FLAG, "true");
        assert!(verify("secret1", &req, &s));
        assert!(!verify("secret2", &req, &s), "another secret");
        assert!(!verify("secret1", &req, "not base64!"));
        req.ext_fields.insert("topic", "TopicB");
        assert!(!verify("secret1", &req, &s), "a tampered field");
        let tampered = request().with_body(Bytes::from_static(b"hellO"));
        assert!(!verify("secret1", &tampered, &s), "a tampered body");
    }
}
