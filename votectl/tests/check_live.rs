//! `votectl check --live`: the application's objects read from a cluster, here a mocked Kubernetes
//! API (tower-test, kube-rs's own convention) that serves rendered objects the way an API server
//! does (GET of a namespace, paginated lists, Status bodies for errors). The same checks then pass
//! on a faithful install and fail on drift. The last test needs a real cluster (`make e2e`).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::pin::pin;
use std::sync::{Arc, Mutex};

use http::{Method, Request, Response, StatusCode};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use votectl::cluster;
use votectl_checks::{Expectations, Input, Report, run};
use votectl_manifests::{Object, Password, Profile, Secrets, Values, render};

/// Items per page of the fake API server's lists: small, so that paging is exercised.
const PAGE: usize = 2;

/// What the fake API server was asked, and what it refused.
#[derive(Default)]
struct Log {
    requests: Vec<String>,
}

/// The `(kind, plural, api prefix)` of every kind the fake server lists.
const KINDS: [(&str, &str, &str); 7] = [
    ("ServiceAccount", "serviceaccounts", "/api/v1"),
    ("Service", "services", "/api/v1"),
    ("Secret", "secrets", "/api/v1"),
    (
        "NetworkPolicy",
        "networkpolicies",
        "/apis/networking.k8s.io/v1",
    ),
    (
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        "/apis/policy/v1",
    ),
    ("Deployment", "deployments", "/apis/apps/v1"),
    ("StatefulSet", "statefulsets", "/apis/apps/v1"),
];

/// A `Status` body, as the API server sends with every error.
fn status(code: StatusCode, message: &str) -> (StatusCode, Value) {
    let reason = match code {
        StatusCode::NOT_FOUND => "NotFound",
        StatusCode::FORBIDDEN => "Forbidden",
        _ => "MethodNotAllowed",
    };
    (
        code,
        json!({
            "apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code.as_u16(),
        }),
    )
}

/// Answers one request the way an API server holding `objects` would.
fn answer(objects: &[Object], uri: &http::Uri, forbidden: &[&str]) -> (StatusCode, Value) {
    let path = uri.path();
    let query = uri.query().unwrap_or_default();
    if let Some(name) = path.strip_prefix("/api/v1/namespaces/")
        && !name.contains('/')
    {
        return match objects
            .iter()
            .find(|o| o.kind() == "Namespace" && o.name() == name)
        {
            Some(ns) => (StatusCode::OK, serde_json::to_value(ns).unwrap()),
            None => status(
                StatusCode::NOT_FOUND,
                &format!("namespaces \"{name}\" not found"),
            ),
        };
    }
    for (kind, plural, prefix) in KINDS {
        let Some(rest) = path.strip_prefix(&format!("{prefix}/namespaces/")) else {
            continue;
        };
        let Some(namespace) = rest.strip_suffix(&format!("/{plural}")) else {
            continue;
        };
        if forbidden.contains(&plural) {
            return status(
                StatusCode::FORBIDDEN,
                &format!("{plural} is forbidden: cannot list in the namespace {namespace}"),
            );
        }
        let items: Vec<Value> = objects
            .iter()
            .filter(|o| o.kind() == kind && o.namespace() == Some(namespace))
            .map(|o| serde_json::to_value(o).unwrap())
            .collect();
        let start: usize = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("continue="))
            .map_or(0, |t| t.parse().unwrap());
        let end = (start + PAGE).min(items.len());
        let more = end < items.len();
        return (
            StatusCode::OK,
            json!({
                "apiVersion": prefix.trim_start_matches("/apis/").trim_start_matches("/api/"),
                "kind": format!("{kind}List"),
                "metadata": {"resourceVersion": "7", "continue": if more { end.to_string() } else { String::new() }},
                "items": items[start..end],
            }),
        );
    }
    status(StatusCode::NOT_FOUND, &format!("no route for {path}"))
}

/// A client whose API server holds `objects`; `forbidden` plurals answer 403.
fn serve(objects: Vec<Object>, forbidden: &'static [&'static str]) -> (Client, Arc<Mutex<Log>>) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let log = Arc::new(Mutex::new(Log::default()));
    let seen = log.clone();
    tokio::spawn(async move {
        let mut handle = pin!(handle);
        while let Some((request, send)) = handle.next_request().await {
            seen.lock()
                .unwrap()
                .requests
                .push(format!("{} {}", request.method(), request.uri()));
            let (code, body) = if request.method() == Method::GET {
                answer(&objects, request.uri(), forbidden)
            } else {
                status(StatusCode::METHOD_NOT_ALLOWED, "read only")
            };
            send.send_response(
                Response::builder()
                    .status(code)
                    .header("content-type", "application/json")
                    .body(Body::from(serde_json::to_vec(&body).unwrap()))
                    .unwrap(),
            );
        }
    });
    (Client::new(service, "default"), log)
}

/// What a faithful install of the default values looks like in a cluster: the rendered objects
/// (with the Secret) plus what Kubernetes adds: each namespace's name label and `default` account.
fn installed() -> (Vec<Object>, Expectations) {
    let values = Values::default();
    let rendered = render(
        &values,
        &Secrets {
            postgres_password: Some(Password::new("Zq7-unlikely-Pw_93x").unwrap()),
        },
    )
    .unwrap();
    let mut objects = rendered.objects;
    for namespace in rendered.namespaces.all() {
        objects.push(Object::ServiceAccount(ServiceAccount {
            metadata: ObjectMeta {
                name: Some("default".to_owned()),
                namespace: Some(namespace.to_owned()),
                ..ObjectMeta::default()
            },
            ..ServiceAccount::default()
        }));
    }
    for object in &mut objects {
        if let Object::Namespace(ns) = object {
            let name = ns.metadata.name.clone().unwrap();
            ns.metadata
                .labels
                .get_or_insert_default()
                .insert("kubernetes.io/metadata.name".to_owned(), name);
        }
    }
    (objects, Expectations::new(&values, Profile::Default))
}

async fn check(
    objects: Vec<Object>,
    expected: &Expectations,
) -> (Vec<Object>, Report, Vec<String>) {
    let (client, log) = serve(objects, &[]);
    let read = cluster::objects::read(&client, &expected.namespaces.all())
        .await
        .unwrap();
    let report = run(&Input {
        objects: &read,
        expected,
    });
    let requests = log.lock().unwrap().requests.clone();
    (read, report, requests)
}

fn ids(objects: &[Object]) -> BTreeSet<(String, Option<String>, String)> {
    objects
        .iter()
        .map(|o| {
            (
                o.kind().to_owned(),
                o.namespace().map(str::to_owned),
                o.name().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_faithful_install_passes_and_secrets_are_never_read() {
    let (objects, expected) = installed();
    let (read, report, requests) = check(objects.clone(), &expected).await;

    let failed: Vec<_> = report.failed().map(|r| (r.check.id, &r.findings)).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    // Everything but the Secrets and the default accounts, in render's order.
    let wanted: Vec<&Object> = objects
        .iter()
        .filter(|o| o.kind() != "Secret" && o.name() != "default")
        .collect();
    assert_eq!(
        ids(&read),
        ids(&wanted.iter().map(|o| (*o).clone()).collect::<Vec<_>>())
    );
    assert_eq!(read.first().unwrap().kind(), "Namespace");
    assert_eq!(read.last().unwrap().kind(), "StatefulSet");

    assert!(
        requests.iter().all(|r| r.starts_with("GET ")),
        "{requests:#?}"
    );
    assert!(
        !requests.iter().any(|r| r.contains("secrets")),
        "{requests:#?}"
    );
    // Paged: six namespaced kinds in four namespaces, and a second page where there was one.
    assert!(
        requests.iter().any(|r| r.contains("continue=2")),
        "{requests:#?}"
    );
    assert!(requests.iter().all(|r| !r.contains("/namespaces/default/")));
}

#[tokio::test]
async fn drift_in_the_cluster_fails_the_checks_naming_the_objects() {
    let (mut objects, expected) = installed();
    // Someone edited the api to run as root, and opened the data namespace.
    for object in &mut objects {
        if let Object::Deployment(d) = object
            && d.metadata.name.as_deref() == Some("api")
        {
            let pod = d.spec.as_mut().unwrap().template.spec.as_mut().unwrap();
            pod.security_context.as_mut().unwrap().run_as_user = Some(0);
        }
    }
    objects.push(Object::NetworkPolicy(NetworkPolicy {
        metadata: ObjectMeta {
            name: Some("debug-allow-all".to_owned()),
            namespace: Some("voting-data".to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector::default()),
            ingress: Some(vec![NetworkPolicyIngressRule::default()]),
            policy_types: Some(vec!["Ingress".to_owned()]),
            egress: None,
        }),
    }));
    let (_, report, _) = check(objects, &expected).await;
    let failed: BTreeSet<&str> = report.failed().map(|r| r.check.id).collect();
    assert_eq!(failed, BTreeSet::from(["NET-002", "POD-002"]));
    let pod = &report.result("POD-002").unwrap().findings;
    assert!(pod.iter().any(|f| f.kind == "Deployment"
        && f.name == "api"
        && f.field == "spec.template.spec.securityContext.runAsUser"));
    let net = &report.result("NET-002").unwrap().findings;
    assert!(
        net.iter()
            .all(|f| f.kind == "NetworkPolicy" && f.name == "debug-allow-all"),
        "{net:#?}"
    );
}

#[tokio::test]
async fn a_missing_namespace_is_a_finding_and_is_not_listed() {
    let (objects, expected) = installed();
    let objects: Vec<Object> = objects
        .into_iter()
        .filter(|o| o.name() != "voting-data" && o.namespace() != Some("voting-data"))
        .collect();
    let (read, report, requests) = check(objects, &expected).await;
    assert!(read.iter().all(|o| o.namespace() != Some("voting-data")));
    assert!(
        !requests
            .iter()
            .any(|r| r.contains("/namespaces/voting-data/")),
        "{requests:#?}"
    );
    let ns = &report.result("NS-001").unwrap().findings;
    assert!(
        ns.iter()
            .any(|f| f.kind == "Namespace" && f.name == "voting-data"),
        "{ns:#?}"
    );
    let placement = &report.result("NS-002").unwrap().findings;
    assert!(placement.iter().any(|f| f.name == "redis"));
}

#[tokio::test]
async fn an_api_error_names_what_could_not_be_read() {
    let (objects, expected) = installed();
    let (client, _) = serve(objects, &["deployments"]);
    let err = cluster::objects::read(&client, &expected.namespaces.all())
        .await
        .unwrap_err();
    let text = format!("{:#}", anyhow::Error::new(err));
    assert!(
        text.starts_with("failed to read deployments in namespace voting-frontend"),
        "{text}"
    );
    assert!(text.contains("forbidden"), "{text}");
}

/// Against the cluster of the current kube context, where `votectl up` deployed the stack with
/// the profile in VOTECTL_PROFILE (default: default).
#[test]
#[ignore = "needs cluster"]
fn a_deployed_stack_passes_every_check_live() {
    let mut cmd = assert_cmd::Command::cargo_bin("votectl").unwrap();
    let out = cmd.args(["check", "--live"]).assert();
    let output = out.get_output();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
