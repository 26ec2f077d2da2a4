//! Freshness of signed sends: RocketMQ 4.x's `AclClientRPCHook` signature carries no timestamp
//! or nonce, so a captured signed request would stay valid for ever. A send's signed header does
//! carry the producer's clock (`bornTimestamp`, `g` in the V2 header), and a message's UNIQ_KEY
//! makes two sends differ, so for SEND_MESSAGE, SEND_MESSAGE_V2 and SEND_BATCH_MESSAGE this
//! refuses a born timestamp further than the window from the broker's clock (either way), and
//! a signature already seen within the window.
//!
//! Seen signatures are kept as 64-bit digests in one set per second of born timestamp, in a
//! ring of `2 × window + 2` slots: a replay carries the same (signed) born timestamp, so it can
//! only be accepted while that second is within the window, and its slot is still there. The
//! sets hold at most `max_entries` digests in all; past that a fresh signature is let through
//! unrecorded, counted in [`ReplayGuard::overflows`] and logged at most once a second. Other
//! requests (pull, heartbeat) legitimately repeat byte for byte and are never looked at here.

use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use petrel_remoting::code::request;
use petrel_remoting::RemotingCommand;

/// `aclSignatureMaxAgeSec`'s default: how far a signed send's born timestamp may be from the
/// broker's clock, either way.
pub const DEFAULT_ACL_SIGNATURE_MAX_AGE_SEC: u64 = 120;
/// `aclReplayCacheMaxEntries`'s default: signatures remembered at most (≤ 21 bytes each).
pub const DEFAULT_ACL_REPLAY_CACHE_MAX_ENTRIES: usize = 1 << 21;

/// The header field holding the born timestamp: V1 and batch headers, V2's short name.
const BORN_TIMESTAMP: &str = "bornTimestamp";
const BORN_TIMESTAMP_V2: &str = "g";

/// Whether a request is a send whose signature must be fresh and new.
pub fn is_signed_send(code: i32) -> bool {
    matches!(
        code,
        request::SEND_MESSAGE | request::SEND_MESSAGE_V2 | request::SEND_BATCH_MESSAGE
    )
}

/// The window and the seen signatures. Off (`max_age_sec` 0) it checks nothing.
pub struct ReplayGuard {
    max_age_ms: i64,
    max_age_sec: u64,
    /// Keys the 64-bit digests, randomly per broker.
    digests: RandomState,
    seen: Mutex<SeenSignatures>,
    overflows: AtomicU64,
    last_overflow_log_sec: AtomicU64,
}

impl ReplayGuard {
    pub fn new(max_age_sec: u64, max_entries: usize) -> ReplayGuard {
        let slots = if max_age_sec == 0 {
            0
        } else {
            2 * max_age_sec as usize + 2
        };
        ReplayGuard {
            max_age_ms: (max_age_sec as i64).saturating_mul(1000),
            max_age_sec,
            digests: RandomState::new(),
            seen: Mutex::new(SeenSignatures::new(slots, max_age_sec as i64, max_entries)),
            overflows: AtomicU64::new(0),
            last_overflow_log_sec: AtomicU64::new(0),
        }
    }

    /// Fresh signatures let through unrecorded because the cache was full.
    pub fn overflows(&self) -> u64 {
        self.overflows.load(Ordering::Relaxed)
    }

    /// Checks a send whose `signature` of `access_key` has just been verified, at the broker's
    /// `now_ms`; `Err` is the NO_PERMISSION remark. Records the signature when it passes.
    pub fn admit(
        &self,
        req: &RemotingCommand,
        access_key: &str,
        signature: &str,
        now_ms: i64,
    ) -> Result<(), String> {
        if self.max_age_ms == 0 || !is_signed_send(req.code) {
            return Ok(());
        }
        let born = req
            .ext_fields
            .get(BORN_TIMESTAMP)
            .or_else(|| req.ext_fields.get(BORN_TIMESTAMP_V2))
            .and_then(|v| v.parse::<i64>().ok())
            .ok_or_else(|| {
                format!("the signed send of accessKey {access_key} carries no bornTimestamp")
            })?;
        let max = self.max_age_sec;
        if now_ms.saturating_sub(born) > self.max_age_ms {
            return Err(format!(
                "expired signature for accessKey {access_key}: bornTimestamp {born} is {} s \
                 before the broker's clock, more than aclSignatureMaxAgeSec {max}",
                (now_ms - born) / 1000
            ));
        }
        if born.saturating_sub(now_ms) > self.max_age_ms {
            return Err(format!(
                "signature for accessKey {access_key} not yet valid: bornTimestamp {born} is {} \
                 s after the broker's clock, more than aclSignatureMaxAgeSec {max}",
                (born - now_ms) / 1000
            ));
        }
        let digest = self.digests.hash_one(signature);
        let recorded =
            self.seen
                .lock()
                .insert(born.div_euclid(1000), digest, now_ms.div_euclid(1000));
        match recorded {
            Recorded::New => Ok(()),
            Recorded::Seen => Err(format!(
                "replayed signature for accessKey {access_key}: this signed send was already \
                 received within aclSignatureMaxAgeSec {max}"
            )),
            Recorded::Full => {
                let total = self.overflows.fetch_add(1, Ordering::Relaxed) + 1;
                let sec = (now_ms / 1000) as u64;
                if self.last_overflow_log_sec.swap(sec, Ordering::Relaxed) != sec {
                    tracing::warn!(
                        total,
                        "ACL replay cache full (aclReplayCacheMaxEntries): fresh signed sends \
                         pass without being remembered"
                    );
                }
                Ok(())
            }
        }
    }
}

/// A hasher that passes a digest through: the keys are already keyed hashes.
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type DigestSet = HashSet<u64, BuildHasherDefault<IdentityHasher>>;

#[derive(Debug, PartialEq, Eq)]
enum Recorded {
    New,
    Seen,
    /// Not seen, and not recorded: the cache holds `max_entries`.
    Full,
}

/// The ring of per-second sets.
struct SeenSignatures {
    /// `(second, digests)`; a slot whose second is not the one asked for is stale and reused.
    slots: Vec<(i64, DigestSet)>,
    window_sec: i64,
    entries: usize,
    max_entries: usize,
}

impl SeenSignatures {
    fn new(slots: usize, window_sec: i64, max_entries: usize) -> Self {
        SeenSignatures {
            slots: (0..slots)
                .map(|_| (i64::MIN, DigestSet::default()))
                .collect(),
            window_sec,
            entries: 0,
            max_entries,
        }
    }

    /// Records `digest` under born second `second`, which the caller has checked lies within
    /// the window around `now_sec`, so a slot of another second is outside it and can go.
    fn insert(&mut self, second: i64, digest: u64, now_sec: i64) -> Recorded {
        let n = self.slots.len() as i64;
        let i = second.rem_euclid(n) as usize;
        if self.slots[i].0 != second {
            self.entries -= self.slots[i].1.len();
            // A new set, not `clear()`: a slot keeps no more memory than its second needs.
            self.slots[i] = (second, DigestSet::default());
        }
        if self.slots[i].1.contains(&digest) {
            return Recorded::Seen;
        }
        if self.entries >= self.max_entries {
            self.drop_outside_window(now_sec);
            if self.entries >= self.max_entries {
                return Recorded::Full;
            }
        }
        self.slots[i].1.insert(digest);
        self.entries += 1;
        Recorded::New
    }

    /// Empties the slots of seconds no longer within the window.
    fn drop_outside_window(&mut self, now_sec: i64) {
        for (second, set) in &mut self.slots {
            if *second != i64::MIN && (now_sec - *second).abs() > self.window_sec + 1 {
                self.entries -= set.len();
                *second = i64::MIN;
                *set = DigestSet::default();
            }
        }
        debug_assert_eq!(
            self.entries,
            self.slots.iter().map(|(_, s)| s.len()).sum::<usize>()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    fn send(born: i64, v2: bool) -> RemotingCommand {
        let code = if v2 {
            request::SEND_MESSAGE_V2
        } else {
            request::SEND_MESSAGE
        };
        let mut r = RemotingCommand::request(code);
        r.ext_fields
            .insert(if v2 { "g" } else { "bornTimestamp" }, born.to_string());
        r
    }

    #[test]
    fn a_signature_is_admitted_once_within_the_window() {
        let g = ReplayGuard::new(120, 1000);
        assert_eq!(
            g.admit(&send(NOW, true), "ak", "c2lnbmF0dXJlMQ==", NOW),
            Ok(())
        );
        let e = g
            .admit(&send(NOW, true), "ak", "c2lnbmF0dXJlMQ==", NOW + 5_000)
            .unwrap_err();
        assert!(e.starts_with("replayed signature for accessKey ak"), "{e}");
        assert_eq!(
            g.admit(&send(NOW, true), "ak", "c2lnbmF0dXJlMg==", NOW),
            Ok(())
        );
        // Just inside the window, the replay is still remembered.
        let e = g
            .admit(&send(NOW, true), "ak", "c2lnbmF0dXJlMQ==", NOW + 120_000)
            .unwrap_err();
        assert!(e.contains("replayed"), "{e}");
    }

    #[test]
    fn born_timestamps_outside_the_window_are_refused_either_way() {
        let g = ReplayGuard::new(120, 1000);
        let e = g
            .admit(&send(NOW - 120_001, false), "ak", "sig-old", NOW)
            .unwrap_err();
        assert_eq!(
            e,
            "expired signature for accessKey ak: bornTimestamp 1699999879999 is 120 s before \
             the broker's clock, more than aclSignatureMaxAgeSec 120"
        );
        let e = g
            .admit(&send(NOW + 121_000, false), "ak", "sig-new", NOW)
            .unwrap_err();
        assert!(
            e.contains("not yet valid") && e.contains("121 s after"),
            "{e}"
        );
        assert_eq!(g.admit(&send(NOW - 120_000, false), "ak", "a", NOW), Ok(()));
        assert_eq!(g.admit(&send(NOW + 120_000, false), "ak", "b", NOW), Ok(()));
        let mut none = send(NOW, false);
        none.ext_fields.remove("bornTimestamp");
        let e = g.admit(&none, "ak", "c", NOW).unwrap_err();
        assert_eq!(
            e,
            "the signed send of accessKey ak carries no bornTimestamp"
        );
    }

    #[test]
    fn other_requests_and_a_zero_window_are_not_checked() {
        let g = ReplayGuard::new(120, 1000);
        let pull = RemotingCommand::request(request::PULL_MESSAGE);
        assert_eq!(g.admit(&pull, "ak", "same", NOW), Ok(()));
        assert_eq!(g.admit(&pull, "ak", "same", NOW), Ok(()));
        let off = ReplayGuard::new(0, 1000);
        assert_eq!(off.admit(&send(0, true), "ak", "same", NOW), Ok(()));
        assert_eq!(off.admit(&send(0, true), "ak", "same", NOW), Ok(()));
    }

    #[test]
    fn old_seconds_are_dropped_as_their_slot_is_reused() {
        let mut seen = SeenSignatures::new(4, 1, 100);
        assert_eq!(seen.insert(10, 1, 10), Recorded::New);
        assert_eq!(seen.insert(11, 2, 10), Recorded::New);
        assert_eq!(seen.insert(10, 1, 11), Recorded::Seen);
        assert_eq!(seen.entries, 2);
        // Second 14 takes second 10's slot: 10 is outside any window the ring serves.
        assert_eq!(seen.insert(14, 3, 13), Recorded::New);
        assert_eq!(seen.entries, 2);
        assert_eq!(seen.insert(11, 2, 12), Recorded::Seen);
        assert_eq!(
            seen.insert(-3, 9, -3),
            Recorded::New,
            "negative seconds map too"
        );
    }

    #[test]
    fn a_full_cache_lets_fresh_signatures_through_and_counts_them() {
        let g = ReplayGuard::new(120, 2);
        assert_eq!(g.admit(&send(NOW, true), "ak", "s1", NOW), Ok(()));
        assert_eq!(g.admit(&send(NOW, true), "ak", "s2", NOW), Ok(()));
        assert_eq!(g.admit(&send(NOW, true), "ak", "s3", NOW), Ok(()));
        assert_eq!(g.overflows(), 1);
        assert!(
            g.admit(&send(NOW, true), "ak", "s1", NOW).is_err(),
            "still seen"
        );
        // Once a second leaves the window its entries make room again.
        let later = NOW + 300_000;
        assert_eq!(g.admit(&send(later, true), "ak", "s4", later), Ok(()));
        assert_eq!(g.overflows(), 1);
    }
}
