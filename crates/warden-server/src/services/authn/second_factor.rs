//! Second factors: TOTP (RFC 6238), backup codes and passkeys (see [`super::passkey`]), and the
//! sign-in step that asks for one.
//!
//! A password that is right for an account with a second factor yields no session but a
//! pending sign-in: a one-time token (`wdo_…`, kept hashed, valid for five minutes) that
//! `finish` exchanges, with a right code, for the session. A TOTP code is accepted once (the
//! store takes its step only if it is later than every step used before), within one step of
//! the server's clock either way; a backup code once. Five wrong codes within fifteen minutes
//! lock the account's second factor for fifteen minutes on every node. Enrolling, removing and
//! regenerating need an elevated session: a stolen read-only session can neither add a factor
//! (and lock its owner out) nor take one away.

use std::net::IpAddr;

use time::{Duration, OffsetDateTime};
use totp_rs::{Algorithm, Totp};
use uuid::Uuid;
use warden_core::CoreError;
use warden_core::access::{AuthStrength, Principal};
use warden_core::api::{
    BackupCodes, BeginTotp, LoginResponse, SecondFactorAnswer, SecondFactorRequired, SecondFactorStatus, TotpEnrolment, UserCredentials,
};
use warden_core::credential::{Secret, TokenHash, TokenKind};
use warden_core::model::{NameOrId, Subject, SubjectKind};
use warden_store::{Action, CeremonyKind, Change, OneTimeToken, TokenPurpose, TotpCredential};

use super::passkey::Passkeys;
use crate::services::auth::random_token;
use crate::services::{Context, Result, ServiceError, SessionOrigin};

/// How long a pending sign-in waits for its second factor.
const CHALLENGE_SECS: i64 = 300;
/// Wrong codes within the window that lock the second factor, and for how long.
const MAX_FAILURES: u32 = 5;
const FAILURE_WINDOW: Duration = Duration::minutes(15);
const LOCK: Duration = Duration::minutes(15);
/// TOTP: 30 s steps, one step of skew either way.
const STEP_SECS: u64 = 30;
const SKEW: u16 = 1;
/// Backup codes per set, and their shape: four groups of four characters of Crockford's base32
/// alphabet (no i, l, o, u to misread): 80 random bits each.
const BACKUP_CODES: usize = 10;
const BACKUP_ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

#[derive(Clone)]
pub struct SecondFactors {
    ctx: Context,
}

/// Which second factor answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answered {
    Totp,
    BackupCode,
    Passkey,
}

impl Answered {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::BackupCode => "backup_code",
            Self::Passkey => "passkey",
        }
    }

    /// The strength of a password sign-in completed with this factor.
    pub fn strength(self) -> AuthStrength {
        match self {
            Self::Totp => AuthStrength::PasswordTotp,
            Self::BackupCode => AuthStrength::PasswordBackupCode,
            Self::Passkey => AuthStrength::PasswordPasskey,
        }
    }
}

fn totp_of(credential: &TotpCredential, account_name: &str) -> Result<Totp> {
    let algorithm = match credential.algorithm.as_str() {
        "SHA256" => Algorithm::SHA256,
        _ => Algorithm::SHA1,
    };
    let secret =
        totp_rs::Secret::try_from_base32(&credential.secret).map_err(|e| ServiceError::Internal(format!("stored TOTP secret: {e:?}")))?;
    totp_rs::Builder::new()
        .with_algorithm(algorithm)
        .with_digits(u8::try_from(credential.digits).unwrap_or(6))
        .with_secret(secret)
        .with_skew(SKEW)
        .with_step_duration(STEP_SECS)
        .with_account_name(account_name)
        .with_issuer(Some("Warden"))
        .build()
        .map_err(|e| ServiceError::Internal(format!("TOTP parameters: {e:?}")))
}

/// The step a code matches at `now` (one step of skew either way), if it matches one.
fn matching_step(totp: &Totp, code: &str, now: OffsetDateTime) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let at = u64::try_from(now.unix_timestamp()).ok()?;
    totp.check(&code, at).and_then(|step| i64::try_from(step).ok())
}

/// `uri` as a QR code in SVG: what an enrolment page shows for the phone's camera. Medium error
/// correction, a quiet zone of four modules, at least 200 px square.
fn qr_svg(uri: &str) -> Result<String> {
    use qrcode::render::svg;
    let code = qrcode::QrCode::with_error_correction_level(uri.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| ServiceError::Internal(format!("QR code: {e}")))?;
    Ok(code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build())
}

/// The caller's own user account, for a look at (`write = false`) or a change to (an elevated
/// session) its factors: TOTP, backup codes and passkeys alike.
pub(crate) fn own_account(actor: &Principal, write: bool) -> Result<&Subject> {
    if actor.account.kind != SubjectKind::User {
        return Err(ServiceError::NotAUser(actor.account.name.to_string()));
    }
    if write && !actor.elevated {
        return Err(CoreError::NotElevated.into());
    }
    Ok(&actor.account)
}

/// A backup code as typed, normalised (case and separators do not matter).
fn normalised_backup_code(code: &str) -> String {
    code.chars().filter(|c| !c.is_whitespace() && *c != '-').flat_map(char::to_lowercase).collect()
}

impl SecondFactors {
    pub fn new(ctx: Context) -> Self {
        Self { ctx }
    }

    /// The second factors `account` can answer with (`totp`, `backup_code`, `passkey`); empty:
    /// none.
    pub async fn methods(&self, account: Uuid) -> Result<Vec<String>> {
        let counts = self.ctx.store.factor_counts(account).await?;
        let mut methods = Vec::new();
        if counts.totp {
            methods.push("totp".to_owned());
        }
        if counts.backup_codes_left > 0 {
            methods.push("backup_code".to_owned());
        }
        // Passkeys count only while the server knows its relying party (none can be used
        // otherwise).
        if counts.passkeys > 0 && self.ctx.webauthn.is_some() {
            methods.push("passkey".to_owned());
        }
        Ok(methods)
    }

    /// A pending sign-in for `subject`, whose password was right, waiting for one of `methods`.
    pub async fn challenge(&self, subject: &Subject, methods: Vec<String>) -> Result<SecondFactorRequired> {
        let now = self.ctx.now();
        let state = random_token(TokenKind::OneTime)?;
        let record = OneTimeToken {
            id: Uuid::now_v7(),
            purpose: TokenPurpose::SecondFactor,
            account_id: subject.id,
            created_at: now,
            expires_at: now + Duration::seconds(CHALLENGE_SECS),
            consumed_at: None,
            issued_by: None,
            detail: None,
        };
        let change =
            Change::new(now, Some(subject), Action::SecondFactorChallenge { token_id: record.id, methods: methods.clone() }, Some(subject));
        // An older pending sign-in of the account ends: only the newest can be finished.
        let key = TokenHash::of(state.expose());
        self.ctx.store.issue_one_time_token(&change, &record, &key, true).await?;
        // A passkey's challenge is kept under the pending sign-in's own key.
        let passkey_options = if methods.iter().any(|m| m == "passkey") {
            Passkeys::new(self.ctx.clone()).options_for(subject.id, CeremonyKind::SecondFactor, &key).await?
        } else {
            None
        };
        Ok(SecondFactorRequired { next: "mfa".to_owned(), methods, state, expires_at: record.expires_at, passkey_options })
    }

    /// The pending sign-in under `state` asked again (after a wrong answer): its methods, and a
    /// new passkey challenge under the same key. `token.invalid` once it expired or was used.
    pub async fn resume(&self, state: &str) -> Result<SecondFactorRequired> {
        let state = state.trim();
        if TokenKind::of(state) != Some(TokenKind::OneTime) {
            return Err(ServiceError::TokenInvalid);
        }
        let now = self.ctx.now();
        let key = TokenHash::of(state);
        let record = self.ctx.store.one_time_token(&key).await?;
        let record =
            record.filter(|r| r.purpose == TokenPurpose::SecondFactor && r.is_redeemable(now)).ok_or(ServiceError::TokenInvalid)?;
        let methods = self.methods(record.account_id).await?;
        let passkey_options = if methods.iter().any(|m| m == "passkey") {
            Passkeys::new(self.ctx.clone()).options_for(record.account_id, CeremonyKind::SecondFactor, &key).await?
        } else {
            None
        };
        Ok(SecondFactorRequired {
            next: "mfa".to_owned(),
            methods,
            state: Secret::new(state),
            expires_at: record.expires_at,
            passkey_options,
        })
    }

    /// Finishes a pending sign-in with a second factor: the session.
    pub async fn finish(&self, answer: &SecondFactorAnswer, client: Option<IpAddr>, user_agent: Option<String>) -> Result<LoginResponse> {
        let state = answer.state.expose().trim();
        if TokenKind::of(state) != Some(TokenKind::OneTime) {
            return Err(ServiceError::TokenInvalid);
        }
        let now = self.ctx.now();
        let hash = TokenHash::of(state);
        let record = self.ctx.store.one_time_token(&hash).await?;
        let record =
            record.filter(|r| r.purpose == TokenPurpose::SecondFactor && r.is_redeemable(now)).ok_or(ServiceError::TokenInvalid)?;
        let owner = self.ctx.store.account(&NameOrId::Id(record.account_id), now).await?;
        let owner = owner.filter(|o| o.active).ok_or(ServiceError::TokenInvalid)?;
        let subject = owner.subject;
        let answered = match &answer.passkey {
            Some(assertion) if answer.totp.is_none() && answer.backup_code.is_none() => {
                self.verify_passkey(&subject, CeremonyKind::SecondFactor, &hash, assertion, client).await?
            }
            Some(_) => return Err(CoreError::validation("second_factor", "send exactly one of totp, backup_code and passkey").into()),
            None => self.verify(&subject, answer.totp.as_deref(), answer.backup_code.as_ref(), client).await?,
        };
        // The pending sign-in is used once, whoever else answers it at the same time.
        if !self.ctx.store.consume_one_time_token(&hash, TokenPurpose::SecondFactor, subject.id, self.ctx.now()).await? {
            return Err(ServiceError::TokenInvalid);
        }
        let now = self.ctx.now();
        let token = random_token(TokenKind::Session)?;
        let session = self.ctx.new_session(subject.id, now, SessionOrigin { client, user_agent, strength: answered.strength() });
        let action = Action::Login {
            session_id: session.id,
            client: client.map(|ip| ip.to_string()),
            second_factor: Some(answered.as_str().to_owned()),
        };
        let change = Change::new(now, Some(&subject), action, Some(&subject));
        self.ctx.store.create_session(&change, &session, &TokenHash::of(token.expose())).await?;
        Ok(LoginResponse { token, expires_at: session.expires_at, idle_timeout_secs: session.idle_timeout_secs, account: subject })
    }

    /// Checks a second factor of `subject` (exactly one of `totp` and `backup_code`), counting a
    /// wrong one towards the lock. Used by the sign-in step and by re-authentication.
    pub async fn verify(
        &self,
        subject: &Subject,
        totp: Option<&str>,
        backup_code: Option<&Secret>,
        client: Option<IpAddr>,
    ) -> Result<Answered> {
        let now = self.ctx.now();
        if let Some(until) = self.ctx.store.second_factor_locked(subject.id, now).await? {
            return Err(ServiceError::RateLimited { retry_after_secs: (until - now).whole_seconds().max(1) });
        }
        let right = match (totp, backup_code) {
            (Some(code), None) => {
                let credential = self.ctx.store.totp(subject.id).await?.filter(|t| t.confirmed_at.is_some());
                match credential {
                    Some(credential) => match matching_step(&totp_of(&credential, subject.name.as_str())?, code, now) {
                        // Taken once: a replayed code, or one of a step already used, fails.
                        Some(step) => self.ctx.store.use_totp_step(subject.id, step).await?.then_some(Answered::Totp),
                        None => None,
                    },
                    None => None,
                }
            }
            (None, Some(code)) => {
                let hash = TokenHash::of(&normalised_backup_code(code.expose()));
                // The use and its audit event are one write; the store fills in what remains.
                let action = Action::BackupCodeUse { remaining: 0, client: client.map(|ip| ip.to_string()) };
                let change = Change::new(now, Some(subject), action, Some(subject));
                self.ctx.store.use_backup_code(&change, subject.id, &hash).await?.map(|_| Answered::BackupCode)
            }
            _ => return Err(CoreError::validation("second_factor", "send exactly one of totp and backup_code").into()),
        };
        if let Some(answered) = right {
            self.ctx.store.clear_second_factor_failures(subject.id).await?;
            return Ok(answered);
        }
        let method = if totp.is_some() { "totp" } else { "backup_code" };
        let locked = self.ctx.store.second_factor_failed(subject.id, now, FAILURE_WINDOW, MAX_FAILURES, LOCK).await?;
        let action = Action::SecondFactorFailed {
            method: method.to_owned(),
            client: client.map(|ip| ip.to_string()),
            locked_until: locked.map(warden_core::timestamp::format),
        };
        self.ctx.store.record(&Change::new(now, None, action, Some(subject))).await?;
        match locked {
            Some(until) => Err(ServiceError::RateLimited { retry_after_secs: (until - now).whole_seconds().max(1) }),
            None => Err(ServiceError::AuthFailed),
        }
    }

    /// Checks a passkey assertion of `subject` against the ceremony of `kind` under `key`,
    /// counting a refusal towards the same lock as a wrong code.
    pub async fn verify_passkey(
        &self,
        subject: &Subject,
        kind: CeremonyKind,
        key: &TokenHash,
        assertion: &serde_json::Value,
        client: Option<IpAddr>,
    ) -> Result<Answered> {
        let now = self.ctx.now();
        if let Some(until) = self.ctx.store.second_factor_locked(subject.id, now).await? {
            return Err(ServiceError::RateLimited { retry_after_secs: (until - now).whole_seconds().max(1) });
        }
        let passkeys = Passkeys::new(self.ctx.clone());
        let Err(refused) = passkeys.verify(subject, kind, key, assertion).await? else {
            self.ctx.store.clear_second_factor_failures(subject.id).await?;
            return Ok(Answered::Passkey);
        };
        let locked = self.ctx.store.second_factor_failed(subject.id, now, FAILURE_WINDOW, MAX_FAILURES, LOCK).await?;
        passkeys.audit_refusal(&refused, subject, client, locked.map(warden_core::timestamp::format)).await?;
        match locked {
            Some(until) => Err(ServiceError::RateLimited { retry_after_secs: (until - now).whole_seconds().max(1) }),
            None => Err(ServiceError::AuthFailed),
        }
    }

    /// The caller's own user account, for a change to its factors (an elevated session).
    fn own(actor: &Principal, write: bool) -> Result<&Subject> {
        own_account(actor, write)
    }

    pub async fn status(&self, actor: &Principal) -> Result<SecondFactorStatus> {
        let me = Self::own(actor, false)?;
        let totp = self.ctx.store.totp(me.id).await?;
        Ok(SecondFactorStatus {
            totp: totp.as_ref().is_some_and(|t| t.confirmed_at.is_some()),
            totp_pending: totp.as_ref().is_some_and(|t| t.confirmed_at.is_none()),
            backup_codes_left: self.ctx.store.backup_codes_left(me.id).await?,
            passkeys: Passkeys::new(self.ctx.clone()).count(me.id).await?,
        })
    }

    /// Starts a TOTP enrolment: a new secret, shown this once. Refused while a confirmed
    /// credential exists (remove it first).
    pub async fn begin_totp(&self, actor: &Principal, req: &BeginTotp) -> Result<TotpEnrolment> {
        let me = Self::own(actor, true)?;
        let algorithm = match req.algorithm.as_deref().map(str::to_ascii_uppercase).as_deref() {
            None | Some("SHA1" | "SHA-1") => "SHA1",
            Some("SHA256" | "SHA-256") => "SHA256",
            Some(other) => return Err(CoreError::validation("algorithm", format!("{other:?} is not SHA1 or SHA256")).into()),
        };
        let digits = req.digits.unwrap_or(6);
        if digits != 6 && digits != 8 {
            return Err(CoreError::validation("digits", "must be 6 or 8").into());
        }
        let mut bytes = [0u8; 20];
        getrandom::fill(&mut bytes).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let secret = totp_rs::Secret::from(bytes.to_vec()).to_base32();
        let now = self.ctx.now();
        let credential = TotpCredential {
            account_id: me.id,
            secret: secret.clone(),
            algorithm: algorithm.to_owned(),
            digits,
            created_at: now,
            confirmed_at: None,
            last_used_step: None,
        };
        let uri = totp_of(&credential, me.name.as_str())?.to_url().map_err(|e| ServiceError::Internal(format!("{e:?}")))?;
        let change = Change::new(now, Some(me), Action::TotpEnrol { algorithm: algorithm.to_owned(), digits }, Some(me));
        if !self.ctx.store.begin_totp(&change, &credential).await? {
            return Err(ServiceError::TotpExists);
        }
        let qr_svg = qr_svg(&uri)?;
        Ok(TotpEnrolment {
            secret: Secret::new(secret),
            otpauth_uri: Secret::new(uri),
            qr_svg: Secret::new(qr_svg),
            algorithm: algorithm.to_owned(),
            digits,
            period_secs: 30,
        })
    }

    /// Confirms the pending enrolment with a code from the authenticator.
    pub async fn confirm_totp(&self, actor: &Principal, code: &str) -> Result<SecondFactorStatus> {
        let me = Self::own(actor, true)?;
        let now = self.ctx.now();
        let pending = self.ctx.store.totp(me.id).await?.filter(|t| t.confirmed_at.is_none());
        let Some(pending) = pending else {
            return Err(ServiceError::NotFound("a TOTP enrolment waiting for its first code".into()));
        };
        let Some(step) = matching_step(&totp_of(&pending, me.name.as_str())?, code, now) else {
            return Err(CoreError::validation("code", "does not match: check the authenticator's clock and try the next code").into());
        };
        let change = Change::new(now, Some(me), Action::TotpConfirm {}, Some(me));
        if !self.ctx.store.confirm_totp(&change, me.id, step).await? {
            return Err(ServiceError::NotFound("a TOTP enrolment waiting for its first code".into()));
        }
        self.status(actor).await
    }

    pub async fn remove_totp(&self, actor: &Principal) -> Result<()> {
        let me = Self::own(actor, true)?;
        let change = Change::new(self.ctx.now(), Some(me), Action::TotpRemove {}, Some(me));
        if !self.ctx.store.remove_totp(&change, me.id).await? {
            return Err(ServiceError::NotFound("a TOTP authenticator".into()));
        }
        Ok(())
    }

    /// Removes every second factor of `user` (a lost device and lost backup codes): needs
    /// `warden:credentials:write` in a write window, and idm_superuser for an account that holds
    /// an administrative role. The user then signs in with the password alone (a recovery link
    /// sets a new one) and enrols again.
    pub async fn reset(&self, actor: &Principal, user: &NameOrId) -> Result<()> {
        actor.require(warden_core::access::Permission::CredentialsWrite)?;
        let owner = self.ctx.store.account(user, self.ctx.now()).await?.filter(|o| o.subject.kind == SubjectKind::User);
        let owner = owner.ok_or_else(|| ServiceError::NotFound(format!("user {user}")))?;
        crate::services::directory::Directory::guard_privileged(actor, &owner.subject)?;
        let change = Change::new(self.ctx.now(), Some(&actor.account), Action::SecondFactorsReset {}, Some(&owner.subject));
        if !self.ctx.store.reset_second_factors(&change, owner.subject.id).await? {
            return Err(ServiceError::NotFound(format!("a second factor of {}", owner.subject.name)));
        }
        Ok(())
    }

    /// What `user` can sign in with (`warden:users:read`): which kinds of credential exist,
    /// passkeys by name, and the second factor's lock. No secret, hash or key.
    pub async fn overview(&self, actor: &Principal, user: &NameOrId) -> Result<UserCredentials> {
        actor.require(warden_core::access::Permission::UsersRead)?;
        let now = self.ctx.now();
        let owner = self.ctx.store.account(user, now).await?.filter(|o| o.subject.kind == SubjectKind::User);
        let owner = owner.ok_or_else(|| ServiceError::NotFound(format!("user {user}")))?;
        let id = owner.subject.id;
        let totp = self.ctx.store.totp(id).await?;
        let passkeys = self.ctx.store.passkeys(id).await?;
        Ok(UserCredentials {
            password: self.ctx.store.password_hash(id).await?.is_some(),
            password_change_required: owner.password_change_required,
            totp: totp.as_ref().is_some_and(|t| t.confirmed_at.is_some()),
            totp_pending: totp.as_ref().is_some_and(|t| t.confirmed_at.is_none()),
            backup_codes_left: self.ctx.store.backup_codes_left(id).await?,
            passkeys: passkeys
                .iter()
                .map(|p| warden_core::api::PasskeyInfo {
                    id: p.id,
                    name: p.name.clone(),
                    created_at: p.created_at,
                    last_used_at: p.last_used_at,
                })
                .collect(),
            second_factor_locked_until: self.ctx.store.second_factor_locked(id, now).await?,
        })
    }

    /// Ten new backup codes, replacing the old ones; shown this once, stored as SHA-256.
    pub async fn generate_backup_codes(&self, actor: &Principal) -> Result<BackupCodes> {
        let me = Self::own(actor, true)?;
        let mut codes = Vec::with_capacity(BACKUP_CODES);
        for _ in 0..BACKUP_CODES {
            let mut random = [0u8; 16];
            getrandom::fill(&mut random).map_err(|e| ServiceError::Internal(e.to_string()))?;
            let chars: String = random.iter().map(|b| char::from(BACKUP_ALPHABET[usize::from(b & 31)])).collect();
            codes.push(format!("{}-{}-{}-{}", &chars[0..4], &chars[4..8], &chars[8..12], &chars[12..16]));
        }
        let hashes: Vec<TokenHash> = codes.iter().map(|c| TokenHash::of(&normalised_backup_code(c))).collect();
        let change = Change::new(self.ctx.now(), Some(me), Action::BackupCodesGenerate { count: 10 }, Some(me));
        self.ctx.store.replace_backup_codes(&change, me.id, &hashes).await?;
        Ok(BackupCodes { codes: codes.into_iter().map(Secret::new).collect() })
    }
}
