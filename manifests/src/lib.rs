//! Values profiles rendered into typed Kubernetes objects. Pure: no I/O.
