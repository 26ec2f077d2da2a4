//! The one shape of every failure the API answers: `{"error": "<sentence>"}` with a status —
//! 400 for what the caller sent, 403 when the brokers' ACL refuses the dashboard's account, 404
//! for a topic, group or message that is not there, 502 when a broker or the name server cannot
//! be reached or refuses.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use petrel_client::ClientError;
use petrel_remoting::code::response;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }

    pub fn bad_gateway(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_GATEWAY,
            message: message.into(),
        }
    }

    /// `e` with what was being done in front of it.
    pub fn context(what: impl std::fmt::Display) -> impl FnOnce(ClientError) -> ApiError {
        move |e| {
            let mut err = ApiError::from(e);
            err.message = format!("{what}: {}", err.message);
            err
        }
    }
}

/// A failure to find `topic` (no route, or a broker that does not have it) as a 404 that says
/// so; any other failure with what was being done.
pub fn topic_error(
    topic: &str,
    what: impl std::fmt::Display,
) -> impl FnOnce(ClientError) -> ApiError {
    let topic = topic.to_owned();
    move |e| match &e {
        ClientError::NoRoute(_) => ApiError::not_found(format!("topic {topic} does not exist")),
        ClientError::Broker { code, .. } if *code == response::TOPIC_NOT_EXIST => {
            ApiError::not_found(format!("topic {topic} does not exist"))
        }
        _ => ApiError::context(what)(e),
    }
}

impl From<ClientError> for ApiError {
    fn from(e: ClientError) -> Self {
        let status = match &e {
            ClientError::InvalidArgument(_) => StatusCode::BAD_REQUEST,
            ClientError::NoRoute(_) => StatusCode::NOT_FOUND,
            ClientError::Broker { code, .. }
                if matches!(
                    *code,
                    response::TOPIC_NOT_EXIST
                        | response::SUBSCRIPTION_GROUP_NOT_EXIST
                        | response::QUERY_NOT_FOUND
                ) =>
            {
                StatusCode::NOT_FOUND
            }
            ClientError::Broker { code, .. } if *code == response::NO_PERMISSION => {
                StatusCode::FORBIDDEN
            }
            _ => StatusCode::BAD_GATEWAY,
        };
        let message = match &e {
            ClientError::InvalidArgument(m) => m.clone(),
            ClientError::NoRoute(topic) => format!("topic {topic} does not exist"),
            ClientError::Broker { remark, .. } if !remark.is_empty() => {
                format!("the broker refused: {remark}")
            }
            ClientError::Remoting(r) => format!("cannot reach the broker or name server: {r}"),
            other => other.to_string(),
        };
        ApiError { status, message }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        ApiError::bad_request(format!(
            "the request body is not the JSON expected: {}",
            e.body_text()
        ))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        ApiError::bad_request(format!("bad query parameters: {}", e.body_text()))
    }
}

impl From<PathRejection> for ApiError {
    fn from(e: PathRejection) -> Self {
        ApiError::bad_request(format!("bad path: {}", e.body_text()))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(serde_json::json!({ "error": self.message })),
        )
            .into_response()
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
