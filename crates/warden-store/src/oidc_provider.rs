//! The OpenID Connect provider's state: signing keys (sealed), grants (one per redeemed code,
//! bound to a session), refresh tokens (by hash, spent once) and consents.
//!
//! The one-time rules are the database's: a code's hash is unique among grants, so of any
//! number of concurrent redemptions exactly one inserts its grant and the others find it; a
//! refresh token is spent by an update that only matches it unspent, so exactly one
//! redemption rotates it and any other is a reuse.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;
use warden_core::access::AuthStrength;
use warden_core::credential::TokenHash;

use crate::{Change, Result};

/// A signing key as stored: its private half sealed by the caller.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// The `kid`.
    pub id: String,
    /// `RS256`, `ES256` or `EdDSA`.
    pub alg: String,
    /// The private key, sealed (never the clear PKCS#8).
    pub sealed_private_key: Vec<u8>,
    /// The public JWK, as JSON.
    pub public_jwk: String,
    pub created_at: OffsetDateTime,
    /// When it stopped signing (`None`: it signs).
    pub retired_at: Option<OffsetDateTime>,
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("id", &self.id)
            .field("alg", &self.alg)
            .field("sealed_private_key", &"***")
            .field("public_jwk", &self.public_jwk)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish()
    }
}

/// A grant about to be created, with its first refresh token.
#[derive(Debug, Clone)]
pub struct NewGrant {
    pub id: Uuid,
    pub client: Uuid,
    pub account: Uuid,
    pub session: Uuid,
    pub code: TokenHash,
    pub scopes: Vec<String>,
    pub auth_time: OffsetDateTime,
    pub auth_strength: AuthStrength,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub refresh_token: TokenHash,
}

/// A grant as read back, with what decides whether it still lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRecord {
    pub id: Uuid,
    pub client: Uuid,
    pub account: Uuid,
    pub session: Uuid,
    pub scopes: Vec<String>,
    pub auth_time: OffsetDateTime,
    pub auth_strength: AuthStrength,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
    /// The session's absolute end; `None` when the session is gone (ended).
    pub session_expires_at: Option<OffsetDateTime>,
    /// Whether the account may sign in at the time of the read (enabled, in its window).
    pub account_active: bool,
}

impl GrantRecord {
    /// Whether the grant's tokens are good at `now`: not revoked, not expired, its session
    /// still there and current, its account active.
    pub fn is_live(&self, now: OffsetDateTime) -> bool {
        self.revoked_at.is_none() && self.expires_at > now && self.session_expires_at.is_some_and(|end| end > now) && self.account_active
    }
}

/// A person's consent to a client, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRecord {
    pub client: Uuid,
    pub scopes: Vec<String>,
    pub granted_at: OffsetDateTime,
}

/// What redeeming a code found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantCreated {
    Created,
    /// The code was redeemed before, for this grant (which the caller revokes).
    CodeUsed {
        grant: Uuid,
    },
}

#[async_trait]
pub trait OidcProvider: Send + Sync {
    /// Every signing key, newest first.
    async fn oidc_keys(&self) -> Result<Vec<SigningKeyRecord>>;
    /// Stores `created`, retires the keys named in `retire` at `change.at`, and deletes keys
    /// retired before `forget_before` (no token they signed can still be valid), in one
    /// audited write.
    async fn rotate_oidc_keys(
        &self,
        change: &Change,
        created: &[SigningKeyRecord],
        retire: &[String],
        forget_before: OffsetDateTime,
    ) -> Result<()>;

    /// Creates a grant for a redeemed code, with its first refresh token, audited.
    async fn create_oidc_grant(&self, change: &Change, grant: &NewGrant) -> Result<GrantCreated>;
    /// The grant with this id.
    async fn oidc_grant(&self, id: Uuid, at: OffsetDateTime) -> Result<Option<GrantRecord>>;
    /// The grant a refresh token belongs to, and whether the token is spent.
    async fn oidc_refresh_token(&self, token: &TokenHash, at: OffsetDateTime) -> Result<Option<(GrantRecord, bool)>>;
    /// Spends `old` (which must be `grant`'s, unspent, with the grant unrevoked) and stores
    /// `new` in its place, audited; `false`, with nothing written, if `old` was not there to
    /// spend (someone else spent it first).
    async fn rotate_refresh_token(&self, change: &Change, grant: Uuid, old: &TokenHash, new: &TokenHash) -> Result<bool>;
    /// Revokes a grant, audited; `false` (nothing written) if it was revoked already or is gone.
    async fn revoke_oidc_grant(&self, change: &Change, grant: Uuid) -> Result<bool>;
    /// Deletes grants that can no longer be used at `at` (expired, or their session gone),
    /// with their refresh tokens. Bookkeeping: no event.
    async fn purge_oidc_grants(&self, at: OffsetDateTime) -> Result<u64>;

    /// The scopes `account` allowed `client`.
    async fn oidc_consent(&self, account: Uuid, client: Uuid) -> Result<Option<Vec<String>>>;
    /// Records (or widens) a consent, audited.
    async fn grant_oidc_consent(&self, change: &Change, account: Uuid, client: Uuid, scopes: &[String]) -> Result<()>;

    /// Every consent `account` gave, by client.
    async fn oidc_consents_of(&self, account: Uuid) -> Result<Vec<ConsentRecord>>;
    /// `account`'s grants that can still be used at `at` (unrevoked, unexpired, their session
    /// there and before its absolute end), oldest first.
    async fn oidc_grants_of(&self, account: Uuid, at: OffsetDateTime) -> Result<Vec<GrantRecord>>;
    /// Disconnects `client` from `account` in one audited write: deletes the consent and
    /// revokes every grant of theirs that can still be used (the count goes into
    /// `Action::OidcConsentWithdraw::grants_revoked`, and is returned). `None`, with nothing
    /// written, when there was neither a consent nor such a grant.
    async fn withdraw_oidc_consent(&self, change: &Change, account: Uuid, client: Uuid) -> Result<Option<u64>>;
}
