//! Values profiles rendered into typed Kubernetes objects. Pure: no I/O.

mod de;
pub mod error;
pub mod load;
mod tree;
pub mod values;

pub use error::{Error, Origin, Result, Warning};
pub use load::{Layers, Loaded, Profile, ValuesFile};
pub use values::{Password, Values};
