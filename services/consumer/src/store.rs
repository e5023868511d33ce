//! The PostgreSQL side: schema preparation and the one transaction that counts a batch.
//!
//! Invariants: a batch is counted in ONE transaction that records its request ids in
//! `processed_votes` (`ON CONFLICT DO NOTHING`) and adds to `vote_counts` only what that insert
//! returned, so a request id delivered twice (in one batch, in two batches, or by two consumers) is
//! counted once. The same transaction `NOTIFY`s when a count changed, so listeners see the change the
//! moment it is visible. A connection that failed is discarded, never reused.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;
use uuid::Uuid;
use vote_contract::VoteOptions;
use vote_contract::db::{self, NOTIFY_CHANNEL};

use crate::entries::Vote;

/// Longest a whole batch transaction may take before it is abandoned (and retried on a new
/// connection): a server that stops answering must not hang the consumer.
pub const COMMIT_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest a connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why PostgreSQL did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot get a connection: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("{0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("{0}")]
    Schema(#[from] db::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What one batch transaction did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Committed {
    /// Votes newly counted.
    pub counted: u64,
    /// Votes whose request id was already counted (or appeared earlier in the same batch).
    pub duplicates: u64,
}

/// Records the batch's request ids, adds the newly recorded ones to the counts and reports how many
/// were new. Rows are locked in a fixed order (request id, then option) so that two consumers
/// committing overlapping batches wait for each other instead of deadlocking.
const COUNT_BATCH: &str = "\
WITH inserted AS (
    INSERT INTO processed_votes (request_id, option, stream_id, voted_at)
    SELECT v.request_id, v.option, v.stream_id, timestamptz 'epoch' + v.ms * interval '1 millisecond'
    FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bigint[]) AS v(request_id, option, stream_id, ms)
    ON CONFLICT (request_id) DO NOTHING
    RETURNING option
), added AS (
    SELECT option, count(*) AS n FROM inserted GROUP BY option
), counted AS (
    INSERT INTO vote_counts (option, count, updated_at)
    SELECT option, n, now() FROM added ORDER BY option
    ON CONFLICT (option) DO UPDATE
        SET count = vote_counts.count + EXCLUDED.count, updated_at = EXCLUDED.updated_at
    RETURNING 1
)
SELECT coalesce(sum(n), 0)::bigint FROM added";

/// A small pool of connections to the votes database.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    options: VoteOptions,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("pool", &self.pool.status())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// A pool over `config`; connects lazily, so it never fails for an unreachable server.
    pub fn new(mut config: tokio_postgres::Config, options: VoteOptions) -> Self {
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("vote-consumer");
        }
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(4)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .expect("a runtime is set, so timeouts are allowed");
        Self { pool, options }
    }

    /// Applies the embedded migrations (under the contract's advisory lock) and seeds every option.
    pub async fn migrate(&self) -> Result<()> {
        let mut client = self.pool.get().await?;
        match db::migrate(&mut client, &self.options).await {
            Ok(()) => Ok(()),
            Err(e) => {
                discard(client);
                Err(e.into())
            }
        }
    }

    /// Counts `votes` in one transaction, `NOTIFY`ing when a count changed.
    pub async fn commit(&self, votes: &[Vote]) -> Result<Committed> {
        if votes.is_empty() {
            return Ok(Committed::default());
        }
        let mut client = self.pool.get().await?;
        let outcome = tokio::time::timeout(COMMIT_TIMEOUT, count_batch(&mut client, votes)).await;
        let outcome = outcome.unwrap_or(Err(Error::Timeout(COMMIT_TIMEOUT)));
        if outcome.is_err() {
            // The connection may be broken or mid-transaction: never hand it out again.
            discard(client);
        }
        outcome
    }

    /// `SELECT 1`, for readiness.
    pub async fn ping(&self) -> Result<()> {
        let client = self.pool.get().await?;
        match client.simple_query("SELECT 1").await {
            Ok(_) => Ok(()),
            Err(e) => {
                discard(client);
                Err(e.into())
            }
        }
    }
}

async fn count_batch(client: &mut deadpool_postgres::Object, votes: &[Vote]) -> Result<Committed> {
    let mut sorted: Vec<&Vote> = votes.iter().collect();
    sorted.sort_unstable_by_key(|v| v.entry.request_id);
    let request_ids: Vec<Uuid> = sorted.iter().map(|v| v.entry.request_id).collect();
    let options: Vec<&str> = sorted.iter().map(|v| v.entry.option.as_str()).collect();
    let stream_ids: Vec<&str> = sorted.iter().map(|v| v.stream_id.as_str()).collect();
    // At most crate::entries::MAX_TIMESTAMP_MS, far below i64::MAX.
    let times: Vec<i64> = sorted
        .iter()
        .map(|v| i64::try_from(v.entry.timestamp_ms).unwrap_or(i64::MAX))
        .collect();

    let tx = client.transaction().await?;
    let statement = tx.prepare_cached(COUNT_BATCH).await?;
    let row = tx
        .query_one(&statement, &[&request_ids, &options, &stream_ids, &times])
        .await?;
    let counted = u64::try_from(row.get::<_, i64>(0)).unwrap_or(0);
    if counted > 0 {
        tx.execute(
            "SELECT pg_notify($1, $2)",
            &[&NOTIFY_CHANNEL, &counted.to_string()],
        )
        .await?;
    }
    tx.commit().await?;
    let total = u64::try_from(votes.len()).unwrap_or(u64::MAX);
    Ok(Committed {
        counted,
        duplicates: total.saturating_sub(counted),
    })
}

/// Takes a connection out of the pool for good: it may be broken or mid-transaction.
fn discard(client: deadpool_postgres::Object) {
    drop(deadpool_postgres::Object::take(client));
}
