//! What every handler shares: the options, the Redis and PostgreSQL handles, the latest results for
//! stream clients, the metrics and the shutdown signal.
//!
//! Invariants: building a state connects to nothing (Redis and the pool connect on first use and
//! reconnect by themselves), so the API starts, and answers `/health`, while a dependency is down;
//! every Redis and PostgreSQL call is bounded by a timeout, so a dead dependency costs a request a
//! bounded wait and a 503, never a hang.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio_postgres::NoTls;
use tokio_util::sync::CancellationToken;
use vote_contract::http::ResultsResponse;
use vote_contract::{VoteOptions, db};

use crate::error::{ApiError, Error, Result, chain};
use crate::metrics::Metrics;
use crate::settings::Settings;

/// Longest wait for one Redis command (and for a connection to Redis).
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest wait for a pooled PostgreSQL connection plus the results query.
pub const DB_TIMEOUT: Duration = Duration::from_secs(2);
/// Most PostgreSQL connections the pool holds.
const POOL_SIZE: usize = 16;

/// Results as served: the body, its JSON text and the strong ETag of that text.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultsSnapshot {
    pub results: ResultsResponse,
    pub json: String,
    pub etag: String,
}

impl ResultsSnapshot {
    pub fn new(results: ResultsResponse) -> Self {
        // Serialising plain data cannot fail.
        let json = serde_json::to_string(&results).unwrap_or_default();
        let digest = Sha256::digest(json.as_bytes());
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        Self {
            results,
            json,
            etag: format!("\"{hex}\""),
        }
    }
}

/// Reads the counts and keeps only the configured options, in configured order.
pub async fn read_results(
    client: &tokio_postgres::Client,
    options: &VoteOptions,
) -> Result<ResultsResponse, db::Error> {
    let (counts, last_updated) = db::read_counts(client).await?;
    let counts: std::collections::HashMap<String, u64> = counts.into_iter().collect();
    Ok(ResultsResponse::from_counts(
        options,
        |option| counts.get(option).copied().unwrap_or(0),
        last_updated,
    ))
}

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub(crate) options: Arc<VoteOptions>,
    pub(crate) redis: ConnectionManager,
    pub(crate) db: Pool,
    pub(crate) postgres: Arc<tokio_postgres::Config>,
    /// Latest results; `None` until first read. Stream clients subscribe to it.
    pub(crate) results: Arc<watch::Sender<Option<Arc<ResultsSnapshot>>>>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) cors_origins: Arc<[String]>,
    pub(crate) shutdown: CancellationToken,
}

impl AppState {
    /// Prepares the handles without connecting anywhere.
    pub fn new(settings: &Settings) -> Result<Self> {
        let client = redis::Client::open(settings.redis_url.as_str())?;
        // Fail fast rather than queue requests behind a long reconnect: one retry, short timeouts.
        let redis_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let redis = ConnectionManager::new_lazy_with_config(client, redis_config)?;
        let manager = Manager::from_config(
            settings.postgres.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let db = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(DB_TIMEOUT))
            .create_timeout(Some(DB_TIMEOUT))
            .recycle_timeout(Some(DB_TIMEOUT))
            .build()
            .map_err(|e| Error::Pool(e.to_string()))?;
        let (results, _) = watch::channel(None);
        Ok(Self {
            options: Arc::new(settings.options.clone()),
            redis,
            db,
            postgres: Arc::new(settings.postgres.clone()),
            results: Arc::new(results),
            metrics: Arc::new(Metrics::new(&settings.options)),
            cors_origins: settings.cors_origins.clone().into(),
            shutdown: CancellationToken::new(),
        })
    }

    /// Cancelled when the service stops; stream responses end on it so shutdown can drain.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// The service's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Current results straight from PostgreSQL.
    pub(crate) async fn fresh_results(&self) -> Result<ResultsSnapshot, ApiError> {
        let read = async {
            let client = self
                .db
                .get()
                .await
                .map_err(|e| ApiError::Database(chain(&e)))?;
            read_results(&client, &self.options)
                .await
                .map_err(|e| ApiError::Database(chain(&e)))
        };
        match tokio::time::timeout(DB_TIMEOUT, read).await {
            Ok(results) => results.map(ResultsSnapshot::new),
            Err(_) => Err(ApiError::Database(format!(
                "no answer within {DB_TIMEOUT:?}"
            ))),
        }
    }

    /// Stores `snapshot` for stream clients if it differs from the current one; true if it did.
    pub(crate) fn publish(&self, snapshot: ResultsSnapshot) -> bool {
        self.results.send_if_modified(|current| {
            if current.as_ref().is_some_and(|c| c.json == snapshot.json) {
                return false;
            }
            *current = Some(Arc::new(snapshot));
            true
        })
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("options", &self.options)
            .field("cors_origins", &self.cors_origins)
            .finish_non_exhaustive()
    }
}
