//! `votectl up --local` end to end, against the real binaries: redis-server and PostgreSQL from the
//! system, and the workspace's vote-api, vote-consumer and vote-frontend.
//!
//! The service binaries must be current, so the first test to need them runs
//! `cargo build -p vote-api -p vote-consumer -p vote-frontend` into the same target directory and
//! profile as this test's votectl (a no-op when they are up to date). Set `VOTECTL_TEST_BIN_DIR` to
//! use binaries from elsewhere instead. Each stack gets its own state directory and explicit free
//! ports, and a guard runs `down --purge` when the test ends, pass or fail. Tests that start a stack
//! take turns (the machine may have two cores). The harness is `support`, shared with the trace and
//! docs tests.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Local, alive, bin_dir, code, free_port, kill, one_stack_at_a_time, text, wait_dead};

/// The lines a child writes, as they come.
fn lines_of(stream: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stream)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

#[test]
fn up_vote_results_status_load_down_up_purge() {
    let _turn = one_stack_at_a_time();
    let local = Local::new();
    let [redis, postgres, api, consumer, frontend] = local.ports;

    let out = local.up_detached();
    assert_eq!(
        code(&out),
        0,
        "up failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let table = text(&out.stdout);
    for url in [
        format!("http://127.0.0.1:{frontend}"),
        format!("http://127.0.0.1:{api}"),
        format!("redis://127.0.0.1:{redis}"),
    ] {
        assert!(table.contains(&url), "{url} missing from\n{table}");
    }

    // One vote.
    let out = local.run(&["vote", "dogs"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let line = text(&out.stdout);
    assert!(
        line.starts_with("Vote recorded: dogs (stream id "),
        "{line}"
    );
    local.wait_count("dogs", 1);
    assert_eq!(local.count("cats"), 0);

    // results --watch follows the live stream: the current results, then each change.
    let mut watch = local
        .cmd()
        .args(["results", "--watch", "-o", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let events = lines_of(watch.stdout.take().unwrap());
    let next_event = || -> Value {
        let line = events
            .recv_timeout(Duration::from_secs(20))
            .expect("an event from results --watch");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
    };
    assert_eq!(next_event()["total_votes"], 1);
    let out = local.run(&["vote", "cats"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    loop {
        let event = next_event();
        if event["total_votes"] == 2 {
            assert_eq!(event["results"][0]["option"], "cats");
            assert_eq!(event["results"][0]["count"], 1);
            break;
        }
    }
    let _ = Command::new("kill")
        .args(["-INT", &watch.id().to_string()])
        .status();
    assert_eq!(watch.wait().unwrap().code(), Some(0));
    local.wait_count("cats", 1);

    // Status: every component, ready, with live PIDs.
    let (status, out) = local.json(&["status", "-o", "json"]);
    assert_eq!(code(&out), 0, "{status}");
    let components = status["components"].as_array().unwrap();
    let names: Vec<&str> = components
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["frontend", "api", "consumer", "redis", "postgres"]);
    for c in components {
        assert_eq!(c["ready"], true, "{c}");
        assert!(
            alive(u32::try_from(c["pid"].as_u64().unwrap()).unwrap()),
            "{c}"
        );
    }
    assert_eq!(components[1]["url"], format!("http://127.0.0.1:{api}"));
    assert_eq!(components[2]["url"], format!("http://127.0.0.1:{consumer}"));
    assert_eq!(
        components[4]["url"],
        format!("postgres://postgres@127.0.0.1:{postgres}/votes")
    );

    // Bad input changes nothing: an unknown option lists the valid ones.
    let out = local.run(&["vote", "birds"]);
    assert_eq!(code(&out), 2);
    let err = text(&out.stderr);
    assert!(err.contains("valid options: cats, dogs"), "{err}");
    // A second up says what runs and leaves it alone.
    let before = std::fs::read(local.state.join("runtime.json")).unwrap();
    let out = local.up_detached();
    assert_eq!(code(&out), 2);
    let err = text(&out.stderr);
    assert!(
        err.contains("is already running") && err.contains("nothing was changed"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(local.state.join("runtime.json")).unwrap(),
        before
    );

    // A load run with a clean audit.
    let (summary, out) = local.json(&[
        "vote",
        "--count",
        "20000",
        "--concurrency",
        "32",
        "--mix",
        "cats=30,dogs=70",
        "-o",
        "json",
    ]);
    assert_eq!(code(&out), 0, "{summary}\n{}", text(&out.stderr));
    assert_eq!(summary["acknowledged"], 20_000, "{summary}");
    assert_eq!(summary["audit"]["passed"], true, "{summary}");
    assert_eq!(summary["audit"]["lost"], 0, "{summary}");
    assert!(
        summary["latency_ms"]["p99"].as_f64().unwrap() > 0.0,
        "{summary}"
    );
    assert_eq!(local.count("cats"), 6001);
    assert_eq!(local.count("dogs"), 14_001);
    let out = local.run(&["results"]);
    assert!(
        text(&out.stdout).contains("Total: 20002 votes"),
        "{}",
        text(&out.stdout)
    );

    // down stops everything and keeps the data.
    let pids = local.pids();
    let out = local.run(&["down"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    wait_dead(&pids);
    assert!(!local.state.join("runtime.json").exists());
    assert!(local.state.join("postgres/data/PG_VERSION").exists());
    let out = local.run(&["status"]);
    assert_eq!(code(&out), 1);

    // up again: the counts are still there.
    let out = local.up_detached();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(local.count("cats"), 6001);
    assert_eq!(local.count("dogs"), 14_001);

    // Killed outright, the runtime is stale: status says so, up cleans up and starts again.
    let pids = local.pids();
    for pid in &pids {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
    wait_dead(&pids);
    let (status, out) = local.json(&["status", "-o", "json"]);
    assert_eq!(code(&out), 1);
    assert!(
        status["components"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["ready"] == false)
    );
    let out = local.up_detached();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("stale runtime.json"),
        "{}",
        text(&out.stderr)
    );
    local.wait_count("dogs", 14_001);
    assert_eq!(local.count("cats"), 6001);

    // The logs are there, per component and together.
    let out = local.run(&["logs", "redis", "-n", "5"]);
    assert_eq!(code(&out), 0);
    assert!(text(&out.stdout).contains("Ready to accept connections"));
    let out = local.run(&["logs"]);
    let all = text(&out.stdout);
    assert!(
        all.contains("redis    | ") && all.contains("api      | "),
        "{all}"
    );

    // down --purge removes the data.
    let pids = local.pids();
    let out = local.run(&["down", "--purge"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    wait_dead(&pids);
    assert!(
        !local.state.exists(),
        "{} still exists",
        local.state.display()
    );
}

#[test]
fn foreground_up_stops_everything_on_ctrl_c_and_keeps_the_data() {
    let _turn = one_stack_at_a_time();
    let local = Local::new();
    let mut child = local
        .cmd()
        .args(["up", "--local"])
        .args(local.pinning_args())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let runtime = loop {
        if let Ok(text) = std::fs::read_to_string(local.state.join("runtime.json"))
            && let Ok(runtime) = serde_json::from_str::<Value>(&text)
            && runtime["ready_at"].is_string()
        {
            break runtime;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!("up exited early ({status}): {}", text(&out.stderr));
        }
        assert!(Instant::now() < deadline, "the stack did not become ready");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(runtime["mode"], "foreground");
    let out = local.run(&["vote", "cats"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    local.wait_count("cats", 1);
    let pids = local.pids();

    // What a terminal's Ctrl-C does: SIGINT to votectl (the children have their own process groups).
    kill("INT", child.id());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("stopped postgres") && err.contains("stopped redis"),
        "{err}"
    );
    wait_dead(&pids);
    assert!(!local.state.join("runtime.json").exists());

    // The data survived the stop.
    let out = local.up_detached();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(local.count("cats"), 1);
}

#[test]
fn a_busy_port_is_named_with_its_holder_and_nothing_starts() {
    let local = Local::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = listener.local_addr().unwrap().port();
    let out = local
        .cmd()
        .args([
            "up",
            "--local",
            "--detach",
            "--bin-dir",
            bin_dir().to_str().unwrap(),
        ])
        .args(["--api-port", &busy.to_string()])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2);
    let err = text(&out.stderr);
    let holder = format!("port {busy} for api is already in use by ");
    assert!(err.contains(&holder), "{err}");
    // This test process holds it; its name is whatever the harness called it, the PID is ours.
    assert!(
        err.contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
    assert!(!local.state.join("runtime.json").exists());
    assert!(!local.state.join("redis").exists());
}

#[test]
fn an_unreachable_api_is_one_clear_line() {
    let local = Local::new();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    for args in [
        vec!["vote", "dogs", "--api-url", &url],
        vec!["results", "--api-url", &url],
        vec!["vote", "dogs", "--count", "10", "--api-url", &url],
    ] {
        let out = local.run(&args);
        assert_eq!(code(&out), 2, "{args:?}");
        let err = text(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with(&format!(
                "error: cannot reach the API at {url}: connection refused"
            )),
            "{err}"
        );
    }
    // VOTECTL_API_URL works the same as the flag.
    let out = local
        .cmd()
        .args(["vote", "dogs"])
        .env("VOTECTL_API_URL", &url)
        .output()
        .unwrap();
    assert_eq!(code(&out), 2);
    assert!(text(&out.stderr).contains(&url));
}

#[test]
fn commands_that_need_a_runtime_say_when_there_is_none() {
    let local = Local::new();
    let out = local.run(&["logs"]);
    assert_eq!(code(&out), 2);
    assert!(
        text(&out.stderr).contains("no logs in"),
        "{}",
        text(&out.stderr)
    );
    let out = local.run(&["down"]);
    assert_eq!(code(&out), 0);
    assert!(
        text(&out.stdout).contains("Nothing to stop"),
        "{}",
        text(&out.stdout)
    );
    let (status, out) = local.json(&["status", "-o", "json"]);
    assert_eq!(code(&out), 1);
    assert_eq!(status["components"].as_array().unwrap().len(), 5);
    let out = local.run(&["up"]);
    assert_eq!(code(&out), 2);
    assert!(
        text(&out.stderr).contains("--local"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_missing_redis_server_names_the_debian_package_and_creates_nothing() {
    let local = Local::new();
    let empty = tempfile::tempdir().unwrap();
    let out = local
        .cmd()
        .args(["up", "--local", "--detach"])
        .env("PATH", empty.path())
        .output()
        .unwrap();
    assert_eq!(code(&out), 2);
    assert_eq!(
        text(&out.stderr),
        "error: redis-server not found on PATH: install Debian's `redis-server` package \
         (apt-get install redis-server)\n"
    );
    assert!(!local.state.exists());
}
