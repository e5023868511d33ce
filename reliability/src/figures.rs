//! What each scenario reports: the same figures for every scenario (sent, acknowledged, counted,
//! lost, doubled, time to recover), the checks it made, and its verdict.

use std::fmt::Write as _;
use std::time::Duration;

use crate::audit::Audit;

/// One scenario's outcome.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    pub scenario: String,
    pub sent: u64,
    pub acknowledged: u64,
    pub counted: u64,
    pub lost: u64,
    pub doubled: u64,
    /// From the end of the fault until the consumer had counted as many votes as were acknowledged
    /// by then (two consumers: until the killed one's entries were claimed; scenarios without a
    /// fault: until every acknowledged vote was counted).
    pub recover: Option<Duration>,
    /// Scenario-specific measurements, one line each.
    pub notes: Vec<String>,
    /// Failed checks; empty means the scenario passed.
    pub failures: Vec<String>,
}

impl Figures {
    pub fn new(scenario: &str) -> Self {
        Self {
            scenario: scenario.to_owned(),
            ..Self::default()
        }
    }

    /// Takes the audit's figures and fails on any breach it found.
    pub fn with_audit(&mut self, audit: &Audit) {
        self.sent = audit.sent;
        self.acknowledged = audit.acknowledged;
        self.counted = audit.counted;
        self.lost = audit.lost + audit.misattributed;
        self.doubled = audit.doubled;
        if audit.unacknowledged_counted > 0 {
            self.note(format!(
                "{} votes were counted whose every request failed (accepted before the connection broke): allowed",
                audit.unacknowledged_counted
            ));
        }
        self.failures.extend(audit.problems());
    }

    pub fn note(&mut self, line: impl Into<String>) {
        self.notes.push(line.into());
    }

    /// Fails the scenario with `why` unless `ok`.
    pub fn check(&mut self, ok: bool, why: impl Into<String>) {
        if !ok {
            self.failures.push(why.into());
        }
    }

    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// The report block printed after the scenario.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let recover = self
            .recover
            .map_or_else(|| "-".to_owned(), |d| format!("{:.2}s", d.as_secs_f64()));
        let _ = writeln!(
            out,
            "== {}: {}",
            self.scenario,
            if self.passed() { "PASS" } else { "FAIL" }
        );
        let _ = writeln!(
            out,
            "   sent {}  acknowledged {}  counted {}  lost {}  doubled {}  time to recover {}",
            self.sent, self.acknowledged, self.counted, self.lost, self.doubled, recover
        );
        for note in &self.notes {
            let _ = writeln!(out, "   - {note}");
        }
        for failure in &self.failures {
            let _ = writeln!(out, "   FAILED: {failure}");
        }
        out
    }
}

/// The summary table of a whole run, in Markdown.
pub fn summary(all: &[Figures]) -> String {
    let mut out = String::from(
        "| scenario | sent | acknowledged | counted | lost | doubled | time to recover | verdict |\n\
         |---|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for f in all {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            f.scenario,
            f.sent,
            f.acknowledged,
            f.counted,
            f.lost,
            f.doubled,
            f.recover
                .map_or_else(|| "-".to_owned(), |d| format!("{:.2} s", d.as_secs_f64())),
            if f.passed() { "pass" } else { "FAIL" }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unclean_audit_fails_the_scenario() {
        let mut f = Figures::new("x");
        f.with_audit(&Audit {
            sent: 3,
            acknowledged: 3,
            counted: 2,
            lost: 1,
            ..Audit::default()
        });
        assert!(!f.passed());
        assert!(f.render().contains("FAILED: 1 acknowledged votes lost"));
        assert!(summary(&[f]).contains("| x | 3 | 3 | 2 | 1 | 0 | - | FAIL |"));
    }

    #[test]
    fn a_failed_check_fails_and_a_clean_one_passes() {
        let mut f = Figures::new("y");
        f.with_audit(&Audit::default());
        f.check(true, "never shown");
        assert!(f.passed());
        f.check(false, "503 without Retry-After");
        assert!(!f.passed());
    }
}
