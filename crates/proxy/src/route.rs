//! QueryRoute and QueryAssignment, answered from this broker's own topic table: in local mode
//! every queue of a topic is here, reached through the endpoints the client used to reach us.
//!
//! Which message types a queue accepts comes from the topic's `message.type` attribute (NORMAL,
//! FIFO, DELAY, TRANSACTION, or MIXED for all four). A topic without the attribute accepts all
//! four: Petrel's remoting side never typed topics, and a client that validates types (the Java
//! one does by default) would otherwise refuse every FIFO, delayed or transactional send to a
//! topic created by a 4.x tool. (RocketMQ reads a missing attribute as NORMAL only.)

use std::net::IpAddr;

use petrel_broker::Broker;
use petrel_common::topic::{perm, validate_topic, TopicConfig};

use crate::context::{ok, resource_name, status};
use crate::pb::{
    Address, AddressScheme, Assignment, Broker as PbBroker, Code, Endpoints, MessageQueue,
    MessageType, Permission, QueryAssignmentRequest, QueryAssignmentResponse, QueryRouteRequest,
    QueryRouteResponse, Resource, Status,
};

/// The topic attribute naming the message types a topic takes (RocketMQ 5's name).
pub const MESSAGE_TYPE_ATTRIBUTE: &str = "message.type";

/// The types a queue of `topic` accepts.
pub fn accepted_types(topic: &TopicConfig) -> Vec<MessageType> {
    let all = vec![
        MessageType::Normal,
        MessageType::Fifo,
        MessageType::Delay,
        MessageType::Transaction,
    ];
    match topic
        .attributes
        .get(MESSAGE_TYPE_ATTRIBUTE)
        .or_else(|| topic.attributes.get(&format!("+{MESSAGE_TYPE_ATTRIBUTE}")))
        .map(|t| t.trim().to_ascii_uppercase())
        .as_deref()
    {
        Some("NORMAL") => vec![MessageType::Normal],
        Some("FIFO") => vec![MessageType::Fifo],
        Some("DELAY") => vec![MessageType::Delay],
        Some("TRANSACTION") => vec![MessageType::Transaction],
        _ => all,
    }
}

/// The topic's config if the request names one that exists.
fn existing_topic(b: &Broker, topic: Option<&Resource>) -> Result<TopicConfig, Status> {
    let name = topic.map(resource_name).unwrap_or_default();
    validate_topic(&name).map_err(|e| status(Code::IllegalTopic, e))?;
    b.topics
        .get(&name)
        .ok_or_else(|| status(Code::TopicNotFound, format!("topic {name} does not exist")))
}

/// The endpoints queues are reached through: those the client came in by, or this broker's IP
/// and the gRPC port when it sent none.
fn endpoints(b: &Broker, asked: Option<&Endpoints>, grpc_port: u16) -> Endpoints {
    match asked {
        Some(e) if !e.addresses.is_empty() => e.clone(),
        _ => Endpoints {
            scheme: match b.config.broker_ip {
                IpAddr::V4(_) => AddressScheme::IPv4,
                IpAddr::V6(_) => AddressScheme::IPv6,
            } as i32,
            addresses: vec![Address {
                host: b.config.broker_ip.to_string(),
                port: i32::from(grpc_port),
            }],
        },
    }
}

fn permission(p: i32) -> Permission {
    match (perm::readable(p), perm::writeable(p)) {
        (true, true) => Permission::ReadWrite,
        (true, false) => Permission::Read,
        (false, true) => Permission::Write,
        (false, false) => Permission::None,
    }
}

pub fn query_route(b: &Broker, req: QueryRouteRequest, grpc_port: u16) -> QueryRouteResponse {
    let topic = match existing_topic(b, req.topic.as_ref()) {
        Ok(t) => t,
        Err(s) => {
            return QueryRouteResponse {
                status: Some(s),
                message_queues: Vec::new(),
            }
        }
    };
    let broker = PbBroker {
        name: b.config.broker_name.clone(),
        id: 0,
        endpoints: Some(endpoints(b, req.endpoints.as_ref(), grpc_port)),
    };
    let types: Vec<i32> = accepted_types(&topic)
        .into_iter()
        .map(|t| t as i32)
        .collect();
    let resource = req.topic.unwrap_or_default();
    // As RocketMQ lays them out: queues both readable and writable share ids; the surplus of
    // the larger side is read-only or write-only.
    let (reads, writes) = (topic.read_queue_nums.max(0), topic.write_queue_nums.max(0));
    let readable = perm::readable(topic.perm);
    let writeable = perm::writeable(topic.perm);
    let mut queues = Vec::new();
    let mut push = |id: i32, permission: Permission| {
        queues.push(MessageQueue {
            topic: Some(resource.clone()),
            id,
            permission: permission as i32,
            broker: Some(broker.clone()),
            accept_message_types: types.clone(),
        })
    };
    match (readable, writeable) {
        (true, true) => {
            let both = reads.min(writes);
            for id in 0..reads.max(writes) {
                let p = if id < both {
                    Permission::ReadWrite
                } else if reads > writes {
                    Permission::Read
                } else {
                    Permission::Write
                };
                push(id, p);
            }
        }
        (true, false) => (0..reads).for_each(|id| push(id, Permission::Read)),
        (false, true) => (0..writes).for_each(|id| push(id, Permission::Write)),
        (false, false) => (0..reads.max(writes).max(1)).for_each(|id| push(id, Permission::None)),
    }
    QueryRouteResponse {
        status: Some(ok()),
        message_queues: queues,
    }
}

/// The queues a push consumer polls: every readable queue of this broker. A FIFO group gets
/// them one by one (message groups are ordered per queue); any other group one entry, queue
/// id -1, meaning "any queue" (a receive then tries them all), as RocketMQ's proxy answers.
pub fn query_assignment(
    b: &Broker,
    req: QueryAssignmentRequest,
    grpc_port: u16,
) -> QueryAssignmentResponse {
    let answer = |status, assignments| QueryAssignmentResponse {
        status: Some(status),
        assignments,
    };
    let topic = match existing_topic(b, req.topic.as_ref()) {
        Ok(t) => t,
        Err(s) => return answer(s, Vec::new()),
    };
    let group = req.group.as_ref().map(resource_name).unwrap_or_default();
    if let Err(e) = petrel_common::topic::validate_group(&group) {
        return answer(status(Code::IllegalConsumerGroup, e), Vec::new());
    }
    if !perm::readable(topic.perm) || topic.read_queue_nums <= 0 {
        return answer(status(Code::Forbidden, "no readable queue"), Vec::new());
    }
    let broker = PbBroker {
        name: b.config.broker_name.clone(),
        id: 0,
        endpoints: Some(endpoints(b, req.endpoints.as_ref(), grpc_port)),
    };
    let fifo = b
        .groups
        .get(&group)
        .is_some_and(|g| g.consume_message_orderly);
    let ids: Vec<i32> = if fifo {
        (0..topic.read_queue_nums).collect()
    } else {
        vec![-1]
    };
    let resource = req.topic.unwrap_or_default();
    let assignments = ids
        .into_iter()
        .map(|id| Assignment {
            message_queue: Some(MessageQueue {
                topic: Some(resource.clone()),
                id,
                permission: permission(topic.perm) as i32,
                broker: Some(broker.clone()),
                accept_message_types: Vec::new(),
            }),
        })
        .collect();
    answer(ok(), assignments)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_types_follow_the_message_type_attribute() {
        let mut t = TopicConfig::new("T", 4, perm::READ | perm::WRITE);
        assert_eq!(accepted_types(&t).len(), 4);
        t.attributes
            .insert(MESSAGE_TYPE_ATTRIBUTE.into(), "FIFO".into());
        assert_eq!(accepted_types(&t), vec![MessageType::Fifo]);
        t.attributes
            .insert(MESSAGE_TYPE_ATTRIBUTE.into(), "MIXED".into());
        assert_eq!(accepted_types(&t).len(), 4);
        assert_eq!(permission(perm::READ), Permission::Read);
        assert_eq!(permission(0), Permission::None);
    }
}
