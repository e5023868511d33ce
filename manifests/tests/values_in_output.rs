//! Images, pull policies and sizes come only from values: unusual values each show up where they
//! belong, and nothing of the defaults leaks through (the original chart hardcoded image tags).

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use votectl_manifests::{Object, Profile, Values};

const UNUSUAL: &str = r#"
namespacePrefix: qa-7-
clusterDomain: corp.internal
voteOptions: "on,0755,yes"
logLevel: warn,vote_api=trace
commonLabels: {cost-centre: "0042", example.com/owner: platform}
images:
  api:
    repository: registry.example.com:5000/team/vote-api
    tag: "1.10"
    pullPolicy: Always
  consumer:
    repository: ghcr.io/some_org/consumer.svc
    tag: 0755
    pullPolicy: Never
    digest: sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff
  frontend:
    repository: localhost:32000/front-end
    tag: yes
    pullPolicy: IfNotPresent
  redis:
    repository: quay.io/mirror/redis-ha
    tag: 7.2.4-r1
    pullPolicy: Always
  postgres:
    repository: mirror.internal/db/pg
    tag: "15"
    pullPolicy: Never
api:
  replicas: 7
  corsOrigins: "https://vote.example.com,http://localhost:9999"
  resources:
    requests: {cpu: 123m, memory: 77Mi}
    limits: {cpu: "2", memory: 1Gi}
consumer:
  replicas: 3
frontend:
  replicas: 4
  service: {type: NodePort, nodePort: 31234}
redis:
  persistence: {size: 3Gi, storageClass: fast-ssd}
  securityContext: {runAsUser: 1001, runAsGroup: 1002, fsGroup: 1003}
postgresql:
  url: postgres://voter@postgres/ballots?sslmode=disable
  passwordSecret: db-credentials
  persistence: {size: 50Gi}
  securityContext: {runAsUser: 70, runAsGroup: 71, fsGroup: 72}
networkPolicies:
  ingressNamespace: ingress-nginx
  dnsNamespace: dns-system
"#;

fn container<'r>(
    containers: &'r [(String, k8s_openapi::api::core::v1::Container)],
    name: &str,
) -> &'r k8s_openapi::api::core::v1::Container {
    &containers.iter().find(|(w, _)| w == name).unwrap().1
}

fn env(c: &k8s_openapi::api::core::v1::Container) -> BTreeMap<String, String> {
    c.env
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| Some((e.name, e.value?)))
        .collect()
}

#[test]
fn unusual_values_each_reach_their_place() {
    let loaded = common::load(Profile::Default, &[("unusual.yaml", UNUSUAL)], &[]);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let rendered = common::render(&loaded, Some(common::PASSWORD));
    let containers = common::containers(&rendered);

    let expect = [
        (
            "api",
            "registry.example.com:5000/team/vote-api:1.10",
            "Always",
        ),
        (
            "consumer",
            "ghcr.io/some_org/consumer.svc:0755@sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
            "Never",
        ),
        ("frontend", "localhost:32000/front-end:yes", "IfNotPresent"),
        ("redis", "quay.io/mirror/redis-ha:7.2.4-r1", "Always"),
        ("postgres", "mirror.internal/db/pg:15", "Never"),
    ];
    assert_eq!(containers.len(), expect.len());
    for (workload, image, policy) in expect {
        let c = container(&containers, workload);
        assert_eq!(c.image.as_deref(), Some(image), "{workload}");
        assert_eq!(c.image_pull_policy.as_deref(), Some(policy), "{workload}");
    }

    let api = env(container(&containers, "api"));
    assert_eq!(api["VOTE_OPTIONS"], "on,0755,yes");
    assert_eq!(api["LOG_LEVEL"], "warn,vote_api=trace");
    assert_eq!(
        api["CORS_ORIGINS"],
        "https://vote.example.com,http://localhost:9999"
    );
    assert_eq!(
        api["REDIS_URL"],
        "redis://redis.qa-7-voting-data.svc.corp.internal:6379"
    );
    assert_eq!(
        api["DATABASE_URL"],
        "postgres://voter@postgres.qa-7-voting-data.svc.corp.internal:5432/ballots?sslmode=disable"
    );
    let frontend = env(container(&containers, "frontend"));
    assert_eq!(
        frontend["API_URL"],
        "http://api.qa-7-voting-api.svc.corp.internal:8000"
    );
    let pg = env(container(&containers, "postgres"));
    assert_eq!(
        (pg["POSTGRES_USER"].as_str(), pg["POSTGRES_DB"].as_str()),
        ("voter", "ballots")
    );

    let api_resources = container(&containers, "api").resources.clone().unwrap();
    assert_eq!(api_resources.requests.unwrap()["cpu"].0, "123m");
    assert_eq!(api_resources.limits.unwrap()["memory"].0, "1Gi");

    let mut namespaces = Vec::new();
    for object in &rendered.objects {
        let labels = object.metadata().labels.clone().unwrap();
        assert_eq!(
            labels["cost-centre"],
            "0042",
            "{} {}",
            object.kind(),
            object.name()
        );
        assert_eq!(labels["example.com/owner"], "platform");
        match object {
            Object::Namespace(_) => namespaces.push(object.name().to_owned()),
            Object::Deployment(d) => {
                let replicas = d.spec.as_ref().unwrap().replicas.unwrap();
                let want = match object.name() {
                    "api" => 7,
                    "consumer" => 3,
                    _ => 4,
                };
                assert_eq!(replicas, want, "{}", object.name());
            }
            Object::StatefulSet(s) => {
                let spec = s.spec.as_ref().unwrap();
                let claim = &spec.volume_claim_templates.as_ref().unwrap()[0];
                let claim_spec = claim.spec.as_ref().unwrap();
                let size = &claim_spec
                    .resources
                    .as_ref()
                    .unwrap()
                    .requests
                    .as_ref()
                    .unwrap()["storage"];
                let pod = spec
                    .template
                    .spec
                    .as_ref()
                    .unwrap()
                    .security_context
                    .clone()
                    .unwrap();
                let ids = (pod.run_as_user, pod.run_as_group, pod.fs_group);
                match object.name() {
                    "redis" => {
                        assert_eq!(size.0, "3Gi");
                        assert_eq!(claim_spec.storage_class_name.as_deref(), Some("fast-ssd"));
                        assert_eq!(ids, (Some(1001), Some(1002), Some(1003)));
                    }
                    _ => {
                        assert_eq!(size.0, "50Gi");
                        assert_eq!(claim_spec.storage_class_name, None);
                        assert_eq!(ids, (Some(70), Some(71), Some(72)));
                    }
                }
            }
            Object::Service(s) if object.name() == "frontend" => {
                let spec = s.spec.as_ref().unwrap();
                assert_eq!(spec.type_.as_deref(), Some("NodePort"));
                assert_eq!(spec.ports.as_ref().unwrap()[0].node_port, Some(31234));
            }
            Object::Secret(_) => assert_eq!(object.name(), "db-credentials"),
            _ => {}
        }
    }
    assert_eq!(
        namespaces,
        [
            "qa-7-voting-api",
            "qa-7-voting-consumer",
            "qa-7-voting-data",
            "qa-7-voting-frontend"
        ]
    );
    let yaml = common::yaml(&rendered);
    assert!(yaml.contains("kubernetes.io/metadata.name: ingress-nginx"));
    assert!(yaml.contains("kubernetes.io/metadata.name: dns-system"));
    assert!(yaml.contains("secretName: db-credentials"));
}

#[test]
fn no_default_leaks_through() {
    let defaults = Values::default();
    let loaded = common::load(Profile::Default, &[("unusual.yaml", UNUSUAL)], &[]);
    let yaml = common::yaml(&common::render(&loaded, Some(common::PASSWORD)));
    let images = &defaults.images;
    for image in [
        &images.api,
        &images.consumer,
        &images.frontend,
        &images.redis,
        &images.postgres,
    ] {
        assert!(
            !yaml.contains(image.repository.as_str()),
            "default {} leaked",
            image.repository
        );
        assert!(
            !yaml.contains(&image.reference()),
            "default {} leaked",
            image.reference()
        );
    }
    assert_eq!(
        yaml.matches("IfNotPresent").count(),
        1,
        "only the frontend's policy"
    );
    for default in [
        ": voting-api\n", // every namespace carries the prefix
        ": voting-data\n",
        ".voting-data.",
        "cluster.local",
        "kube-system",
        "secretName: postgres-password",
        "cats,dogs",
        "http://localhost:8080",
        "storage: 2Gi",
        "storage: 1Gi",
        "runAsUser: 999",
    ] {
        let count = yaml.matches(default).count();
        assert_eq!(count, 0, "default `{default}` appears {count} times");
    }
}

/// A values file written for the original Helm chart still works, password included.
#[test]
fn a_helm_values_file_keeps_working() {
    let helm = r#"
images:
  api: {repository: myreg.io/voting/api, tag: v2, pullPolicy: Always}
  consumer: {repository: myreg.io/voting/consumer, tag: v2, pullPolicy: Always}
  frontend: {repository: myreg.io/voting/frontend, tag: v2, pullPolicy: Always}
redis:
  url: redis://redis:6379
postgresql:
  url: postgresql://postgres:postgres@postgres:5432/votes
networkPolicies:
  enabled: false
api:
  corsOrigins: "http://localhost:8080"
"#;
    let loaded = common::load(Profile::Default, &[("values-helm.yaml", helm)], &[]);
    assert_eq!(loaded.warnings.len(), 1, "the password warning");
    assert_eq!(
        loaded.postgres_password.as_ref().unwrap().expose(),
        "postgres"
    );
    let rendered = common::render(&loaded, None);
    assert!(!rendered.objects.iter().any(|o| o.kind() == "NetworkPolicy"));
    assert_eq!(
        rendered
            .objects
            .iter()
            .filter(|o| o.kind() == "Secret")
            .count(),
        3
    );
    let containers = common::containers(&rendered);
    assert_eq!(
        container(&containers, "api").image.as_deref(),
        Some("myreg.io/voting/api:v2")
    );
    let api = env(container(&containers, "api"));
    assert_eq!(
        api["DATABASE_URL"],
        "postgresql://postgres@postgres.voting-data.svc.cluster.local:5432/votes"
    );
    assert_eq!(api["CORS_ORIGINS"], "http://localhost:8080");
}

#[test]
fn local_cluster_profiles_never_pull() {
    for profile in [Profile::Kind, Profile::Minikube] {
        let rendered = common::render_profile(profile);
        for (workload, c) in common::containers(&rendered) {
            assert_eq!(
                c.image_pull_policy.as_deref(),
                Some("Never"),
                "{profile} {workload}"
            );
        }
    }
}
