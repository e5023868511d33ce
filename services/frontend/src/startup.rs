//! [`Application`]: binds the listener and serves the router until told to stop.
//!
//! Invariant: a stop first closes the listener and ends every proxied event stream (browsers reconnect,
//! to another replica if there is one), then waits for in-flight requests at most `drain_timeout`, so
//! a stop always finishes.

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::routes::{AppState, router};
use crate::settings::Settings;

/// Why the frontend could not start or serve.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("failed to build the HTTP client for the API: {0}")]
    Client(#[from] reqwest::Error),
    #[error("server failed: {0}")]
    Serve(std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A bound, not yet serving, frontend.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    state: AppState,
    drain_timeout: Duration,
}

impl Application {
    /// Binds `settings.host:settings.port` (port 0: an ephemeral port) and prepares the state.
    pub async fn build(settings: Settings) -> Result<Self> {
        let state = AppState::new(&settings)?;
        let addr = SocketAddr::new(settings.host, settings.port);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| Error::Bind { addr, source })?;
        Ok(Self {
            listener,
            addr,
            state,
            drain_timeout: settings.drain_timeout,
        })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` completes, then stops gracefully (see the module invariant).
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let state = self.state.clone();
        let stopping = tokio_util::sync::CancellationToken::new();
        let signal = {
            let stopping = stopping.clone();
            async move {
                shutdown.await;
                tracing::info!("stopping: ending event streams, draining requests");
                state.stop_streams();
                stopping.cancel();
            }
        };
        tracing::info!(addr = %self.addr, api_url = %self.state.api_url(), "frontend listening");
        let serve = axum::serve(self.listener, router(self.state))
            .with_graceful_shutdown(signal)
            .into_future();
        let drain_timeout = self.drain_timeout;
        tokio::select! {
            served = serve => served.map_err(Error::Serve)?,
            () = async move {
                stopping.cancelled().await;
                tokio::time::sleep(drain_timeout).await;
            } => tracing::warn!(?drain_timeout, "requests still open after the drain timeout; stopping anyway"),
        }
        tracing::info!("stopped");
        Ok(())
    }
}
