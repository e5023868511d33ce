//! The security checklist as code. Pure: no I/O, no cluster.
//!
//! Data flows one way: **values → objects → check**. The [`catalogue()`] is a static list of
//! [`Check`]s, each with a stable id (`POD-001`), a [`Section`], a [`Severity`], what it asserts, why
//! it matters and how to fix it. [`run`] evaluates every check over an [`Input`]: a set of
//! [`Object`]s (rendered by `votectl_manifests`, or read from a cluster into the same types) and
//! the [`Expectations`] derived from the values (image users, images, intended flows). Each check
//! yields [`Finding`]s naming the object, the field and what is wrong; none means it passed.
//!
//! [`reach`] is a model of NetworkPolicy semantics: it evaluates the policies over every relevant
//! connection and compares the result with the intended flows (check `NET-002`); its matrices let
//! `votectl verify --network-policies` compare a cluster's observed reachability with the same intent.
//! [`markdown`] renders the catalogue as the security documentation and a report as Markdown.
//!
//! ```
//! use votectl_checks::{Expectations, Input, run};
//! use votectl_manifests::{Profile, Secrets, Values, render};
//!
//! let values = Values::default();
//! let rendered = render(&values, &Secrets::default()).unwrap();
//! let expected = Expectations::new(&values, Profile::Default);
//! let report = run(&Input { objects: &rendered.objects, expected: &expected });
//! assert!(report.passed(), "{:?}", report.failed().map(|r| r.check.id).collect::<Vec<_>>());
//! ```
//!
//! [`Object`]: votectl_manifests::Object

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod catalogue;
pub mod input;
pub mod markdown;
pub mod reach;
pub mod report;
mod rules;

pub use catalogue::{Check, Section, Severity, catalogue, find, run};
pub use input::{Expectations, Input, User, Workload};
pub use report::{CheckResult, Finding, Report};
