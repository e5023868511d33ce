//! The `vote-api` binary as a platform runs it: a bad variable stops it with one line naming the
//! variable and exit code 2; logs are JSON lines carrying the request id; SIGTERM drains (open result
//! streams included) and exits 0.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{DEADLINE, SseReader};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use vote_contract::http::path;
use vote_testkit::{Postgres, Redis};

fn api() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vote-api"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    command
}

#[test]
fn a_bad_variable_is_one_line_naming_it_and_exit_2() {
    let cases = [
        ("PORT", "eighty"),
        ("VOTE_OPTIONS", "cats,,dogs"),
        ("CORS_ORIGINS", "*"),
        ("REDIS_URL", "localhost:6379"),
        ("DATABASE_PASSWORD_FILE", "/nonexistent/secret"),
        ("LOG_FORMAT", "yaml"),
    ];
    for (var, value) in cases {
        let output = api().env(var, value).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{var}={value}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(
            stderr.starts_with(&format!("error: invalid {var}: ")),
            "{var}: {stderr:?}"
        );
        assert_eq!(stderr.lines().count(), 1, "{var}: {stderr:?}");
        assert!(output.stdout.is_empty(), "{var}: nothing else is printed");
    }
}

/// Lines of the child's stdout, read on a thread.
fn lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The first JSON log line for which `pick` returns something.
fn wait_for<T>(
    rx: &mpsc::Receiver<String>,
    what: &str,
    pick: impl Fn(&serde_json::Value) -> Option<T>,
) -> T {
    let until = std::time::Instant::now() + DEADLINE;
    loop {
        let left = until.saturating_duration_since(std::time::Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no log line with {what}"));
        let value: serde_json::Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
        if let Some(found) = pick(&value) {
            return found;
        }
    }
}

#[tokio::test]
async fn logs_json_with_request_ids_and_drains_on_sigterm() {
    let redis = Redis::start().await;
    let pg = Postgres::start().await;
    let db = pg.create_database().await;
    let mut child = api()
        .env("PORT", "0")
        .env("REDIS_URL", redis.url())
        .env("DATABASE_URL", &db)
        .env("LOG_LEVEL", "info,tower_http=debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let rx = lines(&mut child);
    let port = wait_for(&rx, "the listening port", |v| {
        (v["fields"]["message"] == "vote-api listening")
            .then(|| v["fields"]["port"].as_u64())
            .flatten()
    });
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();

    let response = http
        .get(format!("{base}{}", path::HEALTH))
        .header("x-request-id", "probe-7")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "probe-7");
    wait_for(&rx, "a line in the request's span", |v| {
        (v["span"]["request_id"] == "probe-7").then_some(())
    });

    // An open stream must not hold the drain up.
    let stream = http
        .get(format!("{base}{}", path::RESULTS_STREAM))
        .send()
        .await
        .unwrap();
    let mut events = SseReader::new(stream);
    assert!(events.next().await.is_some());

    kill(
        Pid::from_raw(i32::try_from(child.id()).unwrap()),
        Signal::SIGTERM,
    )
    .unwrap();
    let status = tokio::task::spawn_blocking(move || {
        let until = std::time::Instant::now() + DEADLINE;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if std::time::Instant::now() > until {
                let _ = child.kill();
                panic!("vote-api did not exit after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        events.next().await,
        None,
        "the stream ended with the process"
    );
    wait_for(&rx, "the stop message", |v| {
        (v["fields"]["message"] == "vote-api stopped").then_some(())
    });
}
