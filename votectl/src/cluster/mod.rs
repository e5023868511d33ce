//! The only module that talks to a Kubernetes cluster (kube): clients for a kube context, and reads
//! of the application's objects into the same types `votectl render` produces.
//!
//! Invariants: nothing outside this module holds a `kube::Client` it built itself; reads never touch
//! Secrets (no check needs their data, so it never leaves the cluster), except the one PostgreSQL
//! password `trace` needs to look at the database through a port-forward ([`portforward`]).

pub mod objects;
pub mod portforward;

use kube::config::{KubeConfigOptions, KubeconfigError};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("failed to load the kube config{}", context_suffix(.context))]
    Config {
        context: Option<String>,
        #[source]
        source: KubeconfigError,
    },
    #[error("failed to find a kube config (KUBECONFIG, ~/.kube/config or in-cluster)")]
    Infer(#[source] kube::config::InferConfigError),
    #[error("failed to create a Kubernetes client")]
    Client(#[source] kube::Error),
    #[error("failed to read {what} from the cluster")]
    Read {
        what: String,
        #[source]
        source: kube::Error,
    },
}

fn context_suffix(context: &Option<String>) -> String {
    context
        .as_ref()
        .map(|c| format!(" for context {c}"))
        .unwrap_or_default()
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A client for `context` of the kube config, or, without one, for its current context (or the
/// pod's service account when running inside a cluster).
pub async fn client(context: Option<&str>) -> Result<kube::Client> {
    let config = match context {
        Some(context) => kube::Config::from_kubeconfig(&KubeConfigOptions {
            context: Some(context.to_owned()),
            ..KubeConfigOptions::default()
        })
        .await
        .map_err(|source| Error::Config {
            context: Some(context.to_owned()),
            source,
        })?,
        None => kube::Config::infer().await.map_err(Error::Infer)?,
    };
    kube::Client::try_from(config).map_err(Error::Client)
}
