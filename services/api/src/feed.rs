//! The results feed: keeps [`AppState`]'s latest results current by listening for the consumer's
//! `NOTIFY` on [`NOTIFY_CHANNEL`], so stream clients are pushed changes rather than polling.
//!
//! Invariants:
//! - `LISTEN` is issued before the results are read, on every (re)connection, so no change committed
//!   after a read can be missed;
//! - a burst of notifications becomes one read: after each read the feed waits [`MIN_INTERVAL`], and
//!   every notification that arrived meanwhile is folded into the next read;
//! - results are stored in a `watch` channel: publishing never waits for any client, and a client that
//!   falls behind simply sees the newest results next;
//! - a lost connection is re-established with capped exponential backoff; one log line per state change.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, Client, NoTls};
use vote_contract::db::{self, NOTIFY_CHANNEL};

use crate::error::chain;
use crate::state::{AppState, ResultsSnapshot, read_results};

/// Shortest time between two reads of the results.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Starts the feed; it runs until the state's shutdown token is cancelled.
pub(crate) fn spawn(state: AppState, migrated: bool) -> JoinHandle<()> {
    tokio::spawn(run(state, migrated))
}

/// Why a session with PostgreSQL ended.
enum End {
    Shutdown,
    Lost(String),
}

async fn run(state: AppState, mut migrated: bool) {
    let shutdown = state.shutdown.clone();
    let mut backoff = MIN_BACKOFF;
    // One warning per outage, not one per attempt.
    let mut outage_logged = false;
    loop {
        let mut established = false;
        match session(&state, &mut migrated, &mut established).await {
            End::Shutdown => break,
            End::Lost(reason) => {
                state.metrics.set_results_feed_up(false);
                if established {
                    backoff = MIN_BACKOFF;
                    outage_logged = false;
                }
                if !outage_logged {
                    tracing::warn!(%reason, "results feed cannot reach PostgreSQL; retrying with backoff");
                    outage_logged = true;
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    state.metrics.set_results_feed_up(false);
}

/// One connection: LISTEN, then read and publish on every (coalesced) notification.
async fn session(state: &AppState, migrated: &mut bool, established: &mut bool) -> End {
    let shutdown = &state.shutdown;
    let connected = tokio::select! {
        () = shutdown.cancelled() => return End::Shutdown,
        c = connect_and_listen(&state.postgres) => c,
    };
    let (mut client, notified, mut driver) = match connected {
        Ok(parts) => parts,
        Err(e) => return End::Lost(chain(&e)),
    };
    if !*migrated {
        if let Err(e) = db::migrate(&mut client, &state.options).await {
            return End::Lost(format!("migration failed: {}", chain(&e)));
        }
        *migrated = true;
    }
    loop {
        match read_results(&client, &state.options).await {
            Ok(results) => {
                if state.publish(ResultsSnapshot::new(results)) {
                    state.metrics.results_updated();
                }
            }
            Err(e) => return End::Lost(chain(&e)),
        }
        if !*established {
            // Up only once listening *and* caught up, so "up" means no change can be missed.
            *established = true;
            state.metrics.set_results_feed_up(true);
            tracing::info!(channel = NOTIFY_CHANNEL, "results feed listening");
        }
        tokio::select! {
            () = shutdown.cancelled() => return End::Shutdown,
            () = tokio::time::sleep(MIN_INTERVAL) => {}
        }
        tokio::select! {
            () = shutdown.cancelled() => return End::Shutdown,
            () = notified.notified() => {}
            ended = &mut driver => {
                let reason = match ended {
                    Ok(Some(e)) => chain(&e),
                    Ok(None) => "connection closed".to_owned(),
                    Err(e) => e.to_string(),
                };
                return End::Lost(reason);
            }
        }
    }
}

type Driver = JoinHandle<Option<tokio_postgres::Error>>;

/// Connects, drives the connection on its own task (turning notifications into a [`Notify`] permit,
/// which folds any number of them into one wake-up) and issues `LISTEN`.
async fn connect_and_listen(
    config: &tokio_postgres::Config,
) -> Result<(Client, Arc<Notify>, Driver), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let notified = Arc::new(Notify::new());
    let notify = Arc::clone(&notified);
    let driver = tokio::spawn(async move {
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(_)) => notify.notify_one(),
                Ok(_) => {}
                Err(e) => return Some(e),
            }
        }
        None
    });
    client
        .batch_execute(&format!("LISTEN \"{NOTIFY_CHANNEL}\""))
        .await?;
    Ok((client, notified, driver))
}
