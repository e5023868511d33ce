//! Helpers shared by the manifests integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use votectl_manifests::{
    Layers, Loaded, Object, Password, Profile, Rendered, Secrets, ValuesFile, output,
};

/// A password that cannot occur in a manifest by chance.
pub const PASSWORD: &str = "Zq7-unlikely-Pw_93x";

pub fn load(profile: Profile, files: &[(&str, &str)], sets: &[&str]) -> Loaded {
    Layers {
        profile,
        files: files.iter().map(|(n, t)| ValuesFile::new(*n, *t)).collect(),
        sets: sets.iter().map(|s| (*s).to_owned()).collect(),
        ..Layers::default()
    }
    .load()
    .unwrap_or_else(|e| panic!("values do not load: {e}"))
}

pub fn render(loaded: &Loaded, password: Option<&str>) -> Rendered {
    let secrets = Secrets {
        postgres_password: password
            .map(|p| Password::new(p).unwrap())
            .or_else(|| loaded.postgres_password.clone()),
    };
    votectl_manifests::render(&loaded.values, &secrets).unwrap()
}

pub fn render_profile(profile: Profile) -> Rendered {
    render(&load(profile, &[], &[]), Some(PASSWORD))
}

pub fn yaml(rendered: &Rendered) -> String {
    output::to_yaml(&rendered.objects).unwrap()
}

pub fn json(objects: &[Object]) -> String {
    output::to_json(objects).unwrap()
}

/// Every container of every workload, with the workload's name.
pub fn containers(rendered: &Rendered) -> Vec<(String, k8s_openapi::api::core::v1::Container)> {
    rendered
        .objects
        .iter()
        .filter_map(|o| o.pod_template().map(|t| (o.name().to_owned(), t)))
        .flat_map(|(name, t)| {
            let spec = t.spec.clone().unwrap();
            spec.containers
                .into_iter()
                .chain(spec.init_containers.unwrap_or_default())
                .map(move |c| (name.clone(), c))
        })
        .collect()
}

/// A random valid values file (as JSON text, which is YAML) with a password in `postgresql.url`.
#[derive(Debug, Clone)]
pub struct Case {
    pub text: String,
    pub password: String,
}

/// Marks generated passwords: `!` cannot occur in any other generated value, so finding the
/// password anywhere is never a coincidence.
pub const PASSWORD_MARK: &str = "Pw!";

pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub fn values_file() -> impl proptest::strategy::Strategy<Value = Case> {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    let repository = (
        proptest::option::of(("[a-z0-9]{1,8}\\.[a-z]{2,4}", proptest::option::of(1u16..))),
        "[a-z0-9]{1,8}([._-][a-z0-9]{1,5})?",
        proptest::collection::vec("[a-z0-9]{1,8}", 0..3),
    )
        .prop_map(|(registry, first, rest)| {
            let mut parts = Vec::new();
            if let Some((host, port)) = registry {
                parts.push(match port {
                    Some(port) => format!("{host}:{port}"),
                    None => host,
                });
            }
            parts.push(first);
            parts.extend(rest);
            parts.join("/")
        });
    let image = (
        repository,
        "[A-Za-z0-9_][A-Za-z0-9_.-]{0,30}",
        prop_oneof![Just("Always"), Just("IfNotPresent"), Just("Never")],
    )
        .prop_map(|(repository, tag, policy)| {
            json!({"repository": repository, "tag": tag, "pullPolicy": policy})
        });
    let images = proptest::collection::vec(image, 5).prop_map(|mut v| {
        json!({
            "postgres": v.pop(), "redis": v.pop(), "frontend": v.pop(),
            "consumer": v.pop(), "api": v.pop(),
        })
    });
    let resources = (1u32..1000, 0u32..1000, 1u32..512, 0u32..512).prop_map(|(c, dc, m, dm)| {
        json!({
            "requests": {"cpu": format!("{c}m"), "memory": format!("{m}Mi")},
            "limits": {"cpu": format!("{}m", c + dc), "memory": format!("{}Mi", m + dm)},
        })
    });
    let service = prop_oneof![
        Just(json!({"type": "ClusterIP", "nodePort": null})),
        proptest::option::of(30000u16..=32767)
            .prop_map(|port| json!({"type": "NodePort", "nodePort": port})),
    ];
    let postgres = (
        "[a-z_][a-z0-9_]{0,10}",
        "[A-Za-z0-9*+=_~-]{4,20}",
        "[a-z][a-z0-9_]{0,10}",
    );
    let labels = proptest::collection::btree_map(
        "[a-z]{1,8}",
        "([A-Za-z0-9]([A-Za-z0-9._-]{0,10}[A-Za-z0-9])?)?",
        0..3,
    );
    let origins = proptest::collection::vec(
        "https?://[a-z]{1,8}(\\.[a-z]{2,4})?(:[1-9][0-9]{1,3})?",
        0..3,
    );
    let options = proptest::collection::btree_set("[a-z0-9][a-z0-9-]{0,10}", 1..5);
    (
        ("([a-z][a-z0-9]{0,6}-)?", "cluster\\.local|[a-z]{1,8}\\.[a-z]{2,5}", images),
        (0u16..6, 0u16..6, 0u16..6, service),
        (resources.clone(), resources.clone(), resources.clone(), resources.clone(), resources),
        (any::<bool>(), proptest::option::of("[a-z]([a-z0-9-]{0,10}[a-z0-9])?")),
        (postgres, labels, origins, options),
    )
        .prop_map(
            |(
                (prefix, domain, images),
                (api_n, consumer_n, frontend_n, service),
                (r_api, r_consumer, r_frontend, r_redis, r_pg),
                (policies, ingress),
                ((user, password, database), labels, origins, options),
            )| {
                let password = format!("{PASSWORD_MARK}{password}");
                let url = format!(
                    "postgresql://{user}:{}@postgres:5432/{database}",
                    percent_encode(&password)
                );
                let options: Vec<String> = options.into_iter().collect();
                let file: Value = json!({
                    "namespacePrefix": prefix,
                    "clusterDomain": domain,
                    "voteOptions": options,
                    "commonLabels": labels,
                    "images": images,
                    "api": {"replicas": api_n, "corsOrigins": origins, "resources": r_api},
                    "consumer": {"replicas": consumer_n, "resources": r_consumer},
                    "frontend": {"replicas": frontend_n, "service": service, "resources": r_frontend},
                    "redis": {"resources": r_redis},
                    "postgresql": {"url": url, "resources": r_pg},
                    "networkPolicies": {"enabled": policies, "ingressNamespace": ingress},
                });
                Case {
                    text: serde_json::to_string_pretty(&file).unwrap(),
                    password,
                }
            },
        )
}
