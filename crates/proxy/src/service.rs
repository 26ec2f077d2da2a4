//! `apache.rocketmq.v2.MessagingService` over one broker in this process: each RPC checks its
//! caller (the client id header is required) and hands the request to the module that owns it.
//! Results go in the response's `Status`; the gRPC status is an error only when the call could
//! not be served at all.

use std::sync::Arc;
use std::time::Duration;

use petrel_broker::Broker;
use petrel_remoting::CancellationToken;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Streaming};

use crate::clients::{register, unregister, Clients};
use crate::context::{ok, status, Caller, PeerInfo};
use crate::pb::messaging_service_server::MessagingService;
use crate::pb::receive_message_response::Content;
use crate::pb::*;

type GrpcResult<T> = Result<Response<T>, tonic::Status>;
type Iter<T> = tokio_stream::Iter<std::vec::IntoIter<Result<T, tonic::Status>>>;

pub struct Messaging {
    broker: Arc<Broker>,
    clients: Arc<Clients>,
    shutdown: CancellationToken,
    /// The port this endpoint listens on (for routes to clients that sent no endpoints).
    grpc_port: u16,
}

impl Messaging {
    pub fn new(
        broker: Arc<Broker>,
        clients: Arc<Clients>,
        shutdown: CancellationToken,
        grpc_port: u16,
    ) -> Self {
        Messaging {
            broker,
            clients,
            shutdown,
            grpc_port,
        }
    }
}

impl Messaging {
    /// The caller of `req`. With the broker's ACL on, every call is refused: the endpoint does
    /// not check signatures and permissions yet, and must not be a way around them.
    fn caller<T>(&self, req: &Request<T>) -> Result<Caller, Status> {
        if self.broker.acl.is_some() {
            return Err(status(
                Code::Unauthorized,
                "the broker's ACL is on, and its gRPC endpoint does not check ACL yet: use the \
                 remoting protocol",
            ));
        }
        Caller::of(req.metadata(), req.extensions().get::<PeerInfo>().copied())
    }
}

/// What is left of the call's deadline (`grpc-timeout`: digits and a unit, H M S m u n).
fn deadline<T>(req: &Request<T>) -> Option<Duration> {
    let v = req.metadata().get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = v.split_at(v.len().checked_sub(1)?);
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

fn not_implemented(what: &str) -> Status {
    status(
        Code::NotImplemented,
        format!("{what} is not implemented by Petrel yet"),
    )
}

#[tonic::async_trait]
impl MessagingService for Messaging {
    async fn query_route(&self, req: Request<QueryRouteRequest>) -> GrpcResult<QueryRouteResponse> {
        let answer = match self.caller(&req) {
            Ok(_) => crate::route::query_route(&self.broker, req.into_inner(), self.grpc_port),
            Err(s) => QueryRouteResponse {
                status: Some(s),
                message_queues: Vec::new(),
            },
        };
        Ok(Response::new(answer))
    }

    async fn heartbeat(&self, req: Request<HeartbeatRequest>) -> GrpcResult<HeartbeatResponse> {
        let status = match self.caller(&req) {
            Ok(c) => {
                let client = self.clients.get_or_insert(&c);
                let req = req.into_inner();
                register(&self.broker, &client, req.client_type, req.group.as_ref())
                    .err()
                    .unwrap_or_else(ok)
            }
            Err(s) => s,
        };
        Ok(Response::new(HeartbeatResponse {
            status: Some(status),
        }))
    }

    async fn send_message(
        &self,
        req: Request<SendMessageRequest>,
    ) -> GrpcResult<SendMessageResponse> {
        let answer = match self.caller(&req) {
            Ok(c) => crate::send::send_message(&self.broker, &c, req.into_inner()).await,
            Err(s) => SendMessageResponse {
                status: Some(s),
                entries: Vec::new(),
            },
        };
        Ok(Response::new(answer))
    }

    async fn query_assignment(
        &self,
        req: Request<QueryAssignmentRequest>,
    ) -> GrpcResult<QueryAssignmentResponse> {
        let answer = match self.caller(&req) {
            Ok(_) => crate::route::query_assignment(&self.broker, req.into_inner(), self.grpc_port),
            Err(s) => QueryAssignmentResponse {
                status: Some(s),
                assignments: Vec::new(),
            },
        };
        Ok(Response::new(answer))
    }

    type ReceiveMessageStream = Iter<ReceiveMessageResponse>;

    async fn receive_message(
        &self,
        req: Request<ReceiveMessageRequest>,
    ) -> GrpcResult<Self::ReceiveMessageStream> {
        let responses = match self.caller(&req) {
            Ok(c) => {
                let deadline = deadline(&req);
                crate::receive::receive(
                    &self.broker,
                    &c,
                    req.into_inner(),
                    deadline,
                    &self.shutdown,
                )
                .await
            }
            Err(s) => vec![ReceiveMessageResponse {
                content: Some(Content::Status(s)),
            }],
        };
        Ok(Response::new(tokio_stream::iter(
            responses.into_iter().map(Ok).collect::<Vec<_>>(),
        )))
    }

    async fn ack_message(&self, req: Request<AckMessageRequest>) -> GrpcResult<AckMessageResponse> {
        let answer = match self.caller(&req) {
            Ok(_) => crate::receive::ack(&self.broker, req.into_inner()),
            Err(s) => AckMessageResponse {
                status: Some(s),
                entries: Vec::new(),
            },
        };
        Ok(Response::new(answer))
    }

    async fn forward_message_to_dead_letter_queue(
        &self,
        req: Request<ForwardMessageToDeadLetterQueueRequest>,
    ) -> GrpcResult<ForwardMessageToDeadLetterQueueResponse> {
        let answer = match self.caller(&req) {
            Ok(_) => {
                crate::receive::forward_to_dead_letter_queue(&self.broker, req.into_inner()).await
            }
            Err(s) => ForwardMessageToDeadLetterQueueResponse { status: Some(s) },
        };
        Ok(Response::new(answer))
    }

    type PullMessageStream = Iter<PullMessageResponse>;

    async fn pull_message(
        &self,
        req: Request<PullMessageRequest>,
    ) -> GrpcResult<Self::PullMessageStream> {
        let s = self
            .caller(&req)
            .err()
            .unwrap_or_else(|| not_implemented("PullMessage"));
        Ok(Response::new(tokio_stream::iter(vec![Ok(
            PullMessageResponse {
                content: Some(pull_message_response::Content::Status(s)),
            },
        )])))
    }

    async fn update_offset(
        &self,
        req: Request<UpdateOffsetRequest>,
    ) -> GrpcResult<UpdateOffsetResponse> {
        let status = match self.caller(&req) {
            Ok(_) => crate::offset::update_offset(&self.broker, req.into_inner()),
            Err(s) => s,
        };
        Ok(Response::new(UpdateOffsetResponse {
            status: Some(status),
        }))
    }

    async fn get_offset(&self, req: Request<GetOffsetRequest>) -> GrpcResult<GetOffsetResponse> {
        let answer = match self.caller(&req) {
            Ok(_) => crate::offset::get_offset(&self.broker, req.into_inner()),
            Err(s) => GetOffsetResponse {
                status: Some(s),
                offset: 0,
            },
        };
        Ok(Response::new(answer))
    }

    async fn query_offset(
        &self,
        req: Request<QueryOffsetRequest>,
    ) -> GrpcResult<QueryOffsetResponse> {
        let answer = match self.caller(&req) {
            Ok(_) => crate::offset::query_offset(&self.broker, req.into_inner()),
            Err(s) => QueryOffsetResponse {
                status: Some(s),
                offset: 0,
            },
        };
        Ok(Response::new(answer))
    }

    async fn end_transaction(
        &self,
        req: Request<EndTransactionRequest>,
    ) -> GrpcResult<EndTransactionResponse> {
        let answer = match self.caller(&req) {
            Ok(_) => crate::transaction::end_transaction(&self.broker, req.into_inner()).await,
            Err(s) => EndTransactionResponse { status: Some(s) },
        };
        Ok(Response::new(answer))
    }

    type TelemetryStream = ReceiverStream<Result<TelemetryCommand, tonic::Status>>;

    async fn telemetry(
        &self,
        req: Request<Streaming<TelemetryCommand>>,
    ) -> GrpcResult<Self::TelemetryStream> {
        let c = self.caller(&req).map_err(|s| {
            if s.code == Code::Unauthorized as i32 {
                tonic::Status::unauthenticated(s.message)
            } else {
                tonic::Status::invalid_argument(s.message)
            }
        })?;
        let client = self.clients.get_or_insert(&c);
        Ok(Response::new(crate::telemetry::serve(
            self.broker.clone(),
            client,
            req.into_inner(),
            self.shutdown.clone(),
        )))
    }

    async fn notify_client_termination(
        &self,
        req: Request<NotifyClientTerminationRequest>,
    ) -> GrpcResult<NotifyClientTerminationResponse> {
        let status = match self.caller(&req) {
            Ok(c) => {
                if let Some(client) = self.clients.remove(&c.client_id) {
                    unregister(&self.broker, &client, req.get_ref().group.as_ref());
                }
                ok()
            }
            Err(s) => s,
        };
        Ok(Response::new(NotifyClientTerminationResponse {
            status: Some(status),
        }))
    }

    async fn change_invisible_duration(
        &self,
        req: Request<ChangeInvisibleDurationRequest>,
    ) -> GrpcResult<ChangeInvisibleDurationResponse> {
        let answer = match self.caller(&req) {
            Ok(_) => crate::receive::change_invisible_duration(&self.broker, req.into_inner()),
            Err(s) => ChangeInvisibleDurationResponse {
                status: Some(s),
                receipt_handle: String::new(),
            },
        };
        Ok(Response::new(answer))
    }

    async fn recall_message(
        &self,
        req: Request<RecallMessageRequest>,
    ) -> GrpcResult<RecallMessageResponse> {
        let s = self
            .caller(&req)
            .err()
            .unwrap_or_else(|| not_implemented("RecallMessage"));
        Ok(Response::new(RecallMessageResponse {
            status: Some(s),
            message_id: String::new(),
        }))
    }

    async fn sync_lite_subscription(
        &self,
        req: Request<SyncLiteSubscriptionRequest>,
    ) -> GrpcResult<SyncLiteSubscriptionResponse> {
        let s = self
            .caller(&req)
            .err()
            .unwrap_or_else(|| not_implemented("SyncLiteSubscription (lite topics)"));
        Ok(Response::new(SyncLiteSubscriptionResponse {
            status: Some(s),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse() {
        let mut req = Request::new(());
        assert_eq!(deadline(&req), None);
        req.metadata_mut()
            .insert("grpc-timeout", "2500m".parse().unwrap());
        assert_eq!(deadline(&req), Some(Duration::from_millis(2500)));
        req.metadata_mut()
            .insert("grpc-timeout", "3S".parse().unwrap());
        assert_eq!(deadline(&req), Some(Duration::from_secs(3)));
        req.metadata_mut()
            .insert("grpc-timeout", "x".parse().unwrap());
        assert_eq!(deadline(&req), None);
    }
}
