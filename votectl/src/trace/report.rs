//! The trace's report for people: the hop table, and on failure the failing hop, the evidence, the
//! likely causes and the next commands. (`-o json` prints [`Report`] as it is.)

use std::fmt::Write as _;
use std::time::Duration;

use comfy_table::{Cell, CellAlignment};
use vote_contract::stream::{DEAD_LETTER_STREAM, STREAM};

use super::diagnose::{Evidence, entries, times};
use super::run::{FAST_POLL, Report};
use super::{Hop, Outcome, human};
use crate::output;

/// Milliseconds as `3.1 ms`, or `1.25 s` from a second on.
fn ms(value: Option<f64>) -> String {
    match value {
        None => "—".to_owned(),
        Some(v) if v >= 1000.0 => format!("{:.2} s", v / 1000.0),
        Some(v) => format!("{v:.1} ms"),
    }
}

/// The whole report as text.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Tracing one vote for {} through {}",
        report.option, report.target
    );
    let _ = writeln!(
        out,
        "request id {}{}, timeout per hop {}",
        report.request_id,
        report
            .stream_id
            .as_deref()
            .map_or_else(String::new, |id| format!(", stream id {id}")),
        human(Duration::from_secs_f64(report.timeout_per_hop_ms / 1000.0))
    );
    let mut table = output::table(["#", "Hop", "Result", "Seen at", "Took", "Detail"]);
    for row in &report.hops {
        table.add_row([
            Cell::new(row.hop.number()).set_alignment(CellAlignment::Right),
            Cell::new(&row.title),
            Cell::new(row.outcome.word()),
            Cell::new(ms(row.at_ms)).set_alignment(CellAlignment::Right),
            Cell::new(ms(row.took_ms)).set_alignment(CellAlignment::Right),
            Cell::new(&row.detail),
        ]);
    }
    let _ = writeln!(out, "{table}");
    match &report.failure {
        None => {
            let total = report
                .hops
                .iter()
                .filter_map(|h| h.at_ms)
                .fold(0.0, f64::max);
            let _ = writeln!(
                out,
                "The vote made it all the way: all {} hops within {}.",
                Hop::ALL.len(),
                ms(Some(total))
            );
            let implied = report
                .hops
                .iter()
                .filter(|h| h.outcome == Outcome::Implied)
                .count();
            let _ = writeln!(
                out,
                "Times are when votectl first saw each hop (it looks every {}, pushed events \
                 arrive by themselves); each hop happened no later.{}",
                human(FAST_POLL),
                if implied > 0 {
                    " \"implied\": done before the first look, shown by a later hop that needs it."
                } else {
                    ""
                }
            );
        }
        Some(failure) => {
            let _ = writeln!(
                out,
                "✗ hop {} of {} failed ({}): {}",
                failure.number,
                Hop::ALL.len(),
                failure.hop,
                failure.title
            );
            let _ = writeln!(out, "  {}", failure.reason);
            if let Some(evidence) = &report.evidence {
                let _ = writeln!(out, "\nEvidence");
                out.push_str(&render_evidence(evidence));
            }
            if !report.causes.is_empty() {
                let _ = writeln!(out, "\nLikely causes");
                for (i, cause) in report.causes.iter().enumerate() {
                    let _ = writeln!(out, "  {}. {cause}", i + 1);
                }
            }
            if !report.next.is_empty() {
                let _ = writeln!(out, "\nNext");
                for command in &report.next {
                    let _ = writeln!(out, "  {command}");
                }
            }
        }
    }
    out
}

fn line(out: &mut String, label: &str, text: &str) {
    let _ = writeln!(out, "  {label:<16} {text}");
}

/// The evidence, one topic per line (lists indented below their topic).
pub fn render_evidence(e: &Evidence) -> String {
    let mut out = String::new();
    if e.redis == "ok" {
        line(
            &mut out,
            "Redis",
            &format!(
                "ok; `{STREAM}` holds {}, `{DEAD_LETTER_STREAM}` {}",
                e.stream_length.map_or_else(|| "?".to_owned(), entries),
                e.dead_letter_length.map_or_else(|| "?".to_owned(), entries)
            ),
        );
    } else {
        line(&mut out, "Redis", &format!("not answering: {}", e.redis));
    }
    if e.group_missing {
        line(&mut out, "group", "does not exist");
    }
    if let Some(g) = &e.group {
        line(
            &mut out,
            "group",
            &format!(
                "{}: {} consumer{}, {} pending, last delivered {}, lag {}",
                g.name,
                g.consumers,
                if g.consumers == 1 { "" } else { "s" },
                g.pending,
                g.last_delivered_id,
                g.lag
                    .map_or_else(|| "unknown".to_owned(), |l| l.to_string())
            ),
        );
    }
    for c in &e.consumers {
        line(
            &mut out,
            "consumer",
            &format!(
                "{}: {} pending, idle {}",
                c.name,
                c.pending,
                human(Duration::from_millis(c.idle_ms as u64))
            ),
        );
    }
    if let Some(p) = &e.traced_entry_pending {
        line(
            &mut out,
            "this entry",
            &format!(
                "pending in {} for {}, delivered {}",
                p.consumer,
                human(Duration::from_millis(p.idle_ms as u64)),
                times(p.deliveries)
            ),
        );
    }
    if e.redis == "ok" {
        if e.dead_letters.is_empty() {
            line(&mut out, "dead letters", "none");
        } else {
            line(&mut out, "dead letters", "newest first:");
            for d in &e.dead_letters {
                let _ = writeln!(
                    out,
                    "  {:<16}   {} (entry {}): {}{}",
                    "",
                    d.id,
                    d.source_id,
                    d.reason,
                    if d.ours { "   <- this vote" } else { "" }
                );
            }
        }
    }
    line(
        &mut out,
        "PostgreSQL",
        &if e.postgres == "ok" {
            "ok".to_owned()
        } else {
            format!("not answering: {}", e.postgres)
        },
    );
    for r in &e.ready {
        line(
            &mut out,
            &format!("{} /ready", r.service),
            &format!("{} ({})", r.answer, r.url),
        );
    }
    if !e.processes.is_empty() {
        let list: Vec<String> = e
            .processes
            .iter()
            .map(|p| {
                format!(
                    "{} {} {}",
                    p.component,
                    p.pid,
                    if p.running { "running" } else { "NOT RUNNING" }
                )
            })
            .collect();
        line(&mut out, "processes", &list.join("; "));
    }
    if let Some(stream) = &e.results_stream {
        line(&mut out, "results stream", stream);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::trace::{Progress, Verdict};

    fn report(verdict: &Verdict, progress: &Progress) -> Report {
        Report {
            ok: *verdict == Verdict::Complete,
            target: "the local runtime (API http://127.0.0.1:1)".into(),
            option: "dogs".into(),
            request_id: uuid::Uuid::nil(),
            stream_id: Some("5-0".into()),
            timeout_per_hop_ms: 3000.0,
            hops: progress.results(verdict),
            failure: None,
            evidence: None,
            causes: Vec::new(),
            next: Vec::new(),
        }
    }

    #[test]
    fn a_complete_trace_reads_as_such() {
        let mut p = Progress::default();
        for (i, hop) in Hop::ALL.into_iter().enumerate() {
            p.see(hop, Duration::from_millis(2 * (i as u64 + 1)), "x");
        }
        let text = render(&report(&Verdict::Complete, &p));
        assert!(
            text.contains("The vote made it all the way: all 6 hops within 12.0 ms."),
            "{text}"
        );
        assert!(text.contains("counted in PostgreSQL"), "{text}");
        assert!(text.contains("timeout per hop 3s"), "{text}");
    }

    #[test]
    fn evidence_names_a_missing_group_and_our_dead_letter() {
        let e = Evidence {
            redis: "ok".into(),
            postgres: "connection refused".into(),
            stream_length: Some(3),
            dead_letter_length: Some(1),
            group_missing: true,
            dead_letters: vec![crate::trace::observe::DeadLetter {
                id: "6-0".into(),
                source_id: "5-0".into(),
                reason: "option \"dogs\" is not configured".into(),
                request_id: None,
                option: None,
                ours: true,
            }],
            ..Evidence::default()
        };
        let text = render_evidence(&e);
        assert!(
            text.contains("`votes` holds 3 entries, `votes:dead` 1 entry"),
            "{text}"
        );
        assert!(text.contains("group            does not exist"), "{text}");
        assert!(
            text.contains("6-0 (entry 5-0): option \"dogs\" is not configured   <- this vote"),
            "{text}"
        );
        assert!(
            text.contains("PostgreSQL       not answering: connection refused"),
            "{text}"
        );
    }
}
