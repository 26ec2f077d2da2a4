//! `ReceiptHandle`: what a POP consumer gets with each message it receives and hands back to
//! acknowledge it or change its invisible time. Opaque to clients; to the broker it names the
//! queue entry and the one delivery it belongs to.

use std::fmt;

/// One delivery of one queue entry.
///
/// `token` is unique per delivery, so a handle from an earlier delivery (the message became
/// visible again and went to someone else) cannot acknowledge a later one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptHandle {
    pub topic: String,
    pub queue_id: i32,
    pub queue_offset: i64,
    pub token: u64,
    /// When this delivery's invisible time ends (ms since the epoch).
    pub visible_at_ms: i64,
}

/// The format's version, first in every handle, so a later format can tell old handles apart.
const VERSION: &str = "p1";

impl fmt::Display for ReceiptHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The topic goes last: topic names may hold `_`, never `:`.
        write!(
            f,
            "{VERSION}:{}:{}:{:x}:{}:{}",
            self.queue_id, self.queue_offset, self.token, self.visible_at_ms, self.topic
        )
    }
}

impl ReceiptHandle {
    /// Reads a handle this broker issued; the error says what is wrong with it.
    pub fn parse(s: &str) -> Result<ReceiptHandle, String> {
        let bad = || format!("{s:?} is not a receipt handle this broker issued");
        let mut parts = s.splitn(6, ':');
        if parts.next() != Some(VERSION) {
            return Err(bad());
        }
        let mut next = || parts.next().ok_or_else(bad);
        let queue_id = next()?.parse().map_err(|_| bad())?;
        let queue_offset = next()?.parse().map_err(|_| bad())?;
        let token = u64::from_str_radix(next()?, 16).map_err(|_| bad())?;
        let visible_at_ms = next()?.parse().map_err(|_| bad())?;
        let topic = next()?.to_owned();
        if topic.is_empty() || queue_id < 0 || queue_offset < 0 {
            return Err(bad());
        }
        Ok(ReceiptHandle {
            topic,
            queue_id,
            queue_offset,
            token,
            visible_at_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handle_reads_back_as_written() {
        let h = ReceiptHandle {
            topic: "%RETRY%g_orders-1".into(),
            queue_id: 3,
            queue_offset: 1_234_567,
            token: 0xdead_beef,
            visible_at_ms: 1_790_000_000_000,
        };
        assert_eq!(ReceiptHandle::parse(&h.to_string()), Ok(h));
    }

    #[test]
    fn foreign_or_damaged_handles_are_refused() {
        for s in [
            "",
            "abc",
            "p1:1:2:3:4",
            "p0:1:2:3:4:T",
            "p1:x:2:3:4:T",
            "p1:1:-2:3:4:T",
            "p1:1:2:3:4:",
        ] {
            assert!(ReceiptHandle::parse(s).is_err(), "{s:?}");
        }
    }
}
