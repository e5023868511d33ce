//! The vote consumer: counts each vote of the Redis stream `votes` exactly once in PostgreSQL.
//!
//! It reads the stream as a member of the group `vote-consumers`, counts each batch in one
//! transaction keyed by request id, acknowledges only after the commit, claims what dead consumers
//! left pending, moves malformed entries to `votes:dead`, trims what every group acknowledged, and
//! serves `/health`, `/ready` and `/metrics`.
//!
//! Modules, outside in: [`app`] (the service), [`worker`] (the consume loop), [`entries`] (decoding and
//! routing a batch), [`store`] (PostgreSQL), [`streams`] (Redis), [`http`], [`metrics`], [`backoff`],
//! [`settings`], [`telemetry`].

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod app;
pub mod backoff;
pub mod entries;
pub mod http;
pub mod metrics;
pub mod settings;
pub mod store;
pub mod streams;
pub mod telemetry;
pub mod worker;

pub use app::{Application, Error, Result, shutdown_signal};
pub use http::router;
pub use settings::Settings;

/// Builds the service and runs it until SIGTERM or SIGINT.
pub async fn run(settings: Settings) -> Result<()> {
    let app = Application::build(settings).await?;
    tracing::info!(port = app.port(), "listening");
    app.run_until_stopped(shutdown_signal()).await
}
