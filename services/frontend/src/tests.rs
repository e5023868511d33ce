//! Handler tests with `oneshot`: headers, the 404 page, static caching, and the proxy against a small
//! real upstream on 127.0.0.1 (path filtering, header allowlists, upstream down, timeouts, SSE
//! pass-through).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use http_body_util::BodyExt;
use tokio::sync::Notify;
use tower::ServiceExt;
use vote_contract::http::{ErrorBody, HealthResponse, RESULTS_EVENT, ReadyResponse, path};

use crate::assets::{CACHE_IMMUTABLE, CACHE_REVALIDATE, assets};
use crate::headers::SECURITY_HEADERS;
use crate::{AppState, Settings, router};

/// A small API stand-in: records every path it is asked for, echoes `/api/echo`, streams
/// `/api/results/stream` one event at a time, and never answers `/api/silent`.
struct Upstream {
    url: String,
    seen: Arc<Mutex<Vec<String>>>,
    release: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    async fn start() -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let release = Arc::new(Notify::new());
        let record = {
            let seen = seen.clone();
            move |req: Request, next: axum::middleware::Next| {
                let seen = seen.clone();
                async move {
                    seen.lock().unwrap().push(req.uri().to_string());
                    next.run(req).await
                }
            }
        };
        let stream_release = release.clone();
        let app = Router::new()
            .route("/api/echo", any(echo))
            .route(
                "/api/results/stream",
                get(move || {
                    let release = stream_release.clone();
                    async move {
                        let events = async_stream::stream! {
                            yield Ok::<_, std::convert::Infallible>(
                                Event::default().event(RESULTS_EVENT).data(r#"{"n":1}"#),
                            );
                            // The second event waits for the test: a proxy that buffered the body
                            // until the end would never show the first one.
                            release.notified().await;
                            yield Ok(Event::default().event(RESULTS_EVENT).data(r#"{"n":2}"#));
                        };
                        Sse::new(events)
                    }
                }),
            )
            .route(
                "/api/silent",
                get(|| async {
                    std::future::pending::<()>().await;
                }),
            )
            .route(path::HEALTH, get(|| async { "ok" }))
            .fallback(|| async { (StatusCode::IM_A_TEAPOT, "reached") })
            .layer(axum::middleware::from_fn(record));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            url,
            seen,
            release,
            task,
        }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn echo(req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    let headers: serde_json::Map<String, serde_json::Value> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").into()))
        .collect();
    let json = serde_json::json!({
        "method": parts.method.as_str(),
        "uri": parts.uri.to_string(),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    });
    (
        StatusCode::CREATED,
        [
            (header::ETAG, "\"e1\""),
            (header::CACHE_CONTROL, "no-cache"),
            (header::SET_COOKIE, "session=1"),
            (header::CONTENT_SECURITY_POLICY, "default-src *"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (header::RETRY_AFTER, "7"),
        ],
        axum::Json(json),
    )
        .into_response()
}

fn app(api_url: &str) -> Router {
    router(AppState::new(&Settings::for_tests(api_url)).unwrap())
}

fn get_req(uri: &str) -> Request {
    Request::builder().uri(uri).body(Body::empty()).unwrap()
}

async fn send(app: &Router, req: Request) -> Response {
    app.clone().oneshot(req).await.unwrap()
}

async fn body_bytes(response: Response) -> Vec<u8> {
    response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec()
}

async fn json<T: serde::de::DeserializeOwned>(response: Response) -> T {
    let bytes = body_bytes(response).await;
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&bytes)))
}

fn assert_security_headers(headers: &HeaderMap, what: &str) {
    for (name, value) in SECURITY_HEADERS {
        assert_eq!(
            headers.get(&name).map(HeaderValue::as_bytes),
            Some(value.as_bytes()),
            "{name} on {what}"
        );
        assert_eq!(headers.get_all(&name).iter().count(), 1, "{name} on {what}");
    }
}

/// A port nothing listens on.
fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

#[tokio::test]
async fn every_kind_of_response_has_the_security_headers() {
    let upstream = Upstream::start().await;
    let app = app(&upstream.url);
    let dead = self::app(&dead_url());
    let cases: Vec<(&str, Response)> = vec![
        ("page", send(&app, get_req("/")).await),
        ("static", send(&app, get_req("/static/app.js")).await),
        ("404 page", send(&app, get_req("/nope")).await),
        ("api 404", send(&app, get_req("/api")).await),
        ("health", send(&app, get_req("/health")).await),
        ("ready", send(&app, get_req("/ready")).await),
        ("proxied", send(&app, get_req("/api/echo")).await),
        ("bad path", send(&app, get_req("/api/%2e%2e/metrics")).await),
        ("upstream down", send(&dead, get_req("/api/results")).await),
        (
            "405",
            send(
                &app,
                Request::builder()
                    .method(Method::POST)
                    .uri("/")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await,
        ),
    ];
    for (what, response) in &cases {
        assert_security_headers(response.headers(), what);
    }
}

#[tokio::test]
async fn the_page_is_served_and_revalidated() {
    let app = app(&dead_url());
    let response = send(&app, get_req("/")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
    assert_eq!(response.headers()[header::CACHE_CONTROL], CACHE_REVALIDATE);
    let etag = response.headers()[header::ETAG].clone();
    let html = String::from_utf8(body_bytes(response).await).unwrap();
    assert!(html.contains(&assets().file("app.js").unwrap().url()));

    let again = send(
        &app,
        Request::builder()
            .uri("/")
            .header(header::IF_NONE_MATCH, etag.clone())
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers()[header::ETAG], etag);
    assert!(body_bytes(again).await.is_empty());
}

#[tokio::test]
async fn static_files_have_etags_honoured_by_if_none_match() {
    let app = app(&dead_url());
    for asset in &assets().files {
        let plain = send(&app, get_req(&format!("/static/{}", asset.name))).await;
        assert_eq!(plain.status(), StatusCode::OK, "{}", asset.name);
        assert_eq!(plain.headers()[header::CONTENT_TYPE], asset.content_type);
        assert_eq!(plain.headers()[header::ETAG], asset.etag);
        assert_eq!(plain.headers()[header::CACHE_CONTROL], CACHE_REVALIDATE);
        assert_eq!(body_bytes(plain).await, asset.body);

        let versioned = send(&app, get_req(&asset.url())).await;
        assert_eq!(versioned.headers()[header::CACHE_CONTROL], CACHE_IMMUTABLE);

        let stale = send(&app, get_req(&format!("/static/{}?v=old", asset.name))).await;
        assert_eq!(stale.headers()[header::CACHE_CONTROL], CACHE_REVALIDATE);

        let conditional = |tag: &str| {
            Request::builder()
                .uri(asset.url())
                .header(header::IF_NONE_MATCH, tag)
                .body(Body::empty())
                .unwrap()
        };
        let not_modified = send(&app, conditional(asset.etag.to_str().unwrap())).await;
        assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(not_modified.headers()[header::ETAG], asset.etag);
        assert!(body_bytes(not_modified).await.is_empty());

        let changed = send(&app, conditional("\"something-else\"")).await;
        assert_eq!(changed.status(), StatusCode::OK);
        assert_eq!(body_bytes(changed).await, asset.body);
    }
}

#[tokio::test]
async fn unknown_paths_get_the_html_404_page() {
    let app = app(&dead_url());
    for uri in [
        "/nope",
        "/static/missing.js",
        "/static/../Cargo.toml",
        "/index.html/x",
        "/metrics",
    ] {
        let response = send(&app, get_req(uri)).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "text/html; charset=utf-8"
        );
        let html = String::from_utf8(body_bytes(response).await).unwrap();
        assert!(html.contains("Page not found"), "{uri}");
        assert!(html.len() < 2048, "the 404 page should stay small");
    }
    // Under /api, callers get JSON.
    let response = send(&app, get_req("/api/")).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: ErrorBody = json(response).await;
    assert_eq!(body.error, "not found");
}

#[tokio::test]
async fn only_plain_api_paths_reach_the_upstream() {
    let upstream = Upstream::start().await;
    let app = app(&upstream.url);
    for uri in [
        "/health/../metrics",
        "/metrics",
        "/api/../metrics",
        "/api/%2e%2e/metrics",
        "/api/%2E%2E/%2e%2e/metrics",
        "/api/.%2e/metrics",
        "/api/..%2fmetrics",
        "/api/x/..%5c..%5cmetrics",
        "/api//metrics",
        "/api/%252e%252e/metrics",
        "/api/a%00b",
        "/apix",
        "/api",
    ] {
        let response = send(&app, get_req(uri)).await;
        assert!(
            matches!(
                response.status(),
                StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND
            ),
            "{uri}: {}",
            response.status()
        );
    }
    // The frontend's own /health is answered locally, not proxied.
    let response = send(&app, get_req("/health")).await;
    let _: HealthResponse = json(response).await;
    assert_eq!(upstream.seen(), Vec::<String>::new());

    // A plain one does, with its query.
    let response = send(&app, get_req("/api/unknown-thing?a=1&b=%20")).await;
    assert_eq!(response.status(), StatusCode::IM_A_TEAPOT);
    assert_eq!(upstream.seen(), ["/api/unknown-thing?a=1&b=%20"]);

    let bad = send(&app, get_req("/api/%2e%2e/metrics")).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let body: ErrorBody = json(bad).await;
    assert_eq!(body.error, "invalid path");
    assert!(body.detail.contains("dot segment"), "{}", body.detail);
}

#[tokio::test]
async fn the_request_and_answer_cross_with_only_the_allowed_headers() {
    let upstream = Upstream::start().await;
    let app = app(&upstream.url);
    let body = r#"{"option":"dogs"}"#;
    let request = Request::builder()
        .method(Method::POST)
        .uri("/api/echo?x=1")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, body.len())
        .header(header::ACCEPT, "application/json")
        .header("Idempotency-Key", "0b6b3a3c-2f0e-4f55-9a43-9a4a1b2c3d4e")
        .header(header::IF_NONE_MATCH, "\"e0\"")
        .header(header::COOKIE, "session=secret")
        .header(header::AUTHORIZATION, "Bearer secret")
        .header("x-forwarded-host", "evil.example")
        .body(Body::from(body))
        .unwrap();
    let response = send(&app, request).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let headers = response.headers().clone();
    assert_eq!(headers[header::ETAG], "\"e1\"");
    assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
    assert_eq!(headers[header::RETRY_AFTER], "7");
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    assert!(headers.get(header::SET_COOKIE).is_none());
    assert!(headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none());
    // Our policy replaces the upstream's.
    assert_security_headers(&headers, "proxied");

    let echoed: serde_json::Value = json(response).await;
    assert_eq!(echoed["method"], "POST");
    assert_eq!(echoed["uri"], "/api/echo?x=1");
    assert_eq!(echoed["body"], body);
    let sent = echoed["headers"].as_object().unwrap();
    assert_eq!(sent["content-type"], "application/json");
    assert_eq!(sent["content-length"], body.len().to_string());
    assert_eq!(sent["accept"], "application/json");
    assert_eq!(
        sent["idempotency-key"],
        "0b6b3a3c-2f0e-4f55-9a43-9a4a1b2c3d4e"
    );
    assert_eq!(sent["if-none-match"], "\"e0\"");
    for secret in ["cookie", "authorization", "x-forwarded-host"] {
        assert!(!sent.contains_key(secret), "{secret} was forwarded");
    }

    // A streamed body of unknown length crosses too.
    let chunks = futures::stream::iter(["{\"option\":", "\"cats\"}"].map(Ok::<_, std::io::Error>));
    let request = Request::builder()
        .method(Method::PUT)
        .uri("/api/echo")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(chunks))
        .unwrap();
    let echoed: serde_json::Value = json(send(&app, request).await).await;
    assert_eq!(echoed["method"], "PUT");
    assert_eq!(echoed["body"], r#"{"option":"cats"}"#);

    // HEAD and GET carry no body.
    let echoed: serde_json::Value = json(send(&app, get_req("/api/echo")).await).await;
    assert_eq!(echoed["body"], "");
    assert!(
        !echoed["headers"]
            .as_object()
            .unwrap()
            .contains_key("transfer-encoding")
    );
}

#[tokio::test]
async fn oversized_bodies_and_odd_methods_are_refused_before_the_upstream() {
    let upstream = Upstream::start().await;
    let app = app(&upstream.url);
    let big = vec![b'x'; crate::proxy::MAX_REQUEST_BODY + 1];
    let response = send(
        &app,
        Request::builder()
            .method(Method::POST)
            .uri("/api/echo")
            .header(header::CONTENT_LENGTH, big.len())
            .body(Body::from(big.clone()))
            .unwrap(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let _: ErrorBody = json(response).await;
    assert!(upstream.seen().is_empty());

    // Without a declared length the limit still holds.
    let chunks = futures::stream::iter(
        big.chunks(4096)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let response = send(
        &app,
        Request::builder()
            .method(Method::POST)
            .uri("/api/echo")
            .body(Body::from_stream(chunks))
            .unwrap(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let response = send(
        &app,
        Request::builder()
            .method(Method::TRACE)
            .uri("/api/echo")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(
        response.headers()[header::ALLOW]
            .to_str()
            .unwrap()
            .contains("POST")
    );
}

#[tokio::test]
async fn upstream_down_is_a_quick_502_json() {
    let app = app(&dead_url());
    for uri in ["/api/results", "/api/results/stream", "/api/vote"] {
        let started = Instant::now();
        let response = send(&app, get_req(uri)).await;
        assert!(started.elapsed() < Duration::from_secs(3), "{uri} hung");
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY, "{uri}");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        assert!(response.headers().contains_key(header::RETRY_AFTER));
        let body: ErrorBody = json(response).await;
        assert_eq!(body.error, "api unavailable");
        assert!(
            !body.detail.contains("127.0.0.1"),
            "internals leaked: {}",
            body.detail
        );
    }
}

#[tokio::test]
async fn a_silent_upstream_is_a_504_not_a_hang() {
    let upstream = Upstream::start().await;
    let mut settings = Settings::for_tests(&upstream.url);
    settings.response_timeout = Duration::from_millis(300);
    let app = router(AppState::new(&settings).unwrap());
    let started = Instant::now();
    let response = send(&app, get_req("/api/silent")).await;
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(response.status(), StatusCode::GATEWAY_TIMEOUT);
    let body: ErrorBody = json(response).await;
    assert_eq!(body.error, "api timeout");
}

#[tokio::test]
async fn events_pass_through_as_they_arrive() {
    let upstream = Upstream::start().await;
    let app = app(&upstream.url);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    // The upstream holds the second event until released, so this only succeeds if the first event
    // is forwarded while the stream is still open (a buffering proxy would not even answer).
    let response = tokio::time::timeout_at(deadline, send(&app, get_req(path::RESULTS_STREAM)))
        .await
        .expect("the proxy waited for the end of the stream before answering");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert_eq!(response.headers()["x-accel-buffering"], "no");
    let mut body = response.into_body();
    let mut received = String::new();
    while !received.contains(r#"data: {"n":1}"#) {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .expect("the first event was not passed through while the stream was open")
            .expect("the stream ended before the first event")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            received.push_str(&String::from_utf8_lossy(&data));
        }
    }
    assert!(received.contains(&format!("event: {RESULTS_EVENT}")));
    assert!(!received.contains(r#"{"n":2}"#));

    upstream.release.notify_one();
    let rest = tokio::time::timeout(Duration::from_secs(5), body.collect())
        .await
        .expect("the stream did not end after the upstream's")
        .unwrap()
        .to_bytes();
    assert!(String::from_utf8_lossy(&rest).contains(r#"data: {"n":2}"#));
}

#[tokio::test]
async fn stopping_ends_proxied_event_streams() {
    let upstream = Upstream::start().await;
    let state = AppState::new(&Settings::for_tests(&upstream.url)).unwrap();
    let app = router(state.clone());
    let mut body = tokio::time::timeout(
        Duration::from_secs(5),
        send(&app, get_req(path::RESULTS_STREAM)),
    )
    .await
    .expect("no answer while the stream is open")
    .into_body();
    let first = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .unwrap();
    assert!(first.is_some());
    state.stop_streams();
    let rest = tokio::time::timeout(Duration::from_secs(5), body.collect()).await;
    assert!(rest.is_ok(), "the event stream outlived the stop");
}

#[tokio::test]
async fn health_is_local_and_ready_follows_the_api() {
    let upstream = Upstream::start().await;
    let up = app(&upstream.url);
    let down = app(&dead_url());

    for app in [&up, &down] {
        let response = send(app, get_req("/health")).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: HealthResponse = json(response).await;
        assert_eq!(body.status, "healthy");
        assert!(
            time::OffsetDateTime::parse(
                &body.timestamp,
                &time::format_description::well_known::Rfc3339
            )
            .is_ok()
        );
    }

    let response = send(&up, get_req("/ready")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: ReadyResponse = json(response).await;
    assert!(body.is_ready());
    assert_eq!(body.checks["api"], ReadyResponse::OK);
    assert_eq!(upstream.seen(), ["/health"]);

    let response = send(&down, get_req("/ready")).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: ReadyResponse = json(response).await;
    assert_eq!(body.status, ReadyResponse::NOT_READY);
    assert_eq!(body.checks["api"], "API unreachable");
}

#[tokio::test]
async fn the_application_serves_and_stops_even_with_an_open_event_stream() {
    let upstream = Upstream::start().await;
    let app = crate::Application::build(Settings::for_tests(&upstream.url))
        .await
        .unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));

    let client = reqwest::Client::new();
    let page = client.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_security_headers(page.headers(), "served page");

    let mut events = tokio::time::timeout(
        Duration::from_secs(5),
        client.get(format!("{base}{}", path::RESULTS_STREAM)).send(),
    )
    .await
    .expect("no answer while the stream is open")
    .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), events.chunk())
        .await
        .unwrap()
        .unwrap();
    assert!(first.is_some());

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the stop waited on the open event stream")
        .unwrap()
        .unwrap();
    // The browser's stream was ended, not left hanging.
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = events.chunk().await {}
    })
    .await;
    assert!(end.is_ok());
}
