//! The `votectl` binary: parse, set up logging, hand over to the library.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = votectl::Cli::parse();
    votectl::init_tracing(cli.global.verbose);
    votectl::run(cli).await
}
