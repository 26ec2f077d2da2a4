//! Types every Petrel role shares: the message model, the stored record format,
//! message ids, properties, topic configuration, the JSON bodies of the protocol and the ACL
//! request signature.
//! No I/O lives here.

pub mod acl_signature;
pub mod duration;
pub mod filter;
pub mod msg_id;
pub mod object_map;
pub mod properties;
pub mod protocol;
pub mod record;
pub mod register_body;
pub mod topic;
pub mod trace;
