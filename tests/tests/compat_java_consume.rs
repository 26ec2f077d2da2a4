//! Consumption semantics of the official Apache RocketMQ Java client 4.9.8 (`compat/java`)
//! against Petrel standalone: orderly consumption across a rebalance, broadcasting, retries
//! through the delay levels into the dead letter queue, SQL92 selectors, delay levels and
//! delivery at a chosen moment (`__STARTDELIVERTIME`). Each test runs one scenario in its own
//! JVM against a fresh broker; the scenario asserts exactly what it receives and fails on the
//! first difference.

use petrel::standalone::StandaloneConfig;
use petrel_tests::java::{scenario_on, scenario_on_fresh_petrel};
use petrel_tests::process::ProgramRun;

/// Short delay levels, so retries and delayed messages take seconds: level 1 = 200 ms,
/// 2 = 1 s, the retries' 3 + reconsumeTimes = 300 ms, 400 ms, 500 ms …, the last = 2 s.
const SHORT_LEVELS: [&str; 18] = [
    "200ms", "1s", "300ms", "400ms", "500ms", "600ms", "700ms", "800ms", "900ms", "1s", "1s", "1s",
    "1s", "1s", "1s", "1s", "1s", "2s",
];

/// SHORT_LEVELS in milliseconds, for the scenario's `levels` option.
fn short_levels_ms() -> String {
    SHORT_LEVELS
        .iter()
        .map(|l| {
            let ms = petrel_common::duration::parse_ms(l).expect("a delay level");
            ms.to_string()
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn with_short_levels(scenario: &str) -> ProgramRun {
    let dir = tempfile::tempdir().expect("a data directory");
    let mut config = StandaloneConfig::ephemeral(dir.path());
    config.message_delay_level = Some(SHORT_LEVELS.join(" "));
    shown(scenario_on(
        config,
        scenario,
        &[("levels", short_levels_ms())],
    ))
}

/// The scenario's RESULT lines (timings, counts) on stderr, shown with `--nocapture`.
fn shown(run: ProgramRun) -> ProgramRun {
    for line in run.stdout.lines().filter(|l| l.starts_with("RESULT ")) {
        eprintln!("{line}");
    }
    run
}

/// 1,000 messages over 20 keys sent with a hash-of-key MessageQueueSelector reach
/// MessageListenerOrderly consumers each key in send order, while a second consumer joins
/// mid-way and takes half the queues over (it locks and consumes some; the first
/// deliveries stay gap-free and in order, each consumer alone sees each key strictly
/// increasing, and at most one message per moved queue, the one in flight at the hand-over,
/// is delivered twice).
#[test]
fn orderly_consumers_keep_each_keys_order_across_a_rebalance() {
    let run = shown(scenario_on_fresh_petrel(
        "Ordering.orderByKeyAcrossRebalance",
        &[("keys", "20".to_owned()), ("perKey", "50".to_owned())],
    ));
    let second: u32 = run
        .result("second_consumer")
        .and_then(|v| v.parse().ok())
        .expect("RESULT second_consumer");
    assert!(second > 0, "the second consumer consumed nothing");
}

/// An orderly consumer suspending one message: the client re-delivers it in place (the
/// queue's later messages wait) until maxReconsumeTimes, then hands it over with a plain send
/// to `%RETRY%<group>` that the broker must dead-letter; the queue then moves on in order.
#[test]
fn orderly_suspend_retries_in_place_then_dead_letters() {
    let run = with_short_levels("Ordering.orderlySuspendThenDeadLetter");
    assert_eq!(run.result("dead_letter_reconsume_times"), Some("2"));
}

/// Three BROADCASTING members of one group each get all 80 messages exactly once (half sent
/// before they start, half after), with body, tags, keys and properties intact.
#[test]
fn broadcasting_members_each_get_every_message_once() {
    scenario_on_fresh_petrel("Broadcast.everyMemberGetsEveryMessage", &[]);
}

/// RECONSUME_LATER: each failed message comes back with reconsumeTimes + 1, the same message
/// id and content, no earlier than its delay level (level 3 + reconsumeTimes when the broker
/// chooses, the one asked with setDelayLevelWhenNextConsume otherwise) and at most 1.5 s after
/// it; the message failing every time (maxReconsumeTimes 2) is delivered three times and the
/// one asking for level -1 once, then those two are exactly what `%DLQ%<group>` holds, with
/// their body, tags, keys, properties and message id, reconsumeTimes 3 and 1, and RETRY_TOPIC.
#[test]
fn reconsume_later_follows_the_delay_levels_then_dead_letters() {
    with_short_levels("Retry.reconsumeLaterThenDeadLetter");
}

/// MessageSelector.bySql with Petrel's default settings: comparisons, IS [NOT] NULL,
/// [NOT] BETWEEN, [NOT] IN and TAGS each deliver exactly the matching set.
#[test]
fn sql92_selectors_get_exactly_the_matching_messages() {
    scenario_on_fresh_petrel("Filtering.sqlSelectorsGetExactlyTheMatchingSet", &[]);
}

/// A consumer whose SQL92 expression does not compile fails at start with
/// SUBSCRIPTION_PARSE_FAILED and a remark naming group, topic and expression.
#[test]
fn a_bad_sql92_expression_fails_consumer_start_with_the_reason() {
    let run = shown(scenario_on_fresh_petrel(
        "Filtering.badSqlFailsConsumerStart",
        &[],
    ));
    let remark = run.result("remark.0").expect("RESULT remark.0");
    assert!(
        remark.contains("syntax error at column 4"),
        "the remark for `a >` says where: {remark}"
    );
}

/// setDelayTimeLevel 1, 2, 3, the last level and one past it (clamped): each message arrives
/// once, never before its delay, at most 1.5 s late, with its content and no DELAY property.
#[test]
fn delay_levels_are_neither_early_nor_late() {
    with_short_levels("Delay.delayLevelsAreNeitherEarlyNorLate");
}

/// `__STARTDELIVERTIME` (the 4.x client has no timer API) 1, 2, 5, 10, 30, 60 and 90 s ahead:
/// each message arrives once with the id its send returned, stored in its topic at or after
/// its time and at most 100 ms after, never seen early by the consumer.
#[test]
fn start_deliver_time_is_kept_to_the_millisecond() {
    let run = shown(scenario_on_fresh_petrel(
        "Timers.startDeliverTimeIsExact",
        &[],
    ));
    assert!(
        run.result("stored_late_ms.in-90s").is_some(),
        "the 90 s timer was measured"
    );
}
