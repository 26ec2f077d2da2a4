//! Typed headers of the requests only a name server serves, with the Java classes' wire names
//! (`remoting/protocol/header/namesrv/`). Headers shared with brokers live in `petrel_remoting::headers`.

use petrel_remoting::command_header;

command_header! {
    /// GET_ROUTEINFO_BY_TOPIC (105). Route keys are always written as quoted JSON strings, which
    /// every client accepts, so `acceptStandardJsonOnly` changes nothing.
    pub struct GetRouteInfoRequestHeader {
        topic: String => "topic",
        accept_standard_json_only: Option<bool> => "acceptStandardJsonOnly",
    }
}

command_header! {
    /// DELETE_TOPIC_IN_NAMESRV (216).
    pub struct DeleteTopicFromNamesrvRequestHeader {
        topic: String => "topic",
        cluster_name: Option<String> => "clusterName",
    }
}

command_header! {
    /// GET_TOPICS_BY_CLUSTER (224).
    pub struct GetTopicsByClusterRequestHeader {
        cluster: String => "cluster",
    }
}

command_header! {
    /// PUT_KV_CONFIG (100).
    pub struct PutKvConfigRequestHeader {
        namespace: String => "namespace",
        key: String => "key",
        value: String => "value",
    }
}

command_header! {
    /// GET_KV_CONFIG (101) and DELETE_KV_CONFIG (102).
    pub struct KvConfigKeyRequestHeader {
        namespace: String => "namespace",
        key: String => "key",
    }
}

command_header! {
    /// GET_KV_CONFIG (101) response.
    pub struct GetKvConfigResponseHeader {
        value: Option<String> => "value",
    }
}

command_header! {
    /// GET_KVLIST_BY_NAMESPACE (219).
    pub struct GetKvListByNamespaceRequestHeader {
        namespace: String => "namespace",
    }
}
