//! A slave's metadata follows its master, as RocketMQ's `SlaveSynchronize` does: every few
//! seconds it pulls GET_ALL_TOPIC_CONFIG, GET_ALL_SUBSCRIPTIONGROUP_CONFIG,
//! GET_ALL_CONSUMER_OFFSET and GET_ALL_DELAY_OFFSET from the master's remoting address and
//! applies them here. Topics and groups become the master's (this broker's own system topics
//! excepted); consumer and delay offsets take the larger of both per queue, so an offset a
//! consumer committed here while the master was down is never undone. It only reads from the
//! master and never writes to it; it touches no message.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use petrel_common::protocol::{from_fastjson, TopicConfigSerializeWrapper};
use petrel_remoting::code::{request, response};
use petrel_remoting::headers::UpdateConsumerOffsetRequestHeader;
use petrel_remoting::{CancellationToken, Connection, NoRequests, RemotingCommand, RemotingError};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::broker::Broker;
use crate::subscription_group::SubscriptionGroupTable;
pub use crate::topic_config::TableReplaced;

/// Bound of connecting to the master and of each request (RocketMQ's slave waits 3 s).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// What one [`sync_once`] changed on this broker.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub topics: TableReplaced,
    pub groups: TableReplaced,
    /// Queues (group, topic, queue) whose consumer offset moved up to the master's.
    pub offsets_moved: usize,
    /// Delay levels whose progress moved up to the master's.
    pub delay_levels_moved: usize,
}

impl SyncReport {
    pub fn is_empty(&self) -> bool {
        self.topics.is_empty()
            && self.groups.is_empty()
            && self.offsets_moved == 0
            && self.delay_levels_moved == 0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MetadataSyncError {
    #[error("cannot reach the master at {master}: {source}")]
    Connect {
        master: String,
        #[source]
        source: RemotingError,
    },
    #[error("{request} to the master at {master} failed: {source}")]
    Request {
        master: String,
        request: &'static str,
        #[source]
        source: RemotingError,
    },
    #[error("the master at {master} answered {request} with code {code}: {remark}")]
    Refused {
        master: String,
        request: &'static str,
        code: i32,
        remark: String,
    },
    #[error("the master's {request} body is not what RocketMQ sends: {source}")]
    Body {
        request: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("could not persist the synchronised {table}: {source}")]
    Persist {
        table: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// Java's ConsumerOffsetSerializeWrapper: `{"offsetTable":{"topic@group":{0:12}}}`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConsumerOffsetSerializeWrapper {
    #[serde(default)]
    offset_table: BTreeMap<String, BTreeMap<i32, i64>>,
}

/// Java's DelayOffsetSerializeWrapper, the content of `delayOffset.json`:
/// `{"offsetTable":{1:100}}`, level → next schedule-queue offset.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DelayOffsetSerializeWrapper {
    #[serde(default)]
    offset_table: BTreeMap<i32, i64>,
}

/// The four tables as the master sent them.
struct MasterTables {
    topics: TopicConfigSerializeWrapper,
    groups: SubscriptionGroupTable,
    offsets: ConsumerOffsetSerializeWrapper,
    delay: DelayOffsetSerializeWrapper,
}

/// Pulls the four tables from the master at `master_addr` (its remoting `host:port`) and
/// applies them. Nothing is applied unless all four arrived and parsed; each table is then
/// persisted the way its manager keeps it.
pub async fn sync_once(
    broker: &Broker,
    master_addr: &str,
) -> Result<SyncReport, MetadataSyncError> {
    let conn = Connection::connect(master_addr, Arc::new(NoRequests), REQUEST_TIMEOUT)
        .await
        .map_err(|source| MetadataSyncError::Connect {
            master: master_addr.to_owned(),
            source,
        })?;
    // First hand over what consumers committed here, so the offsets fetched next include it.
    let handed = hand_commits_to_master(broker, &conn, master_addr).await;
    let tables = match handed {
        Ok(()) => fetch_all(&conn, master_addr).await,
        Err(e) => Err(e),
    };
    conn.close();
    apply(broker, tables?)
}

/// UPDATE_CONSUMER_OFFSET to the master for each commit clients made on this slave. The
/// master keeps the larger of its offset and this one, and ignores it while an operator's reset
/// of the queue is pending there. What could not be sent is kept for the next round.
async fn hand_commits_to_master(
    broker: &Broker,
    conn: &Connection,
    master: &str,
) -> Result<(), MetadataSyncError> {
    let mut commits = broker.offsets.take_for_master().into_iter();
    while let Some((group, topic, queue_id, offset)) = commits.next() {
        let header = UpdateConsumerOffsetRequestHeader {
            consumer_group: group.clone(),
            topic: topic.clone(),
            queue_id,
            commit_offset: offset,
        };
        let req = RemotingCommand::request_with_header(request::UPDATE_CONSUMER_OFFSET, &header);
        let result = request_ok(conn, master, req, "UPDATE_CONSUMER_OFFSET").await;
        if let Err(e) = result {
            broker
                .offsets
                .note_for_master(&group, &topic, queue_id, offset);
            for (g, t, q, o) in commits {
                broker.offsets.note_for_master(&g, &t, q, o);
            }
            return Err(e);
        }
    }
    Ok(())
}

async fn fetch_all(conn: &Connection, master: &str) -> Result<MasterTables, MetadataSyncError> {
    Ok(MasterTables {
        topics: fetch(
            conn,
            master,
            request::GET_ALL_TOPIC_CONFIG,
            "GET_ALL_TOPIC_CONFIG",
        )
        .await?,
        groups: fetch(
            conn,
            master,
            request::GET_ALL_SUBSCRIPTIONGROUP_CONFIG,
            "GET_ALL_SUBSCRIPTIONGROUP_CONFIG",
        )
        .await?,
        offsets: fetch(
            conn,
            master,
            request::GET_ALL_CONSUMER_OFFSET,
            "GET_ALL_CONSUMER_OFFSET",
        )
        .await?,
        delay: fetch(
            conn,
            master,
            request::GET_ALL_DELAY_OFFSET,
            "GET_ALL_DELAY_OFFSET",
        )
        .await?,
    })
}

/// One GET_ALL_* request; the body as fastjson wrote it (integer keys unquoted).
async fn fetch<T: DeserializeOwned>(
    conn: &Connection,
    master: &str,
    code: i32,
    name: &'static str,
) -> Result<T, MetadataSyncError> {
    let resp = request_ok(conn, master, RemotingCommand::request(code), name).await?;
    parse_body(name, &resp.body_bytes())
}

/// `req` to the master; anything but SUCCESS is an error naming the request.
async fn request_ok(
    conn: &Connection,
    master: &str,
    req: RemotingCommand,
    name: &'static str,
) -> Result<RemotingCommand, MetadataSyncError> {
    let resp =
        conn.request(req, REQUEST_TIMEOUT)
            .await
            .map_err(|source| MetadataSyncError::Request {
                master: master.to_owned(),
                request: name,
                source,
            })?;
    if resp.code != response::SUCCESS {
        return Err(MetadataSyncError::Refused {
            master: master.to_owned(),
            request: name,
            code: resp.code,
            remark: resp.remark.unwrap_or_default(),
        });
    }
    Ok(resp)
}

fn parse_body<T: DeserializeOwned>(
    name: &'static str,
    body: &[u8],
) -> Result<T, MetadataSyncError> {
    from_fastjson(body).map_err(|source| MetadataSyncError::Body {
        request: name,
        source,
    })
}

fn apply(b: &Broker, master: MasterTables) -> Result<SyncReport, MetadataSyncError> {
    let topics = b
        .topics
        .replace_all(master.topics.topic_config_table)
        .map_err(|source| MetadataSyncError::Persist {
            table: "topics",
            source,
        })?;
    for name in topics.added.iter().chain(&topics.updated) {
        b.topic_changed(name);
    }

    let groups = b
        .groups
        .replace_all(master.groups.subscription_group_table)
        .map_err(|source| MetadataSyncError::Persist {
            table: "subscription groups",
            source,
        })?;
    for name in &groups.removed {
        b.flow.remove(name);
    }
    for name in groups.added.iter().chain(&groups.updated) {
        if let Some(config) = b.groups.get(name) {
            if let Err(e) = b.flow.apply(&config) {
                tracing::warn!(group = %name, "ignoring the master's flow-control attributes: {e}");
            }
        }
    }

    let offsets_moved = b.offsets.merge_larger(&master.offsets.offset_table);
    if offsets_moved > 0 {
        b.offsets
            .persist()
            .map_err(|source| MetadataSyncError::Persist {
                table: "consumer offsets",
                source,
            })?;
    }

    let delay_levels_moved =
        crate::schedule::merge_delay_offsets(&b.config.store.root_dir, &master.delay.offset_table)
            .map_err(|source| MetadataSyncError::Persist {
                table: "delay offsets",
                source,
            })?;

    Ok(SyncReport {
        topics,
        groups,
        offsets_moved,
        delay_levels_moved,
    })
}

/// What the last round of [`run`] found, so a state is logged once and not every round.
#[derive(Debug, PartialEq, Eq)]
enum Following {
    NoMaster,
    Synced(String),
    Failing(String),
}

/// Calls [`sync_once`] every `interval` while `master_addr` names a master other than this
/// broker, until `shutdown` fires. A failure is logged once when it starts (and again for
/// another master), the recovery once when it ends.
pub async fn run(
    broker: Arc<Broker>,
    master_addr: impl Fn() -> Option<String> + Send + 'static,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut state = Following::NoMaster;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Some(master) = master_addr().filter(|a| *a != broker.broker_addr()) else {
            if state != Following::NoMaster {
                tracing::info!("no master known; metadata synchronisation paused");
                state = Following::NoMaster;
            }
            continue;
        };
        let result = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = sync_once(&broker, &master) => r,
        };
        match result {
            Ok(report) => {
                if state != Following::Synced(master.clone()) {
                    tracing::info!(%master, "metadata follows the master");
                }
                if !report.is_empty() {
                    tracing::debug!(
                        %master,
                        topics_added = report.topics.added.len(),
                        topics_updated = report.topics.updated.len(),
                        topics_removed = report.topics.removed.len(),
                        groups_added = report.groups.added.len(),
                        groups_updated = report.groups.updated.len(),
                        groups_removed = report.groups.removed.len(),
                        offsets_moved = report.offsets_moved,
                        delay_levels_moved = report.delay_levels_moved,
                        "metadata synchronised"
                    );
                }
                state = Following::Synced(master);
            }
            Err(e) => {
                if state != Following::Failing(master.clone()) {
                    tracing::warn!(%master, "metadata synchronisation failing: {e}");
                }
                state = Following::Failing(master);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    use petrel_common::topic::{perm, SubscriptionGroupConfig, TopicConfig};

    use crate::{BrokerConfig, BrokerHandle};

    #[test]
    fn offset_bodies_parse_in_the_java_form() {
        // What a Java 4.9.8 master's fastjson writes: integer keys unquoted.
        let offsets: ConsumerOffsetSerializeWrapper = parse_body(
            "GET_ALL_CONSUMER_OFFSET",
            br#"{"offsetTable":{"T@g":{0:12,1:34},"%RETRY%g@g":{0:0}}}"#,
        )
        .unwrap();
        assert_eq!(
            offsets.offset_table["T@g"],
            BTreeMap::from([(0, 12), (1, 34)])
        );
        assert_eq!(offsets.offset_table["%RETRY%g@g"], BTreeMap::from([(0, 0)]));
        let delay: DelayOffsetSerializeWrapper = parse_body(
            "GET_ALL_DELAY_OFFSET",
            br#"{"offsetTable":{1:100,2:0,18:7}}"#,
        )
        .unwrap();
        assert_eq!(
            delay.offset_table,
            BTreeMap::from([(1, 100), (2, 0), (18, 7)])
        );
        // 5.x adds a dataVersion; quoted keys (Petrel's own files) read the same.
        let v5: ConsumerOffsetSerializeWrapper = parse_body(
            "GET_ALL_CONSUMER_OFFSET",
            br#"{"dataVersion":{"counter":3,"timestamp":1},"offsetTable":{"T@g":{"0":5}}}"#,
        )
        .unwrap();
        assert_eq!(v5.offset_table["T@g"], BTreeMap::from([(0, 5)]));
        assert!(parse_body::<DelayOffsetSerializeWrapper>("GET_ALL_DELAY_OFFSET", b"{1:").is_err());
    }

    async fn start(dir: &Path, name: &str) -> BrokerHandle {
        let mut store = petrel_store::StoreConfig::new(dir);
        store.commit_log_file_size = 1024 * 1024;
        let mut config = BrokerConfig::new(store);
        config.broker_name = name.into();
        config.listen_addr = "127.0.0.1:0".parse().unwrap();
        config.metrics_listen = None;
        config.vip_channel_enable = false;
        Broker::start(config, CancellationToken::new())
            .await
            .unwrap()
    }

    fn write_delay_offsets(dir: &Path, json: &str) {
        std::fs::create_dir_all(dir.join("config")).unwrap();
        std::fs::write(dir.join("config").join("delayOffset.json"), json).unwrap();
    }

    fn delay_offsets(dir: &Path) -> BTreeMap<i32, i64> {
        crate::schedule::read_delay_offsets(dir).unwrap()
    }

    #[tokio::test]
    async fn slave_takes_the_masters_tables_and_the_larger_offsets_and_keeps_them() {
        let (master_dir, slave_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        write_delay_offsets(master_dir.path(), r#"{"offsetTable":{"1":5,"2":30}}"#);
        write_delay_offsets(slave_dir.path(), r#"{"offsetTable":{"1":9,"3":2}}"#);
        let master = start(master_dir.path(), "broker-m").await;
        let slave = start(slave_dir.path(), "broker-s").await;
        let (m, s) = (master.broker.clone(), slave.broker.clone());

        m.topics
            .upsert(TopicConfig::new("Orders", 4, perm::READ | perm::WRITE))
            .unwrap();
        m.topics
            .upsert(TopicConfig::new("Doomed", 2, perm::READ | perm::WRITE))
            .unwrap();
        let mut billing = SubscriptionGroupConfig::new("billing");
        billing.retry_max_times = 5;
        m.groups.upsert(billing.clone()).unwrap();
        m.groups
            .upsert(SubscriptionGroupConfig::new("doomed-group"))
            .unwrap();
        m.commit_offset("billing", "Orders", 0, 100);
        m.commit_offset("billing", "Orders", 1, 10);
        m.commit_offset("audit", "Orders", 0, 7);
        // Committed on the slave while the master was away: larger on queue 1, smaller on 0.
        s.commit_offset("billing", "Orders", 0, 40);
        s.commit_offset("billing", "Orders", 1, 60);
        // The slave's own stale view of a topic and a group, and a topic only it has.
        s.topics
            .upsert(TopicConfig::new("Orders", 1, perm::READ))
            .unwrap();
        s.topics
            .upsert(TopicConfig::new("SlaveOnly", 1, perm::READ | perm::WRITE))
            .unwrap();
        s.groups
            .upsert(SubscriptionGroupConfig::new("slave-only-group"))
            .unwrap();

        let master_addr = master.local_addr().to_string();
        // On the wire, the master's bodies are in fastjson's form, as a Java slave reads them.
        let conn = Connection::connect(&master_addr, Arc::new(NoRequests), REQUEST_TIMEOUT)
            .await
            .unwrap();
        let mut bodies = Vec::new();
        for code in [
            request::GET_ALL_CONSUMER_OFFSET,
            request::GET_ALL_DELAY_OFFSET,
        ] {
            let resp = conn
                .request(RemotingCommand::request(code), REQUEST_TIMEOUT)
                .await
                .unwrap();
            assert_eq!(resp.code, response::SUCCESS, "{:?}", resp.remark);
            bodies.push(String::from_utf8(resp.body_bytes().to_vec()).unwrap());
        }
        // (The transaction checker's own offsets are in the table too.)
        assert!(
            bodies[0].starts_with(r#"{"offsetTable":{"#),
            "{}",
            bodies[0]
        );
        assert!(
            bodies[0].contains(r#""Orders@audit":{0:7},"Orders@billing":{0:100,1:10}"#),
            "{}",
            bodies[0]
        );
        assert_eq!(bodies[1], r#"{"offsetTable":{1:5,2:30}}"#);
        conn.close();

        let report = sync_once(&s, &master_addr).await.unwrap();
        assert!(
            report.topics.added.contains(&"Doomed".to_owned()),
            "{report:?}"
        );
        assert_eq!(report.topics.updated, vec!["Orders".to_owned()]);
        assert!(
            report.topics.removed.contains(&"SlaveOnly".to_owned()),
            "{report:?}"
        );
        assert_eq!(s.topics.get("Orders"), m.topics.get("Orders"));
        assert_eq!(s.topics.get("Doomed").unwrap().write_queue_nums, 2);
        assert!(s.topics.get("SlaveOnly").is_none());
        // The slave's own system topics stay although the master (another broker name here)
        // has none of that name; the master's own ones arrive.
        assert!(s.topics.get("broker-s").is_some());
        assert!(s.topics.get("broker-m").is_some());
        assert_eq!(s.topics.get("TBW102"), m.topics.get("TBW102"));
        assert_eq!(s.groups.get("billing"), Some(billing));
        assert!(s.groups.get("doomed-group").is_some());
        assert!(s.groups.get("slave-only-group").is_none());
        assert_eq!(
            s.offsets.query("billing", "Orders", 0),
            Some(100),
            "the master's is larger"
        );
        assert_eq!(
            s.offsets.query("billing", "Orders", 1),
            Some(60),
            "never backwards"
        );
        assert_eq!(s.offsets.query("audit", "Orders", 0), Some(7));
        assert_eq!(report.offsets_moved, 2);
        assert_eq!(
            delay_offsets(slave_dir.path()),
            BTreeMap::from([(1, 9), (2, 30), (3, 2)])
        );
        assert_eq!(report.delay_levels_moved, 1);

        // Deleted on the master: gone from the slave at the next round; the rest unchanged.
        m.topics.delete("Doomed").unwrap();
        m.groups.delete("doomed-group").unwrap();
        let report = sync_once(&s, &master_addr).await.unwrap();
        assert_eq!(report.topics.removed, vec!["Doomed".to_owned()]);
        assert_eq!(report.groups.removed, vec!["doomed-group".to_owned()]);
        assert!(report.topics.added.is_empty() && report.topics.updated.is_empty());
        assert_eq!((report.offsets_moved, report.delay_levels_moved), (0, 0));
        assert!(s.topics.get("Doomed").is_none());

        // All of it survives a restart of the slave.
        drop(s);
        slave.shutdown().await;
        let slave = start(slave_dir.path(), "broker-s").await;
        let s = slave.broker.clone();
        assert_eq!(s.topics.get("Orders"), m.topics.get("Orders"));
        assert!(s.topics.get("Doomed").is_none() && s.topics.get("SlaveOnly").is_none());
        assert_eq!(s.groups.get("billing").unwrap().retry_max_times, 5);
        assert!(s.groups.get("doomed-group").is_none());
        assert_eq!(s.offsets.query("billing", "Orders", 0), Some(100));
        assert_eq!(s.offsets.query("billing", "Orders", 1), Some(60));
        assert_eq!(s.offsets.query("audit", "Orders", 0), Some(7));
        assert_eq!(
            delay_offsets(slave_dir.path()),
            BTreeMap::from([(1, 9), (2, 30), (3, 2)])
        );
        drop((s, m));
        slave.shutdown().await;
        master.shutdown().await;
    }

    #[tokio::test]
    async fn an_unreachable_master_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let slave = start(dir.path(), "broker-s").await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gone = listener.local_addr().unwrap().to_string();
        drop(listener);
        let before = slave.broker.topics.all();
        let err = sync_once(&slave.broker, &gone).await.unwrap_err();
        assert!(matches!(err, MetadataSyncError::Connect { .. }), "{err}");
        assert_eq!(slave.broker.topics.all(), before);
        slave.shutdown().await;
    }

    #[tokio::test]
    async fn run_follows_the_master_named_by_the_closure() {
        let (master_dir, slave_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let master = start(master_dir.path(), "broker-a").await;
        let slave = start(slave_dir.path(), "broker-a").await;
        master
            .broker
            .topics
            .upsert(TopicConfig::new("Followed", 2, perm::READ | perm::WRITE))
            .unwrap();
        let addr = master.local_addr().to_string();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run(
            slave.broker.clone(),
            move || Some(addr.clone()),
            Duration::from_millis(50),
            shutdown.clone(),
        ));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while slave.broker.topics.get("Followed").is_none() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the topic never arrived"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        shutdown.cancel();
        task.await.unwrap();
        slave.shutdown().await;
        master.shutdown().await;
    }
}
