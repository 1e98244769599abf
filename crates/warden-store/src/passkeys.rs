//! Passkeys (WebAuthn credentials) and the ceremonies that register and use them.
//!
//! The store keeps what the verifier (webauthn-rs) hands it as opaque JSON: the credential
//! record (public key, signature counter, backup flags) and a ceremony's state (its challenge
//! among it). A ceremony's state lives here, under the hash of a key the client holds, and is
//! deleted by the statement that reads it: a challenge is answered once, on whichever node.
//! Starting a ceremony is no change to the directory (it grants nothing and is gone in
//! minutes), so it writes no audit event; what a ceremony ends in (a registered passkey, a
//! sign-in, a refusal) does.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;
use warden_core::credential::TokenHash;

use crate::{Change, Result};

/// One registered passkey of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyRecord {
    pub id: Uuid,
    pub account_id: Uuid,
    /// The authenticator's credential id (raw bytes).
    pub credential_id: Vec<u8>,
    pub name: String,
    /// The verifier's record of the credential, as JSON.
    pub credential: String,
    /// The signature counter last accepted (0: the authenticator keeps none).
    pub sign_count: u32,
    pub created_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
}

/// What a ceremony is for; a ceremony is finished only as what it was started for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CeremonyKind {
    /// Registering a new passkey for a signed-in account.
    Register,
    /// Signing in with a discoverable passkey alone.
    SignIn,
    /// A passkey as the second step of a password sign-in (keyed by the pending sign-in).
    SecondFactor,
    /// Re-authenticating a session with one of its account's passkeys.
    Reauth,
}

impl CeremonyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::SignIn => "sign_in",
            Self::SecondFactor => "second_factor",
            Self::Reauth => "reauth",
        }
    }
}

/// A ceremony taken back to be finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ceremony {
    /// The account it was started for (none for a passwordless sign-in, which learns the
    /// account from the credential).
    pub account_id: Option<Uuid>,
    /// The verifier's state, as JSON.
    pub state: String,
}

/// How a use of a passkey went in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasskeyUse {
    /// Taken: the counter moved forward (or the authenticator keeps none).
    Taken,
    /// The counter did not move past the one stored: a replayed assertion or a cloned
    /// authenticator, refused.
    CounterBehind,
    /// The passkey is gone (removed meanwhile).
    Gone,
}

#[async_trait]
pub trait Passkeys: Send + Sync {
    /// Holds a ceremony's state until `expires_at` under `key`; ceremonies that expired before
    /// `now` go in the same write.
    async fn start_ceremony(
        &self,
        key: &TokenHash,
        kind: CeremonyKind,
        account: Option<Uuid>,
        state: &str,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<()>;
    /// Takes a ceremony (deleting it): `None` when there is none of that kind under `key`, or
    /// it expired. Of concurrent takers one gets it.
    async fn take_ceremony(&self, key: &TokenHash, kind: CeremonyKind, now: OffsetDateTime) -> Result<Option<Ceremony>>;
    /// Registers a passkey with `change`: `false`, and nothing written, when its credential id
    /// is registered already (to this account or another).
    async fn add_passkey(&self, change: &Change, passkey: &PasskeyRecord) -> Result<bool>;
    /// An account's passkeys, oldest first.
    async fn passkeys(&self, account: Uuid) -> Result<Vec<PasskeyRecord>>;
    /// The passkey with this credential id, whoever holds it.
    async fn passkey_by_credential_id(&self, credential_id: &[u8]) -> Result<Option<PasskeyRecord>>;
    /// Records a use at `at`: the new counter and record, taken only if `sign_count` moves
    /// past the stored one (or both are 0, for authenticators that keep no counter).
    async fn use_passkey(&self, id: Uuid, credential: &str, sign_count: u32, at: OffsetDateTime) -> Result<PasskeyUse>;
    /// Renames one of `account`'s passkeys; `false` when it has no such passkey.
    async fn rename_passkey(&self, change: &Change, account: Uuid, id: Uuid, name: &str) -> Result<bool>;
    /// Removes one of `account`'s passkeys; `false` when it has no such passkey.
    async fn remove_passkey(&self, change: &Change, account: Uuid, id: Uuid) -> Result<bool>;
}
