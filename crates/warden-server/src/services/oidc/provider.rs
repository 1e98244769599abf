//! The OpenID Connect provider: issuers, client authentication, codes and the claims of an
//! account. The flows are in [`super::authorize`] (the browser's side: authorization, consent,
//! logout) and [`super::tokens`] (the clients' side: token, userinfo, introspection,
//! revocation).
//!
//! Codes are stateless: a code is its own content (client, account, session, redirect URI,
//! scopes, nonce, PKCE challenge, sign-in time and strength, expiry) sealed with AES-256-GCM
//! under the key-encryption key, so issuing one writes nothing. Redeeming one is the single
//! write of the flow, and its hash is unique among grants: a code is good once.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::sync::OnceCell;
use uuid::Uuid;
use warden_core::access::AuthStrength;
use warden_core::credential::{Secret, TokenHash};
use warden_core::model::{NameOrId, SubjectKind};
use warden_core::namespace::Namespace;
use warden_core::oidc::claims::{self, Identity, Lists};
use warden_core::oidc::pkce::base64url;
use warden_core::oidc::request::AcrLevel;
use warden_core::oidc::{ClaimSet, OidcClient};
use warden_core::{CoreError, Name};

use super::cache::{CachedClient, Life};
use super::jwt;
use super::keys::{Kek, Keys};
use crate::config::OidcTimes;
use crate::services::{Context, Result, ServiceError};

/// The label codes are sealed under (no key id can be it: ids are base64url, no dots).
const CODE_LABEL: &str = "oidc.code";
/// The label of the `prompt=login` marker.
const LOGIN_LABEL: &str = "oidc.login";

/// Who issues: the tenant, the issuer URL and where its endpoints are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer {
    pub tenant: String,
    /// `iss`: `{public_url}` for the root issuer (the `default` tenant), else
    /// `{public_url}/oidc/{tenant}`.
    pub url: String,
    /// The endpoints' base: `{public_url}/oidc` for the root issuer, else the issuer URL.
    pub base: String,
    /// The endpoints' base as a path on this site (`/oidc` or `/oidc/{tenant}`).
    pub path: String,
}

impl Issuer {
    pub fn endpoint(&self, name: &str) -> String {
        format!("{}/{name}", self.base)
    }

    /// The discovery document.
    pub fn discovery(&self) -> Value {
        json!({
            "issuer": self.url,
            "authorization_endpoint": self.endpoint("authorize"),
            "token_endpoint": self.endpoint("token"),
            "userinfo_endpoint": self.endpoint("userinfo"),
            "jwks_uri": self.endpoint("jwks.json"),
            "introspection_endpoint": self.endpoint("introspect"),
            "revocation_endpoint": self.endpoint("revoke"),
            "end_session_endpoint": self.endpoint("logout"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "profile", "email"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "sid",
                "preferred_username", "name", "given_name", "family_name", "email", "email_verified", "groups", "roles", "permissions"],
            "acr_values_supported": ["password", "mfa", "passkey"],
            "prompt_values_supported": ["none", "login", "consent", "select_account"],
            "claims_parameter_supported": false,
            "request_parameter_supported": false,
            "request_uri_parameter_supported": false,
        })
    }
}

/// An OAuth error for a client: the code (RFC 6749 §5.2) and a description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    pub fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self { error, description: description.into() }
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new("invalid_grant", description)
    }

    pub fn invalid_client() -> Self {
        Self::new("invalid_client", "client authentication failed")
    }
}

/// A failure at an endpoint clients call: an OAuth error, or the server's own.
#[derive(Debug)]
pub enum ClientFacing {
    OAuth(OAuthError),
    Service(ServiceError),
}

impl From<OAuthError> for ClientFacing {
    fn from(e: OAuthError) -> Self {
        Self::OAuth(e)
    }
}

impl<E: Into<ServiceError>> From<E> for ClientFacing {
    fn from(e: E) -> Self {
        Self::Service(e.into())
    }
}

/// How a client presented itself at the token, introspection or revocation endpoint.
#[derive(Debug, Default)]
pub struct ClientCredentials {
    pub client_id: Option<String>,
    pub secret: Option<Secret>,
    /// Both `Authorization: Basic` and form fields were sent (RFC 6749 §2.3: one method).
    pub conflicting: bool,
}

/// A code's content.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Code {
    /// The issuer URL.
    pub iss: String,
    pub client: Uuid,
    pub account: Uuid,
    pub session: Uuid,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub nonce: Option<String>,
    pub challenge: Option<String>,
    pub auth_time: i64,
    pub strength: AuthStrength,
    pub exp: i64,
}

/// What the provider needs once it runs: its keys and key-encryption key.
pub(super) struct Ready {
    pub keys: Keys,
    pub kek: Arc<Kek>,
    pub public_url: String,
}

#[derive(Clone)]
pub struct Provider {
    pub(super) ctx: Context,
    ready: Arc<OnceCell<Arc<Ready>>>,
    pub(super) times: OidcTimes,
    /// The root issuer, made once (`None`: no public URL, the provider is off).
    root: Option<Arc<Issuer>>,
}

impl Provider {
    pub fn new(ctx: Context) -> Result<Self> {
        let times = ctx.config.oidc.times().map_err(|e| ServiceError::Internal(e.to_string()))?;
        let root = public_url(&ctx.config).map(|public| {
            Arc::new(Issuer {
                tenant: warden_core::builtin::DEFAULT_TENANT.to_owned(),
                url: public.clone(),
                base: format!("{public}/oidc"),
                path: "/oidc".into(),
            })
        });
        Ok(Self { ctx, ready: Arc::new(OnceCell::new()), times, root })
    }

    /// The provider's keys, loaded (and at first start made) once. `Unavailable` without a
    /// public URL or a key-encryption key.
    pub(super) async fn ready(&self) -> Result<Arc<Ready>> {
        self.ready
            .get_or_try_init(|| async {
                let public_url = self.public_url().ok_or(ServiceError::OidcUnavailable("set server.public_url"))?;
                let kek = Kek::load(&self.ctx.config)?
                    .ok_or(ServiceError::OidcUnavailable("set oidc.key_encryption_key (or _file): it seals the signing keys"))?;
                let kek = Arc::new(kek);
                let publish_for = time::Duration::seconds(self.times.access_token_secs);
                let keys = Keys::start(self.ctx.store.clone(), kek.clone(), publish_for, self.ctx.now()).await?;
                Ok(Arc::new(Ready { keys, kek, public_url }))
            })
            .await
            .cloned()
    }

    /// The provider's keys if they are loaded (no waiting).
    pub(super) fn ready_now(&self) -> Option<Arc<Ready>> {
        self.ready.get().cloned()
    }

    /// Loads the keys now (at start), so that the first request does not wait for them.
    pub async fn start(&self) {
        match self.ready().await {
            Ok(_) => tracing::info!("OpenID Connect provider ready"),
            Err(ServiceError::OidcUnavailable(why)) => tracing::info!(why, "OpenID Connect provider off"),
            Err(e) => tracing::error!(error = %e, "OpenID Connect provider could not start"),
        }
    }

    fn public_url(&self) -> Option<String> {
        public_url(&self.ctx.config)
    }

    /// The issuer at the root (`None`) or under `/oidc/{tenant}`.
    pub fn issuer(&self, tenant: Option<&str>) -> Result<Arc<Issuer>> {
        let root = self.root.as_ref().ok_or(ServiceError::OidcUnavailable("set server.public_url"))?;
        let Some(t) = tenant else { return Ok(root.clone()) };
        let name = Name::parse(t).map_err(|_| ServiceError::NotFound(format!("tenant {t}")))?;
        let url = format!("{}/oidc/{name}", root.url);
        Ok(Arc::new(Issuer { tenant: name.to_string(), url: url.clone(), base: url, path: format!("/oidc/{name}") }))
    }

    /// The issuer of a tenant's discovery document: the tenant must exist.
    pub async fn existing_issuer(&self, tenant: Option<&str>) -> Result<Arc<Issuer>> {
        let issuer = self.issuer(tenant)?;
        if tenant.is_some() {
            let name = Name::parse(&issuer.tenant).map_err(|_| ServiceError::NotFound(format!("tenant {}", issuer.tenant)))?;
            if self.ctx.store.tenant(&name).await?.is_none() {
                return Err(ServiceError::NotFound(format!("tenant {name}")));
            }
        }
        Ok(issuer)
    }

    /// The published keys.
    pub async fn jwks(&self) -> Result<Value> {
        let ready = self.ready().await?;
        ready.keys.jwks(self.ctx.now()).await
    }

    /// The signing keys, for administrators.
    pub async fn list_keys(&self, actor: &warden_core::access::Principal) -> Result<Vec<SigningKeyInfo>> {
        actor.require(warden_core::access::Permission::OidcClientsRead)?;
        let ready = self.ready().await?;
        let ring = ready.keys.current(self.ctx.now()).await?;
        Ok(ring
            .entries()
            .iter()
            .map(|k| SigningKeyInfo {
                kid: k.kid.clone(),
                alg: k.alg.as_str().to_owned(),
                created_at: k.created_at,
                retired_at: k.retired_at,
            })
            .collect())
    }

    /// Makes new signing keys and retires the old ones (needs `warden:oidc_clients:write`).
    pub async fn rotate_keys(&self, actor: &warden_core::access::Principal) -> Result<super::keys::Rotated> {
        actor.require(warden_core::access::Permission::OidcClientsWrite)?;
        let ready = self.ready().await?;
        ready.keys.rotate(&actor.account, self.ctx.now()).await
    }

    // --- clients -------------------------------------------------------------------------------

    /// The client with this `client_id`, from the cache or the store.
    pub(super) async fn client(&self, client_id: &str, now: time::OffsetDateTime) -> Result<Option<Arc<CachedClient>>> {
        if let Some(hit) = self.ctx.authz.oidc.client(client_id, now) {
            return Ok(Some(hit));
        }
        let Some(client) = self.ctx.store.oidc_client(client_id).await? else { return Ok(None) };
        let secret = if client.public { None } else { self.ctx.store.oidc_client_secret(client.id).await? };
        Ok(Some(self.ctx.authz.oidc.put_client(client, secret, now)))
    }

    /// A client of `issuer`'s tenant with this id, or `None`.
    pub(super) async fn client_of(&self, issuer: &Issuer, client_id: &str, now: time::OffsetDateTime) -> Result<Option<Arc<CachedClient>>> {
        Ok(self.client(client_id, now).await?.filter(|c| c.tenant == issuer.tenant))
    }

    /// Authenticates a client: a confidential one by its secret (compared in constant time), a
    /// public one by its id alone when `public_ok`.
    pub(super) async fn authenticate_client(
        &self,
        issuer: &Issuer,
        presented: &ClientCredentials,
        public_ok: bool,
        now: time::OffsetDateTime,
    ) -> std::result::Result<Arc<CachedClient>, ClientFacing> {
        if presented.conflicting {
            return Err(OAuthError::new("invalid_request", "use one client authentication method").into());
        }
        let Some(client_id) = presented.client_id.as_deref().filter(|c| !c.is_empty()) else {
            return Err(OAuthError::invalid_client().into());
        };
        let client = self.client_of(issuer, client_id, now).await?;
        let presented_hash = presented.secret.as_ref().map(|s| TokenHash::of(s.expose()));
        match (client, presented_hash) {
            (Some(c), Some(given)) if c.secret.is_some_and(|stored| stored.matches(&given)) => Ok(c),
            (Some(c), None) if c.client.public && public_ok => Ok(c),
            _ => Err(OAuthError::invalid_client().into()),
        }
    }

    // --- codes ---------------------------------------------------------------------------------

    pub(super) fn seal_code(ready: &Ready, code: &Code) -> Result<String> {
        let clear = serde_json::to_vec(code).map_err(|e| ServiceError::Internal(e.to_string()))?;
        Ok(base64url(&ready.kek.seal(CODE_LABEL, &clear)?))
    }

    /// The content of a code this provider sealed; `None` for anything else.
    pub(super) fn open_code(ready: &Ready, code: &str) -> Option<Code> {
        let sealed = jwt::decode(code).ok()?;
        let clear = ready.kek.open(CODE_LABEL, &sealed).ok()?;
        serde_json::from_slice(&clear).ok()
    }

    /// The `prompt=login` marker: "a sign-in at or after `at`", sealed so that only Warden
    /// can make one.
    pub(super) fn seal_login_marker(ready: &Ready, at: i64, client_id: &str) -> Result<String> {
        Ok(base64url(&ready.kek.seal(LOGIN_LABEL, format!("{at} {client_id}").as_bytes())?))
    }

    pub(super) fn open_login_marker(ready: &Ready, marker: &str, client_id: &str) -> Option<i64> {
        let clear = ready.kek.open(LOGIN_LABEL, &jwt::decode(marker).ok()?).ok()?;
        let text = String::from_utf8(clear).ok()?;
        let (at, client) = text.split_once(' ')?;
        (client == client_id).then(|| at.parse().ok()).flatten()
    }

    // --- liveness ------------------------------------------------------------------------------

    /// What decides whether a grant's tokens work, from the cache or the store.
    pub(super) async fn grant_life(&self, grant: Uuid, now: time::OffsetDateTime) -> Result<Option<Life>> {
        if let Some(life) = self.ctx.authz.oidc.life(grant, now) {
            return Ok(Some(life));
        }
        let Some(record) = self.ctx.store.oidc_grant(grant, now).await? else { return Ok(None) };
        let life = Life::Grant(record);
        self.ctx.authz.oidc.put_life(grant, life.clone(), now);
        Ok(Some(life))
    }

    /// Whether a service account is active, from the cache or the store.
    pub(super) async fn account_active(&self, account: Uuid, now: time::OffsetDateTime) -> Result<bool> {
        if let Some(Life::Account { active, .. }) = self.ctx.authz.oidc.life(account, now) {
            return Ok(active);
        }
        let active = self.ctx.store.account(&NameOrId::Id(account), now).await?.is_some_and(|o| o.active);
        self.ctx.authz.oidc.put_life(account, Life::Account { id: account, active }, now);
        Ok(active)
    }

    // --- claims --------------------------------------------------------------------------------

    /// The list claims `client` opted into, for the account (`kind`, `id`).
    pub(super) fn lists(&self, client: &OidcClient, kind: SubjectKind, id: Uuid) -> Lists {
        let index = self.ctx.authz.snapshot();
        let subject = (kind, id);
        let tenant = tenant_of(client);
        let wants = |set| client.claims.contains(&set);
        let names = |v: Vec<Name>| v.into_iter().map(|n| n.to_string()).collect::<Vec<_>>();
        Lists {
            groups: wants(ClaimSet::Groups).then(|| names(index.effective_groups(subject))),
            roles: wants(ClaimSet::Roles).then(|| names(index.roles_in(subject, &tenant))),
            permissions: wants(ClaimSet::Permissions).then(|| {
                let namespace = client.permissions_namespace.as_deref().and_then(|n| Namespace::parse(n).ok());
                index.permissions_of(subject, &tenant, namespace.as_ref(), None)
            }),
        }
    }

    /// The account as the standard claims describe it.
    pub(super) async fn identity(&self, account: Uuid) -> Result<Identity> {
        if let Some(user) = self.ctx.store.user(&NameOrId::Id(account)).await? {
            let p = &user.profile;
            let email = p.emails.iter().find(|e| e.primary).map(|e| (e.address.clone(), e.verified));
            let fields = self
                .ctx
                .config
                .oidc
                .field_claims
                .iter()
                .filter_map(|(field, claim)| p.fields.get(field).map(|v| (claim.clone(), v.clone())))
                .collect();
            return Ok(Identity {
                id: user.id,
                name: user.name.to_string(),
                display_name: p.display_name.clone(),
                given_name: p.first_name.clone(),
                family_name: p.last_name.clone(),
                email,
                fields,
            });
        }
        let owner = self
            .ctx
            .store
            .account(&NameOrId::Id(account), self.ctx.now())
            .await?
            .ok_or_else(|| ServiceError::NotFound("account".into()))?;
        Ok(Identity { id: account, name: owner.subject.name.to_string(), display_name: owner.display_name, ..Identity::default() })
    }

    /// The list-claim budget of a token.
    pub(super) fn list_budget(&self) -> usize {
        self.ctx.config.oidc.max_list_claims_bytes
    }
}

/// `server.public_url` without a trailing `/`, if set.
fn public_url(config: &crate::config::Config) -> Option<String> {
    config.server.public_url.as_deref().map(|u| u.trim_end_matches('/').to_owned()).filter(|u| !u.is_empty())
}

/// The tenant a client belongs to: its `permissions_tenant`, else `default`.
pub fn tenant_of(client: &OidcClient) -> String {
    client.permissions_tenant.as_ref().map_or_else(|| warden_core::builtin::DEFAULT_TENANT.to_owned(), Name::to_string)
}

/// `amr` (RFC 8176) of a sign-in.
pub(super) fn amr(strength: AuthStrength) -> Vec<&'static str> {
    match strength {
        AuthStrength::Password => vec!["pwd"],
        AuthStrength::PasswordTotp | AuthStrength::PasswordBackupCode => vec!["pwd", "otp", "mfa"],
        AuthStrength::Passkey => vec!["hwk", "user"],
        AuthStrength::PasswordPasskey => vec!["pwd", "hwk", "mfa"],
    }
}

/// The claims every user token carries about the sign-in.
pub(super) fn sign_in_claims(claims: &mut Map<String, Value>, auth_time: i64, strength: AuthStrength) {
    claims.insert("auth_time".into(), json!(auth_time));
    claims.insert("acr".into(), json!(AcrLevel::of(strength).as_str()));
    claims.insert("amr".into(), json!(amr(strength)));
}

/// A signing key as administrators see it.
pub use warden_core::api::OidcSigningKey as SigningKeyInfo;

/// Scopes of `requested` (space-separated) that `allowed` holds; `None` if any is not.
pub(super) fn narrow_scopes(requested: Option<&str>, allowed: &[String]) -> std::result::Result<Vec<String>, OAuthError> {
    let mut out: Vec<String> = Vec::new();
    for s in requested.unwrap_or_default().split(' ').filter(|s| !s.is_empty()) {
        if !allowed.iter().any(|a| a == s) {
            return Err(OAuthError::new("invalid_scope", format!("the scope {s:?} is not allowed")));
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    Ok(out)
}

impl From<CoreError> for OAuthError {
    fn from(e: CoreError) -> Self {
        Self::new("invalid_request", e.to_string())
    }
}

/// `claims::standard` plus the lists within the budget.
pub(super) fn token_claims(identity: &Identity, scopes: &[String], lists: &Lists, budget: usize, userinfo: &str) -> Map<String, Value> {
    let mut c = claims::standard(identity, scopes);
    claims::add_within(&mut c, lists, budget, userinfo);
    c
}
