//! Prometheus metrics of the API, served at `/metrics` in the OpenMetrics text format.
//!
//! Invariants: label values come from a bounded set (route templates, not raw paths; configured
//! options, not client input), so a client cannot grow the series count. Every configured option's
//! vote counter exists from start, at 0.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use vote_contract::VoteOptions;

/// Label of requests that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OptionLabels {
    pub option: String,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.25 ms .. ~4 s
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

/// The API's metrics and the registry they are encoded from.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily,
    votes: Family<OptionLabels, Counter>,
    redis_errors: Counter,
    sse_clients: Gauge,
    results_updates: Counter,
    results_feed_up: Gauge,
}

impl Metrics {
    pub fn new(options: &VoteOptions) -> Self {
        let mut registry = Registry::with_prefix("vote_api");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: HistogramFamily = Family::new_with_constructor(latency_histogram);
        let votes = Family::<OptionLabels, Counter>::default();
        let redis_errors = Counter::default();
        let sse_clients = Gauge::default();
        let results_updates = Counter::default();
        let results_feed_up = Gauge::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route template, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to the response head, by route template",
            latency.clone(),
        );
        registry.register(
            "votes_accepted",
            "Votes appended to the stream, by option",
            votes.clone(),
        );
        registry.register(
            "redis_errors",
            "Redis commands that failed or timed out",
            redis_errors.clone(),
        );
        registry.register(
            "sse_clients",
            "Clients connected to the results stream",
            sse_clients.clone(),
        );
        registry.register(
            "results_updates",
            "Changed results pushed to stream clients",
            results_updates.clone(),
        );
        registry.register(
            "results_feed_up",
            "1 while the PostgreSQL LISTEN connection is established",
            results_feed_up.clone(),
        );
        for option in options {
            let _ = votes.get_or_create(&OptionLabels {
                option: option.to_string(),
            });
        }
        Self {
            registry,
            requests,
            latency,
            votes,
            redis_errors,
            sse_clients,
            results_updates,
            results_feed_up,
        }
    }

    pub fn observe_request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_owned(),
                method: method.to_owned(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: route.to_owned(),
            })
            .observe(elapsed.as_secs_f64());
    }

    pub fn vote_accepted(&self, option: &str) {
        self.votes
            .get_or_create(&OptionLabels {
                option: option.to_owned(),
            })
            .inc();
    }

    pub fn redis_error(&self) {
        self.redis_errors.inc();
    }

    pub fn results_updated(&self) {
        self.results_updates.inc();
    }

    pub fn set_results_feed_up(&self, up: bool) {
        self.results_feed_up.set(i64::from(up));
    }

    /// Counts a connected stream client until the returned guard is dropped.
    pub fn sse_client(self: &Arc<Self>) -> SseClientGuard {
        self.sse_clients.inc();
        SseClientGuard(Arc::clone(self))
    }

    pub fn sse_clients(&self) -> i64 {
        self.sse_clients.get()
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Decrements the connected-clients gauge when the stream it belongs to ends.
#[derive(Debug)]
pub struct SseClientGuard(Arc<Metrics>);

impl Drop for SseClientGuard {
    fn drop(&mut self) {
        self.0.sse_clients.dec();
    }
}
