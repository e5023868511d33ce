//! Shared helpers of the consumer's integration tests: real servers from vote-testkit, a consumer
//! running in the test's runtime, stream and database probes, and polling with a deadline.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;
use vote_consumer::Settings;
use vote_consumer::metrics::Metrics;
use vote_contract::VoteEntry;
use vote_contract::VoteOptions;
use vote_contract::stream::{GROUP, STREAM};
use vote_testkit::{Postgres, Redis};

/// How long any poll waits before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A Redis, a PostgreSQL server and a fresh database.
pub struct Servers {
    pub redis: Redis,
    pub pg: Postgres,
    pub db_url: String,
}

impl Servers {
    pub async fn start() -> Self {
        Self::start_with(Redis::start()).await
    }

    pub async fn start_with(redis: impl Future<Output = Redis>) -> Self {
        let (redis, pg) = tokio::join!(redis, Postgres::start());
        let db_url = pg.create_database().await;
        Self { redis, pg, db_url }
    }

    /// Settings for a consumer named `name`, tuned for tests: ephemeral loopback port, short block and
    /// backoff, claiming and trimming only when a test asks for it.
    pub fn settings(&self, name: &str) -> Settings {
        Settings {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            redis_url: self.redis.url(),
            postgres: tokio_postgres::Config::from_str(&self.db_url).unwrap(),
            options: VoteOptions::default(),
            consumer_name: name.to_owned(),
            batch_size: 500,
            block: Duration::from_millis(200),
            claim_min_idle: Duration::from_secs(3600),
            claim_interval: Duration::from_secs(3600),
            trim_interval: Duration::from_secs(3600),
            backoff_min: Duration::from_millis(20),
            backoff_max: Duration::from_millis(300),
        }
    }

    pub async fn redis(&self) -> MultiplexedConnection {
        self.redis.connection().await
    }

    pub async fn db(&self) -> tokio_postgres::Client {
        self.pg.connect(&self.db_url).await
    }
}

/// A consumer running on a task of the test's runtime.
pub struct Running {
    pub port: u16,
    pub metrics: Arc<Metrics>,
    stop: Option<oneshot::Sender<()>>,
    pub handle: JoinHandle<vote_consumer::Result<()>>,
}

impl Running {
    pub async fn start(settings: Settings) -> Self {
        let app = vote_consumer::Application::build(settings).await.unwrap();
        let port = app.port();
        let metrics = app.metrics();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        Self {
            port,
            metrics,
            stop: Some(tx),
            handle,
        }
    }

    /// Requests a graceful stop (what SIGTERM does in the binary).
    pub fn request_stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }

    /// Requests a graceful stop and waits for it.
    pub async fn stop(mut self) {
        self.request_stop();
        tokio::time::timeout(DEADLINE, self.handle)
            .await
            .expect("the consumer stops in time")
            .unwrap()
            .unwrap();
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// Polls `probe` until it returns `Some`, failing the test after [`DEADLINE`].
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub fn vote(option: &str) -> VoteEntry {
    VoteEntry::new(VoteOptions::default().get(option).unwrap().clone())
}

pub fn vote_with_id(option: &str, id: Uuid) -> VoteEntry {
    VoteEntry::with_request_id(VoteOptions::default().get(option).unwrap().clone(), id)
}

/// `XADD votes * <encoded entry>`; returns the id.
pub async fn xadd(conn: &mut MultiplexedConnection, entry: &VoteEntry) -> String {
    xadd_fields(conn, &entry.encode()).await
}

/// Writes all `entries` in one `MULTI`, so a reader sees all of them or none.
pub async fn xadd_atomically(
    conn: &mut MultiplexedConnection,
    entries: &[VoteEntry],
) -> Vec<String> {
    let mut pipe = redis::pipe();
    pipe.atomic();
    for entry in entries {
        let cmd = pipe.cmd("XADD").arg(STREAM).arg("*");
        for (k, v) in entry.encode() {
            cmd.arg(k).arg(v);
        }
    }
    pipe.query_async(conn).await.unwrap()
}

pub async fn xadd_fields(conn: &mut MultiplexedConnection, fields: &[(&str, String)]) -> String {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(STREAM).arg("*");
    for (k, v) in fields {
        cmd.arg(*k).arg(v);
    }
    cmd.query_async(conn).await.unwrap()
}

/// The counts table as a map.
pub async fn counts(db: &tokio_postgres::Client) -> BTreeMap<String, i64> {
    db.query("SELECT option, count FROM vote_counts", &[])
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// Sum of counts and number of processed request ids (equal when counting is consistent).
pub async fn totals(db: &tokio_postgres::Client) -> (i64, i64) {
    try_totals(db).await.unwrap()
}

/// [`totals`], or the error (tables not there yet, server down).
pub async fn try_totals(db: &tokio_postgres::Client) -> Result<(i64, i64), tokio_postgres::Error> {
    let row = db
        .query_one(
            "SELECT (SELECT coalesce(sum(count), 0)::bigint FROM vote_counts), \
                    (SELECT count(*) FROM processed_votes)",
            &[],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}

/// `(pending, lag)` of the consumer group (lag: entries not yet delivered).
pub async fn group_state(conn: &mut MultiplexedConnection) -> (u64, u64) {
    let stats = vote_consumer::streams::group_stats(conn).await.unwrap();
    (stats.pending, stats.lag)
}

/// Waits until the group has delivered and acknowledged everything.
pub async fn wait_all_acked(conn: &MultiplexedConnection) {
    eventually("every entry acknowledged", || {
        let mut conn = conn.clone();
        async move { (group_state(&mut conn).await == (0, 0)).then_some(()) }
    })
    .await;
}

/// Waits until the counts table sums to `total`.
pub async fn wait_total(db: &tokio_postgres::Client, total: i64) {
    eventually(&format!("{total} votes counted"), || async {
        try_totals(db)
            .await
            .ok()
            .filter(|t| t.0 >= total)
            .map(|_| ())
    })
    .await;
    assert_eq!(totals(db).await, (total, total), "counted exactly once");
}

/// Pending entries of `consumer` in the group.
pub async fn pending_of(conn: &mut MultiplexedConnection, consumer: &str) -> u64 {
    let reply: redis::streams::StreamInfoConsumersReply = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg(STREAM)
        .arg(GROUP)
        .query_async(conn)
        .await
        .unwrap();
    reply
        .consumers
        .iter()
        .find(|c| c.name == consumer)
        .map_or(0, |c| c.pending as u64)
}

/// Creates the group the way the consumer does (for tests that read before a consumer runs).
pub async fn create_group(conn: &mut MultiplexedConnection) {
    vote_consumer::streams::ensure_group(conn).await.unwrap();
}

/// The value of a metric line `name value` in the OpenMetrics text.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let (n, v) = l.rsplit_once(' ')?;
        (n == name).then(|| v.parse().ok())?
    })
}
