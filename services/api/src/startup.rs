//! Starting and stopping the service: bind, migrate, start the results feed, serve until told to
//! stop, then drain.
//!
//! Invariants: the API starts even when Redis or PostgreSQL is down (it reports not ready and
//! recovers by itself); on shutdown, stream responses end first (they watch the same token), then
//! in-flight requests finish, then [`Application::run_until_stopped`] returns.

use std::future::Future;
use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_postgres::NoTls;
use vote_contract::db;

use crate::error::{Error, Result, chain};
use crate::routes::router;
use crate::settings::Settings;
use crate::state::AppState;

/// A bound, ready-to-serve API.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    port: u16,
    state: AppState,
    feed: JoinHandle<()>,
}

impl Application {
    /// Binds `0.0.0.0:PORT`, applies the schema (so results work before the consumer ever ran) and
    /// starts the results feed. A database that is down does not stop the start: the feed keeps
    /// retrying, migrations included.
    pub async fn build(settings: Settings) -> Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from((settings.host, settings.port)))
            .await
            .map_err(|source| Error::Bind {
                port: settings.port,
                source,
            })?;
        let port = listener
            .local_addr()
            .map_err(|source| Error::Bind {
                port: settings.port,
                source,
            })?
            .port();
        let state = AppState::new(&settings)?;
        let migrated = match migrate(&settings).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "cannot apply the schema yet; will retry in the background");
                false
            }
        };
        let feed = crate::feed::spawn(state.clone(), migrated);
        tracing::info!(port, "vote-api listening");
        Ok(Self {
            listener,
            port,
            state,
            feed,
        })
    }

    /// The port actually bound (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The state shared by the handlers.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then drains in-flight requests and returns.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let token = self.state.shutdown.clone();
        let trigger = token.clone();
        let watcher = tokio::spawn(async move {
            tokio::select! {
                () = shutdown => {
                    tracing::info!("shutdown requested; draining");
                    trigger.cancel();
                }
                () = trigger.cancelled() => {}
            }
        });
        let served = axum::serve(self.listener, router(self.state.clone()))
            .with_graceful_shutdown(token.clone().cancelled_owned())
            .await;
        // Stop the feed and the watcher whether serving ended well or not.
        token.cancel();
        let _ = watcher.await;
        let _ = self.feed.await;
        tracing::info!("vote-api stopped");
        served.map_err(Error::Serve)
    }
}

/// Applies the embedded migrations and seeds the configured options.
async fn migrate(settings: &Settings) -> std::result::Result<(), String> {
    let (mut client, connection) = settings
        .postgres
        .connect(NoTls)
        .await
        .map_err(|e| chain(&e))?;
    let driver = tokio::spawn(connection);
    let migrated = db::migrate(&mut client, &settings.options).await;
    drop(client);
    let _ = driver.await;
    migrated.map_err(|e| chain(&e))
}

/// Completes on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
