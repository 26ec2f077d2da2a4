//! The broker's periodic round with the name server: while nothing changes it only asks
//! whether the name server still holds its data version (QUERY_DATA_VERSION), so a broker with
//! many topics does not resend megabytes every round; a topic change registers in full at once.

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
    let after_change = broker.namesrv_registrations();
    assert!(
        after_change >= 2,
        "the change was not registered: {after_change}"
    );
    // And quiet again afterwards.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(broker.namesrv_registrations(), after_change);
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
