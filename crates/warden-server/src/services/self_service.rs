//! Self-service: a person reads and edits their own profile and changes their own password.
//!
//! It needs no `warden:*` permission (everyone may look after their own account) and so
//! guards itself: only users (never service accounts) have a profile and a password of a
//! person. A profile edit is allowed on a read-only session: it grants nothing, and an e-mail
//! address it adds stays unverified (neither signs in nor receives recovery mail) until its
//! link is followed. Moving the primary address is the exception: it decides where recovery
//! mail goes, so it needs a write window like a rename. A password change proves the current
//! password instead, counted by the soft lock like a failed login, and needs a session of the
//! person, which it keeps while ending every other.

use std::net::IpAddr;

use warden_core::CoreError;
use warden_core::access::{AuthMethod, Principal};
use warden_core::api::{ChangePassword, UpdateProfile};
use warden_core::fields::{self, FieldWriter, Viewer};
use warden_core::model::{self, NameOrId, Profile, SubjectKind, User};
use warden_store::{Action, Change};

use super::auth::Auth;
use super::authn::email_verification::verification_mails;
use super::{Context, Result, ServiceError};

/// What a profile edit did: the profile as its owner sees it, and the addresses it added,
/// each still unverified and waiting for its verification mail.
#[derive(Debug, Clone)]
pub struct ProfileChange {
    pub user: User,
    pub unverified_added: Vec<String>,
}

#[derive(Clone)]
pub struct SelfService {
    ctx: Context,
    auth: Auth,
}

impl SelfService {
    pub fn new(ctx: Context, auth: Auth) -> Self {
        Self { ctx, auth }
    }

    /// The caller's own user account; a service account is refused.
    async fn own_user(&self, actor: &Principal) -> Result<User> {
        if actor.account.kind != SubjectKind::User {
            return Err(ServiceError::NotAUser(actor.account.to_string()));
        }
        let key = NameOrId::Id(actor.account.id);
        self.ctx.store.user(&key).await?.ok_or_else(|| ServiceError::NotFound(format!("user {}", actor.account.name)))
    }

    /// The user as its owner sees it: every additional field but the private ones and those
    /// no longer defined.
    fn as_owner_sees(&self, mut user: User) -> User {
        user.profile.fields = fields::visible_fields(&user.profile.fields, &self.ctx.config.user_fields, Viewer::Owner);
        user
    }

    pub async fn profile(&self, actor: &Principal) -> Result<User> {
        Ok(self.as_owner_sees(self.own_user(actor).await?))
    }

    /// Edits the caller's profile. Lists are replaced whole; a list `profile.disable_*` turns
    /// off may be sent back unchanged but not changed. Nothing changed, nothing written.
    pub async fn update_profile(&self, actor: &Principal, patch: UpdateProfile) -> Result<ProfileChange> {
        let user = self.own_user(actor).await?;
        let now = self.ctx.now();
        let before = user.profile.clone();
        let mut profile = before.clone();
        macro_rules! apply {
            ($($field:ident),*) => {$(
                if let Some(v) = patch.$field {
                    profile.$field = v;
                }
            )*};
        }
        apply!(display_name, first_name, last_name, birthday, avatar_url);
        let mut unverified_added = Vec::new();
        if let Some(emails) = patch.emails {
            let owner = model::owner_emails(&before.emails, emails)?;
            profile.emails = owner.emails;
            unverified_added = owner.unverified_added;
        }
        if let Some(phones) = patch.phones {
            profile.phones = model::phones_from_input(phones)?;
        }
        if let Some(addresses) = patch.addresses {
            profile.addresses = addresses;
        }
        let mut changed_fields = Vec::new();
        if let Some(patch) = patch.fields {
            let (after, keys) = fields::apply_fields(&before.fields, patch, &self.ctx.config.user_fields, FieldWriter::Owner)?;
            profile.fields = after;
            changed_fields = keys;
        }
        let profile = model::validate_profile(profile, now.date())?;
        // The primary address receives recovery mail and signs in: moving it needs a write
        // window, or a read-only session could add an address, verify it and take the account.
        if primary_email(&before) != primary_email(&profile) && !actor.elevated {
            return Err(CoreError::NotElevated.into());
        }
        let mut changed = changed_parts(&before, &profile);
        self.allowed(&changed)?;
        changed.extend(changed_fields.into_iter().map(|k| format!("fields.{k}")));
        if changed.is_empty() {
            return Ok(ProfileChange { user: self.as_owner_sees(user), unverified_added: Vec::new() });
        }
        // One verification mail per new address, queued in the same transaction.
        let mails = verification_mails(&self.ctx, user.id, &unverified_added, now);
        let emails_to_verify = u32::try_from(unverified_added.len()).unwrap_or(u32::MAX);
        let action = Action::ProfileUpdate { fields: changed, emails_to_verify };
        let subject = user.subject();
        let change = Change::new(now, Some(&actor.account), action, Some(&subject));
        // The profile alone: an administrator's disable or window set meanwhile stays.
        self.ctx.store.update_profile(&change, user.id, &profile, now, &mails).await?;
        self.ctx.committed(&change);
        self.ctx.refreshed(()).await?;
        let user = self.own_user(actor).await?;
        Ok(ProfileChange { user: self.as_owner_sees(user), unverified_added })
    }

    /// Refuses a change to a list the configuration keeps for administrators.
    fn allowed(&self, changed: &[String]) -> Result<()> {
        let switches = &self.ctx.config.profile;
        for (part, off, setting) in [
            ("phones", switches.disable_phone_numbers, "profile.disable_phone_numbers"),
            ("addresses", switches.disable_addresses, "profile.disable_addresses"),
        ] {
            if off && changed.iter().any(|c| c == part) {
                return Err(CoreError::ProfileFieldDisabled { field: part.to_owned(), setting: setting.to_owned() }.into());
            }
        }
        Ok(())
    }

    /// Changes the caller's password: proves `current` (a wrong one counts as a failed login
    /// of the account, from `client`), checks the new one, sets it, and ends every other
    /// session of the person. API tokens and HTTP Basic are refused: a person changes their
    /// password through a session of theirs.
    pub async fn change_password(&self, actor: &Principal, req: &ChangePassword, client: Option<IpAddr>) -> Result<()> {
        let user = self.own_user(actor).await?;
        let (AuthMethod::Session, Some(session)) = (actor.method, actor.credential_id) else {
            return Err(ServiceError::SessionRequired);
        };
        self.ctx.check_new_password("new", &req.new, user.name.as_str(), &user.profile.emails)?;
        let proved = self.auth.verify_password(user.name.as_str(), &req.current, client).await?;
        if proved.id != user.id {
            return Err(ServiceError::AuthFailed);
        }
        let hash = self.ctx.hasher.hash(&req.new).await?;
        let now = self.ctx.now();
        let action = Action::PasswordChange { session_kept: session, client: client.map(|ip| ip.to_string()), sessions_ended: 0 };
        let subject = user.subject();
        let change = Change::new(now, Some(&actor.account), action, Some(&subject));
        self.ctx.store.change_password(&change, user.id, &hash, session).await?;
        self.ctx.refreshed(()).await
    }
}

fn primary_email(profile: &Profile) -> Option<String> {
    profile.emails.iter().find(|e| e.primary).map(|e| e.address.to_ascii_lowercase())
}

/// The parts of a profile that differ, by their API names (field names only: the audit log is
/// not a second copy of personal data).
fn changed_parts(before: &Profile, after: &Profile) -> Vec<String> {
    let parts = [
        ("display_name", before.display_name != after.display_name),
        ("first_name", before.first_name != after.first_name),
        ("last_name", before.last_name != after.last_name),
        ("birthday", before.birthday != after.birthday),
        ("avatar_url", before.avatar_url != after.avatar_url),
        ("emails", before.emails != after.emails),
        ("phones", before.phones != after.phones),
        ("addresses", before.addresses != after.addresses),
    ];
    parts.into_iter().filter(|(_, differs)| *differs).map(|(name, _)| name.to_owned()).collect()
}
