//! POP consumption (RocketMQ 5.x): the broker, not the client, decides which messages a
//! consumer gets. A receive hands out messages and makes them invisible to the group for a
//! while; an ack finishes them; a message not acked in time is handed out again with its
//! delivery attempt one higher, and past the group's last attempt it goes to `%DLQ%<group>`.
//! The gRPC endpoint and the remoting POP codes both use this one mechanism.
//!
//! Messages stay where they are: a redelivery reads the same queue entry again, so no retry
//! copies are written. A FIFO group (`consumeMessageOrderly`) gets nothing more from a queue
//! while any message it was handed from it is still invisible, so each message group is
//! consumed in order.

mod handle;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use petrel_common::filter::MessageFilter;
use petrel_common::msg_id::offset_msg_id;
use petrel_common::properties::{Properties, DELAY, ORIGIN_MESSAGE_ID, RETRY_TOPIC, TAGS};
use petrel_common::protocol::SubscriptionData;
use petrel_common::record;
use petrel_common::topic::{perm, validate_group, validate_topic};
use petrel_store::GetStatus;

pub use handle::ReceiptHandle;
use state::InFlight;
pub use state::{PopTable, QueueKey, MAX_IN_FLIGHT_PER_QUEUE};

use crate::broker::Broker;
use crate::processor::client::subscription_filter;
use crate::processor::pull::PullFilter;

/// Shortest invisible time a receive may ask for: shorter would hand a message to another
/// consumer before the first could have acked it.
pub const MIN_INVISIBLE: Duration = Duration::from_secs(1);
/// Longest invisible time (RocketMQ's proxy allows 12 h).
pub const MAX_INVISIBLE: Duration = Duration::from_secs(12 * 3600);
/// How far an auto-renewed message's invisible time is pushed each time it runs out.
pub const AUTO_RENEW_STEP: Duration = Duration::from_secs(60);

/// One receive.
#[derive(Debug, Clone)]
pub struct PopRequest {
    pub group: String,
    pub topic: String,
    /// Only this queue (a remoting consumer the broker assigned queues to); `None`: any
    /// readable queue of the topic, from a random one on, so a consumer is never parked on an
    /// empty queue while another is full.
    pub queue_id: Option<i32>,
    pub max_messages: u32,
    pub invisible: Duration,
    /// The tag or SQL92 subscription; tags are matched exactly, not by hash.
    pub filter: SubscriptionData,
    /// How long to wait when nothing is there.
    pub long_poll: Duration,
    pub client_id: String,
    /// Keep what this receive hands out invisible for as long as the client stays connected
    /// (a push consumer's messages wait in its local cache): each time `invisible` runs out
    /// while the client still heartbeats, it is renewed, and the receipt handle stays valid.
    pub auto_renew: bool,
    /// The consumer's address, for the broker's trace.
    pub client_addr: SocketAddr,
}

/// A message handed out.
#[derive(Debug, Clone)]
pub struct Popped {
    /// The stored record, as in a pull answer (decode with `petrel_common::record::decode`).
    pub record: Bytes,
    pub receipt_handle: String,
    /// 1 on the first delivery.
    pub delivery_attempt: u32,
    pub queue_id: i32,
    pub queue_offset: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PopError {
    #[error("invalid receipt handle: {0}")]
    InvalidHandle(String),
    #[error("{0}")]
    TopicNotFound(String),
    #[error("{0}")]
    GroupNotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Illegal(String),
    #[error("{0}")]
    Store(String),
}

/// What holds for every queue one round of a receive looks at.
#[derive(Clone, Copy)]
struct Round<'a> {
    req: &'a PopRequest,
    now: i64,
    invisible: Duration,
    fifo: bool,
    max_attempts: u32,
    filter: &'a PopFilter<'a>,
}

/// What one pass over a queue found.
#[derive(Default)]
struct QueuePass {
    popped: Vec<Popped>,
    /// Entries past their last attempt, to move to the dead-letter queue: offset and token.
    exhausted: Vec<(i64, u64)>,
    /// When an entry now invisible becomes visible again.
    next_visible_at: Option<i64>,
}

impl Broker {
    /// Hands out up to `max_messages` messages, waiting up to `long_poll` when none is
    /// visible. An empty answer means nothing was found in time.
    pub async fn pop(self: &Arc<Self>, req: PopRequest) -> Result<Vec<Popped>, PopError> {
        let (queues, fifo, max_attempts) = self.check_pop(&req)?;
        let sql = subscription_filter(self, &req.group, &req.filter)
            .map_err(|r| PopError::Illegal(r.remark))?;
        let filter = PopFilter {
            pull: PullFilter {
                sub: &req.filter,
                sql: sql.as_deref(),
            },
        };
        let want = req
            .max_messages
            .clamp(1, self.config.max_pull_msg_nums.max(1)) as usize;
        let invisible = req.invisible.clamp(MIN_INVISIBLE, MAX_INVISIBLE);
        let deadline = Instant::now() + req.long_poll.min(self.config.long_poll_max);
        let (first, looked_at) = match req.queue_id {
            Some(q) if (0..queues).contains(&q) => (q, 1),
            Some(q) => {
                return Err(PopError::Illegal(format!(
                    "queue {q} of topic {} does not exist: it has {queues} readable queues",
                    req.topic
                )))
            }
            None => (rand::random_range(0..queues), queues),
        };
        loop {
            // One time for the whole answer: a remoting client takes one pop time for all
            // of it, and that time is each delivery's token.
            let round = Round {
                req: &req,
                now: now_ms(),
                invisible,
                fifo,
                max_attempts,
                filter: &filter,
            };
            let mut found = Vec::new();
            let mut wake_at: Option<i64> = None;
            let mut exhausted = Vec::new();
            for i in 0..looked_at {
                if found.len() >= want {
                    break;
                }
                let queue_id = (first + i) % queues;
                let pass = self.pop_queue(&round, queue_id, want - found.len())?;
                found.extend(pass.popped);
                exhausted.extend(pass.exhausted.into_iter().map(|(o, t)| (queue_id, o, t)));
                wake_at = match (wake_at, pass.next_visible_at) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            let moved = !exhausted.is_empty();
            for (queue_id, offset, token) in exhausted {
                self.dead_letter(&req.group, &req.topic, queue_id, offset, token)
                    .await?;
            }
            if !found.is_empty() {
                self.count_get(found.len() as u64);
                self.trace_popped(&req, &found);
                return Ok(found);
            }
            // Dead-lettering may have unblocked a FIFO queue: look again at once.
            if moved {
                continue;
            }
            let now = Instant::now();
            if now >= deadline || self.stopping.is_cancelled() {
                return Ok(found);
            }
            let until = match wake_at {
                Some(at) => {
                    let wait = (at - now_ms()).max(0) as u64;
                    deadline.min(now + Duration::from_millis(wait))
                }
                None => deadline,
            };
            let pending = || {
                (0..looked_at).any(|i| {
                    let q = (first + i) % queues;
                    self.pop_table
                        .next_of(&key(&req, q))
                        .is_some_and(|next| self.store.max_offset(&req.topic, q) > next)
                })
            };
            tokio::select! {
                _ = self.stopping.cancelled() => return Ok(found),
                _ = self.pull_hold.wait_for_topic(&req.topic, until, pending) => {}
            }
        }
    }

    /// Tells the broker's trace who got what, one queue at a time, each record with its
    /// attempt (the trace reads it from the reconsume times).
    fn trace_popped(&self, req: &PopRequest, found: &[Popped]) {
        if !self.trace.enabled() {
            return;
        }
        let mut by_queue: Vec<&Popped> = found.iter().collect();
        by_queue.sort_by_key(|p| (p.queue_id, p.queue_offset));
        for queue in by_queue.chunk_by(|a, b| a.queue_id == b.queue_id) {
            let records = queue
                .iter()
                .map(|p| {
                    with_reconsume_times(&p.record, p.delivery_attempt.saturating_sub(1) as i32)
                })
                .collect();
            self.trace
                .popped(&req.group, &req.client_id, req.client_addr, records);
        }
    }

    /// Finishes the delivery `receipt_handle` names.
    pub fn ack(&self, group: &str, topic: &str, receipt_handle: &str) -> Result<(), PopError> {
        let h = parse_handle(topic, receipt_handle)?;
        let key = QueueKey {
            group: group.to_owned(),
            topic: topic.to_owned(),
            queue_id: h.queue_id,
        };
        if !self.pop_table.contains(&key) {
            return Err(PopError::InvalidHandle(format!(
                "group {group} never received from queue {} of {topic}",
                h.queue_id
            )));
        }
        let now = now_ms();
        let (outcome, written) = self.pop_table.change(
            &key,
            || 0,
            |c| {
                let before = c.state().done_below();
                match c.state().in_flight.get(&h.queue_offset) {
                    Some(e) if e.token == h.token => {
                        c.done(h.queue_offset);
                        Ok((before, c.state().done_below()))
                    }
                    _ if h.visible_at_ms <= now => Err(PopError::InvalidHandle(
                        "the receipt handle has expired: its invisible time is over".into(),
                    )),
                    Some(_) => Err(PopError::InvalidHandle(
                        "a newer receipt handle replaced this one".into(),
                    )),
                    // Acked before: acking twice is not an error.
                    None => Ok((before, before)),
                }
            },
        );
        let (before, after) = outcome?;
        written.map_err(journal_failed)?;
        if after > before {
            self.commit_offset(group, topic, h.queue_id, after);
        }
        Ok(())
    }

    /// Gives the delivery `receipt_handle` names a new invisible time from now, and returns
    /// the handle that replaces it. `count_attempt` false: the next delivery is not counted
    /// as another attempt.
    pub fn change_invisible(
        &self,
        group: &str,
        topic: &str,
        receipt_handle: &str,
        invisible: Duration,
        count_attempt: bool,
    ) -> Result<String, PopError> {
        let h = parse_handle(topic, receipt_handle)?;
        let key = QueueKey {
            group: group.to_owned(),
            topic: topic.to_owned(),
            queue_id: h.queue_id,
        };
        if !self.pop_table.contains(&key) {
            return Err(PopError::InvalidHandle(format!(
                "group {group} never received from queue {} of {topic}",
                h.queue_id
            )));
        }
        // Zero is allowed here: "visible again now" is how a client gives a message back.
        let invisible = invisible.min(MAX_INVISIBLE);
        let now = now_ms();
        let visible_at_ms = now + invisible.as_millis() as i64;
        let token = state::token_at(now, Some(h.token));
        let (outcome, written) = self.pop_table.change(
            &key,
            || 0,
            |c| match c.state().in_flight.get(&h.queue_offset).cloned() {
                Some(e) if e.token == h.token => {
                    c.deliver(
                        h.queue_offset,
                        InFlight {
                            visible_at_ms,
                            token,
                            count_next: count_attempt,
                            // The client gave the message back (a push consumer's nack): its
                            // new time runs out, it is no longer renewed.
                            owner: None,
                            ..e
                        },
                    );
                    Ok(())
                }
                Some(_) => Err(PopError::InvalidHandle(
                    "the message was handed out again since this receipt handle".into(),
                )),
                None => Err(PopError::InvalidHandle(
                    "the message was already acknowledged".into(),
                )),
            },
        );
        outcome?;
        written.map_err(journal_failed)?;
        Ok(ReceiptHandle {
            topic: topic.to_owned(),
            queue_id: h.queue_id,
            queue_offset: h.queue_offset,
            token,
            visible_at_ms,
        }
        .to_string())
    }

    /// Moves the message `receipt_handle` names to `%DLQ%<group>` now (a FIFO consumer out of
    /// attempts does this itself).
    pub async fn pop_to_dead_letter(
        &self,
        group: &str,
        topic: &str,
        receipt_handle: &str,
    ) -> Result<(), PopError> {
        let h = parse_handle(topic, receipt_handle)?;
        let key = QueueKey {
            group: group.to_owned(),
            topic: topic.to_owned(),
            queue_id: h.queue_id,
        };
        match self.pop_table.in_flight(&key, h.queue_offset) {
            Some(e) if e.token == h.token => {
                self.dead_letter(group, topic, h.queue_id, h.queue_offset, h.token)
                    .await
            }
            Some(_) => Err(PopError::InvalidHandle(
                "the message was handed out again since this receipt handle".into(),
            )),
            None => Err(PopError::InvalidHandle(
                "the message was already acknowledged".into(),
            )),
        }
    }

    /// The group's view of a topic before a receive: its queue count, whether it is FIFO, and
    /// its last attempt.
    fn check_pop(&self, req: &PopRequest) -> Result<(i32, bool, u32), PopError> {
        validate_topic(&req.topic).map_err(PopError::Illegal)?;
        validate_group(&req.group).map_err(PopError::Illegal)?;
        let Some(topic) = self.topics.get(&req.topic) else {
            return Err(PopError::TopicNotFound(format!(
                "topic {} does not exist",
                req.topic
            )));
        };
        if !perm::readable(topic.perm) {
            return Err(PopError::Forbidden(format!(
                "topic {} is not readable",
                req.topic
            )));
        }
        let group = self
            .groups
            .get_or_create(&req.group, self.config.auto_create_subscription_group)
            .map_err(|e| PopError::Store(format!("cannot write the group table: {e}")))?
            .ok_or_else(|| {
                PopError::GroupNotFound(format!("subscription group {} does not exist", req.group))
            })?;
        if !group.consume_enable {
            return Err(PopError::Forbidden(format!(
                "subscription group {} does not allow consuming",
                req.group
            )));
        }
        if topic.read_queue_nums <= 0 {
            return Err(PopError::Forbidden(format!(
                "topic {} has no readable queue",
                req.topic
            )));
        }
        Ok((
            topic.read_queue_nums,
            group.consume_message_orderly,
            max_attempts(group.retry_max_times),
        ))
    }

    /// One queue's share of a receive: visible-again entries first (oldest first), then new
    /// ones.
    fn pop_queue(
        &self,
        round: &Round<'_>,
        queue_id: i32,
        want: usize,
    ) -> Result<QueuePass, PopError> {
        let Round {
            req,
            now,
            invisible,
            fifo,
            max_attempts,
            filter,
        } = *round;
        let key = key(req, queue_id);
        let topic = &req.topic;
        let visible_at_ms = now + invisible.as_millis() as i64;
        let mut committed = None;
        // Journal lines are tab-separated: an id that could break one is not renewed.
        let owner: Option<Arc<str>> = (req.auto_renew
            && !req.client_id.is_empty()
            && !req.client_id.contains(char::is_whitespace))
        .then(|| Arc::from(req.client_id.as_str()));
        let (pass, written) = self.pop_table.change(
            &key,
            || self.pop_start(&req.group, topic, queue_id),
            |c| {
                let mut pass = QueuePass::default();
                let before = c.state().done_below();
                if let Some(reset) = self.offsets.pending_reset(&req.group, topic, queue_id) {
                    c.reset(reset);
                    self.offsets.reset_reached(&req.group, topic, queue_id);
                }
                // Entries retention deleted are gone for good.
                let min = self.store.min_offset(topic, queue_id);
                if c.state().done_below() < min {
                    let gone: Vec<i64> =
                        c.state().in_flight.range(..min).map(|(o, _)| *o).collect();
                    for o in gone {
                        c.done(o);
                    }
                    c.advance(min);
                }
                // A connected push consumer still holds these: renew, same handle.
                let mut live: Option<Vec<String>> = None;
                for (offset, e) in c.state().expired(now) {
                    let Some(owner) = &e.owner else { continue };
                    let clients = live.get_or_insert_with(|| self.consumers.client_ids(&req.group));
                    if clients.iter().any(|c| **c == **owner) {
                        c.deliver(
                            offset,
                            InFlight {
                                visible_at_ms: now + AUTO_RENEW_STEP.as_millis() as i64,
                                ..e
                            },
                        );
                    }
                }
                if fifo && c.state().has_invisible(now) {
                    pass.next_visible_at = c.state().next_visible_at(now);
                    return pass;
                }
                for (offset, e) in c.state().expired(now) {
                    if pass.popped.len() >= want {
                        break;
                    }
                    let deliveries = e.deliveries + u32::from(e.count_next);
                    if deliveries > max_attempts {
                        pass.exhausted.push((offset, e.token));
                        if fifo {
                            // Nothing after it goes out before it is dead-lettered.
                            return pass;
                        }
                        continue;
                    }
                    let Some(record) = self.read_entry(topic, queue_id, offset) else {
                        c.done(offset);
                        continue;
                    };
                    let token = state::token_at(now, Some(e.token));
                    c.deliver(
                        offset,
                        InFlight {
                            visible_at_ms,
                            deliveries,
                            token,
                            count_next: true,
                            owner: owner.clone(),
                        },
                    );
                    pass.popped.push(popped(
                        topic,
                        queue_id,
                        offset,
                        record,
                        token,
                        visible_at_ms,
                        deliveries,
                    ));
                }
                let room = MAX_IN_FLIGHT_PER_QUEUE.saturating_sub(c.state().in_flight.len());
                let more = (want - pass.popped.len()).min(room);
                if more > 0 {
                    let next = c.state().next;
                    let got = self
                        .store
                        .get_messages(topic, queue_id, next, more as u32, filter);
                    for bytes in got.messages {
                        let Ok(rec) = record::decode(&bytes, false) else {
                            continue;
                        };
                        let offset = rec.queue_offset;
                        if offset < next {
                            continue;
                        }
                        let token = state::token_at(now, None);
                        c.deliver(
                            offset,
                            InFlight {
                                visible_at_ms,
                                deliveries: 1,
                                token,
                                count_next: true,
                                owner: owner.clone(),
                            },
                        );
                        pass.popped.push(popped(
                            topic,
                            queue_id,
                            offset,
                            bytes,
                            token,
                            visible_at_ms,
                            1,
                        ));
                    }
                    // The store looked at everything up to here (matching or not).
                    if !matches!(got.status, GetStatus::NoMessageInQueue) {
                        c.advance(got.next_begin_offset);
                    }
                }
                pass.next_visible_at = c.state().next_visible_at(now);
                let after = c.state().done_below();
                if after != before {
                    committed = Some(after);
                }
                pass
            },
        );
        written.map_err(journal_failed)?;
        if let Some(offset) = committed {
            self.commit_offset(&req.group, topic, queue_id, offset);
        }
        Ok(pass)
    }

    /// Where a group that never received from a queue starts: its committed offset if it has
    /// one; else the first message while the queue still holds everything ever written to it,
    /// else the end (a new group does not replay a long history, as in RocketMQ).
    fn pop_start(&self, group: &str, topic: &str, queue_id: i32) -> i64 {
        if let Some(o) = self
            .offsets
            .query(group, topic, queue_id)
            .filter(|o| *o >= 0)
        {
            return o;
        }
        let min = self.store.min_offset(topic, queue_id);
        if min == 0 {
            0
        } else {
            self.store.max_offset(topic, queue_id)
        }
    }

    /// The stored record of a queue entry, if the store still has it.
    fn read_entry(&self, topic: &str, queue_id: i32, offset: i64) -> Option<Bytes> {
        let got = self
            .store
            .get_messages(topic, queue_id, offset, 1, &|_: i64| true);
        let bytes = got.messages.into_iter().next()?;
        let rec = record::decode(&bytes, false).ok()?;
        (rec.queue_offset == offset).then_some(bytes)
    }

    /// Copies a queue entry to `%DLQ%<group>` and finishes it, if it is still the delivery
    /// `token` names (someone may have acked it meanwhile).
    async fn dead_letter(
        &self,
        group: &str,
        topic: &str,
        queue_id: i32,
        offset: i64,
        token: u64,
    ) -> Result<(), PopError> {
        let key = QueueKey {
            group: group.to_owned(),
            topic: topic.to_owned(),
            queue_id,
        };
        let Some(entry) = self
            .pop_table
            .in_flight(&key, offset)
            .filter(|e| e.token == token)
        else {
            return Ok(());
        };
        if let Some(bytes) = self.read_entry(topic, queue_id, offset) {
            let rec = record::decode(&bytes, false)
                .map_err(|e| PopError::Store(format!("unreadable record: {e}")))?;
            let dlq = crate::processor::send::dead_letter_topic(self, group).map_err(|e| {
                PopError::Store(format!("cannot create the dead-letter topic: {e}"))
            })?;
            let mut props = Properties::from_stored(rec.properties);
            if props.get(RETRY_TOPIC).is_none() {
                props.insert(RETRY_TOPIC, rec.topic);
            }
            if props.get(ORIGIN_MESSAGE_ID).is_none() {
                props.insert(
                    ORIGIN_MESSAGE_ID,
                    offset_msg_id(rec.store_host, rec.physical_offset),
                );
            }
            props.remove(DELAY);
            let mut fields =
                crate::processor::send::copy_fields(&rec, &dlq, 0, &props, self.store_host);
            fields.reconsume_times = entry.deliveries as i32;
            fields.prepared_transaction_offset = 0;
            let append = crate::processor::send::encode_append(
                &fields,
                crate::processor::send::tags_code_of(&props),
            )
            .map_err(|e| PopError::Store(e.to_string()))?;
            self.store
                .put_message(append)
                .await
                .map_err(|e| PopError::Store(format!("store refused the dead letter: {e}")))?;
            self.count_put(1);
            self.trace.sent_back(group, &bytes, &dlq, None);
            self.metrics.send_to_dlq(group, topic);
        }
        let mut committed = None;
        let ((), written) = self.pop_table.change(
            &key,
            || 0,
            |c| {
                if c.state()
                    .in_flight
                    .get(&offset)
                    .is_some_and(|e| e.token == token)
                {
                    let before = c.state().done_below();
                    c.done(offset);
                    let after = c.state().done_below();
                    if after != before {
                        committed = Some(after);
                    }
                }
            },
        );
        written.map_err(journal_failed)?;
        if let Some(o) = committed {
            self.commit_offset(group, topic, queue_id, o);
        }
        Ok(())
    }
}

/// A stored record with its reconsume times set to `n`: how a redelivered message tells a
/// remoting client (and the trace) how often it was tried.
pub fn with_reconsume_times(rec: &Bytes, n: i32) -> Bytes {
    if n == 0 {
        return rec.clone();
    }
    let Ok(decoded) = record::decode(rec, false) else {
        return rec.clone();
    };
    let pos = record::reconsume_times_pos(decoded.sys_flag);
    if rec.len() < pos + 4 {
        return rec.clone();
    }
    let mut copy = bytes::BytesMut::from(&rec[..]);
    copy[pos..pos + 4].copy_from_slice(&n.to_be_bytes());
    copy.freeze()
}

/// Deliveries a group allows: its retries plus the first.
fn max_attempts(retry_max_times: i32) -> u32 {
    retry_max_times.max(0) as u32 + 1
}

fn key(req: &PopRequest, queue_id: i32) -> QueueKey {
    QueueKey {
        group: req.group.clone(),
        topic: req.topic.clone(),
        queue_id,
    }
}

fn popped(
    topic: &str,
    queue_id: i32,
    offset: i64,
    record: Bytes,
    token: u64,
    visible_at_ms: i64,
    deliveries: u32,
) -> Popped {
    Popped {
        record,
        receipt_handle: ReceiptHandle {
            topic: topic.to_owned(),
            queue_id,
            queue_offset: offset,
            token,
            visible_at_ms,
        }
        .to_string(),
        delivery_attempt: deliveries,
        queue_id,
        queue_offset: offset,
    }
}

fn parse_handle(topic: &str, s: &str) -> Result<ReceiptHandle, PopError> {
    let h = ReceiptHandle::parse(s).map_err(PopError::InvalidHandle)?;
    if h.topic != topic {
        return Err(PopError::InvalidHandle(format!(
            "the receipt handle is for topic {}, not {topic}",
            h.topic
        )));
    }
    Ok(h)
}

fn journal_failed(e: std::io::Error) -> PopError {
    PopError::Store(format!("cannot write the POP journal: {e}"))
}

fn now_ms() -> i64 {
    petrel_common::msg_id::now_ms() as i64
}

/// The pull filter, plus the exact tag check RocketMQ's POP does on the broker (a pull
/// consumer checks tags itself; a POP consumer trusts what it is given).
struct PopFilter<'a> {
    pull: PullFilter<'a>,
}

impl PopFilter<'_> {
    fn exact_tag_matches(&self, properties: &[u8]) -> bool {
        let sub = self.pull.sub;
        if !sub.is_tag_type() || sub.matches_all() {
            return true;
        }
        let props = Properties::from_stored(properties);
        props.get(TAGS).is_some_and(|t| sub.tags_set.contains(t))
    }
}

impl MessageFilter for PopFilter<'_> {
    fn matches_tags_code(&self, tags_code: i64) -> bool {
        self.pull.matches_tags_code(tags_code)
    }

    fn needs_properties(&self) -> bool {
        let sub = self.pull.sub;
        self.pull.needs_properties() || (sub.is_tag_type() && !sub.matches_all())
    }

    fn matches_properties(&self, properties: &[u8]) -> bool {
        self.pull.matches_properties(properties) && self.exact_tag_matches(properties)
    }
}
