//! The directory: users, service accounts, groups and the subjects that can be members.
//!
//! These are the validated shapes the rest of Warden passes around. Constructors check every
//! rule that does not need the database (uniqueness and existence are the store's job).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::{CoreError, Name};

/// Well-known id of the break-glass `admin` account.
pub const ADMIN_ID: Uuid = Uuid::from_u128(0x0000_0000_0000_7000_8000_0000_0000_0001);
/// Well-known id of the break-glass `idm_admin` account.
pub const IDM_ADMIN_ID: Uuid = Uuid::from_u128(0x0000_0000_0000_7000_8000_0000_0000_0002);

/// The break-glass accounts, created at start-up without a credential.
pub const BREAK_GLASS: [(Uuid, &str, &str); 2] =
    [(ADMIN_ID, "admin", "Break-glass system administrator"), (IDM_ADMIN_ID, "idm_admin", "Break-glass identity administrator")];

/// Whether an account is one of the break-glass service accounts: the only service accounts
/// that sign in with a password (set from the host alone), and that cannot be deleted,
/// renamed, disabled or given API tokens.
pub fn is_break_glass(id: Uuid) -> bool {
    BREAK_GLASS.iter().any(|(bg, _, _)| *bg == id)
}

/// What kind of thing a subject is. Accounts (users and service accounts) share one name
/// space; groups have their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    User,
    ServiceAccount,
    Group,
}

impl SubjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::ServiceAccount => "service_account",
            Self::Group => "group",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(Self::User),
            "service_account" | "sa" | "service-account" => Some(Self::ServiceAccount),
            "group" => Some(Self::Group),
            _ => None,
        }
    }

    /// The short prefix used in member references (`user:`, `sa:`, `group:`).
    pub fn prefix(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::ServiceAccount => "sa",
            Self::Group => "group",
        }
    }
}

impl fmt::Display for SubjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A resolved subject: what it is, its id and its current name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Subject {
    pub kind: SubjectKind,
    pub id: Uuid,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub name: Name,
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.prefix(), self.name)
    }
}

/// How a caller names a subject: `user:alice`, `sa:ci-bot`, `group:staff`, a bare name, or an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectRef {
    pub kind: Option<SubjectKind>,
    pub key: NameOrId,
}

/// Why a reference named no single subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unresolved {
    Nothing,
    Several,
}

impl SubjectRef {
    /// The one subject among `candidates` (those with the reference's name or id) that this
    /// reference names, after its kind, if it gives one: the one home of "exactly one, else not
    /// found or ambiguous", whether the candidates come from the snapshot or the store.
    pub fn single(&self, candidates: impl IntoIterator<Item = Subject>) -> Result<Subject, Unresolved> {
        let mut matching = candidates.into_iter().filter(|s| self.kind.is_none_or(|k| k == s.kind));
        match (matching.next(), matching.next()) {
            (Some(one), None) => Ok(one),
            (None, _) => Err(Unresolved::Nothing),
            (Some(_), Some(_)) => Err(Unresolved::Several),
        }
    }

    pub fn parse(raw: &str) -> Result<Self, CoreError> {
        let (kind, rest) = match raw.split_once(':') {
            Some((prefix, rest)) => {
                let kind = SubjectKind::parse(prefix).ok_or_else(|| {
                    CoreError::validation("member", format!("unknown kind {prefix:?} in {raw:?}; use user:, sa: or group:"))
                })?;
                (Some(kind), rest)
            }
            None => (None, raw),
        };
        Ok(Self { kind, key: NameOrId::parse(rest)? })
    }
}

impl fmt::Display for SubjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Some(kind) => write!(f, "{}:{}", kind.prefix(), self.key),
            None => write!(f, "{}", self.key),
        }
    }
}

/// An object named by the caller either by its id or by its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameOrId {
    Id(Uuid),
    Name(Name),
}

impl NameOrId {
    pub fn parse(raw: &str) -> Result<Self, CoreError> {
        match Uuid::parse_str(raw.trim()) {
            Ok(id) => Ok(Self::Id(id)),
            Err(_) => Name::parse(raw).map(Self::Name),
        }
    }
}

impl fmt::Display for NameOrId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id(id) => write!(f, "{id}"),
            Self::Name(name) => write!(f, "{name}"),
        }
    }
}

/// An e-mail address of a user; exactly one of a user's addresses is primary.
///
/// `verified` says that the address is known to reach the user: an administrator set it
/// (unless they said otherwise), or the user followed a link mailed to it (an invitation, an
/// e-mail verification). Only a verified primary address signs in in place of the name or
/// receives recovery mail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EmailAddress {
    pub address: String,
    pub primary: bool,
    #[serde(default)]
    pub verified: bool,
}

impl EmailAddress {
    /// An address, not primary, not verified.
    pub fn new(address: impl Into<String>) -> Self {
        Self { address: address.into(), primary: false, verified: false }
    }
}

/// A phone number of a user; exactly one of a user's numbers is primary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PhoneNumber {
    pub number: String,
    pub primary: bool,
}

/// A labelled postal address (`billing`, `delivery`, `home`, …).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PostalAddress {
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

/// The personal data of a user. Service accounts have none.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Profile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birthday: Option<Date>,
    #[serde(default)]
    pub emails: Vec<EmailAddress>,
    #[serde(default)]
    pub phones: Vec<PhoneNumber>,
    #[serde(default)]
    pub addresses: Vec<PostalAddress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar_url: Option<String>,
    /// Additional fields (`[[user_field]]`), by key; each reader sees those its visibility
    /// admits ([`crate::fields::visible_fields`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub fields: BTreeMap<String, serde_json::Value>,
}

/// A person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub id: Uuid,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub name: Name,
    #[serde(flatten)]
    pub profile: Profile,
    pub disabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::timestamp::option")]
    pub valid_from: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::timestamp::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// Whether a password is set (the hash itself never leaves the server).
    pub has_password: bool,
    #[serde(with = "crate::timestamp")]
    pub created_at: OffsetDateTime,
    #[serde(with = "crate::timestamp")]
    pub updated_at: OffsetDateTime,
}

/// Whether an account may authenticate at `now`: not disabled and inside its validity window
/// (from `valid_from` inclusive to `expires_at` exclusive). The one home of this rule: the
/// model and the store's credential lookups both ask it.
pub fn is_active_at(disabled: bool, valid_from: Option<OffsetDateTime>, expires_at: Option<OffsetDateTime>, now: OffsetDateTime) -> bool {
    !disabled && valid_from.is_none_or(|from| from <= now) && expires_at.is_none_or(|exp| now < exp)
}

impl User {
    /// Whether the account may authenticate at `now`.
    pub fn is_active(&self, now: OffsetDateTime) -> bool {
        is_active_at(self.disabled, self.valid_from, self.expires_at, now)
    }

    pub fn subject(&self) -> Subject {
        Subject { kind: SubjectKind::User, id: self.id, name: self.name.clone() }
    }
}

/// An application: no personal data, authenticates with API tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceAccount {
    pub id: Uuid,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub name: Name,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The user or group responsible for this service account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_by: Option<Subject>,
    pub disabled: bool,
    #[serde(with = "crate::timestamp")]
    pub created_at: OffsetDateTime,
    #[serde(with = "crate::timestamp")]
    pub updated_at: OffsetDateTime,
}

impl ServiceAccount {
    pub fn subject(&self) -> Subject {
        Subject { kind: SubjectKind::ServiceAccount, id: self.id, name: self.name.clone() }
    }
}

/// A set of accounts and groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Group {
    pub id: Uuid,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub name: Name,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Number of direct members.
    pub member_count: u64,
    #[serde(with = "crate::timestamp")]
    pub created_at: OffsetDateTime,
    #[serde(with = "crate::timestamp")]
    pub updated_at: OffsetDateTime,
}

impl Group {
    pub fn subject(&self) -> Subject {
        Subject { kind: SubjectKind::Group, id: self.id, name: self.name.clone() }
    }
}

/// An API token's public facts; the secret is shown once at creation and stored only hashed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiToken {
    pub id: Uuid,
    pub account_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(with = "crate::timestamp")]
    pub created_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::timestamp::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::timestamp::option")]
    pub last_used_at: Option<OffsetDateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::timestamp::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// Whether the token may change things; read-only otherwise.
    #[serde(default)]
    pub read_write: bool,
    /// The roles the token is limited to; `None`: all of the account's roles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
}

impl ApiToken {
    /// Whether the token may be used at `now`.
    pub fn is_usable(&self, now: OffsetDateTime) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|exp| now < exp)
    }
}

/// One entry of the audit log: who changed what, when, at which revision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEvent {
    pub id: Uuid,
    pub revision: i64,
    #[serde(with = "crate::timestamp")]
    pub at: OffsetDateTime,
    /// The account that acted; `None` for the server itself (start-up, host recovery).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_name: Option<String>,
    /// What happened, e.g. `user.create`, `group.member.add`, `auth.login`.
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_name: Option<String>,
    /// Extra facts about the change. Never holds secrets.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub details: serde_json::Value,
}

// ---------------------------------------------------------------------------------------------
// Validation of free-form fields.

const MAX_TEXT: usize = 256;
const MAX_URL: usize = 2048;
const MAX_LIST: usize = 16;

/// Checks a short free-text field: bounded, no control characters. Empty becomes `None`.
pub fn clean_text(field: &'static str, value: Option<String>, max: usize) -> Result<Option<String>, CoreError> {
    let Some(value) = value else { return Ok(None) };
    let value = value.trim().to_owned();
    if value.is_empty() {
        return Ok(None);
    }
    if value.chars().count() > max {
        return Err(CoreError::validation(field, format!("must be at most {max} characters")));
    }
    if value.chars().any(char::is_control) {
        return Err(CoreError::validation(field, "must not contain control characters"));
    }
    Ok(Some(value))
}

pub(crate) fn check_email(address: &str) -> Result<String, CoreError> {
    let address = address.trim();
    let valid = address.len() <= 254
        && !address.chars().any(|c| c.is_whitespace() || c.is_control())
        && address.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.') && !domain.contains('@')
        });
    if valid { Ok(address.to_owned()) } else { Err(CoreError::validation("email", format!("{address:?} is not an e-mail address"))) }
}

fn check_phone(number: &str) -> Result<String, CoreError> {
    let number = number.trim();
    let digits = number.chars().filter(char::is_ascii_digit).count();
    let valid = (3..=20).contains(&digits)
        && number.len() <= 32
        && number.chars().enumerate().all(|(i, c)| c.is_ascii_digit() || matches!(c, ' ' | '-' | '(' | ')' | '.') || (c == '+' && i == 0));
    if valid { Ok(number.to_owned()) } else { Err(CoreError::validation("phone", format!("{number:?} is not a phone number"))) }
}

fn check_url(value: Option<String>) -> Result<Option<String>, CoreError> {
    let Some(url) = clean_text("avatar_url", value, MAX_URL)? else { return Ok(None) };
    if !(url.starts_with("https://") || url.starts_with("http://")) || url.contains(char::is_whitespace) {
        return Err(CoreError::validation("avatar_url", "must be an http(s) URL"));
    }
    Ok(Some(url))
}

/// An e-mail address as a client may send it: a plain string, or the
/// `{"address","primary","verified"}` shape that `GET` returns, so that what was read can be
/// written back unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum EmailInput {
    Plain(String),
    Flagged(FlaggedEmail),
}

/// An e-mail address with its flags as a client sends them; `verified` left out means "as the
/// sender is trusted to say" (see [`emails_from_input`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FlaggedEmail {
    pub address: String,
    #[serde(default)]
    pub primary: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
}

impl From<EmailAddress> for EmailInput {
    fn from(e: EmailAddress) -> Self {
        Self::Flagged(FlaggedEmail { address: e.address, primary: e.primary, verified: Some(e.verified) })
    }
}

/// A phone number as a client may send it: a plain string or `{"number","primary"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum PhoneInput {
    Plain(String),
    Flagged(PhoneNumber),
}

impl From<String> for EmailInput {
    fn from(address: String) -> Self {
        Self::Plain(address)
    }
}

impl From<&str> for EmailInput {
    fn from(address: &str) -> Self {
        Self::Plain(address.to_owned())
    }
}

impl From<String> for PhoneInput {
    fn from(number: String) -> Self {
        Self::Plain(number)
    }
}

impl From<&str> for PhoneInput {
    fn from(number: &str) -> Self {
        Self::Plain(number.to_owned())
    }
}

/// The values of a list as sent, primary first: the one flagged primary if one is, else the
/// first. More than one flagged primary is refused (`field` names the list).
fn flagged_primary_first(values: Vec<(String, bool)>, field: &'static str) -> Result<Vec<String>, CoreError> {
    if values.iter().filter(|(_, primary)| *primary).count() > 1 {
        return Err(CoreError::validation(field, "only one entry may be primary"));
    }
    Ok(primary_first(values))
}

/// Who sends a list of addresses, which decides what `verified` becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailSource {
    /// An administrator: an address counts as verified unless sent with `"verified": false`.
    Administrator,
    /// The person themselves (registration, self-service): never verified by saying so.
    Owner,
}

/// The addresses as sent (strings or flagged objects), validated, with one primary; `source`
/// decides which count as verified.
pub fn emails_from_input(input: Vec<EmailInput>, source: EmailSource) -> Result<Vec<EmailAddress>, CoreError> {
    let trusted = source == EmailSource::Administrator;
    let list: Vec<EmailAddress> = input
        .into_iter()
        .map(|e| match e {
            EmailInput::Plain(address) => EmailAddress { address, primary: false, verified: trusted },
            EmailInput::Flagged(e) => {
                EmailAddress { address: e.address, primary: e.primary, verified: trusted && e.verified.unwrap_or(true) }
            }
        })
        .collect();
    if list.iter().filter(|e| e.primary).count() > 1 {
        return Err(CoreError::validation("email", "only one entry may be primary"));
    }
    checked_emails(list)
}

/// Validates a list of addresses whose flags are already decided: the one flagged primary
/// (else the first) comes first and is the only primary; `verified` is kept.
pub fn checked_emails(mut list: Vec<EmailAddress>) -> Result<Vec<EmailAddress>, CoreError> {
    if list.len() > MAX_LIST {
        return Err(CoreError::validation("email", format!("at most {MAX_LIST} addresses")));
    }
    if let Some(pos) = list.iter().position(|e| e.primary) {
        let primary = list.remove(pos);
        list.insert(0, primary);
    }
    let mut out: Vec<EmailAddress> = Vec::with_capacity(list.len());
    for (i, e) in list.into_iter().enumerate() {
        let address = check_email(&e.address)?;
        if out.iter().any(|o| o.address.eq_ignore_ascii_case(&address)) {
            return Err(CoreError::validation("email", format!("{address:?} is given twice")));
        }
        out.push(EmailAddress { address, primary: i == 0, verified: e.verified });
    }
    Ok(out)
}

/// A person's own list of addresses, checked against what the account holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerEmails {
    pub emails: Vec<EmailAddress>,
    /// The addresses the list adds, none of them verified: each needs a verification mail.
    pub unverified_added: Vec<String>,
}

/// The addresses a person sends for their own account (self-service): an address the account
/// already holds keeps its `verified` flag, a new one is unverified whatever was sent (no one
/// verifies an address by saying so). An unverified address cannot take the primary place from
/// a verified one ([`CoreError::EmailUnverified`]); it may stay primary where it already was, or
/// become primary where no verified address was.
pub fn owner_emails(stored: &[EmailAddress], input: Vec<EmailInput>) -> Result<OwnerEmails, CoreError> {
    let mut emails = emails_from_input(input, EmailSource::Owner)?;
    let mut unverified_added = Vec::new();
    for email in &mut emails {
        match stored.iter().find(|s| s.address.eq_ignore_ascii_case(&email.address)) {
            Some(held) => email.verified = held.verified,
            None => unverified_added.push(email.address.clone()),
        }
    }
    let before = stored.iter().find(|e| e.primary);
    if let (Some(primary), Some(before)) = (emails.first(), before)
        && !primary.verified
        && before.verified
        && !primary.address.eq_ignore_ascii_case(&before.address)
    {
        return Err(CoreError::EmailUnverified { address: primary.address.clone() });
    }
    Ok(OwnerEmails { emails, unverified_added })
}

/// The numbers as sent (strings or flagged objects), validated, with one primary.
pub fn phones_from_input(input: Vec<PhoneInput>) -> Result<Vec<PhoneNumber>, CoreError> {
    let values = input
        .into_iter()
        .map(|p| match p {
            PhoneInput::Plain(number) => (number, false),
            PhoneInput::Flagged(p) => (p.number, p.primary),
        })
        .collect();
    phones_in_order(&flagged_primary_first(values, "phone")?)
}

/// Builds the primary-flagged list from addresses given in order (the first is primary),
/// none of them verified.
pub fn emails_in_order(addresses: &[String]) -> Result<Vec<EmailAddress>, CoreError> {
    checked_emails(addresses.iter().map(EmailAddress::new).collect())
}

/// Builds the primary-flagged list from numbers given in order: the first is primary.
pub fn phones_in_order(numbers: &[String]) -> Result<Vec<PhoneNumber>, CoreError> {
    if numbers.len() > MAX_LIST {
        return Err(CoreError::validation("phone", format!("at most {MAX_LIST} numbers")));
    }
    let mut out: Vec<PhoneNumber> = Vec::with_capacity(numbers.len());
    for (i, raw) in numbers.iter().enumerate() {
        let number = check_phone(raw)?;
        if out.iter().any(|p| p.number == number) {
            return Err(CoreError::validation("phone", format!("{number:?} is given twice")));
        }
        out.push(PhoneNumber { number, primary: i == 0 });
    }
    Ok(out)
}

fn check_addresses(addresses: Vec<PostalAddress>) -> Result<Vec<PostalAddress>, CoreError> {
    if addresses.len() > MAX_LIST {
        return Err(CoreError::validation("addresses", format!("at most {MAX_LIST} addresses")));
    }
    addresses
        .into_iter()
        .map(|a| {
            let label = clean_text("addresses.label", Some(a.label), 32)?
                .ok_or_else(|| CoreError::validation("addresses.label", "every postal address needs a label"))?;
            Ok(PostalAddress {
                label,
                street: clean_text("addresses.street", a.street, MAX_TEXT)?,
                locality: clean_text("addresses.locality", a.locality, MAX_TEXT)?,
                region: clean_text("addresses.region", a.region, MAX_TEXT)?,
                postal_code: clean_text("addresses.postal_code", a.postal_code, 32)?,
                country: clean_text("addresses.country", a.country, 64)?,
            })
        })
        .collect()
}

/// Validates every field of a profile; `today` bounds the birthday.
pub fn validate_profile(profile: Profile, today: Date) -> Result<Profile, CoreError> {
    if profile.birthday.is_some_and(|birthday| birthday > today) {
        return Err(CoreError::validation("birthday", "must not be in the future"));
    }
    let phones: Vec<String> = primary_first(profile.phones.into_iter().map(|p| (p.number, p.primary)).collect());
    Ok(Profile {
        display_name: clean_text("display_name", profile.display_name, MAX_TEXT)?,
        first_name: clean_text("first_name", profile.first_name, MAX_TEXT)?,
        last_name: clean_text("last_name", profile.last_name, MAX_TEXT)?,
        birthday: profile.birthday,
        emails: checked_emails(profile.emails)?,
        phones: phones_in_order(&phones)?,
        addresses: check_addresses(profile.addresses)?,
        avatar_url: check_url(profile.avatar_url)?,
        fields: profile.fields,
    })
}

/// Orders values so that the one flagged primary comes first (or keeps the order if none is).
fn primary_first(mut values: Vec<(String, bool)>) -> Vec<String> {
    if let Some(pos) = values.iter().position(|(_, primary)| *primary) {
        let primary = values.remove(pos);
        values.insert(0, primary);
    }
    values.into_iter().map(|(v, _)| v).collect()
}

/// Checks that an account's validity window is not empty.
pub fn validate_window(valid_from: Option<OffsetDateTime>, expires_at: Option<OffsetDateTime>) -> Result<(), CoreError> {
    match (valid_from, expires_at) {
        (Some(from), Some(until)) if from >= until => Err(CoreError::validation("expires_at", "must be after valid_from")),
        _ => Ok(()),
    }
}

/// Validates a description (service accounts, groups).
pub fn validate_description(value: Option<String>) -> Result<Option<String>, CoreError> {
    clean_text("description", value, 1024)
}

#[cfg(test)]
mod tests {
    use time::macros::{date, datetime};

    use super::*;

    #[test]
    fn first_email_is_primary_and_duplicates_refused() {
        let emails = emails_in_order(&["a@x.org".into(), "b@x.org".into()]).unwrap();
        assert!(emails[0].primary && !emails[1].primary);
        assert!(emails_in_order(&["a@x.org".into(), "A@x.org".into()]).is_err());
        assert!(emails_in_order(&["not-an-address".into()]).is_err());
        assert!(emails_in_order(&["a b@x.org".into()]).is_err());
    }

    #[test]
    fn a_reference_names_exactly_one_subject() {
        let s = |kind, name: &str| Subject { kind, id: Uuid::now_v7(), name: Name::parse(name).unwrap() };
        let (user, group) = (s(SubjectKind::User, "ops"), s(SubjectKind::Group, "ops"));
        let bare = SubjectRef::parse("ops").unwrap();
        assert_eq!(bare.single([user.clone(), group.clone()]), Err(Unresolved::Several));
        assert_eq!(SubjectRef::parse("group:ops").unwrap().single([user.clone(), group.clone()]), Ok(group.clone()));
        assert_eq!(SubjectRef::parse("sa:ops").unwrap().single([user.clone(), group]), Err(Unresolved::Nothing));
        assert_eq!(bare.single(Vec::new()), Err(Unresolved::Nothing));
        assert_eq!(bare.single([user.clone()]), Ok(user));
    }

    #[test]
    fn an_account_is_active_inside_its_window_only() {
        let t = OffsetDateTime::UNIX_EPOCH + time::Duration::days(1000);
        let day = time::Duration::days(1);
        assert!(is_active_at(false, None, None, t));
        assert!(!is_active_at(true, None, None, t));
        assert!(is_active_at(false, Some(t), Some(t + day), t), "from is inclusive");
        assert!(!is_active_at(false, None, Some(t), t), "expiry is exclusive");
        assert!(!is_active_at(false, Some(t + day), None, t));
    }

    #[test]
    fn lists_read_back_as_written_and_plain_strings_still_count() {
        let read = vec![
            EmailInput::from(EmailAddress { address: "a@x.org".into(), primary: false, verified: false }),
            EmailInput::from(EmailAddress { address: "b@x.org".into(), primary: true, verified: true }),
        ];
        let emails = emails_from_input(read, EmailSource::Administrator).unwrap();
        assert_eq!(emails.iter().map(|e| (e.address.as_str(), e.primary)).collect::<Vec<_>>(), [("b@x.org", true), ("a@x.org", false)]);
        assert_eq!(emails.iter().map(|e| e.verified).collect::<Vec<_>>(), [true, false], "flags read back as written");
        let plain = emails_from_input(vec!["a@x.org".into(), "b@x.org".into()], EmailSource::Administrator).unwrap();
        assert!(plain[0].primary && plain[0].address == "a@x.org");
        let two = vec![
            EmailInput::Flagged(FlaggedEmail { address: "a@x.org".into(), primary: true, verified: None }),
            EmailInput::Flagged(FlaggedEmail { address: "b@x.org".into(), primary: true, verified: None }),
        ];
        assert!(emails_from_input(two, EmailSource::Administrator).is_err(), "two primaries");
        let phones = phones_from_input(vec![
            PhoneInput::Plain("+1 555 0100".into()),
            PhoneInput::Flagged(PhoneNumber { number: "+1 555 0101".into(), primary: true }),
        ])
        .unwrap();
        assert_eq!(phones[0].number, "+1 555 0101");
        let json: Vec<EmailInput> = serde_json::from_str(r#"["a@x.org", {"address":"b@x.org","primary":true}]"#).unwrap();
        assert_eq!(emails_from_input(json, EmailSource::Administrator).unwrap()[0].address, "b@x.org");
    }

    #[test]
    fn only_an_administrator_vouches_for_an_address() {
        let sent = || -> Vec<EmailInput> {
            serde_json::from_str(r#"["a@x.org", {"address":"b@x.org","verified":true}, {"address":"c@x.org","verified":false}]"#).unwrap()
        };
        let by_admin = emails_from_input(sent(), EmailSource::Administrator).unwrap();
        assert_eq!(by_admin.iter().map(|e| e.verified).collect::<Vec<_>>(), [true, true, false]);
        let by_owner = emails_from_input(sent(), EmailSource::Owner).unwrap();
        assert!(by_owner.iter().all(|e| !e.verified), "a person cannot verify an address by saying so");
        // Stored before the flag existed, or sent without it, an address is not verified.
        let stored: EmailAddress = serde_json::from_str(r#"{"address":"a@x.org","primary":true}"#).unwrap();
        assert!(!stored.verified);
    }

    #[test]
    fn a_person_keeps_verification_and_cannot_promote_an_unverified_address() {
        let held = vec![
            EmailAddress { address: "a@x.org".into(), primary: true, verified: true },
            EmailAddress { address: "b@x.org".into(), primary: false, verified: false },
        ];
        let sent = |json: &str| -> Vec<EmailInput> { serde_json::from_str(json).unwrap() };
        // Sent back as read, plus a new address that claims to be verified: it is not.
        let out = owner_emails(&held, sent(r#"["a@x.org", "b@x.org", {"address":"c@x.org","verified":true}]"#)).unwrap();
        assert_eq!(out.emails.iter().map(|e| e.verified).collect::<Vec<_>>(), [true, false, false]);
        assert_eq!(out.unverified_added, ["c@x.org"]);
        // Case does not make an address new.
        assert!(owner_emails(&held, sent(r#"["A@x.org"]"#)).unwrap().unverified_added.is_empty());
        // An unverified address, old or new, cannot take the place of the verified primary.
        for list in [r#"[{"address":"b@x.org","primary":true}, "a@x.org"]"#, r#"["c@x.org", "a@x.org"]"#, r#"["b@x.org"]"#] {
            assert_eq!(owner_emails(&held, sent(list)).unwrap_err().code(), "email.unverified", "{list}");
        }
        // Where the primary was not verified, nothing is lost by changing it.
        let unverified = vec![EmailAddress { address: "typo@x.org".into(), primary: true, verified: false }];
        let fixed = owner_emails(&unverified, sent(r#"["fixed@x.org"]"#)).unwrap();
        assert_eq!((fixed.emails[0].verified, fixed.unverified_added.len()), (false, 1));
        // Removing every address is allowed.
        assert!(owner_emails(&held, Vec::new()).unwrap().emails.is_empty());
    }

    #[test]
    fn flagged_primary_moves_first() {
        let profile = Profile {
            emails: vec![
                EmailAddress { address: "a@x.org".into(), primary: false, verified: false },
                EmailAddress { address: "b@x.org".into(), primary: true, verified: true },
            ],
            ..Profile::default()
        };
        let checked = validate_profile(profile, date!(2026 - 01 - 01)).unwrap();
        assert_eq!(checked.emails[0].address, "b@x.org");
        assert!(checked.emails[0].primary);
        assert_eq!(checked.emails.iter().filter(|e| e.primary).count(), 1);
        assert!(checked.emails[0].verified && !checked.emails[1].verified, "verification stays with its address");
    }

    #[test]
    fn profile_rules() {
        let today = date!(2026 - 01 - 01);
        let future = Profile { birthday: Some(date!(2027 - 01 - 01)), ..Profile::default() };
        assert_eq!(validate_profile(future, today).unwrap_err().code(), "validation");
        let control = Profile { display_name: Some("a\u{7}b".into()), ..Profile::default() };
        assert!(validate_profile(control, today).is_err());
        let url = Profile { avatar_url: Some("javascript:alert(1)".into()), ..Profile::default() };
        assert!(validate_profile(url, today).is_err());
        let unlabelled = Profile { addresses: vec![PostalAddress::default()], ..Profile::default() };
        assert!(validate_profile(unlabelled, today).is_err());
        assert!(phones_in_order(&["+49 30 1234567".into()]).is_ok());
        assert!(phones_in_order(&["12+3".into()]).is_err());
    }

    #[test]
    fn window_and_activity() {
        let from = datetime!(2026-01-01 0:00 UTC);
        let until = datetime!(2026-02-01 0:00 UTC);
        assert!(validate_window(Some(until), Some(from)).is_err());
        let user = User {
            id: Uuid::nil(),
            name: Name::parse("alice").unwrap(),
            profile: Profile::default(),
            disabled: false,
            valid_from: Some(from),
            expires_at: Some(until),
            has_password: true,
            created_at: from,
            updated_at: from,
        };
        assert!(!user.is_active(datetime!(2025-12-31 0:00 UTC)));
        assert!(user.is_active(datetime!(2026-01-15 0:00 UTC)));
        assert!(!user.is_active(until));
        assert!(!User { disabled: true, ..user }.is_active(datetime!(2026-01-15 0:00 UTC)));
    }

    #[test]
    fn subject_refs_parse() {
        let r = SubjectRef::parse("sa:ci-bot").unwrap();
        assert_eq!(r.kind, Some(SubjectKind::ServiceAccount));
        assert_eq!(r.key, NameOrId::Name(Name::parse("ci-bot").unwrap()));
        assert_eq!(SubjectRef::parse("Staff").unwrap().kind, None);
        assert!(SubjectRef::parse("robot:x").is_err());
        assert!(matches!(SubjectRef::parse("group:01890a5d-ac96-774b-bcce-b302099a8057").unwrap().key, NameOrId::Id(_)));
    }
}
