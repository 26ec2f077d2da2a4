//! The producer: picks a queue from the topic's route, sends with SEND_MESSAGE_V2 and retries
//! retryable failures on another queue. It never blocks longer than its request timeouts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use petrel_common::msg_id::now_ms;
use petrel_common::properties;
use petrel_common::protocol::{MessageQueue, TopicRouteData};
use petrel_common::record::{java_string_hash, SYSFLAG_TRANSACTION_PREPARED};
use petrel_common::topic::{validate_topic, AUTO_CREATE_TOPIC_KEY};
use petrel_remoting::code::{request, response};
use petrel_remoting::headers::{SendMessageRequestHeaderV2, SendMessageResponseHeader};
use petrel_remoting::RemotingCommand;

use crate::config::ClientConfig;
use crate::error::{ClientError, Result};
use crate::instance::{publish_queues, ClientInstance};
use crate::message::Message;
use crate::transaction::{LocalTransactionState, TransactionChecker, TransactionSendResult};

/// Queues a topic auto-created from `TBW102` gets (the Java producer's default).
pub const DEFAULT_TOPIC_QUEUE_NUMS: i32 = 4;
/// Attempts after the first for a failed `send` (`retryTimesWhenSendFailed`).
pub const SEND_RETRIES: usize = 2;
/// Response codes worth retrying on another queue (`DefaultMQProducer.retryResponseCodes`):
/// TOPIC_NOT_EXIST, SERVICE_NOT_AVAILABLE, SYSTEM_ERROR, SYSTEM_BUSY, NO_PERMISSION, NO_BUYER_ID,
/// NOT_IN_CURRENT_UNIT, GO_AWAY.
pub const RETRYABLE_SEND_CODES: [i32; 8] = [17, 14, 1, 2, 16, 204, 205, 1500];
/// A route borrowed from `TBW102` is re-asked of the name server after this long, so the real
/// route is used as soon as the broker has registered the auto-created topic.
const FALLBACK_ROUTE_REFRESH: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendStatus {
    SendOk,
    FlushDiskTimeout,
    FlushSlaveTimeout,
    SlaveNotAvailable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendResult {
    pub status: SendStatus,
    /// The message's UNIQ_KEY.
    pub msg_id: String,
    /// The broker's id: store host + commit-log offset.
    pub offset_msg_id: String,
    pub queue: MessageQueue,
    pub queue_offset: i64,
}

/// Where a topic's messages may go.
struct PublishInfo {
    /// Writable queues of the route, sorted: what `send` rotates over and `send_orderly` hashes over.
    queues: Vec<MessageQueue>,
    /// The route is `TBW102`'s, borrowed until the topic exists.
    fallback: bool,
    fetched: Instant,
}

pub struct Producer {
    group: String,
    instance: Arc<ClientInstance>,
    owns_instance: bool,
    publish: Mutex<HashMap<String, Arc<PublishInfo>>>,
    next_queue: AtomicUsize,
    /// The last born timestamp sent: each send is born at least a millisecond after the one
    /// before, so a retry is never byte-identical to its first attempt (a broker with ACL
    /// refuses a repeated signature as a replay).
    last_born_ms: AtomicI64,
}

impl Producer {
    /// A producer with its own client instance.
    pub fn new(group: impl Into<String>, config: ClientConfig) -> Self {
        Self::build(group.into(), ClientInstance::new(config), true)
    }

    /// A producer sharing `instance` (its connections, routes and heartbeats) with other clients.
    pub fn with_instance(group: impl Into<String>, instance: Arc<ClientInstance>) -> Self {
        Self::build(group.into(), instance, false)
    }

    fn build(group: String, instance: Arc<ClientInstance>, owns_instance: bool) -> Self {
        Producer {
            group,
            instance,
            owns_instance,
            publish: Mutex::new(HashMap::new()),
            next_queue: AtomicUsize::new(rand::random::<u16>() as usize),
            last_born_ms: AtomicI64::new(0),
        }
    }

    pub fn group(&self) -> &str {
        &self.group
    }

    pub fn instance(&self) -> &Arc<ClientInstance> {
        &self.instance
    }

    pub async fn start(&self) -> Result<()> {
        petrel_common::topic::validate_group(&self.group).map_err(ClientError::InvalidArgument)?;
        self.instance.register_producer(&self.group);
        self.instance.start()
    }

    /// Unregisters the group from every broker; closes the instance if it is ours or unused.
    pub async fn shutdown(&self) {
        self.instance.unregister_producer(&self.group);
        self.instance
            .unregister_client(Some(&self.group), None)
            .await;
        if self.owns_instance || !self.instance.has_groups() {
            self.instance.shutdown();
        }
    }

    /// Writable queues of `topic` (the topic must exist).
    pub async fn fetch_queues(&self, topic: &str) -> Result<Vec<MessageQueue>> {
        let route = self.instance.update_topic_route(topic).await?;
        Ok(publish_queues(topic, &route, None))
    }

    /// Now, or a millisecond after the last send's born timestamp if that is not earlier.
    fn next_born_ms(&self) -> i64 {
        let now = now_ms() as i64;
        let prev = self
            .last_born_ms
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| {
                Some(now.max(last + 1))
            })
            .unwrap_or(now);
        now.max(prev + 1)
    }

    /// Sends to a round-robin queue, retrying retryable failures up to [`SEND_RETRIES`] more
    /// times, each on another broker when there is one.
    pub async fn send(&self, msg: Message) -> Result<SendResult> {
        let msg = self.prepare(msg)?;
        self.send_with_retries(&msg, false).await
    }

    /// Sends `msgs` in one SEND_BATCH_MESSAGE to one round-robin queue, where they get
    /// consecutive queue offsets; retried as [`Producer::send`] is. Like the Java client's
    /// `send(Collection)`: one topic, no delay or delivery time, no transaction. The result's
    /// `msg_id` is the messages' UNIQ_KEYs joined by commas, `queue_offset` the first message's.
    pub async fn send_batch(&self, msgs: Vec<Message>) -> Result<SendResult> {
        let Some(topic) = msgs.first().map(|m| m.topic.clone()) else {
            return Err(ClientError::InvalidArgument("the batch is empty".into()));
        };
        let mut body = Vec::new();
        let mut ids = Vec::with_capacity(msgs.len());
        for msg in msgs {
            if msg.topic != topic {
                return Err(ClientError::InvalidArgument(format!(
                    "a batch holds one topic: {} and {topic}",
                    msg.topic
                )));
            }
            let delayed = [
                properties::DELAY,
                properties::TIMER_DELIVER_MS,
                properties::TIMER_DELAY_SEC,
                properties::TIMER_DELAY_MS,
            ]
            .iter()
            .any(|name| msg.properties.get(name).is_some());
            if delayed {
                return Err(ClientError::InvalidArgument(
                    "a delayed message cannot be sent in a batch".into(),
                ));
            }
            let msg = self.prepare(msg)?;
            encode_batch_entry(&msg, &mut body)?;
            ids.push(
                msg.properties
                    .get(properties::UNIQ_KEY)
                    .unwrap_or_default()
                    .to_owned(),
            );
        }
        let mut batch = Message::new(topic, body);
        batch.properties.insert(properties::WAIT, "true");
        let mut result = self.send_with_retries(&batch, true).await?;
        result.msg_id = ids.join(",");
        Ok(result)
    }

    async fn send_with_retries(&self, msg: &Message, batch: bool) -> Result<SendResult> {
        let mut last_broker: Option<String> = None;
        let mut last_err = None;
        for attempt in 0..=SEND_RETRIES {
            let info = self.publish_info(&msg.topic).await?;
            let mq = self.select_queue(&info.queues, last_broker.as_deref())?;
            match self.send_kernel_flagged(msg, &mq, 0, batch).await {
                Ok(r) => return Ok(r),
                Err(e) if is_retryable(&e) => {
                    tracing::debug!(attempt, queue = ?mq, "send failed, retrying: {e}");
                    if e.code() == Some(response::TOPIC_NOT_EXIST) {
                        self.publish.lock().remove(&msg.topic);
                    }
                    last_broker = Some(mq.broker_name);
                    last_err = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| ClientError::NoRoute(msg.topic.clone())))
    }

    /// Answers the brokers' checks of this group's unresolved transactions with `checker`
    /// (any instance of the group may be asked, not only the one that sent).
    pub fn set_transaction_checker(&self, checker: TransactionChecker) {
        self.instance
            .register_transaction_checker(&self.group, checker);
    }

    /// Sends `msg` as a half message (invisible to consumers), runs the local transaction
    /// `local` once it is stored, and tells the broker the outcome: commit delivers the
    /// message, rollback drops it, unknown leaves it to the broker's check. A half message
    /// the broker refused is not run through `local`.
    pub async fn send_in_transaction(
        &self,
        msg: Message,
        local: impl FnOnce(&Message) -> LocalTransactionState,
    ) -> Result<TransactionSendResult> {
        let mut msg = self.prepare(msg)?;
        msg.properties.insert(properties::TRAN_MSG, "true");
        msg.properties.insert(properties::PGROUP, &self.group);
        let info = self.publish_info(&msg.topic).await?;
        let mq = self.select_queue(&info.queues, None)?;
        let send = self
            .send_kernel_flagged(&msg, &mq, SYSFLAG_TRANSACTION_PREPARED, false)
            .await?;
        let local_state = match send.status {
            SendStatus::SendOk => local(&msg),
            _ => LocalTransactionState::Rollback,
        };
        let addr = self
            .instance
            .find_master_addr(&mq.broker_name, &mq.topic)
            .await?;
        let end = crate::transaction::end_request(&self.group, &send, local_state)?;
        // Oneway, as the Java client: a lost end is repaired by the broker's check.
        if let Err(e) = self.instance.invoke_oneway(&addr, end).await {
            tracing::warn!(msg_id = %send.msg_id, "END_TRANSACTION not sent: {e}");
        }
        Ok(TransactionSendResult { send, local_state })
    }

    /// Sends to `queue`, once.
    pub async fn send_to_queue(&self, msg: Message, queue: &MessageQueue) -> Result<SendResult> {
        let msg = self.prepare(msg)?;
        if queue.topic != msg.topic {
            return Err(ClientError::InvalidArgument(format!(
                "queue of topic {} for a message of topic {}",
                queue.topic, msg.topic
            )));
        }
        self.send_kernel(&msg, queue).await
    }

    /// Sends to the queue `|java_string_hash(key)| % queue count` of the route, once: the same
    /// key lands on the same queue while the route is unchanged.
    pub async fn send_orderly(&self, msg: Message, sharding_key: &str) -> Result<SendResult> {
        let msg = self.prepare(msg)?;
        let info = self.publish_info(&msg.topic).await?;
        let mq = select_by_hash(&info.queues, sharding_key)
            .ok_or_else(|| ClientError::NoRoute(msg.topic.clone()))?;
        self.send_kernel(&msg, &mq).await
    }

    /// Validates the message and gives it UNIQ_KEY and WAIT unless the caller set them.
    fn prepare(&self, mut msg: Message) -> Result<Message> {
        validate_topic(&msg.topic).map_err(ClientError::InvalidArgument)?;
        if msg.properties.get(properties::UNIQ_KEY).is_none() {
            msg.properties
                .insert(properties::UNIQ_KEY, self.instance.next_uniq_id());
        }
        if msg.properties.get(properties::WAIT).is_none() {
            msg.properties.insert(properties::WAIT, "true");
        }
        Ok(msg)
    }

    async fn publish_info(&self, topic: &str) -> Result<Arc<PublishInfo>> {
        if let Some(info) = self.publish.lock().get(topic) {
            if !info.fallback || info.fetched.elapsed() < FALLBACK_ROUTE_REFRESH {
                return Ok(info.clone());
            }
        }
        let info = match self.instance.update_topic_route(topic).await {
            Ok(route) => PublishInfo::new(topic, &route, false),
            Err(e) if e.code() == Some(response::TOPIC_NOT_EXIST) => {
                let route = self
                    .instance
                    .update_topic_route(AUTO_CREATE_TOPIC_KEY)
                    .await?;
                PublishInfo::new(topic, &route, true)
            }
            Err(e) => {
                // Keep sending on the route we had if the name server is unreachable.
                if let Some(info) = self.publish.lock().get(topic) {
                    tracing::debug!(topic, "route refresh failed, keeping the old one: {e}");
                    return Ok(info.clone());
                }
                return Err(e);
            }
        };
        if info.queues.is_empty() {
            return Err(ClientError::NoRoute(topic.to_owned()));
        }
        let info = Arc::new(info);
        self.publish.lock().insert(topic.to_owned(), info.clone());
        Ok(info)
    }

    fn select_queue(
        &self,
        queues: &[MessageQueue],
        avoid_broker: Option<&str>,
    ) -> Result<MessageQueue> {
        if queues.is_empty() {
            return Err(ClientError::NoRoute(String::new()));
        }
        let start = self.next_queue.fetch_add(1, Ordering::Relaxed);
        if let Some(avoid) = avoid_broker {
            for i in 0..queues.len() {
                let q = &queues[(start + i) % queues.len()];
                if q.broker_name != avoid {
                    return Ok(q.clone());
                }
            }
        }
        Ok(queues[start % queues.len()].clone())
    }

    async fn send_kernel(&self, msg: &Message, mq: &MessageQueue) -> Result<SendResult> {
        self.send_kernel_flagged(msg, mq, 0, false).await
    }

    /// One request; with `batch`, `msg.body` holds the encoded messages.
    async fn send_kernel_flagged(
        &self,
        msg: &Message,
        mq: &MessageQueue,
        sys_flag: i32,
        batch: bool,
    ) -> Result<SendResult> {
        let addr = self
            .instance
            .find_master_addr(&mq.broker_name, &mq.topic)
            .await?;
        let header = SendMessageRequestHeaderV2 {
            producer_group: self.group.clone(),
            topic: msg.topic.clone(),
            default_topic: AUTO_CREATE_TOPIC_KEY.to_owned(),
            default_topic_queue_nums: DEFAULT_TOPIC_QUEUE_NUMS,
            queue_id: mq.queue_id,
            sys_flag,
            born_timestamp: self.next_born_ms(),
            flag: msg.flag,
            properties: Some(msg.properties.as_str().to_owned()),
            reconsume_times: Some(0),
            unit_mode: Some(false),
            max_reconsume_times: None,
            batch: Some(batch),
            broker_name: Some(mq.broker_name.clone()),
        };
        let code = if batch {
            request::SEND_BATCH_MESSAGE
        } else {
            request::SEND_MESSAGE_V2
        };
        let cmd = RemotingCommand::request_with_header(code, &header).with_body(msg.body.clone());
        let resp = self
            .instance
            .invoke(&addr, cmd, self.instance.config().request_timeout)
            .await?;
        let status = match resp.code {
            response::SUCCESS => SendStatus::SendOk,
            response::FLUSH_DISK_TIMEOUT => SendStatus::FlushDiskTimeout,
            response::FLUSH_SLAVE_TIMEOUT => SendStatus::FlushSlaveTimeout,
            response::SLAVE_NOT_AVAILABLE => SendStatus::SlaveNotAvailable,
            code => return Err(ClientError::broker(code, resp.remark)),
        };
        let h: SendMessageResponseHeader = resp.decode_header()?;
        Ok(SendResult {
            status,
            msg_id: msg
                .properties
                .get(properties::UNIQ_KEY)
                .unwrap_or_default()
                .to_owned(),
            offset_msg_id: h.msg_id,
            queue: MessageQueue {
                topic: msg.topic.clone(),
                broker_name: mq.broker_name.clone(),
                queue_id: h.queue_id,
            },
            queue_offset: h.queue_offset,
        })
    }
}

impl PublishInfo {
    fn new(topic: &str, route: &TopicRouteData, fallback: bool) -> Self {
        let limit = fallback.then_some(DEFAULT_TOPIC_QUEUE_NUMS);
        PublishInfo {
            queues: publish_queues(topic, route, limit),
            fallback,
            fetched: Instant::now(),
        }
    }
}

/// One message of a SEND_BATCH_MESSAGE body (protocol reference §4.8): total size, magic and
/// body CRC (both unused by brokers, sent as 0), flag, body length, body, properties length
/// (a short), properties.
fn encode_batch_entry(msg: &Message, out: &mut Vec<u8>) -> Result<()> {
    let props = msg.properties.as_str().as_bytes();
    let props_len = i16::try_from(props.len()).map_err(|_| {
        ClientError::InvalidArgument(format!(
            "properties of {} bytes do not fit a batch entry (at most {})",
            props.len(),
            i16::MAX
        ))
    })?;
    let total = 4 + 4 + 4 + 4 + 4 + msg.body.len() + 2 + props.len();
    let total = i32::try_from(total)
        .map_err(|_| ClientError::InvalidArgument("a batch entry over 2 GiB".into()))?;
    out.extend_from_slice(&total.to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes());
    out.extend_from_slice(&msg.flag.to_be_bytes());
    out.extend_from_slice(&(msg.body.len() as i32).to_be_bytes());
    out.extend_from_slice(&msg.body);
    out.extend_from_slice(&props_len.to_be_bytes());
    out.extend_from_slice(props);
    Ok(())
}

fn is_retryable(e: &ClientError) -> bool {
    match e {
        ClientError::Broker { code, .. } => RETRYABLE_SEND_CODES.contains(code),
        ClientError::Remoting(_) | ClientError::NoBrokerAddr(_) => true,
        _ => false,
    }
}

/// The queue for `key`: `|java_string_hash(key)| % queues.len()` (Java's SelectMessageQueueByHash).
pub fn select_by_hash(queues: &[MessageQueue], key: &str) -> Option<MessageQueue> {
    if queues.is_empty() {
        return None;
    }
    let idx = java_string_hash(key).unsigned_abs() as usize % queues.len();
    Some(queues[idx].clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::tests::route;

    fn queues(n: i32) -> Vec<MessageQueue> {
        (0..n)
            .map(|i| MessageQueue {
                topic: "T".into(),
                broker_name: "a".into(),
                queue_id: i,
            })
            .collect()
    }

    #[test]
    fn orderly_selection_is_stable_and_matches_java() {
        let qs = queues(8);
        // "order-1".hashCode() in Java is -1207111310; |h| % 8 == 6.
        assert_eq!(java_string_hash("order-1"), -1207111310);
        assert_eq!(select_by_hash(&qs, "order-1").unwrap().queue_id, 6);
        for key in ["a", "bb", "order-42", "ключ", ""] {
            assert_eq!(select_by_hash(&qs, key), select_by_hash(&qs, key));
        }
        // A negative hash still yields a valid index.
        let neg = (0..1000)
            .map(|i| format!("key{i}"))
            .find(|k| java_string_hash(k) < 0)
            .unwrap();
        let expected = (java_string_hash(&neg) as i64).abs() % 8;
        assert_eq!(select_by_hash(&qs, &neg).unwrap().queue_id as i64, expected);
        assert!(select_by_hash(&[], "x").is_none());
    }

    #[tokio::test]
    async fn round_robin_covers_every_queue_and_avoids_the_failed_broker() {
        let p = Producer::new("pg", ClientConfig::default());
        let r = route(&[("a", Some("a:1"), 2, 2, 6), ("b", Some("b:1"), 2, 2, 6)]);
        let qs = publish_queues("T", &r, None);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..qs.len() {
            seen.insert(p.select_queue(&qs, None).unwrap());
        }
        assert_eq!(seen.len(), 4);
        for _ in 0..10 {
            assert_eq!(p.select_queue(&qs, Some("a")).unwrap().broker_name, "b");
        }
        let only_a = publish_queues("T", &route(&[("a", Some("a:1"), 2, 2, 6)]), None);
        assert_eq!(p.select_queue(&only_a, Some("a")).unwrap().broker_name, "a");
    }

    #[tokio::test]
    async fn prepare_adds_uniq_key_and_wait_but_keeps_callers() {
        let p = Producer::new("pg", ClientConfig::default());
        let m = p.prepare(Message::new("T", "x")).unwrap();
        assert_eq!(m.property(properties::UNIQ_KEY).map(str::len), Some(32));
        assert_eq!(m.property(properties::WAIT), Some("true"));
        let m = p
            .prepare(
                Message::new("T", "x")
                    .with_property(properties::UNIQ_KEY, "MINE")
                    .with_property(properties::WAIT, "false"),
            )
            .unwrap();
        assert_eq!(m.property(properties::UNIQ_KEY), Some("MINE"));
        assert_eq!(m.property(properties::WAIT), Some("false"));
        assert!(p.prepare(Message::new("bad topic!", "x")).is_err());
    }

    #[test]
    fn retryable_codes_match_the_java_producer() {
        for code in RETRYABLE_SEND_CODES {
            assert!(is_retryable(&ClientError::broker(code, None)));
        }
        assert!(!is_retryable(&ClientError::broker(13, None)));
        assert!(is_retryable(&ClientError::Remoting(
            petrel_remoting::RemotingError::Timeout(3000)
        )));
    }
}
