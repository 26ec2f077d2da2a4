//! Queue allocation among the consumers of a group: RocketMQ's averagely, averagely-by-circle
//! and consistent-hash strategies, computed the way the Java client computes them, so Petrel
//! and Java consumers of one group using the same strategy agree on who reads which queue. Every
//! strategy is a pure function of the sorted queues and the sorted consumer ids: each member
//! computes the same split on its own.

use std::collections::BTreeMap;

use md5::{Digest, Md5};
use petrel_common::protocol::MessageQueue;

/// Virtual nodes per consumer on the consistent-hash ring (the Java default).
pub const DEFAULT_VIRTUAL_NODES: usize = 10;

/// How a group splits a topic's queues among its consumers (`AllocateMessageQueueStrategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AllocateStrategy {
    /// Contiguous runs of queues, the first consumers taking one extra (`AVG`).
    #[default]
    Averagely,
    /// Queue `i` to consumer `i mod consumers` (`AVG_BY_CIRCLE`).
    AveragelyByCircle,
    /// Each queue to the consumer after it on an MD5 hash ring with `virtual_nodes` points per
    /// consumer: when a consumer leaves, only its queues move.
    ConsistentHash { virtual_nodes: usize },
}

impl AllocateStrategy {
    /// The queues `me` reads among `all_queues` (sorted) split over `all_ids` (sorted).
    pub fn allocate(
        self,
        all_queues: &[MessageQueue],
        all_ids: &[String],
        me: &str,
    ) -> Vec<MessageQueue> {
        match self {
            AllocateStrategy::Averagely => allocate_averagely(all_queues, all_ids, me),
            AllocateStrategy::AveragelyByCircle => {
                allocate_averagely_by_circle(all_queues, all_ids, me)
            }
            AllocateStrategy::ConsistentHash { virtual_nodes } => {
                allocate_consistent_hash(all_queues, all_ids, me, virtual_nodes)
            }
        }
    }

    /// The name Java's `AllocateMessageQueueStrategy.getName()` gives it.
    pub fn name(self) -> &'static str {
        match self {
            AllocateStrategy::Averagely => "AVG",
            AllocateStrategy::AveragelyByCircle => "AVG_BY_CIRCLE",
            AllocateStrategy::ConsistentHash { .. } => "CONSISTENT_HASH",
        }
    }
}

/// The queues `me` reads when `all_queues` (sorted) are split among `all_ids` (sorted) in
/// contiguous runs, the first `queues % consumers` consumers taking one extra. Empty when `me`
/// is not among the ids.
pub fn allocate_averagely(
    all_queues: &[MessageQueue],
    all_ids: &[String],
    me: &str,
) -> Vec<MessageQueue> {
    let Some(index) = all_ids.iter().position(|id| id == me) else {
        return Vec::new();
    };
    let (q, c) = (all_queues.len(), all_ids.len());
    if q == 0 {
        return Vec::new();
    }
    let rem = q % c;
    let average = if q <= c {
        1
    } else if rem > 0 && index < rem {
        q / c + 1
    } else {
        q / c
    };
    let start = if rem > 0 && index < rem {
        index * average
    } else {
        index * average + rem
    };
    let range = average.min(q.saturating_sub(start));
    (0..range)
        .map(|i| all_queues[(start + i) % q].clone())
        .collect()
}

/// Queue `i` goes to the consumer at index `i mod consumers`. Empty when `me` is not among the ids.
pub fn allocate_averagely_by_circle(
    all_queues: &[MessageQueue],
    all_ids: &[String],
    me: &str,
) -> Vec<MessageQueue> {
    let Some(index) = all_ids.iter().position(|id| id == me) else {
        return Vec::new();
    };
    all_queues
        .iter()
        .skip(index)
        .step_by(all_ids.len())
        .cloned()
        .collect()
}

/// The first four bytes of the MD5 of `key`, big-endian: the ring position Java's
/// `ConsistentHashRouter` gives a key.
fn ring_hash(key: &str) -> u32 {
    let digest = Md5::digest(key.as_bytes());
    u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// A queue's key on the ring: Java's `MessageQueue.toString()`.
fn queue_key(mq: &MessageQueue) -> String {
    format!(
        "MessageQueue [topic={}, brokerName={}, queueId={}]",
        mq.topic, mq.broker_name, mq.queue_id
    )
}

/// Each queue goes to the owner of the first virtual node at or after the queue's hash (wrapping
/// around). Virtual node `n` of consumer `id` sits at the hash of `id-n`; on a collision the
/// later consumer in `all_ids` wins, as in Java's TreeMap.
pub fn allocate_consistent_hash(
    all_queues: &[MessageQueue],
    all_ids: &[String],
    me: &str,
    virtual_nodes: usize,
) -> Vec<MessageQueue> {
    if !all_ids.iter().any(|id| id == me) {
        return Vec::new();
    }
    let mut ring: BTreeMap<u32, &str> = BTreeMap::new();
    for id in all_ids {
        for n in 0..virtual_nodes.max(1) {
            ring.insert(ring_hash(&format!("{id}-{n}")), id.as_str());
        }
    }
    all_queues
        .iter()
        .filter(|mq| {
            let h = ring_hash(&queue_key(mq));
            let owner = ring
                .range(h..)
                .next()
                .or_else(|| ring.iter().next())
                .map(|(_, id)| *id);
            owner == Some(me)
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn queues(n: i32) -> Vec<MessageQueue> {
        (0..n)
            .map(|i| MessageQueue {
                topic: "T".into(),
                broker_name: "a".into(),
                queue_id: i,
            })
            .collect()
    }

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("c{i}")).collect()
    }

    fn ids_of(v: &[MessageQueue]) -> Vec<i32> {
        v.iter().map(|m| m.queue_id).collect()
    }

    #[test]
    fn splits_evenly_with_extras_to_the_first() {
        let qs = queues(8);
        let cs = ids(3);
        assert_eq!(ids_of(&allocate_averagely(&qs, &cs, "c0")), vec![0, 1, 2]);
        assert_eq!(ids_of(&allocate_averagely(&qs, &cs, "c1")), vec![3, 4, 5]);
        assert_eq!(ids_of(&allocate_averagely(&qs, &cs, "c2")), vec![6, 7]);
    }

    #[test]
    fn every_queue_has_exactly_one_owner() {
        for nq in 0..12 {
            for nc in 1..10 {
                let qs = queues(nq);
                let cs = ids(nc);
                let mut all: Vec<i32> = cs
                    .iter()
                    .flat_map(|c| ids_of(&allocate_averagely(&qs, &cs, c)))
                    .collect();
                all.sort();
                assert_eq!(
                    all,
                    (0..nq).collect::<Vec<_>>(),
                    "{nq} queues, {nc} consumers"
                );
            }
        }
    }

    #[test]
    fn more_consumers_than_queues_leaves_some_idle() {
        let qs = queues(2);
        let cs = ids(4);
        assert_eq!(ids_of(&allocate_averagely(&qs, &cs, "c1")), vec![1]);
        assert!(allocate_averagely(&qs, &cs, "c3").is_empty());
    }

    #[test]
    fn a_stranger_gets_nothing() {
        assert!(allocate_averagely(&queues(4), &ids(2), "zz").is_empty());
    }

    const STRATEGIES: [AllocateStrategy; 4] = [
        AllocateStrategy::Averagely,
        AllocateStrategy::AveragelyByCircle,
        AllocateStrategy::ConsistentHash { virtual_nodes: 10 },
        AllocateStrategy::ConsistentHash { virtual_nodes: 1 },
    ];

    /// Queues over `brokers` brokers and client ids shaped like real ones, both sorted.
    fn shape(brokers: usize, per_broker: i32, clients: usize) -> (Vec<MessageQueue>, Vec<String>) {
        let mut qs: Vec<MessageQueue> = (0..brokers)
            .flat_map(|b| {
                (0..per_broker).map(move |i| MessageQueue {
                    topic: "Orders".into(),
                    broker_name: format!("broker-{b}"),
                    queue_id: i,
                })
            })
            .collect();
        qs.sort();
        let mut cs: Vec<String> = (0..clients)
            .map(|i| format!("10.0.0.{i}@{}", 4000 + i))
            .collect();
        cs.sort();
        (qs, cs)
    }

    #[test]
    fn by_circle_deals_queues_in_turn() {
        let qs = queues(8);
        let cs = ids(3);
        let by_circle = |c| ids_of(&allocate_averagely_by_circle(&qs, &cs, c));
        assert_eq!(by_circle("c0"), vec![0, 3, 6]);
        assert_eq!(by_circle("c1"), vec![1, 4, 7]);
        assert_eq!(by_circle("c2"), vec![2, 5]);
        assert!(by_circle("zz").is_empty());
    }

    #[test]
    fn ring_hash_is_the_first_four_md5_bytes() {
        // MD5("") = d41d8cd98f00b204e9800998ecf8427e.
        assert_eq!(ring_hash(""), 0xd41d_8cd9);
        assert_eq!(
            queue_key(&queues(1)[0]),
            "MessageQueue [topic=T, brokerName=a, queueId=0]"
        );
    }

    #[test]
    fn consistent_hash_moves_only_the_leavers_queues() {
        let (qs, cs) = shape(2, 32, 5);
        let strategy = AllocateStrategy::ConsistentHash { virtual_nodes: 10 };
        let owner = |ids: &[String]| -> BTreeMap<MessageQueue, String> {
            ids.iter()
                .flat_map(|c| {
                    strategy
                        .allocate(&qs, ids, c)
                        .into_iter()
                        .map(move |q| (q, c.clone()))
                })
                .collect()
        };
        let before = owner(&cs);
        let leaver = cs[2].clone();
        let remaining: Vec<String> = cs.iter().filter(|c| **c != leaver).cloned().collect();
        let after = owner(&remaining);
        let moved: Vec<&MessageQueue> = qs.iter().filter(|q| before[*q] != after[*q]).collect();
        assert!(
            moved.iter().all(|q| before[*q] == leaver),
            "a queue of a staying consumer moved"
        );
        let leavers_queues = before.values().filter(|c| **c == leaver).count();
        assert_eq!(moved.len(), leavers_queues);
        // Averagely, for contrast, reshuffles far more than the leaver's share.
        let avg = AllocateStrategy::Averagely;
        let avg_owner = |ids: &[String]| -> BTreeMap<MessageQueue, String> {
            ids.iter()
                .flat_map(|c| {
                    avg.allocate(&qs, ids, c)
                        .into_iter()
                        .map(move |q| (q, c.clone()))
                })
                .collect()
        };
        let (b, a) = (avg_owner(&cs), avg_owner(&remaining));
        let avg_moved = qs.iter().filter(|q| b[*q] != a[*q]).count();
        assert!(
            moved.len() < avg_moved,
            "consistent {} vs averagely {avg_moved}",
            moved.len()
        );
    }

    proptest! {
        #[test]
        fn every_strategy_assigns_every_queue_exactly_once(
            brokers in 1usize..4,
            per_broker in 0i32..40,
            clients in 1usize..12,
        ) {
            let (qs, cs) = shape(brokers, per_broker, clients);
            for strategy in STRATEGIES {
                let mut all: Vec<MessageQueue> =
                    cs.iter().flat_map(|c| strategy.allocate(&qs, &cs, c)).collect();
                all.sort();
                prop_assert_eq!(&all, &qs, "{:?}", strategy);
                // Deterministic: computing again gives the same answer.
                for c in &cs {
                    prop_assert_eq!(strategy.allocate(&qs, &cs, c), strategy.allocate(&qs, &cs, c));
                }
            }
        }

        #[test]
        fn consistent_hash_moves_only_the_leavers_queues_for_any_shape(
            per_broker in 1i32..64,
            clients in 2usize..10,
            leaver in 0usize..10,
        ) {
            let (qs, cs) = shape(1, per_broker, clients);
            let leaver = cs[leaver % clients].clone();
            let remaining: Vec<String> = cs.iter().filter(|c| **c != leaver).cloned().collect();
            let strategy = AllocateStrategy::ConsistentHash { virtual_nodes: DEFAULT_VIRTUAL_NODES };
            for c in &remaining {
                let before = strategy.allocate(&qs, &cs, c);
                let after = strategy.allocate(&qs, &remaining, c);
                prop_assert!(before.iter().all(|q| after.contains(q)), "{} lost a queue", c);
            }
        }
    }
}
