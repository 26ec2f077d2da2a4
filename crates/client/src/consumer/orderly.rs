//! Orderly consumption: a queue is consumed only while this client holds its lock at the broker
//! (LOCK_BATCH_MQ), one batch at a time in offset order, and a batch the listener suspends is
//! consumed again in place. The lock is what keeps the old and the new owner of a queue from
//! consuming it at the same time while a group rebalances: a released queue is unlocked only
//! after its last batch finished and its offset was committed.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use petrel_common::msg_id::now_ms;
use petrel_common::protocol::MessageQueue;

use super::process_queue::{sleep_or_stop, ProcessQueue};
use super::send_back::send_back;
use super::{ConsumeOrderlyStatus, Core, OrderlyMessageListener};
use crate::message::MessageExt;

/// Delay level of a send-back that goes straight to `%DLQ%<group>`.
const DLQ_DELAY_LEVEL: i32 = -1;

/// Locks `pq`'s queue at its broker now; true when this client holds it.
async fn lock_one(core: &Core, pq: &ProcessQueue) -> bool {
    let addr = match core
        .instance
        .find_master_addr(&pq.mq.broker_name, &pq.mq.topic)
        .await
    {
        Ok(a) => a,
        Err(e) => {
            tracing::debug!(queue = ?pq.mq, "no broker to lock at: {e}");
            return false;
        }
    };
    let wanted = BTreeSet::from([pq.mq.clone()]);
    match core
        .instance
        .lock_batch_mq(&addr, &core.group, wanted)
        .await
    {
        Ok(held) if held.contains(&pq.mq) => {
            pq.mark_locked(now_ms(), core.options.lock_valid);
            true
        }
        Ok(_) => false,
        Err(e) => {
            tracing::debug!(queue = ?pq.mq, "lock request failed: {e}");
            false
        }
    }
}

/// Waits until this client holds `pq`'s lock, retrying every `lock_retry_delay` while another
/// client holds it (a former owner finishing its last batch). False when `pq` was stopped first.
pub(crate) async fn ensure_locked(core: &Core, pq: &ProcessQueue) -> bool {
    if !core.needs_queue_locks() {
        return !pq.stop.is_cancelled();
    }
    loop {
        if pq.stop.is_cancelled() {
            return false;
        }
        if pq.lock_valid(now_ms()) || lock_one(core, pq).await {
            return true;
        }
        if !sleep_or_stop(&pq.stop, core.options.lock_retry_delay).await {
            return false;
        }
    }
}

/// Renews the locks of every assigned queue, one LOCK_BATCH_MQ per broker; a queue whose renewal
/// is refused stops being consumed until its lock is won again.
pub(crate) async fn renew_locks(core: &Core) {
    let _serial = core.lock_requests.lock().await;
    let mut by_broker: BTreeMap<String, Vec<Arc<ProcessQueue>>> = BTreeMap::new();
    for pq in core.queues.lock().values() {
        if !pq.stop.is_cancelled() {
            by_broker
                .entry(pq.mq.broker_name.clone())
                .or_default()
                .push(pq.clone());
        }
    }
    for pqs in by_broker.values() {
        let mq = &pqs[0].mq;
        let addr = match core
            .instance
            .find_master_addr(&mq.broker_name, &mq.topic)
            .await
        {
            Ok(a) => a,
            Err(e) => {
                tracing::debug!(broker = %mq.broker_name, "no broker to renew locks at: {e}");
                continue;
            }
        };
        let wanted: BTreeSet<MessageQueue> = pqs.iter().map(|pq| pq.mq.clone()).collect();
        let held = match core
            .instance
            .lock_batch_mq(&addr, &core.group, wanted)
            .await
        {
            Ok(held) => held,
            Err(e) => {
                tracing::debug!(broker = %mq.broker_name, "lock renewal failed: {e}");
                continue;
            }
        };
        let now = now_ms();
        for pq in pqs {
            if held.contains(&pq.mq) {
                pq.mark_locked(now, core.options.lock_valid);
            } else if pq.lock_valid(now) {
                tracing::warn!(queue = ?pq.mq, group = %core.group, "queue lock lost");
                pq.mark_unlocked();
            }
        }
    }
}

/// Releases `pq`'s lock once its task is done with it (last batch consumed, offset committed).
pub(crate) async fn unlock(core: &Core, pq: &ProcessQueue) {
    let _serial = core.lock_requests.lock().await;
    pq.mark_unlocked();
    let addr = match core
        .instance
        .find_master_addr(&pq.mq.broker_name, &pq.mq.topic)
        .await
    {
        Ok(a) => a,
        Err(e) => {
            tracing::debug!(queue = ?pq.mq, "no broker to unlock at: {e}");
            return;
        }
    };
    let mqs = BTreeSet::from([pq.mq.clone()]);
    if let Err(e) = core.instance.unlock_batch_mq(&addr, &core.group, mqs).await {
        tracing::warn!(queue = ?pq.mq, "unlock failed; the broker frees it when it expires: {e}");
    }
}

/// Consumes `msgs` (one pull's worth, in offset order) a batch at a time, each only while the
/// queue is locked. A suspended batch is consumed again after `suspend_current_queue_time` with
/// its reconsume count raised; a message already tried `max_reconsume_times` times goes to the
/// dead-letter topic instead, as the Java client does. The queue's offset advances after every
/// finished batch. False when the queue was stopped before everything was consumed.
pub(crate) async fn consume(
    core: &Arc<Core>,
    pq: &ProcessQueue,
    listener: &OrderlyMessageListener,
    mut msgs: Vec<MessageExt>,
) -> bool {
    let chunk = core.options.consume_batch_max_size.max(1);
    let mut next = 0;
    while next < msgs.len() {
        if !ensure_locked(core, pq).await {
            return false;
        }
        let end = (next + chunk).min(msgs.len());
        let batch: Vec<MessageExt> = msgs[next..end].to_vec();
        let status = {
            let listener = listener.clone();
            tokio::task::spawn_blocking(move || {
                catch_unwind(AssertUnwindSafe(|| listener(&batch))).unwrap_or_else(|_| {
                    tracing::error!("the orderly listener panicked; suspending the queue");
                    ConsumeOrderlyStatus::SuspendCurrentQueueAMoment
                })
            })
            .await
            .unwrap_or(ConsumeOrderlyStatus::SuspendCurrentQueueAMoment)
        };
        if status == ConsumeOrderlyStatus::Success {
            pq.offset
                .store(msgs[end - 1].queue_offset + 1, Ordering::Release);
            next = end;
            continue;
        }
        let mut again = Vec::new();
        for m in &msgs[next..end] {
            if m.reconsume_times >= core.options.max_reconsume_times {
                match send_back(core, &pq.mq, m, DLQ_DELAY_LEVEL).await {
                    Ok(()) => {
                        tracing::warn!(
                            queue = ?pq.mq,
                            msg_id = m.msg_id(),
                            "message suspended {} times; sent to the dead-letter topic",
                            m.reconsume_times
                        );
                        continue;
                    }
                    Err(e) => tracing::warn!(
                        queue = ?pq.mq,
                        msg_id = m.msg_id(),
                        "could not dead-letter a message; consuming it again: {e}"
                    ),
                }
            }
            let mut m = m.clone();
            m.reconsume_times += 1;
            again.push(m);
        }
        if again.is_empty() {
            pq.offset
                .store(msgs[end - 1].queue_offset + 1, Ordering::Release);
            next = end;
            continue;
        }
        msgs.splice(next..end, again);
        if !sleep_or_stop(&pq.stop, core.options.suspend_current_queue_time).await {
            return false;
        }
    }
    true
}
