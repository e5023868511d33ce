//! `votectl down`: stop the local runtime, keeping its data unless `--purge`.
//!
//! Stopping is idempotent: with nothing running it says so and exits 0. A foreground `up` elsewhere is
//! asked to stop its own stack (SIGTERM), so its components stop in order exactly as on Ctrl-C.

use std::process::ExitCode;

use crate::local::StateDir;
use crate::local::process::Stopped;
use crate::local::stack::{self, DownReport};
use crate::{Ctx, exit};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Also delete the data (Redis's append-only file, the PostgreSQL cluster) and the logs.
    #[arg(long)]
    pub purge: bool,
}

pub async fn run(args: Args, ctx: &Ctx) -> anyhow::Result<ExitCode> {
    let state = StateDir::new(&ctx.global.state_dir)?;
    if !state.exists() {
        println!(
            "Nothing to stop: {} does not exist.",
            state.root().display()
        );
        return Ok(exit::OK);
    }
    let mut code = exit::OK;
    match stack::down(&state).await? {
        DownReport::NothingRecorded => println!(
            "Nothing was running (no runtime.json in {}).",
            state.root().display()
        ),
        DownReport::Stopped {
            supervisor,
            components,
        } => {
            if let Some(pid) = supervisor {
                println!("Asked the foreground votectl (pid {pid}) to stop its stack.");
            }
            for (component, pid, stopped) in components {
                if stopped == Stopped::StillRunning {
                    code = exit::FAILED;
                }
                println!("{}", stack::describe_stop(component, pid, stopped));
            }
        }
    }
    if args.purge && code != exit::OK {
        println!(
            "Not deleting the data in {} while a process may still use it.",
            state.root().display()
        );
    } else if args.purge {
        let removed = state.purge()?;
        if removed.is_empty() {
            println!("No data to delete in {}.", state.root().display());
        } else {
            println!(
                "Deleted the data, logs and records in {}.",
                state.root().display()
            );
        }
    } else {
        println!(
            "Data kept in {} (`votectl down --purge` deletes it).",
            state.root().display()
        );
    }
    Ok(code)
}
