//! `PullRequestHold`: where pulls wait for messages (long polling, reference §7).
//!
//! Each pull runs on its own task, so instead of RocketMQ's table of suspended requests and a
//! re-run thread, a parked pull simply awaits its queue's signal. The store's arrival listener
//! publishes each queue's new max offset; a waiter wakes, re-reads, and answers on its own
//! connection. Signals are created on first wait, so queues nobody waits on cost one map lookup.

use std::collections::HashMap;
use std::time::Instant;

use parking_lot::RwLock;
use tokio::sync::watch;

#[derive(Default)]
pub struct PullRequestHold {
    queues: RwLock<HashMap<String, HashMap<i32, watch::Sender<i64>>>>,
    /// Arrivals in any queue of a topic, counted: a POP waits for any of its topic's queues.
    topics: RwLock<HashMap<String, watch::Sender<u64>>>,
}

impl PullRequestHold {
    /// Called by the store after a message is dispatched to its consume queue.
    pub fn notify_arrival(&self, topic: &str, queue_id: i32, max_offset: i64) {
        if let Some(tx) = self.queues.read().get(topic).and_then(|q| q.get(&queue_id)) {
            tx.send_replace(max_offset);
        }
        if let Some(tx) = self.topics.read().get(topic) {
            tx.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// Waits until a message arrives in any queue of `topic`, or until `deadline`; true if
    /// one did. `has_new` looks at the store after subscribing, as `current_max` does for
    /// [`wait_for`](Self::wait_for).
    pub async fn wait_for_topic(
        &self,
        topic: &str,
        deadline: Instant,
        has_new: impl FnOnce() -> bool,
    ) -> bool {
        let existing = self.topics.read().get(topic).map(watch::Sender::subscribe);
        let mut rx = match existing {
            Some(rx) => rx,
            None => self
                .topics
                .write()
                .entry(topic.to_owned())
                .or_insert_with(|| watch::channel(0).0)
                .subscribe(),
        };
        rx.mark_unchanged();
        if has_new() {
            return true;
        }
        tokio::time::timeout_at(deadline.into(), rx.changed())
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Waits until the queue's max offset exceeds `offset`, or until `deadline`; true if it did.
    /// `current_max` reads the store after subscribing, so an arrival between the caller's last
    /// read and the subscription is not missed.
    pub async fn wait_for(
        &self,
        topic: &str,
        queue_id: i32,
        offset: i64,
        deadline: Instant,
        current_max: impl Fn() -> i64,
    ) -> bool {
        let existing = self
            .queues
            .read()
            .get(topic)
            .and_then(|q| q.get(&queue_id))
            .map(watch::Sender::subscribe);
        let mut rx = match existing {
            Some(rx) => rx,
            None => self
                .queues
                .write()
                .entry(topic.to_owned())
                .or_default()
                .entry(queue_id)
                .or_insert_with(|| watch::channel(-1).0)
                .subscribe(),
        };
        if current_max() > offset {
            return true;
        }
        let wait = async {
            loop {
                if *rx.borrow_and_update() > offset {
                    return true;
                }
                if rx.changed().await.is_err() {
                    return false;
                }
            }
        };
        tokio::time::timeout_at(deadline.into(), wait)
            .await
            .unwrap_or(false)
    }

    /// Forgets queues no pull is waiting on (called periodically).
    pub fn sweep(&self) {
        self.queues.write().retain(|_, queues| {
            queues.retain(|_, tx| tx.receiver_count() > 0);
            !queues.is_empty()
        });
        self.topics.write().retain(|_, tx| tx.receiver_count() > 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn a_parked_pull_wakes_on_arrival_and_times_out_without_one() {
        let hold = Arc::new(PullRequestHold::default());
        let h = hold.clone();
        let waiter = tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(5);
            h.wait_for("T", 0, 0, deadline, || 0).await
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let started = Instant::now();
        hold.notify_arrival("T", 0, 1);
        assert!(waiter.await.unwrap());
        assert!(started.elapsed() < Duration::from_millis(50));

        let deadline = Instant::now() + Duration::from_millis(30);
        assert!(!hold.wait_for("T", 1, 0, deadline, || 0).await);
        hold.sweep();
        assert!(hold.queues.read().is_empty());
    }
}
