//! The broker's periodic round with the name server: while nothing changes it only asks
//! whether the name server still holds its data version (QUERY_DATA_VERSION), so a broker with
//! many topics does not resend megabytes every round; a topic change registers that topic (an
//! increment) at once, and changes made together share one registration.

use std::io::Write;
use std::time::Duration;

use petrel::standalone::{Standalone, StandaloneConfig};
use petrel_client::admin::Admin;
use petrel_client::ClientConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_rounds_do_not_register_in_full_and_a_change_does() {
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("broker.toml");
    writeln!(
        std::fs::File::create(&toml).unwrap(),
        "registerNameServerPeriod = 100"
    )
    .unwrap();
    let mut config = StandaloneConfig::ephemeral(dir.path().join("data"));
    config.broker_config_file = Some(toml);
    let petrel = Standalone::start(config).await.unwrap();
    let broker = petrel.broker().broker.clone();
    let namesrv = petrel.namesrv_addr().to_string();

    // Started: one full registration. Then about 15 unchanged rounds.
    assert_eq!(broker.namesrv_registrations(), 1);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        broker.namesrv_registrations(),
        1,
        "unchanged rounds registered in full"
    );

    // A new topic: registered at once, and routed.
    let admin = Admin::new(ClientConfig::new(&namesrv));
    admin.instance().start().unwrap();
    admin
        .create_topic(&petrel.broker_addr().to_string(), "RegisteredOnce", 4)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while admin.topic_route("RegisteredOnce").await.is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "no route for the new topic"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(broker.namesrv_registrations(), 1, "the change went in full");
    let increments = broker.namesrv_increments();
    assert!(increments >= 1, "the change was not registered");
    // And quiet again afterwards.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(broker.namesrv_registrations(), 1);
    assert_eq!(broker.namesrv_increments(), increments);
    admin.shutdown();
    petrel.shutdown().await;
}

/// 1,500 topics created by 16 concurrent admin requests at a time: each is routed when its
/// UPDATE_AND_CREATE_TOPIC is answered, with its own queue count, none sent the whole table,
/// and a topic registered earlier is not lost when a later increment leaves it out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_topics_created_at_once_are_registered_as_increments() {
    let dir = tempfile::tempdir().unwrap();
    let petrel = Standalone::start(StandaloneConfig::ephemeral(dir.path().join("data")))
        .await
        .unwrap();
    let broker = petrel.broker().broker.clone();
    let admin = std::sync::Arc::new(Admin::new(ClientConfig::new(
        petrel.namesrv_addr().to_string(),
    )));
    admin.instance().start().unwrap();
    let broker_addr = petrel.broker_addr().to_string();
    let topics: Vec<(String, i32)> = (0..1500)
        .map(|i| (format!("Many{i:05}"), 1 + i % 8))
        .collect();
    let mut creators = tokio::task::JoinSet::new();
    for chunk in topics.chunks(topics.len() / 16) {
        let (admin, broker_addr, chunk) = (admin.clone(), broker_addr.clone(), chunk.to_vec());
        creators.spawn(async move {
            for (topic, queues) in chunk {
                admin
                    .create_topic(&broker_addr, &topic, queues)
                    .await
                    .unwrap();
                // Routed as soon as the creation is answered.
                let route = admin.topic_route(&topic).await.unwrap();
                assert_eq!(route.queue_datas[0].write_queue_nums, queues, "{topic}");
            }
        });
    }
    while let Some(done) = creators.join_next().await {
        done.unwrap();
    }
    for (topic, queues) in &topics {
        let route = admin.topic_route(topic).await.unwrap();
        assert_eq!(route.queue_datas[0].write_queue_nums, *queues, "{topic}");
    }
    assert_eq!(
        broker.namesrv_registrations(),
        1,
        "only the start sent the whole table"
    );
    let increments = broker.namesrv_increments();
    assert!((1..=1500).contains(&increments), "{increments}");
    eprintln!("1500 topics in {increments} increments");
    admin.shutdown();
    petrel.shutdown().await;
}

/// `compressedRegister`: the name server gets the compressed body (RocketMQ's layout) and
/// routes every topic with its queue numbers and permission.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compressed_registration_routes_every_topic() {
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("broker.toml");
    writeln!(
        std::fs::File::create(&toml).unwrap(),
        "compressedRegister = true"
    )
    .unwrap();
    let mut config = StandaloneConfig::ephemeral(dir.path().join("data"));
    config.broker_config_file = Some(toml);
    let petrel = Standalone::start(config).await.unwrap();
    let admin = Admin::new(ClientConfig::new(petrel.namesrv_addr().to_string()));
    admin.instance().start().unwrap();
    let broker_addr = petrel.broker_addr().to_string();
    for (topic, queues, perm) in [("Zipped1", 2, 6), ("Zipped2", 5, 4)] {
        let mut t = petrel_common::topic::TopicConfig::new(topic, queues, perm);
        t.read_queue_nums = queues;
        admin.update_topic(&broker_addr, &t).await.unwrap();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let routes = (
            admin.topic_route("Zipped1").await,
            admin.topic_route("Zipped2").await,
        );
        if let (Ok(a), Ok(b)) = routes {
            let q = |r: &petrel_common::protocol::TopicRouteData| {
                let d = &r.queue_datas[0];
                (d.read_queue_nums, d.write_queue_nums, d.perm)
            };
            assert_eq!(q(&a), (2, 2, 6));
            assert_eq!(q(&b), (5, 5, 4));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no routes: {routes:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    admin.shutdown();
    petrel.shutdown().await;
}
