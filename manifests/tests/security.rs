//! The security rules every rendered workload follows, checked object by object, and the
//! NetworkPolicies evaluated by an independent model against the intended flows.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use vote_contract::deploy::{NONROOT_GID, NONROOT_UID};
use votectl_manifests::{Component, Flow, Object, Peer, Profile, Protocol, Rendered};

fn variants() -> Vec<(String, Rendered)> {
    let mut out: Vec<(String, Rendered)> = Profile::ALL
        .iter()
        .map(|p| (p.name().to_owned(), common::render_profile(*p)))
        .collect();
    let sets = ["networkPolicies.ingressNamespace=ingress,namespacePrefix=b-"];
    out.push((
        sets[0].to_owned(),
        common::render(&common::load(Profile::Default, &[], &sets), None),
    ));
    out
}

#[test]
fn every_pod_and_container_follows_the_rules() {
    for (label, rendered) in variants() {
        let values = common::load(Profile::Default, &[], &[]).values;
        let mut workloads = 0;
        for object in &rendered.objects {
            let Some(template) = object.pod_template() else {
                continue;
            };
            workloads += 1;
            let what = format!("{label}: {} {}", object.kind(), object.name());
            let spec = template.spec.as_ref().unwrap();
            assert_eq!(spec.automount_service_account_token, Some(false), "{what}");
            assert_eq!(
                spec.service_account_name.as_deref(),
                Some(object.name()),
                "{what}"
            );
            assert!(
                spec.host_network.is_none() && spec.host_pid.is_none(),
                "{what}"
            );
            let pod = spec.security_context.as_ref().unwrap();
            assert_eq!(pod.run_as_non_root, Some(true), "{what}");
            assert_eq!(
                pod.seccomp_profile.as_ref().unwrap().type_,
                "RuntimeDefault",
                "{what}"
            );
            let (uid, gid, fs) = match object.name() {
                "redis" => {
                    let u = values.redis.security_context;
                    (u.run_as_user.get(), u.run_as_group.get(), u.fs_group.get())
                }
                "postgres" => {
                    let u = values.postgresql.security_context;
                    (u.run_as_user.get(), u.run_as_group.get(), u.fs_group.get())
                }
                _ => (NONROOT_UID, NONROOT_GID, NONROOT_GID),
            };
            assert_eq!(
                (pod.run_as_user, pod.run_as_group, pod.fs_group),
                (
                    Some(i64::from(uid)),
                    Some(i64::from(gid)),
                    Some(i64::from(fs))
                ),
                "{what}"
            );
            let volumes = spec.volumes.clone().unwrap_or_default();
            let claims: Vec<String> = match object {
                Object::StatefulSet(s) => s
                    .spec
                    .as_ref()
                    .unwrap()
                    .volume_claim_templates
                    .iter()
                    .flatten()
                    .map(|c| c.metadata.name.clone().unwrap())
                    .collect(),
                _ => Vec::new(),
            };
            for c in &spec.containers {
                let sc = c.security_context.as_ref().unwrap();
                assert_eq!(sc.read_only_root_filesystem, Some(true), "{what}");
                assert_eq!(sc.allow_privilege_escalation, Some(false), "{what}");
                assert_eq!(sc.privileged, Some(false), "{what}");
                let caps = sc.capabilities.as_ref().unwrap();
                assert_eq!(
                    caps.drop.as_deref(),
                    Some(&["ALL".to_owned()][..]),
                    "{what}"
                );
                assert!(caps.add.is_none(), "{what}");
                let resources = c.resources.as_ref().unwrap();
                for list in [&resources.requests, &resources.limits] {
                    let list = list.as_ref().unwrap();
                    assert!(
                        list.contains_key("cpu") && list.contains_key("memory"),
                        "{what}"
                    );
                }
                for probe in [&c.startup_probe, &c.liveness_probe, &c.readiness_probe] {
                    assert!(probe.is_some(), "{what}: a probe is missing");
                }
                if let Some(http) = c.liveness_probe.as_ref().unwrap().http_get.as_ref() {
                    assert_eq!(http.path.as_deref(), Some("/health"), "{what}");
                    let ready = c
                        .readiness_probe
                        .as_ref()
                        .unwrap()
                        .http_get
                        .as_ref()
                        .unwrap();
                    assert_eq!(ready.path.as_deref(), Some("/ready"), "{what}");
                }
                // Every writable mount is scratch or the data volume: the root stays read-only.
                let mounts = c.volume_mounts.clone().unwrap_or_default();
                assert!(
                    mounts.iter().any(|m| m.mount_path == "/tmp"),
                    "{what}: no /tmp"
                );
                for m in mounts.iter().filter(|m| m.read_only != Some(true)) {
                    let scratch = volumes
                        .iter()
                        .any(|v| v.name == m.name && v.empty_dir.is_some());
                    assert!(
                        scratch || claims.contains(&m.name),
                        "{what}: {} is writable but neither emptyDir nor a claim",
                        m.mount_path
                    );
                }
                // The password only as a file.
                for e in c.env.iter().flatten() {
                    assert!(
                        e.value_from
                            .as_ref()
                            .is_none_or(|f| f.secret_key_ref.is_none()),
                        "{what}"
                    );
                    let value = e.value.as_deref().unwrap_or_default();
                    assert!(!value.contains(common::PASSWORD), "{what}: {}", e.name);
                }
            }
            if object.name() == "postgres" {
                let mounts = spec.containers[0].volume_mounts.clone().unwrap();
                assert!(mounts.iter().any(|m| m.mount_path == "/var/run/postgresql"));
            }
        }
        assert_eq!(workloads, 5, "{label}");
    }
}

#[test]
fn every_object_is_labelled_and_every_workload_has_its_account_and_budget() {
    for (label, rendered) in variants() {
        for object in &rendered.objects {
            let labels = object.metadata().labels.clone().unwrap();
            for key in ["part-of", "managed-by", "instance"] {
                assert!(
                    labels.contains_key(&format!("app.kubernetes.io/{key}")),
                    "{label}: {} {} lacks app.kubernetes.io/{key}",
                    object.kind(),
                    object.name()
                );
            }
            if let Object::ServiceAccount(sa) = object {
                assert_eq!(sa.automount_service_account_token, Some(false));
            }
        }
        for component in Component::ALL {
            // The consumer serves only probes and metrics: no Service.
            let kinds: &[&str] = match component {
                Component::Consumer => &["ServiceAccount", "PodDisruptionBudget"],
                _ => &["ServiceAccount", "PodDisruptionBudget", "Service"],
            };
            for kind in kinds {
                assert!(
                    rendered
                        .objects
                        .iter()
                        .any(|o| o.kind() == *kind && o.name() == component.name()),
                    "{label}: no {kind} for {component}"
                );
            }
        }
        for object in &rendered.objects {
            if let Object::Deployment(d) = object {
                let strategy = d.spec.as_ref().unwrap().strategy.as_ref().unwrap();
                let rolling = strategy.rolling_update.as_ref().unwrap();
                assert_eq!(rolling.max_unavailable, Some(IntOrString::Int(0)));
            }
        }
    }
}

// ----- An independent model of NetworkPolicy semantics ------------------------------------------

struct Pod {
    namespace: String,
    labels: BTreeMap<String, String>,
}

fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    assert!(
        selector.match_expressions.is_none(),
        "the model knows matchLabels only"
    );
    selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v))
}

fn peer_matches(peer: &NetworkPolicyPeer, policy_namespace: &str, pod: &Pod) -> bool {
    assert!(peer.ip_block.is_none(), "the model knows selectors only");
    let namespace_ok = match &peer.namespace_selector {
        Some(selector) => selects(
            selector,
            &BTreeMap::from([(
                "kubernetes.io/metadata.name".to_owned(),
                pod.namespace.clone(),
            )]),
        ),
        None => pod.namespace == policy_namespace,
    };
    let pod_ok = peer
        .pod_selector
        .as_ref()
        .is_none_or(|s| selects(s, &pod.labels));
    namespace_ok && pod_ok
}

fn port_matches(ports: &Option<Vec<NetworkPolicyPort>>, port: u16, protocol: Protocol) -> bool {
    ports.as_ref().is_none_or(|ports| {
        ports.iter().any(|p| {
            p.protocol.as_deref().unwrap_or("TCP") == protocol.as_str()
                && p.port
                    .as_ref()
                    .is_none_or(|q| *q == IntOrString::Int(i32::from(port)))
        })
    })
}

/// Would a connection from `src` to `dst` on `port` be allowed by `policies`?
fn allowed(
    policies: &[(&str, &NetworkPolicy)],
    src: &Pod,
    dst: &Pod,
    port: u16,
    protocol: Protocol,
) -> bool {
    let applies = |pod: &Pod, kind: &str| {
        policies
            .iter()
            .filter(|(ns, p)| {
                let spec = p.spec.as_ref().unwrap();
                *ns == pod.namespace
                    && selects(spec.pod_selector.as_ref().unwrap(), &pod.labels)
                    && spec.policy_types.iter().flatten().any(|t| t == kind)
            })
            .copied()
            .collect::<Vec<_>>()
    };
    let egress = applies(src, "Egress");
    let egress_ok = egress.is_empty()
        || egress.iter().any(|(ns, p)| {
            p.spec
                .as_ref()
                .unwrap()
                .egress
                .iter()
                .flatten()
                .any(|rule| {
                    port_matches(&rule.ports, port, protocol)
                        && rule
                            .to
                            .as_ref()
                            .is_none_or(|to| to.iter().any(|peer| peer_matches(peer, ns, dst)))
                })
        });
    let ingress = applies(dst, "Ingress");
    let ingress_ok = ingress.is_empty()
        || ingress.iter().any(|(ns, p)| {
            p.spec
                .as_ref()
                .unwrap()
                .ingress
                .iter()
                .flatten()
                .any(|rule| {
                    port_matches(&rule.ports, port, protocol)
                        && rule
                            .from
                            .as_ref()
                            .is_none_or(|from| from.iter().any(|peer| peer_matches(peer, ns, src)))
                })
        });
    egress_ok && ingress_ok
}

#[test]
fn the_policies_allow_exactly_the_intended_flows() {
    for (label, rendered) in variants() {
        let policies: Vec<(&str, &NetworkPolicy)> = rendered
            .objects
            .iter()
            .filter_map(|o| match o {
                Object::NetworkPolicy(p) => Some((o.namespace().unwrap(), p)),
                _ => None,
            })
            .collect();
        for namespace in rendered.namespaces.all() {
            let deny = policies
                .iter()
                .find(|(ns, p)| {
                    *ns == namespace && p.metadata.name.as_deref() == Some("default-deny")
                })
                .unwrap_or_else(|| panic!("{label}: no default-deny in {namespace}"));
            let spec = deny.1.spec.as_ref().unwrap();
            assert_eq!(
                spec.policy_types.as_deref(),
                Some(&["Ingress".to_owned(), "Egress".to_owned()][..])
            );
        }
        // Pods: ours (with their rendered labels), DNS, an ingress controller, and a stranger.
        let mut pods: Vec<(Peer, Pod)> = Vec::new();
        for object in &rendered.objects {
            if let Some(template) = object.pod_template() {
                let component = Component::ALL
                    .into_iter()
                    .find(|c| c.name() == object.name())
                    .unwrap();
                let namespace = object.namespace().unwrap().to_owned();
                pods.push((
                    Peer::Workload {
                        namespace: namespace.clone(),
                        component,
                    },
                    Pod {
                        namespace,
                        labels: template.metadata.clone().unwrap().labels.unwrap(),
                    },
                ));
            }
        }
        for namespace in ["kube-system", "ingress", "elsewhere"] {
            pods.push((
                Peer::Namespace {
                    namespace: namespace.to_owned(),
                },
                Pod {
                    namespace: namespace.to_owned(),
                    labels: BTreeMap::from([("app".to_owned(), "x".to_owned())]),
                },
            ));
        }
        let mut checked = 0;
        for (src_peer, src) in &pods {
            for (dst_peer, dst) in &pods {
                if std::ptr::eq(src, dst) {
                    continue;
                }
                for (port, protocol) in [
                    (8080, Protocol::Tcp),
                    (8000, Protocol::Tcp),
                    (8001, Protocol::Tcp),
                    (6379, Protocol::Tcp),
                    (5432, Protocol::Tcp),
                    (53, Protocol::Udp),
                    (53, Protocol::Tcp),
                    (443, Protocol::Tcp),
                ] {
                    let intended = rendered.flows.iter().any(|f: &Flow| {
                        // `Anywhere` is any client outside the application: our own pods
                        // connect only where a flow names them.
                        let from_ok = f.from == *src_peer
                            || (f.from == Peer::Anywhere
                                && !matches!(src_peer, Peer::Workload { .. }))
                            || matches!(&f.from, Peer::Namespace { namespace } if *namespace == src.namespace);
                        let to_ok = f.to == *dst_peer
                            || matches!(&f.to, Peer::Namespace { namespace } if *namespace == dst.namespace);
                        from_ok && to_ok && f.port == port && f.protocol == protocol
                    });
                    // Traffic between two pods outside the application is not ours to judge.
                    let ours = matches!(src_peer, Peer::Workload { .. })
                        || matches!(dst_peer, Peer::Workload { .. });
                    if !ours {
                        continue;
                    }
                    let got = allowed(&policies, src, dst, port, protocol);
                    assert_eq!(
                        got,
                        intended,
                        "{label}: {src_peer} -> {dst_peer} {port}/{} allowed={got}, intended={intended}",
                        protocol.as_str()
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 200, "{label}: only {checked} pairs checked");
    }
}
