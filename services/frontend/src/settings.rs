//! Settings of the frontend, read once from the environment at start.
//!
//! Invariant: a [`Settings`] value holds only validated values: `api_url` is an absolute http(s) base
//! URL without a trailing slash, so the proxy can append a request path to it verbatim.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use vote_contract::settings::{DEFAULT_API_URL, Env, Error, Result, port, var};

/// Everything the frontend needs to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Address to listen on: all interfaces in a pod; tests use loopback.
    pub host: IpAddr,
    /// `PORT` (default 8080); 0 binds an ephemeral port (tests).
    pub port: u16,
    /// `API_URL`: base URL of the API, e.g. `http://api.voting-api.svc.cluster.local:8000`.
    pub api_url: String,
    /// How long to wait for a TCP connection to the API before answering 502.
    pub connect_timeout: Duration,
    /// How long to wait for the API's response headers before answering 504 (bodies, SSE included,
    /// may then stream for as long as they like).
    pub response_timeout: Duration,
    /// How long a graceful stop waits for in-flight requests after streams were ended.
    pub drain_timeout: Duration,
}

impl Settings {
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
    pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(15);
    pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

    /// Reads `PORT` and `API_URL`; a bad value is an error naming the variable.
    pub fn from_env(env: &Env) -> Result<Self> {
        Ok(Self {
            host: env.bind_address()?,
            port: env.port(var::PORT, port::FRONTEND)?,
            api_url: api_url(env)?,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            response_timeout: Self::DEFAULT_RESPONSE_TIMEOUT,
            drain_timeout: Self::DEFAULT_DRAIN_TIMEOUT,
        })
    }

    /// Settings for tests: loopback, an ephemeral port, the given API.
    pub fn for_tests(api_url: impl Into<String>) -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            api_url: api_url.into().trim_end_matches('/').to_owned(),
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            response_timeout: Self::DEFAULT_RESPONSE_TIMEOUT,
            drain_timeout: Self::DEFAULT_DRAIN_TIMEOUT,
        }
    }
}

/// `API_URL`, which must also parse as a URL with a host and carry no query or fragment, since request
/// paths are appended to it.
fn api_url(env: &Env) -> Result<String> {
    let raw = env.http_url(var::API_URL, DEFAULT_API_URL)?;
    let url =
        reqwest::Url::parse(&raw).map_err(|e| Error::new(var::API_URL, format!("{raw:?}: {e}")))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::new(var::API_URL, format!("{raw:?} has no host")));
    }
    if url.query().is_some() || url.fragment().is_some() || raw.contains(['?', '#']) {
        return Err(Error::new(
            var::API_URL,
            format!("{raw:?} must not have a query or fragment"),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::new(var::API_URL, "must not carry credentials"));
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let s = Settings::from_env(&Env::default()).unwrap();
        assert_eq!(s.port, 8080);
        assert_eq!(s.api_url, "http://127.0.0.1:8000");
        assert_eq!(s.host, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    }

    #[test]
    fn values_are_read_and_normalised() {
        let env = Env::from_pairs([
            (var::PORT, "9090"),
            (
                var::API_URL,
                "http://api.voting-api.svc.cluster.local:8000/",
            ),
        ]);
        let s = Settings::from_env(&env).unwrap();
        assert_eq!(s.port, 9090);
        assert_eq!(s.api_url, "http://api.voting-api.svc.cluster.local:8000");
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (var, value) in [
            (var::PORT, "http"),
            (var::PORT, "70000"),
            (var::API_URL, "api:8000"),
            (var::API_URL, "ftp://api"),
            (var::API_URL, "http://"),
            (var::API_URL, "http://exa mple:8000"),
            (var::API_URL, "http://api:99999"),
            (var::API_URL, "http://api:8000/?x=1"),
            (var::API_URL, "http://u:p@api:8000"),
        ] {
            let err = Settings::from_env(&Env::from_pairs([(var, value)])).unwrap_err();
            assert_eq!(err.var, var, "{value}");
            assert!(err.to_string().contains(var), "{err}");
        }
    }
}
