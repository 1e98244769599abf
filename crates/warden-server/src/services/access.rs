//! Tenants, roles and bindings, and the decisions they produce: the check API and resolved
//! permission listings. Decisions read only the in-memory snapshot.

use uuid::Uuid;
use warden_core::access::{Permission, Principal};
use warden_core::api::{
    BindingQuery, CheckItem, CheckRequest, CheckResponse, CheckResult, CreateBinding, CreateRole, CreateTenant, CreateUser,
    PermissionsQuery, ResolvedPermissions, RolePermissions, UpdateRole,
};
use warden_core::authz::{Binding, Role, RoleSource, Tenant, is_privileged_binding, is_privileged_permission, parse_id};
use warden_core::builtin::{DEFAULT_TENANT, built_in_role, is_built_in_binding};
use warden_core::change::RoleLabel;
use warden_core::model::{self, NameOrId, Subject, SubjectKind, SubjectRef, User};
use warden_core::namespace::Namespace;
use warden_core::permission::validate_permission;
use warden_core::{CoreError, Name};
use warden_store::{Action, BindingFilter, Change};

use super::directory::Directory;
use super::{Context, Result, ServiceError};

/// Most checks one batch may hold.
const MAX_CHECKS: usize = 256;

/// Only an idm_superuser may create or hand out power over Warden.
fn require_superuser_for(actor: &Principal, what: impl std::fmt::Display) -> Result<()> {
    if actor.holds(Permission::Superuser) { Ok(()) } else { Err(CoreError::HighPrivilege(what.to_string()).into()) }
}

#[derive(Clone)]
pub struct Access {
    ctx: Context,
    directory: Directory,
}

pub(crate) fn tenant_of(raw: Option<&str>) -> Result<Name> {
    Ok(parse_id("tenant", raw.map(str::trim).filter(|t| !t.is_empty()).unwrap_or(DEFAULT_TENANT))?)
}

fn namespace_of(raw: Option<&str>) -> Result<Option<Namespace>> {
    Ok(raw.map(str::trim).filter(|n| !n.is_empty()).map(Namespace::parse).transpose()?)
}

/// A role id from a display name: lower-cased, spaces to dashes, other characters dropped.
fn slug(name: &str) -> String {
    let mut out: String = name
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| if c.is_whitespace() { '-' } else { c })
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    while out.ends_with(|c: char| !c.is_ascii_alphanumeric()) {
        out.pop();
    }
    out
}

impl Access {
    pub fn new(ctx: Context, directory: Directory) -> Self {
        Self { ctx, directory }
    }

    fn change(&self, actor: &Principal, action: Action, target: Option<&Subject>) -> Change {
        Change::new(self.ctx.now(), Some(&actor.account), action, target)
    }

    pub(crate) async fn existing_tenant(&self, name: &Name) -> Result<()> {
        match self.ctx.store.tenant(name).await? {
            Some(_) => Ok(()),
            None => Err(ServiceError::NotFound(format!("tenant {name}"))),
        }
    }

    // --- tenants ----------------------------------------------------------------------------

    pub async fn create_tenant(&self, actor: &Principal, req: CreateTenant) -> Result<Tenant> {
        actor.require(Permission::TenantsWrite)?;
        let tenant = Tenant {
            name: parse_id("tenant", &req.name)?,
            description: model::validate_description(req.description)?,
            created_at: self.ctx.now(),
        };
        let change = self.change(actor, Action::TenantCreate { tenant: tenant.name.clone() }, None);
        Ok(self.ctx.store.create_tenant(&change, &tenant).await?)
    }

    pub async fn tenants(&self, actor: &Principal) -> Result<Vec<Tenant>> {
        actor.require(Permission::TenantsRead)?;
        Ok(self.ctx.store.tenants().await?)
    }

    /// Deletes a tenant with its roles and bindings; `default` stays.
    pub async fn delete_tenant(&self, actor: &Principal, name: &str) -> Result<()> {
        actor.require(Permission::TenantsWrite)?;
        let name = parse_id("tenant", name)?;
        if name.as_str() == DEFAULT_TENANT {
            return Err(ServiceError::Protected(name.to_string(), "deleted"));
        }
        let change = self.change(actor, Action::TenantDelete { tenant: name.clone() }, None);
        self.ctx.store.delete_tenant(&change, &name).await?;
        self.ctx.refreshed(()).await
    }

    // --- roles ------------------------------------------------------------------------------

    /// A role as the snapshot knows it (built-in, system or dynamic).
    fn find_role(actor: &Principal, id: &str) -> Result<Role> {
        let id = parse_id("role", id)?;
        actor.index.role(&id).cloned().ok_or_else(|| ServiceError::NotFound(format!("role {id}")))
    }

    /// A role that the actor holds `permission` for (in the role's tenant). Who does not must
    /// not learn whether the role exists: an unknown id and someone else's role answer alike,
    /// `403` unless the actor holds `permission` instance-wide (then only unknown ids remain,
    /// and they are `404`).
    fn role_for(actor: &Principal, id: &str, permission: Permission) -> Result<Role> {
        let id = parse_id("role", id)?;
        match actor.index.role(&id) {
            Some(role) if actor.holds_in(permission, Self::role_tenant(role)) => {
                actor.require_in(permission, Self::role_tenant(role))?;
                Ok(role.clone())
            }
            None if actor.holds(permission) => Err(ServiceError::NotFound(format!("role {id}"))),
            _ => Err(CoreError::Forbidden { permission: permission.as_str().to_owned() }.into()),
        }
    }

    fn role_tenant(role: &Role) -> &str {
        role.tenant.as_ref().map_or(DEFAULT_TENANT, Name::as_str)
    }

    pub async fn create_role(&self, actor: &Principal, req: CreateRole) -> Result<Role> {
        let tenant = tenant_of(req.tenant.as_deref())?;
        actor.require_in(Permission::RolesWrite, tenant.as_str())?;
        if let Some(why) = self.ctx.config.dynamic_roles_off_because() {
            return Err(ServiceError::DynamicRolesDisabled(why));
        }
        let name = model::clean_text("name", Some(req.name), 128)?.ok_or_else(|| CoreError::validation("name", "a role needs a name"))?;
        let id = parse_id("role id", req.id.as_deref().map_or_else(|| slug(&name), str::to_owned).as_str())?;
        for p in &req.permissions {
            validate_permission(p)?;
        }
        // Every refusal that does not depend on the id comes first, so that it answers alike
        // for taken and free ids.
        if let Some(p) = req.permissions.iter().find(|p| is_privileged_permission(p)) {
            require_superuser_for(actor, format!("permission {p}"))?;
        }
        if built_in_role(id.as_str()).is_some() || actor.index.role(&id).is_some() {
            return Err(warden_store::StoreError::NameTaken(id.to_string()).into());
        }
        self.existing_tenant(&tenant).await?;
        let mut seen = std::collections::HashSet::new();
        let permissions: Vec<String> = req.permissions.into_iter().filter(|p| seen.insert(p.clone())).collect();
        let role = Role {
            id,
            tenant: Some(tenant),
            name,
            description: model::validate_description(req.description)?,
            permissions,
            source: RoleSource::Dynamic,
        };
        let action = Action::RoleCreate {
            role: role.id.clone(),
            tenant: role.tenant.clone(),
            permissions: role.permissions.clone(),
            label: Some(RoleLabel { name: role.name.clone(), description: role.description.clone() }),
        };
        let change = self.change(actor, action, None);
        let created = self.ctx.store.create_role(&change, &role).await?;
        self.ctx.refreshed(created).await
    }

    pub fn role(&self, actor: &Principal, id: &str) -> Result<Role> {
        Self::role_for(actor, id, Permission::RolesRead)
    }

    /// Roles visible in `tenant` (built-in roles are visible everywhere), or all of them.
    pub fn roles(&self, actor: &Principal, tenant: Option<&str>) -> Result<Vec<Role>> {
        let tenant = tenant.map(|t| parse_id("tenant", t)).transpose()?;
        actor.require_in(Permission::RolesRead, tenant.as_ref().map_or(DEFAULT_TENANT, Name::as_str))?;
        let mut roles: Vec<Role> = actor
            .index
            .roles()
            .filter(|r| tenant.as_ref().is_none_or(|t| r.tenant.is_none() || r.tenant.as_ref() == Some(t)))
            .cloned()
            .collect();
        roles.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(roles)
    }

    fn mutable_role(&self, actor: &Principal, id: &str) -> Result<Role> {
        let role = Self::role_for(actor, id, Permission::RolesWrite)?;
        match role.source {
            RoleSource::Dynamic => match self.ctx.config.dynamic_roles_off_because() {
                None => Ok(role),
                Some(why) => Err(ServiceError::DynamicRolesDisabled(why)),
            },
            RoleSource::BuiltIn => Err(ServiceError::Immutable(format!("{} is a built-in role and cannot be changed", role.id))),
            RoleSource::System => Err(ServiceError::Immutable(format!(
                "{} is a system role (declared in the configuration file) and cannot be changed through the API",
                role.id
            ))),
        }
    }

    pub async fn update_role(&self, actor: &Principal, id: &str, req: UpdateRole) -> Result<Role> {
        let mut role = self.mutable_role(actor, id)?;
        for p in req.add.iter().chain(&req.remove) {
            validate_permission(p)?;
        }
        if let Some(p) = req.add.iter().chain(&req.remove).chain(&role.permissions).find(|p| is_privileged_permission(p)) {
            require_superuser_for(actor, format!("permission {p}"))?;
        }
        for p in req.add {
            if !role.permissions.contains(&p) {
                role.permissions.push(p);
            }
        }
        role.permissions.retain(|p| !req.remove.contains(p));
        if let Some(description) = req.description {
            role.description = model::validate_description(Some(description))?;
        }
        let action = Action::RoleUpdate {
            role: role.id.clone(),
            permissions: role.permissions.clone(),
            label: Some(RoleLabel { name: role.name.clone(), description: role.description.clone() }),
        };
        let change = self.change(actor, action, None);
        let updated = self.ctx.store.update_role(&change, &role).await?;
        self.ctx.refreshed(updated).await
    }

    pub async fn delete_role(&self, actor: &Principal, id: &str) -> Result<()> {
        let role = self.mutable_role(actor, id)?;
        if role.is_privileged() {
            require_superuser_for(actor, format!("role {}", role.id))?;
        }
        let change = self.change(actor, Action::RoleDelete { role: role.id.clone(), bindings_removed: 0 }, None);
        self.ctx.store.delete_role(&change, &role.id).await?;
        self.ctx.refreshed(()).await
    }

    pub fn role_permissions(&self, actor: &Principal, id: &str) -> Result<RolePermissions> {
        let role = self.role(actor, id)?;
        let permissions = actor.index.role_permissions(&role.id).unwrap_or_default();
        Ok(RolePermissions { role: role.id.to_string(), permissions })
    }

    // --- bindings ---------------------------------------------------------------------------

    /// The role `reference` names, if `actor` may bind it in `tenant`: `bindings:write` there,
    /// a role of that tenant (or a global one), and idm_superuser for power over Warden. Every
    /// binding made on a caller's behalf passes here.
    fn bindable_role(actor: &Principal, reference: &str, tenant: &Name) -> Result<Role> {
        actor.require_in(Permission::BindingsWrite, tenant.as_str())?;
        Self::grantable_role(actor, reference, tenant)
    }

    /// The role `reference` names, if `actor` may have it granted in `tenant` later (by a
    /// registration token): a role of that tenant (or a global one), and idm_superuser for
    /// power over Warden. [`Self::bindable_role`] adds the right to bind now.
    pub(crate) fn grantable_role(actor: &Principal, reference: &str, tenant: &Name) -> Result<Role> {
        let role = Self::find_role(actor, reference)?;
        if let Some(role_tenant) = &role.tenant
            && role_tenant != tenant
        {
            // Another tenant's role is none of a tenant administrator's business.
            if !actor.holds_in(Permission::RolesRead, role_tenant.as_str()) {
                return Err(ServiceError::NotFound(format!("role {}", role.id)));
            }
            return Err(CoreError::validation("role", format!("role {} belongs to tenant {role_tenant}, not {tenant}", role.id)).into());
        }
        // Granting power over Warden is an idm_superuser's alone (tenant_admin excepted, which
        // binding managers may hand out within a tenant other than `default`).
        if is_privileged_binding(&role, tenant.as_str()) {
            require_superuser_for(actor, format!("role {}", role.id))?;
        }
        Ok(role)
    }

    /// Creates a user and binds `req.roles` to it in `req.tenant` (default `default`), all in
    /// one transaction. Each role passes the checks of [`Self::create_binding`] first; one
    /// refused role refuses the whole creation.
    pub async fn create_user(&self, actor: &Principal, mut req: CreateUser) -> Result<User> {
        actor.require(Permission::UsersWrite)?;
        let roles = std::mem::take(&mut req.roles);
        let tenant_raw = req.tenant.take();
        if roles.is_empty() {
            if tenant_raw.is_some() {
                return Err(CoreError::validation("tenant", "a tenant is given only with roles to bind in it").into());
            }
            return self.directory.create_user(actor, req, &[]).await;
        }
        let tenant = tenant_of(tenant_raw.as_deref())?;
        if roles.len() > 64 {
            return Err(CoreError::validation("roles", "at most 64 at creation").into());
        }
        let mut grants = Vec::with_capacity(roles.len());
        for reference in &roles {
            let role = Self::bindable_role(actor, reference, &tenant)?;
            if !grants.iter().any(|r: &Role| r.id == role.id) {
                grants.push(role);
            }
        }
        self.existing_tenant(&tenant).await?;
        let created =
            self.directory.create_user(actor, req, &grants.iter().map(|r| (r.id.clone(), tenant.clone())).collect::<Vec<_>>()).await?;
        self.ctx.refreshed(created).await
    }

    pub async fn create_binding(&self, actor: &Principal, req: CreateBinding) -> Result<Binding> {
        let tenant = tenant_of(req.tenant.as_deref())?;
        let role = Self::bindable_role(actor, &req.role, &tenant)?;
        let subject = self.directory.resolve(&SubjectRef::parse(&req.subject)?).await?;
        let namespaces = req.namespaces.iter().map(|n| Namespace::parse(n)).collect::<Result<Vec<_>, _>>()?;
        if namespaces.len() > 64 {
            return Err(CoreError::validation("namespaces", "at most 64 per binding").into());
        }
        self.existing_tenant(&tenant).await?;
        let binding = Binding { id: Uuid::now_v7(), role: role.id, subject, tenant, namespaces, created_at: self.ctx.now() };
        let action = Action::BindingCreate {
            binding: binding.id,
            role: binding.role.clone(),
            tenant: binding.tenant.clone(),
            namespaces: binding.namespaces.iter().map(ToString::to_string).collect(),
        };
        let change = self.change(actor, action, Some(&binding.subject));
        let created = self.ctx.store.create_binding(&change, &binding).await?;
        self.ctx.refreshed(created).await
    }

    pub async fn bindings(&self, actor: &Principal, query: &BindingQuery) -> Result<Vec<Binding>> {
        let tenant = query.tenant.as_deref().map(|t| parse_id("tenant", t)).transpose()?;
        actor.require_in(Permission::BindingsRead, tenant.as_ref().map_or(DEFAULT_TENANT, Name::as_str))?;
        let subject = match query.subject.as_deref() {
            Some(raw) => Some(self.directory.resolve(&SubjectRef::parse(raw)?).await?.id),
            None => None,
        };
        let role = query.role.as_deref().map(|r| parse_id("role", r)).transpose()?;
        Ok(self.ctx.store.bindings(&BindingFilter { subject, role, tenant }).await?)
    }

    pub async fn delete_binding(&self, actor: &Principal, id: Uuid) -> Result<()> {
        let Some(binding) = self.ctx.store.binding(id).await? else {
            // Who may read no bindings must not learn which exist.
            actor.require(Permission::BindingsRead)?;
            return Err(ServiceError::NotFound(format!("binding {id}")));
        };
        actor.require_in(Permission::BindingsWrite, binding.tenant.as_str())?;
        if is_built_in_binding(id) {
            return Err(ServiceError::Protected(format!("binding {id}"), "deleted"));
        }
        if actor.index.role(&binding.role).is_some_and(|role| is_privileged_binding(role, binding.tenant.as_str())) {
            require_superuser_for(actor, format!("role {}", binding.role))?;
        }
        let action = Action::BindingDelete { binding: binding.id, role: binding.role.clone(), tenant: binding.tenant.clone() };
        let change = self.change(actor, action, Some(&binding.subject));
        self.ctx.store.delete_binding(&change, id).await?;
        self.ctx.refreshed(()).await
    }

    // --- decisions --------------------------------------------------------------------------

    /// Resolves a subject from the snapshot; only a name the snapshot does not know yet (an
    /// account created a moment ago, before the snapshot caught up) is looked up in the store.
    async fn subject(&self, actor: &Principal, reference: &SubjectRef) -> Result<Subject> {
        match Self::subject_in_snapshot(actor, reference) {
            Err(ServiceError::NotFound(_)) => self.directory.resolve(reference).await,
            found => found,
        }
    }

    fn subject_in_snapshot(actor: &Principal, reference: &SubjectRef) -> Result<Subject> {
        let found: Vec<Subject> = match &reference.key {
            NameOrId::Id(id) => actor.index.subject_by_id(*id).into_iter().collect(),
            NameOrId::Name(name) => actor.index.subjects_named(name),
        };
        reference.single(found).map_err(|why| ServiceError::unresolved(why, "subject", reference))
    }

    /// The role limit that applies when `subject` is judged for `actor`: the actor's own token
    /// limit when it asks about itself (what this credential may do), none for anyone else.
    fn limit_for<'a>(actor: &'a Principal, subject: &Subject) -> Option<&'a [String]> {
        if subject.id == actor.account.id { actor.token_roles.as_deref() } else { None }
    }

    /// May `subject` do each permission? Callers need `warden:check`, except for themselves.
    /// The permission is checked before the subject is looked up, so that a caller without it
    /// gets the same answer for real and made-up names.
    pub async fn check(&self, actor: &Principal, req: &CheckRequest) -> Result<CheckResponse> {
        let tenant = tenant_of(req.tenant.as_deref())?;
        let reference = SubjectRef::parse(&req.subject)?;
        if !names_self(actor, &reference) {
            actor.require_in(Permission::Check, tenant.as_str())?;
        }
        let subject = self.subject(actor, &reference).await?;
        if subject.id != actor.account.id {
            actor.require_in(Permission::Check, tenant.as_str())?;
        }
        let mut items: Vec<CheckItem> = req.checks.clone();
        if let Some(permission) = &req.permission {
            items.insert(0, CheckItem { permission: permission.clone(), namespace: req.namespace.clone() });
        }
        if items.is_empty() {
            return Err(CoreError::validation("permission", "name a permission (or a list of checks)").into());
        }
        if items.len() > MAX_CHECKS {
            return Err(CoreError::validation("checks", format!("at most {MAX_CHECKS} per request")).into());
        }
        let index = &actor.index;
        let limit = Self::limit_for(actor, &subject);
        let results = items
            .into_iter()
            .map(|item| {
                validate_permission(&item.permission)?;
                let namespace = namespace_of(item.namespace.as_deref())?;
                let key = (subject.kind, subject.id);
                let (allowed, explanation) = if req.explain {
                    let e = index.explain(&subject, &item.permission, tenant.as_str(), namespace.as_ref(), limit);
                    (e.allowed, Some(e))
                } else {
                    (index.allows(key, &item.permission, tenant.as_str(), namespace.as_ref(), limit), None)
                };
                Ok(CheckResult { permission: item.permission, namespace: namespace.map(|n| n.to_string()), allowed, explanation })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(CheckResponse { subject, tenant: tenant.to_string(), revision: index.revision, results })
    }

    /// The resolved permissions of an account (or group) in a tenant and namespace, with the
    /// roles bound to it there and the groups through which it receives a binding there:
    /// nothing of other tenants. Callers need `warden:check`, or `warden:users:read` (users,
    /// groups) or `warden:service_accounts:read` (service accounts), except for themselves;
    /// that is checked before the subject is looked up.
    pub async fn permissions(&self, actor: &Principal, subject: &str, query: &PermissionsQuery) -> Result<ResolvedPermissions> {
        let tenant = tenant_of(query.tenant.as_deref())?;
        let reference = SubjectRef::parse(subject)?;
        let may_read = |kind: SubjectKind| {
            let needed = if kind == SubjectKind::ServiceAccount { Permission::ServiceAccountsRead } else { Permission::UsersRead };
            actor.holds_in(Permission::Check, tenant.as_str()) || actor.holds_in(needed, tenant.as_str())
        };
        let refused = || ServiceError::from(CoreError::Forbidden { permission: Permission::Check.as_str().to_owned() });
        if !names_self(actor, &reference) {
            // Without a kind, the name could be any: the caller must be able to read them all.
            let readable = match reference.kind {
                Some(kind) => may_read(kind),
                None => may_read(SubjectKind::User) && may_read(SubjectKind::ServiceAccount),
            };
            if !readable {
                return Err(refused());
            }
        }
        let subject = self.subject(actor, &reference).await?;
        if subject.id != actor.account.id && !may_read(subject.kind) {
            return Err(refused());
        }
        let namespace = namespace_of(query.namespace.as_deref())?;
        let key = (subject.kind, subject.id);
        let limit = Self::limit_for(actor, &subject);
        let roles = actor.index.roles_in(key, tenant.as_str());
        Ok(ResolvedPermissions {
            permissions: actor.index.permissions_of(key, tenant.as_str(), namespace.as_ref(), limit),
            roles: roles
                .iter()
                .filter(|r| limit.is_none_or(|only| only.iter().any(|o| o == r.as_str())))
                .map(ToString::to_string)
                .collect(),
            groups: actor.index.groups_toward(key, tenant.as_str()).iter().map(ToString::to_string).collect(),
            subject,
            tenant: tenant.to_string(),
            namespace: namespace.map(|n| n.to_string()),
        })
    }
}

/// Whether `reference` names the actor itself (by id, or by its name and a matching kind).
fn names_self(actor: &Principal, reference: &SubjectRef) -> bool {
    reference.kind.is_none_or(|k| k == actor.account.kind)
        && match &reference.key {
            NameOrId::Id(id) => *id == actor.account.id,
            NameOrId::Name(name) => *name == actor.account.name,
        }
}

#[cfg(test)]
mod tests {
    use super::slug;

    #[test]
    fn role_ids_from_names() {
        assert_eq!(slug("Calendar Editor"), "calendar-editor");
        assert_eq!(slug("  Ops (on-call)! "), "ops-on-call");
    }
}
