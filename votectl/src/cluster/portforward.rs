//! Reaching a pod's port from this machine the way `kubectl port-forward` does: through the API
//! server and the kubelet, into the pod's own network namespace. No Service, Ingress or
//! NetworkPolicy is involved or changed, which is why `votectl trace` uses it to look at Redis and
//! PostgreSQL, whose policies admit only the api and the consumer.
//!
//! Invariants: a forward listens on 127.0.0.1 only, on a port the OS picks; each local connection gets
//! its own port-forward stream; dropping the [`Forward`] stops accepting (connections already open end
//! when either side closes).
//!
//! Also here: finding a running pod of a component, and reading the one Secret `trace` needs (the
//! PostgreSQL password, which stays in memory and is never printed).

use std::net::{Ipv4Addr, SocketAddr};

use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::ListParams;
use kube::{Api, Client};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Why a pod or a Secret could not be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "no running pod of {component} in namespace {namespace} (`kubectl -n {namespace} get pods -l {selector}` shows why)"
    )]
    NoRunningPod {
        component: String,
        namespace: String,
        selector: String,
    },
    #[error("failed to list the pods of {component} in namespace {namespace}")]
    ListPods {
        component: String,
        namespace: String,
        #[source]
        source: kube::Error,
    },
    #[error("failed to read Secret {namespace}/{name}")]
    ReadSecret {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    #[error("Secret {namespace}/{name} has no key `{key}`")]
    MissingKey {
        namespace: String,
        name: String,
        key: String,
    },
    #[error("Secret {namespace}/{name} key `{key}` is not UTF-8 text")]
    NotText {
        namespace: String,
        name: String,
        key: String,
    },
    #[error("failed to listen on 127.0.0.1 for a port-forward")]
    Listen(#[source] std::io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The label every pod of a component carries (`app.kubernetes.io/name`).
pub const NAME_LABEL: &str = "app.kubernetes.io/name";

/// The name of a running, ready pod of `component` in `namespace` (the first by name, so repeated
/// traces pick the same one); with none ready, a running one.
pub async fn running_pod(client: &Client, namespace: &str, component: &str) -> Result<String> {
    let selector = format!("{NAME_LABEL}={component}");
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let list = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|source| Error::ListPods {
            component: component.to_owned(),
            namespace: namespace.to_owned(),
            source,
        })?;
    let mut candidates: Vec<(bool, String)> = list
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.phase.as_deref())
                .is_some_and(|phase| phase == "Running")
        })
        .filter_map(|p| Some((!is_ready(p), p.metadata.name.clone()?)))
        .collect();
    candidates.sort();
    candidates
        .into_iter()
        .next()
        .map(|(_, name)| name)
        .ok_or_else(|| Error::NoRunningPod {
            component: component.to_owned(),
            namespace: namespace.to_owned(),
            selector,
        })
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
}

/// The text under `key` of Secret `namespace/name`.
pub async fn secret_text(
    client: &Client,
    namespace: &str,
    name: &str,
    key: &str,
) -> Result<String> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = secrets
        .get(name)
        .await
        .map_err(|source| Error::ReadSecret {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            source,
        })?;
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| b.0.clone())
        .or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(key))
                .map(|s| s.clone().into_bytes())
        })
        .ok_or_else(|| Error::MissingKey {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            key: key.to_owned(),
        })?;
    let text = String::from_utf8(bytes).map_err(|_| Error::NotText {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        key: key.to_owned(),
    })?;
    Ok(text.trim_end_matches(['\r', '\n']).to_owned())
}

/// A local port forwarded to a pod's port; stops accepting when dropped.
#[derive(Debug)]
pub struct Forward {
    local: SocketAddr,
    accept: JoinHandle<()>,
}

impl Forward {
    /// The local address (127.0.0.1 and the port the OS chose).
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// `port` of `pod` in `namespace`, reachable on 127.0.0.1.
    pub async fn start(client: &Client, namespace: &str, pod: &str, port: u16) -> Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(Error::Listen)?;
        let local = listener.local_addr().map_err(Error::Listen)?;
        let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
        let pod = pod.to_owned();
        let accept = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let pods = pods.clone();
                let pod = pod.clone();
                tokio::spawn(async move {
                    let mut forwarder = match pods.portforward(&pod, &[port]).await {
                        Ok(forwarder) => forwarder,
                        Err(e) => {
                            // The local side sees its connection closed; the caller reports that.
                            tracing::debug!(pod, port, error = %e, "port-forward failed");
                            return;
                        }
                    };
                    let Some(mut upstream) = forwarder.take_stream(port) else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut socket, &mut upstream).await;
                    drop(upstream);
                    if let Err(e) = forwarder.join().await {
                        tracing::debug!(pod, port, error = %e, "port-forward ended with an error");
                    }
                });
            }
        });
        Ok(Self { local, accept })
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use http::{Request, Response};
    use kube::client::Body;
    use serde_json::json;

    use super::*;

    /// A client whose API server is `serve`: it answers each request with a status and a JSON body.
    fn mock_client(
        serve: impl Fn(&Request<Body>) -> (u16, serde_json::Value) + Send + 'static,
        requests: usize,
    ) -> (Client, JoinHandle<Vec<String>>) {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let server = tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..requests {
                let (request, send) = handle.next_request().await.expect("a request");
                seen.push(format!(
                    "{} {}",
                    request.method(),
                    request
                        .uri()
                        .path_and_query()
                        .map(|p| p.as_str())
                        .unwrap_or("")
                ));
                let (status, body) = serve(&request);
                send.send_response(
                    Response::builder()
                        .status(status)
                        .body(Body::from(serde_json::to_vec(&body).unwrap()))
                        .unwrap(),
                );
            }
            seen
        });
        (Client::new(service, "default"), server)
    }

    fn pod(name: &str, phase: &str, ready: bool) -> serde_json::Value {
        json!({
            "metadata": {"name": name, "namespace": "voting-data"},
            "status": {
                "phase": phase,
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]
            }
        })
    }

    #[tokio::test]
    async fn a_ready_running_pod_is_preferred_and_chosen_stably() {
        let (client, server) = mock_client(
            |_| {
                (
                    200,
                    json!({
                        "apiVersion": "v1", "kind": "PodList", "metadata": {},
                        "items": [
                            pod("redis-2", "Running", true),
                            pod("redis-0", "Pending", false),
                            pod("redis-1", "Running", false),
                            pod("redis-3", "Running", true),
                        ]
                    }),
                )
            },
            1,
        );
        let name = running_pod(&client, "voting-data", "redis").await.unwrap();
        assert_eq!(name, "redis-2");
        let seen = server.await.unwrap();
        assert_eq!(
            seen,
            [
                "GET /api/v1/namespaces/voting-data/pods?&labelSelector=app.kubernetes.io%2Fname%3Dredis"
            ]
        );
    }

    #[tokio::test]
    async fn no_running_pod_names_the_namespace_and_the_command_to_look() {
        let (client, _server) = mock_client(
            |_| {
                (
                    200,
                    json!({"apiVersion": "v1", "kind": "PodList", "metadata": {},
                           "items": [pod("consumer-x", "Pending", false)]}),
                )
            },
            1,
        );
        let err = running_pod(&client, "voting-consumer", "consumer")
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no running pod of consumer in namespace voting-consumer \
             (`kubectl -n voting-consumer get pods -l app.kubernetes.io/name=consumer` shows why)"
        );
    }

    #[tokio::test]
    async fn the_password_comes_from_the_secret_without_its_newline() {
        let (client, server) = mock_client(
            |request| {
                assert_eq!(
                    request.uri().path(),
                    "/api/v1/namespaces/voting-data/secrets/postgres-password"
                );
                (
                    200,
                    json!({"apiVersion": "v1", "kind": "Secret",
                           "metadata": {"name": "postgres-password"},
                           // "s3cret\n"
                           "data": {"password": "czNjcmV0Cg=="}}),
                )
            },
            2,
        );
        assert_eq!(
            secret_text(&client, "voting-data", "postgres-password", "password")
                .await
                .unwrap(),
            "s3cret"
        );
        let err = secret_text(&client, "voting-data", "postgres-password", "nope")
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Secret voting-data/postgres-password has no key `nope`"
        );
        server.await.unwrap();
    }

    #[tokio::test]
    async fn a_refused_read_is_an_error_naming_the_secret() {
        let (client, _server) = mock_client(
            |_| {
                (
                    403,
                    json!({"apiVersion": "v1", "kind": "Status", "status": "Failure",
                           "message": "secrets \"postgres-password\" is forbidden",
                           "reason": "Forbidden", "code": 403}),
                )
            },
            1,
        );
        let err = secret_text(&client, "voting-data", "postgres-password", "password")
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "failed to read Secret voting-data/postgres-password"
        );
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(source.contains("forbidden"), "{source}");
    }
}
