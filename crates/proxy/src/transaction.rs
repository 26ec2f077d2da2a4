//! EndTransaction, and the transaction ids this endpoint hands out. A gRPC client names a half
//! message only by the transaction id it got from SendMessage (or from a
//! RecoverOrphanedTransactionCommand), so the id carries what the broker's END_TRANSACTION
//! needs: the half message's offset in the half queue and in the commit log, as 32 upper-case
//! hex digits. The outcome is applied by the broker's own end-transaction logic.

use std::fmt;
use std::sync::Arc;

use petrel_broker::transaction::Outcome;
use petrel_broker::Broker;
use petrel_common::record::{SYSFLAG_TRANSACTION_COMMIT, SYSFLAG_TRANSACTION_ROLLBACK};
use petrel_remoting::headers::EndTransactionRequestHeader;

use crate::context::{ok, resource_name, status};
use crate::pb::{
    Code, EndTransactionRequest, EndTransactionResponse, TransactionResolution, TransactionSource,
};

/// Which half message a transaction id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransactionId {
    pub tran_state_table_offset: i64,
    pub commit_log_offset: i64,
}

impl fmt::Display for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:016X}{:016X}",
            self.tran_state_table_offset, self.commit_log_offset
        )
    }
}

impl std::str::FromStr for TransactionId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a transaction id of this broker");
        if s.len() != 32 || !s.is_ascii() {
            return Err(bad());
        }
        let (a, b) = s.split_at(16);
        let parse = |h: &str| {
            u64::from_str_radix(h, 16)
                .map(|v| v as i64)
                .map_err(|_| bad())
        };
        Ok(TransactionId {
            tran_state_table_offset: parse(a)?,
            commit_log_offset: parse(b)?,
        })
    }
}

/// Commits or rolls back the half message the request's transaction id names. The half
/// message's producer group is its topic (what SendMessage stored it with).
pub async fn end_transaction(
    b: &Arc<Broker>,
    req: EndTransactionRequest,
) -> EndTransactionResponse {
    let answer = |status| EndTransactionResponse {
        status: Some(status),
    };
    let topic = req.topic.as_ref().map(resource_name).unwrap_or_default();
    let id: TransactionId = match req.transaction_id.parse() {
        Ok(id) => id,
        Err(e) => return answer(status(Code::InvalidTransactionId, e)),
    };
    let (outcome, flag) = match TransactionResolution::try_from(req.resolution) {
        Ok(TransactionResolution::Commit) => (Outcome::Commit, SYSFLAG_TRANSACTION_COMMIT),
        Ok(TransactionResolution::Rollback) => (Outcome::Rollback, SYSFLAG_TRANSACTION_ROLLBACK),
        // Not known yet: the half message waits for its check.
        _ => return answer(ok()),
    };
    let h = EndTransactionRequestHeader {
        topic: Some(topic.clone()),
        producer_group: topic,
        tran_state_table_offset: id.tran_state_table_offset,
        commit_log_offset: id.commit_log_offset,
        commit_or_rollback: flag,
        from_transaction_check: Some(req.source == TransactionSource::SourceServerCheck as i32),
        msg_id: req.message_id,
        transaction_id: Some(req.transaction_id),
    };
    match b.end_transaction(&h, outcome).await {
        Ok(()) => answer(ok()),
        Err(refused) => {
            tracing::warn!(topic = %h.producer_group, msg_id = %h.msg_id, "gRPC EndTransaction refused: {}", refused.remark);
            answer(status(Code::InvalidTransactionId, refused.remark))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_ids_round_trip() {
        let id = TransactionId {
            tran_state_table_offset: 7,
            commit_log_offset: 1 << 40,
        };
        let s = id.to_string();
        assert_eq!(s, "00000000000000070000010000000000");
        assert_eq!(s.parse::<TransactionId>().unwrap(), id);
        assert!("xyz".parse::<TransactionId>().is_err());
        assert!("0000000000000007000001000000000G"
            .parse::<TransactionId>()
            .is_err());
        assert!("é".repeat(16).parse::<TransactionId>().is_err());
    }
}
