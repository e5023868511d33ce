//! Logging setup and the stop signal of the binary.
//!
//! Invariant: logs go to stdout, one JSON object per line unless `LOG_FORMAT=text`; a bad `LOG_FORMAT`
//! or `LOG_LEVEL` is a settings error naming the variable, like any other.

use tracing_subscriber::EnvFilter;
use vote_contract::settings::{Env, Error, Result, var};

/// Installs the global subscriber from `LOG_FORMAT` (`json`, default, or `text`) and `LOG_LEVEL`
/// (a tracing filter, default `info`).
pub fn init(env: &Env) -> Result<()> {
    let level = env.string_or(var::LOG_LEVEL, "info");
    let filter = EnvFilter::try_new(&level)
        .map_err(|e| Error::new(var::LOG_LEVEL, format!("{level:?}: {e}")))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    let installed = match env.string_or(var::LOG_FORMAT, "json").as_str() {
        "json" => builder.json().flatten_event(true).try_init(),
        "text" => builder.try_init(),
        other => {
            return Err(Error::new(
                var::LOG_FORMAT,
                format!("{other:?}: expected json or text"),
            ));
        }
    };
    // Already installed (tests): keep the first one.
    drop(installed);
    Ok(())
}

/// Completes on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received"),
        () = term => tracing::info!("SIGTERM received"),
    }
}
