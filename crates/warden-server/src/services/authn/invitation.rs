//! Invitations: an administrator names addresses; each gets a mail with a one-use link to
//! register, bound to that address (the account registered with it gets the address as its
//! primary one, verified) and to the roles the administrator chose.
//!
//! An invitation is a registration token with one use and an address; it obeys the same rules
//! (`warden:registration:write`, roles the inviter may grant, a built-in role only from an
//! idm_superuser) and registers in every `registration.mode`, `disabled` included: an
//! administrator asked for this person. The token handed out is made when the mail is sent
//! (`services::mail`), so it is never stored in clear, and the API never shows it.

use warden_core::CoreError;
use warden_core::access::{Permission, Principal};
use warden_core::api::{CreateInvitations, CreateRegistrationToken, CreatedInvitations, Invitation};
use warden_core::credential::{TokenHash, TokenKind};
use warden_core::model::emails_in_order;
use warden_store::{Action, Change, MailKind, QueuedMail, RegistrationToken};

use crate::services::auth::random_token;
use crate::services::authn::registration::Registrations;
use crate::services::{Context, Result, ServiceError};

/// Addresses one request may invite.
const MAX_AT_ONCE: usize = 100;

#[derive(Clone)]
pub struct Invitations {
    ctx: Context,
    registrations: Registrations,
}

fn invitation(token: &RegistrationToken) -> Invitation {
    Invitation {
        id: token.id,
        email: token.email.clone().unwrap_or_default(),
        tenant: token.tenant.to_string(),
        roles: token.roles.iter().map(ToString::to_string).collect(),
        used: token.uses_left == 0,
        created_at: token.created_at,
        expires_at: token.expires_at,
        revoked_at: token.revoked_at,
        created_by: token.created_by,
    }
}

impl Invitations {
    pub fn new(ctx: Context, registrations: Registrations) -> Self {
        Self { ctx, registrations }
    }

    /// Invites every address in `req.emails`: each invitation and its mail are written in one
    /// transaction, and the whole request is checked before anything is written.
    pub async fn invite(&self, actor: &Principal, req: CreateInvitations) -> Result<CreatedInvitations> {
        actor.require(Permission::RegistrationWrite)?;
        if self.ctx.config.server.public_url.is_none() {
            return Err(ServiceError::PublicUrlMissing);
        }
        if req.emails.is_empty() || req.emails.len() > MAX_AT_ONCE {
            return Err(CoreError::validation("emails", format!("between 1 and {MAX_AT_ONCE} addresses")).into());
        }
        // Validated (and duplicates refused) as a profile's list is.
        let addresses = emails_in_order(&req.emails)?;
        // An address that already signs someone in would, registered again as verified, stop
        // both accounts signing in by it: invite only addresses no account holds verified.
        for address in &addresses {
            if !self.ctx.store.users_with_primary_email(&address.address).await?.is_empty() {
                return Err(
                    CoreError::validation("emails", format!("{} is already the verified address of an account", address.address)).into()
                );
            }
        }
        let spec =
            CreateRegistrationToken { max_usage: Some(1), ttl: req.ttl.clone(), roles: req.roles.clone(), tenant: req.tenant.clone() };
        let mut made = Vec::with_capacity(addresses.len());
        for address in &addresses {
            let token =
                self.registrations.checked_token(actor, &spec, self.ctx.mail.times.invitation_secs, Some(address.address.clone())).await?;
            made.push(token);
        }
        for token in &made {
            let email = token.email.clone().unwrap_or_default();
            let mail = QueuedMail::new(MailKind::Invitation, email.clone(), None, Some(token.id), token.created_at);
            let action = Action::InvitationCreate {
                invitation_id: token.id,
                email,
                tenant: token.tenant.clone(),
                roles: token.roles.iter().map(ToString::to_string).collect(),
                expires_at: warden_core::timestamp::format(token.expires_at),
                mail_id: mail.id,
            };
            let change = Change::new(token.created_at, Some(&actor.account), action, None);
            // The hash of a token no one ever sees: the mail's token replaces it when sent.
            let placeholder = random_token(TokenKind::OneTime)?;
            self.ctx.store.create_registration_token(&change, token, &TokenHash::of(placeholder.expose()), &[mail]).await?;
            self.ctx.committed(&change);
        }
        Ok(CreatedInvitations { invitations: made.iter().map(invitation).collect(), mail: self.ctx.mail.destination() })
    }

    /// Every invitation, newest first.
    pub async fn list(&self, actor: &Principal) -> Result<Vec<Invitation>> {
        actor.require(Permission::RegistrationWrite)?;
        Ok(self.ctx.store.registration_tokens().await?.iter().filter(|t| t.email.is_some()).map(invitation).collect())
    }

    /// Revokes an invitation (its link stops working); `NotFound` when there is no such
    /// invitation or it was revoked already.
    pub async fn revoke(&self, actor: &Principal, id: uuid::Uuid) -> Result<()> {
        actor.require(Permission::RegistrationWrite)?;
        let is_invitation = self.ctx.store.registration_token_by_id(id).await?.is_some_and(|t| t.email.is_some());
        let change = Change::new(self.ctx.now(), Some(&actor.account), Action::InvitationRevoke { invitation_id: id }, None);
        if !is_invitation || !self.ctx.store.revoke_registration_token(&change, id).await? {
            return Err(ServiceError::NotFound(format!("invitation {id}")));
        }
        Ok(())
    }
}
