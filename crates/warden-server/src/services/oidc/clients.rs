//! Registering OpenID Connect clients: create, list, read, change, rotate a secret, delete.
//!
//! Governed by `warden:oidc_clients:*` (held by `system_admin`, so by `system_admins`). A
//! confidential client's secret (`wdc_…`, 256 random bits) is returned once, when it is made,
//! and stored only as its SHA-256: no later answer, log line or audit event contains it. A
//! public client has none, and asking to rotate one is [`ServiceError::PublicClient`].

use uuid::Uuid;
use warden_core::access::{Permission, Principal};
use warden_core::api::{CreateOidcClient, CreatedOidcClient, OidcClientSecret, UpdateOidcClient};
use warden_core::authz::parse_id;
use warden_core::credential::{Secret, TokenHash, TokenKind};
use warden_core::model::{NameOrId, Subject};
use warden_core::namespace::Namespace;
use warden_core::oidc::{self, OidcClient, SigningAlg};
use warden_core::{CoreError, Name};
use warden_store::{Action, Change};

use crate::services::auth::random_token;
use crate::services::{Context, Result, ServiceError};

/// The longest display name accepted.
const MAX_DISPLAY_NAME: usize = 200;

/// The registry of OpenID Connect clients.
#[derive(Clone)]
pub struct OidcClients {
    ctx: Context,
}

impl OidcClients {
    pub fn new(ctx: Context) -> Self {
        Self { ctx }
    }

    /// Registers a client (needs `warden:oidc_clients:write`); a confidential one gets its
    /// secret, returned here and never again.
    pub async fn create(&self, actor: &Principal, req: CreateOidcClient) -> Result<CreatedOidcClient> {
        actor.require(Permission::OidcClientsWrite)?;
        let client_id = parse_id("client_id", &req.client_id)?;
        let display_name = display_name(req.display_name.as_deref(), &client_id)?;
        let now = self.ctx.now();
        let mut client = OidcClient {
            id: Uuid::now_v7(),
            client_id,
            display_name,
            public: req.public,
            first_party: req.first_party,
            redirect_uris: oidc::check_redirect_uris("redirect_uris", &req.redirect_uris, false)?,
            post_logout_redirect_uris: oidc::check_redirect_uris("post_logout_redirect_uris", &req.post_logout_redirect_uris, true)?,
            scopes: oidc::check_scopes(&req.scopes)?,
            claims: oidc::parse_claims(&req.claims)?,
            permissions_tenant: None,
            permissions_namespace: None,
            signing_alg: signing_alg(req.signing_alg.as_deref())?,
            service_account: None,
            created_at: now,
            updated_at: now,
        };
        client.permissions_tenant = self.tenant(req.permissions_tenant.as_deref()).await?;
        client.permissions_namespace = namespace(req.permissions_namespace.as_deref())?;
        client.service_account = self.service_account(actor, req.service_account.as_deref(), client.public).await?;
        let secret = if client.public { None } else { Some(random_token(TokenKind::ClientSecret)?) };
        let hash = secret.as_ref().map(|s| TokenHash::of(s.expose()));
        let action = Action::OidcClientCreate { id: client.id, client: client.client_id.clone(), public: client.public };
        let change = Change::new(now, Some(&actor.account), action, None);
        self.ctx.store.create_oidc_client(&change, &client, hash.as_ref()).await?;
        Ok(CreatedOidcClient { client, client_secret: secret })
    }

    /// Every client, by `client_id` (needs `warden:oidc_clients:read`).
    pub async fn list(&self, actor: &Principal) -> Result<Vec<OidcClient>> {
        actor.require(Permission::OidcClientsRead)?;
        Ok(self.ctx.store.oidc_clients().await?)
    }

    /// The client with this `client_id` (needs `warden:oidc_clients:read`).
    pub async fn get(&self, actor: &Principal, client_id: &str) -> Result<OidcClient> {
        actor.require(Permission::OidcClientsRead)?;
        self.existing(client_id).await
    }

    /// Changes what `req` names (needs `warden:oidc_clients:write`); the event lists the
    /// fields that changed, and a request that changes nothing writes nothing.
    pub async fn update(&self, actor: &Principal, client_id: &str, req: UpdateOidcClient) -> Result<OidcClient> {
        actor.require(Permission::OidcClientsWrite)?;
        let old = self.existing(client_id).await?;
        let mut new = old.clone();
        if let Some(name) = req.display_name.as_deref() {
            new.display_name = display_name(Some(name), &old.client_id)?;
        }
        if let Some(first_party) = req.first_party {
            new.first_party = first_party;
        }
        if let Some(uris) = &req.redirect_uris {
            new.redirect_uris = oidc::check_redirect_uris("redirect_uris", uris, false)?;
        }
        if let Some(uris) = &req.post_logout_redirect_uris {
            new.post_logout_redirect_uris = oidc::check_redirect_uris("post_logout_redirect_uris", uris, true)?;
        }
        if let Some(scopes) = &req.scopes {
            new.scopes = oidc::check_scopes(scopes)?;
        }
        if let Some(claims) = &req.claims {
            new.claims = oidc::parse_claims(claims)?;
        }
        if let Some(tenant) = req.permissions_tenant.as_deref() {
            new.permissions_tenant = self.tenant(Some(tenant)).await?;
        }
        if let Some(raw) = req.permissions_namespace.as_deref() {
            new.permissions_namespace = namespace(Some(raw))?;
        }
        if let Some(alg) = req.signing_alg.as_deref() {
            new.signing_alg = signing_alg(Some(alg))?;
        }
        if let Some(account) = req.service_account.as_deref() {
            new.service_account = self.service_account(actor, Some(account), new.public).await?;
        }
        let fields = changed_fields(&old, &new);
        if fields.is_empty() {
            return Ok(old);
        }
        new.updated_at = self.ctx.now();
        let action = Action::OidcClientUpdate { id: new.id, client: new.client_id.clone(), fields };
        let change = Change::new(new.updated_at, Some(&actor.account), action, None);
        if !self.ctx.store.update_oidc_client(&change, &new).await? {
            return Err(ServiceError::NotFound(format!("OIDC client {}", new.client_id)));
        }
        Ok(new)
    }

    /// Gives a confidential client a new secret, returned here and never again; the old one
    /// stops working (needs `warden:oidc_clients:write`).
    pub async fn rotate_secret(&self, actor: &Principal, client_id: &str) -> Result<OidcClientSecret> {
        actor.require(Permission::OidcClientsWrite)?;
        let client = self.existing(client_id).await?;
        if client.public {
            return Err(ServiceError::PublicClient(client.client_id.to_string()));
        }
        let secret: Secret = random_token(TokenKind::ClientSecret)?;
        let action = Action::OidcClientSecretRotate { id: client.id, client: client.client_id.clone() };
        let change = Change::new(self.ctx.now(), Some(&actor.account), action, None);
        if !self.ctx.store.rotate_oidc_client_secret(&change, client.id, &TokenHash::of(secret.expose())).await? {
            return Err(ServiceError::NotFound(format!("OIDC client {}", client.client_id)));
        }
        Ok(OidcClientSecret { client_id: client.client_id.to_string(), client_secret: secret })
    }

    /// Deletes the client (needs `warden:oidc_clients:write`).
    pub async fn delete(&self, actor: &Principal, client_id: &str) -> Result<()> {
        actor.require(Permission::OidcClientsWrite)?;
        let client = self.existing(client_id).await?;
        let action = Action::OidcClientDelete { id: client.id, client: client.client_id.clone() };
        let change = Change::new(self.ctx.now(), Some(&actor.account), action, None);
        if !self.ctx.store.delete_oidc_client(&change, client.id).await? {
            return Err(ServiceError::NotFound(format!("OIDC client {}", client.client_id)));
        }
        Ok(())
    }

    async fn existing(&self, client_id: &str) -> Result<OidcClient> {
        let name = parse_id("client_id", client_id)?;
        self.ctx.store.oidc_client(name.as_str()).await?.ok_or_else(|| ServiceError::NotFound(format!("OIDC client {name}")))
    }

    /// The tenant the `permissions` claim is computed in, which must exist; empty clears it.
    async fn tenant(&self, raw: Option<&str>) -> Result<Option<Name>> {
        let Some(raw) = raw.map(str::trim).filter(|t| !t.is_empty()) else { return Ok(None) };
        let tenant = parse_id("permissions_tenant", raw)?;
        if self.ctx.store.tenant(&tenant).await?.is_none() {
            return Err(ServiceError::NotFound(format!("tenant {tenant}")));
        }
        Ok(Some(tenant))
    }

    /// The service account a confidential client acts as; empty clears it. The client's secret
    /// will act with the account's rights, so the rules for giving the account an API token
    /// hold: never a break-glass account, and one with power over Warden only by an
    /// idm_superuser.
    async fn service_account(&self, actor: &Principal, raw: Option<&str>, public: bool) -> Result<Option<Subject>> {
        let Some(raw) = raw.map(str::trim).filter(|a| !a.is_empty()) else { return Ok(None) };
        if public {
            return Err(
                CoreError::validation("service_account", "a public client cannot act as a service account (it has no secret)").into()
            );
        }
        let key = NameOrId::parse(raw).map_err(|e| CoreError::validation("service_account", e.to_string()))?;
        let account = self.ctx.store.service_account(&key).await?;
        let account = account.ok_or_else(|| ServiceError::NotFound(format!("service account {raw}")))?.subject();
        crate::services::directory::protect(
            &account,
            "tied to an OIDC client: it signs in with the password that wardend recover-account sets",
        )?;
        crate::services::directory::Directory::guard_privileged(actor, &account)?;
        Ok(Some(account))
    }
}

fn display_name(raw: Option<&str>, client_id: &Name) -> Result<String> {
    let Some(raw) = raw else { return Ok(client_id.to_string()) };
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > MAX_DISPLAY_NAME || name.chars().any(char::is_control) {
        return Err(CoreError::validation("display_name", format!("must be 1 to {MAX_DISPLAY_NAME} printable characters")).into());
    }
    Ok(name.to_owned())
}

fn signing_alg(raw: Option<&str>) -> Result<SigningAlg> {
    Ok(raw.map(str::trim).filter(|a| !a.is_empty()).map(SigningAlg::parse).transpose()?.unwrap_or_default())
}

fn namespace(raw: Option<&str>) -> Result<Option<String>> {
    let Some(raw) = raw.map(str::trim).filter(|n| !n.is_empty()) else { return Ok(None) };
    let parsed = Namespace::parse(raw).map_err(|e| match e {
        CoreError::Validation { reason, .. } => CoreError::validation("permissions_namespace", reason),
        other => other,
    })?;
    Ok(Some(parsed.as_str().to_owned()))
}

/// The names of the fields that differ between `old` and `new`, for the audit event.
fn changed_fields(old: &OidcClient, new: &OidcClient) -> Vec<String> {
    let fields = [
        ("display_name", old.display_name != new.display_name),
        ("first_party", old.first_party != new.first_party),
        ("redirect_uris", old.redirect_uris != new.redirect_uris),
        ("post_logout_redirect_uris", old.post_logout_redirect_uris != new.post_logout_redirect_uris),
        ("scopes", old.scopes != new.scopes),
        ("claims", old.claims != new.claims),
        ("permissions_tenant", old.permissions_tenant != new.permissions_tenant),
        ("permissions_namespace", old.permissions_namespace != new.permissions_namespace),
        ("signing_alg", old.signing_alg != new.signing_alg),
        ("service_account", old.service_account.as_ref().map(|a| a.id) != new.service_account.as_ref().map(|a| a.id)),
    ];
    fields.into_iter().filter(|(_, changed)| *changed).map(|(name, _)| name.to_owned()).collect()
}
