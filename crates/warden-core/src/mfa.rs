//! The MFA policy: which accounts must sign in with a second factor, and which credentials
//! are confined until they do.
//!
//! An account *must use MFA* when it holds an administrative role (with
//! `auth.mfa_required_for_admin_roles`, the default), holds one of the listed roles (directly
//! or through groups, in any tenant), or is an effective member of one of the listed groups.
//! Everything is read from the authorization snapshot, so the question costs a few lookups per
//! request and every node answers it alike for the same revision.
//!
//! A credential of such an account that proved no second factor (a session signed in with the
//! password alone, HTTP Basic) is *confined*: it may enrol a factor and prove it, nothing else.
//! Never confined: API tokens (an application's credential, not a sign-in), the host, and the
//! break-glass accounts, which are the way back in when all else fails (while they have no
//! factor they sign in with the password alone; once they have one, sign-in asks for it).

use uuid::Uuid;

use crate::Name;
use crate::access::{AuthMethod, AuthStrength};
use crate::authz::AuthzIndex;
use crate::model::{SubjectKind, is_break_glass};

/// Who must use a second factor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MfaPolicy {
    /// Every holder of an administrative role ([`crate::authz::Role::is_administrative`]).
    pub admin_roles: bool,
    /// Holders of these roles (by id).
    pub roles: Vec<Name>,
    /// Effective members of these groups (by name).
    pub groups: Vec<Name>,
}

impl MfaPolicy {
    /// Whether `account` must use a second factor, by the snapshot `index`.
    pub fn requires(&self, index: &AuthzIndex, account: (SubjectKind, Uuid)) -> bool {
        (self.admin_roles && index.holds_administrative_role(account))
            || self.roles.iter().any(|role| index.holds_role(account, role))
            || self.groups.iter().any(|group| index.is_effective_member_of(account, group))
    }

    /// Whether a credential of `account`, authenticated by `method` (a session with
    /// `strength`), is confined to enrolling a second factor: the account must use one and
    /// the credential proved none. The cheap answers come first: a session that proved a
    /// second factor costs no look-up in the snapshot.
    pub fn confines(&self, index: &AuthzIndex, account: (SubjectKind, Uuid), method: AuthMethod, strength: Option<AuthStrength>) -> bool {
        let proved_none = match method {
            AuthMethod::Session => strength.is_none_or(|s| !s.is_mfa()),
            // Basic carries a password alone.
            AuthMethod::Password => true,
            AuthMethod::ApiToken | AuthMethod::Host => false,
        };
        proved_none && !is_break_glass(account.1) && self.requires(index, account)
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::authz::{Binding, DirectoryGraph, Role, RoleSource};
    use crate::model::Subject;
    use crate::permission::PermissionTree;

    fn name(s: &str) -> Name {
        Name::parse(s).unwrap()
    }

    fn subject(kind: SubjectKind, n: u128, label: &str) -> Subject {
        Subject { kind, id: Uuid::from_u128(n), name: name(label) }
    }

    fn role(id: &str, permissions: &[&str]) -> Role {
        Role {
            id: name(id),
            tenant: Some(name("default")),
            name: id.into(),
            description: None,
            permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
            source: RoleSource::Dynamic,
        }
    }

    fn binding(n: u128, role: &str, subject: &Subject, tenant: &str) -> Binding {
        Binding {
            id: Uuid::from_u128(n + 5000),
            role: name(role),
            subject: subject.clone(),
            tenant: name(tenant),
            namespaces: vec![],
            created_at: datetime!(2026-01-01 0:00 UTC),
        }
    }

    fn key(s: &Subject) -> (SubjectKind, Uuid) {
        (s.kind, s.id)
    }

    /// ops ⊃ oncall ⊃ carol; dave holds the custom `user-admin` role (administrative: it grants
    /// `warden:users:write`) through the group `admins`; erin holds `deployer` in tenant `t2`;
    /// frank holds nothing.
    struct World {
        index: AuthzIndex,
        carol: Subject,
        dave: Subject,
        erin: Subject,
        frank: Subject,
    }

    fn world() -> World {
        let ops = subject(SubjectKind::Group, 1, "ops");
        let oncall = subject(SubjectKind::Group, 2, "oncall");
        let admins = subject(SubjectKind::Group, 3, "admins");
        let carol = subject(SubjectKind::User, 10, "carol");
        let dave = subject(SubjectKind::User, 11, "dave");
        let erin = subject(SubjectKind::User, 12, "erin");
        let frank = subject(SubjectKind::User, 13, "frank");
        let graph = DirectoryGraph {
            accounts: [&carol, &dave, &erin, &frank].iter().map(|s| (s.id, s.kind, s.name.clone())).collect(),
            memberships: vec![
                (ops.id, SubjectKind::Group, oncall.id),
                (oncall.id, SubjectKind::User, carol.id),
                (admins.id, SubjectKind::User, dave.id),
            ],
            groups: [&ops, &oncall, &admins].iter().map(|g| (g.id, g.name.clone())).collect(),
            roles: vec![role("user-admin", &["warden:users:write"]), role("deployer", &["deploy:run"])],
            bindings: vec![binding(1, "user-admin", &admins, "default"), binding(2, "deployer", &erin, "t2")],
        };
        let tree = PermissionTree::new(false, &[]).unwrap();
        World { index: AuthzIndex::build(1, graph, tree), carol, dave, erin, frank }
    }

    #[test]
    fn nobody_must_use_mfa_under_an_empty_policy() {
        let w = world();
        let policy = MfaPolicy::default();
        for who in [&w.carol, &w.dave, &w.erin, &w.frank] {
            assert!(!policy.requires(&w.index, key(who)), "{}", who.name);
        }
    }

    #[test]
    fn a_custom_administrative_role_held_through_a_group_requires_mfa() {
        let w = world();
        let policy = MfaPolicy { admin_roles: true, ..MfaPolicy::default() };
        assert!(policy.requires(&w.index, key(&w.dave)));
        for who in [&w.carol, &w.erin, &w.frank] {
            assert!(!policy.requires(&w.index, key(who)), "{} holds no administrative role", who.name);
        }
    }

    #[test]
    fn listed_groups_reach_nested_members_and_listed_roles_any_tenant() {
        let w = world();
        let by_group = MfaPolicy { groups: vec![name("ops")], ..MfaPolicy::default() };
        assert!(by_group.requires(&w.index, key(&w.carol)), "carol is in ops through oncall");
        assert!(!by_group.requires(&w.index, key(&w.dave)) && !by_group.requires(&w.index, key(&w.frank)));
        let by_role = MfaPolicy { roles: vec![name("deployer")], ..MfaPolicy::default() };
        assert!(by_role.requires(&w.index, key(&w.erin)), "a binding in another tenant counts");
        assert!(!by_role.requires(&w.index, key(&w.carol)));
        let unknown = MfaPolicy { roles: vec![name("nope")], groups: vec![name("nobody")], admin_roles: false };
        assert!(!unknown.requires(&w.index, key(&w.carol)), "names that do not exist (yet) require nothing");
    }

    #[test]
    fn only_credentials_without_a_second_factor_are_confined() {
        let w = world();
        let policy = MfaPolicy { admin_roles: true, ..MfaPolicy::default() };
        let dave = key(&w.dave);
        assert!(policy.confines(&w.index, dave, AuthMethod::Session, Some(AuthStrength::Password)));
        assert!(policy.confines(&w.index, dave, AuthMethod::Session, None));
        assert!(policy.confines(&w.index, dave, AuthMethod::Password, None), "Basic is a password alone");
        for strong in [AuthStrength::PasswordTotp, AuthStrength::PasswordBackupCode, AuthStrength::Passkey, AuthStrength::PasswordPasskey] {
            assert!(!policy.confines(&w.index, dave, AuthMethod::Session, Some(strong)), "{strong}");
        }
        assert!(!policy.confines(&w.index, dave, AuthMethod::ApiToken, None), "API tokens are never confined");
        assert!(!policy.confines(&w.index, dave, AuthMethod::Host, None));
        assert!(!policy.confines(&w.index, key(&w.frank), AuthMethod::Session, Some(AuthStrength::Password)));
    }

    #[test]
    fn break_glass_accounts_are_never_confined() {
        let mut w = world();
        let (id, account, _) = crate::model::BREAK_GLASS[0];
        let bg = subject(SubjectKind::ServiceAccount, id.as_u128(), account);
        let graph = DirectoryGraph {
            accounts: vec![(bg.id, bg.kind, bg.name.clone())],
            roles: vec![role("user-admin", &["warden:users:write"])],
            bindings: vec![binding(9, "user-admin", &bg, "default")],
            ..DirectoryGraph::default()
        };
        w.index = AuthzIndex::build(1, graph, PermissionTree::new(false, &[]).unwrap());
        let policy = MfaPolicy { admin_roles: true, ..MfaPolicy::default() };
        assert!(policy.requires(&w.index, key(&bg)), "it holds an administrative role");
        assert!(!policy.confines(&w.index, key(&bg), AuthMethod::Session, Some(AuthStrength::Password)));
        assert!(!policy.confines(&w.index, key(&bg), AuthMethod::Password, None));
    }
}
