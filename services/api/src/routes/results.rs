//! `GET /api/results` (read from PostgreSQL on each request, with a strong ETag) and
//! `GET /api/results/stream` (Server-Sent Events pushed from the results feed).
//!
//! Invariant: both carry the same JSON for the same counts (one [`ResultsSnapshot`] type builds it),
//! and a stream ends when the service shuts down, so draining never waits on an open stream.

use std::convert::Infallible;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use tokio_stream::wrappers::WatchStream;
use vote_contract::http::{ErrorBody, RESULTS_EVENT, ResultsResponse, path};

use crate::error::ApiError;
use crate::state::AppState;

const NO_CACHE: HeaderValue = HeaderValue::from_static("no-cache");

/// Current results.
///
/// Every configured option appears, zeros included; percentages have one decimal. Send the `ETag`
/// back in `If-None-Match` to get a 304 while nothing changed.
#[utoipa::path(
    get,
    path = path::RESULTS,
    tag = "results",
    params(("If-None-Match" = Option<String>, Header, description = "ETag of results already held")),
    responses(
        (status = 200, description = "Counts per option", body = ResultsResponse,
            headers(("ETag" = String, description = "Strong validator of the body"),
                    ("Cache-Control" = String, description = "no-cache: revalidate every time"))),
        (status = 304, description = "Unchanged since the ETag given in If-None-Match"),
        (status = 503, description = "PostgreSQL is unavailable", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
    )
)]
pub async fn results(
    State(state): State<AppState>,
    request_headers: HeaderMap,
) -> Result<Response, ApiError> {
    let snapshot = state.fresh_results().await?;
    let etag = HeaderValue::from_str(&snapshot.etag)
        .map_err(|e| ApiError::Database(format!("unusable etag: {e}")))?;
    let headers = [(header::CACHE_CONTROL, NO_CACHE), (header::ETAG, etag)];
    if etag_matches(&request_headers, &snapshot.etag) {
        return Ok((StatusCode::NOT_MODIFIED, headers).into_response());
    }
    Ok((
        headers,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        snapshot.json,
    )
        .into_response())
}

/// Whether `If-None-Match` names `etag` (or `*`). The comparison is weak, as RFC 9110 requires for
/// `If-None-Match`.
fn etag_matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// Results as Server-Sent Events.
///
/// A `results` event with the same JSON as `GET /api/results` on connect and after each change,
/// pushed as the consumer commits votes; comment lines keep idle connections open.
#[utoipa::path(
    get,
    path = path::RESULTS_STREAM,
    tag = "results",
    responses(
        (status = 200, description = "`results` events whose data is a ResultsResponse",
            content_type = "text/event-stream", body = String),
    )
)]
pub async fn results_stream(State(state): State<AppState>) -> impl IntoResponse {
    let client = state.metrics.sse_client();
    let events = WatchStream::new(state.results.subscribe())
        .filter_map(std::future::ready)
        .map(move |snapshot| {
            // The guard lives as long as the stream: the gauge drops when the client goes.
            let _client = &client;
            Ok::<_, Infallible>(Event::default().event(RESULTS_EVENT).data(&snapshot.json))
        })
        .take_until(state.shutdown.clone().cancelled_owned());
    (
        // Proxies (nginx and kin) must pass events through as they come.
        [(
            HeaderName::from_static("x-accel-buffering"),
            HeaderValue::from_static("no"),
        )],
        Sse::new(events).keep_alive(KeepAlive::default()),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn if_none_match_forms() {
        let tag = "\"abc\"";
        assert!(etag_matches(&with("\"abc\""), tag));
        assert!(etag_matches(&with("W/\"abc\""), tag));
        assert!(etag_matches(&with("\"x\", \"abc\""), tag));
        assert!(etag_matches(&with("*"), tag));
        assert!(!etag_matches(&with("\"abd\""), tag));
        assert!(!etag_matches(&with("abc"), tag));
        assert!(!etag_matches(&HeaderMap::new(), tag));
    }
}
