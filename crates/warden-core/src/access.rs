//! Who may do what to Warden itself.
//!
//! Every operation of the management API names the [`Permission`] it needs. A [`Principal`]
//! is an authenticated account together with the authorization snapshot it was authenticated
//! against; [`Principal::require`] asks that snapshot, so Warden's own rights come from the
//! same roles, groups and bindings as every application's.
//!
//! A `warden:*` permission held in the `default` tenant applies everywhere; held in another
//! tenant it applies only there (that is how `tenant_admin` is scoped). Write permissions need
//! an elevated session: interactive sessions start read-only and are elevated for a short
//! window by re-authenticating; API tokens are read-only unless created read-write.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::CoreError;
use crate::authz::AuthzIndex;
use crate::builtin::DEFAULT_TENANT;
use crate::model::Subject;

macro_rules! permissions {
    ($($variant:ident = $name:literal, write = $write:literal;)*) => {
        /// A permission over Warden's own API.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        pub enum Permission {
            $(#[serde(rename = $name)] $variant,)*
        }

        impl Permission {
            pub const ALL: &'static [Permission] = &[$(Self::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $name,)* }
            }

            /// Whether the permission changes something (and so needs an elevated session).
            pub fn is_write(self) -> bool {
                match self { $(Self::$variant => $write,)* }
            }
        }
    };
}

permissions! {
    UsersRead = "warden:users:read", write = false;
    UsersWrite = "warden:users:write", write = true;
    ServiceAccountsRead = "warden:service_accounts:read", write = false;
    ServiceAccountsWrite = "warden:service_accounts:write", write = true;
    GroupsRead = "warden:groups:read", write = false;
    GroupsWrite = "warden:groups:write", write = true;
    AdminGroupsWrite = "warden:admin_groups:write", write = true;
    CredentialsWrite = "warden:credentials:write", write = true;
    RegistrationWrite = "warden:registration:write", write = true;
    AuditRead = "warden:audit:read", write = false;
    TenantsRead = "warden:tenants:read", write = false;
    TenantsWrite = "warden:tenants:write", write = true;
    RolesRead = "warden:roles:read", write = false;
    RolesWrite = "warden:roles:write", write = true;
    BindingsRead = "warden:bindings:read", write = false;
    BindingsWrite = "warden:bindings:write", write = true;
    ConfigRead = "warden:config:read", write = false;
    Check = "warden:check", write = false;
    ImportWrite = "warden:import:write", write = true;
    OidcClientsRead = "warden:oidc_clients:read", write = false;
    OidcClientsWrite = "warden:oidc_clients:write", write = true;
    Superuser = "warden:superuser", write = false;
}

/// How the principal proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    Session,
    ApiToken,
    Password,
    /// The server host itself (break-glass recovery over the local socket).
    Host,
}

/// How strongly a session's sign-in proved who it is: the factors presented, stored as text
/// beside the session (`as_str`/`parse`) so that forward-auth rules and operators can judge it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AuthStrength {
    #[serde(rename = "password")]
    Password,
    #[serde(rename = "password+totp")]
    PasswordTotp,
    #[serde(rename = "password+backup_code")]
    PasswordBackupCode,
    #[serde(rename = "passkey")]
    Passkey,
    #[serde(rename = "password+passkey")]
    PasswordPasskey,
}

impl AuthStrength {
    pub const ALL: [Self; 5] = [Self::Password, Self::PasswordTotp, Self::PasswordBackupCode, Self::Passkey, Self::PasswordPasskey];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::PasswordTotp => "password+totp",
            Self::PasswordBackupCode => "password+backup_code",
            Self::Passkey => "passkey",
            Self::PasswordPasskey => "password+passkey",
        }
    }

    /// The stored text back; `None` for text this version does not know.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// The level this strength ranks at, one of [`AuthStrength::LEVELS`]: two factors
    /// (`password+totp`, `password+backup_code`) are `mfa`; a passkey (alone, or after the
    /// password) is `passkey`, which ranks above (possession and a local unlock in one, bound
    /// to the site, so phishing-proof).
    pub fn level(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::PasswordTotp | Self::PasswordBackupCode => "mfa",
            Self::Passkey | Self::PasswordPasskey => "passkey",
        }
    }

    /// The levels a strength ranks at, weakest first: the one ranking that forward-auth rules
    /// (`auth_strength = "mfa"`), the MFA policy and re-authentication all use.
    pub const LEVELS: [&'static str; 3] = ["password", "mfa", "passkey"];

    /// This strength's place among [`AuthStrength::LEVELS`] (higher is stronger).
    pub fn rank(self) -> usize {
        Self::LEVELS.iter().position(|l| *l == self.level()).unwrap_or(0)
    }

    /// Whether two factors were presented, or a passkey (which is possession and a local
    /// unlock at once): what an `auth_strength = "mfa"` rule and the MFA policy ask for.
    pub fn is_mfa(self) -> bool {
        self.rank() >= 1
    }

    /// Whether a proof of this strength is at least as strong as `required` (ranks at least as
    /// high): re-authentication asks this of the session's own strength.
    pub fn satisfies(self, required: Self) -> bool {
        self.rank() >= required.rank()
    }
}

impl std::fmt::Display for AuthStrength {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticated caller, and the snapshot of the rules it is judged by.
#[derive(Debug, Clone)]
pub struct Principal {
    pub account: Subject,
    pub method: AuthMethod,
    /// The session or API token used, if any.
    pub credential_id: Option<Uuid>,
    /// Whether writes are allowed now (an elevated session, a read-write token, a password).
    pub elevated: bool,
    /// An API token limited to some of the account's roles.
    pub token_roles: Option<Vec<String>>,
    /// An administrator requires a new password: every permission is refused until then.
    pub password_change_required: bool,
    /// How the session was authenticated (`None` for other credentials).
    pub auth_strength: Option<AuthStrength>,
    /// The MFA policy requires a second factor of this account and the credential proved
    /// none: every permission is refused until a factor is enrolled and proved
    /// ([`crate::mfa::MfaPolicy::confines`]).
    pub mfa_enrolment_required: bool,
    pub index: Arc<AuthzIndex>,
}

impl Principal {
    /// Succeeds if the principal holds `permission` instance-wide (in the `default` tenant).
    pub fn require(&self, permission: Permission) -> Result<(), CoreError> {
        self.require_in(permission, DEFAULT_TENANT)
    }

    /// Succeeds if the principal holds `permission` in `tenant` (or instance-wide).
    pub fn require_in(&self, permission: Permission, tenant: &str) -> Result<(), CoreError> {
        if self.password_change_required {
            return Err(CoreError::PasswordChangeRequired);
        }
        if self.mfa_enrolment_required {
            return Err(CoreError::MfaEnrolmentRequired);
        }
        if !self.holds_in(permission, tenant) {
            return Err(CoreError::Forbidden { permission: permission.as_str().to_owned() });
        }
        if permission.is_write() && !self.elevated {
            return Err(CoreError::NotElevated);
        }
        Ok(())
    }

    /// Whether the principal holds `permission` in `tenant`, regardless of elevation.
    pub fn holds_in(&self, permission: Permission, tenant: &str) -> bool {
        let roles = self.token_roles.as_deref();
        let subject = (self.account.kind, self.account.id);
        self.index.allows(subject, permission.as_str(), DEFAULT_TENANT, None, roles)
            || (tenant != DEFAULT_TENANT && self.index.allows(subject, permission.as_str(), tenant, None, roles))
    }

    pub fn holds(&self, permission: Permission) -> bool {
        self.holds_in(permission, DEFAULT_TENANT)
    }

    /// The `warden:*` permissions held instance-wide, for `whoami`.
    pub fn warden_permissions(&self) -> Vec<&'static str> {
        Permission::ALL.iter().filter(|p| self.holds(**p)).map(|p| p.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_strengths_round_trip_as_stored_and_as_json() {
        for s in AuthStrength::ALL {
            assert_eq!(AuthStrength::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::Value::String(s.as_str().into()));
        }
        assert_eq!(AuthStrength::parse("api_token"), None);
        assert!(!AuthStrength::Password.is_mfa());
        assert!(AuthStrength::PasswordTotp.is_mfa() && AuthStrength::Passkey.is_mfa());
        assert!(AuthStrength::PasswordBackupCode.is_mfa() && AuthStrength::PasswordPasskey.is_mfa());
        assert!(AuthStrength::Password.rank() < AuthStrength::PasswordTotp.rank());
        assert_eq!(AuthStrength::PasswordTotp.rank(), AuthStrength::PasswordBackupCode.rank(), "two factors rank alike");
        assert!(AuthStrength::PasswordTotp.rank() < AuthStrength::Passkey.rank(), "a passkey is phishing-proof");
        assert_eq!(AuthStrength::PasswordPasskey.rank(), AuthStrength::Passkey.rank(), "a password adds nothing to a passkey's rank");
    }

    #[test]
    fn a_proof_satisfies_what_is_at_most_as_strong() {
        use AuthStrength::*;
        let table = [
            // (proof, required, satisfies)
            (Password, Password, true),
            (Password, PasswordTotp, false),
            (Password, Passkey, false),
            (PasswordTotp, PasswordBackupCode, true),
            (PasswordBackupCode, PasswordPasskey, false),
            (PasswordTotp, Passkey, false),
            (Passkey, PasswordTotp, true),
            (Passkey, Passkey, true),
            (PasswordPasskey, Passkey, true),
            (Passkey, Password, true),
        ];
        for (proof, required, expected) in table {
            assert_eq!(proof.satisfies(required), expected, "{proof} for {required}");
        }
        for s in AuthStrength::ALL {
            assert!(s.satisfies(s), "{s} satisfies itself");
        }
    }

    #[test]
    fn permission_strings_match_serde() {
        for p in Permission::ALL {
            assert_eq!(serde_json::to_value(p).unwrap(), serde_json::Value::String(p.as_str().into()));
            assert!(p.as_str().starts_with("warden:"));
        }
    }
}
