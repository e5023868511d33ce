//! Test harness: real `redis-server` and PostgreSQL processes on free loopback ports, each with a
//! throwaway data directory, stopped when dropped.
//!
//! Invariants: every server listens on 127.0.0.1 only; every server gets its own data directory, so a
//! test starts from empty stores and no two tests share state; nothing here is a mock. PostgreSQL is
//! run as the `postgres` user when the tests run as root (it refuses root), and `initdb` runs once per
//! machine into a cached template that each server copies, which keeps a server start well under a
//! second.

mod postgres;
mod process;
mod redis_server;

pub use postgres::{Postgres, postgres_bin_dir};
pub use redis_server::{Redis, RedisConfig};

/// A TCP port on 127.0.0.1 that was free a moment ago.
///
/// The listener is dropped before returning, so another process could take the port first; the servers
/// here retry with a new port when their first bind fails.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding 127.0.0.1:0 to find a free port")
}
