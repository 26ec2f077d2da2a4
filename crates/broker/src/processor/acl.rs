//! mqadmin's ACL commands: UPDATE_AND_CREATE_ACL_CONFIG (`updateAclConfig`), DELETE_ACL_CONFIG
//! (`deleteAccessConfig`), UPDATE_GLOBAL_WHITE_ADDRS_CONFIG (`updateGlobalWhiteAddr`) and
//! GET_BROKER_CLUSTER_ACL_INFO (`clusterAclConfigVersion`). Turns a request header into a change
//! of `plain_acl.yml` (made by [`crate::acl::PlainAcl::change`]); `handle` returns `None` for
//! codes it does not serve. Only admins get here: the ACL check refuses these codes to others.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use petrel_remoting::code::{request, response};
use petrel_remoting::RemotingCommand;

use crate::acl::edit::{self, AccountUpdate};
use crate::acl::{AclChangeError, PlainAcl};
use crate::broker::Broker;

pub fn handle(b: &Arc<Broker>, code: i32, req: &RemotingCommand) -> Option<RemotingCommand> {
    if !matches!(
        code,
        request::UPDATE_AND_CREATE_ACL_CONFIG
            | request::DELETE_ACL_CONFIG
            | request::GET_BROKER_CLUSTER_ACL_INFO
            | request::UPDATE_GLOBAL_WHITE_ADDRS_CONFIG
    ) {
        return None;
    }
    let Some(acl) = &b.acl else {
        return Some(RemotingCommand::error(
            req,
            response::SYSTEM_ERROR,
            "ACL is off on this broker (aclEnable = false): there is no ACL config to read or change",
        ));
    };
    Some(match code {
        request::UPDATE_AND_CREATE_ACL_CONFIG => update_and_create(acl, req),
        request::DELETE_ACL_CONFIG => delete(acl, req),
        request::UPDATE_GLOBAL_WHITE_ADDRS_CONFIG => global_white_addrs(acl, req),
        _ => acl_info(b, acl, req),
    })
}

fn update_and_create(acl: &PlainAcl, req: &RemotingCommand) -> RemotingCommand {
    let field = |k: &str| req.ext_fields.get(k).map(str::to_owned);
    let Some(access_key) = field("accessKey") else {
        return missing(req, "accessKey");
    };
    let Some(secret_key) = field("secretKey") else {
        return missing(req, "secretKey");
    };
    let update = AccountUpdate {
        access_key,
        secret_key,
        white_remote_address: field("whiteRemoteAddress"),
        admin: field("admin").is_some_and(|a| a.eq_ignore_ascii_case("true")),
        default_topic_perm: field("defaultTopicPerm").filter(|p| !p.is_empty()),
        default_group_perm: field("defaultGroupPerm").filter(|p| !p.is_empty()),
        topic_perms: field("topicPerms").map(|p| edit::split_list(&p)),
        group_perms: field("groupPerms").map(|p| edit::split_list(&p)),
    };
    answer(req, acl.change(|doc| edit::update_account(doc, &update)))
}

fn delete(acl: &PlainAcl, req: &RemotingCommand) -> RemotingCommand {
    let Some(access_key) = req.ext_fields.get("accessKey") else {
        return missing(req, "accessKey");
    };
    answer(req, acl.change(|doc| edit::delete_account(doc, access_key)))
}

fn global_white_addrs(acl: &PlainAcl, req: &RemotingCommand) -> RemotingCommand {
    let Some(addrs) = req.ext_fields.get("globalWhiteAddrs") else {
        return missing(req, "globalWhiteAddrs");
    };
    // mqadmin's `-p`: 4.9.8 reads several files and lets this name one; Petrel reads one.
    if let Some(file) = req
        .ext_fields
        .get("aclFileFullPath")
        .filter(|f| !f.is_empty())
    {
        if Path::new(file) != acl.path() {
            return RemotingCommand::error(
                req,
                response::SYSTEM_ERROR,
                format!(
                    "aclFileFullPath {file} is not this broker's ACL file: Petrel reads one, {}",
                    acl.path().display()
                ),
            );
        }
    }
    let addrs = edit::split_list(addrs);
    answer(
        req,
        acl.change(|doc| {
            edit::set_global_white_addrs(doc, &addrs);
            Ok(())
        }),
    )
}

/// `GetBrokerAclConfigResponseHeader`: the version of the rules in force, also per file
/// (`allAclFileVersion`, the JSON map 4.9.8's mqadmin prints), and who this broker is.
fn acl_info(b: &Broker, acl: &PlainAcl, req: &RemotingCommand) -> RemotingCommand {
    let version = acl.version();
    let per_file = HashMap::from([(acl.path().display().to_string(), version)]);
    let mut resp = RemotingCommand::success(req);
    resp.ext_fields.insert("version", json(&version));
    resp.ext_fields.insert("allAclFileVersion", json(&per_file));
    resp.ext_fields
        .insert("brokerName", b.config.broker_name.clone());
    resp.ext_fields.insert("brokerAddr", b.broker_addr());
    resp.ext_fields
        .insert("clusterName", b.config.cluster_name.clone());
    resp
}

fn json(v: &impl serde::Serialize) -> String {
    serde_json::to_string(v).expect("versions and maps of them serialize")
}

fn missing(req: &RemotingCommand, field: &str) -> RemotingCommand {
    RemotingCommand::error(
        req,
        response::SYSTEM_ERROR,
        format!("the request carries no {field}"),
    )
}

/// SUCCESS, or SYSTEM_ERROR with the reason, as RocketMQ 4.9.8 answers these requests.
fn answer(req: &RemotingCommand, result: Result<(), AclChangeError>) -> RemotingCommand {
    match result {
        Ok(()) => RemotingCommand::success(req),
        Err(e) => {
            tracing::warn!(code = req.code, "ACL change refused: {e}");
            RemotingCommand::error(req, response::SYSTEM_ERROR, e.to_string())
        }
    }
}
