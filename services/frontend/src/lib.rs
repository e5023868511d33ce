//! The frontend: serves the live voting page and proxies `/api/*` to the API, so the browser talks to
//! one origin and needs no CORS.
//!
//! Invariants: only paths under `/api/` ever reach the API, and never one that could be normalised to
//! something else (`..`, encoded slashes); every response, proxied or local, carries the strict security
//! headers of [`headers`]; the page is embedded in the binary and needs no build step; an unreachable
//! API gives a 502 JSON error quickly, never a hang.
//!
//! Modules:
//! - [`settings`]: typed settings read once from the environment.
//! - [`assets`]: the embedded page (HTML, CSS, JS) with its ETags and cache policy.
//! - [`proxy`]: the streaming `/api/*` reverse proxy (Server-Sent Events included).
//! - [`headers`]: the security headers set on every response.
//! - [`routes`]: the router: page, static files, proxy, `/health`, `/ready`, the 404 page.
//! - [`startup`]: [`Application`], which binds and serves with graceful shutdown.
//! - [`telemetry`]: JSON (or text) logs and the shutdown signal of the binary.

pub mod assets;
pub mod headers;
pub mod proxy;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod telemetry;

pub use routes::{AppState, router};
pub use settings::Settings;
pub use startup::{Application, Error};

#[cfg(test)]
mod tests;
