//! The running service: the HTTP endpoints and the consume loop, started together and stopped
//! together.
//!
//! Invariant: [`Application::build`] only binds the port and prepares clients, it talks to neither
//! Redis nor PostgreSQL, so the process starts (and `/health` answers) while they are still coming
//! up; [`Application::run_until_stopped`] migrates, joins the group and consumes, waiting out outages
//! with backoff, until the shutdown future completes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManagerConfig;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::http::{AppState, router};
use crate::metrics::Metrics;
use crate::settings::Settings;
use crate::store::Store;
use crate::streams::StreamClient;
use crate::worker::Worker;

/// Why the service could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid Redis URL: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("HTTP server failed: {0}")]
    Serve(std::io::Error),
    #[error("the consume loop panicked: {0}")]
    Worker(#[from] tokio::task::JoinError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A consumer ready to run.
pub struct Application {
    listener: TcpListener,
    port: u16,
    state: AppState,
    worker: Worker,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .field("worker", &self.worker)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Binds `settings.host:settings.port` (0: an ephemeral port) and prepares the clients.
    pub async fn build(settings: Settings) -> Result<Self> {
        let addr = SocketAddr::new(settings.host, settings.port);
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Bind { addr, source })?;
        let port = listener
            .local_addr()
            .map_err(|source| Error::Bind { addr, source })?
            .port();

        let metrics = Arc::new(Metrics::new());
        let store = Store::new(settings.postgres.clone(), settings.options.clone());
        let checks = redis::Client::open(settings.redis_url.as_str())?
            .get_connection_manager_lazy(
                ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(1)))
                    .set_response_timeout(Some(Duration::from_secs(1)))
                    .set_number_of_retries(1),
            )?;
        let streams = StreamClient::new(
            &settings.redis_url,
            settings.consumer_name.clone(),
            settings.block,
        )
        .map_err(|e| match e {
            crate::streams::Error::Redis(e) => Error::Redis(e),
            crate::streams::Error::Reply(e) => Error::Serve(std::io::Error::other(e)),
        })?;
        let shutdown = CancellationToken::new();
        let worker = Worker::new(
            &settings,
            streams,
            store.clone(),
            metrics.clone(),
            shutdown.clone(),
        );
        Ok(Self {
            listener,
            port,
            state: AppState {
                redis: checks,
                store,
                metrics,
            },
            worker,
            shutdown,
        })
    }

    /// The bound HTTP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The metrics the service updates (tests read them directly).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.state.metrics.clone()
    }

    /// Serves HTTP and consumes until `shutdown` completes; then finishes the batch in hand,
    /// acknowledges it and returns.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let token = self.shutdown.clone();
        let trigger = token.clone();
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutdown requested: finishing the current batch");
            trigger.cancel();
        });
        let worker = tokio::spawn(self.worker.run());
        let http_token = token.clone();
        let served = axum::serve(self.listener, router(self.state))
            .with_graceful_shutdown(async move { http_token.cancelled().await })
            .await;
        if served.is_err() {
            // Without its endpoints the service would look dead; stop consuming too.
            token.cancel();
        }
        worker.await?;
        served.map_err(Error::Serve)
    }
}

/// Completes on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
