//! A `redis-server` on a free loopback port with its own directory.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::Signal;
use tempfile::TempDir;

use crate::process::{Process, stop_slot, wait_until_ready};

/// How the server persists; the default keeps nothing on disk, which is fastest.
#[derive(Debug, Clone, Default)]
pub struct RedisConfig {
    /// Append-only file on (`appendfsync` as below) so a restart keeps the data.
    pub appendonly: bool,
    /// `always`, `everysec` or `no`; only with `appendonly`. Default `everysec`.
    pub appendfsync: Option<String>,
}

/// A running (or stopped, restartable) `redis-server`.
pub struct Redis {
    dir: TempDir,
    port: u16,
    config: RedisConfig,
    process: Option<Process>,
}

impl Redis {
    /// Starts a server without persistence.
    pub async fn start() -> Self {
        Self::start_with(RedisConfig::default()).await
    }

    /// Starts a server with `config`, retrying on a fresh port if the first one was taken meanwhile.
    pub async fn start_with(config: RedisConfig) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("vote-testkit-redis-")
            .tempdir()
            .expect("creating a redis data directory");
        let mut server = Self {
            dir,
            port: 0,
            config,
            process: None,
        };
        for attempt in 1..=3 {
            server.port = crate::free_port();
            if server.spawn_and_wait(attempt == 3).await {
                return server;
            }
        }
        unreachable!("the last attempt panics instead of returning false")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A fresh multiplexed connection.
    pub async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .expect("a valid redis URL")
            .get_multiplexed_async_connection()
            .await
            .expect("connecting to the test redis")
    }

    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().and_then(Process::pid)
    }

    /// Stops the server the polite way (SIGTERM: it writes its AOF and exits); the data stays.
    pub async fn stop(&mut self) {
        stop_slot(&mut self.process, Signal::SIGTERM, Duration::from_secs(10)).await;
    }

    /// Kills the server (SIGKILL): whatever was not yet fsynced is lost, as in a crash.
    pub fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.stop(Signal::SIGKILL, Duration::from_secs(5));
        }
    }

    /// Starts the server again on the same port with the same directory.
    pub async fn start_again(&mut self) {
        assert!(self.process.is_none(), "redis is already running");
        self.spawn_and_wait(true).await;
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("redis.log")
    }

    /// Spawns and waits for PING. Returns false (instead of panicking) when the port was taken and
    /// `must_succeed` is false.
    async fn spawn_and_wait(&mut self, must_succeed: bool) -> bool {
        let mut command = Command::new("redis-server");
        command.args(["--port", &self.port.to_string()]);
        command.args(["--bind", "127.0.0.1", "--protected-mode", "yes"]);
        command.arg("--dir").arg(self.dir.path());
        command.args(["--save", "", "--daemonize", "no", "--logfile", ""]);
        if self.config.appendonly {
            let fsync = self.config.appendfsync.as_deref().unwrap_or("everysec");
            command.args(["--appendonly", "yes", "--appendfsync", fsync]);
        } else {
            command.args(["--appendonly", "no"]);
        }
        let log = self.log_path();
        let mut process = Process::spawn("redis-server", command, &log);
        let url = self.url();
        if !must_succeed {
            // Give a bind failure a moment to show as an exit.
            for _ in 0..50 {
                if ping(&url).await {
                    break;
                }
                if process.has_exited() {
                    return false;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        wait_until_ready(&mut process, &log, Duration::from_secs(15), || ping(&url)).await;
        self.process = Some(process);
        true
    }
}

async fn ping(url: &str) -> bool {
    let Ok(client) = redis::Client::open(url) else {
        return false;
    };
    match client.get_multiplexed_async_connection().await {
        Ok(mut con) => redis::cmd("PING")
            .query_async::<String>(&mut con)
            .await
            .is_ok(),
        Err(_) => false,
    }
}
