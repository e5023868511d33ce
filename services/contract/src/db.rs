//! The PostgreSQL schema shared by the consumer (which writes counts) and the API (which reads them),
//! as embedded migrations, plus the few queries both sides and votectl need.
//!
//! Invariants: `vote_counts` holds one row per configured option; `processed_votes` holds one row per
//! counted request id, and a count only ever grows in the same transaction that inserted the request
//! ids it counts, so `sum(vote_counts.count) = count(processed_votes)`. Migrations run under an advisory
//! lock, so replicas starting together never race.

use tokio_postgres::{Client, GenericClient};
use uuid::Uuid;

use crate::options::VoteOptions;

/// Per-option counts: `option TEXT PRIMARY KEY, count BIGINT, updated_at TIMESTAMPTZ`.
pub const COUNTS_TABLE: &str = "vote_counts";
/// Request ids already counted: `request_id UUID PRIMARY KEY, option, stream_id, voted_at, processed_at`.
pub const PROCESSED_TABLE: &str = "processed_votes";
/// Channel the consumer `NOTIFY`s in each transaction that changed a count; the API `LISTEN`s.
pub const NOTIFY_CHANNEL: &str = "vote_results";
/// Key of the advisory lock held while migrating ("votes" in ASCII).
pub const MIGRATION_LOCK_KEY: i64 = 0x76_6f_74_65_73;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Why the schema could not be prepared or read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database error: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] refinery::Error),
    #[error("count for {option:?} is negative ({count})")]
    NegativeCount { option: String, count: i64 },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Applies pending migrations under the advisory lock, then seeds every option of `options` at 0.
pub async fn migrate(client: &mut Client, options: &VoteOptions) -> Result<()> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await?;
    let outcome = embedded::migrations::runner()
        .set_grouped(false)
        .run_async(client)
        .await;
    // Unlock whatever happened; the session ends with the client anyway.
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY])
        .await;
    outcome?;
    unlocked?;
    seed_options(&*client, options).await
}

/// Inserts every option with count 0 unless present. Options removed from the configuration keep their
/// rows (and votes) but are no longer shown.
pub async fn seed_options(client: &impl GenericClient, options: &VoteOptions) -> Result<()> {
    let names = options.names();
    client
        .execute(
            "INSERT INTO vote_counts (option, count) SELECT unnest($1::text[]), 0 \
             ON CONFLICT (option) DO NOTHING",
            &[&names],
        )
        .await?;
    Ok(())
}

/// Every row of the counts table and the time of the latest change (RFC 3339), if any vote was counted.
pub async fn read_counts(
    client: &impl GenericClient,
) -> Result<(Vec<(String, u64)>, Option<String>)> {
    let rows = client
        .query(
            "SELECT option, count, \
             to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), \
             count > 0 FROM vote_counts",
            &[],
        )
        .await?;
    let mut counts = Vec::with_capacity(rows.len());
    let mut latest: Option<String> = None;
    for row in rows {
        let option: String = row.get(0);
        let count: i64 = row.get(1);
        let updated: String = row.get(2);
        let counted: bool = row.get(3);
        let count = u64::try_from(count).map_err(|_| Error::NegativeCount {
            option: option.clone(),
            count,
        })?;
        // Fixed-width UTC timestamps order lexically.
        if counted && latest.as_ref().is_none_or(|l| *l < updated) {
            latest = Some(updated);
        }
        counts.push((option, count));
    }
    Ok((counts, latest))
}

/// Whether `request_id` was counted, and for which option.
pub async fn processed_option(
    client: &impl GenericClient,
    request_id: Uuid,
) -> Result<Option<String>> {
    let row = client
        .query_opt(
            "SELECT option FROM processed_votes WHERE request_id = $1",
            &[&request_id],
        )
        .await?;
    Ok(row.map(|r| r.get(0)))
}
