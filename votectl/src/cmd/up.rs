//! `votectl up` (being built: see the issue that introduces it).

use std::process::ExitCode;

use crate::Ctx;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(_args: Args, _ctx: &Ctx) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`votectl up` is not available in this build yet")
}
