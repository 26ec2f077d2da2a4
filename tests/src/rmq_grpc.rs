//! Running Apache's RocketMQ 5.x client for Rust (crate `rocketmq` 5.0.0: `Producer`, its
//! transactional form, `SimpleConsumer`; gRPC `apache.rocketmq.v2`) against Petrel's gRPC
//! endpoint, in-process: [`Scenario`] starts a fresh Petrel with the scenario's topic and
//! group, and builds clients with the options the crate's quirks ask for.
//!
//! What the crate does on the wire (read in its source, `client.rs`, `session.rs`, `util.rs`):
//! - plaintext HTTP/2 unless told otherwise; every call carries `x-mq-client-id`
//!   (`host@pid#n`), `x-mq-language: RUST`, `x-mq-client-version: 5.0.0`,
//!   `x-mq-protocol-version: 2.0.0` (not `x-mq-protocol`) and `x-mq-date-time` in RFC 3339;
//! - at start it opens Telemetry with its settings and does not wait for the answer, sends a
//!   Heartbeat at once (then every 30 s) and queries the route of the option's topics, which it
//!   never refreshes; a producer's settings list those topics, which is how the server knows
//!   it as the producer (group) its half messages are checked with;
//! - a simple consumer's settings carry no subscription entries: the filter travels only in
//!   each ReceiveMessage;
//! - every send and every receive takes the route's next queue, round robin, whatever the
//!   queue's permission (a message group: SipHash of the group); Petrel answers a gRPC receive
//!   from any queue of the topic (`docs/pop.md`), so the queue it names does not matter;
//! - a receive's gRPC deadline is its long-polling timeout itself, with no margin for the
//!   answer: Petrel then polls a second less (and at least 5 s), so the timeout must be ≥ 6 s;
//! - the invisible duration is not checked by the client (Petrel takes 1 s to 12 h); there is
//!   no ChangeInvisibleDuration and no push consumer;
//! - a `Status.code` its 5.0.0 enum does not know makes it panic (`Code::from_i32(..).unwrap()`).
//!
//! Its log goes to the terminal (stderr, slog), not through the test harness.

use std::time::Duration;

use rocketmq::conf::{ClientOption, LoggingFormat, ProducerOption, SimpleConsumerOption};
use rocketmq::model::common::{FilterExpression, FilterType};
use rocketmq::model::message::MessageView;
use rocketmq::model::transaction::TransactionChecker;
use rocketmq::{Producer, SimpleConsumer};
use tokio::sync::{Mutex, MutexGuard};

use crate::Standalone;

/// The long poll each receive asks for (and its gRPC deadline, see the module comment): Petrel
/// waits 5 s on an empty queue, the shortest it waits.
pub const LONG_POLL: Duration = Duration::from_secs(6);
/// Deadline of the client's other calls (3 s by default; a loaded CI machine is slower).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Most messages one receive asks for (the crate's own default).
pub const BATCH: i32 = 32;

/// One scenario at a time: they measure time (redelivery after the invisible duration, a
/// delayed message's lateness), and several brokers and clients at once on a two-core machine
/// would measure the machine instead.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// A fresh Petrel serving gRPC, with one topic and one consumer group made for the scenario.
pub struct Scenario {
    pub petrel: Standalone,
    /// `127.0.0.1:PORT` of the gRPC endpoint: the client's access point, and what the routes
    /// point back at, so the client keeps one session (one telemetry stream).
    pub endpoint: String,
    pub topic: String,
    pub group: String,
    _dir: tempfile::TempDir,
    _one: MutexGuard<'static, ()>,
}

impl Scenario {
    /// Starts Petrel (half messages checked 1 s after they are stored, then every second: see
    /// [`crate::grpc::config`]) and creates the topic with `queues` queues and the
    /// `message.type` attribute `message_type` (NORMAL, FIFO, DELAY, TRANSACTION), and the group,
    /// as a FIFO group (`consumeMessageOrderly`) if `fifo_group`.
    pub async fn start(
        message_type: &str,
        queues: i32,
        fifo_group: bool,
    ) -> anyhow::Result<Scenario> {
        let one = ONE_AT_A_TIME.lock().await;
        let dir = tempfile::tempdir()?;
        let petrel = Standalone::start_with(crate::grpc::config(dir.path())).await?;
        let endpoint = petrel
            .grpc_addr()
            .ok_or_else(|| anyhow::anyhow!("Petrel does not serve gRPC"))?
            .to_string();
        let topic = format!("rmq_grpc_{}", message_type.to_ascii_lowercase());
        let group = format!("{topic}_group");
        petrel
            .create_topic_with_attributes(&topic, queues, &[("message.type", message_type)])
            .await?;
        if fifo_group {
            petrel.create_fifo_group(&group).await?;
        } else {
            petrel.create_group(&group).await?;
        }
        Ok(Scenario {
            petrel,
            endpoint,
            topic,
            group,
            _dir: dir,
            _one: one,
        })
    }

    fn client_option(&self) -> ClientOption {
        let mut o = ClientOption::default();
        o.set_access_url(&self.endpoint);
        o.set_enable_tls(false);
        o.set_timeout(REQUEST_TIMEOUT);
        o.set_long_polling_timeout(LONG_POLL);
        o
    }

    fn producer_option(&self) -> ProducerOption {
        let mut o = ProducerOption::default();
        o.set_logging_format(LoggingFormat::Terminal);
        o.set_topics(vec![self.topic.clone()]);
        o
    }

    /// A started producer of the scenario's topic.
    pub async fn producer(&self) -> anyhow::Result<Producer> {
        let mut p = Producer::new(self.producer_option(), self.client_option())?;
        p.start().await?;
        Ok(p)
    }

    /// A started transactional producer of the scenario's topic, `checker` answering the
    /// server's checks (RecoverOrphanedTransactionCommand over its telemetry stream).
    pub async fn transaction_producer(
        &self,
        checker: Box<TransactionChecker>,
    ) -> anyhow::Result<Producer> {
        let mut p = Producer::new_transaction_producer(
            self.producer_option(),
            self.client_option(),
            checker,
        )?;
        p.start().await?;
        Ok(p)
    }

    /// A started simple consumer of the scenario's group on its topic.
    pub async fn consumer(&self) -> anyhow::Result<SimpleConsumer> {
        let mut o = SimpleConsumerOption::default();
        o.set_logging_format(LoggingFormat::Terminal);
        o.set_consumer_group(&self.group);
        o.set_topics(vec![self.topic.clone()]);
        let mut c = SimpleConsumer::new(o, self.client_option())?;
        c.start().await?;
        Ok(c)
    }

    /// One receive of at most [`BATCH`] messages with tag expression `tags`, invisible for
    /// `invisible`: from the route's next queue, long-polling it up to [`LONG_POLL`].
    pub async fn receive(
        &self,
        consumer: &SimpleConsumer,
        tags: &str,
        invisible: Duration,
    ) -> anyhow::Result<Vec<MessageView>> {
        let filter = FilterExpression::new(FilterType::Tag, tags);
        Ok(consumer
            .receive_with(&self.topic, &filter, BATCH, invisible)
            .await?)
    }

    pub async fn stop(self) -> anyhow::Result<()> {
        self.petrel.shutdown().await
    }
}

/// This machine's host name, as the crate sends it in each message's `born_host`.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned())
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_millis() as i64
}
