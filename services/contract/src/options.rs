//! The configured vote options.
//!
//! Invariants: an option is 1–32 characters of `[a-z0-9-]`; a set holds 1–32 distinct options, in the
//! order they were configured (that order is the display order everywhere).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Options used when `VOTE_OPTIONS` is not set.
pub const DEFAULT_OPTIONS: &str = "cats,dogs";
/// Longest option name.
pub const MAX_OPTION_LEN: usize = 32;
/// Most options in one set.
pub const MAX_OPTIONS: usize = 32;

/// Why an option or a set of options was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("option is empty")]
    Empty,
    #[error("option {0:?} is longer than {MAX_OPTION_LEN} characters")]
    TooLong(String),
    #[error("option {0:?} may only contain a-z, 0-9 and '-'")]
    BadCharacter(String),
    #[error("no options given (need 1 to {MAX_OPTIONS}, comma-separated)")]
    NoOptions,
    #[error("{0} options given; at most {MAX_OPTIONS} are allowed")]
    TooMany(usize),
    #[error("option {0:?} is listed twice")]
    Duplicate(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One validated option name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct VoteOption(String);

impl VoteOption {
    /// Validates `name`.
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        if name.is_empty() {
            return Err(Error::Empty);
        }
        if name.len() > MAX_OPTION_LEN {
            return Err(Error::TooLong(name));
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(Error::BadCharacter(name));
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for VoteOption {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        Self::new(value)
    }
}

impl From<VoteOption> for String {
    fn from(value: VoteOption) -> Self {
        value.0
    }
}

impl fmt::Display for VoteOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for VoteOption {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The configured, ordered set of options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<VoteOption>", into = "Vec<VoteOption>")]
pub struct VoteOptions(Vec<VoteOption>);

impl VoteOptions {
    /// Validates a list: 1–32 distinct options.
    pub fn new(options: Vec<VoteOption>) -> Result<Self> {
        if options.is_empty() {
            return Err(Error::NoOptions);
        }
        if options.len() > MAX_OPTIONS {
            return Err(Error::TooMany(options.len()));
        }
        for (i, option) in options.iter().enumerate() {
            if options[..i].contains(option) {
                return Err(Error::Duplicate(option.0.clone()));
            }
        }
        Ok(Self(options))
    }

    /// Finds a configured option by name.
    pub fn get(&self, name: &str) -> Option<&VoteOption> {
        self.0.iter().find(|o| o.0 == name)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, VoteOption> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false: a set holds at least one option. Present for clippy's `len_without_is_empty`.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The names, in configured order.
    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(|o| o.0.clone()).collect()
    }
}

impl Default for VoteOptions {
    fn default() -> Self {
        DEFAULT_OPTIONS
            .parse()
            .expect("the default options are valid")
    }
}

impl FromStr for VoteOptions {
    type Err = Error;
    /// Parses `cats,dogs` (surrounding whitespace around each name is ignored).
    fn from_str(s: &str) -> Result<Self> {
        if s.trim().is_empty() {
            return Err(Error::NoOptions);
        }
        let options = s
            .split(',')
            .map(|part| VoteOption::new(part.trim()))
            .collect::<Result<Vec<_>>>()?;
        Self::new(options)
    }
}

impl TryFrom<Vec<VoteOption>> for VoteOptions {
    type Error = Error;
    fn try_from(value: Vec<VoteOption>) -> Result<Self> {
        Self::new(value)
    }
}

impl From<VoteOptions> for Vec<VoteOption> {
    fn from(value: VoteOptions) -> Self {
        value.0
    }
}

impl fmt::Display for VoteOptions {
    /// The comma-separated form accepted by `VOTE_OPTIONS`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names().join(","))
    }
}

impl<'a> IntoIterator for &'a VoteOptions {
    type Item = &'a VoteOption;
    type IntoIter = std::slice::Iter<'a, VoteOption>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_cats_and_dogs() {
        assert_eq!(VoteOptions::default().names(), ["cats", "dogs"]);
    }

    #[test]
    fn parses_and_trims() {
        let options: VoteOptions = " a-1 , b ".parse().unwrap();
        assert_eq!(options.names(), ["a-1", "b"]);
        assert_eq!(options.to_string(), "a-1,b");
    }

    #[test]
    fn rejects_each_bad_shape() {
        assert_eq!("".parse::<VoteOptions>(), Err(Error::NoOptions));
        assert_eq!("cats,".parse::<VoteOptions>(), Err(Error::Empty));
        assert_eq!(
            "Cats".parse::<VoteOptions>(),
            Err(Error::BadCharacter("Cats".into()))
        );
        assert_eq!(
            "a,a".parse::<VoteOptions>(),
            Err(Error::Duplicate("a".into()))
        );
        let long = "x".repeat(33);
        assert_eq!(long.parse::<VoteOptions>(), Err(Error::TooLong(long)));
        let many = (0..33)
            .map(|i| format!("o{i}"))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(many.parse::<VoteOptions>(), Err(Error::TooMany(33)));
        let most = (0..32)
            .map(|i| format!("o{i}"))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(most.parse::<VoteOptions>().unwrap().len(), 32);
    }

    #[test]
    fn serde_validates() {
        let ok: VoteOptions = serde_json::from_str(r#"["cats","dogs"]"#).unwrap();
        assert_eq!(ok, VoteOptions::default());
        assert!(serde_json::from_str::<VoteOptions>(r#"["cats","cats"]"#).is_err());
        assert!(serde_json::from_str::<VoteOption>(r#""NO""#).is_err());
    }
}
