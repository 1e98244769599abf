//! The password links Warden mails itself: an account notice (an administrator made an account
//! without a password; its owner chooses one), a required password change (an administrator
//! flags accounts: their sessions end, and until a new password is set a session of theirs
//! may do nothing else) and a password reset (someone who forgot theirs asks). Both queue a mail whose link, made when it is sent, is redeemed like a recovery link
//! (`POST /api/v1/auth/recover`, the `/recover` page).
//!
//! A reset request answers the same, at once, whatever it names: the lookup, the rate limits
//! and the queueing run after the answer, so neither the body, the status nor the time tells
//! whether an account exists. Mail goes only to a verified primary address.

use std::net::IpAddr;

use time::{Duration, OffsetDateTime};
use warden_core::CoreError;
use warden_core::access::{Permission, Principal};
use warden_core::api::{MailQueued, PasswordChangeRequired};
use warden_core::model::{NameOrId, SubjectKind, is_break_glass};
use warden_store::{Action, Change, CredentialOwner, MailKind, QueuedMail};

use crate::services::client_limit::ClientLimit;
use crate::services::directory::Directory;
use crate::services::{Context, Result, ServiceError};

#[derive(Clone)]
pub struct PasswordMail {
    ctx: Context,
    /// `mail.password_reset_per_client` requests per client address and window (this node's).
    clients: ClientLimit,
}

impl PasswordMail {
    pub fn new(ctx: Context) -> Self {
        let clients = ClientLimit::new(ctx.config.mail.password_reset_per_client, ctx.mail.times.password_reset_window_secs);
        Self { ctx, clients }
    }

    /// Mails `user`'s primary address a link to choose a first (or new) password. Needs
    /// `warden:credentials:write`, and idm_superuser for an account that holds an
    /// administrative role.
    pub async fn send_account_notice(&self, actor: &Principal, user: &NameOrId) -> Result<MailQueued> {
        actor.require(Permission::CredentialsWrite)?;
        if self.ctx.config.server.public_url.is_none() {
            return Err(ServiceError::PublicUrlMissing);
        }
        let now = self.ctx.now();
        let owner = self.ctx.store.account(user, now).await?.filter(|o| o.subject.kind == SubjectKind::User);
        let owner = owner.ok_or_else(|| ServiceError::NotFound(format!("user {user}")))?;
        if is_break_glass(owner.subject.id) {
            return Err(ServiceError::Protected(owner.subject.name.to_string(), "sent an account notice"));
        }
        Directory::guard_privileged(actor, &owner.subject)?;
        let Some(address) = owner.email.filter(|_| owner.email_verified) else {
            return Err(CoreError::validation(
                "email",
                format!("{} has no verified primary e-mail address to write to", owner.subject.name),
            )
            .into());
        };
        if !owner.active {
            return Err(CoreError::validation("user", format!("{} is disabled or outside its validity window", owner.subject.name)).into());
        }
        let mail = QueuedMail::new(MailKind::AccountNotice, address.clone(), Some(owner.subject.id), None, now);
        let change = Change::new(
            now,
            Some(&actor.account),
            Action::AccountNoticeSend { mail_id: mail.id, address: address.clone() },
            Some(&owner.subject),
        );
        self.ctx.store.queue_mail(&change, &[mail]).await?;
        self.ctx.committed(&change);
        Ok(MailQueued { to: address, mail: self.ctx.mail.destination() })
    }

    /// Requires `user` to choose a new password: flagged, its sessions ended, and mailed a link
    /// (when it has a verified primary address). Needs `warden:credentials:write`, and
    /// idm_superuser for an account that holds an administrative role.
    pub async fn require_password_change(&self, actor: &Principal, user: &NameOrId) -> Result<PasswordChangeRequired> {
        actor.require(Permission::CredentialsWrite)?;
        let now = self.ctx.now();
        let owner = self.ctx.store.account(user, now).await?.filter(|o| o.subject.kind == SubjectKind::User);
        let owner = owner.ok_or_else(|| ServiceError::NotFound(format!("user {user}")))?;
        self.flag(actor, vec![owner], None, now).await
    }

    /// Requires every user among the effective members of `group` (nested groups included)
    /// to choose a new password, in one transaction. Refused as a whole if any of them holds
    /// an administrative role and the caller is not an idm_superuser.
    pub async fn require_group_password_change(&self, actor: &Principal, group: &NameOrId) -> Result<PasswordChangeRequired> {
        actor.require(Permission::CredentialsWrite)?;
        actor.require(Permission::GroupsRead)?;
        let now = self.ctx.now();
        let found = self.ctx.store.group(group).await?.ok_or_else(|| ServiceError::NotFound(format!("group {group}")))?;
        let members = actor.index.effective_members(found.id, None, usize::MAX).unwrap_or_default();
        let mut owners = Vec::new();
        for (member, _) in members.into_iter().filter(|(m, _)| m.kind == SubjectKind::User) {
            if let Some(owner) = self.ctx.store.account(&NameOrId::Id(member.id), now).await? {
                owners.push(owner);
            }
        }
        self.flag(actor, owners, Some(found.name.to_string()), now).await
    }

    async fn flag(
        &self,
        actor: &Principal,
        owners: Vec<CredentialOwner>,
        group: Option<String>,
        now: OffsetDateTime,
    ) -> Result<PasswordChangeRequired> {
        for owner in &owners {
            if is_break_glass(owner.subject.id) {
                return Err(ServiceError::Protected(owner.subject.name.to_string(), "required to change a password set on the host"));
            }
            Directory::guard_privileged(actor, &owner.subject)?;
        }
        let can_link = self.ctx.config.server.public_url.is_some();
        let mut flags = Vec::with_capacity(owners.len());
        let mut mailed = 0;
        for owner in &owners {
            let mail = owner
                .email
                .clone()
                .filter(|_| owner.email_verified && owner.active && can_link)
                .map(|address| QueuedMail::new(MailKind::PasswordChangeRequired, address, Some(owner.subject.id), None, now));
            mailed += u64::from(mail.is_some());
            let action = Action::PasswordChangeRequire { mail_id: mail.as_ref().map(|m| m.id), group: group.clone() };
            flags.push((Change::new(now, Some(&actor.account), action, Some(&owner.subject)), owner.subject.id, mail));
        }
        let sessions_ended = self.ctx.store.require_password_change(&flags).await?;
        for (change, _, _) in &flags {
            self.ctx.committed(change);
        }
        let accounts = owners.iter().map(|o| o.subject.name.to_string()).collect();
        self.ctx.refreshed(PasswordChangeRequired { accounts, mailed, sessions_ended, mail: self.ctx.mail.destination() }).await
    }

    /// Takes a forgotten-password request. Returns at once, before anything is looked up; the
    /// rest runs on its own task. `Err` only for a client over its limit (which says nothing
    /// about any account).
    pub fn forgot_password(&self, name_or_email: &str, client: Option<IpAddr>) -> Result<()> {
        self.clients.count(client, self.ctx.now())?;
        let this = self.clone();
        let identifier = name_or_email.trim().to_owned();
        tokio::spawn(async move {
            if let Err(e) = this.reset(&identifier, client).await {
                tracing::warn!(error = %e, "a password reset request could not be handled");
            }
        });
        Ok(())
    }

    /// Queues a reset mail if `identifier` names an active user with a verified primary address
    /// and the account's limit allows one more.
    async fn reset(&self, identifier: &str, client: Option<IpAddr>) -> Result<()> {
        if identifier.is_empty() || identifier.len() > 320 {
            return Ok(());
        }
        let now = self.ctx.now();
        let name = if identifier.contains('@') {
            let mut holders = self.ctx.store.users_with_primary_email(identifier).await?;
            match (holders.pop(), holders.is_empty()) {
                (Some(only), true) => only.to_string(),
                _ => return Ok(()),
            }
        } else {
            identifier.to_owned()
        };
        let Ok(key) = NameOrId::parse(&name) else { return Ok(()) };
        let Some(owner) = self.ctx.store.account(&key, now).await? else { return Ok(()) };
        let Some(address) = owner.email.clone().filter(|_| owner.email_verified) else { return Ok(()) };
        if !owner.active || owner.subject.kind != SubjectKind::User || is_break_glass(owner.subject.id) {
            return Ok(());
        }
        let since = now - Duration::seconds(self.ctx.mail.times.password_reset_window_secs);
        let mail = QueuedMail::new(MailKind::PasswordReset, address, Some(owner.subject.id), None, now);
        let action = Action::PasswordResetRequest { mail_id: mail.id, client: client.map(|ip| ip.to_string()) };
        let change = Change::new(now, None, action, Some(&owner.subject));
        let max = u64::from(self.ctx.config.mail.password_reset_per_account);
        if self.ctx.store.queue_mail_within(&change, &mail, since, max).await? {
            self.ctx.committed(&change);
        } else {
            tracing::info!(account = %owner.subject.name, "password reset not mailed: the account's limit is reached");
        }
        Ok(())
    }
}
