//! Handing a failed message back to the broker so it is retried later without blocking its
//! queue: CONSUMER_SEND_MSG_BACK first, and if that fails, an ordinary send to
//! `%RETRY%<group>` with `DELAY = 3 + reconsumeTimes`, as the Java client does (reference §2.9).

use petrel_common::msg_id::now_ms;
use petrel_common::properties::{
    Properties, DELAY, MAX_RECONSUME_TIMES, ORIGIN_MESSAGE_ID, RETRY_TOPIC, TRAN_MSG, UNIQ_KEY,
};
use petrel_common::protocol::MessageQueue;
use petrel_common::topic::{retry_topic, AUTO_CREATE_TOPIC_KEY};
use petrel_remoting::code::request;
use petrel_remoting::headers::{ConsumerSendMsgBackRequestHeader, SendMessageRequestHeaderV2};
use petrel_remoting::RemotingCommand;

use super::Core;
use crate::error::Result;
use crate::message::MessageExt;

/// Producer group of the client's own re-sends (`MixAll.CLIENT_INNER_PRODUCER_GROUP`).
const CLIENT_INNER_PRODUCER_GROUP: &str = "CLIENT_INNER_PRODUCER";
/// Delay level of a client-side re-send is this plus the message's reconsume times.
const FIRST_RETRY_DELAY_LEVEL: i32 = 3;

/// Sends `msg` (read from `mq`) back for a later retry, or with a negative `delay_level`
/// straight to `%DLQ%<group>`. Err only when both ways failed.
pub(crate) async fn send_back(
    core: &Core,
    mq: &MessageQueue,
    msg: &MessageExt,
    delay_level: i32,
) -> Result<()> {
    let addr = core
        .instance
        .find_master_addr(&mq.broker_name, &mq.topic)
        .await?;
    let header = ConsumerSendMsgBackRequestHeader {
        offset: msg.commit_log_offset,
        group: core.group.clone(),
        delay_level,
        origin_msg_id: Some(msg.msg_id().to_owned()),
        origin_topic: Some(msg.topic.clone()),
        unit_mode: Some(false),
        max_reconsume_times: Some(core.options.max_reconsume_times),
    };
    let cmd = RemotingCommand::request_with_header(request::CONSUMER_SEND_MSG_BACK, &header);
    let timeout = core.instance.config().request_timeout;
    let err = match core.instance.invoke_ok(&addr, cmd, timeout).await {
        Ok(_) => return Ok(()),
        Err(e) => e,
    };
    tracing::debug!(
        msg_id = msg.msg_id(),
        "send-back failed, re-sending to the retry topic: {err}"
    );

    let mut props: Properties = msg.properties.clone();
    if props.get(RETRY_TOPIC).is_none() {
        props.insert(RETRY_TOPIC, msg.topic.clone());
    }
    if props.get(ORIGIN_MESSAGE_ID).is_none() {
        props.insert(ORIGIN_MESSAGE_ID, msg.msg_id());
    }
    props.remove(TRAN_MSG);
    props.remove(MAX_RECONSUME_TIMES);
    if delay_level >= 0 {
        props.insert(
            DELAY,
            (FIRST_RETRY_DELAY_LEVEL + msg.reconsume_times).to_string(),
        );
    } else {
        props.remove(DELAY);
    }
    if props.get(UNIQ_KEY).is_none() {
        props.insert(UNIQ_KEY, core.instance.next_uniq_id());
    }
    let header = SendMessageRequestHeaderV2 {
        producer_group: CLIENT_INNER_PRODUCER_GROUP.to_owned(),
        topic: retry_topic(&core.group),
        default_topic: AUTO_CREATE_TOPIC_KEY.to_owned(),
        default_topic_queue_nums: 1,
        queue_id: 0,
        sys_flag: 0,
        born_timestamp: now_ms() as i64,
        flag: msg.flag,
        properties: Some(props.as_str().to_owned()),
        // Past the maximum, the broker's rule for sends to retry topics dead-letters it.
        reconsume_times: Some(if delay_level < 0 {
            core.options.max_reconsume_times + 1
        } else {
            msg.reconsume_times + 1
        }),
        unit_mode: Some(false),
        max_reconsume_times: Some(core.options.max_reconsume_times),
        batch: Some(false),
        broker_name: Some(mq.broker_name.clone()),
    };
    let cmd = RemotingCommand::request_with_header(request::SEND_MESSAGE_V2, &header)
        .with_body(msg.body.clone());
    core.instance.invoke_ok(&addr, cmd, timeout).await?;
    Ok(())
}
