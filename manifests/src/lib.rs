//! Values profiles rendered into typed Kubernetes objects. Pure: no I/O.

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod de;
pub mod error;
pub mod flows;
pub mod load;
pub mod output;
pub mod render;
mod tree;
pub mod values;

pub use error::{Error, Origin, Result, Warning};
pub use flows::{Component, Flow, Namespaces, Peer, Protocol, intended_flows};
pub use load::{Layers, Loaded, Profile, ValuesFile};
pub use output::Format;
pub use render::{Object, Rendered, Secrets, render};
pub use values::{Password, Values};
