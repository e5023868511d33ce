//! `votectl trace --context` against a real cluster with the application deployed (deploy.md's
//! manual path). Ignored by default; `make e2e` runs it against the cluster of `VOTECTL_E2E_CONTEXT`,
//! else the kube config's current context. It casts one real vote.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn context() -> String {
    if let Ok(context) = std::env::var("VOTECTL_E2E_CONTEXT") {
        return context;
    }
    let kubeconfig = std::env::var("KUBECONFIG").ok();
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let paths = votectl::images::load::kubeconfig_paths(kubeconfig.as_deref(), home.as_deref());
    votectl::images::load::current_context(&paths)
        .unwrap()
        .expect("set VOTECTL_E2E_CONTEXT or a current context in the kube config")
}

#[test]
#[ignore = "needs cluster"]
fn a_vote_goes_all_the_way_through_the_cluster() {
    let context = context();
    let profile = std::env::var("VOTECTL_E2E_PROFILE").unwrap_or_else(|_| "default".to_owned());
    let out = Command::new(env!("CARGO_BIN_EXE_votectl"))
        .args(["trace", "--context", &context, "--profile", &profile])
        .args(["--timeout-per-hop", "30s", "-o", "json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["ok"], true, "{report:#}");
    assert!(
        report["target"]
            .as_str()
            .unwrap()
            .contains(&format!("context {context}")),
        "{report:#}"
    );
    for hop in report["hops"].as_array().unwrap() {
        assert!(
            matches!(hop["outcome"].as_str(), Some("observed" | "implied")),
            "{hop:#}"
        );
    }
}
