//! END_TRANSACTION (37): a producer's commit or rollback of a half message, after its local
//! transaction or in answer to CHECK_TRANSACTION_STATE. Java clients send it oneway, so a
//! refusal is also logged: it is the only trace the operator gets. And Petrel's own
//! PETREL_LIST_HALF_MESSAGES, for operators (`petrel admin half-messages`).

use std::sync::Arc;

use petrel_common::properties::{Properties, KEYS, REAL_QID, REAL_TOPIC, TRANSACTION_ID, UNIQ_KEY};
use petrel_common::protocol::{HalfMessageInfo, HalfMessageList};
use petrel_common::record::{self, SYSFLAG_TRANSACTION_COMMIT, SYSFLAG_TRANSACTION_ROLLBACK};
use petrel_remoting::code::response;
use petrel_remoting::headers::{EndTransactionRequestHeader, ListHalfMessagesRequestHeader};
use petrel_remoting::RemotingCommand;

use super::bad_header;
use crate::broker::Broker;
use crate::transaction::Outcome;

pub async fn end_transaction(b: &Arc<Broker>, req: &RemotingCommand) -> RemotingCommand {
    let h: EndTransactionRequestHeader = match req.decode_header() {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!("END_TRANSACTION with a bad header: {e}");
            return bad_header(req, e);
        }
    };
    let outcome = match h.commit_or_rollback {
        SYSFLAG_TRANSACTION_COMMIT => Outcome::Commit,
        SYSFLAG_TRANSACTION_ROLLBACK => Outcome::Rollback,
        // 0: the producer does not know yet; the half message waits for its check.
        _ => return RemotingCommand::success(req),
    };
    match b.end_transaction(&h, outcome).await {
        Ok(()) => RemotingCommand::success(req),
        Err(refused) => {
            tracing::warn!(
                group = %h.producer_group,
                msg_id = %h.msg_id,
                "END_TRANSACTION refused: {}",
                refused.remark
            );
            RemotingCommand::error(req, refused.code, refused.remark)
        }
    }
}

/// PETREL_LIST_HALF_MESSAGES: the pending half messages, oldest first, with where each goes
/// once committed (read back from its half record).
pub fn list_half_messages(b: &Broker, req: &RemotingCommand) -> RemotingCommand {
    let h: ListHalfMessagesRequestHeader = match req.decode_header() {
        Ok(h) => h,
        Err(e) => return bad_header(req, e),
    };
    let group = h.producer_group.as_deref().filter(|g| !g.is_empty());
    let mut list = HalfMessageList::default();
    for (half_queue_offset, half) in b.transactions.list(group) {
        let mut info = HalfMessageInfo {
            producer_group: half.producer_group.clone(),
            half_queue_offset,
            commit_log_offset: half.commit_log_offset,
            store_timestamp: half.stored_at_ms,
            next_check_timestamp: half.check_at_ms,
            check_times: half.checks,
            ..HalfMessageInfo::default()
        };
        let bytes = b.store.read_record(half.commit_log_offset);
        if let Some(rec) = bytes.as_deref().and_then(|b| record::decode(b, false).ok()) {
            let props = Properties::from_stored(rec.properties);
            let get = |name| props.get(name).unwrap_or_default().to_owned();
            info.msg_id = get(UNIQ_KEY);
            info.transaction_id = get(TRANSACTION_ID);
            info.topic = get(REAL_TOPIC);
            info.queue_id = props
                .get(REAL_QID)
                .and_then(|q| q.parse().ok())
                .unwrap_or(-1);
            info.keys = get(KEYS);
        }
        list.half_messages.push(info);
    }
    match serde_json::to_vec(&list) {
        Ok(body) => RemotingCommand::success(req).with_body(body),
        Err(e) => RemotingCommand::error(req, response::SYSTEM_ERROR, e.to_string()),
    }
}
