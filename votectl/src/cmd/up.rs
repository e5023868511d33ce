//! `votectl up --local`: the whole stack on this machine, no cluster.
//!
//! Foreground by default: Ctrl-C (or SIGTERM, or `votectl down` from elsewhere) stops every component
//! cleanly and keeps the data. `--detach` leaves the stack running and returns. A second `up` while
//! anything recorded still runs says what runs, changes nothing and exits 2.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use vote_contract::VoteOptions;
use vote_contract::options::DEFAULT_OPTIONS;

use crate::local::binaries::Binaries;
use crate::local::ports::PortPlan;
use crate::local::stack::{Progress, Stack};
use crate::local::wiring::Wiring;
use crate::local::{Component, Mode, Runtime, StateDir};
use crate::{Ctx, exit, output};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run the stack on this machine: Redis, PostgreSQL and the three services as local processes.
    #[arg(long)]
    pub local: bool,
    /// Start everything, then return and leave it running (`votectl down` stops it).
    #[arg(short, long)]
    pub detach: bool,
    /// Directory holding vote-api, vote-consumer and vote-frontend [default: votectl's own directory].
    #[arg(long, env = "VOTECTL_BIN_DIR", value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
    /// Port for Redis; a busy port is an error [default: 6379, or a free port if that is busy].
    #[arg(long, value_name = "PORT", value_parser = port)]
    pub redis_port: Option<u16>,
    /// Port for PostgreSQL [default: 5432, or a free port].
    #[arg(long, value_name = "PORT", value_parser = port)]
    pub postgres_port: Option<u16>,
    /// Port for the API [default: 8000, or a free port].
    #[arg(long, value_name = "PORT", value_parser = port)]
    pub api_port: Option<u16>,
    /// Port for the consumer's health and metrics [default: 8001, or a free port].
    #[arg(long, value_name = "PORT", value_parser = port)]
    pub consumer_port: Option<u16>,
    /// Port for the frontend [default: 8080, or a free port].
    #[arg(long, value_name = "PORT", value_parser = port)]
    pub frontend_port: Option<u16>,
    /// The options people vote on, comma-separated.
    #[arg(long, value_name = "LIST", default_value = DEFAULT_OPTIONS, value_parser = options)]
    pub vote_options: VoteOptions,
    /// Seconds each component may take to become ready.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub timeout: u64,
}

fn port(value: &str) -> Result<u16, String> {
    match value.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("{value:?} is not a port (1-65535)")),
        Ok(port) => Ok(port),
    }
}

fn options(value: &str) -> Result<VoteOptions, String> {
    value.parse().map_err(|e| format!("{e}"))
}

impl Args {
    fn requested_port(&self, component: Component) -> Option<u16> {
        match component {
            Component::Redis => self.redis_port,
            Component::Postgres => self.postgres_port,
            Component::Api => self.api_port,
            Component::Consumer => self.consumer_port,
            Component::Frontend => self.frontend_port,
        }
    }
}

pub async fn run(args: Args, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.local,
        "deploying to a cluster is not part of this build: `votectl up --local` runs the stack on \
         this machine"
    );
    // Watch the signals from the start: a Ctrl-C while starting must stop what has started.
    let mut interrupt = Interrupt::new()?;
    let state = StateDir::new(&ctx.global.state_dir)?;
    // A missing program fails before anything is created or locked.
    let binaries = Binaries::find(args.bin_dir.as_deref())?;
    let lock = state.lock()?;
    if let Some(existing) = Runtime::load(&state)? {
        if !existing.is_stale() {
            print_already_running(&existing, &state);
            return Ok(exit::usage());
        }
        Runtime::remove(&state)?;
        eprintln!(
            "cleaned up a stale runtime.json from {} (none of its processes runs any more)",
            existing.started_at
        );
    }

    // Ports are checked once it is clear that nothing of ours holds them.
    let mut plan = PortPlan::default();
    let mut ports = BTreeMap::new();
    for component in Component::START_ORDER {
        ports.insert(
            component,
            plan.assign(component, args.requested_port(component))?,
        );
    }
    let wiring = Wiring {
        ports,
        options: args.vote_options.clone(),
    };
    let progress = Progress::new();
    for note in &plan.notes {
        progress.note(note);
    }
    let mode = if args.detach {
        Mode::Detached
    } else {
        Mode::Foreground
    };
    let mut stack = Stack::new(state.clone(), binaries, wiring.clone(), mode)?;
    let timeout = Duration::from_secs(args.timeout);
    let started = tokio::select! {
        started = stack.start_all(&progress, timeout) => Some(started),
        () = interrupt.recv() => None,
    };
    progress.finish();
    match started {
        None => {
            eprintln!("interrupted: stopping what was started");
            stack.stop_all().await;
            Runtime::remove(&state)?;
            return Ok(exit::FAILED);
        }
        Some(Err(err)) => {
            Runtime::remove(&state)?;
            return Err(err).context("failed to start the local runtime");
        }
        Some(Ok(())) => {}
    }
    stack.mark_ready()?;
    drop(lock);

    print_started(stack.runtime(), &state);
    if args.detach {
        println!(
            "Running in the background: `votectl status` shows it, `votectl down` stops it \
             (data is kept in {}).",
            state.root().display()
        );
        return Ok(exit::OK);
    }
    println!(
        "Running in the foreground: Ctrl-C stops everything (data is kept in {}).",
        state.root().display()
    );
    drop(interrupt);
    let clean = stack.supervise().await?;
    Ok(if clean { exit::OK } else { exit::FAILED })
}

/// SIGINT, SIGTERM or SIGHUP, whichever comes first.
struct Interrupt {
    signals: Vec<tokio::signal::unix::Signal>,
}

impl Interrupt {
    fn new() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let signals = [
            SignalKind::interrupt(),
            SignalKind::terminate(),
            SignalKind::hangup(),
        ]
        .into_iter()
        .map(signal)
        .collect::<Result<_, _>>()
        .context("failed to watch for Ctrl-C")?;
        Ok(Self { signals })
    }

    async fn recv(&mut self) {
        let waits = self.signals.iter_mut().map(|s| Box::pin(s.recv()));
        futures::future::select_all(waits).await;
    }
}

fn print_started(runtime: &Runtime, state: &StateDir) {
    let mut table = output::table(["Component", "URL", "PID", "Log"]);
    for component in Component::DISPLAY_ORDER {
        if let Some(record) = runtime.component(component) {
            let log = record
                .log
                .strip_prefix(state.root())
                .unwrap_or(&record.log)
                .display()
                .to_string();
            table.add_row([
                component.name().to_owned(),
                record.url.clone(),
                record.process.pid.to_string(),
                log,
            ]);
        }
    }
    println!("{table}");
    if let Some(frontend) = runtime.component(Component::Frontend) {
        println!(
            "Open {} to vote; `votectl vote dogs` and `votectl results` talk to the API.",
            frontend.url
        );
    }
}

fn print_already_running(runtime: &Runtime, state: &StateDir) {
    eprintln!(
        "the local runtime in {} is already running ({} mode, started {}); nothing was changed",
        state.root().display(),
        match runtime.mode {
            Mode::Foreground => "foreground",
            Mode::Detached => "detached",
        },
        runtime.started_at
    );
    let mut table = output::table(["Component", "URL", "PID", "Process"]);
    for component in Component::DISPLAY_ORDER {
        if let Some(record) = runtime.component(component) {
            table.add_row([
                component.name().to_owned(),
                record.url.clone(),
                record.process.pid.to_string(),
                if record.is_alive() {
                    "running"
                } else {
                    "not running"
                }
                .to_owned(),
            ]);
        }
    }
    eprintln!("{table}");
    eprintln!("`votectl status` shows its health; `votectl down` stops it.");
}
