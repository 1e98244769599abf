//! Who may do what to Warden itself.
//!
//! Every operation of the management API names the [`Permission`] it needs; a [`Principal`]
//! carries the permissions its account holds. Today these come from the break-glass rule
//! (`admin` and `idm_admin` hold every `warden:*` permission, other accounts none); the
//! role-based rules replace [`grants_for`] without touching services or handlers.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::CoreError;
use crate::model::{ADMIN_ID, IDM_ADMIN_ID, Subject};

/// A permission over Warden's own API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Permission {
    #[serde(rename = "warden:users:read")]
    UsersRead,
    #[serde(rename = "warden:users:write")]
    UsersWrite,
    #[serde(rename = "warden:service_accounts:read")]
    ServiceAccountsRead,
    #[serde(rename = "warden:service_accounts:write")]
    ServiceAccountsWrite,
    #[serde(rename = "warden:groups:read")]
    GroupsRead,
    #[serde(rename = "warden:groups:write")]
    GroupsWrite,
    #[serde(rename = "warden:credentials:write")]
    CredentialsWrite,
    #[serde(rename = "warden:audit:read")]
    AuditRead,
}

impl Permission {
    pub const ALL: [Permission; 8] = [
        Self::UsersRead,
        Self::UsersWrite,
        Self::ServiceAccountsRead,
        Self::ServiceAccountsWrite,
        Self::GroupsRead,
        Self::GroupsWrite,
        Self::CredentialsWrite,
        Self::AuditRead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::UsersRead => "warden:users:read",
            Self::UsersWrite => "warden:users:write",
            Self::ServiceAccountsRead => "warden:service_accounts:read",
            Self::ServiceAccountsWrite => "warden:service_accounts:write",
            Self::GroupsRead => "warden:groups:read",
            Self::GroupsWrite => "warden:groups:write",
            Self::CredentialsWrite => "warden:credentials:write",
            Self::AuditRead => "warden:audit:read",
        }
    }
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

/// An authenticated caller and what it may do.
#[derive(Debug, Clone)]
pub struct Principal {
    pub account: Subject,
    pub method: AuthMethod,
    /// The session or API token used, if any.
    pub credential_id: Option<Uuid>,
    pub permissions: BTreeSet<Permission>,
}

impl Principal {
    pub fn new(account: Subject, method: AuthMethod, credential_id: Option<Uuid>) -> Self {
        let permissions = grants_for(account.id);
        Self { account, method, credential_id, permissions }
    }

    /// Succeeds if the principal holds `permission`.
    pub fn require(&self, permission: Permission) -> Result<(), CoreError> {
        if self.permissions.contains(&permission) {
            Ok(())
        } else {
            Err(CoreError::Forbidden { permission: permission.as_str().to_owned() })
        }
    }
}

/// The permissions an account holds over Warden's API.
pub fn grants_for(account: Uuid) -> BTreeSet<Permission> {
    if account == ADMIN_ID || account == IDM_ADMIN_ID { Permission::ALL.into_iter().collect() } else { BTreeSet::new() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Name;
    use crate::model::SubjectKind;

    fn principal(id: Uuid) -> Principal {
        let account = Subject { kind: SubjectKind::User, id, name: Name::parse("x").unwrap() };
        Principal::new(account, AuthMethod::Session, None)
    }

    #[test]
    fn break_glass_accounts_hold_everything_and_others_nothing() {
        for p in Permission::ALL {
            assert!(principal(ADMIN_ID).require(p).is_ok());
            assert!(principal(IDM_ADMIN_ID).require(p).is_ok());
            let err = principal(Uuid::from_u128(42)).require(p).unwrap_err();
            assert_eq!(err.code(), "forbidden");
        }
    }

    #[test]
    fn permission_strings_match_serde() {
        for p in Permission::ALL {
            assert_eq!(serde_json::to_value(p).unwrap(), serde_json::Value::String(p.as_str().into()));
        }
    }
}
