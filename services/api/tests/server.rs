//! The API as a real server (Application::build on port 0) against real Redis and PostgreSQL: what a
//! vote writes, what results read, the pushed stream, readiness, Redis outages and shutdown.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;

use common::{SseReader, TestApp, eventually};
use redis::AsyncCommands;
use redis::streams::StreamRangeReply;
use reqwest::StatusCode;
use reqwest::header;
use vote_api::routes::routes;
use vote_contract::http::{ReadyResponse, ResultsResponse, VoteResponse, path};
use vote_contract::stream::STREAM;
use vote_contract::{VoteEntry, VoteOptions};
use vote_testkit::{Postgres, Redis, RedisConfig};

/// Entries of the `votes` stream, decoded with the contract's decoder.
async fn stream_entries(redis: &Redis, options: &VoteOptions) -> Vec<(String, VoteEntry)> {
    let mut conn = redis.connection().await;
    let reply: StreamRangeReply = conn.xrange_all(STREAM).await.unwrap();
    reply
        .ids
        .into_iter()
        .map(|e| {
            let entry = VoteEntry::decode_redis(&e.map, options).unwrap();
            (e.id, entry)
        })
        .collect()
}

#[tokio::test]
async fn a_vote_is_one_stream_entry_the_consumer_can_decode() {
    let redis = Redis::start().await;
    let pg = Postgres::start().await;
    let db = pg.create_database().await;
    let options: VoteOptions = "cats,dogs".parse().unwrap();
    let app = TestApp::spawn(common::settings(&redis.url(), &db, "cats,dogs")).await;

    let response = app.vote("dogs").await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: VoteResponse = response.json().await.unwrap();
    assert_eq!(body.message, VoteResponse::MESSAGE);
    assert_eq!(body.option, "dogs");

    let entries = stream_entries(&redis, &options).await;
    assert_eq!(entries.len(), 1);
    let (id, entry) = &entries[0];
    assert_eq!(*id, body.stream_id, "the response names the entry it wrote");
    assert_eq!(entry.option.as_str(), "dogs");
    let now_ms = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    assert!(
        now_ms.abs_diff(entry.timestamp_ms) < 60_000,
        "timestamp is ms since the epoch"
    );

    // Without a key, each request gets its own request id.
    app.vote("dogs").await;
    let entries = stream_entries(&redis, &options).await;
    assert_ne!(entries[0].1.request_id, entries[1].1.request_id);
    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_idempotency_key_becomes_the_request_id() {
    let redis = Redis::start().await;
    let options: VoteOptions = "cats,dogs".parse().unwrap();
    let app = TestApp::spawn(common::settings(
        &redis.url(),
        &common::dead_url("postgres"),
        "cats,dogs",
    ))
    .await;
    let key = uuid::Uuid::new_v4();
    for _ in 0..2 {
        let response = app
            .http
            .post(app.url(path::VOTE))
            .header("Idempotency-Key", key.to_string())
            .json(&serde_json::json!({"option": "cats"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let entries = stream_entries(&redis, &options).await;
    assert_eq!(
        entries.len(),
        2,
        "the API appends retries; the consumer counts each key once"
    );
    assert!(entries.iter().all(|(_, e)| e.request_id == key));
    app.stop().await.unwrap();
}

#[tokio::test]
async fn results_list_every_option_with_percentages_and_honour_etags() {
    let redis = Redis::start().await;
    let pg = Postgres::start().await;
    let db = pg.create_database().await;
    let app = TestApp::spawn(common::settings(&redis.url(), &db, "cats,dogs,fish")).await;

    // Before any vote: every option at zero, straight after start (the API applied the schema).
    let response = app.http.get(app.url(path::RESULTS)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-cache");
    let empty: ResultsResponse = response.json().await.unwrap();
    assert_eq!(empty.total_votes, 0);
    assert_eq!(empty.last_updated, None);
    let zeros: Vec<_> = empty
        .results
        .iter()
        .map(|r| (r.option.as_str(), r.count, r.percentage))
        .collect();
    assert_eq!(
        zeros,
        [("cats", 0, 0.0), ("dogs", 0, 0.0), ("fish", 0, 0.0)]
    );

    let client = pg.connect(&db).await;
    client
        .batch_execute(
            "UPDATE vote_counts SET count = 1, updated_at = now() WHERE option = 'cats';
             UPDATE vote_counts SET count = 2, updated_at = now() WHERE option = 'dogs';
             INSERT INTO vote_counts (option, count) VALUES ('unconfigured', 7);",
        )
        .await
        .unwrap();
    let response = app.http.get(app.url(path::RESULTS)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let etag = response.headers()[header::ETAG]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && !etag.starts_with("W/"),
        "strong etag: {etag}"
    );
    let text = response.text().await.unwrap();
    let results: ResultsResponse = serde_json::from_str(&text).unwrap();
    let lines: Vec<_> = results
        .results
        .iter()
        .map(|r| (r.option.as_str(), r.count, r.percentage))
        .collect();
    assert_eq!(
        lines,
        [("cats", 1, 33.3), ("dogs", 2, 66.7), ("fish", 0, 0.0)],
        "configured options only, in order"
    );
    assert_eq!(results.total_votes, 3);
    assert!(results.last_updated.is_some());
    let raw: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        raw["results"][0].as_object().unwrap().len(),
        3,
        "option, count, percentage"
    );

    // Unchanged: 304 with no body; also for a weak form and a list.
    for validator in [
        etag.clone(),
        format!("W/{etag}"),
        format!("\"nope\", {etag}"),
    ] {
        let response = app
            .http
            .get(app.url(path::RESULTS))
            .header(header::IF_NONE_MATCH, &validator)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_MODIFIED, "{validator}");
        assert_eq!(response.headers()[header::ETAG], etag.as_str());
        assert!(response.bytes().await.unwrap().is_empty());
    }
    // Changed: the old validator no longer matches.
    client
        .batch_execute("UPDATE vote_counts SET count = 3 WHERE option = 'fish'")
        .await
        .unwrap();
    let response = app
        .http
        .get(app.url(path::RESULTS))
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_ne!(response.headers()[header::ETAG], etag.as_str());
    let results: ResultsResponse = response.json().await.unwrap();
    assert_eq!(results.count("fish"), Some(3));
    app.stop().await.unwrap();
}

#[tokio::test]
async fn the_stream_sends_results_on_connect_and_on_each_notified_change() {
    let redis = Redis::start().await;
    let pg = Postgres::start().await;
    let db = pg.create_database().await;
    let app = TestApp::spawn(common::settings(&redis.url(), &db, "cats,dogs")).await;

    let response = app
        .http
        .get(app.url(path::RESULTS_STREAM))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let mut events = SseReader::new(response);
    // A second, idle client must not hold the first one back.
    let _idle = app
        .http
        .get(app.url(path::RESULTS_STREAM))
        .send()
        .await
        .unwrap();

    let first = events.next().await.unwrap();
    assert_eq!(first.event.as_deref(), Some("results"));
    let initial: ResultsResponse = serde_json::from_str(&first.data).unwrap();
    assert_eq!(initial.total_votes, 0);
    assert_eq!(initial.results.len(), 2);

    let client = pg.connect(&db).await;
    client
        .batch_execute("BEGIN; UPDATE vote_counts SET count = count + 5, updated_at = now() WHERE option = 'dogs'; NOTIFY vote_results; COMMIT;")
        .await
        .unwrap();
    let second = events.next().await.unwrap();
    assert_eq!(second.event.as_deref(), Some("results"));
    let updated: ResultsResponse = serde_json::from_str(&second.data).unwrap();
    assert_eq!(updated.count("dogs"), Some(5));
    assert_eq!(updated.total_votes, 5);
    // The same JSON as GET /api/results.
    let polled = app
        .http
        .get(app.url(path::RESULTS))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(polled, second.data);

    // A burst of notifications: the client ends up at the final state, and never sees a stale one
    // after a newer one.
    for _ in 0..20 {
        client
            .batch_execute("BEGIN; UPDATE vote_counts SET count = count + 1 WHERE option = 'cats'; NOTIFY vote_results; COMMIT;")
            .await
            .unwrap();
    }
    let mut last_cats = 0;
    while last_cats < 20 {
        let event = events.next().await.unwrap();
        let results: ResultsResponse = serde_json::from_str(&event.data).unwrap();
        let cats = results.count("cats").unwrap();
        assert!(
            cats > last_cats,
            "counts only move forward: {cats} after {last_cats}"
        );
        last_cats = cats;
    }

    let metrics = app
        .http
        .get(app.url(path::METRICS))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.lines().any(|l| l == "vote_api_sse_clients 2"),
        "{metrics}"
    );
    app.stop().await.unwrap();
}

/// The value of an unlabelled metric.
async fn metric(app: &TestApp, name: &str) -> Option<i64> {
    let text = app
        .http
        .get(app.url(path::METRICS))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn the_stream_listens_again_after_a_postgres_restart() {
    let redis = Redis::start().await;
    let mut pg = Postgres::start().await;
    let db = pg.create_database().await;
    let app = TestApp::spawn(common::settings(&redis.url(), &db, "cats,dogs")).await;
    let response = app
        .http
        .get(app.url(path::RESULTS_STREAM))
        .send()
        .await
        .unwrap();
    let mut events = SseReader::new(response);
    assert!(events.next().await.is_some());
    const FEED_UP: &str = "vote_api_results_feed_up";
    eventually("the feed up", || async {
        (metric(&app, FEED_UP).await == Some(1)).then_some(())
    })
    .await;

    pg.stop().await;
    eventually("the feed to notice", || async {
        (metric(&app, FEED_UP).await == Some(0)).then_some(())
    })
    .await;
    pg.start_again().await;
    eventually("the feed back", || async {
        (metric(&app, FEED_UP).await == Some(1)).then_some(())
    })
    .await;

    // The feed re-read the (unchanged) results when it came back; only a NOTIFY can bring this one.
    let client = pg.connect(&db).await;
    client
        .batch_execute("BEGIN; UPDATE vote_counts SET count = 9 WHERE option = 'cats'; NOTIFY vote_results; COMMIT;")
        .await
        .unwrap();
    let event = events.next().await.unwrap();
    let results: ResultsResponse = serde_json::from_str(&event.data).unwrap();
    assert_eq!(results.count("cats"), Some(9));
    app.stop().await.unwrap();
}

#[tokio::test]
async fn readiness_names_redis_while_it_is_down_and_recovers() {
    let mut redis = Redis::start().await;
    let pg = Postgres::start().await;
    let db = pg.create_database().await;
    let app = TestApp::spawn(common::settings(&redis.url(), &db, "cats,dogs")).await;
    let ready = || async {
        let response = app.http.get(app.url(path::READY)).send().await.unwrap();
        let status = response.status();
        (status, response.json::<ReadyResponse>().await.unwrap())
    };
    let (status, body) = ready().await;
    assert_eq!(status, StatusCode::OK, "{body:?}");
    assert_eq!(body.checks.get("redis").map(String::as_str), Some("ok"));
    assert_eq!(body.checks.get("postgres").map(String::as_str), Some("ok"));

    redis.stop().await;
    let (status, body) = ready().await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body.status, ReadyResponse::NOT_READY);
    assert_ne!(body.checks["redis"], "ok", "{body:?}");
    assert_eq!(
        body.checks["postgres"], "ok",
        "only the failed dependency is named: {body:?}"
    );

    redis.start_again().await;
    eventually("readiness after redis returns", || async {
        let (status, _) = ready().await;
        (status == StatusCode::OK).then_some(())
    })
    .await;
    app.stop().await.unwrap();
}

#[tokio::test]
async fn readiness_names_postgres_while_it_is_down() {
    let redis = Redis::start().await;
    let mut pg = Postgres::start().await;
    let db = pg.create_database().await;
    let app = TestApp::spawn(common::settings(&redis.url(), &db, "cats,dogs")).await;
    pg.stop().await;
    let response = app.http.get(app.url(path::READY)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: ReadyResponse = response.json().await.unwrap();
    assert_ne!(body.checks["postgres"], "ok");
    assert_eq!(body.checks["redis"], "ok");
    let response = app.http.get(app.url(path::RESULTS)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key(header::RETRY_AFTER));

    pg.start_again().await;
    eventually("results after postgres returns", || async {
        let response = app.http.get(app.url(path::RESULTS)).send().await.unwrap();
        (response.status() == StatusCode::OK).then_some(())
    })
    .await;
    app.stop().await.unwrap();
}

#[tokio::test]
async fn a_vote_during_a_redis_outage_is_503_writes_nothing_and_the_api_recovers_alone() {
    let mut redis = Redis::start_with(RedisConfig {
        appendonly: true,
        appendfsync: Some("always".into()),
    })
    .await;
    let options: VoteOptions = "cats,dogs".parse().unwrap();
    let app = TestApp::spawn(common::settings(
        &redis.url(),
        &common::dead_url("postgres"),
        "cats,dogs",
    ))
    .await;
    assert_eq!(app.vote("cats").await.status(), StatusCode::CREATED);

    redis.stop().await;
    for _ in 0..3 {
        let response = app.vote("dogs").await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"], "service unavailable");
    }

    redis.start_again().await;
    // Same API process: it reconnects by itself.
    let response = eventually("a vote accepted after redis returns", || async {
        let response = app.vote("dogs").await;
        (response.status() == StatusCode::CREATED).then_some(response)
    })
    .await;
    let body: VoteResponse = response.json().await.unwrap();
    let entries = stream_entries(&redis, &options).await;
    let votes: Vec<_> = entries
        .iter()
        .map(|(id, e)| (id.as_str(), e.option.as_str()))
        .collect();
    assert_eq!(
        votes,
        [
            (entries[0].0.as_str(), "cats"),
            (body.stream_id.as_str(), "dogs")
        ],
        "nothing from the outage"
    );

    let metrics = app
        .http
        .get(app.url(path::METRICS))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let errors: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("vote_api_redis_errors_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(errors >= 3, "{errors}");
    app.stop().await.unwrap();
}

#[tokio::test]
async fn every_documented_operation_is_served_and_nothing_else() {
    let redis = Redis::start().await;
    let pg = Postgres::start().await;
    let db = pg.create_database().await;
    let app = TestApp::spawn(common::settings(&redis.url(), &db, "cats,dogs")).await;
    let doc: serde_json::Value = app
        .http
        .get(app.url(path::OPENAPI))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let paths = doc["paths"].as_object().unwrap();
    let mut documented = HashMap::new();
    for (p, item) in paths {
        for method in item.as_object().unwrap().keys() {
            documented.insert((p.clone(), method.to_uppercase()), ());
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let mut request = app.http.request(method.clone(), app.url(p));
            if method == reqwest::Method::POST {
                request = request.json(&serde_json::json!({"option": "cats"}));
            }
            let response = request.send().await.unwrap();
            let status = response.status();
            assert!(
                status != StatusCode::NOT_FOUND
                    && status != StatusCode::METHOD_NOT_ALLOWED
                    && status.is_success(),
                "{method} {p} is documented but answers {status}"
            );
        }
        // Any other method on a documented path is a 405, so no method is served undocumented.
        for other in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
            if item.get(other.to_lowercase()).is_none() {
                let method = reqwest::Method::from_bytes(other.as_bytes()).unwrap();
                let response = app.http.request(method, app.url(p)).send().await.unwrap();
                assert_eq!(
                    response.status(),
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{other} {p}"
                );
            }
        }
    }
    for (p, method) in routes() {
        assert!(
            documented.contains_key(&(p.to_owned(), method.to_string())),
            "{method} {p} is served but not documented"
        );
    }
    assert_eq!(documented.len(), routes().len());
    app.stop().await.unwrap();
}

#[tokio::test]
async fn shutdown_ends_open_streams_and_returns() {
    let redis = Redis::start().await;
    let pg = Postgres::start().await;
    let db = pg.create_database().await;
    let app = TestApp::spawn(common::settings(&redis.url(), &db, "cats,dogs")).await;
    let response = app
        .http
        .get(app.url(path::RESULTS_STREAM))
        .send()
        .await
        .unwrap();
    let mut events = SseReader::new(response);
    assert!(events.next().await.is_some());
    let base = app.base.clone();
    // Stops within the deadline despite the open stream (TestApp::stop fails the test otherwise)...
    app.stop().await.unwrap();
    // ...the stream has ended...
    assert_eq!(events.next().await, None);
    // ...and nothing listens any more.
    assert!(
        reqwest::get(format!("{base}{}", path::HEALTH))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn the_api_starts_without_postgres_and_applies_the_schema_when_it_arrives() {
    let redis = Redis::start().await;
    let mut pg = Postgres::start().await;
    let db = pg.create_database().await;
    pg.stop().await;
    let app = TestApp::spawn(common::settings(&redis.url(), &db, "cats,dogs")).await;
    let health = app.http.get(app.url(path::HEALTH)).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(
        app.vote("cats").await.status(),
        StatusCode::CREATED,
        "votes need only redis"
    );
    let response = app.http.get(app.url(path::RESULTS)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);

    pg.start_again().await;
    let results = eventually("results once postgres is up and migrated", || async {
        let response = app.http.get(app.url(path::RESULTS)).send().await.unwrap();
        if response.status() == StatusCode::OK {
            Some(response.json::<ResultsResponse>().await.unwrap())
        } else {
            None
        }
    })
    .await;
    assert_eq!(results.results.len(), 2);
    assert_eq!(results.total_votes, 0);
    app.stop().await.unwrap();
}
