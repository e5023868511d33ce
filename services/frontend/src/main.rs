//! `vote-frontend`: serves the live voting page and proxies `/api/*` to the API (`API_URL`) on `PORT`.

use std::process::ExitCode;

use anyhow::Context;
use vote_contract::settings::Env;
use vote_frontend::{Application, Settings, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let env = Env::from_process();
    let settings = match telemetry::init(&env).and_then(|()| Settings::from_env(&env)) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("vote-frontend: {e}");
            return ExitCode::from(2);
        }
    };
    match run(settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "vote-frontend failed");
            eprintln!("vote-frontend: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings)
        .await
        .context("failed to start")?;
    app.run_until_stopped(telemetry::shutdown_signal())
        .await
        .context("failed to serve")
}
