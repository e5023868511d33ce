//! PostgreSQL for the local runtime: `initdb` on first start, then `postgres` in the foreground,
//! listening on 127.0.0.1 only, with trust authentication from loopback and no Unix socket.
//!
//! PostgreSQL refuses to run as root. When votectl runs as root, `initdb` and `postgres` run as the
//! `postgres` user (created by Debian's package) on a directory chowned to it.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use nix::unistd::{Gid, Uid, User, chown};
use tokio::process::Command;
use tokio_postgres::NoTls;

use super::StateDir;
use super::wiring::{DATABASE, DATABASE_USER};

/// `pg_hba.conf` as written after `initdb`: trust, and only from this machine's loopback.
const PG_HBA: &str = "\
# Written by votectl: the local runtime trusts connections from 127.0.0.1 only.
# TYPE  DATABASE  USER  ADDRESS        METHOD
host    all       all   127.0.0.1/32   trust
";

/// The user PostgreSQL runs as when we are root.
#[derive(Debug, Clone)]
pub struct RunAs {
    pub name: String,
    pub uid: Uid,
    pub gid: Gid,
}

/// `Some(postgres)` when we are root, `None` when PostgreSQL can run as ourselves.
pub fn run_as() -> anyhow::Result<Option<RunAs>> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    let user = User::from_name("postgres")
        .context("failed to look up the `postgres` user")?
        .context(
            "PostgreSQL refuses to run as root and there is no `postgres` user to run it as: \
             install Debian's `postgresql` package (apt-get install postgresql)",
        )?;
    Ok(Some(RunAs {
        name: user.name,
        uid: user.uid,
        gid: user.gid,
    }))
}

/// Fails with the directory to fix when `user` cannot reach `dir` (every ancestor must be searchable
/// by it: a private temporary directory above the state directory is the usual culprit).
pub fn check_reachable(dir: &Path, user: &RunAs) -> anyhow::Result<()> {
    for ancestor in dir.ancestors().skip(1) {
        let Ok(meta) = ancestor.metadata() else {
            continue;
        };
        let mode = meta.permissions().mode();
        let bit = if meta.uid() == user.uid.as_raw() {
            0o100
        } else if meta.gid() == user.gid.as_raw() {
            0o010
        } else {
            0o001
        };
        if mode & bit == 0 {
            anyhow::bail!(
                "PostgreSQL runs as the `{}` user, which cannot enter {} (mode {:o}): choose a \
                 --state-dir it can reach, or allow it with `chmod o+x {}`",
                user.name,
                ancestor.display(),
                mode & 0o7777,
                ancestor.display()
            );
        }
    }
    Ok(())
}

fn as_user(command: &mut Command, user: Option<&RunAs>) {
    if let Some(user) = user {
        command.uid(user.uid.as_raw()).gid(user.gid.as_raw());
        // The postgres user may not be able to read root's home or working directory.
        command.current_dir("/").env("HOME", "/tmp");
    }
}

/// Runs `initdb` unless the data directory holds a cluster already. Returns whether it ran.
/// `log` receives initdb's output.
pub async fn ensure_initialized(
    bin: &Path,
    state: &StateDir,
    log: &std::fs::File,
) -> anyhow::Result<bool> {
    let data = state.postgres_data();
    if data.join("PG_VERSION").exists() {
        return Ok(false);
    }
    let user = run_as()?;
    let dir = state.postgres_dir();
    // A data directory without PG_VERSION is what an interrupted initdb leaves: ours to redo.
    if data.exists() {
        std::fs::remove_dir_all(&data)
            .with_context(|| format!("failed to remove the half-initialized {}", data.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("failed to create {}", dir.display()))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("failed to restrict {}", dir.display()))?;
    if let Some(user) = &user {
        chown(&dir, Some(user.uid), Some(user.gid))
            .with_context(|| format!("failed to give {} to {}", dir.display(), user.name))?;
        check_reachable(&dir, user)?;
    }
    let mut command = Command::new(bin.join("initdb"));
    command
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            DATABASE_USER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone().context("failed to share the log file")?)
        .stderr(log.try_clone().context("failed to share the log file")?);
    as_user(&mut command, user.as_ref());
    let status = command
        .status()
        .await
        .with_context(|| format!("failed to run {}", bin.join("initdb").display()))?;
    anyhow::ensure!(
        status.success(),
        "initdb failed ({status}); see {}",
        state.log_file(super::Component::Postgres).display()
    );
    let hba = data.join("pg_hba.conf");
    std::fs::write(&hba, PG_HBA).with_context(|| format!("failed to write {}", hba.display()))?;
    if let Some(user) = &user {
        chown(&hba, Some(user.uid), Some(user.gid))
            .with_context(|| format!("failed to give {} to {}", hba.display(), user.name))?;
    }
    Ok(true)
}

/// Deletes `postmaster.pid` when the process it names is gone, and fails when it still runs.
///
/// PostgreSQL clears a stale lock file by itself only when its PID is free; a postmaster that was
/// killed and not yet reaped (a zombie, common where PID 1 reaps slowly) still holds its PID, and
/// PostgreSQL running as another user cannot tell the PID from a live process of root's.
pub fn clear_stale_lock(state: &StateDir) -> anyhow::Result<()> {
    let lock = state.postgres_data().join("postmaster.pid");
    let Ok(text) = std::fs::read_to_string(&lock) else {
        return Ok(());
    };
    let pid = text
        .lines()
        .next()
        .and_then(|l| l.trim().parse::<u32>().ok());
    let running = pid.and_then(|p| super::process::stat(p).map(|s| (p, s)));
    match running {
        Some((pid, stat)) if stat.state != 'Z' => anyhow::bail!(
            "PostgreSQL is already running on {} as {}: stop it first",
            state.postgres_data().display(),
            super::process::describe(pid)
        ),
        _ => std::fs::remove_file(&lock)
            .with_context(|| format!("failed to delete the stale {}", lock.display())),
    }
}

/// The command that runs the server in the foreground on 127.0.0.1:`port`.
pub fn command(bin: &Path, state: &StateDir, port: u16) -> anyhow::Result<Command> {
    let mut command = Command::new(bin.join("postgres"));
    command
        .arg("-D")
        .arg(state.postgres_data())
        .arg("-p")
        .arg(port.to_string())
        .args(["-c", "listen_addresses=127.0.0.1"])
        // TCP only: no socket file in a system directory we may not own.
        .args(["-c", "unix_socket_directories="]);
    as_user(&mut command, run_as()?.as_ref());
    Ok(command)
}

/// Connects to `database` on 127.0.0.1:`port` as the superuser.
pub async fn connect(port: u16, database: &str) -> Result<tokio_postgres::Client, String> {
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(port)
        .user(DATABASE_USER)
        .dbname(database)
        .connect_timeout(Duration::from_secs(2));
    let (client, connection) = config.connect(NoTls).await.map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        // The connection ends when the client is dropped; its error then is of no interest.
        let _ = connection.await;
    });
    Ok(client)
}

/// Creates the services' database unless it exists.
pub async fn create_database(port: u16) -> anyhow::Result<()> {
    let client = connect(port, "postgres")
        .await
        .map_err(anyhow::Error::msg)
        .context("failed to connect to PostgreSQL")?;
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&DATABASE])
        .await
        .context("failed to list databases")?
        .is_some();
    if !exists {
        client
            .batch_execute(&format!("CREATE DATABASE {DATABASE}"))
            .await
            .with_context(|| format!("failed to create database {DATABASE}"))?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_private_ancestor_is_named() {
        let tmp = tempfile::tempdir().unwrap();
        let private = tmp.path().join("private");
        let inner = private.join("state/postgres");
        std::fs::create_dir_all(&inner).unwrap();
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        // Someone who owns nothing here.
        let stranger = RunAs {
            name: "stranger".into(),
            uid: Uid::from_raw(54_321),
            gid: Gid::from_raw(54_321),
        };
        let err = check_reachable(&inner, &stranger).unwrap_err().to_string();
        assert!(
            err.contains(&format!("cannot enter {} (mode 700)", private.display())),
            "{err}"
        );
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o711)).unwrap();
        check_reachable(&inner, &stranger).unwrap();
    }
}
