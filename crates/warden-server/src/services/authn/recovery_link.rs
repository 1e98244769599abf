//! The administrator's recovery link: an administrator asks for a link, hands it to the
//! person, and the person chooses a new password through it, which signs them in and ends
//! every other session of theirs. The administrator never learns the password.
//!
//! The link carries a one-time token (`wdo_…`, 256 random bits) that the store keeps only
//! hashed. Issuing a link ends the user's older ones. Redeeming is one transaction: the
//! token's consumption (a conditional update, so of concurrent redemptions exactly one
//! wins), the new password, the ended sessions and the new one. Unknown, expired and used
//! tokens get the same answer, [`ServiceError::TokenInvalid`]. Looking a token up never
//! consumes it (the link's page is opened by mail scanners too).

use std::net::IpAddr;

use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use warden_core::CoreError;
use warden_core::access::{Permission, Principal};
use warden_core::api::{LoginResponse, RecoveryLink};
use warden_core::credential::{self, Secret, TokenHash, TokenKind, parse_duration_secs};
use warden_core::model::{NameOrId, Subject, SubjectKind, is_break_glass};
use warden_store::{Action, Change, OneTimeToken, Recovery, TokenPurpose};

use crate::services::auth::random_token;
use crate::services::client_limit::ClientLimit;
use crate::services::directory::Directory;
use crate::services::{Context, Result, ServiceError};

/// Issues and redeems recovery links.
#[derive(Clone)]
pub struct RecoveryLinks {
    ctx: Context,
    /// `auth.recovery_per_client` redemptions per client address and window (this node's).
    clients: ClientLimit,
}

impl RecoveryLinks {
    pub fn new(ctx: Context) -> Self {
        let clients = ClientLimit::new(ctx.config.auth.recovery_per_client, ctx.times.client_limit_window_secs);
        Self { ctx, clients }
    }

    /// A new recovery link for `user`, valid for `expires_in` (default `auth.recovery_link_ttl`,
    /// at most `auth.recovery_link_max_ttl`). Needs `warden:credentials:write` (an elevated
    /// session), and idm_superuser for an account that holds an administrative role. The
    /// break-glass accounts are refused: they recover on the server host.
    pub async fn issue(&self, actor: &Principal, user: &NameOrId, expires_in: Option<&str>) -> Result<RecoveryLink> {
        actor.require(Permission::CredentialsWrite)?;
        let base = self.ctx.config.server.public_url.as_deref().ok_or(ServiceError::PublicUrlMissing)?;
        let ttl = self.lifetime(expires_in)?;
        let now = self.ctx.now();
        let owner = self.ctx.store.account(user, now).await?.ok_or_else(|| ServiceError::NotFound(format!("user {user}")))?;
        let subject = owner.subject;
        if is_break_glass(subject.id) {
            return Err(ServiceError::Protected(
                subject.name.to_string(),
                "given a recovery link; use wardend recover-account on the server host",
            ));
        }
        if subject.kind != SubjectKind::User {
            return Err(ServiceError::NotFound(format!("user {user}")));
        }
        Directory::guard_privileged(actor, &subject)?;
        let token = random_token(TokenKind::OneTime)?;
        let record = OneTimeToken {
            id: Uuid::now_v7(),
            purpose: TokenPurpose::Recovery,
            account_id: subject.id,
            created_at: now,
            expires_at: now + ttl,
            consumed_at: None,
            issued_by: Some(actor.account.id),
            detail: None,
        };
        let action = Action::RecoveryLinkIssue { token_id: record.id, expires_at: warden_core::timestamp::format(record.expires_at) };
        let change = Change::new(now, Some(&actor.account), action, Some(&subject));
        self.ctx.store.issue_one_time_token(&change, &record, &TokenHash::of(token.expose()), true).await?;
        let url = format!("{}/recover?token={}", base.trim_end_matches('/'), token.expose());
        Ok(RecoveryLink { url: Secret::new(url), expires_at: record.expires_at })
    }

    fn lifetime(&self, expires_in: Option<&str>) -> Result<Duration> {
        let times = &self.ctx.times;
        let secs = match expires_in.map(str::trim).filter(|e| !e.is_empty()) {
            None => times.recovery_link_ttl_secs,
            Some(text) => parse_duration_secs(text).map_err(|e| CoreError::validation("expires_in", e.to_string()))?,
        };
        if secs <= 0 || secs > times.recovery_link_max_secs {
            let max = credential::format_duration(times.recovery_link_max_secs);
            return Err(
                CoreError::validation("expires_in", format!("must be positive and at most {max} (auth.recovery_link_max_ttl)")).into()
            );
        }
        Ok(Duration::seconds(secs))
    }

    /// The user a token would recover, if it can still be redeemed (what the link's page shows
    /// before the form is submitted); never consumes it.
    pub async fn check(&self, token: &str) -> Result<Subject> {
        let (_, subject) = self.redeemable(token, self.ctx.now()).await?;
        Ok(subject)
    }

    async fn redeemable(&self, token: &str, now: OffsetDateTime) -> Result<(OneTimeToken, Subject)> {
        if TokenKind::of(token) != Some(TokenKind::OneTime) {
            return Err(ServiceError::TokenInvalid);
        }
        let record = self.ctx.store.one_time_token(&TokenHash::of(token)).await?;
        // Every link that sets a password is redeemed here: an administrator's recovery link, an
        // account notice, a password reset, a required change.
        let record = record.filter(|r| r.purpose.sets_password() && r.is_redeemable(now)).ok_or(ServiceError::TokenInvalid)?;
        // A disabled or expired account is not let back in by a link issued before.
        let owner = self.ctx.store.account(&NameOrId::Id(record.account_id), now).await?;
        let owner = owner.filter(|o| o.active && o.subject.kind == SubjectKind::User).ok_or(ServiceError::TokenInvalid)?;
        Ok((record, owner.subject))
    }

    /// Redeems a recovery link: sets `password` (the rules of a password set by an
    /// administrator), ends every session of the user and signs them in with a new one.
    pub async fn redeem(
        &self,
        token: &Secret,
        password: &Secret,
        client: Option<IpAddr>,
        user_agent: Option<String>,
    ) -> Result<LoginResponse> {
        // Every attempt counts, whatever becomes of it: links cannot be guessed faster.
        self.clients.count(client, self.ctx.now())?;
        // Checked before the link is looked up (a weak password learns nothing about the
        // link), then again with the owner's name and addresses.
        self.ctx.check_new_password("password", password, "", &[])?;
        let now = self.ctx.now();
        let (record, subject) = self.redeemable(token.expose(), now).await?;
        let owner = self.ctx.store.user(&NameOrId::Id(subject.id)).await?;
        let emails = owner.map(|u| u.profile.emails).unwrap_or_default();
        self.ctx.check_new_password("password", password, subject.name.as_str(), &emails)?;
        let password_hash = self.ctx.hasher.hash(password).await?;
        let session_token = random_token(TokenKind::Session)?;
        // The link proved possession of the mailbox or the administrator's channel, and the
        // person chose the password just now: recorded as a password sign-in.
        let session = self.ctx.new_session(subject.id, now, crate::services::SessionOrigin::password(client, user_agent));
        let action = Action::RecoveryLinkRedeem {
            purpose: record.purpose.as_str().to_owned(),
            token_id: record.id,
            issued_by: record.issued_by,
            client: client.map(|ip| ip.to_string()),
            session_id: session.id,
            sessions_ended: 0,
        };
        let change = Change::new(now, Some(&subject), action, Some(&subject));
        let recovery = Recovery {
            token: TokenHash::of(token.expose()),
            purpose: record.purpose,
            account: subject.id,
            password_hash,
            session: session.clone(),
            session_token: TokenHash::of(session_token.expose()),
        };
        if !self.ctx.store.redeem_recovery(&change, &recovery).await? {
            // Another redemption won the race, or the token expired meanwhile.
            return Err(ServiceError::TokenInvalid);
        }
        self.ctx
            .refreshed(LoginResponse {
                token: session_token,
                expires_at: session.expires_at,
                idle_timeout_secs: session.idle_timeout_secs,
                account: subject,
            })
            .await
    }
}
