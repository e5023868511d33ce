//! Every rendered object validated against the Kubernetes 1.33 OpenAPI schema by a real validator
//! (`kubernetes-validate --strict`, which also rejects unknown fields), and read back by a YAML 1.1
//! reader (PyYAML, as kubectl's reader is YAML 1.1) to the same data as the JSON output.
//!
//! The validator is a Python tool (`pip install kubernetes-validate`, done by `.ci/run`). Without it
//! these tests fail when `CI` is set, and are skipped with a loud message otherwise.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::Write;
use std::process::Command;

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, TestRng, TestRunner};
use votectl_manifests::{Profile, Rendered, output};

const VALIDATOR: &str = "kubernetes-validate";
const KUBERNETES: &str = "1.33.0";

/// Whether the validator can run; panics under CI when it cannot.
fn validator_available() -> bool {
    let works = Command::new(VALIDATOR)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !works {
        let message = format!(
            "`{VALIDATOR}` is not installed (pip install kubernetes-validate): the rendered \
             manifests were NOT validated against the Kubernetes schema"
        );
        if std::env::var_os("CI").is_some() {
            panic!("{message}");
        }
        eprintln!("\n!!!!!!!!!! SKIPPED: {message} !!!!!!!!!!\n");
    }
    works
}

/// Validates `text` (multi-document YAML holding `objects` objects); panics with the tool's report.
fn validate(label: &str, text: &str, objects: usize) {
    let mut file = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    let out = Command::new(VALIDATOR)
        .args(["--strict", "-k", KUBERNETES])
        .arg(file.path())
        .output()
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{label}: rejected by {VALIDATOR}:\n{report}"
    );
    let passed = report.matches(" passed for resource ").count();
    assert_eq!(
        passed, objects,
        "{label}: not every object was validated:\n{report}"
    );
}

fn validate_rendered(label: &str, rendered: &Rendered) {
    validate(label, &common::yaml(rendered), rendered.objects.len());
}

#[test]
fn every_profile_is_schema_valid() {
    if !validator_available() {
        return;
    }
    for profile in Profile::ALL {
        validate_rendered(profile.name(), &common::render_profile(profile));
        // Without a password: no Secret, pods refer to an existing one.
        let loaded = common::load(profile, &[], &[]);
        validate_rendered(profile.name(), &common::render(&loaded, None));
    }
}

#[test]
fn variations_are_schema_valid() {
    if !validator_available() {
        return;
    }
    let cases: &[&[&str]] = &[
        &["networkPolicies.enabled=false"],
        &["networkPolicies.ingressNamespace=ingress-nginx,networkPolicies.dnsNamespace=dns"],
        &["namespacePrefix=team-a-,clusterDomain=corp.internal"],
        &["frontend.service.type=NodePort,frontend.service.nodePort=32000"],
        &[
            "images.api.digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "redis.persistence.storageClass=fast-ssd,postgresql.persistence.size=20Gi",
            "commonLabels.team=voting,commonLabels.example\\.com/owner=ops",
            "api.replicas=0,consumer.replicas=5,voteOptions={a,b,c}",
            "api.corsOrigins={}",
        ],
    ];
    for sets in cases {
        let loaded = common::load(Profile::Default, &[], sets);
        validate_rendered(&sets.join(" "), &common::render(&loaded, Some("pw")));
    }
}

/// Random valid values (the property test's generator), rendered into one file: one validator run.
#[test]
fn random_values_are_schema_valid() {
    if !validator_available() {
        return;
    }
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(proptest::test_runner::RngAlgorithm::ChaCha),
    );
    let strategy = common::values_file();
    let mut text = String::new();
    let mut count = 0;
    for _ in 0..24 {
        let case = strategy.new_tree(&mut runner).unwrap().current();
        let loaded = common::load(Profile::Default, &[("random.yaml", &case.text)], &[]);
        let rendered = common::render(&loaded, None);
        text.push_str(&common::yaml(&rendered));
        text.push_str("---\n");
        count += rendered.objects.len();
    }
    validate("random values", &text, count);
}

#[test]
fn the_validator_rejects_what_it_should() {
    if !validator_available() {
        return;
    }
    let text = common::yaml(&common::render_profile(Profile::Default));
    let broken = text.replacen(
        "automountServiceAccountToken: false",
        "automountServiceAccountTokens: false",
        1,
    );
    let mut file = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    file.write_all(broken.as_bytes()).unwrap();
    let status = Command::new(VALIDATOR)
        .args(["--strict", "-k", KUBERNETES])
        .arg(file.path())
        .output()
        .unwrap()
        .status;
    assert!(!status.success(), "an unknown field went through");
}

/// kubectl reads YAML 1.1, where `yes`, `on`, `1.0`, `0755` and `~` are not strings unless quoted.
#[test]
fn a_yaml_1_1_reader_sees_the_same_data_as_json() {
    if !validator_available() {
        return;
    }
    let tricky = [
        "commonLabels.a=yes,commonLabels.b=on,commonLabels.c=1.0,commonLabels.d=0755",
        "commonLabels.e=null-ish,commonLabels.f=1e3,commonLabels.g=0x1F,commonLabels.h=y",
        "voteOptions={yes,no,on,off,0755,1,1e3,y,n,true,null}",
        "images.api.tag=1.10,images.consumer.tag=0755,images.frontend.tag=yes",
        "logLevel=off",
    ];
    let loaded = common::load(Profile::Default, &[], &tricky);
    let rendered = common::render(&loaded, Some(common::PASSWORD));
    let yaml = common::yaml(&rendered);
    let mut file = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    file.write_all(yaml.as_bytes()).unwrap();
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
        ])
        .arg(file.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let from_yaml: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let from_json: serde_json::Value =
        serde_json::from_str(&output::to_json(&rendered.objects).unwrap()).unwrap();
    assert_eq!(from_yaml, from_json["items"]);
    // And the quoting is visible in the text itself.
    for quoted in [
        "\"yes\"", "\"on\"", "\"1.0\"", "\"0755\"", "\"off\"", "\"1e3\"", "\"y\"",
    ] {
        assert!(yaml.contains(quoted), "{quoted} is not quoted");
    }
    validate("tricky strings", &yaml, rendered.objects.len());
}
