//! The official Apache RocketMQ Java client 4.9.8 (`compat/java`) against Petrel standalone:
//! each test runs one scenario in its own JVM against a fresh broker; the scenario asserts
//! what it receives exactly and fails on the first difference.

use petrel_tests::java::scenario_on_fresh_petrel;

/// Regression: the 4.9.x producer sends properties without a trailing separator, and the
/// broker's CLUSTER/UNIQ_KEY were glued onto the last one (tags `A` became
/// `ACLUSTERDefaultCluster`, so tag subscriptions matched nothing).
#[test]
fn tag_subscriptions_get_exactly_their_messages_with_properties_intact() {
    scenario_on_fresh_petrel("Messaging.tagSubscriptions", &[]);
}
