//! The local runtime under test: `votectl up --local --detach` in a throwaway state directory on
//! explicit free loopback ports, its processes found through `runtime.json`, and `votectl down
//! --purge` when the guard is dropped.
//!
//! A detached runtime has no supervisor (only a foreground `votectl up` restarts components), so the
//! suite restarts what it kills itself, the way the runtime started it: a service with the command
//! line, environment, directory and user read from `/proc` before the kill; Redis and PostgreSQL
//! with votectl's own command builders (both rewrite their process titles, so `/proc/PID/cmdline` no
//! longer holds their arguments). Each restart is written back to `runtime.json` (new PID, restarts
//! + 1) under the state lock, so `votectl status` and `votectl down` keep seeing the real processes.
//!
//! Invariants: every process the suite starts is in its own process group with its output appended
//! to the component's log; the state directory is purged on drop, whatever happened (a process the
//! runtime does not record, such as a second consumer, has a guard of its own).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nix::sys::signal::Signal;
use votectl::local::process::Pid;
use votectl::local::{Component, ComponentRecord, Runtime, StateDir};

use crate::procfs::Launch;

/// A local runtime started for one scenario.
pub struct LocalStack {
    votectl: PathBuf,
    dir: tempfile::TempDir,
    state: StateDir,
    http: reqwest::Client,
}

impl LocalStack {
    /// `votectl up --local --detach` on free ports with `options`; fails with votectl's output.
    pub async fn start(votectl: &Path, options: &str) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("vote-reliability-")
            .tempdir()
            .context("failed to create a state directory")?;
        // PostgreSQL runs as `postgres` when we are root: it must be able to enter the directory.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711))?;
        let state = StateDir::new(&dir.path().join("state"))?;
        let stack = Self {
            votectl: votectl.to_path_buf(),
            dir,
            state,
            http: reqwest::Client::builder().no_proxy().build()?,
        };
        let mut command = tokio::process::Command::new(votectl);
        command
            .arg("--state-dir")
            .arg(stack.state.root())
            .args(["up", "--local", "--detach", "--timeout", "120"])
            .args(["--vote-options", options]);
        let flags = [
            "--redis-port",
            "--postgres-port",
            "--api-port",
            "--consumer-port",
            "--frontend-port",
        ];
        let mut ports = std::collections::BTreeSet::new();
        while ports.len() < flags.len() {
            ports.insert(listen_port(&ports)?);
        }
        for (flag, port) in flags.iter().zip(ports) {
            command.arg(flag).arg(port.to_string());
        }
        let out = tokio::time::timeout(
            Duration::from_secs(300),
            command.stdin(Stdio::null()).output(),
        )
        .await
        .context("votectl up did not finish within 300 s")?
        .with_context(|| format!("failed to run {}", votectl.display()))?;
        if !out.status.success() {
            bail!(
                "votectl up --local failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(stack)
    }

    pub fn state(&self) -> &StateDir {
        &self.state
    }

    /// `runtime.json` as it is now.
    pub fn runtime(&self) -> anyhow::Result<Runtime> {
        Runtime::load(&self.state)?.context("runtime.json is gone")
    }

    pub fn record(&self, component: Component) -> anyhow::Result<ComponentRecord> {
        self.runtime()?
            .component(component)
            .cloned()
            .with_context(|| format!("runtime.json has no {component}"))
    }

    pub fn url(&self, component: Component) -> anyhow::Result<String> {
        Ok(self.record(component)?.url)
    }

    pub fn pid(&self, component: Component) -> anyhow::Result<Pid> {
        Ok(self.record(component)?.process)
    }

    /// The vote options the runtime was started with.
    pub fn options(&self) -> anyhow::Result<Vec<String>> {
        Ok(self.runtime()?.vote_options)
    }

    /// Sends `signal` to `component` and waits (up to `grace`) for it to be gone.
    pub async fn signal(
        &self,
        component: Component,
        signal: Signal,
        grace: Duration,
    ) -> anyhow::Result<()> {
        let pid = self.pid(component)?;
        if !pid.signal(signal) {
            bail!("{component} (pid {}) was not running", pid.pid);
        }
        if !pid.wait_gone(grace).await {
            bail!(
                "{component} (pid {}) still runs {}s after {signal}",
                pid.pid,
                grace.as_secs()
            );
        }
        // A killed multi-threaded process shows as a zombie as soon as its main thread is gone, while
        // its other threads may still hold its sockets: starting it again at once then fails with
        // "address in use". Wait for every thread.
        let threads = wait_until(grace, || async { threads_gone(pid.pid) }).await;
        if threads.is_err() {
            bail!(
                "{component} (pid {}) still has live threads {}s after {signal}",
                pid.pid,
                grace.as_secs()
            );
        }
        Ok(())
    }

    /// Starts `component` again from `launch` (read from `/proc` before it was stopped).
    pub fn restart_from(&self, component: Component, launch: &Launch) -> anyhow::Result<Pid> {
        let command = launch.command();
        self.spawn_recorded(component, command)
    }

    /// Starts Redis again exactly as `votectl up --local` does.
    pub fn restart_redis(&self) -> anyhow::Result<Pid> {
        let record = self.record(Component::Redis)?;
        let command =
            votectl::local::redis::command(&record.program, &self.state.redis_dir(), record.port);
        self.spawn_recorded(Component::Redis, command)
    }

    /// Starts PostgreSQL again exactly as `votectl up --local` does.
    pub fn restart_postgres(&self) -> anyhow::Result<Pid> {
        let record = self.record(Component::Postgres)?;
        let bin = record
            .program
            .parent()
            .context("the postgres program has no directory")?;
        votectl::local::postgres::clear_stale_lock(&self.state)?;
        let command = votectl::local::postgres::command(bin, &self.state, record.port)?;
        self.spawn_recorded(Component::Postgres, command)
    }

    fn spawn_recorded(
        &self,
        component: Component,
        command: tokio::process::Command,
    ) -> anyhow::Result<Pid> {
        let _lock = self.state.lock()?;
        let mut runtime = self.runtime()?;
        let mut record = runtime
            .component(component)
            .cloned()
            .with_context(|| format!("runtime.json has no {component}"))?;
        let pid = spawn_logged(command, &record.log)?;
        record.process = pid;
        record.restarts += 1;
        record.started_unix = votectl::local::runtime::now_unix();
        runtime.upsert(record);
        runtime.save(&self.state)?;
        Ok(pid)
    }

    /// Waits for `url`/ready to answer 200.
    pub async fn wait_ready(&self, url: &str, deadline: Duration) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let ready = format!("{url}/ready");
        loop {
            let last = match self
                .http
                .get(&ready)
                .timeout(Duration::from_secs(5))
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => return Ok(started.elapsed()),
                Ok(r) => format!("{} {}", r.status(), r.text().await.unwrap_or_default()),
                Err(e) => crate::load::root_cause(&e),
            };
            if started.elapsed() > deadline {
                bail!(
                    "{ready} did not answer 200 within {}s (last: {last})",
                    deadline.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for a component of the runtime to be ready (PostgreSQL: accepting connections).
    pub async fn wait_component_ready(
        &self,
        component: Component,
        deadline: Duration,
    ) -> anyhow::Result<Duration> {
        let record = self.record(component)?;
        match component {
            Component::Redis => wait_until(deadline, || async {
                let Ok(client) = redis::Client::open(record.url.as_str()) else {
                    return false;
                };
                match client.get_multiplexed_async_connection().await {
                    Ok(mut con) => redis::cmd("PING")
                        .query_async::<String>(&mut con)
                        .await
                        .is_ok(),
                    Err(_) => false,
                }
            })
            .await
            .with_context(|| format!("redis on {} did not answer PING", record.url)),
            Component::Postgres => wait_until(deadline, || async {
                crate::audit::connect(&record.url).await.is_ok()
            })
            .await
            .with_context(|| format!("postgres on {} did not accept connections", record.url)),
            _ => self.wait_ready(&record.url, deadline).await,
        }
    }

    /// The last lines of every log, for a failure report.
    pub fn log_tails(&self, lines: usize) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        if let Ok(entries) = std::fs::read_dir(self.state.logs_dir()) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                out.insert(name, votectl::local::stack::log_tail(&entry.path(), lines));
            }
        }
        out
    }
}

/// True when no thread of `pid` is alive any more (every one exited, or the process is reaped).
pub fn threads_gone(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return true;
    };
    tasks.flatten().all(|task| {
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        votectl::local::process::parse_stat(&stat).is_none_or(|s| matches!(s.state, 'Z' | 'X'))
    })
}

/// The kernel's range of ephemeral ports (`ip_local_port_range`), from which outgoing connections
/// take their local port.
pub fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut parts = text.split_whitespace().map(|p| p.parse::<u16>().ok());
            Some((parts.next()??, parts.next()??))
        })
        .unwrap_or((32768, 60999))
}

/// A free port on 127.0.0.1 for a server the suite kills and starts again, outside the ephemeral
/// range and not in `taken`.
///
/// A port from the ephemeral range (what binding port 0 hands out) can be taken, while its server
/// is down, as the local port of one of the many outgoing connections a load opens; the restarted
/// server then fails with "address in use". Ports below the range are never handed out that way.
pub fn listen_port(taken: &std::collections::BTreeSet<u16>) -> anyhow::Result<u16> {
    let (low, _) = ephemeral_range();
    let floor = 10_000u16.min(low.saturating_sub(1000));
    let span = u32::from(low.saturating_sub(floor)).max(1);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
        ^ std::process::id().wrapping_mul(2_654_435_761);
    for i in 0..span {
        let offset = u16::try_from((seed.wrapping_add(i.wrapping_mul(7_919))) % span).unwrap_or(0);
        let port = floor + offset;
        if !taken.contains(&port) && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free port on 127.0.0.1 between {floor} and {low}")
}

/// Polls `ready` every 100 ms until it is true; the time it took, or an error at `deadline`.
pub async fn wait_until<F, Fut>(deadline: Duration, mut ready: F) -> anyhow::Result<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if ready().await {
            return Ok(started.elapsed());
        }
        if started.elapsed() > deadline {
            bail!("not within {}s", deadline.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Spawns `command` in its own process group with its output appended to `log`, and reaps it in the
/// background.
fn spawn_logged(mut command: tokio::process::Command, log: &Path) -> anyhow::Result<Pid> {
    let file = std::fs::File::options()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("failed to open {}", log.display()))?;
    command
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .process_group(0)
        .kill_on_drop(false);
    let mut child = command.spawn().context("failed to spawn")?;
    let raw = child.id().context("the child exited before it got a PID")?;
    let pid = Pid::of(raw).unwrap_or(Pid {
        pid: raw,
        start_ticks: 0,
    });
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    Ok(pid)
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        let out = std::process::Command::new(&self.votectl)
            .arg("--state-dir")
            .arg(self.state.root())
            .args(["down", "--purge"])
            .stdin(Stdio::null())
            .output();
        match out {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "votectl down --purge in {} failed ({}): {}",
                self.dir.path().display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => eprintln!("failed to run votectl down --purge: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_are_gone_only_once_the_process_is() {
        assert!(!threads_gone(std::process::id()));
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        assert!(!threads_gone(child.id()));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(threads_gone(child.id()));
    }

    #[test]
    fn listen_ports_stay_below_the_ephemeral_range_and_avoid_taken_ones() {
        let (low, high) = ephemeral_range();
        assert!(low <= high);
        let mut taken = std::collections::BTreeSet::new();
        for _ in 0..5 {
            let port = listen_port(&taken).unwrap();
            assert!(port < low, "{port} is in the ephemeral range from {low}");
            assert!(taken.insert(port), "{port} handed out twice");
        }
    }
}
