//! Sending the lifecycle's mail: the queue is filled by the flows (in the transaction of the
//! change that causes a mail), and emptied here, apart from any request: a failing relay
//! never fails or slows the request that queued the mail.
//!
//! A queued mail names its kind, recipient and account, never a link. The link's token is made
//! here, as the mail is sent (for an invitation the registration token is given a new hash),
//! so no token is ever stored in clear, not even for the minutes a mail waits. If the account
//! is gone or disabled by then, or an address is no longer the one to write to, the mail is
//! dropped. Attempts that fail are retried with back-off (30 s, doubling, at most 1 h) up to
//! `mail.max_attempts`.

use std::sync::Arc;

use time::{Duration, OffsetDateTime};
use tokio::sync::Notify;
use uuid::Uuid;
use warden_core::credential::{Secret, TokenHash, TokenKind};
use warden_core::model::{NameOrId, SubjectKind};
use warden_store::{Action, Change, MailKind, MailOutcome, OneTimeToken, QueuedMail, TokenPurpose};

use crate::config::{MailConfig, MailTimes};
use crate::mail::{MailContext, MailError, Templates, Transport};
use crate::services::auth::random_token;
use crate::services::{Context, Result, ServiceError};

/// How long a node holds a mail it took before another may take it (it died mid-send).
const LEASE_SECS: i64 = 300;
/// Mails taken at once.
const BATCH: u32 = 20;

/// This node's mail sender: transport, templates and the bell that wakes it.
pub struct Mailer {
    transport: Transport,
    templates: Templates,
    from: String,
    pub times: MailTimes,
    max_attempts: u32,
    bell: Notify,
}

impl Mailer {
    pub fn new(config: &MailConfig) -> Result<Arc<Self>> {
        let fail = |e: MailError| ServiceError::Config(e.to_string());
        let times = config.times().map_err(|e| ServiceError::Config(e.to_string()))?;
        Ok(Arc::new(Self {
            transport: Transport::from_config(config, times.smtp_timeout_secs).map_err(fail)?,
            templates: Templates::load(config.templates_dir.as_deref()).map_err(fail)?,
            from: config.from.clone(),
            times,
            max_attempts: config.max_attempts,
            bell: Notify::new(),
        }))
    }

    /// Where mail goes (`outbox DIR` or `smtp HOST:PORT`), for answers and the log.
    pub fn destination(&self) -> String {
        self.transport.describe()
    }

    /// Wakes this node's sender (a change queued mail).
    pub fn wake(&self) {
        self.bell.notify_one();
    }
}

/// Sends queued mail.
#[derive(Clone)]
pub struct Postman {
    ctx: Context,
}

impl Postman {
    pub fn new(ctx: Context) -> Self {
        Self { ctx }
    }

    /// Sends what is due whenever woken, and at `mail.poll_interval` for mail other nodes
    /// queued (or that waits for a retry).
    pub async fn run(self) {
        let poll = std::time::Duration::from_secs(self.ctx.mail.times.poll_secs.unsigned_abs());
        loop {
            if let Err(e) = self.send_due().await {
                tracing::warn!(error = %e, "mail queue unavailable");
            }
            tokio::select! {
                () = self.ctx.mail.bell.notified() => {}
                () = tokio::time::sleep(poll) => {}
            }
        }
    }

    /// Sends every mail due now; returns how many were taken.
    pub async fn send_due(&self) -> Result<usize> {
        let mut taken = 0;
        loop {
            let now = self.ctx.now();
            let batch = self.ctx.store.take_mail(now, now + Duration::seconds(LEASE_SECS), BATCH).await?;
            if batch.is_empty() {
                return Ok(taken);
            }
            taken += batch.len();
            for mail in batch {
                let outcome = self.attempt(&mail).await;
                let now = self.ctx.now();
                match &outcome {
                    MailOutcome::Sent => {}
                    MailOutcome::Retry { error, next } => {
                        tracing::warn!(mail = %mail.id, kind = mail.kind.as_str(), to = %mail.recipient, attempt = mail.attempts, retry_at = %warden_core::timestamp::format(*next), error = %error, "mail not sent; will retry");
                    }
                    MailOutcome::GaveUp { error } => {
                        tracing::warn!(mail = %mail.id, kind = mail.kind.as_str(), to = %mail.recipient, attempt = mail.attempts, error = %error, "mail given up");
                    }
                }
                self.ctx.store.finish_mail(mail.id, now, &outcome).await?;
            }
        }
    }

    async fn attempt(&self, mail: &QueuedMail) -> MailOutcome {
        let link = match self.link(mail).await {
            Ok(Some(link)) => link,
            Ok(None) => {
                return MailOutcome::GaveUp { error: "nothing to send any more (the account, address or invitation changed)".into() };
            }
            Err(e) => return self.retry(mail, e.to_string()),
        };
        let letter = match self.ctx.mail.templates.render(mail.kind, &mail.recipient, &link.context) {
            Ok(letter) => letter,
            Err(e) => return MailOutcome::GaveUp { error: e.to_string() },
        };
        match self.ctx.mail.transport.send(&self.ctx.mail.from, mail.id, &letter).await {
            Ok(place) => {
                tracing::info!(mail = %mail.id, kind = mail.kind.as_str(), to = %mail.recipient, r#where = %place, "mail sent");
                MailOutcome::Sent
            }
            Err(MailError::Message(e)) => MailOutcome::GaveUp { error: e },
            Err(e) => self.retry(mail, e.to_string()),
        }
    }

    fn retry(&self, mail: &QueuedMail, error: String) -> MailOutcome {
        if mail.attempts >= self.ctx.mail.max_attempts {
            return MailOutcome::GaveUp { error };
        }
        let wait = 30_i64.saturating_mul(1 << mail.attempts.saturating_sub(1).min(7)).min(3600);
        MailOutcome::Retry { error, next: self.ctx.now() + Duration::seconds(wait) }
    }

    /// Makes the mail's link (a new token, stored hashed) and what its template is given;
    /// `None` when there is nothing to send any more.
    async fn link(&self, mail: &QueuedMail) -> Result<Option<Link>> {
        let Some(base) = self.ctx.config.server.public_url.as_deref().map(|u| u.trim_end_matches('/').to_owned()) else {
            return Err(ServiceError::PublicUrlMissing);
        };
        let now = self.ctx.now();
        let token = random_token(TokenKind::OneTime)?;
        let hash = TokenHash::of(token.expose());
        let times = &self.ctx.mail.times;
        if mail.kind == MailKind::Invitation {
            let Some(id) = mail.reference_id else { return Ok(None) };
            let Some(invitation) = self.ctx.store.registration_token_by_id(id).await? else { return Ok(None) };
            if !invitation.is_usable(now) || !self.ctx.store.rekey_registration_token(id, &hash, now).await? {
                return Ok(None);
            }
            self.issued(mail, id, invitation.expires_at).await?;
            let context = link_context(&base, "register", &token, invitation.expires_at, String::new(), String::new(), &mail.recipient);
            return Ok(Some(Link { context }));
        }
        let Some(account) = mail.account_id else { return Ok(None) };
        let Some(owner) = self.ctx.store.account(&NameOrId::Id(account), now).await? else { return Ok(None) };
        if !owner.active || owner.subject.kind != SubjectKind::User {
            return Ok(None);
        }
        let (purpose, ttl, page) = match mail.kind {
            MailKind::AccountNotice => (TokenPurpose::AccountNotice, times.account_notice_secs, "recover"),
            MailKind::PasswordReset => (TokenPurpose::PasswordReset, times.password_reset_secs, "recover"),
            MailKind::PasswordChangeRequired => (TokenPurpose::PasswordChange, times.password_change_secs, "recover"),
            MailKind::EmailVerification => (TokenPurpose::EmailVerification, times.email_verification_secs, "verify-email"),
            MailKind::Invitation => return Ok(None),
        };
        let user = self.ctx.store.user(&NameOrId::Id(account)).await?;
        let Some(user) = user else { return Ok(None) };
        let holds = |verified_only: bool| {
            user.profile.emails.iter().any(|e| e.address.eq_ignore_ascii_case(&mail.recipient) && (e.verified || !verified_only))
        };
        // A password link goes to a verified address the account still has; a verification
        // link to an address it still has unverified.
        let still_right = match mail.kind {
            MailKind::EmailVerification => holds(false) && !holds(true),
            _ => holds(true),
        };
        if !still_right {
            return Ok(None);
        }
        let record = OneTimeToken {
            id: Uuid::now_v7(),
            purpose,
            account_id: account,
            created_at: now,
            expires_at: now + Duration::seconds(ttl),
            consumed_at: None,
            issued_by: None,
            detail: (mail.kind == MailKind::EmailVerification).then(|| mail.recipient.to_ascii_lowercase()),
        };
        let change = Change::new(
            now,
            None,
            Action::MailLinkIssue {
                mail_id: mail.id,
                kind: mail.kind.as_str().to_owned(),
                token_id: record.id,
                expires_at: warden_core::timestamp::format(record.expires_at),
            },
            Some(&owner.subject),
        );
        // A verification link leaves other addresses' links alone; a password link ends the
        // account's older links of its kind.
        let replace = mail.kind != MailKind::EmailVerification;
        self.ctx.store.issue_one_time_token(&change, &record, &hash, replace).await?;
        let greeting = user.profile.display_name.clone().unwrap_or_else(|| user.name.to_string());
        let context = link_context(&base, page, &token, record.expires_at, greeting, user.name.to_string(), &mail.recipient);
        Ok(Some(Link { context }))
    }

    /// Records an invitation's link (its registration token was given a new hash).
    async fn issued(&self, mail: &QueuedMail, token_id: Uuid, expires_at: OffsetDateTime) -> Result<()> {
        let action = Action::MailLinkIssue {
            mail_id: mail.id,
            kind: mail.kind.as_str().to_owned(),
            token_id,
            expires_at: warden_core::timestamp::format(expires_at),
        };
        Ok(self.ctx.store.record(&Change::new(self.ctx.now(), None, action, None)).await?)
    }
}

/// What a template is given for a link to `{base}/{page}?token=…`.
fn link_context(
    base: &str,
    page: &str,
    token: &Secret,
    expires_at: OffsetDateTime,
    greeting: String,
    name: String,
    address: &str,
) -> MailContext {
    MailContext {
        greeting,
        name,
        link: format!("{base}/{page}?token={}", token.expose()),
        expires_at: warden_core::timestamp::format(expires_at),
        site: base.to_owned(),
        address: address.to_owned(),
    }
}

struct Link {
    context: MailContext,
}
