//! The vote API: accepts votes into the Redis stream `votes` and serves the counts from PostgreSQL,
//! as JSON and as Server-Sent Events.
//!
//! Modules:
//! - [`settings`]: configuration from the environment, validated at start;
//! - [`startup`]: [`Application`]: bind, migrate, serve, drain;
//! - [`routes`]: [`router`], the route table, the layers every response passes through;
//! - [`state`]: what handlers share ([`AppState`]);
//! - [`feed`]: PostgreSQL `LISTEN` keeping the streamed results current;
//! - [`error`]: [`ApiError`], the one error-to-response mapping;
//! - [`extract`]: extractors whose rejections are JSON errors;
//! - [`metrics`], [`telemetry`]: observability.
//!
//! Names that cross a service boundary (stream, fields, paths, bodies, variables) come from
//! `vote_contract` only.

pub mod error;
pub mod extract;
mod feed;
pub mod metrics;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod state;
pub mod telemetry;

pub use error::{ApiError, Error, Result};
pub use routes::{ApiDoc, router};
pub use settings::Settings;
pub use startup::{Application, shutdown_signal};
pub use state::AppState;
