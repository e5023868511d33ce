//! `votectl vote OPTION`: cast one vote; with `--count`/`--mix`: a load run with latency figures and
//! an audit that every acknowledged vote was counted.
//!
//! Exit codes: 0 recorded (load: audit passed); 1 the API failed to record (load: votes lost, or
//! none acknowledged); 2 bad input (an unknown option, listing the valid ones) or an API that cannot be
//! reached.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use uuid::Uuid;
use vote_contract::http::ErrorBody;

use crate::api::{self, Api, VoteReply};
use crate::load::{self, Audit, LoadConfig, LoadReport, Mix};
use crate::local::StateDir;
use crate::output::{self, Format};
use crate::{Ctx, exit};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The option to vote for.
    #[arg(required_unless_present = "mix", conflicts_with = "mix")]
    pub option: Option<String>,
    /// How many votes to send (more than 1 makes a load run).
    #[arg(short = 'n', long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub count: u64,
    /// Requests in flight at once during a load run.
    #[arg(short, long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub concurrency: u64,
    /// Split the votes between options by weight, e.g. `cats=30,dogs=70` (a load run).
    #[arg(long, value_name = "OPTION=WEIGHT,…")]
    pub mix: Option<Mix>,
    /// The API [default: the local runtime's, else http://127.0.0.1:8000].
    #[arg(long, env = "VOTECTL_API_URL", value_name = "URL")]
    pub api_url: Option<String>,
    /// Seconds to wait, after sending, for the consumer to count the votes.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub drain_timeout: u64,
    /// Skip the audit (e.g. against an API others are voting on).
    #[arg(long)]
    pub no_audit: bool,
    /// Output format of a load run's summary.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

pub async fn run(args: Args, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let state = StateDir::new(&ctx.global.state_dir)?;
    let (base, _) = api::resolve_base(args.api_url.as_deref(), &state)?;
    if args.count == 1 && args.mix.is_none() {
        let option = args.option.as_deref().unwrap_or_default();
        return single(&Api::new(base, 1)?, option).await;
    }
    let concurrency = usize::try_from(args.concurrency.min(args.count)).unwrap_or(1);
    let api = Api::new(base, concurrency)?;
    load_run(&api, &args, concurrency).await
}

async fn single(api: &Api, option: &str) -> anyhow::Result<ExitCode> {
    let reply = api
        .vote(option, Uuid::new_v4(), Duration::from_secs(10))
        .await
        .map_err(|e| api.unreachable(&e))?;
    match reply {
        VoteReply::Recorded(vote) => {
            println!(
                "Vote recorded: {} (stream id {})",
                vote.option, vote.stream_id
            );
            Ok(exit::OK)
        }
        VoteReply::Rejected { status, body } => {
            match body {
                Some(ErrorBody {
                    valid_options: Some(valid),
                    ..
                }) => eprintln!(
                    "error: {option:?} is not a valid option; valid options: {}",
                    valid.join(", ")
                ),
                Some(body) => eprintln!(
                    "error: the API refused the vote ({status}): {}: {}",
                    body.error, body.detail
                ),
                None => eprintln!("error: the API refused the vote ({status})"),
            }
            Ok(exit::usage())
        }
        VoteReply::Failed { status, detail } => {
            eprintln!("error: the API could not record the vote ({status}): {detail}");
            Ok(exit::FAILED)
        }
    }
}

/// `-o json|yaml` of a load run.
#[derive(Debug, Serialize)]
struct Summary {
    api_url: String,
    sent: u64,
    acknowledged: u64,
    failed: u64,
    failures: std::collections::BTreeMap<String, u64>,
    retried: u64,
    concurrency: usize,
    elapsed_seconds: f64,
    votes_per_second: f64,
    latency_ms: Latency,
    audit: Option<Audit>,
}

#[derive(Debug, Serialize)]
struct Latency {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

fn latency(report: &LoadReport) -> Latency {
    #[allow(clippy::cast_precision_loss)]
    let ms = |micros: u64| (micros as f64 / 1000.0 * 100.0).round() / 100.0;
    Latency {
        p50: ms(report.latency.value_at_quantile(0.50)),
        p90: ms(report.latency.value_at_quantile(0.90)),
        p99: ms(report.latency.value_at_quantile(0.99)),
        max: ms(report.latency.max()),
    }
}

async fn load_run(api: &Api, args: &Args, concurrency: usize) -> anyhow::Result<ExitCode> {
    let counts = match (&args.mix, &args.option) {
        (Some(mix), _) => mix.split(args.count),
        (None, Some(option)) => vec![(option.clone(), args.count)],
        (None, None) => anyhow::bail!("give an OPTION or --mix"),
    };
    // Check the options before sending anything: a bad run changes nothing.
    let before = if args.no_audit {
        api.results().await?
    } else {
        load::settled_results(api, Duration::from_secs(5)).await?
    };
    let valid: Vec<&str> = before.results.iter().map(|r| r.option.as_str()).collect();
    if let Some((unknown, _)) = counts.iter().find(|(o, _)| !valid.contains(&o.as_str())) {
        eprintln!(
            "error: option {unknown:?} is not configured; valid options: {}",
            valid.join(", ")
        );
        return Ok(exit::usage());
    }
    let table = args.output == Format::Table;
    let plan: Vec<String> = counts.iter().map(|(o, n)| format!("{o} {n}")).collect();
    if table {
        println!(
            "Sending {} votes ({}) to {} with {concurrency} connections…",
            args.count,
            plan.join(", "),
            api.base()
        );
    }
    let progress = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(args.count);
        bar.set_style(
            ProgressStyle::with_template(
                "{bar:40.cyan/blue} {pos}/{len} votes  {elapsed} elapsed  eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let config = LoadConfig {
        concurrency,
        request_timeout: Duration::from_secs(10),
        retries: 3,
    };
    let report = match load::run(api, &counts, &config, &progress).await {
        Ok(report) => report,
        Err(refused) => {
            eprintln!("error: {refused}; stopped sending");
            return Ok(exit::usage());
        }
    };
    let lat = latency(&report);
    if table {
        println!(
            "Sent {} votes in {:.2} s: {:.0} votes/s acknowledged",
            args.count,
            report.elapsed.as_secs_f64(),
            report.throughput()
        );
        println!(
            "  acknowledged (201): {} · failed: {} · retried: {}",
            report.acknowledged_total(),
            report.failed_total(),
            report.retried
        );
        for (reason, n) in &report.failed {
            println!("  failed: {n} × {reason}");
        }
        println!(
            "Latency: p50 {:.2} ms · p90 {:.2} ms · p99 {:.2} ms · max {:.2} ms",
            lat.p50, lat.p90, lat.p99, lat.max
        );
    }
    let audit = if args.no_audit {
        None
    } else {
        if table {
            println!(
                "Auditing: waiting up to {} s for the consumer to count them…",
                args.drain_timeout
            );
        }
        Some(
            load::audit(
                api,
                &before,
                &report.acknowledged,
                Duration::from_secs(args.drain_timeout),
            )
            .await?,
        )
    };
    let mut code = if report.acknowledged_total() == 0 {
        exit::FAILED
    } else {
        exit::OK
    };
    if let Some(audit) = &audit {
        if !audit.passed {
            code = exit::FAILED;
        }
        if table {
            print_audit(audit, report.failed_total(), args.drain_timeout);
        }
    }
    if !table {
        let summary = Summary {
            api_url: api.base().to_owned(),
            sent: args.count,
            acknowledged: report.acknowledged_total(),
            failed: report.failed_total(),
            failures: report.failed.clone(),
            retried: report.retried,
            concurrency,
            elapsed_seconds: report.elapsed.as_secs_f64(),
            votes_per_second: report.throughput(),
            latency_ms: lat,
            audit,
        };
        print!("{}", output::document(&summary, args.output)?);
    }
    Ok(code)
}

fn print_audit(audit: &Audit, failed: u64, deadline: u64) {
    let mut table = output::table(["Option", "Acknowledged", "Counted", "Difference"]);
    for line in &audit.lines {
        table.add_row([
            line.option.clone(),
            line.acknowledged.to_string(),
            line.counted.to_string(),
            format!("{:+}", line.difference),
        ]);
    }
    println!("{table}");
    if audit.passed {
        println!(
            "Audit passed: every acknowledged vote was counted ({:.1} s after the last one was sent).",
            audit.settle_seconds
        );
    } else {
        println!(
            "Audit FAILED: {} acknowledged votes were not counted within {deadline} s.",
            audit.lost
        );
    }
    if audit.extra > 0 {
        let why = if audit.extra <= failed {
            "votes whose request failed after the API had accepted them"
        } else {
            "others voting at the same time, or a backlog from before the run"
        };
        println!(
            "Note: {} more votes were counted than acknowledged ({why}).",
            audit.extra
        );
    }
}
