//! Who is calling: the request headers every 5.x client sends (`x-mq-client-id`, language,
//! version, namespace) and the connection it came over; and the v2 `Status` values every
//! response carries. Authentication headers (`authorization`, `x-mq-date-time`, ...) are
//! accepted and not read: Petrel's ACL does not cover the gRPC endpoint yet.

use std::net::SocketAddr;

use tonic::metadata::MetadataMap;

use crate::pb::{Code, Resource, Status};

/// What a connection tells about itself (the request extension tonic fills from
/// [`tonic::transport::server::Connected`]).
#[derive(Debug, Clone, Copy)]
pub struct PeerInfo {
    pub peer: SocketAddr,
}

/// The caller of one RPC.
#[derive(Debug, Clone)]
pub struct Caller {
    pub client_id: String,
    /// RocketMQ's remoting `LanguageCode` of the client's language (what admin listings show).
    pub language: u8,
    /// The client's version as RocketMQ's version number (`MQVersion` ordinal).
    pub version: i32,
    pub peer: SocketAddr,
}

pub const CLIENT_ID: &str = "x-mq-client-id";
pub const LANGUAGE: &str = "x-mq-language";
pub const CLIENT_VERSION: &str = "x-mq-client-version";

/// RocketMQ's version number of 5.0.0, for clients that say nothing parseable.
const VERSION_5_0_0: i32 = 413;
/// Remoting `LanguageCode`s.
const LANGUAGE_OTHER: u8 = 7;

impl Caller {
    /// The caller of a request with `metadata` over `peer`; a status CLIENT_ID_REQUIRED without
    /// the client id header.
    pub fn of(metadata: &MetadataMap, peer: Option<PeerInfo>) -> Result<Caller, Status> {
        let header = |name: &str| metadata.get(name).and_then(|v| v.to_str().ok());
        let client_id = header(CLIENT_ID)
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| {
                status(
                    Code::ClientIdRequired,
                    format!("the request header {CLIENT_ID} is required"),
                )
            })?;
        Ok(Caller {
            client_id: client_id.to_owned(),
            language: header(LANGUAGE).map_or(LANGUAGE_OTHER, language_code),
            version: header(CLIENT_VERSION).map_or(VERSION_5_0_0, version_code),
            peer: peer.map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |p| p.peer),
        })
    }
}

/// The remoting `LanguageCode` of an `x-mq-language` value (each client spells its own).
fn language_code(name: &str) -> u8 {
    match name.trim().to_ascii_uppercase().as_str() {
        "JAVA" => 0,
        "CPP" => 1,
        "DOTNET" | "DOT_NET" | "CSHARP" => 2,
        "PYTHON" => 3,
        "HTTP" => 8,
        "GO" | "GOLANG" => 9,
        "PHP" => 10,
        "RUST" => 12,
        "NODE_JS" | "NODEJS" => 13,
        _ => LANGUAGE_OTHER,
    }
}

/// RocketMQ's version number (the ordinal of `MQVersion.Version`) of a version such as `5.0.7`:
/// from 4.0.0 on, every x.y.z with y and z below 10 has a snapshot and a release entry.
fn version_code(version: &str) -> i32 {
    let mut parts = version
        .trim()
        .trim_start_matches(['v', 'V'])
        .split(['.', '-'])
        .map(|p| p.parse::<i32>().ok());
    match (parts.next(), parts.next(), parts.next()) {
        (Some(Some(major)), Some(Some(minor)), Some(Some(patch)))
            if (4..=5).contains(&major) && (0..10).contains(&minor) && (0..10).contains(&patch) =>
        {
            213 + 2 * ((major - 4) * 100 + minor * 10 + patch)
        }
        _ => VERSION_5_0_0,
    }
}

/// A status with `code` and `message`.
pub fn status(code: Code, message: impl Into<String>) -> Status {
    Status {
        code: code as i32,
        message: message.into(),
    }
}

/// Status OK.
pub fn ok() -> Status {
    status(Code::Ok, "OK")
}

/// The broker-side name of a topic or group: `<namespace>%<name>` when the client has a
/// namespace, else the name.
pub fn resource_name(r: &Resource) -> String {
    if r.resource_namespace.is_empty() {
        r.name.clone()
    } else {
        format!("{}%{}", r.resource_namespace, r.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_become_rocketmq_version_numbers() {
        assert_eq!(version_code("5.0.0"), 413);
        assert_eq!(version_code("4.9.8"), 409);
        assert_eq!(version_code("5.3.0"), 473);
        assert_eq!(version_code("5.0.7-SNAPSHOT"), 427);
        assert_eq!(version_code("1.0.8"), VERSION_5_0_0);
        assert_eq!(version_code(""), VERSION_5_0_0);
    }

    #[test]
    fn a_call_without_a_client_id_is_refused() {
        let mut m = MetadataMap::new();
        let refused = Caller::of(&m, None).unwrap_err();
        assert_eq!(refused.code, Code::ClientIdRequired as i32);
        m.insert(CLIENT_ID, "host@1@0@x".parse().unwrap());
        m.insert(LANGUAGE, "GOLANG".parse().unwrap());
        let c = Caller::of(&m, None).unwrap();
        assert_eq!(c.client_id, "host@1@0@x");
        assert_eq!(c.language, 9);
        assert_eq!(c.version, VERSION_5_0_0);
    }

    #[test]
    fn namespaces_prefix_names() {
        let r = |ns: &str, name: &str| Resource {
            resource_namespace: ns.into(),
            name: name.into(),
        };
        assert_eq!(resource_name(&r("", "T")), "T");
        assert_eq!(resource_name(&r("ns", "T")), "ns%T");
    }
}
