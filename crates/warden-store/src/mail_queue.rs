//! The mail queue: mail the lifecycle flows send (invitations, account notices, password
//! resets, forced password changes, e-mail verification).
//!
//! A mail is queued in the same transaction as the change that causes it, so it is neither lost
//! nor sent for a change that did not commit, and it never delays or fails that change: a
//! sender takes it later. A queued mail names what to send and to whom, never a link: the
//! link's token is made when the mail is sent, so no token is ever stored in clear. Senders
//! on several nodes share the queue; taking a mail sets its lease in one conditional update,
//! so one node sends it (again only after the lease runs out, when that node died mid-send).

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Change, Result};

/// What a mail says; each kind has its template and, but for none, a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    /// An invitation to register (`reference` is the invitation).
    Invitation,
    /// A new account's first password (an administrator made the account without one).
    AccountNotice,
    /// A password reset the person asked for (forgot password).
    PasswordReset,
    /// An administrator requires a new password.
    PasswordChangeRequired,
    /// A link proving that an address reaches the person (`recipient` is that address).
    EmailVerification,
}

impl MailKind {
    pub const ALL: [Self; 5] =
        [Self::Invitation, Self::AccountNotice, Self::PasswordReset, Self::PasswordChangeRequired, Self::EmailVerification];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Invitation => "invitation",
            Self::AccountNotice => "account_notice",
            Self::PasswordReset => "password_reset",
            Self::PasswordChangeRequired => "password_change_required",
            Self::EmailVerification => "email_verification",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// A mail in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMail {
    pub id: Uuid,
    pub kind: MailKind,
    pub recipient: String,
    /// The account the mail is about (`None` for an invitation: no account exists yet).
    pub account_id: Option<Uuid>,
    /// What else it is about (the invitation).
    pub reference_id: Option<Uuid>,
    pub created_at: OffsetDateTime,
    /// Attempts made so far (counting the one a sender is making after taking it).
    pub attempts: u32,
}

impl QueuedMail {
    pub fn new(
        kind: MailKind,
        recipient: impl Into<String>,
        account_id: Option<Uuid>,
        reference_id: Option<Uuid>,
        at: OffsetDateTime,
    ) -> Self {
        Self { id: Uuid::now_v7(), kind, recipient: recipient.into(), account_id, reference_id, created_at: at, attempts: 0 }
    }
}

/// How an attempt to send ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailOutcome {
    Sent,
    /// Try again from `next`.
    Retry {
        error: String,
        next: OffsetDateTime,
    },
    /// Given up (too many attempts, or nothing left to send: the account is gone).
    GaveUp {
        error: String,
    },
}

/// A mail's state, for operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailStatus {
    pub mail: QueuedMail,
    pub sent_at: Option<OffsetDateTime>,
    pub failed_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
    pub not_before: OffsetDateTime,
}

#[async_trait]
pub trait MailQueue: Send + Sync {
    /// Writes `change` (its audit event) and queues `mails` in one transaction.
    async fn queue_mail(&self, change: &Change, mails: &[QueuedMail]) -> Result<()>;
    /// Takes up to `limit` mails due at `now` whose lease (if any) ran out, leasing them until
    /// `lease_until` and counting the attempt. Of senders taking at once, each mail goes to one.
    async fn take_mail(&self, now: OffsetDateTime, lease_until: OffsetDateTime, limit: u32) -> Result<Vec<QueuedMail>>;
    /// Records how the attempt on mail `id` ended, at `at`, and ends its lease.
    async fn finish_mail(&self, id: Uuid, at: OffsetDateTime, outcome: &MailOutcome) -> Result<()>;
    /// Queues `mail` (about an account) with `change`, unless `max` mails of its kind about its
    /// account were queued at or after `since`: `false`, and nothing written, then. The count
    /// and the write are one step of the node's single writer, so concurrent requests on a node
    /// cannot together pass the limit.
    async fn queue_mail_within(&self, change: &Change, mail: &QueuedMail, since: OffsetDateTime, max: u64) -> Result<bool>;
    /// The newest mails, newest first.
    async fn mails(&self, limit: u32) -> Result<Vec<MailStatus>>;
}
