//! A child process that is stopped with a chosen signal and reaped, also on drop.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

pub(crate) struct Process {
    name: &'static str,
    child: Option<Child>,
}

impl Process {
    /// Spawns `command` with stdout and stderr appended to `log`.
    pub(crate) fn spawn(name: &'static str, mut command: Command, log: &Path) -> Self {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("opening {}: {e}", log.display()));
        let err = out.try_clone().expect("cloning a log file handle");
        command
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let child = command.spawn().unwrap_or_else(|e| {
            panic!("starting {name} ({command:?}): {e}; is it installed (see .ci/run)?")
        });
        Self {
            name,
            child: Some(child),
        }
    }

    /// Whether the process has exited (and is reaped).
    pub(crate) fn has_exited(&mut self) -> bool {
        match &mut self.child {
            None => true,
            Some(child) => !matches!(child.try_wait(), Ok(None)),
        }
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends `signal` and waits up to `grace` for the exit, then kills outright.
    pub(crate) fn stop(&mut self, signal: Signal, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(pid) = i32::try_from(child.id()) {
            let _ = kill(Pid::from_raw(pid), signal);
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if !matches!(child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        eprintln!(
            "{} did not stop on {signal} within {grace:?}; killing it",
            self.name
        );
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Stops the process held in `slot`, if any: `signal`, then up to `grace` for it to exit. Runs off
/// the async runtime, since it waits.
pub(crate) async fn stop_slot(slot: &mut Option<Process>, signal: Signal, grace: Duration) {
    if let Some(mut p) = slot.take() {
        tokio::task::spawn_blocking(move || p.stop(signal, grace))
            .await
            .expect("stopping a test server");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop(Signal::SIGKILL, Duration::from_secs(5));
    }
}

/// Polls `ready` until it returns true, panicking with `log`'s contents if the process exits or
/// `timeout` passes first.
pub(crate) async fn wait_until_ready<F, Fut>(
    process: &mut Process,
    log: &Path,
    timeout: Duration,
    mut ready: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if ready().await {
            return;
        }
        if process.has_exited() || Instant::now() > deadline {
            let log_text = std::fs::read_to_string(log).unwrap_or_default();
            let exited = process.has_exited();
            panic!(
                "{} did not become ready (exited: {exited}); its log:\n{log_text}",
                process.name
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
