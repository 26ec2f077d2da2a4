//! Types every Petrel role shares: the message model, the stored record format,
//! message ids, properties and topic configuration. No I/O lives here.

pub mod record;
