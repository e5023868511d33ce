//! Starting, supervising and stopping the local stack.
//!
//! Invariants:
//! - Every child runs in its own process group with stdin closed and its output in
//!   `logs/<component>.log`, so it never holds votectl's terminal or pipes, a Ctrl-C at the terminal
//!   reaches only votectl (which then stops the children in order), and a detached child outlives it.
//! - A component is recorded in `runtime.json` the moment it is spawned, before it is ready.
//! - A component counts as started only once its readiness probe passes; if any component exits or
//!   misses its deadline during `up`, everything this `up` started is stopped again.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::ProgressBar;
use nix::sys::signal::Signal;
use tokio::sync::mpsc;

use super::binaries::Binaries;
use super::process::{Pid, Stopped};
use super::runtime::{self, ComponentRecord, Mode, Runtime};
use super::wiring::Wiring;
use super::{Component, StateDir, health, postgres, redis};

/// How often the supervisor restarts a component that exits on its own before giving up.
pub const MAX_RESTARTS: u32 = 5;
/// The longest pause before a restart.
const MAX_RESTART_DELAY: Duration = Duration::from_secs(30);

/// The signal that stops `component` cleanly without waiting for its clients.
fn stop_signal(component: Component) -> Signal {
    match component {
        // SIGTERM would be PostgreSQL's "smart" shutdown, which waits for every client to leave.
        Component::Postgres => Signal::SIGINT,
        _ => Signal::SIGTERM,
    }
}

/// How long `component` may take to stop before it is killed.
fn stop_grace(component: Component) -> Duration {
    match component {
        Component::Postgres | Component::Redis => Duration::from_secs(30),
        _ => Duration::from_secs(15),
    }
}

/// A child's exit, as reported by its reaper task.
#[derive(Debug)]
struct Exit {
    component: Component,
    pid: u32,
    status: String,
}

fn describe_status(status: std::io::Result<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(sig)) => Signal::try_from(sig)
                .map_or_else(|_| format!("signal {sig}"), |s| format!("killed by {s}")),
            _ => s.to_string(),
        },
        Err(e) => format!("unknown status: {e}"),
    }
}

/// The last `lines` lines of a log, for an error message.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = File::open(path) else {
        return String::new();
    };
    // Only the end matters, and logs can be large.
    let len = file.metadata().map_or(0, |m| m.len());
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let all: Vec<String> = BufReader::new(file).lines().map_while(Result::ok).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Says what is going on during `up`: a spinner on a terminal, nothing otherwise; notes always go to
/// stderr.
#[derive(Debug, Clone)]
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A spinner on stderr when it is a terminal; hidden otherwise.
    pub fn new() -> Self {
        use std::io::IsTerminal;
        let bar = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner:.cyan} {msg} {elapsed:.dim}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        } else {
            ProgressBar::hidden()
        };
        Self { bar }
    }

    pub fn hidden() -> Self {
        Self {
            bar: ProgressBar::hidden(),
        }
    }

    pub fn step(&self, message: impl Into<std::borrow::Cow<'static, str>>) {
        self.bar.set_message(message);
    }

    /// A line the user should see even without a terminal (fallback ports, first-run setup).
    pub fn note(&self, line: &str) {
        self.bar.suspend(|| eprintln!("{line}"));
    }

    /// A line that only makes sense next to the spinner (a step finished).
    pub fn done(&self, line: &str) {
        if !self.bar.is_hidden() {
            self.bar.println(line);
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

/// The processes of one `up`.
pub struct Stack {
    state: StateDir,
    binaries: Binaries,
    wiring: Wiring,
    runtime: Runtime,
    exits_tx: mpsc::UnboundedSender<Exit>,
    exits_rx: mpsc::UnboundedReceiver<Exit>,
    http: reqwest::Client,
}

impl Stack {
    pub fn new(
        state: StateDir,
        binaries: Binaries,
        wiring: Wiring,
        mode: Mode,
    ) -> anyhow::Result<Self> {
        let (exits_tx, exits_rx) = mpsc::unbounded_channel();
        let runtime = Runtime {
            version: runtime::VERSION,
            mode,
            supervisor: match mode {
                Mode::Foreground => Pid::current(),
                Mode::Detached => None,
            },
            started_at: runtime::now_rfc3339(),
            ready_at: None,
            state_dir: state.root().to_path_buf(),
            vote_options: wiring.options.names(),
            components: Vec::new(),
        };
        let http = reqwest::Client::builder()
            .build()
            .context("failed to build the HTTP client")?;
        Ok(Self {
            state,
            binaries,
            wiring,
            runtime,
            exits_tx,
            exits_rx,
            http,
        })
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Records that every component passed its readiness probe.
    pub fn mark_ready(&mut self) -> anyhow::Result<()> {
        self.runtime.ready_at = Some(runtime::now_rfc3339());
        self.runtime.save(&self.state)
    }

    /// Starts every component in dependency order, each ready before the next; on failure stops what
    /// it started and returns the error.
    pub async fn start_all(
        &mut self,
        progress: &Progress,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        match self.start_in_order(progress, timeout).await {
            Ok(()) => Ok(()),
            Err(err) => {
                progress.step("stopping what was started");
                self.stop_all().await;
                Err(err)
            }
        }
    }

    async fn start_in_order(
        &mut self,
        progress: &Progress,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        let redis_dir = self.state.redis_dir();
        std::fs::create_dir_all(&redis_dir)
            .with_context(|| format!("failed to create {}", redis_dir.display()))?;
        self.start(Component::Redis, progress, timeout).await?;

        if !self.state.postgres_data().join("PG_VERSION").exists() {
            progress.step("initializing PostgreSQL (first run, takes a few seconds)");
            let log = self.open_log(Component::Postgres)?;
            postgres::ensure_initialized(&self.binaries.postgres_bin, &self.state, &log).await?;
            progress.note(&format!(
                "initialized PostgreSQL in {}",
                self.state.postgres_data().display()
            ));
        }
        postgres::clear_stale_lock(&self.state)?;
        self.start(Component::Postgres, progress, timeout).await?;
        postgres::create_database(self.wiring.port(Component::Postgres)).await?;

        // Both run the (locked, idempotent) migrations; neither needs the other.
        self.spawn(Component::Api, 0)?;
        self.spawn(Component::Consumer, 0)?;
        self.wait_ready(Component::Api, progress, timeout).await?;
        self.wait_ready(Component::Consumer, progress, timeout)
            .await?;
        self.start(Component::Frontend, progress, timeout).await
    }

    async fn start(
        &mut self,
        component: Component,
        progress: &Progress,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        progress.step(format!("starting {component}"));
        self.spawn(component, 0)?;
        self.wait_ready(component, progress, timeout).await
    }

    fn open_log(&self, component: Component) -> anyhow::Result<File> {
        let path = self.state.log_file(component);
        File::options()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("failed to open {}", path.display()))
    }

    fn command(&self, component: Component) -> anyhow::Result<(tokio::process::Command, PathBuf)> {
        let port = self.wiring.port(component);
        Ok(match component {
            Component::Redis => (
                redis::command(&self.binaries.redis_server, &self.state.redis_dir(), port),
                self.binaries.redis_server.clone(),
            ),
            Component::Postgres => (
                postgres::command(&self.binaries.postgres_bin, &self.state, port)?,
                self.binaries.postgres_bin.join("postgres"),
            ),
            Component::Api | Component::Consumer | Component::Frontend => {
                let program = self
                    .binaries
                    .service(component)
                    .context("not a service")?
                    .to_path_buf();
                let mut command = tokio::process::Command::new(&program);
                for var in super::wiring::SCRUBBED {
                    command.env_remove(var);
                }
                command.envs(self.wiring.env(component));
                command.current_dir(self.state.root());
                (command, program)
            }
        })
    }

    /// Spawns `component` and records it; a reaper task reports its exit.
    fn spawn(&mut self, component: Component, restarts: u32) -> anyhow::Result<ComponentRecord> {
        let log = self.open_log(component)?;
        let (mut command, program) = self.command(component)?;
        command
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("failed to share the log file")?)
            .stderr(log)
            // Own process group: the terminal's Ctrl-C goes to votectl only, and a detached child is
            // not part of votectl's job.
            .process_group(0)
            .kill_on_drop(false);
        let mut child = command
            .spawn()
            .with_context(|| format!("failed to start {component} ({})", program.display()))?;
        let pid = child.id().context("the child exited before it got a PID")?;
        let process = Pid::of(pid).unwrap_or(Pid {
            pid,
            start_ticks: 0,
        });
        let tx = self.exits_tx.clone();
        tokio::spawn(async move {
            let status = describe_status(child.wait().await);
            // Nobody listening means votectl is on its way out; nothing to do.
            let _ = tx.send(Exit {
                component,
                pid,
                status,
            });
        });
        let port = self.wiring.port(component);
        let record = ComponentRecord {
            name: component,
            process,
            port,
            url: self.wiring.url(component),
            started_unix: runtime::now_unix(),
            restarts,
            program,
            log: self.state.log_file(component),
        };
        self.runtime.upsert(record.clone());
        self.runtime.save(&self.state)?;
        Ok(record)
    }

    /// Waits for `component`'s probe to pass; fails if any child exits first or the deadline passes.
    async fn wait_ready(
        &mut self,
        component: Component,
        progress: &Progress,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        progress.step(format!("waiting for {component} to be ready"));
        let started = Instant::now();
        let port = self.wiring.port(component);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // At startup PostgreSQL is ready once it takes connections; the services' database is
            // created right after.
            let outcome = match component {
                Component::Postgres => health::postgres_ping(port, "postgres").await,
                _ => health::probe(component, port, &self.http).await,
            };
            let last = match outcome {
                Ok(()) => {
                    progress.done(&format!(
                        "  {component} ready on {} ({:.1}s)",
                        self.wiring.url(component),
                        started.elapsed().as_secs_f64()
                    ));
                    return Ok(());
                }
                Err(why) => why,
            };
            tokio::select! {
                Some(exit) = self.exits_rx.recv() => {
                    let log = self.state.log_file(exit.component);
                    let tail = log_tail(&log, 15);
                    anyhow::bail!(
                        "{} exited during startup ({}); last lines of {}:\n{tail}",
                        exit.component, exit.status, log.display()
                    );
                }
                () = tokio::time::sleep_until(deadline) => {
                    let log = self.state.log_file(component);
                    anyhow::bail!(
                        "{component} was not ready within {}s (last probe: {last}); see {}",
                        timeout.as_secs(), log.display()
                    );
                }
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }

    /// Stops every recorded component that still runs, in stop order, and forgets them.
    pub async fn stop_all(&mut self) -> Vec<(Component, u32, Stopped)> {
        let report = stop_components(&self.runtime).await;
        self.runtime.components.clear();
        report
    }

    /// Foreground mode: keeps the stack running until SIGINT, SIGTERM or SIGHUP, restarting a component
    /// that exits on its own (with a growing pause, at most [`MAX_RESTARTS`] times), then stops it all.
    /// Returns whether the stop was clean (true) or forced by a component that kept failing (false).
    pub async fn supervise(&mut self) -> anyhow::Result<bool> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt()).context("failed to watch SIGINT")?;
        let mut terminate = signal(SignalKind::terminate()).context("failed to watch SIGTERM")?;
        let mut hangup = signal(SignalKind::hangup()).context("failed to watch SIGHUP")?;
        let mut pending: BTreeMap<Component, tokio::time::Instant> = BTreeMap::new();
        let mut clean = true;
        loop {
            let next = pending.values().min().copied();
            tokio::select! {
                _ = interrupt.recv() => break,
                _ = terminate.recv() => break,
                _ = hangup.recv() => break,
                Some(exit) = self.exits_rx.recv() => {
                    let Some(record) = self.runtime.component(exit.component) else { continue };
                    if record.process.pid != exit.pid {
                        continue;
                    }
                    let restarts = record.restarts + 1;
                    let log = record.log.display().to_string();
                    if restarts > MAX_RESTARTS {
                        eprintln!(
                            "{} exited ({}) after {MAX_RESTARTS} restarts; stopping everything (see {log})",
                            exit.component, exit.status
                        );
                        clean = false;
                        break;
                    }
                    let delay = Duration::from_secs(1 << (restarts - 1)).min(MAX_RESTART_DELAY);
                    eprintln!(
                        "{} exited ({}); restarting in {}s ({restarts} of {MAX_RESTARTS}; see {log})",
                        exit.component, exit.status, delay.as_secs()
                    );
                    // Remember the count even while it is down.
                    let mut record = record.clone();
                    record.restarts = restarts;
                    self.runtime.upsert(record);
                    self.runtime.save(&self.state)?;
                    pending.insert(exit.component, tokio::time::Instant::now() + delay);
                }
                () = tokio::time::sleep_until(next.unwrap_or_else(tokio::time::Instant::now)), if next.is_some() => {
                    let now = tokio::time::Instant::now();
                    let due: Vec<Component> =
                        pending.iter().filter(|(_, at)| **at <= now).map(|(c, _)| *c).collect();
                    for component in due {
                        pending.remove(&component);
                        let restarts = self.runtime.component(component).map_or(0, |r| r.restarts);
                        match self.spawn(component, restarts) {
                            Ok(record) => eprintln!("{component} restarted (pid {})", record.process.pid),
                            Err(err) => {
                                eprintln!("{component} could not be restarted: {err:#}");
                                clean = false;
                            }
                        }
                    }
                    if !clean {
                        break;
                    }
                }
            }
        }
        eprintln!("stopping the local runtime (data is kept)…");
        for (component, pid, stopped) in self.stop_all().await {
            eprintln!("  {}", describe_stop(component, pid, stopped));
        }
        Runtime::remove(&self.state)?;
        Ok(clean)
    }
}

/// Stops the live components of `runtime` in stop order.
pub async fn stop_components(runtime: &Runtime) -> Vec<(Component, u32, Stopped)> {
    let mut report = Vec::new();
    for component in Component::STOP_ORDER {
        let Some(record) = runtime.component(component) else {
            continue;
        };
        let stopped = record
            .process
            .stop(stop_signal(component), stop_grace(component))
            .await;
        report.push((component, record.process.pid, stopped));
    }
    report
}

/// One line about how a component stopped.
pub fn describe_stop(component: Component, pid: u32, stopped: Stopped) -> String {
    match stopped {
        Stopped::Exited => format!("stopped {component} (pid {pid})"),
        Stopped::Killed => format!(
            "killed {component} (pid {pid}): it did not stop within {}s",
            stop_grace(component).as_secs()
        ),
        Stopped::WasNotRunning => format!("{component} (pid {pid}) was not running"),
        Stopped::StillRunning => {
            format!("{component} (pid {pid}) is still running even after SIGKILL: check it")
        }
    }
}

/// What `down` did.
#[derive(Debug)]
pub enum DownReport {
    /// There was no runtime.json.
    NothingRecorded,
    Stopped {
        /// The foreground votectl that was asked to stop its stack, if one was running.
        supervisor: Option<u32>,
        components: Vec<(Component, u32, Stopped)>,
    },
}

/// Stops the runtime recorded in `state`: asks a foreground supervisor to stop its stack first, then
/// stops whatever is still alive, then deletes runtime.json.
pub async fn down(state: &StateDir) -> anyhow::Result<DownReport> {
    let _lock = state.lock()?;
    let Some(recorded) = Runtime::load(state)? else {
        return Ok(DownReport::NothingRecorded);
    };
    let alive_before: Vec<Component> = recorded.alive().iter().map(|r| r.name).collect();
    let mut supervisor = None;
    if let Some(sup) = recorded.live_supervisor()
        && Some(sup) != Pid::current()
    {
        supervisor = Some(sup.pid);
        sup.signal(Signal::SIGTERM);
        // It stops its components itself, each within its grace period.
        sup.wait_gone(Duration::from_secs(120)).await;
    }
    // Whatever a supervisor did not get to, and everything of a detached runtime.
    let left = Runtime::load(state)?.unwrap_or(recorded);
    let mut components = stop_components(&left).await;
    for entry in &mut components {
        // Gone now but alive before: the supervisor stopped it.
        if entry.2 == Stopped::WasNotRunning && alive_before.contains(&entry.0) {
            entry.2 = Stopped::Exited;
        }
    }
    Runtime::remove(state)?;
    Ok(DownReport::Stopped {
        supervisor,
        components,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_log_tail_is_the_last_lines() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("x.log");
        let text: String = (1..=100).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, text).unwrap();
        assert_eq!(log_tail(&path, 2), "line 99\nline 100");
        assert_eq!(log_tail(&tmp.path().join("missing"), 2), "");
    }

    #[test]
    fn postgres_gets_a_fast_shutdown() {
        assert_eq!(stop_signal(Component::Postgres), Signal::SIGINT);
        assert_eq!(stop_signal(Component::Api), Signal::SIGTERM);
    }
}
