//! Values profiles rendered into typed Kubernetes objects. Pure: no I/O.

mod de;
pub mod error;
mod tree;

pub use error::{Error, Origin, Result, Warning};
