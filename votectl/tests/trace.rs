//! `votectl trace` end to end against the real local runtime: a healthy stack passes every hop, and
//! each hop broken on purpose (consumer stopped, PostgreSQL stopped, a consumer that dead-letters) is
//! the hop the trace names, with the evidence that shows why.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use support::{Child, Local, both, code, kill, one_stack_at_a_time, text, wait_dead};
use vote_contract::settings::var;

/// A timeout short enough for quick failures, long enough for a loaded machine to pass a healthy hop.
const SHORT: &str = "3s";

fn hop<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["hops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["hop"] == id)
        .unwrap_or_else(|| panic!("no hop {id} in {report:#}"))
}

fn outcome<'a>(report: &'a Value, id: &str) -> &'a str {
    hop(report, id)["outcome"].as_str().unwrap()
}

fn ok_or_implied(report: &Value, id: &str) -> bool {
    matches!(outcome(report, id), "observed" | "implied")
}

#[test]
fn a_healthy_stack_passes_every_hop_and_counts_the_vote_once() {
    let _turn = one_stack_at_a_time();
    let local = Local::new();
    local.up();

    let before = local.count("dogs");
    let (exit, report, out) = local.trace_json(&["--option", "dogs"]);
    assert_eq!(exit, 0, "{}", both(&out));
    assert_eq!(report["ok"], true);
    assert_eq!(report["option"], "dogs");
    assert!(report["failure"].is_null(), "{report:#}");
    uuid::Uuid::parse_str(report["request_id"].as_str().unwrap()).unwrap();
    // What votectl can always see for itself is observed, never only implied.
    for id in ["accepted", "counted", "acknowledged", "pushed"] {
        assert_eq!(outcome(&report, id), "observed", "{id}: {report:#}");
    }
    for id in ["in-stream", "delivered"] {
        assert!(ok_or_implied(&report, id), "{id}: {report:#}");
    }
    assert_eq!(
        hop(&report, "accepted")["detail"],
        format!(
            "201 Created, stream id {}",
            report["stream_id"].as_str().unwrap()
        )
    );
    assert!(
        hop(&report, "counted")["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("count of dogs now {}", before + 1)),
        "{report:#}"
    );
    assert_eq!(
        local.count("dogs"),
        before + 1,
        "the traced vote counts once"
    );

    // The table, with the default option (the first configured one).
    let out = local.run(&["trace"]);
    assert_eq!(code(&out), 0, "{}", both(&out));
    let table = text(&out.stdout);
    assert!(
        table.starts_with("Tracing one vote for cats through the local runtime"),
        "{table}"
    );
    assert!(
        table.contains("The vote made it all the way: all 6 hops"),
        "{table}"
    );
    for title in [
        "API accepted the vote",
        "entry in stream `votes`",
        "delivered to group `vote-consumers`",
        "counted in PostgreSQL",
        "acknowledged by the consumer",
        "pushed on the results stream (SSE)",
    ] {
        assert!(table.contains(title), "{title} missing:\n{table}");
    }
    assert_eq!(local.count("cats"), 1);

    // An option the API does not know: a usage error naming the valid ones, nothing counted.
    let out = local.run(&["trace", "--option", "birds"]);
    assert_eq!(code(&out), 2, "{}", both(&out));
    assert!(
        text(&out.stderr).contains("valid options: cats, dogs"),
        "{}",
        both(&out)
    );
    assert!(out.stdout.is_empty(), "{}", both(&out));
    assert_eq!(local.count("dogs") + local.count("cats"), before + 2);
}

#[test]
fn a_stopped_consumer_is_named_at_the_delivery_hop() {
    let _turn = one_stack_at_a_time();
    let local = Local::new();
    local.up();
    let consumer = local.pid("consumer");
    kill("TERM", consumer);
    wait_dead(&[consumer]);

    let (exit, report, out) = local.trace_json(&["--timeout-per-hop", SHORT]);
    assert_eq!(exit, 1, "{}", both(&out));
    assert_eq!(report["ok"], false);
    assert_eq!(report["failure"]["hop"], "delivered", "{report:#}");
    assert_eq!(report["failure"]["number"], 3);
    assert_eq!(outcome(&report, "accepted"), "observed");
    assert_eq!(outcome(&report, "in-stream"), "observed");
    for id in ["counted", "acknowledged", "pushed"] {
        assert_eq!(outcome(&report, id), "not-reached", "{id}: {report:#}");
    }
    let evidence = &report["evidence"];
    assert!(
        evidence["group"]["lag"].as_u64().unwrap() >= 1,
        "{evidence:#}"
    );
    assert_eq!(evidence["group"]["pending"], 0, "{evidence:#}");
    let process = evidence["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["component"] == "consumer")
        .unwrap();
    assert_eq!(process["running"], false);
    let ready = evidence["ready"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["service"] == "consumer")
        .unwrap();
    assert_eq!(ready["ready"], false, "{evidence:#}");
    assert_eq!(
        report["causes"][0],
        format!("the consumer process (pid {consumer}) is not running")
    );
    let state = local.state.display().to_string();
    assert!(
        report["next"]
            .as_array()
            .unwrap()
            .contains(&Value::from(format!(
                "votectl --state-dir {state} logs consumer"
            ))),
        "{report:#}"
    );

    // The same in the table for people.
    let out = local.run(&["trace", "--timeout-per-hop", SHORT]);
    assert_eq!(code(&out), 1, "{}", both(&out));
    let table = text(&out.stdout);
    assert!(
        table.contains("✗ hop 3 of 6 failed (delivered): delivered to group `vote-consumers`"),
        "{table}"
    );
    assert!(table.contains("Likely causes"), "{table}");
    assert!(
        table.contains(&format!("consumer {consumer} NOT RUNNING")),
        "{table}"
    );
}

#[test]
fn a_stopped_postgres_is_named_at_the_counting_hop() {
    let _turn = one_stack_at_a_time();
    let local = Local::new();
    local.up();
    let postgres = local.pid("postgres");
    // Fast shutdown: PostgreSQL does not wait for the services' connections.
    kill("INT", postgres);
    wait_dead(&[postgres]);

    let (exit, report, out) = local.trace_json(&["--option", "dogs", "--timeout-per-hop", SHORT]);
    assert_eq!(exit, 1, "{}", both(&out));
    // The API takes votes without PostgreSQL and the consumer reads them; it cannot commit, so it
    // does not acknowledge either.
    assert_eq!(outcome(&report, "accepted"), "observed", "{report:#}");
    assert!(ok_or_implied(&report, "in-stream"), "{report:#}");
    assert_eq!(outcome(&report, "delivered"), "observed", "{report:#}");
    assert_eq!(report["failure"]["hop"], "counted", "{report:#}");
    assert!(
        report["failure"]["reason"]
            .as_str()
            .unwrap()
            .contains("PostgreSQL: connection refused"),
        "{report:#}"
    );
    let evidence = &report["evidence"];
    assert_eq!(evidence["postgres"], "connection refused", "{evidence:#}");
    assert_eq!(
        evidence["traced_entry_pending"]["consumer"], "votectl-local-consumer",
        "{evidence:#}"
    );
    let api_ready = evidence["ready"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["service"] == "api")
        .unwrap();
    assert_eq!(api_ready["ready"], false, "{evidence:#}");
    assert!(
        api_ready["answer"].as_str().unwrap().contains("postgres"),
        "{evidence:#}"
    );
    let causes = report["causes"].as_array().unwrap();
    assert!(
        causes[0]
            .as_str()
            .unwrap()
            .contains("does not answer: connection refused; the consumer keeps the entry pending"),
        "{causes:#?}"
    );
}

#[test]
fn a_consumer_that_dead_letters_is_named_at_the_counting_hop_with_its_reason() {
    let _turn = one_stack_at_a_time();
    let local = Local::new();
    local.up();

    // The consumer again, on the same port and under the same name, but without "dogs".
    let record = local.component("consumer");
    let pid = local.pid("consumer");
    kill("TERM", pid);
    wait_dead(&[pid]);
    let program = record["program"].as_str().unwrap().to_owned();
    let log = std::fs::File::create(local.dir().join("consumer-cats-only.log")).unwrap();
    let _consumer = Child(
        std::process::Command::new(&program)
            .env(var::PORT, record["port"].to_string())
            .env(var::REDIS_URL, local.url("redis"))
            .env(var::DATABASE_URL, local.url("postgres"))
            .env(var::VOTE_OPTIONS, "cats")
            .env(var::POD_NAME, "votectl-local-consumer")
            .env_remove(var::DATABASE_PASSWORD_FILE)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    support::wait_http_ok(
        &format!("{}/ready", record["url"].as_str().unwrap()),
        Duration::from_secs(30),
    );

    let (exit, report, out) = local.trace_json(&["--option", "dogs", "--timeout-per-hop", SHORT]);
    assert_eq!(exit, 1, "{}", both(&out));
    assert_eq!(report["failure"]["hop"], "counted", "{report:#}");
    let reason = report["failure"]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("dead-lettered: option \"dogs\" is not configured (dead letter "),
        "{reason}"
    );
    // Dead letters are acknowledged with the letter: that hop did happen.
    assert_eq!(outcome(&report, "acknowledged"), "observed", "{report:#}");
    assert_eq!(outcome(&report, "pushed"), "not-reached", "{report:#}");
    let ours: Vec<&Value> = report["evidence"]["dead_letters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["ours"] == true)
        .collect();
    assert_eq!(ours.len(), 1, "{report:#}");
    assert_eq!(ours[0]["source_id"], report["stream_id"]);
    assert_eq!(ours[0]["reason"], "option \"dogs\" is not configured");
    assert_eq!(
        ours[0]["request_id"], report["request_id"],
        "the letter's payload carries the traced request id"
    );
    let causes: Vec<&str> = report["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        causes[1].contains("VOTE_OPTIONS does not include \"dogs\""),
        "{causes:#?}"
    );

    // "cats" still goes all the way through the same consumer.
    let (exit, report, out) = local.trace_json(&["--option", "cats"]);
    assert_eq!(exit, 0, "{}\n{report:#}", both(&out));
}

#[test]
fn without_a_runtime_or_with_an_unknown_context_it_is_a_usage_error() {
    let local = Local::new();
    let out = local.run(&["trace"]);
    assert_eq!(code(&out), 2, "{}", both(&out));
    assert!(
        text(&out.stderr).contains("no local runtime in")
            && text(&out.stderr).contains("votectl up --local"),
        "{}",
        both(&out)
    );
    // A context the kube config does not have: named, exit 2, nothing cast.
    let kubeconfig = local.dir().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n",
    )
    .unwrap();
    let out = local
        .cmd()
        .args(["trace", "--context", "kind-nowhere"])
        .env("KUBECONFIG", &kubeconfig)
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", both(&out));
    assert!(text(&out.stderr).contains("kind-nowhere"), "{}", both(&out));
    let out = local.run(&["trace", "--timeout-per-hop", "forever"]);
    assert_eq!(code(&out), 2, "{}", both(&out));
    assert!(
        text(&out.stderr).contains("--timeout-per-hop"),
        "{}",
        both(&out)
    );
}
