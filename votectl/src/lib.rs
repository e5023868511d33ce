//! votectl: build, deploy, exercise and security-validate the voting application.
//!
//! The binary only parses arguments and calls [`run`]. Each subcommand lives in `cmd/<name>.rs` as a clap
//! `Args` struct and `pub async fn run(args, ctx) -> anyhow::Result<ExitCode>`. Errors that reach [`run`]
//! are usage or tool errors: printed with their whole chain (`{:#}`) and exit code 2. A subcommand that
//! checked something and found it wanting returns [`exit::FAILED`] itself.

pub mod api;
pub mod cluster;
pub mod cmd;
pub mod images;
pub mod load;
pub mod local;
pub mod output;
pub mod sse;
pub mod trace;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Exit codes shared by every subcommand.
pub mod exit {
    use std::process::ExitCode;

    /// Everything asked for worked or passed.
    pub const OK: ExitCode = ExitCode::SUCCESS;
    /// What was checked failed (findings, lost votes, a hop that did not happen).
    pub const FAILED: ExitCode = ExitCode::FAILURE;
    /// Usage or tool error (also clap's code for bad arguments).
    pub fn usage() -> ExitCode {
        ExitCode::from(2)
    }
    /// Could not decide.
    pub fn inconclusive() -> ExitCode {
        ExitCode::from(3)
    }
}

/// Command line of `votectl`.
#[derive(Debug, Parser)]
#[command(name = "votectl", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand understands.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Where the local runtime keeps its data, logs, PIDs and ports.
    #[arg(
        long,
        global = true,
        env = "VOTECTL_STATE_DIR",
        default_value = ".votectl/local"
    )]
    pub state_dir: PathBuf,
    /// More log output on stderr (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the whole stack (`--local`: on this machine, no cluster).
    Up(cmd::up::Args),
    /// Stop the stack (`--purge` also deletes its data).
    Down(cmd::down::Args),
    /// Show each component: PID, URL, readiness.
    Status(cmd::status::Args),
    /// Show (or follow) a component's log.
    Logs(cmd::logs::Args),
    /// Cast one vote, or run a load of votes and audit that none was lost.
    Vote(cmd::vote::Args),
    /// Show the current results (`--watch` follows them live).
    Results(cmd::results::Args),
    /// Render the Kubernetes manifests from values profiles.
    Render(cmd::render::Args),
    /// Build container images without a container engine, and load them into a cluster.
    Images(cmd::images::Args),
    /// Run the security checklist against the rendered manifests (`--catalogue`: list the checks).
    Check(cmd::check::Args),
    /// Cast one vote and follow it through every hop; on the first that fails, say why.
    Trace(cmd::trace::Args),
}

/// What every subcommand gets besides its own arguments.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub global: GlobalArgs,
}

/// Runs the parsed command line and maps errors to exit code 2.
pub async fn run(cli: Cli) -> ExitCode {
    let ctx = Ctx {
        global: cli.global.clone(),
    };
    let outcome = match cli.command {
        Command::Up(args) => cmd::up::run(args, &ctx).await,
        Command::Down(args) => cmd::down::run(args, &ctx).await,
        Command::Status(args) => cmd::status::run(args, &ctx).await,
        Command::Logs(args) => cmd::logs::run(args, &ctx).await,
        Command::Vote(args) => cmd::vote::run(args, &ctx).await,
        Command::Results(args) => cmd::results::run(args, &ctx).await,
        Command::Render(args) => cmd::render::run(args, &ctx).await,
        Command::Images(args) => cmd::images::run(args, &ctx).await,
        Command::Check(args) => cmd::check::run(args, &ctx).await,
        Command::Trace(args) => cmd::trace::run(args, &ctx).await,
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            exit::usage()
        }
    }
}

/// Logs go to stderr so that stdout stays parseable (`-o json`).
pub fn init_tracing(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("VOTECTL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
