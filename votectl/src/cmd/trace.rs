//! `votectl trace`: cast one vote and follow it through every hop (API → stream → consumer group →
//! PostgreSQL → acknowledgement → results stream); on the first hop that does not happen in time, say
//! which, show the evidence, the likely causes and what to run next. See [`crate::trace`].
//!
//! Exit codes: 0 the vote made it all the way; 1 a hop failed; 2 usage or tool error (no local
//! runtime, an option the API does not accept, cluster mode where it is not available).
//!
//! The traced vote is a real vote: it stays counted.

use std::process::ExitCode;
use std::time::Duration;

use crate::local::StateDir;
use crate::trace::run::{self, Options};
use crate::trace::target::Target;
use crate::trace::{parse_duration, report};
use crate::{Ctx, exit};

/// `--state-dir`'s default; suggested commands repeat any other (a test keeps the two equal).
const DEFAULT_STATE_DIR: &str = ".votectl/local";

/// `-o table|json`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Trace through the local runtime (the default).
    #[arg(long, conflicts_with = "context")]
    pub local: bool,
    /// Trace through the cluster of this kube context (Redis and PostgreSQL through port-forwards).
    #[arg(long, value_name = "CONTEXT")]
    pub context: Option<String>,
    /// The option to vote for [default: the first configured option].
    #[arg(long, value_name = "OPTION", value_parser = option)]
    pub option: Option<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
    /// How long each hop may take, from the moment the previous one was done (e.g. 500ms, 10s, 1m).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub timeout_per_hop: Duration,
}

fn option(value: &str) -> Result<String, String> {
    vote_contract::VoteOption::new(value)
        .map(|o| o.to_string())
        .map_err(|e| e.to_string())
}

pub async fn run(args: Args, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let target = match &args.context {
        Some(context) => anyhow::bail!(
            "tracing through a cluster (--context {context}) is not supported yet: trace the \
             local runtime (`votectl trace --local`)"
        ),
        None => {
            let state = StateDir::new(&ctx.global.state_dir)?;
            let is_default = ctx.global.state_dir.as_os_str() == DEFAULT_STATE_DIR;
            Target::local(&state, &ctx.global.state_dir, is_default)?
        }
    };
    let options = Options {
        option: args.option,
        timeout: args.timeout_per_hop,
    };
    let report = run::trace(&target, &options).await?;
    match args.output {
        Format::Table => print!("{}", report::render(&report)),
        Format::Json => println!("{}", serde_json::to_string_pretty(&report)?),
    }
    Ok(if report.ok { exit::OK } else { exit::FAILED })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn the_default_state_dir_is_the_global_default() {
        let cli = crate::Cli::try_parse_from(["votectl", "trace"]).unwrap();
        assert_eq!(cli.global.state_dir.as_os_str(), DEFAULT_STATE_DIR);
    }

    #[test]
    fn bad_arguments_are_refused_by_the_parser() {
        for args in [
            &["votectl", "trace", "--option", "Dogs"][..],
            &["votectl", "trace", "--timeout-per-hop", "soon"],
            &["votectl", "trace", "--local", "--context", "kind-kind"],
            &["votectl", "trace", "-o", "yaml"],
        ] {
            let err = crate::Cli::try_parse_from(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
    }
}
