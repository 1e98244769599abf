//! Additional user fields: operator-defined profile entries (`[[user_field]]`), typed, bounded,
//! and shown to each viewer according to their visibility.
//!
//! The definitions come from configuration and may change between restarts; stored values
//! outlive them. A value whose definition is gone stays stored and is shown to
//! administrators only, so that removing a definition never publishes what it hid.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::CoreError;

/// The values of a user's additional fields, by key.
pub type FieldValues = BTreeMap<String, Value>;

/// The longest field key.
pub const MAX_KEY_LEN: usize = 64;
/// How many additional fields a user may hold.
pub const MAX_FIELDS: usize = 64;
/// The most bytes a user's additional fields take together, as compact JSON.
pub const MAX_FIELDS_BYTES: usize = 16 * 1024;

/// What a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    String,
    Number,
    Bool,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    Object,
    List,
}

impl FieldType {
    fn describe(self) -> &'static str {
        match self {
            Self::String => "a string",
            Self::Number => "a number",
            Self::Bool => "true or false",
            Self::Date => "a date (YYYY-MM-DD)",
            Self::Object => "an object",
            Self::List => "a list",
        }
    }

    fn admits(self, value: &Value) -> bool {
        match (self, value) {
            (Self::String, Value::String(_))
            | (Self::Number, Value::Number(_))
            | (Self::Bool, Value::Bool(_))
            | (Self::Object, Value::Object(_))
            | (Self::List, Value::Array(_)) => true,
            (Self::Date, Value::String(s)) => is_date(s),
            _ => false,
        }
    }
}

fn is_date(s: &str) -> bool {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    s.len() == 10 && time::Date::parse(s, &format).is_ok()
}

/// Who sees a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Anyone, signed in or not.
    Public,
    /// Any signed-in account.
    Authenticated,
    /// The user themself (and administrators).
    #[serde(rename = "self")]
    Owner,
    /// Administrators only (those who may read users).
    #[default]
    Private,
}

/// Who is looking at a user's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    /// Someone who may read users (`warden:users:read`): sees every field, defined or not.
    Administrator,
    /// The user themself.
    Owner,
    /// Another signed-in account.
    Authenticated,
    /// Someone not signed in.
    Anonymous,
}

impl Visibility {
    pub fn shown_to(self, viewer: Viewer) -> bool {
        match self {
            Self::Public => true,
            Self::Authenticated => viewer != Viewer::Anonymous,
            Self::Owner => matches!(viewer, Viewer::Administrator | Viewer::Owner),
            Self::Private => viewer == Viewer::Administrator,
        }
    }
}

/// One `[[user_field]]` definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldDef {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: FieldType,
    #[serde(default)]
    pub visibility: Visibility,
    /// Whether the user may set it through self-service (administrators always may).
    #[serde(default)]
    pub writable_by_user: bool,
}

/// Checks a field key: 1–64 characters, lower-case ASCII letters, digits and `_`, starting with
/// a letter.
pub fn check_key(key: &str) -> Result<(), CoreError> {
    let ok = key.len() <= MAX_KEY_LEN
        && key.starts_with(|c: char| c.is_ascii_lowercase())
        && key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(CoreError::validation(
            field_path(key),
            format!("a field key is 1-{MAX_KEY_LEN} lower-case letters, digits and _, starting with a letter"),
        ))
    }
}

/// Checks a set of definitions (configuration): valid keys, none twice.
pub fn check_defs(defs: &[FieldDef]) -> Result<(), CoreError> {
    for (i, def) in defs.iter().enumerate() {
        check_key(&def.name)?;
        if defs[..i].iter().any(|d| d.name == def.name) {
            return Err(CoreError::validation(field_path(&def.name), "is defined twice"));
        }
    }
    Ok(())
}

fn field_path(key: &str) -> String {
    format!("fields.{key}")
}

/// The fields `viewer` may see: those whose definition's visibility admits them. Values
/// without a definition (it was removed from configuration) are shown to administrators only.
pub fn visible_fields(fields: &FieldValues, defs: &[FieldDef], viewer: Viewer) -> FieldValues {
    fields
        .iter()
        .filter(|(key, _)| match defs.iter().find(|d| &d.name == *key) {
            Some(def) => def.visibility.shown_to(viewer),
            None => viewer == Viewer::Administrator,
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Who writes fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldWriter {
    Administrator,
    /// The user themself: only fields defined `writable_by_user`.
    Owner,
}

impl FieldWriter {
    fn viewer(self) -> Viewer {
        match self {
            Self::Administrator => Viewer::Administrator,
            Self::Owner => Viewer::Owner,
        }
    }
}

/// Applies a patch to stored fields: each key sets its value, `null` removes it. A key sent
/// back with the value the writer already sees is no change (so what `GET` returns can be sent
/// back as it is). Every key that changes must be defined, and its value of the defined type; a
/// user may change only `writable_by_user` fields. Returns the fields after the patch and the
/// keys that changed, in order.
pub fn apply_fields(
    stored: &FieldValues,
    patch: FieldValues,
    defs: &[FieldDef],
    writer: FieldWriter,
) -> Result<(FieldValues, Vec<String>), CoreError> {
    let seen = visible_fields(stored, defs, writer.viewer());
    let mut out = stored.clone();
    let mut changed = Vec::new();
    for (key, value) in patch {
        let unchanged = match seen.get(&key) {
            Some(current) => *current == value,
            None => value.is_null() && !stored.contains_key(&key),
        };
        if unchanged {
            continue;
        }
        let def = defs.iter().find(|d| d.name == key);
        let Some(def) = def else {
            check_key(&key)?;
            return Err(CoreError::validation(field_path(&key), "is not a field this server defines ([[user_field]])"));
        };
        if writer == FieldWriter::Owner && !def.writable_by_user {
            return Err(CoreError::ProfileFieldDisabled {
                field: field_path(&key),
                setting: format!("[[user_field]] {key} is not writable_by_user"),
            });
        }
        if value.is_null() {
            out.remove(&key);
        } else {
            if !def.kind.admits(&value) {
                return Err(CoreError::validation(field_path(&key), format!("must be {}", def.kind.describe())));
            }
            out.insert(key.clone(), value);
        }
        changed.push(key);
    }
    check_size(&out)?;
    Ok((out, changed))
}

/// Checks the whole set of a user's fields against the definitions (a new user's, sent by an
/// administrator).
pub fn check_new_fields(fields: FieldValues, defs: &[FieldDef]) -> Result<FieldValues, CoreError> {
    let (out, _) = apply_fields(&FieldValues::new(), fields, defs, FieldWriter::Administrator)?;
    Ok(out)
}

fn check_size(fields: &FieldValues) -> Result<(), CoreError> {
    if fields.len() > MAX_FIELDS {
        return Err(CoreError::validation("fields", format!("at most {MAX_FIELDS} fields")));
    }
    let bytes = serde_json::to_vec(fields).map_or(usize::MAX, |v| v.len());
    if bytes > MAX_FIELDS_BYTES {
        return Err(CoreError::validation("fields", format!("at most {MAX_FIELDS_BYTES} bytes of JSON together")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn def(name: &str, kind: FieldType, visibility: Visibility, writable_by_user: bool) -> FieldDef {
        FieldDef { name: name.into(), kind, visibility, writable_by_user }
    }

    fn defs() -> Vec<FieldDef> {
        vec![
            def("team", FieldType::String, Visibility::Public, false),
            def("desk", FieldType::Number, Visibility::Authenticated, true),
            def("pronouns", FieldType::String, Visibility::Owner, true),
            def("salary_band", FieldType::String, Visibility::Private, false),
            def("started", FieldType::Date, Visibility::Owner, false),
        ]
    }

    fn values() -> FieldValues {
        [
            ("team", json!("infra")),
            ("desk", json!(42)),
            ("pronouns", json!("she/her")),
            ("salary_band", json!("b3")),
            ("retired", json!("kept after its definition went")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    fn keys(fields: &FieldValues) -> Vec<&str> {
        fields.keys().map(String::as_str).collect()
    }

    #[test]
    fn each_viewer_sees_what_its_visibility_admits() {
        let (fields, defs) = (values(), defs());
        let seen = |viewer| visible_fields(&fields, &defs, viewer);
        assert_eq!(keys(&seen(Viewer::Administrator)), ["desk", "pronouns", "retired", "salary_band", "team"]);
        assert_eq!(keys(&seen(Viewer::Owner)), ["desk", "pronouns", "team"], "not private, not undefined");
        assert_eq!(keys(&seen(Viewer::Authenticated)), ["desk", "team"]);
        assert_eq!(keys(&seen(Viewer::Anonymous)), ["team"]);
    }

    #[test]
    fn values_must_be_defined_and_of_their_type() {
        let defs = defs();
        let patch = |pairs: &[(&str, Value)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect::<FieldValues>();
        let admin = |p| apply_fields(&FieldValues::new(), p, &defs, FieldWriter::Administrator);
        let field_of = |e: CoreError| match e {
            CoreError::Validation { field, .. } => field.into_owned(),
            other => panic!("{other:?}"),
        };
        assert_eq!(field_of(admin(patch(&[("nope", json!(1))])).unwrap_err()), "fields.nope");
        assert_eq!(field_of(admin(patch(&[("Bad Key", json!(1))])).unwrap_err()), "fields.Bad Key");
        assert_eq!(field_of(admin(patch(&[("desk", json!("42"))])).unwrap_err()), "fields.desk");
        assert_eq!(field_of(admin(patch(&[("team", json!(1))])).unwrap_err()), "fields.team");
        assert_eq!(field_of(admin(patch(&[("started", json!("2026-13-01"))])).unwrap_err()), "fields.started");
        assert_eq!(field_of(admin(patch(&[("started", json!("2026-1-01"))])).unwrap_err()), "fields.started");
        let (ok, changed) = admin(patch(&[("started", json!("2026-02-28")), ("desk", json!(4.5)), ("team", json!("x"))])).unwrap();
        assert_eq!(keys(&ok), ["desk", "started", "team"]);
        assert_eq!(changed, ["desk", "started", "team"]);
        let big = json!("x".repeat(MAX_FIELDS_BYTES));
        assert_eq!(field_of(admin(patch(&[("team", big)])).unwrap_err()), "fields");
        let kinds = [
            (FieldType::Bool, json!(true), json!("true")),
            (FieldType::Object, json!({"a": 1}), json!([1])),
            (FieldType::List, json!([1, "a"]), json!({"a": 1})),
        ];
        for (kind, good, bad) in kinds {
            let defs = [def("f", kind, Visibility::Public, false)];
            assert!(apply_fields(&FieldValues::new(), patch(&[("f", good)]), &defs, FieldWriter::Administrator).is_ok());
            assert!(apply_fields(&FieldValues::new(), patch(&[("f", bad)]), &defs, FieldWriter::Administrator).is_err());
        }
    }

    #[test]
    fn a_user_writes_only_writable_fields_and_never_learns_hidden_ones() {
        let (stored, defs) = (values(), defs());
        let patch = |pairs: &[(&str, Value)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect::<FieldValues>();
        let owner = |p| apply_fields(&stored, p, &defs, FieldWriter::Owner);
        // What the user sees, sent back as it is: no change.
        let (same, changed) = owner(visible_fields(&stored, &defs, Viewer::Owner)).unwrap();
        assert_eq!((same, changed.len()), (stored.clone(), 0));
        // Writable: set and removed; the rest stays, hidden values included.
        let (after, changed) = owner(patch(&[("desk", json!(7)), ("pronouns", Value::Null)])).unwrap();
        assert_eq!(changed, ["desk", "pronouns"]);
        assert_eq!(after["desk"], json!(7));
        assert!(!after.contains_key("pronouns"));
        assert_eq!((after["salary_band"].clone(), after["retired"].clone()), (stored["salary_band"].clone(), stored["retired"].clone()));
        // Not writable by the user: refused with the setting's name.
        let e = owner(patch(&[("team", json!("sales"))])).unwrap_err();
        assert_eq!(e.code(), "profile.field_disabled");
        // A private value is refused whatever is sent, the stored value too: no probing it.
        assert_eq!(owner(patch(&[("salary_band", json!("b3"))])).unwrap_err().code(), "profile.field_disabled");
        assert_eq!(owner(patch(&[("salary_band", json!("a1"))])).unwrap_err().code(), "profile.field_disabled");
        // An undefined key is unknown to the user even when a value is stored under it.
        assert_eq!(owner(patch(&[("retired", json!("kept after its definition went"))])).unwrap_err().code(), "validation");
        // The administrator sees it, so sending it back unchanged is fine.
        assert!(apply_fields(&stored, patch(&[("retired", stored["retired"].clone())]), &defs, FieldWriter::Administrator).is_ok());
    }

    #[test]
    fn definitions_parse_and_are_checked() {
        let parsed: FieldDef = serde_json::from_value(json!({"name": "desk", "type": "number", "visibility": "self"})).unwrap();
        assert_eq!((parsed.kind, parsed.visibility, parsed.writable_by_user), (FieldType::Number, Visibility::Owner, false));
        let default: FieldDef = serde_json::from_value(json!({"name": "x", "type": "string"})).unwrap();
        assert_eq!(default.visibility, Visibility::Private, "hidden unless said otherwise");
        assert!(serde_json::from_value::<FieldDef>(json!({"name": "x", "type": "blob"})).is_err());
        assert!(check_defs(&defs()).is_ok());
        assert!(
            check_defs(&[def("a", FieldType::Bool, Visibility::Public, false), def("a", FieldType::Bool, Visibility::Public, false)])
                .is_err()
        );
        assert!(check_defs(&[def("9a", FieldType::Bool, Visibility::Public, false)]).is_err());
    }
}
