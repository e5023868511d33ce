//! Every profile, and unusual but valid values, pass every check; the reachability model is
//! exercised on enough connections to mean something.

#![allow(clippy::unwrap_used)]

mod common;

use common::Case;
use votectl_checks::reach;
use votectl_manifests::Profile;

fn assert_passes(case: &Case, label: &str) {
    let report = case.report();
    if let Some(result) = report.failed().next() {
        panic!("{label}: {} fails: {:#?}", result.check.id, result.findings);
    }
    assert!(report.passed());
    assert_eq!(report.results.len(), votectl_checks::catalogue().len());
}

#[test]
fn every_profile_passes_every_check() {
    for profile in Profile::ALL {
        assert_passes(&Case::profile(profile), profile.name());
    }
}

#[test]
fn unusual_values_pass_every_check() {
    for sets in [
        &["networkPolicies.ingressNamespace=ingress-nginx,namespacePrefix=b-"][..],
        &["networkPolicies.dnsNamespace=dns,redis.url=redis://redis.example.com:6379"],
        &[
            "postgresql.securityContext.runAsUser=70,postgresql.securityContext.runAsGroup=70",
            "postgresql.securityContext.fsGroup=70,images.postgres.tag=15-alpine",
        ],
        &[
            "images.api.digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ],
        &["commonLabels.team=votes,api.replicas=0,frontend.service.type=NodePort"],
    ] {
        for profile in Profile::ALL {
            let case = Case::new(profile, &[], sets);
            assert_passes(&case, &format!("{} {sets:?}", profile.name()));
        }
    }
}

#[test]
fn a_password_moved_out_of_the_values_passes() {
    let file = "postgresql:\n  url: postgresql://postgres:postgres@postgres:5432/votes\n";
    assert_passes(
        &Case::new(Profile::Default, &[("old.yaml", file)], &[]),
        "password in url",
    );
}

#[test]
fn the_reachability_model_covers_every_pair_and_port() {
    let case = Case::profile(Profile::Default);
    let expected = &case.expected;
    let evaluation = reach::evaluate(&case.objects, &expected.flows, &expected.namespaces);
    assert!(evaluation.discrepancies.is_empty());
    // 5 workloads, a stranger in each of the 4 namespaces, kube-system, elsewhere, outside: 12
    // hosts; every ordered pair with a workload in it, on 8 ports (the five services', DNS over UDP
    // and TCP, HTTPS).
    let hosts = reach::hosts(&case.objects, &expected.flows, &expected.namespaces);
    assert_eq!(hosts.len(), 12, "{hosts:#?}");
    let ports = reach::ports(&case.objects, &expected.flows);
    assert_eq!(ports.len(), 8, "{ports:?}");
    let pairs = 5 * 11 + 7 * 5;
    assert_eq!(evaluation.probes, pairs * 8);

    // The matrices verify uses agree with the model where it holds, and `compare` names each
    // cell an observation contradicts or lacks.
    let probes = reach::probes(&hosts, &ports);
    let want = reach::expected(&expected.flows, &expected.namespaces, &probes);
    let model = reach::Model::new(&case.objects);
    let got = reach::modelled(&model, &hosts, &probes);
    assert!(reach::compare(&want, &got).is_empty());
    // Frontend from outside, kube-system and elsewhere; frontend to api; api and consumer to redis
    // and postgres; three services to DNS over two protocols.
    assert_eq!(
        want.values().filter(|allowed| **allowed).count(),
        3 + 1 + 4 + 6
    );

    let mut observed = got.clone();
    let api_to_redis = want
        .keys()
        .find(|p| p.to_string() == "voting-api/api -> voting-data/redis 6379/TCP")
        .unwrap()
        .clone();
    let consumer_to_api = want
        .keys()
        .find(|p| p.to_string() == "voting-consumer/consumer -> voting-api/api 8000/TCP")
        .unwrap()
        .clone();
    observed.insert(api_to_redis.clone(), false);
    observed.insert(consumer_to_api.clone(), true);
    let first = observed.keys().next().unwrap().clone();
    observed.remove(&first);
    let mismatches = reach::compare(&want, &observed);
    assert_eq!(mismatches.len(), 3, "{mismatches:#?}");
    assert!(
        mismatches
            .iter()
            .any(|m| m.probe == api_to_redis && m.is_blocked())
    );
    assert!(
        mismatches
            .iter()
            .any(|m| m.probe == consumer_to_api && m.is_unintended())
    );
    assert!(
        mismatches
            .iter()
            .any(|m| m.probe == first && m.observed.is_none())
    );
}
