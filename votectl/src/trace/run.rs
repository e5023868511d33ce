//! The trace itself: subscribe to the results, cast the vote, then look at every hop until all are
//! done or one is late, and on failure gather the evidence.
//!
//! Invariants: the results stream is subscribed to before the vote is cast, so the event that carries
//! the vote cannot be missed; the vote carries a fresh `Idempotency-Key`, so it is this vote (and only
//! it) whose request id is looked for; the trace casts exactly one vote and writes nothing else.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use uuid::Uuid;
use vote_contract::VoteOptions;
use vote_contract::http::ResultsResponse;
use vote_contract::stream::{GROUP, field};

use super::diagnose::{self, Evidence};
use super::observe::{self, Counted, DeadLetter, EntryId, FeedItem, PostgresProbe, RedisProbe};
use super::target::Target;
use super::{Hop, HopResult, Progress, Verdict, human, millis};
use crate::api::{self, Api, VoteReply};

/// How often the trace looks while it waits.
pub const POLL: Duration = Duration::from_millis(20);
/// How often it looks during the first [`FAST_FOR`], when a healthy pipeline is at work.
pub const FAST_POLL: Duration = Duration::from_millis(5);
pub const FAST_FOR: Duration = Duration::from_millis(500);

/// How the trace runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The option to vote for; `None`: the first configured one.
    pub option: Option<String>,
    /// Time each hop may take, from the moment the previous one was done.
    pub timeout: Duration,
}

/// The outcome, as printed (`-o json` is this, serialized).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Whether the vote made it all the way.
    pub ok: bool,
    /// What was traced.
    pub target: String,
    pub option: String,
    pub request_id: Uuid,
    /// Id of the entry in the votes stream, once the API answered.
    pub stream_id: Option<String>,
    pub timeout_per_hop_ms: f64,
    pub hops: Vec<HopResult>,
    pub failure: Option<Failure>,
    pub evidence: Option<Evidence>,
    pub causes: Vec<String>,
    pub next: Vec<String>,
}

/// The hop that failed.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub hop: Hop,
    pub number: usize,
    pub title: String,
    pub reason: String,
}

/// A usage problem found only by asking the API (an option it does not know).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// Traces one vote through `target`.
pub async fn trace(target: &Target, options: &Options) -> anyhow::Result<Report> {
    let api = Api::new(target.api.clone(), 2)?;
    let timeout = options.timeout;

    // Subscribe first: the first event (sent on connect) is the baseline and names the options.
    let mut feed = observe::subscribe(&api);
    let mut feed_error: Option<String> = None;
    let mut baseline: Option<ResultsResponse> = None;
    match tokio::time::timeout(timeout, feed.recv()).await {
        Ok(Some(FeedItem::Results(_, results))) => baseline = Some(results),
        Ok(Some(FeedItem::Ended(e))) => feed_error = Some(e),
        Ok(None) => feed_error = Some("the results stream ended".to_owned()),
        Err(_) => {
            feed_error = Some(format!(
                "no `results` event within {} of subscribing",
                human(timeout)
            ));
        }
    }
    let option = choose_option(
        options.option.as_deref(),
        baseline.as_ref(),
        &target.options,
    );

    // Connect before casting, so that the times measure the pipeline rather than votectl's own
    // connection set-up. A store that is down is looked at again (and reported) later.
    let mut redis = RedisProbe::new(&target.redis_url);
    let mut postgres = PostgresProbe::new(target.postgres.clone(), target.postgres_display.clone());
    let _ = tokio::join!(redis.lengths(), postgres.ping());

    let request_id = Uuid::new_v4();
    let mut progress = Progress::default();
    let mut notes: HashMap<Hop, String> = HashMap::new();
    let start = Instant::now();
    let reply = api.vote(&option, request_id, timeout).await;
    let latency = start.elapsed();
    let mut entry: Option<EntryId> = None;
    match reply {
        Err(e) => progress.fail(
            Hop::Accepted,
            format!(
                "cannot reach the API at {}: {}",
                api.base(),
                api::root_cause(&e)
            ),
        ),
        Ok(VoteReply::Rejected { status, body }) => {
            if let Some(valid) = body.as_ref().and_then(|b| b.valid_options.clone()) {
                return Err(Refused(format!(
                    "the API does not accept the option {option:?}; valid options: {}",
                    valid.join(", ")
                ))
                .into());
            }
            let detail = body.map_or_else(String::new, |b| format!(": {}: {}", b.error, b.detail));
            progress.fail(Hop::Accepted, format!("the API answered {status}{detail}"));
        }
        Ok(VoteReply::Failed { status, detail }) => {
            progress.fail(
                Hop::Accepted,
                format!("the API answered {status}: {detail}"),
            );
        }
        Ok(VoteReply::Recorded(body)) => match body.stream_id.parse::<EntryId>() {
            Ok(id) => {
                entry = Some(id);
                progress.see(
                    Hop::Accepted,
                    latency,
                    format!("201 Created, stream id {id}"),
                );
            }
            Err(e) => progress.fail(
                Hop::Accepted,
                format!("the API answered 201 but its stream id is unusable: {e}"),
            ),
        },
    }

    let mut counted: Option<Counted> = None;
    let mut events: Vec<(Instant, ResultsResponse)> = Vec::new();
    let mut our_dead_letter: Option<DeadLetter> = None;
    // Dead letters are written after the entry, so their ids are later; a second of slack for the
    // clock.
    let mut dead_cursor = entry.map(|id| EntryId {
        ms: id.ms.saturating_sub(1000),
        seq: 0,
    });

    let verdict = loop {
        if let Some(id) = entry {
            look_at_redis(
                &mut redis,
                id,
                request_id,
                start,
                &mut progress,
                &mut notes,
                &mut dead_cursor,
                &mut our_dead_letter,
            )
            .await;
            if !progress.is_seen(Hop::Counted) && our_dead_letter.is_none() {
                match postgres.counted(request_id).await {
                    Ok(Some(found)) if found.option == option => {
                        progress.see(
                            Hop::Counted,
                            start.elapsed(),
                            format!(
                                "row in processed_votes; count of {option} now {}",
                                found.count
                            ),
                        );
                        counted = Some(found);
                    }
                    Ok(Some(found)) => progress.fail(
                        Hop::Counted,
                        format!("counted for {:?}, not {option:?}", found.option),
                    ),
                    Ok(None) => {
                        notes.insert(
                            Hop::Counted,
                            format!("no processed_votes row for request id {request_id}"),
                        );
                    }
                    Err(e) => {
                        notes.insert(Hop::Counted, format!("PostgreSQL: {e}"));
                    }
                }
            }
        }
        while let Ok(item) = feed.try_recv() {
            match item {
                FeedItem::Results(at, results) => events.push((at, results)),
                FeedItem::Ended(e) => feed_error = Some(e),
            }
        }
        if let Some(found) = &counted
            && !progress.is_seen(Hop::Pushed)
        {
            match events
                .iter()
                .find(|(_, r)| r.count(&option).is_some_and(|c| c >= found.count))
            {
                Some((at, r)) => progress.see(
                    Hop::Pushed,
                    at.saturating_duration_since(start),
                    format!(
                        "`results` event with {option} at {}",
                        r.count(&option).unwrap_or(0)
                    ),
                ),
                None => {
                    if let Some(e) = &feed_error {
                        progress.fail(Hop::Pushed, format!("results stream: {e}"));
                    } else {
                        let last = events
                            .last()
                            .map(|(_, r)| r)
                            .or(baseline.as_ref())
                            .and_then(|r| r.count(&option));
                        notes.insert(
                            Hop::Pushed,
                            format!(
                                "the last event showed {option} at {}, waiting for {}",
                                last.map_or_else(|| "nothing".to_owned(), |c| c.to_string()),
                                found.count
                            ),
                        );
                    }
                }
            }
        }
        match progress.verdict(start.elapsed(), timeout) {
            Verdict::Waiting { deadline, .. } => {
                let left = deadline.saturating_sub(start.elapsed());
                // Look closely while a healthy pipeline would be done, then more calmly.
                let poll = if start.elapsed() < FAST_FOR {
                    FAST_POLL
                } else {
                    POLL
                };
                tokio::time::sleep(left.min(poll)).await;
            }
            Verdict::Failed { hop, reason } => {
                let reason = match notes.get(&hop) {
                    Some(note) if reason.starts_with("not seen") => {
                        format!("{reason} (last look: {note})")
                    }
                    _ => reason,
                };
                break Verdict::Failed { hop, reason };
            }
            Verdict::Complete => break Verdict::Complete,
        }
    };
    drop(feed);

    let hops = progress.results(&verdict);
    let mut report = Report {
        ok: verdict == Verdict::Complete,
        target: target.describe(),
        option: option.clone(),
        request_id,
        stream_id: entry.map(|id| id.to_string()),
        timeout_per_hop_ms: millis(timeout),
        hops,
        failure: None,
        evidence: None,
        causes: Vec::new(),
        next: Vec::new(),
    };
    if let Verdict::Failed { hop, reason } = &verdict {
        let ctx = diagnose::Context {
            hop: *hop,
            reason,
            option: &option,
            entry,
            request_id,
            timeout,
            our_dead_letter: our_dead_letter.as_ref(),
            feed_error: feed_error.as_deref(),
        };
        let evidence = diagnose::gather(target, &mut redis, &mut postgres, api.http(), &ctx).await;
        let (causes, next) = diagnose::explain(target, &ctx, &evidence);
        report.failure = Some(Failure {
            hop: *hop,
            number: hop.number(),
            title: hop.title(),
            reason: reason.clone(),
        });
        report.evidence = Some(evidence);
        report.causes = causes;
        report.next = next;
    }
    Ok(report)
}

/// The option to vote for: the one asked for, else the first the API lists, else the first the
/// stack was started with, else the contract's default.
fn choose_option(
    asked: Option<&str>,
    baseline: Option<&ResultsResponse>,
    known: &[String],
) -> String {
    if let Some(option) = asked {
        return option.to_owned();
    }
    baseline
        .and_then(|r| r.results.first().map(|o| o.option.clone()))
        .or_else(|| known.first().cloned())
        .unwrap_or_else(|| {
            VoteOptions::default()
                .names()
                .first()
                .cloned()
                .unwrap_or_default()
        })
}

/// One look at Redis for the hops not seen yet: the entry, the group's position and pending list, and
/// new dead letters (to spot this vote's).
#[allow(clippy::too_many_arguments)]
async fn look_at_redis(
    redis: &mut RedisProbe,
    id: EntryId,
    request_id: Uuid,
    start: Instant,
    progress: &mut Progress,
    notes: &mut HashMap<Hop, String>,
    dead_cursor: &mut Option<EntryId>,
    our_dead_letter: &mut Option<DeadLetter>,
) {
    if !progress.is_seen(Hop::InStream) {
        match redis.entry(id).await {
            Ok(Some(fields)) => {
                let theirs = fields.get(field::REQUEST_ID).map(String::as_str);
                if theirs == Some(request_id.to_string().as_str()) {
                    let option = fields.get(field::OPTION).map_or("", String::as_str);
                    progress.see(
                        Hop::InStream,
                        start.elapsed(),
                        format!("XRANGE: option={option}, request_id matches"),
                    );
                } else {
                    progress.fail(
                        Hop::InStream,
                        format!(
                            "entry {id} holds request id {}, not this vote's {request_id}",
                            theirs.unwrap_or("(none)")
                        ),
                    );
                }
            }
            Ok(None) => {
                notes.insert(Hop::InStream, format!("XRANGE {id} {id} found nothing"));
            }
            Err(e) => {
                notes.insert(Hop::InStream, format!("Redis: {e}"));
            }
        }
    }
    if !progress.is_seen(Hop::Delivered) || !progress.is_seen(Hop::Acknowledged) {
        // Group first, pending list second: an entry the group had read by the first look and that
        // is not pending at the second was acknowledged.
        match redis.group().await {
            Ok(Some(group)) => {
                let delivered = group.delivered(id);
                match redis.pending_entry(id).await {
                    Ok(Some(pending)) => {
                        progress.see(
                            Hop::Delivered,
                            start.elapsed(),
                            format!(
                                "pending in consumer {} (delivered {})",
                                pending.consumer,
                                diagnose::times(pending.deliveries)
                            ),
                        );
                        notes.insert(
                            Hop::Acknowledged,
                            format!(
                                "still pending in {} for {}",
                                pending.consumer,
                                human(Duration::from_millis(pending.idle_ms as u64))
                            ),
                        );
                    }
                    Ok(None) if delivered => {
                        let now = start.elapsed();
                        progress.see(
                            Hop::Delivered,
                            now,
                            format!(
                                "group read past it (last delivered {})",
                                group.last_delivered_id
                            ),
                        );
                        progress.see(Hop::Acknowledged, now, "no longer pending (XACK)");
                    }
                    Ok(None) => {
                        notes.insert(
                            Hop::Delivered,
                            format!(
                                "group last delivered {}, {} not yet delivered",
                                group.last_delivered_id,
                                group.lag.map_or_else(
                                    || "? entries".to_owned(),
                                    |l| diagnose::entries(l as u64)
                                )
                            ),
                        );
                    }
                    Err(e) => {
                        notes.insert(Hop::Delivered, format!("Redis: {e}"));
                    }
                }
            }
            Ok(None) => {
                notes.insert(Hop::Delivered, format!("no consumer group `{GROUP}`"));
            }
            Err(e) => {
                notes.insert(Hop::Delivered, format!("Redis: {e}"));
            }
        }
    }
    if our_dead_letter.is_none()
        && !progress.is_seen(Hop::Counted)
        && let Some(after) = *dead_cursor
        && let Ok(letters) = redis.dead_letters_after(after, 100).await
    {
        for mut letter in letters {
            if let Ok(next) = letter.id.parse::<EntryId>() {
                *dead_cursor = Some(next);
            }
            if letter.is_about(&id.to_string(), request_id) {
                letter.ours = true;
                // Only a consumer that read the entry can have refused it.
                progress.see(
                    Hop::Delivered,
                    start.elapsed(),
                    "read by a consumer, which refused it",
                );
                progress.fail(
                    Hop::Counted,
                    format!(
                        "dead-lettered: {} (dead letter {})",
                        letter.reason, letter.id
                    ),
                );
                *our_dead_letter = Some(letter);
                break;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_option_defaults_to_the_first_the_api_lists() {
        let options: VoteOptions = "fish,birds".parse().unwrap();
        let results = ResultsResponse::from_counts(&options, |_| 0, None);
        assert_eq!(choose_option(Some("dogs"), Some(&results), &[]), "dogs");
        assert_eq!(
            choose_option(None, Some(&results), &["cats".into()]),
            "fish"
        );
        assert_eq!(choose_option(None, None, &["cats".into()]), "cats");
        assert_eq!(choose_option(None, None, &[]), "cats");
    }
}
