//! Transactional sends (reference §2.10, §6.4): a half message, the local transaction, then
//! END_TRANSACTION with its outcome; and the answer to the broker's CHECK_TRANSACTION_STATE for
//! a transaction whose outcome it never got (from any instance of the producer group).

use std::sync::Arc;

use petrel_common::msg_id::decode_offset_msg_id;
use petrel_common::properties::{PGROUP, UNIQ_KEY};
use petrel_common::record::{SYSFLAG_TRANSACTION_COMMIT, SYSFLAG_TRANSACTION_ROLLBACK};
use petrel_remoting::code::request;
use petrel_remoting::headers::{CheckTransactionStateRequestHeader, EndTransactionRequestHeader};
use petrel_remoting::{Connection, RemotingCommand};

use crate::config::Credentials;
use crate::error::{ClientError, Result};
use crate::message::{decode_messages, MessageExt};
use crate::producer::SendResult;

/// What a local transaction concluded (Java's `LocalTransactionState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalTransactionState {
    Commit,
    Rollback,
    /// Not known yet: the broker checks back later.
    Unknown,
}

impl LocalTransactionState {
    /// The `commitOrRollback` value of END_TRANSACTION.
    fn wire(self) -> i32 {
        match self {
            LocalTransactionState::Commit => SYSFLAG_TRANSACTION_COMMIT,
            LocalTransactionState::Rollback => SYSFLAG_TRANSACTION_ROLLBACK,
            LocalTransactionState::Unknown => 0,
        }
    }
}

/// Answers the broker's check of a transaction: the local transaction's state for `msg`.
pub type TransactionChecker = Arc<dyn Fn(&MessageExt) -> LocalTransactionState + Send + Sync>;

/// A transactional send's outcome: the half message's send result and what the local
/// transaction concluded (and the broker was told).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionSendResult {
    pub send: SendResult,
    pub local_state: LocalTransactionState,
}

/// END_TRANSACTION for the half message `send` of `group`.
pub(crate) fn end_request(
    group: &str,
    send: &SendResult,
    state: LocalTransactionState,
) -> Result<RemotingCommand> {
    let (_, commit_log_offset) = decode_offset_msg_id(&send.offset_msg_id).ok_or_else(|| {
        ClientError::InvalidArgument(format!(
            "the broker's message id {} does not decode",
            send.offset_msg_id
        ))
    })?;
    let header = EndTransactionRequestHeader {
        topic: Some(send.queue.topic.clone()),
        producer_group: group.to_owned(),
        tran_state_table_offset: send.queue_offset,
        commit_log_offset,
        commit_or_rollback: state.wire(),
        from_transaction_check: Some(false),
        msg_id: send.msg_id.clone(),
        transaction_id: Some(send.msg_id.clone()),
    };
    Ok(RemotingCommand::request_with_header(
        request::END_TRANSACTION,
        &header,
    ))
}

/// Answers CHECK_TRANSACTION_STATE on `conn` with the checker registered for the message's
/// producer group; a check for a group without one is ignored (another instance may answer).
pub(crate) async fn answer_check(
    conn: Connection,
    req: RemotingCommand,
    credentials: Option<Credentials>,
    checker_of: impl Fn(&str) -> Option<TransactionChecker>,
) {
    let h: CheckTransactionStateRequestHeader = match req.decode_header() {
        Ok(h) => h,
        Err(e) => return tracing::warn!("ignoring CHECK_TRANSACTION_STATE: {e}"),
    };
    let msg = match decode_messages(&req.body_bytes()) {
        Ok(mut msgs) if msgs.len() == 1 => msgs.remove(0),
        Ok(msgs) => {
            return tracing::warn!("CHECK_TRANSACTION_STATE carries {} messages", msgs.len())
        }
        Err(e) => return tracing::warn!("CHECK_TRANSACTION_STATE with a bad body: {e}"),
    };
    let Some(group) = msg.properties.get(PGROUP).map(str::to_owned) else {
        return tracing::warn!("CHECK_TRANSACTION_STATE for a message without PGROUP");
    };
    let Some(checker) = checker_of(&group) else {
        return tracing::debug!(group, "no transaction checker for the group");
    };
    let state = checker(&msg);
    let uniq_key = msg
        .properties
        .get(UNIQ_KEY)
        .map(str::to_owned)
        .or(h.msg_id.clone())
        .unwrap_or_default();
    let header = EndTransactionRequestHeader {
        topic: Some(msg.topic.clone()),
        producer_group: group,
        tran_state_table_offset: h.tran_state_table_offset,
        commit_log_offset: h.commit_log_offset,
        commit_or_rollback: state.wire(),
        from_transaction_check: Some(true),
        msg_id: uniq_key,
        transaction_id: h.transaction_id,
    };
    let mut end = RemotingCommand::request_with_header(request::END_TRANSACTION, &header);
    if let Some(credentials) = &credentials {
        credentials.sign(&mut end);
    }
    if let Err(e) = conn.oneway(end).await {
        tracing::warn!("could not answer a transaction check: {e}");
    }
}
