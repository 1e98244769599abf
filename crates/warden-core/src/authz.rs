//! Authorization: roles, bindings, tenants, and the in-memory index that answers
//! "may X do P here?" without touching the database.
//!
//! [`AuthzIndex`] is an immutable snapshot built from a [`DirectoryGraph`] (group membership,
//! roles, bindings). It holds, per group, the groups it is effectively a member of and every
//! binding it inherits, and per role the expanded (leaf) permission set, so a check is a few
//! hash lookups: the subject's direct bindings, then the inherited bindings of each group it
//! is directly in. Membership changes of accounts are applied incrementally: the map of direct
//! memberships is sharded and only the touched shard is copied.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::builtin::{BUILT_IN_GROUPS, BUILT_IN_ROLES, DEFAULT_TENANT, TENANT_ADMIN};
use crate::model::{Subject, SubjectKind};
use crate::namespace::{Namespace, scope_applies};
use crate::permission::PermissionTree;
use crate::{CoreError, Name};

/// Where a role comes from, which decides who may change it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RoleSource {
    /// Governs Warden itself; bindable in every tenant; never changes.
    BuiltIn,
    /// Declared in the configuration file; cannot be changed through the API.
    System,
    /// Created through the API.
    Dynamic,
}

/// A named set of permissions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Role {
    /// Unique id (`calendar-editor`).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub id: Name,
    /// The tenant the role belongs to; `None` for built-in roles (usable in every tenant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub tenant: Option<Name>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub permissions: Vec<String>,
    pub source: RoleSource,
}

/// A role granted to a subject in a tenant, optionally limited to namespaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Binding {
    pub id: Uuid,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub role: Name,
    pub subject: Subject,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub tenant: Name,
    /// Empty: the whole tenant.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub namespaces: Vec<Namespace>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tenant {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub name: Name,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Whether granting `permission` grants power over Warden itself: `warden` and every
/// `warden:*` permission, except `warden:check` (asking for decisions), which applications need.
pub fn is_privileged_permission(permission: &str) -> bool {
    is_warden(permission) && permission != crate::access::Permission::Check.as_str()
}

impl Role {
    /// Whether binding this role hands out power over Warden: a built-in role (but
    /// `tenant_admin`, which is scoped to the tenant it is bound in; see
    /// [`is_privileged_binding`]), or any other role listing a privileged permission.
    pub fn is_privileged(&self) -> bool {
        match self.source {
            RoleSource::BuiltIn => self.id.as_str() != TENANT_ADMIN,
            RoleSource::System | RoleSource::Dynamic => self.permissions.iter().any(|p| is_privileged_permission(p)),
        }
    }

    /// Whether holding this role makes an account administrative, so that only an
    /// idm_superuser may change it, hand it a credential or change the membership of a group
    /// that holds it: every built-in role, and every role that is privileged.
    pub fn is_administrative(&self) -> bool {
        self.source == RoleSource::BuiltIn || self.is_privileged()
    }
}

/// Whether binding `role` in `tenant` is an idm_superuser's alone to create or delete: a
/// privileged role anywhere, and `tenant_admin` in `default`, where it would govern the roles
/// and bindings of every tenant.
pub fn is_privileged_binding(role: &Role, tenant: &str) -> bool {
    role.is_privileged() || (role.id.as_str() == TENANT_ADMIN && tenant == DEFAULT_TENANT)
}

/// The built-in roles as [`Role`]s.
pub fn built_in_roles() -> Vec<Role> {
    BUILT_IN_ROLES
        .iter()
        .map(|r| Role {
            id: Name::from_trusted(r.id.to_owned()),
            tenant: None,
            name: r.id.to_owned(),
            description: Some(r.description.to_owned()),
            permissions: r.permissions.iter().map(|p| (*p).to_owned()).collect(),
            source: RoleSource::BuiltIn,
        })
        .collect()
}

/// Everything the index is built from.
#[derive(Debug, Clone, Default)]
pub struct DirectoryGraph {
    /// Every account: `(id, kind, name)`.
    pub accounts: Vec<(Uuid, SubjectKind, Name)>,
    /// `(group, member kind, member id)`.
    pub memberships: Vec<(Uuid, SubjectKind, Uuid)>,
    pub groups: Vec<(Uuid, Name)>,
    /// Every role: built-in, system (from config) and dynamic.
    pub roles: Vec<Role>,
    pub bindings: Vec<Binding>,
}

/// A change the index can apply without a rebuild.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexChange {
    /// A user or service account was created.
    AccountCreated { account: Uuid, kind: SubjectKind, name: Name },
    /// An account was renamed.
    AccountRenamed { account: Uuid, name: Name },
    /// An account joined a group.
    AccountAdded { group: Uuid, account: Uuid },
    /// An account left a group.
    AccountRemoved { group: Uuid, account: Uuid },
    /// An account was deleted.
    AccountDeleted { account: Uuid },
    /// An empty group was created.
    GroupCreated { group: Uuid, name: Name },
}

const SHARDS: usize = 64;

/// What the index knows of an account: enough to resolve it and walk its groups.
#[derive(Clone)]
struct AccountEntry {
    kind: SubjectKind,
    name: Name,
    /// Direct groups.
    groups: Box<[Uuid]>,
}

type Shard = HashMap<Uuid, AccountEntry>;
type NameShard = HashMap<Name, Uuid>;

struct RoleEntry {
    role: Role,
    /// [`Role::is_administrative`], decided once per snapshot.
    administrative: bool,
    resolved: HashSet<String>,
    /// `(role permission, leaf)` pairs, for explanations.
    origin: Vec<(String, String)>,
}

#[derive(Clone)]
struct GroupEntry {
    name: Name,
    /// Direct parent groups.
    parents: Box<[Uuid]>,
    /// Bindings of this group and of every group it is effectively a member of.
    inherited: Box<[u32]>,
}

struct BindingEntry {
    binding: Binding,
    role: Option<u32>,
}

impl BindingEntry {
    /// Whether the binding counts for a request in `tenant` and `namespace`, by a credential
    /// limited to `roles`.
    fn applies(&self, tenant: &str, namespace: Option<&Namespace>, roles: Option<&[String]>) -> bool {
        self.binding.tenant.as_str() == tenant
            && scope_applies(&self.binding.namespaces, namespace)
            && roles.is_none_or(|only| only.iter().any(|r| r == self.binding.role.as_str()))
    }
}

/// The immutable authorization snapshot of one revision.
#[derive(Clone)]
pub struct AuthzIndex {
    pub revision: i64,
    app_tree: Arc<PermissionTree>,
    warden_tree: Arc<PermissionTree>,
    roles: Arc<Vec<RoleEntry>>,
    role_ids: Arc<HashMap<Name, u32>>,
    bindings: Arc<Vec<BindingEntry>>,
    /// Direct bindings of accounts.
    account_bindings: Arc<HashMap<Uuid, Box<[u32]>>>,
    groups: Arc<HashMap<Uuid, GroupEntry>>,
    group_ids: Arc<HashMap<Name, Uuid>>,
    /// Accounts by id (with their direct groups), sharded so an update copies one shard.
    accounts: Arc<Vec<Arc<Shard>>>,
    /// Account ids by name, sharded likewise.
    account_names: Arc<Vec<Arc<NameShard>>>,
}

impl std::fmt::Debug for AuthzIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthzIndex")
            .field("revision", &self.revision)
            .field("roles", &self.roles.len())
            .field("bindings", &self.bindings.len())
            .field("groups", &self.groups.len())
            .finish_non_exhaustive()
    }
}

fn shard_of(id: Uuid) -> usize {
    (id.as_u128() % SHARDS as u128) as usize
}

fn name_shard_of(name: &Name) -> usize {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    (BuildHasherDefault::<DefaultHasher>::default().hash_one(name.as_str()) % SHARDS as u64) as usize
}

/// The `warden:*` permission tree, always on.
pub fn warden_tree() -> PermissionTree {
    let all: Vec<String> = crate::access::Permission::ALL.iter().map(|p| p.as_str().to_owned()).collect();
    PermissionTree::new(true, &all).unwrap_or_default()
}

fn is_warden(permission: &str) -> bool {
    permission == "warden" || permission.starts_with("warden:")
}

/// One way a permission was granted: account → groups → binding → role → permission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Grant {
    /// From the subject to the bound subject: the subject itself, then each group on the way.
    pub path: Vec<Subject>,
    pub binding: Uuid,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub role: Name,
    /// The role's permission that granted it (a tree node when it covers more).
    pub permission: String,
    /// Whether `permission` is a tree node above the requested permission.
    pub via_tree: bool,
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub namespaces: Vec<Namespace>,
}

/// A decision and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Explanation {
    pub allowed: bool,
    /// Every chain that grants it (empty when denied).
    pub grants: Vec<Grant>,
    /// Why nothing granted it, when denied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl AuthzIndex {
    /// Builds the index of `graph` at `revision`.
    pub fn build(revision: i64, graph: DirectoryGraph, app_tree: PermissionTree) -> Self {
        let warden_tree = warden_tree();
        let mut roles = Vec::with_capacity(graph.roles.len());
        let mut role_ids = HashMap::with_capacity(graph.roles.len());
        for role in graph.roles {
            let mut resolved = HashSet::new();
            let mut origin = Vec::new();
            for p in &role.permissions {
                let tree = if is_warden(p) { &warden_tree } else { &app_tree };
                for leaf in tree.expand(p) {
                    origin.push((p.clone(), leaf.clone()));
                    resolved.insert(leaf);
                }
            }
            role_ids.insert(role.id.clone(), roles.len() as u32);
            roles.push(RoleEntry { administrative: role.is_administrative(), role, resolved, origin });
        }

        let mut group_parents: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        let mut per_account: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for (group, kind, member) in graph.memberships {
            if kind == SubjectKind::Group {
                group_parents.entry(member).or_default().push(group);
            } else {
                per_account.entry(member).or_default().push(group);
            }
        }
        let mut accounts: Vec<Shard> = (0..SHARDS).map(|_| Shard::new()).collect();
        let mut account_names: Vec<NameShard> = (0..SHARDS).map(|_| NameShard::new()).collect();
        for (id, kind, name) in graph.accounts {
            let groups = per_account.remove(&id).unwrap_or_default().into_boxed_slice();
            account_names[name_shard_of(&name)].insert(name.clone(), id);
            accounts[shard_of(id)].insert(id, AccountEntry { kind, name, groups });
        }

        let mut bindings = Vec::with_capacity(graph.bindings.len());
        let mut account_bindings: HashMap<Uuid, Vec<u32>> = HashMap::new();
        let mut group_bindings: HashMap<Uuid, Vec<u32>> = HashMap::new();
        for binding in graph.bindings {
            let idx = bindings.len() as u32;
            match binding.subject.kind {
                SubjectKind::Group => group_bindings.entry(binding.subject.id).or_default().push(idx),
                _ => account_bindings.entry(binding.subject.id).or_default().push(idx),
            }
            let role = role_ids.get(&binding.role).copied();
            bindings.push(BindingEntry { binding, role });
        }

        // Inherited bindings per group: its own plus those of every ancestor (the graph is
        // acyclic, so the walk ends).
        let mut groups = HashMap::with_capacity(graph.groups.len());
        let group_ids: HashMap<Name, Uuid> = graph.groups.iter().map(|(id, name)| (name.clone(), *id)).collect();
        for (id, name) in graph.groups {
            let mut inherited: Vec<u32> = Vec::new();
            let mut seen = HashSet::from([id]);
            let mut queue = VecDeque::from([id]);
            while let Some(g) = queue.pop_front() {
                inherited.extend(group_bindings.get(&g).into_iter().flatten());
                for parent in group_parents.get(&g).into_iter().flatten() {
                    if seen.insert(*parent) {
                        queue.push_back(*parent);
                    }
                }
            }
            let parents = group_parents.get(&id).cloned().unwrap_or_default().into_boxed_slice();
            groups.insert(id, GroupEntry { name, parents, inherited: inherited.into_boxed_slice() });
        }

        Self {
            revision,
            app_tree: Arc::new(app_tree),
            warden_tree: Arc::new(warden_tree),
            roles: Arc::new(roles),
            role_ids: Arc::new(role_ids),
            bindings: Arc::new(bindings),
            account_bindings: Arc::new(account_bindings.into_iter().map(|(k, v)| (k, v.into_boxed_slice())).collect()),
            groups: Arc::new(groups),
            group_ids: Arc::new(group_ids),
            accounts: Arc::new(accounts.into_iter().map(Arc::new).collect()),
            account_names: Arc::new(account_names.into_iter().map(Arc::new).collect()),
        }
    }

    /// Applies account changes, copying only the touched shards.
    #[must_use]
    pub fn apply(&self, revision: i64, changes: &[IndexChange]) -> Self {
        let mut next = self.clone();
        next.revision = revision;
        for change in changes {
            next.apply_one(change);
        }
        next
    }

    fn account_mut(&mut self, id: Uuid) -> Option<&mut AccountEntry> {
        Arc::make_mut(&mut Arc::make_mut(&mut self.accounts)[shard_of(id)]).get_mut(&id)
    }

    fn names_mut(&mut self, name: &Name) -> &mut NameShard {
        Arc::make_mut(&mut Arc::make_mut(&mut self.account_names)[name_shard_of(name)])
    }

    fn apply_one(&mut self, change: &IndexChange) {
        match change {
            IndexChange::AccountCreated { account, kind, name } => {
                self.names_mut(name).insert(name.clone(), *account);
                let entry = AccountEntry { kind: *kind, name: name.clone(), groups: Box::default() };
                Arc::make_mut(&mut Arc::make_mut(&mut self.accounts)[shard_of(*account)]).insert(*account, entry);
            }
            IndexChange::AccountRenamed { account, name } => {
                let Some(entry) = self.account_mut(*account) else { return };
                let old = std::mem::replace(&mut entry.name, name.clone());
                self.names_mut(&old).remove(&old);
                self.names_mut(name).insert(name.clone(), *account);
            }
            IndexChange::AccountAdded { group, account } => {
                if let Some(entry) = self.account_mut(*account)
                    && !entry.groups.contains(group)
                {
                    entry.groups = entry.groups.iter().copied().chain([*group]).collect();
                }
            }
            IndexChange::AccountRemoved { group, account } => {
                if let Some(entry) = self.account_mut(*account) {
                    entry.groups = entry.groups.iter().copied().filter(|g| g != group).collect();
                }
            }
            IndexChange::AccountDeleted { account } => {
                let removed = Arc::make_mut(&mut Arc::make_mut(&mut self.accounts)[shard_of(*account)]).remove(account);
                if let Some(entry) = removed {
                    self.names_mut(&entry.name).remove(&entry.name);
                }
                if self.account_bindings.contains_key(account) {
                    Arc::make_mut(&mut self.account_bindings).remove(account);
                }
            }
            IndexChange::GroupCreated { group, name } => {
                Arc::make_mut(&mut self.group_ids).insert(name.clone(), *group);
                let entry = GroupEntry { name: name.clone(), parents: Box::default(), inherited: Box::default() };
                Arc::make_mut(&mut self.groups).insert(*group, entry);
            }
        }
    }

    fn account(&self, id: Uuid) -> Option<&AccountEntry> {
        self.accounts[shard_of(id)].get(&id)
    }

    /// The account or group with this id.
    pub fn subject_by_id(&self, id: Uuid) -> Option<Subject> {
        if let Some(a) = self.account(id) {
            return Some(Subject { kind: a.kind, id, name: a.name.clone() });
        }
        self.groups.get(&id).map(|g| Subject { kind: SubjectKind::Group, id, name: g.name.clone() })
    }

    /// Every subject with this name (an account and a group may share one).
    pub fn subjects_named(&self, name: &Name) -> Vec<Subject> {
        let account = self.account_names[name_shard_of(name)].get(name).and_then(|id| self.subject_by_id(*id));
        let group = self.group_ids.get(name).map(|id| Subject { kind: SubjectKind::Group, id: *id, name: name.clone() });
        account.into_iter().chain(group).collect()
    }

    fn tree_for(&self, permission: &str) -> &PermissionTree {
        if is_warden(permission) { &self.warden_tree } else { &self.app_tree }
    }

    /// The bindings that apply to a subject, before tenant and namespace filters.
    fn candidate_bindings(&self, subject: (SubjectKind, Uuid)) -> impl Iterator<Item = u32> + '_ {
        let (own, groups): (&[u32], &[Uuid]) = match subject.0 {
            SubjectKind::Group => (self.groups.get(&subject.1).map_or(&[][..], |g| &g.inherited), &[]),
            _ => (self.account_bindings.get(&subject.1).map_or(&[][..], |b| b), self.account(subject.1).map_or(&[][..], |a| &a.groups)),
        };
        own.iter().copied().chain(groups.iter().flat_map(|g| self.groups.get(g).map_or(&[][..], |e| &e.inherited)).copied())
    }

    /// Whether `subject` holds `permission` in `tenant` (and `namespace`). `roles` limits the
    /// bindings considered to those of the named roles (API tokens with a role subset).
    pub fn allows(
        &self,
        subject: (SubjectKind, Uuid),
        permission: &str,
        tenant: &str,
        namespace: Option<&Namespace>,
        roles: Option<&[String]>,
    ) -> bool {
        let tree = self.tree_for(permission);
        self.candidate_bindings(subject).any(|idx| {
            let b = &self.bindings[idx as usize];
            let Some(role) = b.role else { return false };
            b.applies(tenant, namespace, roles) && {
                let resolved = &self.roles[role as usize].resolved;
                tree.grants(&|p| resolved.contains(p), permission)
            }
        })
    }

    /// The resolved (leaf) permissions of a subject in a tenant and namespace.
    /// `roles` limits the bindings considered, as in [`Self::allows`].
    pub fn permissions_of(
        &self,
        subject: (SubjectKind, Uuid),
        tenant: &str,
        namespace: Option<&Namespace>,
        roles: Option<&[String]>,
    ) -> Vec<String> {
        let mut out: Vec<String> = self
            .candidate_bindings(subject)
            .filter_map(|idx| {
                let b = &self.bindings[idx as usize];
                (b.applies(tenant, namespace, roles)).then_some(b.role?).map(|r| &self.roles[r as usize].resolved)
            })
            .flatten()
            .cloned()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        out.sort();
        out
    }

    /// A role's resolved (leaf) permissions.
    pub fn role_permissions(&self, role: &Name) -> Option<Vec<String>> {
        let entry = &self.roles[*self.role_ids.get(role)? as usize];
        let mut out: Vec<String> = entry.resolved.iter().cloned().collect();
        out.sort();
        Some(out)
    }

    pub fn role(&self, id: &Name) -> Option<&Role> {
        self.role_ids.get(id).map(|i| &self.roles[*i as usize].role)
    }

    pub fn roles(&self) -> impl Iterator<Item = &Role> {
        self.roles.iter().map(|r| &r.role)
    }

    pub fn group_name(&self, id: Uuid) -> Option<&Name> {
        self.groups.get(&id).map(|g| &g.name)
    }

    /// Whether the subject holds an administrative role ([`Role::is_administrative`]: a
    /// built-in role, or any role with a privileged `warden:*` permission), in any tenant,
    /// directly or through groups. The high-privilege guards ask this, so a custom role that
    /// carries power over Warden is protected exactly like a built-in one.
    pub fn holds_administrative_role(&self, subject: (SubjectKind, Uuid)) -> bool {
        self.candidate_bindings(subject).any(|idx| self.bindings[idx as usize].role.is_some_and(|r| self.roles[r as usize].administrative))
    }

    /// The ids of the roles bound to a subject (directly or through groups), in any tenant.
    pub fn roles_of(&self, subject: (SubjectKind, Uuid)) -> Vec<Name> {
        let mut out: Vec<Name> = self.candidate_bindings(subject).map(|idx| self.bindings[idx as usize].binding.role.clone()).collect();
        out.sort();
        out.dedup();
        out
    }

    /// The ids of the roles bound to a subject in `tenant` (directly or through groups): what
    /// a listing scoped to one tenant may show, without a word about the others.
    pub fn roles_in(&self, subject: (SubjectKind, Uuid), tenant: &str) -> Vec<Name> {
        let mut out: Vec<Name> = self
            .candidate_bindings(subject)
            .map(|idx| &self.bindings[idx as usize].binding)
            .filter(|b| b.tenant.as_str() == tenant)
            .map(|b| b.role.clone())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Names of the groups the subject is effectively a member of.
    pub fn effective_groups(&self, subject: (SubjectKind, Uuid)) -> Vec<Name> {
        self.names_of(self.effective_group_ids(subject))
    }

    /// Names of the groups through which the subject receives a binding in `tenant`: the
    /// effective groups that hold, or inherit from a group they are in, a binding there.
    pub fn groups_toward(&self, subject: (SubjectKind, Uuid), tenant: &str) -> Vec<Name> {
        let ids = self.effective_group_ids(subject).into_iter().filter(|g| {
            self.groups.get(g).is_some_and(|e| e.inherited.iter().any(|idx| self.bindings[*idx as usize].binding.tenant.as_str() == tenant))
        });
        self.names_of(ids.collect())
    }

    fn names_of(&self, ids: HashSet<Uuid>) -> Vec<Name> {
        let mut names: Vec<Name> = ids.into_iter().filter_map(|g| self.group_name(g).cloned()).collect();
        names.sort();
        names
    }

    fn effective_group_ids(&self, subject: (SubjectKind, Uuid)) -> HashSet<Uuid> {
        let start: Vec<Uuid> = match subject.0 {
            SubjectKind::Group => self.groups.get(&subject.1).map(|g| g.parents.to_vec()).unwrap_or_default(),
            _ => self.account(subject.1).map(|a| a.groups.to_vec()).unwrap_or_default(),
        };
        let mut seen: HashSet<Uuid> = HashSet::new();
        let mut queue: VecDeque<Uuid> = start.into();
        while let Some(g) = queue.pop_front() {
            if seen.insert(g) {
                queue.extend(self.groups.get(&g).into_iter().flat_map(|e| e.parents.iter().copied()));
            }
        }
        seen
    }

    /// Shortest path of groups from `subject` up to `target` (both included).
    fn path_to(&self, subject: &Subject, target: Uuid) -> Vec<Subject> {
        if subject.id == target {
            return vec![subject.clone()];
        }
        let first: Vec<Uuid> = match subject.kind {
            SubjectKind::Group => self.groups.get(&subject.id).map(|g| g.parents.to_vec()).unwrap_or_default(),
            _ => self.account(subject.id).map(|a| a.groups.to_vec()).unwrap_or_default(),
        };
        let mut came_from: HashMap<Uuid, Option<Uuid>> = first.iter().map(|g| (*g, None)).collect();
        let mut queue: VecDeque<Uuid> = first.into();
        while let Some(g) = queue.pop_front() {
            if g == target {
                let mut chain = vec![g];
                let mut at = g;
                while let Some(Some(prev)) = came_from.get(&at) {
                    chain.push(*prev);
                    at = *prev;
                }
                chain.reverse();
                let groups = chain
                    .into_iter()
                    .filter_map(|id| self.group_name(id).map(|name| Subject { kind: SubjectKind::Group, id, name: name.clone() }));
                return std::iter::once(subject.clone()).chain(groups).collect();
            }
            for parent in self.groups.get(&g).into_iter().flat_map(|e| e.parents.iter()) {
                if !came_from.contains_key(parent) {
                    came_from.insert(*parent, Some(g));
                    queue.push_back(*parent);
                }
            }
        }
        vec![subject.clone()]
    }

    /// The decision with every chain that grants it, or why nothing does. The reason speaks of
    /// `tenant` only: bindings elsewhere are not counted or named.
    pub fn explain(
        &self,
        subject: &Subject,
        permission: &str,
        tenant: &str,
        namespace: Option<&Namespace>,
        roles: Option<&[String]>,
    ) -> Explanation {
        let tree = self.tree_for(permission);
        let mut grants = Vec::new();
        let mut candidates: Vec<u32> = self.candidate_bindings((subject.kind, subject.id)).collect();
        candidates.sort_unstable();
        candidates.dedup();
        let mut in_tenant = 0;
        for idx in &candidates {
            let b = &self.bindings[*idx as usize];
            if b.binding.tenant.as_str() == tenant {
                in_tenant += 1;
            }
            let Some(role) = b.role else { continue };
            if !b.applies(tenant, namespace, roles) {
                continue;
            }
            let entry = &self.roles[role as usize];
            if !tree.grants(&|p| entry.resolved.contains(p), permission) {
                continue;
            }
            let granted_by = entry
                .role
                .permissions
                .iter()
                .find(|p| tree.covers(p, permission) || *p == permission)
                .or_else(|| entry.origin.iter().find(|(_, leaf)| leaf == permission).map(|(p, _)| p))
                .cloned()
                .unwrap_or_else(|| permission.to_owned());
            grants.push(Grant {
                path: self.path_to(subject, b.binding.subject.id),
                binding: b.binding.id,
                role: b.binding.role.clone(),
                via_tree: granted_by != permission,
                permission: granted_by,
                namespaces: b.binding.namespaces.clone(),
            });
        }
        let reason = grants.is_empty().then(|| {
            if in_tenant == 0 {
                format!("{subject} has no bindings in tenant {tenant}, directly or through groups")
            } else {
                let place = namespace.map_or_else(|| "tenant-wide".to_owned(), |n| format!("in namespace {n}"));
                format!("no role bound to {subject} in tenant {tenant} grants {permission} {place}")
            }
        });
        Explanation { allowed: !grants.is_empty(), grants, reason }
    }
}

/// Checks a tenant or role id.
pub fn parse_id(field: &'static str, raw: &str) -> Result<Name, CoreError> {
    Name::parse(raw).map_err(|e| match e {
        CoreError::Validation { reason, .. } => CoreError::Validation { field, reason },
        other => other,
    })
}

/// The built-in bindings: each built-in group to its role in the default tenant.
pub fn built_in_bindings(at: OffsetDateTime) -> Vec<Binding> {
    BUILT_IN_GROUPS
        .iter()
        .map(|g| Binding {
            id: g.binding,
            role: Name::from_trusted(g.role.to_owned()),
            subject: Subject { kind: SubjectKind::Group, id: g.id, name: Name::from_trusted(g.name.to_owned()) },
            tenant: Name::from_trusted(DEFAULT_TENANT.to_owned()),
            namespaces: Vec::new(),
            created_at: at,
        })
        .collect()
}

#[cfg(test)]
mod tests;
