//! The client against a small in-memory stand-in for a name server and a broker on one socket:
//! routes, sends, heartbeats, consumer lists with NOTIFY_CONSUMER_IDS_CHANGED, pulls and offsets.
//! It proves the client's wire paths and consumption logic, not broker behaviour.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use parking_lot::Mutex;
use petrel_client::{
    ClientConfig, ConsumeFromWhere, ConsumeStatus, Message, MessageQueue, Producer, PullConsumer,
    PullStatus, PushConsumer, SendStatus, SerializeType,
};
use petrel_common::properties::{self, Properties};
use petrel_common::protocol::{
    BrokerData, ConsumerListBody, HeartbeatData, QueueData, TopicRouteData,
};
use petrel_common::record::{self, RecordFields};
use petrel_remoting::code::{request, response};
use petrel_remoting::headers::*;
use petrel_remoting::{serve, CancellationToken, Connection, RemotingCommand, RequestHandler};
use tokio::net::TcpListener;

const QUEUES: i32 = 4;

#[derive(Default)]
struct State {
    addr: String,
    /// topic → queue → stored records
    queues: HashMap<(String, i32), Vec<bytes::Bytes>>,
    phys: i64,
    /// group → client id → connection
    groups: BTreeMap<String, BTreeMap<String, Connection>>,
    offsets: HashMap<(String, String, i32), i64>,
    /// Answer this many sends with SYSTEM_BUSY first.
    busy_sends: usize,
    sends_seen: usize,
    serialize_types: Vec<petrel_remoting::SerializeType>,
}

struct Mock {
    state: Mutex<State>,
    known_topics: Vec<&'static str>,
}

impl Mock {
    fn route(&self) -> TopicRouteData {
        let addr = self.state.lock().addr.clone();
        TopicRouteData {
            queue_datas: vec![QueueData {
                broker_name: "b".into(),
                read_queue_nums: QUEUES,
                write_queue_nums: QUEUES,
                perm: 6,
                topic_sys_flag: 0,
            }],
            broker_datas: vec![BrokerData {
                cluster: "c".into(),
                broker_name: "b".into(),
                broker_addrs: BTreeMap::from([(0, addr)]),
                enable_acting_master: false,
            }],
            ..Default::default()
        }
    }

    fn known(&self, topic: &str) -> bool {
        self.known_topics.contains(&topic) || topic.starts_with("%RETRY%")
    }
}

fn header_err(req: &RemotingCommand, e: impl std::fmt::Display) -> Option<RemotingCommand> {
    Some(RemotingCommand::error(
        req,
        response::SYSTEM_ERROR,
        e.to_string(),
    ))
}

impl RequestHandler for Mock {
    async fn handle(&self, conn: &Connection, req: RemotingCommand) -> Option<RemotingCommand> {
        self.state.lock().serialize_types.push(req.serialize_type);
        match req.code {
            request::GET_ROUTEINFO_BY_TOPIC => {
                let h: TopicRequestHeader = req.decode_header().ok()?;
                if h.topic == "TBW102" || self.known(&h.topic) {
                    let body = serde_json::to_vec(&self.route()).unwrap();
                    Some(RemotingCommand::success(&req).with_body(body))
                } else {
                    Some(RemotingCommand::error(
                        &req,
                        response::TOPIC_NOT_EXIST,
                        "no route",
                    ))
                }
            }
            request::SEND_MESSAGE_V2 => {
                let h: SendMessageRequestHeaderV2 = match req.decode_header() {
                    Ok(h) => h,
                    Err(e) => return header_err(&req, e),
                };
                let mut st = self.state.lock();
                st.sends_seen += 1;
                if st.busy_sends > 0 {
                    st.busy_sends -= 1;
                    return Some(RemotingCommand::error(&req, response::SYSTEM_BUSY, "busy"));
                }
                let body = req.body_bytes();
                let props = h.properties.clone().unwrap_or_default();
                let phys = st.phys;
                let store: std::net::SocketAddr = st.addr.parse().unwrap();
                let q = st.queues.entry((h.topic.clone(), h.queue_id)).or_default();
                let queue_offset = q.len() as i64;
                let mut out = BytesMut::new();
                record::encode(
                    &RecordFields {
                        queue_id: h.queue_id,
                        flag: h.flag,
                        queue_offset,
                        physical_offset: phys,
                        sys_flag: 0,
                        born_timestamp: h.born_timestamp,
                        born_host: conn.peer_addr(),
                        store_timestamp: 1,
                        store_host: store,
                        reconsume_times: 0,
                        prepared_transaction_offset: 0,
                        body: &body,
                        topic: &h.topic,
                        properties: props.as_bytes(),
                    },
                    &mut out,
                );
                q.push(out.freeze());
                st.phys += 1000;
                let resp = SendMessageResponseHeader {
                    msg_id: petrel_common::msg_id::offset_msg_id(store, phys),
                    queue_id: h.queue_id,
                    queue_offset,
                    transaction_id: properties::find(&props, properties::UNIQ_KEY)
                        .map(str::to_owned),
                    region: None,
                    trace_on: None,
                };
                Some(RemotingCommand::success(&req).with_header(&resp))
            }
            request::HEART_BEAT => {
                let hb: HeartbeatData = serde_json::from_slice(&req.body_bytes()).ok()?;
                let mut notify = Vec::new();
                {
                    let mut st = self.state.lock();
                    for c in &hb.consumer_data_set {
                        assert!(c
                            .subscription_data_set
                            .iter()
                            .any(|s| s.topic == format!("%RETRY%{}", c.group_name)));
                        let members = st.groups.entry(c.group_name.clone()).or_default();
                        if members.insert(hb.client_id.clone(), conn.clone()).is_none() {
                            notify.extend(
                                members
                                    .values()
                                    .map(|cn| (c.group_name.clone(), cn.clone())),
                            );
                        }
                    }
                }
                for (group, cn) in notify {
                    let h = ConsumerGroupHeader {
                        consumer_group: group,
                    };
                    let _ = cn
                        .oneway(RemotingCommand::request_with_header(
                            request::NOTIFY_CONSUMER_IDS_CHANGED,
                            &h,
                        ))
                        .await;
                }
                Some(RemotingCommand::success(&req))
            }
            request::UNREGISTER_CLIENT => {
                let h: UnregisterClientRequestHeader = req.decode_header().ok()?;
                let mut notify = Vec::new();
                if let Some(g) = h.consumer_group {
                    let mut st = self.state.lock();
                    if let Some(members) = st.groups.get_mut(&g) {
                        members.remove(&h.client_id);
                        notify.extend(members.values().map(|cn| (g.clone(), cn.clone())));
                    }
                }
                for (group, cn) in notify {
                    let h = ConsumerGroupHeader {
                        consumer_group: group,
                    };
                    let _ = cn
                        .oneway(RemotingCommand::request_with_header(
                            request::NOTIFY_CONSUMER_IDS_CHANGED,
                            &h,
                        ))
                        .await;
                }
                Some(RemotingCommand::success(&req))
            }
            request::GET_CONSUMER_LIST_BY_GROUP => {
                let h: ConsumerGroupHeader = req.decode_header().ok()?;
                let ids: Vec<String> = self
                    .state
                    .lock()
                    .groups
                    .get(&h.consumer_group)
                    .map(|m| m.keys().cloned().collect())
                    .unwrap_or_default();
                let body = serde_json::to_vec(&ConsumerListBody {
                    consumer_id_list: ids,
                })
                .unwrap();
                Some(RemotingCommand::success(&req).with_body(body))
            }
            request::QUERY_CONSUMER_OFFSET => {
                let h: QueryConsumerOffsetRequestHeader = req.decode_header().ok()?;
                let st = self.state.lock();
                match st.offsets.get(&(h.consumer_group, h.topic, h.queue_id)) {
                    Some(o) => Some(
                        RemotingCommand::success(&req)
                            .with_header(&OffsetResponseHeader { offset: *o }),
                    ),
                    None => Some(RemotingCommand::error(
                        &req,
                        response::QUERY_NOT_FOUND,
                        "none",
                    )),
                }
            }
            request::UPDATE_CONSUMER_OFFSET => {
                let h: UpdateConsumerOffsetRequestHeader = req.decode_header().ok()?;
                self.state
                    .lock()
                    .offsets
                    .insert((h.consumer_group, h.topic, h.queue_id), h.commit_offset);
                Some(RemotingCommand::success(&req))
            }
            request::GET_MAX_OFFSET | request::GET_MIN_OFFSET => {
                let h: QueueRequestHeader = req.decode_header().ok()?;
                let n = self
                    .state
                    .lock()
                    .queues
                    .get(&(h.topic, h.queue_id))
                    .map_or(0, Vec::len) as i64;
                let offset = if req.code == request::GET_MAX_OFFSET {
                    n
                } else {
                    0
                };
                Some(RemotingCommand::success(&req).with_header(&OffsetResponseHeader { offset }))
            }
            request::PULL_MESSAGE => {
                let h: PullMessageRequestHeader = req.decode_header().ok()?;
                let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
                loop {
                    let (found, max) = {
                        let st = self.state.lock();
                        let q = st.queues.get(&(h.topic.clone(), h.queue_id));
                        let max = q.map_or(0, Vec::len) as i64;
                        let found: Vec<bytes::Bytes> = q
                            .map(|q| {
                                q.iter()
                                    .skip(h.queue_offset.max(0) as usize)
                                    .take(h.max_msg_nums as usize)
                                    .cloned()
                                    .collect()
                            })
                            .unwrap_or_default();
                        (found, max)
                    };
                    let header = |next| PullMessageResponseHeader {
                        suggest_which_broker_id: 0,
                        next_begin_offset: next,
                        min_offset: 0,
                        max_offset: max,
                    };
                    if h.queue_offset > max {
                        return Some(
                            RemotingCommand::error(&req, response::PULL_OFFSET_MOVED, "moved")
                                .with_header(&header(max)),
                        );
                    }
                    if !found.is_empty() {
                        let next = h.queue_offset + found.len() as i64;
                        return Some(
                            RemotingCommand::success(&req)
                                .with_header(&header(next))
                                .with_body(petrel_remoting::Body::Chunks(found)),
                        );
                    }
                    if tokio::time::Instant::now() >= deadline {
                        return Some(
                            RemotingCommand::error(&req, response::PULL_NOT_FOUND, "none")
                                .with_header(&header(h.queue_offset)),
                        );
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            _ => Some(petrel_remoting::not_supported(&req)),
        }
    }
}

async fn start_mock(known_topics: Vec<&'static str>) -> (Arc<Mock>, String, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let mock = Arc::new(Mock {
        state: Mutex::new(State {
            addr: addr.clone(),
            ..Default::default()
        }),
        known_topics,
    });
    let stop = CancellationToken::new();
    tokio::spawn(serve(listener, mock.clone(), stop.clone()));
    (mock, addr, stop)
}

fn t_queues(c: &PushConsumer) -> Vec<MessageQueue> {
    c.assigned_queues()
        .into_iter()
        .filter(|q| q.topic == "T")
        .collect()
}

fn config(addr: &str, name: &str) -> ClientConfig {
    ClientConfig::new(addr).with_instance_name(name)
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..200 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting until {what}");
}

#[tokio::test]
async fn producer_sends_round_robin_and_falls_back_to_tbw102() {
    let (mock, addr, _stop) = start_mock(vec!["T"]).await;
    let p = Producer::new("pg", config(&addr, "p1"));
    p.start().await.unwrap();
    let mut queues = Vec::new();
    for i in 0..8 {
        let r = p
            .send(
                Message::new("T", format!("m{i}"))
                    .with_tags("a")
                    .with_keys("k"),
            )
            .await
            .unwrap();
        assert_eq!(r.status, SendStatus::SendOk);
        assert_eq!(r.msg_id.len(), 32);
        assert_eq!(r.offset_msg_id.len(), 32);
        queues.push(r.queue.queue_id);
    }
    queues.sort();
    assert_eq!(queues, vec![0, 0, 1, 1, 2, 2, 3, 3]);

    let r = p.send(Message::new("NewTopic", "x")).await.unwrap();
    assert_eq!(r.queue.topic, "NewTopic");
    assert_eq!(p.fetch_queues("T").await.unwrap().len(), 4);
    assert_eq!(p.fetch_queues("Nope").await.unwrap_err().code(), Some(17));

    let mq = MessageQueue {
        topic: "T".into(),
        broker_name: "b".into(),
        queue_id: 3,
    };
    let r = p.send_to_queue(Message::new("T", "q3"), &mq).await.unwrap();
    assert_eq!(r.queue, mq);
    let a = p
        .send_orderly(Message::new("T", "o"), "order-1")
        .await
        .unwrap();
    let b = p
        .send_orderly(Message::new("T", "o"), "order-1")
        .await
        .unwrap();
    assert_eq!(a.queue, b.queue);
    assert_eq!(
        a.queue.queue_id,
        6 % 4 /* |hash("order-1")| % 8 = 6; % 4 = 2 */
    );

    // The stored message carries what the producer set.
    let stored = mock.state.lock().queues[&("T".to_owned(), 3)][0].clone();
    let rec = record::decode(&stored, true).unwrap();
    let props = Properties::parse(std::str::from_utf8(rec.properties).unwrap());
    assert_eq!(props.get(properties::WAIT), Some("true"));
    assert!(props.get(properties::UNIQ_KEY).is_some());
    p.shutdown().await;
}

#[tokio::test]
async fn send_retries_busy_brokers_and_reports_broker_errors() {
    let (mock, addr, _stop) = start_mock(vec!["T"]).await;
    let p = Producer::new("pg", config(&addr, "p1"));
    p.start().await.unwrap();
    mock.state.lock().busy_sends = 2;
    p.send(Message::new("T", "x")).await.unwrap();
    assert_eq!(mock.state.lock().sends_seen, 3);
    mock.state.lock().busy_sends = 3;
    let err = p.send(Message::new("T", "x")).await.unwrap_err();
    assert_eq!(err.code(), Some(response::SYSTEM_BUSY));
    p.shutdown().await;
}

#[tokio::test]
async fn binary_headers_are_used_when_configured() {
    let (mock, addr, _stop) = start_mock(vec!["T"]).await;
    let p = Producer::new(
        "pg",
        config(&addr, "p1").with_serialize_type(SerializeType::RocketMq),
    );
    p.start().await.unwrap();
    p.send(Message::new("T", "x")).await.unwrap();
    let types = mock.state.lock().serialize_types.clone();
    assert!(!types.is_empty());
    assert!(types
        .iter()
        .all(|t| *t == petrel_remoting::SerializeType::RocketMq));
    p.shutdown().await;
}

#[tokio::test]
async fn push_consumer_receives_matching_tags_and_commits_offsets() {
    let (mock, addr, _stop) = start_mock(vec!["T"]).await;
    let p = Producer::new("pg", config(&addr, "p1"));
    p.start().await.unwrap();
    for i in 0..20 {
        let tag = if i % 2 == 0 { "a" } else { "b" };
        p.send(Message::new("T", format!("{i}")).with_tags(tag))
            .await
            .unwrap();
    }
    let got = Arc::new(Mutex::new(Vec::new()));
    let mut c = PushConsumer::new("cg", config(&addr, "c1"));
    c.subscribe("T", "a").unwrap();
    c.set_consume_from(ConsumeFromWhere::FirstOffset);
    c.options.offset_commit_interval = Duration::from_millis(100);
    let sink = got.clone();
    c.register_listener(move |msgs| {
        for m in msgs {
            sink.lock()
                .push(String::from_utf8(m.body.to_vec()).unwrap());
        }
        ConsumeStatus::Success
    });
    c.start().await.unwrap();
    assert_eq!(t_queues(&c).len(), 4);
    wait_until("10 tagged messages arrive", || got.lock().len() == 10).await;
    // More arrive while it runs (long poll).
    p.send(Message::new("T", "late").with_tags("a"))
        .await
        .unwrap();
    wait_until("the late message arrives", || got.lock().len() == 11).await;
    let mut bodies = got.lock().clone();
    bodies.sort();
    assert!(bodies.contains(&"late".to_owned()));
    assert!(bodies
        .iter()
        .all(|b| b == "late" || b.parse::<i32>().unwrap() % 2 == 0));
    c.shutdown().await;
    let offsets = mock.state.lock().offsets.clone();
    let total: i64 = (0..QUEUES)
        .map(|q| {
            offsets
                .get(&("cg".into(), "T".into(), q))
                .copied()
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(total, 21, "offsets committed past every message");
    p.shutdown().await;
}

#[tokio::test]
async fn consumers_of_a_group_split_the_queues_and_take_over_on_leave() {
    let (_mock, addr, _stop) = start_mock(vec!["T"]).await;
    let count = Arc::new(AtomicUsize::new(0));
    let mk = |name: &str| {
        let mut c = PushConsumer::new("cg", config(&addr, name));
        c.subscribe("T", "*").unwrap();
        let n = count.clone();
        c.register_listener(move |m| {
            n.fetch_add(m.len(), Ordering::SeqCst);
            ConsumeStatus::Success
        });
        c
    };
    let c1 = mk("c1");
    c1.start().await.unwrap();
    assert_eq!(t_queues(&c1).len(), 4);
    let c2 = mk("c2");
    c2.start().await.unwrap();
    // c1 learns of c2 through NOTIFY_CONSUMER_IDS_CHANGED, long before the 20 s rebalance.
    wait_until("c1 gives up half its queues", || t_queues(&c1).len() == 2).await;
    assert_eq!(t_queues(&c2).len(), 2);
    let mut all: Vec<_> = t_queues(&c1);
    all.extend(t_queues(&c2));
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 4);
    c2.shutdown().await;
    wait_until("c1 takes every queue back", || t_queues(&c1).len() == 4).await;
    c1.shutdown().await;
}

#[tokio::test]
async fn later_redelivers_the_same_message() {
    let (_mock, addr, _stop) = start_mock(vec!["T"]).await;
    let p = Producer::new("pg", config(&addr, "p1"));
    p.start().await.unwrap();
    let mut c = PushConsumer::new("cg", config(&addr, "c1"));
    c.subscribe("T", "*").unwrap();
    c.options.later_retry_delay = Duration::from_millis(50);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    c.register_listener(move |msgs| {
        let mut s = s.lock();
        s.push(msgs[0].msg_id().to_owned());
        if s.len() < 3 {
            ConsumeStatus::Later
        } else {
            ConsumeStatus::Success
        }
    });
    c.start().await.unwrap();
    let r = p.send(Message::new("T", "again")).await.unwrap();
    wait_until("three deliveries", || seen.lock().len() >= 3).await;
    let s = seen.lock().clone();
    assert!(s.iter().all(|id| *id == r.msg_id), "{s:?}");
    c.shutdown().await;
    p.shutdown().await;
}

#[tokio::test]
async fn pull_consumer_reads_and_commits() {
    let (_mock, addr, _stop) = start_mock(vec!["T"]).await;
    let p = Producer::new("pg", config(&addr, "p1"));
    p.start().await.unwrap();
    let mq = MessageQueue {
        topic: "T".into(),
        broker_name: "b".into(),
        queue_id: 1,
    };
    for i in 0..3 {
        p.send_to_queue(Message::new("T", format!("{i}")), &mq)
            .await
            .unwrap();
    }
    let pc = PullConsumer::new("pc", config(&addr, "pc"));
    pc.start().await.unwrap();
    assert_eq!(pc.fetch_queues("T").await.unwrap().len(), 4);
    let r = pc.pull(&mq, 0, 32).await.unwrap();
    let PullStatus::Found(msgs) = r.status else {
        panic!("expected messages, got {:?}", r.status)
    };
    assert_eq!(msgs.len(), 3);
    assert_eq!(r.next_begin_offset, 3);
    assert_eq!(msgs[2].queue_offset, 2);
    assert_eq!(msgs[0].property(properties::MAX_OFFSET), Some("3"));
    let r = pc.pull(&mq, 3, 32).await.unwrap();
    assert!(matches!(r.status, PullStatus::NoNewMsg));
    let r = pc.pull(&mq, 99, 32).await.unwrap();
    assert!(matches!(r.status, PullStatus::OffsetIllegal));
    assert_eq!(r.next_begin_offset, 3);
    assert_eq!(pc.committed_offset(&mq).await.unwrap(), None);
    pc.commit_offset(&mq, 3).await.unwrap();
    assert_eq!(pc.committed_offset(&mq).await.unwrap(), Some(3));
    assert_eq!(pc.max_offset(&mq).await.unwrap(), 3);
    pc.shutdown().await;
    p.shutdown().await;
}
