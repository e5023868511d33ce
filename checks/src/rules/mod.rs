//! The checks' evaluations, one module per section of the catalogue. Each function takes the input
//! and returns its findings; it never fails and never panics on odd objects (a missing field is a
//! finding, or not this check's business).

pub(crate) mod accounts;
pub(crate) mod containers;
pub(crate) mod images;
pub(crate) mod namespaces;
pub(crate) mod network;
pub(crate) mod pods;
pub(crate) mod resources;
pub(crate) mod secrets;
