//! Master/slave replication with RocketMQ's classic HA wire (protocol reference §8.1): a raw TCP
//! stream on the master's `haListenPort`, not remoting frames. The master streams its commit-log
//! bytes to every connected slave from the offset the slave reports ([`master`]); the slave
//! writes them at the same offsets and reports how far it got ([`slave`]); a SYNC_MASTER answers
//! a send once a slave's report covers it ([`HaService::wait_replicated`]). Topics, groups and
//! offsets follow the master over remoting ([`metadata_sync`]).
//!
//! In controller mode ([`controlled`]) the controllers pick the role; a master then also holds a
//! lease ([`HaService::check_lease`]) and a slave cuts a divergent tail before it follows
//! ([`slave`]).

pub mod controlled;
pub mod master;
pub mod metadata_sync;
pub mod slave;
pub mod wire;

use std::net::SocketAddr;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use petrel_controller::replica::MasterSync;
use tokio::sync::watch;

/// A master sends an empty transfer this often when it has nothing new
/// (`haSendHeartbeatInterval`), and a slave reports its offset at least this often.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
/// Either side drops a connection it has heard nothing on for this long
/// (`haHousekeepingInterval`).
pub const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(20);
/// A slave copies its master's topics, groups and offsets this often.
pub const METADATA_SYNC_INTERVAL: Duration = Duration::from_secs(5);
/// `haMaxGapNotInSync` default: a slave further behind than this is not in sync (256 MiB).
pub const DEFAULT_HA_MAX_GAP_NOT_IN_SYNC: u64 =
    petrel_controller::DEFAULT_MAX_GAP_NOT_IN_SYNC as u64;

/// `brokerRole`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BrokerRole {
    /// Answers sends once stored; slaves follow behind.
    #[default]
    AsyncMaster,
    /// Answers sends once a slave has them too.
    SyncMaster,
    /// Follows a master; takes no sends.
    Slave,
}

impl BrokerRole {
    pub fn is_master(self) -> bool {
        self != BrokerRole::Slave
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BrokerRole::AsyncMaster => "ASYNC_MASTER",
            BrokerRole::SyncMaster => "SYNC_MASTER",
            BrokerRole::Slave => "SLAVE",
        }
    }
}

impl FromStr for BrokerRole {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ASYNC_MASTER" => Ok(BrokerRole::AsyncMaster),
            "SYNC_MASTER" => Ok(BrokerRole::SyncMaster),
            "SLAVE" => Ok(BrokerRole::Slave),
            other => Err(format!(
                "brokerRole must be ASYNC_MASTER, SYNC_MASTER or SLAVE, not {other:?}"
            )),
        }
    }
}

/// What the controllers decided for one incarnation of a broker in controller mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlledRole {
    /// The master epoch: a master's own, a slave's master's.
    pub epoch: i32,
    /// A slave's master: its remoting address (metadata, epoch history); `None` while the
    /// group has no master.
    pub master_addr: Option<String>,
    /// A master: whether the in-sync set held a slave when it started, and the set's epoch.
    pub slave_in_set: bool,
    pub sync_state_set_epoch: i32,
}

/// What a SYNC_MASTER could say of a stored send beyond "stored".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlaveStatus {
    /// A slave has it, or the role does not wait for one.
    Ok,
    /// Stored here, no slave confirmed it within the timeout (FLUSH_SLAVE_TIMEOUT).
    FlushSlaveTimeout,
    /// Stored here, no slave in sync to wait for (SLAVE_NOT_AVAILABLE).
    SlaveNotAvailable,
}

/// The broker's replication state, both roles'.
pub struct HaService {
    pub role: BrokerRole,
    max_gap_not_in_sync: u64,
    /// Master: slaves connected now.
    slaves: AtomicUsize,
    /// Master: the furthest offset any slave reported having (`push2SlaveMaxOffset`).
    acked: watch::Sender<i64>,
    /// Where the HA listener is bound (a master's; the name servers hand it to slaves).
    listen_addr: Option<SocketAddr>,
    /// Slave: the master's HA address, from `haMasterAddress` or the name servers.
    master_ha_addr: Mutex<Option<String>>,
    /// Slave: the master's remoting address, for metadata synchronisation.
    master_addr: Mutex<Option<String>>,
    /// Slave: the address came from the configuration; the name servers' does not replace it.
    master_ha_addr_fixed: bool,
    /// Controller mode: the epoch and master the controllers gave this incarnation.
    controlled: Option<ControlledRole>,
    /// Controller mode, master: writes are taken until then (renewed by each answered
    /// heartbeat).
    lease_until: Mutex<Option<Instant>>,
    /// Controller mode, master: whether sends wait for the slave.
    sync: Mutex<MasterSync>,
}

impl HaService {
    pub fn new(
        role: BrokerRole,
        listen_addr: Option<SocketAddr>,
        ha_master_address: Option<String>,
        max_gap: u64,
        controlled: Option<ControlledRole>,
    ) -> Self {
        // The controllers' word is final: a controlled slave never takes a master from the
        // name servers, which may still list a dead one.
        let fixed = ha_master_address.is_some() || controlled.is_some();
        HaService {
            role,
            max_gap_not_in_sync: max_gap,
            slaves: AtomicUsize::new(0),
            acked: watch::Sender::new(0),
            listen_addr,
            master_ha_addr_fixed: fixed,
            master_ha_addr: Mutex::new(ha_master_address),
            master_addr: Mutex::new(controlled.as_ref().and_then(|c| c.master_addr.clone())),
            lease_until: Mutex::new(
                controlled
                    .as_ref()
                    .map(|_| Instant::now() + petrel_controller::replica::LEASE),
            ),
            sync: Mutex::new(match &controlled {
                Some(c) => MasterSync::new(c.slave_in_set, c.sync_state_set_epoch),
                None => MasterSync::Alone,
            }),
            controlled,
        }
    }

    /// Controller mode: the epoch and master of this incarnation.
    pub fn controlled(&self) -> Option<&ControlledRole> {
        self.controlled.as_ref()
    }

    /// Controller mode: writes may be taken until `until`.
    pub fn renew_lease(&self, until: Instant) {
        let mut lease = self.lease_until.lock();
        if lease.is_none_or(|l| l < until) {
            *lease = Some(until);
        }
    }

    /// Controller mode, master, before a heartbeat: moves a connected slave towards the
    /// in-sync set (see [`MasterSync`]). True when the slave has all this master acknowledged
    /// and every send waits for it: the heartbeat then says so, with the set epoch it saw.
    pub fn sync_tick(&self, max_offset: i64, set_epoch: i32) -> bool {
        let (connected, acked) = (self.connected_slaves() > 0, self.slave_acked_offset());
        self.sync
            .lock()
            .tick(max_offset, connected, acked, set_epoch)
    }

    /// Controller mode, master: what the controllers answered about the in-sync set.
    pub fn sync_answer(&self, slave_in_set: bool, set_epoch: i32) {
        if self.sync.lock().answer(slave_in_set, set_epoch) {
            tracing::info!(
                set_epoch,
                "the in-sync set holds this master alone: acknowledging alone"
            );
        }
    }

    /// Whether this broker may take a write now: always, unless it is a controlled master
    /// whose lease ran out. The error says for how long.
    pub fn check_lease(&self) -> Result<(), String> {
        if self.controlled.is_none() {
            return Ok(());
        }
        match *self.lease_until.lock() {
            Some(until) if Instant::now() < until => Ok(()),
            Some(until) => Err(format!("expired {:?} ago", until.elapsed())),
            None => Err("never granted".into()),
        }
    }

    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.listen_addr
    }

    /// Slaves connected now (master).
    pub fn connected_slaves(&self) -> usize {
        self.slaves.load(Ordering::Acquire)
    }

    /// The furthest commit-log offset a slave has confirmed (master).
    pub fn slave_acked_offset(&self) -> i64 {
        *self.acked.borrow()
    }

    pub fn master_ha_addr(&self) -> Option<String> {
        self.master_ha_addr.lock().clone()
    }

    pub fn master_addr(&self) -> Option<String> {
        self.master_addr.lock().clone()
    }

    /// What the name servers answered a slave's registration with.
    pub(crate) fn learn_master(&self, ha_server_addr: Option<String>, master_addr: Option<String>) {
        if self.role.is_master() {
            return;
        }
        let known = |a: &Option<String>| a.as_deref().is_some_and(|s| !s.is_empty());
        if known(&master_addr) {
            *self.master_addr.lock() = master_addr;
        }
        if !self.master_ha_addr_fixed && known(&ha_server_addr) {
            let mut current = self.master_ha_addr.lock();
            if *current != ha_server_addr {
                tracing::info!(master_ha = ?ha_server_addr, "following a master");
                *current = ha_server_addr;
            }
        }
    }

    pub(crate) fn slave_connected(&self) -> SlaveConnection<'_> {
        self.slaves.fetch_add(1, Ordering::AcqRel);
        SlaveConnection { ha: self }
    }

    /// A slave says it has everything below `offset`.
    pub(crate) fn note_report(&self, offset: i64) {
        self.acked.send_if_modified(|acked| {
            let grew = offset > *acked;
            if grew {
                *acked = offset;
            }
            grew
        });
    }

    /// SYNC_MASTER: waits until a slave has every byte below `end` (a stored send's end), at
    /// most `timeout`. Any other role answers at once.
    pub async fn wait_replicated(&self, end: i64, timeout: Duration) -> SlaveStatus {
        if self.role != BrokerRole::SyncMaster {
            return SlaveStatus::Ok;
        }
        if self.controlled.is_some() && self.sync.lock().acks_alone() {
            return SlaveStatus::Ok;
        }
        if self.connected_slaves() == 0 {
            return SlaveStatus::SlaveNotAvailable;
        }
        let mut acked = self.acked.subscribe();
        let behind = end - *acked.borrow_and_update();
        if behind > self.max_gap_not_in_sync as i64 {
            return SlaveStatus::SlaveNotAvailable;
        }
        let replicated = matches!(
            tokio::time::timeout(timeout, acked.wait_for(|a| *a >= end)).await,
            Ok(Ok(_))
        );
        if replicated {
            SlaveStatus::Ok
        } else {
            SlaveStatus::FlushSlaveTimeout
        }
    }
}

/// Counts a connected slave while it lives.
pub(crate) struct SlaveConnection<'a> {
    ha: &'a HaService,
}

impl Drop for SlaveConnection<'_> {
    fn drop(&mut self) {
        self.ha.slaves.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Stops a connection's second half (the report reader or writer) with the connection.
struct AbortOnDrop(tokio::task::JoinHandle<std::io::Result<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_by_their_rocketmq_names() {
        for role in [
            BrokerRole::AsyncMaster,
            BrokerRole::SyncMaster,
            BrokerRole::Slave,
        ] {
            assert_eq!(role.as_str().parse::<BrokerRole>(), Ok(role));
        }
        assert!("MASTER".parse::<BrokerRole>().is_err());
    }

    #[tokio::test]
    async fn a_sync_master_waits_for_a_slave_report_covering_the_send() {
        let ha = HaService::new(BrokerRole::SyncMaster, None, None, 1000, None);
        let quick = Duration::from_millis(50);
        assert_eq!(
            ha.wait_replicated(10, quick).await,
            SlaveStatus::SlaveNotAvailable
        );
        let conn = ha.slave_connected();
        assert_eq!(
            ha.wait_replicated(10, quick).await,
            SlaveStatus::FlushSlaveTimeout
        );
        // Too far behind to be in sync.
        assert_eq!(
            ha.wait_replicated(5000, quick).await,
            SlaveStatus::SlaveNotAvailable
        );
        ha.note_report(10);
        assert_eq!(ha.wait_replicated(10, quick).await, SlaveStatus::Ok);
        // A later, lower report (a reconnecting slave) does not take an ack back.
        ha.note_report(4);
        assert_eq!(ha.slave_acked_offset(), 10);
        let waiter = ha.wait_replicated(20, Duration::from_secs(5));
        let report = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            ha.note_report(25);
        };
        let (status, ()) = tokio::join!(waiter, report);
        assert_eq!(status, SlaveStatus::Ok);
        drop(conn);
        assert_eq!(ha.connected_slaves(), 0);
        let async_master = HaService::new(BrokerRole::AsyncMaster, None, None, 1000, None);
        assert_eq!(
            async_master.wait_replicated(1, quick).await,
            SlaveStatus::Ok
        );
    }
}
