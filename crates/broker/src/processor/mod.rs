//! Request processors, one file per request family, and the dispatcher that routes a request
//! code to them. A processor turns a request into a response (or `None` for oneway requests
//! and pulls answered later); bad input becomes a response code with a remark, never a panic.

pub mod acl;
pub mod admin;
pub mod client;
pub mod lock;
pub mod offset;
pub mod pop;
pub mod pull;
pub mod query;
pub mod reset;
pub mod send;
pub mod send_back;
pub mod stats;
pub mod transaction;

use std::sync::Arc;
use std::time::Instant;

use petrel_remoting::code::{request, response};
use petrel_remoting::{not_supported, Connection, HeaderError, RemotingCommand, RequestHandler};

use crate::broker::Broker;

pub struct BrokerProcessor {
    broker: Arc<Broker>,
}

impl BrokerProcessor {
    pub fn new(broker: Arc<Broker>) -> Self {
        BrokerProcessor { broker }
    }
}

impl RequestHandler for BrokerProcessor {
    async fn handle(&self, conn: &Connection, req: RemotingCommand) -> Option<RemotingCommand> {
        let started = Instant::now();
        let code = req.code;
        let resp = match &self.broker.acl {
            Some(acl) => match acl.check(&req, conn.peer_addr().ip()) {
                Ok(()) => self.dispatch(conn, req).await,
                Err(remark) => {
                    tracing::debug!(code, peer = %conn.peer_addr(), "refused by ACL: {remark}");
                    (!req.is_oneway())
                        .then(|| RemotingCommand::error(&req, response::NO_PERMISSION, remark))
                }
            },
            None => self.dispatch(conn, req).await,
        };
        if let Some(r) = &resp {
            self.broker.metrics.rpc(code, r.code, started.elapsed());
        }
        resp
    }

    fn on_close(&self, conn: &Connection) {
        self.broker.producers.connection_closed(conn.id());
        for group in self.broker.consumers.connection_closed(conn.id()) {
            client::notify_consumer_ids_changed(&self.broker, &group);
        }
    }
}

impl BrokerProcessor {
    /// Routes a request to its processor.
    async fn dispatch(&self, conn: &Connection, req: RemotingCommand) -> Option<RemotingCommand> {
        let b = &self.broker;
        let resp = match req.code {
            request::SEND_MESSAGE | request::SEND_MESSAGE_V2 => {
                send::send_message(b, conn, &req).await
            }
            request::SEND_BATCH_MESSAGE => send::send_batch(b, conn, &req).await,
            request::CONSUMER_SEND_MSG_BACK => send_back::consumer_send_msg_back(b, &req).await,
            request::END_TRANSACTION => transaction::end_transaction(b, &req).await,
            request::PETREL_LIST_HALF_MESSAGES => transaction::list_half_messages(b, &req),
            request::PULL_MESSAGE | request::LITE_PULL_MESSAGE => {
                return pull::pull_message(b, conn, &req).await
            }
            request::POP_MESSAGE => pop::pop_message(b, conn, &req).await,
            request::ACK_MESSAGE => pop::ack_message(b, &req),
            request::CHANGE_MESSAGE_INVISIBLETIME => pop::change_invisible_time(b, &req),
            request::QUERY_ASSIGNMENT => pop::query_assignment(b, &req),
            request::SET_MESSAGE_REQUEST_MODE => pop::set_message_request_mode(b, &req),
            request::GET_ALL_MESSAGE_REQUEST_MODE => pop::get_all_message_request_mode(b, &req),
            request::QUERY_MESSAGE => query::query_message(b, &req),
            request::QUERY_CONSUMER_OFFSET => offset::query_consumer_offset(b, &req),
            request::UPDATE_CONSUMER_OFFSET => offset::update_consumer_offset(b, &req),
            request::GET_MAX_OFFSET => offset::get_max_offset(b, &req),
            request::GET_MIN_OFFSET => offset::get_min_offset(b, &req),
            request::SEARCH_OFFSET_BY_TIMESTAMP => offset::search_offset_by_timestamp(b, &req),
            request::GET_EARLIEST_MSG_STORETIME => offset::get_earliest_msg_storetime(b, &req),
            request::HEART_BEAT => client::heartbeat(b, conn, &req).await,
            request::UPDATE_AND_CREATE_TOPIC => admin::update_and_create_topic(b, &req).await,
            request::UNREGISTER_CLIENT => client::unregister_client(b, &req),
            request::GET_CONSUMER_LIST_BY_GROUP => client::get_consumer_list_by_group(b, &req),
            request::INVOKE_BROKER_TO_RESET_OFFSET => reset::invoke_broker_to_reset_offset(b, &req),
            request::LOCK_BATCH_MQ => lock::lock_batch_mq(b, &req),
            request::UNLOCK_BATCH_MQ => lock::unlock_batch_mq(b, &req),
            request::CHECK_CLIENT_CONFIG => client::check_client_config(b, &req),
            request::GET_CONSUMER_RUNNING_INFO | request::CONSUME_MESSAGE_DIRECTLY => {
                admin::call_consumer(b, &req).await
            }
            code => match admin::handle(b, code, &req).or_else(|| acl::handle(b, code, &req)) {
                Some(resp) => resp,
                None => {
                    tracing::debug!(code, "request code not supported");
                    not_supported(&req)
                }
            },
        };
        Some(resp)
    }
}

/// The response to a request whose header could not be read.
pub(crate) fn bad_header(req: &RemotingCommand, e: HeaderError) -> RemotingCommand {
    RemotingCommand::error(req, response::INVALID_PARAMETER, e.to_string())
}

/// The response to a failure writing broker metadata.
pub(crate) fn io_failure(req: &RemotingCommand, e: std::io::Error) -> RemotingCommand {
    RemotingCommand::error(
        req,
        response::SYSTEM_ERROR,
        format!("broker metadata write failed: {e}"),
    )
}
