//! The bulk transfer format: a whole directory as NDJSON, one [`Record`] a line.
//!
//! An export and an import speak this format, so that a directory can move between servers
//! (and between SQLite and PostgreSQL) and come back identical. Everything is named, never
//! identified by id: ids are each server's own, and an import creates or updates by name.
//! The first line is a [`Record::Header`] with the [`FORMAT_VERSION`]; the last is a
//! [`Record::End`] with the number of records between them, so that a cut-off file is told
//! from a complete one. Records come in an order that an import can replay: tenants, roles,
//! users, groups, service accounts (after groups, since a group may manage one), memberships,
//! bindings.
//!
//! What Warden creates itself (the break-glass accounts, the built-in groups with their
//! bindings and memberships, the `default` tenant) is never in the file: every server has it.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::authz::parse_id;
use crate::builtin::{DEFAULT_TENANT, is_built_in_name};
use crate::credential::Secret;
use crate::model::{self, Profile, SubjectKind};
use crate::namespace::Namespace;
use crate::permission::validate_permission;
use crate::{CoreError, Name};

/// The version of the line format this Warden writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Longest line an import accepts (a user with a full profile is well under 16 KiB).
pub const MAX_LINE_BYTES: usize = 256 * 1024;

/// One line of an export. The `kind` field says which.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    /// The first line: which format follows.
    Header { format: u32 },
    Tenant {
        name: Name,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    },
    /// A dynamic role (built-in and system roles are not stored, so not exported).
    Role {
        id: Name,
        tenant: Name,
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        #[serde(default)]
        permissions: Vec<String>,
    },
    User {
        name: Name,
        #[serde(default)]
        profile: Profile,
        #[serde(default)]
        disabled: bool,
        #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::timestamp::option")]
        valid_from: Option<OffsetDateTime>,
        #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::timestamp::option")]
        expires_at: Option<OffsetDateTime>,
        /// The stored password hash (argon2id PHC string or bcrypt), only in an export asked
        /// for with credentials. Absent on import: the user's password is left as it is.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password_hash: Option<Secret>,
    },
    Group {
        name: Name,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    },
    ServiceAccount {
        name: Name,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        #[serde(default)]
        disabled: bool,
        /// `user:NAME`, `sa:NAME` or `group:NAME`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        manager: Option<String>,
    },
    /// `member` (`user:NAME`, `sa:NAME` or `group:NAME`) is a direct member of `group`.
    Member { group: Name, member: String },
    /// A binding is identified by all of its fields: an import adds it if no binding of the
    /// same role, tenant, subject and namespaces exists.
    Binding {
        role: Name,
        tenant: Name,
        subject: String,
        #[serde(default)]
        namespaces: Vec<String>,
    },
    /// The last line: how many records came between the header and here.
    End { records: u64 },
}

/// A subject named in a record: kind and name (never a bare name or an id, so that a file
/// means the same on every server).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NamedSubject {
    pub kind: SubjectKind,
    pub name: Name,
}

impl NamedSubject {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, CoreError> {
        let (prefix, name) =
            raw.split_once(':').ok_or_else(|| CoreError::validation(field, format!("{raw:?} needs a kind: user:, sa: or group:")))?;
        let kind = SubjectKind::parse(&prefix.trim().to_ascii_lowercase())
            .ok_or_else(|| CoreError::validation(field, format!("unknown kind {prefix:?} in {raw:?}")))?;
        Ok(Self { kind, name: Name::parse(name)? })
    }

    /// How a record writes it: `user:alice`.
    pub fn render(kind: SubjectKind, name: &Name) -> String {
        format!("{}:{name}", kind.prefix())
    }
}

impl std::fmt::Display for NamedSubject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&Self::render(self.kind, &self.name))
    }
}

impl Record {
    /// Reads one line. Errors say what is wrong, for the `import.invalid` answer.
    pub fn parse_line(line: &str) -> Result<Self, CoreError> {
        serde_json::from_str(line).map_err(|e| CoreError::validation("record", e.to_string()))
    }

    /// One line, without its newline.
    pub fn to_line(&self) -> String {
        // A record holds only strings, numbers, lists and maps: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Checks every rule the API applies to the same object that needs no database, and
    /// normalises what the API normalises (so that an imported object reads back as the same
    /// record). `today` judges birthdays.
    pub fn validate(self, today: time::Date) -> Result<Self, CoreError> {
        Ok(match self {
            Self::Header { format } if format != FORMAT_VERSION => {
                return Err(CoreError::validation(
                    "format",
                    format!("version {format} is not {FORMAT_VERSION}, the one this server reads"),
                ));
            }
            Self::Tenant { name, description } => {
                let name = parse_id("tenant", name.as_str())?;
                if name.as_str() == DEFAULT_TENANT {
                    return Err(CoreError::validation("tenant", "the default tenant exists on every server and is not imported"));
                }
                Self::Tenant { name, description: model::validate_description(description)? }
            }
            Self::Role { id, tenant, name, description, permissions } => {
                if is_built_in_name(id.as_str()) {
                    return Err(CoreError::validation("role", format!("{id} is a built-in role")));
                }
                let name =
                    model::clean_text("name", Some(name), 128)?.ok_or_else(|| CoreError::validation("name", "a role needs a name"))?;
                for p in &permissions {
                    validate_permission(p)?;
                }
                let mut seen = std::collections::HashSet::new();
                let permissions = permissions.into_iter().filter(|p| seen.insert(p.clone())).collect();
                Self::Role { id, tenant, name, description: model::validate_description(description)?, permissions }
            }
            Self::User { name, profile, disabled, valid_from, expires_at, password_hash } => {
                not_built_in(&name)?;
                model::validate_window(valid_from, expires_at)?;
                if let Some(hash) = &password_hash {
                    check_hash(hash)?;
                }
                let profile = Profile {
                    emails: model::checked_emails(profile.emails.clone())?,
                    phones: model::phones_in_order(&primary_first(profile.phones.iter().map(|p| (&p.number, p.primary))))?,
                    ..profile
                };
                Self::User { name, profile: model::validate_profile(profile, today)?, disabled, valid_from, expires_at, password_hash }
            }
            Self::Group { name, description } => {
                not_built_in(&name)?;
                Self::Group { name, description: model::validate_description(description)? }
            }
            Self::ServiceAccount { name, description, disabled, manager } => {
                not_built_in(&name)?;
                if let Some(m) = &manager {
                    NamedSubject::parse("manager", m)?;
                }
                Self::ServiceAccount { name, description: model::validate_description(description)?, disabled, manager }
            }
            Self::Member { group, member } => {
                let subject = NamedSubject::parse("member", &member)?;
                Self::Member { group, member: subject.to_string() }
            }
            Self::Binding { role, tenant, subject, namespaces } => {
                let subject = NamedSubject::parse("subject", &subject)?;
                let parsed = namespaces.iter().map(|n| Namespace::parse(n)).collect::<Result<Vec<_>, _>>()?;
                if parsed.len() > 64 {
                    return Err(CoreError::validation("namespaces", "at most 64 per binding"));
                }
                let namespaces = parsed.iter().map(ToString::to_string).collect();
                Self::Binding { role, tenant, subject: subject.to_string(), namespaces }
            }
            other @ (Self::Header { .. } | Self::End { .. }) => other,
        })
    }
}

/// The names Warden uses for its own objects are not imported (they exist on every server).
fn not_built_in(name: &Name) -> Result<(), CoreError> {
    if is_built_in_name(name.as_str()) {
        return Err(CoreError::validation("name", format!("{name} is one of Warden's own names")));
    }
    Ok(())
}

/// The API takes addresses with the primary one first; a record says which one is.
fn primary_first<'a>(items: impl Iterator<Item = (&'a String, bool)>) -> Vec<String> {
    let (primary, rest): (Vec<_>, Vec<_>) = items.partition(|(_, p)| *p);
    primary.into_iter().chain(rest).map(|(v, _)| v.clone()).collect()
}

/// A password hash Warden can verify: argon2id (PHC string) or bcrypt.
fn check_hash(hash: &Secret) -> Result<(), CoreError> {
    let h = hash.expose();
    let bcrypt = h.len() == 60 && ["$2a$", "$2b$", "$2y$"].iter().any(|p| h.starts_with(p));
    if bcrypt || (h.starts_with("$argon2") && h.len() < 512) {
        Ok(())
    } else {
        Err(CoreError::validation("password_hash", "must be an argon2 PHC string or a bcrypt hash"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> time::Date {
        time::macros::date!(2026 - 01 - 01)
    }

    #[test]
    fn lines_read_back_as_themselves() {
        let lines = [
            r#"{"kind":"header","format":1}"#,
            r#"{"kind":"tenant","name":"acme","description":"Acme"}"#,
            r#"{"kind":"role","id":"deployer","tenant":"acme","name":"Deployer","permissions":["deploy:run"]}"#,
            r#"{"kind":"user","name":"alice","profile":{"display_name":"Alice","emails":[{"address":"a@example.org","primary":true,"verified":true}],"phones":[],"addresses":[]},"disabled":false,"expires_at":"2027-01-01T00:00:00.000Z"}"#,
            r#"{"kind":"group","name":"staff"}"#,
            r#"{"kind":"service_account","name":"ci-bot","disabled":true,"manager":"group:staff"}"#,
            r#"{"kind":"member","group":"staff","member":"user:alice"}"#,
            r#"{"kind":"binding","role":"deployer","tenant":"acme","subject":"group:staff","namespaces":["prod"]}"#,
            r#"{"kind":"end","records":6}"#,
        ];
        for line in lines {
            let record = Record::parse_line(line).unwrap().validate(today()).unwrap();
            assert_eq!(record.to_line(), line);
        }
    }

    #[test]
    fn bad_records_say_why() {
        let bad = [
            (r#"{"kind":"header","format":2}"#, "format"),
            (r#"{"kind":"robot","name":"x"}"#, "record"),
            (r#"{"kind":"user","name":"Not A Name!"}"#, "record"),
            (r#"{"kind":"user","name":"admin"}"#, "name"),
            (r#"{"kind":"user","name":"bob","password_hash":"hunter2"}"#, "password_hash"),
            (r#"{"kind":"user","name":"bob","profile":{"birthday":"2030-01-01"}}"#, "birthday"),
            (r#"{"kind":"member","group":"staff","member":"alice"}"#, "member"),
            (r#"{"kind":"tenant","name":"default"}"#, "tenant"),
            (r#"{"kind":"role","id":"idm_admin","tenant":"default","name":"x"}"#, "role"),
            (r#"{"kind":"binding","role":"r","tenant":"t","subject":"group:g","namespaces":["Bad Space"]}"#, "namespace"),
        ];
        for (line, field) in bad {
            let err = Record::parse_line(line).and_then(|r| r.validate(today())).unwrap_err();
            match err {
                CoreError::Validation { field: f, .. } => assert_eq!(f, field, "{line}"),
                other => panic!("{line}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_password_hash_is_never_printed() {
        let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
        let record = Record::parse_line(&format!(r#"{{"kind":"user","name":"bob","password_hash":"{hash}"}}"#)).unwrap();
        assert!(!format!("{record:?}").contains("argon2id"));
        assert!(record.to_line().contains(hash), "but it is written to the file");
    }
}
