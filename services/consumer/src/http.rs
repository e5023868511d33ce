//! The consumer's HTTP endpoints: `/health` (liveness, touches nothing), `/ready` (Redis and
//! PostgreSQL answer) and `/metrics`.
//!
//! Invariant: no handler can hang on a dependency: every check has a deadline, and `/metrics` serves
//! the last known stream figures when Redis does not answer in time.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use redis::aio::ConnectionManager;
use vote_contract::http::{ErrorBody, HealthResponse, ReadyResponse, path};

use crate::metrics::{self, Metrics};
use crate::store::Store;
use crate::streams::group_stats;

/// Deadline of each readiness check and of the stream figures refreshed for a scrape.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    /// A connection of its own, so a check never waits behind the worker's blocking read.
    pub redis: ConnectionManager,
    pub store: Store,
    pub metrics: Arc<Metrics>,
}

/// The routes, with a JSON 404 for anything else.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(path::HEALTH, get(health))
        .route(path::READY, get(ready))
        .route(path::METRICS, get(metrics_text))
        .fallback(not_found)
        .with_state(state)
}

async fn health() -> Json<HealthResponse> {
    Json(HealthResponse {
        status: "healthy".to_owned(),
        timestamp: now_rfc3339(),
    })
}

async fn ready(State(state): State<AppState>) -> (StatusCode, Json<ReadyResponse>) {
    let mut redis = state.redis.clone();
    let (redis, postgres) = tokio::join!(
        check(async move {
            redis::cmd("PING")
                .query_async::<()>(&mut redis)
                .await
                .map_err(|e| e.to_string())
        }),
        check(async { state.store.ping().await.map_err(|e| e.to_string()) }),
    );
    let checks = BTreeMap::from([
        ("redis".to_owned(), redis),
        ("postgres".to_owned(), postgres),
    ]);
    let body = ReadyResponse::from_checks(checks);
    let status = if body.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

/// `ok`, or what went wrong.
async fn check(fut: impl Future<Output = Result<(), String>>) -> String {
    match tokio::time::timeout(CHECK_TIMEOUT, fut).await {
        Ok(Ok(())) => ReadyResponse::OK.to_owned(),
        Ok(Err(e)) => e,
        Err(_) => format!("no answer within {CHECK_TIMEOUT:?}"),
    }
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    let mut redis = state.redis.clone();
    match tokio::time::timeout(CHECK_TIMEOUT, group_stats(&mut redis)).await {
        Ok(Ok(stats)) => state.metrics.set_group_stats(&stats),
        Ok(Err(e)) => tracing::debug!(error = %e, "stream figures not refreshed"),
        Err(_) => tracing::debug!("stream figures not refreshed: Redis did not answer in time"),
    }
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        state.metrics.encode(),
    )
        .into_response()
}

async fn not_found(uri: axum::http::Uri) -> (StatusCode, Json<ErrorBody>) {
    (
        StatusCode::NOT_FOUND,
        Json(ErrorBody::new(
            "not found",
            format!(
                "no route for {}; this service serves {}, {} and {}",
                uri.path(),
                path::HEALTH,
                path::READY,
                path::METRICS
            ),
        )),
    )
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}
