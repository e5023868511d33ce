//! The frontend: serves the live voting page and proxies /api/* to the API.
