//! Broadcast consumption with Petrel's own client against Petrel standalone: every instance of a
//! group gets every message, and a restarted instance resumes from its own local offsets.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use petrel_client::consumer::MessageModel;
use petrel_client::{
    ClientConfig, ConsumeFromWhere, ConsumeStatus, Message, MessageExt, Producer, PushConsumer,
};
use petrel_remoting::code::request;
use petrel_remoting::headers::GetConsumerConnectionListRequestHeader;
use petrel_remoting::RemotingCommand;
use petrel_tests::{wait_for, Standalone};

const GROUP: &str = "broadcast-cg";
/// Every instance fails this message: broadcast mode drops it instead of retrying.
const FAILING_KEY: &str = "k7";

/// Keys each instance received, with how often.
type Seen = Arc<Mutex<HashMap<String, u32>>>;

fn broadcast_consumer(ns: &str, name: &str, topic: &str, dir: &Path, seen: Seen) -> PushConsumer {
    let mut c = PushConsumer::new(GROUP, ClientConfig::new(ns).with_instance_name(name));
    c.subscribe(topic, "*").unwrap();
    c.set_consume_from(ConsumeFromWhere::FirstOffset);
    c.options.message_model = MessageModel::Broadcasting;
    c.options.offset_store_dir = dir.to_owned();
    c.options.offset_commit_interval = Duration::from_millis(200);
    c.register_listener(move |msgs: &[MessageExt]| {
        let mut seen = seen.lock().unwrap();
        let mut status = ConsumeStatus::Success;
        for m in msgs {
            let key = m.keys().unwrap_or_default().to_owned();
            if key == FAILING_KEY {
                status = ConsumeStatus::Later;
            }
            *seen.entry(key).or_default() += 1;
        }
        status
    });
    c
}

async fn send(producer: &Producer, topic: &str, range: std::ops::Range<usize>) {
    for i in range {
        let msg = Message::new(topic, format!("m{i}")).with_keys(format!("k{i}"));
        let r = producer.send(msg).await;
        assert!(r.is_ok(), "send {i} failed: {:?}", r.err());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_instance_gets_every_message_and_resumes_from_local_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let offsets_dir = tempfile::tempdir().unwrap();
    let petrel = Standalone::start(dir.path()).await.unwrap();
    let ns = petrel.namesrv_addr.clone();
    let topic = "BroadcastNews";
    let admin = petrel_client::admin::Admin::new(ClientConfig::new(&ns));
    admin
        .create_topic(&petrel.broker_addr, topic, 4)
        .await
        .unwrap();

    let seen: Vec<Seen> = (0..3).map(|_| Seen::default()).collect();
    let names = ["b1", "b2", "b3"];
    let consumers: Vec<PushConsumer> = names
        .iter()
        .zip(&seen)
        .map(|(name, s)| broadcast_consumer(&ns, name, topic, offsets_dir.path(), s.clone()))
        .collect();
    for c in &consumers {
        c.start().await.unwrap();
    }
    for c in &consumers {
        assert_eq!(
            c.assigned_queues().len(),
            4,
            "a broadcast consumer reads every queue"
        );
    }
    // The heartbeat told the broker the group broadcasts.
    let cmd = RemotingCommand::request_with_header(
        request::GET_CONSUMER_CONNECTION_LIST,
        &GetConsumerConnectionListRequestHeader {
            consumer_group: GROUP.to_owned(),
        },
    );
    let resp = consumers[0]
        .instance()
        .invoke_ok(&petrel.broker_addr, cmd, Duration::from_secs(5))
        .await
        .unwrap();
    let connections = String::from_utf8_lossy(&resp.body_bytes()).into_owned();
    assert!(
        connections.contains(r#""messageModel":"BROADCASTING""#),
        "{connections}"
    );

    let producer = Producer::new("broadcast-pg", ClientConfig::new(&ns));
    producer.start().await.unwrap();
    send(&producer, topic, 0..200).await;
    for (name, s) in names.iter().zip(&seen) {
        wait_for(&format!("{name} to get all 200"), || {
            s.lock().unwrap().len() == 200
        })
        .await;
    }

    // b3 stops (saving its offsets), misses nothing while away, and comes back where it was.
    let mut consumers = consumers;
    let b3 = consumers.pop().unwrap();
    let client_id = b3.instance().client_id().to_owned();
    b3.shutdown().await;
    let file = offsets_dir
        .path()
        .join(&client_id)
        .join(GROUP)
        .join("offsets.json");
    assert!(file.exists(), "no offset file at {}", file.display());

    send(&producer, topic, 200..300).await;
    let again = Seen::default();
    let b3 = broadcast_consumer(&ns, "b3", topic, offsets_dir.path(), again.clone());
    b3.start().await.unwrap();
    wait_for("the restarted b3 to get the 100 new ones", || {
        again.lock().unwrap().len() == 100
    })
    .await;
    for s in &seen[..2] {
        wait_for("b1 and b2 to get all 300", || {
            s.lock().unwrap().len() == 300
        })
        .await;
    }
    // A replay of the first 200 would show up within this pause.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = again.lock().unwrap().clone();
    assert_eq!(
        again.len(),
        100,
        "the restarted instance replayed old messages"
    );
    assert!((200..300).all(|i| again.get(&format!("k{i}")) == Some(&1)));
    for (name, s) in names.iter().zip(&seen) {
        let s = s.lock().unwrap();
        assert!(s.values().all(|&n| n == 1), "{name} got a message twice");
    }

    // The failed message was neither retried in place (it was counted once above) nor sent back.
    let retry_queue = petrel_client::MessageQueue {
        topic: format!("%RETRY%{GROUP}"),
        broker_name: "broker-a".to_owned(),
        queue_id: 0,
    };
    let retried = admin.max_offset(&retry_queue).await;
    assert!(
        !matches!(retried, Ok(n) if n > 0),
        "a broadcast failure went to the retry topic: {retried:?}"
    );

    b3.shutdown().await;
    for c in consumers {
        c.shutdown().await;
    }
    producer.shutdown().await;
    petrel.shutdown().await.unwrap();
}
