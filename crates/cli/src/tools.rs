//! `petrel send` and `petrel consume`: for a human at a terminal.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use petrel_client::{
    ClientConfig, ConsumeFromWhere, ConsumeStatus, Credentials, Message, MessageExt, Producer,
    PushConsumer,
};

pub struct SendOptions {
    pub namesrv: String,
    pub topic: String,
    pub body: String,
    pub tags: Option<String>,
    pub keys: Option<String>,
    pub count: u64,
    /// Deliver at this time, epoch milliseconds (`TIMER_DELIVER_MS`).
    pub deliver_at_ms: Option<i64>,
    /// Deliver this long after the broker receives each message (`TIMER_DELAY_MS`).
    pub delay: Option<Duration>,
    /// The ACL account every request is signed with.
    pub credentials: Option<Credentials>,
}

/// A client config for `namesrv`, signing with `credentials` when given.
pub fn client_config(namesrv: &str, credentials: Option<Credentials>) -> ClientConfig {
    let mut config = ClientConfig::new(namesrv);
    config.credentials = credentials;
    config
}

pub async fn send(opts: SendOptions) -> anyhow::Result<()> {
    let producer = Producer::new(
        "petrel_cli_producer",
        client_config(&opts.namesrv, opts.credentials.clone()),
    );
    producer
        .start()
        .await
        .context("cannot start the producer")?;
    for i in 0..opts.count {
        let body = if opts.count > 1 {
            format!("{} {i}", opts.body)
        } else {
            opts.body.clone()
        };
        let mut msg = Message::new(&opts.topic, body);
        if let Some(t) = &opts.tags {
            msg = msg.with_tags(t);
        }
        if let Some(k) = &opts.keys {
            msg = msg.with_keys(k);
        }
        if let Some(at) = opts.deliver_at_ms {
            msg = msg.with_deliver_at_ms(at);
        }
        if let Some(delay) = opts.delay {
            msg = msg.with_delay(delay);
        }
        let r = producer
            .send(msg)
            .await
            .with_context(|| format!("send {i} to {} failed", opts.topic))?;
        let deliver = match (opts.deliver_at_ms, opts.delay) {
            (Some(at), _) => format!(" deliverAt={}", crate::time_arg::format_rfc3339(at)),
            (None, Some(delay)) => format!(" delay={}ms", delay.as_millis()),
            (None, None) => String::new(),
        };
        println!(
            "{:?} msgId={} offsetMsgId={} queue={}:{} queueOffset={}{deliver}",
            r.status,
            r.msg_id,
            r.offset_msg_id,
            r.queue.broker_name,
            r.queue.queue_id,
            r.queue_offset
        );
    }
    producer.shutdown().await;
    Ok(())
}

pub struct ConsumeOptions {
    pub namesrv: String,
    pub topic: String,
    pub group: String,
    pub expression: String,
    pub from_first: bool,
    /// Stop after this many messages (0 = until Ctrl-C).
    pub count: u64,
    /// The ACL account every request is signed with.
    pub credentials: Option<Credentials>,
}

pub async fn consume(opts: ConsumeOptions) -> anyhow::Result<()> {
    let mut consumer = PushConsumer::new(
        &opts.group,
        client_config(&opts.namesrv, opts.credentials.clone()),
    );
    consumer.subscribe(&opts.topic, &opts.expression)?;
    if opts.from_first {
        consumer.set_consume_from(ConsumeFromWhere::FirstOffset);
    }
    let received = Arc::new(AtomicU64::new(0));
    let done = Arc::new(tokio::sync::Notify::new());
    {
        let (received, done, limit) = (received.clone(), done.clone(), opts.count);
        consumer.register_listener(move |msgs: &[MessageExt]| {
            for m in msgs {
                println!(
                    "msgId={} queue={} offset={} tags={} keys={} body={}",
                    m.msg_id(),
                    m.queue_id,
                    m.queue_offset,
                    m.tags().unwrap_or(""),
                    m.keys().unwrap_or(""),
                    String::from_utf8_lossy(&m.body)
                );
                if received.fetch_add(1, Ordering::Relaxed) + 1 == limit {
                    done.notify_one();
                }
            }
            ConsumeStatus::Success
        });
    }
    consumer
        .start()
        .await
        .context("cannot start the consumer")?;
    tokio::select! {
        _ = done.notified() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    consumer.shutdown().await;
    Ok(())
}
