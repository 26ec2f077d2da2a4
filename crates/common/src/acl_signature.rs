//! The signature RocketMQ's `AclClientRPCHook` puts on every request, in one place: the broker
//! verifies with it, Petrel's client signs with it. Base64(HMAC-SHA1(secretKey, content)), where
//! content is the values of the request's extFields sorted by key — all but `Signature` (and
//! `_UNIQUE_KEY_QUERY`, which RocketMQ's broker leaves out too) — concatenated as UTF-8,
//! followed by the body. Comparison is constant-time; nothing here logs a secret.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

pub const ACCESS_KEY: &str = "AccessKey";
pub const SIGNATURE: &str = "Signature";
pub const SECURITY_TOKEN: &str = "SecurityToken";
/// `MixAll.UNIQUE_MSG_QUERY_FLAG`: not part of the signed content on RocketMQ's broker.
pub const UNIQUE_MSG_QUERY_FLAG: &str = "_UNIQUE_KEY_QUERY";

fn mac<'a>(
    secret_key: &str,
    ext_fields: impl IntoIterator<Item = (&'a str, &'a str)>,
    body: &[u8],
) -> Hmac<Sha1> {
    let mut fields: Vec<(&str, &str)> = ext_fields
        .into_iter()
        .filter(|(k, _)| *k != SIGNATURE && *k != UNIQUE_MSG_QUERY_FLAG)
        .collect();
    fields.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut mac = Hmac::<Sha1>::new_from_slice(secret_key.as_bytes()).expect("HMAC takes any key");
    for (_, v) in fields {
        mac.update(v.as_bytes());
    }
    mac.update(body);
    mac
}

/// The signature a client holding `secret_key` puts on a request with these extFields and body.
pub fn sign<'a>(
    secret_key: &str,
    ext_fields: impl IntoIterator<Item = (&'a str, &'a str)>,
    body: &[u8],
) -> String {
    STANDARD.encode(mac(secret_key, ext_fields, body).finalize().into_bytes())
}

/// Whether `signature` is the one `secret_key` gives a request with these extFields and body.
pub fn verify<'a>(
    secret_key: &str,
    ext_fields: impl IntoIterator<Item = (&'a str, &'a str)>,
    body: &[u8],
    signature: &str,
) -> bool {
    match STANDARD.decode(signature) {
        Ok(raw) => mac(secret_key, ext_fields, body).verify_slice(&raw).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inserted out of order: the content sorts them (AccessKey, b, topic).
    const FIELDS: [(&str, &str); 3] = [("topic", "TopicA"), (ACCESS_KEY, "ak1"), ("b", "x")];

    /// Base64(HmacSHA1("secret1", "ak1" + "x" + "TopicA" + "hello")), as rocketmq-acl 4.9.8's
    /// `AclUtils` prints it (the broker's `acl::signature` tests check the same vector).
    #[test]
    fn signature_matches_a_known_vector_of_the_java_recipe() {
        assert_eq!(
            sign("secret1", FIELDS, b"hello"),
            "Oh/tgtt8qKOJ2iONlE6/cL73Eb8="
        );
    }

    #[test]
    fn signature_field_and_unique_key_flag_are_not_signed() {
        let s = sign("secret1", FIELDS, b"hello");
        let mut with = FIELDS.to_vec();
        with.push((SIGNATURE, &s));
        with.push((UNIQUE_MSG_QUERY_FLAG, "true"));
        assert!(verify("secret1", with.iter().copied(), b"hello", &s));
        assert!(!verify("secret2", FIELDS, b"hello", &s), "another secret");
        assert!(!verify("secret1", FIELDS, b"hello", "not base64!"));
        assert!(!verify("secret1", FIELDS, b"hellO", &s), "a tampered body");
        with[0] = ("topic", "TopicB");
        assert!(!verify("secret1", with, b"hello", &s), "a tampered field");
    }
}
