//! The dashboard's JSON API against a real standalone (name server + broker on loopback), over
//! real HTTP on the broker's HTTP port, as the page uses it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use petrel::standalone::{Standalone, StandaloneConfig};
use petrel_client::{ClientConfig, ConsumeFromWhere, ConsumeStatus, MessageExt, PushConsumer};
use serde_json::{json, Value};

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    fn of(petrel: &Standalone) -> Api {
        let addr = petrel.metrics_addr().expect("the HTTP port is on");
        Api {
            http: reqwest::Client::new(),
            base: format!("http://{addr}"),
        }
    }

    async fn answer(resp: reqwest::Response) -> (u16, Value) {
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("a body");
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("not JSON ({e}), status {status}: {text}"));
        (status, body)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self.http.get(format!("{}{path}", self.base)).send().await;
        Self::answer(resp.expect("the dashboard answers")).await
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.post_text(path, body.to_string()).await
    }

    async fn post_text(&self, path: &str, body: String) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await;
        Self::answer(resp.expect("the dashboard answers")).await
    }

    async fn delete(&self, path: &str) -> (u16, Value) {
        let resp = self
            .http
            .delete(format!("{}{path}", self.base))
            .send()
            .await;
        Self::answer(resp.expect("the dashboard answers")).await
    }

    /// GETs `path` until `done` holds for its answer, for up to 30 s.
    async fn get_until(&self, path: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, body) = self.get(path).await;
            if status == 200 && done(&body) {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: still {status} {body} after 30 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The group's queues of `topic` (its retry topic's are listed too).
fn queues_of<'a>(detail: &'a Value, topic: &str) -> Vec<&'a Value> {
    detail["queues"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|q| q["topic"] == topic)
        .collect()
}

async fn standalone(dir: &std::path::Path) -> Standalone {
    Standalone::start(StandaloneConfig::ephemeral(dir))
        .await
        .expect("standalone starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_assets_are_served_without_caching() {
    let dir = tempfile::tempdir().unwrap();
    let petrel = standalone(dir.path()).await;
    let api = Api::of(&petrel);
    for (path, content_type, needle) in [
        ("/", "text/html; charset=utf-8", "<html"),
        ("/assets/app.js", "text/javascript; charset=utf-8", ""),
        ("/assets/style.css", "text/css; charset=utf-8", ""),
    ] {
        let resp = api
            .http
            .get(format!("{}{path}", api.base))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{path}");
        let h = resp.headers();
        assert_eq!(h["content-type"], content_type, "{path}");
        assert_eq!(h["cache-control"], "no-cache", "{path}");
        let text = resp.text().await.unwrap();
        assert!(!text.is_empty() && text.contains(needle), "{path}");
    }
    // /metrics and /health are still there beside it.
    let health = api
        .http
        .get(format!("{}/health", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.text().await.unwrap(), "ok");
    petrel.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_lists_its_broker_with_figures_and_config() {
    let dir = tempfile::tempdir().unwrap();
    let petrel = standalone(dir.path()).await;
    let api = Api::of(&petrel);
    let (status, cluster) = api.get("/api/cluster").await;
    assert_eq!(status, 200, "{cluster}");
    assert_eq!(cluster["namesrv"], petrel.namesrv_addr().to_string());
    let brokers = cluster["brokers"].as_array().unwrap();
    assert_eq!(brokers.len(), 1, "{cluster}");
    let b = &brokers[0];
    let addr = petrel.broker_addr().to_string();
    assert_eq!(b["addr"], addr.as_str());
    assert_eq!(b["brokerName"], "broker-a");
    assert_eq!(b["cluster"], "DefaultCluster");
    assert_eq!(b["brokerId"], 0);
    assert_eq!(b["role"], "MASTER");
    assert_eq!(b["error"], Value::Null);
    assert!(b["version"].as_str().unwrap().starts_with("PETREL_"), "{b}");
    assert!(b["putTps"].is_number() && b["getTps"].is_number(), "{b}");
    assert_eq!(b["msgPutTotalToday"], 0);
    let ratio = b["diskUsedRatio"].as_f64().expect("a disk ratio");
    assert!((0.0..=1.0).contains(&ratio), "{b}");

    let (status, config) = api.get(&format!("/api/brokers/{addr}/config")).await;
    assert_eq!(status, 200, "{config}");
    assert_eq!(config["addr"], addr.as_str());
    assert_eq!(config["config"]["brokerName"], "broker-a");

    let tps = api
        .get_until("/api/charts/tps", "a TPS sample", |t| {
            t["series"].as_array().is_some_and(|s| !s.is_empty())
        })
        .await;
    assert_eq!(tps["intervalMs"], 10_000);
    assert_eq!(tps["series"][0]["brokerName"], "broker-a", "{tps}");
    assert!(!tps["series"][0]["points"].as_array().unwrap().is_empty());
    petrel.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_is_created_listed_sent_to_found_traced_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let petrel = standalone(dir.path()).await;
    let api = Api::of(&petrel);
    let (status, created) = api
        .post(
            "/api/topics",
            json!({"topic": "DashOrders", "readQueueNums": 4, "writeQueueNums": 4, "perm": 6, "order": false}),
        )
        .await;
    assert_eq!((status, created), (200, json!({"topic": "DashOrders"})));
    for name in ["DashOther", "Unrelated"] {
        let (status, _) = api.post("/api/topics", json!({"topic": name})).await;
        assert_eq!(status, 200);
    }

    let (_, list) = api.get("/api/topics?search=dash").await;
    assert_eq!(list["total"], 2, "{list}");
    assert_eq!(list["page"], 1);
    assert_eq!(list["pageSize"], 50);
    assert_eq!(
        list["items"][0],
        json!({"topic": "DashOrders", "kind": "normal", "readQueueNums": 4, "writeQueueNums": 4, "perm": 6, "order": false})
    );
    assert_eq!(list["items"][1]["topic"], "DashOther");
    assert_eq!(list["items"][1]["readQueueNums"], 8);
    let (_, page2) = api.get("/api/topics?search=DASH&page=2&pageSize=1").await;
    assert_eq!(page2["total"], 2);
    assert_eq!(page2["items"].as_array().unwrap().len(), 1);
    assert_eq!(page2["items"][0]["topic"], "DashOther");
    // System topics only when asked for.
    let (_, normal) = api.get("/api/topics?search=TBW102").await;
    assert_eq!(normal["total"], 0);
    let (_, system) = api
        .get("/api/topics?search=TBW102&includeSystem=true")
        .await;
    assert_eq!(system["items"][0]["kind"], "system", "{system}");

    let (status, sent) = api
        .post(
            "/api/topics/DashOrders/messages",
            json!({"body": "{\"order\": 42}", "tags": "TagA", "keys": "order-42"}),
        )
        .await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(sent["status"], "SEND_OK");
    assert_eq!(sent["brokerName"], "broker-a");
    assert_eq!(sent["queueOffset"], 0);
    let msg_id = sent["msgId"].as_str().unwrap().to_owned();
    let offset_msg_id = sent["offsetMsgId"].as_str().unwrap().to_owned();

    let (_, by_key) = api
        .get("/api/messages/by-key?topic=DashOrders&key=order-42")
        .await;
    let items = by_key["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{by_key}");
    let m = &items[0];
    assert_eq!(m["msgId"], msg_id.as_str());
    assert_eq!(m["offsetMsgId"], offset_msg_id.as_str());
    assert_eq!(m["topic"], "DashOrders");
    assert_eq!(m["tags"], "TagA");
    assert_eq!(m["keys"], "order-42");
    assert_eq!(m["body"], "{\"order\": 42}");
    assert_eq!(m["bodyBase64"], "eyJvcmRlciI6IDQyfQ==");
    assert_eq!(m["bodyBytes"], 13);
    assert_eq!(m["queueId"], sent["queueId"]);
    assert_eq!(m["reconsumeTimes"], 0);
    assert_eq!(m["properties"]["UNIQ_KEY"], msg_id.as_str());
    assert_eq!(m["storeHost"], petrel.broker_addr().to_string());
    let stored_at = m["storeTimestamp"].as_i64().unwrap();

    let (_, by_id) = api
        .get(&format!("/api/messages/by-id?id={msg_id}&topic=DashOrders"))
        .await;
    assert_eq!(by_id["items"][0]["offsetMsgId"], offset_msg_id.as_str());
    let (_, by_offset_id) = api
        .get(&format!("/api/messages/by-id?id={offset_msg_id}"))
        .await;
    assert_eq!(by_offset_id["items"][0]["msgId"], msg_id.as_str());

    let (_, by_time) = api
        .get(&format!(
            "/api/messages?topic=DashOrders&begin={}&end={}",
            stored_at - 1000,
            stored_at + 1000
        ))
        .await;
    assert_eq!(by_time["total"], 1, "{by_time}");
    assert_eq!(by_time["items"][0]["msgId"], msg_id.as_str());
    let (_, before) = api
        .get(&format!(
            "/api/messages?topic=DashOrders&begin=0&end={}",
            stored_at - 1
        ))
        .await;
    assert_eq!(before["total"], 0);

    let (status, trace) = api
        .get(&format!("/api/trace?msgId={msg_id}&topic=DashOrders"))
        .await;
    assert_eq!(status, 200, "{trace}");
    assert_eq!(trace["msgId"], msg_id.as_str());
    assert_eq!(trace["stored"][0]["topic"], "DashOrders");
    assert_eq!(trace["stored"][0]["offsetMsgId"], offset_msg_id.as_str());
    assert_eq!(trace["timeline"][0]["what"], "stored", "{trace}");
    assert_eq!(trace["timeline"][0]["timeMs"], stored_at);

    let (status, st) = api.get("/api/topics/DashOrders/status").await;
    assert_eq!(status, 200);
    assert_eq!(st["totalMessages"], 1);
    assert_eq!(st["queues"].as_array().unwrap().len(), 4, "{st}");
    let (status, chart) = api.get("/api/charts/topic-tps?topic=DashOrders").await;
    assert_eq!(status, 200, "{chart}");
    assert_eq!(chart["intervalMs"], 10_000);
    assert_eq!(chart["points"].as_array().unwrap().len(), 1, "{chart}");
    assert!(chart["points"][0][1].is_number(), "{chart}");
    let (status, route) = api.get("/api/topics/DashOrders/route").await;
    assert_eq!(status, 200);
    assert_eq!(route["queueDatas"][0]["readQueueNums"], 4, "{route}");

    // The dashboard's producer is online under its group.
    let producers = api
        .get_until(
            "/api/producers?group=PETREL_DASHBOARD_PRODUCER",
            "the dashboard's producer",
            |p| p["connections"].as_array().is_some_and(|c| c.len() == 1),
        )
        .await;
    assert_eq!(producers["group"], "PETREL_DASHBOARD_PRODUCER");
    assert_eq!(
        producers["connections"][0]["language"], "JAVA",
        "{producers}"
    );

    let (status, deleted) = api.delete("/api/topics/DashOrders").await;
    assert_eq!((status, deleted), (200, json!({"deleted": "DashOrders"})));
    let (_, after) = api.get("/api/topics?search=dash").await;
    assert_eq!(after["total"], 1, "{after}");
    let (status, gone) = api.delete("/api/topics/DashOrders").await;
    assert_eq!(status, 404, "{gone}");
    assert_eq!(gone["error"], "topic DashOrders does not exist");
    petrel.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_lags_until_consumed_and_is_reset_paused_rate_limited_and_deleted() {
    const TOPIC: &str = "DashLag";
    const GROUP: &str = "DashLagGroup";
    let dir = tempfile::tempdir().unwrap();
    let petrel = standalone(dir.path()).await;
    let api = Api::of(&petrel);
    let (status, _) = api
        .post(
            "/api/topics",
            json!({"topic": TOPIC, "readQueueNums": 2, "writeQueueNums": 2}),
        )
        .await;
    assert_eq!(status, 200);
    for i in 0..20 {
        let (status, sent) = api
            .post(
                &format!("/api/topics/{TOPIC}/messages"),
                json!({"body": format!("m{i}"), "keys": format!("k{i}")}),
            )
            .await;
        assert_eq!(status, 200, "{sent}");
    }
    let (status, created) = api
        .post("/api/groups", json!({"group": GROUP, "retryMaxTimes": 3}))
        .await;
    assert_eq!((status, created), (200, json!({"group": GROUP})));
    // Offsets at the start of both queues: everything is lag.
    let (status, reset) = api
        .post(
            &format!("/api/groups/{GROUP}/reset"),
            json!({"topic": TOPIC, "time": 0}),
        )
        .await;
    assert_eq!(status, 200, "{reset}");
    assert_eq!(
        reset,
        json!({"queues": [
            {"brokerName": "broker-a", "queueId": 0, "offset": 0},
            {"brokerName": "broker-a", "queueId": 1, "offset": 0},
        ]})
    );
    let (_, detail) = api.get(&format!("/api/groups/{GROUP}")).await;
    assert_eq!(detail["group"], GROUP);
    assert_eq!(detail["totalLag"], 20, "{detail}");
    assert_eq!(detail["config"]["retryMaxTimes"], 3);
    let queues = queues_of(&detail, TOPIC);
    assert_eq!(queues.len(), 2, "{detail}");
    assert_eq!(queues[0]["queueId"], 0);
    assert_eq!(queues[0]["brokerName"], "broker-a");
    assert_eq!(queues[0]["brokerOffset"], 10);
    assert_eq!(queues[0]["consumerOffset"], 0);
    assert_eq!(queues[0]["lag"], 10);
    assert_eq!(detail["clients"], json!([]));
    assert_eq!(detail["paused"], false);
    assert_eq!(detail["rateLimit"], Value::Null);
    let (_, list) = api.get("/api/groups?search=lag").await;
    assert_eq!(list["total"], 1, "{list}");
    assert_eq!(
        list["items"][0],
        json!({"group": GROUP, "consumeEnable": true, "retryMaxTimes": 3, "lag": 20,
               "online": false, "paused": false, "rateLimit": null})
    );
    let (_, chart) = api.get(&format!("/api/charts/lag?group={GROUP}")).await;
    assert_eq!(chart["intervalMs"], 10_000);
    assert_eq!(chart["points"][0][1], 20, "{chart}");

    let consumed = Arc::new(AtomicUsize::new(0));
    let mut consumer = PushConsumer::new(
        GROUP,
        ClientConfig::new(petrel.namesrv_addr().to_string()).with_instance_name("dash-consumer"),
    );
    consumer.subscribe(TOPIC, "*").unwrap();
    consumer.set_consume_from(ConsumeFromWhere::FirstOffset);
    consumer.options.offset_commit_interval = Duration::from_millis(200);
    let seen = consumed.clone();
    consumer.register_listener(move |msgs: &[MessageExt]| {
        seen.fetch_add(msgs.len(), Ordering::SeqCst);
        ConsumeStatus::Success
    });
    consumer.start().await.unwrap();
    let detail = api
        .get_until(&format!("/api/groups/{GROUP}"), "lag going to 0", |d| {
            d["totalLag"] == 0 && d["clients"].as_array().is_some_and(|c| c.len() == 1)
        })
        .await;
    assert_eq!(consumed.load(Ordering::SeqCst), 20);
    let queues = queues_of(&detail, TOPIC);
    assert_eq!(queues.len(), 2, "{detail}");
    assert_eq!(queues[0]["consumerOffset"], 10);
    assert_eq!(queues[1]["consumerOffset"], 10);
    assert_eq!(detail["clients"][0]["language"], "JAVA", "{detail}");
    let subscriptions = detail["subscriptions"].as_array().unwrap();
    assert!(
        subscriptions.contains(&json!({"topic": TOPIC, "expression": "*", "type": "TAG"})),
        "{detail}"
    );
    let (_, list) = api.get("/api/groups?search=DashLagGroup").await;
    assert_eq!(list["items"][0]["online"], true);
    assert_eq!(list["items"][0]["lag"], 0);

    // Its deliveries are in the message's trace.
    let (_, sent) = api
        .get(&format!("/api/messages/by-key?topic={TOPIC}&key=k3"))
        .await;
    let msg_id = sent["items"][0]["msgId"].as_str().unwrap().to_owned();
    api.get_until(
        &format!("/api/trace?msgId={msg_id}&topic={TOPIC}"),
        "the delivery in the trace",
        |t| {
            t["timeline"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| s["what"] == "delivered"))
        },
    )
    .await;

    // Resent: the consumer runs it through its listener once more.
    let (status, resent) = api
        .post(
            "/api/messages/resend",
            json!({"topic": TOPIC, "msgId": msg_id, "group": GROUP}),
        )
        .await;
    assert_eq!(status, 200, "{resent}");
    assert_eq!(resent["result"]["consumeResult"], "CR_SUCCESS", "{resent}");
    assert_eq!(resent["result"]["order"], false);
    assert_eq!(consumed.load(Ordering::SeqCst), 21);

    // Paused: nothing more arrives until resumed.
    let (status, paused) = api
        .post(&format!("/api/groups/{GROUP}/pause"), json!({}))
        .await;
    assert_eq!((status, paused), (200, json!({"brokers": 1})));
    let (_, detail) = api.get(&format!("/api/groups/{GROUP}")).await;
    assert_eq!(detail["paused"], true);
    for i in 20..25 {
        let (status, _) = api
            .post(
                &format!("/api/topics/{TOPIC}/messages"),
                json!({"body": format!("m{i}")}),
            )
            .await;
        assert_eq!(status, 200);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(consumed.load(Ordering::SeqCst), 21, "consumed while paused");
    let (_, detail) = api.get(&format!("/api/groups/{GROUP}")).await;
    assert_eq!(detail["totalLag"], 5);
    let (status, resumed) = api
        .post(&format!("/api/groups/{GROUP}/resume"), json!({}))
        .await;
    assert_eq!((status, resumed), (200, json!({"brokers": 1})));
    api.get_until(&format!("/api/groups/{GROUP}"), "lag 0 after resume", |d| {
        d["totalLag"] == 0 && d["paused"] == false
    })
    .await;
    assert_eq!(consumed.load(Ordering::SeqCst), 26);

    let (status, limited) = api
        .post(
            &format!("/api/groups/{GROUP}/rate-limit"),
            json!({"perSecond": 5}),
        )
        .await;
    assert_eq!((status, limited), (200, json!({"brokers": 1})));
    let (_, detail) = api.get(&format!("/api/groups/{GROUP}")).await;
    assert_eq!(detail["rateLimit"], 5.0);
    let (_, list) = api.get("/api/groups?search=DashLagGroup").await;
    assert_eq!(list["items"][0]["rateLimit"], 5.0);
    let (status, _) = api
        .post(
            &format!("/api/groups/{GROUP}/rate-limit"),
            json!({"perSecond": 0}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, detail) = api.get(&format!("/api/groups/{GROUP}")).await;
    assert_eq!(detail["rateLimit"], Value::Null);

    consumer.shutdown().await;
    // Back to the end: nothing left to consume.
    let (status, reset) = api
        .post(
            &format!("/api/groups/{GROUP}/reset"),
            json!({"topic": TOPIC, "time": "end"}),
        )
        .await;
    assert_eq!(status, 200, "{reset}");
    let offsets: i64 = reset["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["offset"].as_i64().unwrap())
        .sum();
    assert_eq!(offsets, 25, "{reset}");

    let (status, deleted) = api.delete(&format!("/api/groups/{GROUP}")).await;
    assert_eq!((status, deleted), (200, json!({"deleted": GROUP})));
    let (status, gone) = api.get(&format!("/api/groups/{GROUP}")).await;
    assert_eq!(status, 404);
    assert_eq!(
        gone["error"],
        format!("consumer group {GROUP} does not exist")
    );
    petrel.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_failure_is_json_with_a_status() {
    let dir = tempfile::tempdir().unwrap();
    let petrel = standalone(dir.path()).await;
    let api = Api::of(&petrel);
    let cases: Vec<(u16, String, &str)> = vec![
        (400, "/api/topics?page=0".into(), "page must be 1 or more, got 0"),
        (400, "/api/topics?pageSize=501".into(), "pageSize must be from 1 to 500, got 501"),
        (400, "/api/topics?page=two".into(), "page must be a whole number, got `two`"),
        (400, "/api/messages?begin=1".into(), "the query parameter topic is required"),
        (400, "/api/messages/by-key?topic=T".into(), "the query parameter key is required"),
        (400, "/api/producers".into(), "the query parameter group is required"),
        (404, "/api/groups/NoSuchGroup".into(), "consumer group NoSuchGroup does not exist"),
        (404, "/api/topics/NoSuchTopic/status".into(), "topic NoSuchTopic does not exist"),
        (404, "/api/messages/by-key?topic=NoSuchTopic&key=k".into(), "topic NoSuchTopic does not exist"),
        (404, "/api/nothing/here".into(), "there is no page /api/nothing/here"),
        (404, "/api/brokers/10.9.9.9:1/config".into(), "the name server knows no broker at 10.9.9.9:1"),
        (
            404,
            "/api/messages/by-id?id=0A0909090000000100000000000000FF".into(),
            "no message with offsetMsgId 0A0909090000000100000000000000FF; for a client message id give its topic",
        ),
    ];
    for (status, path, error) in cases {
        let (got, body) = api.get(&path).await;
        assert_eq!((got, body), (status, json!({ "error": error })), "{path}");
    }
    let (status, body) = api.post_text("/api/topics", "not json".into()).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("the request body is not the JSON expected"),
        "{body}"
    );
    let (status, body) = api
        .post("/api/topics", json!({"topic": "Bad", "readQueueNums": 0}))
        .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "readQueueNums must be from 1 to 1024, got 0"})
        )
    );
    let (status, body) = api
        .post("/api/topics", json!({"topic": "bad topic!"}))
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = api
        .post("/api/topics/NoSuchTopic/messages", json!({"body": "x"}))
        .await;
    assert_eq!(
        (status, body),
        (404, json!({"error": "topic NoSuchTopic does not exist"}))
    );
    let (status, body) = api
        .post(
            "/api/groups/NoSuchGroup/reset",
            json!({"topic": "T", "time": "soon"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = api
        .post(
            "/api/groups/NoSuchGroup/rate-limit",
            json!({"perSecond": -1}),
        )
        .await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"error": "perSecond must be 0 (no limit) or more, got -1"})
        )
    );
    let (status, body) = api.post("/api/groups/NoSuchGroup/pause", json!({})).await;
    assert_eq!(
        (status, body),
        (
            404,
            json!({"error": "consumer group NoSuchGroup does not exist"})
        )
    );
    petrel.shutdown().await;
}

/// A dashboard served on its own listener for `admin`'s cluster, until `shutdown`.
async fn serve_dashboard(
    admin: petrel_client::admin::Admin,
    shutdown: &petrel_remoting::CancellationToken,
) -> Api {
    let app = petrel_dashboard::router(Arc::new(admin), shutdown.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(axum_serve(listener, app, shutdown.clone()));
    Api {
        http: reqwest::Client::new(),
        base: format!("http://{addr}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_acl_the_dashboard_works_with_an_admin_account_and_says_403_without() {
    let dir = tempfile::tempdir().unwrap();
    let acl_file = dir.path().join("plain_acl.yml");
    std::fs::write(
        &acl_file,
        "accounts:\n  - accessKey: dash_admin\n    secretKey: dash-secret-1\n    admin: true\n",
    )
    .unwrap();
    let toml = dir.path().join("broker.toml");
    std::fs::write(
        &toml,
        format!(
            "aclEnable = true\naclFile = {:?}\n",
            acl_file.display().to_string()
        ),
    )
    .unwrap();
    let mut config = StandaloneConfig::ephemeral(dir.path().join("data"));
    config.broker_config_file = Some(toml);
    let petrel = Standalone::start(config).await.unwrap();
    let ns = petrel.namesrv_addr().to_string();
    let shutdown = petrel_remoting::CancellationToken::new();
    let mut signed = ClientConfig::new(&ns);
    signed.credentials = Some(petrel_client::Credentials::new(
        "dash_admin",
        "dash-secret-1",
    ));
    let api = serve_dashboard(petrel_client::admin::Admin::new(signed), &shutdown).await;
    let (status, cluster) = api.get("/api/cluster").await;
    assert_eq!(status, 200);
    assert_eq!(cluster["brokers"][0]["error"], Value::Null, "{cluster}");
    let (status, created) = api.post("/api/topics", json!({"topic": "AclDash"})).await;
    assert_eq!((status, created), (200, json!({"topic": "AclDash"})));
    let (_, list) = api.get("/api/topics?search=AclDash").await;
    assert_eq!(list["total"], 1, "{list}");

    let unsigned = serve_dashboard(
        petrel_client::admin::Admin::new(ClientConfig::new(&ns)),
        &shutdown,
    )
    .await;
    let (status, refused) = unsigned.get("/api/topics").await;
    assert_eq!(status, 403, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .starts_with("cannot read the topics of broker-a"),
        "{refused}"
    );
    shutdown.cancel();
    petrel.shutdown().await;
}

/// A dashboard on a name server nobody answers at: 502 with a sentence, no panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_name_server_is_a_bad_gateway() {
    let shutdown = petrel_remoting::CancellationToken::new();
    let mut config = ClientConfig::new("127.0.0.1:1");
    config.request_timeout = Duration::from_millis(500);
    let app = petrel_dashboard::router(
        Arc::new(petrel_client::admin::Admin::new(config)),
        shutdown.clone(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(axum_serve(listener, app, shutdown.clone()));
    let api = Api {
        http: reqwest::Client::new(),
        base: format!("http://{addr}"),
    };
    for path in ["/api/cluster", "/api/topics", "/api/groups"] {
        let (status, body) = api.get(path).await;
        assert_eq!(status, 502, "{path}: {body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .starts_with("cannot read the cluster from the name server: "),
            "{path}: {body}"
        );
    }
    shutdown.cancel();
}

async fn axum_serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    shutdown: petrel_remoting::CancellationToken,
) {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .unwrap();
}
