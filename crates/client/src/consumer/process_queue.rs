//! The pull loop of one assigned queue: find the start offset, long-poll PULL_MESSAGE, hand
//! found messages to the listener, advance, and commit the final offset when the queue is
//! taken away or the consumer stops. It never holds a lock across an await.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use petrel_common::properties::RETRY_TOPIC;
use petrel_common::protocol::{MessageQueue, SubscriptionData};
use petrel_common::topic::{retry_topic, RETRY_GROUP_TOPIC_PREFIX};
use petrel_remoting::code::response;
use petrel_remoting::headers::pull_sys_flag;
use petrel_remoting::CancellationToken;

use super::orderly;
use super::send_back::send_back;
use super::{ConsumeFromWhere, ConsumeStatus, Core, Listener, MessageListener};
use crate::error::Result;
use crate::instance::{PullRequest, PullStatus};
use crate::message::MessageExt;

/// Least time between two heartbeats forced by pulls that find their subscription unknown.
const FORCED_HEARTBEAT_GAP: Duration = Duration::from_secs(1);

/// One assigned queue's state, shared by its pull task, the rebalancer and the offset committer.
pub(crate) struct ProcessQueue {
    pub mq: MessageQueue,
    /// Next offset to consume; −1 until the start offset is known.
    pub offset: AtomicI64,
    /// Last offset sent to the broker; −1 for none.
    pub committed: AtomicI64,
    pub stop: CancellationToken,
    /// Orderly consumption: until when (ms since the epoch) this client may consider the queue's
    /// broker lock its own; 0 when it does not hold it.
    lock_valid_until_ms: AtomicU64,
}

impl ProcessQueue {
    pub fn new(mq: MessageQueue, parent: &CancellationToken) -> Self {
        ProcessQueue {
            mq,
            offset: AtomicI64::new(-1),
            committed: AtomicI64::new(-1),
            stop: parent.child_token(),
            lock_valid_until_ms: AtomicU64::new(0),
        }
    }

    /// Records a lock granted at `now_ms`; it counts as held for `valid` (less than the broker's
    /// lock lifetime, so this client stops before the broker could give the queue away).
    pub fn mark_locked(&self, now_ms: u64, valid: Duration) {
        self.lock_valid_until_ms
            .store(now_ms + valid.as_millis() as u64, Ordering::Release);
    }

    pub fn mark_unlocked(&self) {
        self.lock_valid_until_ms.store(0, Ordering::Release);
    }

    pub fn lock_valid(&self, now_ms: u64) -> bool {
        now_ms < self.lock_valid_until_ms.load(Ordering::Acquire)
    }

    /// The offset to commit, if it changed since the last commit.
    pub fn uncommitted(&self) -> Option<i64> {
        let o = self.offset.load(Ordering::Acquire);
        (o >= 0 && o != self.committed.load(Ordering::Acquire)).then_some(o)
    }
}

/// Sleeps `d`; false when `stop` fired first.
pub(crate) async fn sleep_or_stop(stop: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

pub(crate) async fn run(core: Arc<Core>, pq: Arc<ProcessQueue>) {
    let Some(sub) = core.subscription(&pq.mq.topic) else {
        return;
    };
    // A queue released and assigned again quickly gets a new task while the old one may still
    // be finishing its batch: the new one starts only after the old one committed (and unlocked).
    let queue_turn = core.queue_turn(&pq.mq);
    let _turn = tokio::select! {
        _ = pq.stop.cancelled() => return,
        t = queue_turn.lock_owned() => t,
    };
    let locked = core.needs_queue_locks();
    if locked && !orderly::ensure_locked(&core, &pq).await {
        return;
    }
    consume_queue(&core, &pq, &sub).await;
    commit_final(&core, &pq).await;
    if locked {
        orderly::unlock(&core, &pq).await;
    }
}

/// Pulls and consumes `pq` until it is stopped.
async fn consume_queue(core: &Arc<Core>, pq: &Arc<ProcessQueue>, sub: &SubscriptionData) {
    let opts = &core.options;
    let mut offset = loop {
        if pq.stop.is_cancelled() {
            return;
        }
        match start_offset(core, &pq.mq).await {
            Ok(o) => break o,
            Err(e) => {
                tracing::debug!(queue = ?pq.mq, "could not find the start offset: {e}");
                if !sleep_or_stop(&pq.stop, opts.pull_error_delay).await {
                    return;
                }
            }
        }
    };
    pq.offset.store(offset, Ordering::Release);
    tracing::debug!(queue = ?pq.mq, offset, "pulling");

    loop {
        let commit_offset = pq.offset.load(Ordering::Acquire);
        let mut sys_flag = pull_sys_flag::SUSPEND;
        if commit_offset > 0 && core.local_offsets.is_none() {
            sys_flag |= pull_sys_flag::COMMIT_OFFSET;
        }
        let req = PullRequest {
            group: &core.group,
            queue: &pq.mq,
            offset,
            max_msg_nums: opts.pull_batch_size,
            sys_flag,
            commit_offset,
            suspend_timeout: opts.suspend_timeout,
            subscription: sub,
            timeout: opts.pull_timeout,
        };
        let result = tokio::select! {
            _ = pq.stop.cancelled() => break,
            r = core.instance.pull_message(&req) => r,
        };
        match result {
            Ok(r) => {
                match r.status {
                    PullStatus::Found(mut msgs) => {
                        show_original_topic(core, &pq.mq, &mut msgs);
                        let done = match &core.listener {
                            Listener::Orderly(l) => orderly::consume(core, pq, l, msgs).await,
                            Listener::Concurrently(l) => consume(core, pq, l, msgs).await,
                        };
                        if !done {
                            break;
                        }
                    }
                    PullStatus::NoNewMsg | PullStatus::NoMatchedMsg => {}
                    PullStatus::OffsetIllegal => {
                        tracing::warn!(
                            queue = ?pq.mq,
                            offset,
                            next = r.next_begin_offset,
                            "pull offset moved"
                        );
                    }
                }
                offset = r.next_begin_offset;
                pq.offset.store(offset, Ordering::Release);
            }
            Err(e) => {
                tracing::debug!(queue = ?pq.mq, offset, "pull failed: {e}");
                if matches!(
                    e.code(),
                    Some(response::SUBSCRIPTION_NOT_EXIST | response::SUBSCRIPTION_NOT_LATEST)
                ) {
                    core.instance.heartbeat_if_stale(FORCED_HEARTBEAT_GAP).await;
                }
                if !sleep_or_stop(&pq.stop, opts.pull_error_delay).await {
                    break;
                }
            }
        }
    }
}

/// Messages of the group's retry topic are shown with the topic they were first sent to.
fn show_original_topic(core: &Core, mq: &MessageQueue, msgs: &mut [MessageExt]) {
    if mq.topic == retry_topic(&core.group) {
        for m in msgs {
            if let Some(t) = m.property(RETRY_TOPIC) {
                m.topic = t.to_owned();
            }
        }
    }
}

/// Where a queue starts: the committed offset (the local one when broadcasting), else per
/// `consume_from` (retry topics from 0).
async fn start_offset(core: &Core, mq: &MessageQueue) -> Result<i64> {
    let committed = match &core.local_offsets {
        Some(local) => local.read(mq),
        None => core.instance.query_consumer_offset(&core.group, mq).await?,
    };
    if let Some(o) = committed {
        if o >= 0 {
            return Ok(o);
        }
    }
    match core.options.consume_from {
        ConsumeFromWhere::FirstOffset => core.instance.min_offset(mq).await,
        ConsumeFromWhere::LastOffset if mq.topic.starts_with(RETRY_GROUP_TOPIC_PREFIX) => Ok(0),
        ConsumeFromWhere::LastOffset => core.instance.max_offset(mq).await,
    }
}

/// Hands `msgs` to the listener in chunks of `consume_batch_max_size`. The messages of a chunk
/// the listener answers `Later` (or panics on) are sent back to the broker for a later retry and
/// the queue moves on at once; only messages that can be sent back neither way are re-delivered
/// here, after `later_retry_delay`, holding the queue. False when the queue was stopped before
/// everything was consumed.
async fn consume(
    core: &Arc<Core>,
    pq: &ProcessQueue,
    listener: &MessageListener,
    mut msgs: Vec<MessageExt>,
) -> bool {
    let chunk = core.options.consume_batch_max_size.max(1);
    loop {
        if msgs.is_empty() {
            return true;
        }
        let listener = listener.clone();
        let batch = Arc::new(msgs);
        let count = batch.len();
        let failed = {
            let batch = batch.clone();
            tokio::task::spawn_blocking(move || {
                let mut failed = Vec::new();
                let mut i = 0;
                while i < batch.len() {
                    let end = (i + chunk).min(batch.len());
                    match catch_unwind(AssertUnwindSafe(|| listener(&batch[i..end]))) {
                        Ok(ConsumeStatus::Success) => {}
                        Ok(ConsumeStatus::Later) => failed.extend(i..end),
                        Err(_) => {
                            tracing::error!("the message listener panicked; will retry");
                            failed.extend(i..end);
                        }
                    }
                    i = end;
                }
                failed
            })
            .await
            .unwrap_or_else(|e| {
                tracing::error!("consume task failed: {e}");
                (0..count).collect()
            })
        };
        if core.local_offsets.is_some() {
            for i in failed {
                tracing::warn!(
                    queue = ?pq.mq,
                    msg_id = batch[i].msg_id(),
                    "broadcast consumption failed; the message is dropped (broadcast has no retry)"
                );
            }
            return true;
        }
        let mut kept = Vec::new();
        for i in failed {
            if let Err(e) = send_back(core, &pq.mq, &batch[i], 0).await {
                tracing::warn!(
                    queue = ?pq.mq,
                    msg_id = batch[i].msg_id(),
                    "could not send a failed message back; retrying it here: {e}"
                );
                let mut m = batch[i].clone();
                m.reconsume_times += 1;
                kept.push(m);
            }
        }
        if kept.is_empty() {
            return true;
        }
        if !sleep_or_stop(&pq.stop, core.options.later_retry_delay).await {
            return false;
        }
        msgs = kept;
    }
}

async fn commit_final(core: &Core, pq: &ProcessQueue) {
    let Some(offset) = pq.uncommitted() else {
        return;
    };
    if let Some(local) = &core.local_offsets {
        core.save_local_offsets(local, &[(pq, offset)]).await;
        return;
    }
    match core
        .instance
        .update_consumer_offset(&core.group, &pq.mq, offset)
        .await
    {
        Ok(()) => pq.committed.store(offset, Ordering::Release),
        Err(e) => tracing::warn!(queue = ?pq.mq, offset, "final offset commit failed: {e}"),
    }
}
