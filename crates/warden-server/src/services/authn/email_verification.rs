//! E-mail verification: an address a person claimed (at registration, or added to their own
//! profile) is mailed a link; following it marks the address verified, after which it may
//! become primary, sign in in place of the name, and receive password resets.
//!
//! The mail is queued with the change that added the address, its token made when it leaves
//! (`services::mail`), for that address only (`detail`). Redeeming it is one store write that
//! consumes the token and sets the flag; an address removed since is not verified by an old
//! link. Opening the link's page never consumes it.

use std::net::IpAddr;

use warden_core::CoreError;
use warden_core::access::Principal;
use warden_core::api::{EmailVerified, MailQueued};
use warden_core::credential::{Secret, TokenHash, TokenKind};
use warden_core::model::{NameOrId, Subject, SubjectKind};
use warden_store::{Action, Change, MailKind, QueuedMail, TokenPurpose};

use crate::services::{Context, Result, ServiceError};

#[derive(Clone)]
pub struct EmailVerification {
    ctx: Context,
}

/// One verification mail for each of `addresses` of `account`, or none when the server cannot
/// write links (no `server.public_url`: the addresses stay unverified until it can).
pub fn verification_mails(ctx: &Context, account: uuid::Uuid, addresses: &[String], at: time::OffsetDateTime) -> Vec<QueuedMail> {
    if ctx.config.server.public_url.is_none() {
        return Vec::new();
    }
    addresses.iter().map(|a| QueuedMail::new(MailKind::EmailVerification, a.clone(), Some(account), None, at)).collect()
}

impl EmailVerification {
    pub fn new(ctx: Context) -> Self {
        Self { ctx }
    }

    /// Mails a new link for one of the caller's own unverified addresses (the first may have
    /// been lost). At most `mail.password_reset_per_account` per window, as resets.
    pub async fn resend(&self, actor: &Principal, address: &str) -> Result<MailQueued> {
        if actor.account.kind != SubjectKind::User {
            return Err(ServiceError::NotAUser(actor.account.name.to_string()));
        }
        if self.ctx.config.server.public_url.is_none() {
            return Err(ServiceError::PublicUrlMissing);
        }
        let user = self.ctx.store.user(&NameOrId::Id(actor.account.id)).await?.ok_or(ServiceError::Unauthenticated)?;
        let Some(entry) = user.profile.emails.iter().find(|e| e.address.eq_ignore_ascii_case(address.trim())) else {
            return Err(CoreError::validation("address", "is not one of your addresses").into());
        };
        if entry.verified {
            return Err(CoreError::validation("address", "is verified already").into());
        }
        let now = self.ctx.now();
        let mail = QueuedMail::new(MailKind::EmailVerification, entry.address.clone(), Some(user.id), None, now);
        let action = Action::EmailVerificationRequest { mail_id: mail.id, address: entry.address.clone() };
        let change = Change::new(now, Some(&actor.account), action, Some(&user.subject()));
        let since = now - time::Duration::seconds(self.ctx.mail.times.password_reset_window_secs);
        let max = u64::from(self.ctx.config.mail.password_reset_per_account);
        if !self.ctx.store.queue_mail_within(&change, &mail, since, max).await? {
            return Err(ServiceError::RateLimited { retry_after_secs: self.ctx.mail.times.password_reset_window_secs });
        }
        self.ctx.committed(&change);
        Ok(MailQueued { to: entry.address.clone(), mail: self.ctx.mail.destination() })
    }

    /// The account and address a token would verify, if it still can (what the link's page
    /// shows); never consumes it.
    pub async fn check(&self, token: &str) -> Result<(Subject, String)> {
        if TokenKind::of(token) != Some(TokenKind::OneTime) {
            return Err(ServiceError::TokenInvalid);
        }
        let now = self.ctx.now();
        let record = self.ctx.store.one_time_token(&TokenHash::of(token)).await?;
        let record =
            record.filter(|r| r.purpose == TokenPurpose::EmailVerification && r.is_redeemable(now)).ok_or(ServiceError::TokenInvalid)?;
        let address = record.detail.clone().ok_or(ServiceError::TokenInvalid)?;
        let owner = self.ctx.store.account(&NameOrId::Id(record.account_id), now).await?;
        let owner = owner.filter(|o| o.active && o.subject.kind == SubjectKind::User).ok_or(ServiceError::TokenInvalid)?;
        Ok((owner.subject, address))
    }

    /// Verifies the token's address; `token.invalid` when it is unknown, expired, used, or the
    /// account no longer has that address.
    pub async fn redeem(&self, token: &Secret, client: Option<IpAddr>) -> Result<EmailVerified> {
        let (subject, address) = self.check(token.expose()).await?;
        let record = self.ctx.store.one_time_token(&TokenHash::of(token.expose())).await?.ok_or(ServiceError::TokenInvalid)?;
        let action = Action::EmailVerify { address: address.clone(), token_id: record.id, client: client.map(|ip| ip.to_string()) };
        let change = Change::new(self.ctx.now(), Some(&subject), action, Some(&subject));
        if !self.ctx.store.verify_email(&change, &TokenHash::of(token.expose()), subject.id, &address).await? {
            return Err(ServiceError::TokenInvalid);
        }
        self.ctx.refreshed(EmailVerified { account: subject.name.to_string(), address }).await
    }
}
