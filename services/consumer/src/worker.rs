//! The consume loop: read a batch, count it in one transaction, then acknowledge it.
//!
//! Invariants:
//! - An entry is acknowledged only after the transaction that counted it committed (or, for a
//!   malformed entry, together with its dead letter). A failure in between leaves it pending, and a
//!   pending entry is read again: by this consumer after a reconnect or a restart (its own pending
//!   list is re-read from `0` first), or by another one through `XAUTOCLAIM`. Counting is idempotent
//!   per request id, so reading an entry again never counts it twice.
//! - While Redis or PostgreSQL is down the current batch is held and retried with capped backoff;
//!   nothing new is read until it is done.
//! - On shutdown the worker finishes the batch in hand, then re-reads and finishes whatever its
//!   interrupted blocking read delivered, then returns. Only a dependency that is down at that moment
//!   makes it leave entries pending (never acknowledged without being counted).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use vote_contract::VoteOptions;

use crate::backoff::{Backoff, Dependency};
use crate::entries::{RawEntry, route};
use crate::metrics::Metrics;
use crate::settings::Settings;
use crate::store::Store;
use crate::streams::{StreamClient, StreamId};

/// The worker stopped because shutdown was requested while it waited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

/// Where a batch came from (for logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    New,
    OwnPending,
    Claimed,
}

/// The loop's tuning, from [`Settings`].
#[derive(Debug, Clone)]
pub struct Tuning {
    pub batch_size: usize,
    pub block: Duration,
    pub claim_min_idle: Duration,
    pub claim_interval: Duration,
    pub trim_interval: Duration,
}

impl From<&Settings> for Tuning {
    fn from(s: &Settings) -> Self {
        Self {
            batch_size: s.batch_size.max(1),
            block: s.block,
            claim_min_idle: s.claim_min_idle,
            claim_interval: s.claim_interval,
            trim_interval: s.trim_interval,
        }
    }
}

/// Reads the stream as one consumer of the group and counts what it reads.
pub struct Worker {
    streams: StreamClient,
    store: Store,
    options: VoteOptions,
    metrics: Arc<Metrics>,
    tuning: Tuning,
    redis: Dependency,
    postgres: Dependency,
    shutdown: CancellationToken,
    /// Whether the schema is known to be in place on the current server.
    migrated: bool,
    /// `Some(after)`: re-read own pending entries above `after` before anything new.
    pending_from: Option<StreamId>,
    /// New entries read while the previous batch was being committed (only when that batch was full,
    /// i.e. there is a backlog): reading overlaps counting, which is what makes draining fast.
    prefetched: Option<Vec<RawEntry>>,
    claim_cursor: StreamId,
    next_claim: Instant,
    next_trim: Instant,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("streams", &self.streams)
            .field("tuning", &self.tuning)
            .finish_non_exhaustive()
    }
}

impl Worker {
    pub fn new(
        settings: &Settings,
        streams: StreamClient,
        store: Store,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) -> Self {
        let backoff = Backoff::new(settings.backoff_min, settings.backoff_max);
        let now = Instant::now();
        Self {
            streams,
            store,
            options: settings.options.clone(),
            metrics,
            tuning: Tuning::from(settings),
            redis: Dependency::new("redis", backoff.clone()),
            postgres: Dependency::new("postgres", backoff),
            shutdown,
            migrated: false,
            pending_from: Some(StreamId::ZERO),
            prefetched: None,
            claim_cursor: StreamId::ZERO,
            next_claim: now,
            next_trim: now + settings.trim_interval,
        }
    }

    /// Runs until the shutdown token is cancelled, then finishes what was delivered and returns.
    pub async fn run(mut self) {
        tracing::info!(
            consumer = self.streams.consumer(),
            batch_size = self.tuning.batch_size,
            "consumer started"
        );
        if self.prepare_schema().await.is_ok() {
            while self.step().await.is_ok() {}
            self.drain_on_shutdown().await;
        }
        tracing::info!(consumer = self.streams.consumer(), "consumer stopped");
    }

    /// Migrates (under the contract's advisory lock) before anything is read, so that the tables and
    /// the seeded options exist as soon as the consumer runs.
    async fn prepare_schema(&mut self) -> Result<(), Stopped> {
        loop {
            match self.store.migrate().await {
                Ok(()) => {
                    self.postgres.succeeded(&self.metrics);
                    self.migrated = true;
                    return Ok(());
                }
                Err(e) => self.postgres_failed(&e).await?,
            }
        }
    }

    /// One unit of work: a page of own pending entries, of claimed entries, a trim, or a blocking read.
    async fn step(&mut self) -> Result<(), Stopped> {
        if self.shutdown.is_cancelled() {
            return Err(Stopped);
        }
        if let Some(after) = self.pending_from {
            let entries = match self
                .streams
                .read_pending(after, self.tuning.batch_size)
                .await
            {
                Ok(entries) => entries,
                Err(e) => return self.redis_failed(&e).await,
            };
            self.redis.succeeded(&self.metrics);
            match entries.last() {
                None => self.pending_from = None,
                Some(last) => {
                    self.pending_from = Some(last.id.parse().unwrap_or(after));
                    tracing::info!(
                        entries = entries.len(),
                        "re-reading entries this consumer read before but did not acknowledge"
                    );
                    self.process(entries, Source::OwnPending).await?;
                }
            }
            return Ok(());
        }

        let now = Instant::now();
        if now >= self.next_claim {
            return self.claim_page().await;
        }
        if now >= self.next_trim {
            match self.streams.trim().await {
                Ok(trimmed) => {
                    self.redis.succeeded(&self.metrics);
                    self.metrics.trimmed.inc_by(trimmed.removed);
                    if trimmed.removed > 0 {
                        tracing::debug!(removed = trimmed.removed, min_id = ?trimmed.min_id.map(|i| i.to_string()), "trimmed acknowledged entries");
                    }
                    self.next_trim = now + self.tuning.trim_interval;
                }
                Err(e) => return self.redis_failed(&e).await,
            }
            return Ok(());
        }

        if let Some(entries) = self.prefetched.take() {
            return self.process(entries, Source::New).await;
        }
        let read = tokio::select! {
            read = self.streams.read_new(self.tuning.batch_size, Some(self.tuning.block)) => read,
            () = self.shutdown.cancelled() => {
                // The read keeps running on the server: end it now, so that the final re-read of
                // pending entries (queued behind it) sees whatever it delivered.
                self.streams.unblock().await;
                return Err(Stopped);
            }
        };
        match read {
            Ok(entries) => {
                self.redis.succeeded(&self.metrics);
                if entries.is_empty() {
                    return Ok(());
                }
                self.process(entries, Source::New).await
            }
            Err(e) => self.redis_failed(&e).await,
        }
    }

    /// One page of `XAUTOCLAIM`; once the whole pending list was scanned, the next scan waits for
    /// the claim interval.
    async fn claim_page(&mut self) -> Result<(), Stopped> {
        let claimed = self
            .streams
            .autoclaim(
                self.tuning.claim_min_idle,
                self.claim_cursor,
                self.tuning.batch_size,
            )
            .await;
        let (next, entries) = match claimed {
            Ok(claimed) => claimed,
            Err(e) => return self.redis_failed(&e).await,
        };
        self.redis.succeeded(&self.metrics);
        self.claim_cursor = next;
        if next == StreamId::ZERO {
            self.next_claim = Instant::now() + self.tuning.claim_interval;
        }
        if entries.is_empty() {
            return Ok(());
        }
        tracing::info!(
            entries = entries.len(),
            min_idle_ms = u64::try_from(self.tuning.claim_min_idle.as_millis()).unwrap_or(u64::MAX),
            "claimed entries another consumer left unacknowledged"
        );
        self.metrics
            .claimed
            .inc_by(u64::try_from(entries.len()).unwrap_or(u64::MAX));
        self.process(entries, Source::Claimed).await
    }

    /// Counts a batch, then dead-letters and acknowledges it, retrying each half until it succeeds
    /// (or shutdown is requested while waiting, which leaves the batch pending).
    async fn process(&mut self, entries: Vec<RawEntry>, source: Source) -> Result<(), Stopped> {
        let started = Instant::now();
        let routed = route(entries, &self.options);
        for letter in &routed.dead {
            tracing::warn!(
                source_id = %letter.source_id,
                reason = %letter.reason,
                "malformed entry moved to the dead-letter stream"
            );
        }

        // A full batch of new entries means more are waiting: read the next batch while this one
        // is committed (only on the first attempt, the usual case).
        let mut first_attempt = None;
        if source == Source::New
            && routed.ack.len() >= self.tuning.batch_size
            && self.migrated
            && self.prefetched.is_none()
        {
            let (committed, next) = tokio::join!(
                self.store.commit(&routed.votes),
                self.streams.read_new(self.tuning.batch_size, None),
            );
            match next {
                Ok(next) if !next.is_empty() => self.prefetched = Some(next),
                Ok(_) => {}
                Err(e) => {
                    // Whatever that read delivered is pending under this consumer: re-read it.
                    tracing::debug!(error = %e, "read-ahead failed");
                    self.pending_from = Some(StreamId::ZERO);
                }
            }
            first_attempt = Some(committed);
        }

        let committed = loop {
            let attempt = match first_attempt.take() {
                Some(attempt) => attempt,
                None => {
                    if !routed.votes.is_empty() && !self.migrated {
                        if let Err(e) = self.store.migrate().await {
                            self.postgres_failed(&e).await?;
                            continue;
                        }
                        self.migrated = true;
                    }
                    self.store.commit(&routed.votes).await
                }
            };
            match attempt {
                Ok(committed) => {
                    if !routed.votes.is_empty() {
                        self.postgres.succeeded(&self.metrics);
                    }
                    break committed;
                }
                Err(e) => self.postgres_failed(&e).await?,
            }
        };

        loop {
            match self.streams.finish(&routed.dead, &routed.ack).await {
                Ok(()) => {
                    self.redis.succeeded(&self.metrics);
                    break;
                }
                Err(e) => self.redis_failed(&e).await?,
            }
        }

        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        self.metrics.processed.inc_by(committed.counted);
        self.metrics.duplicates_skipped.inc_by(committed.duplicates);
        self.metrics.dead_lettered.inc_by(count(routed.dead.len()));
        self.metrics.acknowledged.inc_by(count(routed.ack.len()));
        self.metrics
            .batch_duration
            .observe(started.elapsed().as_secs_f64());
        tracing::debug!(
            ?source,
            entries = routed.ack.len(),
            counted = committed.counted,
            duplicates = committed.duplicates,
            dead_lettered = routed.dead.len(),
            vanished = routed.deleted.len(),
            elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "batch done"
        );
        Ok(())
    }

    /// After a Redis failure the connection is gone; whatever its last read delivered is pending
    /// under this consumer's name, so the pending list is re-read first once Redis is back.
    async fn redis_failed(
        &mut self,
        error: &(dyn std::fmt::Display + Sync),
    ) -> Result<(), Stopped> {
        self.pending_from = Some(StreamId::ZERO);
        // Read-ahead entries are pending too; the re-read returns them (holding them as well would
        // count them twice, harmlessly but needlessly).
        self.prefetched = None;
        let delay = self.redis.failed(error, &self.metrics);
        self.pause(delay).await
    }

    /// After a PostgreSQL failure the server may be a new one (restored, recreated): prepare the
    /// schema again before the next commit. Migrating is idempotent.
    async fn postgres_failed(
        &mut self,
        error: &(dyn std::fmt::Display + Sync),
    ) -> Result<(), Stopped> {
        self.migrated = false;
        let delay = self.postgres.failed(error, &self.metrics);
        self.pause(delay).await
    }

    async fn pause(&self, delay: Duration) -> Result<(), Stopped> {
        tokio::select! {
            () = tokio::time::sleep(delay) => Ok(()),
            () = self.shutdown.cancelled() => Err(Stopped),
        }
    }

    /// A blocking read interrupted by shutdown may still have delivered entries: they are pending
    /// under this consumer, so read them once more and finish them. The read queues behind the
    /// interrupted one on the same connection (which [`StreamClient::unblock`] ended), so it sees
    /// everything that one delivered.
    async fn drain_on_shutdown(&mut self) {
        if self.redis.is_down() {
            tracing::warn!(
                "stopping while Redis is unavailable; unacknowledged entries stay pending"
            );
            return;
        }
        let mut after = StreamId::ZERO;
        loop {
            let entries = match self
                .streams
                .read_pending(after, self.tuning.batch_size)
                .await
            {
                Ok(entries) => entries,
                Err(e) => {
                    tracing::warn!(error = %e, "stopping without re-reading pending entries; they stay pending");
                    return;
                }
            };
            let Some(last) = entries.last() else { return };
            after = last.id.parse().unwrap_or(StreamId::ZERO);
            if self.process(entries, Source::OwnPending).await.is_err() {
                tracing::warn!(
                    "stopping while a dependency is unavailable; unacknowledged entries stay pending"
                );
                return;
            }
        }
    }
}
