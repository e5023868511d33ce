//! `POST /api/vote`: validates the option and appends one entry to the `votes` stream.
//!
//! Invariant: the entry is written with the contract's encoder in one `XADD`, so it is either entirely
//! in the stream or not at all. When Redis times out after accepting it, the client sees a 503; a retry
//! with the same `Idempotency-Key` is then counted once by the consumer.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use redis::AsyncCommands;
use vote_contract::VoteEntry;
use vote_contract::http::{ErrorBody, VoteRequest, VoteResponse, path};
use vote_contract::stream::STREAM;

use crate::error::ApiError;
use crate::extract::{ApiJson, IdempotencyKey};
use crate::state::{AppState, REDIS_TIMEOUT};

/// Record a vote.
///
/// Appends the vote to the `votes` stream; the consumer counts it shortly after. Send an
/// `Idempotency-Key` (a UUID) to make retries safe: a vote is counted at most once per key.
#[utoipa::path(
    post,
    path = path::VOTE,
    tag = "votes",
    request_body(content = VoteRequest, content_type = "application/json"),
    params(
        ("Idempotency-Key" = Option<uuid::Uuid>, Header,
            description = "UUID identifying this vote; a retried request with the same key is counted once"),
    ),
    responses(
        (status = 201, description = "Vote appended to the stream", body = VoteResponse),
        (status = 400, description = "Body is not JSON", body = ErrorBody),
        (status = 413, description = "Body larger than 1 KiB", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 422, description = "Missing or mistyped field, unknown option (lists the valid ones) or bad Idempotency-Key", body = ErrorBody),
        (status = 503, description = "Redis is unavailable; nothing was recorded unless a retry says otherwise",
            body = ErrorBody, headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
    )
)]
pub async fn vote(
    State(state): State<AppState>,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(request): ApiJson<VoteRequest>,
) -> Result<(StatusCode, Json<VoteResponse>), ApiError> {
    let option =
        state
            .options
            .get(&request.option)
            .cloned()
            .ok_or_else(|| ApiError::UnknownOption {
                given: crate::error::echo(&request.option),
                valid: state.options.names(),
            })?;
    let entry = match key {
        Some(id) => VoteEntry::with_request_id(option, id),
        None => VoteEntry::new(option),
    };
    let fields = entry.encode();
    let mut redis = state.redis.clone();
    let appended = tokio::time::timeout(
        REDIS_TIMEOUT,
        redis.xadd::<_, _, _, _, String>(STREAM, "*", &fields),
    )
    .await;
    let stream_id = match appended {
        Ok(Ok(id)) => id,
        Ok(Err(e)) => {
            state.metrics.redis_error();
            return Err(ApiError::Redis(format!("XADD failed: {e}")));
        }
        Err(_) => {
            state.metrics.redis_error();
            return Err(ApiError::Redis(format!(
                "XADD got no answer within {REDIS_TIMEOUT:?}"
            )));
        }
    };
    state.metrics.vote_accepted(entry.option.as_str());
    tracing::debug!(option = %entry.option, request_id = %entry.request_id, %stream_id, "vote accepted");
    Ok((
        StatusCode::CREATED,
        Json(VoteResponse::new(entry.option.to_string(), stream_id)),
    ))
}
