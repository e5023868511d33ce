//! A PostgreSQL server on a free loopback port with its own data directory, trust authentication and
//! durability switched off (tests want speed, and each server is thrown away).
//!
//! `initdb` is slow (seconds), so it runs once per machine into a template directory under the system
//! temp dir; each server copies the template. The template is created under a temporary name and
//! renamed into place, so concurrent test processes never see half of one.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::{Gid, Uid, User, chown};
use tempfile::TempDir;
use tokio_postgres::NoTls;

use crate::process::{Process, stop_slot, wait_until_ready};

/// The directory holding `initdb` and `postgres`: Debian's newest `/usr/lib/postgresql/*/bin`, else
/// wherever `PATH` finds `initdb`.
pub fn postgres_bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .find(|dir| dir.join("initdb").exists() && dir.join("postgres").exists())
    })
}

/// The user PostgreSQL runs as: `postgres` when we are root (it refuses root), else ourselves.
struct RunAs {
    uid: Uid,
    gid: Gid,
}

fn run_as() -> Option<RunAs> {
    if !Uid::effective().is_root() {
        return None;
    }
    let user = User::from_name("postgres")
        .ok()
        .flatten()
        .expect("running as root needs a `postgres` user (apt-get install postgresql)");
    Some(RunAs {
        uid: user.uid,
        gid: user.gid,
    })
}

fn command(bin: &Path, name: &str) -> Command {
    let mut command = Command::new(bin.join(name));
    if let Some(user) = run_as() {
        command.uid(user.uid.as_raw()).gid(user.gid.as_raw());
        // The postgres user cannot read root's home or cwd.
        command.current_dir("/").env("HOME", "/tmp");
    }
    command
}

fn chown_for_postgres(path: &Path) {
    if let Some(user) = run_as() {
        chown(path, Some(user.uid), Some(user.gid))
            .unwrap_or_else(|e| panic!("chown {} to postgres: {e}", path.display()));
    }
}

fn template(bin: &Path) -> PathBuf {
    let version = bin
        .parent()
        .and_then(Path::file_name)
        .and_then(|v| v.to_str())
        .unwrap_or("pg");
    let root = std::env::temp_dir();
    let template = root.join(format!(
        "vote-testkit-pg-template-{version}-{}",
        Uid::effective()
    ));
    if template.join("PG_VERSION").exists() {
        return template;
    }
    let staging = tempfile::Builder::new()
        .prefix("vote-testkit-pg-initdb-")
        .tempdir_in(&root)
        .expect("creating an initdb directory")
        .keep();
    chown_for_postgres(&staging);
    let data = staging.join("data");
    let log = std::env::temp_dir().join(format!("vote-testkit-initdb-{}.log", std::process::id()));
    let status = command(bin, "initdb")
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ])
        .stdout(std::fs::File::create(&log).expect("creating the initdb log"))
        .stderr(std::process::Stdio::inherit())
        .status()
        .expect("running initdb");
    assert!(
        status.success(),
        "initdb failed ({status}); its output: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    // Another process may have won the race; either template is as good.
    if std::fs::rename(&data, &template).is_err() {
        assert!(
            template.join("PG_VERSION").exists(),
            "no PostgreSQL template at {}",
            template.display()
        );
    }
    let _ = std::fs::remove_dir_all(&staging);
    let _ = std::fs::remove_file(&log);
    template
}

/// A running (or stopped, restartable) PostgreSQL server.
pub struct Postgres {
    dir: TempDir,
    bin: PathBuf,
    port: u16,
    process: Option<Process>,
}

impl Postgres {
    /// Starts a server on a free port.
    pub async fn start() -> Self {
        let bin = postgres_bin_dir()
            .expect("PostgreSQL is not installed (apt-get install postgresql): no initdb found");
        let template = tokio::task::spawn_blocking({
            let bin = bin.clone();
            move || template(&bin)
        })
        .await
        .expect("preparing the PostgreSQL template");
        let dir = tempfile::Builder::new()
            .prefix("vote-testkit-pg-")
            .tempdir()
            .expect("creating a PostgreSQL directory");
        chown_for_postgres(dir.path());
        let data = dir.path().join("data");
        let status = Command::new("cp")
            .arg("-a")
            .arg(&template)
            .arg(&data)
            .status()
            .expect("copying the PostgreSQL template");
        assert!(status.success(), "copying the PostgreSQL template failed");
        let mut server = Self {
            dir,
            bin,
            port: 0,
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

    /// URL of the `postgres` database as the `postgres` superuser.
    pub fn url(&self) -> String {
        self.database_url("postgres")
    }

    /// URL of database `name` on this server.
    pub fn database_url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().and_then(Process::pid)
    }

    /// Creates an empty database with a unique name and returns its URL.
    pub async fn create_database(&self) -> String {
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let admin = self.connect(&self.url()).await;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("creating a test database");
        self.database_url(&name)
    }

    /// Connects to `url`, driving the connection on a spawned task.
    pub async fn connect(&self, url: &str) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(url, NoTls)
            .await
            .unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client
    }

    /// Stops the server (fast shutdown: clients are disconnected); the data stays.
    pub async fn stop(&mut self) {
        stop_slot(&mut self.process, Signal::SIGINT, Duration::from_secs(20)).await;
    }

    /// Immediate shutdown (SIGQUIT): like a crash, recovered from the WAL at the next start.
    pub fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.stop(Signal::SIGQUIT, Duration::from_secs(10));
        }
    }

    /// Starts the server again on the same port with the same data.
    pub async fn start_again(&mut self) {
        assert!(self.process.is_none(), "postgres is already running");
        self.spawn_and_wait(true).await;
    }

    async fn spawn_and_wait(&mut self, must_succeed: bool) -> bool {
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("postgres.log");
        if !log.exists() {
            std::fs::File::create(&log).expect("creating the postgres log");
            chown_for_postgres(&log);
        }
        let mut command = command(&self.bin, "postgres");
        command.arg("-D").arg(&data);
        command.args(["-p", &self.port.to_string()]);
        command
            .arg("-c")
            .arg(format!("unix_socket_directories={}", data.display()));
        for setting in [
            "listen_addresses=127.0.0.1",
            "fsync=off",
            "synchronous_commit=off",
            "full_page_writes=off",
            "max_connections=200",
            "shared_buffers=32MB",
        ] {
            command.args(["-c", setting]);
        }
        let mut process = Process::spawn("postgres", command, &log);
        let url = self.url();
        if !must_succeed {
            for _ in 0..100 {
                if accepts(&url).await {
                    break;
                }
                if process.has_exited() {
                    return false;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        wait_until_ready(&mut process, &log, Duration::from_secs(30), || {
            accepts(&url)
        })
        .await;
        self.process = Some(process);
        true
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGQUIT makes the postmaster take its backends down with it; a plain SIGKILL would orphan them.
        self.kill();
    }
}

async fn accepts(url: &str) -> bool {
    match tokio_postgres::connect(url, NoTls).await {
        Ok((client, connection)) => {
            tokio::spawn(async move {
                let _ = connection.await;
            });
            client.simple_query("SELECT 1").await.is_ok()
        }
        Err(_) => false,
    }
}
