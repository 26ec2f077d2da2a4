//! Transactional messages (reference §2.10, §6.4). A half message waits on
//! `RMQ_SYS_TRANS_HALF_TOPIC`, invisible to consumers, until END_TRANSACTION commits it (stored
//! again on its real topic and queue) or rolls it back. Each outcome is an op record on
//! `RMQ_SYS_TRANS_OP_HALF_TOPIC` whose body is the half message's queue offset, so the whole
//! state lives in the commit log and a restart rebuilds it: the half queue from the progress
//! offset, minus every op.
//!
//! Half messages left unresolved past `transactionTimeout` (or their
//! `CHECK_IMMUNITY_TIME_IN_SECONDS`) are checked back with CHECK_TRANSACTION_STATE on a live
//! connection of their producer group, every `transactionCheckInterval`, at most
//! `transactionCheckMax` times; then they move to `TRANS_CHECK_MAX_TIME_TOPIC`.
//!
//! This must never deliver a rolled-back message, and never commit one half message twice while
//! the broker runs: an outcome takes the half message out of the pending table before it acts.
//! Only a crash between a commit's re-put and its op record can commit it again after restart.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use petrel_common::msg_id::{now_ms, offset_msg_id};
use petrel_common::properties::{
    Properties, CHECK_IMMUNITY_TIME_IN_SECONDS, PGROUP, TAGS, TRANSACTION_CHECK_TIMES,
    TRANSACTION_ID, UNIQ_KEY,
};
use petrel_common::record::{
    self, DecodedRecord, SYSFLAG_TRANSACTION_COMMIT, SYSFLAG_TRANSACTION_MASK,
};
use petrel_common::topic::{TRANS_CHECK_MAX_TIME_TOPIC, TRANS_HALF_TOPIC, TRANS_OP_HALF_TOPIC};
use petrel_remoting::code::{request, response};
use petrel_remoting::headers::{CheckTransactionStateRequestHeader, EndTransactionRequestHeader};
use petrel_remoting::{CancellationToken, RemotingCommand};
use petrel_store::GetStatus;

use crate::broker::Broker;
use crate::client_manager::ClientConn;
use crate::processor::send::{broker_made, copy_fields, encode_append, tags_code_of};

/// The group under which the progress through the half queue is kept (RocketMQ's name).
pub const PROGRESS_GROUP: &str = "CID_RMQ_SYS_TRANS";
/// Tags of an op record that resolves a half message ("delete").
const OP_TAGS: &str = "d";
/// How often the checker looks for half messages due for a check.
const CHECK_TICK: Duration = Duration::from_millis(200);
/// Records read from the half or op queue per store read at recovery.
const RECOVERY_BATCH: u32 = 256;

/// A half message waiting for its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingHalf {
    pub commit_log_offset: i64,
    pub producer_group: String,
    pub stored_at_ms: i64,
    /// When it is next checked back.
    pub check_at_ms: i64,
    /// Checks sent so far (since this broker started: the count is not persisted).
    pub checks: u32,
}

/// The outcome a producer gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Commit,
    Rollback,
}

/// Why an END_TRANSACTION was not applied: a response code and a remark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndRefused {
    pub code: i32,
    pub remark: String,
}

/// Pending half messages by their queue offset in the half topic.
#[derive(Default)]
pub struct TransactionTable {
    pending: Mutex<BTreeMap<i64, PendingHalf>>,
}

impl TransactionTable {
    pub fn len(&self) -> usize {
        self.pending.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The pending half messages of `group` (every group if `None`), oldest first.
    pub fn list(&self, group: Option<&str>) -> Vec<(i64, PendingHalf)> {
        self.pending
            .lock()
            .iter()
            .filter(|(_, p)| group.is_none_or(|g| p.producer_group == g))
            .map(|(o, p)| (*o, p.clone()))
            .collect()
    }

    fn insert(&self, queue_offset: i64, half: PendingHalf) {
        self.pending.lock().insert(queue_offset, half);
    }

    fn take(&self, queue_offset: i64) -> Option<PendingHalf> {
        self.pending.lock().remove(&queue_offset)
    }

    /// Those due for a check at `now`, each moved to its next check time.
    fn take_due(&self, now: i64, interval_ms: i64) -> Vec<(i64, PendingHalf)> {
        let mut due = Vec::new();
        for (offset, half) in self.pending.lock().iter_mut() {
            if half.check_at_ms <= now {
                due.push((*offset, half.clone()));
                half.check_at_ms = now + interval_ms;
            }
        }
        due
    }

    /// Counts a check that reached a producer.
    fn count_check(&self, queue_offset: i64) {
        if let Some(half) = self.pending.lock().get_mut(&queue_offset) {
            half.checks += 1;
        }
    }

    /// The offset the half queue is resolved up to: the oldest pending one, or `end`.
    fn resolved_up_to(&self, end: i64) -> i64 {
        self.pending.lock().keys().next().copied().unwrap_or(end)
    }
}

/// Turns a prepared message into its half message: remembers the real topic and queue and the
/// transaction id in its properties. Returns the half topic and queue to store it in.
pub fn to_half(props: &mut Properties, topic: &str, queue_id: i32, uniq_key: &str) -> i32 {
    props.set_real_destination(topic, queue_id);
    props.insert(TRANSACTION_ID, uniq_key);
    0
}

/// The half message's sysflag as stored: transaction type reset, so the half queue indexes it
/// (RocketMQ stores half messages as plain ones too).
pub fn half_sys_flag(sys_flag: i32) -> i32 {
    sys_flag & !SYSFLAG_TRANSACTION_MASK
}

impl Broker {
    /// Records a stored half message as pending.
    pub(crate) fn half_stored(
        &self,
        queue_offset: i64,
        commit_log_offset: i64,
        props: &Properties,
        producer_group: &str,
    ) {
        let now = now_ms() as i64;
        let half = self.pending_half(commit_log_offset, props, producer_group, now);
        self.transactions.insert(queue_offset, half);
    }

    fn pending_half(
        &self,
        commit_log_offset: i64,
        props: &Properties,
        producer_group: &str,
        stored_at_ms: i64,
    ) -> PendingHalf {
        let first_check_after_ms = props
            .get(CHECK_IMMUNITY_TIME_IN_SECONDS)
            .and_then(|s| s.trim().parse::<i64>().ok())
            .filter(|s| *s > 0)
            .map_or(self.config.transaction_timeout.as_millis() as i64, |s| {
                s.saturating_mul(1000)
            });
        PendingHalf {
            commit_log_offset,
            producer_group: props.get(PGROUP).unwrap_or(producer_group).to_owned(),
            stored_at_ms,
            check_at_ms: stored_at_ms.saturating_add(first_check_after_ms),
            checks: 0,
        }
    }

    /// Applies a producer's END_TRANSACTION (the remoting request, or a gRPC EndTransaction
    /// put in its terms).
    pub async fn end_transaction(
        &self,
        h: &EndTransactionRequestHeader,
        outcome: Outcome,
    ) -> Result<(), EndRefused> {
        // Traced as of its arrival: before the committed copy is stored.
        let arrived_ms = now_ms() as i64;
        let refused = |code, remark: String| EndRefused { code, remark };
        let Some(half) = self.transactions.take(h.tran_state_table_offset) else {
            // Resolved already (a check answered after the producer's own end, or the reverse),
            // or never a half message of this broker: nothing to do, and nothing delivered twice.
            tracing::debug!(
                offset = h.tran_state_table_offset,
                msg_id = %h.msg_id,
                "END_TRANSACTION for a half message that is not pending"
            );
            return Ok(());
        };
        let put_back =
            |half: PendingHalf| self.transactions.insert(h.tran_state_table_offset, half);
        if half.commit_log_offset != h.commit_log_offset {
            let remark = format!(
                "the half message at transaction offset {} is at commit-log offset {}, not {}",
                h.tran_state_table_offset, half.commit_log_offset, h.commit_log_offset
            );
            put_back(half);
            return Err(refused(response::SYSTEM_ERROR, remark));
        }
        if half.producer_group != h.producer_group {
            let remark = format!(
                "the half message belongs to producer group {}, not {}",
                half.producer_group, h.producer_group
            );
            put_back(half);
            return Err(refused(response::SYSTEM_ERROR, remark));
        }
        if outcome == Outcome::Commit {
            if let Err(remark) = self.commit_half(h.tran_state_table_offset, &half).await {
                put_back(half);
                return Err(refused(response::SYSTEM_ERROR, remark));
            }
        }
        if let Err(remark) = self.write_op(h.tran_state_table_offset).await {
            // The outcome is applied; without its op a restart would check it again.
            tracing::error!(
                offset = h.tran_state_table_offset,
                "could not record a transaction outcome: {remark}"
            );
        }
        self.advance_progress();
        self.trace.transaction_ended(
            arrived_ms,
            &h.producer_group,
            half.commit_log_offset,
            outcome == Outcome::Commit,
            h.from_transaction_check.unwrap_or(false),
        );
        if self.metrics.enabled() {
            let topic = crate::metrics::real_topic_at(self, half.commit_log_offset);
            self.metrics
                .transaction_ended(&topic, outcome == Outcome::Commit);
        }
        Ok(())
    }

    /// Stores the half message on its real topic and queue as a committed message.
    async fn commit_half(&self, queue_offset: i64, half: &PendingHalf) -> Result<(), String> {
        let bytes = self
            .store
            .read_record(half.commit_log_offset)
            .ok_or_else(|| {
                format!(
                    "the half message at commit-log offset {} is gone",
                    half.commit_log_offset
                )
            })?;
        let rec = record::decode(&bytes, false).map_err(|e| e.to_string())?;
        if rec.topic != TRANS_HALF_TOPIC || rec.queue_offset != queue_offset {
            return Err(format!(
                "commit-log offset {} holds {} offset {}, not the half message at offset \
                 {queue_offset}",
                half.commit_log_offset, rec.topic, rec.queue_offset
            ));
        }
        let mut props = Properties::from_stored(rec.properties);
        let (topic, queue_id) = real_destination(&mut props)?;
        let mut fields = copy_fields(&rec, &topic, queue_id, &props, self.store_host);
        fields.sys_flag = half_sys_flag(rec.sys_flag) | SYSFLAG_TRANSACTION_COMMIT;
        fields.prepared_transaction_offset = half.commit_log_offset;
        let append = encode_append(&fields, tags_code_of(&props)).map_err(|e| e.to_string())?;
        self.store
            .put_message(append)
            .await
            .map_err(|e| format!("store refused the committed message: {e}"))?;
        self.count_put(1);
        Ok(())
    }

    /// Appends the op record that resolves the half message at `queue_offset`.
    async fn write_op(&self, queue_offset: i64) -> Result<(), String> {
        let mut props = Properties::new();
        props.insert(TAGS, OP_TAGS);
        let body = queue_offset.to_string();
        let fields = broker_made(
            TRANS_OP_HALF_TOPIC,
            body.as_bytes(),
            &props,
            self.store_host,
        );
        let append = encode_append(&fields, tags_code_of(&props)).map_err(|e| e.to_string())?;
        self.store
            .put_message(append)
            .await
            .map(|_| ())
            .map_err(|e| format!("store refused the op record: {e}"))
    }

    /// Moves the half-queue progress to the oldest unresolved half message.
    fn advance_progress(&self) {
        let end = self.store.max_offset(TRANS_HALF_TOPIC, 0);
        let up_to = self.transactions.resolved_up_to(end);
        self.offsets
            .commit(PROGRESS_GROUP, TRANS_HALF_TOPIC, 0, up_to);
    }

    /// Rebuilds the pending table after a start: every half message from the progress offset on,
    /// less those an op record resolved.
    pub(crate) fn recover_transactions(&self) {
        let now = now_ms() as i64;
        let from = self
            .offsets
            .query(PROGRESS_GROUP, TRANS_HALF_TOPIC, 0)
            .unwrap_or(0);
        let mut halves = BTreeMap::new();
        for rec in self.read_queue(TRANS_HALF_TOPIC, from) {
            let props = Properties::from_stored(&rec.properties);
            // From the original store time: a restart does not make a check due sooner.
            let half = self.pending_half(rec.commit_log_offset, &props, "", rec.store_timestamp);
            halves.insert(rec.queue_offset, half);
        }
        let op_from = self.store.min_offset(TRANS_OP_HALF_TOPIC, 0);
        for op in self.read_queue(TRANS_OP_HALF_TOPIC, op_from) {
            // RocketMQ 5 writes several offsets per op record, comma-terminated.
            for resolved in String::from_utf8_lossy(&op.body).split(',') {
                if let Ok(o) = resolved.trim().parse::<i64>() {
                    halves.remove(&o);
                }
            }
        }
        if !halves.is_empty() {
            tracing::info!(
                pending = halves.len(),
                "transactional half messages recovered"
            );
        }
        for (offset, mut half) in halves {
            half.check_at_ms = half.check_at_ms.max(now);
            self.transactions.insert(offset, half);
        }
        self.advance_progress();
    }

    /// Every readable record of queue 0 of `topic` from offset `from` on.
    fn read_queue(&self, topic: &str, mut from: i64) -> Vec<QueueRecord> {
        let mut out = Vec::new();
        loop {
            let r = self
                .store
                .get_messages(topic, 0, from, RECOVERY_BATCH, &|_| true);
            match r.status {
                GetStatus::Found => {}
                GetStatus::OffsetTooSmall
                | GetStatus::OffsetFoundNull
                | GetStatus::NoMatchedMessage
                    if r.next_begin_offset > from =>
                {
                    from = r.next_begin_offset;
                    continue;
                }
                _ => return out,
            }
            for bytes in &r.messages {
                match record::decode(bytes, false) {
                    Ok(rec) => out.push(QueueRecord {
                        queue_offset: rec.queue_offset,
                        commit_log_offset: rec.physical_offset,
                        store_timestamp: rec.store_timestamp,
                        properties: rec.properties.to_vec(),
                        body: rec.body.to_vec(),
                    }),
                    Err(e) => tracing::error!(topic, "unreadable record skipped: {e}"),
                }
            }
            from = r.next_begin_offset;
        }
    }

    /// One pass of the checker: checks back every half message due, or gives up on it.
    async fn check_due_halves(&self) {
        let interval = self.config.transaction_check_interval.as_millis() as i64;
        let max = self.config.transaction_check_max;
        for (queue_offset, half) in self.transactions.take_due(now_ms() as i64, interval) {
            let outcome = if half.checks >= max {
                self.give_up(queue_offset).await
            } else {
                // Only a check that reached a producer counts: a group that is down for a
                // while must not lose its transactions to the limit.
                let sent = self.check_back(queue_offset, &half).await;
                if sent.is_ok() {
                    self.transactions.count_check(queue_offset);
                }
                sent
            };
            if let Err(e) = outcome {
                tracing::warn!(queue_offset, group = %half.producer_group, "transaction check: {e}");
            }
        }
    }

    /// Asks one live producer of the half message's group for its outcome: CHECK_TRANSACTION_STATE
    /// over a remoting connection, or a gRPC client's RecoverOrphanedTransactionCommand.
    async fn check_back(&self, queue_offset: i64, half: &PendingHalf) -> Result<(), String> {
        let channels = self.producers.channels(&half.producer_group);
        if channels.is_empty() {
            return Err("no producer of the group is connected; checking again later".into());
        }
        let bytes = self
            .store
            .read_record(half.commit_log_offset)
            .ok_or("the half message is gone")?;
        let rec = record::decode(&bytes, false).map_err(|e| e.to_string())?;
        let check = TransactionCheck::of(&rec)?;
        // Any instance of the group may answer, and one may not (a producer without a
        // checker ignores checks): each check of a message goes to the next instance.
        let pick = (queue_offset as usize).wrapping_add(half.checks as usize) % channels.len();
        match &channels[pick].conn {
            ClientConn::Remoting(conn) => {
                let cmd = check.request(self.store_host, &self.config.broker_name);
                conn.oneway(cmd).await.map_err(|e| e.to_string())
            }
            ClientConn::Grpc(client) => client.check_transaction(check),
        }
    }

    /// After `transactionCheckMax` unanswered checks: moves the half message to
    /// TRANS_CHECK_MAX_TIME_TOPIC and resolves it.
    async fn give_up(&self, queue_offset: i64) -> Result<(), String> {
        // Resolved meanwhile: nothing to give up on.
        let Some(half) = self.transactions.take(queue_offset) else {
            return Ok(());
        };
        let bytes = self
            .store
            .read_record(half.commit_log_offset)
            .ok_or("the half message is gone")?;
        let rec = record::decode(&bytes, false).map_err(|e| e.to_string())?;
        let mut props = Properties::from_stored(rec.properties);
        props.insert(TRANSACTION_CHECK_TIMES, half.checks.to_string());
        let fields = copy_fields(&rec, TRANS_CHECK_MAX_TIME_TOPIC, 0, &props, self.store_host);
        let append = encode_append(&fields, tags_code_of(&props)).map_err(|e| e.to_string())?;
        self.store
            .put_message(append)
            .await
            .map_err(|e| format!("store refused the message: {e}"))?;
        self.write_op(queue_offset).await?;
        self.advance_progress();
        tracing::warn!(
            group = %half.producer_group,
            msg_id = props.get(UNIQ_KEY).unwrap_or_default(),
            checks = half.checks,
            "transaction never resolved; moved to {TRANS_CHECK_MAX_TIME_TOPIC}"
        );
        Ok(())
    }
}

/// What recovery needs of a half or op record.
struct QueueRecord {
    queue_offset: i64,
    commit_log_offset: i64,
    store_timestamp: i64,
    properties: Vec<u8>,
    body: Vec<u8>,
}

/// The real topic and queue of a half message, taken out of its properties.
fn real_destination(props: &mut Properties) -> Result<(String, i32), String> {
    props
        .take_real_destination()
        .map_err(|e| format!("the half message has {e}"))
}

/// A check of a half message, as its producer is asked it: which half message (its offsets in
/// the half queue and the commit log, what the producer's answer names it by) and the message
/// itself with its real topic and queue (what the producer's check listener sees).
#[derive(Debug, Clone)]
pub struct TransactionCheck {
    pub tran_state_table_offset: i64,
    pub commit_log_offset: i64,
    pub topic: String,
    /// The message's UNIQ_KEY.
    pub msg_id: Option<String>,
    pub transaction_id: Option<String>,
    /// The half message encoded as a stored record, with its real topic and queue.
    pub record: bytes::Bytes,
}

impl TransactionCheck {
    /// The check of the stored half message `rec`.
    fn of(rec: &DecodedRecord<'_>) -> Result<TransactionCheck, String> {
        let mut props = Properties::from_stored(rec.properties);
        let msg_id = props.get(UNIQ_KEY).map(str::to_owned);
        let transaction_id = props
            .get(TRANSACTION_ID)
            .map(str::to_owned)
            .or(msg_id.clone());
        let (topic, queue_id) = real_destination(&mut props)?;
        let mut fields = rec.fields();
        fields.topic = &topic;
        fields.queue_id = queue_id;
        let mut body = bytes::BytesMut::with_capacity(record::encoded_len(&fields));
        record::encode(&fields, &mut body);
        Ok(TransactionCheck {
            tran_state_table_offset: rec.queue_offset,
            commit_log_offset: rec.physical_offset,
            topic,
            msg_id,
            transaction_id,
            record: body.freeze(),
        })
    }

    /// CHECK_TRANSACTION_STATE: the header, and the message as body.
    fn request(self, store_host: std::net::SocketAddr, broker_name: &str) -> RemotingCommand {
        let header = CheckTransactionStateRequestHeader {
            topic: Some(self.topic),
            tran_state_table_offset: self.tran_state_table_offset,
            commit_log_offset: self.commit_log_offset,
            msg_id: self.msg_id,
            transaction_id: self.transaction_id,
            offset_msg_id: Some(offset_msg_id(store_host, self.commit_log_offset)),
            broker_name: Some(broker_name.to_owned()),
        };
        RemotingCommand::request_with_header(request::CHECK_TRANSACTION_STATE, &header)
            .with_body(self.record.to_vec())
    }
}

/// Runs the checker until `shutdown` fires.
pub async fn run_checker(broker: Arc<Broker>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(CHECK_TICK) => {}
        }
        if !broker.transactions.is_empty() {
            broker.check_due_halves().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use petrel_common::properties::REAL_TOPIC;

    fn half(check_at_ms: i64) -> PendingHalf {
        PendingHalf {
            commit_log_offset: 0,
            producer_group: "pg".into(),
            stored_at_ms: 0,
            check_at_ms,
            checks: 0,
        }
    }

    #[test]
    fn due_halves_are_taken_once_per_interval() {
        let t = TransactionTable::default();
        t.insert(3, half(100));
        t.insert(5, half(1_000));
        let due = t.take_due(150, 500);
        assert_eq!(due.iter().map(|(o, _)| *o).collect::<Vec<_>>(), vec![3]);
        t.count_check(3);
        assert!(t.take_due(600, 500).is_empty(), "rescheduled to 650");
        let again = t.take_due(650, 500);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].1.checks, 1, "one check was sent before this one");
        assert_eq!(t.resolved_up_to(9), 3);
        t.take(3);
        t.take(5);
        assert_eq!(t.resolved_up_to(9), 9);
    }

    #[test]
    fn a_half_message_remembers_where_it_goes() {
        let mut p = Properties::from_wire("TAGS\u{1}A\u{2}UNIQ_KEY\u{1}U");
        assert_eq!(to_half(&mut p, "Orders", 3, "U"), 0);
        assert_eq!(p.get(TRANSACTION_ID), Some("U"));
        assert_eq!(real_destination(&mut p).unwrap(), ("Orders".to_owned(), 3));
        assert_eq!(p.get(REAL_TOPIC), None);
        assert_eq!(half_sys_flag(0x4 | 0x1), 0x1);
    }
}
