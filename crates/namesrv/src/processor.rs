//! The name server's request processor: one function per request code, from a decoded request
//! to a response, over the route tables and the KV config. Failures are `NamesrvError`s, mapped
//! to response codes in one place (`NamesrvError::response_code`). Nothing a peer sends may panic.

use std::sync::Arc;

use petrel_common::msg_id::now_ms;
use petrel_common::protocol::from_fastjson;
use petrel_common::topic::DataVersion;
use petrel_remoting::code::{request, response};
use petrel_remoting::headers::{
    RegisterBrokerRequestHeader, RegisterBrokerResponseHeader, UnregisterBrokerRequestHeader,
};
use petrel_remoting::{not_supported, Connection, HeaderError, RemotingCommand, RequestHandler};
use serde::Serialize;
use thiserror::Error;

use crate::headers::{
    DeleteTopicFromNamesrvRequestHeader, GetKvConfigResponseHeader,
    GetKvListByNamespaceRequestHeader, GetRouteInfoRequestHeader, GetTopicsByClusterRequestHeader,
    KvConfigKeyRequestHeader, PutKvConfigRequestHeader,
};
use crate::kv_config::{KvConfigManager, NAMESPACE_ORDER_TOPIC_CONFIG};
use crate::register_body::{self, RegisterBodyError};
use crate::route_info::{BrokerRegistration, RouteInfoManager};
use petrel_remoting::headers::{QueryDataVersionRequestHeader, QueryDataVersionResponseHeader};

/// Why a request failed.
#[derive(Debug, Error)]
pub enum NamesrvError {
    #[error("{0}")]
    Header(#[from] HeaderError),
    #[error(transparent)]
    RegisterBody(#[from] RegisterBodyError),
    #[error("malformed {what} body: {source}")]
    Body {
        what: &'static str,
        source: serde_json::Error,
    },
    #[error("crc32 not match")]
    Crc32Mismatch,
    #[error("could not encode the response body: {0}")]
    Encode(serde_json::Error),
}

impl NamesrvError {
    /// The response code of each failure. RocketMQ answers header and body errors with
    /// SYSTEM_ERROR (its header decoding throws), so we do too.
    pub fn response_code(&self) -> i32 {
        response::SYSTEM_ERROR
    }
}

/// Serves every name server request code; unknown codes get REQUEST_CODE_NOT_SUPPORTED.
#[derive(Debug)]
pub struct NamesrvProcessor {
    routes: Arc<RouteInfoManager>,
    kv: KvConfigManager,
}

impl RequestHandler for NamesrvProcessor {
    async fn handle(&self, conn: &Connection, request: RemotingCommand) -> Option<RemotingCommand> {
        Some(self.process(Some(conn.id()), &request))
    }

    fn on_close(&self, conn: &Connection) {
        let dropped = self.routes.on_connection_closed(conn.id());
        if !dropped.is_empty() {
            tracing::info!(peer = %conn.peer_addr(), brokers = ?dropped, "broker connection closed");
        }
    }
}

impl NamesrvProcessor {
    pub fn new(routes: Arc<RouteInfoManager>) -> Self {
        NamesrvProcessor {
            routes,
            kv: KvConfigManager::default(),
        }
    }

    pub fn routes(&self) -> &Arc<RouteInfoManager> {
        &self.routes
    }

    pub fn kv_config(&self) -> &KvConfigManager {
        &self.kv
    }

    /// Answers `req`, which arrived on connection `connection_id` (`None` outside a socket).
    pub fn process(&self, connection_id: Option<u64>, req: &RemotingCommand) -> RemotingCommand {
        let result = match req.code {
            request::PUT_KV_CONFIG => self.put_kv_config(req),
            request::GET_KV_CONFIG => self.get_kv_config(req),
            request::DELETE_KV_CONFIG => self.delete_kv_config(req),
            request::GET_KVLIST_BY_NAMESPACE => self.get_kv_list(req),
            request::REGISTER_BROKER => self.register_broker(connection_id, req),
            request::UNREGISTER_BROKER => self.unregister_broker(req),
            request::QUERY_DATA_VERSION => self.query_data_version(req),
            request::GET_ROUTEINFO_BY_TOPIC => self.get_route_info(req),
            request::GET_BROKER_CLUSTER_INFO => json_response(req, &self.routes.cluster_info()),
            request::GET_ALL_TOPIC_LIST_FROM_NAMESERVER => {
                json_response(req, &self.routes.all_topics())
            }
            request::GET_TOPICS_BY_CLUSTER => self.get_topics_by_cluster(req),
            request::DELETE_TOPIC_IN_NAMESRV => self.delete_topic(req),
            _ => return not_supported(req),
        };
        result.unwrap_or_else(|e| {
            tracing::debug!(code = req.code, "request failed: {e}");
            RemotingCommand::error(req, e.response_code(), e.to_string())
        })
    }

    fn register_broker(
        &self,
        connection_id: Option<u64>,
        req: &RemotingCommand,
    ) -> Result<RemotingCommand, NamesrvError> {
        let header: RegisterBrokerRequestHeader = req.decode_header()?;
        let body = req.body_bytes();
        if !register_body::crc32_matches(&body, header.body_crc32.unwrap_or(0)) {
            return Err(NamesrvError::Crc32Mismatch);
        }
        let decoded = register_body::decode(&body, header.compressed.unwrap_or(false))?;
        let wrapper = decoded.topic_config_serialize_wrapper;
        let enable_acting_master = req
            .ext_fields
            .get("enableActingMaster")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        let result = self.routes.register_broker(
            BrokerRegistration {
                cluster_name: header.cluster_name,
                broker_name: header.broker_name,
                broker_addr: header.broker_addr,
                ha_server_addr: header.ha_server_addr,
                broker_id: header.broker_id,
                enable_acting_master,
                heartbeat_timeout_ms: header
                    .heartbeat_timeout_millis
                    .and_then(|ms| u64::try_from(ms).ok())
                    .filter(|ms| *ms > 0),
                connection_id,
                data_version: wrapper.data_version,
                topic_config_table: wrapper.topic_config_table,
            },
            now_ms(),
        );
        let mut resp = RemotingCommand::success(req).with_header(&RegisterBrokerResponseHeader {
            ha_server_addr: result.ha_server_addr,
            master_addr: result.master_addr,
        });
        if let Some(order_conf) = self.kv.list(NAMESPACE_ORDER_TOPIC_CONFIG) {
            resp = resp.with_body(serde_json::to_vec(&order_conf).map_err(NamesrvError::Encode)?);
        }
        Ok(resp)
    }

    fn unregister_broker(&self, req: &RemotingCommand) -> Result<RemotingCommand, NamesrvError> {
        let header: UnregisterBrokerRequestHeader = req.decode_header()?;
        self.routes.unregister_broker(
            &header.cluster_name,
            &header.broker_name,
            &header.broker_addr,
        );
        Ok(RemotingCommand::success(req))
    }

    fn query_data_version(&self, req: &RemotingCommand) -> Result<RemotingCommand, NamesrvError> {
        let header: QueryDataVersionRequestHeader = req.decode_header()?;
        let version: DataVersion =
            from_fastjson(&req.body_bytes()).map_err(|source| NamesrvError::Body {
                what: "DataVersion",
                source,
            })?;
        let (changed, held) =
            self.routes
                .query_data_version(&header.broker_addr, &version, now_ms());
        let mut resp =
            RemotingCommand::success(req).with_header(&QueryDataVersionResponseHeader { changed });
        if let Some(held) = held {
            resp = resp.with_body(serde_json::to_vec(&held).map_err(NamesrvError::Encode)?);
        }
        Ok(resp)
    }

    fn get_route_info(&self, req: &RemotingCommand) -> Result<RemotingCommand, NamesrvError> {
        let header: GetRouteInfoRequestHeader = req.decode_header()?;
        match self.routes.topic_route(&header.topic) {
            Some(mut route) => {
                route.order_topic_conf = self.kv.get(NAMESPACE_ORDER_TOPIC_CONFIG, &header.topic);
                json_response(req, &route)
            }
            None => Ok(RemotingCommand::error(
                req,
                response::TOPIC_NOT_EXIST,
                format!(
                    "No topic route info in name server for the topic: {}",
                    header.topic
                ),
            )),
        }
    }

    fn get_topics_by_cluster(
        &self,
        req: &RemotingCommand,
    ) -> Result<RemotingCommand, NamesrvError> {
        let header: GetTopicsByClusterRequestHeader = req.decode_header()?;
        json_response(req, &self.routes.topics_by_cluster(&header.cluster))
    }

    fn delete_topic(&self, req: &RemotingCommand) -> Result<RemotingCommand, NamesrvError> {
        let header: DeleteTopicFromNamesrvRequestHeader = req.decode_header()?;
        self.routes
            .delete_topic(&header.topic, header.cluster_name.as_deref());
        Ok(RemotingCommand::success(req))
    }

    fn put_kv_config(&self, req: &RemotingCommand) -> Result<RemotingCommand, NamesrvError> {
        let header: PutKvConfigRequestHeader = req.decode_header()?;
        self.kv.put(&header.namespace, &header.key, &header.value);
        Ok(RemotingCommand::success(req))
    }

    fn get_kv_config(&self, req: &RemotingCommand) -> Result<RemotingCommand, NamesrvError> {
        let header: KvConfigKeyRequestHeader = req.decode_header()?;
        Ok(match self.kv.get(&header.namespace, &header.key) {
            Some(value) => RemotingCommand::success(req)
                .with_header(&GetKvConfigResponseHeader { value: Some(value) }),
            None => RemotingCommand::error(
                req,
                response::QUERY_NOT_FOUND,
                format!(
                    "No config item, Namespace: {} Key: {}",
                    header.namespace, header.key
                ),
            ),
        })
    }

    fn delete_kv_config(&self, req: &RemotingCommand) -> Result<RemotingCommand, NamesrvError> {
        let header: KvConfigKeyRequestHeader = req.decode_header()?;
        self.kv.delete(&header.namespace, &header.key);
        Ok(RemotingCommand::success(req))
    }

    fn get_kv_list(&self, req: &RemotingCommand) -> Result<RemotingCommand, NamesrvError> {
        let header: GetKvListByNamespaceRequestHeader = req.decode_header()?;
        match self.kv.list(&header.namespace) {
            Some(table) => json_response(req, &table),
            None => Ok(RemotingCommand::error(
                req,
                response::QUERY_NOT_FOUND,
                format!("No config item, Namespace: {}", header.namespace),
            )),
        }
    }
}

/// A SUCCESS response whose body is `value` as JSON (integer map keys quoted).
fn json_response<T: Serialize>(
    req: &RemotingCommand,
    value: &T,
) -> Result<RemotingCommand, NamesrvError> {
    let body = serde_json::to_vec(value).map_err(NamesrvError::Encode)?;
    Ok(RemotingCommand::success(req).with_body(body))
}
