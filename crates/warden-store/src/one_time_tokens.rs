//! One-time tokens: the links that set a password (an administrator's recovery link, an account
//! notice, a password reset, a required password change) and e-mail verification links.
//!
//! A one-time token is a random secret handed out once (in a link); the store keeps only its
//! SHA-256 and looks it up by that hash. Redeeming it is a single conditional update (not yet
//! consumed, not yet expired) inside the very transaction that does what the token allows, so
//! of any number of concurrent redemptions exactly one commits: the others find no row and
//! change nothing. Reading a token never consumes it.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;
use warden_core::credential::TokenHash;

use crate::{Change, Result, SessionRecord};

/// What a one-time token is for; stored as text so that later flows add values, not tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    /// An administrator's recovery link: choose a new password.
    Recovery,
    /// A new account's first password (an account notice).
    AccountNotice,
    /// A reset the person asked for (forgot password).
    PasswordReset,
    /// A new password an administrator requires.
    PasswordChange,
    /// Proves that the address in `detail` reaches the account's owner.
    EmailVerification,
    /// A sign-in whose password was right, waiting for its second factor.
    SecondFactor,
}

impl TokenPurpose {
    /// Every purpose whose redemption sets the password.
    pub const SETS_PASSWORD: [Self; 4] = [Self::Recovery, Self::AccountNotice, Self::PasswordReset, Self::PasswordChange];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Recovery => "recovery",
            Self::AccountNotice => "account_notice",
            Self::PasswordReset => "password_reset",
            Self::PasswordChange => "password_change",
            Self::EmailVerification => "email_verification",
            Self::SecondFactor => "second_factor",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Recovery, Self::AccountNotice, Self::PasswordReset, Self::PasswordChange, Self::EmailVerification, Self::SecondFactor]
            .into_iter()
            .find(|p| p.as_str() == text)
    }

    /// Whether redeeming it sets the password.
    pub fn sets_password(self) -> bool {
        Self::SETS_PASSWORD.contains(&self)
    }
}

/// A one-time token as stored (the token itself never is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneTimeToken {
    pub id: Uuid,
    pub purpose: TokenPurpose,
    pub account_id: Uuid,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub consumed_at: Option<OffsetDateTime>,
    /// The account that issued it; `None` when the server did.
    pub issued_by: Option<Uuid>,
    /// What it is about beyond the account (the address an e-mail verification verifies).
    pub detail: Option<String>,
}

impl OneTimeToken {
    /// Whether it can still be redeemed at `now` (what the consuming update also checks).
    pub fn is_redeemable(&self, now: OffsetDateTime) -> bool {
        self.consumed_at.is_none() && now < self.expires_at
    }
}

/// What redeeming a password-setting token writes, besides consuming it.
#[derive(Debug, Clone)]
pub struct Recovery {
    /// The token presented, hashed.
    pub token: TokenHash,
    /// Its purpose as read (one that sets the password); the update consumes it only as that.
    pub purpose: TokenPurpose,
    /// The account the caller read the token as belonging to: the update consumes it only for
    /// that account (the audit event already names it).
    pub account: Uuid,
    /// The new password's hash.
    pub password_hash: String,
    /// The session that signs the user in, and its token's hash.
    pub session: SessionRecord,
    pub session_token: TokenHash,
}

#[async_trait]
pub trait OneTimeTokens: Send + Sync {
    /// Stores a new token by its hash. With `replace`, the account's unconsumed tokens of the
    /// same purpose are deleted in the same transaction (a new recovery link ends older ones).
    async fn issue_one_time_token(&self, change: &Change, token: &OneTimeToken, hash: &TokenHash, replace: bool) -> Result<()>;
    /// The token with this hash, consumed or expired alike (never consumes it).
    async fn one_time_token(&self, hash: &TokenHash) -> Result<Option<OneTimeToken>>;
    /// Redeems a password-setting token in one transaction: consumes it (only if it is a token
    /// of `recovery.purpose` for `recovery.account`, unconsumed and unexpired at `change.at`),
    /// sets the password (clearing a required change), drops the account's other unconsumed
    /// password-setting tokens, ends every session of the account and creates
    /// `recovery.session`. `false`, and nothing written (not even the audit event), when the
    /// token was not redeemable.
    async fn redeem_recovery(&self, change: &Change, recovery: &Recovery) -> Result<bool>;
    /// Redeems an e-mail verification token in one transaction: consumes it (as
    /// `redeem_recovery` does) and marks the address in its `detail` verified on the account.
    /// `false`, and nothing written, when the token was not redeemable or the account no
    /// longer has that address.
    async fn verify_email(&self, change: &Change, token: &TokenHash, account: Uuid, address: &str) -> Result<bool>;
    /// Consumes a token of `purpose` for `account` (unconsumed, unexpired at `at`) and nothing
    /// else; `false` when it was not redeemable. The caller's own write records the event.
    async fn consume_one_time_token(&self, token: &TokenHash, purpose: TokenPurpose, account: Uuid, at: OffsetDateTime) -> Result<bool>;
}
