//! `votectl trace`: one vote followed through every hop of the pipeline, and when it stops somewhere,
//! where, why, and what to run next.
//!
//! The hops, in the order the system performs them:
//!
//! 1. **accepted**: the API answered `201` to `POST /api/vote` (with a fresh `Idempotency-Key`, which
//!    becomes the entry's `request_id`);
//! 2. **in stream**: the entry is in the `votes` stream (`XRANGE id id`, checked to hold our request id);
//! 3. **delivered**: the consumer group `vote-consumers` read it (it is in the group's pending list, or
//!    the group's last-delivered id is at or past it: Redis's own record of the group reading it);
//! 4. **counted**: PostgreSQL's processed votes hold the request id, for our option, and the per-option
//!    count grew in the same transaction;
//! 5. **acknowledged**: delivered and no longer pending (`XACK`);
//! 6. **pushed**: a `results` event on `GET /api/results/stream`, subscribed to *before* casting, shows
//!    a count for the option that can only include this vote.
//!
//! The issue lists acknowledgement before counting, but the consumer commits first and acknowledges
//! after (an entry acknowledged before its commit could be lost in a crash): that order is the one
//! traced, so a PostgreSQL outage shows up as "not counted" rather than as "not acknowledged".
//!
//! Invariants:
//! - Nothing is reported as seen that was not seen. A hop is **observed** when votectl saw its effect
//!   itself, **implied** when it was not seen but a later hop that cannot happen without it was (an
//!   entry can only be delivered if it was in the stream; the consumer may be faster than the first
//!   look, and trimming may remove an acknowledged entry before it), and otherwise it is waited for.
//! - Each hop gets its own timeout, counted from the moment the previous hop was done; the first hop
//!   not done in time is the failing hop, and tracing stops there. A hop can also fail at once on
//!   definite evidence (a dead letter for this vote, a refusal from the API).
//! - Times are when votectl first saw each hop (it polls), so each hop happened no later than shown.

pub mod diagnose;
pub mod observe;
pub mod report;
pub mod run;
pub mod target;

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use vote_contract::stream::{GROUP, STREAM};

/// One step of a vote's way through the system, in the order the system takes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Hop {
    Accepted,
    InStream,
    Delivered,
    Counted,
    Acknowledged,
    Pushed,
}

impl Hop {
    pub const ALL: [Self; 6] = [
        Self::Accepted,
        Self::InStream,
        Self::Delivered,
        Self::Counted,
        Self::Acknowledged,
        Self::Pushed,
    ];

    /// The hop's short name, as in `-o json` and in the failure line.
    pub fn id(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::InStream => "in-stream",
            Self::Delivered => "delivered",
            Self::Counted => "counted",
            Self::Acknowledged => "acknowledged",
            Self::Pushed => "pushed",
        }
    }

    /// What the hop means, for people.
    pub fn title(self) -> String {
        match self {
            Self::Accepted => "API accepted the vote".to_owned(),
            Self::InStream => format!("entry in stream `{STREAM}`"),
            Self::Delivered => format!("delivered to group `{GROUP}`"),
            Self::Counted => "counted in PostgreSQL".to_owned(),
            Self::Acknowledged => "acknowledged by the consumer".to_owned(),
            Self::Pushed => "pushed on the results stream (SSE)".to_owned(),
        }
    }

    /// 1-based position.
    pub fn number(self) -> usize {
        Self::ALL.iter().position(|h| *h == self).unwrap_or(0) + 1
    }

    /// Later hops that cannot have happened unless this one did.
    ///
    /// Counting implies nothing about acknowledgement (the consumer acknowledges after committing and
    /// may fail in between), and acknowledgement implies nothing about counting (a dead letter is
    /// acknowledged without being counted); both are only ever observed.
    pub fn implied_by(self) -> &'static [Self] {
        match self {
            Self::InStream => &[Self::Delivered, Self::Counted, Self::Acknowledged],
            Self::Delivered => &[Self::Counted, Self::Acknowledged],
            Self::Accepted | Self::Counted | Self::Acknowledged | Self::Pushed => &[],
        }
    }

    fn index(self) -> usize {
        self.number() - 1
    }
}

impl fmt::Display for Hop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// How a hop ended up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Seen by votectl itself.
    Observed,
    /// Not seen, but a later hop that depends on it was.
    Implied,
    /// Did not happen within its timeout, or definitely did not happen.
    Failed,
    /// Not looked for: an earlier hop failed.
    NotReached,
}

impl Outcome {
    pub fn word(self) -> &'static str {
        match self {
            Self::Observed => "ok",
            Self::Implied => "implied",
            Self::Failed => "FAILED",
            Self::NotReached => "not reached",
        }
    }
}

/// What was seen of the hops so far: the time each was first seen (since the vote was sent) and a
/// line of detail, plus a definite failure if one was found.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    seen: [Option<(Duration, String)>; 6],
    definite_failure: Option<(Hop, String)>,
}

/// Where a trace stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every hop is done.
    Complete,
    /// Waiting for `hop`, which has until `deadline` (since the vote was sent).
    Waiting { hop: Hop, deadline: Duration },
    /// `hop` failed: it was not done by its deadline, or failed definitely.
    Failed { hop: Hop, reason: String },
}

impl Progress {
    /// Records that `hop` was seen at `at`; only the first sighting counts.
    pub fn see(&mut self, hop: Hop, at: Duration, detail: impl Into<String>) {
        let slot = &mut self.seen[hop.index()];
        if slot.is_none() {
            *slot = Some((at, detail.into()));
        }
    }

    /// Records definite evidence that `hop` will not happen (the first such evidence counts).
    pub fn fail(&mut self, hop: Hop, reason: impl Into<String>) {
        if self.definite_failure.is_none() {
            self.definite_failure = Some((hop, reason.into()));
        }
    }

    pub fn seen(&self, hop: Hop) -> Option<&(Duration, String)> {
        self.seen[hop.index()].as_ref()
    }

    pub fn is_seen(&self, hop: Hop) -> bool {
        self.seen(hop).is_some()
    }

    /// When `hop` was done: when it was seen, or else when the earliest hop implying it was seen.
    pub fn done_at(&self, hop: Hop) -> Option<(Duration, Outcome)> {
        if let Some((at, _)) = self.seen(hop) {
            return Some((*at, Outcome::Observed));
        }
        hop.implied_by()
            .iter()
            .filter_map(|h| self.seen(*h).map(|(at, _)| *at))
            .min()
            .map(|at| (at, Outcome::Implied))
    }

    /// Where the trace stands at `now` (since the vote was sent), each hop having `timeout` from the
    /// moment the previous one was done.
    pub fn verdict(&self, now: Duration, timeout: Duration) -> Verdict {
        let mut previous_done = Duration::ZERO;
        for hop in Hop::ALL {
            if let Some((failed, reason)) = &self.definite_failure
                && *failed == hop
            {
                return Verdict::Failed {
                    hop,
                    reason: reason.clone(),
                };
            }
            match self.done_at(hop) {
                Some((at, _)) => previous_done = previous_done.max(at),
                None => {
                    let deadline = previous_done + timeout;
                    if now >= deadline {
                        return Verdict::Failed {
                            hop,
                            reason: format!("not seen within {}", human(timeout)),
                        };
                    }
                    return Verdict::Waiting { hop, deadline };
                }
            }
        }
        Verdict::Complete
    }

    /// Each hop's line of the report, given the final verdict.
    pub fn results(&self, verdict: &Verdict) -> Vec<HopResult> {
        let failed = match verdict {
            Verdict::Failed { hop, reason } => Some((*hop, reason.as_str())),
            _ => None,
        };
        let mut previous: Option<Duration> = None;
        Hop::ALL
            .into_iter()
            .map(|hop| {
                let done = self.done_at(hop);
                let (outcome, detail) = match (failed, done) {
                    (Some((f, reason)), _) if f == hop => (Outcome::Failed, reason.to_owned()),
                    (_, Some((_, Outcome::Observed))) => (
                        Outcome::Observed,
                        self.seen(hop).map(|(_, d)| d.clone()).unwrap_or_default(),
                    ),
                    (Some((f, _)), Some((_, Outcome::Implied))) if hop > f => {
                        (Outcome::NotReached, String::new())
                    }
                    (_, Some((_, outcome))) => {
                        let by: Vec<&str> = hop
                            .implied_by()
                            .iter()
                            .filter(|h| self.is_seen(**h))
                            .map(|h| h.id())
                            .collect();
                        (
                            outcome,
                            format!("not seen itself; implied by {}", by.join(", ")),
                        )
                    }
                    (_, None) => (Outcome::NotReached, String::new()),
                };
                let at = match outcome {
                    Outcome::Observed => done.map(|(at, _)| at),
                    _ => None,
                };
                let took = match (at, previous) {
                    // Seen before the previous hop was: the looks came in another order than the
                    // hops (a pushed event is not polled for), so the time between is unknown.
                    (Some(at), Some(prev)) if at < prev => None,
                    (Some(at), Some(prev)) => Some(at - prev),
                    (Some(at), None) if hop == Hop::Accepted => Some(at),
                    _ => None,
                };
                if let Some((t, _)) = done
                    && outcome != Outcome::NotReached
                {
                    previous = Some(previous.map_or(t, |p| p.max(t)));
                }
                HopResult {
                    hop,
                    title: hop.title(),
                    outcome,
                    at_ms: at.map(millis),
                    took_ms: took.map(millis),
                    detail,
                }
            })
            .collect()
    }
}

/// One line of the hop table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HopResult {
    pub hop: Hop,
    pub title: String,
    pub outcome: Outcome,
    /// When votectl first saw it, in milliseconds since the vote was sent (observed hops only).
    pub at_ms: Option<f64>,
    /// Since the previous hop was done (when both times are known).
    pub took_ms: Option<f64>,
    pub detail: String,
}

/// Milliseconds with a tenth of precision.
pub fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

/// `1.5s`, `250ms`, `2m`.
pub fn human(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{}ms", d.as_millis())
    } else if d.subsec_millis() == 0 && d.as_secs().is_multiple_of(60) {
        format!("{}m", d.as_secs() / 60)
    } else if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// Parses `500ms`, `10s`, `2m` or a bare number of seconds (`--timeout-per-hop`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 500ms, 10s, 2m)"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (use ms, s or m)")),
    };
    if !(0.05..=3600.0).contains(&seconds) {
        return Err(format!("{text:?} is out of range (50ms to 60m)"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(10);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_complete_trace_has_every_hop_observed_in_order() {
        let mut p = Progress::default();
        for (i, hop) in Hop::ALL.into_iter().enumerate() {
            p.see(hop, ms(10 * (i as u64 + 1)), hop.id());
        }
        assert_eq!(p.verdict(ms(60), T), Verdict::Complete);
        let rows = p.results(&Verdict::Complete);
        assert!(rows.iter().all(|r| r.outcome == Outcome::Observed));
        assert_eq!(rows[0].took_ms, Some(10.0));
        assert_eq!(rows[3].took_ms, Some(10.0));
        assert_eq!(rows[5].at_ms, Some(60.0));
    }

    #[test]
    fn hops_the_consumer_did_before_the_first_look_are_implied_not_observed() {
        let mut p = Progress::default();
        p.see(Hop::Accepted, ms(3), "201");
        // Trimmed before the first look; the group's position and the row show it went through.
        p.see(Hop::Acknowledged, ms(5), "acked");
        p.see(Hop::Counted, ms(6), "row");
        p.see(Hop::Pushed, ms(7), "event");
        assert_eq!(p.verdict(ms(8), T), Verdict::Complete);
        let rows = p.results(&Verdict::Complete);
        assert_eq!(rows[1].outcome, Outcome::Implied);
        assert_eq!(rows[2].outcome, Outcome::Implied);
        assert!(rows[1].detail.contains("counted"), "{}", rows[1].detail);
        assert_eq!(rows[1].at_ms, None);
        // Took is measured from the last hop done: the implied ones were done by 5 ms.
        assert_eq!(rows[3].took_ms, Some(1.0));
    }

    #[test]
    fn a_hop_seen_before_the_previous_one_has_no_duration() {
        let mut p = Progress::default();
        p.see(Hop::Accepted, ms(2), "");
        p.see(Hop::InStream, ms(3), "");
        p.see(Hop::Delivered, ms(3), "");
        p.see(Hop::Acknowledged, ms(9), "");
        p.see(Hop::Counted, ms(10), "");
        // The event was pushed at 6 ms; the row was only looked for (and found) at 10 ms.
        p.see(Hop::Pushed, ms(6), "");
        let rows = p.results(&Verdict::Complete);
        assert_eq!(rows[5].at_ms, Some(6.0));
        assert_eq!(rows[5].took_ms, None);
        assert_eq!(rows[4].took_ms, None);
        assert_eq!(rows[3].took_ms, Some(7.0));
    }

    #[test]
    fn counting_does_not_imply_acknowledgement_nor_the_reverse() {
        let mut p = Progress::default();
        p.see(Hop::Accepted, ms(1), "");
        p.see(Hop::Counted, ms(2), "");
        assert_eq!(
            p.verdict(ms(3), T),
            Verdict::Waiting {
                hop: Hop::Acknowledged,
                deadline: ms(2) + T
            }
        );
        let mut q = Progress::default();
        q.see(Hop::Accepted, ms(1), "");
        q.see(Hop::Acknowledged, ms(2), "");
        assert!(matches!(
            q.verdict(ms(3), T),
            Verdict::Waiting {
                hop: Hop::Counted,
                ..
            }
        ));
    }

    #[test]
    fn each_hop_gets_its_own_timeout_from_the_previous_one() {
        let mut p = Progress::default();
        p.see(Hop::Accepted, ms(100), "");
        p.see(Hop::InStream, ms(200), "");
        assert_eq!(
            p.verdict(ms(5000), T),
            Verdict::Waiting {
                hop: Hop::Delivered,
                deadline: ms(200) + T
            }
        );
        let verdict = p.verdict(ms(200) + T, T);
        assert_eq!(
            verdict,
            Verdict::Failed {
                hop: Hop::Delivered,
                reason: "not seen within 10s".into()
            }
        );
        let rows = p.results(&verdict);
        let outcomes: Vec<Outcome> = rows.iter().map(|r| r.outcome).collect();
        assert_eq!(
            outcomes,
            [
                Outcome::Observed,
                Outcome::Observed,
                Outcome::Failed,
                Outcome::NotReached,
                Outcome::NotReached,
                Outcome::NotReached
            ]
        );
    }

    #[test]
    fn a_definite_failure_stops_at_once_and_later_sightings_stay_visible() {
        let mut p = Progress::default();
        p.see(Hop::Accepted, ms(1), "");
        p.see(Hop::InStream, ms(2), "");
        p.see(Hop::Acknowledged, ms(3), "acked with its dead letter");
        p.fail(
            Hop::Counted,
            "dead-lettered: option \"dogs\" is not configured",
        );
        let verdict = p.verdict(ms(4), T);
        assert_eq!(
            verdict,
            Verdict::Failed {
                hop: Hop::Counted,
                reason: "dead-lettered: option \"dogs\" is not configured".into()
            }
        );
        let rows = p.results(&verdict);
        assert_eq!(rows[2].outcome, Outcome::Implied);
        assert_eq!(rows[3].outcome, Outcome::Failed);
        assert_eq!(rows[4].outcome, Outcome::Observed);
        assert_eq!(rows[5].outcome, Outcome::NotReached);
    }

    #[test]
    fn durations_parse_and_print() {
        assert_eq!(parse_duration("500ms").unwrap(), ms(500));
        assert_eq!(parse_duration("10s").unwrap(), T);
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5s").unwrap(), ms(1500));
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("").is_err());
        assert_eq!(human(ms(250)), "250ms");
        assert_eq!(human(T), "10s");
        assert_eq!(human(ms(1500)), "1.5s");
        assert_eq!(human(Duration::from_secs(120)), "2m");
    }

    #[test]
    fn hop_names_are_stable() {
        let ids: Vec<&str> = Hop::ALL.iter().map(|h| h.id()).collect();
        assert_eq!(
            ids,
            [
                "accepted",
                "in-stream",
                "delivered",
                "counted",
                "acknowledged",
                "pushed"
            ]
        );
        assert_eq!(Hop::Counted.number(), 4);
        assert_eq!(
            serde_json::to_value(Hop::InStream).unwrap(),
            serde_json::json!("in-stream")
        );
    }
}
