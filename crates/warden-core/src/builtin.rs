//! What every Warden instance has from the start: the break-glass accounts, the built-in roles
//! that govern Warden's own API (`warden:*` permissions), the built-in groups bound to them,
//! and the `default` tenant.
//!
//! Rights come from membership: `admin` is a member of `system_admins` and `idm_admin` of
//! `idm_admins`, so operators can add persons to those groups instead of sharing the
//! break-glass accounts.

use uuid::Uuid;

use crate::model::{ADMIN_ID, BREAK_GLASS, IDM_ADMIN_ID};

pub const DEFAULT_TENANT: &str = "default";

/// A built-in role: its id, what it is for, and the `warden:*` permissions it carries (tree
/// nodes: `warden:users` grants `warden:users:read` and `warden:users:write`).
pub struct BuiltInRole {
    pub id: &'static str,
    pub description: &'static str,
    pub permissions: &'static [&'static str],
}

pub const IDM_SUPERUSER: &str = "idm_superuser";
pub const SYSTEM_ADMIN: &str = "system_admin";
pub const IDM_ADMIN: &str = "idm_admin";
pub const SERVICE_DESK: &str = "service_desk";
pub const AUDITOR: &str = "auditor";
pub const TENANT_ADMIN: &str = "tenant_admin";

pub const BUILT_IN_ROLES: &[BuiltInRole] = &[
    BuiltInRole {
        id: IDM_SUPERUSER,
        description: "Everything, including other administrators' accounts and the built-in groups",
        permissions: &["warden"],
    },
    BuiltInRole {
        id: SYSTEM_ADMIN,
        description: "Configuration, tenants, roles, bindings, OpenID Connect clients and the audit log; not users' personal data or credentials, nor who is in an administrative group",
        permissions: &[
            "warden:config",
            "warden:tenants",
            "warden:roles",
            "warden:bindings",
            "warden:audit",
            "warden:check",
            "warden:groups:read",
            "warden:admin_groups",
            "warden:oidc_clients",
        ],
    },
    BuiltInRole {
        id: IDM_ADMIN,
        description: "Users, service accounts, groups, credential resets and registration",
        permissions: &["warden:users", "warden:service_accounts", "warden:groups", "warden:credentials", "warden:registration"],
    },
    BuiltInRole {
        id: SERVICE_DESK,
        description: "Read users and reset their credentials",
        permissions: &["warden:users:read", "warden:credentials"],
    },
    BuiltInRole {
        id: AUDITOR,
        description: "Read everything, including the audit log; change nothing",
        permissions: &[
            "warden:users:read",
            "warden:service_accounts:read",
            "warden:groups:read",
            "warden:tenants:read",
            "warden:roles:read",
            "warden:bindings:read",
            "warden:audit:read",
            "warden:config:read",
            "warden:oidc_clients:read",
            "warden:check",
        ],
    },
    BuiltInRole {
        id: TENANT_ADMIN,
        description: "Roles and bindings inside the tenant it is bound in",
        permissions: &["warden:roles", "warden:bindings"],
    },
];

/// A built-in group and the built-in role it is bound to in the `default` tenant.
pub struct BuiltInGroup {
    pub id: Uuid,
    pub name: &'static str,
    pub role: &'static str,
    /// The fixed id of its binding.
    pub binding: Uuid,
    pub description: &'static str,
}

pub const SUPERUSERS_GROUP: Uuid = Uuid::from_u128(0x0000_0000_0000_7000_8000_0000_0001_0001);
pub const SYSTEM_ADMINS_GROUP: Uuid = Uuid::from_u128(0x0000_0000_0000_7000_8000_0000_0001_0002);
pub const IDM_ADMINS_GROUP: Uuid = Uuid::from_u128(0x0000_0000_0000_7000_8000_0000_0001_0003);
pub const SERVICE_DESK_GROUP: Uuid = Uuid::from_u128(0x0000_0000_0000_7000_8000_0000_0001_0004);
pub const AUDITORS_GROUP: Uuid = Uuid::from_u128(0x0000_0000_0000_7000_8000_0000_0001_0005);

pub const BUILT_IN_GROUPS: &[BuiltInGroup] = &[
    BuiltInGroup {
        id: SUPERUSERS_GROUP,
        name: "idm_superusers",
        role: IDM_SUPERUSER,
        binding: Uuid::from_u128(0x0000_0000_0000_7000_8000_0000_0002_0001),
        description: "Members hold idm_superuser: every warden:* permission, including other administrators' accounts",
    },
    BuiltInGroup {
        id: SYSTEM_ADMINS_GROUP,
        name: "system_admins",
        role: SYSTEM_ADMIN,
        binding: Uuid::from_u128(0x0000_0000_0000_7000_8000_0000_0002_0002),
        description: "Members hold system_admin: configuration, tenants, roles, bindings and the audit log, not users' personal data",
    },
    BuiltInGroup {
        id: IDM_ADMINS_GROUP,
        name: "idm_admins",
        role: IDM_ADMIN,
        binding: Uuid::from_u128(0x0000_0000_0000_7000_8000_0000_0002_0003),
        description: "Members hold idm_admin: users, service accounts, groups, credential resets and registration",
    },
    BuiltInGroup {
        id: SERVICE_DESK_GROUP,
        name: "service_desk",
        role: SERVICE_DESK,
        binding: Uuid::from_u128(0x0000_0000_0000_7000_8000_0000_0002_0004),
        description: "Members hold service_desk: read users and reset their credentials",
    },
    BuiltInGroup {
        id: AUDITORS_GROUP,
        name: "auditors",
        role: AUDITOR,
        binding: Uuid::from_u128(0x0000_0000_0000_7000_8000_0000_0002_0005),
        description: "Members hold auditor: read-only access to everything, including the audit log",
    },
];

/// The break-glass accounts' memberships: `admin` in `system_admins`, `idm_admin` in `idm_admins`.
pub const BUILT_IN_MEMBERSHIPS: [(Uuid, Uuid); 2] = [(SYSTEM_ADMINS_GROUP, ADMIN_ID), (IDM_ADMINS_GROUP, IDM_ADMIN_ID)];

pub fn built_in_role(id: &str) -> Option<&'static BuiltInRole> {
    BUILT_IN_ROLES.iter().find(|r| r.id == id)
}

pub fn built_in_group(id: Uuid) -> Option<&'static BuiltInGroup> {
    BUILT_IN_GROUPS.iter().find(|g| g.id == id)
}

/// Whether `name` is one Warden itself uses: a break-glass account, a built-in group or a
/// built-in role. No account may take such a name (an account called `idm_admins` or
/// `idm_superuser` would pass for Warden's own in identity headers and logs).
pub fn is_built_in_name(name: &str) -> bool {
    BREAK_GLASS.iter().any(|(_, n, _)| *n == name) || BUILT_IN_GROUPS.iter().any(|g| g.name == name) || built_in_role(name).is_some()
}

pub fn is_built_in_binding(id: Uuid) -> bool {
    BUILT_IN_GROUPS.iter().any(|g| g.binding == id)
}
