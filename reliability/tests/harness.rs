//! The suite's own parts against real servers: the load generator's ledger matches what reached the
//! stream, a Redis outage shows as 503 with Retry-After and recovers, and the audit catches a lost
//! vote, a double count and a vote nobody sent in the real schema (so it can fail).
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use vote_contract::settings::{Env, var};
use vote_contract::stream::STREAM;
use vote_reliability::audit;
use vote_reliability::load::{self, Answer, LoadConfig, Progress, Voter};
use vote_testkit::{Postgres, Redis};

fn env(redis: &Redis, db: &str) -> Env {
    Env::from_pairs([
        (var::PORT, "0".to_owned()),
        (var::REDIS_URL, redis.url()),
        (var::DATABASE_URL, db.to_owned()),
        (var::POD_NAME, "harness-test".to_owned()),
        (var::LOG_LEVEL, "warn".to_owned()),
    ])
}

struct Services {
    api: String,
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Services {
    async fn start(redis: &Redis, db: &str, consumer: bool) -> Self {
        let stop = CancellationToken::new();
        let settings = vote_api::Settings::from_env(&env(redis, db)).unwrap();
        let app = vote_api::Application::build(settings).await.unwrap();
        let api = format!("http://127.0.0.1:{}", app.port());
        let mut tasks = vec![tokio::spawn({
            let stop = stop.clone();
            async move { app.run_until_stopped(stop.cancelled_owned()).await.unwrap() }
        })];
        if consumer {
            let settings = vote_consumer::Settings::from_env(&env(redis, db)).unwrap();
            let app = vote_consumer::Application::build(settings).await.unwrap();
            tasks.push(tokio::spawn({
                let stop = stop.clone();
                async move { app.run_until_stopped(stop.cancelled_owned()).await.unwrap() }
            }));
        }
        Self { api, stop, tasks }
    }

    async fn stop(self) {
        self.stop.cancel();
        for t in self.tasks {
            t.await.unwrap();
        }
    }
}

fn options() -> Vec<String> {
    vec!["cats".to_owned(), "dogs".to_owned()]
}

#[tokio::test]
async fn the_ledger_holds_exactly_what_reached_the_stream() {
    let redis = Redis::start().await;
    let pg = Postgres::start().await;
    let db = pg.create_database().await;
    let services = Services::start(&redis, &db, false).await;
    let voter = Voter::new(&services.api, 8).unwrap();
    let mut config = LoadConfig::new(300);
    config.concurrency = 8;
    let progress = Progress::default();
    let report = load::run(&voter, &options(), &config, &progress).await;
    assert_eq!(report.ledger.acknowledged_count(), 300);
    assert_eq!(progress.acknowledged(), 300);
    assert_eq!(report.count(|a| *a == Answer::Created), 300);

    let mut con = redis.connection().await;
    let entries: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
        .arg(STREAM)
        .arg("-")
        .arg("+")
        .query_async(&mut con)
        .await
        .unwrap();
    let in_stream: HashSet<Uuid> = entries
        .ids
        .iter()
        .map(|e| Uuid::parse_str(&e.get::<String>("request_id").unwrap()).unwrap())
        .collect();
    let acked: HashSet<Uuid> = report.ledger.acknowledged_ids().into_iter().collect();
    assert_eq!(in_stream, acked);
    services.stop().await;
}

#[tokio::test]
async fn an_outage_is_503_with_retry_after_then_recovers() {
    let mut redis = Redis::start().await;
    let pg = Postgres::start().await;
    let db = pg.create_database().await;
    let services = Services::start(&redis, &db, false).await;
    let voter = Voter::new(&services.api, 4).unwrap();
    redis.stop().await;
    let mut config = LoadConfig::new(4);
    config.concurrency = 2;
    config.retries = 0;
    let report = load::run(&voter, &options(), &config, &Progress::default()).await;
    assert_eq!(report.ledger.acknowledged_count(), 0);
    assert!(
        report
            .attempts
            .iter()
            .all(|a| a.answer == Answer::Unavailable { retry_after: true }),
        "{:?}",
        report.attempts
    );
    redis.start_again().await;
    // Retries after Retry-After carry the votes through once Redis is back.
    config.retries = 20;
    let report = load::run(&voter, &options(), &config, &Progress::default()).await;
    assert_eq!(report.ledger.acknowledged_count(), 4);
    services.stop().await;
}

#[tokio::test]
async fn the_audit_passes_a_clean_store_and_names_each_breach() {
    let redis = Redis::start().await;
    let pg = Postgres::start().await;
    let db = pg.create_database().await;
    let services = Services::start(&redis, &db, true).await;
    let voter = Voter::new(&services.api, 8).unwrap();
    let report = load::run(
        &voter,
        &options(),
        &LoadConfig::new(200),
        &Progress::default(),
    )
    .await;
    let ids = report.ledger.acknowledged_ids();
    assert!(
        audit::wait_recorded(&db, &ids, Duration::from_secs(60), None)
            .await
            .is_some()
    );
    assert!(audit::wait_drained(&redis.url(), Duration::from_secs(30)).await);
    services.stop().await;

    let client = audit::connect(&db).await.unwrap();
    let none = HashSet::new();
    let clean = audit::audit(&client, &report.ledger, &none).await.unwrap();
    assert!(clean.is_clean(), "{clean:?}");
    assert_eq!(
        (clean.acknowledged, clean.counted, clean.recorded),
        (200, 200, 200)
    );

    // A vote lost: its row and its count gone.
    let (lost_id, lost_option) = report
        .ledger
        .acknowledged()
        .next()
        .map(|(i, o)| (*i, o.to_owned()))
        .unwrap();
    client
        .execute(
            "DELETE FROM processed_votes WHERE request_id = $1",
            &[&lost_id],
        )
        .await
        .unwrap();
    client
        .execute(
            "UPDATE vote_counts SET count = count - 1 WHERE option = $1",
            &[&lost_option],
        )
        .await
        .unwrap();
    let a = audit::audit(&client, &report.ledger, &none).await.unwrap();
    assert_eq!((a.lost, a.doubled), (1, 0), "{a:?}");

    // A double count: the count above its rows.
    client
        .execute(
            "UPDATE vote_counts SET count = count + 1 WHERE option = $1",
            &[&lost_option],
        )
        .await
        .unwrap();
    let a = audit::audit(&client, &report.ledger, &none).await.unwrap();
    assert_eq!((a.lost, a.doubled), (1, 1), "{a:?}");

    // A vote nobody sent.
    client
        .execute(
            "INSERT INTO processed_votes (request_id, option, stream_id, voted_at) VALUES ($1, $2, '0-1', now())",
            &[&Uuid::new_v4(), &lost_option],
        )
        .await
        .unwrap();
    let a = audit::audit(&client, &report.ledger, &none).await.unwrap();
    assert_eq!((a.unknown, a.doubled), (1, 0), "{a:?}");
    assert!(!a.is_clean());
}
