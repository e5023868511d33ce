//! The state directory: where the local runtime keeps data, logs and `runtime.json`.
//!
//! Invariant: every path the runtime writes is derived here, so [`StateDir::purge`] knows exactly what
//! is ours to delete and leaves anything else alone.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::Context;
use nix::fcntl::{Flock, FlockArg};

use super::{Component, Error};

const RUNTIME_FILE: &str = "runtime.json";
const LOCK_FILE: &str = "votectl.lock";
const LOGS: &str = "logs";
const REDIS: &str = "redis";
const POSTGRES: &str = "postgres";

/// A state directory, always held as an absolute path (children run elsewhere, and `runtime.json`
/// must mean the same thing from any working directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    /// `path`, made absolute against the current directory (without touching the file system).
    pub fn new(path: &Path) -> anyhow::Result<Self> {
        let root = std::path::absolute(path)
            .with_context(|| format!("failed to resolve the state directory {}", path.display()))?;
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn exists(&self) -> bool {
        self.root.is_dir()
    }

    /// Creates the directory and its `logs/` (not the store directories: those have owners of their
    /// own).
    pub fn create(&self) -> anyhow::Result<()> {
        std::fs::create_dir_all(self.logs_dir()).with_context(|| {
            format!(
                "failed to create the state directory {}",
                self.root.display()
            )
        })
    }

    pub fn runtime_file(&self) -> PathBuf {
        self.root.join(RUNTIME_FILE)
    }

    pub fn logs_dir(&self) -> PathBuf {
        self.root.join(LOGS)
    }

    pub fn log_file(&self, component: Component) -> PathBuf {
        self.logs_dir().join(format!("{}.log", component.name()))
    }

    /// Redis's `--dir`: the append-only files live here.
    pub fn redis_dir(&self) -> PathBuf {
        self.root.join(REDIS)
    }

    /// Owned by the user PostgreSQL runs as; holds `data/`.
    pub fn postgres_dir(&self) -> PathBuf {
        self.root.join(POSTGRES)
    }

    pub fn postgres_data(&self) -> PathBuf {
        self.postgres_dir().join("data")
    }

    /// Takes the exclusive lock that `up` and `down` hold while they change the runtime. Fails at once
    /// (rather than waiting) when another votectl holds it.
    pub fn lock(&self) -> anyhow::Result<StateLock> {
        self.create()?;
        let path = self.root.join(LOCK_FILE);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("failed to open {}", path.display()))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(StateLock { _lock: lock }),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                Err(Error::Busy(self.root.display().to_string()).into())
            }
            Err((_, errno)) => {
                Err(anyhow::Error::new(errno).context(format!("failed to lock {}", path.display())))
            }
        }
    }

    /// Deletes everything this runtime creates (data, logs, bookkeeping), then the directory itself if
    /// that leaves it empty. Returns what was deleted.
    pub fn purge(&self) -> anyhow::Result<Vec<PathBuf>> {
        let mut removed = Vec::new();
        for name in [REDIS, POSTGRES, LOGS] {
            let path = self.root.join(name);
            if path.exists() {
                std::fs::remove_dir_all(&path)
                    .with_context(|| format!("failed to delete {}", path.display()))?;
                removed.push(path);
            }
        }
        for name in [RUNTIME_FILE, LOCK_FILE] {
            let path = self.root.join(name);
            if path.exists() {
                std::fs::remove_file(&path)
                    .with_context(|| format!("failed to delete {}", path.display()))?;
                removed.push(path);
            }
        }
        // Only an empty directory goes: anything else in it is not ours.
        if std::fs::read_dir(&self.root).is_ok_and(|mut d| d.next().is_none()) {
            std::fs::remove_dir(&self.root)
                .with_context(|| format!("failed to delete {}", self.root.display()))?;
            removed.push(self.root.clone());
        }
        Ok(removed)
    }
}

/// Held while `up` or `down` changes the runtime; released on drop.
#[derive(Debug)]
pub struct StateLock {
    _lock: Flock<File>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn purge_removes_only_our_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::new(&tmp.path().join("s")).unwrap();
        state.create().unwrap();
        std::fs::create_dir_all(state.redis_dir()).unwrap();
        std::fs::write(state.runtime_file(), "{}").unwrap();
        std::fs::write(state.root().join("notes.txt"), "mine").unwrap();
        let removed = state.purge().unwrap();
        assert_eq!(removed.len(), 3, "{removed:?}");
        assert!(state.root().join("notes.txt").exists());
        std::fs::remove_file(state.root().join("notes.txt")).unwrap();
        assert_eq!(state.purge().unwrap(), vec![state.root().to_path_buf()]);
        assert!(!state.exists());
    }

    #[test]
    fn a_second_lock_is_refused_until_the_first_is_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::new(tmp.path()).unwrap();
        let first = state.lock().unwrap();
        let err = state.lock().unwrap_err();
        assert!(err.to_string().contains("another votectl"), "{err}");
        drop(first);
        state.lock().unwrap();
    }
}
