//! The use cases: every change to the directory and every authentication goes through here.
//!
//! A service method authenticates nothing itself (it is handed a [`Principal`]), checks access
//! with [`Principal::require`], validates with `warden-core`, and writes through the
//! [`Store`] in one transaction together with its audit event. Handlers never write around
//! these methods.

pub mod access;
pub mod auth;
pub mod authn;
pub mod client_limit;
pub mod compat;
pub mod credentials;
pub mod directory;
pub mod forward;
pub mod in_flight;
pub mod index;
pub mod mail;
pub mod oidc;
pub mod preferences;
pub mod recovery;
pub mod self_service;
pub mod sessions;
pub mod transfer;

use std::sync::Arc;

use time::OffsetDateTime;
use warden_core::CoreError;
use warden_core::access::Principal;
use warden_store::{Store, StoreError};

use crate::clock::Clock;
use crate::config::{AuthTimes, Config};
use crate::password::{HashError, PasswordHasher};

/// The one error type of the service layer; each variant has a stable code.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Core(#[from] CoreError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0:?} names more than one thing; qualify it as user:NAME, sa:NAME or group:NAME")]
    Ambiguous(String),
    #[error("authentication required")]
    Unauthenticated,
    #[error("the name or password is wrong")]
    AuthFailed,
    #[error("too many failed attempts; try again in {retry_after_secs} seconds")]
    RateLimited { retry_after_secs: i64 },
    #[error("{0} is built in and cannot be {1}")]
    Protected(String, &'static str),
    #[error("users may not change their own name on this server")]
    RenameDisabled,
    /// A credential limited to some roles asked to pass on more than its limit.
    #[error("{0}")]
    TokenScope(String),
    #[error("{0}")]
    Immutable(String),
    /// Roles are not writable through the API; the text says why, in configuration keys.
    #[error("roles cannot be created or changed through the API on this server: {0}")]
    DynamicRolesDisabled(String),
    #[error("internal error")]
    Internal(String),
    /// A bulk import refused one of its lines (the batches before it stay committed).
    #[error("line {line}: {error}")]
    AtLine { line: u64, error: Box<ServiceError> },
    /// A link was asked for, but the server does not know where browsers reach it.
    #[error("this server cannot write links: set server.public_url (the URL browsers reach Warden at)")]
    PublicUrlMissing,
    /// A one-time token that is unknown, expired or already used: one answer for all three.
    #[error("the link is invalid, expired or already used")]
    TokenInvalid,
    /// `POST /register` on a server whose `registration.mode` is `disabled`.
    #[error("this server does not take registrations (registration.mode is disabled)")]
    RegistrationDisabled,
    /// Self-service on a service account: it has no profile and no password of a person.
    #[error("{0} is a service account: self-service is for users (a person's own account)")]
    NotAUser(String),
    /// A password change through something other than a session of the person (an API
    /// token, HTTP Basic, the host).
    #[error("changing one's own password needs a session of the person: log in first (warden login)")]
    SessionRequired,
    /// Re-authentication weaker than the session's sign-in, or without the account's second
    /// factor; the text says what to send.
    #[error("{0}")]
    SecondFactorRequired(String),
    /// A TOTP enrolment while a confirmed authenticator exists: remove it first.
    #[error("a TOTP authenticator is set up already: remove it first")]
    TotpExists,
    /// A configuration the server cannot work with (found at start-up).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A passkey call on a server that does not know its relying party.
    #[error("passkeys are off on this server: set server.public_url (a domain name) or [webauthn] rp_id and origins")]
    PasskeysOff,
    /// A new passkey the verifier refused (the reason is WebAuthn's, never a secret).
    #[error("the passkey was refused: {0}")]
    PasskeyInvalid(String),
    /// A passkey whose credential id is registered already.
    #[error("this passkey is registered already")]
    PasskeyExists,
    /// A secret was asked of a public OpenID Connect client, which has none.
    #[error("{0} is a public client: it has no secret to rotate")]
    PublicClient(String),
    /// The OpenID Connect provider cannot run; the text says which setting it lacks.
    #[error("the OpenID Connect provider is off on this server: {0}")]
    OidcUnavailable(&'static str),
}

impl ServiceError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Core(e) => e.code(),
            Self::Store(e) => e.code(),
            Self::NotFound(_) => "not_found",
            Self::Ambiguous(_) => "member.ambiguous",
            Self::Unauthenticated => "unauthenticated",
            Self::AuthFailed => "auth.failed",
            Self::RateLimited { .. } => "auth.rate_limited",
            Self::Protected(..) => "account.protected",
            Self::RenameDisabled => "rename.disabled",
            Self::TokenScope(_) => "token.scope",
            Self::Immutable(_) => "role.immutable",
            Self::DynamicRolesDisabled(_) => "roles.dynamic_disabled",
            Self::Internal(_) => "internal",
            Self::Config(_) => "config",
            Self::PublicUrlMissing => "config.public_url_missing",
            Self::TokenInvalid => "token.invalid",
            Self::RegistrationDisabled => "registration.disabled",
            Self::TotpExists => "totp.exists",
            Self::SecondFactorRequired(_) => "auth.second_factor_required",
            Self::NotAUser(_) => "self.not_a_user",
            Self::SessionRequired => "self.session_required",
            Self::PasskeysOff => "config.webauthn_missing",
            Self::PasskeyInvalid(_) => "passkey.invalid",
            Self::PasskeyExists => "passkey.exists",
            Self::PublicClient(_) => "oidc_client.public",
            Self::OidcUnavailable(_) => "oidc.unavailable",
            // What the line says or names is wrong: one code for the importer to look for;
            // a refusal of access keeps its own.
            Self::AtLine { error, .. } if error.is_fault_of_the_line() => "import.invalid",
            Self::AtLine { error, .. } => error.code(),
        }
    }

    /// Whether an import line itself is wrong (what it says or names), as opposed to a refusal
    /// of access or a failure of the server, which keep their own codes.
    pub fn is_fault_of_the_line(&self) -> bool {
        match self {
            Self::Core(e) => match e {
                CoreError::Validation { .. } | CoreError::MembershipCycle { .. } | CoreError::EmailUnverified { .. } => true,
                CoreError::Forbidden { .. }
                | CoreError::NotElevated
                | CoreError::HighPrivilege(_)
                | CoreError::PasswordChangeRequired
                | CoreError::MfaEnrolmentRequired
                | CoreError::ProfileFieldDisabled { .. } => false,
            },
            Self::Store(e) => match e {
                StoreError::NameTaken(_) | StoreError::NotFound(_) | StoreError::Cycle { .. } => true,
                StoreError::UnsupportedUrl(_) | StoreError::Database(_) => false,
            },
            Self::NotFound(_) | Self::Ambiguous(_) | Self::Immutable(_) => true,
            Self::AtLine { error, .. } => error.is_fault_of_the_line(),
            Self::Unauthenticated
            | Self::AuthFailed
            | Self::RateLimited { .. }
            | Self::Protected(..)
            | Self::RenameDisabled
            | Self::TokenScope(_)
            | Self::DynamicRolesDisabled(_)
            | Self::Internal(_)
            | Self::Config(_)
            | Self::PublicUrlMissing
            | Self::TokenInvalid
            | Self::RegistrationDisabled
            | Self::TotpExists
            | Self::SecondFactorRequired(_)
            | Self::NotAUser(_)
            | Self::SessionRequired
            | Self::PasskeysOff
            | Self::PasskeyInvalid(_)
            | Self::PasskeyExists
            | Self::PublicClient(_)
            | Self::OidcUnavailable(_) => false,
        }
    }
}

impl ServiceError {
    /// A reference that named no single subject; `what` says what was being looked for.
    pub fn unresolved(why: warden_core::model::Unresolved, what: &str, reference: &warden_core::model::SubjectRef) -> Self {
        match why {
            warden_core::model::Unresolved::Nothing => Self::NotFound(format!("{what} {reference}")),
            warden_core::model::Unresolved::Several => Self::Ambiguous(reference.to_string()),
        }
    }
}

impl From<HashError> for ServiceError {
    fn from(e: HashError) -> Self {
        Self::Internal(e.to_string())
    }
}

pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// What every service shares.
#[derive(Clone)]
pub struct Context {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub hasher: PasswordHasher,
    pub config: Arc<Config>,
    pub times: AuthTimes,
    pub authz: Arc<index::IndexHolder>,
    pub mail: Arc<mail::Mailer>,
    pub passwords: Arc<warden_core::password_policy::PasswordPolicy>,
    /// The passkey verifier; `None` while the relying party is unknown (passkeys off).
    pub webauthn: Option<Arc<webauthn_rs::Webauthn>>,
    /// Who must use a second factor (`auth.mfa_required*`).
    pub mfa: Arc<warden_core::mfa::MfaPolicy>,
}

impl Context {
    /// Checks a password about to be set for the account `name` with `emails` against the
    /// policy; a refusal names `field`.
    pub fn check_new_password(
        &self,
        field: &'static str,
        password: &warden_core::credential::Secret,
        name: &str,
        emails: &[warden_core::model::EmailAddress],
    ) -> Result<()> {
        let emails: Vec<&str> = emails.iter().map(|e| e.address.as_str()).collect();
        let owner = warden_core::password_policy::Owner { name, emails: &emails };
        Ok(self.passwords.check(field, password.expose(), owner)?)
    }

    /// The current time at the store's precision (milliseconds), so that what a service
    /// returns equals what a later read returns.
    pub fn now(&self) -> OffsetDateTime {
        let t = self.clock.now();
        t.replace_nanosecond(t.nanosecond() / 1_000_000 * 1_000_000).unwrap_or(t)
    }

    /// A new session for `account` at `now`, with the configured lifetime and idle timeout,
    /// read-only until re-authentication: what every sign-in creates. It records where the
    /// sign-in came from and how it was proved (`origin`).
    pub fn new_session(&self, account: uuid::Uuid, now: OffsetDateTime, origin: SessionOrigin) -> warden_store::SessionRecord {
        warden_store::SessionRecord {
            id: uuid::Uuid::now_v7(),
            account_id: account,
            created_at: now,
            expires_at: now + time::Duration::seconds(self.times.session_ttl_secs),
            idle_timeout_secs: self.times.session_idle_secs,
            last_seen_at: now,
            elevated_until: None,
            client: origin.client.map(|ip| ip.to_string()),
            user_agent: origin.user_agent.and_then(|raw| clean_user_agent(&raw)),
            auth_strength: origin.strength,
        }
    }

    /// Does what a committed change asks to follow it (wakes the mail sender).
    pub fn committed(&self, change: &warden_store::Change) {
        match change.effect().after_commit {
            warden_core::change::AfterCommit::SendMail => self.mail.wake(),
            warden_core::change::AfterCommit::Nothing => {}
        }
    }

    /// Brings this node's authorization snapshot (and credential cache) up to date after a
    /// change that affects them, then hands back the change's result: the author's next
    /// request sees its own change.
    pub async fn refreshed<T>(&self, value: T) -> Result<T> {
        self.authz.refresh().await?;
        Ok(value)
    }
}

/// Where a sign-in came from and how it was proved: what a new session records so that its
/// owner and operators can judge it later.
#[derive(Debug, Clone)]
pub struct SessionOrigin {
    /// The client address (after trusted proxies).
    pub client: Option<std::net::IpAddr>,
    /// The `User-Agent` header as sent (cleaned when stored).
    pub user_agent: Option<String>,
    pub strength: warden_core::access::AuthStrength,
}

impl SessionOrigin {
    /// A sign-in with a password alone.
    pub fn password(client: Option<std::net::IpAddr>, user_agent: Option<String>) -> Self {
        Self { client, user_agent, strength: warden_core::access::AuthStrength::Password }
    }
}

/// A `User-Agent` as a session keeps it: control characters dropped, surrounding space
/// trimmed, at most [`warden_store::USER_AGENT_MAX_CHARS`] characters; `None` if nothing is left.
/// It is whatever the client claims, so it is shown as text and judged as a hint only.
fn clean_user_agent(raw: &str) -> Option<String> {
    let clean: String = raw.chars().filter(|c| !c.is_control()).collect();
    let clean: String = clean.trim().chars().take(warden_store::USER_AGENT_MAX_CHARS).collect();
    (!clean.is_empty()).then_some(clean)
}

/// Whether the principal is acting on itself (used for the self-service exceptions).
pub fn is_self(principal: &Principal, id: uuid::Uuid) -> bool {
    principal.account.id == id
}

#[cfg(test)]
mod tests {
    /// Architecture invariant: the use cases know no web framework. Forward-auth's answer
    /// carries header names and values (the `http` crate's types), never axum's.
    #[test]
    fn no_service_imports_axum() {
        fn walk(dir: &std::path::Path, needle: &str, found: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).expect("services/ is readable") {
                let path = entry.expect("a directory entry").path();
                if path.is_dir() {
                    walk(&path, needle, found);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).expect("a source file");
                    if text.contains(needle) {
                        found.push(path.display().to_string());
                    }
                }
            }
        }
        // Spelled in two parts so that this file does not find itself.
        let needle = ["ax", "um::"].concat();
        let mut found = Vec::new();
        walk(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/services"), &needle, &mut found);
        assert!(found.is_empty(), "services import axum: {found:?}");
    }
}
