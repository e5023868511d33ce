//! The API fuzzed from its own OpenAPI document (`GET /api/openapi.json`) with schemathesis, only
//! against 127.0.0.1. Proven: no 5xx for anything schemathesis sends (its `not_a_server_error` check,
//! and the suite's own count of the recorded exchanges), every request went to 127.0.0.1, and the
//! counts moved by exactly the votes the API accepted with a 201 (one per distinct
//! `Idempotency-Key`, one per 201 without a key): invalid requests changed nothing.
//!
//! The SSE route is left out: a stream never ends, so a fuzzer can only time out on it.

use std::collections::HashSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use uuid::Uuid;
use vote_contract::http::{IDEMPOTENCY_KEY, path};
use votectl::local::Component;

use crate::figures::Figures;
use crate::stack::LocalStack;
use crate::{Ctx, audit};

/// What the recorded exchanges (HAR) say.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Exchanges {
    pub requests: u64,
    pub server_errors: u64,
    /// Requests to anything but the API's base URL.
    pub elsewhere: Vec<String>,
    /// Distinct idempotency keys of votes answered 201.
    pub accepted_keys: HashSet<String>,
    /// Votes answered 201 without a key (each a vote of its own).
    pub accepted_without_key: u64,
    pub by_status: std::collections::BTreeMap<u16, u64>,
    /// `METHOD url` of every 201, with how often.
    pub created: std::collections::BTreeMap<String, u64>,
}

impl Exchanges {
    /// The votes the counts must have grown by.
    pub fn expected_votes(&self) -> u64 {
        self.accepted_keys.len() as u64 + self.accepted_without_key
    }
}

/// Reads a HAR document written by schemathesis.
pub fn read_har(text: &str, base: &str) -> anyhow::Result<Exchanges> {
    let har: serde_json::Value = serde_json::from_str(text).context("the HAR file is not JSON")?;
    let entries = har["log"]["entries"]
        .as_array()
        .context("the HAR file has no log.entries")?;
    let mut out = Exchanges::default();
    let vote_url = format!("{base}{}", path::VOTE);
    for entry in entries {
        out.requests += 1;
        let request = &entry["request"];
        let url = request["url"].as_str().unwrap_or_default();
        let status = entry["response"]["status"].as_u64().unwrap_or(0);
        let status = u16::try_from(status).unwrap_or(0);
        *out.by_status.entry(status).or_default() += 1;
        if !url.starts_with(&format!("{base}/")) && url != base {
            out.elsewhere.push(url.to_owned());
        }
        if status >= 500 {
            out.server_errors += 1;
        }
        let is_vote = request["method"].as_str() == Some("POST")
            && url.split('?').next() == Some(vote_url.as_str());
        if status == 201 {
            let method = request["method"].as_str().unwrap_or_default();
            let route = url.strip_prefix(base).unwrap_or(url);
            *out.created.entry(format!("{method} {route}")).or_default() += 1;
        }
        if is_vote && status == 201 {
            let key = request["headers"].as_array().and_then(|headers| {
                headers.iter().find_map(|h| {
                    let name = h["name"].as_str()?;
                    name.eq_ignore_ascii_case(IDEMPOTENCY_KEY)
                        .then(|| h["value"].as_str().unwrap_or_default().to_owned())
                })
            });
            match key {
                // The API parses the key as a UUID; its canonical text is what gets recorded.
                Some(k) => {
                    let k = Uuid::try_parse(k.trim()).map_or(k, |u| u.to_string());
                    out.accepted_keys.insert(k);
                }
                None => out.accepted_without_key += 1,
            }
        }
    }
    Ok(out)
}

pub async fn run(ctx: &Ctx, stack: &LocalStack) -> anyhow::Result<Figures> {
    let size = &ctx.size;
    let mut figures = Figures::new("fuzz");
    let api = stack.url(Component::Api)?;
    anyhow::ensure!(
        api.starts_with("http://127.0.0.1:"),
        "refusing to fuzz {api}: only 127.0.0.1 may be a target"
    );
    let dir = tempfile::tempdir()?;
    let har = dir.path().join("exchanges.har");
    let mut command = tokio::process::Command::new("schemathesis");
    command
        .arg("run")
        .arg(format!("{api}{}", path::OPENAPI))
        .args(["--url", &api])
        .args(["--checks", "not_a_server_error"])
        .args(["--max-examples", &size.fuzz_examples.to_string()])
        .args(["--max-time", &size.fuzz_max_time.as_secs().to_string()])
        .args(["--seed", "20240607", "--workers", "1"])
        .args(["--request-timeout", "10", "--max-redirects", "0"])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--exclude-path", path::RESULTS_STREAM])
        .args(["--suppress-health-check", "all"])
        // Sanitizing would mask the Idempotency-Key values the accounting needs.
        .args(["--output-sanitize", "false"])
        .args(["--report", "har", "--report-har-path"])
        .arg(&har)
        .current_dir(dir.path())
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let started = Instant::now();
    let out = tokio::time::timeout(
        size.fuzz_max_time + Duration::from_secs(120),
        command.output(),
    )
    .await
    .context("schemathesis ran past its time budget")?
    .context("failed to run schemathesis (pip install schemathesis)")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Its closing lines, less the report file names (temporary paths, noise in a report).
    let summary: Vec<&str> = stdout
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.contains("Reports:") && !l.contains("HAR:"))
        .rev()
        .take(6)
        .collect();
    figures.note(format!(
        "schemathesis {} in {:.0}s; its last lines: {}",
        out.status,
        started.elapsed().as_secs_f64(),
        summary.into_iter().rev().collect::<Vec<_>>().join(" | ")
    ));
    if !out.status.success() {
        let tail: Vec<&str> = stdout.lines().rev().take(60).collect();
        figures.check(
            false,
            format!(
                "schemathesis found failures:\n{}\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
                String::from_utf8_lossy(&out.stderr)
            ),
        );
    }
    let text = std::fs::read_to_string(&har)
        .with_context(|| format!("schemathesis wrote no {}", har.display()))?;
    let exchanges = read_har(&text, &api)?;
    figures.note(format!(
        "{} requests; by status: {}",
        exchanges.requests,
        exchanges
            .by_status
            .iter()
            .map(|(s, n)| format!("{s} ×{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    figures.note(format!("201 answers: {:?}", exchanges.created));
    figures.check(exchanges.requests > 0, "schemathesis sent no request");
    figures.check(
        exchanges.server_errors == 0,
        format!("{} responses were 5xx", exchanges.server_errors),
    );
    figures.check(
        exchanges.elsewhere.is_empty(),
        format!(
            "requests went elsewhere than {api}: {:?}",
            exchanges.elsewhere.iter().take(3).collect::<Vec<_>>()
        ),
    );

    let fuzz_end = Instant::now();
    let drained = audit::wait_drained(&stack.url(Component::Redis)?, size.settle).await;
    figures.check(drained, "the consumer did not drain the stream");
    let client = audit::connect(&stack.url(Component::Postgres)?).await?;
    let counted: i64 = client
        .query_one(
            "SELECT coalesce(sum(count), 0)::bigint FROM vote_counts",
            &[],
        )
        .await?
        .get(0);
    let rows: i64 = client
        .query_one("SELECT count(*) FROM processed_votes", &[])
        .await?
        .get(0);
    let counted = u64::try_from(counted).unwrap_or(0);
    let rows = u64::try_from(rows).unwrap_or(0);
    let keys: Vec<Uuid> = exchanges
        .accepted_keys
        .iter()
        .filter_map(|k| Uuid::try_parse(k).ok())
        .collect();
    let keys_recorded = audit::recorded_among(&client, &keys).await?;
    let expected = exchanges.expected_votes();
    figures.sent = exchanges.requests;
    figures.acknowledged = expected;
    figures.counted = counted;
    figures.lost = expected.saturating_sub(counted) + (keys.len() as u64 - keys_recorded);
    figures.doubled = counted.saturating_sub(rows);
    figures.recover = Some(fuzz_end.elapsed());
    figures.note(format!(
        "{} votes accepted (201): {} distinct Idempotency-Keys, {} without a key; counts grew by {counted}, \
         {rows} request ids recorded",
        exchanges.accepted_keys.len() as u64 + exchanges.accepted_without_key,
        exchanges.accepted_keys.len(),
        exchanges.accepted_without_key
    ));
    figures.check(
        counted == expected && rows == expected && keys_recorded == keys.len() as u64,
        format!(
            "counts grew by {counted} ({rows} request ids) but the API accepted {expected} distinct votes: \
             invalid requests changed the counts, or accepted ones were lost"
        ),
    );
    Ok(figures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn har_entries_are_tallied() {
        let base = "http://127.0.0.1:9";
        let text = serde_json::json!({"log": {"entries": [
            {"request": {"method": "POST", "url": "http://127.0.0.1:9/api/vote",
                "headers": [{"name": "Idempotency-Key", "value": "0B6B3A3C-2F0E-4F55-9A43-9A4A1B2C3D4E"}]},
             "response": {"status": 201}},
            {"request": {"method": "POST", "url": "http://127.0.0.1:9/api/vote",
                "headers": [{"name": "idempotency-key", "value": "0b6b3a3c-2f0e-4f55-9a43-9a4a1b2c3d4e"}]},
             "response": {"status": 201}},
            {"request": {"method": "POST", "url": "http://127.0.0.1:9/api/vote", "headers": []},
             "response": {"status": 201}},
            {"request": {"method": "POST", "url": "http://127.0.0.1:9/api/vote", "headers": []},
             "response": {"status": 422}},
            {"request": {"method": "GET", "url": "http://10.0.0.1/api/results", "headers": []},
             "response": {"status": 500}}
        ]}})
        .to_string();
        let x = read_har(&text, base).unwrap();
        assert_eq!(x.requests, 5);
        assert_eq!(x.server_errors, 1);
        assert_eq!(x.elsewhere, ["http://10.0.0.1/api/results"]);
        assert_eq!(x.accepted_keys.len(), 1, "one key, two spellings");
        assert_eq!(x.accepted_without_key, 1);
        assert_eq!(x.expected_votes(), 2);
        assert!(read_har("{}", base).is_err());
    }
}
