//! The single source of truth for everything that crosses a service boundary.
//!
//! The system this replaces lost every vote because its API wrote the stream field `option` and its
//! consumer read `vote`. Here the API only ever writes a stream entry through [`stream::VoteEntry::encode`]
//! and the consumer only ever reads one through [`stream::VoteEntry::decode`]; both use the same
//! constants, so a field name can only change in one place, for both sides at once.
//!
//! Modules:
//! - [`stream`]: Redis stream, consumer group and dead-letter names; the entry codec.
//! - [`options`]: the validated set of vote options.
//! - [`http`]: JSON request and response bodies of the public HTTP API.
//! - [`db`]: the PostgreSQL schema (embedded migrations) and the NOTIFY channel the API listens on.
//! - [`settings`]: environment variable names, default ports and the typed reader every service uses.
//! - [`deploy`]: facts the images and the manifests must agree on (the non-root UID).

pub mod db;
pub mod deploy;
pub mod http;
pub mod options;
pub mod settings;
pub mod stream;

pub use options::{VoteOption, VoteOptions};
pub use stream::VoteEntry;
