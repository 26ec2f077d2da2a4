//! Typed headers of the controller requests. Names follow RocketMQ 5's controller headers where
//! it has one; `haAddress`/`masterHaAddress` are Petrel's, because Petrel brokers speak the
//! classic HA wire (a slave needs the master's HA port, not only its remoting address).

use petrel_remoting::command_header;

command_header! {
    /// CONTROLLER_REGISTER_BROKER: a broker joins its group (or comes back).
    pub struct RegisterBrokerRequestHeader {
        cluster_name: String => "clusterName",
        broker_name: String => "brokerName",
        broker_address: String => "brokerAddress",
        ha_address: String => "haAddress",
    }
}

command_header! {
    /// BROKER_HEARTBEAT: alive, with the log end and the epoch the broker is in.
    pub struct BrokerHeartbeatRequestHeader {
        cluster_name: String => "clusterName",
        broker_name: String => "brokerName",
        broker_addr: String => "brokerAddr",
        broker_id: u64 => "brokerId",
        epoch: i32 => "epoch",
        max_offset: i64 => "maxOffset",
        // Petrel's, from a master: the in-sync set epoch it last saw, and whether its slave
        // has every message it acknowledged and every later send waits for it (then the
        // controllers add the slave to the in-sync set).
        sync_state_set_epoch: Option<i32> => "syncStateSetEpoch",
        slaves_in_sync: Option<bool> => "slavesInSync",
    }
}

command_header! {
    /// CONTROLLER_GET_REPLICA_INFO.
    pub struct GetReplicaInfoRequestHeader {
        broker_name: String => "brokerName",
    }
}

command_header! {
    /// The answer to a registration, a heartbeat or CONTROLLER_GET_REPLICA_INFO: who is master
    /// of the group now. The body is the in-sync set ([`crate::SyncStateSet`]).
    pub struct ReplicaInfoResponseHeader {
        broker_id: Option<u64> => "brokerId",
        master_broker_id: Option<u64> => "masterBrokerId",
        master_address: Option<String> => "masterAddress",
        master_ha_address: Option<String> => "masterHaAddress",
        master_epoch: i32 => "masterEpoch",
    }
}

command_header! {
    /// CONTROLLER_ELECT_MASTER, by an operator: elect `brokerId`, or whom the controller picks.
    pub struct ElectMasterRequestHeader {
        broker_name: String => "brokerName",
        broker_id: Option<u64> => "brokerId",
    }
}

command_header! {
    /// The answer to CONTROLLER_GET_METADATA_INFO.
    pub struct GetMetaDataResponseHeader {
        group: String => "group",
        controller_leader_id: Option<String> => "controllerLeaderId",
        controller_leader_address: Option<String> => "controllerLeaderAddress",
        is_leader: bool => "isLeader",
        peers: String => "peers",
    }
}
