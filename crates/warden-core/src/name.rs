//! Names of accounts and groups.
//!
//! A name is what people type, so it is case-insensitive: it is stored and compared in lower
//! case. It starts with a letter, holds only `a-z 0-9 . _ -`, ends with a letter or digit, is at
//! most 64 characters, and can never be read as a UUID (so `/users/{name-or-id}` is unambiguous).
//!
//! The text is shared (`Arc<str>`): the authorization index holds an account's name in its
//! entry, its name map and each group it is a member of, and a clone is a pointer, so the
//! name is stored once and copying an index shard copies no text.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::CoreError;

pub const MAX_NAME_LEN: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(Arc<str>);

impl Name {
    /// Validates and normalises (lower-cases) a name.
    pub fn parse(raw: &str) -> Result<Self, CoreError> {
        let lowered = raw.trim().to_lowercase();
        let err = |reason: &str| CoreError::validation("name", format!("{reason} (got {raw:?})"));
        if lowered.is_empty() {
            return Err(err("must not be empty"));
        }
        if lowered.chars().count() > MAX_NAME_LEN {
            return Err(err("must be at most 64 characters"));
        }
        let mut chars = lowered.chars();
        if !chars.next().is_some_and(|c| c.is_ascii_lowercase()) {
            return Err(err("must start with a letter"));
        }
        if !lowered.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')) {
            return Err(err("may contain only letters, digits, '.', '_' and '-'"));
        }
        if !lowered.chars().last().is_some_and(|c| c.is_ascii_alphanumeric()) {
            return Err(err("must end with a letter or digit"));
        }
        if uuid::Uuid::parse_str(&lowered).is_ok() {
            return Err(err("must not look like a UUID"));
        }
        Ok(Self(lowered.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Builds a name from storage, where it was validated on the way in.
    pub fn from_trusted(stored: String) -> Self {
        Self(stored.into())
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Name {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Name::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for Name {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Name::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lowercased() {
        assert_eq!(Name::parse("Alice").unwrap().as_str(), "alice");
        assert_eq!(Name::parse("ci-bot.prod_1").unwrap().as_str(), "ci-bot.prod_1");
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in ["", "1abc", "-abc", "abc-", "a b", "al!ce", "ünicode", "01890a5d-ac96-774b-bcce-b302099a8057"] {
            assert!(Name::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(Name::parse(&"a".repeat(65)).is_err());
        assert!(Name::parse(&"a".repeat(64)).is_ok());
    }

    #[test]
    fn uuid_lookalike_starting_with_letter_is_refused() {
        assert!(Name::parse("abcdef01-ac96-774b-bcce-b302099a8057").is_err());
    }
}
