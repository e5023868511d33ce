//! The consumer's configuration, read once from the environment at start and validated there.
//!
//! Invariant: every field is usable as is; a bad variable is a [`vote_contract::settings::Error`]
//! naming it. The tuning fields (batch size, block, claim idle, intervals, backoff) have production
//! defaults and no variable of their own; they are public so that tests can shrink them.

use std::net::IpAddr;
use std::time::Duration;

use vote_contract::VoteOptions;
use vote_contract::settings::{Env, Error, Result, port, var};

/// Largest batch a single `XREADGROUP`/`XAUTOCLAIM` returns and a single transaction commits.
pub const DEFAULT_BATCH_SIZE: usize = 500;
/// How long one blocking `XREADGROUP` waits for new entries.
pub const DEFAULT_BLOCK: Duration = Duration::from_secs(2);
/// Entries pending longer than this in another consumer are considered abandoned and claimed.
pub const DEFAULT_CLAIM_MIN_IDLE: Duration = Duration::from_secs(30);
/// How often abandoned entries are looked for.
pub const DEFAULT_CLAIM_INTERVAL: Duration = Duration::from_secs(10);
/// How often fully acknowledged entries are trimmed from the stream.
pub const DEFAULT_TRIM_INTERVAL: Duration = Duration::from_secs(5);
/// First and largest delay between attempts while Redis or PostgreSQL is unavailable.
pub const DEFAULT_BACKOFF: (Duration, Duration) =
    (Duration::from_millis(100), Duration::from_secs(5));

/// Everything the consumer needs to run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address the HTTP endpoints bind to (all interfaces: probes come from the kubelet).
    pub host: IpAddr,
    /// `PORT` (default 8001); 0 binds an ephemeral port (tests).
    pub port: u16,
    /// `REDIS_URL`.
    pub redis_url: String,
    /// `DATABASE_URL` completed with the password of `DATABASE_PASSWORD_FILE`.
    pub postgres: tokio_postgres::Config,
    /// `VOTE_OPTIONS`: entries for any other option are dead-lettered.
    pub options: VoteOptions,
    /// Name in the consumer group: `POD_NAME`, else the host name. A restarted pod keeps its name, so
    /// it re-reads its own pending entries.
    pub consumer_name: String,
    pub batch_size: usize,
    pub block: Duration,
    pub claim_min_idle: Duration,
    pub claim_interval: Duration,
    pub trim_interval: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

impl Settings {
    /// Reads `PORT`, `REDIS_URL`, `DATABASE_URL`, `DATABASE_PASSWORD_FILE`, `VOTE_OPTIONS`, `POD_NAME`.
    pub fn from_env(env: &Env) -> Result<Self> {
        let consumer_name = match env.get(var::POD_NAME) {
            Some(name) => validate_consumer_name(var::POD_NAME, name.trim())?,
            None => {
                let host = nix::unistd::gethostname()
                    .map_err(|e| {
                        Error::new(var::POD_NAME, format!("unset, and no host name: {e}"))
                    })?
                    .to_string_lossy()
                    .into_owned();
                validate_consumer_name(var::POD_NAME, host.trim()).map_err(|e| {
                    Error::new(var::POD_NAME, format!("unset; host name {}", e.reason))
                })?
            }
        };
        Ok(Self {
            host: env.bind_address()?,
            port: env.port(var::PORT, port::CONSUMER)?,
            redis_url: env.redis_url()?,
            postgres: env.postgres_config()?,
            options: env.vote_options()?,
            consumer_name,
            batch_size: DEFAULT_BATCH_SIZE,
            block: DEFAULT_BLOCK,
            claim_min_idle: DEFAULT_CLAIM_MIN_IDLE,
            claim_interval: DEFAULT_CLAIM_INTERVAL,
            trim_interval: DEFAULT_TRIM_INTERVAL,
            backoff_min: DEFAULT_BACKOFF.0,
            backoff_max: DEFAULT_BACKOFF.1,
        })
    }
}

/// A consumer name must be printable and short: it shows up in `XINFO CONSUMERS` and in logs.
fn validate_consumer_name(var: &'static str, name: &str) -> Result<String> {
    if name.is_empty() {
        return Err(Error::new(var, "is empty"));
    }
    if name.len() > 253 || !name.chars().all(|c| c.is_ascii_graphic()) {
        return Err(Error::new(
            var,
            format!("{name:?} must be 1-253 printable ASCII characters without spaces"),
        ));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let s = Settings::from_env(&Env::from_pairs([(var::POD_NAME, "consumer-0")])).unwrap();
        assert_eq!(s.port, 8001);
        assert_eq!(s.consumer_name, "consumer-0");
        assert_eq!(s.batch_size, 500);
        assert_eq!(s.options, VoteOptions::default());
        assert_eq!(s.redis_url, vote_contract::settings::DEFAULT_REDIS_URL);
    }

    #[test]
    fn host_name_when_pod_name_is_unset() {
        let s = Settings::from_env(&Env::default()).unwrap();
        assert!(!s.consumer_name.is_empty());
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (var, value) in [
            (var::PORT, "eighty"),
            (var::REDIS_URL, "http://x"),
            (var::DATABASE_URL, "postgres://u@/?x=%"),
            (var::VOTE_OPTIONS, "Cats"),
            (var::POD_NAME, "two words"),
            (var::DATABASE_PASSWORD_FILE, "/nonexistent/password"),
        ] {
            let err = Settings::from_env(&Env::from_pairs([(var, value)])).unwrap_err();
            assert_eq!(err.var, var, "{err}");
            assert!(err.to_string().contains(var), "{err}");
        }
    }
}
