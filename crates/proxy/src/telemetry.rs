//! Telemetry: the bidirectional stream each client opens first. The client sends its settings;
//! the server registers it and answers with the same settings, its own values merged in (the
//! clients wait for that answer before they start): for producers the retry policy and the
//! broker's `maxMessageSize` as the body limit; for consumers the batch size, the long-poll
//! time, whether the group is FIFO, and its retry policy (attempts from `retryMaxTimes`, the
//! broker's delay levels as backoff). While the stream is open it is how the broker reaches the
//! client: RecoverOrphanedTransactionCommand for the transaction checker.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use petrel_broker::Broker;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Streaming;

use crate::clients::{register, ClientState};
use crate::context::{ok, resource_name};
use crate::message::duration;
use crate::pb::retry_policy::Strategy;
use crate::pb::telemetry_command::Command;
use crate::pb::{
    settings, CustomizedBackoff, ExponentialBackoff, Metric, RetryPolicy, Settings,
    TelemetryCommand,
};
use crate::receive::{MAX_BATCH, MAX_LONG_POLL};

/// Commands waiting to go out on one stream.
const TELEMETRY_QUEUE: usize = 64;
/// A producer's retries of a failed send (RocketMQ's proxy defaults).
const PRODUCER_MAX_ATTEMPTS: i32 = 3;
const PRODUCER_BACKOFF_INITIAL: Duration = Duration::from_millis(10);
const PRODUCER_BACKOFF_MAX: Duration = Duration::from_secs(1);
const PRODUCER_BACKOFF_MULTIPLIER: f32 = 2.0;

static STREAMS: AtomicU64 = AtomicU64::new(0);

/// Serves one telemetry stream of `client` until the client closes it or `shutdown` fires.
pub fn serve(
    b: Arc<Broker>,
    client: Arc<ClientState>,
    mut inbound: Streaming<TelemetryCommand>,
    shutdown: petrel_remoting::CancellationToken,
) -> ReceiverStream<Result<TelemetryCommand, tonic::Status>> {
    let (tx, rx) = mpsc::channel(TELEMETRY_QUEUE);
    let stream = STREAMS.fetch_add(1, Ordering::Relaxed);
    tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => break,
                n = inbound.message() => n,
            };
            let command = match next {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(client = client.client_id(), "telemetry stream ended: {e}");
                    break;
                }
            };
            match command.command {
                Some(Command::Settings(settings)) => {
                    let answer = on_settings(&b, &client, settings);
                    let last = answer.is_err();
                    if answer.is_ok() {
                        client.attach_telemetry(stream, tx.clone());
                    }
                    if tx.send(answer).await.is_err() || last {
                        break;
                    }
                }
                Some(Command::ThreadStackTrace(_) | Command::VerifyMessageResult(_)) => {
                    // Answers to commands this server does not send yet.
                }
                other => tracing::debug!(
                    client = client.client_id(),
                    "unexpected telemetry command from a client: {other:?}"
                ),
            }
        }
        client.detach_telemetry(stream);
    });
    ReceiverStream::new(rx)
}

/// Registers the client as its settings say and answers them.
fn on_settings(
    b: &Arc<Broker>,
    client: &Arc<ClientState>,
    settings: Settings,
) -> Result<TelemetryCommand, tonic::Status> {
    if settings.pub_sub.is_none() {
        return Err(tonic::Status::invalid_argument(
            "the settings have neither publishing nor subscription",
        ));
    }
    client.set_settings(settings.clone());
    let group = match &settings.pub_sub {
        Some(settings::PubSub::Subscription(s)) => s.group.clone(),
        _ => None,
    };
    register(b, client, 0, group.as_ref())
        .map_err(|s| tonic::Status::invalid_argument(s.message))?;
    Ok(TelemetryCommand {
        status: Some(ok()),
        command: Some(Command::Settings(server_settings(b, settings))),
    })
}

/// `settings` with the server's values merged in.
pub fn server_settings(b: &Broker, mut settings: Settings) -> Settings {
    match &mut settings.pub_sub {
        Some(settings::PubSub::Publishing(p)) => {
            p.max_body_size = i32::try_from(b.settings.max_message_bytes()).unwrap_or(i32::MAX);
            p.validate_message_type = true;
            settings.backoff_policy = Some(RetryPolicy {
                max_attempts: PRODUCER_MAX_ATTEMPTS,
                strategy: Some(Strategy::ExponentialBackoff(ExponentialBackoff {
                    initial: Some(duration(PRODUCER_BACKOFF_INITIAL)),
                    max: Some(duration(PRODUCER_BACKOFF_MAX)),
                    multiplier: PRODUCER_BACKOFF_MULTIPLIER,
                })),
            });
        }
        Some(settings::PubSub::Subscription(s)) => {
            let group = s
                .group
                .as_ref()
                .map(resource_name)
                .and_then(|g| b.groups.get(&g));
            s.receive_batch_size = Some(MAX_BATCH as i32);
            s.long_polling_timeout = Some(duration(MAX_LONG_POLL));
            s.fifo = Some(group.as_ref().is_some_and(|g| g.consume_message_orderly));
            let retry_max_times = group.as_ref().map_or(16, |g| g.retry_max_times.max(0));
            let levels = &b.delay_levels;
            settings.backoff_policy = Some(RetryPolicy {
                max_attempts: retry_max_times + 1,
                strategy: Some(Strategy::CustomizedBackoff(CustomizedBackoff {
                    next: (1..=levels.max_level())
                        .map(|l| duration(Duration::from_millis(levels.delay_ms(l).max(0) as u64)))
                        .collect(),
                })),
            });
        }
        None => {}
    }
    settings.metric = Some(Metric {
        on: false,
        endpoints: None,
    });
    settings
}
