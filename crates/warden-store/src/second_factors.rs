//! Second factors: an account's TOTP credential, its backup codes, and the count of failed
//! second-factor attempts that locks them.
//!
//! Every use is one conditional update, so that under concurrency a TOTP step is accepted once
//! (`last_used_step < step`), a backup code is used once (`used_at IS NULL`), and the failure
//! count cannot be outrun. A TOTP secret is stored as itself (a code is computed from it);
//! backup codes only as SHA-256.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;
use warden_core::credential::TokenHash;

use crate::{Change, Result};

/// An account's TOTP credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TotpCredential {
    pub account_id: Uuid,
    /// The shared secret, base32 (RFC 4648, no padding).
    pub secret: String,
    /// `SHA1` or `SHA256`.
    pub algorithm: String,
    pub digits: u32,
    pub created_at: OffsetDateTime,
    /// `None` until the first code proves the enrolment.
    pub confirmed_at: Option<OffsetDateTime>,
    pub last_used_step: Option<i64>,
}

/// How many of each factor an account can answer with: what a sign-in asks, in one read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FactorCounts {
    /// A confirmed TOTP credential.
    pub totp: bool,
    pub backup_codes_left: u32,
    pub passkeys: u32,
}

#[async_trait]
pub trait SecondFactors: Send + Sync {
    /// The account's usable factors, in one statement.
    async fn factor_counts(&self, account: Uuid) -> Result<FactorCounts>;
    /// Starts (or restarts) an enrolment: stores an unconfirmed credential. `false`, and nothing
    /// written, when the account has a confirmed one (it must be removed first).
    async fn begin_totp(&self, change: &Change, credential: &TotpCredential) -> Result<bool>;
    async fn totp(&self, account: Uuid) -> Result<Option<TotpCredential>>;
    /// Confirms a pending enrolment with the step of a right code. `false` when there is no
    /// pending one.
    async fn confirm_totp(&self, change: &Change, account: Uuid, step: i64) -> Result<bool>;
    /// Takes `step` as used: `false` (a replay, or no confirmed credential) unless it is later
    /// than every step used before.
    async fn use_totp_step(&self, account: Uuid, step: i64) -> Result<bool>;
    /// Removes the credential (confirmed or not); `false` when there was none.
    async fn remove_totp(&self, change: &Change, account: Uuid) -> Result<bool>;
    /// Replaces every backup code of the account with these (hashes).
    async fn replace_backup_codes(&self, change: &Change, account: Uuid, codes: &[TokenHash]) -> Result<()>;
    /// Uses a backup code with `change` (a `BackupCodeUse`, whose `remaining` the store fills
    /// in), in one transaction: `Some(codes left)` if it was an unused code of the account;
    /// `None`, and nothing written, otherwise.
    async fn use_backup_code(&self, change: &Change, account: Uuid, code: &TokenHash) -> Result<Option<u32>>;
    /// Unused backup codes of the account.
    async fn backup_codes_left(&self, account: Uuid) -> Result<u32>;
    /// Counts a failed second-factor attempt at `at` (a window of `window` restarts the count);
    /// the `max`-th failure locks the factor until `at + lock`. Returns the lock's end, if any.
    async fn second_factor_failed(
        &self,
        account: Uuid,
        at: OffsetDateTime,
        window: time::Duration,
        max: u32,
        lock: time::Duration,
    ) -> Result<Option<OffsetDateTime>>;
    /// Until when the account's second factor is locked, if it is at `at`.
    async fn second_factor_locked(&self, account: Uuid, at: OffsetDateTime) -> Result<Option<OffsetDateTime>>;
    /// Removes every second factor of the account (TOTP, backup codes, passkeys, failures) with `change`;
    /// returns whether there was anything to remove (nothing is written otherwise).
    async fn reset_second_factors(&self, change: &Change, account: Uuid) -> Result<bool>;
    /// Forgets the failures (after a right code, or an administrator's unlock).
    async fn clear_second_factor_failures(&self, account: Uuid) -> Result<()>;
}
