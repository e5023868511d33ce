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

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use redis::aio::ConnectionManagerConfig;
    use tower::ServiceExt;
    use vote_contract::VoteOptions;

    use super::*;

    /// A state whose Redis and PostgreSQL are ports nothing listens on.
    fn unreachable_state() -> AppState {
        let redis_port = vote_testkit::free_port();
        let pg_port = vote_testkit::free_port();
        let redis = redis::Client::open(format!("redis://127.0.0.1:{redis_port}"))
            .unwrap()
            .get_connection_manager_lazy(
                ConnectionManagerConfig::new()
                    .set_number_of_retries(0)
                    .set_connection_timeout(Some(Duration::from_millis(500))),
            )
            .unwrap();
        let pg = format!("postgres://postgres@127.0.0.1:{pg_port}/votes")
            .parse()
            .unwrap();
        AppState {
            redis,
            store: Store::new(pg, VoteOptions::default()),
            metrics: Arc::new(Metrics::new()),
        }
    }

    async fn get(path: &str) -> (StatusCode, String, Option<String>) {
        let response = router(unreachable_state())
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            String::from_utf8(body.to_vec()).unwrap(),
            content_type,
        )
    }

    #[tokio::test]
    async fn health_touches_no_dependency() {
        let (status, body, _) = get(path::HEALTH).await;
        assert_eq!(status, StatusCode::OK);
        let body: HealthResponse = serde_json::from_str(&body).unwrap();
        assert_eq!(body.status, "healthy");
        assert!(
            time::OffsetDateTime::parse(
                &body.timestamp,
                &time::format_description::well_known::Rfc3339
            )
            .is_ok()
        );
    }

    #[tokio::test]
    async fn ready_names_each_dependency_that_fails() {
        let (status, body, _) = get(path::READY).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let body: ReadyResponse = serde_json::from_str(&body).unwrap();
        assert_eq!(body.status, ReadyResponse::NOT_READY);
        assert_eq!(
            body.checks.keys().collect::<Vec<_>>(),
            ["postgres", "redis"]
        );
        assert!(
            body.checks.values().all(|v| v != ReadyResponse::OK),
            "{body:?}"
        );
    }

    #[tokio::test]
    async fn metrics_are_served_even_when_redis_is_away() {
        let (status, body, content_type) = get(path::METRICS).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(content_type.as_deref(), Some(metrics::CONTENT_TYPE));
        assert!(body.contains("vote_consumer_lag "), "{body}");
        assert!(body.ends_with("# EOF\n"));
    }

    #[tokio::test]
    async fn unknown_routes_get_a_json_404() {
        let (status, body, _) = get("/api/vote").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let body: ErrorBody = serde_json::from_str(&body).unwrap();
        assert_eq!(body.error, "not found");
        assert!(body.detail.contains("/api/vote"));
    }
}
