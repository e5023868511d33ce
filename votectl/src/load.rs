//! Load runs: many votes at a fixed concurrency, an HDR latency histogram, and an audit that every
//! vote the API acknowledged with 201 was counted.
//!
//! Invariants:
//! - The votes per option are exact (largest-remainder rounding of the mix), so the audit can compare
//!   per option, not just in total.
//! - Each vote carries its own `Idempotency-Key`, kept across its retries, so a retry of a request the
//!   API had in fact accepted is counted once: the audit can never be passed by double counting, and
//!   retries can never cause it.
//! - A vote counts as acknowledged only on a 201; a vote whose every attempt failed is not expected to
//!   be counted (though it may be, if the API accepted it before the connection broke).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::ProgressBar;
use serde::Serialize;
use uuid::Uuid;
use vote_contract::http::{ErrorBody, ResultsResponse};

use crate::api::{Api, VoteReply, root_cause};

/// Weights per option, as given by `--mix cats=30,dogs=70`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix(pub Vec<(String, u64)>);

impl std::str::FromStr for Mix {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut weights: Vec<(String, u64)> = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (option, weight) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?} is not OPTION=WEIGHT (e.g. cats=30,dogs=70)"))?;
            let option = option.trim().to_owned();
            let weight: u64 = weight.trim().parse().map_err(|_| {
                format!("the weight of {option:?} is not a whole number: {weight:?}")
            })?;
            if weights.iter().any(|(o, _)| *o == option) {
                return Err(format!("{option:?} is listed twice"));
            }
            weights.push((option, weight));
        }
        if weights.is_empty() {
            return Err("no options given (e.g. cats=30,dogs=70)".to_owned());
        }
        if weights.iter().all(|(_, w)| *w == 0) {
            return Err("every weight is 0".to_owned());
        }
        Ok(Self(weights))
    }
}

impl Mix {
    /// Exactly `count` votes split by weight (largest remainder), in the mix's order.
    pub fn split(&self, count: u64) -> Vec<(String, u64)> {
        let total: u128 = self.0.iter().map(|(_, w)| u128::from(*w)).sum();
        let mut shares: Vec<(String, u64, u128)> = self
            .0
            .iter()
            .map(|(o, w)| {
                let exact = u128::from(count) * u128::from(*w);
                let share = u64::try_from(exact / total).unwrap_or(u64::MAX);
                (o.clone(), share, exact % total)
            })
            .collect();
        let assigned: u64 = shares.iter().map(|(_, s, _)| s).sum();
        let mut order: Vec<usize> = (0..shares.len()).collect();
        // Largest remainder first; ties in mix order.
        order.sort_by(|a, b| shares[*b].2.cmp(&shares[*a].2).then(a.cmp(b)));
        for i in order
            .into_iter()
            .take(usize::try_from(count - assigned).unwrap_or(0))
        {
            shares[i].1 += 1;
        }
        shares.into_iter().map(|(o, s, _)| (o, s)).collect()
    }
}

/// The option of each vote in sending order, interleaved evenly (smooth weighted round robin), so
/// the mix holds at every point of the run, not just at its end.
pub fn schedule(counts: &[(String, u64)]) -> Vec<u16> {
    let total: u64 = counts.iter().map(|(_, c)| c).sum();
    let mut current: Vec<i128> = vec![0; counts.len()];
    let mut order = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for _ in 0..total {
        for (i, (_, c)) in counts.iter().enumerate() {
            current[i] += i128::from(*c);
        }
        let (best, _) = current
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0)))
            .unwrap_or((0, &0));
        current[best] -= i128::from(total);
        order.push(u16::try_from(best).unwrap_or(0));
    }
    order
}

/// How to send.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub concurrency: usize,
    pub request_timeout: Duration,
    /// Extra attempts after a transport error or a 5xx, with the same idempotency key.
    pub retries: u32,
}

/// What happened while sending.
#[derive(Debug)]
pub struct LoadReport {
    /// Acknowledged (201) votes per option, in plan order.
    pub acknowledged: Vec<(String, u64)>,
    /// Votes whose every attempt failed, by last reason.
    pub failed: BTreeMap<String, u64>,
    /// Attempts beyond the first.
    pub retried: u64,
    pub elapsed: Duration,
    /// Microseconds from first attempt to 201, per acknowledged vote.
    pub latency: Histogram<u64>,
}

impl LoadReport {
    pub fn acknowledged_total(&self) -> u64 {
        self.acknowledged.iter().map(|(_, n)| n).sum()
    }

    pub fn failed_total(&self) -> u64 {
        self.failed.values().sum()
    }

    /// Acknowledged votes per second of the run.
    pub fn throughput(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let acked = self.acknowledged_total() as f64;
        acked / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// The API refused a vote outright (4xx): sending more would only repeat it.
#[derive(Debug, thiserror::Error)]
#[error("the API refused a vote for {option:?} ({status}){detail}")]
pub struct Refused {
    pub option: String,
    pub status: reqwest::StatusCode,
    pub detail: String,
    pub body: Option<ErrorBody>,
}

struct Worker {
    acknowledged: Vec<u64>,
    failed: BTreeMap<String, u64>,
    retried: u64,
    latency: Histogram<u64>,
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 10 min at 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("constant histogram bounds are valid")
}

/// Sends the votes of `counts` with `config.concurrency` workers.
pub async fn run(
    api: &Api,
    counts: &[(String, u64)],
    config: &LoadConfig,
    progress: &ProgressBar,
) -> Result<LoadReport, Refused> {
    let order = Arc::new(schedule(counts));
    let options: Arc<Vec<String>> = Arc::new(counts.iter().map(|(o, _)| o.clone()).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..config.concurrency.max(1) {
        let (api, order, options, next, stop, progress, config) = (
            api.clone(),
            order.clone(),
            options.clone(),
            next.clone(),
            stop.clone(),
            progress.clone(),
            config.clone(),
        );
        tasks.spawn(async move {
            let mut w = Worker {
                acknowledged: vec![0; options.len()],
                failed: BTreeMap::new(),
                retried: 0,
                latency: histogram(),
            };
            while !stop.load(Ordering::Relaxed) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&index) = order.get(i) else { break };
                let index = usize::from(index);
                let option = &options[index];
                let key = Uuid::new_v4();
                let sent = Instant::now();
                let mut attempt = 0;
                loop {
                    let failure = match api.vote(option, key, config.request_timeout).await {
                        Ok(VoteReply::Recorded(_)) => {
                            let micros =
                                u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                            w.latency.saturating_record(micros.max(1));
                            w.acknowledged[index] += 1;
                            break;
                        }
                        Ok(VoteReply::Rejected { status, body }) => {
                            stop.store(true, Ordering::Relaxed);
                            let detail = body
                                .as_ref()
                                .map(|b| format!(": {}: {}", b.error, b.detail))
                                .unwrap_or_default();
                            return Err(Refused {
                                option: option.clone(),
                                status,
                                detail,
                                body,
                            });
                        }
                        Ok(VoteReply::Failed { status, .. }) => format!("HTTP {status}"),
                        Err(e) => root_cause(&e),
                    };
                    if attempt >= config.retries {
                        *w.failed.entry(failure).or_default() += 1;
                        break;
                    }
                    attempt += 1;
                    w.retried += 1;
                    tokio::time::sleep(Duration::from_millis(50 << attempt.min(6))).await;
                }
                progress.inc(1);
            }
            Ok(w)
        });
    }
    let mut report = LoadReport {
        acknowledged: counts.iter().map(|(o, _)| (o.clone(), 0)).collect(),
        failed: BTreeMap::new(),
        retried: 0,
        elapsed: Duration::ZERO,
        latency: histogram(),
    };
    let mut refused = None;
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(w)) => {
                for (slot, n) in report.acknowledged.iter_mut().zip(w.acknowledged) {
                    slot.1 += n;
                }
                for (reason, n) in w.failed {
                    *report.failed.entry(reason).or_default() += n;
                }
                report.retried += w.retried;
                // Same bounds on both sides: adding cannot fail.
                let _ = report.latency.add(&w.latency);
            }
            Ok(Err(r)) => refused = refused.or(Some(r)),
            Err(join) => {
                *report
                    .failed
                    .entry(format!("worker failed: {join}"))
                    .or_default() += 1;
            }
        }
    }
    report.elapsed = started.elapsed();
    progress.finish_and_clear();
    match refused {
        Some(r) => Err(r),
        None => Ok(report),
    }
}

/// One option's line of the audit.
#[derive(Debug, Clone, Serialize)]
pub struct AuditLine {
    pub option: String,
    pub acknowledged: u64,
    /// Increase of the option's count between before and after the run.
    pub counted: u64,
    /// `counted - acknowledged`: negative means votes were lost.
    pub difference: i64,
}

/// The audit's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Audit {
    pub lines: Vec<AuditLine>,
    /// Acknowledged votes that were not counted by the deadline.
    pub lost: u64,
    /// Counted votes beyond those acknowledged (other clients voting, or votes whose request failed
    /// after the API had accepted them).
    pub extra: u64,
    /// Seconds from the end of sending until the counts reached the acknowledged votes (or the deadline).
    pub settle_seconds: f64,
    pub passed: bool,
}

/// Reads results until they stop changing (two equal readings), for at most `max`, so a backlog from
/// before the run is not credited to it. Returns the last reading.
pub async fn settled_results(api: &Api, max: Duration) -> anyhow::Result<ResultsResponse> {
    let deadline = Instant::now() + max;
    let mut last = api.results().await?;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = api.results().await?;
        if now.results == last.results {
            return Ok(now);
        }
        last = now;
    }
    Ok(last)
}

fn increase(before: &ResultsResponse, after: &ResultsResponse, option: &str) -> u64 {
    after
        .count(option)
        .unwrap_or(0)
        .saturating_sub(before.count(option).unwrap_or(0))
}

/// Waits (until `deadline` passes) for the counts to rise by the acknowledged votes, then compares.
pub async fn audit(
    api: &Api,
    before: &ResultsResponse,
    acknowledged: &[(String, u64)],
    deadline: Duration,
) -> anyhow::Result<Audit> {
    let started = Instant::now();
    let mut after;
    loop {
        after = api.results().await?;
        let complete = acknowledged
            .iter()
            .all(|(o, n)| increase(before, &after, o) >= *n);
        if complete || started.elapsed() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let settle_seconds = started.elapsed().as_secs_f64();
    let lines: Vec<AuditLine> = acknowledged
        .iter()
        .map(|(option, acked)| {
            let counted = increase(before, &after, option);
            AuditLine {
                option: option.clone(),
                acknowledged: *acked,
                counted,
                difference: i64::try_from(i128::from(counted) - i128::from(*acked))
                    .unwrap_or(i64::MIN),
            }
        })
        .collect();
    let lost = lines
        .iter()
        .map(|l| l.acknowledged.saturating_sub(l.counted))
        .sum();
    let extra = lines
        .iter()
        .map(|l| l.counted.saturating_sub(l.acknowledged))
        .sum();
    Ok(Audit {
        lines,
        lost,
        extra,
        settle_seconds,
        passed: lost == 0,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_mix_parses_and_rejects_with_reasons() {
        let mix: Mix = "cats=30, dogs=70".parse().unwrap();
        assert_eq!(mix.0, vec![("cats".into(), 30), ("dogs".into(), 70)]);
        assert!("cats".parse::<Mix>().unwrap_err().contains("OPTION=WEIGHT"));
        assert!(
            "cats=x"
                .parse::<Mix>()
                .unwrap_err()
                .contains("whole number")
        );
        assert!(
            "cats=1,cats=2"
                .parse::<Mix>()
                .unwrap_err()
                .contains("twice")
        );
        assert!(
            "cats=0"
                .parse::<Mix>()
                .unwrap_err()
                .contains("every weight is 0")
        );
    }

    #[test]
    fn splits_are_exact() {
        let mix: Mix = "a=1,b=1,c=1".parse().unwrap();
        assert_eq!(
            mix.split(10),
            vec![("a".into(), 4), ("b".into(), 3), ("c".into(), 3)]
        );
        let mix: Mix = "cats=30,dogs=70".parse().unwrap();
        assert_eq!(
            mix.split(20_000),
            vec![("cats".into(), 6000), ("dogs".into(), 14_000)]
        );
        for count in [0, 1, 7, 999, 100_001] {
            let total: u64 = mix.split(count).iter().map(|(_, n)| n).sum();
            assert_eq!(total, count);
        }
    }

    #[test]
    fn the_schedule_keeps_the_mix_throughout() {
        let counts = vec![("cats".to_owned(), 3), ("dogs".to_owned(), 7)];
        let order = schedule(&counts);
        assert_eq!(order.len(), 10);
        assert_eq!(order.iter().filter(|i| **i == 0).count(), 3);
        // No long runs of one option: the first half already holds a fair share of cats.
        assert!(order[..5].iter().filter(|i| **i == 0).count() >= 1);
    }
}
