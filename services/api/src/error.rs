//! The API's errors: [`ApiError`], the one type every handler and extractor fails with, turned into a
//! response in exactly one place; and [`Error`], why the service could not start or stopped.
//!
//! Invariants: every error response has the contract's [`ErrorBody`] JSON shape; client mistakes are
//! 4xx and name what was wrong (field, header, option, path); 5xx bodies never carry internals (those
//! go to the log), and an unavailable dependency is a 503 with `Retry-After`.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use vote_contract::http::{ErrorBody, MAX_BODY_BYTES};

/// Seconds a client should wait before retrying when a dependency is down.
pub const RETRY_AFTER_SECS: u32 = 1;

/// Longest piece of client input echoed back in an error message.
const ECHO_LIMIT: usize = 64;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON at all (400).
    #[error("request body is not valid JSON: {0}")]
    MalformedJson(String),
    /// The body is JSON of the wrong shape: missing field, wrong type (422).
    #[error("request body has the wrong shape: {0}")]
    InvalidBody(String),
    /// `Content-Type` is not JSON (415).
    #[error("Content-Type must be application/json")]
    UnsupportedMediaType,
    /// The body is larger than [`MAX_BODY_BYTES`] (413).
    #[error("request body is larger than {MAX_BODY_BYTES} bytes")]
    PayloadTooLarge,
    /// The body could not be read (400).
    #[error("request body could not be read: {0}")]
    UnreadableBody(String),
    /// The option is not configured (422, lists the valid ones).
    #[error("option {given:?} is not one of the configured options: {}", valid.join(", "))]
    UnknownOption { given: String, valid: Vec<String> },
    /// A request header has a value we cannot use (422).
    #[error("header {header}: {reason}")]
    InvalidHeader {
        header: &'static str,
        reason: String,
    },
    /// No route has this path (404).
    #[error("no route for {0}")]
    NotFound(String),
    /// The path exists but not with this method (405).
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    /// Redis refused, failed or timed out (503).
    #[error("redis: {0}")]
    Redis(String),
    /// PostgreSQL refused, failed or timed out (503).
    #[error("postgres: {0}")]
    Database(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MalformedJson(_) | Self::UnreadableBody(_) => StatusCode::BAD_REQUEST,
            Self::InvalidBody(_) | Self::UnknownOption { .. } | Self::InvalidHeader { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Redis(_) | Self::Database(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The short summary in the body's `error` field.
    pub fn summary(&self) -> &'static str {
        match self {
            Self::MalformedJson(_) => "malformed json",
            Self::InvalidBody(_) => "invalid request body",
            Self::UnsupportedMediaType => "unsupported media type",
            Self::PayloadTooLarge => "payload too large",
            Self::UnreadableBody(_) => "unreadable body",
            Self::UnknownOption { .. } => "invalid option",
            Self::InvalidHeader { .. } => "invalid header",
            Self::NotFound(_) => "not found",
            Self::MethodNotAllowed { .. } => "method not allowed",
            Self::Redis(_) | Self::Database(_) => "service unavailable",
        }
    }

    /// The body, with internals replaced by a generic sentence on 5xx.
    pub fn body(&self) -> ErrorBody {
        let detail = match self {
            Self::Redis(_) => "votes cannot be accepted right now; retry later".to_owned(),
            Self::Database(_) => "results cannot be read right now; retry later".to_owned(),
            other => other.to_string(),
        };
        let mut body = ErrorBody::new(self.summary(), detail);
        if let Self::UnknownOption { valid, .. } = self {
            body.valid_options = Some(valid.clone());
        }
        body
    }

    pub fn not_found(path: &str) -> Self {
        Self::NotFound(echo(path))
    }

    pub fn invalid_header(header: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidHeader {
            header,
            reason: reason.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // A dependency is down: expected now and then, and readiness reports it too.
            tracing::warn!(error = %self, "request failed: dependency unavailable");
        } else if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let mut response = (status, Json(self.body())).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonSyntaxError(e) => Self::MalformedJson(serde_cause(&e.body_text())),
            JsonRejection::JsonDataError(e) => Self::InvalidBody(serde_cause(&e.body_text())),
            JsonRejection::MissingJsonContentType(_) => Self::UnsupportedMediaType,
            other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge,
            other => Self::UnreadableBody(other.body_text()),
        }
    }
}

/// axum prefixes serde's message ("missing field `option` at line 1 column 2") with a sentence of its
/// own; keep only serde's part, which names the field and the position.
fn serde_cause(text: &str) -> String {
    match text.split_once(": ") {
        Some((_, cause)) if !cause.is_empty() => cause.to_owned(),
        _ => text.to_owned(),
    }
}

/// `error` and its sources, `outer: inner: innermost` (drivers put the useful part in the source).
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// `input` cut to a length that is safe to echo back.
pub(crate) fn echo(input: &str) -> String {
    if input.chars().count() <= ECHO_LIMIT {
        return input.to_owned();
    }
    let cut: String = input.chars().take(ECHO_LIMIT).collect();
    format!("{cut}…")
}

/// Why the service could not start, or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to listen on port {port}: {source}")]
    Bind {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid redis configuration: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("invalid postgres pool configuration: {0}")]
    Pool(String),
    #[error("server failed: {0}")]
    Serve(#[source] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
