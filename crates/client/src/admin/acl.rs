//! The plain-ACL admin requests mqadmin sends (`updateAclConfig`, `deleteAccessConfig`,
//! `updateGlobalWhiteAddr`, `clusterAclConfigVersion`), to one broker each: the fields go as
//! extFields, under the names of 4.9.8's request headers. The broker only takes them from an
//! admin account, so the client instance must sign with one. Never prints a secret.

use std::collections::BTreeMap;

use petrel_common::topic::DataVersion;
use petrel_remoting::code::request;
use petrel_remoting::RemotingCommand;

use super::Admin;
use crate::error::{ClientError, Result};

/// An account to create, or the new settings of an existing one (`PlainAccessConfig`). `None`
/// leaves a setting as the broker has it (a new account: RocketMQ's default).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AclAccountConfig {
    pub access_key: String,
    pub secret_key: String,
    /// An address pattern (`192.168.0.*`, `10.1.1.1,10.1.1.2`) from which the account passes
    /// without a signature.
    pub white_remote_address: Option<String>,
    /// DENY, PUB, SUB or PUB|SUB for topics not in `topic_perms`.
    pub default_topic_perm: Option<String>,
    pub default_group_perm: Option<String>,
    /// `Topic=PERM` entries.
    pub topic_perms: Option<Vec<String>>,
    /// `Group=PERM` entries.
    pub group_perms: Option<Vec<String>>,
    pub admin: bool,
}

/// One broker's answer to GET_BROKER_CLUSTER_ACL_INFO.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerAclVersion {
    pub cluster_name: String,
    pub broker_name: String,
    pub broker_addr: String,
    /// The version of the rules in force.
    pub version: DataVersion,
    /// The version per ACL file (Petrel reads one).
    pub file_versions: BTreeMap<String, DataVersion>,
}

impl Admin {
    /// UPDATE_AND_CREATE_ACL_CONFIG: creates the account or replaces the settings given.
    pub async fn update_acl_config(
        &self,
        broker_addr: &str,
        account: &AclAccountConfig,
    ) -> Result<()> {
        if account.access_key.is_empty() || account.secret_key.is_empty() {
            return Err(ClientError::InvalidArgument(
                "an account needs an access key and a secret key".into(),
            ));
        }
        let mut cmd = RemotingCommand::request(request::UPDATE_AND_CREATE_ACL_CONFIG);
        let f = &mut cmd.ext_fields;
        f.insert("accessKey", account.access_key.as_str());
        f.insert("secretKey", account.secret_key.as_str());
        if let Some(v) = &account.white_remote_address {
            f.insert("whiteRemoteAddress", v.as_str());
        }
        if let Some(v) = &account.default_topic_perm {
            f.insert("defaultTopicPerm", v.as_str());
        }
        if let Some(v) = &account.default_group_perm {
            f.insert("defaultGroupPerm", v.as_str());
        }
        if let Some(v) = &account.topic_perms {
            f.insert("topicPerms", v.join(","));
        }
        if let Some(v) = &account.group_perms {
            f.insert("groupPerms", v.join(","));
        }
        f.insert("admin", account.admin.to_string());
        self.call(broker_addr, cmd).await.map(|_| ())
    }

    /// DELETE_ACL_CONFIG: removes the account with `access_key`.
    pub async fn delete_acl_config(&self, broker_addr: &str, access_key: &str) -> Result<()> {
        let mut cmd = RemotingCommand::request(request::DELETE_ACL_CONFIG);
        cmd.ext_fields.insert("accessKey", access_key);
        self.call(broker_addr, cmd).await.map(|_| ())
    }

    /// UPDATE_GLOBAL_WHITE_ADDRS_CONFIG: replaces the global whitelist (address patterns from
    /// which any request passes unsigned).
    pub async fn update_global_white_addrs(
        &self,
        broker_addr: &str,
        addrs: &[String],
    ) -> Result<()> {
        let mut cmd = RemotingCommand::request(request::UPDATE_GLOBAL_WHITE_ADDRS_CONFIG);
        cmd.ext_fields.insert("globalWhiteAddrs", addrs.join(","));
        self.call(broker_addr, cmd).await.map(|_| ())
    }

    /// GET_BROKER_CLUSTER_ACL_INFO: the version of the broker's ACL rules.
    pub async fn acl_config_version(&self, broker_addr: &str) -> Result<BrokerAclVersion> {
        let cmd = RemotingCommand::request(request::GET_BROKER_CLUSTER_ACL_INFO);
        let resp = self.call(broker_addr, cmd).await?;
        let field = |k: &str| resp.ext_fields.get(k).unwrap_or_default().to_owned();
        let version = match resp.ext_fields.get("version") {
            Some(v) => serde_json::from_str(v)
                .map_err(|e| ClientError::Decode(format!("ACL version: {e}")))?,
            None => return Err(ClientError::Decode("the answer carries no version".into())),
        };
        let file_versions = match resp.ext_fields.get("allAclFileVersion") {
            Some(v) => serde_json::from_str(v)
                .map_err(|e| ClientError::Decode(format!("ACL file versions: {e}")))?,
            None => BTreeMap::new(),
        };
        Ok(BrokerAclVersion {
            cluster_name: field("clusterName"),
            broker_name: field("brokerName"),
            broker_addr: field("brokerAddr"),
            version,
            file_versions,
        })
    }
}
