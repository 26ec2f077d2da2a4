//! END_TRANSACTION (37): a producer's commit or rollback of a half message, after its local
//! transaction or in answer to CHECK_TRANSACTION_STATE. Java clients send it oneway, so a
//! refusal is also logged: it is the only trace the operator gets.

use std::sync::Arc;

use petrel_common::record::{SYSFLAG_TRANSACTION_COMMIT, SYSFLAG_TRANSACTION_ROLLBACK};
use petrel_remoting::headers::EndTransactionRequestHeader;
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
