//! The HTTP surface: the route table, the fallbacks and the layers every response passes through.
//!
//! Invariants:
//! - the router is built only from [`table`], and [`routes`] lists that same table, so the OpenAPI
//!   test compares the document with what is really served;
//! - unknown paths (404) and wrong methods (405) answer with the JSON error shape;
//! - the security headers are set by the outermost layer, so every response carries them, errors
//!   and CORS preflights included;
//! - CORS answers only the configured origins, never `*`;
//! - every request runs in a span carrying its `x-request-id` (kept from the client or a fresh
//!   UUID), which is also returned in the response.

mod openapi;
mod ops;
mod results;
mod vote;

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, Uri, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{MethodRouter, get, post};
use std::sync::Arc;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use vote_contract::http::{IDEMPOTENCY_KEY, MAX_BODY_BYTES, path};

pub use openapi::ApiDoc;
pub use ops::{CHECK_TIMEOUT, POSTGRES_CHECK, REDIS_CHECK};

use crate::error::ApiError;
use crate::metrics::{Metrics, UNMATCHED_ROUTE};
use crate::state::AppState;

/// Header carrying the request id, in requests and responses.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Headers set on every response.
pub const SECURITY_HEADERS: [(&str, &str); 4] = [
    ("x-content-type-options", "nosniff"),
    (
        "content-security-policy",
        "default-src 'none'; frame-ancestors 'none'",
    ),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
];

/// Every route: path, method, handler. One method per path.
fn table() -> Vec<(&'static str, Method, MethodRouter<AppState>)> {
    vec![
        (path::VOTE, Method::POST, post(vote::vote)),
        (path::RESULTS, Method::GET, get(results::results)),
        (
            path::RESULTS_STREAM,
            Method::GET,
            get(results::results_stream),
        ),
        (path::OPENAPI, Method::GET, get(openapi::openapi)),
        (path::HEALTH, Method::GET, get(ops::health)),
        (path::READY, Method::GET, get(ops::ready)),
        (path::METRICS, Method::GET, get(ops::metrics)),
    ]
}

/// The (path, method) pairs the router serves.
pub fn routes() -> Vec<(&'static str, Method)> {
    table().into_iter().map(|(p, m, _)| (p, m)).collect()
}

/// The methods served on `path`, for the `Allow` header of a 405.
fn allowed_methods(path: &str) -> Vec<Method> {
    routes()
        .into_iter()
        .filter(|(p, _)| *p == path)
        .map(|(_, m)| m)
        .collect()
}

/// The whole HTTP service for `state`.
pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    for (path, _, handler) in table() {
        router = router.route(path, handler);
    }
    let request_id = HeaderName::from_static(REQUEST_ID_HEADER);
    let mut router = router
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state.metrics),
            track,
        ))
        .layer(cors(&state.cors_origins))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let id = req
                        .headers()
                        .get(REQUEST_ID_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    tracing::info_span!(
                        "request",
                        method = %req.method(),
                        path = %req.uri().path(),
                        request_id = %id,
                    )
                })
                // Server errors are logged with their cause where they happen (ApiError).
                .on_failure(()),
        )
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid));
    for (name, value) in SECURITY_HEADERS {
        router = router.layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        ));
    }
    router.with_state(state)
}

fn cors(origins: &[String]) -> CorsLayer {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::CONTENT_TYPE,
            header::IF_NONE_MATCH,
            HeaderName::from_static(IDEMPOTENCY_KEY),
        ])
        .expose_headers([
            header::ETAG,
            header::RETRY_AFTER,
            HeaderName::from_static(REQUEST_ID_HEADER),
        ])
        .max_age(Duration::from_secs(600))
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(uri.path())
}

async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    use axum::response::IntoResponse;
    let allowed = allowed_methods(uri.path());
    let mut response = ApiError::MethodNotAllowed {
        method: crate::error::echo(method.as_str()),
        path: crate::error::echo(uri.path()),
    }
    .into_response();
    let allow = allowed
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if let Ok(value) = HeaderValue::from_str(&allow) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}

/// Methods that get their own metric label; anything else is `other`, so clients cannot mint series.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED_ROUTE, MatchedPath::as_str)
        .to_owned();
    let method = method_label(req.method());
    let started = Instant::now();
    let response = next.run(req).await;
    metrics.observe_request(
        &route,
        method,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}
