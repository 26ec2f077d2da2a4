//! CONSUME_MESSAGE_DIRECTLY (`mqadmin queryMsgById -g -d`, the dashboard's resend): a broker
//! hands a consumer one stored message to run through the group's listener now, outside its
//! queues; the answer is Java's ConsumeMessageDirectlyResult. No offset moves and nothing is
//! sent back on failure: the caller only learns what the listener said.

use std::time::Instant;

use petrel_remoting::code::response;
use petrel_remoting::RemotingCommand;
use serde::Serialize;

use super::{ConsumeOrderlyStatus, ConsumeStatus, Listener};
use crate::message::decode_messages;

/// Java's ConsumeMessageDirectlyResult.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DirectResult {
    order: bool,
    auto_commit: bool,
    /// CR_SUCCESS or CR_LATER (CMResult).
    consume_result: &'static str,
    remark: String,
    spent_time_mills: u64,
}

/// Runs the message `req` carries through `listener` (`None`: the group has no consumer here).
pub(crate) async fn consume_directly(
    listener: Option<Listener>,
    req: &RemotingCommand,
) -> RemotingCommand {
    let group = req
        .ext_fields
        .get("consumerGroup")
        .unwrap_or_default()
        .to_owned();
    let Some(listener) = listener else {
        return RemotingCommand::error(
            req,
            response::SYSTEM_ERROR,
            format!("no consumer of group {group} in this client"),
        );
    };
    let msgs = match decode_messages(&req.body_bytes()) {
        Ok(m) if !m.is_empty() => m,
        Ok(_) => {
            return RemotingCommand::error(req, response::SYSTEM_ERROR, "no message to consume")
        }
        Err(e) => {
            return RemotingCommand::error(req, response::SYSTEM_ERROR, format!("bad message: {e}"))
        }
    };
    let order = matches!(listener, Listener::Orderly(_));
    let started = Instant::now();
    // The listener is the application's code: off the async workers.
    let ran = tokio::task::spawn_blocking(move || match listener {
        Listener::Concurrently(f) => match f(&msgs) {
            ConsumeStatus::Success => "CR_SUCCESS",
            ConsumeStatus::Later => "CR_LATER",
        },
        Listener::Orderly(f) => match f(&msgs) {
            ConsumeOrderlyStatus::Success => "CR_SUCCESS",
            ConsumeOrderlyStatus::SuspendCurrentQueueAMoment => "CR_LATER",
        },
    })
    .await;
    let (consume_result, remark) = match ran {
        Ok(r) => (r, String::new()),
        Err(e) => ("CR_THROW_EXCEPTION", format!("the listener failed: {e}")),
    };
    let result = DirectResult {
        order,
        auto_commit: true,
        consume_result,
        remark,
        spent_time_mills: started.elapsed().as_millis() as u64,
    };
    let body = serde_json::to_vec(&result).unwrap_or_default();
    RemotingCommand::success(req).with_body(body)
}
