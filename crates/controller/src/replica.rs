//! The broker's half of controller mode, as plain state machines (no clocks, no sockets): the
//! timing a broker keeps with the controllers, and whether a master's sends wait for its slave.
//! The broker runs them with its real clock and HA connections; the simulation in
//! `tests/simulation.rs` runs the same code with simulated ones.

use std::time::Duration;

/// How often a controlled broker heartbeats (and learns of a role change).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// How long a master takes writes after *sending* a heartbeat the controllers answered. Below the
/// controllers' `brokerNotActiveTimeout` (5 s, counted from the heartbeat *received*), with room
/// for clock drift: a master cut off from them stops before another can be elected.
pub const LEASE: Duration = Duration::from_secs(3);
/// A master catching its slave up waits for it once the slave is this close: the wait is then a
/// few milliseconds, not a stall.
pub const CATCH_UP_GAP: i64 = 1024 * 1024;

/// Whether a master's sends wait for its slave.
///
/// The controllers elect only members of the in-sync set, so a master may acknowledge alone only
/// while the set holds it alone. A slave joins on the master's word: the master first makes its
/// sends wait for the slave (`Catching`), then, once the slave has every byte it had when it
/// started waiting — everything it ever acknowledged alone — says so in its heartbeat
/// (`InSync`), and the controllers add the slave. It goes back to acknowledging alone only when
/// the set has changed since (a newer set epoch without a slave): a late claim, made on the older
/// epoch, can then add no one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MasterSync {
    Alone,
    Catching { until: i64 },
    InSync { set_epoch: i32 },
}

impl MasterSync {
    /// At the start of a master's incarnation: waiting if the set holds a slave.
    pub fn new(slave_in_set: bool, set_epoch: i32) -> MasterSync {
        if slave_in_set {
            MasterSync::InSync { set_epoch }
        } else {
            MasterSync::Alone
        }
    }

    /// Sends are answered without waiting for a slave.
    pub fn acks_alone(self) -> bool {
        self == MasterSync::Alone
    }

    /// Before a heartbeat: moves a connected slave towards the set. `max_offset` is the log end
    /// now, `acked` how far the slave has confirmed. True when the heartbeat should claim the
    /// slave in sync (with `set_epoch`, the set epoch last seen).
    pub fn tick(&mut self, max_offset: i64, connected: bool, acked: i64, set_epoch: i32) -> bool {
        *self = match *self {
            MasterSync::Alone if connected && acked >= max_offset - CATCH_UP_GAP => {
                MasterSync::Catching { until: max_offset }
            }
            // Nothing was claimed yet: giving up the wait is safe.
            MasterSync::Catching { .. } if !connected => MasterSync::Alone,
            MasterSync::Catching { until } if acked >= until => MasterSync::InSync { set_epoch },
            other => other,
        };
        matches!(*self, MasterSync::InSync { .. })
    }

    /// What the controllers answered about the set. True when this made the master acknowledge
    /// alone again.
    pub fn answer(&mut self, slave_in_set: bool, set_epoch: i32) -> bool {
        match *self {
            _ if slave_in_set => {
                *self = MasterSync::InSync { set_epoch };
                false
            }
            MasterSync::InSync { set_epoch: claimed } if set_epoch > claimed => {
                *self = MasterSync::Alone;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_master_claims_its_slave_only_after_it_has_all_it_acknowledged_alone() {
        let mut s = MasterSync::new(false, 1);
        assert!(s.acks_alone());
        // Far behind: still alone.
        assert!(!s.tick(10 * CATCH_UP_GAP, true, 0, 1));
        assert!(s.acks_alone());
        // Close: sends wait, but no claim until the slave has the log end of that moment.
        assert!(!s.tick(1000, true, 900, 1));
        assert_eq!(s, MasterSync::Catching { until: 1000 });
        assert!(!s.tick(1500, true, 999, 1));
        assert!(s.tick(2000, true, 1000, 1));
        // The set grew (epoch 2, with the slave): stays waiting.
        assert!(!s.answer(true, 2));
        // The slave was dropped (epoch 3, master alone): acknowledges alone again.
        assert!(s.answer(false, 3));
        assert!(s.acks_alone());
    }

    #[test]
    fn an_answer_from_before_the_claim_does_not_release_the_master() {
        let mut s = MasterSync::InSync { set_epoch: 4 };
        assert!(!s.answer(false, 4));
        assert!(!s.acks_alone());
        let mut c = MasterSync::Catching { until: 10 };
        assert!(!c.tick(20, false, 0, 4));
        assert!(c.acks_alone(), "nothing claimed yet: the wait may end");
    }
}
