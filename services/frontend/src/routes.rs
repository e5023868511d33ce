//! The router: the page at `/`, the embedded files under `/static/`, the `/api/*` proxy, `/health`,
//! `/ready`, and a 404 for everything else (an HTML page, or JSON under `/api`).
//!
//! Invariant: every response leaves through [`headers::apply`], whatever produced it.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tower_http::trace::TraceLayer;
use vote_contract::http::{ErrorBody, HealthResponse, ReadyResponse, path};

use crate::assets::{self, CACHE_IMMUTABLE, CACHE_REVALIDATE};
use crate::settings::Settings;
use crate::{headers, proxy};

/// What the handlers share: the HTTP client to the API and the stop signal of event streams.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    api_url: String,
    client: reqwest::Client,
    response_timeout: Duration,
    ready_timeout: Duration,
    stopping: CancellationToken,
}

impl AppState {
    /// Builds the client to the API described by `settings`.
    pub fn new(settings: &Settings) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            // The API is addressed directly; a proxy from the environment must not reroute it.
            .no_proxy()
            // Redirects are the browser's business.
            .redirect(reqwest::redirect::Policy::none())
            .tcp_keepalive(Duration::from_secs(30))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()?;
        Ok(Self {
            inner: Arc::new(Inner {
                api_url: settings.api_url.clone(),
                client,
                response_timeout: settings.response_timeout,
                ready_timeout: settings.connect_timeout + Duration::from_secs(1),
                stopping: CancellationToken::new(),
            }),
        })
    }

    /// Base URL of the API, without a trailing slash.
    pub fn api_url(&self) -> &str {
        &self.inner.api_url
    }

    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.inner.client
    }

    pub(crate) fn response_timeout(&self) -> Duration {
        self.inner.response_timeout
    }

    /// Ends every proxied event stream (called when the server starts stopping).
    pub fn stop_streams(&self) {
        self.inner.stopping.cancel();
    }

    pub(crate) fn stopping(&self) -> WaitForCancellationFutureOwned {
        self.inner.stopping.clone().cancelled_owned()
    }
}

/// The frontend's routes, with the security headers and request tracing applied to all of them.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/static/{file}", get(static_file))
        .route(path::HEALTH, get(health))
        .route(path::READY, get(ready))
        .route("/api/{*path}", any(proxy::forward))
        .fallback(not_found)
        .layer(axum::middleware::map_response(headers::apply))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn index(request: HeaderMap) -> Response {
    assets::serve(
        &assets::assets().index,
        StatusCode::OK,
        &request,
        CACHE_REVALIDATE,
    )
}

async fn static_file(
    Path(file): Path<String>,
    RawQuery(query): RawQuery,
    request: HeaderMap,
) -> Response {
    let Some(asset) = assets::assets().file(&file) else {
        return html_not_found(&request);
    };
    let versioned = query
        .as_deref()
        .is_some_and(|q| q.split('&').any(|p| p == format!("v={}", asset.version)));
    let cache = if versioned {
        CACHE_IMMUTABLE
    } else {
        CACHE_REVALIDATE
    };
    assets::serve(asset, StatusCode::OK, &request, cache)
}

/// Liveness: answers without touching the API.
async fn health() -> axum::Json<HealthResponse> {
    let timestamp = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    axum::Json(HealthResponse {
        status: "healthy".to_owned(),
        timestamp,
    })
}

/// Readiness: 200 when the API's `/health` answers 2xx, else 503 saying what failed.
async fn ready(State(state): State<AppState>) -> Response {
    let url = format!("{}{}", state.api_url(), path::HEALTH);
    let check = match state
        .client()
        .get(url)
        .timeout(state.inner.ready_timeout)
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => ReadyResponse::OK.to_owned(),
        Ok(r) => format!("API /health answered {}", r.status()),
        Err(e) if e.is_connect() => "API unreachable".to_owned(),
        Err(e) if e.is_timeout() => "API /health timed out".to_owned(),
        Err(_) => "API /health failed".to_owned(),
    };
    let body = ReadyResponse::from_checks([("api".to_owned(), check)].into_iter().collect());
    let status = if body.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

async fn not_found(uri: Uri, request: HeaderMap) -> Response {
    let path = uri.path();
    if path == "/api" || path.starts_with(proxy::PREFIX) {
        // Callers of the API expect JSON errors.
        return (
            StatusCode::NOT_FOUND,
            axum::Json(ErrorBody::new(
                "not found",
                "no API resource at this path".to_owned(),
            )),
        )
            .into_response();
    }
    html_not_found(&request)
}

fn html_not_found(request: &HeaderMap) -> Response {
    assets::serve(
        &assets::assets().not_found,
        StatusCode::NOT_FOUND,
        request,
        CACHE_REVALIDATE,
    )
}
