//! Property: any valid values within the application's security model (NetworkPolicies on,
//! images pinned, local profiles never pulling) render objects that pass every check.

#![allow(clippy::unwrap_used)]

mod common;

use common::Case;
use proptest::prelude::*;
use serde_json::{Value, json};
use votectl_manifests::Profile;

fn image(local: bool) -> impl Strategy<Value = Value> {
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
    (
        repository,
        "[A-Za-z0-9_][A-Za-z0-9_.-]{0,30}".prop_filter("a moving tag", |t| t != "latest"),
        proptest::option::of("sha256:[0-9a-f]{64}"),
        prop_oneof![Just("Always"), Just("IfNotPresent"), Just("Never")],
    )
        .prop_map(move |(repository, tag, digest, policy)| {
            let mut image = json!({"repository": repository, "tag": tag, "digest": digest});
            // The local profiles' `Never` stays.
            if !local {
                image["pullPolicy"] = json!(policy);
            }
            image
        })
}

fn resources() -> impl Strategy<Value = Value> {
    (1u32..1000, 0u32..1000, 1u32..512, 0u32..512).prop_map(|(c, dc, m, dm)| {
        json!({
            "requests": {"cpu": format!("{c}m"), "memory": format!("{m}Mi")},
            "limits": {"cpu": format!("{}m", c + dc), "memory": format!("{}Mi", m + dm)},
        })
    })
}

fn user() -> impl Strategy<Value = Value> {
    (
        1i64..2_147_483_647,
        1i64..2_147_483_647,
        1i64..2_147_483_647,
    )
        .prop_map(|(u, g, f)| json!({"runAsUser": u, "runAsGroup": g, "fsGroup": f}))
}

fn values(local: bool) -> impl Strategy<Value = String> {
    let images = proptest::collection::vec(image(local), 5).prop_map(|mut v| {
        json!({
            "postgres": v.pop(), "redis": v.pop(), "frontend": v.pop(),
            "consumer": v.pop(), "api": v.pop(),
        })
    });
    let service = prop_oneof![
        Just(json!({"type": "ClusterIP", "nodePort": null})),
        proptest::option::of(30000u16..=32767)
            .prop_map(|port| json!({"type": "NodePort", "nodePort": port})),
    ];
    let labels = proptest::collection::btree_map(
        "[a-z]{1,8}",
        "([A-Za-z0-9]([A-Za-z0-9._-]{0,10}[A-Za-z0-9])?)?",
        0..3,
    );
    let postgres_url = (
        "[a-z_][a-z0-9_]{0,10}",
        proptest::option::of("[A-Za-z0-9]{4,20}"),
        prop_oneof![Just("postgres:5432"), Just("db.example.com:5433")],
        "[a-z][a-z0-9_]{0,10}",
    )
        .prop_map(|(user, password, host, db)| match password {
            Some(pw) => format!("postgresql://{user}:{pw}@{host}/{db}"),
            None => format!("postgres://{user}@{host}/{db}"),
        });
    let redis_url = prop_oneof![
        Just("redis://redis:6379"),
        Just("redis://cache.example.com:6380")
    ];
    (
        (
            "([a-z][a-z0-9]{0,6}-)?",
            "cluster\\.local|[a-z]{1,8}\\.[a-z]{2,5}",
            proptest::collection::btree_set("[a-z0-9][a-z0-9-]{0,10}", 1..5),
            labels,
        ),
        images,
        (0u16..6, 0u16..6, 0u16..6, service),
        (resources(), resources(), resources(), resources(), resources()),
        (user(), user(), postgres_url, redis_url),
        (
            proptest::option::of("[a-z]{1,10}"),
            "[a-z]{1,10}",
            "[1-9][0-9]{0,2}Gi",
        ),
    )
        .prop_map(
            |(
                (prefix, domain, options, labels),
                images,
                (api_n, consumer_n, frontend_n, service),
                (r_api, r_consumer, r_frontend, r_redis, r_pg),
                (redis_user, pg_user, pg_url, redis_url),
                (ingress, dns, size),
            )| {
                let options: Vec<String> = options.into_iter().collect();
                serde_json::to_string_pretty(&json!({
                    "namespacePrefix": prefix,
                    "clusterDomain": domain,
                    "voteOptions": options,
                    "commonLabels": labels,
                    "images": images,
                    "api": {"replicas": api_n, "resources": r_api},
                    "consumer": {"replicas": consumer_n, "resources": r_consumer},
                    "frontend": {"replicas": frontend_n, "service": service, "resources": r_frontend},
                    "redis": {
                        "url": redis_url, "resources": r_redis, "securityContext": redis_user,
                        "persistence": {"size": size},
                    },
                    "postgresql": {"url": pg_url, "resources": r_pg, "securityContext": pg_user},
                    "networkPolicies": {
                        "enabled": true, "ingressNamespace": ingress, "dnsNamespace": dns,
                    },
                }))
                .unwrap()
            },
        )
}

fn profile_and_values() -> impl Strategy<Value = (Profile, String)> {
    prop_oneof![
        values(false).prop_map(|v| (Profile::Default, v)),
        values(true).prop_map(|v| (Profile::Minikube, v)),
        values(true).prop_map(|v| (Profile::Kind, v)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn random_valid_values_pass_every_check((profile, text) in profile_and_values()) {
        let case = Case::new(profile, &[("values.yaml", &text)], &[]);
        let report = case.report();
        if let Some(result) = report.failed().next() {
            prop_assert!(false, "{} fails for {}:\n{text}\n{:#?}", result.check.id, profile, result.findings);
        }
    }

    /// The same values with any one image on `:latest` fail exactly IMG-001.
    #[test]
    fn a_moving_tag_fails_only_img_001(
        (profile, text) in profile_and_values(),
        which in prop_oneof![Just("api"), Just("consumer"), Just("frontend"), Just("redis"), Just("postgres")],
    ) {
        let set = format!("images.{which}.tag=latest,images.{which}.digest=null");
        let case = Case::new(profile, &[("values.yaml", &text)], &[&set]);
        let failing: Vec<&str> = case.failing().into_iter().collect();
        prop_assert_eq!(failing, vec!["IMG-001"]);
    }
}
