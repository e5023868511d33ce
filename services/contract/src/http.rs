//! JSON bodies, paths and header names of the public HTTP API, shared by the API (which serves them),
//! the frontend (which proxies them) and votectl (which calls them).
//!
//! Invariant: results always list every configured option in configured order, zeros included, and
//! percentages are rounded to one decimal (all 0.0 when there are no votes).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::options::VoteOptions;

/// Paths served by the API.
pub mod path {
    pub const VOTE: &str = "/api/vote";
    pub const RESULTS: &str = "/api/results";
    pub const RESULTS_STREAM: &str = "/api/results/stream";
    pub const OPENAPI: &str = "/api/openapi.json";
    pub const HEALTH: &str = "/health";
    pub const READY: &str = "/ready";
    pub const METRICS: &str = "/metrics";
}

/// Request header whose UUID becomes the vote's request id, so a retried request is counted once.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Name of the Server-Sent Event that carries a [`ResultsResponse`].
pub const RESULTS_EVENT: &str = "results";
/// Largest request body the API accepts, in bytes.
pub const MAX_BODY_BYTES: usize = 1024;

/// `POST /api/vote` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VoteRequest {
    /// One of the configured options.
    #[schema(example = "dogs")]
    pub option: String,
}

/// `POST /api/vote` 201 body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VoteResponse {
    #[schema(example = "Vote recorded successfully")]
    pub message: String,
    pub option: String,
    /// Id of the entry in the `votes` stream.
    #[schema(example = "1732590000000-0")]
    pub stream_id: String,
}

impl VoteResponse {
    pub const MESSAGE: &'static str = "Vote recorded successfully";

    pub fn new(option: impl Into<String>, stream_id: impl Into<String>) -> Self {
        Self {
            message: Self::MESSAGE.to_owned(),
            option: option.into(),
            stream_id: stream_id.into(),
        }
    }
}

/// One option's line in the results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OptionResult {
    pub option: String,
    pub count: u64,
    /// Share of all votes, 0–100, one decimal.
    pub percentage: f64,
}

/// `GET /api/results` body, and the data of each `results` SSE event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ResultsResponse {
    pub results: Vec<OptionResult>,
    pub total_votes: u64,
    /// RFC 3339 time of the last counted vote; null before the first.
    pub last_updated: Option<String>,
}

impl ResultsResponse {
    /// Builds results for every configured option; `count` gives each option's count (missing: 0).
    pub fn from_counts(
        options: &VoteOptions,
        count: impl Fn(&str) -> u64,
        last_updated: Option<String>,
    ) -> Self {
        let counts: Vec<(String, u64)> = options
            .iter()
            .map(|o| (o.to_string(), count(o.as_str())))
            .collect();
        let total_votes = counts.iter().map(|(_, c)| c).sum();
        let results = counts
            .into_iter()
            .map(|(option, count)| OptionResult {
                option,
                count,
                percentage: percentage(count, total_votes),
            })
            .collect();
        Self {
            results,
            total_votes,
            last_updated,
        }
    }

    /// The count of `option`, if it is listed.
    pub fn count(&self, option: &str) -> Option<u64> {
        self.results
            .iter()
            .find(|r| r.option == option)
            .map(|r| r.count)
    }
}

/// `count` as a share of `total`, in percent rounded to one decimal; 0.0 when `total` is 0.
pub fn percentage(count: u64, total: u64) -> f64 {
    if total == 0 {
        return 0.0;
    }
    // Precision loss only matters past 2^53 votes.
    #[allow(clippy::cast_precision_loss)]
    let share = count as f64 * 1000.0 / total as f64;
    share.round() / 10.0
}

/// Body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Short machine-friendly summary, e.g. `invalid option`.
    pub error: String,
    /// What was wrong and where, for a person.
    pub detail: String,
    /// With `invalid option`: the options that are accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_options: Option<Vec<String>>,
}

impl ErrorBody {
    pub fn new(error: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            detail: detail.into(),
            valid_options: None,
        }
    }
}

/// `GET /health` body: liveness only, touches no dependency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HealthResponse {
    #[schema(example = "healthy")]
    pub status: String,
    /// RFC 3339 time of the answer.
    pub timestamp: String,
}

/// `GET /ready` body: `status` is `ready` (200) or `not ready` (503); `checks` names each dependency
/// with `ok` or what failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReadyResponse {
    pub status: String,
    pub checks: BTreeMap<String, String>,
}

impl ReadyResponse {
    pub const READY: &'static str = "ready";
    pub const NOT_READY: &'static str = "not ready";
    pub const OK: &'static str = "ok";

    /// `ready` when every check is `ok`.
    pub fn from_checks(checks: BTreeMap<String, String>) -> Self {
        let ready = checks.values().all(|v| v == Self::OK);
        Self {
            status: if ready { Self::READY } else { Self::NOT_READY }.to_owned(),
            checks,
        }
    }

    pub fn is_ready(&self) -> bool {
        self.status == Self::READY
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_list_every_option_with_rounded_percentages() {
        let options: VoteOptions = "cats,dogs,fish".parse().unwrap();
        let r = ResultsResponse::from_counts(
            &options,
            |o| match o {
                "cats" => 1,
                "dogs" => 2,
                _ => 0,
            },
            None,
        );
        assert_eq!(r.total_votes, 3);
        let shares: Vec<_> = r
            .results
            .iter()
            .map(|r| (r.option.as_str(), r.percentage))
            .collect();
        assert_eq!(shares, [("cats", 33.3), ("dogs", 66.7), ("fish", 0.0)]);
    }

    #[test]
    fn no_votes_means_all_zero() {
        let r = ResultsResponse::from_counts(&VoteOptions::default(), |_| 0, None);
        assert_eq!(r.total_votes, 0);
        assert!(
            r.results
                .iter()
                .all(|r| r.percentage == 0.0 && r.count == 0)
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["last_updated"], serde_json::Value::Null);
    }

    #[test]
    fn ready_only_when_every_check_is_ok() {
        let mut checks = BTreeMap::new();
        checks.insert("redis".to_owned(), "ok".to_owned());
        assert!(ReadyResponse::from_checks(checks.clone()).is_ready());
        checks.insert("postgres".to_owned(), "connection refused".to_owned());
        assert!(!ReadyResponse::from_checks(checks).is_ready());
    }

    #[test]
    fn vote_response_has_the_documented_shape() {
        let json = serde_json::to_value(VoteResponse::new("dogs", "1-0")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"message":"Vote recorded successfully","option":"dogs","stream_id":"1-0"})
        );
    }
}
