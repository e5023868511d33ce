//! `vote-reliability`: the reliability suite against the local runtime (`make reliability`).

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let args = vote_reliability::Args::parse();
    match vote_reliability::run(args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
