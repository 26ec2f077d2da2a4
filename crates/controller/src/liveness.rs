//! The leader's view of the brokers: when each replica last heartbeated, how far its log goes and
//! which epoch it is in. Not replicated — a new leader starts by giving every replica a full
//! timeout of grace, so a leader change never makes a live master look dead. The scan on the
//! leader turns this view into commands: an election when a master is gone, an in-sync set
//! change when a slave catches up or falls behind.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use petrel_remoting::CancellationToken;

use crate::state::{choose_master, Command, ReplicaGroup, ReplicaId, ReplicaReport};
use crate::Controller;

#[derive(Debug, Clone, Copy)]
struct Seen {
    at: Instant,
    max_offset: i64,
    epoch: i32,
    /// A master's claim that its slave holds everything it acknowledged, made when the in-sync
    /// set had this epoch.
    slaves_in_sync: Option<i32>,
}

pub struct Liveness {
    timeout: Duration,
    seen: Mutex<HashMap<(String, ReplicaId), Seen>>,
    /// When this controller last became leader (the start of the grace every replica gets).
    leading_since: Mutex<Option<(u64, Instant)>>,
}

impl Liveness {
    pub fn new(timeout: Duration) -> Self {
        Liveness {
            timeout,
            seen: Mutex::new(HashMap::new()),
            leading_since: Mutex::new(None),
        }
    }

    /// Notes a heartbeat received at `now`; `slaves_in_sync` is a master's claim with the set
    /// epoch it saw.
    pub fn heartbeat(
        &self,
        now: Instant,
        broker_name: &str,
        id: ReplicaId,
        max_offset: i64,
        epoch: i32,
        slaves_in_sync: Option<i32>,
    ) {
        self.seen.lock().insert(
            (broker_name.to_owned(), id),
            Seen {
                at: now,
                max_offset,
                epoch,
                slaves_in_sync,
            },
        );
    }

    /// The replicas a master claiming its slaves in sync may add to the set: alive, following
    /// the current master epoch.
    pub fn joinable(&self, group: &ReplicaGroup, now: Instant) -> Vec<ReplicaId> {
        let Some(master) = group.master else {
            return Vec::new();
        };
        let since = self.leading_since.lock().map(|(_, at)| at);
        let Some(grace) = since else {
            return Vec::new();
        };
        group
            .replicas
            .keys()
            .copied()
            .filter(|id| *id != master && !group.sync_state_set.contains(id))
            .filter(|id| {
                let r = self.report(&group.broker_name, *id, grace, now);
                self.heard_from(&group.broker_name, *id) && r.alive && r.epoch == group.master_epoch
            })
            .collect()
    }

    fn claim(&self, broker_name: &str, id: ReplicaId) -> Option<i32> {
        self.seen
            .lock()
            .get(&(broker_name.to_owned(), id))
            .and_then(|s| s.slaves_in_sync)
    }

    /// What a master's heartbeat `claim` (the set epoch it saw, if it says its slaves are in
    /// sync) makes of the set: the slaves that join, fenced by that epoch so that a claim that
    /// arrives late (after the set moved on) adds no one.
    pub fn on_claim(
        &self,
        group: &ReplicaGroup,
        claim: Option<i32>,
        now: Instant,
    ) -> Option<Command> {
        if claim != Some(group.sync_state_set_epoch) {
            return None;
        }
        let joining = self.joinable(group, now);
        if joining.is_empty() {
            return None;
        }
        let mut set = group.sync_state_set.clone();
        set.extend(joining);
        Some(Command::AlterSyncStateSet {
            broker_name: group.broker_name.clone(),
            master_epoch: group.master_epoch,
            sync_state_set_epoch: group.sync_state_set_epoch,
            set,
        })
    }

    /// Notes this controller leads in `term` at `now`; a new term restarts the grace. Returns
    /// when the grace started.
    pub fn lead(&self, term: u64, now: Instant) -> Instant {
        let mut since = self.leading_since.lock();
        match *since {
            Some((t, at)) if t == term => at,
            _ => {
                *since = Some((term, now));
                now
            }
        }
    }

    pub fn follow(&self) {
        *self.leading_since.lock() = None;
    }

    /// What is known of a replica. One never heard from counts as alive during the grace (it may
    /// be a master heartbeating to the old leader) but is never a candidate: nothing is known
    /// of its log.
    fn report(
        &self,
        broker_name: &str,
        id: ReplicaId,
        grace_start: Instant,
        now: Instant,
    ) -> ReplicaReport {
        match self.seen.lock().get(&(broker_name.to_owned(), id)) {
            Some(s) => ReplicaReport {
                alive: now.duration_since(s.at.max(grace_start)) < self.timeout,
                max_offset: s.max_offset,
                epoch: s.epoch,
            },
            None => ReplicaReport {
                alive: now.duration_since(grace_start) < self.timeout,
                max_offset: -1,
                epoch: -1,
            },
        }
    }

    pub fn is_alive(&self, broker_name: &str, id: ReplicaId, now: Instant) -> bool {
        let since = self.leading_since.lock().map(|(_, at)| at);
        since.is_some_and(|grace| self.report(broker_name, id, grace, now).alive)
    }

    fn heard_from(&self, broker_name: &str, id: ReplicaId) -> bool {
        self.seen.lock().contains_key(&(broker_name.to_owned(), id))
    }

    /// What the scan at `now` should do for `group`, if anything.
    pub fn decide(
        &self,
        group: &ReplicaGroup,
        grace_start: Instant,
        now: Instant,
        unclean: bool,
        max_gap: i64,
    ) -> Option<Command> {
        let name = &group.broker_name;
        let report = |id| self.report(name, id, grace_start, now);
        let master_alive = group.master.is_some_and(|m| report(m).alive);
        if !master_alive {
            // A group never led has acknowledged nothing yet: any replica will do.
            let unclean = unclean || group.master_epoch == 0;
            let candidate = choose_master(
                group,
                |id| Some(report(id)).filter(|_| self.heard_from(name, id)),
                unclean,
            )?;
            return Some(Command::ElectMaster {
                broker_name: name.clone(),
                new_master: candidate,
                expected_epoch: group.master_epoch,
            });
        }
        let master = group.master?;
        if !self.heard_from(name, master) {
            return None;
        }
        let master_offset = report(master).max_offset;
        // Slaves leave the set here; they join it only on their master's word (in the heartbeat
        // processor), since only the master knows that a slave has all it acknowledged.
        let set: BTreeSet<ReplicaId> = group
            .sync_state_set
            .iter()
            .copied()
            .filter(|&id| {
                let r = report(id);
                id == master
                    || (self.heard_from(name, id)
                        && r.alive
                        && r.epoch == group.master_epoch
                        && master_offset - r.max_offset <= max_gap)
            })
            .collect();
        let alter = |set| Command::AlterSyncStateSet {
            broker_name: name.clone(),
            master_epoch: group.master_epoch,
            sync_state_set_epoch: group.sync_state_set_epoch,
            set,
        };
        if set != group.sync_state_set {
            return Some(alter(set));
        }
        // A master waits for a slave no one can add (it is not alive here): a new set epoch
        // releases it, and fences any late request to add the slave.
        let claimed = self.claim(name, master) == Some(group.sync_state_set_epoch);
        if claimed && set.len() == 1 && self.joinable(group, now).is_empty() {
            return Some(alter(set));
        }
        None
    }
}

/// Every `scan_interval` on the leader: elect where a master is gone, move in-sync sets.
pub(crate) async fn scan(controller: Arc<Controller>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(controller.config.scan_interval);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let metrics = controller.raft.metrics().borrow().clone();
        if metrics.current_leader != Some(controller.config.node_id) {
            controller.liveness.follow();
            continue;
        }
        let now = Instant::now();
        let grace_start = controller.liveness.lead(metrics.current_term, now);
        for group in controller.state.state().groups.values() {
            let Some(command) = controller.liveness.decide(
                group,
                grace_start,
                now,
                controller.config.elect_unclean_master,
                controller.config.max_gap_not_in_sync,
            ) else {
                continue;
            };
            match controller.raft.client_write(command.clone()).await {
                Ok(done) => match (&command, &done.data.refused) {
                    (_, Some(refused)) => {
                        tracing::info!(group = %group.broker_name, "not applied: {refused}")
                    }
                    (Command::ElectMaster { new_master, .. }, None) => tracing::warn!(
                        group = %group.broker_name,
                        master = new_master,
                        epoch = group.master_epoch + 1,
                        "elected a new master"
                    ),
                    (Command::AlterSyncStateSet { set, .. }, None) => {
                        tracing::info!(group = %group.broker_name, ?set, "in-sync set changed")
                    }
                    _ => {}
                },
                Err(e) => tracing::info!(group = %group.broker_name, "could not write: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ControllerState;

    fn group() -> ReplicaGroup {
        let mut state = ControllerState::default();
        for a in ["a:1", "a:2"] {
            state.apply(&Command::RegisterBroker {
                cluster_name: "c".into(),
                broker_name: "b".into(),
                address: a.into(),
                ha_address: a.into(),
            });
        }
        state.groups["b"].clone()
    }

    #[test]
    fn a_group_without_master_elects_a_replica_it_heard_from() {
        let live = Liveness::new(Duration::from_secs(5));
        let g = group();
        let grace = Instant::now();
        // Nobody heard from: no candidate, no command.
        assert_eq!(live.decide(&g, grace, Instant::now(), false, 100), None);
        live.heartbeat(Instant::now(), "b", 2, 0, 0, None);
        // The first election of a group: every replica it heard from may lead.
        assert_eq!(
            live.decide(&g, grace, Instant::now(), false, 100),
            Some(Command::ElectMaster {
                broker_name: "b".into(),
                new_master: 2,
                expected_epoch: 0
            })
        );
    }

    #[test]
    fn a_silent_master_is_replaced_after_the_timeout_and_not_before() {
        let live = Liveness::new(Duration::from_millis(100));
        let mut g = group();
        g.master = Some(1);
        g.master_epoch = 1;
        g.sync_state_set = BTreeSet::from([1, 2]);
        let grace = Instant::now();
        live.heartbeat(Instant::now(), "b", 1, 500, 1, None);
        live.heartbeat(Instant::now(), "b", 2, 500, 1, None);
        assert_eq!(live.decide(&g, grace, Instant::now(), false, 100), None);
        std::thread::sleep(Duration::from_millis(150));
        live.heartbeat(Instant::now(), "b", 2, 500, 1, None);
        assert!(matches!(
            live.decide(&g, grace, Instant::now(), false, 100),
            Some(Command::ElectMaster { new_master: 2, .. })
        ));
    }

    #[test]
    fn slaves_leave_the_set_when_behind_and_a_claim_no_one_can_honour_is_released() {
        let live = Liveness::new(Duration::from_secs(5));
        let mut g = group();
        g.master = Some(1);
        g.master_epoch = 3;
        g.sync_state_set = BTreeSet::from([1, 2]);
        g.sync_state_set_epoch = 7;
        let grace = live.lead(1, Instant::now());
        live.heartbeat(Instant::now(), "b", 1, 1000, 3, None);
        live.heartbeat(Instant::now(), "b", 2, 950, 3, None);
        assert_eq!(live.decide(&g, grace, Instant::now(), false, 100), None);
        // Replica 2 falls behind: it leaves the set.
        live.heartbeat(Instant::now(), "b", 2, 800, 3, None);
        let Some(Command::AlterSyncStateSet { set, .. }) =
            live.decide(&g, grace, Instant::now(), false, 100)
        else {
            panic!("expected a set change");
        };
        assert_eq!(set, BTreeSet::from([1]));
        // Alone in the set, the master claims its slave is in sync; the slave follows an older
        // epoch, so no one may join, and a new set epoch releases the master.
        g.sync_state_set = set;
        live.heartbeat(Instant::now(), "b", 2, 1000, 2, None);
        live.heartbeat(Instant::now(), "b", 1, 1000, 3, Some(7));
        assert!(live.joinable(&g, Instant::now()).is_empty());
        assert!(matches!(
            live.decide(&g, grace, Instant::now(), false, 100),
            Some(Command::AlterSyncStateSet { set, sync_state_set_epoch: 7, .. }) if set == BTreeSet::from([1])
        ));
        // Once the slave follows epoch 3 it may join.
        live.heartbeat(Instant::now(), "b", 2, 1000, 3, None);
        assert_eq!(live.joinable(&g, Instant::now()), vec![2]);
        assert_eq!(live.decide(&g, grace, Instant::now(), false, 100), None);
    }
}
