use proptest::prelude::*;
use time::macros::datetime;

use super::*;
use crate::membership::Membership;

fn name(s: &str) -> Name {
    Name::parse(s).unwrap()
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

fn group(n: u8) -> Subject {
    Subject { kind: SubjectKind::Group, id: Uuid::from_u128(u128::from(n) + 1), name: name(&format!("g{n}")) }
}

fn user(n: u8) -> Subject {
    Subject { kind: SubjectKind::User, id: Uuid::from_u128(u128::from(n) + 1000), name: name(&format!("u{n}")) }
}

fn binding(n: u128, role: &str, subject: &Subject, tenant: &str, namespaces: &[&str]) -> Binding {
    Binding {
        id: Uuid::from_u128(n + 5000),
        role: name(role),
        subject: subject.clone(),
        tenant: name(tenant),
        namespaces: namespaces.iter().map(|n| Namespace::parse(n).unwrap()).collect(),
        created_at: datetime!(2026-01-01 0:00 UTC),
    }
}

fn ns(s: &str) -> Namespace {
    Namespace::parse(s).unwrap()
}

fn key(s: &Subject) -> (SubjectKind, Uuid) {
    (s.kind, s.id)
}

/// ops ⊃ oncall ⊃ alice; `operator` bound to ops in `prod`.
fn accounts() -> Vec<(Uuid, SubjectKind, Name)> {
    (0..10).map(|n| (user(n).id, SubjectKind::User, user(n).name)).collect()
}

fn scenario() -> DirectoryGraph {
    DirectoryGraph {
        accounts: accounts(),
        memberships: vec![(group(0).id, SubjectKind::Group, group(1).id), (group(1).id, SubjectKind::User, user(0).id)],
        groups: vec![(group(0).id, group(0).name), (group(1).id, group(1).name)],
        roles: vec![role("operator", &["deploy:run", "calendar:events:write"])],
        bindings: vec![binding(1, "operator", &group(0), "default", &["prod"])],
    }
}

fn calendar_tree() -> PermissionTree {
    let perms: Vec<String> =
        ["calendar:events:read", "calendar:events:write:create", "calendar:events:write:move"].map(String::from).into();
    PermissionTree::new(true, &perms).unwrap()
}

#[test]
fn nested_member_granted_in_scope_only() {
    let index = AuthzIndex::build(1, scenario(), calendar_tree());
    let alice = key(&user(0));
    assert!(index.allows(alice, "deploy:run", "default", Some(&ns("prod.x")), None));
    assert!(index.allows(alice, "deploy:run", "default", Some(&ns("prod")), None));
    assert!(!index.allows(alice, "deploy:run", "default", Some(&ns("staging")), None));
    assert!(!index.allows(alice, "deploy:run", "default", Some(&ns("production")), None));
    assert!(!index.allows(alice, "deploy:run", "default", None, None), "scoped binding is not tenant-wide");
    assert!(!index.allows(alice, "deploy:run", "other", Some(&ns("prod")), None), "other tenant");
    assert!(index.allows(alice, "calendar:events:write:move", "default", Some(&ns("prod")), None), "tree node grants leaves");
    assert!(!index.allows(alice, "calendar:events:read", "default", Some(&ns("prod")), None));
    assert!(!index.allows(alice, "deploy:run", "default", Some(&ns("prod")), Some(&["viewer".into()])), "token limited to other roles");
    assert_eq!(
        index.permissions_of(alice, "default", Some(&ns("prod")), None),
        ["calendar:events:write:create", "calendar:events:write:move", "deploy:run"]
    );
    assert_eq!(index.effective_groups(alice), [name("g0"), name("g1")]);
    assert!(index.permissions_of(alice, "default", Some(&ns("prod")), Some(&["viewer".into()])).is_empty(), "a role-limited token");
}

#[test]
fn explanation_names_the_chain() {
    let index = AuthzIndex::build(1, scenario(), calendar_tree());
    let e = index.explain(&user(0), "calendar:events:write:move", "default", Some(&ns("prod.web")), None);
    assert!(e.allowed);
    let grant = &e.grants[0];
    let path: Vec<String> = grant.path.iter().map(ToString::to_string).collect();
    assert_eq!(path, ["user:u0", "group:g1", "group:g0"]);
    assert_eq!(grant.role.as_str(), "operator");
    assert_eq!(grant.permission, "calendar:events:write");
    assert!(grant.via_tree);
    let denied = index.explain(&user(0), "deploy:run", "default", Some(&ns("staging")), None);
    assert!(!denied.allowed);
    assert!(denied.reason.unwrap().contains("namespace staging"));
    let nobody = index.explain(&user(9), "deploy:run", "default", None, None);
    assert!(nobody.reason.unwrap().contains("no bindings"));
}

#[test]
fn built_in_roles_govern_warden() {
    let graph = DirectoryGraph {
        accounts: accounts(),
        memberships: vec![(group(0).id, SubjectKind::User, user(0).id), (group(1).id, SubjectKind::User, user(1).id)],
        groups: vec![(group(0).id, group(0).name), (group(1).id, group(1).name)],
        roles: built_in_roles(),
        bindings: vec![
            binding(1, "system_admin", &group(0), "default", &[]),
            binding(2, "idm_admin", &group(1), "default", &[]),
            binding(3, "tenant_admin", &user(2), "acme", &[]),
        ],
    };
    let index = AuthzIndex::build(1, graph, PermissionTree::default());
    let (admin, idm, tenant_admin) = (key(&user(0)), key(&user(1)), key(&user(2)));
    assert!(index.allows(admin, "warden:roles:write", "default", None, None));
    assert!(!index.allows(admin, "warden:users:write", "default", None, None));
    assert!(!index.allows(admin, "warden:users:read", "default", None, None), "no personal data");
    assert!(index.allows(idm, "warden:users:write", "default", None, None));
    assert!(!index.allows(idm, "warden:superuser", "default", None, None));
    assert!(index.allows(tenant_admin, "warden:bindings:write", "acme", None, None));
    assert!(!index.allows(tenant_admin, "warden:bindings:write", "default", None, None));
    assert!(index.holds_administrative_role(admin) && index.holds_administrative_role(tenant_admin));
}

#[test]
fn custom_roles_with_warden_rights_are_administrative() {
    let graph = DirectoryGraph {
        accounts: accounts(),
        memberships: vec![(group(0).id, SubjectKind::User, user(0).id), (group(1).id, SubjectKind::Group, group(0).id)],
        groups: vec![(group(0).id, group(0).name), (group(1).id, group(1).name)],
        roles: vec![role("platform", &["warden:bindings"]), role("checker", &["warden:check", "deploy:run"])],
        bindings: vec![binding(1, "platform", &group(1), "acme", &[]), binding(2, "checker", &user(1), "default", &[])],
    };
    let index = AuthzIndex::build(1, graph, PermissionTree::default());
    assert!(index.holds_administrative_role(key(&user(0))), "through two groups, in another tenant");
    assert!(index.holds_administrative_role(key(&group(0))));
    assert!(!index.holds_administrative_role(key(&user(1))), "warden:check is for applications");
    assert!(!index.holds_administrative_role(key(&user(2))));
    let tenant_admin = built_in_roles().into_iter().find(|r| r.id.as_str() == "tenant_admin").unwrap();
    assert!(!tenant_admin.is_privileged() && tenant_admin.is_administrative());
    assert!(is_privileged_binding(&tenant_admin, "default") && !is_privileged_binding(&tenant_admin, "acme"));
    assert!(role("x", &["warden"]).is_privileged() && !role("y", &["warden:check"]).is_privileged());
}

#[test]
fn incremental_membership_matches_rebuild() {
    let base = scenario();
    let index = AuthzIndex::build(1, base.clone(), calendar_tree());
    let u1 = user(1);
    let next = index.apply(2, &[IndexChange::AccountAdded { group: group(0).id, account: u1.id }]);
    assert!(next.allows(key(&u1), "deploy:run", "default", Some(&ns("prod")), None));
    assert!(!index.allows(key(&u1), "deploy:run", "default", Some(&ns("prod")), None), "old snapshot unchanged");
    let removed = next.apply(3, &[IndexChange::AccountRemoved { group: group(1).id, account: user(0).id }]);
    assert!(!removed.allows(key(&user(0)), "deploy:run", "default", Some(&ns("prod")), None));
    assert!(removed.allows(key(&u1), "deploy:run", "default", Some(&ns("prod")), None));

    // Names follow creations, renames and deletions.
    let fresh = Uuid::from_u128(77);
    let created = removed.apply(4, &[IndexChange::AccountCreated { account: fresh, kind: SubjectKind::ServiceAccount, name: name("bot") }]);
    assert_eq!(created.subjects_named(&name("bot"))[0].id, fresh);
    let renamed = created.apply(5, &[IndexChange::AccountRenamed { account: fresh, name: name("robot") }]);
    assert!(renamed.subjects_named(&name("bot")).is_empty());
    assert_eq!(renamed.subject_by_id(fresh).unwrap().name, name("robot"));
    let deleted = renamed.apply(6, &[IndexChange::AccountDeleted { account: u1.id }]);
    assert!(deleted.subject_by_id(u1.id).is_none());
    assert!(!deleted.allows(key(&u1), "deploy:run", "default", Some(&ns("prod")), None));
    assert_eq!(created.subjects_named(&name("g0")).len(), 1, "groups resolve by name too");
}

#[derive(Debug, Clone)]
struct World {
    group_edges: Vec<(u8, u8)>,
    user_edges: Vec<(u8, u8)>,
    bindings: Vec<(u8, bool, u8, u8)>,
}

fn world() -> impl Strategy<Value = World> {
    (
        proptest::collection::vec((0u8..6, 0u8..6), 0..10),
        proptest::collection::vec((0u8..6, 0u8..5), 0..12),
        proptest::collection::vec((0u8..6, any::<bool>(), 0u8..2, 0u8..3), 0..8),
    )
        .prop_map(|(group_edges, user_edges, bindings)| World { group_edges, user_edges, bindings })
}

const NAMESPACES: [&str; 3] = ["a", "a.b", "c"];
const ROLES: [(&str, &[&str]); 2] = [("reader", &["doc:read"]), ("writer", &["doc"])];

fn graph_of(w: &World, drop_binding: Option<usize>) -> (DirectoryGraph, Membership) {
    let mut membership = Membership::new();
    let mut memberships = Vec::new();
    for (g, m) in &w.group_edges {
        if membership.add_member(group(*g).id, (SubjectKind::Group, group(*m).id)).is_ok() {
            memberships.push((group(*g).id, SubjectKind::Group, group(*m).id));
        }
    }
    for (g, u) in &w.user_edges {
        if membership.add_member(group(*g).id, (SubjectKind::User, user(*u).id)).unwrap() {
            memberships.push((group(*g).id, SubjectKind::User, user(*u).id));
        }
    }
    let bindings = w
        .bindings
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != drop_binding)
        .map(|(i, (subject, to_group, r, n))| {
            let subject = if *to_group { group(*subject) } else { user(*subject % 5) };
            let namespaces: &[&str] = if *n == 2 { &[] } else { &NAMESPACES[*n as usize..=*n as usize] };
            binding(i as u128, ROLES[*r as usize].0, &subject, "default", namespaces)
        })
        .collect();
    let graph = DirectoryGraph {
        accounts: accounts(),
        memberships,
        groups: (0..6).map(|g| (group(g).id, group(g).name)).collect(),
        roles: ROLES.iter().map(|(id, p)| role(id, p)).collect(),
        bindings,
    };
    (graph, membership)
}

fn tree() -> PermissionTree {
    PermissionTree::new(true, &["doc:read".into(), "doc:write".into()]).unwrap()
}

/// The reference decision: walk the membership graph, collect bindings, check by hand.
fn expected(w: &World, m: &Membership, u: u8, perm: &str, namespace: Option<&Namespace>, drop_binding: Option<usize>) -> bool {
    let subject = user(u);
    let groups = m.effective_groups((SubjectKind::User, subject.id));
    w.bindings.iter().enumerate().filter(|(i, _)| Some(*i) != drop_binding).any(|(_, (s, to_group, r, n))| {
        let holder = if *to_group { group(*s) } else { user(*s % 5) };
        let reaches = holder.id == subject.id || (holder.kind == SubjectKind::Group && groups.contains(&holder.id));
        let scope: Vec<Namespace> = if *n == 2 { vec![] } else { vec![ns(NAMESPACES[*n as usize])] };
        let grants = match ROLES[*r as usize].0 {
            "reader" => perm == "doc:read",
            _ => perm == "doc:read" || perm == "doc:write" || perm == "doc",
        };
        reaches && grants && scope_applies(&scope, namespace)
    })
}

proptest! {
    #[test]
    fn index_agrees_with_graph_walk_and_bindings_remove_exactly_their_grants(w in world(), drop in 0usize..8) {
        let (graph, membership) = graph_of(&w, None);
        let index = AuthzIndex::build(1, graph, tree());
        let drop = (drop < w.bindings.len()).then_some(drop);
        let (graph_without, _) = graph_of(&w, drop);
        let without = AuthzIndex::build(2, graph_without, tree());
        for u in 0..5 {
            for perm in ["doc:read", "doc:write", "doc"] {
                for namespace in [None, Some(ns("a")), Some(ns("a.b.c")), Some(ns("c")), Some(ns("ab"))] {
                    let got = index.allows((SubjectKind::User, user(u).id), perm, "default", namespace.as_ref(), None);
                    prop_assert_eq!(got, expected(&w, &membership, u, perm, namespace.as_ref(), None), "u{} {} {:?}", u, perm, namespace);
                    let got = without.allows((SubjectKind::User, user(u).id), perm, "default", namespace.as_ref(), None);
                    prop_assert_eq!(got, expected(&w, &membership, u, perm, namespace.as_ref(), drop));
                    prop_assert!(!index.allows((SubjectKind::User, user(u).id), perm, "other", namespace.as_ref(), None));
                }
            }
        }
    }

    #[test]
    fn removing_a_membership_incrementally_equals_rebuilding(w in world(), pick in 0usize..12) {
        prop_assume!(!w.user_edges.is_empty());
        let (graph, _) = graph_of(&w, None);
        let index = AuthzIndex::build(1, graph, tree());
        let (g, u) = w.user_edges[pick % w.user_edges.len()];
        let mut smaller = w.clone();
        smaller.user_edges.retain(|e| *e != (g, u));
        let (graph2, _) = graph_of(&smaller, None);
        let rebuilt = AuthzIndex::build(2, graph2, tree());
        let applied = index.apply(2, &[IndexChange::AccountRemoved { group: group(g).id, account: user(u).id }]);
        for u in 0..5 {
            for perm in ["doc:read", "doc:write"] {
                for namespace in [None, Some(ns("a.b")), Some(ns("c"))] {
                    let s = (SubjectKind::User, user(u).id);
                    prop_assert_eq!(applied.allows(s, perm, "default", namespace.as_ref(), None), rebuilt.allows(s, perm, "default", namespace.as_ref(), None));
                }
            }
        }
    }
}

// --- incremental equals rebuild ---------------------------------------------------------------

use crate::change::{Action, RoleLabel, SnapshotEffect};

/// One write, as a service would attempt it (the model refuses what the service would).
#[derive(Debug, Clone)]
enum Op {
    CreateAccount(u8),
    RenameAccount(u8, u8),
    DeleteAccount(u8),
    CreateGroup(u8),
    DeleteGroup(u8),
    AddAccount(u8, u8),
    RemoveAccount(u8, u8),
    Nest(u8, u8),
    Unnest(u8, u8),
    CreateTenant(u8),
    DeleteTenant(u8),
    CreateRole(u8, u8, u8),
    UpdateRole(u8, u8),
    DeleteRole(u8),
    CreateBinding(u8, bool, u8, u8, u8),
    DeleteBinding(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (0u8..8).prop_map(Op::CreateAccount),
        1 => (0u8..8, 0u8..12).prop_map(|(a, n)| Op::RenameAccount(a, n)),
        1 => (0u8..8).prop_map(Op::DeleteAccount),
        1 => (0u8..6).prop_map(Op::CreateGroup),
        1 => (0u8..6).prop_map(Op::DeleteGroup),
        4 => (0u8..6, 0u8..8).prop_map(|(g, a)| Op::AddAccount(g, a)),
        1 => (0u8..6, 0u8..8).prop_map(|(g, a)| Op::RemoveAccount(g, a)),
        6 => (0u8..6, 0u8..6).prop_map(|(g, m)| Op::Nest(g, m)),
        3 => (0u8..6, 0u8..6).prop_map(|(g, m)| Op::Unnest(g, m)),
        1 => (0u8..3).prop_map(Op::CreateTenant),
        1 => (1u8..3).prop_map(Op::DeleteTenant),
        1 => (0u8..3, 0u8..3, 0u8..4).prop_map(|(r, t, p)| Op::CreateRole(r, t, p)),
        1 => (0u8..3, 0u8..4).prop_map(|(r, p)| Op::UpdateRole(r, p)),
        1 => (0u8..3).prop_map(Op::DeleteRole),
        6 => (0u8..4, any::<bool>(), 0u8..8, 0u8..3, 0u8..3).prop_map(|(r, g, s, t, n)| Op::CreateBinding(r, g, s, t, n)),
        2 => (0u8..16).prop_map(Op::DeleteBinding),
    ]
}

const TENANTS: [&str; 3] = ["default", "t1", "t2"];
const PERMISSION_SETS: [&[&str]; 4] = [&["doc:read"], &["doc"], &["doc:write", "warden"], &[]];

fn account(n: u8) -> Subject {
    let kind = if n % 3 == 2 { SubjectKind::ServiceAccount } else { SubjectKind::User };
    Subject { kind, id: Uuid::from_u128(u128::from(n) + 2000), name: name(&format!("a{n}")) }
}

/// What the store would hold: the directory graph, the tenants, and the configured roles.
struct Model {
    graph: DirectoryGraph,
    tenants: Vec<Name>,
    system: Vec<Role>,
    next_binding: u128,
}

impl Model {
    fn new() -> Self {
        let system = Role { tenant: None, source: RoleSource::System, ..role("sys", &["doc:read"]) };
        Self { graph: DirectoryGraph::default(), tenants: vec![name("default")], system: vec![system], next_binding: 0 }
    }

    /// The graph as the server builds it: stored roles, then the configured ones.
    fn built(&self) -> AuthzIndex {
        let mut graph = self.graph.clone();
        graph.roles.extend(self.system.iter().cloned());
        AuthzIndex::build(0, graph, tree())
    }

    fn account(&self, n: u8) -> Option<Subject> {
        let id = account(n).id;
        self.graph.accounts.iter().find(|a| a.0 == id).map(|(id, kind, name)| Subject { kind: *kind, id: *id, name: name.clone() })
    }

    fn group(&self, n: u8) -> Option<Subject> {
        let id = group(n).id;
        self.graph.groups.iter().find(|g| g.0 == id).map(|(id, name)| Subject { kind: SubjectKind::Group, id: *id, name: name.clone() })
    }

    fn role(&self, id: &Name) -> Option<Role> {
        self.graph.roles.iter().chain(&self.system).find(|r| r.id == *id).cloned()
    }

    fn name_taken(&self, n: &Name) -> bool {
        self.graph.accounts.iter().any(|a| a.2 == *n)
    }

    fn membership(&self) -> Membership {
        let mut m = Membership::new();
        for (g, kind, member) in &self.graph.memberships {
            let _ = m.add_member(*g, (*kind, *member));
        }
        m
    }

    /// Applies `op` to the model and returns the action and target a service would record,
    /// or `None` when the service would refuse it.
    fn step(&mut self, op: &Op) -> Option<(Action, Subject)> {
        let none = Subject { kind: SubjectKind::Group, id: Uuid::nil(), name: name("none") };
        match op {
            Op::CreateAccount(n) => {
                let a = account(*n);
                if self.account(*n).is_some() || self.name_taken(&a.name) {
                    return None;
                }
                self.graph.accounts.push((a.id, a.kind, a.name.clone()));
                Some((Action::UserCreate { password: false }, a))
            }
            Op::RenameAccount(n, to) => {
                let a = self.account(*n)?;
                let to = name(&format!("renamed{to}"));
                if self.name_taken(&to) {
                    return None;
                }
                self.graph.accounts.iter_mut().filter(|x| x.0 == a.id).for_each(|x| x.2 = to.clone());
                Some((Action::UserRename { from: a.name.to_string(), to, from_reserved_until: None }, a))
            }
            Op::DeleteAccount(n) => {
                let a = self.account(*n)?;
                let g = &mut self.graph;
                g.accounts.retain(|x| x.0 != a.id);
                g.memberships.retain(|m| m.2 != a.id);
                g.bindings.retain(|b| b.subject.id != a.id);
                Some((Action::UserDelete { name_reserved_until: None }, a))
            }
            Op::CreateGroup(n) => {
                if self.group(*n).is_some() {
                    return None;
                }
                let s = group(*n);
                self.graph.groups.push((s.id, s.name.clone()));
                Some((Action::GroupCreate {}, s))
            }
            Op::DeleteGroup(n) => {
                let s = self.group(*n)?;
                let g = &mut self.graph;
                g.groups.retain(|x| x.0 != s.id);
                g.memberships.retain(|m| m.0 != s.id && m.2 != s.id);
                g.bindings.retain(|b| b.subject.id != s.id);
                Some((Action::GroupDelete { memberships_removed: 0 }, s))
            }
            Op::AddAccount(gn, an) | Op::RemoveAccount(gn, an) => {
                let (s, a) = (self.group(*gn)?, self.account(*an)?);
                let edge = (s.id, a.kind, a.id);
                let present = self.graph.memberships.contains(&edge);
                let member = format!("{}:{}", a.kind.prefix(), a.name);
                if let Op::AddAccount(..) = op {
                    if present {
                        return None;
                    }
                    self.graph.memberships.push(edge);
                    Some((Action::MemberAdd { member, member_id: a.id, member_kind: a.kind, via: None }, s))
                } else {
                    if !present {
                        return None;
                    }
                    self.graph.memberships.retain(|m| *m != edge);
                    Some((Action::MemberRemove { member, member_id: a.id, member_kind: a.kind, via: None }, s))
                }
            }
            Op::Nest(gn, mn) | Op::Unnest(gn, mn) => {
                let (s, inner) = (self.group(*gn)?, self.group(*mn)?);
                let edge = (s.id, SubjectKind::Group, inner.id);
                let present = self.graph.memberships.contains(&edge);
                let member = format!("group:{}", inner.name);
                if let Op::Nest(..) = op {
                    if present || self.membership().add_member(s.id, (SubjectKind::Group, inner.id)).is_err() {
                        return None;
                    }
                    self.graph.memberships.push(edge);
                    Some((Action::MemberAdd { member, member_id: inner.id, member_kind: SubjectKind::Group, via: None }, s))
                } else {
                    if !present {
                        return None;
                    }
                    self.graph.memberships.retain(|m| *m != edge);
                    Some((Action::MemberRemove { member, member_id: inner.id, member_kind: SubjectKind::Group, via: None }, s))
                }
            }
            Op::CreateTenant(t) => {
                let t = name(TENANTS[*t as usize]);
                if self.tenants.contains(&t) {
                    return None;
                }
                self.tenants.push(t.clone());
                Some((Action::TenantCreate { tenant: t }, none))
            }
            Op::DeleteTenant(t) => {
                let t = name(TENANTS[*t as usize]);
                if !self.tenants.contains(&t) {
                    return None;
                }
                self.tenants.retain(|x| *x != t);
                let g = &mut self.graph;
                let doomed: Vec<Name> = g.roles.iter().filter(|r| r.tenant.as_ref() == Some(&t)).map(|r| r.id.clone()).collect();
                g.bindings.retain(|b| b.tenant != t && !doomed.contains(&b.role));
                g.roles.retain(|r| r.tenant.as_ref() != Some(&t));
                Some((Action::TenantDelete { tenant: t }, none))
            }
            Op::CreateRole(r, t, p) => {
                let id = name(&format!("r{r}"));
                let t = name(TENANTS[*t as usize]);
                if self.role(&id).is_some() || !self.tenants.contains(&t) {
                    return None;
                }
                let created =
                    Role { tenant: Some(t.clone()), name: format!("Role {r}"), ..role(id.as_str(), PERMISSION_SETS[*p as usize]) };
                self.graph.roles.push(created.clone());
                let label = Some(RoleLabel { name: created.name, description: None });
                Some((Action::RoleCreate { role: id, tenant: Some(t), permissions: created.permissions, label }, none))
            }
            Op::UpdateRole(r, p) => {
                let id = name(&format!("r{r}"));
                let stored = self.graph.roles.iter_mut().find(|x| x.id == id)?;
                stored.permissions = PERMISSION_SETS[*p as usize].iter().map(|p| (*p).to_owned()).collect();
                stored.description = Some(format!("v{p}"));
                let label = Some(RoleLabel { name: stored.name.clone(), description: stored.description.clone() });
                Some((Action::RoleUpdate { role: id, permissions: stored.permissions.clone(), label }, none))
            }
            Op::DeleteRole(r) => {
                let id = name(&format!("r{r}"));
                let g = &mut self.graph;
                if !g.roles.iter().any(|x| x.id == id) {
                    return None;
                }
                g.roles.retain(|x| x.id != id);
                g.bindings.retain(|b| b.role != id);
                Some((Action::RoleDelete { role: id, bindings_removed: 0 }, none))
            }
            Op::CreateBinding(r, to_group, s, t, scope) => {
                let id = if *r == 3 { name("sys") } else { name(&format!("r{r}")) };
                let t = name(TENANTS[*t as usize]);
                let found = self.role(&id)?;
                let subject = if *to_group { self.group(*s % 6)? } else { self.account(*s)? };
                if !self.tenants.contains(&t) || found.tenant.as_ref().is_some_and(|rt| *rt != t) {
                    return None;
                }
                self.next_binding += 1;
                let namespaces: &[&str] = if *scope == 2 { &[] } else { &NAMESPACES[*scope as usize..=*scope as usize] };
                let b = binding(self.next_binding, id.as_str(), &subject, t.as_str(), namespaces);
                self.graph.bindings.push(b.clone());
                let action = Action::BindingCreate {
                    binding: b.id,
                    role: b.role,
                    tenant: b.tenant,
                    namespaces: b.namespaces.iter().map(ToString::to_string).collect(),
                };
                Some((action, subject))
            }
            Op::DeleteBinding(pick) => {
                let g = &mut self.graph;
                if g.bindings.is_empty() {
                    return None;
                }
                let b = g.bindings.remove(*pick as usize % g.bindings.len());
                Some((Action::BindingDelete { binding: b.id, role: b.role, tenant: b.tenant }, b.subject))
            }
        }
    }

    /// The effective members of a group by brute force, in listing order.
    fn effective_members(&self, top: Uuid) -> Vec<(Subject, bool)> {
        let m = self.membership();
        let mut out: Vec<(Subject, bool)> = m
            .effective_members(top)
            .into_iter()
            .filter_map(|(kind, id)| {
                let subject = match kind {
                    SubjectKind::Group => self.graph.groups.iter().find(|g| g.0 == id).map(|g| Subject { kind, id, name: g.1.clone() }),
                    _ => self.graph.accounts.iter().find(|a| a.0 == id).map(|a| Subject { kind, id, name: a.2.clone() }),
                }?;
                Some((subject, self.graph.memberships.contains(&(top, kind, id))))
            })
            .collect();
        out.sort_by(|a, b| (a.0.name.as_str().as_bytes(), a.0.kind.as_str()).cmp(&(b.0.name.as_str().as_bytes(), b.0.kind.as_str())));
        out
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Every kind of change, applied one by one through its action's effect, leaves a snapshot
    /// identical to one built from the resulting graph, and the effective-members pages read
    /// from it match the graph walked by hand, page by page.
    #[test]
    fn incremental_equals_rebuild(ops in proptest::collection::vec(op(), 1..80)) {
        let mut model = Model::new();
        let mut index = model.built();
        // A populated directory first, so that most of the random changes apply.
        let seed = (0..8)
            .map(Op::CreateAccount)
            .chain((0..6).map(Op::CreateGroup))
            .chain([Op::CreateTenant(1), Op::CreateTenant(2)])
            .chain((0..3).map(|r| Op::CreateRole(r, r, r)));
        for (i, op) in seed.chain(ops).enumerate() {
            let op = &op;
            let Some((action, target)) = model.step(op) else { continue };
            match action.effect(Some(&target)).snapshot {
                SnapshotEffect::Unchanged => {}
                SnapshotEffect::Apply(change) => index = index.apply(i as i64 + 1, &[change]),
                SnapshotEffect::Rebuild => prop_assert!(false, "{op:?} rebuilds"),
            }
            let rebuilt = model.built();
            prop_assert_eq!(index.canonical(), rebuilt.canonical(), "after {:?}", op);
        }
        for (id, _) in &model.graph.groups {
            let expected = model.effective_members(*id);
            prop_assert_eq!(index.effective_members(*id, None, 1000).unwrap(), expected.clone());
            let mut paged = Vec::new();
            let mut cursor: Option<(String, String)> = None;
            loop {
                let page = index.effective_members(*id, cursor.as_ref().map(|(n, k)| (n.as_str(), k.as_str())), 2).unwrap();
                let Some(last) = page.last() else { break };
                cursor = Some((last.0.name.to_string(), last.0.kind.as_str().to_owned()));
                paged.extend(page);
            }
            prop_assert_eq!(paged, expected.clone());
            // The direct members: the flagged ones, in the same order, page by page too.
            let direct: Vec<_> = expected.into_iter().filter(|(_, d)| *d).collect();
            prop_assert_eq!(index.direct_members(*id, None, 1000).unwrap(), direct.clone());
            let mut paged = Vec::new();
            let mut cursor: Option<(String, String)> = None;
            loop {
                let page = index.direct_members(*id, cursor.as_ref().map(|(n, k)| (n.as_str(), k.as_str())), 2).unwrap();
                let Some(last) = page.last() else { break };
                cursor = Some((last.0.name.to_string(), last.0.kind.as_str().to_owned()));
                paged.extend(page);
            }
            prop_assert_eq!(paged, direct);
        }
        let m = model.membership();
        for (id, kind, _) in &model.graph.accounts {
            let mut expected: Vec<(Subject, bool)> = m
                .effective_groups((*kind, *id))
                .into_iter()
                .filter_map(|g| model.graph.groups.iter().find(|x| x.0 == g))
                .map(|(g, n)| (Subject { kind: SubjectKind::Group, id: *g, name: n.clone() }, model.graph.memberships.contains(&(*g, *kind, *id))))
                .collect();
            expected.sort_by(|a, b| a.0.name.cmp(&b.0.name));
            prop_assert_eq!(index.groups_of((*kind, *id), true, None, 1000), expected.clone());
            let direct: Vec<_> = expected.iter().filter(|(_, d)| *d).cloned().collect();
            prop_assert_eq!(index.groups_of((*kind, *id), false, None, 1000), direct);
            if let Some((first, _)) = expected.first() {
                let rest = index.groups_of((*kind, *id), true, Some((first.name.as_str(), "group")), 1000);
                prop_assert_eq!(rest, expected[1..].to_vec());
            }
        }
    }
}

/// A stored role with the id of a configured one stays shadowed when created, updated or
/// deleted in place, as it is when the snapshot is built.
#[test]
fn a_configured_role_shadows_a_stored_one_in_place_too() {
    let mut model = Model::new();
    let index = model.built();
    let stored = Role { tenant: Some(name("default")), ..role("sys", &["warden"]) };
    let created = index.apply(1, &[IndexChange::RoleCreated { role: stored }]);
    assert_eq!(created.canonical(), index.canonical());
    let updated = created.apply(
        2,
        &[IndexChange::RoleUpdated { role: name("sys"), name: "x".into(), description: None, permissions: vec!["warden".into()] }],
    );
    assert_eq!(updated.canonical(), index.canonical());
    assert_eq!(updated.role(&name("sys")).unwrap().source, RoleSource::System);
    let deleted = updated.apply(3, &[IndexChange::RoleDeleted { role: name("sys") }]);
    assert_eq!(deleted.canonical(), index.canonical());
    model.tenants.clear();
}

/// A map that grows from empty past its leaves' size re-spreads itself and loses nothing;
/// a copy taken before the growth still reads as it was.
#[test]
fn sharded_map_grows_its_leaves_and_keeps_every_entry() {
    let mut map: Sharded<Uuid, Arc<u32>> = Sharded::from_map(HashMap::new());
    assert_eq!(map.leaves, 1);
    let id = |i: u32| Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | u128::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut before = None;
    let total = 3 * 2 * SHARDS as u32 * LEAF_ENTRIES as u32;
    for i in 0..total {
        if i == 1000 {
            before = Some(map.clone());
        }
        map.insert(id(i), Arc::new(i));
    }
    assert!(map.leaves >= 4, "the leaves did not grow: {}", map.leaves);
    assert_eq!(map.len, total as usize);
    assert_eq!(map.iter().count(), total as usize);
    for i in 0..total {
        assert_eq!(map.get(&id(i)).map(|v| **v), Some(i));
    }
    if let Some(v) = map.get_mut(&id(7)) {
        *v = 70;
    }
    assert_eq!(map.remove(&id(8)).map(|v| *v), Some(8));
    assert_eq!(map.get(&id(7)).map(|v| **v), Some(70));
    assert_eq!(map.get(&id(8)), None);
    assert_eq!(map.len, total as usize - 1);
    let before = before.unwrap();
    assert_eq!(before.len, 1000);
    assert_eq!(before.leaves, 1);
    assert_eq!(before.get(&id(7)).map(|v| **v), Some(7));
    assert_eq!(before.get(&id(1000)), None);
}
