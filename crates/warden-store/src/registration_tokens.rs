//! Registration tokens: a token lets a bounded number of people register themselves.
//!
//! Like every one-time token, it is stored only as its SHA-256. Unlike a recovery link it has
//! several uses: `uses_left` is decremented by one conditional `UPDATE … WHERE uses_left > 0
//! AND expires_at > now AND revoked_at IS NULL RETURNING` inside the very write that creates
//! the user, so of any number of concurrent registrations on a token with `n` uses left,
//! exactly `n` commit; the others find no row and write nothing.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;
use warden_core::Name;
use warden_core::authz::Binding;
use warden_core::credential::TokenHash;
use warden_core::model::User;

use crate::{Change, Result};

/// A registration token as stored (the token itself never is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationToken {
    pub id: Uuid,
    /// The tenant `roles` are bound in.
    pub tenant: Name,
    pub roles: Vec<Name>,
    pub max_uses: u32,
    pub uses_left: u32,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
    /// The account that created it.
    pub created_by: Option<Uuid>,
    /// An invitation's address: the token was mailed there, so the account registered with it
    /// gets this address as its primary one, verified. `None`: a token handed out by hand.
    pub email: Option<String>,
}

impl RegistrationToken {
    /// Whether someone can still register with it at `now` (what the counting update checks).
    pub fn is_usable(&self, now: OffsetDateTime) -> bool {
        self.revoked_at.is_none() && self.uses_left > 0 && now < self.expires_at
    }
}

/// What a registration writes: the user (its change is the registration's), and, with a
/// token, one use of it and the token's bindings (each with its own change).
#[derive(Debug, Clone)]
pub struct Registration {
    pub user: User,
    pub password_hash: Option<String>,
    /// The token presented, hashed; `None` in public mode.
    pub token: Option<TokenHash>,
    pub bindings: Vec<(Change, Binding)>,
    /// Mail queued with the registration (the verification of the address the person gave).
    pub mails: Vec<crate::QueuedMail>,
}

#[async_trait]
pub trait RegistrationTokens: Send + Sync {
    /// Stores a new token by its hash, and queues `mails` (an invitation's) in the same
    /// transaction.
    async fn create_registration_token(
        &self,
        change: &Change,
        token: &RegistrationToken,
        hash: &TokenHash,
        mails: &[crate::QueuedMail],
    ) -> Result<()>;
    /// Gives a usable token a new hash (an invitation's token is made when its mail is sent, so
    /// the one stored at creation was never handed out). `false` when it is no longer usable.
    async fn rekey_registration_token(&self, id: Uuid, hash: &TokenHash, at: OffsetDateTime) -> Result<bool>;
    /// The token with this id.
    async fn registration_token_by_id(&self, id: Uuid) -> Result<Option<RegistrationToken>>;
    /// The token with this hash, usable or not (reading never uses it).
    async fn registration_token(&self, hash: &TokenHash) -> Result<Option<RegistrationToken>>;
    /// Every registration token, newest first.
    async fn registration_tokens(&self) -> Result<Vec<RegistrationToken>>;
    /// Revokes the token at `change.at`; `false` (and nothing written) when there is no such
    /// token or it was revoked already.
    async fn revoke_registration_token(&self, change: &Change, id: Uuid) -> Result<bool>;
    /// Registers `registration.user` in one transaction: takes one use of the token (if any;
    /// only while it has uses left, is unexpired at `change.at` and unrevoked), creates the
    /// user and its bindings. `false`, and nothing written, when the token could not be used.
    async fn register(&self, change: &Change, registration: &Registration) -> Result<bool>;
}
