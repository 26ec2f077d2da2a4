//! What the controllers agree on, per broker group (a `brokerName`): its replicas, which one is
//! master, the master epoch and the in-sync replica set (reference §8.3). Changes arrive as
//! [`Command`]s through the Raft log and are applied here in log order on every controller, so
//! this module has no clocks, sockets or randomness: the same log gives the same state.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// A replica's id inside its group, given by the controller at registration. Ids start at 1; a
/// master registers with the name servers as brokerId 0 whatever its id here, so 4.x clients
/// find it where they look.
pub type ReplicaId = u64;

/// One broker process of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Replica {
    pub id: ReplicaId,
    /// Its remoting address (`ip:port`): how the replica is known across restarts.
    pub address: String,
    /// Where a slave connects to stream its log when this replica is master.
    pub ha_address: String,
}

/// A broker group's replication state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaGroup {
    pub cluster_name: String,
    pub broker_name: String,
    pub replicas: BTreeMap<ReplicaId, Replica>,
    pub master: Option<ReplicaId>,
    /// Grows by one at every election; 0 until the first.
    pub master_epoch: i32,
    /// Replicas holding every acknowledged message: only these may be elected.
    pub sync_state_set: BTreeSet<ReplicaId>,
    pub sync_state_set_epoch: i32,
}

impl ReplicaGroup {
    pub fn replica_by_address(&self, address: &str) -> Option<&Replica> {
        self.replicas.values().find(|r| r.address == address)
    }

    pub fn master_replica(&self) -> Option<&Replica> {
        self.master.and_then(|id| self.replicas.get(&id))
    }
}

/// A change to the agreed state: one Raft log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Command {
    /// A broker joins its group, or comes back with the same address (then it keeps its id and
    /// a changed HA address is taken).
    RegisterBroker {
        cluster_name: String,
        broker_name: String,
        address: String,
        ha_address: String,
    },
    /// `new_master` becomes master in epoch `expected_epoch + 1`. Fenced: a decision taken on a
    /// state that has moved on since is refused.
    ElectMaster {
        broker_name: String,
        new_master: ReplicaId,
        expected_epoch: i32,
    },
    /// The in-sync set becomes `set` (which must hold the master), fenced by both epochs.
    AlterSyncStateSet {
        broker_name: String,
        master_epoch: i32,
        sync_state_set_epoch: i32,
        set: BTreeSet<ReplicaId>,
    },
}

impl Command {
    pub fn broker_name(&self) -> &str {
        match self {
            Command::RegisterBroker { broker_name, .. }
            | Command::ElectMaster { broker_name, .. }
            | Command::AlterSyncStateSet { broker_name, .. } => broker_name,
        }
    }
}

/// Why a command changed nothing. Each maps to a CONTROLLER_* response code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Refusal {
    #[error("no broker group {0:?} is registered")]
    UnknownGroup(String),
    #[error("replica {0} is not registered in the group")]
    UnknownReplica(ReplicaId),
    #[error("the master epoch is {current}, the request was made for {requested}")]
    FencedMasterEpoch { current: i32, requested: i32 },
    #[error("the sync state set epoch is {current}, the request was made for {requested}")]
    FencedSyncStateSetEpoch { current: i32, requested: i32 },
    #[error("the sync state set must hold the master ({0:?})")]
    SetWithoutMaster(Option<ReplicaId>),
}

/// What applying a command gave: the group as it is after it, or why nothing changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Applied {
    /// The replica a registration was given (or kept).
    pub replica_id: Option<ReplicaId>,
    pub group: Option<ReplicaGroup>,
    pub refused: Option<Refusal>,
}

impl Applied {
    fn ok(group: &ReplicaGroup, replica_id: Option<ReplicaId>) -> Applied {
        Applied {
            replica_id,
            group: Some(group.clone()),
            refused: None,
        }
    }

    fn refused(refusal: Refusal) -> Applied {
        Applied {
            replica_id: None,
            group: None,
            refused: Some(refusal),
        }
    }
}

/// Every broker group the controllers know.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ControllerState {
    pub groups: BTreeMap<String, ReplicaGroup>,
}

impl ControllerState {
    pub fn apply(&mut self, command: &Command) -> Applied {
        match command {
            Command::RegisterBroker {
                cluster_name,
                broker_name,
                address,
                ha_address,
            } => {
                let group =
                    self.groups
                        .entry(broker_name.clone())
                        .or_insert_with(|| ReplicaGroup {
                            cluster_name: cluster_name.clone(),
                            broker_name: broker_name.clone(),
                            ..ReplicaGroup::default()
                        });
                let id = match group.replica_by_address(address) {
                    Some(known) => known.id,
                    None => group.replicas.keys().next_back().map_or(1, |last| last + 1),
                };
                group.replicas.insert(
                    id,
                    Replica {
                        id,
                        address: address.clone(),
                        ha_address: ha_address.clone(),
                    },
                );
                Applied::ok(group, Some(id))
            }
            Command::ElectMaster {
                broker_name,
                new_master,
                expected_epoch,
            } => {
                let Some(group) = self.groups.get_mut(broker_name) else {
                    return Applied::refused(Refusal::UnknownGroup(broker_name.clone()));
                };
                if group.master_epoch != *expected_epoch {
                    return Applied::refused(Refusal::FencedMasterEpoch {
                        current: group.master_epoch,
                        requested: *expected_epoch,
                    });
                }
                if !group.replicas.contains_key(new_master) {
                    return Applied::refused(Refusal::UnknownReplica(*new_master));
                }
                group.master = Some(*new_master);
                group.master_epoch += 1;
                // The new master alone is known to hold what it acknowledges from now on; the
                // others rejoin the set as they catch up with it.
                group.sync_state_set = BTreeSet::from([*new_master]);
                group.sync_state_set_epoch += 1;
                Applied::ok(group, None)
            }
            Command::AlterSyncStateSet {
                broker_name,
                master_epoch,
                sync_state_set_epoch,
                set,
            } => {
                let Some(group) = self.groups.get_mut(broker_name) else {
                    return Applied::refused(Refusal::UnknownGroup(broker_name.clone()));
                };
                if group.master_epoch != *master_epoch {
                    return Applied::refused(Refusal::FencedMasterEpoch {
                        current: group.master_epoch,
                        requested: *master_epoch,
                    });
                }
                if group.sync_state_set_epoch != *sync_state_set_epoch {
                    return Applied::refused(Refusal::FencedSyncStateSetEpoch {
                        current: group.sync_state_set_epoch,
                        requested: *sync_state_set_epoch,
                    });
                }
                if !group.master.is_some_and(|m| set.contains(&m)) {
                    return Applied::refused(Refusal::SetWithoutMaster(group.master));
                }
                if let Some(unknown) = set.iter().find(|id| !group.replicas.contains_key(id)) {
                    return Applied::refused(Refusal::UnknownReplica(*unknown));
                }
                group.sync_state_set = set.clone();
                group.sync_state_set_epoch += 1;
                Applied::ok(group, None)
            }
        }
    }
}

/// What the leading controller knows of a replica from its heartbeats (never replicated: a new
/// leader starts from its own observations).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaReport {
    pub alive: bool,
    /// The commit-log end it last reported.
    pub max_offset: i64,
    /// The master epoch it last reported being in.
    pub epoch: i32,
}

/// Whom to make master of a group whose master is gone: an alive member of the in-sync set
/// (any alive replica with `unclean`), the one furthest ahead, then the lowest id. `None` when
/// no one qualifies; the group then waits (no sends) rather than lose acknowledged messages.
pub fn choose_master(
    group: &ReplicaGroup,
    report: impl Fn(ReplicaId) -> Option<ReplicaReport>,
    unclean: bool,
) -> Option<ReplicaId> {
    group
        .replicas
        .keys()
        .copied()
        .filter(|id| unclean || group.sync_state_set.contains(id))
        .filter_map(|id| report(id).filter(|r| r.alive).map(|r| (id, r)))
        .max_by(|(a_id, a), (b_id, b)| {
            (a.epoch, a.max_offset)
                .cmp(&(b.epoch, b.max_offset))
                .then(b_id.cmp(a_id))
        })
        .map(|(id, _)| id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn register(state: &mut ControllerState, address: &str) -> ReplicaId {
        state
            .apply(&Command::RegisterBroker {
                cluster_name: "c".into(),
                broker_name: "b".into(),
                address: address.into(),
                ha_address: format!("{address}-ha"),
            })
            .replica_id
            .unwrap()
    }

    #[test]
    fn registration_gives_ids_and_keeps_them_across_restarts() {
        let mut state = ControllerState::default();
        assert_eq!(register(&mut state, "a:1"), 1);
        assert_eq!(register(&mut state, "a:2"), 2);
        assert_eq!(register(&mut state, "a:1"), 1);
        assert_eq!(state.groups["b"].replicas.len(), 2);
    }

    #[test]
    fn elections_are_fenced_by_the_epoch() {
        let mut state = ControllerState::default();
        let one = register(&mut state, "a:1");
        let two = register(&mut state, "a:2");
        let elect = |id, epoch| Command::ElectMaster {
            broker_name: "b".into(),
            new_master: id,
            expected_epoch: epoch,
        };
        let applied = state.apply(&elect(one, 0));
        assert_eq!(applied.refused, None);
        let group = &state.groups["b"];
        assert_eq!((group.master, group.master_epoch), (Some(one), 1));
        assert_eq!(group.sync_state_set, BTreeSet::from([one]));
        // A second decision taken on epoch 0 lost the race.
        assert_eq!(
            state.apply(&elect(two, 0)).refused,
            Some(Refusal::FencedMasterEpoch {
                current: 1,
                requested: 0
            })
        );
        assert_eq!(
            state.apply(&elect(9, 1)).refused,
            Some(Refusal::UnknownReplica(9))
        );
    }

    #[test]
    fn the_sync_state_set_keeps_the_master_and_is_fenced() {
        let mut state = ControllerState::default();
        let one = register(&mut state, "a:1");
        let two = register(&mut state, "a:2");
        state.apply(&Command::ElectMaster {
            broker_name: "b".into(),
            new_master: one,
            expected_epoch: 0,
        });
        let alter = |set: &[ReplicaId], set_epoch| Command::AlterSyncStateSet {
            broker_name: "b".into(),
            master_epoch: 1,
            sync_state_set_epoch: set_epoch,
            set: set.iter().copied().collect(),
        };
        assert_eq!(
            state.apply(&alter(&[two], 1)).refused,
            Some(Refusal::SetWithoutMaster(Some(one)))
        );
        assert_eq!(state.apply(&alter(&[one, two], 1)).refused, None);
        assert_eq!(
            state.apply(&alter(&[one], 1)).refused,
            Some(Refusal::FencedSyncStateSetEpoch {
                current: 2,
                requested: 1
            })
        );
    }

    #[test]
    fn the_alive_in_sync_replica_furthest_ahead_is_chosen() {
        let mut state = ControllerState::default();
        for a in ["a:1", "a:2", "a:3"] {
            register(&mut state, a);
        }
        let mut group = state.groups["b"].clone();
        group.master = Some(1);
        group.sync_state_set = BTreeSet::from([1, 2]);
        let report = |alive1, off2, off3| {
            move |id| {
                Some(match id {
                    1 => ReplicaReport {
                        alive: alive1,
                        max_offset: 500,
                        epoch: 1,
                    },
                    2 => ReplicaReport {
                        alive: true,
                        max_offset: off2,
                        epoch: 1,
                    },
                    _ => ReplicaReport {
                        alive: true,
                        max_offset: off3,
                        epoch: 1,
                    },
                })
            }
        };
        // The dead master is not chosen; replica 3 is ahead but not in sync.
        assert_eq!(
            choose_master(&group, report(false, 100, 900), false),
            Some(2)
        );
        assert_eq!(
            choose_master(&group, report(false, 100, 900), true),
            Some(3)
        );
        assert_eq!(
            choose_master(&group, report(true, 100, 900), false),
            Some(1)
        );
        group.sync_state_set = BTreeSet::from([1]);
        assert_eq!(choose_master(&group, report(false, 100, 900), false), None);
    }
}
