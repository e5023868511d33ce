//! The `/api/*` reverse proxy to the API, Server-Sent Events included.
//!
//! Invariants:
//! - Only a path under `/api/` is forwarded, and only one the API will see exactly as written: a `.` or
//!   `..` segment (also percent-encoded), an encoded `/` or `\`, a `%` after decoding, an empty segment
//!   or a control character is refused with 400, so `/api/../metrics` can never reach `/metrics`.
//! - Bodies stream both ways as they arrive: nothing is buffered, so an event of `/api/results/stream`
//!   reaches the browser as soon as the API writes it.
//! - Only an allowlist of headers crosses, in each direction (no hop-by-hop headers, no cookies, no
//!   upstream security headers: ours are set on every response).
//! - An unreachable API answers 502 within the connect timeout, a silent one 504 within the response
//!   timeout, both as the contract's JSON [`ErrorBody`]; details of the failure go to the log only.
//! - Event streams end when the frontend stops, so a graceful stop never waits on a browser.

use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::{StreamExt, TryStreamExt};
use http_body_util::{LengthLimitError, Limited};
use vote_contract::http::{ErrorBody, IDEMPOTENCY_KEY};

use crate::routes::AppState;

/// The prefix of every proxied path.
pub const PREFIX: &str = "/api/";
/// Largest request body forwarded (the API accepts far less; this only bounds what we relay).
pub const MAX_REQUEST_BODY: usize = 64 * 1024;

/// Request headers passed to the API.
const REQUEST_HEADERS: [&str; 8] = [
    "accept",
    "content-type",
    "content-length",
    IDEMPOTENCY_KEY,
    "if-none-match",
    "if-modified-since",
    "last-event-id",
    "x-request-id",
];

/// Response headers passed back to the browser.
const RESPONSE_HEADERS: [&str; 11] = [
    "content-type",
    "content-length",
    "cache-control",
    "etag",
    "last-modified",
    "expires",
    "retry-after",
    "location",
    "allow",
    "vary",
    "x-request-id",
];

/// Methods forwarded; anything else (CONNECT, TRACE, …) is refused with 405.
const METHODS: [Method; 7] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
];

/// Why a request was not relayed, or the API did not answer. Each maps to a JSON [`ErrorBody`].
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid path: {0}")]
    BadPath(&'static str),
    #[error("method {0} is not allowed")]
    Method(Method),
    #[error("request body is larger than {MAX_REQUEST_BODY} bytes")]
    BodyTooLarge,
    #[error("cannot reach the API: {0}")]
    Unreachable(#[source] reqwest::Error),
    #[error("the API did not answer within {0:?}")]
    Timeout(Duration),
    #[error("request to the API failed: {0}")]
    Upstream(#[source] reqwest::Error),
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, error, detail) = match &self {
            Self::BadPath(why) => (
                StatusCode::BAD_REQUEST,
                "invalid path",
                format!("the path {why}; only plain paths under /api/ are forwarded"),
            ),
            Self::Method(m) => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed",
                format!("{m} is not forwarded to the API"),
            ),
            Self::BodyTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload too large",
                format!("the request body exceeds {MAX_REQUEST_BODY} bytes"),
            ),
            // 5xx: the cause is logged, never shown.
            Self::Unreachable(e) => {
                tracing::warn!(error = %error_chain(e), "API unreachable");
                (
                    StatusCode::BAD_GATEWAY,
                    "api unavailable",
                    "the vote API cannot be reached right now; try again shortly".to_owned(),
                )
            }
            Self::Timeout(after) => {
                tracing::warn!(?after, "API did not answer in time");
                (
                    StatusCode::GATEWAY_TIMEOUT,
                    "api timeout",
                    "the vote API did not answer in time; try again shortly".to_owned(),
                )
            }
            Self::Upstream(e) => {
                tracing::warn!(error = %error_chain(e), "request to the API failed");
                (
                    StatusCode::BAD_GATEWAY,
                    "api unavailable",
                    "the request to the vote API failed; try again shortly".to_owned(),
                )
            }
        };
        let mut response = (status, axum::Json(ErrorBody::new(error, detail))).into_response();
        if status.is_server_error() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if let Self::Method(_) = self {
            let allow = METHODS.map(|m| m.to_string()).join(", ");
            if let Ok(v) = HeaderValue::try_from(allow) {
                response.headers_mut().insert(header::ALLOW, v);
            }
        }
        response
    }
}

/// Checks that `path` is a plain path under [`PREFIX`] that no server will read differently.
pub fn check_path(path: &str) -> Result<(), Error> {
    let rest = path
        .strip_prefix(PREFIX)
        .ok_or(Error::BadPath("is not under /api/"))?;
    if rest.is_empty() {
        return Err(Error::BadPath("names no resource"));
    }
    let segments: Vec<&str> = rest.split('/').collect();
    let last = segments.len() - 1;
    for (i, segment) in segments.into_iter().enumerate() {
        // A trailing slash is an empty last segment, which is harmless; `//` elsewhere is not.
        if segment.is_empty() && i != last {
            return Err(Error::BadPath("has an empty segment"));
        }
        let decoded = percent_decode(segment).ok_or(Error::BadPath("has a bad percent-escape"))?;
        if decoded == b"." || decoded == b".." {
            return Err(Error::BadPath("has a dot segment"));
        }
        if let Some(b) = decoded
            .iter()
            .find(|b| matches!(b, b'/' | b'\\' | b'%') || b.is_ascii_control())
        {
            return Err(Error::BadPath(match b {
                b'/' => "has an encoded slash",
                b'\\' => "has a backslash",
                b'%' => "is encoded twice",
                _ => "has a control character",
            }));
        }
    }
    Ok(())
}

/// `segment` with `%XX` escapes decoded; `None` for a malformed escape.
fn percent_decode(segment: &str) -> Option<Vec<u8>> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// The handler of `/api/{*path}`: relays the request to the API and streams the answer back.
pub async fn forward(State(state): State<AppState>, request: Request) -> Result<Response, Error> {
    let (parts, body) = request.into_parts();
    check_path(parts.uri.path())?;
    if !METHODS.contains(&parts.method) {
        return Err(Error::Method(parts.method));
    }
    let mut target = format!("{}{}", state.api_url(), parts.uri.path());
    if let Some(query) = parts.uri.query() {
        target.push('?');
        target.push_str(query);
    }
    let url = reqwest::Url::parse(&target).map_err(|_| Error::BadPath("is not a valid URL"))?;
    // Defence in depth: the URL parser normalises dot segments; what it produced must be what we checked.
    if !url.path().ends_with(parts.uri.path()) {
        return Err(Error::BadPath("would be rewritten"));
    }

    let declared_len = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared_len.is_some_and(|n| n > MAX_REQUEST_BODY as u64) {
        return Err(Error::BodyTooLarge);
    }

    let mut upstream = state
        .client()
        .request(parts.method.clone(), url)
        .headers(copy_headers(&parts.headers, &REQUEST_HEADERS));
    if !body.is_end_stream() {
        let limited = Body::new(Limited::new(body, MAX_REQUEST_BODY));
        upstream = upstream.body(reqwest::Body::wrap_stream(limited.into_data_stream()));
    }

    let timeout = state.response_timeout();
    let response = match tokio::time::timeout(timeout, upstream.send()).await {
        Err(_) => return Err(Error::Timeout(timeout)),
        Ok(Err(e)) if is_body_too_large(&e) => return Err(Error::BodyTooLarge),
        Ok(Err(e)) if e.is_connect() => return Err(Error::Unreachable(e)),
        Ok(Err(e)) if e.is_timeout() => return Err(Error::Timeout(timeout)),
        Ok(Err(e)) => return Err(Error::Upstream(e)),
        Ok(Ok(r)) => r,
    };

    let status = response.status();
    let mut headers = copy_headers(response.headers(), &RESPONSE_HEADERS);
    let event_stream = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let stream = response.bytes_stream().map_err(|e| {
        tracing::debug!(error = %error_chain(&e), "API response body ended with an error");
        e
    });
    let body = if event_stream {
        // Tell buffering intermediaries (nginx ingress) to pass events through at once.
        headers.insert(
            HeaderName::from_static("x-accel-buffering"),
            HeaderValue::from_static("no"),
        );
        Body::from_stream(stream.take_until(state.stopping()))
    } else {
        Body::from_stream(stream)
    };
    let mut out = Response::new(body);
    *out.status_mut() = status;
    *out.headers_mut() = headers;
    Ok(out)
}

/// The headers of `from` named in `allow`, all their values.
fn copy_headers(from: &HeaderMap, allow: &[&str]) -> HeaderMap {
    let mut to = HeaderMap::new();
    for name in allow {
        for value in from.get_all(*name) {
            if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
                to.append(name, value.clone());
            }
        }
    }
    to
}

fn is_body_too_large(error: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// `error` and its sources, `: `-separated, for the log.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_api_paths_pass() {
        for path in [
            "/api/vote",
            "/api/results",
            "/api/results/stream",
            "/api/openapi.json",
            "/api/results/",
            "/api/some-thing_1.2~x",
            "/api/caf%C3%A9",
        ] {
            assert!(check_path(path).is_ok(), "{path}");
        }
    }

    #[test]
    fn tricks_are_refused() {
        for path in [
            "/metrics",
            "/health",
            "/apix/vote",
            "/api",
            "/api/",
            "/api/../metrics",
            "/api/./vote",
            "/api/results/..",
            "/api/%2e%2e/metrics",
            "/api/%2E%2e/metrics",
            "/api/.%2e/metrics",
            "/api/%2e/vote",
            "/api/..%2fmetrics",
            "/api/..%2Fmetrics",
            "/api/%2f%2fevil",
            "/api/..%5cmetrics",
            "/api/..\\metrics",
            "/api//metrics",
            "/api/%252e%252e/metrics",
            "/api/%zz",
            "/api/%2",
            "/api/a%00b",
            "/api/a%0d%0aX-Injected:1",
        ] {
            assert!(
                matches!(check_path(path), Err(Error::BadPath(_))),
                "{path} passed"
            );
        }
    }
}
