//! The classic HA wire's two units, as 4.x `DefaultHAConnection` / `DefaultHAClient` put them on
//! the socket (big-endian): the slave's 8-byte report of its commit-log max offset, and the
//! master's 12-byte transfer header `[phyOffset i64][bodySize i32]` in front of raw commit-log
//! bytes (bodySize 0 is the idle heartbeat). Owns encoding and the "is a whole unit here yet"
//! checks; never touches a socket or the store.

/// Bytes of the slave's offset report.
pub const REPORT_BYTES: usize = 8;
/// Bytes of the master's transfer header.
pub const TRANSFER_HEADER_BYTES: usize = 12;
/// `haTransferBatchSize`: the most commit-log bytes a Petrel master puts in one transfer
/// (32 KiB, RocketMQ's default).
pub const HA_TRANSFER_BATCH_BYTES: usize = 32 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("transfer header has a negative body size {0}")]
    NegativeBodySize(i32),
    #[error("transfer body of {size} bytes exceeds the {limit}-byte limit")]
    BodyTooLarge { size: i32, limit: usize },
    #[error("transfer starts at offset {got}, the slave's log ends at {expected}")]
    OffsetMismatch { expected: i64, got: i64 },
}

pub fn encode_report(max_offset: i64) -> [u8; REPORT_BYTES] {
    max_offset.to_be_bytes()
}

/// The last whole report in `buf` (the master acts on the newest one only) and how many bytes
/// the whole reports take; `None` while fewer than 8 bytes have arrived.
pub fn last_report(buf: &[u8]) -> Option<(i64, usize)> {
    let whole = buf.len() - buf.len() % REPORT_BYTES;
    if whole == 0 {
        return None;
    }
    let last = &buf[whole - REPORT_BYTES..whole];
    Some((i64::from_be_bytes(last.try_into().ok()?), whole))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferHeader {
    /// Commit-log offset of the body's first byte.
    pub phy_offset: i64,
    pub body_size: i32,
}

impl TransferHeader {
    pub fn encode(&self) -> [u8; TRANSFER_HEADER_BYTES] {
        let mut out = [0u8; TRANSFER_HEADER_BYTES];
        out[..8].copy_from_slice(&self.phy_offset.to_be_bytes());
        out[8..].copy_from_slice(&self.body_size.to_be_bytes());
        out
    }

    /// Decodes a header from exactly 12 bytes, refusing bodies larger than `max_body` (a
    /// master never sends more than one commit-log segment holds).
    pub fn decode(
        buf: &[u8; TRANSFER_HEADER_BYTES],
        max_body: usize,
    ) -> Result<TransferHeader, WireError> {
        let phy_offset = i64::from_be_bytes(buf[..8].try_into().expect("8 bytes"));
        let body_size = i32::from_be_bytes(buf[8..].try_into().expect("4 bytes"));
        if body_size < 0 {
            return Err(WireError::NegativeBodySize(body_size));
        }
        if body_size as usize > max_body {
            return Err(WireError::BodyTooLarge {
                size: body_size,
                limit: max_body,
            });
        }
        Ok(TransferHeader {
            phy_offset,
            body_size,
        })
    }

    /// The slave appends only at its own log end; a transfer anywhere else means the two logs
    /// disagree and the connection must be dropped.
    pub fn check_continues(&self, slave_max_offset: i64) -> Result<(), WireError> {
        if self.phy_offset == slave_max_offset {
            Ok(())
        } else {
            Err(WireError::OffsetMismatch {
                expected: slave_max_offset,
                got: self.phy_offset,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_is_eight_big_endian_bytes() {
        assert_eq!(
            encode_report(0x0102_0304_0506_0708),
            [1, 2, 3, 4, 5, 6, 7, 8]
        );
    }

    #[test]
    fn master_uses_the_last_whole_report_and_keeps_a_partial_one() {
        let mut buf = Vec::new();
        buf.extend_from_slice(&encode_report(100));
        buf.extend_from_slice(&encode_report(4096));
        buf.extend_from_slice(&[0, 0, 0]);
        assert_eq!(last_report(&buf), Some((4096, 16)));
        assert_eq!(last_report(&buf[..7]), None);
    }

    #[test]
    fn transfer_header_round_trips() {
        let h = TransferHeader {
            phy_offset: 1 << 30,
            body_size: 32 * 1024,
        };
        let bytes = h.encode();
        assert_eq!(&bytes[..8], &(1i64 << 30).to_be_bytes());
        assert_eq!(&bytes[8..], &(32 * 1024i32).to_be_bytes());
        assert_eq!(
            TransferHeader::decode(&bytes, HA_TRANSFER_BATCH_BYTES),
            Ok(h)
        );
    }

    #[test]
    fn heartbeat_has_an_empty_body() {
        let h = TransferHeader::decode(
            &TransferHeader {
                phy_offset: 77,
                body_size: 0,
            }
            .encode(),
            HA_TRANSFER_BATCH_BYTES,
        )
        .unwrap();
        assert_eq!(h.body_size, 0);
        assert!(h.check_continues(77).is_ok());
    }

    #[test]
    fn impossible_sizes_and_gaps_are_refused() {
        let neg = TransferHeader {
            phy_offset: 0,
            body_size: -1,
        }
        .encode();
        assert_eq!(
            TransferHeader::decode(&neg, HA_TRANSFER_BATCH_BYTES),
            Err(WireError::NegativeBodySize(-1))
        );
        let big = TransferHeader {
            phy_offset: 0,
            body_size: HA_TRANSFER_BATCH_BYTES as i32 + 1,
        }
        .encode();
        assert!(matches!(
            TransferHeader::decode(&big, HA_TRANSFER_BATCH_BYTES),
            Err(WireError::BodyTooLarge { .. })
        ));
        let h = TransferHeader {
            phy_offset: 200,
            body_size: 10,
        };
        assert_eq!(
            h.check_continues(100),
            Err(WireError::OffsetMismatch {
                expected: 100,
                got: 200
            })
        );
    }
}
