//! Readiness probes, shared by `up` (which waits for them) and `status` (which reports them).
//!
//! Redis is ready when it answers PING, PostgreSQL when the services' database accepts a connection,
//! a service when its `/ready` answers 200 (which, for the API and the consumer, means their own
//! dependencies answer too).

use std::time::Duration;

use vote_contract::http::{ReadyResponse, path};

use super::Component;
use super::wiring::DATABASE;

/// How long one probe may take; a slower answer counts as not ready.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// `Ok` when ready, else why not (one line).
pub async fn probe(component: Component, port: u16, http: &reqwest::Client) -> Result<(), String> {
    let outcome = tokio::time::timeout(PROBE_TIMEOUT, async {
        match component {
            Component::Redis => redis_ping(port).await,
            Component::Postgres => postgres_ping(port, DATABASE).await,
            Component::Api | Component::Consumer | Component::Frontend => {
                http_ready(&super::wiring::url(component, port), http).await
            }
        }
    })
    .await;
    outcome.unwrap_or_else(|_| Err(format!("no answer within {PROBE_TIMEOUT:?}")))
}

pub async fn redis_ping(port: u16) -> Result<(), String> {
    let client = redis::Client::open(super::wiring::url(Component::Redis, port))
        .map_err(|e| e.to_string())?;
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| e.to_string())?;
    let pong: String = redis::cmd("PING")
        .query_async(&mut connection)
        .await
        .map_err(|e| e.to_string())?;
    if pong == "PONG" {
        Ok(())
    } else {
        Err(format!("PING answered {pong:?}"))
    }
}

pub async fn postgres_ping(port: u16, database: &str) -> Result<(), String> {
    let client = super::postgres::connect(port, database).await?;
    client
        .simple_query("SELECT 1")
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

/// GET `<base>/ready`: 200 is ready; otherwise the failing checks the body names, or the status.
pub async fn http_ready(base: &str, http: &reqwest::Client) -> Result<(), String> {
    let response = http
        .get(format!("{base}{}", path::READY))
        .timeout(PROBE_TIMEOUT)
        .send()
        .await
        .map_err(|e| crate::api::root_cause(&e))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response.text().await.unwrap_or_default();
    Err(match serde_json::from_str::<ReadyResponse>(&body) {
        Ok(ready) => {
            let failing: Vec<String> = ready
                .checks
                .iter()
                .filter(|(_, v)| v.as_str() != ReadyResponse::OK)
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            if failing.is_empty() {
                format!("/ready answered {status}")
            } else {
                failing.join("; ")
            }
        }
        Err(_) => format!("/ready answered {status}"),
    })
}
