//! Extractors whose every rejection is an [`ApiError`], so a malformed request gets the same JSON error
//! shape as every other failure (axum's own rejections are plain text).

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use uuid::Uuid;
use vote_contract::http::IDEMPOTENCY_KEY;

use crate::error::{ApiError, echo};

/// A JSON object body: 415 without a JSON content type, 413 when larger than the body limit, 400 when
/// not JSON, 422 when JSON of the wrong shape. The top level must be an object: serde would otherwise
/// also accept a struct written as an array (`["dogs"]`), which no client means.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(value) = Json::<serde_json::Value>::from_request(req, state).await?;
        if !value.is_object() {
            return Err(ApiError::InvalidBody(format!(
                "expected a JSON object, got {}",
                json_kind(&value)
            )));
        }
        let value = T::deserialize(value).map_err(|e| ApiError::InvalidBody(e.to_string()))?;
        Ok(Self(value))
    }
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// The `Idempotency-Key` header: absent, or exactly one UUID (422 otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IdempotencyKey(pub Option<Uuid>);

/// The header as people write it, for messages.
pub const IDEMPOTENCY_KEY_DISPLAY: &str = "Idempotency-Key";

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let mut values = parts.headers.get_all(IDEMPOTENCY_KEY).iter();
        let Some(value) = values.next() else {
            return Ok(Self(None));
        };
        if values.next().is_some() {
            return Err(ApiError::invalid_header(
                IDEMPOTENCY_KEY_DISPLAY,
                "given more than once",
            ));
        }
        let text = value.to_str().map_err(|_| {
            ApiError::invalid_header(IDEMPOTENCY_KEY_DISPLAY, "must be a UUID in ASCII text")
        })?;
        let key = Uuid::try_parse(text.trim()).map_err(|_| {
            ApiError::invalid_header(
                IDEMPOTENCY_KEY_DISPLAY,
                format!("must be a UUID, got {:?}", echo(text)),
            )
        })?;
        Ok(Self(Some(key)))
    }
}
