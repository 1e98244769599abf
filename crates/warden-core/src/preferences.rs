//! A person's preferences in one tenant (theme, time zone, default namespace and free
//! key/values): what a user interface remembers between sessions. They grant nothing and
//! change no decision; they are bounded so that a caller cannot store a document of any size
//! under its own account.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::CoreError;
use crate::namespace::Namespace;

/// At most this many free `values`.
pub const MAX_VALUES: usize = 64;
/// A `values` key is at most this many characters.
pub const MAX_KEY_LEN: usize = 64;
/// The whole document, as JSON, is at most this many bytes.
pub const MAX_DOCUMENT_BYTES: usize = 8 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Theme {
    Light,
    Dark,
    System,
}

/// The caller's preferences in a tenant. Every field is optional: an empty document is the
/// default, and a `PUT` replaces the whole document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TenantPreferences {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theme: Option<Theme>,
    /// An IANA time zone name such as `Europe/Berlin` or `UTC` (its syntax is checked; Warden
    /// carries no time zone database).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// A namespace (dotted path such as `prod.team-a`), stored lower-cased.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_namespace: Option<String>,
    /// Free key/values: at most 64 keys of at most 64 characters.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub values: Map<String, Value>,
}

impl TenantPreferences {
    /// Checks and normalises a document: the time zone's syntax, the namespace (lower-cased),
    /// the number and length of keys, and the size of the whole.
    pub fn validate(mut self) -> Result<Self, CoreError> {
        if let Some(zone) = &self.timezone {
            check_timezone(zone)?;
        }
        if let Some(raw) = &self.default_namespace {
            let namespace = Namespace::parse(raw).map_err(|_| {
                CoreError::validation("default_namespace", format!("{raw:?} is not a namespace (a dotted path like prod.team-a)"))
            })?;
            self.default_namespace = Some(namespace.as_str().to_owned());
        }
        if self.values.len() > MAX_VALUES {
            return Err(CoreError::validation("values", format!("at most {MAX_VALUES} keys (got {})", self.values.len())));
        }
        if let Some(key) = self.values.keys().find(|k| k.is_empty() || k.chars().count() > MAX_KEY_LEN || k.chars().any(char::is_control)) {
            return Err(CoreError::validation(
                "values",
                format!("key {key:?} must be 1 to {MAX_KEY_LEN} characters, without control characters"),
            ));
        }
        let size = serde_json::to_string(&self).map_or(usize::MAX, |s| s.len());
        if size > MAX_DOCUMENT_BYTES {
            return Err(CoreError::validation("preferences", format!("at most {MAX_DOCUMENT_BYTES} bytes as JSON (got {size})")));
        }
        Ok(self)
    }
}

/// The syntax of an IANA time zone name: one to three `/`-separated parts, each starting with
/// a letter and holding letters, digits, `_`, `-` and `+` (`UTC`, `Europe/Berlin`,
/// `America/Argentina/Buenos_Aires`, `Etc/GMT+5`), at most 64 characters in all.
pub fn check_timezone(zone: &str) -> Result<(), CoreError> {
    let part_ok = |p: &str| {
        p.starts_with(|c: char| c.is_ascii_alphabetic())
            && p.len() <= 32
            && p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+'))
    };
    let parts: Vec<&str> = zone.split('/').collect();
    if zone.len() <= 64 && (1..=3).contains(&parts.len()) && parts.iter().all(|p| part_ok(p)) {
        Ok(())
    } else {
        Err(CoreError::validation("timezone", format!("{zone:?} is not a time zone name like Europe/Berlin or UTC")))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn field(e: CoreError) -> String {
        match e {
            CoreError::Validation { field, .. } => field.into_owned(),
            other => panic!("not a validation error: {other:?}"),
        }
    }

    #[test]
    fn time_zone_names() {
        for good in ["UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires", "Etc/GMT+5", "America/Port-au-Prince", "EST5EDT"] {
            assert!(check_timezone(good).is_ok(), "{good}");
        }
        for bad in ["", "Europe/", "/Berlin", "Europe//Berlin", "../etc/passwd", "Europe/Berlin ", "5Europe", "A/B/C/D", "Europe/Ber lin"] {
            assert_eq!(field(check_timezone(bad).unwrap_err()), "timezone", "{bad:?}");
        }
    }

    #[test]
    fn documents_are_checked_and_normalised() {
        let doc: TenantPreferences = serde_json::from_value(json!({
            "theme": "dark", "timezone": "Europe/Berlin", "default_namespace": "Prod.Team-A", "values": {"page_size": 50, "pinned": ["a"]}
        }))
        .unwrap();
        let doc = doc.validate().unwrap();
        assert_eq!(doc.default_namespace.as_deref(), Some("prod.team-a"));
        assert_eq!(serde_json::to_value(TenantPreferences::default()).unwrap(), json!({}), "the default is an empty object");
        assert!(serde_json::from_value::<TenantPreferences>(json!({"theme": "blue"})).is_err());
        assert!(serde_json::from_value::<TenantPreferences>(json!({"colour": "blue"})).is_err(), "unknown fields are refused");
    }

    #[test]
    fn bounds_name_the_field() {
        let with = |values: Map<String, Value>| TenantPreferences { values, ..TenantPreferences::default() };
        let many: Map<String, Value> = (0..=MAX_VALUES).map(|i| (format!("k{i}"), json!(i))).collect();
        assert_eq!(field(with(many).validate().unwrap_err()), "values");
        let exactly: Map<String, Value> = (0..MAX_VALUES).map(|i| (format!("k{i}"), json!(i))).collect();
        assert!(with(exactly).validate().is_ok());
        for key in [String::new(), "k".repeat(MAX_KEY_LEN + 1), "a\nb".to_owned()] {
            assert_eq!(field(with(Map::from_iter([(key.clone(), json!(1))])).validate().unwrap_err()), "values", "{key:?}");
        }
        assert!(with(Map::from_iter([("k".repeat(MAX_KEY_LEN), json!(1))])).validate().is_ok());
        let big = with(Map::from_iter([("blob".to_owned(), json!("x".repeat(MAX_DOCUMENT_BYTES)))]));
        assert_eq!(field(big.validate().unwrap_err()), "preferences");
        let bad_ns = TenantPreferences { default_namespace: Some("a..b".into()), ..TenantPreferences::default() };
        assert_eq!(field(bad_ns.validate().unwrap_err()), "default_namespace");
    }
}
