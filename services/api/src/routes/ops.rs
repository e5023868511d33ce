//! Endpoints for the platform: liveness (`/health`), readiness (`/ready`) and `/metrics`.
//!
//! Invariants: `/health` touches no dependency (a restart cannot fix Redis); `/ready` checks both
//! dependencies concurrently, each bounded by [`CHECK_TIMEOUT`], and names the one that failed.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use vote_contract::http::{HealthResponse, ReadyResponse, path};

use crate::error::chain;
use crate::state::AppState;

/// Longest wait for one readiness check.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(1);
/// Name of the Redis check in `/ready`.
pub const REDIS_CHECK: &str = "redis";
/// Name of the PostgreSQL check in `/ready`.
pub const POSTGRES_CHECK: &str = "postgres";

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// Liveness: the process answers. Touches no dependency.
#[utoipa::path(
    get,
    path = path::HEALTH,
    tag = "operations",
    responses((status = 200, description = "The process is alive", body = HealthResponse))
)]
pub async fn health() -> Json<HealthResponse> {
    Json(HealthResponse {
        status: "healthy".to_owned(),
        timestamp: now_rfc3339(),
    })
}

/// Readiness: 200 only when Redis and PostgreSQL both answer.
#[utoipa::path(
    get,
    path = path::READY,
    tag = "operations",
    responses(
        (status = 200, description = "Redis and PostgreSQL answer", body = ReadyResponse),
        (status = 503, description = "A dependency failed; `checks` names it", body = ReadyResponse),
    )
)]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<ReadyResponse>) {
    let (redis, postgres) = tokio::join!(check_redis(&state), check_postgres(&state));
    let checks = BTreeMap::from([
        (REDIS_CHECK.to_owned(), redis),
        (POSTGRES_CHECK.to_owned(), postgres),
    ]);
    let body = ReadyResponse::from_checks(checks);
    let status = if body.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

fn timed_out() -> String {
    format!("no answer within {}s", CHECK_TIMEOUT.as_secs())
}

async fn check_redis(state: &AppState) -> String {
    let mut conn = state.redis.clone();
    let cmd = redis::cmd("PING");
    let ping = cmd.query_async::<String>(&mut conn);
    match tokio::time::timeout(CHECK_TIMEOUT, ping).await {
        Ok(Ok(_)) => ReadyResponse::OK.to_owned(),
        Ok(Err(e)) => {
            state.metrics.redis_error();
            tracing::warn!(error = %e, "readiness: redis failed");
            if e.is_io_error() || e.is_connection_refusal() || e.is_connection_dropped() {
                "cannot connect".to_owned()
            } else if e.is_timeout() {
                timed_out()
            } else {
                format!("error ({:?})", e.kind())
            }
        }
        Err(_) => {
            state.metrics.redis_error();
            tracing::warn!("readiness: redis timed out");
            timed_out()
        }
    }
}

async fn check_postgres(state: &AppState) -> String {
    let select = async {
        let client = state.db.get().await.map_err(|e| chain(&e))?;
        client
            .simple_query("SELECT 1")
            .await
            .map_err(|e| chain(&e))?;
        Ok::<_, String>(())
    };
    match tokio::time::timeout(CHECK_TIMEOUT, select).await {
        Ok(Ok(())) => ReadyResponse::OK.to_owned(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: postgres failed");
            "cannot connect or query".to_owned()
        }
        Err(_) => {
            tracing::warn!("readiness: postgres timed out");
            timed_out()
        }
    }
}

/// Metrics in the OpenMetrics text format (Prometheus reads it).
#[utoipa::path(
    get,
    path = path::METRICS,
    tag = "operations",
    responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text", body = String))
)]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(OPENMETRICS))],
        state.metrics.encode(),
    )
}
