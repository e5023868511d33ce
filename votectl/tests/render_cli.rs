//! `votectl render` as a user runs it: output, layering, secrets, `--out-dir`, and exit code 2 with
//! a located message (and nothing written) for bad input.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn votectl() -> Command {
    let mut cmd = Command::cargo_bin("votectl").unwrap();
    cmd.env_remove("VOTECTL_PROFILE");
    cmd
}

fn stdout(args: &[&str]) -> String {
    let out = votectl().arg("render").args(args).assert().success();
    String::from_utf8(out.get_output().stdout.clone()).unwrap()
}

fn documents(yaml: &str) -> usize {
    yaml.split("\n---\n").count()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn renders_every_object_stably() {
    let first = stdout(&[]);
    assert!(
        first.starts_with("apiVersion: v1\nkind: Namespace\n"),
        "{first}"
    );
    assert_eq!(first, stdout(&[]), "two renders differ");
    // No password given: no Secret; the pods use the existing one.
    assert!(!first.contains("kind: Secret"));
    assert!(first.contains("secretName: postgres-password"));

    let json: Value = serde_json::from_str(&stdout(&["-o", "json"])).unwrap();
    assert_eq!(json["kind"], "List");
    assert_eq!(json["items"].as_array().unwrap().len(), documents(&first));
}

#[test]
fn layers_profile_files_and_sets() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(
        dir.path(),
        "a.yaml",
        "images:\n  api:\n    tag: from-a\n    pullPolicy: Always\n",
    );
    let b = write(dir.path(), "b.yaml", "images:\n  api:\n    tag: from-b\n");
    let out = stdout(&[
        "--profile",
        "kind",
        "-f",
        &a,
        "-f",
        &b,
        "--set",
        "images.api.tag=from-set",
    ]);
    assert!(
        out.contains("image: votectl/api:from-set\n        imagePullPolicy: Always\n"),
        "{out}"
    );
    assert!(out.contains("imagePullPolicy: Never"), "the kind profile");
    assert!(!out.contains("from-a") && !out.contains("from-b"));

    let via_env = votectl()
        .env("VOTECTL_PROFILE", "minikube")
        .arg("render")
        .assert()
        .success();
    let text = String::from_utf8(via_env.get_output().stdout.clone()).unwrap();
    assert!(text.contains("type: NodePort"));
}

#[test]
fn reads_values_from_stdin() {
    let out = votectl()
        .args(["render", "-f", "-"])
        .write_stdin("namespacePrefix: piped-\n")
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(text.contains("name: piped-voting-api"));
}

#[test]
fn bad_values_exit_2_naming_file_line_column_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        dir.path(),
        "bad.yaml",
        "images:\n  api:\n    tag: {nested: 1}\n",
    );
    votectl()
        .args(["render", "-f", &bad])
        .assert()
        .code(2)
        .stdout("")
        .stderr(format!(
            "error: {bad}:3:10: images.api.tag: expected a string, found a mapping\n"
        ));

    let typo = write(
        dir.path(),
        "typo.yaml",
        "networkPolicies:\n  enable: false\n",
    );
    votectl()
        .args(["render", "-f", &typo])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains(format!(
            "{typo}:2:3: networkPolicies.enable: unknown key `enable`; did you mean `enabled`?"
        )));

    votectl()
        .args(["render", "--set", "api.replicas"])
        .assert()
        .code(2)
        .stdout("")
        .stderr(predicate::str::contains(
            "--set api.replicas: `api.replicas` is not KEY=VALUE",
        ));

    votectl()
        .args([
            "render",
            "-f",
            &dir.path().join("missing.yaml").display().to_string(),
        ])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("failed to read values file")
                .and(predicate::str::contains("missing.yaml")),
        );

    votectl()
        .args(["render", "--profile", "knd"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("did you mean `kind`?"));
}

#[test]
fn a_password_in_the_values_moves_to_the_secret_or_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let helm = write(
        dir.path(),
        "helm.yaml",
        "postgresql:\n  url: postgresql://postgres:Sup3r-S3cret@postgres:5432/votes\n",
    );
    let out = votectl().args(["render", "-f", &helm]).assert().success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let err = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(
        err.starts_with(&format!(
            "warning: {helm}:2:8: postgresql.url: the URL holds a password"
        )),
        "{err}"
    );
    assert!(!err.contains("Sup3r-S3cret"), "{err}");
    assert!(
        !text.contains("Sup3r-S3cret"),
        "the password is in plain text"
    );
    assert_eq!(text.matches("kind: Secret").count(), 3);
    assert!(
        text.contains("password: U3VwM3ItUzNjcmV0"),
        "base64 of the password"
    );

    votectl()
        .args(["render", "--strict", "-f", &helm])
        .assert()
        .code(2)
        .stdout("")
        .stderr(
            predicate::str::contains("strict mode")
                .and(predicate::str::contains("Sup3r-S3cret").not()),
        );
}

#[test]
fn the_secret_comes_from_a_file_or_is_generated_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "pw", "from-the-file\n");
    let out = stdout(&["--postgres-password-file", &file]);
    assert_eq!(out.matches("kind: Secret").count(), 3);
    assert!(
        out.contains("password: ZnJvbS10aGUtZmlsZQ=="),
        "base64 of the first line"
    );

    let secret = |text: &str| -> String {
        let json: Value = serde_json::from_str(text).unwrap();
        json["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["kind"] == "Secret")
            .map(|o| o["data"]["password"].as_str().unwrap().to_owned())
            .unwrap()
    };
    let a = secret(&stdout(&["--generate-secret", "-o", "json"]));
    let b = secret(&stdout(&["--generate-secret", "-o", "json"]));
    assert_ne!(a, b, "generated passwords repeat");

    let empty = write(dir.path(), "empty", "\n");
    votectl()
        .args(["render", "--postgres-password-file", &empty])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("the password is empty"));
    votectl()
        .args([
            "render",
            "--postgres-password-file",
            &file,
            "--generate-secret",
        ])
        .assert()
        .code(2);
}

#[test]
fn out_dir_writes_one_file_per_object_and_replaces_an_earlier_render() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("k8s");
    fs::create_dir(&out).unwrap();
    fs::write(out.join("kustomization.yaml"), "resources: []\n").unwrap();
    let all = documents(&stdout(&[]));

    votectl()
        .args(["render", "--out-dir", out.to_str().unwrap()])
        .assert()
        .success()
        .stdout("")
        .stderr(format!("wrote {all} files to {}\n", out.display()));
    let mut names: Vec<String> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names.len(), all + 1);
    assert_eq!(names[0], "000-namespace-voting-api.yaml");
    assert!(
        names
            .iter()
            .any(|n| n.ends_with("-networkpolicy-voting-api-default-deny.yaml"))
    );

    // Turning the policies off must not leave the old policy files to be applied.
    votectl()
        .args([
            "render",
            "--set",
            "networkPolicies.enabled=false",
            "-o",
            "json",
            "--out-dir",
        ])
        .arg(&out)
        .assert()
        .success();
    let names: Vec<String> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        names.contains(&"kustomization.yaml".to_owned()),
        "a foreign file was removed"
    );
    assert!(
        !names.iter().any(|n| n.contains("networkpolicy")),
        "{names:?}"
    );
    assert!(names.iter().filter(|n| n.ends_with(".json")).count() > 10);
    assert!(
        !names
            .iter()
            .any(|n| n.ends_with(".yaml") && n != "kustomization.yaml")
    );

    // A bad value changes nothing.
    let before = fs::read_dir(&out).unwrap().count();
    votectl()
        .args(["render", "--set", "api.replicas=x", "--out-dir"])
        .arg(&out)
        .assert()
        .code(2);
    assert_eq!(fs::read_dir(&out).unwrap().count(), before);
}
