//! When a hop fails: the evidence (what Redis, PostgreSQL, the services and, locally, the processes
//! say right then), the likely causes, and the commands to run next.
//!
//! Invariant: a cause is only offered when some piece of evidence points at it, and the evidence it
//! rests on is printed beside it; the generic causes of a hop come last.

use std::time::Duration;

use serde::Serialize;
use uuid::Uuid;
use vote_contract::settings::var;
use vote_contract::stream::{DEAD_LETTER_STREAM, GROUP, STREAM};

use super::observe::{
    ConsumerInfo, DeadLetter, EntryId, GroupInfo, PendingEntry, PostgresProbe, RedisProbe,
};
use super::target::{ProcessState, Target};
use super::{Hop, human};
use crate::local::health;

/// `1 time`, `3 times`.
pub fn times(n: usize) -> String {
    if n == 1 {
        "1 time".to_owned()
    } else {
        format!("{n} times")
    }
}

/// `1 entry`, `3 entries`.
pub fn entries(n: u64) -> String {
    if n == 1 {
        "1 entry".to_owned()
    } else {
        format!("{n} entries")
    }
}

/// How many of the newest dead letters are shown.
pub const DEAD_LETTERS_SHOWN: usize = 5;

/// What was gathered when a hop failed. Every part that could not be gathered says why instead.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Evidence {
    /// `ok`, or why Redis could not be asked.
    pub redis: String,
    /// `ok`, or why PostgreSQL could not be asked.
    pub postgres: String,
    pub stream_length: Option<u64>,
    pub dead_letter_length: Option<u64>,
    /// The consumer group; `None` with `group_missing` when it does not exist.
    pub group: Option<GroupInfo>,
    pub group_missing: bool,
    pub consumers: Vec<ConsumerInfo>,
    /// The traced entry in the pending list, if it is there.
    pub traced_entry_pending: Option<PendingEntry>,
    /// The newest dead letters (newest first), and the traced vote's if it is older.
    pub dead_letters: Vec<DeadLetter>,
    /// Each service's `/ready`.
    pub ready: Vec<ReadyAnswer>,
    /// Local runtime only: whether each recorded process still runs.
    pub processes: Vec<ProcessState>,
    /// What became of the results stream subscription, if it ended.
    pub results_stream: Option<String>,
}

/// A service's answer to `/ready`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReadyAnswer {
    pub service: String,
    pub url: String,
    pub ready: bool,
    /// `ready`, or the failing checks / why it did not answer.
    pub answer: String,
}

/// What the trace knew when it failed, besides the evidence.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    pub hop: Hop,
    pub reason: &'a str,
    pub option: &'a str,
    pub entry: Option<EntryId>,
    pub request_id: Uuid,
    pub timeout: Duration,
    /// The dead letter of the traced vote, if one was found.
    pub our_dead_letter: Option<&'a DeadLetter>,
    pub feed_error: Option<&'a str>,
}

/// Gathers the evidence: every part is attempted, whatever failed before it.
pub async fn gather(
    target: &Target,
    redis: &mut RedisProbe,
    postgres: &mut PostgresProbe,
    http: &reqwest::Client,
    ctx: &Context<'_>,
) -> Evidence {
    let mut evidence = Evidence {
        redis: "ok".to_owned(),
        postgres: "ok".to_owned(),
        results_stream: ctx.feed_error.map(str::to_owned),
        ..Evidence::default()
    };
    match redis.lengths().await {
        Ok((votes, dead)) => {
            evidence.stream_length = Some(votes);
            evidence.dead_letter_length = Some(dead);
        }
        Err(e) => evidence.redis = e,
    }
    if evidence.redis == "ok" {
        match redis.group().await {
            Ok(Some(group)) => {
                evidence.group = Some(group);
                if let Ok(consumers) = redis.consumers().await {
                    evidence.consumers = consumers;
                }
                if let Some(id) = ctx.entry
                    && let Ok(pending) = redis.pending_entry(id).await
                {
                    evidence.traced_entry_pending = pending;
                }
            }
            Ok(None) => evidence.group_missing = true,
            Err(e) => evidence.redis = e,
        }
        if let Ok(mut letters) = redis.newest_dead_letters(DEAD_LETTERS_SHOWN).await {
            if let Some(ours) = ctx.our_dead_letter
                && !letters.iter().any(|l| l.id == ours.id)
            {
                letters.push(ours.clone());
            }
            if let Some(id) = ctx.entry {
                for letter in &mut letters {
                    letter.ours = letter.is_about(&id.to_string(), ctx.request_id);
                }
            }
            evidence.dead_letters = letters;
        }
    }
    if let Err(e) = postgres.ping().await {
        evidence.postgres = e;
    }
    for (service, url) in &target.services {
        let answer = health::http_ready(url, http).await;
        evidence.ready.push(ReadyAnswer {
            service: service.clone(),
            url: url.clone(),
            ready: answer.is_ok(),
            answer: answer.err().unwrap_or_else(|| "ready".to_owned()),
        });
    }
    for (service, why) in &target.unreachable {
        evidence.ready.push(ReadyAnswer {
            service: service.clone(),
            url: String::new(),
            ready: false,
            answer: why.clone(),
        });
    }
    if let Some(processes) = &target.processes {
        evidence.processes = processes();
    }
    evidence
}

/// The likely causes (most specific first) and the commands to run next.
pub fn explain(
    target: &Target,
    ctx: &Context<'_>,
    evidence: &Evidence,
) -> (Vec<String>, Vec<String>) {
    let mut causes = Vec::new();
    let mut next = Vec::new();
    let stopped = |name: &str| {
        evidence
            .processes
            .iter()
            .find(|p| p.component == name && !p.running)
            .map(|p| format!("the {name} process (pid {}) is not running", p.pid))
    };
    let not_ready = |name: &str| {
        evidence
            .ready
            .iter()
            .find(|r| r.service == name && !r.ready)
            .map(|r| format!("the {name} is not ready: {}", r.answer))
    };
    let redis_down = (evidence.redis != "ok").then(|| {
        format!(
            "Redis ({}) does not answer: {}",
            target.redis_url, evidence.redis
        )
    });
    let postgres_down = (evidence.postgres != "ok").then(|| {
        format!(
            "PostgreSQL ({}) does not answer: {}",
            target.postgres_display, evidence.postgres
        )
    });

    match ctx.hop {
        Hop::Accepted => {
            causes.extend(stopped("api"));
            causes.extend(redis_down.clone().map(|r| {
                format!(
                    "{r}; the API answers 503 to votes until Redis is back (it recovers by itself)"
                )
            }));
            causes.extend(not_ready("api"));
            if ctx.reason.contains("cannot reach") {
                causes.push(format!(
                    "nothing answers at {}: the API is stopped, still starting, or listens elsewhere",
                    target.api
                ));
            }
            next.push(target.status_command());
            next.push(target.logs_command("api"));
        }
        Hop::InStream => {
            causes.extend(redis_down.clone());
            causes.push(format!(
                "the API writes to another Redis than {} (compare the API's {})",
                target.redis_url,
                var::REDIS_URL
            ));
            causes.push(format!(
                "the entry was deleted, or `{STREAM}` trimmed, by something other than the consumer"
            ));
            causes.push(
                "Redis restarted and lost the entry (append-only file off or lost)".to_owned(),
            );
            next.push(target.status_command());
            next.push(target.logs_command("redis"));
        }
        Hop::Delivered => {
            causes.extend(stopped("consumer"));
            causes.extend(redis_down.clone());
            if evidence.group_missing {
                causes.push(format!(
                    "the consumer group `{GROUP}` does not exist: no consumer has joined this Redis \
                     since the stream was created"
                ));
            }
            if let Some(group) = &evidence.group {
                if group.consumers == 0 {
                    causes.push(format!("the group `{GROUP}` has no consumer"));
                }
                if let Some(lag) = group.lag
                    && lag > 1
                {
                    causes.push(format!(
                        "{lag} entries are waiting to be delivered: the consumer is behind or not \
                         reading (consumer lag growing)"
                    ));
                }
            }
            let idle_limit = ctx.timeout.as_millis();
            if !evidence.consumers.is_empty()
                && evidence
                    .consumers
                    .iter()
                    .all(|c| c.idle_ms as u128 >= idle_limit)
            {
                let quietest = evidence
                    .consumers
                    .iter()
                    .map(|c| c.idle_ms)
                    .min()
                    .unwrap_or(0);
                causes.push(format!(
                    "no consumer has read for {} or more: they are stopped, hung, or cannot reach \
                     Redis (a consumer stays listed after it is gone)",
                    human(Duration::from_millis(quietest as u64))
                ));
            }
            causes.extend(not_ready("consumer"));
            next.push(target.status_command());
            next.push(target.logs_command("consumer"));
            next.push(target.restart_command("consumer"));
        }
        Hop::Counted => {
            if let Some(letter) = ctx.our_dead_letter {
                causes.push(format!(
                    "the consumer refused the entry and moved it to `{DEAD_LETTER_STREAM}`: {}",
                    letter.reason
                ));
                if letter.reason.contains("is not configured") {
                    causes.push(format!(
                        "the consumer's {} does not include {:?} while the API's does: start both \
                         with the same options",
                        var::VOTE_OPTIONS,
                        ctx.option
                    ));
                }
            }
            causes.extend(postgres_down.clone().map(|p| {
                format!(
                    "{p}; the consumer keeps the entry pending and retries with backoff: the vote is \
                     counted once PostgreSQL is back"
                )
            }));
            causes.extend(stopped("postgres"));
            if let Some(pending) = &evidence.traced_entry_pending {
                causes.push(format!(
                    "consumer {} read the entry {} ago (delivered {}) but has not committed it: \
                     it is stuck or cannot reach PostgreSQL",
                    pending.consumer,
                    human(Duration::from_millis(pending.idle_ms as u64)),
                    times(pending.deliveries)
                ));
            }
            if ctx.our_dead_letter.is_none() {
                // A dead letter for this vote shows that some consumer is running.
                causes.extend(stopped("consumer"));
            }
            causes.extend(not_ready("consumer"));
            next.push(target.logs_command("consumer"));
            if ctx.our_dead_letter.is_none() {
                next.push(target.logs_command("postgres"));
            }
            next.push(target.status_command());
        }
        Hop::Acknowledged => {
            if let Some(pending) = &evidence.traced_entry_pending {
                causes.push(format!(
                    "counted, but still pending in consumer {}: the consumer lost Redis between its \
                     commit and XACK; it re-reads the entry and skips it as already counted (it is \
                     never counted twice)",
                    pending.consumer
                ));
            }
            causes.extend(redis_down.clone());
            causes.extend(stopped("consumer"));
            next.push(target.logs_command("consumer"));
            next.push(target.status_command());
        }
        Hop::Pushed => {
            if let Some(e) = ctx.feed_error {
                causes.push(format!("the results stream could not be followed: {e}"));
            }
            causes.extend(not_ready("api"));
            causes.extend(postgres_down.clone());
            causes.push(
                "the API's results feed did not pass the change on: it LISTENs for the consumer's \
                 NOTIFY; look for `results feed cannot reach PostgreSQL` in the API's log"
                    .to_owned(),
            );
            next.push(target.votectl("results"));
            next.push(target.logs_command("api"));
        }
    }
    next.push(target.votectl("trace"));
    causes.dedup();
    next.dedup();
    (causes, next)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::trace::target::Place;

    fn target() -> Target {
        Target {
            place: Place::Local {
                state_dir_flag: "--state-dir /tmp/s ".into(),
            },
            api: "http://127.0.0.1:1".into(),
            redis_url: "redis://127.0.0.1:2".into(),
            postgres: "postgres://postgres@127.0.0.1:3/votes".parse().unwrap(),
            postgres_display: "postgres://postgres@127.0.0.1:3/votes".into(),
            services: Vec::new(),
            unreachable: Vec::new(),
            processes: None,
            options: Vec::new(),
            keep_alive: Vec::new(),
        }
    }

    fn ctx(hop: Hop) -> Context<'static> {
        Context {
            hop,
            reason: "not seen within 3s",
            option: "dogs",
            entry: Some("5-0".parse().unwrap()),
            request_id: Uuid::nil(),
            timeout: Duration::from_secs(3),
            our_dead_letter: None,
            feed_error: None,
        }
    }

    #[test]
    fn a_stopped_consumer_is_named_first_with_what_to_run() {
        let evidence = Evidence {
            redis: "ok".into(),
            postgres: "ok".into(),
            group: Some(GroupInfo {
                name: GROUP.into(),
                consumers: 1,
                pending: 0,
                last_delivered_id: "4-0".into(),
                lag: Some(3),
            }),
            consumers: vec![ConsumerInfo {
                name: "c".into(),
                pending: 0,
                idle_ms: 9000,
            }],
            processes: vec![ProcessState {
                component: "consumer".into(),
                pid: 42,
                running: false,
            }],
            ..Evidence::default()
        };
        let (causes, next) = explain(&target(), &ctx(Hop::Delivered), &evidence);
        assert_eq!(causes[0], "the consumer process (pid 42) is not running");
        assert!(
            causes
                .iter()
                .any(|c| c.starts_with("3 entries are waiting")),
            "{causes:?}"
        );
        assert!(
            causes
                .iter()
                .any(|c| c.contains("no consumer has read for 9s")),
            "{causes:?}"
        );
        assert!(
            next.contains(&"votectl --state-dir /tmp/s logs consumer".to_owned()),
            "{next:?}"
        );
    }

    #[test]
    fn a_dead_letter_for_an_unknown_option_points_at_the_options() {
        let letter = DeadLetter {
            id: "6-0".into(),
            source_id: "5-0".into(),
            reason: "option \"dogs\" is not configured".into(),
            request_id: None,
            option: Some("dogs".into()),
            ours: true,
        };
        let mut c = ctx(Hop::Counted);
        c.our_dead_letter = Some(&letter);
        let evidence = Evidence {
            redis: "ok".into(),
            postgres: "ok".into(),
            ..Evidence::default()
        };
        let (causes, next) = explain(&target(), &c, &evidence);
        assert!(
            causes[0].contains("option \"dogs\" is not configured"),
            "{causes:?}"
        );
        assert!(causes[1].contains("VOTE_OPTIONS"), "{causes:?}");
        assert!(
            !next.iter().any(|n| n.contains("logs postgres")),
            "{next:?}"
        );
    }
}
