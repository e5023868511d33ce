//! The local runtime: the whole stack as processes on this machine, no cluster.
//!
//! Redis and PostgreSQL come from the system's packages, the three services from the workspace's built
//! binaries; everything listens on 127.0.0.1 and keeps its data, logs and bookkeeping under one state
//! directory ([`StateDir`]).
//!
//! Invariants:
//! - `runtime.json` in the state directory lists every process this runtime started that may still be
//!   alive, with its PID *and* its kernel start time, so a PID reused by an unrelated process is never
//!   taken for ours (and never signalled).
//! - Changes to the runtime (`up`, `down`) hold an exclusive lock on the state directory; a second
//!   `up` while anything recorded is alive changes nothing.
//! - Stopping never deletes data; only [`StateDir::purge`] does, and it only removes the entries this
//!   runtime creates, never anything else a user may have put in the directory.

pub mod binaries;
pub mod health;
pub mod ports;
pub mod postgres;
pub mod process;
pub mod redis;
pub mod runtime;
pub mod stack;
pub mod state;
pub mod wiring;

use std::fmt;

use serde::{Deserialize, Serialize};
use vote_contract::deploy;
use vote_contract::settings::port;

pub use runtime::{ComponentRecord, Mode, Runtime};
pub use state::StateDir;

/// One process of the local stack.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Component {
    Redis,
    Postgres,
    Api,
    Consumer,
    Frontend,
}

impl Component {
    /// Dependencies first: each component's dependencies are started (and ready) before it.
    pub const START_ORDER: [Self; 5] = [
        Self::Redis,
        Self::Postgres,
        Self::Api,
        Self::Consumer,
        Self::Frontend,
    ];
    /// What faces the user first; also the order `status` lists them in.
    pub const DISPLAY_ORDER: [Self; 5] = [
        Self::Frontend,
        Self::Api,
        Self::Consumer,
        Self::Redis,
        Self::Postgres,
    ];
    /// Producers before the stores they write to, so nothing in flight is lost to a missing store.
    pub const STOP_ORDER: [Self; 5] = [
        Self::Frontend,
        Self::Api,
        Self::Consumer,
        Self::Postgres,
        Self::Redis,
    ];

    /// The name used in tables, JSON, log file names and `votectl logs <name>`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Redis => "redis",
            Self::Postgres => "postgres",
            Self::Api => deploy::API,
            Self::Consumer => deploy::CONSUMER,
            Self::Frontend => deploy::FRONTEND,
        }
    }

    /// The port tried first when none is given.
    pub fn default_port(self) -> u16 {
        match self {
            Self::Redis => port::REDIS,
            Self::Postgres => port::POSTGRES,
            Self::Api => port::API,
            Self::Consumer => port::CONSUMER,
            Self::Frontend => port::FRONTEND,
        }
    }

    /// The workspace binary for a service; `None` for the stores, which come from the system.
    pub fn service_binary(self) -> Option<&'static str> {
        match self {
            Self::Redis | Self::Postgres => None,
            Self::Api => Some("vote-api"),
            Self::Consumer => Some("vote-consumer"),
            Self::Frontend => Some("vote-frontend"),
        }
    }

    pub fn is_service(self) -> bool {
        self.service_binary().is_some()
    }

    /// Parses a component name as used on the command line and in `runtime.json`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::START_ORDER.into_iter().find(|c| c.name() == name)
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Conditions the user has to act on; each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{tool} not found{looked}: install Debian's `{package}` package (apt-get install {package})"
    )]
    MissingTool {
        tool: &'static str,
        package: &'static str,
        looked: String,
    },
    #[error("port {port} for {component} is already in use{holder}")]
    PortInUse {
        port: u16,
        component: Component,
        holder: String,
    },
    #[error(
        "another votectl is starting or stopping the local runtime in {0} (it holds votectl.lock); \
         wait for it or stop it"
    )]
    Busy(String),
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_the_contract() {
        for c in Component::START_ORDER {
            assert_eq!(Component::from_name(c.name()), Some(c));
        }
        assert_eq!(Component::Api.name(), "api");
        assert_eq!(Component::Consumer.name(), "consumer");
        assert_eq!(Component::Frontend.name(), "frontend");
        assert_eq!(Component::from_name("web"), None);
    }

    #[test]
    fn orders_cover_every_component_once() {
        for order in [
            Component::START_ORDER,
            Component::DISPLAY_ORDER,
            Component::STOP_ORDER,
        ] {
            let mut sorted = order.to_vec();
            sorted.sort();
            assert_eq!(sorted, Component::START_ORDER.to_vec());
        }
    }
}
