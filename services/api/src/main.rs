//! `vote-api`: reads its settings, logs JSON, serves until SIGTERM/SIGINT, drains, exits 0.

use std::process::ExitCode;

use anyhow::Context;
use vote_api::{Application, Settings, shutdown_signal, telemetry};
use vote_contract::settings::Env;

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match Settings::from_env(&Env::from_process()) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(settings.log_format, &settings.log_level);
    match run(settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "vote-api failed");
            ExitCode::FAILURE
        }
    }
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings)
        .await
        .context("failed to start")?;
    app.run_until_stopped(shutdown_signal())
        .await
        .context("failed while serving")
}
