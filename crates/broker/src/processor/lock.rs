//! LOCK_BATCH_MQ and UNLOCK_BATCH_MQ: the queue locks of orderly consumers (reference §2.11).
//! One broker answers for its own lock table only; `onlyThisBroker` is accepted and has nothing
//! to forward to, since a replica group has no second master here.

use petrel_common::protocol::{
    LockBatchRequestBody, LockBatchResponseBody, UnlockBatchRequestBody,
};
use petrel_common::topic::validate_group;
use petrel_remoting::code::response;
use petrel_remoting::RemotingCommand;

use crate::broker::Broker;

/// Reads and checks a lock or unlock body; Err is the response to send.
fn decode_body(req: &RemotingCommand, what: &str) -> Result<LockBatchRequestBody, RemotingCommand> {
    let body: LockBatchRequestBody = serde_json::from_slice(&req.body_bytes()).map_err(|e| {
        RemotingCommand::error(
            req,
            response::INVALID_PARAMETER,
            format!("the {what} body is not valid JSON of consumerGroup, clientId, mqSet: {e}"),
        )
    })?;
    if let Err(e) = validate_group(&body.consumer_group) {
        return Err(RemotingCommand::error(req, response::INVALID_PARAMETER, e));
    }
    if body.client_id.trim().is_empty() {
        return Err(RemotingCommand::error(
            req,
            response::INVALID_PARAMETER,
            format!("the {what} body has no clientId"),
        ));
    }
    Ok(body)
}

pub fn lock_batch_mq(b: &Broker, req: &RemotingCommand) -> RemotingCommand {
    let body = match decode_body(req, "LOCK_BATCH_MQ") {
        Ok(body) => body,
        Err(resp) => return resp,
    };
    let lock_ok_mq_set =
        b.rebalance_locks
            .try_lock_batch(&body.consumer_group, &body.mq_set, &body.client_id);
    match serde_json::to_vec(&LockBatchResponseBody { lock_ok_mq_set }) {
        Ok(json) => RemotingCommand::success(req).with_body(json),
        Err(e) => RemotingCommand::error(
            req,
            response::SYSTEM_ERROR,
            format!("could not encode the lock answer: {e}"),
        ),
    }
}

pub fn unlock_batch_mq(b: &Broker, req: &RemotingCommand) -> RemotingCommand {
    let body: UnlockBatchRequestBody = match decode_body(req, "UNLOCK_BATCH_MQ") {
        Ok(body) => body,
        Err(resp) => return resp,
    };
    b.rebalance_locks
        .unlock_batch(&body.consumer_group, &body.mq_set, &body.client_id);
    RemotingCommand::success(req)
}
