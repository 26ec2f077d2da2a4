//! Running the third-party client `rocketmq-client-rust` in a test. The client owns its Tokio
//! runtime (`rocketmq_runtime::RuntimeOwner`, injected through `ClientRuntime`); Petrel and the
//! test body run on a second runtime built here, so a compat test is a plain `#[test]` that
//! calls [`run`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rocketmq_client_rust::{
    ClientConfig, ClientRuntime, ClientRuntimeConfig, DefaultMQProducer, DefaultMQPushConsumer,
    DefaultMQPushConsumerBuilder, SendResult, TelemetryHandle,
};
use rocketmq_model::common::consumer::consume_from_where::ConsumeFromWhere;
use rocketmq_model::common::message::message_single::Message;
use rocketmq_model::result::SendStatus;
use rocketmq_runtime::{RuntimeConfig, RuntimeOwner};

use crate::{bounded, WAIT};

/// Stack of the threads the scenario runs on: the client's futures are large in debug builds
/// (its admin calls overflow the default 2 MiB).
const SCENARIO_STACK_BYTES: usize = 64 << 20;

/// Runs `scenario` with a fresh client runtime named `name`, shuts the runtime down (bounded)
/// and panics with the scenario's error, if any.
///
/// The client's rebalance period (default 20 s) is shortened to 1 s: it is read from a process
/// property when a client instance is created, so only the group settles sooner; no assertion
/// depends on it. Each compat test is its own binary, so setting it is safe.
pub fn run<F, Fut>(name: &'static str, scenario: F)
where
    F: FnOnce(Arc<ClientRuntime>) -> Fut,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    std::env::set_var("rocketmq.client.rebalance.waitInterval", "1000");
    let owner = RuntimeOwner::plan(RuntimeConfig {
        thread_name: format!("rmq-rust-{name}"),
        ..Default::default()
    })
    .expect("client runtime configuration")
    .build()
    .expect("client runtime");
    let client_runtime = ClientRuntime::try_new(
        owner.root_context().component(name),
        ClientRuntimeConfig::default(),
        TelemetryHandle::noop(),
    )
    .expect("ClientRuntime");
    let test_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(SCENARIO_STACK_BYTES)
        .enable_all()
        .thread_name(format!("petrel-{name}"))
        .build()
        .expect("test runtime");
    let scenario = Box::pin(scenario(Arc::clone(&client_runtime)));
    let outcome = test_runtime.block_on(async {
        // On a worker thread, whose stack is large enough.
        let outcome = tokio::spawn(scenario)
            .await
            .unwrap_or_else(|e| Err(anyhow::anyhow!("the scenario panicked: {e}")));
        let report = tokio::time::timeout(WAIT, client_runtime.shutdown()).await;
        if !matches!(&report, Ok(r) if r.is_healthy()) {
            eprintln!("warning: rocketmq-client-rust runtime shutdown was not clean");
        }
        outcome
    });
    drop(test_runtime);
    let _ = owner.shutdown_runtime_blocking_with_timeout(Duration::from_secs(10));
    if let Err(e) = outcome {
        panic!("{e:#}");
    }
}

/// Client configuration with a distinct instance name, so several clients in one process are
/// distinct RocketMQ clients (client id `<ip>@<instance name>`).
pub fn client_config(namesrv: &str, instance: &str) -> ClientConfig {
    let mut config = ClientConfig::default();
    config.set_instance_name(instance.into());
    config.set_namesrv_addr(namesrv.into());
    config
}

/// The client's error as an `anyhow` error that says where it came from.
pub fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("rocketmq-client-rust: {e}")
}

/// A push consumer of `group` named `instance`, from the first stored message. Its consume
/// pool is kept small: the client's default pool sizes overrun the admission queue of its
/// runtime (`runtime.capacity.exhausted`).
pub fn push_consumer(
    client_runtime: &Arc<ClientRuntime>,
    namesrv: &str,
    group: &str,
    instance: &str,
) -> DefaultMQPushConsumerBuilder {
    DefaultMQPushConsumer::builder(Arc::clone(client_runtime))
        .client_config(client_config(namesrv, instance))
        .consumer_group(group)
        .name_server_addr(namesrv.to_owned())
        .consume_from_where(ConsumeFromWhere::ConsumeFromFirstOffset)
        .consume_thread_min(1)
        .consume_thread_max(4)
}

/// A synchronous send that must be acknowledged SEND_OK.
pub async fn send_ok(producer: &DefaultMQProducer, message: Message) -> anyhow::Result<SendResult> {
    let result = bounded("send", producer.send(message))
        .await?
        .map_err(err)?
        .ok_or_else(|| anyhow::anyhow!("no result for a synchronous send"))?;
    anyhow::ensure!(
        result.send_status == SendStatus::SendOk,
        "send answered {:?}",
        result.send_status
    );
    Ok(result)
}
