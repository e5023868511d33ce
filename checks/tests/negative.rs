//! For each check of the catalogue, a rendered object broken on purpose: exactly the expected
//! checks fail, with a finding naming the object and the field.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use common::{Case, PASSWORD, assert_fails};
use k8s_openapi::api::core::v1::{
    Capabilities, EnvVar, EnvVarSource, HostPathVolumeSource, SeccompProfile, SecretKeySelector,
    SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use votectl_checks::catalogue;
use votectl_manifests::{Object, Profile};

const API: (&str, Option<&str>, &str) = ("Deployment", Some("voting-api"), "api");
const CONSUMER: (&str, Option<&str>, &str) = ("Deployment", Some("voting-consumer"), "consumer");
const FRONTEND: (&str, Option<&str>, &str) = ("Deployment", Some("voting-frontend"), "frontend");
const REDIS: (&str, Option<&str>, &str) = ("StatefulSet", Some("voting-data"), "redis");
const POSTGRES: (&str, Option<&str>, &str) = ("StatefulSet", Some("voting-data"), "postgres");

fn case() -> Case {
    Case::profile(Profile::Default)
}

fn container(name: &str) -> String {
    format!("spec.template.spec.containers[name={name}]")
}

fn security(c: &mut k8s_openapi::api::core::v1::Container) -> &mut SecurityContext {
    c.security_context.as_mut().unwrap()
}

/// Every check of the catalogue is broken by at least one test here.
#[test]
fn every_check_has_a_negative_test() {
    let source = include_str!("negative.rs");
    for check in catalogue() {
        let quoted = format!("\"{}\"", check.id);
        assert!(
            source.matches(&quoted).count() >= 2,
            "{} has no negative test",
            check.id
        );
    }
}

#[test]
fn pod_001_run_as_non_root() {
    // Set on the containers, not the pod, is enough; set on neither is not.
    let mut c = case();
    c.pod_mut("api")
        .security_context
        .as_mut()
        .unwrap()
        .run_as_non_root = None;
    assert!(c.failing().is_empty());
    security(c.container_mut("api")).run_as_non_root = None;
    assert_fails(
        &c,
        &["POD-001"],
        "POD-001",
        API,
        "spec.template.spec.securityContext.runAsNonRoot",
    );

    let mut c = case();
    security(c.container_mut("consumer")).run_as_non_root = Some(false);
    assert_fails(
        &c,
        &["POD-001"],
        "POD-001",
        CONSUMER,
        &format!("{}.securityContext.runAsNonRoot", container("consumer")),
    );
}

#[test]
fn pod_002_image_user() {
    let mut c = case();
    c.pod_mut("api")
        .security_context
        .as_mut()
        .unwrap()
        .run_as_user = Some(0);
    let message = assert_fails(
        &c,
        &["POD-002"],
        "POD-002",
        API,
        "spec.template.spec.securityContext.runAsUser",
    );
    assert!(message.contains("root"), "{message}");

    // Our UID on the redis image (999): the original crash loop, the other way round.
    let mut c = case();
    c.pod_mut("redis")
        .security_context
        .as_mut()
        .unwrap()
        .run_as_user = Some(65532);
    let message = assert_fails(
        &c,
        &["POD-002"],
        "POD-002",
        REDIS,
        "spec.template.spec.securityContext.runAsUser",
    );
    assert!(
        message.contains("65532") && message.contains("999"),
        "{message}"
    );

    let mut c = case();
    c.pod_mut("postgres")
        .security_context
        .as_mut()
        .unwrap()
        .fs_group = None;
    assert_fails(
        &c,
        &["POD-002"],
        "POD-002",
        POSTGRES,
        "spec.template.spec.securityContext.fsGroup",
    );

    let mut c = case();
    security(c.container_mut("frontend")).run_as_group = Some(1000);
    assert_fails(
        &c,
        &["POD-002"],
        "POD-002",
        FRONTEND,
        &format!("{}.securityContext.runAsGroup", container("frontend")),
    );

    // The values' own user for postgres is what counts.
    let c = Case::new(
        Profile::Default,
        &[],
        &["postgresql.securityContext.runAsUser=70"],
    );
    assert!(c.failing().is_empty());
}

#[test]
fn pod_003_seccomp() {
    let mut c = case();
    c.pod_mut("frontend")
        .security_context
        .as_mut()
        .unwrap()
        .seccomp_profile = None;
    assert_fails(
        &c,
        &["POD-003"],
        "POD-003",
        FRONTEND,
        "spec.template.spec.securityContext.seccompProfile",
    );

    let mut c = case();
    security(c.container_mut("redis")).seccomp_profile = Some(SeccompProfile {
        type_: "Unconfined".to_owned(),
        localhost_profile: None,
    });
    let message = assert_fails(
        &c,
        &["POD-003"],
        "POD-003",
        REDIS,
        &format!("{}.securityContext.seccompProfile.type", container("redis")),
    );
    assert!(message.contains("Unconfined"));
}

#[test]
fn pod_004_host_namespaces_and_ports() {
    for field in ["hostNetwork", "hostPID", "hostIPC"] {
        let mut c = case();
        let spec = c.pod_mut("consumer");
        match field {
            "hostNetwork" => spec.host_network = Some(true),
            "hostPID" => spec.host_pid = Some(true),
            _ => spec.host_ipc = Some(true),
        }
        assert_fails(
            &c,
            &["POD-004"],
            "POD-004",
            CONSUMER,
            &format!("spec.template.spec.{field}"),
        );
    }
    let mut c = case();
    c.container_mut("api").ports.as_mut().unwrap()[0].host_port = Some(80);
    assert_fails(
        &c,
        &["POD-004"],
        "POD-004",
        API,
        &format!("{}.ports[0].hostPort", container("api")),
    );
}

#[test]
fn pod_005_host_path() {
    let mut c = case();
    c.pod_mut("postgres")
        .volumes
        .as_mut()
        .unwrap()
        .push(Volume {
            name: "node".to_owned(),
            host_path: Some(HostPathVolumeSource {
                path: "/var/run".to_owned(),
                type_: None,
            }),
            ..Volume::default()
        });
    let message = assert_fails(
        &c,
        &["POD-005"],
        "POD-005",
        POSTGRES,
        "spec.template.spec.volumes[name=node].hostPath",
    );
    assert!(message.contains("/var/run"));
}

#[test]
fn ctr_001_read_only_root() {
    let mut c = case();
    security(c.container_mut("api")).read_only_root_filesystem = Some(false);
    assert_fails(
        &c,
        &["CTR-001"],
        "CTR-001",
        API,
        &format!(
            "{}.securityContext.readOnlyRootFilesystem",
            container("api")
        ),
    );
}

#[test]
fn ctr_002_privilege_escalation() {
    let mut c = case();
    security(c.container_mut("consumer")).allow_privilege_escalation = None;
    assert_fails(
        &c,
        &["CTR-002"],
        "CTR-002",
        CONSUMER,
        &format!(
            "{}.securityContext.allowPrivilegeEscalation",
            container("consumer")
        ),
    );
}

#[test]
fn ctr_003_capabilities() {
    let mut c = case();
    security(c.container_mut("redis")).capabilities = Some(Capabilities {
        add: Some(vec!["NET_ADMIN".to_owned()]),
        drop: Some(vec!["ALL".to_owned()]),
    });
    let message = assert_fails(
        &c,
        &["CTR-003"],
        "CTR-003",
        REDIS,
        &format!("{}.securityContext.capabilities.add", container("redis")),
    );
    assert!(message.contains("NET_ADMIN"));

    let mut c = case();
    security(c.container_mut("frontend")).capabilities = None;
    assert_fails(
        &c,
        &["CTR-003"],
        "CTR-003",
        FRONTEND,
        &format!(
            "{}.securityContext.capabilities.drop",
            container("frontend")
        ),
    );
}

#[test]
fn ctr_004_privileged() {
    let mut c = case();
    security(c.container_mut("postgres")).privileged = Some(true);
    assert_fails(
        &c,
        &["CTR-004"],
        "CTR-004",
        POSTGRES,
        &format!("{}.securityContext.privileged", container("postgres")),
    );
}

#[test]
fn ctr_005_writable_mounts() {
    let mut c = case();
    let spec = c.pod_mut("frontend");
    spec.volumes.as_mut().unwrap().push(Volume {
        name: "shared".to_owned(),
        config_map: Some(Default::default()),
        ..Volume::default()
    });
    spec.containers[0]
        .volume_mounts
        .as_mut()
        .unwrap()
        .push(VolumeMount {
            name: "shared".to_owned(),
            mount_path: "/srv".to_owned(),
            ..VolumeMount::default()
        });
    assert_fails(
        &c,
        &["CTR-005"],
        "CTR-005",
        FRONTEND,
        &format!(
            "{}.volumeMounts[name=shared].readOnly",
            container("frontend")
        ),
    );
}

#[test]
fn sa_001_no_token() {
    let mut c = case();
    c.pod_mut("api").automount_service_account_token = Some(true);
    assert_fails(
        &c,
        &["SA-001"],
        "SA-001",
        API,
        "spec.template.spec.automountServiceAccountToken",
    );

    let mut c = case();
    match c.object_mut("ServiceAccount", Some("voting-data"), "redis") {
        Object::ServiceAccount(sa) => sa.automount_service_account_token = None,
        _ => unreachable!(),
    }
    assert_fails(
        &c,
        &["SA-001"],
        "SA-001",
        ("ServiceAccount", Some("voting-data"), "redis"),
        "automountServiceAccountToken",
    );
}

#[test]
fn sa_002_own_account() {
    let mut c = case();
    c.pod_mut("consumer").service_account_name = Some("default".to_owned());
    assert_fails(
        &c,
        &["SA-002"],
        "SA-002",
        CONSUMER,
        "spec.template.spec.serviceAccountName",
    );

    // Two workloads sharing one account.
    let mut c = case();
    c.pod_mut("postgres").service_account_name = Some("redis".to_owned());
    let message = assert_fails(
        &c,
        &["SA-002"],
        "SA-002",
        POSTGRES,
        "spec.template.spec.serviceAccountName",
    );
    assert!(message.contains("also the account of redis"), "{message}");

    let mut c = case();
    c.remove("ServiceAccount", Some("voting-api"), "api");
    assert_fails(
        &c,
        &["SA-002"],
        "SA-002",
        API,
        "spec.template.spec.serviceAccountName",
    );
}

fn policy(namespace: &str, name: &str, spec: NetworkPolicySpec) -> Object {
    Object::NetworkPolicy(NetworkPolicy {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
    })
}

#[test]
fn net_001_default_deny() {
    // Without the data namespace's default-deny, redis (whose own policy restricts only ingress)
    // may connect anywhere: the model sees it too.
    let mut c = case();
    c.remove("NetworkPolicy", Some("voting-data"), "default-deny");
    assert_fails(
        &c,
        &["NET-001", "NET-002"],
        "NET-001",
        ("Namespace", None, "voting-data"),
        "(NetworkPolicy)",
    );
    let report = c.report();
    let net1: Vec<&str> = report
        .result("NET-001")
        .unwrap()
        .findings
        .iter()
        .map(|f| f.message.as_str())
        .collect();
    assert_eq!(
        net1,
        [
            "no NetworkPolicy with `podSelector: {}` denies all egress in voting-data",
            "no NetworkPolicy with `podSelector: {}` denies all ingress in voting-data",
        ]
    );
    let net2 = &report.result("NET-002").unwrap().findings;
    assert!(
        net2.iter()
            .any(|f| f.name == "redis" && f.message.contains("allowed but not intended")),
        "{net2:#?}"
    );

    // A default-deny for ingress only.
    let mut c = case();
    match c.object_mut("NetworkPolicy", Some("voting-api"), "default-deny") {
        Object::NetworkPolicy(p) => {
            p.spec.as_mut().unwrap().policy_types = Some(vec!["Ingress".to_owned()]);
        }
        _ => unreachable!(),
    }
    let message = assert_fails(
        &c,
        &["NET-001", "NET-002"],
        "NET-001",
        ("NetworkPolicy", Some("voting-api"), "default-deny"),
        "spec.policyTypes, spec.egress",
    );
    assert!(message.contains("egress"), "{message}");
    // Any other pod of voting-api may now connect out, to the public frontend for one.
    let report = c.report();
    let net2 = &report.result("NET-002").unwrap().findings;
    assert!(
        net2.iter()
            .all(|f| f.message.starts_with("voting-api/<other pod> -> ")),
        "{net2:#?}"
    );
    assert!(
        net2.iter().any(|f| f.message.starts_with(
            "voting-api/<other pod> -> voting-frontend/frontend is allowed but not intended on 8080/TCP"
        )),
        "{net2:#?}"
    );

    // Turned off in the values: every namespace lacks both.
    let c = Case::new(Profile::Default, &[], &["networkPolicies.enabled=false"]);
    let report = c.report();
    assert_eq!(report.result("NET-001").unwrap().findings.len(), 8);
    assert_eq!(c.failing(), BTreeSet::from(["NET-001", "NET-002"]),);
}

#[test]
fn net_002_an_allow_all_policy_opens_unintended_flows() {
    let mut c = case();
    c.objects.push(policy(
        "voting-data",
        "allow-all",
        NetworkPolicySpec {
            pod_selector: Some(LabelSelector::default()),
            ingress: Some(vec![NetworkPolicyIngressRule::default()]),
            policy_types: Some(vec!["Ingress".to_owned()]),
            egress: None,
        },
    ));
    let message = assert_fails(
        &c,
        &["NET-002"],
        "NET-002",
        ("NetworkPolicy", Some("voting-data"), "allow-all"),
        "spec.ingress",
    );
    assert!(message.contains("allowed but not intended"), "{message}");
    let report = c.report();
    let findings = &report.result("NET-002").unwrap().findings;
    assert!(
        findings.iter().any(|f| f.message.starts_with(
            "<outside the cluster> -> voting-data/postgres is allowed but not intended on "
        ) && f.message.contains("5432/TCP")
            && f.message.ends_with("egress unrestricted (outside the cluster); ingress allowed by voting-data/allow-all")),
        "{findings:#?}"
    );
    // Traffic that other policies still deny is not reported: the api may reach only its stores.
    assert!(
        !findings.iter().any(|f| f
            .message
            .starts_with("voting-api/api -> voting-data/postgres")),
        "{findings:#?}"
    );
}

#[test]
fn net_002_a_removed_allow_policy_blocks_intended_flows() {
    let mut c = case();
    c.remove("NetworkPolicy", Some("voting-api"), "allow-api");
    let message = assert_fails(
        &c,
        &["NET-002"],
        "NET-002",
        ("NetworkPolicy", Some("voting-api"), "default-deny"),
        "spec.ingress",
    );
    assert!(
        message.contains(
            "voting-frontend/frontend -> voting-api/api is intended but blocked on 8000/TCP"
        ),
        "{message}"
    );
    // The api's own egress to its stores and DNS is blocked too.
    let report = c.report();
    let findings = &report.result("NET-002").unwrap().findings;
    assert!(
        findings.iter().any(|f| f.field == "spec.egress"
            && f.message
                .starts_with("voting-api/api -> voting-data/redis is intended but blocked")),
        "{findings:#?}"
    );
}

#[test]
fn net_002_a_widened_selector_lets_other_namespaces_in() {
    // allow-postgres admitting any pod of any namespace instead of the api's pods. A stranger in
    // an application namespace stays held back by its own namespace's default-deny egress; pods
    // of namespaces without policies (kube-system, elsewhere) get in.
    let mut c = case();
    match c.object_mut("NetworkPolicy", Some("voting-data"), "allow-postgres") {
        Object::NetworkPolicy(p) => {
            let rules = p.spec.as_mut().unwrap().ingress.as_mut().unwrap();
            let peer = &mut rules[0].from.as_mut().unwrap()[0];
            peer.pod_selector = None;
            peer.namespace_selector = Some(LabelSelector::default());
        }
        _ => unreachable!(),
    }
    let message = assert_fails(
        &c,
        &["NET-002"],
        "NET-002",
        ("NetworkPolicy", Some("voting-data"), "allow-postgres"),
        "spec.ingress",
    );
    assert!(
        message.contains("allowed but not intended on 5432/TCP"),
        "{message}"
    );
    let report = c.report();
    let findings = &report.result("NET-002").unwrap().findings;
    let mut sources: Vec<&str> = findings
        .iter()
        .map(|f| f.message.split(" -> ").next().unwrap())
        .collect();
    sources.sort_unstable();
    assert_eq!(
        sources,
        ["elsewhere/<other pod>", "kube-system/<other pod>"],
        "{findings:#?}"
    );
}

#[test]
fn sec_001_credentials_in_env_or_args() {
    let secret = "hunter2-Credential";
    let mut c = case();
    c.container_mut("api").env.as_mut().unwrap().push(EnvVar {
        name: "ADMIN_PASSWORD".to_owned(),
        value: Some(secret.to_owned()),
        value_from: None,
    });
    let message = assert_fails(
        &c,
        &["SEC-001"],
        "SEC-001",
        API,
        &format!("{}.env[name=ADMIN_PASSWORD].value", container("api")),
    );
    assert!(!message.contains(secret), "the finding leaks the secret");

    let mut c = case();
    for e in c.container_mut("consumer").env.as_mut().unwrap() {
        if e.name == "DATABASE_URL" {
            e.value = Some(format!(
                "postgres://postgres:{PASSWORD}@postgres.voting-data.svc.cluster.local:5432/votes"
            ));
        }
    }
    let message = assert_fails(
        &c,
        &["SEC-001"],
        "SEC-001",
        CONSUMER,
        &format!("{}.env[name=DATABASE_URL].value", container("consumer")),
    );
    assert!(!message.contains(PASSWORD));

    let mut c = case();
    let args = c.container_mut("redis").args.as_mut().unwrap();
    args.extend(["--requirepass".to_owned(), secret.to_owned()]);
    let index = args.len() - 2;
    let message = assert_fails(
        &c,
        &["SEC-001"],
        "SEC-001",
        REDIS,
        &format!("{}.args[{index}]", container("redis")),
    );
    assert!(!message.contains(secret));

    // Inside a shell command of a probe.
    let mut c = case();
    let probe = c.container_mut("redis").readiness_probe.as_mut().unwrap();
    let command = probe.exec.as_mut().unwrap().command.as_mut().unwrap();
    command[2] = format!("redis-cli -a {secret} --password={secret} ping");
    assert_fails(
        &c,
        &["SEC-001"],
        "SEC-001",
        REDIS,
        &format!("{}.readinessProbe.exec.command[2]", container("redis")),
    );
}

#[test]
fn sec_002_password_only_as_a_secret_file() {
    let mut c = case();
    c.container_mut("api").env.as_mut().unwrap().push(EnvVar {
        name: "PGPASSWORD".to_owned(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: "postgres-password".to_owned(),
                key: "password".to_owned(),
                optional: None,
            }),
            ..EnvVarSource::default()
        }),
    });
    assert_fails(
        &c,
        &["SEC-002"],
        "SEC-002",
        API,
        &format!(
            "{}.env[name=PGPASSWORD].valueFrom.secretKeyRef",
            container("api")
        ),
    );

    let mut c = case();
    c.container_mut("consumer")
        .env
        .as_mut()
        .unwrap()
        .retain(|e| e.name != "DATABASE_PASSWORD_FILE");
    let message = assert_fails(
        &c,
        &["SEC-002"],
        "SEC-002",
        CONSUMER,
        &format!("{}.env", container("consumer")),
    );
    assert!(message.contains("DATABASE_PASSWORD_FILE"));

    let mut c = case();
    for v in c.pod_mut("postgres").volumes.as_mut().unwrap() {
        if let Some(secret) = v.secret.as_mut() {
            secret.default_mode = None;
        }
    }
    let message = assert_fails(
        &c,
        &["SEC-002"],
        "SEC-002",
        POSTGRES,
        &format!(
            "{}.env[name=POSTGRES_PASSWORD_FILE].value",
            container("postgres")
        ),
    );
    assert!(message.contains("0644"), "{message}");

    // A password file outside the Secret's mount.
    let mut c = case();
    for e in c.container_mut("api").env.as_mut().unwrap() {
        if e.name == "DATABASE_PASSWORD_FILE" {
            e.value = Some("/tmp/password".to_owned());
        }
    }
    let message = assert_fails(
        &c,
        &["SEC-002"],
        "SEC-002",
        API,
        &format!(
            "{}.env[name=DATABASE_PASSWORD_FILE].value",
            container("api")
        ),
    );
    assert!(message.contains("not a Secret"), "{message}");
}

#[test]
fn sec_002_writable_secret_mount_is_also_a_writable_mount() {
    let mut c = case();
    for m in c.container_mut("api").volume_mounts.as_mut().unwrap() {
        if m.name == "postgres-password" {
            m.read_only = None;
        }
    }
    assert_fails(
        &c,
        &["CTR-005", "SEC-002"],
        "SEC-002",
        API,
        &format!(
            "{}.env[name=DATABASE_PASSWORD_FILE].value",
            container("api")
        ),
    );
}

#[test]
fn img_001_latest_or_untagged() {
    // Through the values: the image is the values' own, only the tag is wrong.
    let c = Case::new(Profile::Default, &[], &["images.api.tag=latest"]);
    let message = assert_fails(
        &c,
        &["IMG-001"],
        "IMG-001",
        API,
        &format!("{}.image", container("api")),
    );
    assert!(message.contains(":latest"));

    let mut c = case();
    c.container_mut("redis").image = Some("docker.io/library/redis".to_owned());
    let message = assert_fails(
        &c,
        &["IMG-001", "IMG-003"],
        "IMG-001",
        REDIS,
        &format!("{}.image", container("redis")),
    );
    assert!(message.contains("no tag"));
}

#[test]
fn img_002_local_clusters_never_pull() {
    for profile in [Profile::Kind, Profile::Minikube] {
        let c = Case::new(profile, &[], &["images.redis.pullPolicy=IfNotPresent"]);
        assert_fails(
            &c,
            &["IMG-002"],
            "IMG-002",
            REDIS,
            &format!("{}.imagePullPolicy", container("redis")),
        );
    }
    // Any cluster may pull.
    let c = Case::new(Profile::Default, &[], &["images.redis.pullPolicy=Always"]);
    assert!(c.failing().is_empty());
}

#[test]
fn img_003_images_from_values() {
    let mut c = case();
    c.container_mut("consumer").image = Some("votectl/consumer:0.0.9".to_owned());
    let message = assert_fails(
        &c,
        &["IMG-003"],
        "IMG-003",
        CONSUMER,
        &format!("{}.image", container("consumer")),
    );
    assert!(message.contains("votectl/consumer:0.1.0"), "{message}");

    let mut c = Case::profile(Profile::Kind);
    c.container_mut("frontend").image_pull_policy = Some("Always".to_owned());
    assert_fails(
        &c,
        &["IMG-002", "IMG-003"],
        "IMG-003",
        FRONTEND,
        &format!("{}.imagePullPolicy", container("frontend")),
    );

    // A workload the values do not describe.
    let mut c = case();
    let mut extra = c
        .objects
        .iter()
        .find(|o| o.kind() == "Deployment" && o.name() == "consumer")
        .unwrap()
        .clone();
    if let Object::Deployment(d) = &mut extra {
        d.metadata.name = Some("miner".to_owned());
    }
    c.objects.push(extra);
    let failing = c.failing();
    assert!(failing.contains("IMG-003"), "{failing:?}");
    let report = c.report();
    let findings = &report.result("IMG-003").unwrap().findings;
    assert!(
        findings
            .iter()
            .any(|f| f.name == "miner" && f.field == "metadata.name")
    );
}

#[test]
fn res_001_requests_and_limits() {
    let mut c = case();
    c.container_mut("consumer")
        .resources
        .as_mut()
        .unwrap()
        .limits
        .as_mut()
        .unwrap()
        .remove("memory");
    assert_fails(
        &c,
        &["RES-001"],
        "RES-001",
        CONSUMER,
        &format!("{}.resources.limits.memory", container("consumer")),
    );
}

#[test]
fn res_002_probes() {
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"] {
        let mut c = case();
        let ctr = c.container_mut("frontend");
        match probe {
            "startupProbe" => ctr.startup_probe = None,
            "livenessProbe" => ctr.liveness_probe = None,
            _ => ctr.readiness_probe = None,
        }
        assert_fails(
            &c,
            &["RES-002"],
            "RES-002",
            FRONTEND,
            &format!("{}.{probe}", container("frontend")),
        );
    }
}

#[test]
fn res_003_disruption_budget() {
    let mut c = case();
    c.remove("PodDisruptionBudget", Some("voting-data"), "postgres");
    assert_fails(
        &c,
        &["RES-003"],
        "RES-003",
        POSTGRES,
        "spec.template.metadata.labels",
    );
}

#[test]
fn ns_001_pod_security_admission() {
    let mut c = case();
    let labels = c
        .objects
        .iter_mut()
        .find(|o| o.kind() == "Namespace" && o.name() == "voting-api")
        .map(|o| match o {
            Object::Namespace(ns) => ns.metadata.labels.as_mut().unwrap(),
            _ => unreachable!(),
        })
        .unwrap();
    labels.remove("pod-security.kubernetes.io/enforce");
    labels.insert(
        "pod-security.kubernetes.io/warn".to_owned(),
        "baseline".to_owned(),
    );
    let namespace = ("Namespace", None, "voting-api");
    assert_fails(
        &c,
        &["NS-001"],
        "NS-001",
        namespace,
        "metadata.labels[pod-security.kubernetes.io/enforce]",
    );
    let message = assert_fails(
        &c,
        &["NS-001"],
        "NS-001",
        namespace,
        "metadata.labels[pod-security.kubernetes.io/warn]",
    );
    assert!(message.contains("baseline"));
}

#[test]
fn ns_002_placement() {
    let mut c = case();
    c.objects.push(Object::ServiceAccount(
        k8s_openapi::api::core::v1::ServiceAccount {
            metadata: ObjectMeta {
                name: Some("stray".to_owned()),
                namespace: Some("default".to_owned()),
                ..ObjectMeta::default()
            },
            automount_service_account_token: Some(false),
            ..Default::default()
        },
    ));
    assert_fails(
        &c,
        &["NS-002"],
        "NS-002",
        ("ServiceAccount", Some("default"), "stray"),
        "metadata.namespace",
    );

    let mut c = case();
    c.remove("Deployment", Some("voting-frontend"), "frontend");
    assert_fails(
        &c,
        &["NS-002"],
        "NS-002",
        ("Workload", Some("voting-frontend"), "frontend"),
        "metadata.name",
    );
}

#[test]
fn findings_are_deduplicated_and_sorted() {
    // Two containers with the same problem give two findings, not four.
    let mut c = case();
    let spec = c.pod_mut("api");
    let mut second = spec.containers[0].clone();
    second.name = "sidecar".to_owned();
    second.security_context.as_mut().unwrap().privileged = Some(true);
    spec.containers.push(second);
    spec.containers[0]
        .security_context
        .as_mut()
        .unwrap()
        .privileged = Some(true);
    let report = c.report();
    let findings = &report.result("CTR-004").unwrap().findings;
    assert_eq!(findings.len(), 2, "{findings:#?}");
    let mut sorted = findings.clone();
    sorted.sort();
    assert_eq!(&sorted, findings);
}
