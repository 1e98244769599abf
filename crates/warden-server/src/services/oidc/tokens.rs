//! The clients' side of the provider: the token endpoint (a code, a refresh token or client
//! credentials in; tokens out), userinfo, introspection (RFC 7662) and revocation (RFC 7009).
//!
//! An access token is a JWT (RFC 9068) that names its grant; whether it still works is the
//! grant's life (not revoked, its session still there, its account active), read from the
//! node's cache, which every node's changes keep honest. A refresh token is spent by its use:
//! presenting a spent one revokes the whole grant, since someone holds a copy.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;
use warden_core::change::GrantRevocation;
use warden_core::credential::{TokenHash, TokenKind};
use warden_core::model::{Subject, SubjectKind};
use warden_core::oidc::claims;
use warden_core::oidc::pkce::{self, base64url};
use warden_core::oidc::{OidcClient, SigningAlg};
use warden_store::{Action, Change, GrantCreated, GrantRecord, NewGrant};

use super::cache::{CachedClient, Life, VerifiedToken};
use super::jwt;
use super::provider::{ClientCredentials, ClientFacing, Issuer, OAuthError, Provider, Ready, narrow_scopes, sign_in_claims, token_claims};
use crate::services::auth::random_token;
use crate::services::{Result, ServiceError};

/// The form of `POST /token`. No `Debug`: it carries codes, verifiers, refresh tokens and
/// client secrets, which must never reach a log line.
#[derive(Default, Deserialize, utoipa::ToSchema)]
pub struct TokenForm {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

/// A successful token response (RFC 6749 §5.1). No `Debug`: it is made of tokens.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub scope: String,
}

type Outcome<T> = std::result::Result<T, ClientFacing>;

/// Introspection's answer for anything that is not a live token of ours.
const INACTIVE: &str = r#"{"active":false}"#;

/// What an access token stands for once it is known to be ours and alive.
struct Live {
    token: Arc<VerifiedToken>,
}

impl Provider {
    /// `POST /token`.
    pub async fn token(&self, issuer: &Issuer, creds: &ClientCredentials, form: &TokenForm) -> Outcome<TokenResponse> {
        let ready = self.ready().await?;
        match form.grant_type.as_deref() {
            Some("authorization_code") => self.redeem_code(&ready, issuer, creds, form).await,
            Some("refresh_token") => self.redeem_refresh(&ready, issuer, creds, form).await,
            Some("client_credentials") => self.client_credentials(&ready, issuer, creds, form).await,
            None | Some("") => Err(OAuthError::new("invalid_request", "grant_type is missing").into()),
            Some(other) => Err(OAuthError::new("unsupported_grant_type", format!("{other:?} is not supported")).into()),
        }
    }

    async fn redeem_code(&self, ready: &Ready, issuer: &Issuer, creds: &ClientCredentials, form: &TokenForm) -> Outcome<TokenResponse> {
        let now = self.ctx.now();
        let client = self.authenticate_client(issuer, creds, true, now).await?;
        let raw = form.code.as_deref().filter(|c| !c.is_empty()).ok_or_else(|| OAuthError::new("invalid_request", "code is missing"))?;
        let code = Provider::open_code(ready, raw).ok_or_else(|| OAuthError::invalid_grant("the code is not valid"))?;
        if code.iss != issuer.url || code.client != client.client.id {
            return Err(OAuthError::invalid_grant("the code was issued to another client").into());
        }
        if code.exp < now.unix_timestamp() {
            return Err(OAuthError::invalid_grant("the code has expired").into());
        }
        if form.redirect_uri.as_deref() != Some(code.redirect_uri.as_str()) {
            return Err(OAuthError::invalid_grant("redirect_uri does not match the authorization request").into());
        }
        match (code.challenge.as_deref(), form.code_verifier.as_deref().filter(|v| !v.is_empty())) {
            (Some(challenge), Some(verifier)) if pkce::verify(challenge, verifier) => {}
            (Some(_), Some(_)) => return Err(OAuthError::invalid_grant("the code_verifier does not match the code_challenge").into()),
            (Some(_), None) => return Err(OAuthError::invalid_grant("code_verifier is required (the request used PKCE)").into()),
            (None, Some(_)) => return Err(OAuthError::invalid_grant("code_verifier without a code_challenge in the request").into()),
            (None, None) => {}
        }
        let Some(user) = self.ctx.authz.snapshot().subject_by_id(code.account) else {
            return Err(OAuthError::invalid_grant("the account no longer exists").into());
        };
        let refresh = random_token(TokenKind::RefreshToken)?;
        let grant = NewGrant {
            id: Uuid::now_v7(),
            client: client.client.id,
            account: code.account,
            session: code.session,
            code: TokenHash::of(raw),
            scopes: code.scopes.clone(),
            auth_time: OffsetDateTime::from_unix_timestamp(code.auth_time).map_err(|e| ServiceError::Internal(e.to_string()))?,
            auth_strength: code.strength,
            created_at: now,
            expires_at: now + time::Duration::seconds(self.times.refresh_token_secs),
            refresh_token: TokenHash::of(refresh.expose()),
        };
        let action = Action::OidcGrantCreate {
            grant: grant.id,
            client: client.client.client_id.clone(),
            session: code.session,
            scopes: code.scopes.clone(),
        };
        let change = Change::new(now, Some(&user), action, Some(&user));
        if let GrantCreated::CodeUsed { grant: first } = self.ctx.store.create_oidc_grant(&change, &grant).await? {
            self.revoke_grant(first, &client.client, &user, GrantRevocation::CodeReused).await?;
            return Err(OAuthError::invalid_grant("the code was used already; the tokens issued for it are revoked").into());
        }
        let record = self.ctx.store.oidc_grant(grant.id, now).await?.ok_or_else(|| ServiceError::Internal("a new grant is gone".into()))?;
        if !record.is_live(now) {
            return Err(OAuthError::invalid_grant("the sign-in behind the code has ended").into());
        }
        self.ctx.authz.oidc.put_life(record.id, Life::Grant(record.clone()), now);
        let mut response = self.user_tokens(ready, issuer, &client.client, &user, &record, code.nonce.as_deref()).await?;
        response.refresh_token = Some(refresh.expose().to_owned());
        Ok(response)
    }

    async fn redeem_refresh(&self, ready: &Ready, issuer: &Issuer, creds: &ClientCredentials, form: &TokenForm) -> Outcome<TokenResponse> {
        let now = self.ctx.now();
        let client = self.authenticate_client(issuer, creds, true, now).await?;
        let raw = form.refresh_token.as_deref().unwrap_or_default();
        if TokenKind::of(raw) != Some(TokenKind::RefreshToken) {
            return Err(OAuthError::invalid_grant("the refresh token is not valid").into());
        }
        let old = TokenHash::of(raw);
        let Some((grant, spent)) = self.ctx.store.oidc_refresh_token(&old, now).await? else {
            return Err(OAuthError::invalid_grant("the refresh token is not valid").into());
        };
        if grant.client != client.client.id {
            return Err(OAuthError::invalid_grant("the refresh token was issued to another client").into());
        }
        let Some(user) = self.ctx.authz.snapshot().subject_by_id(grant.account) else {
            return Err(OAuthError::invalid_grant("the account no longer exists").into());
        };
        let reused = || OAuthError::invalid_grant("the refresh token was used already; every token of its grant is revoked");
        if spent {
            self.revoke_grant(grant.id, &client.client, &user, GrantRevocation::RefreshTokenReused).await?;
            return Err(reused().into());
        }
        if !grant.is_live(now) {
            return Err(OAuthError::invalid_grant("the grant has ended (its session ended, or it was revoked)").into());
        }
        let scopes = match form.scope.as_deref().filter(|s| !s.is_empty()) {
            None => grant.scopes.clone(),
            Some(asked) => narrow_scopes(Some(asked), &grant.scopes)?,
        };
        let next = random_token(TokenKind::RefreshToken)?;
        let action = Action::OidcGrantRefresh { grant: grant.id, client: client.client.client_id.clone() };
        let change = Change::new(now, None, action, Some(&user));
        if !self.ctx.store.rotate_refresh_token(&change, grant.id, &old, &TokenHash::of(next.expose())).await? {
            // Spent by someone else between our read and our write: a copy is in use.
            self.revoke_grant(grant.id, &client.client, &user, GrantRevocation::RefreshTokenReused).await?;
            return Err(reused().into());
        }
        // The client's use keeps the session from idling out (never past its absolute end).
        self.ctx.store.touch_session(grant.session, now).await?;
        let record = GrantRecord { scopes, ..grant };
        let mut response = self.user_tokens(ready, issuer, &client.client, &user, &record, None).await?;
        response.refresh_token = Some(next.expose().to_owned());
        Ok(response)
    }

    async fn client_credentials(
        &self,
        ready: &Ready,
        issuer: &Issuer,
        creds: &ClientCredentials,
        form: &TokenForm,
    ) -> Outcome<TokenResponse> {
        let now = self.ctx.now();
        let client = self.authenticate_client(issuer, creds, false, now).await?;
        let Some(account) = client.client.service_account.clone() else {
            return Err(OAuthError::new("unauthorized_client", "the client is tied to no service account").into());
        };
        if !self.account_active(account.id, now).await? {
            return Err(OAuthError::invalid_grant("the client's service account is disabled").into());
        }
        let scopes = narrow_scopes(form.scope.as_deref(), &client.client.scopes)?;
        let lists = self.lists(&client.client, SubjectKind::ServiceAccount, account.id);
        let mut claims = self.access_claims(issuer, &client.client, account.id, &scopes, now);
        claims::add_within(&mut claims, &lists, self.list_budget(), &issuer.endpoint("userinfo"));
        let access_token = self.sign(ready, client.client.signing_alg, "at+jwt", &claims, now).await?;
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: self.times.access_token_secs,
            id_token: None,
            refresh_token: None,
            scope: scopes.join(" "),
        })
    }

    /// An access token and an ID token for a user's grant.
    async fn user_tokens(
        &self,
        ready: &Ready,
        issuer: &Issuer,
        client: &OidcClient,
        user: &Subject,
        grant: &GrantRecord,
        nonce: Option<&str>,
    ) -> Result<TokenResponse> {
        let now = self.ctx.now();
        let identity = self.identity(user.id).await?;
        let lists = self.lists(client, user.kind, user.id);
        let budget = self.list_budget();
        let userinfo = issuer.endpoint("userinfo");
        let auth_time = grant.auth_time.unix_timestamp();

        let mut access = self.access_claims(issuer, client, user.id, &grant.scopes, now);
        sign_in_claims(&mut access, auth_time, grant.auth_strength);
        access.insert("sid".into(), json!(grant.session.to_string()));
        access.insert("grant_id".into(), json!(grant.id.to_string()));
        claims::add_within(&mut access, &lists, budget, &userinfo);
        let access_token = self.sign(ready, client.signing_alg, "at+jwt", &access, now).await?;

        let mut id = token_claims(&identity, &grant.scopes, &lists, budget, &userinfo);
        id.insert("iss".into(), json!(issuer.url));
        id.insert("aud".into(), json!(client.client_id.as_str()));
        id.insert("azp".into(), json!(client.client_id.as_str()));
        id.insert("iat".into(), json!(now.unix_timestamp()));
        id.insert("exp".into(), json!(now.unix_timestamp() + self.times.access_token_secs));
        id.insert("sid".into(), json!(grant.session.to_string()));
        sign_in_claims(&mut id, auth_time, grant.auth_strength);
        if let Some(nonce) = nonce {
            id.insert("nonce".into(), json!(nonce));
        }
        // `at_hash` where the algorithm's hash is SHA-256 (it is optional in this flow).
        if client.signing_alg != SigningAlg::EdDsa {
            let digest = Sha256::digest(access_token.as_bytes());
            id.insert("at_hash".into(), json!(base64url(&digest[..16])));
        }
        let id_token = self.sign(ready, client.signing_alg, "JWT", &id, now).await?;
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer",
            expires_in: self.times.access_token_secs,
            id_token: Some(id_token),
            refresh_token: None,
            scope: grant.scopes.join(" "),
        })
    }

    /// The claims every access token carries (RFC 9068 §2.2).
    fn access_claims(&self, issuer: &Issuer, client: &OidcClient, sub: Uuid, scopes: &[String], now: OffsetDateTime) -> Map<String, Value> {
        let mut c = Map::new();
        c.insert("iss".into(), json!(issuer.url));
        c.insert("sub".into(), json!(sub.to_string()));
        c.insert("aud".into(), json!(client.client_id.as_str()));
        c.insert("client_id".into(), json!(client.client_id.as_str()));
        c.insert("iat".into(), json!(now.unix_timestamp()));
        c.insert("exp".into(), json!(now.unix_timestamp() + self.times.access_token_secs));
        c.insert("jti".into(), json!(Uuid::new_v4().to_string()));
        c.insert("scope".into(), json!(scopes.join(" ")));
        c
    }

    async fn sign(&self, ready: &Ready, alg: SigningAlg, typ: &str, claims: &Map<String, Value>, now: OffsetDateTime) -> Result<String> {
        let ring = ready.keys.current(now).await?;
        let key = ring.signer(alg).ok_or_else(|| ServiceError::Internal(format!("no {} signing key", alg.as_str())))?;
        jwt::sign(key, typ, claims).map_err(|e| ServiceError::Internal(e.to_string()))
    }

    /// Ends a grant on every node: audited, with the reason.
    async fn revoke_grant(&self, grant: Uuid, client: &OidcClient, user: &Subject, reason: GrantRevocation) -> Result<()> {
        let action = Action::OidcGrantRevoke { grant, client: client.client_id.clone(), reason };
        let change = Change::new(self.ctx.now(), None, action, Some(user));
        self.ctx.store.revoke_oidc_grant(&change, grant).await?;
        self.ctx.authz.oidc.forget_life(grant);
        self.ctx.authz.nudge();
        Ok(())
    }

    // --- presented access tokens ---------------------------------------------------------------

    /// The access token, if it is one of this tenant's, signed by a key we hold with that key's
    /// algorithm, unexpired, and its grant (or service account) alive.
    async fn live_access_token(&self, ready: &Ready, issuer: &Issuer, token: &str, now: OffsetDateTime) -> Result<Option<Live>> {
        let verified = if let Some(hit) = self.ctx.authz.oidc.token(token, now) {
            hit
        } else {
            {
                let Ok(parsed) = jwt::parse(token) else { return Ok(None) };
                if parsed.typ.as_deref() != Some("at+jwt") {
                    return Ok(None);
                }
                let ring = ready.keys.with_kid(&parsed.kid, now).await?;
                if jwt::verify(&parsed, &ring).is_err() {
                    return Ok(None);
                }
                let c = &parsed.claims;
                let text = |k: &str| c.get(k).and_then(Value::as_str);
                let (Some(exp), Some(sub), Some(client_id), Some(iss)) = (
                    c.get("exp").and_then(Value::as_i64),
                    text("sub").and_then(|s| Uuid::parse_str(s).ok()),
                    text("client_id"),
                    text("iss"),
                ) else {
                    return Ok(None);
                };
                let grant = text("grant_id").and_then(|g| Uuid::parse_str(g).ok());
                let entry = Arc::new(VerifiedToken {
                    claims: c.clone(),
                    exp,
                    grant,
                    sub,
                    client_id: client_id.to_owned(),
                    iss: iss.to_owned(),
                    introspection: std::sync::OnceLock::new(),
                });
                if exp <= now.unix_timestamp() {
                    return Ok(None);
                }
                self.ctx.authz.oidc.put_token(token, entry.clone());
                entry
            }
        };
        if !Self::accepts(ready, issuer, &verified.iss) {
            return Ok(None);
        }
        let alive = match verified.grant {
            Some(grant) => matches!(self.grant_life(grant, now).await?, Some(Life::Grant(g)) if g.is_live(now)),
            None => self.account_active(verified.sub, now).await? && self.client(&verified.client_id, now).await?.is_some(),
        };
        Ok(alive.then_some(Live { token: verified }))
    }

    /// Whether `iss` is one of the issuers of `issuer`'s tenant (the root one is `default`'s).
    fn accepts(ready: &Ready, issuer: &Issuer, iss: &str) -> bool {
        let tenant_issuer = iss.strip_prefix(ready.public_url.as_str()).and_then(|rest| rest.strip_prefix("/oidc/"));
        tenant_issuer == Some(issuer.tenant.as_str()) || (issuer.tenant == warden_core::builtin::DEFAULT_TENANT && iss == ready.public_url)
    }

    /// `GET|POST /userinfo` with a bearer access token: the claims its scopes release, with
    /// every opted-in list whole.
    pub async fn userinfo(&self, issuer: &Issuer, bearer: Option<&str>) -> Outcome<Map<String, Value>> {
        let ready = self.ready().await?;
        let invalid = || OAuthError::new("invalid_token", "the access token is not valid");
        let token = bearer.ok_or_else(invalid)?;
        let now = self.ctx.now();
        let live = self.live_access_token(&ready, issuer, token, now).await?.ok_or_else(invalid)?;
        let t = &live.token;
        let scopes: Vec<String> = t.claims.get("scope").and_then(Value::as_str).unwrap_or_default().split(' ').map(str::to_owned).collect();
        let identity = self.identity(t.sub).await?;
        let mut claims = claims::standard(&identity, &scopes);
        if let Some(client) = self.client(&t.client_id, now).await? {
            let kind = self.ctx.authz.snapshot().subject_by_id(t.sub).map_or(SubjectKind::User, |s| s.kind);
            claims::add_all(&mut claims, &self.lists(&client.client, kind, t.sub));
        }
        Ok(claims)
    }

    /// Introspection answered from this node's caches alone, without waiting on anything: the
    /// provider started, the client, the verified token and its life all cached and current,
    /// the answer made before. `None` sends the caller to [`Self::introspect`], which reads
    /// what is missing (and gives the same answer; this is only the shorter way to it).
    pub fn introspect_cached(&self, issuer: &Issuer, creds: &ClientCredentials, token: Option<&str>) -> Option<bytes::Bytes> {
        let ready = self.ready_now()?;
        let now = self.ctx.now();
        let cache = &self.ctx.authz.oidc;
        if creds.conflicting {
            return None;
        }
        let client = cache.client(creds.client_id.as_deref()?, now)?;
        let secret = TokenHash::of(creds.secret.as_ref()?.expose());
        if client.tenant != issuer.tenant || !client.secret.is_some_and(|stored| stored.matches(&secret)) {
            return None;
        }
        let token = token.filter(|t| TokenKind::of(t) != Some(TokenKind::RefreshToken))?;
        let verified = cache.token(token, now)?;
        if !Self::accepts(&ready, issuer, &verified.iss) {
            return None;
        }
        let alive = match verified.grant {
            Some(grant) => match cache.life(grant, now)? {
                Life::Grant(g) => g.is_live(now),
                Life::Account { .. } => return None,
            },
            None => match cache.life(verified.sub, now)? {
                Life::Account { active, .. } => active && cache.client(&verified.client_id, now).is_some(),
                Life::Grant(_) => return None,
            },
        };
        if !alive {
            return Some(bytes::Bytes::from_static(INACTIVE.as_bytes()));
        }
        verified.introspection.get().cloned()
    }

    /// `POST /introspect` (RFC 7662), for a confidential client of the tenant: the answer as
    /// JSON text. A live access token's answer is made once and kept with the verified token
    /// (resource servers ask about the same token again and again); its life is checked on
    /// every call.
    pub async fn introspect(&self, issuer: &Issuer, creds: &ClientCredentials, token: Option<&str>) -> Outcome<bytes::Bytes> {
        let ready = self.ready().await?;
        let now = self.ctx.now();
        let caller = self.authenticate_client(issuer, creds, false, now).await?;
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Err(OAuthError::new("invalid_request", "token is missing").into());
        };
        if TokenKind::of(token) == Some(TokenKind::RefreshToken) {
            let answer = self.introspect_refresh(&caller, token, now).await?.unwrap_or_else(|| json!({ "active": false }));
            return Ok(answer.to_string().into());
        }
        let Some(live) = self.live_access_token(&ready, issuer, token, now).await? else {
            return Ok(bytes::Bytes::from_static(INACTIVE.as_bytes()));
        };
        let answer = live.token.introspection.get_or_init(|| {
            let c = &live.token.claims;
            let mut out = Map::new();
            out.insert("active".into(), json!(true));
            for key in ["scope", "client_id", "exp", "iat", "sub", "aud", "iss", "jti", "auth_time", "acr"] {
                if let Some(v) = c.get(key) {
                    out.insert(key.into(), v.clone());
                }
            }
            out.insert("token_type".into(), json!("Bearer"));
            if let Some(name) = self.ctx.authz.snapshot().subject_by_id(live.token.sub) {
                out.insert("username".into(), json!(name.name.as_str()));
            }
            bytes::Bytes::from(Value::Object(out).to_string())
        });
        Ok(answer.clone())
    }

    async fn introspect_refresh(&self, caller: &CachedClient, token: &str, now: OffsetDateTime) -> Result<Option<Value>> {
        let Some((grant, spent)) = self.ctx.store.oidc_refresh_token(&TokenHash::of(token), now).await? else { return Ok(None) };
        // Only the client a refresh token was issued to may learn of it.
        if spent || grant.client != caller.client.id || !grant.is_live(now) {
            return Ok(None);
        }
        let username = self.ctx.authz.snapshot().subject_by_id(grant.account).map(|s| s.name.to_string());
        Ok(Some(json!({
            "active": true,
            "token_type": "refresh_token",
            "client_id": caller.client.client_id.as_str(),
            "sub": grant.account.to_string(),
            "username": username,
            "scope": grant.scopes.join(" "),
            "iat": grant.created_at.unix_timestamp(),
            "exp": grant.expires_at.unix_timestamp(),
        })))
    }

    /// `POST /revoke` (RFC 7009): a refresh token or access token of the calling client ends
    /// its grant. Anything else is answered the same way (success), as the RFC asks.
    pub async fn revoke(&self, issuer: &Issuer, creds: &ClientCredentials, token: Option<&str>) -> Outcome<()> {
        let ready = self.ready().await?;
        let now = self.ctx.now();
        let caller = self.authenticate_client(issuer, creds, true, now).await?;
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Err(OAuthError::new("invalid_request", "token is missing").into());
        };
        let grant = if TokenKind::of(token) == Some(TokenKind::RefreshToken) {
            self.ctx.store.oidc_refresh_token(&TokenHash::of(token), now).await?.map(|(g, _)| (g.id, g.client, g.account))
        } else {
            match self.live_access_token(&ready, issuer, token, now).await? {
                Some(live) if live.token.client_id == caller.client.client_id.as_str() => {
                    live.token.grant.map(|g| (g, caller.client.id, live.token.sub))
                }
                _ => None,
            }
        };
        if let Some((grant, client, account)) = grant
            && client == caller.client.id
            && let Some(user) = self.ctx.authz.snapshot().subject_by_id(account)
        {
            self.revoke_grant(grant, &caller.client, &user, GrantRevocation::Revoked).await?;
        }
        Ok(())
    }
}
