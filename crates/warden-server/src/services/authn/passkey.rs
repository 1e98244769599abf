//! Passkeys (WebAuthn): registering several per person, naming, renaming and removing them,
//! signing in with one alone (a discoverable credential), and using one as the second step of
//! a password sign-in or of a re-authentication.
//!
//! The verifier is webauthn-rs, built once from the relying party in the configuration
//! (`[webauthn]`, or `server.public_url`). Every ceremony's state (its challenge among it) is
//! kept in the store under the hash of a one-time key the client holds, and taken by the
//! statement that reads it: a challenge is answered once, on any node, and no client-held blob
//! is ever trusted. A use is taken only if the authenticator's signature counter moves forward
//! (or the authenticator keeps none), in one conditional update: a replayed assertion or a
//! cloned authenticator is refused and audited (`auth.passkey.refused`, `counter_behind`).
//! User verification (the authenticator's PIN or biometric) is required, which is why a
//! passkey alone counts as two factors.

use std::net::IpAddr;
use std::sync::Arc;

use time::Duration;
use uuid::Uuid;
use warden_core::CoreError;
use warden_core::access::{AuthStrength, Principal};
use warden_core::api::{FinishPasskeyRegistration, LoginResponse, PasskeyChallenge, PasskeyInfo, PasskeySignIn};
use warden_core::credential::{Secret, TokenHash, TokenKind};
use warden_core::model::{NameOrId, Subject, SubjectKind};
use warden_store::{Action, CeremonyKind, Change, PasskeyRecord, PasskeyUse};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, Url,
    Webauthn, WebauthnBuilder, WebauthnError,
};

use crate::config::RelyingParty;
use crate::services::auth::random_token;
use crate::services::{Context, Result, ServiceError, SessionOrigin};

/// How long a ceremony may take (the browser's prompt included).
const CEREMONY_SECS: i64 = 300;
/// The longest name a passkey may have.
const NAME_MAX: usize = 64;

/// Builds the verifier for `rp`. Fails on origins webauthn-rs will not take.
pub fn verifier(rp: &RelyingParty) -> anyhow::Result<Arc<Webauthn>> {
    let mut origins = rp.origins.iter().map(|o| Url::parse(o).map_err(|e| anyhow::anyhow!("webauthn.origins: {o:?}: {e}")));
    let first = origins.next().ok_or_else(|| anyhow::anyhow!("webauthn: no origin"))??;
    let mut builder = WebauthnBuilder::new(&rp.id, &first).map_err(|e| anyhow::anyhow!("webauthn.rp_id {:?}: {e}", rp.id))?;
    builder = builder.rp_name(&rp.name);
    for origin in origins {
        builder = builder.append_allowed_origin(&origin?);
    }
    Ok(Arc::new(builder.build().map_err(|e| anyhow::anyhow!("[webauthn]: {e}"))?))
}

/// Why an assertion was refused, as audited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No passkey has the credential id (or not for the account it names).
    UnknownCredential,
    /// The verifier refused it: wrong origin or relying party, bad signature, no user
    /// verification, another ceremony's challenge.
    Invalid,
    /// The counter did not move forward: a replay, or a cloned authenticator.
    CounterBehind,
    /// A valid passkey of another account than the one being proved.
    WrongAccount,
}

impl Refusal {
    fn as_str(self) -> &'static str {
        match self {
            Self::UnknownCredential => "unknown_credential",
            Self::Invalid => "invalid",
            Self::CounterBehind => "counter_behind",
            Self::WrongAccount => "wrong_account",
        }
    }
}

/// A refused assertion: what to audit, and about whom.
#[derive(Debug)]
pub struct Refused {
    pub reason: Refusal,
    passkey: Option<Uuid>,
    account: Option<Uuid>,
}

#[derive(Clone)]
pub struct Passkeys {
    ctx: Context,
}

impl Passkeys {
    pub fn new(ctx: Context) -> Self {
        Self { ctx }
    }

    fn webauthn(&self) -> Result<&Webauthn> {
        self.ctx.webauthn.as_deref().ok_or(ServiceError::PasskeysOff)
    }

    /// Whether passkeys are on (the relying party is known).
    pub fn enabled(&self) -> bool {
        self.ctx.webauthn.is_some()
    }

    /// The caller's own user account, for a change to its passkeys (an elevated session).
    fn own(actor: &Principal, write: bool) -> Result<&Subject> {
        super::second_factor::own_account(actor, write)
    }

    fn info(record: &PasskeyRecord) -> PasskeyInfo {
        PasskeyInfo { id: record.id, name: record.name.clone(), created_at: record.created_at, last_used_at: record.last_used_at }
    }

    fn clean_name(raw: &str) -> Result<String> {
        let name = raw.trim();
        if name.is_empty() || name.chars().count() > NAME_MAX || name.chars().any(char::is_control) {
            return Err(CoreError::validation("name", format!("1 to {NAME_MAX} characters, no control characters")).into());
        }
        Ok(name.to_owned())
    }

    fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
        serde_json::to_string(value).map_err(|e| ServiceError::Internal(format!("webauthn state: {e}")))
    }

    fn from_json<T: serde::de::DeserializeOwned>(raw: &str) -> Result<T> {
        serde_json::from_str(raw).map_err(|e| ServiceError::Internal(format!("stored webauthn state: {e}")))
    }

    /// The client's answer, as WebAuthn's JSON. A shape the verifier cannot read is the
    /// request's fault.
    fn credential_of<T: serde::de::DeserializeOwned>(field: &'static str, value: &serde_json::Value) -> Result<T> {
        serde_json::from_value(value.clone())
            .map_err(|e| CoreError::validation(field, format!("not a WebAuthn PublicKeyCredential: {e}")).into())
    }

    /// Starts a ceremony of `kind`: its state kept under a new one-time key, handed back.
    async fn start(
        &self,
        kind: CeremonyKind,
        account: Option<Uuid>,
        state: String,
        options: serde_json::Value,
    ) -> Result<PasskeyChallenge> {
        let now = self.ctx.now();
        let key = random_token(TokenKind::OneTime)?;
        let expires_at = now + Duration::seconds(CEREMONY_SECS);
        self.ctx.store.start_ceremony(&TokenHash::of(key.expose()), kind, account, &state, expires_at, now).await?;
        Ok(PasskeyChallenge { ceremony: key, options, expires_at })
    }

    /// Takes the ceremony under `key` (a one-time key; unknown, expired, spent and other
    /// kinds are one answer: `token.invalid`).
    async fn take(&self, key: &Secret, kind: CeremonyKind) -> Result<warden_store::Ceremony> {
        let key = key.expose().trim();
        if TokenKind::of(key) != Some(TokenKind::OneTime) {
            return Err(ServiceError::TokenInvalid);
        }
        self.ctx.store.take_ceremony(&TokenHash::of(key), kind, self.ctx.now()).await?.ok_or(ServiceError::TokenInvalid)
    }

    // --- registration -------------------------------------------------------------------------

    /// Starts registering a passkey for the caller (an elevated session): the options for
    /// `navigator.credentials.create()`. The caller's passkeys are excluded, so one
    /// authenticator is not registered twice.
    pub async fn begin_registration(&self, actor: &Principal) -> Result<PasskeyChallenge> {
        let me = Self::own(actor, true)?;
        let webauthn = self.webauthn()?;
        let existing = self.ctx.store.passkeys(me.id).await?;
        let exclude = existing.iter().map(|p| p.credential_id.clone()).collect::<Vec<_>>();
        let display = self
            .ctx
            .store
            .account(&NameOrId::Id(me.id), self.ctx.now())
            .await?
            .and_then(|o| o.display_name)
            .unwrap_or_else(|| me.name.to_string());
        let (options, state) = webauthn
            .start_passkey_registration(me.id, me.name.as_str(), &display, Some(exclude))
            .map_err(|e| ServiceError::Internal(format!("webauthn: {e}")))?;
        let mut options = serde_json::to_value(&options).map_err(|e| ServiceError::Internal(e.to_string()))?;
        prefer_discoverable(&mut options);
        self.start(CeremonyKind::Register, Some(me.id), Self::to_json(&state)?, options).await
    }

    /// Finishes a registration with the authenticator's new credential.
    pub async fn finish_registration(&self, actor: &Principal, req: &FinishPasskeyRegistration) -> Result<PasskeyInfo> {
        let me = Self::own(actor, true)?;
        let webauthn = self.webauthn()?;
        let name = req.name.as_deref().map(Self::clean_name).transpose()?;
        let credential: RegisterPublicKeyCredential = Self::credential_of("credential", &req.credential)?;
        let ceremony = self.take(&req.ceremony, CeremonyKind::Register).await?;
        if ceremony.account_id != Some(me.id) {
            return Err(ServiceError::TokenInvalid);
        }
        let state: PasskeyRegistration = Self::from_json(&ceremony.state)?;
        let passkey = webauthn.finish_passkey_registration(&credential, &state).map_err(|e| ServiceError::PasskeyInvalid(e.to_string()))?;
        let existing = self.ctx.store.passkeys(me.id).await?;
        let name = name.unwrap_or_else(|| format!("passkey {}", existing.len() + 1));
        let now = self.ctx.now();
        let record = PasskeyRecord {
            id: Uuid::now_v7(),
            account_id: me.id,
            credential_id: passkey.cred_id().clone(),
            name: name.clone(),
            credential: Self::to_json(&passkey)?,
            sign_count: 0,
            created_at: now,
            last_used_at: None,
        };
        let change = Change::new(now, Some(me), Action::PasskeyRegister { passkey_id: record.id, name }, Some(me));
        if !self.ctx.store.add_passkey(&change, &record).await? {
            return Err(ServiceError::PasskeyExists);
        }
        Ok(Self::info(&record))
    }

    pub async fn list(&self, actor: &Principal) -> Result<Vec<PasskeyInfo>> {
        let me = Self::own(actor, false)?;
        Ok(self.ctx.store.passkeys(me.id).await?.iter().map(Self::info).collect())
    }

    pub async fn rename(&self, actor: &Principal, id: Uuid, name: &str) -> Result<PasskeyInfo> {
        let me = Self::own(actor, true)?;
        let name = Self::clean_name(name)?;
        let change = Change::new(self.ctx.now(), Some(me), Action::PasskeyRename { passkey_id: id, name: name.clone() }, Some(me));
        if !self.ctx.store.rename_passkey(&change, me.id, id, &name).await? {
            return Err(ServiceError::NotFound(format!("passkey {id}")));
        }
        let record = self.ctx.store.passkeys(me.id).await?.into_iter().find(|p| p.id == id);
        record.map(|r| Self::info(&r)).ok_or_else(|| ServiceError::NotFound(format!("passkey {id}")))
    }

    pub async fn remove(&self, actor: &Principal, id: Uuid) -> Result<()> {
        let me = Self::own(actor, true)?;
        let change = Change::new(self.ctx.now(), Some(me), Action::PasskeyRemove { passkey_id: id }, Some(me));
        if !self.ctx.store.remove_passkey(&change, me.id, id).await? {
            return Err(ServiceError::NotFound(format!("passkey {id}")));
        }
        Ok(())
    }

    /// How many passkeys the account has (0 while passkeys are off: none can be used).
    pub async fn count(&self, account: Uuid) -> Result<u32> {
        if !self.enabled() {
            return Ok(0);
        }
        Ok(u32::try_from(self.ctx.store.passkeys(account).await?.len()).unwrap_or(u32::MAX))
    }

    // --- passwordless sign-in -----------------------------------------------------------------

    /// Starts a passwordless sign-in: options for `navigator.credentials.get()` that name no
    /// account (the authenticator offers its discoverable passkeys for this relying party).
    pub async fn begin_sign_in(&self) -> Result<PasskeyChallenge> {
        let webauthn = self.webauthn()?;
        let (options, state) =
            webauthn.start_discoverable_authentication().map_err(|e| ServiceError::Internal(format!("webauthn: {e}")))?;
        let options = serde_json::to_value(&options).map_err(|e| ServiceError::Internal(e.to_string()))?;
        self.start(CeremonyKind::SignIn, None, Self::to_json(&state)?, options).await
    }

    /// Finishes a passwordless sign-in: a session of strength `passkey`. Every refusal is
    /// `auth.failed` to the client (which passkey, whose, and why goes to the audit log).
    pub async fn finish_sign_in(&self, req: &PasskeySignIn, client: Option<IpAddr>, user_agent: Option<String>) -> Result<LoginResponse> {
        let webauthn = self.webauthn()?;
        let credential: PublicKeyCredential = Self::credential_of("credential", &req.credential)?;
        let ceremony = self.take(&req.ceremony, CeremonyKind::SignIn).await?;
        let state: DiscoverableAuthentication = Self::from_json(&ceremony.state)?;
        let outcome = self.identify(webauthn, &credential, state).await?;
        let record = match outcome {
            Ok(record) => record,
            Err(refused) => {
                let target = match refused.account {
                    Some(id) => self.ctx.store.account(&NameOrId::Id(id), self.ctx.now()).await?.map(|o| o.subject),
                    None => None,
                };
                self.refused(&refused, target.as_ref(), client, None).await?;
                return Err(ServiceError::AuthFailed);
            }
        };
        let owner = self.ctx.store.account(&NameOrId::Id(record.account_id), self.ctx.now()).await?;
        let Some(owner) = owner.filter(|o| o.active && o.subject.kind == SubjectKind::User) else {
            return Err(ServiceError::AuthFailed);
        };
        let subject = owner.subject;
        let now = self.ctx.now();
        let token = random_token(TokenKind::Session)?;
        let session = self.ctx.new_session(subject.id, now, SessionOrigin { client, user_agent, strength: AuthStrength::Passkey });
        let action = Action::PasskeyLogin { session_id: session.id, passkey_id: record.id, client: client.map(|ip| ip.to_string()) };
        let change = Change::new(now, Some(&subject), action, Some(&subject));
        self.ctx.store.create_session(&change, &session, &TokenHash::of(token.expose())).await?;
        Ok(LoginResponse { token, expires_at: session.expires_at, idle_timeout_secs: session.idle_timeout_secs, account: subject })
    }

    /// Finds the passkey a discoverable assertion names (by its user handle and credential
    /// id) and checks the assertion with it.
    async fn identify(
        &self,
        webauthn: &Webauthn,
        credential: &PublicKeyCredential,
        state: DiscoverableAuthentication,
    ) -> Result<std::result::Result<PasskeyRecord, Refused>> {
        let unknown = Refused { reason: Refusal::UnknownCredential, passkey: None, account: None };
        let Ok((user, credential_id)) = webauthn.identify_discoverable_authentication(credential) else {
            return Ok(Err(unknown));
        };
        let record = self.ctx.store.passkey_by_credential_id(credential_id).await?;
        // The user handle must be the holder's: a credential id alone names no one.
        let Some(record) = record.filter(|r| r.account_id == user) else { return Ok(Err(unknown)) };
        let passkey: Passkey = Self::from_json(&record.credential)?;
        let result = webauthn.finish_discoverable_authentication_v2(credential, state, &passkey);
        Ok(self.take_use(&record, passkey, result).await?.map(|()| record))
    }

    // --- a passkey proving an account already named ---------------------------------------------

    /// Options for `navigator.credentials.get()` limited to `account`'s passkeys, kept under
    /// `key` as a ceremony of `kind`; `None` when the account has no passkey (or passkeys are
    /// off). The second step of a password sign-in keys it by the pending sign-in's token.
    pub async fn options_for(&self, account: Uuid, kind: CeremonyKind, key: &TokenHash) -> Result<Option<serde_json::Value>> {
        let Some(webauthn) = self.ctx.webauthn.as_deref() else { return Ok(None) };
        let records = self.ctx.store.passkeys(account).await?;
        if records.is_empty() {
            return Ok(None);
        }
        let passkeys = records.iter().map(|r| Self::from_json::<Passkey>(&r.credential)).collect::<Result<Vec<_>>>()?;
        let (options, state) =
            webauthn.start_passkey_authentication(&passkeys).map_err(|e| ServiceError::Internal(format!("webauthn: {e}")))?;
        let now = self.ctx.now();
        let expires_at = now + Duration::seconds(CEREMONY_SECS);
        self.ctx.store.start_ceremony(key, kind, Some(account), &Self::to_json(&state)?, expires_at, now).await?;
        Ok(Some(serde_json::to_value(&options).map_err(|e| ServiceError::Internal(e.to_string()))?))
    }

    /// Starts a re-authentication with a passkey for the caller's session: the options, and
    /// the ceremony key that `POST /auth/reauth` takes back with the answer.
    pub async fn begin_reauth(&self, actor: &Principal) -> Result<PasskeyChallenge> {
        let me = Self::own(actor, false)?;
        self.webauthn()?;
        let key = random_token(TokenKind::OneTime)?;
        let Some(options) = self.options_for(me.id, CeremonyKind::Reauth, &TokenHash::of(key.expose())).await? else {
            return Err(ServiceError::NotFound("a passkey of this account".into()));
        };
        let expires_at = self.ctx.now() + Duration::seconds(CEREMONY_SECS);
        Ok(PasskeyChallenge { ceremony: key, options, expires_at })
    }

    /// Checks an assertion for `subject` against the ceremony under `key`: the passkey used.
    /// A refusal is audited (the caller counts it towards the second-factor lock where one
    /// applies) and answered `auth.failed`; an unknown or spent ceremony `token.invalid`.
    pub async fn verify(
        &self,
        subject: &Subject,
        kind: CeremonyKind,
        key: &TokenHash,
        answer: &serde_json::Value,
    ) -> Result<std::result::Result<Uuid, Refused>> {
        let webauthn = self.webauthn()?;
        let credential: PublicKeyCredential = Self::credential_of("passkey", answer)?;
        let ceremony = self.ctx.store.take_ceremony(key, kind, self.ctx.now()).await?.ok_or(ServiceError::TokenInvalid)?;
        if ceremony.account_id != Some(subject.id) {
            return Err(ServiceError::TokenInvalid);
        }
        let state: PasskeyAuthentication = Self::from_json(&ceremony.state)?;
        let record = self.ctx.store.passkey_by_credential_id(credential.get_credential_id()).await?;
        let Some(record) = record else {
            return Ok(Err(Refused { reason: Refusal::UnknownCredential, passkey: None, account: Some(subject.id) }));
        };
        if record.account_id != subject.id {
            // Another account's passkey: named in the audit event of the account being proved.
            return Ok(Err(Refused { reason: Refusal::WrongAccount, passkey: Some(record.id), account: Some(subject.id) }));
        }
        let passkey: Passkey = Self::from_json(&record.credential)?;
        let result = webauthn.finish_passkey_authentication(&credential, &state);
        Ok(self.take_use(&record, passkey, result).await?.map(|()| record.id))
    }

    /// Takes a verified use (moving the counter) or says why not.
    async fn take_use(
        &self,
        record: &PasskeyRecord,
        mut passkey: Passkey,
        result: std::result::Result<webauthn_rs::prelude::AuthenticationResult, WebauthnError>,
    ) -> Result<std::result::Result<(), Refused>> {
        let refused = |reason| Refused { reason, passkey: Some(record.id), account: Some(record.account_id) };
        let result = match result {
            Ok(result) => result,
            Err(WebauthnError::CredentialPossibleCompromise) => return Ok(Err(refused(Refusal::CounterBehind))),
            Err(e) => {
                tracing::debug!(error = %e, passkey = %record.id, "passkey assertion refused");
                return Ok(Err(refused(Refusal::Invalid)));
            }
        };
        passkey.update_credential(&result);
        match self.ctx.store.use_passkey(record.id, &Self::to_json(&passkey)?, result.counter(), self.ctx.now()).await? {
            PasskeyUse::Taken => Ok(Ok(())),
            PasskeyUse::CounterBehind => Ok(Err(refused(Refusal::CounterBehind))),
            PasskeyUse::Gone => Ok(Err(Refused { reason: Refusal::UnknownCredential, passkey: None, account: Some(record.account_id) })),
        }
    }

    /// Audits a refused assertion.
    async fn refused(
        &self,
        refused: &Refused,
        target: Option<&Subject>,
        client: Option<IpAddr>,
        locked_until: Option<String>,
    ) -> Result<()> {
        let action = Action::PasskeyRefused {
            passkey_id: refused.passkey,
            reason: refused.reason.as_str().to_owned(),
            client: client.map(|ip| ip.to_string()),
            locked_until,
        };
        self.ctx.store.record(&Change::new(self.ctx.now(), None, action, target)).await?;
        Ok(())
    }

    /// Audits a refusal reported by [`Passkeys::verify`] for `subject`.
    pub async fn audit_refusal(
        &self,
        refused: &Refused,
        subject: &Subject,
        client: Option<IpAddr>,
        locked_until: Option<String>,
    ) -> Result<()> {
        self.refused(refused, Some(subject), client, locked_until).await
    }
}

/// Asks the authenticator to keep the new credential discoverable where it can
/// (`residentKey: "preferred"`), so that the passkey also signs in without a name (the
/// verifier's default, `"discouraged"`, makes many authenticators keep it server-side only).
/// The verifier does not check residency, so the answer verifies either way.
fn prefer_discoverable(options: &mut serde_json::Value) {
    if let Some(selection) = options.pointer_mut("/publicKey/authenticatorSelection").and_then(serde_json::Value::as_object_mut) {
        selection.insert("residentKey".to_owned(), serde_json::Value::from("preferred"));
    }
}
