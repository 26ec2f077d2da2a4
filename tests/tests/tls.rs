//! Petrel's own client over TLS (`ClientConfig::with_tls`) against a standalone whose name server
//! and broker enforce TLS: every message sent arrives once with its body, and a plaintext client
//! gets nowhere.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use petrel::standalone::StandaloneConfig;
use petrel_client::{
    ClientConfig, ConsumeFromWhere, ConsumeStatus, Message, MessageExt, Producer, PushConsumer,
};
use petrel_tests::{wait_for, Standalone};

const MESSAGES: usize = 50;

/// What the consumer saw: key → (body, times delivered).
type Seen = Arc<Mutex<HashMap<String, (Vec<u8>, u32)>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_client_sends_and_consumes_over_tls_and_plaintext_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("broker.toml");
    std::fs::write(&conf, "tlsServerMode = \"enforcing\"\n").unwrap();
    let mut config = StandaloneConfig::ephemeral(dir.path().join("data"));
    config.broker_config_file = Some(conf);
    let petrel = Standalone::start_with(config).await.unwrap();
    let ns = petrel.namesrv_addr.clone();
    let topic = "TlsOwnClient";
    let tls = |instance: &str| {
        ClientConfig::new(&ns)
            .with_instance_name(instance)
            .with_tls(true)
    };

    let producer = Producer::new("tls-pg", tls("tls-p"));
    producer.start().await.unwrap();
    for i in 0..MESSAGES {
        let msg = Message::new(topic, format!("body {i}")).with_keys(format!("k{i}"));
        producer.send(msg).await.unwrap();
    }

    let plain = Producer::new(
        "plain-pg",
        ClientConfig::new(&ns)
            .with_instance_name("plain-p")
            .with_tls(false),
    );
    plain.start().await.unwrap();
    let refused = plain.send(Message::new(topic, "in the clear")).await;
    assert!(
        refused.is_err(),
        "a plaintext send went through: {refused:?}"
    );
    plain.shutdown().await;

    let seen: Seen = Arc::default();
    let mut consumer = PushConsumer::new("tls-cg", tls("tls-c"));
    consumer.subscribe(topic, "*").unwrap();
    consumer.set_consume_from(ConsumeFromWhere::FirstOffset);
    let sink = seen.clone();
    consumer.register_listener(move |msgs: &[MessageExt]| {
        let mut seen = sink.lock().unwrap();
        for m in msgs {
            let entry = seen
                .entry(m.keys().unwrap_or_default().to_owned())
                .or_insert_with(|| (m.body.to_vec(), 0));
            entry.1 += 1;
        }
        ConsumeStatus::Success
    });
    consumer.start().await.unwrap();
    wait_for("every message over TLS", || {
        seen.lock().unwrap().len() == MESSAGES
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = seen.lock().unwrap().clone();
    for i in 0..MESSAGES {
        let (body, times) = &seen[&format!("k{i}")];
        assert_eq!(body, format!("body {i}").as_bytes());
        assert_eq!(*times, 1, "k{i} delivered {times} times");
    }
    assert_eq!(seen.len(), MESSAGES);
    consumer.shutdown().await;
    producer.shutdown().await;
    petrel.shutdown().await.unwrap();
}
