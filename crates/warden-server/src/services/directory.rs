//! Users, service accounts, groups and membership: the directory's use cases.

use time::OffsetDateTime;
use uuid::Uuid;
use warden_core::access::{Permission, Principal};
use warden_core::api::{
    AccountGroups, AddMembers, CreateGroup, CreateServiceAccount, CreateUser, Expanded, Expansion, HeldRole, MemberEntry, Page, UpdateUser,
};
use warden_core::authz::Binding;
use warden_core::builtin::{built_in_group, is_built_in_name};
use warden_core::credential::{InitialPassword, Secret};
use warden_core::model::{self, Group, NameOrId, Profile, ServiceAccount, Subject, SubjectKind, SubjectRef, User};
use warden_core::{CoreError, Name};
use warden_store::{Action, Change, ListQuery, NameReservation, StoreError};

use super::{Context, Result, ServiceError};

/// Filters of a list request, as the API receives them.
#[derive(Debug, Clone, Default)]
pub struct ListRequest {
    pub prefix: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

impl ListRequest {
    fn query(&self) -> ListQuery {
        ListQuery {
            prefix: self.prefix.as_deref().map(|p| p.trim().to_lowercase()).filter(|p| !p.is_empty()),
            after: self.cursor.clone().filter(|c| !c.is_empty()),
            limit: self.limit.unwrap_or(0),
        }
    }
}

#[derive(Clone)]
pub struct Directory {
    ctx: Context,
}

pub(crate) fn protect(subject: &Subject, what: &'static str) -> Result<()> {
    if model::is_break_glass(subject.id) { Err(ServiceError::Protected(subject.name.to_string(), what)) } else { Ok(()) }
}

/// Break-glass accounts and built-in groups cannot be deleted, renamed or disabled.
fn protect_group(group: &Subject, what: &'static str) -> Result<()> {
    if built_in_group(group.id).is_some() { Err(ServiceError::Protected(group.name.to_string(), what)) } else { Ok(()) }
}

/// A name for a new or renamed account. The names Warden itself uses (break-glass accounts,
/// built-in groups and roles) are taken for everyone, so that no account passes for one of
/// Warden's own in identity headers and logs.
fn account_name(raw: &str) -> Result<Name> {
    let name = Name::parse(raw)?;
    if is_built_in_name(name.as_str()) {
        return Err(StoreError::NameTaken(name.to_string()).into());
    }
    Ok(name)
}

/// One binding (with its `binding.create` change, by `actor`) per role × tenant, for a new
/// account `subject`: what [`Directory::create_user`] and registration write with the user.
pub(crate) fn new_bindings(
    subject: &Subject,
    roles: &[(Name, Name)],
    at: OffsetDateTime,
    actor: Option<&Subject>,
) -> Vec<(Change, Binding)> {
    roles
        .iter()
        .map(|(role, tenant)| {
            let binding = Binding {
                id: Uuid::now_v7(),
                role: role.clone(),
                subject: subject.clone(),
                tenant: tenant.clone(),
                namespaces: Vec::new(),
                created_at: at,
            };
            let action = Action::BindingCreate { binding: binding.id, role: role.clone(), tenant: tenant.clone(), namespaces: Vec::new() };
            (Change::new(at, actor, action, Some(subject)), binding)
        })
        .collect()
}

impl Directory {
    pub fn new(ctx: Context) -> Self {
        Self { ctx }
    }

    /// Until when a name given up now stays reserved for its old holder (`auth.name_reservation`).
    fn keep_name_until(&self) -> Option<OffsetDateTime> {
        self.ctx.times.name_reservation_secs.map(|secs| self.ctx.now() + time::Duration::seconds(secs))
    }

    fn reserved_until_detail(until: Option<OffsetDateTime>) -> Option<String> {
        until.map(warden_core::timestamp::format)
    }

    fn change(&self, actor: &Principal, action: Action, target: &Subject) -> Change {
        Change::new(self.ctx.now(), Some(&actor.account), action, Some(target))
    }

    /// An account that holds an administrative role (built-in, or any role with power over
    /// Warden; see `AuthzIndex::holds_administrative_role`), directly or through groups, can
    /// be changed only by an idm_superuser.
    pub(crate) fn guard_privileged(actor: &Principal, target: &Subject) -> Result<()> {
        if actor.index.holds_administrative_role((target.kind, target.id)) && !actor.holds(Permission::Superuser) {
            return Err(CoreError::HighPrivilege(target.to_string()).into());
        }
        Ok(())
    }

    /// Who may change a group's membership, or delete it. A group that holds an administrative
    /// role is itself a privilege: adding to it, removing from it (oneself included) and
    /// deleting it need `warden:admin_groups:write` and idm_superuser. Other groups need
    /// `warden:groups:write`.
    fn guard_group_membership(actor: &Principal, group: &Subject) -> Result<()> {
        if !actor.index.holds_administrative_role((group.kind, group.id)) {
            return Ok(actor.require(Permission::GroupsWrite)?);
        }
        actor.require(Permission::AdminGroupsWrite)?;
        if !actor.holds(Permission::Superuser) {
            return Err(CoreError::HighPrivilege(group.to_string()).into());
        }
        Ok(())
    }

    /// Refuses early (before looking the group up, so as not to reveal which groups exist)
    /// callers who may change no membership at all.
    fn may_change_some_membership(actor: &Principal) -> Result<()> {
        if actor.holds(Permission::AdminGroupsWrite) {
            return Ok(());
        }
        Ok(actor.require(Permission::GroupsWrite)?)
    }

    // --- users ------------------------------------------------------------------------------

    /// Creates a user, and binds it `roles` (role × tenant) in the same transaction. The
    /// roles must have passed `Access`'s binding checks: only `Access::create_user` gives any.
    pub(crate) async fn create_user(&self, actor: &Principal, req: CreateUser, roles: &[(Name, Name)]) -> Result<User> {
        self.create_user_in_state(actor, req, roles, false).await
    }

    /// [`Self::create_user`], the user disabled from the start when `disabled` (Kratos'
    /// `inactive` identities): one change, so no moment exists in which it could sign in.
    pub(crate) async fn create_user_in_state(
        &self,
        actor: &Principal,
        req: CreateUser,
        roles: &[(Name, Name)],
        disabled: bool,
    ) -> Result<User> {
        actor.require(Permission::UsersWrite)?;
        let (mut user, password_hash) = self.prepare_user(req, model::EmailSource::Administrator).await?;
        user.disabled = disabled;
        let now = user.created_at;
        let subject = user.subject();
        let change = self.change(actor, Action::UserCreate { password: password_hash.is_some() }, &subject);
        if !roles.is_empty() {
            let bindings = new_bindings(&subject, roles, now, Some(&actor.account));
            return Ok(self.ctx.store.create_user_with_bindings(&change, &user, password_hash.as_deref(), &bindings).await?);
        }
        let created = self.ctx.store.create_user(&change, &user, password_hash.as_deref()).await?;
        // The snapshot learns of new accounts in the background (nothing grants them
        // anything yet); a later binding or membership change catches it up synchronously.
        self.ctx.authz.nudge();
        Ok(created)
    }

    /// A new user from a request, validated, and its password's hash (`None`: no password);
    /// `email_source` decides which addresses count as verified. Writes nothing.
    pub(crate) async fn prepare_user(&self, req: CreateUser, email_source: model::EmailSource) -> Result<(User, Option<String>)> {
        let now = self.ctx.now();
        // A name another account gave up is the administrator's to hand out again (on purpose:
        // restoring an account deleted by mistake); only self-service renames honour
        // reservations.
        let name = account_name(&req.name)?;
        let profile = model::validate_profile(
            Profile {
                display_name: req.display_name,
                first_name: req.first_name,
                last_name: req.last_name,
                birthday: req.birthday,
                emails: model::emails_from_input(req.emails, email_source)?,
                phones: model::phones_from_input(req.phones)?,
                addresses: req.addresses,
                avatar_url: req.avatar_url,
                fields: warden_core::fields::check_new_fields(req.fields, &self.ctx.config.user_fields)?,
            },
            now.date(),
        )?;
        model::validate_window(req.valid_from, req.expires_at)?;
        let password_hash = match req.password.map(InitialPassword::classify) {
            Some(InitialPassword::Plain(pw)) => {
                self.ctx.check_new_password("password", &pw, name.as_str(), &profile.emails)?;
                Some(self.ctx.hasher.hash(&pw).await?)
            }
            Some(InitialPassword::Bcrypt(hash)) => Some(hash.expose().to_owned()),
            None => None,
        };
        let user = User {
            id: Uuid::now_v7(),
            name,
            profile,
            disabled: false,
            valid_from: req.valid_from,
            expires_at: req.expires_at,
            has_password: password_hash.is_some(),
            created_at: now,
            updated_at: now,
        };
        Ok((user, password_hash))
    }

    pub async fn user(&self, actor: &Principal, key: &NameOrId) -> Result<User> {
        actor.require(Permission::UsersRead)?;
        self.find_user(key).await
    }

    /// Adds what `expansion` asks for to an account, from the snapshot: its direct and
    /// effective groups (needs `groups:read`), and the roles bound to it directly or through
    /// groups, in the tenants whose bindings the actor may read (nothing about the others).
    pub fn expand<T>(&self, actor: &Principal, account: T, subject: &Subject, expansion: Expansion) -> Result<Expanded<T>> {
        let index = self.ctx.authz.snapshot();
        let key = (subject.kind, subject.id);
        let groups = if expansion.groups {
            actor.require(Permission::GroupsRead)?;
            let direct = index.groups_of(key, false, None, usize::MAX).into_iter().map(|(g, _)| g.name.to_string()).collect();
            let effective = index.effective_groups(key).iter().map(ToString::to_string).collect();
            Some(AccountGroups { direct, effective })
        } else {
            None
        };
        let roles = if expansion.roles {
            let readable: Vec<HeldRole> = index
                .bindings_reaching(key)
                .into_iter()
                .filter(|b| actor.holds_in(Permission::BindingsRead, b.tenant.as_str()))
                .map(|b| HeldRole {
                    role: b.role.to_string(),
                    tenant: b.tenant.to_string(),
                    namespaces: b.namespaces.iter().map(ToString::to_string).collect(),
                    via: b.subject.to_string(),
                    binding: b.id,
                })
                .collect();
            // Who may read bindings nowhere is refused rather than told "no roles".
            if readable.is_empty() {
                actor.require(Permission::BindingsRead)?;
            }
            Some(readable)
        } else {
            None
        };
        Ok(Expanded { account, groups, roles })
    }

    async fn find_user(&self, key: &NameOrId) -> Result<User> {
        self.ctx.store.user(key).await?.ok_or_else(|| ServiceError::NotFound(format!("user {key}")))
    }

    pub async fn list_users(&self, actor: &Principal, req: &ListRequest) -> Result<Page<User>> {
        actor.require(Permission::UsersRead)?;
        Ok(self.ctx.store.list_users(&req.query()).await?)
    }

    pub async fn update_user(&self, actor: &Principal, key: &NameOrId, patch: UpdateUser) -> Result<User> {
        actor.require(Permission::UsersWrite)?;
        let mut user = self.find_user(key).await?;
        Self::guard_privileged(actor, &user.subject())?;
        let now = self.ctx.now();
        let mut changed: Vec<&str> = Vec::new();
        let mut changed_fields: Vec<String> = Vec::new();
        let mut profile = user.profile.clone();
        macro_rules! apply {
            ($field:ident) => {
                if let Some(v) = patch.$field {
                    profile.$field = v;
                    changed.push(stringify!($field));
                }
            };
        }
        apply!(display_name);
        apply!(first_name);
        apply!(last_name);
        apply!(birthday);
        apply!(avatar_url);
        if let Some(addresses) = patch.addresses {
            profile.addresses = addresses;
            changed.push("addresses");
        }
        if let Some(emails) = patch.emails {
            profile.emails = model::emails_from_input(emails, model::EmailSource::Administrator)?;
            changed.push("emails");
        }
        if let Some(phones) = patch.phones {
            profile.phones = model::phones_from_input(phones)?;
            changed.push("phones");
        }
        if let Some(fields) = patch.fields {
            let defs = &self.ctx.config.user_fields;
            let (after, keys) =
                warden_core::fields::apply_fields(&profile.fields, fields, defs, warden_core::fields::FieldWriter::Administrator)?;
            profile.fields = after;
            changed_fields = keys.into_iter().map(|k| format!("fields.{k}")).collect();
        }
        if let Some(v) = patch.valid_from {
            user.valid_from = v;
            changed.push("valid_from");
        }
        if let Some(v) = patch.expires_at {
            user.expires_at = v;
            changed.push("expires_at");
        }
        if changed.is_empty() && changed_fields.is_empty() {
            return Ok(user);
        }
        let window_changed = changed.iter().any(|f| *f == "valid_from" || *f == "expires_at");
        if model::is_break_glass(user.id) && changed.iter().any(|f| *f == "valid_from" || *f == "expires_at") {
            return Err(ServiceError::Protected(user.name.to_string(), "given a validity window"));
        }
        user.profile = model::validate_profile(profile, now.date())?;
        model::validate_window(user.valid_from, user.expires_at)?;
        user.updated_at = now;
        // Field names only: the audit log must not become a second copy of personal data.
        let fields = changed.iter().map(|f| (*f).to_owned()).chain(changed_fields).collect();
        let change = self.change(actor, Action::UserUpdate { fields, sessions_ended: None }, &user.subject());
        // A window that shuts the user out now ends the sessions for good: moving it back must
        // not revive them.
        let end_sessions = window_changed && !user.is_active(now);
        let updated = self.ctx.store.update_user(&change, &user, end_sessions).await?;
        self.ctx.refreshed(updated).await
    }

    /// Disables or enables a user. Disabling ends every session of the user in the same
    /// change, so enabling again brings none back; every node drops the user's cached
    /// credentials when it reads the event.
    pub async fn set_disabled(&self, actor: &Principal, key: &NameOrId, disabled: bool) -> Result<User> {
        actor.require(Permission::UsersWrite)?;
        let mut user = self.find_user(key).await?;
        if disabled {
            protect(&user.subject(), "disabled")?;
        }
        Self::guard_privileged(actor, &user.subject())?;
        if user.disabled == disabled {
            return Ok(user);
        }
        user.disabled = disabled;
        user.updated_at = self.ctx.now();
        let action = if disabled { Action::UserDisable { sessions_ended: 0 } } else { Action::UserEnable {} };
        let updated = self.ctx.store.update_user(&self.change(actor, action, &user.subject()), &user, disabled).await?;
        self.ctx.refreshed(updated).await
    }

    /// Renames a user; the id never changes. Administrators always may; a user renaming
    /// itself needs `auth.allow_username_change`.
    pub async fn rename_user(&self, actor: &Principal, key: &NameOrId, new_name: &str) -> Result<User> {
        // By id or by name: `warden user rename alice alicia` run by alice renames herself.
        let names_self = match key {
            NameOrId::Id(id) => super::is_self(actor, *id),
            NameOrId::Name(name) => *name == actor.account.name,
        };
        let renaming_self = names_self && !actor.holds(Permission::UsersWrite);
        if renaming_self {
            if !self.ctx.config.auth.allow_username_change {
                return Err(ServiceError::RenameDisabled);
            }
            if !actor.elevated {
                return Err(CoreError::NotElevated.into());
            }
        } else {
            // Check first: who may not rename must not learn which names exist.
            actor.require(Permission::UsersWrite)?;
        }
        let user = self.find_user(key).await?;
        protect(&user.subject(), "renamed")?;
        if !renaming_self {
            Self::guard_privileged(actor, &user.subject())?;
        }
        let name = Name::parse(new_name)?;
        if name == user.name {
            return Ok(user);
        }
        let name = account_name(name.as_str())?;
        // The old name stays reserved for this account; a user renaming itself cannot take a
        // name another account gave up (an administrator may, on purpose).
        let keep_until = self.keep_name_until();
        let reservation = NameReservation { keep_until, honour: renaming_self };
        let action = Action::UserRename {
            from: user.name.to_string(),
            to: name.clone(),
            from_reserved_until: Self::reserved_until_detail(keep_until),
        };
        let change = self.change(actor, action, &user.subject());
        self.ctx.store.rename_account(&change, user.id, &name, reservation).await?;
        let renamed = self.find_user(&NameOrId::Id(user.id)).await?;
        self.ctx.refreshed(renamed).await
    }

    /// Sets a user's password (a credential reset); every session of the user ends.
    pub async fn set_password(&self, actor: &Principal, key: &NameOrId, password: &Secret) -> Result<()> {
        actor.require(Permission::CredentialsWrite)?;
        let user = self.find_user(key).await?;
        protect(&user.subject(), "given a password through the API; use wardend recover-account on the server host")?;
        Self::guard_privileged(actor, &user.subject())?;
        self.ctx.check_new_password("password", password, user.name.as_str(), &user.profile.emails)?;
        let hash = self.ctx.hasher.hash(password).await?;
        let change = self.change(actor, Action::PasswordSet {}, &user.subject());
        self.ctx.store.set_password_hash(&change, user.id, &hash, true).await?;
        self.ctx.refreshed(()).await
    }

    /// Lifts the soft lock of an account name: the failed passwords counted against it, from
    /// every address, go (audited as `credential.unlock`). Like the lock itself this says
    /// nothing about whether an account holds the name, except to a caller who may read users
    /// (an unknown name is then `not_found`); for others an unknown name is unlocked as well.
    pub async fn unlock(&self, actor: &Principal, key: &NameOrId) -> Result<()> {
        actor.require(Permission::CredentialsWrite)?;
        let owner = self.ctx.store.account(key, self.ctx.now()).await?;
        let name = match (&owner, key) {
            (Some(owner), _) => owner.subject.name.to_string(),
            (None, _) if actor.holds(Permission::UsersRead) => return Err(ServiceError::NotFound(format!("user {key}"))),
            (None, NameOrId::Name(name)) => name.to_string(),
            // An id that is no one's names nothing that could be locked.
            (None, NameOrId::Id(_)) => return Ok(()),
        };
        if let Some(owner) = &owner {
            Self::guard_privileged(actor, &owner.subject)?;
        }
        let action = Action::CredentialUnlock { name: name.clone(), failures_cleared: 0 };
        let change = Change::new(self.ctx.now(), Some(&actor.account), action, owner.as_ref().map(|o| &o.subject));
        self.ctx.store.unlock_login(&change, &warden_core::throttle::ThrottleKey::name(&name)).await?;
        Ok(())
    }

    pub async fn delete_user(&self, actor: &Principal, key: &NameOrId) -> Result<()> {
        actor.require(Permission::UsersWrite)?;
        let user = self.find_user(key).await?;
        protect(&user.subject(), "deleted")?;
        Self::guard_privileged(actor, &user.subject())?;
        let keep_until = self.keep_name_until();
        let action = Action::UserDelete { name_reserved_until: Self::reserved_until_detail(keep_until) };
        self.ctx.store.delete_account(&self.change(actor, action, &user.subject()), user.id, keep_until).await?;
        self.ctx.refreshed(()).await
    }

    // --- service accounts -------------------------------------------------------------------

    pub async fn create_service_account(&self, actor: &Principal, req: CreateServiceAccount) -> Result<ServiceAccount> {
        actor.require(Permission::ServiceAccountsWrite)?;
        let now = self.ctx.now();
        let name = account_name(&req.name)?;
        let managed_by = match req.managed_by.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
            Some(raw) => {
                let manager = self.resolve(&SubjectRef::parse(raw)?).await?;
                if manager.kind == SubjectKind::ServiceAccount {
                    return Err(CoreError::validation("managed_by", "must be a user or a group").into());
                }
                Some(manager)
            }
            None => None,
        };
        let account = ServiceAccount {
            id: Uuid::now_v7(),
            name,
            description: model::validate_description(req.description)?,
            managed_by,
            disabled: false,
            created_at: now,
            updated_at: now,
        };
        let change = self.change(actor, Action::ServiceAccountCreate {}, &account.subject());
        let created = self.ctx.store.create_service_account(&change, &account).await?;
        self.ctx.refreshed(created).await
    }

    pub async fn service_account(&self, actor: &Principal, key: &NameOrId) -> Result<ServiceAccount> {
        actor.require(Permission::ServiceAccountsRead)?;
        self.find_service_account(key).await
    }

    pub(crate) async fn find_service_account(&self, key: &NameOrId) -> Result<ServiceAccount> {
        self.ctx.store.service_account(key).await?.ok_or_else(|| ServiceError::NotFound(format!("service account {key}")))
    }

    pub async fn list_service_accounts(&self, actor: &Principal, req: &ListRequest) -> Result<Page<ServiceAccount>> {
        actor.require(Permission::ServiceAccountsRead)?;
        Ok(self.ctx.store.list_service_accounts(&req.query()).await?)
    }

    pub async fn delete_service_account(&self, actor: &Principal, key: &NameOrId) -> Result<()> {
        actor.require(Permission::ServiceAccountsWrite)?;
        let account = self.find_service_account(key).await?;
        protect(&account.subject(), "deleted")?;
        Self::guard_privileged(actor, &account.subject())?;
        let keep_until = self.keep_name_until();
        let action = Action::ServiceAccountDelete { name_reserved_until: Self::reserved_until_detail(keep_until) };
        self.ctx.store.delete_account(&self.change(actor, action, &account.subject()), account.id, keep_until).await?;
        self.ctx.refreshed(()).await
    }

    // --- groups -----------------------------------------------------------------------------

    pub async fn create_group(&self, actor: &Principal, req: CreateGroup) -> Result<Group> {
        actor.require(Permission::GroupsWrite)?;
        let now = self.ctx.now();
        let group = Group {
            id: Uuid::now_v7(),
            name: Name::parse(&req.name)?,
            description: model::validate_description(req.description)?,
            member_count: 0,
            created_at: now,
            updated_at: now,
        };
        let change = self.change(actor, Action::GroupCreate {}, &group.subject());
        let created = self.ctx.store.create_group(&change, &group).await?;
        self.ctx.refreshed(created).await
    }

    pub async fn group(&self, actor: &Principal, key: &NameOrId) -> Result<Group> {
        actor.require(Permission::GroupsRead)?;
        self.find_group(key).await
    }

    async fn find_group(&self, key: &NameOrId) -> Result<Group> {
        self.ctx.store.group(key).await?.ok_or_else(|| ServiceError::NotFound(format!("group {key}")))
    }

    pub async fn list_groups(&self, actor: &Principal, req: &ListRequest) -> Result<Page<Group>> {
        actor.require(Permission::GroupsRead)?;
        Ok(self.ctx.store.list_groups(&req.query()).await?)
    }

    /// Deletes a group and its memberships; its members (accounts and groups) stay.
    pub async fn delete_group(&self, actor: &Principal, key: &NameOrId) -> Result<u64> {
        actor.require(Permission::GroupsWrite)?;
        let group = self.find_group(key).await?;
        protect_group(&group.subject(), "deleted")?;
        Self::guard_group_membership(actor, &group.subject())?;
        let change = self.change(actor, Action::GroupDelete { memberships_removed: 0 }, &group.subject());
        let removed = self.ctx.store.delete_group(&change, group.id).await?;
        self.ctx.refreshed(removed).await
    }

    /// Adds every listed member, or none: an unknown or ambiguous member, or a cycle, fails
    /// the whole request.
    pub async fn add_members(&self, actor: &Principal, key: &NameOrId, req: AddMembers) -> Result<u64> {
        if req.members.is_empty() {
            return Err(CoreError::validation("members", "name at least one member").into());
        }
        if req.members.len() > 1000 {
            return Err(CoreError::validation("members", "at most 1000 members per request").into());
        }
        Self::may_change_some_membership(actor)?;
        let group = self.find_group(key).await?.subject();
        Self::guard_group_membership(actor, &group)?;
        let mut members = Vec::with_capacity(req.members.len());
        for raw in &req.members {
            members.push(self.resolve(&SubjectRef::parse(raw)?).await?);
        }
        let changes: Vec<Change> = members
            .iter()
            .map(|m| {
                let action = Action::MemberAdd { member: m.to_string(), member_id: m.id, member_kind: m.kind, via: None };
                self.change(actor, action, &group)
            })
            .collect();
        let added = self.ctx.store.add_members(&changes, &group, &members).await?;
        self.ctx.refreshed(added).await
    }

    pub async fn remove_member(&self, actor: &Principal, key: &NameOrId, member: &str) -> Result<()> {
        Self::may_change_some_membership(actor)?;
        let group = self.find_group(key).await?.subject();
        Self::guard_group_membership(actor, &group)?;
        let member = self.resolve(&SubjectRef::parse(member)?).await?;
        let action = Action::MemberRemove { member: member.to_string(), member_id: member.id, member_kind: member.kind, via: None };
        let change = self.change(actor, action, &group);
        if self.ctx.store.remove_member(&change, group.id, &member).await? {
            self.ctx.refreshed(()).await
        } else {
            Err(ServiceError::NotFound(format!("{member} as a member of group {}", group.name)))
        }
    }

    /// A page of a group's members, direct or effective, from the authorization snapshot (which
    /// holds each group's members in order and the nesting): no recursive query, and no sort of
    /// a large group's rows per page. A group this node's snapshot does not know yet comes from
    /// the store.
    pub async fn members(&self, actor: &Principal, key: &NameOrId, effective: bool, req: &ListRequest) -> Result<Page<MemberEntry>> {
        actor.require(Permission::GroupsRead)?;
        let group = self.find_group(key).await?;
        let query = req.query();
        let limit = query.page_size() as usize;
        let after = query.after.as_deref().map(|c| c.split_once('/').unwrap_or(("", "")));
        let snapshot = self.ctx.authz.snapshot();
        let page = if effective {
            snapshot.effective_members(group.id, after, limit + 1)
        } else {
            snapshot.direct_members(group.id, after, limit + 1)
        };
        if let Some(mut items) = page {
            let next_cursor = (items.len() > limit).then(|| {
                items.truncate(limit);
                items.last().map(|(s, _)| format!("{}/{}", s.name, s.kind.as_str()))
            });
            let items = items.into_iter().map(|(subject, direct)| MemberEntry { subject, direct }).collect();
            return Ok(Page { items, next_cursor: next_cursor.flatten() });
        }
        Ok(self.ctx.store.members(group.id, effective, &query).await?)
    }

    /// A page of the groups an account is in (`effective`: also through nesting), from the
    /// authorization snapshot, in the members listing's order and cursor format.
    pub async fn account_groups(
        &self,
        actor: &Principal,
        kind: SubjectKind,
        key: &NameOrId,
        effective: bool,
        req: &ListRequest,
    ) -> Result<Page<MemberEntry>> {
        actor.require(Permission::GroupsRead)?;
        let id = if kind == SubjectKind::ServiceAccount {
            actor.require(Permission::ServiceAccountsRead)?;
            self.find_service_account(key).await?.id
        } else {
            actor.require(Permission::UsersRead)?;
            self.find_user(key).await?.id
        };
        let query = req.query();
        let limit = query.page_size() as usize;
        let after = query.after.as_deref().map(|c| c.split_once('/').unwrap_or(("", "")));
        let mut items = self.ctx.authz.snapshot().groups_of((kind, id), effective, after, limit + 1);
        let next_cursor = (items.len() > limit).then(|| {
            items.truncate(limit);
            items.last().map(|(s, _)| format!("{}/{}", s.name, s.kind.as_str()))
        });
        let items = items.into_iter().map(|(subject, direct)| MemberEntry { subject, direct }).collect();
        Ok(Page { items, next_cursor: next_cursor.flatten() })
    }

    /// Resolves `user:alice`, `sa:ci`, `group:staff`, a bare name (when only one thing has
    /// it) or an id to the subject it names.
    pub async fn resolve(&self, reference: &SubjectRef) -> Result<Subject> {
        let found = match &reference.key {
            NameOrId::Id(id) => self.ctx.store.subject_by_id(reference.kind, *id).await?.into_iter().collect::<Vec<_>>(),
            NameOrId::Name(name) => self.ctx.store.subjects_named(name).await?,
        };
        reference.single(found).map_err(|why| ServiceError::unresolved(why, "member", reference))
    }
}
