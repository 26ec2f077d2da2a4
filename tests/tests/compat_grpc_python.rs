//! The official RocketMQ 5.x Python client (PyPI rocketmq-python-client 5.1.2, gRPC,
//! plaintext) against Petrel's gRPC endpoint: compat/python/scenario.py, one test per
//! scenario, each on a fresh Petrel whose topic and group the test creates first.

use petrel_tests::grpc::{scenarios, MessageType, Setup};
use petrel_tests::python::scenario_on_fresh_petrel;

#[test]
fn normal_messages_arrive_once_each_with_tag_keys_properties_body_and_digest() {
    let run = scenario_on_fresh_petrel("normal", &Setup::topic(MessageType::Normal, 4), &[]);
    scenarios::normal(&run, "digest_ok");
}

#[test]
fn an_unacked_message_comes_back_after_its_invisible_time_as_attempt_2() {
    let run = scenario_on_fresh_petrel(
        "redeliver",
        &Setup::topic(MessageType::Normal, 1),
        &[("invisible", scenarios::REDELIVER_INVISIBLE_S.to_string())],
    );
    scenarios::redeliver(&run);
}

#[test]
fn a_fifo_group_gets_each_message_group_in_send_order() {
    let run = scenario_on_fresh_petrel("fifo", &Setup::fifo(2), &[]);
    scenarios::fifo(&run);
}

#[test]
fn a_delay_message_is_delivered_at_its_time_not_before() {
    let run = scenario_on_fresh_petrel("delay", &Setup::topic(MessageType::Delay, 1), &[]);
    scenarios::delay(&run);
}

#[test]
fn committed_delivered_rolled_back_never_unknown_committed_by_the_check() {
    let run = scenario_on_fresh_petrel(
        "transaction",
        &Setup::topic(MessageType::Transaction, 1),
        &[],
    );
    scenarios::transaction(&run);
}

#[test]
fn a_push_consumer_gets_a_failed_message_again_as_attempt_2() {
    let run = scenario_on_fresh_petrel("push", &Setup::topic(MessageType::Normal, 2), &[]);
    scenarios::push(&run);
    petrel_tests::grpc::expect(&run, &[("digest_ok", "100")]);
}
