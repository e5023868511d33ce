//! The suite's load generator: votes with their own `Idempotency-Key`s, every attempt's outcome kept
//! with its time, so an audit can follow each vote by its request id and a scenario can tell *when*
//! the API answered what.
//!
//! Invariants:
//! - Each vote's key is chosen before its first attempt and kept across its retries; the [`Ledger`]
//!   knows every key sent, so a counted vote the suite never sent, or sent for another option, is
//!   caught.
//! - A vote is acknowledged only on a 201. A 503 is retried after its `Retry-After`, a transport
//!   error after a short pause, both a bounded number of times; any other status is final.
//! - The run is bounded: `count` votes, each with at most `1 + retries` attempts, each with a timeout.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use uuid::Uuid;
use vote_contract::http::{IDEMPOTENCY_KEY, VoteRequest, path};

/// How to send.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Votes to send.
    pub count: u64,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Votes started per second; `None` sends as fast as the API answers.
    pub rate: Option<f64>,
    /// Extra attempts after a 503 or a transport error.
    pub retries: u32,
    pub request_timeout: Duration,
}

impl LoadConfig {
    pub fn new(count: u64) -> Self {
        Self {
            count,
            concurrency: 32,
            rate: None,
            retries: 60,
            request_timeout: Duration::from_secs(5),
        }
    }
}

/// What one attempt got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 201.
    Created,
    /// 503, and whether it carried a `Retry-After`.
    Unavailable { retry_after: bool },
    /// Any other status.
    Status(u16),
    /// No HTTP answer (refused, reset, timed out).
    Transport(String),
}

/// One attempt and when it was answered.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub at: Instant,
    pub answer: Answer,
}

/// Where a vote ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    Acknowledged,
    /// Every attempt failed; the last answer.
    Failed(Answer),
}

/// Every vote the suite sent, by request id.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    pub votes: HashMap<Uuid, (String, Fate)>,
    /// When each acknowledged vote got its 201.
    pub acked_at: HashMap<Uuid, Instant>,
}

impl Ledger {
    pub fn sent(&self) -> u64 {
        self.votes.len() as u64
    }

    pub fn acknowledged(&self) -> impl Iterator<Item = (&Uuid, &str)> {
        self.votes
            .iter()
            .filter(|(_, (_, f))| *f == Fate::Acknowledged)
            .map(|(id, (o, _))| (id, o.as_str()))
    }

    pub fn acknowledged_count(&self) -> u64 {
        self.acknowledged().count() as u64
    }

    pub fn acknowledged_ids(&self) -> Vec<Uuid> {
        self.acknowledged().map(|(id, _)| *id).collect()
    }

    /// Adds a vote that reached the stream without the API (written to Redis by the suite itself).
    pub fn record_direct(&mut self, id: Uuid, option: &str) {
        self.votes
            .insert(id, (option.to_owned(), Fate::Acknowledged));
    }

    pub fn merge(&mut self, other: Self) {
        self.votes.extend(other.votes);
        self.acked_at.extend(other.acked_at);
    }
}

/// What happened while sending.
#[derive(Debug, Clone)]
pub struct LoadReport {
    pub ledger: Ledger,
    /// Every attempt, in no particular order.
    pub attempts: Vec<Attempt>,
    pub elapsed: Duration,
}

impl LoadReport {
    pub fn count(&self, pred: impl Fn(&Answer) -> bool) -> usize {
        self.attempts.iter().filter(|a| pred(&a.answer)).count()
    }
}

/// Progress of a running load, readable while it runs.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    acknowledged: Arc<AtomicU64>,
    done: Arc<AtomicU64>,
}

impl Progress {
    pub fn acknowledged(&self) -> u64 {
        self.acknowledged.load(Ordering::Relaxed)
    }

    /// Votes finished (acknowledged or given up).
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }
}

/// A client for `POST /api/vote`.
#[derive(Debug, Clone)]
pub struct Voter {
    base: String,
    http: reqwest::Client,
}

impl Voter {
    pub fn new(base: &str, connections: usize) -> reqwest::Result<Self> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(connections)
            .tcp_nodelay(true)
            .no_proxy()
            .connect_timeout(Duration::from_secs(3))
            .build()?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            http,
        })
    }

    /// One attempt; the answer and the `Retry-After` seconds, if any.
    pub async fn vote(&self, option: &str, key: Uuid, timeout: Duration) -> (Answer, Option<u64>) {
        let sent = self
            .http
            .post(format!("{}{}", self.base, path::VOTE))
            .header(IDEMPOTENCY_KEY, key.to_string())
            .json(&VoteRequest {
                option: option.to_owned(),
            })
            .timeout(timeout)
            .send()
            .await;
        match sent {
            Err(e) => (Answer::Transport(root_cause(&e)), None),
            Ok(response) => {
                let status = response.status();
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                // Read the body so the connection goes back to the pool.
                let body = response.bytes().await;
                match (status, body) {
                    (StatusCode::CREATED, Ok(_)) => (Answer::Created, None),
                    // A 201 whose body was cut off: the vote may or may not be in; treat it as not
                    // acknowledged (the audit allows counted-but-unacknowledged votes).
                    (StatusCode::CREATED, Err(e)) => (Answer::Transport(root_cause(&e)), None),
                    (StatusCode::SERVICE_UNAVAILABLE, _) => (
                        Answer::Unavailable {
                            retry_after: retry_after.is_some(),
                        },
                        retry_after,
                    ),
                    (other, _) => (Answer::Status(other.as_u16()), None),
                }
            }
        }
    }
}

/// The innermost cause of a request error, short.
pub fn root_cause(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        return "timed out".to_owned();
    }
    let mut cause: &dyn std::error::Error = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// Sends `config.count` votes cycling through `options`, recording every attempt.
pub async fn run(
    voter: &Voter,
    options: &[String],
    config: &LoadConfig,
    progress: &Progress,
) -> LoadReport {
    let epoch = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let options: Arc<Vec<String>> = Arc::new(options.to_vec());
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..config.concurrency.max(1) {
        let (voter, next, options, config, progress) = (
            voter.clone(),
            next.clone(),
            options.clone(),
            config.clone(),
            progress.clone(),
        );
        tasks.spawn(async move {
            let mut ledger = Ledger::default();
            let mut attempts = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i as u64 >= config.count {
                    break;
                }
                if let Some(rate) = config.rate {
                    let due = epoch + Duration::from_secs_f64(i as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                let option = &options[i % options.len()];
                let key = Uuid::new_v4();
                let mut tries = 0;
                let fate = loop {
                    let (answer, retry_after) =
                        voter.vote(option, key, config.request_timeout).await;
                    attempts.push(Attempt {
                        at: Instant::now(),
                        answer: answer.clone(),
                    });
                    let pause = match &answer {
                        Answer::Created => break Fate::Acknowledged,
                        Answer::Status(_) => break Fate::Failed(answer),
                        Answer::Unavailable { .. } => {
                            Duration::from_secs(retry_after.unwrap_or(1).clamp(1, 5))
                        }
                        Answer::Transport(_) => Duration::from_millis(250),
                    };
                    if tries >= config.retries {
                        break Fate::Failed(answer);
                    }
                    tries += 1;
                    tokio::time::sleep(pause).await;
                };
                if fate == Fate::Acknowledged {
                    ledger.acked_at.insert(key, Instant::now());
                    progress.acknowledged.fetch_add(1, Ordering::Relaxed);
                }
                progress.done.fetch_add(1, Ordering::Relaxed);
                ledger.votes.insert(key, (option.clone(), fate));
            }
            (ledger, attempts)
        });
    }
    let mut report = LoadReport {
        ledger: Ledger::default(),
        attempts: Vec::new(),
        elapsed: Duration::ZERO,
    };
    while let Some(joined) = tasks.join_next().await {
        // A worker only ends by returning; a panic in one is a bug worth surfacing.
        let (ledger, attempts) = joined.expect("a load worker panicked");
        report.ledger.merge(ledger);
        report.attempts.extend(attempts);
    }
    report.elapsed = epoch.elapsed();
    report
}
