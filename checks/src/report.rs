//! Findings and the report of a run of the catalogue.

use serde::Serialize;
use votectl_manifests::Object;

use crate::catalogue::Check;

/// One thing wrong with one object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Finding {
    pub kind: String,
    /// `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    pub name: String,
    /// Where in the object, JSON-path-like: `spec.template.spec.containers[name=api].image`.
    pub field: String,
    pub message: String,
}

impl Finding {
    pub fn new(
        kind: impl Into<String>,
        namespace: Option<&str>,
        name: impl Into<String>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind: kind.into(),
            namespace: namespace.map(str::to_owned),
            name: name.into(),
            field: field.into(),
            message: message.into(),
        }
    }

    /// A finding about `object`.
    pub fn on(object: &Object, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(
            object.kind(),
            object.namespace(),
            object.name(),
            field,
            message,
        )
    }

    /// `Kind namespace/name` (or `Kind name`).
    pub fn object(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{} {ns}/{}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        }
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub check: &'static Check,
    pub findings: Vec<Finding>,
}

impl CheckResult {
    pub fn passed(&self) -> bool {
        self.findings.is_empty()
    }

    pub fn status(&self) -> &'static str {
        if self.passed() { "pass" } else { "fail" }
    }
}

/// The outcome of every check, in catalogue order.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub results: Vec<CheckResult>,
}

impl Report {
    /// Findings are sorted and deduplicated (several containers may share one problem path).
    pub(crate) fn new(results: Vec<(&'static Check, Vec<Finding>)>) -> Self {
        Self {
            results: results
                .into_iter()
                .map(|(check, mut findings)| {
                    findings.sort();
                    findings.dedup();
                    CheckResult { check, findings }
                })
                .collect(),
        }
    }

    pub fn passed(&self) -> bool {
        self.results.iter().all(CheckResult::passed)
    }

    pub fn failed(&self) -> impl Iterator<Item = &CheckResult> {
        self.results.iter().filter(|r| !r.passed())
    }

    pub fn findings(&self) -> usize {
        self.results.iter().map(|r| r.findings.len()).sum()
    }

    /// The result of the check with this id.
    pub fn result(&self, id: &str) -> Option<&CheckResult> {
        self.results.iter().find(|r| r.check.id == id)
    }
}
