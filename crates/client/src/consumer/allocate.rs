//! Queue allocation among the consumers of a group: RocketMQ's "averagely" strategy, so a Petrel
//! consumer and Java consumers of one group agree on who reads which queue.

use petrel_common::protocol::MessageQueue;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
