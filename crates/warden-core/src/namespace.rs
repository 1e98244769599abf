//! Namespaces: dotted paths (`prod.team-a`) that limit where a binding applies.
//!
//! `a.b` covers `a.b` and every `a.b.*`, never `a.bc`: coverage is by whole segments.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::CoreError;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Namespace(String);

impl Namespace {
    pub fn parse(raw: &str) -> Result<Self, CoreError> {
        let value = raw.trim().to_lowercase();
        let ok_segment = |s: &str| {
            !s.is_empty() && s.len() <= 63 && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        };
        if value.is_empty() || value.len() > 255 || !value.split('.').all(ok_segment) {
            return Err(CoreError::validation("namespace", format!("{raw:?} is not a dotted path like prod.team-a")));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this namespace covers `other` (itself or a descendant).
    pub fn covers(&self, other: &Namespace) -> bool {
        other.0 == self.0 || (other.0.len() > self.0.len() && other.0.starts_with(&self.0) && other.0.as_bytes()[self.0.len()] == b'.')
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Namespace {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Namespace::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// Whether a binding limited to `scope` (empty = the whole tenant) applies to a request in
/// `requested` (`None` = tenant-wide, which only an unlimited binding satisfies).
pub fn scope_applies(scope: &[Namespace], requested: Option<&Namespace>) -> bool {
    if scope.is_empty() {
        return true;
    }
    requested.is_some_and(|r| scope.iter().any(|s| s.covers(r)))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ns(s: &str) -> Namespace {
        Namespace::parse(s).unwrap()
    }

    #[test]
    fn coverage_is_by_segment() {
        assert!(ns("prod.team-a").covers(&ns("prod.team-a")));
        assert!(ns("prod.team-a").covers(&ns("prod.team-a.db")));
        assert!(!ns("prod.team-a").covers(&ns("prod.team-ab")));
        assert!(!ns("prod.team-a").covers(&ns("prod")));
        assert!(scope_applies(&[], None));
        assert!(!scope_applies(&[ns("prod")], None));
        assert!(scope_applies(&[ns("staging"), ns("prod")], Some(&ns("prod.x"))));
        for bad in ["", ".", "a..b", "a.", "A B", "a/b"] {
            assert!(Namespace::parse(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        /// A binding limited to `a.b` never applies in a sibling such as `a.c` or `a.bx`.
        #[test]
        fn scope_never_leaks_to_siblings(base in "[a-c]{1,2}(\\.[a-c]{1,2}){0,2}", sibling in "[a-c]{1,3}", tail in "(\\.[a-c]{1,2}){0,2}") {
            let scope = ns(&base);
            let parent = base.rsplit_once('.').map(|(p, _)| format!("{p}.")).unwrap_or_default();
            let last = base.rsplit('.').next().unwrap();
            prop_assume!(sibling != last);
            let other = ns(&format!("{parent}{sibling}{tail}"));
            prop_assert!(!scope.covers(&other), "{} covers {}", scope, other);
            let descendant = ns(&format!("{base}{tail}"));
            prop_assert!(scope.covers(&descendant));
        }
    }
}
