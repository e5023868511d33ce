//! Environment variable names, default ports and the typed reader the services build their settings
//! from.
//!
//! Invariant: a service reads its environment once, at start, through [`Env`]; a bad value is an
//! [`Error`] naming the variable, which the service prints as one line before exiting. The manifests and
//! the local runtime set variables by these constants, so a renamed variable cannot be missed on one side.

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;

use crate::options::VoteOptions;

/// Variable names.
pub mod var {
    pub const PORT: &str = "PORT";
    /// Address to listen on: `0.0.0.0` (default, what a container needs) or e.g. `127.0.0.1` to stay
    /// off the network, as the local runtime does.
    pub const BIND_ADDRESS: &str = "BIND_ADDRESS";
    pub const REDIS_URL: &str = "REDIS_URL";
    pub const DATABASE_URL: &str = "DATABASE_URL";
    pub const DATABASE_PASSWORD_FILE: &str = "DATABASE_PASSWORD_FILE";
    pub const VOTE_OPTIONS: &str = "VOTE_OPTIONS";
    pub const CORS_ORIGINS: &str = "CORS_ORIGINS";
    pub const POD_NAME: &str = "POD_NAME";
    pub const API_URL: &str = "API_URL";
    /// `json` (default) or `text`.
    pub const LOG_FORMAT: &str = "LOG_FORMAT";
    /// A tracing filter such as `info,vote_api=debug`.
    pub const LOG_LEVEL: &str = "LOG_LEVEL";
}

/// Default listening ports.
pub mod port {
    pub const API: u16 = 8000;
    pub const CONSUMER: u16 = 8001;
    pub const FRONTEND: u16 = 8080;
    pub const REDIS: u16 = 6379;
    pub const POSTGRES: u16 = 5432;
}

pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/votes";
pub const DEFAULT_CORS_ORIGINS: &str = "http://localhost:8080,http://localhost:3000";
pub const DEFAULT_API_URL: &str = "http://127.0.0.1:8000";

/// A variable with a value the service cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {var}: {reason}")]
pub struct Error {
    pub var: &'static str,
    pub reason: String,
}

impl Error {
    pub fn new(var: &'static str, reason: impl Into<String>) -> Self {
        Self {
            var,
            reason: reason.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A snapshot of the environment. Tests build one from pairs instead of mutating the process.
#[derive(Debug, Clone, Default)]
pub struct Env(HashMap<String, String>);

impl Env {
    /// The process environment (variables that are not UTF-8 are left out).
    pub fn from_process() -> Self {
        Self(std::env::vars().collect())
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// The value of `var`; an empty value counts as unset.
    pub fn get(&self, var: &str) -> Option<&str> {
        self.0
            .get(var)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// `var` or `default`.
    pub fn string_or(&self, var: &str, default: &str) -> String {
        self.get(var).unwrap_or(default).to_owned()
    }

    /// `var` parsed with `FromStr`, or `default` when unset.
    pub fn parse_or<T>(&self, var: &'static str, default: T) -> Result<T>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        match self.get(var) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|e| Error::new(var, format!("{v:?}: {e}"))),
        }
    }

    /// A TCP port; 0 asks the OS for an ephemeral port, which tests and the local runtime use.
    pub fn port(&self, var: &'static str, default: u16) -> Result<u16> {
        let port: u16 = self.parse_or(var, default)?;
        Ok(port)
    }

    /// `BIND_ADDRESS`, default `0.0.0.0`.
    pub fn bind_address(&self) -> Result<std::net::IpAddr> {
        self.parse_or(
            var::BIND_ADDRESS,
            std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        )
    }

    /// `VOTE_OPTIONS`, default `cats,dogs`.
    pub fn vote_options(&self) -> Result<VoteOptions> {
        match self.get(var::VOTE_OPTIONS) {
            None => Ok(VoteOptions::default()),
            Some(v) => v
                .parse()
                .map_err(|e| Error::new(var::VOTE_OPTIONS, format!("{e}"))),
        }
    }

    /// `REDIS_URL`, checked to be a Redis URL.
    pub fn redis_url(&self) -> Result<String> {
        let url = self.string_or(var::REDIS_URL, DEFAULT_REDIS_URL);
        redis::Client::open(url.as_str())
            .map_err(|e| Error::new(var::REDIS_URL, format!("{}: {e}", redact(&url))))?;
        Ok(url)
    }

    /// `DATABASE_URL`, completed with the password from `DATABASE_PASSWORD_FILE` when that is set (the
    /// file's trailing newline is ignored), so the URL itself never needs to hold the password.
    pub fn postgres_config(&self) -> Result<tokio_postgres::Config> {
        let url = self.string_or(var::DATABASE_URL, DEFAULT_DATABASE_URL);
        let mut config = tokio_postgres::Config::from_str(&url)
            .map_err(|e| Error::new(var::DATABASE_URL, format!("{}: {e}", redact(&url))))?;
        if config.get_hosts().is_empty() {
            return Err(Error::new(var::DATABASE_URL, "no host given"));
        }
        if let Some(path) = self.get(var::DATABASE_PASSWORD_FILE) {
            let path = PathBuf::from(path);
            let password = std::fs::read_to_string(&path).map_err(|e| {
                Error::new(
                    var::DATABASE_PASSWORD_FILE,
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            let password = password.trim_end_matches(['\r', '\n']);
            if password.is_empty() {
                return Err(Error::new(
                    var::DATABASE_PASSWORD_FILE,
                    format!("{} is empty", path.display()),
                ));
            }
            config.password(password);
        }
        Ok(config)
    }

    /// A comma-separated list of HTTP origins, each `scheme://host[:port]` with no path and never `*`.
    pub fn origins(&self, var: &'static str, default: &str) -> Result<Vec<String>> {
        let raw = self.string_or(var, default);
        raw.split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(|origin| validate_origin(origin).map_err(|reason| Error::new(var, reason)))
            .collect()
    }

    /// An absolute `http://` or `https://` base URL (a trailing `/` is dropped).
    pub fn http_url(&self, var: &'static str, default: &str) -> Result<String> {
        let url = self.string_or(var, default);
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .ok_or_else(|| {
                Error::new(var, format!("{url:?} must start with http:// or https://"))
            })?;
        if rest.is_empty() || rest.starts_with('/') {
            return Err(Error::new(var, format!("{url:?} has no host")));
        }
        Ok(url.trim_end_matches('/').to_owned())
    }
}

fn validate_origin(origin: &str) -> Result<String, String> {
    if origin == "*" {
        return Err("`*` is not allowed: list the origins".to_owned());
    }
    let rest = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .ok_or_else(|| format!("origin {origin:?} must start with http:// or https://"))?;
    if rest.is_empty() || rest.contains('/') || rest.contains('*') {
        return Err(format!(
            "origin {origin:?} must be scheme://host[:port] with no path or wildcard"
        ));
    }
    Ok(origin.to_owned())
}

/// `url` with any password replaced by `***`, for messages and logs.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_when_unset_or_empty() {
        let env = Env::from_pairs([(var::PORT, "")]);
        assert_eq!(env.port(var::PORT, 8000).unwrap(), 8000);
        assert_eq!(env.bind_address().unwrap().to_string(), "0.0.0.0");
        assert_eq!(env.vote_options().unwrap(), VoteOptions::default());
        assert_eq!(
            env.origins(var::CORS_ORIGINS, DEFAULT_CORS_ORIGINS)
                .unwrap(),
            ["http://localhost:8080", "http://localhost:3000"]
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        let env = Env::from_pairs([
            (var::PORT, "80000"),
            (var::VOTE_OPTIONS, "Cats"),
            (var::CORS_ORIGINS, "*"),
            (var::REDIS_URL, "http://nope"),
            (var::DATABASE_URL, "postgres://u:secret@/db?x=%"),
            (var::API_URL, "ftp://x"),
            (var::BIND_ADDRESS, "localhost"),
        ]);
        assert_eq!(env.bind_address().unwrap_err().var, "BIND_ADDRESS");
        assert_eq!(env.port(var::PORT, 1).unwrap_err().var, "PORT");
        assert_eq!(env.vote_options().unwrap_err().var, "VOTE_OPTIONS");
        assert_eq!(
            env.origins(var::CORS_ORIGINS, "").unwrap_err().var,
            "CORS_ORIGINS"
        );
        assert_eq!(env.redis_url().unwrap_err().var, "REDIS_URL");
        let db = env.postgres_config().unwrap_err();
        assert_eq!(db.var, "DATABASE_URL");
        assert!(!db.to_string().contains("secret"), "{db}");
        assert_eq!(env.http_url(var::API_URL, "").unwrap_err().var, "API_URL");
    }

    #[test]
    fn password_comes_from_the_file() {
        let dir = std::env::temp_dir().join(format!("vote-contract-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("password");
        std::fs::write(&file, "s3cret\n").unwrap();
        let env = Env::from_pairs([
            (var::DATABASE_URL, "postgres://votes@db:5432/votes"),
            (var::DATABASE_PASSWORD_FILE, file.to_str().unwrap()),
        ]);
        let config = env.postgres_config().unwrap();
        assert_eq!(config.get_password(), Some(&b"s3cret"[..]));
        let missing = Env::from_pairs([(var::DATABASE_PASSWORD_FILE, "/nonexistent/pw")]);
        assert_eq!(
            missing.postgres_config().unwrap_err().var,
            "DATABASE_PASSWORD_FILE"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(
            redact("postgresql://postgres:postgres@db:5432/votes"),
            "postgresql://postgres:***@db:5432/votes"
        );
        assert_eq!(redact("redis://db:6379"), "redis://db:6379");
        assert_eq!(redact("postgres://u@h/d"), "postgres://u@h/d");
    }
}
