//! The broker's own message trace (`traceOn`): what happened to a message after it was stored,
//! whether or not its clients trace. The request paths only hand a cheap note (record buffers
//! they already hold, offsets) to a bounded channel; a writer task turns the notes into
//! [`BrokerTraceEvent`]s, finds each message's traced id, and stores them in batches in
//! [`BROKER_TRACE_TOPIC`], keyed by those ids. Nothing on a request path waits for it: when
//! the channel is full a note is dropped and counted. With `traceOn` off there is no channel
//! and each hook is one branch.
//!
//! A stored message needs no event of its own: its record (store time, queue, offset, the
//! producer's address) is the "stored" step, found by its id in the key index.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use petrel_common::msg_id::now_ms;
use petrel_common::properties::{Properties, KEYS};
use petrel_common::record;
use petrel_common::trace::{
    commit_key, traced_msg_id, BrokerTraceBatch, BrokerTraceEvent, BrokerTraceKind, TracedMessage,
    BROKER_TRACE_TOPIC, CLIENT_TRACE_TOPIC,
};
use petrel_remoting::CancellationToken;
use tokio::sync::mpsc;

use crate::broker::Broker;
use crate::processor::send::{broker_made, encode_append};

/// Notes waiting for the writer before new ones are dropped.
const QUEUE_NOTES: usize = 8192;
/// A batch is stored at least this often while notes come in.
const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
/// Commits of one queue by one group are merged over this many flush intervals (1 s) into
/// one range event: consumers commit with every pull, and a message's commit is then found
/// among a few events of its queue instead of costing an index entry per message.
const COMMIT_MERGE_FLUSHES: u32 = 10;
/// Most message ids one trace message is keyed by: KEYS is a Java short-sized property, and an
/// id is 32 characters and a space.
const MAX_BATCH_IDS: usize = 512;
/// Groups whose reads are not consumption: the admin tools' look-ups.
const UNTRACED_GROUPS: [&str; 1] = ["TOOLS_CONSUMER"];

/// What a request path tells the writer.
enum Note {
    Delivered {
        at_ms: i64,
        group: String,
        conn_id: u64,
        /// The consumer's client id when the caller knows it (a POP receive); else looked
        /// up by connection.
        client_id: Option<String>,
        peer: SocketAddr,
        records: Vec<Bytes>,
    },
    Committed {
        at_ms: i64,
        group: String,
        topic: String,
        queue_id: i32,
        /// The group's offset before the commit, −1 if it had none.
        previous: i64,
        offset: i64,
    },
    SentBack {
        at_ms: i64,
        group: String,
        original: Bytes,
        to_topic: String,
        delay_level: Option<i32>,
    },
    TransactionEnded {
        at_ms: i64,
        group: String,
        half_offset: i64,
        committed: bool,
        from_check: bool,
    },
}

/// The hooks request paths call.
pub struct BrokerTrace {
    notes: Option<mpsc::Sender<Note>>,
    dropped: AtomicU64,
}

/// The writer's end, handed to [`spawn_writer`] once the broker exists.
pub struct TraceNotes(mpsc::Receiver<Note>);

impl BrokerTrace {
    pub fn new(enabled: bool) -> (BrokerTrace, Option<TraceNotes>) {
        let (tx, rx) = if enabled {
            let (tx, rx) = mpsc::channel(QUEUE_NOTES);
            (Some(tx), Some(TraceNotes(rx)))
        } else {
            (None, None)
        };
        (
            BrokerTrace {
                notes: tx,
                dropped: AtomicU64::new(0),
            },
            rx,
        )
    }

    pub fn enabled(&self) -> bool {
        self.notes.is_some()
    }

    /// Notes dropped because the writer was behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn send(&self, note: Note) {
        if let Some(tx) = &self.notes {
            if tx.try_send(note).is_err() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// A pull answer handed `records` (of one queue) to the consumer on connection `conn_id`.
    pub fn delivered(&self, group: &str, conn_id: u64, peer: SocketAddr, records: &[Bytes]) {
        if self.notes.is_none() || records.is_empty() || UNTRACED_GROUPS.contains(&group) {
            return;
        }
        self.send(Note::Delivered {
            at_ms: now_ms() as i64,
            group: group.to_owned(),
            conn_id,
            client_id: None,
            peer,
            records: records.to_vec(),
        });
    }

    /// A POP receive handed `records` (of one queue, each with its attempt in its reconsume
    /// times) to the client `client_id`.
    pub fn popped(&self, group: &str, client_id: &str, peer: SocketAddr, records: Vec<Bytes>) {
        if self.notes.is_none() || records.is_empty() || UNTRACED_GROUPS.contains(&group) {
            return;
        }
        self.send(Note::Delivered {
            at_ms: now_ms() as i64,
            group: group.to_owned(),
            conn_id: 0,
            client_id: (!client_id.is_empty()).then(|| client_id.to_owned()),
            peer,
            records,
        });
    }

    /// `group`'s offset on a queue moved from `previous` (−1: none) to `offset`.
    pub fn committed(&self, group: &str, topic: &str, queue_id: i32, previous: i64, offset: i64) {
        if self.notes.is_none() || UNTRACED_GROUPS.contains(&group) {
            return;
        }
        self.send(Note::Committed {
            at_ms: now_ms() as i64,
            group: group.to_owned(),
            topic: topic.to_owned(),
            queue_id,
            previous,
            offset,
        });
    }

    /// A consumer of `group` sent `original` back; it was stored again in `to_topic`, with
    /// `delay_level` for a retry, without one as a dead letter.
    pub fn sent_back(
        &self,
        group: &str,
        original: &Bytes,
        to_topic: &str,
        delay_level: Option<i32>,
    ) {
        if self.notes.is_none() {
            return;
        }
        self.send(Note::SentBack {
            at_ms: now_ms() as i64,
            group: group.to_owned(),
            original: original.clone(),
            to_topic: to_topic.to_owned(),
            delay_level,
        });
    }

    /// Producer group `group` ended the transaction of the half message at `half_offset`
    /// (its END_TRANSACTION arrived at `at_ms`).
    pub fn transaction_ended(
        &self,
        at_ms: i64,
        group: &str,
        half_offset: i64,
        committed: bool,
        from_check: bool,
    ) {
        if self.notes.is_none() {
            return;
        }
        self.send(Note::TransactionEnded {
            at_ms,
            group: group.to_owned(),
            half_offset,
            committed,
            from_check,
        });
    }
}

/// Starts the writer; it stores what is pending and stops when `shutdown` fires.
pub fn spawn_writer(
    b: Arc<Broker>,
    notes: TraceNotes,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut writer = Writer {
            b,
            batch: Batch::default(),
            committed_to: HashMap::new(),
            commits: HashMap::new(),
        };
        let mut flushes = 0u32;
        let mut rx = notes.0;
        let mut tick = tokio::time::interval(FLUSH_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                note = rx.recv() => match note {
                    Some(note) => {
                        writer.take(note);
                        if writer.batch.ids.len() >= MAX_BATCH_IDS {
                            writer.flush().await;
                        }
                    }
                    None => break,
                },
                _ = tick.tick() => {
                    flushes += 1;
                    if flushes.is_multiple_of(COMMIT_MERGE_FLUSHES) {
                        writer.take_commits();
                    }
                    writer.flush().await
                }
            }
        }
        while let Ok(note) = rx.try_recv() {
            writer.take(note);
            if writer.batch.ids.len() >= MAX_BATCH_IDS {
                writer.flush().await;
            }
        }
        writer.take_commits();
        writer.flush().await;
    })
}

#[derive(Default)]
struct Batch {
    events: Vec<BrokerTraceEvent>,
    ids: Vec<String>,
    seen: HashSet<String>,
}

impl Batch {
    fn push(&mut self, event: BrokerTraceEvent) {
        if event.kind == BrokerTraceKind::Committed {
            self.ids
                .push(commit_key(&event.group, &event.topic, event.queue_id));
        }
        for m in &event.messages {
            self.key(m.msg_id.clone());
        }
        self.events.push(event);
    }

    /// Keys the batch by `id` too.
    fn key(&mut self, id: String) {
        if self.seen.insert(id.clone()) {
            self.ids.push(id);
        }
    }
}

struct Writer {
    b: Arc<Broker>,
    batch: Batch,
    /// Per (group, topic, queue): the offset up to which commits were traced, seeded by the
    /// first delivery so that a new group's first commit is traced from what it was given.
    committed_to: HashMap<(String, String, i32), i64>,
    /// Commits not yet stored, merged per (group, topic, queue): (time of the first, range).
    commits: HashMap<(String, String, i32), (i64, i64, i64)>,
}

impl Writer {
    fn event(
        &self,
        kind: BrokerTraceKind,
        time_ms: i64,
        group: String,
        topic: String,
        queue_id: i32,
    ) -> BrokerTraceEvent {
        BrokerTraceEvent {
            kind,
            time_ms,
            group,
            client_id: None,
            client_addr: None,
            topic,
            queue_id,
            to_topic: None,
            delay_level: None,
            from_offset: None,
            to_offset: None,
            from_check: false,
            messages: Vec::new(),
        }
    }

    fn traced(&self, rec: &record::DecodedRecord) -> TracedMessage {
        TracedMessage {
            msg_id: traced_msg_id(
                std::str::from_utf8(rec.properties).unwrap_or(""),
                rec.store_host,
                rec.physical_offset,
            ),
            queue_offset: rec.queue_offset,
            attempt: rec.reconsume_times,
        }
    }

    fn take(&mut self, note: Note) {
        match note {
            Note::Delivered {
                at_ms,
                group,
                conn_id,
                client_id,
                peer,
                records,
            } => {
                let decoded: Vec<_> = records
                    .iter()
                    .filter_map(|r| record::decode(r, false).ok())
                    .collect();
                let Some(first) = decoded.first() else {
                    return;
                };
                if is_trace_topic(first.topic) {
                    return;
                }
                let mut e = self.event(
                    BrokerTraceKind::Delivered,
                    at_ms,
                    group.clone(),
                    first.topic.to_owned(),
                    first.queue_id,
                );
                e.client_id = client_id.or_else(|| self.b.consumers.client_id_of(&group, conn_id));
                e.client_addr = Some(peer.to_string());
                // The range, not each message: a message's delivery is found by its id in the
                // record's KEYS and placed by its stored copy's offset.
                let last = decoded
                    .last()
                    .map_or(first.queue_offset, |r| r.queue_offset);
                e.from_offset = Some(first.queue_offset);
                e.to_offset = Some(last + 1);
                self.committed_to
                    .entry((group, e.topic.clone(), e.queue_id))
                    .or_insert(first.queue_offset);
                for r in &decoded {
                    let id = traced_msg_id(
                        std::str::from_utf8(r.properties).unwrap_or(""),
                        r.store_host,
                        r.physical_offset,
                    );
                    self.batch.key(id);
                }
                self.batch.push(e);
            }
            Note::Committed {
                at_ms,
                group,
                topic,
                queue_id,
                previous,
                offset,
            } => {
                if is_trace_topic(&topic) {
                    return;
                }
                let key = (group, topic, queue_id);
                let traced_to = self.committed_to.get(&key).copied();
                // The group's own previous offset when it had one (after an operator's reset it
                // is below what was traced before); for a group new on the queue, its first
                // delivery. Neither (a broker restart between delivery and commit): unknown.
                let from = if previous >= 0 {
                    previous
                } else {
                    traced_to.unwrap_or(offset)
                };
                self.committed_to.insert(key.clone(), offset);
                if from >= offset {
                    return;
                }
                self.commits
                    .entry(key)
                    .and_modify(|(_, _, to)| *to = offset)
                    .or_insert((at_ms, from, offset));
            }
            Note::SentBack {
                at_ms,
                group,
                original,
                to_topic,
                delay_level,
            } => {
                let Ok(rec) = record::decode(&original, false) else {
                    return;
                };
                let kind = if delay_level.is_some() {
                    BrokerTraceKind::Retried
                } else {
                    BrokerTraceKind::DeadLettered
                };
                let mut e = self.event(kind, at_ms, group, rec.topic.to_owned(), rec.queue_id);
                e.to_topic = Some(to_topic);
                e.delay_level = delay_level;
                e.messages = vec![self.traced(&rec)];
                self.batch.push(e);
            }
            Note::TransactionEnded {
                at_ms,
                group,
                half_offset,
                committed,
                from_check,
            } => {
                let Some(bytes) = self.b.store.read_record(half_offset) else {
                    return;
                };
                let Ok(rec) = record::decode(&bytes, false) else {
                    return;
                };
                let kind = if committed {
                    BrokerTraceKind::TransactionCommitted
                } else {
                    BrokerTraceKind::TransactionRolledBack
                };
                let real = Properties::from_stored(rec.properties)
                    .take_real_destination()
                    .ok();
                let (topic, queue_id) = real.unwrap_or((rec.topic.to_owned(), rec.queue_id));
                let mut e = self.event(kind, at_ms, group, topic, queue_id);
                e.from_check = from_check;
                e.messages = vec![self.traced(&rec)];
                self.batch.push(e);
            }
        }
    }

    /// Moves the merged commits into the batch.
    fn take_commits(&mut self) {
        for ((group, topic, queue_id), (at_ms, from, to)) in std::mem::take(&mut self.commits) {
            let mut e = self.event(BrokerTraceKind::Committed, at_ms, group, topic, queue_id);
            e.from_offset = Some(from);
            e.to_offset = Some(to);
            self.batch.push(e);
        }
    }

    /// Stores the pending events as one message keyed by the ids they mention.
    async fn flush(&mut self) {
        if self.batch.events.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        let body = match serde_json::to_vec(&BrokerTraceBatch {
            broker: self.b.config.broker_name.clone(),
            events: batch.events,
        }) {
            Ok(body) => body,
            Err(e) => {
                tracing::warn!("could not encode a trace batch: {e}");
                return;
            }
        };
        let mut props = Properties::new();
        props.insert(KEYS, batch.ids.join(" "));
        let fields = broker_made(BROKER_TRACE_TOPIC, &body, &props, self.b.store_host);
        let stored = match encode_append(&fields, 0) {
            Ok(append) => self.b.store.put_message(append).await.map(|_| ()),
            Err(e) => {
                tracing::warn!("a trace batch does not fit a record: {e}");
                return;
            }
        };
        if let Err(e) = stored {
            tracing::warn!("could not store a trace batch: {e}");
        }
    }
}

fn is_trace_topic(topic: &str) -> bool {
    topic == BROKER_TRACE_TOPIC || topic == CLIENT_TRACE_TOPIC
}
