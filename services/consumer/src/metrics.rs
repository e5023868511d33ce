//! Prometheus metrics of the consumer, served on `/metrics` in the OpenMetrics text format.
//!
//! Invariant: counters only count what was committed and acknowledged (a batch retried after a
//! failure is counted once, when it succeeds); the stream gauges are refreshed from Redis at scrape
//! time, so they are never older than the scrape unless Redis is unreachable.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::streams::GroupStats;

/// `Content-Type` of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = Vec<(String, String)>;

/// Every metric, registered under the `vote_consumer_` prefix.
pub struct Metrics {
    registry: Registry,
    /// Entries of `votes` not yet delivered to the group.
    pub lag: Gauge,
    /// Entries delivered to the group and not yet acknowledged.
    pub pending: Gauge,
    /// Entries in `votes` (acknowledged entries stay until trimmed).
    pub stream_length: Gauge,
    /// Entries in `votes:dead`.
    pub dead_letter_length: Gauge,
    /// Votes newly counted.
    pub processed: Counter,
    /// Votes skipped because their request id was already counted.
    pub duplicates_skipped: Counter,
    /// Entries moved to `votes:dead`.
    pub dead_lettered: Counter,
    /// Entries acknowledged (votes, duplicates, dead letters and vanished entries).
    pub acknowledged: Counter,
    /// Entries claimed from consumers that stopped without acknowledging them.
    pub claimed: Counter,
    /// Entries removed from `votes` because every group had acknowledged them.
    pub trimmed: Counter,
    /// Seconds from reading a batch to acknowledging it (retries included).
    pub batch_duration: Histogram,
    /// 1 while the dependency (`redis`, `postgres`) answers, 0 while the consumer is backing off.
    pub dependency_up: Family<Labels, Gauge>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("processed", &self.processed.get())
            .field("dead_lettered", &self.dead_lettered.get())
            .finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("vote_consumer");
        let metrics = Self {
            lag: Gauge::default(),
            pending: Gauge::default(),
            stream_length: Gauge::default(),
            dead_letter_length: Gauge::default(),
            processed: Counter::default(),
            duplicates_skipped: Counter::default(),
            dead_lettered: Counter::default(),
            acknowledged: Counter::default(),
            claimed: Counter::default(),
            trimmed: Counter::default(),
            // 1 ms to ~16 s.
            batch_duration: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
            dependency_up: Family::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "lag",
            "Entries of the votes stream not yet delivered to the consumer group",
            metrics.lag.clone(),
        );
        r.register(
            "pending",
            "Entries delivered to the consumer group and not yet acknowledged",
            metrics.pending.clone(),
        );
        r.register(
            "stream_length",
            "Entries in the votes stream",
            metrics.stream_length.clone(),
        );
        r.register(
            "dead_letter_length",
            "Entries in the dead-letter stream",
            metrics.dead_letter_length.clone(),
        );
        r.register(
            "processed",
            "Votes counted (each request id once)",
            metrics.processed.clone(),
        );
        r.register(
            "duplicates_skipped",
            "Votes skipped because their request id was already counted",
            metrics.duplicates_skipped.clone(),
        );
        r.register(
            "dead_lettered",
            "Malformed entries moved to the dead-letter stream",
            metrics.dead_lettered.clone(),
        );
        r.register(
            "acknowledged",
            "Stream entries acknowledged",
            metrics.acknowledged.clone(),
        );
        r.register(
            "claimed",
            "Entries claimed from consumers that left them pending",
            metrics.claimed.clone(),
        );
        r.register(
            "trimmed",
            "Entries trimmed after every group acknowledged them",
            metrics.trimmed.clone(),
        );
        r.register(
            "batch_duration_seconds",
            "Time from reading a batch to acknowledging it",
            metrics.batch_duration.clone(),
        );
        r.register(
            "dependency_up",
            "Whether a dependency answers (1) or the consumer is backing off (0)",
            metrics.dependency_up.clone(),
        );
        Self {
            registry,
            ..metrics
        }
    }

    pub fn set_group_stats(&self, stats: &GroupStats) {
        let gauge = |g: &Gauge, v: u64| {
            g.set(i64::try_from(v).unwrap_or(i64::MAX));
        };
        gauge(&self.lag, stats.lag);
        gauge(&self.pending, stats.pending);
        gauge(&self.stream_length, stats.stream_length);
        gauge(&self.dead_letter_length, stats.dead_letter_length);
    }

    pub fn set_dependency_up(&self, dependency: &str, up: bool) {
        self.dependency_up
            .get_or_create(&vec![("dependency".to_owned(), dependency.to_owned())])
            .set(i64::from(up));
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_every_metric_under_the_prefix() {
        let m = Metrics::new();
        m.processed.inc_by(3);
        m.set_group_stats(&GroupStats {
            lag: 7,
            pending: 2,
            stream_length: 9,
            dead_letter_length: 1,
        });
        m.set_dependency_up("redis", true);
        m.batch_duration.observe(0.01);
        let text = m.encode();
        for line in [
            "vote_consumer_processed_total 3",
            "vote_consumer_lag 7",
            "vote_consumer_pending 2",
            "vote_consumer_stream_length 9",
            "vote_consumer_dead_letter_length 1",
            "vote_consumer_duplicates_skipped_total 0",
            "vote_consumer_dead_lettered_total 0",
            "vote_consumer_dependency_up{dependency=\"redis\"} 1",
            "vote_consumer_batch_duration_seconds_count 1",
            "# EOF",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing in\n{text}"
            );
        }
    }
}
