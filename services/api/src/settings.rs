//! The API's configuration, read once from the environment at start and validated there.
//!
//! Invariant: every field holds a usable value; a bad variable is a
//! [`vote_contract::settings::Error`] naming it, which `main` prints as one line before exiting 2.

use std::time::Duration;

use tracing_subscriber::EnvFilter;
use vote_contract::VoteOptions;
use vote_contract::settings::{DEFAULT_CORS_ORIGINS, Env, Error, port, var};

/// How long a PostgreSQL connection attempt may take when `DATABASE_URL` does not say.
const DEFAULT_PG_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Log filter used when `LOG_LEVEL` is not set.
pub const DEFAULT_LOG_LEVEL: &str = "info";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One JSON object per line (the default: what log collectors parse).
    #[default]
    Json,
    /// Human-readable lines, for a terminal.
    Text,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "json" => Ok(Self::Json),
            "text" => Ok(Self::Text),
            other => Err(format!("{other:?} is not `json` or `text`")),
        }
    }
}

/// Everything the API needs to run.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to listen on (`BIND_ADDRESS`, default all interfaces).
    pub host: std::net::IpAddr,
    /// Port to listen on; 0 picks a free one (tests).
    pub port: u16,
    /// Where votes are appended (`REDIS_URL`).
    pub redis_url: String,
    /// Where counts are read (`DATABASE_URL`, password from `DATABASE_PASSWORD_FILE`).
    pub postgres: tokio_postgres::Config,
    /// The options a vote may name (`VOTE_OPTIONS`).
    pub options: VoteOptions,
    /// Browser origins allowed by CORS (`CORS_ORIGINS`); never `*`.
    pub cors_origins: Vec<String>,
    /// `LOG_FORMAT`.
    pub log_format: LogFormat,
    /// `LOG_LEVEL`, a tracing filter such as `info,vote_api=debug`.
    pub log_level: String,
}

impl Settings {
    /// Reads and validates every variable; the first bad one is the error.
    pub fn from_env(env: &Env) -> Result<Self, Error> {
        let host = env.bind_address()?;
        let port = env.port(var::PORT, port::API)?;
        let redis_url = env.redis_url()?;
        let mut postgres = env.postgres_config()?;
        if postgres.get_connect_timeout().is_none() {
            postgres.connect_timeout(DEFAULT_PG_CONNECT_TIMEOUT);
        }
        if postgres.get_application_name().is_none() {
            postgres.application_name("vote-api");
        }
        let options = env.vote_options()?;
        let cors_origins = env.origins(var::CORS_ORIGINS, DEFAULT_CORS_ORIGINS)?;
        let log_format = env.parse_or(var::LOG_FORMAT, LogFormat::Json)?;
        let log_level = env.string_or(var::LOG_LEVEL, DEFAULT_LOG_LEVEL);
        EnvFilter::try_new(&log_level)
            .map_err(|e| Error::new(var::LOG_LEVEL, format!("{log_level:?}: {e}")))?;
        Ok(Self {
            host,
            port,
            redis_url,
            postgres,
            options,
            cors_origins,
            log_format,
            log_level,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let s = Settings::from_env(&Env::default()).unwrap();
        assert_eq!(s.port, 8000);
        assert_eq!(s.options, VoteOptions::default());
        assert_eq!(
            s.cors_origins,
            ["http://localhost:8080", "http://localhost:3000"]
        );
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.log_level, "info");
        assert_eq!(
            s.postgres.get_connect_timeout(),
            Some(&DEFAULT_PG_CONNECT_TIMEOUT)
        );
    }

    #[test]
    fn each_bad_variable_is_named() {
        let cases = [
            (var::PORT, "http"),
            (var::PORT, "65536"),
            (var::REDIS_URL, "mysql://x"),
            (var::DATABASE_URL, "postgres://u:pw@h:notaport/db"),
            (var::DATABASE_PASSWORD_FILE, "/nonexistent/password"),
            (var::VOTE_OPTIONS, "cats,Dogs"),
            (var::CORS_ORIGINS, "*"),
            (var::LOG_FORMAT, "xml"),
            (var::LOG_LEVEL, "info,[[["),
        ];
        for (name, value) in cases {
            let err = Settings::from_env(&Env::from_pairs([(name, value)])).unwrap_err();
            assert_eq!(err.var, name, "{name}={value}: {err}");
            let line = err.to_string();
            assert!(line.starts_with(&format!("invalid {name}: ")), "{line}");
            assert!(!line.contains('\n'), "{line}");
            assert!(!line.contains("pw@"), "password leaked: {line}");
        }
    }
}
