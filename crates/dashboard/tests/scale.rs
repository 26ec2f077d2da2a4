//! The dashboard stays fast on a big cluster: 10,000 topics and 1,000 groups, written into the
//! broker's metadata before it starts (as a broker that has run for years would load them).

use std::time::{Duration, Instant};

use petrel::standalone::{Standalone, StandaloneConfig};
use serde_json::{json, Map, Value};

const TOPICS: usize = 10_000;
const GROUPS: usize = 1_000;
/// What a page of the list may take on this box (issue 13).
const PAGE_BUDGET: Duration = Duration::from_millis(300);
/// A page built afresh (the broker's whole topic table read and sorted) in a debug build, while
/// the rest of the test suite loads both cores: CI measured 302 ms and 330 ms, where a quiet
/// machine takes about 117 ms (docs/dashboard.md). Cached pages keep [`PAGE_BUDGET`].
const UNCACHED_DEBUG_BUDGET: Duration = Duration::from_millis(900);

fn seed(dir: &std::path::Path) {
    let config = dir.join("config");
    std::fs::create_dir_all(&config).unwrap();
    let mut topics = Map::new();
    for i in 0..TOPICS {
        let name = format!("ScaleTopic{i:05}");
        topics.insert(
            name.clone(),
            json!({"topicName": name, "readQueueNums": 8, "writeQueueNums": 8, "perm": 6,
                   "topicFilterType": "SINGLE_TAG", "topicSysFlag": 0, "order": false}),
        );
    }
    let topics = json!({"topicConfigTable": topics, "dataVersion": {"timestamp": 1, "counter": 1}});
    std::fs::write(config.join("topics.json"), topics.to_string()).unwrap();
    let mut groups = Map::new();
    for i in 0..GROUPS {
        let name = format!("ScaleGroup{i:04}");
        groups.insert(name.clone(), json!({"groupName": name}));
    }
    let groups =
        json!({"subscriptionGroupTable": groups, "dataVersion": {"timestamp": 1, "counter": 1}});
    std::fs::write(config.join("subscriptionGroup.json"), groups.to_string()).unwrap();
}

async fn timed_get(http: &reqwest::Client, url: &str) -> (Duration, Value) {
    let started = Instant::now();
    let resp = http.get(url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200, "{url}");
    let body: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    (started.elapsed(), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_ten_thousand_topics_and_a_thousand_groups_answers_in_time() {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path());
    let petrel = Standalone::start(StandaloneConfig::ephemeral(dir.path()))
        .await
        .unwrap();
    let base = format!("http://{}", petrel.metrics_addr().unwrap());
    let http = reqwest::Client::new();

    // Cold: the first page fetches the whole table from the broker.
    let (cold, page) = timed_get(&http, &format!("{base}/api/topics?page=1")).await;
    assert_eq!(page["total"], TOPICS, "{}", page["total"]);
    assert_eq!(page["items"].as_array().unwrap().len(), 50);
    assert_eq!(page["items"][0]["topic"], "ScaleTopic00000");
    let (warm, _) = timed_get(&http, &format!("{base}/api/topics?page=1")).await;
    let (searched, found) = timed_get(
        &http,
        &format!("{base}/api/topics?search=topic0999&page=1&pageSize=500"),
    )
    .await;
    assert_eq!(found["total"], 10, "ScaleTopic09990 to ScaleTopic09999");
    let (last, last_page) = timed_get(&http, &format!("{base}/api/topics?page=200")).await;
    assert_eq!(last_page["items"][49]["topic"], "ScaleTopic09999");
    // Past the cache: fetched again.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let (refetched, _) = timed_get(&http, &format!("{base}/api/topics?page=1")).await;

    let (groups, group_page) = timed_get(&http, &format!("{base}/api/groups?page=1")).await;
    assert_eq!(group_page["total"], GROUPS);
    assert_eq!(group_page["items"].as_array().unwrap().len(), 50);
    let (groups_warm, _) = timed_get(&http, &format!("{base}/api/groups?page=2")).await;

    println!(
        "10,000 topics: first page cold {cold:?}, warm {warm:?}, search {searched:?}, \
         last page {last:?}, refetched {refetched:?}; 1,000 groups: first page (with lag) \
         {groups:?}, second page {groups_warm:?}"
    );
    let uncached_budget = if cfg!(debug_assertions) {
        UNCACHED_DEBUG_BUDGET
    } else {
        PAGE_BUDGET
    };
    for (what, took) in [
        ("cold topic page", cold),
        ("refetched topic page", refetched),
    ] {
        assert!(took < uncached_budget, "{what} took {took:?}");
    }
    for (what, took) in [
        ("warm topic page", warm),
        ("topic search", searched),
        ("last topic page", last),
        ("group page", groups),
        ("second group page", groups_warm),
    ] {
        assert!(took < PAGE_BUDGET, "{what} took {took:?}");
    }
    petrel.shutdown().await;
}
