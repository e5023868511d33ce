//! How the components find each other: URLs from ports, and each service's environment.
//!
//! Invariant: variable names come from `vote_contract::settings::var` only, so a renamed variable
//! changes here and in the services at once.

use std::collections::BTreeMap;

use vote_contract::VoteOptions;
use vote_contract::settings::var;

use super::Component;

/// The database the services use (created on first start).
pub const DATABASE: &str = "votes";
/// The superuser `initdb` creates; trust authentication on 127.0.0.1 needs no password.
pub const DATABASE_USER: &str = "postgres";
/// The consumer's name in the consumer group. Stable across restarts, so entries it had read but not
/// acknowledged when it stopped are its own again when it comes back.
pub const CONSUMER_NAME: &str = "votectl-local-consumer";

/// The ports of one run, and what follows from them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wiring {
    pub ports: BTreeMap<Component, u16>,
    pub options: VoteOptions,
}

impl Wiring {
    pub fn port(&self, component: Component) -> u16 {
        self.ports
            .get(&component)
            .copied()
            .unwrap_or_else(|| component.default_port())
    }

    /// The address a user (or another component) reaches `component` at.
    pub fn url(&self, component: Component) -> String {
        url(component, self.port(component))
    }

    pub fn database_url(&self) -> String {
        format!(
            "postgres://{DATABASE_USER}@127.0.0.1:{}/{DATABASE}",
            self.port(Component::Postgres)
        )
    }

    /// The environment a service component is started with (empty for the stores).
    pub fn env(&self, component: Component) -> Vec<(&'static str, String)> {
        let port = (var::PORT, self.port(component).to_string());
        let log = (var::LOG_FORMAT, "json".to_owned());
        // The services default to all interfaces (what a container needs); here they stay on loopback.
        let bind = (var::BIND_ADDRESS, "127.0.0.1".to_owned());
        let stores = [
            (var::REDIS_URL, self.url(Component::Redis)),
            (var::DATABASE_URL, self.database_url()),
            (var::VOTE_OPTIONS, self.options.names().join(",")),
        ];
        match component {
            Component::Redis | Component::Postgres => Vec::new(),
            Component::Api => {
                let frontend = self.port(Component::Frontend);
                let origins = format!("http://127.0.0.1:{frontend},http://localhost:{frontend}");
                let mut env = vec![port, log, bind, (var::CORS_ORIGINS, origins)];
                env.extend(stores);
                env
            }
            Component::Consumer => {
                let mut env = vec![port, log, bind, (var::POD_NAME, CONSUMER_NAME.to_owned())];
                env.extend(stores);
                env
            }
            Component::Frontend => vec![port, log, bind, (var::API_URL, self.url(Component::Api))],
        }
    }
}

/// The URL of `component` listening on 127.0.0.1:`port`.
pub fn url(component: Component, port: u16) -> String {
    match component {
        Component::Redis => format!("redis://127.0.0.1:{port}"),
        Component::Postgres => format!("postgres://{DATABASE_USER}@127.0.0.1:{port}/{DATABASE}"),
        Component::Api | Component::Consumer | Component::Frontend => {
            format!("http://127.0.0.1:{port}")
        }
    }
}

/// Variables a service must not inherit from the user's shell: they would override or contradict
/// the wiring (a password file for a database that uses trust authentication, for one).
pub const SCRUBBED: [&str; 1] = [var::DATABASE_PASSWORD_FILE];

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn wiring() -> Wiring {
        Wiring {
            ports: Component::START_ORDER
                .iter()
                .zip([7001, 7002, 7003, 7004, 7005])
                .map(|(c, p)| (*c, p))
                .collect(),
            options: "cats,dogs,fish".parse().unwrap(),
        }
    }

    fn get<'a>(env: &'a [(&str, String)], name: &str) -> &'a str {
        env.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{name} not set in {env:?}"))
    }

    #[test]
    fn services_point_at_each_other() {
        let w = wiring();
        let api = w.env(Component::Api);
        assert_eq!(get(&api, "PORT"), "7003");
        assert_eq!(get(&api, "BIND_ADDRESS"), "127.0.0.1");
        assert_eq!(get(&api, "REDIS_URL"), "redis://127.0.0.1:7001");
        assert_eq!(
            get(&api, "DATABASE_URL"),
            "postgres://postgres@127.0.0.1:7002/votes"
        );
        assert_eq!(get(&api, "VOTE_OPTIONS"), "cats,dogs,fish");
        assert_eq!(
            get(&api, "CORS_ORIGINS"),
            "http://127.0.0.1:7005,http://localhost:7005"
        );
        let consumer = w.env(Component::Consumer);
        assert_eq!(get(&consumer, "PORT"), "7004");
        assert_eq!(get(&consumer, "POD_NAME"), CONSUMER_NAME);
        assert_eq!(get(&consumer, "DATABASE_URL"), get(&api, "DATABASE_URL"));
        let frontend = w.env(Component::Frontend);
        assert_eq!(get(&frontend, "API_URL"), "http://127.0.0.1:7003");
        assert!(w.env(Component::Redis).is_empty());
    }

    #[test]
    fn every_variable_the_services_read_is_valid_for_the_contract() {
        let w = wiring();
        for c in [Component::Api, Component::Consumer, Component::Frontend] {
            let env = vote_contract::settings::Env::from_pairs(w.env(c));
            env.port(var::PORT, 1).unwrap();
            env.redis_url().unwrap();
            env.postgres_config().unwrap();
            env.vote_options().unwrap();
            env.origins(var::CORS_ORIGINS, "http://localhost:1")
                .unwrap();
            env.http_url(var::API_URL, "http://localhost:1").unwrap();
        }
    }
}
