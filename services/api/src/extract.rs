//! Extractors whose every rejection is an [`ApiError`], so a malformed request gets the same JSON error
//! shape as every other failure (axum's own rejections are plain text).

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use uuid::Uuid;
use vote_contract::http::IDEMPOTENCY_KEY;

use crate::error::{ApiError, echo};

/// A JSON body: 415 without a JSON content type, 413 when larger than the body limit, 400 when not
/// JSON, 422 when JSON of the wrong shape.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let Json(value) = Json::<T>::from_request(req, state).await?;
        Ok(Self(value))
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
