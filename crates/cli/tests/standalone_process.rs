//! The README's start command as a user runs it: the real `petrel standalone` binary takes sends,
//! stops cleanly on Ctrl-C (SIGINT) or SIGTERM — exit status 0, abort marker removed — and serves
//! every message again after a restart on the same data directory.

#[allow(dead_code)] // each test binary uses part of the helpers
mod common;

use common::{abort_marker, read_topic, Petrel};
use petrel_client::{Message, Producer, SendStatus};

/// Messages sent before the signal.
const MESSAGES: usize = 100;
const QUEUES: i32 = 4;

async fn clean_stop_keeps_every_message(signal: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let topic = format!("StandaloneProcess{signal}");

    let petrel = Petrel::start(&data, "async");
    assert!(
        abort_marker(&data).exists(),
        "a running store keeps its abort marker"
    );
    petrel.create_topic(&topic, QUEUES).await;
    let producer = Producer::new("petrel_test_producer", petrel.client_config("producer"));
    producer.start().await.expect("start producer");
    for i in 0..MESSAGES {
        let r = producer
            .send(Message::new(&topic, format!("body-{i}")).with_keys(format!("key-{i}")))
            .await
            .expect("send");
        assert_eq!(r.status, SendStatus::SendOk);
    }
    producer.shutdown().await;

    let status = petrel.stop_with(signal).await;
    assert!(status.success(), "SIG{signal} exit status: {status}");
    assert!(
        !abort_marker(&data).exists(),
        "a clean stop removes the abort marker"
    );

    let petrel = Petrel::start(&data, "async");
    petrel.wait_for_route(&topic, QUEUES as usize).await;
    let mut bodies: Vec<String> = read_topic(&petrel, &topic)
        .await
        .into_values()
        .flatten()
        .map(|m| {
            let body = String::from_utf8(m.body.to_vec()).expect("utf-8 body");
            let i = body.strip_prefix("body-").expect("our body");
            assert_eq!(m.keys(), Some(format!("key-{i}").as_str()));
            body
        })
        .collect();
    bodies.sort();
    let mut expected: Vec<String> = (0..MESSAGES).map(|i| format!("body-{i}")).collect();
    expected.sort();
    assert_eq!(bodies, expected);

    let status = petrel.stop_with(signal).await;
    assert!(status.success(), "second SIG{signal} exit status: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ctrl_c_shuts_down_cleanly_and_keeps_every_message() {
    clean_stop_keeps_every_message("INT").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_shuts_down_cleanly_and_keeps_every_message() {
    clean_stop_keeps_every_message("TERM").await;
}
