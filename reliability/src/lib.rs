//! The reliability suite: faults, fuzzing and load against the local runtime, each scenario closed by
//! an audit that every vote acknowledged with a 201 was counted exactly once.
//!
//! Each scenario starts its own runtime (`votectl up --local --detach` in a throwaway state directory
//! on free loopback ports, see [`stack`]), sends votes with known request ids ([`load`]), injects its
//! fault, waits (polling, with generous deadlines) for the counts to settle, and audits PostgreSQL by
//! request id ([`audit`]). It prints its figures (sent, acknowledged, counted, lost, doubled, time to
//! recover) and fails on any loss or double count. Nothing here asserts a duration: times are
//! measured and reported; deadlines only bound the waiting.
//!
//! Sizes: `full` is what `make reliability` runs (20 consumer kills during 100 000 votes, a 30 s
//! PostgreSQL outage, 1 000 SSE clients, …); `ci` keeps every scenario and shrinks the numbers so the
//! whole suite takes a few minutes on two cores.
//!
//! Invariants: all traffic goes to 127.0.0.1; every loop is bounded in count and time; every process
//! started is stopped and every state directory purged, also when a scenario fails.

pub mod audit;
pub mod figures;
pub mod load;
pub mod procfs;
pub mod scenarios;
pub mod stack;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

pub use figures::Figures;
pub use scenarios::Scenario;

/// How big a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SizeName {
    /// A few minutes on two cores: every scenario, smaller numbers.
    Ci,
    /// The figures the issue asks for (takes a quarter of an hour or more).
    Full,
}

impl SizeName {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ci => "ci",
            Self::Full => "full",
        }
    }
}

/// The numbers of one size.
#[derive(Debug, Clone)]
pub struct Size {
    pub name: SizeName,
    /// Consumer kills, and the votes sent meanwhile.
    pub consumer_kills: u32,
    pub consumer_kill_votes: u64,
    /// Concurrency of unpaced loads.
    pub concurrency: usize,
    /// Paced loads (outages): votes per second, and how long before the fault it starts.
    pub paced_rate: f64,
    pub lead: Duration,
    /// How long Redis stays down (SIGTERM and kill -9 alike).
    pub redis_outage: Duration,
    pub postgres_outage: Duration,
    /// Votes during the two-consumer scenario.
    pub two_consumer_votes: u64,
    /// Malformed entries, and good votes sent through the API alongside them.
    pub malformed: u64,
    pub malformed_good: u64,
    /// Schemathesis: examples per operation and the time budget of the run.
    pub fuzz_examples: u32,
    pub fuzz_max_time: Duration,
    pub sse_clients: usize,
    pub sse_votes: u64,
    /// Longest wait for counts to settle after the last fault.
    pub settle: Duration,
}

impl Size {
    pub fn of(name: SizeName) -> Self {
        match name {
            SizeName::Ci => Self {
                name,
                consumer_kills: 5,
                consumer_kill_votes: 10_000,
                concurrency: 32,
                paced_rate: 400.0,
                lead: Duration::from_secs(2),
                redis_outage: Duration::from_secs(3),
                postgres_outage: Duration::from_secs(5),
                two_consumer_votes: 4_000,
                malformed: 1_000,
                malformed_good: 2_000,
                fuzz_examples: 20,
                fuzz_max_time: Duration::from_secs(30),
                sse_clients: 100,
                sse_votes: 2_000,
                settle: Duration::from_secs(180),
            },
            SizeName::Full => Self {
                name,
                consumer_kills: 20,
                consumer_kill_votes: 100_000,
                concurrency: 64,
                paced_rate: 1_000.0,
                lead: Duration::from_secs(5),
                redis_outage: Duration::from_secs(5),
                postgres_outage: Duration::from_secs(30),
                two_consumer_votes: 20_000,
                malformed: 10_000,
                malformed_good: 10_000,
                fuzz_examples: 100,
                fuzz_max_time: Duration::from_secs(300),
                sse_clients: 1_000,
                sse_votes: 10_000,
                settle: Duration::from_secs(300),
            },
        }
    }
}

#[derive(Debug, clap::Parser)]
#[command(
    name = "vote-reliability",
    about = "Faults, fuzzing and load against the local runtime, with a no-loss, no-double audit"
)]
pub struct Args {
    /// `ci` (a few minutes) or `full` (the issue's figures).
    #[arg(long, value_enum, env = "VOTE_RELIABILITY_SIZE", default_value = "ci")]
    pub size: SizeName,
    /// Run only these scenarios (comma-separated) [default: all].
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<Scenario>,
    /// The votectl binary; the services are taken from its directory [default: next to this binary].
    #[arg(long, value_name = "PATH")]
    pub votectl: Option<PathBuf>,
    /// Also write the figures as Markdown here.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// What every scenario needs.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub votectl: PathBuf,
    pub size: Size,
}

/// Runs the chosen scenarios in order; exit 0 when all passed, 1 when any failed, 2 when one could
/// not be run at all.
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let votectl = match args.votectl {
        Some(path) => path,
        None => std::env::current_exe()?
            .parent()
            .context("this binary has no directory")?
            .join("votectl"),
    };
    anyhow::ensure!(
        votectl.exists(),
        "{} is missing: build it first (cargo build -p votectl -p vote-api -p vote-consumer -p vote-frontend, same profile)",
        votectl.display()
    );
    let ctx = Ctx {
        votectl,
        size: Size::of(args.size),
    };
    let chosen = if args.only.is_empty() {
        Scenario::ALL.to_vec()
    } else {
        args.only
    };
    let mut all = Vec::new();
    let mut broken = false;
    for scenario in chosen {
        eprintln!("-- {} ({} size)", scenario.name(), ctx.size.name.as_str());
        let started = std::time::Instant::now();
        let figures = match scenario.run(&ctx).await {
            Ok(f) => f,
            Err(e) => {
                broken = true;
                let mut f = Figures::new(scenario.name());
                f.failures.push(format!("could not run: {e:#}"));
                f
            }
        };
        println!(
            "{}   ({:.0}s)",
            figures.render().trim_end(),
            started.elapsed().as_secs_f64()
        );
        all.push(figures);
    }
    let summary = figures::summary(&all);
    println!("\n{summary}");
    let passed = all.iter().filter(|f| f.passed()).count();
    println!("{passed} passed, {} failed", all.len() - passed);
    if let Some(out) = &args.out {
        let mut text = format!(
            "# Reliability\n\nWritten by `vote-reliability --size {}`.\n\n{summary}\n",
            ctx.size.name.as_str()
        );
        for f in &all {
            text.push_str(&format!("\n```\n{}```\n", f.render()));
        }
        std::fs::write(out, text).with_context(|| format!("failed to write {}", out.display()))?;
    }
    Ok(if broken {
        ExitCode::from(2)
    } else if passed == all.len() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
