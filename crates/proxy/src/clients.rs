//! The gRPC clients this endpoint knows, by client id: the settings each sent on its telemetry
//! stream, the stream's sender (how the broker reaches the client), and their registration in
//! the broker's producer and consumer tables, so the admin tools list them beside remoting
//! clients. As RocketMQ's proxy does, a producer is registered under each topic it publishes to,
//! used as its producer group: that is the group its half messages carry and the transaction
//! checker asks. Heartbeat, Telemetry and NotifyClientTermination land here.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use petrel_broker::processor::client::{notify_consumer_ids_changed, subscription_filter};
use petrel_broker::transaction::TransactionCheck;
use petrel_broker::{Broker, ClientChannel, ClientConn, GrpcClient};
use petrel_common::msg_id::now_ms;
use petrel_common::protocol::{ConsumerData, SubscriptionData};
use petrel_common::record;
use petrel_common::topic::validate_group;
use tokio::sync::mpsc;

use crate::context::{resource_name, status, Caller};
use crate::message::{to_message, Delivery};
use crate::pb::telemetry_command::Command;
use crate::pb::{
    settings, ClientType, Code, FilterType, RecoverOrphanedTransactionCommand, Resource, Settings,
    Status, TelemetryCommand,
};

/// Where the server's telemetry commands for one stream go.
pub type TelemetrySender = mpsc::Sender<Result<TelemetryCommand, tonic::Status>>;

/// A client with neither a telemetry stream nor a heartbeat for this long is forgotten.
pub const CLIENT_IDLE_EXPIRY: Duration = Duration::from_secs(120);

#[derive(Default)]
pub struct Clients {
    by_id: Mutex<HashMap<String, Arc<ClientState>>>,
}

/// One gRPC client. The broker's tables hold it (as a [`GrpcClient`]) for as long as it is
/// registered; one object per client id, so re-registrations are not membership changes.
pub struct ClientState {
    client_id: String,
    inner: Mutex<ClientInner>,
}

struct ClientInner {
    peer: SocketAddr,
    language: u8,
    version: i32,
    /// The settings as the client sent them.
    settings: Option<Settings>,
    /// The subscription version of those settings (when they came, ms).
    sub_version: i64,
    /// The open telemetry stream: its number and sender.
    telemetry: Option<(u64, TelemetrySender)>,
    last_seen: Instant,
}

impl Clients {
    /// The client `caller` is, created on first sight.
    pub fn get_or_insert(&self, caller: &Caller) -> Arc<ClientState> {
        let mut by_id = self.by_id.lock();
        let client = by_id
            .entry(caller.client_id.clone())
            .or_insert_with(|| {
                Arc::new(ClientState {
                    client_id: caller.client_id.clone(),
                    inner: Mutex::new(ClientInner {
                        peer: caller.peer,
                        language: caller.language,
                        version: caller.version,
                        settings: None,
                        sub_version: 0,
                        telemetry: None,
                        last_seen: Instant::now(),
                    }),
                })
            })
            .clone();
        {
            let mut inner = client.inner.lock();
            inner.peer = caller.peer;
            inner.language = caller.language;
            inner.version = caller.version;
            inner.last_seen = Instant::now();
        }
        client
    }

    pub fn remove(&self, client_id: &str) -> Option<Arc<ClientState>> {
        self.by_id.lock().remove(client_id)
    }

    /// Forgets clients without a telemetry stream that have not been heard from for
    /// [`CLIENT_IDLE_EXPIRY`] (the broker drops their registrations on its own).
    pub fn forget_idle(&self) {
        let now = Instant::now();
        self.by_id.lock().retain(|_, c| {
            let inner = c.inner.lock();
            inner.telemetry.is_some() || now.duration_since(inner.last_seen) < CLIENT_IDLE_EXPIRY
        });
    }
}

impl ClientState {
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The settings the client sent last, if any.
    pub fn settings(&self) -> Option<Settings> {
        self.inner.lock().settings.clone()
    }

    pub fn set_settings(&self, settings: Settings) {
        let mut inner = self.inner.lock();
        inner.settings = Some(settings);
        inner.sub_version = now_ms() as i64;
    }

    /// Makes `sender` (stream `stream`) the way to reach the client.
    pub fn attach_telemetry(&self, stream: u64, sender: TelemetrySender) {
        self.inner.lock().telemetry = Some((stream, sender));
    }

    /// Forgets stream `stream` if it is still the client's.
    pub fn detach_telemetry(&self, stream: u64) {
        let mut inner = self.inner.lock();
        if inner.telemetry.as_ref().is_some_and(|(s, _)| *s == stream) {
            inner.telemetry = None;
            inner.last_seen = Instant::now();
        }
    }

    fn sender(&self) -> Option<TelemetrySender> {
        self.inner.lock().telemetry.as_ref().map(|(_, s)| s.clone())
    }

    /// The broker's view of this client.
    fn channel(self: &Arc<Self>) -> ClientChannel {
        let inner = self.inner.lock();
        ClientChannel {
            client_id: self.client_id.clone(),
            conn: ClientConn::Grpc(self.clone()),
            language: inner.language,
            version: inner.version,
            last_update: Instant::now(),
        }
    }
}

impl GrpcClient for ClientState {
    fn peer_addr(&self) -> SocketAddr {
        self.inner.lock().peer
    }

    fn check_transaction(&self, check: TransactionCheck) -> Result<(), String> {
        let sender = self
            .sender()
            .ok_or("the client has no telemetry stream open")?;
        let rec = record::decode(&check.record, false).map_err(|e| e.to_string())?;
        let command = TelemetryCommand {
            status: None,
            command: Some(Command::RecoverOrphanedTransactionCommand(
                RecoverOrphanedTransactionCommand {
                    message: Some(to_message(&rec, Delivery::default())),
                    transaction_id: crate::transaction::TransactionId {
                        tran_state_table_offset: check.tran_state_table_offset,
                        commit_log_offset: check.commit_log_offset,
                    }
                    .to_string(),
                },
            )),
        };
        sender
            .try_send(Ok(command))
            .map_err(|e| format!("cannot reach the client over telemetry: {e}"))
    }
}

/// The client's role, from its settings, else from what the call says.
pub fn client_type(settings: Option<&Settings>, asked: i32) -> ClientType {
    settings
        .and_then(|s| s.client_type)
        .and_then(|t| ClientType::try_from(t).ok())
        .filter(|t| *t != ClientType::Unspecified)
        .or_else(|| ClientType::try_from(asked).ok())
        .unwrap_or(ClientType::Unspecified)
}

/// Registers `client` with the broker as its settings (or, without any, the heartbeat's
/// `group` and `asked` type) say: a producer under each of its topics, a consumer in its group
/// with its subscriptions.
pub fn register(
    b: &Arc<Broker>,
    client: &Arc<ClientState>,
    asked_type: i32,
    asked_group: Option<&Resource>,
) -> Result<(), Status> {
    let (settings, sub_version) = {
        let inner = client.inner.lock();
        (inner.settings.clone(), inner.sub_version)
    };
    match client_type(settings.as_ref(), asked_type) {
        ClientType::Producer => {
            for topic in publishing_topics(settings.as_ref()) {
                b.producers.register(&topic, client.channel());
            }
            Ok(())
        }
        t @ (ClientType::PushConsumer | ClientType::SimpleConsumer) => {
            let subscription = match settings.as_ref().and_then(|s| s.pub_sub.as_ref()) {
                Some(settings::PubSub::Subscription(s)) => Some(s),
                _ => None,
            };
            let group = asked_group
                .or_else(|| subscription.and_then(|s| s.group.as_ref()))
                .map(resource_name)
                .unwrap_or_default();
            validate_group(&group).map_err(|e| status(Code::IllegalConsumerGroup, e))?;
            match b
                .groups
                .get_or_create(&group, b.config.auto_create_subscription_group)
            {
                Ok(Some(_)) => {}
                Ok(None) => {
                    return Err(status(
                        Code::ConsumerGroupNotFound,
                        format!(
                            "subscription group {group} does not exist and auto-creation is off"
                        ),
                    ))
                }
                Err(e) => {
                    return Err(status(
                        Code::InternalServerError,
                        format!("cannot write the group table: {e}"),
                    ))
                }
            }
            let mut subs = Vec::new();
            for entry in subscription
                .map(|s| s.subscriptions.as_slice())
                .unwrap_or_default()
            {
                let Some(topic) = entry.topic.as_ref().map(resource_name) else {
                    continue;
                };
                let sub = subscription_data(&topic, entry.expression.as_ref(), sub_version);
                subscription_filter(b, &group, &sub)
                    .map_err(|r| status(Code::IllegalFilterExpression, r.remark))?;
                subs.push(sub);
            }
            let data = ConsumerData {
                group_name: group.clone(),
                consume_type: if t == ClientType::PushConsumer {
                    "CONSUME_PASSIVELY"
                } else {
                    "CONSUME_ACTIVELY"
                }
                .to_owned(),
                message_model: "CLUSTERING".to_owned(),
                consume_from_where: "CONSUME_FROM_LAST_OFFSET".to_owned(),
                subscription_data_set: subs,
                unit_mode: false,
            };
            if b.consumers.register(client.channel(), &data) {
                notify_consumer_ids_changed(b, &group);
            }
            Ok(())
        }
        other => Err(status(
            Code::UnrecognizedClientType,
            format!("client type {other:?} is not served"),
        )),
    }
}

/// Takes `client` out of the broker's tables (NotifyClientTermination).
pub fn unregister(b: &Arc<Broker>, client: &ClientState, asked_group: Option<&Resource>) {
    let settings = client.settings();
    for topic in publishing_topics(settings.as_ref()) {
        b.producers.unregister(&topic, &client.client_id);
    }
    let group = asked_group.map(resource_name).or_else(|| {
        match settings.as_ref().and_then(|s| s.pub_sub.as_ref()) {
            Some(settings::PubSub::Subscription(s)) => s.group.as_ref().map(resource_name),
            _ => None,
        }
    });
    if let Some(group) = group {
        if b.consumers.unregister(&group, &client.client_id) {
            notify_consumer_ids_changed(b, &group);
        }
    }
}

fn publishing_topics(settings: Option<&Settings>) -> Vec<String> {
    match settings.and_then(|s| s.pub_sub.as_ref()) {
        Some(settings::PubSub::Publishing(p)) => p.topics.iter().map(resource_name).collect(),
        _ => Vec::new(),
    }
}

/// A subscription as the broker keeps it: TAG (also when the type is left out) or SQL92.
pub fn subscription_data(
    topic: &str,
    expression: Option<&crate::pb::FilterExpression>,
    sub_version: i64,
) -> SubscriptionData {
    match expression {
        Some(e) if e.r#type == FilterType::Sql as i32 => {
            SubscriptionData::sql92(topic, &e.expression, sub_version)
        }
        Some(e) => SubscriptionData::tags(topic, &e.expression, sub_version),
        None => SubscriptionData::tags(topic, "*", sub_version),
    }
}
