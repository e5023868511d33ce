//! Where the trace finds the API, Redis, PostgreSQL and the services' readiness endpoints, and how it
//! tells the user to look further (the next commands differ between the local runtime and a cluster).
//!
//! Invariant: a target only holds addresses votectl itself can reach (loopback, or local ends of
//! port-forwards it keeps open for as long as the target lives); credentials never appear in
//! [`Target::describe`] or in any message.

use std::path::Path;
use std::str::FromStr;

use anyhow::Context;
use serde::Serialize;

use vote_contract::deploy;
use vote_contract::settings::port;
use votectl_manifests::{Namespaces, Values};

use crate::local::{Component, Runtime, StateDir};

/// Where the stack runs, for the commands suggested next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Place {
    /// The local runtime; `state_dir_flag` is the `--state-dir …` to repeat (empty for the default).
    Local { state_dir_flag: String },
    /// A cluster reached through this kube context.
    Cluster {
        context: String,
        /// Namespaces of frontend, api, consumer and data.
        namespaces: [String; 4],
    },
}

/// A component whose process votectl can see (local runtime only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessState {
    pub component: String,
    pub pid: u32,
    pub running: bool,
}

/// Everything the trace talks to.
pub struct Target {
    pub place: Place,
    /// Base URL of the API.
    pub api: String,
    pub redis_url: String,
    pub postgres: tokio_postgres::Config,
    /// How PostgreSQL is named in messages.
    pub postgres_display: String,
    /// Services whose `/ready` is part of the evidence: (name, base URL).
    pub services: Vec<(String, String)>,
    /// Services that could not be reached at all: (name, why), shown beside the `/ready` answers.
    pub unreachable: Vec<(String, String)>,
    /// Looks up the processes again when evidence is gathered (local runtime only).
    pub processes: Option<Box<dyn Fn() -> Vec<ProcessState> + Send + Sync>>,
    /// The vote options the stack was started with, when known.
    pub options: Vec<String>,
    /// Whatever keeps the addresses valid (port-forwards); dropped with the target.
    pub keep_alive: Vec<Box<dyn Send + Sync>>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("place", &self.place)
            .field("api", &self.api)
            .field("redis_url", &self.redis_url)
            .field("postgres", &self.postgres_display)
            .field("services", &self.services)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// The local runtime recorded in `state`. `state_dir_flag` is repeated in suggested commands.
    pub fn local(state: &StateDir, given: &Path, is_default: bool) -> anyhow::Result<Self> {
        let runtime = Runtime::load(state)?.with_context(|| {
            format!(
                "no local runtime in {}: start one with `votectl up --local` (or point --state-dir at it)",
                state.root().display()
            )
        })?;
        let url = |component: Component| -> anyhow::Result<String> {
            runtime
                .component(component)
                .map(|c| c.url.clone())
                .with_context(|| {
                    format!(
                        "{} does not record {component}: the runtime did not finish starting; run \
                         `votectl down` and `votectl up --local` again",
                        state.runtime_file().display()
                    )
                })
        };
        let postgres_url = url(Component::Postgres)?;
        let postgres = tokio_postgres::Config::from_str(&postgres_url)
            .with_context(|| format!("unusable PostgreSQL URL {postgres_url:?} in runtime.json"))?;
        let services = [Component::Api, Component::Consumer, Component::Frontend]
            .into_iter()
            .filter_map(|c| {
                runtime
                    .component(c)
                    .map(|r| (c.name().to_owned(), r.url.clone()))
            })
            .collect();
        let records = runtime.components.clone();
        let processes = move || {
            Component::DISPLAY_ORDER
                .iter()
                .filter_map(|c| records.iter().find(|r| r.name == *c))
                .map(|r| ProcessState {
                    component: r.name.name().to_owned(),
                    pid: r.process.pid,
                    running: r.is_alive(),
                })
                .collect()
        };
        let state_dir_flag = if is_default {
            String::new()
        } else {
            format!("--state-dir {} ", shell_quote(&given.display().to_string()))
        };
        Ok(Self {
            place: Place::Local { state_dir_flag },
            api: url(Component::Api)?,
            redis_url: url(Component::Redis)?,
            postgres,
            postgres_display: vote_contract::settings::redact(&postgres_url),
            services,
            unreachable: Vec::new(),
            processes: Some(Box::new(processes)),
            options: runtime.vote_options.clone(),
            keep_alive: Vec::new(),
        })
    }

    /// The application in the cluster of `context`, as `values` deploy it: Redis, PostgreSQL and the
    /// services reached through port-forwards to running pods, PostgreSQL's password read from the
    /// Secret the values name. Nothing in the cluster is changed.
    pub async fn cluster(context: &str, values: &Values) -> anyhow::Result<Self> {
        use crate::cluster::portforward::{self, Forward};

        anyhow::ensure!(
            values.redis.url.in_cluster() && values.postgresql.url.in_cluster(),
            "trace reaches the in-cluster Redis and PostgreSQL only; the values point at {} and {}",
            values.redis.url,
            values.postgresql.url
        );
        let client = crate::cluster::client(Some(context)).await?;
        let namespaces = Namespaces::of(values);
        let mut keep_alive: Vec<Box<dyn Send + Sync>> = Vec::new();
        // A forward to `port` of a running pod of `component`: its local base address.
        let mut forward = async |namespace: &str, component: &str, port: u16| {
            let pod = portforward::running_pod(&client, namespace, component).await?;
            let forward = Forward::start(&client, namespace, &pod, port).await?;
            let local = forward.local();
            keep_alive.push(Box::new(forward));
            Ok::<_, portforward::Error>(local)
        };
        let redis = forward(&namespaces.data, "redis", port::REDIS).await?;
        let postgres_at = forward(&namespaces.data, "postgres", port::POSTGRES).await?;
        let api = forward(&namespaces.api, deploy::API, port::API).await?;
        let mut services = vec![(deploy::API.to_owned(), format!("http://{api}"))];
        let mut unreachable = Vec::new();
        for (namespace, name, port) in [
            (&namespaces.consumer, deploy::CONSUMER, port::CONSUMER),
            (&namespaces.frontend, deploy::FRONTEND, port::FRONTEND),
        ] {
            match forward(namespace, name, port).await {
                Ok(local) => services.push((name.to_owned(), format!("http://{local}"))),
                Err(e) => unreachable.push((name.to_owned(), e.to_string())),
            }
        }
        let password = portforward::secret_text(
            &client,
            &namespaces.data,
            values.postgresql.password_secret.as_str(),
            votectl_manifests::render::PASSWORD_KEY,
        )
        .await?;
        let mut postgres = tokio_postgres::Config::new();
        postgres
            .host(postgres_at.ip().to_string())
            .port(postgres_at.port())
            .user(values.postgresql.url.user())
            .dbname(values.postgresql.url.database())
            .password(password);
        let postgres_display = format!(
            "postgres://{}@{postgres_at}/{} (port-forward to {}/postgres)",
            values.postgresql.url.user(),
            values.postgresql.url.database(),
            namespaces.data
        );
        Ok(Self {
            place: Place::Cluster {
                context: context.to_owned(),
                namespaces: [
                    namespaces.frontend.clone(),
                    namespaces.api.clone(),
                    namespaces.consumer.clone(),
                    namespaces.data.clone(),
                ],
            },
            api: format!("http://{api}"),
            redis_url: format!("redis://{redis}"),
            postgres,
            postgres_display,
            services,
            unreachable,
            processes: None,
            options: values.vote_options.names(),
            keep_alive,
        })
    }

    /// One line saying what is being traced.
    pub fn describe(&self) -> String {
        match &self.place {
            Place::Local { .. } => format!("the local runtime (API {})", self.api),
            Place::Cluster { context, .. } => {
                format!(
                    "the cluster of context {context} (API {} via port-forward)",
                    self.api
                )
            }
        }
    }

    /// The `votectl` command to show logs of `component`, or its `kubectl` equivalent.
    pub fn logs_command(&self, component: &str) -> String {
        match &self.place {
            Place::Local { state_dir_flag } => format!("votectl {state_dir_flag}logs {component}"),
            Place::Cluster {
                context,
                namespaces,
            } => {
                let (namespace, kind) = self.workload(component, namespaces);
                format!("kubectl --context {context} -n {namespace} logs {kind}/{component}")
            }
        }
    }

    /// The command that shows every component's state.
    pub fn status_command(&self) -> String {
        match &self.place {
            Place::Local { state_dir_flag } => format!("votectl {state_dir_flag}status"),
            Place::Cluster { context, .. } => format!(
                "kubectl --context {context} get pods -A -l app.kubernetes.io/part-of={}",
                votectl_manifests::render::PART_OF
            ),
        }
    }

    /// A command about this stack, e.g. `trace` or `results`.
    pub fn votectl(&self, rest: &str) -> String {
        match &self.place {
            Place::Local { state_dir_flag } => format!("votectl {state_dir_flag}{rest}"),
            Place::Cluster { context, .. } => format!("votectl {rest} --context {context}"),
        }
    }

    /// How to restart `component` cleanly.
    pub fn restart_command(&self, component: &str) -> String {
        match &self.place {
            Place::Local { state_dir_flag } => format!(
                "votectl {state_dir_flag}down && votectl {state_dir_flag}up --local --detach"
            ),
            Place::Cluster {
                context,
                namespaces,
            } => {
                let (namespace, kind) = self.workload(component, namespaces);
                format!(
                    "kubectl --context {context} -n {namespace} rollout restart {kind}/{component}"
                )
            }
        }
    }

    fn workload<'a>(
        &self,
        component: &str,
        namespaces: &'a [String; 4],
    ) -> (&'a str, &'static str) {
        match component {
            "frontend" => (&namespaces[0], "deployment"),
            "api" => (&namespaces[1], "deployment"),
            "consumer" => (&namespaces[2], "deployment"),
            _ => (&namespaces[3], "statefulset"),
        }
    }
}

/// `text` quoted for a POSIX shell when it needs it.
pub fn shell_quote(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c))
    {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn quoting_only_when_needed() {
        assert_eq!(shell_quote("/tmp/x-1"), "/tmp/x-1");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn in_a_cluster_the_next_commands_are_kubectl_in_the_right_namespace() {
        let target = Target {
            place: Place::Cluster {
                context: "kind-votes".into(),
                namespaces: [
                    "a-voting-frontend".into(),
                    "a-voting-api".into(),
                    "a-voting-consumer".into(),
                    "a-voting-data".into(),
                ],
            },
            api: "http://127.0.0.1:1".into(),
            redis_url: "redis://127.0.0.1:2".into(),
            postgres: tokio_postgres::Config::new(),
            postgres_display: String::new(),
            services: Vec::new(),
            unreachable: Vec::new(),
            processes: None,
            options: Vec::new(),
            keep_alive: Vec::new(),
        };
        assert_eq!(
            target.logs_command("consumer"),
            "kubectl --context kind-votes -n a-voting-consumer logs deployment/consumer"
        );
        assert_eq!(
            target.logs_command("postgres"),
            "kubectl --context kind-votes -n a-voting-data logs statefulset/postgres"
        );
        assert_eq!(
            target.restart_command("consumer"),
            "kubectl --context kind-votes -n a-voting-consumer rollout restart deployment/consumer"
        );
        assert_eq!(
            target.status_command(),
            "kubectl --context kind-votes get pods -A -l app.kubernetes.io/part-of=voting-app"
        );
        assert_eq!(
            target.votectl("trace"),
            "votectl trace --context kind-votes"
        );
    }

    #[test]
    fn no_runtime_is_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::new(tmp.path()).unwrap();
        let err = Target::local(&state, tmp.path(), false).unwrap_err();
        assert!(
            format!("{err:#}").contains("start one with `votectl up --local`"),
            "{err:#}"
        );
    }
}
