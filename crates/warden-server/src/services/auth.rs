//! Authentication: password login into sessions, bearer and Basic credentials into a
//! [`Principal`], API tokens for service accounts, and the audit log's read side.
//!
//! Unknown names and wrong passwords fail alike, in response and in time (a dummy hash is
//! verified when there is no real one). Guessing is slowed by a soft lock per name and client
//! address, per name and per client address (`warden_core::throttle`); each attempt is
//! reserved in the store before its password is checked, and the checks in flight are capped
//! per node ([`InFlight`]). A lock answers the same for real and made-up names.

use std::net::IpAddr;
use std::sync::Arc;

use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use warden_core::access::{AuthMethod, AuthStrength, Permission, Principal};
use warden_core::api::{CreateApiToken, CreatedApiToken, LoginOutcome, LoginResponse, Page, ReauthRequest, ReauthResponse, WhoAmI};
use warden_core::credential::{self, Secret, TOKEN_BYTES, TokenHash, TokenKind};
use warden_core::model::{ApiToken, AuditEvent, NameOrId, Subject, SubjectKind};
use warden_core::throttle::{Throttle, ThrottleKey};
use warden_core::{CoreError, Name};
use warden_store::{Action, AuditQuery, CeremonyKind, Change, CredentialOwner, SessionRecord};

use super::authn::second_factor::SecondFactors;
use super::credentials::{Cached, Contact, Credential};
use super::directory::Directory;
use super::in_flight::InFlight;
use super::{Context, Result, ServiceError, SessionOrigin};
use crate::password::Verdict;

/// A bearer credential found live: its credential cache entry and what it allows now.
pub struct Bearer {
    pub cached: Arc<Cached>,
    /// [`AuthMethod::Session`] or [`AuthMethod::ApiToken`].
    pub method: AuthMethod,
    /// Whether it may write now (an elevated session, a read-write token).
    pub elevated: bool,
}

impl Bearer {
    pub fn credential_id(&self) -> Uuid {
        self.cached.credential.id()
    }

    /// The roles an API token is limited to; `None`: all of the account's.
    pub fn token_roles(&self) -> Option<&[String]> {
        match &self.cached.credential {
            Credential::Session(_) => None,
            Credential::Api(t) => t.roles.as_deref(),
        }
    }
}

/// A right password: its account, the login attempt still reserved for it, the failures its
/// success clears, and this node's turns at the name and client, held until it is released.
struct RightPassword {
    subject: Subject,
    attempt: Uuid,
    clear: Vec<ThrottleKey>,
    _turns: (super::in_flight::Turn, Option<super::in_flight::Turn>),
}

/// Bookkeeping writes (last seen / last used) happen at most this often per credential.
const TOUCH_EVERY: Duration = Duration::seconds(60);

#[derive(Clone)]
pub struct Auth {
    ctx: Context,
    directory: Directory,
    /// Failures per account name from one client address.
    by_name_from_client: Throttle,
    /// Failures per account name, from every address (a distributed attack on one account).
    by_name: Throttle,
    /// Failures per client address, over all names (a spray across many names).
    by_client: Throttle,
    /// Checks running or waiting on this node, per account name.
    names_in_flight: Arc<InFlight>,
    /// Checks running or waiting on this node, per client address.
    clients_in_flight: Arc<InFlight>,
    second_factors: SecondFactors,
}

/// Password checks of one name that run at once on a node, and that may wait behind them.
const NAME_CHECKS: (usize, usize) = (1, 32);
/// Password checks from one client address that run at once on a node, and that may wait.
const CLIENT_CHECKS: (usize, usize) = (4, 256);

/// Filters of an audit listing, as the API receives them.
#[derive(Debug, Clone, Default)]
pub struct AuditRequest {
    pub actor: Option<String>,
    pub target: Option<String>,
    pub action: Option<String>,
    pub since: Option<OffsetDateTime>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

pub(crate) fn random_token(kind: TokenKind) -> Result<Secret> {
    let mut random = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut random).map_err(|e| ServiceError::Internal(e.to_string()))?;
    Ok(credential::format_token(kind, &random))
}

impl Auth {
    pub fn new(ctx: Context, directory: Directory) -> Self {
        let window = Duration::seconds(ctx.times.failed_login_window_secs);
        let max_delay = Duration::seconds(ctx.times.failed_login_max_delay_secs);
        let auth = &ctx.config.auth;
        Self {
            by_name_from_client: Throttle::new(auth.max_failed_logins, window, max_delay),
            by_name: Throttle::new(auth.max_failed_logins_per_name, window, max_delay),
            by_client: Throttle::new(auth.max_failed_logins_per_client, window, max_delay),
            names_in_flight: Arc::new(InFlight::new(NAME_CHECKS.0, NAME_CHECKS.1)),
            clients_in_flight: Arc::new(InFlight::new(CLIENT_CHECKS.0, CLIENT_CHECKS.1)),
            second_factors: SecondFactors::new(ctx.clone()),
            ctx,
            directory,
        }
    }

    /// The keys an attempt for `name` from `client` counts under, each with its rule.
    fn throttles(&self, name: &str, client: Option<IpAddr>) -> Vec<(ThrottleKey, Throttle)> {
        let mut keys = vec![(ThrottleKey::name_from(name, client), self.by_name_from_client), (ThrottleKey::name(name), self.by_name)];
        keys.extend(client.map(|ip| (ThrottleKey::client(ip), self.by_client)));
        keys
    }

    /// Checks a name and password. Every failure is [`ServiceError::AuthFailed`] (or
    /// `RateLimited` while slowed down) whatever its cause.
    pub async fn verify_password(&self, identifier: &str, password: &Secret, client: Option<IpAddr>) -> Result<Subject> {
        let verified = self.check_password(identifier, password, client).await?;
        self.ctx.store.login_succeeded(verified.attempt, &verified.clear).await?;
        Ok(verified.subject)
    }

    /// [`Auth::verify_password`] without releasing the login attempt: the caller releases it,
    /// while this node's turn at the name and client is still held, either with
    /// `login_succeeded` or in the write that makes the session.
    async fn check_password(&self, identifier: &str, password: &Secret, client: Option<IpAddr>) -> Result<RightPassword> {
        let name = self.sign_in_name(identifier).await?;
        let name = name.as_str();
        // Wait for this node's turn at the name, then at the client (always in this order,
        // so two checks never hold each other's turn).
        let busy = |_| ServiceError::RateLimited { retry_after_secs: 1 };
        let name_turn = self.names_in_flight.enter(ThrottleKey::name(name)).await.map_err(busy)?;
        let client_turn = match client {
            Some(ip) => Some(self.clients_in_flight.enter(ThrottleKey::client(ip)).await.map_err(busy)?),
            None => None,
        };
        let now = self.ctx.now();
        let attempt = match self.ctx.store.reserve_login_attempt(&self.throttles(name, client), now).await? {
            Ok(attempt) => attempt,
            Err(retry) => return Err(ServiceError::RateLimited { retry_after_secs: retry.whole_seconds().max(1) }),
        };
        let owner = match Name::parse(name) {
            Ok(name) => self.ctx.store.account(&NameOrId::Name(name), now).await?,
            Err(_) => None,
        };
        let stored = match &owner {
            Some(o) => self.ctx.store.password_hash(o.subject.id).await?,
            None => None,
        };
        let verdict = if password.expose().len() > credential::MAX_PASSWORD_LEN {
            Verdict::Mismatch
        } else {
            self.ctx.hasher.verify(password, stored).await?
        };
        match (owner, verdict) {
            (Some(CredentialOwner { subject, active: true, .. }), Verdict::Match | Verdict::MatchNeedsRehash) => {
                if verdict == Verdict::MatchNeedsRehash {
                    let hash = self.ctx.hasher.hash(password).await?;
                    let change = Change::new(now, Some(&subject), Action::PasswordRehash {}, Some(&subject));
                    self.ctx.store.set_password_hash(&change, subject.id, &hash, false).await?;
                }
                // The attempt was no failure; the name's failures from this client go too.
                // Never the name's over all clients, nor the client's: a known password buys
                // neither a distributed attack nor this client more guesses at other names.
                let clear = vec![ThrottleKey::name_from(name, client)];
                Ok(RightPassword { subject, attempt, clear, _turns: (name_turn, client_turn) })
            }
            (owner, _) => {
                // The reservation stays as the failure's record.
                let target = owner.map(|o| o.subject);
                let change = Change::new(now, None, Action::LoginFailed { client: client.map(|ip| ip.to_string()) }, target.as_ref());
                self.ctx.store.record(&change).await?;
                Err(ServiceError::AuthFailed)
            }
        }
    }

    /// Who a sign-in names: the account name as typed or, for an identifier with an `@` (which
    /// no name has), the user whose primary e-mail address it is. An address that is no one's,
    /// or more than one user's, stays as typed, so that it is throttled and refused exactly as
    /// an unknown name is; the lookup is one index search either way. Resolving before the soft
    /// lock counts an account's guesses together, whichever way they spell it. Only a verified
    /// primary address is looked up (the store's lookup column holds no other): an address a
    /// person merely claimed, at registration say, signs no one in.
    async fn sign_in_name(&self, identifier: &str) -> Result<String> {
        let identifier = identifier.trim();
        if !identifier.contains('@') {
            return Ok(identifier.to_owned());
        }
        let mut holders = self.ctx.store.users_with_primary_email(identifier).await?;
        Ok(match (holders.pop(), holders.is_empty()) {
            (Some(only), true) => only.to_string(),
            _ => identifier.to_ascii_lowercase(),
        })
    }

    /// Password login: a new session whose token is returned once and stored only hashed, or,
    /// for an account with a second factor, the pending sign-in that asks for it.
    pub async fn login(&self, name: &str, password: &Secret, client: Option<IpAddr>, user_agent: Option<String>) -> Result<LoginOutcome> {
        let verified = self.check_password(name, password, client).await?;
        let subject = verified.subject.clone();
        // Persons sign in; of service accounts only the break-glass ones, whose password comes
        // from the host.
        if subject.kind != SubjectKind::User && !warden_core::model::is_break_glass(subject.id) {
            self.ctx.store.login_succeeded(verified.attempt, &verified.clear).await?;
            return Err(ServiceError::AuthFailed);
        }
        let methods = self.second_factors.methods(subject.id).await?;
        if !methods.is_empty() {
            self.ctx.store.login_succeeded(verified.attempt, &verified.clear).await?;
            return Ok(LoginOutcome::SecondFactor(self.second_factors.challenge(&subject, methods).await?));
        }
        let now = self.ctx.now();
        let token = random_token(TokenKind::Session)?;
        let session = self.ctx.new_session(subject.id, now, SessionOrigin::password(client, user_agent));
        let action = Action::Login { session_id: session.id, client: client.map(|ip| ip.to_string()), second_factor: None };
        let change = Change::new(now, Some(&subject), action, Some(&subject));
        // The attempt's release and the session: one write.
        self.ctx
            .store
            .create_session_after_login(&change, &session, &TokenHash::of(token.expose()), verified.attempt, &verified.clear)
            .await?;
        Ok(LoginOutcome::Session(LoginResponse {
            token,
            expires_at: session.expires_at,
            idle_timeout_secs: session.idle_timeout_secs,
            account: subject,
        }))
    }

    /// Ends the session the principal authenticated with.
    pub async fn logout(&self, principal: &Principal) -> Result<()> {
        let (AuthMethod::Session, Some(id)) = (principal.method, principal.credential_id) else {
            return Err(CoreError::validation("authorization", "logout needs a session token").into());
        };
        let change = Change::new(self.ctx.now(), Some(&principal.account), Action::Logout { session_id: id }, Some(&principal.account));
        self.ctx.store.delete_session(&change, id).await?;
        // Forget the cached session here and now (other nodes follow with the revision).
        self.ctx.authz.refresh().await
    }

    /// Resolves a bearer token (session or API token) to a principal.
    pub async fn authenticate_bearer(&self, token: &str) -> Result<Principal> {
        let bearer = self.bearer(token).await?;
        Ok(self.principal_of(&bearer))
    }

    /// A browser's session token: its principal and its record (when it signed in, how
    /// strongly), from one credential lookup; `None` for any other bearer token.
    pub async fn authenticate_session(&self, token: &str) -> Result<Option<(Principal, SessionRecord)>> {
        let bearer = self.bearer(token).await?;
        let Credential::Session(session) = &bearer.cached.credential else { return Ok(None) };
        Ok(Some((self.principal_of(&bearer), session.clone())))
    }

    fn principal_of(&self, bearer: &Bearer) -> Principal {
        let roles = bearer.token_roles().map(<[String]>::to_vec);
        let mut principal =
            self.principal(bearer.cached.owner.clone(), bearer.method, Some(bearer.credential_id()), bearer.elevated, roles);
        principal.password_change_required = bearer.cached.password_change_required;
        if let Credential::Session(session) = &bearer.cached.credential {
            principal.auth_strength = Some(session.auth_strength);
        }
        principal.mfa_enrolment_required = self.confined(&principal);
        principal
    }

    /// Checks a bearer token (session or API token) and returns its credential cache entry,
    /// shared: forward-auth reads what it needs from it without making a [`Principal`].
    pub async fn bearer(&self, token: &str) -> Result<Bearer> {
        let Some(kind) = TokenKind::of(token) else { return Err(ServiceError::Unauthenticated) };
        let now = self.ctx.now();
        let hash = TokenHash::of(token);
        let cache = &self.ctx.authz.credentials;
        let cached = if let Some(hit) = cache.get(&hash, now) {
            hit
        } else {
            let (credential, owner) = match kind {
                TokenKind::Session => match self.ctx.store.session(&hash, now).await? {
                    Some((session, owner)) => (Credential::Session(session), owner),
                    None => return Err(ServiceError::Unauthenticated),
                },
                TokenKind::Api => match self.ctx.store.api_token(&hash, now).await? {
                    Some((token, owner)) => (Credential::Api(token), owner),
                    None => return Err(ServiceError::Unauthenticated),
                },
                // A one-time token is redeemed through its flow, never presented as a bearer; a
                // client secret authenticates a client at the token endpoint, not an account.
                TokenKind::OneTime | TokenKind::ClientSecret | TokenKind::RefreshToken => return Err(ServiceError::Unauthenticated),
            };
            if !owner.active {
                return Err(ServiceError::Unauthenticated);
            }
            let contact = Contact { email: owner.email, display_name: owner.display_name };
            let entry =
                Arc::new(Cached::new(credential, owner.subject, contact, now).requiring_password_change(owner.password_change_required));
            cache.put(&hash, entry.clone());
            entry
        };
        let (method, elevated) = match &cached.credential {
            Credential::Session(session) => {
                if !session.is_live(now) {
                    return Err(ServiceError::Unauthenticated);
                }
                if now - session.last_seen_at >= TOUCH_EVERY {
                    self.ctx.store.touch_session(session.id, now).await?;
                    cache.touched(&hash, now);
                }
                (AuthMethod::Session, session.is_elevated(now))
            }
            Credential::Api(token) => {
                if !token.is_usable(now) {
                    return Err(ServiceError::Unauthenticated);
                }
                if token.last_used_at.is_none_or(|t| now - t >= TOUCH_EVERY) {
                    self.ctx.store.touch_api_token(token.id, now).await?;
                    cache.touched(&hash, now);
                }
                (AuthMethod::ApiToken, token.read_write)
            }
        };
        Ok(Bearer { cached, method, elevated })
    }

    /// Deletes the sessions that can no longer authenticate: housekeeping, audited as
    /// `session.purge` (no actor, the count in the details) when there were any.
    pub async fn purge_expired_sessions(&self) -> Result<u64> {
        let now = self.ctx.now();
        let sessions = self.ctx.store.purge_sessions(&Change::new(now, None, Action::SessionPurge { count: 0 }, None), now).await?;
        // OpenID Connect grants end with their session; their rows go with it.
        self.ctx.store.purge_oidc_grants(now).await?;
        Ok(sessions)
    }

    /// Deletes expired sessions every `every`, for as long as the server runs. Every node does
    /// it; two at once delete each row once.
    pub async fn purge_sessions_every(self, every: std::time::Duration) {
        loop {
            tokio::time::sleep(every).await;
            match self.purge_expired_sessions().await {
                Ok(0) => {}
                Ok(count) => tracing::info!(count, "expired sessions deleted"),
                Err(e) => tracing::warn!(error = %e, "expired sessions could not be deleted; trying again later"),
            }
        }
    }

    /// HTTP Basic: costs a password hash and counts towards the soft lock.
    pub async fn authenticate_basic(&self, name: &str, password: &Secret, client: Option<IpAddr>) -> Result<Principal> {
        let subject = self.verify_password(name, password, client).await?;
        // Basic credentials carry no second factor: an account that has one cannot use them.
        if !self.second_factors.methods(subject.id).await?.is_empty() {
            return Err(ServiceError::AuthFailed);
        }
        // A password presented with the request is as fresh as a re-authentication.
        let mut principal = self.principal(subject, AuthMethod::Password, None, true, None);
        let owner = self.ctx.store.account(&NameOrId::Id(principal.account.id), self.ctx.now()).await?;
        principal.password_change_required = owner.is_some_and(|o| o.password_change_required);
        principal.mfa_enrolment_required = self.confined(&principal);
        Ok(principal)
    }

    /// Whether the MFA policy confines the principal to enrolling a second factor (see
    /// [`warden_core::mfa`]): judged by the principal's own snapshot, per request.
    fn confined(&self, principal: &Principal) -> bool {
        let account = (principal.account.kind, principal.account.id);
        self.ctx.mfa.confines(&principal.index, account, principal.method, principal.auth_strength)
    }

    fn principal(
        &self,
        account: Subject,
        method: AuthMethod,
        credential_id: Option<Uuid>,
        elevated: bool,
        token_roles: Option<Vec<String>>,
    ) -> Principal {
        Principal {
            account,
            method,
            credential_id,
            elevated,
            token_roles,
            password_change_required: false,
            auth_strength: None,
            mfa_enrolment_required: false,
            index: self.ctx.authz.snapshot(),
        }
    }

    /// Re-authenticates an interactive session with its password and opens a write window:
    /// the configured window, or the shortest one configured for a role the account holds.
    /// An account with a second factor proves it too; when that proves more than the session's
    /// sign-in did (a session from before the factor was enrolled), the session records the
    /// stronger sign-in in the same write, which lifts the MFA policy's confinement. A session's
    /// strength is never lowered.
    pub async fn reauth(&self, principal: &Principal, req: &ReauthRequest, client: Option<IpAddr>) -> Result<ReauthResponse> {
        let (AuthMethod::Session, Some(session)) = (principal.method, principal.credential_id) else {
            return Err(CoreError::validation("authorization", "re-authentication elevates a session: log in first").into());
        };
        let had = principal.auth_strength.unwrap_or(AuthStrength::Password);
        let proved = self.reproof(principal, req, client).await?;
        if !proved.satisfies(had) {
            return Err(ServiceError::SecondFactorRequired(format!(
                "this session signed in with {had}: re-authenticate as strongly ({})",
                match had {
                    AuthStrength::Password => "the password",
                    AuthStrength::Passkey => "with a passkey",
                    _ => "the password and a second factor, or a passkey",
                }
            )));
        }
        let subject = principal.account.clone();
        let raised = principal.auth_strength.is_none_or(|had| proved.rank() > had.rank()).then_some(proved).filter(|s| s.is_mfa());
        let roles = principal.index.roles_of((subject.kind, subject.id));
        let window = roles
            .iter()
            .filter_map(|r| self.ctx.times.role_elevation_secs.get(r.as_str()).copied())
            .min()
            .unwrap_or(self.ctx.times.elevation_secs);
        let now = self.ctx.now();
        let until = now + Duration::seconds(window);
        let action = Action::Reauth { session_id: session, window_secs: window, auth_strength: raised.map(|s| s.as_str().to_owned()) };
        let change = Change::new(now, Some(&subject), action, Some(&subject));
        if !self.ctx.store.elevate_session(&change, session, until, raised).await? {
            return Err(ServiceError::Unauthenticated);
        }
        self.ctx.authz.refresh().await?;
        Ok(ReauthResponse { elevated_until: until })
    }

    /// What a re-authentication proves: the password (with the account's second factor, if it
    /// has one), or a passkey of the account alone. Each part is checked as at sign-in: the
    /// password through the soft lock, a code or a passkey through the second-factor lock.
    async fn reproof(&self, principal: &Principal, req: &ReauthRequest, client: Option<IpAddr>) -> Result<AuthStrength> {
        let account = &principal.account;
        let seconds = usize::from(req.totp.is_some()) + usize::from(req.backup_code.is_some()) + usize::from(req.passkey.is_some());
        if seconds > 1 {
            return Err(CoreError::validation("second_factor", "send at most one of totp, backup_code and passkey").into());
        }
        let passkey = |answer| {
            let ceremony = req.ceremony.as_ref().ok_or_else(|| {
                CoreError::validation("ceremony", "a passkey answers the ceremony POST /api/v1/auth/reauth/passkey started")
            })?;
            Ok::<_, ServiceError>((TokenHash::of(ceremony.expose().trim()), answer))
        };
        let Some(password) = &req.password else {
            return match &req.passkey {
                Some(answer) => {
                    let (key, answer) = passkey(answer)?;
                    self.second_factors.verify_passkey(account, CeremonyKind::Reauth, &key, answer, client).await?;
                    Ok(AuthStrength::Passkey)
                }
                None => Err(CoreError::validation(
                    "password",
                    "send the password (with a code if the account has a second factor), or a passkey",
                )
                .into()),
            };
        };
        let subject = self.verify_password(account.name.as_str(), password, client).await?;
        if subject.id != account.id {
            return Err(ServiceError::AuthFailed);
        }
        if let Some(answer) = &req.passkey {
            let (key, answer) = passkey(answer)?;
            return Ok(self.second_factors.verify_passkey(&subject, CeremonyKind::Reauth, &key, answer, client).await?.strength());
        }
        if req.totp.is_some() || req.backup_code.is_some() {
            return Ok(self.second_factors.verify(&subject, req.totp.as_deref(), req.backup_code.as_ref(), client).await?.strength());
        }
        // An account with a second factor proves it again too.
        if !self.second_factors.methods(subject.id).await?.is_empty() {
            return Err(ServiceError::SecondFactorRequired(
                "this account has a second factor: send a totp, backup_code or passkey with the password".into(),
            ));
        }
        Ok(AuthStrength::Password)
    }

    pub fn whoami(principal: &Principal) -> WhoAmI {
        WhoAmI {
            account: principal.account.clone(),
            method: principal.method,
            credential_id: principal.credential_id,
            permissions: principal.warden_permissions().into_iter().map(str::to_owned).collect(),
            password_change_required: principal.password_change_required,
            auth_strength: principal.auth_strength.map(|s| s.as_str().to_owned()),
            mfa_enrolment_required: principal.mfa_enrolment_required,
        }
    }

    // --- API tokens -------------------------------------------------------------------------

    pub async fn create_api_token(&self, actor: &Principal, account: &NameOrId, req: CreateApiToken) -> Result<CreatedApiToken> {
        actor.require(Permission::ServiceAccountsWrite)?;
        let owner = self.directory.find_service_account(account).await?.subject();
        super::directory::protect(&owner, "given API tokens: it signs in with the password that wardend recover-account sets")?;
        Directory::guard_privileged(actor, &owner)?;
        let roles = match req.roles {
            Some(roles) => {
                let held = actor.index.roles_of((owner.kind, owner.id));
                for role in &roles {
                    if !held.iter().any(|h| h.as_str() == role) {
                        return Err(CoreError::validation("roles", format!("{owner} does not hold role {role:?}")).into());
                    }
                }
                Some(roles)
            }
            None => None,
        };
        Self::within_own_limit(actor, &owner, roles.as_deref())?;
        let now = self.ctx.now();
        let lifetime = self.token_lifetime(req.expires_in.as_deref())?;
        let info = ApiToken {
            id: Uuid::now_v7(),
            account_id: owner.id,
            label: warden_core::model::clean_text("label", req.label, 128)?,
            created_at: now,
            expires_at: lifetime.map(|secs| now + Duration::seconds(secs)),
            last_used_at: None,
            revoked_at: None,
            read_write: req.read_write,
            roles,
        };
        let token = random_token(TokenKind::Api)?;
        let expires_at = info.expires_at.map(warden_core::timestamp::format);
        let action = Action::ApiTokenCreate {
            token_id: info.id,
            label: info.label.clone(),
            expires_at,
            read_write: info.read_write,
            roles: info.roles.clone(),
        };
        let change = Change::new(now, Some(&actor.account), action, Some(&owner));
        self.ctx.store.create_api_token(&change, &info, &TokenHash::of(token.expose())).await?;
        Ok(CreatedApiToken { token, info })
    }

    /// A new token's lifetime in seconds (`None`: it never expires): as asked (`never`, or a
    /// duration), or the server's default, within `auth.api_token_max_lifetime` if the operator
    /// set one.
    fn token_lifetime(&self, asked: Option<&str>) -> Result<Option<i64>> {
        let times = &self.ctx.times;
        let lifetime = match asked.map(str::trim) {
            None => Some(times.api_token_ttl_secs),
            Some("never") => None,
            Some(raw) => Some(credential::parse_duration_secs(raw)?),
        };
        match (lifetime, times.api_token_max_secs) {
            (None, Some(max)) => Err(CoreError::validation(
                "expires_in",
                format!(
                    "this server gives API tokens at most {} (auth.api_token_max_lifetime); \"never\" is not allowed",
                    credential::format_duration(max)
                ),
            )
            .into()),
            (Some(secs), Some(max)) if secs > max => Err(CoreError::validation(
                "expires_in",
                format!("this server gives API tokens at most {} (auth.api_token_max_lifetime)", credential::format_duration(max)),
            )
            .into()),
            _ => Ok(lifetime),
        }
    }

    /// A credential limited to some roles issues its own account no token beyond that limit:
    /// the new token must name roles, all of them within the caller's. (Tokens for other
    /// accounts are governed by `service_accounts:write` and the high-privilege guard; a
    /// read-write token needs an elevated caller, as every write does.)
    fn within_own_limit(actor: &Principal, owner: &Subject, roles: Option<&[String]>) -> Result<()> {
        let Some(limit) = actor.token_roles.as_deref() else { return Ok(()) };
        if owner.id != actor.account.id {
            return Ok(());
        }
        match roles {
            Some(roles) if roles.iter().all(|r| limit.contains(r)) => Ok(()),
            _ => Err(ServiceError::TokenScope(format!(
                "this token is limited to the roles {limit:?}: a token it issues for {owner} must be limited to some of them"
            ))),
        }
    }

    pub async fn list_api_tokens(&self, actor: &Principal, account: &NameOrId) -> Result<Page<ApiToken>> {
        actor.require(Permission::ServiceAccountsRead)?;
        let owner = self.directory.find_service_account(account).await?;
        Ok(Page { items: self.ctx.store.list_api_tokens(owner.id).await?, next_cursor: None })
    }

    pub async fn revoke_api_token(&self, actor: &Principal, account: &NameOrId, token_id: Uuid) -> Result<()> {
        actor.require(Permission::ServiceAccountsWrite)?;
        let owner = self.directory.find_service_account(account).await?.subject();
        let change = Change::new(self.ctx.now(), Some(&actor.account), Action::ApiTokenRevoke { token_id }, Some(&owner));
        if self.ctx.store.revoke_api_token(&change, owner.id, token_id).await? {
            self.ctx.authz.refresh().await
        } else {
            Err(ServiceError::NotFound(format!("live token {token_id} of service account {}", owner.name)))
        }
    }

    // --- audit ------------------------------------------------------------------------------

    pub async fn audit(&self, actor: &Principal, req: &AuditRequest) -> Result<Page<AuditEvent>> {
        actor.require(Permission::AuditRead)?;
        let split = |v: &Option<String>| -> (Option<Uuid>, Option<String>) {
            match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
                Some(s) => match Uuid::parse_str(s) {
                    Ok(id) => (Some(id), None),
                    Err(_) => (None, Some(s.to_lowercase())),
                },
                None => (None, None),
            }
        };
        let (actor_id, actor_name) = split(&req.actor);
        let (target_id, target_name) = split(&req.target);
        let before_seq = match req.cursor.as_deref().filter(|c| !c.is_empty()) {
            Some(c) => Some(c.parse::<i64>().map_err(|_| CoreError::validation("cursor", "not a cursor from this list"))?),
            None => None,
        };
        let query = AuditQuery {
            actor_id,
            actor_name,
            target_id,
            target_name,
            action_prefix: req.action.clone().filter(|a| !a.is_empty()),
            since: req.since,
            before_seq,
            limit: req.limit.unwrap_or(0),
        };
        Ok(self.ctx.store.audit(&query).await?)
    }
}
