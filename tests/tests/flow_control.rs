//! Runtime flow control at the broker, driven through our admin client: pausing a whole group
//! or one of its clients, resuming (parked pulls answer at once), and a consume rate limit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use petrel_client::admin::Admin;
use petrel_client::{
    ClientConfig, ConsumeFromWhere, ConsumeStatus, Message, MessageExt, Producer, PushConsumer,
};
use petrel_common::protocol::MessageQueue;
use petrel_common::topic::group_attribute;
use petrel_remoting::code::{request, response};
use petrel_remoting::RemotingCommand;
use petrel_tests::{wait_for, Standalone};

/// How long a paused consumer is watched to see that nothing arrives.
const QUIET: Duration = Duration::from_millis(1500);

/// Keys seen per consumer name.
type Seen = Arc<Mutex<HashMap<String, Vec<String>>>>;

fn consumer(ns: &str, group: &str, name: &str, topic: &str, seen: Seen) -> PushConsumer {
    let config = ClientConfig::new(ns).with_instance_name(name);
    let mut c = PushConsumer::new(group, config);
    c.subscribe(topic, "*").unwrap();
    c.set_consume_from(ConsumeFromWhere::FirstOffset);
    let name = name.to_owned();
    c.register_listener(move |msgs: &[MessageExt]| {
        let mut seen = seen.lock().unwrap();
        let mine = seen.entry(name.clone()).or_default();
        mine.extend(msgs.iter().map(|m| m.keys().unwrap_or_default().to_owned()));
        ConsumeStatus::Success
    });
    c
}

fn count(seen: &Seen, name: &str) -> usize {
    seen.lock().unwrap().get(name).map_or(0, Vec::len)
}

struct Setup {
    petrel: Standalone,
    admin: Admin,
    producer: Producer,
    topic: &'static str,
}

async fn setup(dir: &std::path::Path, topic: &'static str) -> Setup {
    let petrel = Standalone::start(dir).await.unwrap();
    petrel.create_topic(topic, 4).await.unwrap();
    let admin = Admin::new(ClientConfig::new(&petrel.namesrv_addr));
    let producer = petrel.producer("flow-pg").await.unwrap();
    Setup {
        petrel,
        admin,
        producer,
        topic,
    }
}

impl Setup {
    /// `per_queue` messages to each of the topic's 4 queues.
    async fn send(&self, prefix: &str, per_queue: usize) {
        let route = self.admin.topic_route(self.topic).await.unwrap();
        let broker_name = route.broker_datas[0].broker_name.clone();
        for queue_id in 0..4 {
            let mq = MessageQueue {
                topic: self.topic.to_owned(),
                broker_name: broker_name.clone(),
                queue_id,
            };
            for i in 0..per_queue {
                let msg = Message::new(self.topic, format!("{prefix}-{queue_id}-{i}").into_bytes())
                    .with_keys(format!("{prefix}-{queue_id}-{i}"));
                self.producer.send_to_queue(msg, &mq).await.unwrap();
            }
        }
    }
}

async fn wait_split(c1: &PushConsumer, c2: &PushConsumer, topic: &str) {
    let of_topic = |c: &PushConsumer| {
        c.assigned_queues()
            .iter()
            .filter(|q| q.topic == topic)
            .count()
    };
    wait_for("the queues to be split", || {
        of_topic(c1) == 2 && of_topic(c2) == 2
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_group_receives_nothing_until_resumed_then_everything_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = setup(dir.path(), "FlowPauseAll").await;
    let ns = s.petrel.namesrv_addr.clone();
    let seen: Seen = Arc::default();
    let c1 = consumer(&ns, "flow-all", "c1", s.topic, seen.clone());
    let c2 = consumer(&ns, "flow-all", "c2", s.topic, seen.clone());
    c1.start().await.unwrap();
    c2.start().await.unwrap();
    wait_split(&c1, &c2, s.topic).await;

    assert_eq!(s.admin.pause_group("flow-all", &[]).await.unwrap(), 1);
    s.send("paused", 10).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(
        count(&seen, "c1") + count(&seen, "c2"),
        0,
        "a paused group received messages"
    );

    // The consumers' pulls are parked at the broker; resuming answers them at once, not at
    // the end of their 15 s suspend time.
    let resumed = Instant::now();
    s.admin.resume_group("flow-all").await.unwrap();
    wait_for("all 40 messages after the resume", || {
        count(&seen, "c1") + count(&seen, "c2") == 40
    })
    .await;
    let took = resumed.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "the resume took {took:?} to reach the consumers"
    );
    c1.shutdown().await;
    c2.shutdown().await;
    s.petrel.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pausing_one_client_leaves_the_rest_of_its_group_running() {
    let dir = tempfile::tempdir().unwrap();
    let s = setup(dir.path(), "FlowPauseOne").await;
    let ns = s.petrel.namesrv_addr.clone();
    let seen: Seen = Arc::default();
    let c1 = consumer(&ns, "flow-one", "c1", s.topic, seen.clone());
    let c2 = consumer(&ns, "flow-one", "c2", s.topic, seen.clone());
    c1.start().await.unwrap();
    c2.start().await.unwrap();
    wait_split(&c1, &c2, s.topic).await;

    let c1_id = c1.instance().client_id().to_owned();
    s.admin.pause_group("flow-one", &[c1_id]).await.unwrap();
    s.send("one", 10).await;
    // c2 owns two queues of ten messages each and is not paused.
    wait_for("c2's 20 messages", || count(&seen, "c2") == 20).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(count(&seen, "c1"), 0, "the paused client received messages");
    assert_eq!(count(&seen, "c2"), 20);

    s.admin.resume_group("flow-one").await.unwrap();
    wait_for("c1's 20 messages after the resume", || {
        count(&seen, "c1") == 20
    })
    .await;
    c1.shutdown().await;
    c2.shutdown().await;
    s.petrel.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_caps_what_the_group_receives_and_lifting_it_frees_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let s = setup(dir.path(), "FlowRate").await;
    let ns = s.petrel.namesrv_addr.clone();
    let total = 4 * 600;
    s.send("rate", 600).await;

    let rate = 400.0;
    s.admin
        .set_consume_rate_limit("flow-rate", rate)
        .await
        .unwrap();
    let seen: Seen = Arc::default();
    let c = consumer(&ns, "flow-rate", "c", s.topic, seen.clone());
    let started = Instant::now();
    c.start().await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = count(&seen, "c");
    let elapsed = started.elapsed().as_secs_f64();
    // The bucket holds one second's worth, then refills at the rate.
    let most = rate * (elapsed + 1.0);
    assert!(
        (got as f64) <= most,
        "{got} messages in {elapsed:.2} s is over the limit of {rate}/s (at most {most:.0})"
    );
    assert!(
        got >= 200,
        "only {got} messages in {elapsed:.2} s at {rate}/s"
    );

    s.admin
        .set_consume_rate_limit("flow-rate", 0.0)
        .await
        .unwrap();
    wait_for("the rest of the backlog once the limit is lifted", || {
        count(&seen, "c") == total
    })
    .await;
    c.shutdown().await;
    s.petrel.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_flow_control_attribute_is_refused_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let s = setup(dir.path(), "FlowBad").await;
    let body = format!(
        r#"{{"groupName":"flow-bad","attributes":{{"{}":"fast"}}}}"#,
        group_attribute::RATE_LIMIT
    );
    let cmd = RemotingCommand::request(request::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP)
        .with_body(body.into_bytes());
    let resp = s
        .admin
        .instance()
        .invoke(&s.petrel.broker_addr, cmd, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(resp.code, response::INVALID_PARAMETER);
    let remark = resp.remark.unwrap_or_default();
    assert!(remark.contains(group_attribute::RATE_LIMIT), "{remark}");
    s.petrel.shutdown().await.unwrap();
}
