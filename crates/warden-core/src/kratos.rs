//! Ory Kratos' identity, as Warden reads and writes it (`/compat/kratos/`), so that scripts
//! written against Kratos' admin API keep working. An identity is a Warden user; this module
//! holds the wire types and the mapping between `traits` and a user, as pure functions, so
//! that the rules (docs/kratos.md) are tested without a server.
//!
//! The mapping, both ways:
//! - `traits.email` (required) ↔ the primary e-mail address;
//! - `traits.username` ↔ the user's name; when absent the name is derived from the address
//!   ([`name_base`], then [`name_candidate`] on a collision);
//! - `traits.name` `{first, last}` ↔ first and last name, or a string ↔ display name;
//! - `traits.phone` ↔ the primary phone number;
//! - `state` `active` / `inactive` ↔ enabled / disabled.
//!
//! Any other trait is refused: Warden has nowhere to keep it, and dropping it silently would
//! let a script believe it was stored.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::credential::Secret;
use crate::model::{User, check_email};
use crate::name::MAX_NAME_LEN;
use crate::{CoreError, Name};

/// The one identity schema Warden serves. Kratos' `schema_id` names a JSON schema for the
/// traits; Warden's traits are fixed, so any other id is refused rather than ignored.
pub const SCHEMA_ID: &str = "default";

/// The traits Warden keeps.
pub const KNOWN_TRAITS: [&str; 4] = ["email", "username", "name", "phone"];

/// Kratos' page size when none is given.
pub const DEFAULT_PAGE_SIZE: u32 = 250;

/// `active` (may sign in) or `inactive` (disabled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum IdentityState {
    Active,
    Inactive,
}

/// `POST /compat/kratos/identities`. Fields of Kratos' body not listed here
/// (`metadata_public`, `verifiable_addresses`, …) are not read.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateIdentity {
    /// Must be `default`.
    pub schema_id: String,
    /// `email` (required), `username`, `name` (`{first, last}` or a string), `phone`.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub traits: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<IdentityState>,
    /// Only `credentials.password.config.password` is read: the first password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<IdentityCredentials>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IdentityCredentials {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<PasswordCredential>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PasswordCredential {
    #[serde(default)]
    pub config: PasswordConfig,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PasswordConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub password: Option<Secret>,
}

/// An identity as Kratos' admin API returns it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Identity {
    pub id: Uuid,
    pub schema_id: String,
    pub state: IdentityState,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub traits: Map<String, Value>,
    pub verifiable_addresses: Vec<VerifiableAddress>,
    pub recovery_addresses: Vec<RecoveryAddress>,
    #[serde(with = "crate::timestamp")]
    pub created_at: OffsetDateTime,
    #[serde(with = "crate::timestamp")]
    pub updated_at: OffsetDateTime,
}

/// An address Kratos would verify: here every e-mail address of the user, with Warden's
/// `verified` flag (`status` `completed` when verified, else `pending`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerifiableAddress {
    pub value: String,
    pub verified: bool,
    pub via: String,
    pub status: String,
}

/// An address a recovery message may go to: the primary e-mail address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecoveryAddress {
    pub value: String,
    pub via: String,
}

/// `?page_size=&page_token=` of `GET /compat/kratos/identities`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
pub struct ListIdentities {
    /// Identities per page (default 250, at most 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 1000))]
    pub page_size: Option<u32>,
    /// The `page_token` of the previous answer's `Link: <…>; rel="next"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_token: Option<String>,
    /// Only the identity that signs in with this identifier: a user name, or a verified
    /// primary e-mail address (compared without regard to ASCII case). One page, no paging.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_identifier: Option<String>,
}

/// `POST /compat/kratos/recovery/link`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateRecoveryLink {
    pub identity_id: Uuid,
    /// A duration such as `1h` or `24h` (one number and one unit); default
    /// `auth.recovery_link_ttl`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<String>,
}

/// The link, shown once.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecoveryLinkResponse {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub recovery_link: Secret,
    #[serde(with = "crate::timestamp")]
    pub expires_at: OffsetDateTime,
}

/// A person's name as a trait: Kratos' presets use `{first, last}`; a plain string is taken as
/// the display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersonName {
    Parts { first: Option<String>, last: Option<String> },
    Display(String),
}

/// The traits of a new identity, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Traits {
    pub email: String,
    pub username: Option<Name>,
    pub name: Option<PersonName>,
    pub phone: Option<String>,
}

fn optional_text(value: &Value, field: &'static str) -> Result<Option<String>, CoreError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s.trim().to_owned())),
        _ => Err(CoreError::validation(field, "must be a string")),
    }
}

/// Reads the traits of a create request. Refuses a missing or malformed e-mail address, a
/// username that breaks Warden's name rules, and traits Warden does not keep.
pub fn traits_from_json(traits: &Map<String, Value>) -> Result<Traits, CoreError> {
    if let Some(unknown) = traits.keys().find(|k| !KNOWN_TRAITS.contains(&k.as_str())) {
        return Err(CoreError::validation(
            "traits",
            format!("Warden does not keep the trait {unknown:?}; it keeps {}", KNOWN_TRAITS.join(", ")),
        ));
    }
    let email = match traits.get("email").map(|v| optional_text(v, "traits.email")).transpose()?.flatten() {
        Some(email) => {
            check_email(&email).map_err(|_| CoreError::validation("traits.email", format!("{email:?} is not an e-mail address")))?
        }
        None => return Err(CoreError::validation("traits.email", "is required")),
    };
    let username = match traits.get("username").map(|v| optional_text(v, "traits.username")).transpose()?.flatten() {
        Some(raw) => Some(Name::parse(&raw).map_err(|e| match e {
            CoreError::Validation { reason, .. } => CoreError::validation("traits.username", reason),
            other => other,
        })?),
        None => None,
    };
    let name = match traits.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => optional_text(&Value::String(s.clone()), "traits.name")?.map(PersonName::Display),
        Some(Value::Object(parts)) => {
            if let Some(other) = parts.keys().find(|k| !matches!(k.as_str(), "first" | "last")) {
                return Err(CoreError::validation("traits.name", format!("takes first and last, not {other:?}")));
            }
            let first = parts.get("first").map(|v| optional_text(v, "traits.name.first")).transpose()?.flatten();
            let last = parts.get("last").map(|v| optional_text(v, "traits.name.last")).transpose()?.flatten();
            (first.is_some() || last.is_some()).then_some(PersonName::Parts { first, last })
        }
        Some(_) => return Err(CoreError::validation("traits.name", "must be {\"first\", \"last\"} or a string")),
    };
    let phone = traits.get("phone").map(|v| optional_text(v, "traits.phone")).transpose()?.flatten();
    Ok(Traits { email, username, name, phone })
}

/// Checks `schema_id`: Warden serves one schema, [`SCHEMA_ID`].
pub fn check_schema_id(schema_id: &str) -> Result<(), CoreError> {
    if schema_id == SCHEMA_ID {
        Ok(())
    } else {
        Err(CoreError::validation("schema_id", format!("Warden serves one identity schema, {SCHEMA_ID:?} (got {schema_id:?})")))
    }
}

/// The name derived from an e-mail address, before collisions: its local part (before the
/// last `@`), lower-cased, each character outside `a-z 0-9 . _ -` replaced by `-`, leading and
/// trailing `. _ -` trimmed, `u` put in front when it would not start with a letter or would
/// read as a UUID, `user` when nothing is left, and cut to 64 characters.
pub fn name_base(email: &str) -> String {
    let local = email.rsplit_once('@').map_or(email, |(local, _)| local).to_lowercase();
    let mapped: String =
        local.chars().map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-') { c } else { '-' }).collect();
    let trimmed = mapped.trim_matches(|c| matches!(c, '.' | '_' | '-'));
    let mut base = if trimmed.is_empty() {
        "user".to_owned()
    } else if !trimmed.starts_with(|c: char| c.is_ascii_lowercase()) || Uuid::parse_str(trimmed).is_ok() {
        format!("u{trimmed}")
    } else {
        trimmed.to_owned()
    };
    cut(&mut base, MAX_NAME_LEN);
    base
}

/// Cuts `text` (ASCII) to at most `len` characters, then trims the separators that would end it.
fn cut(text: &mut String, len: usize) {
    text.truncate(len);
    while text.ends_with(['.', '_', '-']) {
        text.pop();
    }
}

/// The `n`th name to try for `base` (n ≥ 1): `base` itself, then `base-2`, `base-3`, …, the
/// base cut so that the whole stays within 64 characters.
pub fn name_candidate(base: &str, n: u32) -> Result<Name, CoreError> {
    if n <= 1 {
        return Name::parse(base);
    }
    let suffix = format!("-{n}");
    let mut stem = base.to_owned();
    cut(&mut stem, MAX_NAME_LEN - suffix.len());
    Name::parse(&format!("{stem}{suffix}"))
}

/// The identity of a user.
pub fn identity_of(user: &User) -> Identity {
    let profile = &user.profile;
    let mut traits = Map::new();
    if let Some(primary) = profile.emails.first() {
        traits.insert("email".into(), Value::String(primary.address.clone()));
    }
    traits.insert("username".into(), Value::String(user.name.to_string()));
    if profile.first_name.is_some() || profile.last_name.is_some() {
        let mut parts = Map::new();
        if let Some(first) = &profile.first_name {
            parts.insert("first".into(), Value::String(first.clone()));
        }
        if let Some(last) = &profile.last_name {
            parts.insert("last".into(), Value::String(last.clone()));
        }
        traits.insert("name".into(), Value::Object(parts));
    } else if let Some(display) = &profile.display_name {
        traits.insert("name".into(), Value::String(display.clone()));
    }
    if let Some(phone) = profile.phones.first() {
        traits.insert("phone".into(), Value::String(phone.number.clone()));
    }
    let verifiable_addresses = profile
        .emails
        .iter()
        .map(|e| VerifiableAddress {
            value: e.address.clone(),
            verified: e.verified,
            via: "email".into(),
            status: if e.verified { "completed" } else { "pending" }.into(),
        })
        .collect();
    let recovery_addresses =
        profile.emails.iter().filter(|e| e.primary).map(|e| RecoveryAddress { value: e.address.clone(), via: "email".into() }).collect();
    Identity {
        id: user.id,
        schema_id: SCHEMA_ID.into(),
        state: if user.disabled { IdentityState::Inactive } else { IdentityState::Active },
        traits,
        verifiable_addresses,
        recovery_addresses,
        created_at: user.created_at,
        updated_at: user.updated_at,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::model::{EmailAddress, PhoneNumber, Profile};

    fn traits(value: &Value) -> Result<Traits, CoreError> {
        traits_from_json(value.as_object().unwrap())
    }

    fn field(e: CoreError) -> String {
        match e {
            CoreError::Validation { field, .. } => field.into_owned(),
            other => panic!("not a validation error: {other:?}"),
        }
    }

    #[test]
    fn names_come_from_the_local_part() {
        let cases = [
            ("alice@example.com", "alice"),
            ("Alice.Smith@example.com", "alice.smith"),
            ("bob+news@example.com", "bob-news"),
            ("jürgen@example.de", "j-rgen"),
            ("_x_@example.com", "x"),
            ("42@example.com", "u42"),
            ("...@example.com", "user"),
            ("weird\"@\"local@example.com", "weird---local"),
            ("abcdef01-ac96-774b-bcce-b302099a8057@example.com", "uabcdef01-ac96-774b-bcce-b302099a8057"),
        ];
        for (email, name) in cases {
            assert_eq!(name_base(email), name, "{email}");
            assert!(Name::parse(&name_base(email)).is_ok(), "{email}");
        }
        let long = format!("{}-{}@example.com", "a".repeat(63), "b");
        assert_eq!(name_base(&long), "a".repeat(63), "cut to 64, without a trailing '-'");
    }

    #[test]
    fn collisions_count_up_within_the_length_limit() {
        assert_eq!(name_candidate("alice", 1).unwrap().as_str(), "alice");
        assert_eq!(name_candidate("alice", 2).unwrap().as_str(), "alice-2");
        assert_eq!(name_candidate("alice", 13).unwrap().as_str(), "alice-13");
        let long = "a".repeat(64);
        let second = name_candidate(&long, 2).unwrap();
        assert_eq!(second.as_str(), format!("{}-2", "a".repeat(62)));
        assert_eq!(name_candidate(&long, 100).unwrap().as_str().len(), 64);
        let dotted = format!("{}.{}", "a".repeat(61), "bc");
        assert_eq!(name_candidate(&dotted, 2).unwrap().as_str(), format!("{}-2", "a".repeat(61)), "no '.-' join");
    }

    #[test]
    fn traits_map_to_a_profile() {
        let t = traits(&json!({"email": " Alice@Example.com ", "username": "Alice", "name": {"first": "Alice", "last": "Liddell"}, "phone": "+1 555 0100"}))
            .unwrap();
        assert_eq!(t.email, "Alice@Example.com");
        assert_eq!(t.username.unwrap().as_str(), "alice");
        assert_eq!(t.name, Some(PersonName::Parts { first: Some("Alice".into()), last: Some("Liddell".into()) }));
        assert_eq!(t.phone.as_deref(), Some("+1 555 0100"));
        let t = traits(&json!({"email": "bob@example.com", "name": "Bob B."})).unwrap();
        assert_eq!((t.username, t.name), (None, Some(PersonName::Display("Bob B.".into()))));
        assert_eq!(traits(&json!({"email": "c@example.com", "name": {}})).unwrap().name, None);
    }

    #[test]
    fn bad_traits_name_the_field() {
        let cases = [
            (json!({}), "traits.email"),
            (json!({"email": ""}), "traits.email"),
            (json!({"email": 7}), "traits.email"),
            (json!({"email": "not-an-address"}), "traits.email"),
            (json!({"email": "a@b"}), "traits.email"),
            (json!({"email": "a@example.com", "username": "1st"}), "traits.username"),
            (json!({"email": "a@example.com", "name": {"middle": "x"}}), "traits.name"),
            (json!({"email": "a@example.com", "name": 3}), "traits.name"),
            (json!({"email": "a@example.com", "name": {"first": 3}}), "traits.name.first"),
            (json!({"email": "a@example.com", "favourite_colour": "red"}), "traits"),
        ];
        for (value, expected) in cases {
            assert_eq!(field(traits(&value).unwrap_err()), expected, "{value}");
        }
        assert_eq!(field(check_schema_id("customer").unwrap_err()), "schema_id");
        assert!(check_schema_id(SCHEMA_ID).is_ok());
    }

    #[test]
    fn a_user_reads_back_as_an_identity() {
        let at = OffsetDateTime::UNIX_EPOCH;
        let user = User {
            id: Uuid::nil(),
            name: Name::parse("alice").unwrap(),
            profile: Profile {
                first_name: Some("Alice".into()),
                emails: vec![
                    EmailAddress { address: "alice@example.com".into(), primary: true, verified: true },
                    EmailAddress { address: "al@example.org".into(), primary: false, verified: false },
                ],
                phones: vec![PhoneNumber { number: "+1 555 0100".into(), primary: true }],
                ..Profile::default()
            },
            disabled: true,
            valid_from: None,
            expires_at: None,
            has_password: false,
            created_at: at,
            updated_at: at,
        };
        let identity = identity_of(&user);
        assert_eq!(identity.state, IdentityState::Inactive);
        assert_eq!(
            Value::Object(identity.traits),
            json!({"email": "alice@example.com", "username": "alice", "name": {"first": "Alice"}, "phone": "+1 555 0100"})
        );
        assert_eq!(identity.verifiable_addresses.iter().map(|a| a.status.as_str()).collect::<Vec<_>>(), ["completed", "pending"]);
        assert_eq!(identity.recovery_addresses, [RecoveryAddress { value: "alice@example.com".into(), via: "email".into() }]);
    }
}
