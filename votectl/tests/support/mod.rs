//! The local-stack harness shared by votectl's integration tests (`local`, `trace`, `docs`):
//! `votectl up --local` against the real binaries (redis-server and PostgreSQL from the system, the
//! workspace's vote-api, vote-consumer and vote-frontend) in a temporary state directory on free
//! loopback ports, with `down --purge` when dropped (pass or fail).
//!
//! The service binaries must be current, so the first stack runs `cargo build -p vote-api -p
//! vote-consumer -p vote-frontend` into the same target directory and profile as this test's votectl
//! (a no-op when they are up to date). `VOTECTL_TEST_BIN_DIR` points at binaries from elsewhere
//! instead. Stacks take turns within a test binary (the machine may have two cores).

#![allow(dead_code, clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

static STACKS: Mutex<()> = Mutex::new(());

/// Held while a test runs a stack.
pub fn one_stack_at_a_time() -> MutexGuard<'static, ()> {
    STACKS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub fn votectl_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_votectl"))
}

/// The directory holding current service binaries (built on first use).
pub fn bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os("VOTECTL_TEST_BIN_DIR") {
            return PathBuf::from(dir);
        }
        let profile_dir = votectl_exe().parent().unwrap().to_path_buf();
        let profile = profile_dir
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let target_dir = profile_dir.parent().unwrap();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| env!("CARGO").to_owned());
        let mut build = Command::new(cargo);
        build
            .args([
                "build",
                "-p",
                "vote-api",
                "-p",
                "vote-consumer",
                "-p",
                "vote-frontend",
            ])
            .arg("--target-dir")
            .arg(target_dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if profile != "debug" {
            build.args(["--profile", &profile]);
        }
        let status = build
            .status()
            .expect("running cargo build for the services");
        assert!(status.success(), "building the service binaries failed");
        profile_dir
    })
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `n` distinct free ports.
pub fn free_ports(n: usize) -> Vec<u16> {
    let mut ports = Vec::with_capacity(n);
    while ports.len() < n {
        let p = free_port();
        if !ports.contains(&p) {
            ports.push(p);
        }
    }
    ports
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

/// Stdout and stderr, for assertion messages.
pub fn both(out: &Output) -> String {
    format!(
        "exit {}\n--- stdout\n{}\n--- stderr\n{}",
        code(out),
        text(&out.stdout),
        text(&out.stderr)
    )
}

pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .is_some_and(|r| !r.trim_start().starts_with('Z'))
    })
}

/// Waits until none of `pids` runs, or panics after 30 s.
pub fn wait_dead(pids: &[u32]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while pids.iter().any(|p| alive(*p)) {
        assert!(Instant::now() < deadline, "still running: {pids:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends `signal` (e.g. `TERM`, `INT`) to `pid`.
pub fn kill(signal: &str, pid: u32) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// A state directory with its own ports; `down --purge` runs when it is dropped.
pub struct Local {
    tmp: tempfile::TempDir,
    pub state: PathBuf,
    /// redis, postgres, api, consumer, frontend
    pub ports: [u16; 5],
}

impl Local {
    pub fn new() -> Self {
        let tmp = tempfile::Builder::new()
            .prefix("votectl-test-")
            .tempdir()
            .unwrap();
        // PostgreSQL runs as the postgres user when the tests run as root: it must reach the state dir.
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let state = tmp.path().join("state");
        let ports: [u16; 5] = free_ports(5).try_into().unwrap();
        Self { tmp, state, ports }
    }

    /// A scratch directory that goes with the stack.
    pub fn dir(&self) -> &Path {
        self.tmp.path()
    }

    pub fn cmd(&self) -> Command {
        let mut cmd = Command::new(votectl_exe());
        cmd.arg("--state-dir")
            .arg(&self.state)
            .env_remove("VOTECTL_API_URL")
            .env_remove("VOTECTL_STATE_DIR");
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// The `up` arguments that pin this stack's binaries and ports (after `up --local …`).
    pub fn pinning_args(&self) -> Vec<String> {
        let [redis, postgres, api, consumer, frontend] = self.ports;
        [
            "--bin-dir",
            bin_dir().to_str().unwrap(),
            "--redis-port",
            &redis.to_string(),
            "--postgres-port",
            &postgres.to_string(),
            "--api-port",
            &api.to_string(),
            "--consumer-port",
            &consumer.to_string(),
            "--frontend-port",
            &frontend.to_string(),
        ]
        .map(str::to_owned)
        .to_vec()
    }

    /// `up --local --detach` with this stack's binaries and ports, whatever it answers.
    pub fn up_detached(&self) -> Output {
        self.cmd()
            .args(["up", "--local", "--detach"])
            .args(self.pinning_args())
            .output()
            .unwrap()
    }

    /// Starts the stack in the background; panics with its output if that fails.
    pub fn up(&self) {
        let out = self.up_detached();
        assert_eq!(code(&out), 0, "up failed: {}", both(&out));
    }

    /// `votectl ARGS`, its stdout parsed as JSON (panics with the output if it is not).
    pub fn json(&self, args: &[&str]) -> (Value, Output) {
        let out = self.run(args);
        let value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!("votectl {args:?} did not print JSON ({e}): {}", both(&out))
        });
        (value, out)
    }

    pub fn runtime(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.state.join("runtime.json")).unwrap())
            .unwrap()
    }

    /// The runtime.json record of `name`.
    pub fn component(&self, name: &str) -> Value {
        self.runtime()["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("{name} not in runtime.json"))
            .clone()
    }

    pub fn pid(&self, name: &str) -> u32 {
        pid_of(&self.component(name))
    }

    /// The PIDs of every component in runtime.json.
    pub fn pids(&self) -> Vec<u32> {
        self.runtime()["components"]
            .as_array()
            .unwrap()
            .iter()
            .map(pid_of)
            .collect()
    }

    pub fn url(&self, name: &str) -> String {
        self.component(name)["url"].as_str().unwrap().to_owned()
    }

    /// The count of `option` as `votectl results` shows it.
    pub fn count(&self, option: &str) -> u64 {
        let (results, out) = self.json(&["results", "-o", "json"]);
        assert_eq!(code(&out), 0, "{}", both(&out));
        results["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["option"] == option)
            .unwrap_or_else(|| panic!("{option} missing from {results}"))["count"]
            .as_u64()
            .unwrap()
    }

    /// Polls until `option` has `expected` votes (the consumer counts asynchronously).
    pub fn wait_count(&self, option: &str, expected: u64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let count = self.count(option);
            if count == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{option} stayed at {count}, expected {expected}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `votectl trace ARGS -o json`: the exit code and the parsed report.
    pub fn trace_json(&self, args: &[&str]) -> (i32, Value, Output) {
        let args: Vec<&str> = [&["trace"], args, &["-o", "json"]].concat();
        let (report, out) = self.json(&args);
        (code(&out), report, out)
    }
}

/// The `pid` of a runtime.json component record.
fn pid_of(component: &Value) -> u32 {
    u32::try_from(component["pid"].as_u64().unwrap()).unwrap()
}

impl Drop for Local {
    fn drop(&mut self) {
        let _ = self.run(&["down", "--purge"]);
    }
}

/// A child process that is killed (and reaped) when dropped.
pub struct Child(pub std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Polls `GET url` until it answers 200, or panics after `timeout`.
pub fn wait_http_ok(url: &str, timeout: Duration) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::new();
    let deadline = Instant::now() + timeout;
    loop {
        // The request is built inside the runtime: its timeout needs the runtime's clock.
        let answer = runtime
            .block_on(async { client.get(url).timeout(Duration::from_secs(2)).send().await });
        match answer {
            Ok(response) if response.status() == 200 => return,
            other => assert!(
                Instant::now() < deadline,
                "{url} did not answer 200 within {timeout:?}: {other:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
