//! Choosing loopback ports, and naming the process that holds one.
//!
//! Invariant: a port the user asked for is used as given or refused with the name of its holder; a
//! default port that is taken falls back to a free one, and the fallback is said out loud. No two
//! components of one run get the same port.

use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener};

use super::{Component, Error};

/// Whether 127.0.0.1:`port` can be bound right now. A listener on the wildcard address also makes it
/// fail, which is what we want: the child would not get the port either.
pub fn is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// A port the kernel considers free at this moment.
pub fn ephemeral() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

/// The process listening on `port` (IPv4 or IPv6, any address), as `name (pid N)`, when `/proc` tells.
pub fn holder(port: u16) -> Option<String> {
    let inodes: HashSet<u64> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|table| listening_inodes(&table, port))
        .collect();
    if inodes.is_empty() {
        return None;
    }
    let procs = std::fs::read_dir("/proc").ok()?;
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let inode = target
                .to_str()
                .and_then(|t| t.strip_prefix("socket:["))
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse::<u64>().ok());
            if inode.is_some_and(|i| inodes.contains(&i)) {
                return Some(super::process::describe(pid));
            }
        }
    }
    None
}

/// Inodes of the sockets in LISTEN state (`0A`) on `port` in a `/proc/net/tcp{,6}` table.
fn listening_inodes(table: &str, port: u16) -> Vec<u64> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let local = cols.get(1)?;
            let state = cols.get(3)?;
            let inode = cols.get(9)?.parse::<u64>().ok()?;
            let local_port = u16::from_str_radix(local.rsplit(':').next()?, 16).ok()?;
            (local_port == port && *state == "0A").then_some(inode)
        })
        .collect()
}

/// Hands out the ports of one run.
#[derive(Debug, Default)]
pub struct PortPlan {
    taken: HashSet<u16>,
    /// What was decided without being asked for, for the user to read.
    pub notes: Vec<String>,
}

impl PortPlan {
    /// The port for `component`: `requested` exactly (or an error naming who holds it), else its default
    /// port, else a free one.
    pub fn assign(&mut self, component: Component, requested: Option<u16>) -> Result<u16, Error> {
        if let Some(port) = requested {
            if self.taken.contains(&port) {
                return Err(Error::PortInUse {
                    port,
                    component,
                    holder: " (it was given to another component of this run)".to_owned(),
                });
            }
            if !is_free(port) {
                return Err(Error::PortInUse {
                    port,
                    component,
                    holder: holder(port).map_or_else(
                        || " (by a process votectl cannot identify)".to_owned(),
                        |h| format!(" by {h}"),
                    ),
                });
            }
            self.taken.insert(port);
            return Ok(port);
        }
        let default = component.default_port();
        if !self.taken.contains(&default) && is_free(default) {
            self.taken.insert(default);
            return Ok(default);
        }
        let port = loop {
            let port = ephemeral().map_err(|_| Error::PortInUse {
                port: 0,
                component,
                holder: " (no free port on 127.0.0.1)".to_owned(),
            })?;
            if self.taken.insert(port) {
                break port;
            }
        };
        let why = if self.taken.contains(&default) {
            "given to another component".to_owned()
        } else {
            holder(default).map_or_else(|| "in use".to_owned(), |h| format!("in use by {h}"))
        };
        self.notes.push(format!(
            "{component}: port {default} is {why}; using {port}"
        ));
        Ok(port)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const TABLE: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 100 0 0 10 0
   2: 00000000:1F41 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4444 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn only_listening_sockets_on_the_port_count() {
        assert_eq!(listening_inodes(TABLE, 8080), vec![4242]);
        assert_eq!(listening_inodes(TABLE, 8001), vec![4444]);
        assert!(listening_inodes(TABLE, 6379).is_empty());
    }

    #[test]
    fn a_taken_port_names_its_holder() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(!is_free(port));
        let who = holder(port).expect("our own listener is found");
        assert!(
            who.contains(&format!("pid {}", std::process::id())),
            "{who}"
        );
        let err = PortPlan::default()
            .assign(Component::Api, Some(port))
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("port {port} for api is already in use by")),
            "{text}"
        );
    }

    #[test]
    fn a_busy_default_port_falls_back_and_says_why() {
        // Hold the consumer's default port (unless someone else already does: same outcome).
        let _held = TcpListener::bind((Ipv4Addr::LOCALHOST, Component::Consumer.default_port()));
        let mut plan = PortPlan::default();
        let port = plan.assign(Component::Consumer, None).unwrap();
        assert_ne!(port, Component::Consumer.default_port());
        assert_eq!(plan.notes.len(), 1);
        let note = &plan.notes[0];
        assert!(
            note.starts_with("consumer: port 8001 is in use")
                && note.ends_with(&format!("; using {port}")),
            "{note}"
        );
    }

    #[test]
    fn one_run_never_hands_out_a_port_twice() {
        let mut plan = PortPlan::default();
        let free = ephemeral().unwrap();
        assert_eq!(plan.assign(Component::Api, Some(free)).unwrap(), free);
        assert!(plan.assign(Component::Consumer, Some(free)).is_err());
        let ports: HashSet<u16> = Component::START_ORDER
            .iter()
            .map(|c| plan.assign(*c, None).unwrap())
            .collect();
        assert_eq!(ports.len(), 5);
        assert!(!ports.contains(&free));
    }
}
