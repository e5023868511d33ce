//! `votectl check`: the security checklist as code, run against the rendered manifests.
//!
//! Loads and renders the values exactly as `votectl render` does (same flags, same loader), then runs
//! every check of `votectl_checks`' catalogue against the objects and what the values say they should
//! be; with `--live`, against the objects read from a cluster (through [`crate::cluster`]) instead.
//! Exit code 0 when every check passes, 1 on any finding, 2 for bad values or flags (nothing is
//! printed on stdout then), 3 when the cluster cannot be read. `--catalogue` prints the checks themselves; with `-o markdown` that is
//! docs/security.md, which a test keeps identical to this output.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use comfy_table::Table;
use serde::Serialize;
use votectl_checks::{Expectations, Input, Report, catalogue, markdown};

use crate::cmd::render::{ValuesArgs, load_and_render};
use crate::{Ctx, cluster, exit, output};

const HELP: &str = "\
Each check has a stable id (POD-001, NET-002, …), a section, a severity, and
says why it matters and how to fix it: `votectl check --catalogue` lists
them, docs/security.md is `votectl check --catalogue -o markdown`.

A finding names the object (kind, namespace, name), the field
(spec.template.spec.containers[name=api].securityContext.runAsUser) and
what is wrong. The network check evaluates the NetworkPolicies with a model
of their semantics over every connection between the application's pods,
other pods in its namespaces, the namespaces the flows name, an unrelated
namespace and the outside world, and reports each connection allowed but
not intended and each intended but blocked.

With --live the same checks run on what is deployed: the Namespaces, and
every NetworkPolicy, PodDisruptionBudget, ServiceAccount (but `default`),
Service, Deployment and StatefulSet in them (never Secrets), compared
against the values given, which should be those the stack was deployed
with.

Exit codes: 0 every check passes, 1 any finding, 2 bad values or flags (or
a kube config that does not load), 3 the cluster could not be read.

Examples:
  votectl check --profile kind
  votectl check --profile kind --live --context kind-votes
  votectl check -f prod.yaml -o json | jq '.results[] | select(.findings != [])'
  votectl check --catalogue -o markdown > docs/security.md";

#[derive(Debug, clap::Args)]
#[command(after_long_help = HELP)]
pub struct Args {
    #[command(flatten)]
    pub input: ValuesArgs,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
    /// Print the catalogue of checks instead of running them.
    #[arg(
        long,
        conflicts_with_all = ["values", "set", "strict", "postgres_password_file", "generate_secret", "live"]
    )]
    pub catalogue: bool,
    /// Check the objects deployed in the cluster instead of the rendered ones, against the same
    /// values (pass the values they were deployed with).
    #[arg(long)]
    pub live: bool,
    /// The kube context for --live (default: the kube config's current context).
    #[arg(long, value_name = "CONTEXT", requires = "live")]
    pub context: Option<String>,
}

/// `-o table|json|markdown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Markdown,
}

pub async fn run(args: Args, _ctx: &Ctx) -> anyhow::Result<ExitCode> {
    if args.catalogue {
        print(&catalogue_text(args.output)?)?;
        return Ok(exit::OK);
    }
    let (values, rendered, warnings) = load_and_render(&args.input)?;
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    let expected = Expectations::new(&values, args.input.profile);
    let objects = if args.live {
        // A kube config that does not load is a usage error; a cluster that does not answer
        // leaves the question open.
        let client = cluster::client(args.context.as_deref()).await?;
        match cluster::objects::read(&client, &expected.namespaces.all()).await {
            Ok(objects) => objects,
            Err(err) => {
                eprintln!(
                    "error: {:#}",
                    anyhow::Error::new(err).context("cannot check the cluster")
                );
                return Ok(exit::inconclusive());
            }
        }
    } else {
        rendered.objects
    };
    let report = votectl_checks::run(&Input {
        objects: &objects,
        expected: &expected,
    });
    print(&report_text(&report, args.output)?)?;
    Ok(if report.passed() {
        exit::OK
    } else {
        exit::FAILED
    })
}

fn print(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .context("failed to write to stdout")
}

/// The catalogue in `format`.
pub fn catalogue_text(format: Format) -> anyhow::Result<String> {
    Ok(match format {
        Format::Markdown => markdown::catalogue_document(),
        Format::Json => serde_json::to_string_pretty(catalogue())? + "\n",
        Format::Table => {
            let mut table = output::table(["Id", "Section", "Severity", "Check"]);
            for check in catalogue() {
                table.add_row([
                    check.id,
                    check.section.title(),
                    check.severity.as_str(),
                    check.title,
                ]);
            }
            format!(
                "{table}\n{} checks. `votectl check --catalogue -o markdown` explains each.\n",
                catalogue().len()
            )
        }
    })
}

/// What `-o json` prints: the totals first, for scripts that only want them.
#[derive(Serialize)]
struct JsonReport<'r> {
    passed: bool,
    checks: usize,
    failed: usize,
    findings: usize,
    #[serde(flatten)]
    report: &'r Report,
}

/// A report in `format`.
pub fn report_text(report: &Report, format: Format) -> anyhow::Result<String> {
    let summary = markdown::summary(report);
    Ok(match format {
        Format::Markdown => markdown::report_document(report),
        Format::Json => {
            let json = JsonReport {
                passed: report.passed(),
                checks: report.results.len(),
                failed: report.failed().count(),
                findings: report.findings(),
                report,
            };
            serde_json::to_string_pretty(&json)? + "\n"
        }
        Format::Table => {
            let mut checks =
                output::table(["Id", "Section", "Severity", "Status", "Findings", "Check"]);
            for r in &report.results {
                checks.add_row([
                    r.check.id.to_owned(),
                    r.check.section.title().to_owned(),
                    r.check.severity.as_str().to_owned(),
                    r.status().to_owned(),
                    r.findings.len().to_string(),
                    r.check.title.to_owned(),
                ]);
            }
            let mut text = format!("{checks}\n");
            if !report.passed() {
                let mut findings: Table = output::table(["Id", "Object", "Field", "Finding"]);
                for r in report.failed() {
                    for f in &r.findings {
                        findings.add_row([
                            r.check.id.to_owned(),
                            f.object(),
                            f.field.clone(),
                            f.message.clone(),
                        ]);
                    }
                }
                text.push_str(&format!("{findings}\n"));
            }
            text.push_str(&summary);
            text.push('\n');
            text
        }
    })
}
