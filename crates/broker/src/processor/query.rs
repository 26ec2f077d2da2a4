//! QUERY_MESSAGE: messages of a topic by key (KEYS or UNIQ_KEY) within a store-time range,
//! answered from the store's index. VIEW_MESSAGE_BY_ID, the other way to look a message up,
//! lives in `admin.rs` with the other `mqadmin` reads.

use petrel_remoting::code::response;
use petrel_remoting::headers::{QueryMessageRequestHeader, QueryMessageResponseHeader};
use petrel_remoting::{Body, RemotingCommand};

use super::bad_header;
use crate::broker::Broker;

/// extField marking a lookup by UNIQ_KEY (the client's message id) rather than by KEYS.
pub const UNIQUE_KEY_QUERY: &str = "_UNIQUE_KEY_QUERY";
/// `defaultQueryMaxNum`: how many messages a UNIQ_KEY lookup returns, whatever maxNum says.
pub const DEFAULT_QUERY_MAX_NUM: usize = 32;

pub fn query_message(b: &Broker, req: &RemotingCommand) -> RemotingCommand {
    let h: QueryMessageRequestHeader = match req.decode_header() {
        Ok(h) => h,
        Err(e) => return bad_header(req, e),
    };
    let max_num = if req.ext_fields.get(UNIQUE_KEY_QUERY) == Some("true") {
        DEFAULT_QUERY_MAX_NUM
    } else {
        usize::try_from(h.max_num).unwrap_or(0)
    };
    let r = b.store.query_by_key(
        &h.topic,
        &h.key,
        max_num,
        h.begin_timestamp,
        h.end_timestamp,
    );
    let header = QueryMessageResponseHeader {
        index_last_update_timestamp: r.index_last_update_timestamp,
        index_last_update_phyoffset: r.index_last_update_phyoffset,
    };
    if r.messages.is_empty() {
        return RemotingCommand::error(
            req,
            response::QUERY_NOT_FOUND,
            "can not find message, maybe time range not correct",
        )
        .with_header(&header);
    }
    let mut resp = RemotingCommand::success(req).with_header(&header);
    resp.body = Body::Chunks(r.messages);
    resp
}
