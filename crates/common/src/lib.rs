//! Types every Petrel role shares: the message model, the stored record format,
//! message ids, properties, topic configuration and the JSON bodies of the protocol.
//! No I/O lives here.

pub mod duration;
pub mod filter;
pub mod msg_id;
pub mod object_map;
pub mod properties;
pub mod protocol;
pub mod record;
pub mod topic;
