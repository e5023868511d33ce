//! `runtime.json`: what the local runtime started, so that later commands (`status`, `down`, `logs`,
//! `vote`, a second `up`) can find it.
//!
//! Invariants: the file is replaced atomically (write to a temporary file, rename), so a reader never
//! sees half of it; it is written as soon as each process is spawned, so even a votectl killed
//! half-way through `up` leaves a record `down` can clean up from; a record whose processes are all
//! gone is stale and is removed by the next `up` or `down`.

use std::path::PathBuf;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::process::Pid;
use super::{Component, StateDir};

/// Version of the file's layout; a file of another version is not trusted.
pub const VERSION: u32 = 1;

/// How the runtime was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A votectl process supervises the components and stops them when it is stopped.
    Foreground,
    /// The components run on their own; `votectl down` stops them.
    Detached,
}

/// The contents of `runtime.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Runtime {
    pub version: u32,
    pub mode: Mode,
    /// The supervising votectl (foreground mode only).
    pub supervisor: Option<Pid>,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339 time at which every component had passed its readiness probe; `None` while starting.
    #[serde(default)]
    pub ready_at: Option<String>,
    pub state_dir: PathBuf,
    pub vote_options: Vec<String>,
    pub components: Vec<ComponentRecord>,
}

/// One started process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentRecord {
    pub name: Component,
    #[serde(flatten)]
    pub process: Pid,
    pub port: u16,
    pub url: String,
    /// Seconds since the Unix epoch at which this process was spawned.
    pub started_unix: u64,
    /// How often the supervisor has restarted the component after it exited on its own.
    pub restarts: u32,
    pub program: PathBuf,
    pub log: PathBuf,
}

impl ComponentRecord {
    pub fn is_alive(&self) -> bool {
        self.process.is_alive()
    }
}

impl Runtime {
    /// The record in `state`, if there is one. A file that cannot be read or parsed is an error (with
    /// what to do about it), never silently treated as "nothing running".
    pub fn load(state: &StateDir) -> anyhow::Result<Option<Self>> {
        let path = state.runtime_file();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(e).with_context(|| format!("failed to read {}", path.display()));
            }
        };
        let runtime: Self = serde_json::from_str(&text).with_context(|| {
            format!(
                "failed to parse {} (stop any leftover processes by hand and delete it)",
                path.display()
            )
        })?;
        anyhow::ensure!(
            runtime.version == VERSION,
            "{} has layout version {} but this votectl understands {VERSION}",
            path.display(),
            runtime.version
        );
        Ok(Some(runtime))
    }

    pub fn save(&self, state: &StateDir) -> anyhow::Result<()> {
        let path = state.runtime_file();
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self).context("failed to encode runtime.json")?;
        std::fs::write(&tmp, text + "\n")
            .and_then(|()| std::fs::rename(&tmp, &path))
            .with_context(|| format!("failed to write {}", path.display()))
    }

    pub fn remove(state: &StateDir) -> anyhow::Result<()> {
        match std::fs::remove_file(state.runtime_file()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e)
                .with_context(|| format!("failed to delete {}", state.runtime_file().display())),
            _ => Ok(()),
        }
    }

    pub fn component(&self, component: Component) -> Option<&ComponentRecord> {
        self.components.iter().find(|c| c.name == component)
    }

    /// Records `record`, replacing an earlier record of the same component.
    pub fn upsert(&mut self, record: ComponentRecord) {
        self.components.retain(|c| c.name != record.name);
        self.components.push(record);
    }

    /// The recorded components whose processes still run.
    pub fn alive(&self) -> Vec<&ComponentRecord> {
        self.components.iter().filter(|c| c.is_alive()).collect()
    }

    /// The supervising votectl, if it still runs.
    pub fn live_supervisor(&self) -> Option<Pid> {
        self.supervisor.filter(Pid::is_alive)
    }

    /// True when nothing it records runs any more.
    pub fn is_stale(&self) -> bool {
        self.live_supervisor().is_none() && self.alive().is_empty()
    }
}

/// Seconds since the Unix epoch.
pub fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The current time in RFC 3339, to the second (finer is noise to a reader).
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    now.replace_nanosecond(0)
        .unwrap_or(now)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn record(name: Component, process: Pid) -> ComponentRecord {
        ComponentRecord {
            name,
            process,
            port: 1,
            url: "http://127.0.0.1:1".into(),
            started_unix: 0,
            restarts: 0,
            program: "/bin/true".into(),
            log: "x.log".into(),
        }
    }

    #[test]
    fn round_trips_and_detects_staleness() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::new(tmp.path()).unwrap();
        assert_eq!(Runtime::load(&state).unwrap(), None);
        let me = Pid::current().unwrap();
        let gone = Pid {
            pid: me.pid,
            start_ticks: me.start_ticks + 7,
        };
        let mut runtime = Runtime {
            version: VERSION,
            mode: Mode::Detached,
            supervisor: None,
            started_at: now_rfc3339(),
            ready_at: None,
            state_dir: state.root().to_path_buf(),
            vote_options: vec!["cats".into()],
            components: vec![record(Component::Redis, gone)],
        };
        assert!(runtime.is_stale());
        runtime.upsert(record(Component::Api, me));
        runtime.upsert(record(Component::Api, me));
        assert_eq!(runtime.components.len(), 2);
        assert!(!runtime.is_stale());
        runtime.save(&state).unwrap();
        assert_eq!(Runtime::load(&state).unwrap(), Some(runtime));
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(state.runtime_file()).unwrap()).unwrap();
        assert_eq!(json["components"][1]["name"], "api");
        assert_eq!(json["components"][1]["pid"], me.pid);
        Runtime::remove(&state).unwrap();
        Runtime::remove(&state).unwrap();
        assert_eq!(Runtime::load(&state).unwrap(), None);
    }

    #[test]
    fn a_corrupt_file_is_an_error_not_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::new(tmp.path()).unwrap();
        std::fs::write(state.runtime_file(), "{").unwrap();
        let err = Runtime::load(&state).unwrap_err();
        assert!(format!("{err:#}").contains("failed to parse"), "{err:#}");
    }
}
