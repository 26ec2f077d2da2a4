//! What a request touches, as RocketMQ 4.9's `PlainAccessValidator.parse` derives it: per
//! request code, the topics and groups (a group as its retry topic `%RETRY%G`) and the
//! permission each needs, and whether the code is an admin one. Reads the request, never the
//! rules.

use petrel_common::protocol::HeartbeatData;
use petrel_common::topic::{retry_topic, RETRY_GROUP_TOPIC_PREFIX};
use petrel_remoting::code::request;
use petrel_remoting::RemotingCommand;

use super::plain::{PUB, SUB};

/// One resource a request needs and the permission it needs on it.
#[derive(Debug, Clone, PartialEq)]
pub struct Needed {
    /// A topic, or a group as `%RETRY%group`.
    pub resource: String,
    pub perm: u8,
}

impl Needed {
    fn topic(topic: &str, perm: u8) -> Self {
        Needed {
            resource: topic.to_owned(),
            perm,
        }
    }

    fn group(group: &str) -> Self {
        Needed {
            resource: retry_topic(group),
            perm: SUB,
        }
    }

    pub fn is_group(&self) -> bool {
        self.resource.starts_with(RETRY_GROUP_TOPIC_PREFIX)
    }

    /// `topic T` or `group G`, for remarks.
    pub fn describe(&self) -> String {
        match self.resource.strip_prefix(RETRY_GROUP_TOPIC_PREFIX) {
            Some(group) => format!("group {group}"),
            None => format!("topic {}", self.resource),
        }
    }
}

/// Request codes only an admin account may send: RocketMQ's `Permission.ADMIN_CODE`, plus the
/// offset rewrites `petrel admin` and mqadmin send, and mqadmin's ACL commands.
pub fn needs_admin(code: i32) -> bool {
    matches!(
        code,
        request::UPDATE_AND_CREATE_TOPIC
            | request::UPDATE_BROKER_CONFIG
            | request::DELETE_TOPIC_IN_BROKER
            | request::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP
            | request::DELETE_SUBSCRIPTIONGROUP
            | request::INVOKE_BROKER_TO_RESET_OFFSET
            | request::CLONE_GROUP_OFFSET
            | request::UPDATE_AND_CREATE_ACL_CONFIG
            | request::DELETE_ACL_CONFIG
            | request::GET_BROKER_CLUSTER_ACL_INFO
            | request::UPDATE_GLOBAL_WHITE_ADDRS_CONFIG
    )
}

/// The resources `req` needs. A heartbeat whose body cannot be read is an error (RocketMQ's
/// broker refuses it too).
pub fn needed(req: &RemotingCommand) -> Result<Vec<Needed>, String> {
    let field = |k: &str| req.ext_fields.get(k);
    let mut out = Vec::new();
    // A send to a retry topic is a consumer giving a message back: it needs SUB on the group
    // the retry topic belongs to.
    let send = |out: &mut Vec<Needed>, topic: Option<&str>| {
        if let Some(topic) = topic {
            if topic.starts_with(RETRY_GROUP_TOPIC_PREFIX) {
                out.push(Needed::topic(topic, SUB));
            } else {
                out.push(Needed::topic(topic, PUB));
            }
        }
    };
    match req.code {
        request::SEND_MESSAGE => send(&mut out, field("topic")),
        request::SEND_MESSAGE_V2 | request::SEND_BATCH_MESSAGE => send(&mut out, field("b")),
        request::CONSUMER_SEND_MSG_BACK => out.extend(field("group").map(Needed::group)),
        request::PULL_MESSAGE | request::LITE_PULL_MESSAGE => {
            out.extend(field("topic").map(|t| Needed::topic(t, SUB)));
            out.extend(field("consumerGroup").map(Needed::group));
        }
        request::QUERY_MESSAGE => out.extend(field("topic").map(|t| Needed::topic(t, SUB))),
        request::HEART_BEAT => {
            let data: HeartbeatData = serde_json::from_slice(&req.body_bytes())
                .map_err(|e| format!("the heartbeat body is not valid HeartbeatData JSON: {e}"))?;
            for consumer in &data.consumer_data_set {
                out.push(Needed::group(&consumer.group_name));
                for sub in &consumer.subscription_data_set {
                    out.push(Needed::topic(&sub.topic, SUB));
                }
            }
        }
        request::UNREGISTER_CLIENT | request::GET_CONSUMER_LIST_BY_GROUP => {
            out.extend(field("consumerGroup").map(Needed::group))
        }
        request::UPDATE_CONSUMER_OFFSET | request::QUERY_CONSUMER_OFFSET => {
            out.extend(field("consumerGroup").map(Needed::group));
            out.extend(field("topic").map(|t| Needed::topic(t, SUB)));
        }
        _ => {}
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(code: i32, fields: &[(&str, &str)]) -> RemotingCommand {
        let mut r = RemotingCommand::request(code);
        for (k, v) in fields {
            r.ext_fields.insert(*k, *v);
        }
        r
    }

    #[test]
    fn sends_need_pub_on_the_topic_and_retry_sends_sub_on_the_group() {
        let n = needed(&req(request::SEND_MESSAGE_V2, &[("a", "P"), ("b", "A")])).unwrap();
        assert_eq!(n, vec![Needed::topic("A", PUB)]);
        let n = needed(&req(request::SEND_BATCH_MESSAGE, &[("b", "A")])).unwrap();
        assert_eq!(n, vec![Needed::topic("A", PUB)]);
        let n = needed(&req(request::SEND_MESSAGE, &[("topic", "%RETRY%G")])).unwrap();
        assert_eq!(n, vec![Needed::group("G")]);
        assert_eq!(n[0].describe(), "group G");
        assert!(n[0].is_group());
    }

    #[test]
    fn pulls_and_offsets_need_sub_on_topic_and_group() {
        for code in [
            request::PULL_MESSAGE,
            request::LITE_PULL_MESSAGE,
            request::UPDATE_CONSUMER_OFFSET,
        ] {
            let mut n = needed(&req(code, &[("topic", "A"), ("consumerGroup", "G")])).unwrap();
            n.sort_by(|a, b| a.resource.cmp(&b.resource));
            assert_eq!(
                n,
                vec![Needed::group("G"), Needed::topic("A", SUB)],
                "code {code}"
            );
        }
        let n = needed(&req(request::CONSUMER_SEND_MSG_BACK, &[("group", "G")])).unwrap();
        assert_eq!(n, vec![Needed::group("G")]);
        let n = needed(&req(
            request::GET_CONSUMER_LIST_BY_GROUP,
            &[("consumerGroup", "G")],
        ))
        .unwrap();
        assert_eq!(n, vec![Needed::group("G")]);
    }

    #[test]
    fn heartbeats_need_every_group_and_subscribed_topic() {
        let body = r#"{"clientID":"c1","producerDataSet":[{"groupName":"P"}],
            "consumerDataSet":[{"groupName":"G","consumeType":"CONSUME_PASSIVELY",
            "messageModel":"CLUSTERING","consumeFromWhere":"CONSUME_FROM_LAST_OFFSET",
            "unitMode":false,"subscriptionDataSet":[{"topic":"A","subString":"*",
            "classFilterMode":false,"tagsSet":[],"codeSet":[],"subVersion":1}]}]}"#;
        let r = req(request::HEART_BEAT, &[]).with_body(bytes::Bytes::from(body));
        assert_eq!(
            needed(&r).unwrap(),
            vec![Needed::group("G"), Needed::topic("A", SUB)]
        );
        let bad = req(request::HEART_BEAT, &[]).with_body(bytes::Bytes::from_static(b"{"));
        assert!(needed(&bad).is_err());
    }

    #[test]
    fn admin_codes_are_rocketmqs_and_offset_rewrites() {
        assert!(needs_admin(request::UPDATE_AND_CREATE_TOPIC));
        assert!(needs_admin(request::DELETE_TOPIC_IN_BROKER));
        assert!(needs_admin(request::INVOKE_BROKER_TO_RESET_OFFSET));
        assert!(needs_admin(request::UPDATE_AND_CREATE_ACL_CONFIG));
        assert!(needs_admin(request::DELETE_ACL_CONFIG));
        assert!(needs_admin(request::GET_BROKER_CLUSTER_ACL_INFO));
        assert!(needs_admin(request::UPDATE_GLOBAL_WHITE_ADDRS_CONFIG));
        assert!(!needs_admin(request::SEND_MESSAGE));
        assert!(needed(&req(request::GET_BROKER_RUNTIME_INFO, &[]))
            .unwrap()
            .is_empty());
    }
}
