//! What the suite reads about a running process from `/proc`: its command line, environment and
//! working directory (to start it again exactly as it was started), its owner (PostgreSQL runs as
//! another user) and its resident memory.
//!
//! Invariant: these are read *before* the process is signalled; once it is gone, `/proc` has nothing.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

/// Why a process could not be described.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read /proc/{pid}/{what}: {source}")]
    Read {
        pid: u32,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("/proc/{pid}/{what} has no {field}")]
    Missing {
        pid: u32,
        what: &'static str,
        field: &'static str,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

fn read(pid: u32, what: &'static str) -> Result<Vec<u8>> {
    std::fs::read(format!("/proc/{pid}/{what}")).map_err(|source| Error::Read { pid, what, source })
}

/// Splits a NUL-separated `/proc` list; a trailing NUL does not make an empty last element.
pub fn split_nul(bytes: &[u8]) -> Vec<OsString> {
    bytes
        .split(|b| *b == 0)
        .filter(|part| !part.is_empty())
        .map(|part| OsString::from_vec(part.to_vec()))
        .collect()
}

/// Parses `/proc/PID/environ`: `KEY=VALUE` entries; an entry without `=` is skipped.
pub fn parse_environ(bytes: &[u8]) -> Vec<(OsString, OsString)> {
    bytes
        .split(|b| *b == 0)
        .filter_map(|entry| {
            let eq = entry.iter().position(|b| *b == b'=')?;
            Some((
                OsString::from_vec(entry[..eq].to_vec()),
                OsString::from_vec(entry[eq + 1..].to_vec()),
            ))
        })
        .collect()
}

/// How a process was started, enough to start an identical one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    pub cwd: PathBuf,
    pub uid: u32,
    pub gid: u32,
}

impl Launch {
    /// Reads the launch of `pid`. The program is `/proc/PID/exe` (the binary actually running, even
    /// when argv\[0\] was rewritten), the arguments are argv\[1..\].
    pub fn of(pid: u32) -> Result<Self> {
        let argv = split_nul(&read(pid, "cmdline")?);
        let env = parse_environ(&read(pid, "environ")?);
        let program =
            std::fs::read_link(format!("/proc/{pid}/exe")).map_err(|source| Error::Read {
                pid,
                what: "exe",
                source,
            })?;
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).map_err(|source| Error::Read {
            pid,
            what: "cwd",
            source,
        })?;
        let status = String::from_utf8_lossy(&read(pid, "status")?).into_owned();
        let id = |field: &'static str| {
            status_field(&status, field)
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .ok_or(Error::Missing {
                    pid,
                    what: "status",
                    field,
                })
        };
        Ok(Self {
            program,
            args: argv.into_iter().skip(1).collect(),
            env,
            cwd,
            uid: id("Uid")?,
            gid: id("Gid")?,
        })
    }

    /// The value of `key` in the environment.
    pub fn var(&self, key: &str) -> Option<String> {
        self.env
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.to_string_lossy().into_owned())
    }

    /// A command that starts the same program, arguments, environment (and nothing else of ours),
    /// working directory and user.
    pub fn command(&self) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(&self.program);
        command
            .args(&self.args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.cwd);
        if nix::unistd::Uid::effective().as_raw() != self.uid {
            command.uid(self.uid).gid(self.gid);
        }
        command
    }
}

/// The value after `name:` in `/proc/PID/status`.
pub fn status_field<'a>(status: &'a str, name: &str) -> Option<&'a str> {
    status.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key == name).then_some(value.trim())
    })
}

/// Resident set size of `pid` in bytes (`VmRSS`).
pub fn rss_bytes(pid: u32) -> Result<u64> {
    let status = String::from_utf8_lossy(&read(pid, "status")?).into_owned();
    status_field(&status, "VmRSS")
        .and_then(|v| v.trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or(Error::Missing {
            pid,
            what: "status",
            field: "VmRSS",
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_lists_and_environments_parse() {
        assert_eq!(
            split_nul(b"/bin/x\0--port\08000\0"),
            ["/bin/x", "--port", "8000"]
        );
        let env = parse_environ(b"PORT=8000\0A=b=c\0JUNK\0EMPTY=\0");
        assert_eq!(
            env,
            [
                ("PORT".into(), "8000".into()),
                ("A".into(), "b=c".into()),
                ("EMPTY".into(), "".into())
            ]
        );
    }

    #[test]
    fn our_own_launch_and_memory_are_readable() {
        let me = std::process::id();
        let launch = Launch::of(me).unwrap();
        assert_eq!(launch.program, std::env::current_exe().unwrap());
        assert_eq!(launch.cwd, std::env::current_dir().unwrap());
        assert_eq!(launch.uid, nix::unistd::Uid::effective().as_raw());
        assert!(rss_bytes(me).unwrap() > 1024 * 1024);
        assert!(matches!(Launch::of(u32::MAX), Err(Error::Read { .. })));
    }

    #[test]
    fn status_fields_are_found_by_exact_name() {
        let status = "Name:\tx\nVmRSS:\t  1234 kB\nUid:\t0\t0\t0\t0\n";
        assert_eq!(status_field(status, "VmRSS"), Some("1234 kB"));
        assert_eq!(status_field(status, "Uid"), Some("0\t0\t0\t0"));
        assert_eq!(status_field(status, "Vm"), None);
    }
}
