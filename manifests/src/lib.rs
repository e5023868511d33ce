//! Values profiles rendered into typed Kubernetes objects. Pure: no I/O, no cluster.
//!
//! Data flows one way: **values → objects → (apply | check | verify)**.
//!
//! 1. [`Layers::load`] layers the embedded profile (`values/default.yaml`, then `minikube.yaml` or
//!    `kind.yaml`), the `-f` files (text passed in by the caller) and the `--set` arguments, validating
//!    after each layer, into [`Values`]. Errors name the file, line, column and key path; a password
//!    found in `postgresql.url` comes back apart, in [`Loaded::postgres_password`], with a warning.
//! 2. [`render()`] turns [`Values`] (plus [`Secrets`], never part of values) into [`Object`]s:
//!    k8s-openapi types, in apply order.
//! 3. [`output`] writes them as multi-document YAML or a JSON `v1 List`.
//!
//! [`intended_flows`] lists the connections the application needs ([`Flow`]); the NetworkPolicies are
//! derived from it, and `votectl check` / `verify --network-policies` compare a cluster against it.
//!
//! ```
//! use votectl_manifests::{Layers, Profile, Secrets, output, render};
//!
//! let loaded = Layers {
//!     profile: Profile::Kind,
//!     sets: vec!["images.api.tag=1.2.3".to_owned()],
//!     ..Layers::default()
//! }
//! .load()?;
//! let rendered = render(&loaded.values, &Secrets::default())?;
//! let yaml = output::to_yaml(&rendered.objects)?;
//! assert!(yaml.contains("image: votectl/api:1.2.3"));
//! # Ok::<(), votectl_manifests::Error>(())
//! ```

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
