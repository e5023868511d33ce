//! Handlers driven with `oneshot` (no socket): every bad-input case, the JSON error shape, the headers
//! every response carries, CORS, and the OpenAPI document against the route table. A real Redis backs
//! the state, so "changes nothing" is checked where it matters: the stream stays empty.
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use axum::response::Response;
use http_body_util::BodyExt;
use redis::AsyncCommands;
use serde_json::{Value, json};
use tower::ServiceExt;
use vote_api::routes::{REQUEST_ID_HEADER, SECURITY_HEADERS, routes};
use vote_api::{AppState, router};
use vote_contract::http::{ErrorBody, HealthResponse, MAX_BODY_BYTES, path};
use vote_contract::stream::STREAM;
use vote_testkit::Redis;

fn app_for(redis_url: &str) -> axum::Router {
    let settings = common::settings(redis_url, &common::dead_url("postgres"), "cats,dogs");
    router(AppState::new(&settings).unwrap())
}

async fn call(app: &axum::Router, request: Request<Body>) -> Response {
    app.clone().oneshot(request).await.unwrap()
}

async fn json_body(response: Response) -> Value {
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)))
}

fn post_vote(content_type: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut request = Request::post(path::VOTE);
    if let Some(ct) = content_type {
        request = request.header(header::CONTENT_TYPE, ct);
    }
    request.body(body.into()).unwrap()
}

fn assert_security_headers(response: &Response, what: &str) {
    for (name, value) in SECURITY_HEADERS {
        assert_eq!(
            response.headers().get(name).and_then(|v| v.to_str().ok()),
            Some(value),
            "{what}: header {name}"
        );
    }
}

/// Checks status, JSON content type, security headers and the error shape; returns the body.
async fn assert_error(
    response: Response,
    status: StatusCode,
    error: &str,
    what: &str,
) -> ErrorBody {
    assert_eq!(response.status(), status, "{what}");
    assert_security_headers(&response, what);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/json",
        "{what}"
    );
    let body: ErrorBody = serde_json::from_value(json_body(response).await).unwrap();
    assert_eq!(body.error, error, "{what}: {body:?}");
    assert!(!body.detail.is_empty(), "{what}");
    body
}

#[tokio::test]
async fn every_bad_vote_is_a_json_4xx_and_writes_nothing() {
    let redis = Redis::start().await;
    let app = app_for(&redis.url());
    let json = Some("application/json");
    let too_big = format!(
        r#"{{"option":"dogs","pad":"{}"}}"#,
        "x".repeat(MAX_BODY_BYTES)
    );
    let cases: Vec<(&str, Request<Body>, StatusCode, &str, &str)> = vec![
        (
            "unparseable JSON",
            post_vote(json, r#"{"option":"#),
            StatusCode::BAD_REQUEST,
            "malformed json",
            "EOF",
        ),
        (
            "not JSON at all",
            post_vote(json, "dogs"),
            StatusCode::BAD_REQUEST,
            "malformed json",
            "line 1",
        ),
        (
            "empty body",
            post_vote(json, ""),
            StatusCode::BAD_REQUEST,
            "malformed json",
            "EOF",
        ),
        (
            "missing field",
            post_vote(json, "{}"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid request body",
            "missing field `option`",
        ),
        (
            "misnamed field",
            post_vote(json, r#"{"vote":"dogs"}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid request body",
            "missing field `option`",
        ),
        (
            "wrong type",
            post_vote(json, r#"{"option":5}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid request body",
            "invalid type",
        ),
        (
            "array body",
            post_vote(json, r#"["dogs"]"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid request body",
            "an array",
        ),
        (
            "string body",
            post_vote(json, r#""dogs""#),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid request body",
            "a string",
        ),
        (
            "null option",
            post_vote(json, r#"{"option":null}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid request body",
            "invalid type",
        ),
        (
            "unknown option",
            post_vote(json, r#"{"option":"birds"}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid option",
            "\"birds\"",
        ),
        (
            "option in capitals",
            post_vote(json, r#"{"option":"DOGS"}"#),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid option",
            "\"DOGS\"",
        ),
        (
            "text/plain",
            post_vote(Some("text/plain"), r#"{"option":"dogs"}"#),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported media type",
            "application/json",
        ),
        (
            "form encoding",
            post_vote(Some("application/x-www-form-urlencoded"), "option=dogs"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported media type",
            "Content-Type",
        ),
        (
            "no content type",
            post_vote(None, r#"{"option":"dogs"}"#),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported media type",
            "Content-Type",
        ),
        (
            "body over 1 KiB",
            post_vote(json, too_big),
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload too large",
            "1024 bytes",
        ),
        (
            "idempotency key not a UUID",
            Request::post(path::VOTE)
                .header(header::CONTENT_TYPE, "application/json")
                .header("Idempotency-Key", "retry-1")
                .body(Body::from(r#"{"option":"dogs"}"#))
                .unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid header",
            "Idempotency-Key",
        ),
        (
            "idempotency key twice",
            Request::post(path::VOTE)
                .header(header::CONTENT_TYPE, "application/json")
                .header("Idempotency-Key", "0b6b3a3c-2f0e-4f55-9a43-9a4a1b2c3d4e")
                .header("Idempotency-Key", "1b6b3a3c-2f0e-4f55-9a43-9a4a1b2c3d4e")
                .body(Body::from(r#"{"option":"dogs"}"#))
                .unwrap(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid header",
            "more than once",
        ),
    ];
    for (what, request, status, error, detail) in cases {
        let body = assert_error(call(&app, request).await, status, error, what).await;
        assert!(
            body.detail.contains(detail),
            "{what}: detail {:?} lacks {detail:?}",
            body.detail
        );
        if error == "invalid option" {
            assert_eq!(
                body.valid_options.as_deref(),
                Some(&["cats".to_owned(), "dogs".to_owned()][..]),
                "{what}"
            );
        } else {
            assert_eq!(body.valid_options, None, "{what}");
        }
    }
    let mut conn = redis.connection().await;
    let len: u64 = conn.xlen(STREAM).await.unwrap();
    assert_eq!(len, 0, "a refused vote must not reach the stream");
}

#[tokio::test]
async fn a_good_vote_reaches_the_stream_through_oneshot() {
    // The counterpart of the test above: the same app does write when the input is right.
    let redis = Redis::start().await;
    let app = app_for(&redis.url());
    let response = call(
        &app,
        post_vote(Some("application/json"), r#"{"option":"dogs"}"#),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_security_headers(&response, "201");
    let body = json_body(response).await;
    assert_eq!(body["option"], "dogs");
    assert_eq!(body["message"], "Vote recorded successfully");
    let mut conn = redis.connection().await;
    let len: u64 = conn.xlen(STREAM).await.unwrap();
    assert_eq!(len, 1);
}

#[tokio::test]
async fn unknown_routes_and_methods_are_json_errors() {
    let redis = Redis::start().await;
    let app = app_for(&redis.url());

    let response = call(
        &app,
        Request::get("/api/nope?x=1").body(Body::empty()).unwrap(),
    )
    .await;
    let body = assert_error(response, StatusCode::NOT_FOUND, "not found", "404").await;
    assert!(body.detail.contains("/api/nope"), "{body:?}");

    let response = call(&app, Request::get(path::VOTE).body(Body::empty()).unwrap()).await;
    assert_eq!(response.headers()[header::ALLOW], "POST");
    let body = assert_error(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed",
        "GET vote",
    )
    .await;
    assert!(
        body.detail.contains("GET") && body.detail.contains(path::VOTE),
        "{body:?}"
    );

    let response = call(
        &app,
        Request::delete(path::RESULTS).body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(response.headers()[header::ALLOW], "GET");
    assert_error(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed",
        "DELETE results",
    )
    .await;

    let long = format!("/{}", "a".repeat(5000));
    let response = call(
        &app,
        Request::get(long.as_str()).body(Body::empty()).unwrap(),
    )
    .await;
    let body = assert_error(response, StatusCode::NOT_FOUND, "not found", "long path").await;
    assert!(
        body.detail.len() < 200,
        "client input is echoed only in part"
    );
}

#[tokio::test]
async fn health_touches_nothing_and_every_response_has_a_request_id() {
    // Neither Redis nor PostgreSQL exists here: liveness must not depend on them.
    let app = app_for(&common::dead_url("redis"));
    let response = call(
        &app,
        Request::get(path::HEALTH).body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_security_headers(&response, "health");
    let generated = response.headers()[REQUEST_ID_HEADER]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(uuid::Uuid::try_parse(&generated).is_ok(), "{generated}");
    let body: HealthResponse = serde_json::from_value(json_body(response).await).unwrap();
    assert_eq!(body.status, "healthy");
    assert!(
        time::OffsetDateTime::parse(
            &body.timestamp,
            &time::format_description::well_known::Rfc3339
        )
        .is_ok()
    );

    let response = call(
        &app,
        Request::get(path::HEALTH)
            .header(REQUEST_ID_HEADER, "trace-me-42")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(response.headers()[REQUEST_ID_HEADER], "trace-me-42");
}

#[tokio::test]
async fn dependencies_down_give_503_with_retry_after_not_500() {
    let app = app_for(&common::dead_url("redis"));
    let response = call(
        &app,
        post_vote(Some("application/json"), r#"{"option":"dogs"}"#),
    )
    .await;
    assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    let body = assert_error(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "service unavailable",
        "vote, redis down",
    )
    .await;
    assert!(
        !body.detail.contains("127.0.0.1") && !body.detail.to_lowercase().contains("refused"),
        "internals leaked: {body:?}"
    );

    let response = call(
        &app,
        Request::get(path::RESULTS).body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    let body = assert_error(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "service unavailable",
        "results, postgres down",
    )
    .await;
    assert!(
        !body.detail.contains("127.0.0.1"),
        "internals leaked: {body:?}"
    );

    let response = call(&app, Request::get(path::READY).body(Body::empty()).unwrap()).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_security_headers(&response, "ready");
    let body = json_body(response).await;
    assert_eq!(body["status"], "not ready");
    assert_ne!(body["checks"]["redis"], "ok");
    assert_ne!(body["checks"]["postgres"], "ok");
}

#[tokio::test]
async fn cors_answers_configured_origins_only() {
    let app = app_for(&common::dead_url("redis"));
    let preflight = |origin: &str| {
        Request::builder()
            .method(Method::OPTIONS)
            .uri(path::VOTE)
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(
                header::ACCESS_CONTROL_REQUEST_HEADERS,
                "content-type,idempotency-key",
            )
            .body(Body::empty())
            .unwrap()
    };
    for origin in ["http://localhost:8080", "http://localhost:3000"] {
        let response = call(&app, preflight(origin)).await;
        assert!(
            response.status().is_success(),
            "{origin}: {}",
            response.status()
        );
        assert_security_headers(&response, "preflight");
        assert_eq!(
            response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            origin
        );
        let methods = response.headers()[header::ACCESS_CONTROL_ALLOW_METHODS]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(methods.contains("POST"), "{methods}");
        let allowed = response.headers()[header::ACCESS_CONTROL_ALLOW_HEADERS]
            .to_str()
            .unwrap()
            .to_lowercase();
        assert!(allowed.contains("idempotency-key"), "{allowed}");
    }
    for origin in ["http://evil.example", "http://localhost:8081", "null"] {
        let response = call(&app, preflight(origin)).await;
        assert!(
            response
                .headers()
                .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
                .is_none(),
            "{origin} must not be allowed"
        );
        assert_security_headers(&response, "refused preflight");
    }
    let simple = Request::get(path::HEALTH)
        .header(header::ORIGIN, "http://localhost:8080")
        .body(Body::empty())
        .unwrap();
    let response = call(&app, simple).await;
    assert_eq!(
        response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "http://localhost:8080"
    );
    let vary = response
        .headers()
        .get_all(header::VARY)
        .iter()
        .map(|v| v.to_str().unwrap().to_lowercase())
        .collect::<Vec<_>>()
        .join(",");
    assert!(
        vary.contains("origin"),
        "responses that depend on Origin must say so: {vary}"
    );
    let foreign = Request::get(path::HEALTH)
        .header(header::ORIGIN, "http://evil.example")
        .body(Body::empty())
        .unwrap();
    let response = call(&app, foreign).await;
    assert!(
        response
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );
}

#[tokio::test]
async fn cors_origins_come_from_the_settings() {
    let env = vote_contract::settings::Env::from_pairs([
        ("CORS_ORIGINS", "https://vote.example.org"),
        ("REDIS_URL", common::dead_url("redis").as_str()),
    ]);
    let settings = vote_api::Settings::from_env(&env).unwrap();
    let app = router(AppState::new(&settings).unwrap());
    let request = |origin: &str| {
        Request::get(path::HEALTH)
            .header(header::ORIGIN, origin)
            .body(Body::empty())
            .unwrap()
    };
    let response = call(&app, request("https://vote.example.org")).await;
    assert_eq!(
        response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://vote.example.org"
    );
    let response = call(&app, request("http://localhost:8080")).await;
    assert!(
        response
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none(),
        "defaults are replaced, not added to"
    );
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_votes_by_option() {
    let redis = Redis::start().await;
    let app = app_for(&redis.url());
    for _ in 0..2 {
        call(
            &app,
            post_vote(Some("application/json"), r#"{"option":"cats"}"#),
        )
        .await;
    }
    call(
        &app,
        post_vote(Some("application/json"), r#"{"option":"birds"}"#),
    )
    .await;
    call(
        &app,
        Request::get("/no/such/thing").body(Body::empty()).unwrap(),
    )
    .await;
    let response = call(
        &app,
        Request::get(path::METRICS).body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_security_headers(&response, "metrics");
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    for line in [
        r#"vote_api_votes_accepted_total{option="cats"} 2"#,
        r#"vote_api_votes_accepted_total{option="dogs"} 0"#,
        r#"vote_api_http_requests_total{route="/api/vote",method="POST",status="201"} 2"#,
        r#"vote_api_http_requests_total{route="/api/vote",method="POST",status="422"} 1"#,
        r#"vote_api_http_requests_total{route="unmatched",method="GET",status="404"} 1"#,
        "vote_api_redis_errors_total 0",
        "vote_api_sse_clients 0",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert!(
        !text.contains("no/such/thing"),
        "raw paths must not become labels"
    );
}

#[tokio::test]
async fn openapi_document_lists_exactly_the_served_routes() {
    let app = app_for(&common::dead_url("redis"));
    let response = call(
        &app,
        Request::get(path::OPENAPI).body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let doc = json_body(response).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented: Vec<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(p, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |m| (p.clone(), m.to_uppercase()))
        })
        .collect();
    documented.sort();
    let mut served: Vec<(String, String)> = routes()
        .into_iter()
        .map(|(p, m)| (p.to_owned(), m.to_string()))
        .collect();
    served.sort();
    assert_eq!(documented, served);
    // The contract's types are the documented bodies.
    for schema in [
        "VoteRequest",
        "VoteResponse",
        "ResultsResponse",
        "ErrorBody",
        "ReadyResponse",
        "HealthResponse",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "schema {schema}"
        );
    }
    let vote = &doc["paths"][path::VOTE]["post"];
    assert_eq!(
        vote["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        json!("#/components/schemas/VoteRequest")
    );
    for status in ["201", "400", "413", "415", "422", "503"] {
        assert!(
            vote["responses"][status].is_object(),
            "vote response {status} documented"
        );
    }
}
