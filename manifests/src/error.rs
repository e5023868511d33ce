//! Errors and warnings of loading values and rendering, each naming where the offending value came from.
//!
//! Invariant: every error about user input carries an [`Origin`] (file, line and column, or the `--set`
//! argument) and, where one exists, the key path (`images.api.tag`), so the message alone tells the user
//! what to fix and where. No message ever holds a password: URLs are shown through
//! [`vote_contract::settings::redact`].

use std::fmt;
use std::sync::Arc;

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A values file (or an embedded profile): 1-based line and column.
    File {
        name: Arc<str>,
        line: usize,
        column: usize,
    },
    /// A `--set` argument, as typed.
    Set { arg: Arc<str> },
    /// A built-in default, or a value set by a program rather than a file.
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { name, line, column } => write!(f, "{name}:{line}:{column}"),
            Origin::Set { arg } => write!(f, "--set {arg}"),
            Origin::Default => f.write_str("default values"),
        }
    }
}

/// Why values could not be loaded or rendered. Every variant is a usage error (exit code 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The text is not valid YAML, or not a single mapping.
    #[error("{origin}: {message}")]
    Syntax { origin: Origin, message: String },
    /// A value of the wrong type, an unknown key or a value out of range.
    #[error("{origin}: {path}: {message}")]
    Value {
        origin: Origin,
        path: String,
        message: String,
    },
    /// A malformed `--set` argument.
    #[error("--set {arg}: {message}")]
    Set { arg: String, message: String },
    /// `--strict` and a URL that holds a password.
    #[error(
        "{origin}: {path}: the URL holds a password ({url}); refusing it in strict mode: take the \
         password out of the values file and pass it as a Secret instead"
    )]
    PasswordInValues {
        origin: Origin,
        path: String,
        /// The URL with the password replaced by `***`.
        url: String,
    },
    /// The objects could not be written as YAML or JSON (a bug, not a user error).
    #[error("cannot write the manifests: {0}")]
    Output(String),
}

impl Error {
    /// Where the offending input came from, when known.
    pub fn origin(&self) -> Option<&Origin> {
        match self {
            Error::Syntax { origin, .. }
            | Error::Value { origin, .. }
            | Error::PasswordInValues { origin, .. } => Some(origin),
            Error::Set { .. } | Error::Output(_) => None,
        }
    }

    /// The key path (`images.api.tag`), when the error is about one value.
    pub fn path(&self) -> Option<&str> {
        match self {
            Error::Value { path, .. } | Error::PasswordInValues { path, .. } => Some(path),
            Error::Syntax { .. } | Error::Set { .. } | Error::Output(_) => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Something the user should fix, that did not stop rendering. The caller prints these (to stderr).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    pub origin: Origin,
    pub path: String,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.origin, self.path, self.message)
    }
}
