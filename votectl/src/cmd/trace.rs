//! `votectl trace`: cast one vote and follow it through every hop (API → stream → consumer group →
//! PostgreSQL → acknowledgement → results stream); on the first hop that does not happen in time, say
//! which, show the evidence, the likely causes and what to run next. See [`crate::trace`].
//!
//! Exit codes: 0 the vote made it all the way; 1 a hop failed; 2 usage or tool error (no local
//! runtime, an option the API does not accept, a cluster whose stores or api have no running pod).
//!
//! `--context C` traces the application in a cluster: Redis, PostgreSQL and the services are reached
//! through port-forwards (never by loosening a NetworkPolicy), with the namespaces, the password
//! Secret and the database taken from the values the stack was rendered with (`--profile`, `-f`,
//! `--set`, as for `votectl render`).
//!
//! The traced vote is a real vote: it stays counted.

use std::process::ExitCode;
use std::time::Duration;

use std::path::PathBuf;

use votectl_manifests::Profile;

use crate::cmd::render::{ValuesArgs, load_and_render};
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
    /// With --context: values file the stack was rendered with (repeatable, like `votectl render`).
    #[arg(
        short = 'f',
        long = "values",
        value_name = "FILE",
        requires = "context"
    )]
    pub values: Vec<PathBuf>,
    /// With --context: a value the stack was rendered with, key.path=value (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", requires = "context")]
    pub set: Vec<String>,
    /// With --context: the profile the stack was rendered with.
    #[arg(
        long,
        value_name = "PROFILE",
        default_value = "default",
        value_parser = profile,
        requires = "context"
    )]
    pub profile: Profile,
    /// How long each hop may take, from the moment the previous one was done (e.g. 500ms, 10s, 1m).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub timeout_per_hop: Duration,
}

fn profile(value: &str) -> Result<Profile, String> {
    value.parse()
}

fn option(value: &str) -> Result<String, String> {
    vote_contract::VoteOption::new(value)
        .map(|o| o.to_string())
        .map_err(|e| e.to_string())
}

pub async fn run(args: Args, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let target = match &args.context {
        Some(context) => {
            let values = ValuesArgs {
                values: args.values.clone(),
                set: args.set.clone(),
                profile: args.profile,
                strict: false,
                postgres_password_file: None,
                generate_secret: false,
            };
            // The same values the stack was rendered with tell the namespaces, the Secret's name and
            // the database's user and name.
            let (values, _, _) = load_and_render(&values)?;
            Target::cluster(context, &values).await?
        }
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
    fn cluster_flags_go_with_a_context() {
        let cli = crate::Cli::try_parse_from([
            "votectl",
            "trace",
            "--context",
            "kind-votes",
            "--profile",
            "kind",
            "--set",
            "namespacePrefix=a-",
        ])
        .unwrap();
        let crate::Command::Trace(args) = cli.command else {
            panic!("not trace")
        };
        assert_eq!(args.context.as_deref(), Some("kind-votes"));
        assert_eq!(args.set, ["namespacePrefix=a-"]);
    }

    #[test]
    fn bad_arguments_are_refused_by_the_parser() {
        for args in [
            &["votectl", "trace", "--option", "Dogs"][..],
            &["votectl", "trace", "--timeout-per-hop", "soon"],
            &["votectl", "trace", "--local", "--context", "kind-kind"],
            &["votectl", "trace", "-o", "yaml"],
            &["votectl", "trace", "--set", "namespacePrefix=a-"],
            &["votectl", "trace", "--profile", "kind"],
        ] {
            let err = crate::Cli::try_parse_from(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
    }
}
