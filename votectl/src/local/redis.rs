//! Redis for the local runtime: the system's `redis-server`, append-only file on, loopback only.
//!
//! Invariant: every acknowledged vote is in the append-only file within a second (`appendfsync
//! everysec`), so stopping or killing Redis loses at most the last second, and `down` (SIGTERM, which
//! makes Redis fsync and exit) loses nothing.

use std::path::Path;

use tokio::process::Command;

/// The command that runs Redis in the foreground on 127.0.0.1:`port` with its files in `dir`.
pub fn command(redis_server: &Path, dir: &Path, port: u16) -> Command {
    let mut command = Command::new(redis_server);
    command
        .arg("--port")
        .arg(port.to_string())
        .args(["--bind", "127.0.0.1", "--protected-mode", "yes"])
        .arg("--dir")
        .arg(dir)
        .args(["--appendonly", "yes", "--appendfsync", "everysec"])
        // The append-only file is the one copy of the data; periodic snapshots would only add I/O.
        .args(["--save", ""])
        .args(["--daemonize", "no", "--logfile", ""]);
    command
}
