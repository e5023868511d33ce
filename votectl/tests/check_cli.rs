//! `votectl check` as a user runs it: exit 0 for every profile, 1 with findings naming the object
//! and field, 2 (and nothing on stdout) for bad values or flags; and docs/security.md is exactly
//! `votectl check --catalogue -o markdown`, with every command it shows run here.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::PathBuf;

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn votectl() -> Command {
    let mut cmd = Command::cargo_bin("votectl").unwrap();
    cmd.env_remove("VOTECTL_PROFILE");
    cmd
}

fn check(args: &[&str]) -> Command {
    let mut cmd = votectl();
    cmd.arg("check").args(args);
    cmd
}

fn stdout_of(assert: &assert_cmd::assert::Assert) -> String {
    String::from_utf8(assert.get_output().stdout.clone()).unwrap()
}

fn docs_security() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/security.md")
}

#[test]
fn every_profile_passes_with_exit_0() {
    for profile in ["default", "minikube", "kind"] {
        let out = check(&["--profile", profile]).assert().code(0);
        let text = stdout_of(&out);
        assert!(
            text.contains("24 of 24 checks passed, 0 findings."),
            "{profile}: {text}"
        );
        assert!(!text.contains("fail"), "{profile}: {text}");
    }
    // The profile can come from the environment, like render's.
    votectl()
        .args(["check", "-o", "json"])
        .env("VOTECTL_PROFILE", "kind")
        .assert()
        .code(0);
}

#[test]
fn a_finding_exits_1_naming_check_object_and_field() {
    let out = check(&["--set", "images.api.tag=latest"]).assert().code(1);
    let text = stdout_of(&out);
    assert!(
        text.contains("23 of 24 checks passed, 1 finding."),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.contains("IMG-001")
            && l.contains("Deployment voting-api/api")
            && l.contains("spec.template.spec.containers[name=api].image")),
        "{text}"
    );

    // The same as JSON, for scripts.
    let out = check(&["--set", "images.api.tag=latest", "-o", "json"])
        .assert()
        .code(1);
    let json: Value = serde_json::from_str(&stdout_of(&out)).unwrap();
    assert_eq!(json["passed"], false);
    assert_eq!(json["checks"], 24);
    assert_eq!(json["failed"], 1);
    assert_eq!(json["findings"], 1);
    let failed: Vec<&Value> = json["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| !r["findings"].as_array().unwrap().is_empty())
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["check"]["id"], "IMG-001");
    assert_eq!(failed[0]["check"]["section"], "Images");
    let finding = &failed[0]["findings"][0];
    assert_eq!(finding["kind"], "Deployment");
    assert_eq!(finding["namespace"], "voting-api");
    assert_eq!(finding["name"], "api");
    assert_eq!(
        finding["field"],
        "spec.template.spec.containers[name=api].image"
    );

    // And as Markdown.
    let out = check(&["--set", "images.api.tag=latest", "-o", "markdown"])
        .assert()
        .code(1);
    let md = stdout_of(&out);
    assert!(
        md.contains("| IMG-001 | Images | medium | fail | 1 |"),
        "{md}"
    );
    assert!(
        md.contains("- Deployment voting-api/api `spec.template.spec.containers[name=api].image`:"),
        "{md}"
    );
}

#[test]
fn a_local_profile_that_would_pull_fails_and_policies_off_fail_the_network_checks() {
    let out = check(&[
        "--profile",
        "kind",
        "--set",
        "images.postgres.pullPolicy=IfNotPresent",
    ])
    .assert()
    .code(1);
    let text = stdout_of(&out);
    assert!(
        text.contains("StatefulSet voting-data/postgres")
            && text.contains("spec.template.spec.containers[name=postgres].imagePullPolicy"),
        "{text}"
    );

    let out = check(&["--set", "networkPolicies.enabled=false", "-o", "json"])
        .assert()
        .code(1);
    let json: Value = serde_json::from_str(&stdout_of(&out)).unwrap();
    let failed: Vec<&str> = json["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| !r["findings"].as_array().unwrap().is_empty())
        .map(|r| r["check"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["NET-001", "NET-002"]);
}

#[test]
fn values_files_are_layered_like_render() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("prod.yaml");
    fs::write(
        &file,
        "images:\n  redis:\n    repository: docker.io/library/redis\n    tag: latest\n",
    )
    .unwrap();
    let file = file.display().to_string();
    let out = check(&["-f", &file]).assert().code(1);
    assert!(stdout_of(&out).contains("StatefulSet voting-data/redis"));
    // A later --set wins over the file.
    check(&["-f", &file, "--set", "images.redis.tag=7.4-bookworm"])
        .assert()
        .code(0);

    // A password in the URL is moved with a warning (checks pass: it never reaches a pod) or,
    // with --strict, refused.
    let old = dir.path().join("old.yaml");
    fs::write(
        &old,
        "postgresql:\n  url: postgresql://postgres:postgres@postgres:5432/votes\n",
    )
    .unwrap();
    let old = old.display().to_string();
    check(&["-f", &old])
        .assert()
        .code(0)
        .stderr(predicate::str::contains("warning:"));
    check(&["-f", &old, "--strict"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("postgresql.url"));
}

#[test]
fn usage_errors_exit_2_with_nothing_on_stdout() {
    check(&["--set", "images.api.tag=-bad"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("images.api.tag"));
    check(&["-f", "/nonexistent/values.yaml"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("/nonexistent/values.yaml"));
    check(&["--profile", "kinda"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("did you mean `kind`"));
    check(&["-o", "yaml"]).assert().code(2).stdout("");
    check(&["--catalogue", "--set", "a=b"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("cannot be used with"));
}

#[test]
fn live_exits_2_for_a_kube_config_that_does_not_load_and_3_for_a_cluster_that_does_not_answer() {
    let dir = tempfile::tempdir().unwrap();
    check(&["--live", "--context", "nowhere"])
        .env("KUBECONFIG", dir.path().join("missing"))
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains("context nowhere"));
    check(&["--context", "x"]).assert().code(2).stdout("");
    check(&["--catalogue", "--live"])
        .assert()
        .code(2)
        .stdout("");

    // An API server address on loopback where nothing listens.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("config");
    fs::write(
        &config,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: dead\nclusters:\n- name: dead\n  \
             cluster:\n    server: http://127.0.0.1:{port}\ncontexts:\n- name: dead\n  context:\n    \
             cluster: dead\n    user: dead\nusers:\n- name: dead\n  user:\n    token: t\n"
        ),
    )
    .unwrap();
    check(&["--live"])
        .env("KUBECONFIG", &config)
        .assert()
        .code(3)
        .stdout("")
        .stderr(predicate::str::contains(
            "cannot check the cluster: failed to read namespace voting-frontend",
        ));
}

#[test]
fn the_catalogue_lists_every_check_in_each_format() {
    let out = check(&["--catalogue", "-o", "json"]).assert().code(0);
    let json: Value = serde_json::from_str(&stdout_of(&out)).unwrap();
    let ids: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = votectl_checks::catalogue().iter().map(|c| c.id).collect();
    assert_eq!(ids, expected);
    for check in json.as_array().unwrap() {
        for key in ["section", "severity", "title", "why", "fix"] {
            assert!(
                check[key].as_str().is_some_and(|s| !s.is_empty()),
                "{check}"
            );
        }
    }

    let out = check(&["--catalogue"]).assert().code(0);
    let table = stdout_of(&out);
    for id in &expected {
        assert!(table.contains(id), "{id} missing from the table");
    }
}

/// docs/security.md is generated; regenerate it with
/// `votectl check --catalogue -o markdown > docs/security.md` (`make security-doc`).
#[test]
fn docs_security_md_is_the_catalogue_byte_for_byte() {
    let out = check(&["--catalogue", "-o", "markdown"]).assert().code(0);
    let generated = stdout_of(&out);
    let committed = fs::read_to_string(docs_security()).unwrap();
    assert!(
        committed == generated,
        "docs/security.md differs from `votectl check --catalogue -o markdown`; regenerate it \
         with `make security-doc`"
    );
    for check in votectl_checks::catalogue() {
        assert!(committed.contains(&format!("\n### {}\n", check.id)));
        assert!(committed.contains(check.why));
        assert!(committed.contains(check.fix));
    }
}

/// Every `$ votectl …` line of docs/security.md runs, with the exit code its comment promises
/// (`# exit N`, else 0).
#[test]
fn every_command_in_docs_security_md_runs() {
    let doc = fs::read_to_string(docs_security()).unwrap();
    let mut ran = 0;
    for line in doc.lines() {
        let Some(command) = line.strip_prefix("$ votectl ") else {
            continue;
        };
        let (command, comment) = command.split_once('#').unwrap_or((command, ""));
        let code: i32 = comment
            .trim()
            .strip_prefix("exit ")
            .map(|rest| rest.split(':').next().unwrap().trim().parse().unwrap())
            .unwrap_or(0);
        let args: Vec<&str> = command.split_whitespace().collect();
        votectl().args(&args).assert().code(code);
        ran += 1;
    }
    assert!(ran >= 3, "only {ran} commands found");
}
