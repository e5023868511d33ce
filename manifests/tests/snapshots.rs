//! The rendered output of each profile, reviewed as a whole: a change to any object shows in review.

#![allow(clippy::unwrap_used)]

mod common;

use votectl_manifests::{Profile, intended_flows};

#[test]
fn each_profile_renders_as_reviewed() {
    for profile in Profile::ALL {
        let rendered = common::render_profile(profile);
        insta::assert_snapshot!(format!("profile_{profile}"), common::yaml(&rendered));
    }
}

#[test]
fn the_intended_flows_are_as_reviewed() {
    let values = common::load(Profile::Default, &[], &[]).values;
    let flows: Vec<String> = intended_flows(&values)
        .iter()
        .map(ToString::to_string)
        .collect();
    insta::assert_snapshot!("intended_flows", flows.join("\n"));
}

#[test]
fn rendering_is_deterministic() {
    for profile in Profile::ALL {
        let a = common::yaml(&common::render_profile(profile));
        let b = common::yaml(&common::render_profile(profile));
        assert_eq!(a, b, "{profile}");
    }
}

#[test]
fn namespaces_come_first_then_kind_namespace_name() {
    let rendered = common::render_profile(Profile::Default);
    let kinds: Vec<&str> = rendered.objects.iter().map(|o| o.kind()).collect();
    let first_other = kinds.iter().position(|k| *k != "Namespace").unwrap();
    assert_eq!(first_other, 4, "{kinds:?}");
    assert!(kinds[first_other..].iter().all(|k| *k != "Namespace"));
    let order = [
        "Namespace",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "ServiceAccount",
        "Secret",
        "Service",
        "Deployment",
        "StatefulSet",
    ];
    let keys: Vec<(usize, Option<&str>, &str)> = rendered
        .objects
        .iter()
        .map(|o| {
            (
                order.iter().position(|k| *k == o.kind()).unwrap(),
                o.namespace(),
                o.name(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
}
