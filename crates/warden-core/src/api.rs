//! Wire types of the REST API (`/api/v1`): request bodies, pages and problems.
//!
//! Read models ([`crate::model::User`] and friends) are sent as they are; this module holds
//! what only exists on the wire. Server and client both use these types.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::access::AuthMethod;
use crate::credential::Secret;
use crate::model::{ApiToken, EmailInput, PhoneInput, PostalAddress, Subject};

/// One page of a list; pass `next_cursor` back as `cursor` for the next.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page<T> {
    pub items: Vec<T>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The largest page a list returns; a larger `limit` is refused, not cut.
pub const MAX_PAGE_SIZE: u32 = 1000;

/// Reads a page size: at most [`MAX_PAGE_SIZE`] (`0` or none: the default, 100).
fn page_limit<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    let limit = Option::<u32>::deserialize(deserializer)?;
    match limit {
        Some(n) if n > MAX_PAGE_SIZE => Err(serde::de::Error::custom(format!("limit must be at most {MAX_PAGE_SIZE}, not {n}"))),
        _ => Ok(limit),
    }
}

/// `?prefix=&cursor=&limit=` of the directory lists (`/users`, `/service-accounts`, `/groups`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only names starting with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// `next_cursor` of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Page size (default 100, at most 1000).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "page_limit")]
    #[cfg_attr(feature = "openapi", param(maximum = 1000))]
    pub limit: Option<u32>,
}

/// Query of `GET /groups/{group}/members`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct MembersQuery {
    /// Members of nested groups too, each flagged `direct` or not.
    #[serde(default)]
    pub effective: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Page size (default 100, at most 1000).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "page_limit")]
    #[cfg_attr(feature = "openapi", param(maximum = 1000))]
    pub limit: Option<u32>,
}

/// Filters of `GET /audit`; newest events first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Actor name or id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Target name or id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Action prefix, e.g. `group.` or `user.create`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Only events at or after this time (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::timestamp::option")]
    #[cfg_attr(feature = "openapi", param(value_type = Option<String>))]
    pub since: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Page size (default 100, at most 1000).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "page_limit")]
    #[cfg_attr(feature = "openapi", param(maximum = 1000))]
    pub limit: Option<u32>,
}

/// Reply of `POST /groups/{group}/members`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Added {
    /// Members that were not members before.
    pub added: u64,
}

/// RFC 9457 problem details, with Warden's stable `code`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The line of an imported file that was refused (`POST /api/v1/import`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
}

/// `?include_credentials=` of `GET /api/v1/export`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// Include password hashes (idm_superuser only).
    #[serde(default)]
    pub include_credentials: bool,
}

/// `?dry_run=` of `POST /api/v1/import`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// Check every line against the directory and write nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// What an import did, counted in records (header and end lines excluded).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ImportSummary {
    pub dry_run: bool,
    /// Lines read, header and end included.
    pub lines: u64,
    /// Batches applied (each one transaction, one revision and one audit event if it changed
    /// anything).
    pub batches: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// The last revision committed, if the import changed anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub password: Secret,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginResponse {
    /// The session token: send it as `Authorization: Bearer …`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub token: Secret,
    #[serde(with = "crate::timestamp")]
    pub expires_at: OffsetDateTime,
    pub idle_timeout_secs: i64,
    pub account: Subject,
}

/// Query of `GET /sessions`: one user's sessions and API tokens, or every session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
pub struct SessionsQuery {
    /// Only this user's (name or id); their API tokens come on the first page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `next_cursor` of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Page size (default 100, at most 1000).
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "page_limit")]
    #[cfg_attr(feature = "openapi", param(maximum = 1000))]
    pub limit: Option<u32>,
}

/// What kind of bearer credential a [`SessionInfo`] describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    Session,
    ApiToken,
}

/// A live session or API token as its owner and operators see it: never the token or its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionInfo {
    pub id: Uuid,
    pub kind: CredentialKind,
    /// Whose it is.
    pub account: Subject,
    #[serde(with = "crate::timestamp")]
    pub created_at: OffsetDateTime,
    /// A session's last request (recorded at most once a minute), a token's last use.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::timestamp::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// The absolute end (absent: a token that never expires).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::timestamp::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// When it ends if unused: a session's `expires_at` or the end of its idle timeout,
    /// whichever comes first.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::timestamp::option")]
    pub ends_at: Option<OffsetDateTime>,
    /// A session's write window (after re-authentication), while open.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::timestamp::option")]
    pub elevated_until: Option<OffsetDateTime>,
    /// The client address that signed in (as the server saw it, after trusted proxies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The `User-Agent` that signed in (at most 256 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// How the sign-in was proved: `password`, `password+totp`, `password+backup_code`,
    /// `passkey`, `password+passkey`; `api_token` for a token.
    pub auth_strength: String,
    /// A token's label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The credential this request was made with.
    #[serde(default)]
    pub current: bool,
}

/// Answer of `DELETE /users/{user}/sessions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionsRevoked {
    /// How many sessions ended.
    pub sessions_ended: u64,
}

/// The caller, as the server sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WhoAmI {
    pub account: Subject,
    pub method: AuthMethod,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<Uuid>,
    /// Warden permissions the caller holds.
    pub permissions: Vec<String>,
    /// An administrator requires a new password: until it is set, nothing else is allowed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub password_change_required: bool,
    /// How the caller's session was authenticated (`password`, `password+totp`,
    /// `password+backup_code`); absent for other credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_strength: Option<String>,
    /// The MFA policy requires a second factor of this account and this credential proved
    /// none: until one is enrolled and proved (`POST /auth/reauth` with its code), nothing
    /// but enrolling is allowed (`403 auth.mfa_enrolment_required`).
    #[serde(default)]
    pub mfa_enrolment_required: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birthday: Option<Date>,
    /// E-mail addresses: strings or `{"address","primary"}`; the one flagged primary is
    /// primary, else the first.
    #[serde(default)]
    pub emails: Vec<EmailInput>,
    /// Phone numbers: strings or `{"number","primary"}`; as for `emails`.
    #[serde(default)]
    pub phones: Vec<PhoneInput>,
    #[serde(default)]
    pub addresses: Vec<PostalAddress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::timestamp::option")]
    pub valid_from: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::timestamp::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// A plaintext password (hashed with argon2id) or a bcrypt hash to import.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub password: Option<Secret>,
    /// Roles to bind to the new user in `tenant`, in the same transaction; the caller needs
    /// the right to create each binding.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// The tenant of `roles` (default `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Additional fields (`[[user_field]]`), by key, each of its defined type.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub fields: BTreeMap<String, serde_json::Value>,
}

/// A partial update of a user: absent fields stay as they are; `null` clears an optional field.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    #[serde(default, skip_serializing_if = "Option::is_none", with = "double_option")]
    pub display_name: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "double_option")]
    pub first_name: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "double_option")]
    pub last_name: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "double_option")]
    pub birthday: Option<Option<Date>>,
    /// Replaces every address: strings or `{"address","primary"}` as `GET` returns them; the
    /// one flagged primary is primary, else the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emails: Option<Vec<EmailInput>>,
    /// Replaces every number: strings or `{"number","primary"}`; as for `emails`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phones: Option<Vec<PhoneInput>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Vec<PostalAddress>>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "double_option")]
    pub avatar_url: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "double_option_time")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub valid_from: Option<Option<OffsetDateTime>>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "double_option_time")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub expires_at: Option<Option<OffsetDateTime>>,
    /// Additional fields to change, by key: a value sets the field, `null` removes it; fields
    /// not named stay as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub fields: Option<BTreeMap<String, serde_json::Value>>,
}

/// `PATCH /self/profile`: a partial update of the caller's own profile, in the shape `GET`
/// returns it. Absent fields stay as they are; `null` clears an optional one; lists are
/// replaced whole.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateProfile {
    #[serde(default, skip_serializing_if = "Option::is_none", with = "double_option")]
    pub display_name: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "double_option")]
    pub first_name: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "double_option")]
    pub last_name: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "double_option")]
    pub birthday: Option<Option<Date>>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "double_option")]
    pub avatar_url: Option<Option<String>>,
    /// Replaces every address: strings or `{"address","primary"}` as `GET` returns them. An
    /// address already held keeps its `verified`; a new one is unverified until its link is
    /// followed, and cannot become primary in place of a verified one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emails: Option<Vec<EmailInput>>,
    /// Replaces every number (refused when `profile.disable_phone_numbers` is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phones: Option<Vec<PhoneInput>>,
    /// Replaces every postal address (refused when `profile.disable_addresses` is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Vec<PostalAddress>>,
    /// Additional fields to change: only those defined `writable_by_user`; `null` removes one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub fields: Option<BTreeMap<String, serde_json::Value>>,
}

/// `PUT /self/password`: the current password and the new one.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub current: Secret,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub new: Secret,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Rename {
    pub name: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateServiceAccount {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The user or group that manages it: `user:alice`, `group:ops`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_by: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateGroup {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Members to add: `user:alice`, `sa:ci-bot`, `group:staff`, bare names or ids.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AddMembers {
    pub members: Vec<String>,
}

/// A member as listed: the subject, and for effective listings whether it is direct.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemberEntry {
    #[serde(flatten)]
    pub subject: Subject,
    pub direct: bool,
}

/// What `GET /users/{user}` and `GET /service-accounts/{sa}` may add to the account
/// (`?expand=groups,roles`): where an administrator looks first for "what is this account in,
/// and what may it do".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
pub struct ExpandQuery {
    /// Comma-separated: `groups` (direct and effective), `roles` (bound directly or through
    /// groups).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expand: Option<String>,
}

/// Which expansions a request asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expansion {
    pub groups: bool,
    pub roles: bool,
}

impl ExpandQuery {
    /// Reads `expand`; a word other than `groups` and `roles` is refused, so that a typo does
    /// not silently return less than was asked for.
    pub fn expansion(&self) -> Result<Expansion, crate::CoreError> {
        let mut out = Expansion::default();
        for word in self.expand.as_deref().unwrap_or("").split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match word {
                "groups" => out.groups = true,
                "roles" => out.roles = true,
                other => {
                    return Err(crate::CoreError::validation("expand", format!("{other:?} cannot be expanded; use groups and/or roles")));
                }
            }
        }
        Ok(out)
    }
}

/// An account with the expansions asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Expanded<T> {
    #[serde(flatten)]
    pub account: T,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<AccountGroups>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<HeldRole>>,
}

/// The groups an account is in, by name: those it is a member of itself, and every group
/// that reaches it through nesting as well.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountGroups {
    pub direct: Vec<String>,
    pub effective: Vec<String>,
}

/// A role that reaches an account through one binding: held by the account itself or by a
/// group it is (effectively) in (`via`, as `user:alice` or `group:ops`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HeldRole {
    pub role: String,
    pub tenant: String,
    /// Where the binding applies (none: the whole tenant).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    pub via: String,
    pub binding: Uuid,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateApiToken {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Lifetime such as `90d`, or `never` (unless the server sets
    /// `auth.api_token_max_lifetime`); none means the server's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<String>,
    /// Whether the token may change things (default: read-only).
    #[serde(default)]
    pub read_write: bool,
    /// Limit the token to these of the account's roles (default: all of them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
}

/// `PUT /users/{user}/password`: a credential reset by an administrator.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetPassword {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub password: Secret,
}

/// `POST /users/{user}/recovery-link`: how long the link stays valid (`24h`; default and
/// maximum from the server's configuration).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateRecoveryLink {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<String>,
}

/// A recovery link: `{public_url}/recover?token=…`, shown once.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecoveryLink {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub url: Secret,
    #[serde(with = "crate::timestamp")]
    pub expires_at: OffsetDateTime,
}

/// `POST /registration-tokens`: how many registrations a new token allows, for how long, and
/// which roles (in which tenant) each registered user gets.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateRegistrationToken {
    /// How many people may register with it (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_usage: Option<u32>,
    /// Its lifetime, e.g. `"24h"` (default 24 hours, at most 30 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// The tenant of `roles` (default `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

/// A registration token as listed (the token itself is shown once, at creation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegistrationTokenInfo {
    pub id: Uuid,
    pub tenant: String,
    pub roles: Vec<String>,
    pub max_uses: u32,
    pub uses_left: u32,
    #[serde(with = "crate::timestamp")]
    pub created_at: OffsetDateTime,
    #[serde(with = "crate::timestamp")]
    pub expires_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::timestamp::option")]
    pub revoked_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<Uuid>,
}

/// A new registration token: `token` is shown only here.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedRegistrationToken {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub token: Secret,
    #[serde(flatten)]
    pub info: RegistrationTokenInfo,
}

/// `POST /oidc/clients`: a new OpenID Connect client. Only `client_id` and `redirect_uris`
/// are required.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateOidcClient {
    /// The client's name, which is its OAuth `client_id` (the rules of every name).
    pub client_id: String,
    /// What people are shown (default: `client_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// A client that cannot keep a secret (a native or single-page app): no secret is made.
    #[serde(default)]
    pub public: bool,
    /// Trusted by the operator: no consent screen.
    #[serde(default)]
    pub first_party: bool,
    /// One or more, compared exactly: `https://…`, `http://localhost[:port]/…`,
    /// `http://127.0.0.1[:port]/…` or a private-use scheme (`com.example.app:/cb`).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post_logout_redirect_uris: Vec<String>,
    /// The scopes it may ask for (default `openid profile email`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Opt-in claim sets: `groups`, `roles`, `permissions`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<String>,
    /// Where the `permissions` claim is computed (default `default`); the tenant must exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions_tenant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions_namespace: Option<String>,
    /// `RS256` (default), `ES256` or `EdDSA`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_alg: Option<String>,
    /// The service account a confidential client acts as in the client-credentials grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
}

/// `PATCH /oidc/clients/{client}`: what to change; an absent field stays as it is. An empty
/// string clears `permissions_tenant`, `permissions_namespace` and `service_account`. A
/// client's `client_id` and whether it is public do not change.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateOidcClient {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_party: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uris: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_logout_redirect_uris: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions_tenant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions_namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_alg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
}

/// A new client: `client_secret` (a confidential client's, `wdc_…`) is shown only here.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedOidcClient {
    #[serde(flatten)]
    pub client: crate::oidc::OidcClient,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub client_secret: Option<Secret>,
}

/// One of the OpenID Connect provider's signing keys, as administrators see it (never its
/// private half).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OidcSigningKey {
    /// The key id (`kid`) tokens name.
    pub kid: String,
    /// `RS256`, `ES256` or `EdDSA`.
    pub alg: String,
    #[serde(with = "crate::timestamp")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub created_at: OffsetDateTime,
    /// When it stopped signing; it stays published until its tokens have expired.
    #[serde(default, with = "crate::timestamp::option", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub retired_at: Option<OffsetDateTime>,
}

/// An application a person signed in to through Warden's OpenID Connect provider: what they
/// allowed it, and the grants (live sign-ins) it holds. Never a token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConnectedApplication {
    /// The client's `client_id`.
    pub client_id: String,
    pub display_name: String,
    /// Trusted by the operator: it never asks for consent, so none is recorded.
    pub first_party: bool,
    /// The scopes the person allowed it (empty: no consent recorded).
    pub consented_scopes: Vec<String>,
    #[serde(default, with = "crate::timestamp::option", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub consented_at: Option<OffsetDateTime>,
    /// Its live grants, oldest first: each ends with its session, or when withdrawn.
    pub grants: Vec<ApplicationGrant>,
}

/// One grant of a [`ConnectedApplication`]: a redeemed sign-in, its access and refresh tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApplicationGrant {
    pub id: Uuid,
    /// The session it is bound to (it ends with it).
    pub session_id: Uuid,
    pub scopes: Vec<String>,
    /// How the sign-in was proved (`password`, `password+totp`, `passkey`, …).
    pub auth_strength: String,
    #[serde(with = "crate::timestamp")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub created_at: OffsetDateTime,
    /// When its refresh tokens stop working at the latest.
    #[serde(with = "crate::timestamp")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub expires_at: OffsetDateTime,
}

/// What disconnecting an application did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApplicationWithdrawn {
    pub client_id: String,
    /// Grants revoked: every token they issued stops working on every node.
    pub grants_revoked: u64,
}

/// What a key rotation did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RotatedOidcKeys {
    /// The new keys' ids, one per algorithm.
    pub created: Vec<String>,
    /// The keys that stopped signing.
    pub retired: Vec<String>,
}

/// A confidential client's new secret, shown only here; the old one no longer works.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OidcClientSecret {
    pub client_id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub client_secret: Secret,
}

/// `POST /register`: someone registering themselves (with a registration token in `token`
/// mode, without one in `public` mode).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub token: Option<Secret>,
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub password: Secret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
}

/// `POST /auth/recover`: a recovery link's token and the new password.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RecoverRequest {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub token: Secret,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub password: Secret,
}

/// `POST /auth/reauth`: the same credential as the login, to open a write window.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReauthRequest {
    /// The password; without one, a passkey alone (`ceremony` and `passkey`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub password: Option<Secret>,
    /// For an account with a second factor: a TOTP code, or
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp: Option<String>,
    /// a backup code, or
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub backup_code: Option<Secret>,
    /// the answer to the ceremony `POST /api/v1/auth/reauth/passkey` started (its key in
    /// `ceremony`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub passkey: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub ceremony: Option<Secret>,
}

impl ReauthRequest {
    /// A password (and no second factor).
    pub fn password(password: &str) -> Self {
        Self { password: Some(Secret::new(password)), totp: None, backup_code: None, passkey: None, ceremony: None }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReauthResponse {
    /// Writes are allowed through this session until then.
    #[serde(with = "crate::timestamp")]
    pub elevated_until: OffsetDateTime,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateRole {
    /// The role's id; generated from the name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Default: `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(default)]
    pub permissions: Vec<String>,
}

/// Adds and removes permissions of a dynamic role.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateRole {
    #[serde(default)]
    pub add: Vec<String>,
    #[serde(default)]
    pub remove: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `?tenant=` of role listings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct RoleQuery {
    /// Only roles of this tenant (built-in roles are listed in every tenant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateBinding {
    /// Role id.
    pub role: String,
    /// `user:alice`, `sa:ci-bot`, `group:ops`, a bare name or an id.
    pub subject: String,
    /// Default: `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Limit the binding to these namespaces (none: the whole tenant).
    #[serde(default)]
    pub namespaces: Vec<String>,
}

/// Filters of binding listings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct BindingQuery {
    /// Only bindings of this subject (`user:alice`, `group:ops`, …), directly bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Only bindings of this role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

/// One permission to check, optionally in a namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CheckItem {
    pub permission: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// `POST /check`: may `subject` do each of `checks` in `tenant`? A single check may be given
/// as top-level `permission` and `namespace`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    /// `user:alice`, `sa:ci-bot`, a bare name or an id.
    pub subject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckItem>,
    /// Include the chain that granted each decision, or why nothing did.
    #[serde(default)]
    pub explain: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckResult {
    pub permission: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub allowed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<crate::authz::Explanation>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CheckResponse {
    pub subject: Subject,
    pub tenant: String,
    /// The directory revision the decisions were made at.
    pub revision: i64,
    pub results: Vec<CheckResult>,
}

/// `?tenant=&namespace=` of resolved-permission listings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams), into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct PermissionsQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// What an account (or group) holds in a tenant and namespace.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResolvedPermissions {
    pub subject: Subject,
    pub tenant: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Leaf permissions.
    pub permissions: Vec<String>,
    /// Roles bound to the subject directly or through groups, in any tenant.
    pub roles: Vec<String>,
    /// Groups the subject is effectively a member of.
    pub groups: Vec<String>,
}

/// A role's resolved (leaf) permissions.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RolePermissions {
    pub role: String,
    pub permissions: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedApiToken {
    /// The token; shown this once and never again.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub token: Secret,
    #[serde(flatten)]
    pub info: ApiToken,
}

/// Serde helper: distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[allow(clippy::option_option, clippy::ref_option)]
    pub fn serialize<T: Serialize, S: Serializer>(v: &Option<Option<T>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(inner) => inner.serialize(s),
            None => s.serialize_none(),
        }
    }

    #[allow(clippy::option_option)]
    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

mod double_option_time {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::OffsetDateTime;

    #[allow(clippy::option_option, clippy::ref_option)]
    pub fn serialize<S: Serializer>(v: &Option<Option<OffsetDateTime>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(Some(t)) => s.serialize_str(&crate::timestamp::format(*t)),
            _ => s.serialize_none(),
        }
    }

    #[allow(clippy::option_option)]
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<OffsetDateTime>>, D::Error> {
        let raw = Option::<String>::deserialize(d)?;
        match raw {
            None => Ok(Some(None)),
            Some(s) => crate::timestamp::parse(&s).map(|t| Some(Some(t))).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_distinguishes_absent_from_null() {
        let patch: UpdateUser = serde_json::from_str(r#"{"display_name": null, "first_name": "Al"}"#).unwrap();
        assert_eq!(patch.display_name, Some(None));
        assert_eq!(patch.first_name, Some(Some("Al".into())));
        assert_eq!(patch.last_name, None);
        let round: UpdateUser = serde_json::from_str(&serde_json::to_string(&patch).unwrap()).unwrap();
        assert_eq!(round.display_name, Some(None));
        assert!(serde_json::from_str::<UpdateUser>(r#"{"nickname": "x"}"#).is_err());
    }
}

/// `POST /api/v1/invitations`: mails each address a one-use link to register, bound to that
/// address and giving `roles` in `tenant`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateInvitations {
    pub emails: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// The tenant of `roles` (default `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// How long the links work, e.g. `"72h"` (default `mail.invitation_ttl`, at most 30 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
}

/// An invitation as listed; its link is only ever in the mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Invitation {
    pub id: Uuid,
    pub email: String,
    pub tenant: String,
    pub roles: Vec<String>,
    /// Whether someone registered with it.
    pub used: bool,
    #[serde(with = "crate::timestamp")]
    pub created_at: OffsetDateTime,
    #[serde(with = "crate::timestamp")]
    pub expires_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::timestamp::option")]
    pub revoked_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<Uuid>,
}

/// What `POST /api/v1/invitations` made, and where their mail goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedInvitations {
    pub invitations: Vec<Invitation>,
    /// Where the server sends mail: `outbox DIR` or `smtp HOST:PORT`.
    pub mail: String,
}

/// A mail queued for an account (an account notice).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MailQueued {
    /// The address written to.
    pub to: String,
    /// Where the server sends mail: `outbox DIR` or `smtp HOST:PORT`.
    pub mail: String,
}

/// `POST /api/v1/auth/forgot-password`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ForgotPassword {
    /// The account's name or its primary e-mail address.
    pub name_or_email: String,
}

/// The one answer to `POST /api/v1/auth/forgot-password`, whatever the account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ForgotPasswordAccepted {
    pub message: String,
}

/// What `require-password-change` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PasswordChangeRequired {
    /// The users now required to choose a new password.
    pub accounts: Vec<String>,
    /// How many of them were mailed a link (those with a verified primary address).
    pub mailed: u64,
    /// Sessions ended.
    pub sessions_ended: u64,
    /// Where the server sends mail: `outbox DIR` or `smtp HOST:PORT`.
    pub mail: String,
}

/// `POST /api/v1/auth/verify-email`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerifyEmail {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub token: Secret,
}

/// Asks for a new verification link for one of the caller's own addresses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResendVerification {
    pub address: String,
}

/// An address now verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EmailVerified {
    pub account: String,
    pub address: String,
}

/// What `POST /api/v1/auth/login` answers: a session, or the second step.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum LoginOutcome {
    Session(LoginResponse),
    SecondFactor(SecondFactorRequired),
}

/// The password was right; a second factor must follow (`POST /api/v1/auth/login/mfa`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SecondFactorRequired {
    /// Always `mfa`.
    pub next: String,
    /// What the account can answer with: `totp`, `backup_code`, `passkey`.
    pub methods: Vec<String>,
    /// The pending sign-in (a one-time token, valid for minutes): send it back with the code.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub state: Secret,
    #[serde(with = "crate::timestamp")]
    pub expires_at: OffsetDateTime,
    /// When `methods` has `passkey`: the options for `navigator.credentials.get()` (WebAuthn
    /// JSON) whose answer goes back as `passkey`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub passkey_options: Option<serde_json::Value>,
}

/// `POST /api/v1/auth/login/mfa`: one of `totp`, `backup_code` or `passkey`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SecondFactorAnswer {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub state: Secret,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub backup_code: Option<Secret>,
    /// The `PublicKeyCredential` that `navigator.credentials.get(passkey_options)` returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub passkey: Option<serde_json::Value>,
}

/// `POST /api/v1/self/totp`: an enrolment's parameters (all optional).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BeginTotp {
    /// `SHA1` (the default: what authenticator apps expect) or `SHA256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
    /// 6 (the default) or 8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digits: Option<u32>,
}

/// A TOTP enrolment: the secret (shown this once) and the URI an authenticator app reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TotpEnrolment {
    /// The shared secret, base32.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub secret: Secret,
    /// `otpauth://totp/…`, for a QR code.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub otpauth_uri: Secret,
    /// The URI as a QR code, an SVG document (black modules on white, no script, no external
    /// reference) for a page to show inline or as an image.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub qr_svg: Secret,
    pub algorithm: String,
    pub digits: u32,
    pub period_secs: u32,
}

/// `POST /api/v1/self/totp/confirm`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TotpCode {
    pub code: String,
}

/// New backup codes, shown this once.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackupCodes {
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub codes: Vec<Secret>,
}

/// The caller's second factors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SecondFactorStatus {
    /// A confirmed TOTP credential.
    pub totp: bool,
    /// An enrolment waiting for its first code.
    pub totp_pending: bool,
    pub backup_codes_left: u32,
    /// Registered passkeys.
    #[serde(default)]
    pub passkeys: u32,
}

/// `GET /api/v1/users/{user}/credentials`: what a user can sign in with, for the help desk and
/// the console. Never a secret, a hash or a key: only which kinds exist, and passkeys' names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserCredentials {
    /// Whether a password is set.
    pub password: bool,
    /// The user must choose a new password before anything else.
    pub password_change_required: bool,
    /// A confirmed TOTP authenticator.
    pub totp: bool,
    /// A TOTP enrolment waiting for its first code.
    pub totp_pending: bool,
    pub backup_codes_left: u32,
    pub passkeys: Vec<PasskeyInfo>,
    /// Until when wrong codes have locked the user's second factor, if they have.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::timestamp::option")]
    pub second_factor_locked_until: Option<OffsetDateTime>,
}

/// A WebAuthn ceremony started: what the browser (or authenticator) needs, and the key that
/// finishes it. The challenge itself stays on the server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PasskeyChallenge {
    /// The ceremony's key (valid for minutes, usable once): send it back with the answer.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub ceremony: Secret,
    /// The options for `navigator.credentials.create()` (registration) or `.get()` (sign-in),
    /// as WebAuthn's JSON: `{"publicKey": {…}}`, binary fields base64url.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub options: serde_json::Value,
    #[serde(with = "crate::timestamp")]
    pub expires_at: OffsetDateTime,
}

/// `POST /api/v1/self/passkeys/finish`: the authenticator's new credential.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FinishPasskeyRegistration {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub ceremony: Secret,
    /// What to call it (`"work laptop"`); default `passkey N`.
    #[serde(default)]
    pub name: Option<String>,
    /// The `PublicKeyCredential` that `navigator.credentials.create()` returned, as JSON.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub credential: serde_json::Value,
}

/// One of the caller's passkeys (nothing of the key itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PasskeyInfo {
    pub id: Uuid,
    pub name: String,
    #[serde(with = "crate::timestamp")]
    pub created_at: OffsetDateTime,
    #[serde(default, with = "crate::timestamp::option")]
    pub last_used_at: Option<OffsetDateTime>,
}

/// `PATCH /api/v1/self/passkeys/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RenamePasskey {
    pub name: String,
}

/// `POST /api/v1/auth/passkey/finish`: the answer to a passwordless sign-in ceremony.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PasskeySignIn {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub ceremony: Secret,
    /// The `PublicKeyCredential` that `navigator.credentials.get()` returned, as JSON.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub credential: serde_json::Value,
}
