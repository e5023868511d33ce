//! `vote-consumer`: reads settings and logging from the environment, then runs the service until
//! SIGTERM/SIGINT. A bad setting is one line naming the variable and exit code 2.

use std::process::ExitCode;

use anyhow::Context;
use vote_contract::settings::Env;

#[tokio::main]
async fn main() -> ExitCode {
    let env = Env::from_process();
    let settings =
        vote_consumer::telemetry::init(&env).and_then(|()| vote_consumer::Settings::from_env(&env));
    let settings = match settings {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("vote-consumer: {e}");
            return ExitCode::from(2);
        }
    };
    match vote_consumer::run(settings)
        .await
        .context("vote-consumer failed")
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "stopped");
            eprintln!("{e:#}");
            ExitCode::FAILURE
        }
    }
}
