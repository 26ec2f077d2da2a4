//! Typed request and response headers, with the field names the Java classes use on the wire.

use crate::command_header;

command_header! {
    /// SEND_MESSAGE (10) request: long field names (the Go client's form).
    pub struct SendMessageRequestHeader {
        producer_group: String => "producerGroup",
        topic: String => "topic",
        default_topic: String => "defaultTopic",
        default_topic_queue_nums: i32 => "defaultTopicQueueNums",
        queue_id: i32 => "queueId",
        sys_flag: i32 => "sysFlag",
        born_timestamp: i64 => "bornTimestamp",
        flag: i32 => "flag",
        properties: Option<String> => "properties",
        reconsume_times: Option<i32> => "reconsumeTimes",
        unit_mode: Option<bool> => "unitMode",
        batch: Option<bool> => "batch",
        max_reconsume_times: Option<i32> => "maxReconsumeTimes",
        broker_name: Option<String> => "bname",
    }
}

command_header! {
    /// SEND_MESSAGE_V2 (310) / SEND_BATCH_MESSAGE (320) request: the same fields, one-letter names.
    pub struct SendMessageRequestHeaderV2 {
        producer_group: String => "a",
        topic: String => "b",
        default_topic: String => "c",
        default_topic_queue_nums: i32 => "d",
        queue_id: i32 => "e",
        sys_flag: i32 => "f",
        born_timestamp: i64 => "g",
        flag: i32 => "h",
        properties: Option<String> => "i",
        reconsume_times: Option<i32> => "j",
        unit_mode: Option<bool> => "k",
        max_reconsume_times: Option<i32> => "l",
        batch: Option<bool> => "m",
        broker_name: Option<String> => "n",
    }
}

impl From<SendMessageRequestHeaderV2> for SendMessageRequestHeader {
    fn from(v2: SendMessageRequestHeaderV2) -> Self {
        SendMessageRequestHeader {
            producer_group: v2.producer_group,
            topic: v2.topic,
            default_topic: v2.default_topic,
            default_topic_queue_nums: v2.default_topic_queue_nums,
            queue_id: v2.queue_id,
            sys_flag: v2.sys_flag,
            born_timestamp: v2.born_timestamp,
            flag: v2.flag,
            properties: v2.properties,
            reconsume_times: v2.reconsume_times,
            unit_mode: v2.unit_mode,
            batch: v2.batch,
            max_reconsume_times: v2.max_reconsume_times,
            broker_name: v2.broker_name,
        }
    }
}

impl From<SendMessageRequestHeader> for SendMessageRequestHeaderV2 {
    fn from(v1: SendMessageRequestHeader) -> Self {
        SendMessageRequestHeaderV2 {
            producer_group: v1.producer_group,
            topic: v1.topic,
            default_topic: v1.default_topic,
            default_topic_queue_nums: v1.default_topic_queue_nums,
            queue_id: v1.queue_id,
            sys_flag: v1.sys_flag,
            born_timestamp: v1.born_timestamp,
            flag: v1.flag,
            properties: v1.properties,
            reconsume_times: v1.reconsume_times,
            unit_mode: v1.unit_mode,
            max_reconsume_times: v1.max_reconsume_times,
            batch: v1.batch,
            broker_name: v1.broker_name,
        }
    }
}

command_header! {
    pub struct SendMessageResponseHeader {
        msg_id: String => "msgId",
        queue_id: i32 => "queueId",
        queue_offset: i64 => "queueOffset",
        transaction_id: Option<String> => "transactionId",
        region: Option<String> => "MSG_REGION",
        trace_on: Option<String> => "TRACE_ON",
    }
}

command_header! {
    pub struct PullMessageRequestHeader {
        consumer_group: String => "consumerGroup",
        topic: String => "topic",
        queue_id: i32 => "queueId",
        queue_offset: i64 => "queueOffset",
        max_msg_nums: i32 => "maxMsgNums",
        sys_flag: i32 => "sysFlag",
        commit_offset: i64 => "commitOffset",
        suspend_timeout_millis: i64 => "suspendTimeoutMillis",
        subscription: Option<String> => "subscription",
        sub_version: i64 => "subVersion",
        expression_type: Option<String> => "expressionType",
        max_msg_bytes: Option<i32> => "maxMsgBytes",
    }
}

command_header! {
    pub struct PullMessageResponseHeader {
        suggest_which_broker_id: i64 => "suggestWhichBrokerId",
        next_begin_offset: i64 => "nextBeginOffset",
        min_offset: i64 => "minOffset",
        max_offset: i64 => "maxOffset",
    }
}

/// PullSysFlag bits (reference §2.5).
pub mod pull_sys_flag {
    pub const COMMIT_OFFSET: i32 = 0x1;
    pub const SUSPEND: i32 = 0x2;
    pub const SUBSCRIPTION: i32 = 0x4;
    pub const CLASS_FILTER: i32 = 0x8;
    pub const LITE_PULL: i32 = 0x10;
}

command_header! {
    pub struct QueryConsumerOffsetRequestHeader {
        consumer_group: String => "consumerGroup",
        topic: String => "topic",
        queue_id: i32 => "queueId",
        set_zero_if_not_found: Option<bool> => "setZeroIfNotFound",
    }
}

command_header! {
    pub struct UpdateConsumerOffsetRequestHeader {
        consumer_group: String => "consumerGroup",
        topic: String => "topic",
        queue_id: i32 => "queueId",
        commit_offset: i64 => "commitOffset",
    }
}

command_header! {
    /// The response of every offset query (QUERY_CONSUMER_OFFSET, GET_MAX/MIN_OFFSET, SEARCH_OFFSET_BY_TIMESTAMP).
    pub struct OffsetResponseHeader {
        offset: i64 => "offset",
    }
}

command_header! {
    /// GET_MAX_OFFSET, GET_MIN_OFFSET and GET_EARLIEST_MSG_STORETIME.
    pub struct QueueRequestHeader {
        topic: String => "topic",
        queue_id: i32 => "queueId",
    }
}

command_header! {
    pub struct SearchOffsetRequestHeader {
        topic: String => "topic",
        queue_id: i32 => "queueId",
        timestamp: i64 => "timestamp",
    }
}

command_header! {
    pub struct EarliestMsgStoretimeResponseHeader {
        timestamp: i64 => "timestamp",
    }
}

command_header! {
    pub struct UnregisterClientRequestHeader {
        client_id: String => "clientID",
        producer_group: Option<String> => "producerGroup",
        consumer_group: Option<String> => "consumerGroup",
    }
}

command_header! {
    /// GET_CONSUMER_LIST_BY_GROUP request and NOTIFY_CONSUMER_IDS_CHANGED (broker to client).
    pub struct ConsumerGroupHeader {
        consumer_group: String => "consumerGroup",
    }
}

command_header! {
    pub struct CreateTopicRequestHeader {
        topic: String => "topic",
        default_topic: Option<String> => "defaultTopic",
        read_queue_nums: i32 => "readQueueNums",
        write_queue_nums: i32 => "writeQueueNums",
        perm: i32 => "perm",
        topic_filter_type: Option<String> => "topicFilterType",
        topic_sys_flag: Option<i32> => "topicSysFlag",
        order: Option<bool> => "order",
    }
}

command_header! {
    /// GET_SUBSCRIPTIONGROUP_CONFIG (352) request: one group's config (`mqadmin` reads it back).
    pub struct GetSubscriptionGroupConfigRequestHeader {
        group: String => "group",
    }
}

command_header! {
    /// QUERY_TOPICS_BY_CONSUMER (343) and QUERY_SUBSCRIPTION_BY_CONSUMER (345, with `topic`).
    pub struct GroupTopicRequestHeader {
        group: String => "group",
        topic: Option<String> => "topic",
    }
}

command_header! {
    /// CLONE_GROUP_OFFSET (314) request (`mqadmin cloneGroupOffset`).
    pub struct CloneGroupOffsetRequestHeader {
        src_group: String => "srcGroup",
        dest_group: String => "destGroup",
        topic: Option<String> => "topic",
        offline: Option<bool> => "offline",
    }
}

command_header! {
    /// GET_PRODUCER_CONNECTION_LIST (204) request (`mqadmin producerConnection`).
    pub struct GetProducerConnectionListRequestHeader {
        producer_group: String => "producerGroup",
    }
}

command_header! {
    /// Requests naming one topic: GET_ROUTEINFO_BY_TOPIC, GET_TOPIC_STATS_INFO, DELETE_TOPIC_*.
    pub struct TopicRequestHeader {
        topic: String => "topic",
    }
}

command_header! {
    pub struct GetConsumeStatsRequestHeader {
        consumer_group: String => "consumerGroup",
        topic: Option<String> => "topic",
    }
}

command_header! {
    pub struct GetConsumerConnectionListRequestHeader {
        consumer_group: String => "consumerGroup",
    }
}

command_header! {
    pub struct GetBrokerConfigResponseHeader {
        version: String => "version",
    }
}

command_header! {
    pub struct RegisterBrokerRequestHeader {
        broker_name: String => "brokerName",
        broker_addr: String => "brokerAddr",
        cluster_name: String => "clusterName",
        ha_server_addr: String => "haServerAddr",
        broker_id: i64 => "brokerId",
        heartbeat_timeout_millis: Option<i64> => "heartbeatTimeoutMillis",
        compressed: Option<bool> => "compressed",
        body_crc32: Option<i32> => "bodyCrc32",
    }
}

command_header! {
    /// QUERY_DATA_VERSION (322), a broker asking whether the name server still holds its
    /// registration; the body is the broker's DataVersion JSON.
    pub struct QueryDataVersionRequestHeader {
        broker_name: String => "brokerName",
        broker_addr: String => "brokerAddr",
        cluster_name: String => "clusterName",
        broker_id: i64 => "brokerId",
    }
}

command_header! {
    /// QUERY_DATA_VERSION (322) response; the body is the version the name server holds.
    pub struct QueryDataVersionResponseHeader {
        changed: bool => "changed",
    }
}

command_header! {
    pub struct RegisterBrokerResponseHeader {
        ha_server_addr: Option<String> => "haServerAddr",
        master_addr: Option<String> => "masterAddr",
    }
}

command_header! {
    pub struct UnregisterBrokerRequestHeader {
        broker_name: String => "brokerName",
        broker_addr: String => "brokerAddr",
        cluster_name: String => "clusterName",
        broker_id: i64 => "brokerId",
    }
}

command_header! {
    pub struct ViewMessageRequestHeader {
        offset: i64 => "offset",
        topic: Option<String> => "topic",
    }
}

command_header! {
    pub struct QueryMessageRequestHeader {
        topic: String => "topic",
        key: String => "key",
        max_num: i32 => "maxNum",
        begin_timestamp: i64 => "beginTimestamp",
        end_timestamp: i64 => "endTimestamp",
    }
}

command_header! {
    pub struct QueryMessageResponseHeader {
        index_last_update_timestamp: i64 => "indexLastUpdateTimestamp",
        index_last_update_phyoffset: i64 => "indexLastUpdatePhyoffset",
    }
}

command_header! {
    /// CONSUMER_SEND_MSG_BACK (36) request: a consumer hands back a message it failed to consume.
    pub struct ConsumerSendMsgBackRequestHeader {
        offset: i64 => "offset",
        group: String => "group",
        delay_level: i32 => "delayLevel",
        origin_msg_id: Option<String> => "originMsgId",
        origin_topic: Option<String> => "originTopic",
        unit_mode: Option<bool> => "unitMode",
        max_reconsume_times: Option<i32> => "maxReconsumeTimes",
    }
}

command_header! {
    /// INVOKE_BROKER_TO_RESET_OFFSET (222) request, and RESET_CONSUMER_CLIENT_OFFSET (220) from
    /// the broker to the group's clients. `timestamp` -1 means the queue's end; `queueId` with
    /// `offset` resets one queue to an exact offset instead.
    pub struct ResetOffsetRequestHeader {
        topic: String => "topic",
        group: String => "group",
        timestamp: i64 => "timestamp",
        is_force: Option<bool> => "isForce",
        queue_id: Option<i32> => "queueId",
        offset: Option<i64> => "offset",
    }
}

command_header! {
    /// END_TRANSACTION (37): a producer commits or rolls back a half message (`commitOrRollback`
    /// 8 = commit, 12 = rollback, 0 = still unknown), after its local transaction or when
    /// answering CHECK_TRANSACTION_STATE (`fromTransactionCheck`).
    pub struct EndTransactionRequestHeader {
        topic: Option<String> => "topic",
        producer_group: String => "producerGroup",
        tran_state_table_offset: i64 => "tranStateTableOffset",
        commit_log_offset: i64 => "commitLogOffset",
        commit_or_rollback: i32 => "commitOrRollback",
        from_transaction_check: Option<bool> => "fromTransactionCheck",
        msg_id: String => "msgId",
        transaction_id: Option<String> => "transactionId",
    }
}

command_header! {
    /// PETREL_LIST_HALF_MESSAGES: the pending half messages of `producerGroup` (every group
    /// without it).
    pub struct ListHalfMessagesRequestHeader {
        producer_group: Option<String> => "producerGroup",
    }
}

command_header! {
    /// CHECK_TRANSACTION_STATE (39), broker to producer: asks for the outcome of a half message;
    /// the body is the half message with its real topic and queue.
    pub struct CheckTransactionStateRequestHeader {
        topic: Option<String> => "topic",
        tran_state_table_offset: i64 => "tranStateTableOffset",
        commit_log_offset: i64 => "commitLogOffset",
        msg_id: Option<String> => "msgId",
        transaction_id: Option<String> => "transactionId",
        offset_msg_id: Option<String> => "offsetMsgId",
        broker_name: Option<String> => "bname",
    }
}

command_header! {
    /// POP_MESSAGE (200050): up to `maxMsgNums` messages of `topic` (queue −1: any), invisible
    /// to the group for `invisibleTime` ms, waiting up to `pollTime` ms for one.
    pub struct PopMessageRequestHeader {
        consumer_group: String => "consumerGroup",
        topic: String => "topic",
        queue_id: i32 => "queueId",
        max_msg_nums: i32 => "maxMsgNums",
        invisible_time: i64 => "invisibleTime",
        poll_time: i64 => "pollTime",
        born_time: i64 => "bornTime",
        init_mode: i32 => "initMode",
        exp_type: Option<String> => "expType",
        exp: Option<String> => "exp",
        order: Option<bool> => "order",
        attempt_id: Option<String> => "attemptId",
    }
}

command_header! {
    /// The answer to POP_MESSAGE. The client builds each message's receipt (`extraInfo`) from
    /// `popTime`, `invisibleTime` and `reviveQid`, and without `startOffsetInfo` from the
    /// message's own queue and offset.
    pub struct PopMessageResponseHeader {
        pop_time: i64 => "popTime",
        invisible_time: i64 => "invisibleTime",
        revive_qid: i32 => "reviveQid",
        rest_num: i64 => "restNum",
        start_offset_info: Option<String> => "startOffsetInfo",
        msg_offset_info: Option<String> => "msgOffsetInfo",
        order_count_info: Option<String> => "orderCountInfo",
    }
}

command_header! {
    /// ACK_MESSAGE (200051): the message at `offset` of `queueId` is consumed; `extraInfo` is
    /// the receipt from its POP (`ckOffset popTime invisibleTime reviveQid retry broker queueId offset`).
    pub struct AckMessageRequestHeader {
        consumer_group: String => "consumerGroup",
        topic: String => "topic",
        queue_id: i32 => "queueId",
        extra_info: String => "extraInfo",
        offset: i64 => "offset",
    }
}

command_header! {
    /// CHANGE_MESSAGE_INVISIBLETIME (200053): as ACK_MESSAGE, with a new invisible time from now.
    pub struct ChangeInvisibleTimeRequestHeader {
        consumer_group: String => "consumerGroup",
        topic: String => "topic",
        queue_id: i32 => "queueId",
        extra_info: String => "extraInfo",
        offset: i64 => "offset",
        invisible_time: i64 => "invisibleTime",
    }
}

command_header! {
    /// The answer to CHANGE_MESSAGE_INVISIBLETIME: what the client's new receipt is made of.
    pub struct ChangeInvisibleTimeResponseHeader {
        pop_time: i64 => "popTime",
        invisible_time: i64 => "invisibleTime",
        revive_qid: i32 => "reviveQid",
    }
}
