//! The vote API as votectl calls it: which URL, the requests, and errors a person can act on.
//!
//! Invariant: a request that cannot reach the API is reported as one line naming the URL and the
//! reason (connection refused, timed out, …) and how to point votectl elsewhere, never as a chain of
//! HTTP-library internals.

use std::time::Duration;

use anyhow::Context;
use reqwest::StatusCode;
use uuid::Uuid;
use vote_contract::http::{
    ErrorBody, IDEMPOTENCY_KEY, ResultsResponse, VoteRequest, VoteResponse, path,
};
use vote_contract::settings::DEFAULT_API_URL;

use crate::local::{Component, Runtime, StateDir};

/// Where the API URL came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag,
    LocalRuntime,
    Default,
}

/// The API base URL: `--api-url`/`VOTECTL_API_URL`, else the local runtime's API, else the contract's
/// default.
pub fn resolve_base(flag: Option<&str>, state: &StateDir) -> anyhow::Result<(String, Source)> {
    if let Some(url) = flag {
        return Ok((normalize(url)?, Source::Flag));
    }
    // An unreadable runtime.json is not fatal here: the default may well be what the user wants.
    if let Ok(Some(runtime)) = Runtime::load(state)
        && let Some(api) = runtime.component(Component::Api)
    {
        return Ok((api.url.clone(), Source::LocalRuntime));
    }
    Ok((DEFAULT_API_URL.to_owned(), Source::Default))
}

/// `url` checked to be an absolute http(s) URL, without a trailing slash.
pub fn normalize(url: &str) -> anyhow::Result<String> {
    let url = url.trim();
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .with_context(|| {
            format!("invalid --api-url {url:?}: it must start with http:// or https://")
        })?;
    anyhow::ensure!(
        !rest.is_empty() && !rest.starts_with('/'),
        "invalid --api-url {url:?}: it has no host"
    );
    Ok(url.trim_end_matches('/').to_owned())
}

/// The innermost cause of a request error, e.g. `connection refused` or `timed out`.
pub fn root_cause(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        return "timed out".to_owned();
    }
    let mut cause: &dyn std::error::Error = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let text = cause.to_string();
    // "Connection refused (os error 111)" reads better without the number.
    let text = text.split(" (os error").next().unwrap_or(&text);
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_lowercase().chain(chars).collect()
    })
}

/// What the API said to a vote.
#[derive(Debug, Clone)]
pub enum VoteReply {
    /// 201.
    Recorded(VoteResponse),
    /// 4xx: the request was refused and will be refused again.
    Rejected {
        status: StatusCode,
        body: Option<ErrorBody>,
    },
    /// 5xx or anything unexpected: worth retrying with the same idempotency key.
    Failed { status: StatusCode, detail: String },
}

/// A client of one API.
#[derive(Debug, Clone)]
pub struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    /// A client keeping up to `connections` idle connections open (one per concurrent caller).
    pub fn new(base: String, connections: usize) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(connections)
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(3))
            .user_agent(concat!("votectl/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("failed to build the HTTP client")?;
        Ok(Self { base, http })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The one-line error for an API that could not be reached.
    pub fn unreachable(&self, err: &reqwest::Error) -> anyhow::Error {
        anyhow::anyhow!(
            "cannot reach the API at {}: {} (is it running? `votectl up --local` starts it; \
             --api-url or VOTECTL_API_URL points elsewhere)",
            self.base,
            root_cause(err)
        )
    }

    /// POST one vote under `key` (the request id: a retry with the same key is counted once).
    pub async fn vote(
        &self,
        option: &str,
        key: Uuid,
        timeout: Duration,
    ) -> Result<VoteReply, reqwest::Error> {
        let response = self
            .http
            .post(self.url(path::VOTE))
            .header(IDEMPOTENCY_KEY, key.to_string())
            .json(&VoteRequest {
                option: option.to_owned(),
            })
            .timeout(timeout)
            .send()
            .await?;
        let status = response.status();
        let bytes = response.bytes().await?;
        if status == StatusCode::CREATED
            && let Ok(body) = serde_json::from_slice::<VoteResponse>(&bytes)
        {
            return Ok(VoteReply::Recorded(body));
        }
        if status.is_client_error() {
            return Ok(VoteReply::Rejected {
                status,
                body: serde_json::from_slice(&bytes).ok(),
            });
        }
        let detail = serde_json::from_slice::<ErrorBody>(&bytes).map_or_else(
            |_| String::from_utf8_lossy(&bytes).chars().take(200).collect(),
            |e| format!("{}: {}", e.error, e.detail),
        );
        Ok(VoteReply::Failed { status, detail })
    }

    /// GET the current results.
    pub async fn results(&self) -> anyhow::Result<ResultsResponse> {
        let response = self
            .http
            .get(self.url(path::RESULTS))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| self.unreachable(&e))?;
        if !status.is_success() {
            let detail = serde_json::from_slice::<ErrorBody>(&bytes).map_or_else(
                |_| String::from_utf8_lossy(&bytes).chars().take(200).collect(),
                |e| format!("{}: {}", e.error, e.detail),
            );
            anyhow::bail!(
                "GET {} answered {status}: {detail}",
                self.url(path::RESULTS)
            );
        }
        serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "failed to parse the answer of GET {} as results",
                self.url(path::RESULTS)
            )
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_normalized() {
        assert_eq!(
            normalize("http://127.0.0.1:8000/").unwrap(),
            "http://127.0.0.1:8000"
        );
        assert!(normalize("127.0.0.1:8000").is_err());
        assert!(normalize("http:///x").is_err());
    }

    #[test]
    fn the_default_applies_without_a_flag_or_runtime() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::new(tmp.path()).unwrap();
        assert_eq!(
            resolve_base(None, &state).unwrap(),
            (DEFAULT_API_URL.to_owned(), Source::Default)
        );
        assert_eq!(
            resolve_base(Some("https://votes.example/"), &state).unwrap(),
            ("https://votes.example".to_owned(), Source::Flag)
        );
    }

    #[tokio::test]
    async fn an_unreachable_api_is_one_clear_line() {
        let port = crate::local::ports::ephemeral().unwrap();
        let api = Api::new(format!("http://127.0.0.1:{port}"), 1).unwrap();
        let err = api
            .vote("dogs", Uuid::new_v4(), Duration::from_secs(2))
            .await
            .unwrap_err();
        let text = api.unreachable(&err).to_string();
        assert!(
            text.starts_with(&format!(
                "cannot reach the API at http://127.0.0.1:{port}: connection refused"
            )),
            "{text}"
        );
    }
}
