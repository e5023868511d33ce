//! Facts the container images and the rendered manifests must agree on.
//!
//! The original system's pods crash-looped because the chart's `runAsUser` did not match the image's
//! user. Both the image builder and the manifest renderer read these constants, and tests on both sides
//! compare against them.

/// UID of the `nonroot` user our images run as (distroless convention).
pub const NONROOT_UID: u32 = 65532;
/// GID of the `nonroot` group our images run as.
pub const NONROOT_GID: u32 = 65532;

/// Name of each service as it appears in image names, labels and the local runtime.
pub const API: &str = "api";
/// See [`API`].
pub const CONSUMER: &str = "consumer";
/// See [`API`].
pub const FRONTEND: &str = "frontend";
