//! The `vote-consumer` binary: a bad variable is one line and exit 2; a run logs JSON lines, logs one
//! line per dependency state change (not one per retry), and exits 0 on SIGTERM.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use common::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const BIN: &str = env!("CARGO_BIN_EXE_vote-consumer");

#[test]
fn a_bad_variable_is_one_line_naming_it_and_exit_2() {
    for (var, value) in [
        ("PORT", "eighty"),
        ("VOTE_OPTIONS", "Cats,Dogs"),
        ("DATABASE_URL", "postgres://u@/?x=%"),
        ("REDIS_URL", "http://localhost"),
        ("LOG_FORMAT", "xml"),
        ("POD_NAME", "has spaces"),
    ] {
        let out = Command::new(BIN)
            .env_clear()
            .env(var, value)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{var}: {stderr}");
        assert!(stderr.contains(var), "{var}: {stderr}");
        assert!(out.stdout.is_empty(), "{var}");
    }
}

#[tokio::test]
async fn runs_logs_json_reports_outages_once_and_exits_0_on_sigterm() {
    let mut servers = Servers::start().await;
    let port = vote_testkit::free_port();
    let mut child = Command::new(BIN)
        .env_clear()
        .env("PORT", port.to_string())
        .env("REDIS_URL", servers.redis.url())
        .env("DATABASE_URL", &servers.db_url)
        .env("POD_NAME", "consumer-bin")
        .env("LOG_LEVEL", "warn,vote_consumer=debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let reader = {
        let lines = lines.clone();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                lines.lock().unwrap().push(line.unwrap());
            }
        })
    };
    let count = |needle: &str| {
        lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    };

    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    eventually("/ready", || async {
        let r = http.get(format!("{base}/ready")).send().await.ok()?;
        (r.status() == 200).then_some(())
    })
    .await;
    let mut redis = servers.redis().await;
    for _ in 0..3 {
        xadd(&mut redis, &vote("cats")).await;
    }
    let db = servers.db().await;
    wait_total(&db, 3).await;

    servers.redis.stop().await;
    eventually("several retries", || async {
        (count("still unavailable") >= 3).then_some(())
    })
    .await;
    servers.redis.start_again().await;
    eventually("recovery logged", || async {
        (count("redis available again") == 1).then_some(())
    })
    .await;
    let mut redis = servers.redis().await;
    xadd(&mut redis, &vote("dogs")).await;
    wait_total(&db, 4).await;

    kill(
        Pid::from_raw(i32::try_from(child.id()).unwrap()),
        Signal::SIGTERM,
    )
    .unwrap();
    let status = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    reader.join().unwrap();
    assert_eq!(status.code(), Some(0));

    let lines = lines.lock().unwrap();
    for line in lines.iter() {
        let json: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            json["level"].is_string() && json["timestamp"].is_string(),
            "{line}"
        );
    }
    let messages: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["message"].clone())
        .collect();
    let said = |m: &str| messages.iter().filter(|v| v.as_str() == Some(m)).count();
    assert_eq!(
        said("redis unavailable; retrying with backoff, nothing is acknowledged until it is back"),
        1,
        "{lines:#?}"
    );
    assert_eq!(said("redis available again"), 1);
    assert_eq!(said("consumer stopped"), 1);
}
