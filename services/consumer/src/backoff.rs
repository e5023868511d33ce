//! Capped exponential backoff with jitter, and the up/down state of a dependency.
//!
//! Invariant: a dependency logs one line when it goes down and one when it comes back, never one per
//! retry; the delay between attempts doubles from `min` up to `max` and resets on success.

use std::time::{Duration, Instant};

use crate::metrics::Metrics;

/// Delays of `min`, 2·`min`, 4·`min`… capped at `max`, each with up to 25 % random jitter taken off so
/// that replicas losing a server together do not retry in lockstep.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        let min = min.max(Duration::from_millis(1));
        Self {
            min,
            max: max.max(min),
            next: min,
        }
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        let jitter = base.mul_f64(random_fraction() * 0.25);
        base.saturating_sub(jitter)
    }

    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

/// A number in [0, 1) from the OS's randomness (via a v4 UUID).
fn random_fraction() -> f64 {
    let bits = uuid::Uuid::new_v4().as_u128() as u64 >> 11;
    // 53 random bits scaled into [0, 1).
    #[allow(clippy::cast_precision_loss)]
    let fraction = bits as f64 / (1u64 << 53) as f64;
    fraction
}

/// Whether a dependency answers, with the backoff to use while it does not.
#[derive(Debug)]
pub struct Dependency {
    name: &'static str,
    backoff: Backoff,
    down_since: Option<Instant>,
    failures: u64,
    /// What the `dependency_up` gauge shows (unset until the first attempt).
    shown_up: Option<bool>,
}

impl Dependency {
    pub fn new(name: &'static str, backoff: Backoff) -> Self {
        Self {
            name,
            backoff,
            down_since: None,
            failures: 0,
            shown_up: None,
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn is_down(&self) -> bool {
        self.down_since.is_some()
    }

    /// Records a failed attempt and returns how long to wait before the next one. Logs only when the
    /// dependency was up until now.
    pub fn failed(
        &mut self,
        error: &(dyn std::fmt::Display + Sync),
        metrics: &Metrics,
    ) -> Duration {
        self.failures += 1;
        if self.down_since.is_none() {
            self.down_since = Some(Instant::now());
            tracing::warn!(
                dependency = self.name,
                error = %error,
                "{} unavailable; retrying with backoff, nothing is acknowledged until it is back",
                self.name
            );
        } else {
            tracing::debug!(dependency = self.name, error = %error, attempt = self.failures, "still unavailable");
        }
        self.show(false, metrics);
        self.backoff.next_delay()
    }

    /// Records a successful attempt. Logs only when the dependency was down until now.
    pub fn succeeded(&mut self, metrics: &Metrics) {
        if let Some(since) = self.down_since.take() {
            tracing::info!(
                dependency = self.name,
                down_ms = u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX),
                failed_attempts = self.failures,
                "{} available again",
                self.name
            );
            self.backoff.reset();
        }
        self.show(true, metrics);
        self.failures = 0;
    }

    fn show(&mut self, up: bool, metrics: &Metrics) {
        if self.shown_up != Some(up) {
            metrics.set_dependency_up(self.name, up);
            self.shown_up = Some(up);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let min = Duration::from_millis(100);
        let max = Duration::from_secs(5);
        let mut b = Backoff::new(min, max);
        let delays: Vec<Duration> = (0..10).map(|_| b.next_delay()).collect();
        for (i, d) in delays.iter().enumerate() {
            let base = (min * 2u32.pow(u32::try_from(i).unwrap())).min(max);
            assert!(
                *d <= base && *d >= base.mul_f64(0.75),
                "{i}: {d:?} vs {base:?}"
            );
        }
        assert!(delays[9] >= max.mul_f64(0.75));
        b.reset();
        assert!(b.next_delay() <= min);
    }

    #[test]
    fn state_changes_flip_the_gauge() {
        let metrics = Metrics::new();
        let mut dep = Dependency::new(
            "redis",
            Backoff::new(Duration::from_millis(1), Duration::from_millis(2)),
        );
        dep.succeeded(&metrics);
        assert!(
            metrics
                .encode()
                .contains("vote_consumer_dependency_up{dependency=\"redis\"} 1")
        );
        dep.failed(&"refused", &metrics);
        dep.failed(&"refused", &metrics);
        assert!(dep.is_down());
        assert!(
            metrics
                .encode()
                .contains("vote_consumer_dependency_up{dependency=\"redis\"} 0")
        );
        dep.succeeded(&metrics);
        assert!(!dep.is_down());
        assert!(
            metrics
                .encode()
                .contains("vote_consumer_dependency_up{dependency=\"redis\"} 1")
        );
    }
}
