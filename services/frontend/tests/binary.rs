//! The `vote-frontend` binary as a process: a bad variable stops it with one line naming it (exit 2);
//! it logs JSON on stdout, serves, and exits 0 on SIGTERM.

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use vote_contract::settings::var;

const BIN: &str = env!("CARGO_BIN_EXE_vote-frontend");
const DEADLINE: Duration = Duration::from_secs(20);

#[test]
fn a_bad_variable_is_one_line_naming_it_and_exit_2() {
    for (name, value) in [
        (var::API_URL, "ftp://api:8000"),
        (var::API_URL, "http://api:8000/?q=1"),
        (var::PORT, "eighty"),
        (var::LOG_FORMAT, "xml"),
    ] {
        let out = Command::new(BIN)
            .env_clear()
            .env(name, value)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}={value}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(name), "{stderr}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn it_serves_logs_json_and_stops_on_sigterm() {
    let port = vote_testkit::free_port();
    let dead_api = vote_testkit::free_port();
    let mut child = Command::new(BIN)
        .env_clear()
        .env(var::PORT, port.to_string())
        .env(var::API_URL, format!("http://127.0.0.1:{dead_api}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let health = loop {
        if let Ok(body) = get(port, "/health") {
            break body;
        }
        assert!(started.elapsed() < DEADLINE, "no answer on port {port}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.contains("\"status\":\"healthy\""), "{health}");
    let ready = get(port, "/ready").unwrap();
    assert!(ready.starts_with("HTTP/1.1 503"), "{ready}");

    kill(
        Pid::from_raw(i32::try_from(child.id()).unwrap()),
        Signal::SIGTERM,
    )
    .unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < DEADLINE * 2, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
    let lines: Vec<String> = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(Result::unwrap)
        .collect();
    assert!(!lines.is_empty());
    for line in &lines {
        let json: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(json.get("level").is_some(), "{line}");
    }
    assert!(lines.iter().any(|l| l.contains("frontend listening")));
    assert!(lines.iter().any(|l| l.contains("SIGTERM")));
}

/// A minimal HTTP/1.1 GET on loopback: the whole answer as text.
fn get(port: u16, path: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(DEADLINE))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}
