//! The security rules every rendered workload follows, checked object by object, and the
//! NetworkPolicies evaluated against the intended flows by an independent model of their semantics
//! (the security checklist's, `votectl_checks::reach`).

#![allow(clippy::unwrap_used)]

mod common;

use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use vote_contract::deploy::{NONROOT_GID, NONROOT_UID};
use votectl_manifests::{Component, Object, Profile, Rendered};

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
        // Every connection between our pods, strangers in our namespaces, the DNS and ingress
        // namespaces, an unrelated namespace and the outside world, on every relevant port,
        // evaluated by the checklist's model of NetworkPolicy semantics.
        let evaluation = votectl_checks::reach::evaluate(
            &rendered.objects,
            &rendered.flows,
            &rendered.namespaces,
        );
        if let Some(d) = evaluation.discrepancies.first() {
            panic!(
                "{label}: {} allowed={}, intended={}: {:?}",
                d.probe, d.allowed, !d.allowed, d.verdict
            );
        }
        let checked = evaluation.probes;
        assert!(checked > 200, "{label}: only {checked} pairs checked");
    }
}
