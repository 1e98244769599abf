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
