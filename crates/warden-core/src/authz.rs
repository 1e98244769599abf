//! Authorization: roles, bindings, tenants, and the in-memory index that answers
//! "may X do P here?" without touching the database.
//!
//! [`AuthzIndex`] is an immutable snapshot built from a [`DirectoryGraph`] (group membership,
//! roles, bindings). It holds, per group, the groups it is effectively a member of and every
//! binding it inherits, and per role the expanded (leaf) permission set, so a check is a few
//! hash lookups: the subject's direct bindings, then the inherited bindings of each group it
//! is directly in. Changes are applied in place, copy-on-write: the maps of accounts and groups
//! are split in small leaves (`Sharded`) and a change copies the few it touches.

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
    #[serde(with = "crate::timestamp")]
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tenant {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub name: Name,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(with = "crate::timestamp")]
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

/// A change the index applies in place, copying only what it touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexChange {
    /// A user or service account was created.
    AccountCreated {
        account: Uuid,
        kind: SubjectKind,
        name: Name,
    },
    /// An account was renamed.
    AccountRenamed {
        account: Uuid,
        name: Name,
    },
    /// An account joined a group.
    AccountAdded {
        group: Uuid,
        account: Uuid,
    },
    /// An account left a group.
    AccountRemoved {
        group: Uuid,
        account: Uuid,
    },
    /// An account was deleted (its memberships and bindings with it).
    AccountDeleted {
        account: Uuid,
    },
    /// An empty group was created.
    GroupCreated {
        group: Uuid,
        name: Name,
    },
    /// A built-in group was created at start-up with its binding.
    BuiltInGroupCreated {
        group: Uuid,
        name: Name,
        binding: IndexedBinding,
    },
    /// Group `member` became a member of `group`.
    GroupNested {
        group: Uuid,
        member: Uuid,
    },
    /// Group `member` left `group`.
    GroupUnnested {
        group: Uuid,
        member: Uuid,
    },
    /// A group was deleted, with its memberships (both ways) and its bindings.
    GroupDeleted {
        group: Uuid,
    },
    /// A dynamic role was created. A built-in or configured role of the same id shadows it.
    RoleCreated {
        role: Role,
    },
    /// A dynamic role's name, description and permissions changed.
    RoleUpdated {
        role: Name,
        name: String,
        description: Option<String>,
        permissions: Vec<String>,
    },
    /// A dynamic role was deleted, and every binding of its id with it.
    RoleDeleted {
        role: Name,
    },
    BindingCreated {
        binding: IndexedBinding,
    },
    BindingDeleted {
        binding: Uuid,
    },
    /// A tenant was deleted: its bindings, its roles and every binding of those roles go.
    TenantDeleted {
        tenant: Name,
    },
}

/// What the index keeps of a binding (a [`Binding`] without its creation time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedBinding {
    pub id: Uuid,
    pub role: Name,
    pub subject: Subject,
    pub tenant: Name,
    pub namespaces: Vec<Namespace>,
}

impl From<Binding> for IndexedBinding {
    fn from(b: Binding) -> Self {
        Self { id: b.id, role: b.role, subject: b.subject, tenant: b.tenant, namespaces: b.namespaces }
    }
}

/// Shards per map, each split in leaves as the map grows.
const SHARDS: usize = 256;

/// Entries per leaf the map is sized for: it doubles its leaves per shard when the average
/// leaf holds twice this.
const LEAF_ENTRIES: usize = 32;

/// How a key picks its shard and leaf: well-spread bits, the low byte for the shard.
trait ShardKey: std::hash::Hash + Eq + Clone {
    fn spread(&self) -> u64;
}

impl ShardKey for Uuid {
    fn spread(&self) -> u64 {
        // v7 ids end in random bits; the low 64 are spread enough.
        self.as_u128() as u64
    }
}

impl ShardKey for Name {
    fn spread(&self) -> u64 {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        BuildHasherDefault::<DefaultHasher>::default().hash_one(self.as_str())
    }
}

/// A leaf: a small hash map.
type Leaf<K, V> = Arc<HashMap<K, V>>;

/// A shard: its table of leaves.
type Shard<K, V> = Arc<Vec<Leaf<K, V>>>;

/// A map in two levels of copy-on-write pieces: 256 shards, each a table of leaves, each leaf
/// a small hash map behind its own `Arc`. Cloning the map copies one pointer; an update copies
/// the shard table (256 pointers), one shard's leaf table and one leaf. The leaves per shard
/// grow with the map (doubling, which re-spreads it once), so a leaf holds about
/// [`LEAF_ENTRIES`] entries at any size and an update costs the same at 10k entries as at 1M.
/// Keys and values are cheap to copy (ids, shared [`Name`]s, entries behind `Arc`), so a leaf
/// copy clones no text and no list.
#[derive(Clone)]
struct Sharded<K, V> {
    shards: Arc<Vec<Shard<K, V>>>,
    /// Leaves per shard, a power of two.
    leaves: usize,
    len: usize,
}

impl<K: ShardKey, V: Clone> Sharded<K, V> {
    /// The leaves per shard for `len` entries.
    fn leaves_for(len: usize) -> usize {
        len.div_ceil(SHARDS * LEAF_ENTRIES).next_power_of_two()
    }

    fn from_map(map: HashMap<K, V>) -> Self {
        let leaves = Self::leaves_for(map.len());
        Self::spread_over(map, leaves)
    }

    fn spread_over(entries: impl IntoIterator<Item = (K, V)>, leaves: usize) -> Self {
        let mut maps: Vec<Vec<HashMap<K, V>>> = (0..SHARDS).map(|_| (0..leaves).map(|_| HashMap::new()).collect()).collect();
        let mut len = 0;
        for (k, v) in entries {
            let (shard, leaf) = Self::place(&k, leaves);
            len += usize::from(maps[shard][leaf].insert(k, v).is_none());
        }
        let shards = maps.into_iter().map(|leaves| Arc::new(leaves.into_iter().map(Arc::new).collect())).collect();
        Self { shards: Arc::new(shards), leaves, len }
    }

    fn place(key: &K, leaves: usize) -> (usize, usize) {
        let bits = key.spread();
        ((bits % SHARDS as u64) as usize, ((bits / SHARDS as u64) % leaves as u64) as usize)
    }

    fn leaf(&self, key: &K) -> &HashMap<K, V> {
        let (shard, leaf) = Self::place(key, self.leaves);
        &self.shards[shard][leaf]
    }

    fn get(&self, key: &K) -> Option<&V> {
        self.leaf(key).get(key)
    }

    fn leaf_mut(&mut self, key: &K) -> &mut HashMap<K, V> {
        let (shard, leaf) = Self::place(key, self.leaves);
        Arc::make_mut(&mut Arc::make_mut(&mut Arc::make_mut(&mut self.shards)[shard])[leaf])
    }

    fn slot_mut(&mut self, key: &K) -> Option<&mut V> {
        if !self.leaf(key).contains_key(key) {
            return None;
        }
        self.leaf_mut(key).get_mut(key)
    }

    fn insert(&mut self, key: K, value: V) {
        if self.leaf_mut(&key).insert(key, value).is_none() {
            self.len += 1;
            if self.len > 2 * SHARDS * self.leaves * LEAF_ENTRIES {
                let entries: Vec<(K, V)> = self.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                *self = Self::spread_over(entries, 2 * self.leaves);
            }
        }
    }

    fn remove(&mut self, key: &K) -> Option<V> {
        if !self.leaf(key).contains_key(key) {
            return None;
        }
        let removed = self.leaf_mut(key).remove(key);
        self.len -= usize::from(removed.is_some());
        removed
    }

    fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.maps().flat_map(|m| m.iter())
    }

    /// Every leaf's map.
    fn maps(&self) -> impl Iterator<Item = &HashMap<K, V>> {
        self.shards.iter().flat_map(|s| s.iter().map(|l| &**l))
    }

    /// Bytes of the two tables above the leaves and of the leaves' own boxes.
    fn overhead(&self) -> usize {
        SHARDS * (8 + 16 + 24) + SHARDS * self.leaves * (8 + 16 + std::mem::size_of::<HashMap<K, V>>())
    }
}

impl<K: ShardKey, E: Clone> Sharded<K, Arc<E>> {
    /// The entry under `key`, copied first if another snapshot shares it.
    fn get_mut(&mut self, key: &K) -> Option<&mut E> {
        self.slot_mut(key).map(Arc::make_mut)
    }
}

/// What the index knows of an account: enough to resolve it and walk its groups.
#[derive(Clone)]
struct AccountEntry {
    kind: SubjectKind,
    name: Name,
    /// Direct groups.
    groups: Box<[Uuid]>,
}

/// A direct account member of a group, in listing order: name (bytes), then kind's name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MemberKey {
    name: Name,
    kind: SubjectKind,
    id: Uuid,
}

impl Ord for MemberKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.name.as_str().as_bytes(), self.kind.as_str(), self.id).cmp(&(other.name.as_str().as_bytes(), other.kind.as_str(), other.id))
    }
}

impl PartialOrd for MemberKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// The sorted direct account members of a group, in chunks behind `Arc`s: a copy-on-write
/// insert or removal copies the chunk pointers and one chunk, not the whole membership, so
/// adding to a group of a million members costs about as much as adding to one of ten.
#[derive(Clone, Default)]
struct MemberSet {
    chunks: Vec<Arc<Vec<MemberKey>>>,
}

const CHUNK: usize = 512;

impl MemberSet {
    fn from_sorted(keys: &[MemberKey]) -> Self {
        Self { chunks: keys.chunks(CHUNK).map(|c| Arc::new(c.to_vec())).collect() }
    }

    /// The chunk that holds `key` or would: the first whose last key is not below it.
    fn chunk_of(&self, key: &MemberKey) -> usize {
        let i = self.chunks.partition_point(|c| c.last().is_some_and(|last| last < key));
        i.min(self.chunks.len().saturating_sub(1))
    }

    fn insert(&mut self, key: MemberKey) {
        if self.chunks.is_empty() {
            self.chunks.push(Arc::new(vec![key]));
            return;
        }
        let i = self.chunk_of(&key);
        let chunk = Arc::make_mut(&mut self.chunks[i]);
        if let Err(at) = chunk.binary_search(&key) {
            chunk.insert(at, key);
            if chunk.len() > 2 * CHUNK {
                let tail = chunk.split_off(CHUNK);
                self.chunks.insert(i + 1, Arc::new(tail));
            }
        }
    }

    fn remove(&mut self, key: &MemberKey) {
        if self.chunks.is_empty() {
            return;
        }
        let i = self.chunk_of(key);
        if let Ok(at) = self.chunks[i].binary_search(key) {
            let chunk = Arc::make_mut(&mut self.chunks[i]);
            chunk.remove(at);
            if chunk.is_empty() {
                self.chunks.remove(i);
            }
        }
    }

    /// The members after the `(name, kind)` cursor (all of them without), in order.
    fn iter_after<'a>(&'a self, after: Option<(&[u8], &str)>) -> impl Iterator<Item = &'a MemberKey> + 'a {
        let (start, skip) = match after {
            None => (0, 0),
            Some(cursor) => {
                let not_after = |k: &MemberKey| (k.name.as_str().as_bytes(), k.kind.as_str()) <= cursor;
                let i = self.chunks.partition_point(|c| c.last().is_some_and(not_after));
                let skip = self.chunks.get(i).map_or(0, |c| c.partition_point(not_after));
                (i, skip)
            }
        };
        self.chunks.iter().skip(start).flat_map(|c| c.iter()).skip(skip)
    }

    fn iter(&self) -> impl Iterator<Item = &MemberKey> {
        self.chunks.iter().flat_map(|c| c.iter())
    }
}

struct RoleEntry {
    role: Role,
    /// [`Role::is_administrative`], decided once per snapshot.
    administrative: bool,
    resolved: HashSet<String>,
    /// `(role permission, leaf)` pairs, for explanations.
    origin: Vec<(String, String)>,
}

impl RoleEntry {
    fn new(role: Role, app_tree: &PermissionTree, warden_tree: &PermissionTree) -> Self {
        let mut resolved = HashSet::new();
        let mut origin = Vec::new();
        for p in &role.permissions {
            let tree = if is_warden(p) { warden_tree } else { app_tree };
            for leaf in tree.expand(p) {
                origin.push((p.clone(), leaf.clone()));
                resolved.insert(leaf);
            }
        }
        Self { administrative: role.is_administrative(), role, resolved, origin }
    }
}

#[derive(Clone)]
struct GroupEntry {
    name: Name,
    /// Direct parent groups.
    parents: Box<[Uuid]>,
    /// Direct member groups.
    children: Box<[Uuid]>,
    /// Bindings of this group itself.
    own: Box<[u32]>,
    /// Bindings of this group and of every group it is effectively a member of.
    inherited: Box<[u32]>,
    /// Direct account members.
    members: Arc<MemberSet>,
}

struct BindingEntry {
    binding: IndexedBinding,
    /// Slot of its role, if the role exists.
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
///
/// Roles and bindings live in slots that never move (a deleted one leaves an empty slot), so
/// that the slot numbers held by accounts and groups stay valid across copy-on-write updates.
#[derive(Clone)]
pub struct AuthzIndex {
    pub revision: i64,
    app_tree: Arc<PermissionTree>,
    warden_tree: Arc<PermissionTree>,
    roles: Arc<Vec<Option<Arc<RoleEntry>>>>,
    role_ids: Arc<HashMap<Name, u32>>,
    bindings: Arc<Vec<Option<Arc<BindingEntry>>>>,
    /// Direct bindings of accounts.
    account_bindings: Sharded<Uuid, Box<[u32]>>,
    groups: Sharded<Uuid, Arc<GroupEntry>>,
    group_ids: Sharded<Name, Uuid>,
    /// Accounts by id, with their direct groups.
    accounts: Sharded<Uuid, Arc<AccountEntry>>,
    account_names: Sharded<Name, Uuid>,
}

impl std::fmt::Debug for AuthzIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthzIndex")
            .field("revision", &self.revision)
            .field("roles", &self.role_ids.len())
            .field("bindings", &self.bindings.iter().flatten().count())
            .finish_non_exhaustive()
    }
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
            role_ids.insert(role.id.clone(), roles.len() as u32);
            roles.push(Some(Arc::new(RoleEntry::new(role, &app_tree, &warden_tree))));
        }

        let mut groups: HashMap<Uuid, GroupEntry> = HashMap::with_capacity(graph.groups.len());
        let mut group_ids = HashMap::with_capacity(graph.groups.len());
        for (id, name) in graph.groups {
            group_ids.insert(name.clone(), id);
            let entry = GroupEntry {
                name,
                parents: Box::default(),
                children: Box::default(),
                own: Box::default(),
                inherited: Box::default(),
                members: Arc::default(),
            };
            groups.insert(id, entry);
        }

        let mut parents: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        let mut children: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        let mut per_account: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for (group, kind, member) in graph.memberships {
            if kind == SubjectKind::Group {
                parents.entry(member).or_default().push(group);
                children.entry(group).or_default().push(member);
            } else {
                per_account.entry(member).or_default().push(group);
            }
        }
        let mut accounts = HashMap::with_capacity(graph.accounts.len());
        let mut account_names = HashMap::with_capacity(graph.accounts.len());
        let mut members: HashMap<Uuid, Vec<MemberKey>> = HashMap::new();
        for (id, kind, name) in graph.accounts {
            let mine = per_account.remove(&id).unwrap_or_default();
            for g in &mine {
                members.entry(*g).or_default().push(MemberKey { name: name.clone(), kind, id });
            }
            account_names.insert(name.clone(), id);
            accounts.insert(id, AccountEntry { kind, name, groups: mine.into_boxed_slice() });
        }

        let mut bindings = Vec::with_capacity(graph.bindings.len());
        let mut account_bindings: HashMap<Uuid, Vec<u32>> = HashMap::new();
        let mut own: HashMap<Uuid, Vec<u32>> = HashMap::new();
        for binding in graph.bindings {
            let slot = bindings.len() as u32;
            match binding.subject.kind {
                SubjectKind::Group => own.entry(binding.subject.id).or_default().push(slot),
                _ => account_bindings.entry(binding.subject.id).or_default().push(slot),
            }
            let role = role_ids.get(&binding.role).copied();
            bindings.push(Some(Arc::new(BindingEntry { binding: binding.into(), role })));
        }

        for (id, entry) in &mut groups {
            entry.parents = parents.remove(id).unwrap_or_default().into_boxed_slice();
            entry.children = children.remove(id).unwrap_or_default().into_boxed_slice();
            entry.own = own.remove(id).unwrap_or_default().into_boxed_slice();
            let mut keys = members.remove(id).unwrap_or_default();
            keys.sort();
            entry.members = Arc::new(MemberSet::from_sorted(&keys));
        }
        let inherited: Vec<(Uuid, Box<[u32]>)> = groups.keys().map(|id| (*id, inherited_of(*id, |g| groups.get(g)))).collect();
        for (id, list) in inherited {
            if let Some(entry) = groups.get_mut(&id) {
                entry.inherited = list;
            }
        }

        Self {
            revision,
            app_tree: Arc::new(app_tree),
            warden_tree: Arc::new(warden_tree),
            roles: Arc::new(roles),
            role_ids: Arc::new(role_ids),
            bindings: Arc::new(bindings),
            account_bindings: Sharded::from_map(account_bindings.into_iter().map(|(k, v)| (k, v.into_boxed_slice())).collect()),
            groups: Sharded::from_map(groups.into_iter().map(|(id, g)| (id, Arc::new(g))).collect()),
            group_ids: Sharded::from_map(group_ids),
            accounts: Sharded::from_map(accounts.into_iter().map(|(id, a)| (id, Arc::new(a))).collect()),
            account_names: Sharded::from_map(account_names),
        }
    }

    /// Applies changes, copying only what they touch: the shards of the accounts and groups
    /// they name, the groups below a nesting, and for role and binding changes the slot
    /// tables (pointers only).
    #[must_use]
    pub fn apply(&self, revision: i64, changes: &[IndexChange]) -> Self {
        let mut next = self.clone();
        next.revision = revision;
        for change in changes {
            next.apply_one(change);
        }
        next
    }

    fn apply_one(&mut self, change: &IndexChange) {
        match change {
            IndexChange::AccountCreated { account, kind, name } => {
                self.account_names.insert(name.clone(), *account);
                self.accounts.insert(*account, Arc::new(AccountEntry { kind: *kind, name: name.clone(), groups: Box::default() }));
            }
            IndexChange::AccountRenamed { account, name } => self.rename_account(*account, name),
            IndexChange::AccountAdded { group, account } => {
                let Some(entry) = self.accounts.get_mut(account) else { return };
                if entry.groups.contains(group) {
                    return;
                }
                entry.groups = entry.groups.iter().copied().chain([*group]).collect();
                let key = MemberKey { name: entry.name.clone(), kind: entry.kind, id: *account };
                self.members_mut(*group, |m| m.insert(key));
            }
            IndexChange::AccountRemoved { group, account } => {
                let Some(entry) = self.accounts.get_mut(account) else { return };
                entry.groups = entry.groups.iter().copied().filter(|g| g != group).collect();
                let key = MemberKey { name: entry.name.clone(), kind: entry.kind, id: *account };
                self.members_mut(*group, |m| m.remove(&key));
            }
            IndexChange::AccountDeleted { account } => self.delete_account(*account),
            IndexChange::GroupCreated { group, name } => self.create_group(*group, name),
            IndexChange::BuiltInGroupCreated { group, name, binding } => {
                self.create_group(*group, name);
                self.create_binding(binding);
            }
            IndexChange::GroupNested { group, member } => {
                let Some(child) = self.groups.get_mut(member) else { return };
                if child.parents.contains(group) {
                    return;
                }
                child.parents = child.parents.iter().copied().chain([*group]).collect();
                if let Some(parent) = self.groups.get_mut(group) {
                    parent.children = parent.children.iter().copied().chain([*member]).collect();
                }
                self.reinherit_below(*member);
            }
            IndexChange::GroupUnnested { group, member } => {
                let Some(child) = self.groups.get_mut(member) else { return };
                child.parents = child.parents.iter().copied().filter(|g| g != group).collect();
                if let Some(parent) = self.groups.get_mut(group) {
                    parent.children = parent.children.iter().copied().filter(|g| g != member).collect();
                }
                self.reinherit_below(*member);
            }
            IndexChange::GroupDeleted { group } => self.delete_group(*group),
            IndexChange::RoleCreated { role } => {
                if self.role_ids.get(&role.id).is_some_and(|slot| self.role_at(*slot).is_some_and(|e| e.role.source != RoleSource::Dynamic))
                {
                    return; // shadowed by a built-in or configured role
                }
                self.put_role(role.clone());
            }
            IndexChange::RoleUpdated { role, name, description, permissions } => {
                let Some(existing) = self.role_ids.get(role).and_then(|slot| self.role_at(*slot)) else { return };
                if existing.role.source != RoleSource::Dynamic {
                    return;
                }
                let updated = Role {
                    name: name.clone(),
                    description: description.clone(),
                    permissions: permissions.clone(),
                    ..existing.role.clone()
                };
                self.put_role(updated);
            }
            IndexChange::RoleDeleted { role } => {
                self.remove_bindings(|b| b.role == *role);
                self.remove_dynamic_role(role);
            }
            IndexChange::BindingCreated { binding } => self.create_binding(binding),
            IndexChange::BindingDeleted { binding } => self.remove_bindings(|b| b.id == *binding),
            IndexChange::TenantDeleted { tenant } => {
                let doomed: Vec<Name> = self
                    .roles
                    .iter()
                    .flatten()
                    .filter(|e| e.role.source == RoleSource::Dynamic && e.role.tenant.as_ref() == Some(tenant))
                    .map(|e| e.role.id.clone())
                    .collect();
                self.remove_bindings(|b| b.tenant == *tenant || doomed.contains(&b.role));
                for role in &doomed {
                    self.remove_dynamic_role(role);
                }
            }
        }
    }

    fn role_at(&self, slot: u32) -> Option<&RoleEntry> {
        self.roles.get(slot as usize).and_then(|r| r.as_deref())
    }

    fn binding_at(&self, slot: u32) -> Option<&BindingEntry> {
        self.bindings.get(slot as usize).and_then(|b| b.as_deref())
    }

    fn members_mut(&mut self, group: Uuid, change: impl FnOnce(&mut MemberSet)) {
        if let Some(entry) = self.groups.get_mut(&group) {
            change(Arc::make_mut(&mut entry.members));
        }
    }

    fn rename_account(&mut self, account: Uuid, name: &Name) {
        let Some(entry) = self.accounts.get_mut(&account) else { return };
        let old = std::mem::replace(&mut entry.name, name.clone());
        let (kind, groups) = (entry.kind, entry.groups.clone());
        self.account_names.remove(&old);
        self.account_names.insert(name.clone(), account);
        for g in groups {
            self.members_mut(g, |m| {
                m.remove(&MemberKey { name: old.clone(), kind, id: account });
                m.insert(MemberKey { name: name.clone(), kind, id: account });
            });
        }
    }

    fn delete_account(&mut self, account: Uuid) {
        if let Some(entry) = self.accounts.remove(&account) {
            self.account_names.remove(&entry.name);
            for g in entry.groups.iter().copied() {
                let key = MemberKey { name: entry.name.clone(), kind: entry.kind, id: account };
                self.members_mut(g, |m| m.remove(&key));
            }
        }
        if let Some(slots) = self.account_bindings.remove(&account) {
            let table = Arc::make_mut(&mut self.bindings);
            for slot in slots {
                table[slot as usize] = None;
            }
        }
    }

    fn create_group(&mut self, group: Uuid, name: &Name) {
        if self.groups.get(&group).is_some() {
            return;
        }
        self.group_ids.insert(name.clone(), group);
        let entry = GroupEntry {
            name: name.clone(),
            parents: Box::default(),
            children: Box::default(),
            own: Box::default(),
            inherited: Box::default(),
            members: Arc::default(),
        };
        self.groups.insert(group, Arc::new(entry));
    }

    fn delete_group(&mut self, group: Uuid) {
        let Some(entry) = self.groups.remove(&group) else { return };
        if self.group_ids.get(&entry.name) == Some(&group) {
            self.group_ids.remove(&entry.name);
        }
        for key in entry.members.iter() {
            if let Some(account) = self.accounts.get_mut(&key.id) {
                account.groups = account.groups.iter().copied().filter(|g| *g != group).collect();
            }
        }
        for parent in &entry.parents {
            if let Some(p) = self.groups.get_mut(parent) {
                p.children = p.children.iter().copied().filter(|g| *g != group).collect();
            }
        }
        for child in &entry.children {
            if let Some(c) = self.groups.get_mut(child) {
                c.parents = c.parents.iter().copied().filter(|g| *g != group).collect();
            }
        }
        if !entry.own.is_empty() {
            let table = Arc::make_mut(&mut self.bindings);
            for slot in &entry.own {
                table[*slot as usize] = None;
            }
        }
        for child in &entry.children {
            self.reinherit_below(*child);
        }
    }

    /// Puts a role in its slot (a new one if the id is new), then points the bindings of its
    /// id that had no role at it.
    fn put_role(&mut self, role: Role) {
        let id = role.id.clone();
        let entry = Arc::new(RoleEntry::new(role, &self.app_tree, &self.warden_tree));
        let slot = if let Some(slot) = self.role_ids.get(&id).copied() {
            Arc::make_mut(&mut self.roles)[slot as usize] = Some(entry);
            slot
        } else {
            let roles = Arc::make_mut(&mut self.roles);
            roles.push(Some(entry));
            let slot = (roles.len() - 1) as u32;
            Arc::make_mut(&mut self.role_ids).insert(id.clone(), slot);
            slot
        };
        let stale = |b: &Option<Arc<BindingEntry>>| b.as_ref().is_some_and(|b| b.binding.role == id && b.role != Some(slot));
        if self.bindings.iter().any(stale) {
            for b in Arc::make_mut(&mut self.bindings).iter_mut().filter(|b| stale(b)) {
                *b = b.as_ref().map(|e| Arc::new(BindingEntry { binding: e.binding.clone(), role: Some(slot) }));
            }
        }
    }

    fn remove_dynamic_role(&mut self, role: &Name) {
        let Some(slot) = self.role_ids.get(role).copied() else { return };
        if self.role_at(slot).is_some_and(|e| e.role.source == RoleSource::Dynamic) {
            Arc::make_mut(&mut self.roles)[slot as usize] = None;
            Arc::make_mut(&mut self.role_ids).remove(role);
        }
    }

    fn create_binding(&mut self, binding: &IndexedBinding) {
        let bindings = Arc::make_mut(&mut self.bindings);
        let slot = bindings.len() as u32;
        let role = self.role_ids.get(&binding.role).copied();
        bindings.push(Some(Arc::new(BindingEntry { binding: binding.clone(), role })));
        let subject = binding.subject.id;
        if binding.subject.kind == SubjectKind::Group {
            let Some(group) = self.groups.get_mut(&subject) else { return };
            group.own = group.own.iter().copied().chain([slot]).collect();
            self.reinherit_below(subject);
        } else {
            let list = self.account_bindings.get(&subject).map_or(&[][..], |l| l).iter().copied().chain([slot]).collect();
            self.account_bindings.insert(subject, list);
        }
    }

    /// Empties the slots of the bindings `doomed` picks and detaches them from their subjects.
    fn remove_bindings(&mut self, doomed: impl Fn(&IndexedBinding) -> bool) {
        let slots: HashSet<u32> = self
            .bindings
            .iter()
            .enumerate()
            .filter(|(_, b)| b.as_ref().is_some_and(|b| doomed(&b.binding)))
            .map(|(i, _)| i as u32)
            .collect();
        if slots.is_empty() {
            return;
        }
        let mut groups = Vec::new();
        let mut accounts = Vec::new();
        let table = Arc::make_mut(&mut self.bindings);
        for slot in &slots {
            if let Some(b) = table[*slot as usize].take() {
                match b.binding.subject.kind {
                    SubjectKind::Group => groups.push(b.binding.subject.id),
                    _ => accounts.push(b.binding.subject.id),
                }
            }
        }
        for account in accounts {
            if let Some(list) = self.account_bindings.slot_mut(&account) {
                *list = list.iter().copied().filter(|s| !slots.contains(s)).collect();
                if list.is_empty() {
                    self.account_bindings.remove(&account);
                }
            }
        }
        for group in groups {
            if let Some(entry) = self.groups.get_mut(&group) {
                entry.own = entry.own.iter().copied().filter(|s| !slots.contains(s)).collect();
                self.reinherit_below(group);
            }
        }
    }

    /// Recomputes the inherited bindings of `start` and of every group below it: the only
    /// groups whose ancestors or whose ancestors' bindings a change at `start` can alter.
    fn reinherit_below(&mut self, start: Uuid) {
        let mut order = Vec::new();
        let mut seen = HashSet::from([start]);
        let mut queue = VecDeque::from([start]);
        while let Some(g) = queue.pop_front() {
            order.push(g);
            for child in self.groups.get(&g).into_iter().flat_map(|e| e.children.iter()) {
                if seen.insert(*child) {
                    queue.push_back(*child);
                }
            }
        }
        for g in order {
            let inherited = inherited_of(g, |id| self.groups.get(id).map(Arc::as_ref));
            if let Some(entry) = self.groups.get_mut(&g) {
                entry.inherited = inherited;
            }
        }
    }

    /// One page of the effective members of `group`, in listing order (name in byte order,
    /// then kind), after the `(name, kind)` cursor: every account in it or in a group nested
    /// in it, and every nested group, each flagged `direct` when it is a member of `group`
    /// itself. Returns at most `limit` entries, or `None` if the group is unknown.
    pub fn effective_members(&self, group: Uuid, after: Option<(&str, &str)>, limit: usize) -> Option<Vec<(Subject, bool)>> {
        let top = self.groups.get(&group)?;
        let mut below = Vec::new();
        let mut seen = HashSet::from([group]);
        let mut queue = VecDeque::from([group]);
        while let Some(g) = queue.pop_front() {
            below.push(g);
            for child in self.groups.get(&g).into_iter().flat_map(|e| e.children.iter()) {
                if seen.insert(*child) {
                    queue.push_back(*child);
                }
            }
        }
        let after_key = after.map(|(n, k)| (n.as_bytes(), k));
        let is_after = |name: &str, kind: SubjectKind| after_key.is_none_or(|cursor| (name.as_bytes(), kind.as_str()) > cursor);
        let mut out: Vec<(Subject, bool)> = Vec::new();
        for g in &below {
            let Some(entry) = self.groups.get(g) else { continue };
            if *g != group && is_after(entry.name.as_str(), SubjectKind::Group) {
                let subject = Subject { kind: SubjectKind::Group, id: *g, name: entry.name.clone() };
                out.push((subject, top.children.contains(g)));
            }
            let members = entry.members.iter_after(after_key).take(limit);
            out.extend(members.map(|k| (Subject { kind: k.kind, id: k.id, name: k.name.clone() }, *g == group)));
        }
        out.sort_by(|a, b| {
            (a.0.name.as_str().as_bytes(), a.0.kind.as_str(), !a.1).cmp(&(b.0.name.as_str().as_bytes(), b.0.kind.as_str(), !b.1))
        });
        out.dedup_by(|later, first| later.0.id == first.0.id);
        out.truncate(limit);
        Some(out)
    }

    /// One page of the direct members of `group` (accounts and nested groups), in the same
    /// order and cursor as [`Self::effective_members`]: the group's own ordered member set read
    /// from the cursor on, merged with its child groups. `None` if the group is unknown.
    pub fn direct_members(&self, group: Uuid, after: Option<(&str, &str)>, limit: usize) -> Option<Vec<(Subject, bool)>> {
        let top = self.groups.get(&group)?;
        let after_key = after.map(|(n, k)| (n.as_bytes(), k));
        let is_after = |name: &str, kind: SubjectKind| after_key.is_none_or(|cursor| (name.as_bytes(), kind.as_str()) > cursor);
        let mut out: Vec<(Subject, bool)> = top
            .children
            .iter()
            .filter_map(|g| self.groups.get(g).map(|e| (*g, e)))
            .filter(|(_, e)| is_after(e.name.as_str(), SubjectKind::Group))
            .map(|(g, e)| (Subject { kind: SubjectKind::Group, id: g, name: e.name.clone() }, true))
            .collect();
        out.extend(top.members.iter_after(after_key).take(limit).map(|k| (Subject { kind: k.kind, id: k.id, name: k.name.clone() }, true)));
        out.sort_by(|a, b| (a.0.name.as_str().as_bytes(), a.0.kind.as_str()).cmp(&(b.0.name.as_str().as_bytes(), b.0.kind.as_str())));
        out.truncate(limit);
        Some(out)
    }

    /// One page of the groups `subject` is in (directly, or also through nesting with
    /// `effective`), in listing order (name in byte order), after the `(name, kind)` cursor of
    /// the members listing, at most `limit`; each flagged `direct` when the subject is a member
    /// of it itself.
    pub fn groups_of(
        &self,
        subject: (SubjectKind, Uuid),
        effective: bool,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Vec<(Subject, bool)> {
        let direct: &[Uuid] = match subject.0 {
            SubjectKind::Group => self.groups.get(&subject.1).map_or(&[][..], |g| &g.parents),
            _ => self.accounts.get(&subject.1).map_or(&[][..], |a| &a.groups),
        };
        let ids: HashSet<Uuid> = if effective { self.effective_group_ids(subject) } else { direct.iter().copied().collect() };
        let after = after.map(|(n, k)| (n.as_bytes(), k));
        let mut out: Vec<(Subject, bool)> = ids
            .into_iter()
            .filter_map(|id| {
                self.group_name(id).map(|name| (Subject { kind: SubjectKind::Group, id, name: name.clone() }, direct.contains(&id)))
            })
            .filter(|(s, _)| after.is_none_or(|cursor| (s.name.as_str().as_bytes(), SubjectKind::Group.as_str()) > cursor))
            .collect();
        out.sort_by(|a, b| a.0.name.as_str().as_bytes().cmp(b.0.name.as_str().as_bytes()));
        out.truncate(limit);
        out
    }

    /// Estimated bytes held by each structure of the snapshot (entries, hash-table slack and
    /// the names and lists they own; the allocator's own overhead is not counted): where the
    /// memory per account goes. A name is shared by every structure that holds it, and is
    /// counted once, with its account or group.
    pub fn footprint(&self) -> Vec<(&'static str, usize)> {
        use std::mem::size_of;
        fn table<K, V>(map: &HashMap<K, V>) -> usize {
            // hashbrown: one control byte per bucket, buckets = capacity / 7 * 8.
            map.capacity() * 8 / 7 * (size_of::<(K, V)>() + 1)
        }
        fn name(n: &Name) -> usize {
            16 + n.as_str().len().next_multiple_of(8)
        }
        let entry = |size: usize| 16 + size;
        let accounts: usize = self.accounts.overhead()
            + self
                .accounts
                .maps()
                .map(|s| {
                    table(s) + s.values().map(|a| entry(size_of::<AccountEntry>()) + name(&a.name) + a.groups.len() * 16).sum::<usize>()
                })
                .sum::<usize>();
        let account_names: usize = self.account_names.overhead() + self.account_names.maps().map(table).sum::<usize>();
        let groups: usize = self.groups.overhead()
            + self
                .groups
                .maps()
                .map(|s| {
                    table(s)
                        + s.values()
                            .map(|g| {
                                entry(size_of::<GroupEntry>())
                                    + name(&g.name)
                                    + (g.parents.len() + g.children.len()) * 16
                                    + (g.own.len() + g.inherited.len()) * 4
                                    + size_of::<MemberSet>()
                                    + 16
                            })
                            .sum::<usize>()
                })
                .sum::<usize>();
        let members: usize = self
            .groups
            .maps()
            .flat_map(|s| s.values())
            .map(|g| {
                g.members.chunks.capacity() * 8 + g.members.chunks.iter().map(|c| 16 + c.capacity() * size_of::<MemberKey>()).sum::<usize>()
            })
            .sum();
        let group_names: usize = self.group_ids.overhead() + self.group_ids.maps().map(table).sum::<usize>();
        let bindings = self.bindings.capacity() * 8
            + self.bindings.iter().flatten().map(|b| 16 + size_of::<BindingEntry>() + name(&b.binding.subject.name) + 64).sum::<usize>()
            + self.account_bindings.overhead()
            + self.account_bindings.maps().map(table).sum::<usize>()
            + self.account_bindings.iter().map(|(_, v)| v.len() * 4).sum::<usize>();
        let roles = self.roles.capacity() * 8
            + self
                .roles
                .iter()
                .flatten()
                .map(|r| 16 + size_of::<RoleEntry>() + r.resolved.capacity() * 40 + r.origin.capacity() * 48)
                .sum::<usize>()
            + table(&self.role_ids);
        vec![
            ("accounts (id → kind, name, direct groups)", accounts),
            ("account names (name → id)", account_names),
            ("groups (parents, children, bindings, inherited)", groups),
            ("group members (sorted, chunked)", members),
            ("group names (name → id)", group_names),
            ("bindings", bindings),
            ("roles (expanded permissions)", roles),
        ]
    }

    /// Everything the index holds, in a canonical order: two indexes that answer alike dump
    /// alike, whatever sequence of changes made them.
    #[cfg(test)]
    pub(crate) fn canonical(&self) -> String {
        use std::fmt::Write;
        let binding_ids = |slots: &[u32]| {
            let mut ids: Vec<Uuid> = slots.iter().filter_map(|s| self.binding_at(*s)).map(|b| b.binding.id).collect();
            ids.sort();
            ids
        };
        let sorted = |ids: &[Uuid]| {
            let mut ids = ids.to_vec();
            ids.sort();
            ids
        };
        let mut out = String::new();
        let mut accounts: Vec<_> = self.accounts.iter().collect();
        accounts.sort_by_key(|(id, _)| **id);
        for (id, a) in accounts {
            let _ = writeln!(out, "account {id} {:?} {} groups={:?}", a.kind, a.name, sorted(&a.groups));
        }
        let mut names: Vec<_> = self.account_names.iter().collect();
        names.sort();
        let _ = writeln!(out, "account names {names:?}");
        let mut groups: Vec<_> = self.groups.iter().collect();
        groups.sort_by_key(|(id, _)| **id);
        for (id, g) in groups {
            let members: Vec<_> = g.members.iter().map(|k| (k.name.as_str(), k.kind, k.id)).collect();
            let _ = writeln!(
                out,
                "group {id} {} parents={:?} children={:?} own={:?} inherited={:?} members={members:?}",
                g.name,
                sorted(&g.parents),
                sorted(&g.children),
                binding_ids(&g.own),
                binding_ids(&g.inherited)
            );
        }
        let mut names: Vec<_> = self.group_ids.iter().collect();
        names.sort();
        let _ = writeln!(out, "group names {names:?}");
        let mut roles: Vec<_> = self.role_ids.iter().filter_map(|(id, slot)| Some((id, self.role_at(*slot)?))).collect();
        roles.sort_by(|a, b| a.0.cmp(b.0));
        for (id, r) in roles {
            let mut resolved: Vec<_> = r.resolved.iter().collect();
            resolved.sort();
            let mut origin = r.origin.clone();
            origin.sort();
            let _ = writeln!(out, "role {id} {:?} admin={} resolved={resolved:?} origin={origin:?}", r.role, r.administrative);
        }
        let mut bindings: Vec<_> = self.bindings.iter().flatten().collect();
        bindings.sort_by_key(|b| b.binding.id);
        for b in bindings {
            let role = b.role.and_then(|s| self.role_at(s)).map(|r| r.role.id.clone());
            let _ = writeln!(out, "binding {:?} role={role:?}", b.binding);
        }
        let mut direct: Vec<_> = self.account_bindings.iter().filter(|(_, s)| !s.is_empty()).map(|(a, s)| (*a, binding_ids(s))).collect();
        direct.sort();
        let _ = writeln!(out, "account bindings {direct:?}");
        out
    }
}

/// The bindings a group inherits: its own, then those of each group above it, nearest first
/// (the graph is acyclic, so the walk ends).
fn inherited_of<'a>(start: Uuid, group: impl Fn(&Uuid) -> Option<&'a GroupEntry>) -> Box<[u32]> {
    let mut inherited = Vec::new();
    let mut seen = HashSet::from([start]);
    let mut queue = VecDeque::from([start]);
    while let Some(g) = queue.pop_front() {
        let Some(entry) = group(&g) else { continue };
        inherited.extend(entry.own.iter().copied());
        for parent in &entry.parents {
            if seen.insert(*parent) {
                queue.push_back(*parent);
            }
        }
    }
    inherited.into_boxed_slice()
}

impl AuthzIndex {
    fn account(&self, id: Uuid) -> Option<&AccountEntry> {
        self.accounts.get(&id).map(Arc::as_ref)
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
        let account = self.account_names.get(name).and_then(|id| self.subject_by_id(*id));
        let group = self.group_ids.get(name).map(|id| Subject { kind: SubjectKind::Group, id: *id, name: name.clone() });
        account.into_iter().chain(group).collect()
    }

    fn tree_for(&self, permission: &str) -> &PermissionTree {
        if is_warden(permission) { &self.warden_tree } else { &self.app_tree }
    }

    /// The bindings that apply to a subject, before tenant and namespace filters.
    fn candidate_bindings(&self, subject: (SubjectKind, Uuid)) -> impl Iterator<Item = &BindingEntry> + '_ {
        let (own, groups): (&[u32], &[Uuid]) = match subject.0 {
            SubjectKind::Group => (self.groups.get(&subject.1).map_or(&[][..], |g| &g.inherited), &[]),
            _ => (self.account_bindings.get(&subject.1).map_or(&[][..], |b| b), self.account(subject.1).map_or(&[][..], |a| &a.groups)),
        };
        own.iter()
            .chain(groups.iter().flat_map(|g| self.groups.get(g).map_or(&[][..], |e| &e.inherited)))
            .filter_map(|slot| self.binding_at(*slot))
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
        self.candidate_bindings(subject).any(|b| {
            let Some(role) = b.role.and_then(|r| self.role_at(r)) else { return false };
            b.applies(tenant, namespace, roles) && tree.grants(&|p| role.resolved.contains(p), permission)
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
            .filter(|b| b.applies(tenant, namespace, roles))
            .filter_map(|b| self.role_at(b.role?).map(|r| &r.resolved))
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
        let entry = self.role_at(*self.role_ids.get(role)?)?;
        let mut out: Vec<String> = entry.resolved.iter().cloned().collect();
        out.sort();
        Some(out)
    }

    pub fn role(&self, id: &Name) -> Option<&Role> {
        self.role_ids.get(id).and_then(|i| self.role_at(*i)).map(|r| &r.role)
    }

    pub fn roles(&self) -> impl Iterator<Item = &Role> {
        self.roles.iter().flatten().map(|r| &r.role)
    }

    pub fn group_name(&self, id: Uuid) -> Option<&Name> {
        self.groups.get(&id).map(|g| &g.name)
    }

    /// Whether the subject holds an administrative role ([`Role::is_administrative`]: a
    /// built-in role, or any role with a privileged `warden:*` permission), in any tenant,
    /// directly or through groups. The high-privilege guards ask this, so a custom role that
    /// carries power over Warden is protected exactly like a built-in one.
    pub fn holds_administrative_role(&self, subject: (SubjectKind, Uuid)) -> bool {
        self.candidate_bindings(subject).any(|b| b.role.and_then(|r| self.role_at(r)).is_some_and(|r| r.administrative))
    }

    /// Whether a binding of `role` reaches the subject (directly or through groups), in any
    /// tenant: [`Self::roles_of`] without building the list.
    pub fn holds_role(&self, subject: (SubjectKind, Uuid), role: &Name) -> bool {
        self.candidate_bindings(subject).any(|b| b.binding.role == *role)
    }

    /// Whether the subject is an effective member of the group named `group` (directly or
    /// through nested groups); `false` when there is no such group.
    pub fn is_effective_member_of(&self, subject: (SubjectKind, Uuid), group: &Name) -> bool {
        let Some(target) = self.group_ids.get(group) else { return false };
        let start: &[Uuid] = match subject.0 {
            SubjectKind::Group => self.groups.get(&subject.1).map_or(&[][..], |g| &g.parents),
            _ => self.account(subject.1).map_or(&[][..], |a| &a.groups),
        };
        let mut seen: HashSet<Uuid> = HashSet::new();
        let mut queue: VecDeque<Uuid> = start.iter().copied().collect();
        while let Some(g) = queue.pop_front() {
            if g == *target {
                return true;
            }
            if seen.insert(g) {
                queue.extend(self.groups.get(&g).into_iter().flat_map(|e| e.parents.iter().copied()));
            }
        }
        false
    }

    /// The ids of the roles bound to a subject (directly or through groups), in any tenant.
    pub fn roles_of(&self, subject: (SubjectKind, Uuid)) -> Vec<Name> {
        let mut out: Vec<Name> = self.candidate_bindings(subject).map(|b| b.binding.role.clone()).collect();
        out.sort();
        out.dedup();
        out
    }

    /// The ids of the roles bound to a subject in `tenant` (directly or through groups): what
    /// a listing scoped to one tenant may show, without a word about the others.
    pub fn roles_in(&self, subject: (SubjectKind, Uuid), tenant: &str) -> Vec<Name> {
        let mut out: Vec<Name> =
            self.candidate_bindings(subject).map(|b| &b.binding).filter(|b| b.tenant.as_str() == tenant).map(|b| b.role.clone()).collect();
        out.sort();
        out.dedup();
        out
    }

    /// The bindings that reach a subject, each once: its own and those of every group it is
    /// in, directly or through nesting (each binding's `subject` says who holds it), in
    /// (tenant, role, id) order.
    pub fn bindings_reaching(&self, subject: (SubjectKind, Uuid)) -> Vec<&IndexedBinding> {
        let mut out: Vec<&IndexedBinding> = self.candidate_bindings(subject).map(|b| &b.binding).collect();
        out.sort_by(|a, b| (a.tenant.as_str(), a.role.as_str(), a.id).cmp(&(b.tenant.as_str(), b.role.as_str(), b.id)));
        out.dedup_by_key(|b| b.id);
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
            self.groups
                .get(g)
                .is_some_and(|e| e.inherited.iter().any(|slot| self.binding_at(*slot).is_some_and(|b| b.binding.tenant.as_str() == tenant)))
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
        // In binding id order (creation order for v7 ids): the same whatever history built
        // the snapshot.
        let mut candidates: Vec<&BindingEntry> = self.candidate_bindings((subject.kind, subject.id)).collect();
        candidates.sort_unstable_by_key(|b| b.binding.id);
        candidates.dedup_by_key(|b| b.binding.id);
        let mut in_tenant = 0;
        for b in candidates {
            if b.binding.tenant.as_str() == tenant {
                in_tenant += 1;
            }
            let Some(entry) = b.role.and_then(|r| self.role_at(r)) else { continue };
            if !b.applies(tenant, namespace, roles) {
                continue;
            }
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
        CoreError::Validation { reason, .. } => CoreError::Validation { field: field.into(), reason },
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
