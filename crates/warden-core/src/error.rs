//! The one error type of the rules layer. Each variant has a stable `code` that the HTTP edge
//! puts into problem+json and the CLI prints; codes are part of the public API.

use std::borrow::Cow;

use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    /// Input that breaks a rule; `field` names what was wrong.
    #[error("invalid {field}: {reason}")]
    Validation { field: Cow<'static, str>, reason: String },
    /// Adding `member` to `group` would make a group (indirectly) contain itself.
    #[error("adding group {member} to group {group} would create a membership cycle")]
    MembershipCycle { group: Uuid, member: Uuid },
    /// The principal lacks the permission the operation needs.
    #[error("permission denied: {permission} is required")]
    Forbidden { permission: String },
    /// A write through a read-only session: re-authenticate first.
    #[error("this session is read-only: re-authenticate (warden reauth) to open a write window")]
    NotElevated,
    /// The target holds a built-in administrative role: only an idm_superuser may do this.
    #[error("only an idm_superuser may do this: {0} holds or grants power over Warden")]
    HighPrivilege(String),
    /// An administrator requires a new password: until it is changed, the account may only
    /// change it (and see itself, and sign out).
    #[error("a new password is required: change it (PUT /api/v1/self/password, or the link mailed to you) first")]
    PasswordChangeRequired,
    /// The MFA policy requires a second factor of this account, and the credential proved
    /// none: until one is enrolled and proved, the account may only enrol one (and see itself,
    /// re-authenticate and sign out).
    #[error(
        "this account must use a second factor: re-authenticate (warden reauth), enrol one (warden self totp enrol, \
         then confirm; POST /api/v1/self/totp), then re-authenticate with its code (warden reauth --totp CODE)"
    )]
    MfaEnrolmentRequired,
    /// A person tried to make an address primary before it was verified.
    #[error("{address} is not verified yet: it can become the primary address once its verification link is followed")]
    EmailUnverified { address: String },
    /// A self-service write to what this server lets only administrators change; `setting`
    /// names the configuration that says so.
    #[error("{field} cannot be changed through self-service on this server ({setting})")]
    ProfileFieldDisabled { field: String, setting: String },
}

impl CoreError {
    pub fn validation(field: impl Into<Cow<'static, str>>, reason: impl Into<String>) -> Self {
        Self::Validation { field: field.into(), reason: reason.into() }
    }

    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Validation { .. } => "validation",
            Self::MembershipCycle { .. } => "group.cycle",
            Self::Forbidden { .. } => "forbidden",
            Self::NotElevated => "session.not_elevated",
            Self::HighPrivilege(_) => "account.high_privilege",
            Self::PasswordChangeRequired => "password.change_required",
            Self::MfaEnrolmentRequired => "auth.mfa_enrolment_required",
            Self::EmailUnverified { .. } => "email.unverified",
            Self::ProfileFieldDisabled { .. } => "profile.field_disabled",
        }
    }
}
