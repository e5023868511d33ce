//! The no-loss, no-double audit: every acknowledged vote is looked up by its request id in
//! PostgreSQL, and the per-option counts are compared with the recorded request ids.
//!
//! Invariants checked (any breach fails the scenario):
//! - every acknowledged request id is in `processed_votes`, under the option it was sent for
//!   (lost / misattributed);
//! - each option's count equals its number of recorded request ids (doubled when higher, lost when
//!   lower);
//! - no request id is recorded that the suite never sent (unknown).
//!
//! Votes that were sent but never acknowledged (every attempt failed) may or may not be counted: the
//! API may have appended one before the connection broke. They are reported, never required.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use tokio_postgres::{Client, NoTls};
use uuid::Uuid;
use vote_contract::db::{COUNTS_TABLE, PROCESSED_TABLE};
use vote_contract::stream::{GROUP, STREAM};

use crate::load::{Fate, Ledger};

/// What the store says about a ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audit {
    pub sent: u64,
    pub acknowledged: u64,
    /// Sum of the per-option counts.
    pub counted: u64,
    /// Rows of `processed_votes`.
    pub recorded: u64,
    /// Acknowledged votes whose request id is not recorded, plus request ids recorded but not in
    /// their option's count.
    pub lost: u64,
    /// Counts above the recorded request ids.
    pub doubled: u64,
    /// Recorded under another option than the one sent.
    pub misattributed: u64,
    /// Recorded request ids the suite never sent.
    pub unknown: u64,
    /// Sent, never acknowledged, counted anyway (allowed).
    pub unacknowledged_counted: u64,
}

impl Audit {
    /// No loss, no double count, nothing unexplained.
    pub fn is_clean(&self) -> bool {
        self.lost == 0 && self.doubled == 0 && self.misattributed == 0 && self.unknown == 0
    }

    /// What is wrong, for a failure message; empty when clean.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (n, what) in [
            (self.lost, "acknowledged votes lost"),
            (self.doubled, "votes counted twice"),
            (self.misattributed, "votes counted for another option"),
            (self.unknown, "counted votes nobody sent"),
        ] {
            if n > 0 {
                out.push(format!("{n} {what}"));
            }
        }
        out
    }
}

/// Connects to `url`, driving the connection on a spawned task.
pub async fn connect(url: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        // The connection ends with the client; its error then is of no interest.
        let _ = connection.await;
    });
    Ok(client)
}

/// Compares the store with `ledger`; `foreign` are request ids that others (not the ledger) were
/// entitled to have counted, e.g. the fuzzer's accepted votes.
pub async fn audit(
    client: &Client,
    ledger: &Ledger,
    foreign: &HashSet<Uuid>,
) -> Result<Audit, tokio_postgres::Error> {
    let counts: HashMap<String, i64> = client
        .query(&format!("SELECT option, count FROM {COUNTS_TABLE}"), &[])
        .await?
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let rows: Vec<(Uuid, String)> = client
        .query(
            &format!("SELECT request_id, option FROM {PROCESSED_TABLE}"),
            &[],
        )
        .await?
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    Ok(compare(ledger, foreign, &counts, &rows))
}

/// The audit's arithmetic, apart from the queries.
pub fn compare(
    ledger: &Ledger,
    foreign: &HashSet<Uuid>,
    counts: &HashMap<String, i64>,
    rows: &[(Uuid, String)],
) -> Audit {
    let mut audit = Audit {
        sent: ledger.sent(),
        acknowledged: ledger.acknowledged_count(),
        counted: counts
            .values()
            .map(|c| u64::try_from(*c).unwrap_or(0))
            .sum(),
        recorded: rows.len() as u64,
        ..Audit::default()
    };
    let mut per_option: BTreeMap<&str, i64> = BTreeMap::new();
    let mut recorded: HashMap<Uuid, &str> = HashMap::with_capacity(rows.len());
    for (id, option) in rows {
        *per_option.entry(option.as_str()).or_default() += 1;
        recorded.insert(*id, option.as_str());
        match ledger.votes.get(id) {
            None if !foreign.contains(id) => audit.unknown += 1,
            None => {}
            Some((sent, fate)) => {
                if sent != option {
                    audit.misattributed += 1;
                }
                if *fate != Fate::Acknowledged {
                    audit.unacknowledged_counted += 1;
                }
            }
        }
    }
    for (id, _) in ledger.acknowledged() {
        if !recorded.contains_key(id) {
            audit.lost += 1;
        }
    }
    let options: HashSet<&str> = counts
        .keys()
        .map(String::as_str)
        .chain(per_option.keys().copied())
        .collect();
    for option in options {
        let count = counts.get(option).copied().unwrap_or(0);
        let rows = per_option.get(option).copied().unwrap_or(0);
        if count > rows {
            audit.doubled += u64::try_from(count - rows).unwrap_or(0);
        } else {
            audit.lost += u64::try_from(rows - count).unwrap_or(0);
        }
    }
    audit
}

/// How many of `ids` are recorded.
pub async fn recorded_among(client: &Client, ids: &[Uuid]) -> Result<u64, tokio_postgres::Error> {
    let row = client
        .query_one(
            &format!("SELECT count(*) FROM {PROCESSED_TABLE} WHERE request_id = ANY($1)"),
            &[&ids],
        )
        .await?;
    Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
}

/// Waits until every one of `ids` is recorded; returns how long that took, or `None` at `deadline`
/// or once the number recorded has not grown for `stall` (the audit then reports what is missing).
/// Errors while PostgreSQL is away count as "not yet".
pub async fn wait_recorded(
    url: &str,
    ids: &[Uuid],
    deadline: Duration,
    stall: Option<Duration>,
) -> Option<Duration> {
    let started = Instant::now();
    let want = ids.len() as u64;
    let mut client: Option<Client> = None;
    let mut last = (0, Instant::now());
    while started.elapsed() < deadline {
        if client.is_none() {
            client = connect(url).await.ok();
        }
        if let Some(c) = &client {
            match recorded_among(c, ids).await {
                Ok(n) if n >= want => return Some(started.elapsed()),
                Ok(n) if n != last.0 => last = (n, Instant::now()),
                Ok(_) => {
                    if stall.is_some_and(|s| last.1.elapsed() > s) {
                        return None;
                    }
                }
                Err(_) => client = None,
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    None
}

/// Waits until at least `target` request ids are recorded in all: the consumer has caught up with
/// what had been acknowledged when a fault ended (`target` = acknowledged votes at that moment; the
/// count may include a few votes that were accepted but never acknowledged, so this can only err on
/// the early side by those). `None` at `deadline` or after `stall` without progress.
pub async fn catch_up(
    url: &str,
    target: u64,
    deadline: Duration,
    stall: Option<Duration>,
) -> Option<Duration> {
    let started = Instant::now();
    let mut client: Option<Client> = None;
    let mut last = (0, Instant::now());
    while started.elapsed() < deadline {
        if client.is_none() {
            client = connect(url).await.ok();
        }
        if let Some(c) = &client {
            let count = c
                .query_one(&format!("SELECT count(*) FROM {PROCESSED_TABLE}"), &[])
                .await
                .map(|r| u64::try_from(r.get::<_, i64>(0)).unwrap_or(0));
            match count {
                Ok(n) if n >= target => return Some(started.elapsed()),
                Ok(n) if n != last.0 => last = (n, Instant::now()),
                Ok(_) => {
                    if stall.is_some_and(|s| last.1.elapsed() > s) {
                        return None;
                    }
                }
                Err(_) => client = None,
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

/// The consumer group's backlog: entries not yet delivered (`lag`) and delivered but not
/// acknowledged (`pending`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Backlog {
    pub lag: u64,
    pub pending: u64,
}

/// Reads the group's backlog with `XINFO GROUPS`.
pub async fn backlog(con: &mut redis::aio::MultiplexedConnection) -> redis::RedisResult<Backlog> {
    let groups: Vec<HashMap<String, redis::Value>> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(STREAM)
        .query_async(con)
        .await?;
    let group = groups.into_iter().find(
        |g| matches!(g.get("name"), Some(redis::Value::BulkString(n)) if n == GROUP.as_bytes()),
    );
    let int = |g: &HashMap<String, redis::Value>, key: &str| match g.get(key) {
        Some(redis::Value::Int(n)) => u64::try_from(*n).unwrap_or(0),
        // `lag` is nil when Redis cannot tell (after some deletions): treat as unknown = not drained.
        _ => u64::MAX,
    };
    Ok(group.map_or(
        Backlog {
            lag: u64::MAX,
            pending: u64::MAX,
        },
        |g| Backlog {
            lag: int(&g, "lag"),
            pending: int(&g, "pending"),
        },
    ))
}

/// Waits until the group has nothing undelivered or unacknowledged, so no late delivery can change
/// the counts after the audit. False at the deadline.
pub async fn wait_drained(redis_url: &str, deadline: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < deadline {
        let con = redis::Client::open(redis_url);
        if let Ok(client) = con
            && let Ok(mut con) = client.get_multiplexed_async_connection().await
            && let Ok(b) = backlog(&mut con).await
            && b == Backlog::default()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::Answer;

    fn ledger(entries: &[(u128, &str, bool)]) -> Ledger {
        let mut l = Ledger::default();
        for (id, option, acked) in entries {
            let fate = if *acked {
                Fate::Acknowledged
            } else {
                Fate::Failed(Answer::Status(503))
            };
            l.votes
                .insert(Uuid::from_u128(*id), ((*option).to_owned(), fate));
        }
        l
    }

    fn counts(pairs: &[(&str, i64)]) -> HashMap<String, i64> {
        pairs.iter().map(|(o, c)| ((*o).to_owned(), *c)).collect()
    }

    fn rows(pairs: &[(u128, &str)]) -> Vec<(Uuid, String)> {
        pairs
            .iter()
            .map(|(i, o)| (Uuid::from_u128(*i), (*o).to_owned()))
            .collect()
    }

    #[test]
    fn a_clean_store_passes() {
        let l = ledger(&[(1, "cats", true), (2, "dogs", true), (3, "dogs", false)]);
        let a = compare(
            &l,
            &HashSet::new(),
            &counts(&[("cats", 1), ("dogs", 2)]),
            &rows(&[(1, "cats"), (2, "dogs"), (3, "dogs")]),
        );
        assert!(a.is_clean(), "{a:?}");
        assert_eq!((a.sent, a.acknowledged, a.counted), (3, 2, 3));
        assert_eq!(a.unacknowledged_counted, 1);
    }

    #[test]
    fn each_breach_is_named() {
        let l = ledger(&[(1, "cats", true), (2, "dogs", true), (3, "dogs", true)]);
        // 2 never recorded; 3 recorded as cats; dogs counted twice over its single row; 9 unknown.
        let a = compare(
            &l,
            &HashSet::new(),
            &counts(&[("cats", 2), ("dogs", 3)]),
            &rows(&[(1, "cats"), (3, "cats"), (9, "dogs")]),
        );
        assert_eq!(a.lost, 1);
        assert_eq!(a.misattributed, 1);
        assert_eq!(a.doubled, 2);
        assert_eq!(a.unknown, 1);
        assert!(!a.is_clean());
        assert_eq!(a.problems().len(), 4, "{:?}", a.problems());
        // A foreign id is allowed; a row missing from its count is a loss.
        let foreign: HashSet<Uuid> = [Uuid::from_u128(9)].into();
        let a = compare(
            &ledger(&[]),
            &foreign,
            &counts(&[("dogs", 0)]),
            &rows(&[(9, "dogs")]),
        );
        assert_eq!((a.unknown, a.lost), (0, 1));
    }
}
