//! Logging: JSON lines on stdout by default (`LOG_FORMAT=text` for people), filtered by `LOG_LEVEL`.
//!
//! Invariant: configured once, at start, from the same [`Env`] snapshot as the settings; a bad value is
//! an error naming the variable.

use tracing_subscriber::EnvFilter;
use vote_contract::settings::{Env, Error, Result, var};

/// Default filter: this crate's information, and warnings from everything else.
pub const DEFAULT_FILTER: &str = "warn,vote_consumer=info";

/// Installs the global subscriber.
pub fn init(env: &Env) -> Result<()> {
    let filter = EnvFilter::try_new(env.string_or(var::LOG_LEVEL, DEFAULT_FILTER))
        .map_err(|e| Error::new(var::LOG_LEVEL, e.to_string()))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    let installed = match env.get(var::LOG_FORMAT).unwrap_or("json") {
        "json" => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        "text" => builder.try_init(),
        other => {
            return Err(Error::new(
                var::LOG_FORMAT,
                format!("{other:?}: expected `json` or `text`"),
            ));
        }
    };
    // Already installed (a test that set one up first) is fine.
    let _ = installed;
    Ok(())
}
