//! Facts about processes from `/proc`, and stopping a process we recorded.
//!
//! Invariant: a process is identified by its PID *and* its start time (field 22 of `/proc/PID/stat`,
//! clock ticks since boot). Every check and every signal goes through [`Pid`], which re-reads the start
//! time first, so a PID the kernel has since given to another process is treated as gone and never
//! signalled.

use std::time::Duration;

use nix::sys::signal::{self, Signal};
use serde::{Deserialize, Serialize};

/// A process as recorded when it was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pid {
    pub pid: u32,
    /// Start time in clock ticks since boot, from `/proc/PID/stat`.
    pub start_ticks: u64,
}

/// The part of `/proc/PID/stat` we need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// `R`, `S`, `D`, `Z` (exited, not yet reaped), …
    pub state: char,
    pub start_ticks: u64,
}

/// Parses the text of `/proc/PID/stat`. The command name (field 2) may hold spaces and parentheses,
/// so fields are counted from the last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After the name: state is field 3, start time field 22.
    let state = fields.next()?.chars().next()?;
    let start_ticks = fields.nth(18)?.parse().ok()?;
    Some(Stat { state, start_ticks })
}

pub fn stat(pid: u32) -> Option<Stat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Whether any thread of `pid` is neither a zombie nor dead.
fn threads_running(pid: u32) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("stat")).ok())
        .filter_map(|text| parse_stat(&text))
        .any(|s| s.state != 'Z' && s.state != 'X')
}

impl Pid {
    /// Identifies a process that is running now (e.g. a child just spawned).
    pub fn of(pid: u32) -> Option<Self> {
        let stat = stat(pid)?;
        Some(Self {
            pid,
            start_ticks: stat.start_ticks,
        })
    }

    /// The process of this very votectl.
    pub fn current() -> Option<Self> {
        Self::of(std::process::id())
    }

    /// Still the same process, and not a zombie waiting to be reaped.
    pub fn is_alive(&self) -> bool {
        let Some(main) = stat(self.pid) else {
            return false;
        };
        if main.start_ticks != self.start_ticks {
            return false;
        }
        // After a kill the main thread can already be a zombie while other threads are still
        // exiting and still hold the process's listening sockets: a restart on the same port would
        // then fail with "address in use". Gone means every thread is gone.
        main.state != 'Z' || threads_running(self.pid)
    }

    /// Sends `signal` if this is still the same live process; false when it is gone.
    pub fn signal(&self, signal: Signal) -> bool {
        if !self.is_alive() {
            return false;
        }
        let Ok(raw) = i32::try_from(self.pid) else {
            return false;
        };
        signal::kill(nix::unistd::Pid::from_raw(raw), signal).is_ok()
    }

    /// Waits until the process is gone; false if it still runs after `timeout`.
    pub async fn wait_gone(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if !self.is_alive() {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Asks the process to stop with `signal`, waits up to `grace`, then kills it.
    pub async fn stop(&self, signal: Signal, grace: Duration) -> Stopped {
        if !self.signal(signal) {
            return Stopped::WasNotRunning;
        }
        if self.wait_gone(grace).await {
            return Stopped::Exited;
        }
        self.signal(Signal::SIGKILL);
        if self.wait_gone(Duration::from_secs(10)).await {
            Stopped::Killed
        } else {
            Stopped::StillRunning
        }
    }
}

/// How [`Pid::stop`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// It exited after the polite signal.
    Exited,
    /// It ignored the polite signal for the whole grace period and was killed.
    Killed,
    /// It was gone already.
    WasNotRunning,
    /// Not even SIGKILL ended it (uninterruptible sleep): it needs a look.
    StillRunning,
}

/// `name (pid N)` for messages: the program name, with its arguments when they are short.
pub fn describe(pid: u32) -> String {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let name = match args.first() {
        Some(first) => {
            let program = first.rsplit('/').next().unwrap_or(first);
            let rest = args[1..].join(" ");
            if rest.is_empty() || rest.len() > 60 {
                program.to_owned()
            } else {
                format!("{program} {rest}")
            }
        }
        None => std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|c| c.trim().to_owned())
            .unwrap_or_else(|_| "an unknown process".to_owned()),
    };
    format!("{name} (pid {pid})")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_count_from_the_last_parenthesis() {
        let text = "4242 (we (ird) name) S 1 4242 4242 0 -1 4194560 97 0 0 0 0 0 0 0 20 0 1 0 \
                    123456 1000 200 18446744073709551615";
        assert_eq!(
            parse_stat(text),
            Some(Stat {
                state: 'S',
                start_ticks: 123_456
            })
        );
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) S 1 2"), None);
    }

    #[test]
    fn our_own_process_is_alive_and_a_changed_start_time_is_not() {
        let me = Pid::current().unwrap();
        assert!(me.is_alive());
        let reused = Pid {
            start_ticks: me.start_ticks + 1,
            ..me
        };
        assert!(!reused.is_alive());
        assert!(
            !reused.signal(Signal::SIGTERM),
            "a reused PID is never signalled"
        );
    }

    #[tokio::test]
    async fn stop_ends_a_process_that_ignores_nothing() {
        let mut child = tokio::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = Pid::of(child.id().unwrap()).unwrap();
        let reaper = tokio::spawn(async move { child.wait().await });
        assert_eq!(
            pid.stop(Signal::SIGTERM, Duration::from_secs(5)).await,
            Stopped::Exited
        );
        reaper.await.unwrap().unwrap();
        assert_eq!(
            pid.stop(Signal::SIGTERM, Duration::from_secs(1)).await,
            Stopped::WasNotRunning
        );
    }
}
