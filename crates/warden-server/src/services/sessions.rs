//! Sessions as their owners and operators see them: the sessions and API tokens that can
//! sign an account in, where each came from and how strongly it was proved, and ending them.
//!
//! Nothing here ever shows a token or its hash. An ended session leaves this node's
//! credential cache before the answer ([`Context::refreshed`]) and every other node's with
//! the revision its event takes (`Action::SessionRevoke` → `CredentialEffect::Credential`).
//! A person may end their own sessions on a read-only session, as a logout is: it only takes
//! access away. Someone else's id is "not found", never "forbidden", so ids reveal nothing. An
//! API token may end only itself through the self routes.

use time::OffsetDateTime;
use uuid::Uuid;
use warden_core::CoreError;
use warden_core::access::{AuthMethod, Permission, Principal};
use warden_core::api::{CredentialKind, Page, SessionInfo, SessionsRevoked};
use warden_core::model::{ApiToken, NameOrId, Subject, SubjectKind};
use warden_store::{Action, Change, SessionListing};

use super::directory::Directory;
use super::{Context, Result, ServiceError};

/// Filters of an operator's listing, as the API receives them.
#[derive(Debug, Clone, Default)]
pub struct SessionsRequest {
    pub user: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

#[derive(Clone)]
pub struct Sessions {
    ctx: Context,
}

impl Sessions {
    pub fn new(ctx: Context) -> Self {
        Self { ctx }
    }

    // --- operators ------------------------------------------------------------------------

    /// Every live session, in id order (about the order they began), or one account's
    /// sessions and then, on the first page, its usable API tokens. Needs `users:read`
    /// (and `service_accounts:read` for a service account's).
    pub async fn list(&self, actor: &Principal, req: &SessionsRequest) -> Result<Page<SessionInfo>> {
        actor.require(Permission::UsersRead)?;
        let account = match req.user.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            Some(user) => {
                let owner = self.account(&NameOrId::parse(user)?).await?;
                if owner.kind == SubjectKind::ServiceAccount {
                    actor.require(Permission::ServiceAccountsRead)?;
                }
                Some(owner)
            }
            None => None,
        };
        let after = match req.cursor.as_deref().filter(|c| !c.is_empty()) {
            Some(c) => Some(Uuid::parse_str(c).map_err(|_| CoreError::validation("cursor", "not a cursor from this list"))?),
            None => None,
        };
        let limit = match req.limit {
            None | Some(0) => warden_store::DEFAULT_PAGE,
            Some(n) => n.min(warden_core::api::MAX_PAGE_SIZE),
        };
        let rows = self.ctx.store.list_sessions(account.as_ref().map(|a| a.id), after, limit).await?;
        let next_cursor = (rows.len() == limit as usize).then(|| rows.last().map(|l| l.session.id.to_string())).flatten();
        let now = self.ctx.now();
        let current = actor.credential_id;
        let mut items: Vec<SessionInfo> =
            rows.into_iter().filter(|l| l.session.is_live(now)).map(|l| session_info(l, now, current)).collect();
        if let (Some(owner), None) = (&account, after) {
            items.extend(self.tokens_of(owner, now, current).await?);
        }
        Ok(Page { items, next_cursor })
    }

    /// Ends one session or API token, whoever's it is. Needs `credentials:write` (and
    /// `service_accounts:write` for a service account's token); an administrator's only an
    /// idm_superuser may end (the high-privilege guard).
    pub async fn revoke(&self, actor: &Principal, id: Uuid) -> Result<()> {
        actor.require(Permission::CredentialsWrite)?;
        if let Some(listing) = self.ctx.store.session_by_id(id).await? {
            Directory::guard_privileged(actor, &listing.account)?;
            return self.end_session(actor, &listing.account, id).await;
        }
        if let Some(token) = self.ctx.store.api_token_by_id(id).await?.filter(|t| t.revoked_at.is_none()) {
            let owner = self.account(&NameOrId::Id(token.account_id)).await?;
            if owner.kind == SubjectKind::ServiceAccount {
                actor.require(Permission::ServiceAccountsWrite)?;
            }
            Directory::guard_privileged(actor, &owner)?;
            return self.end_token(actor, &owner, id).await;
        }
        Err(not_found(id))
    }

    /// Ends every session of an account (its API tokens stay: they are revoked one by one).
    pub async fn revoke_all(&self, actor: &Principal, key: &NameOrId) -> Result<SessionsRevoked> {
        actor.require(Permission::CredentialsWrite)?;
        let owner = self.account(key).await?;
        Directory::guard_privileged(actor, &owner)?;
        let change = Change::new(self.ctx.now(), Some(&actor.account), Action::SessionRevokeAll { sessions_ended: 0 }, Some(&owner));
        let sessions_ended = self.ctx.store.delete_account_sessions(&change, owner.id).await?;
        self.ctx.refreshed(SessionsRevoked { sessions_ended }).await
    }

    // --- their owner ----------------------------------------------------------------------

    /// The caller's own live sessions and usable API tokens; the one it called with is
    /// `current`. Needs no permission.
    pub async fn list_own(&self, actor: &Principal) -> Result<Page<SessionInfo>> {
        let now = self.ctx.now();
        let current = actor.credential_id;
        let mut items = Vec::new();
        let mut after = None;
        loop {
            let rows = self.ctx.store.list_sessions(Some(actor.account.id), after, warden_core::api::MAX_PAGE_SIZE).await?;
            let full = rows.len() == warden_core::api::MAX_PAGE_SIZE as usize;
            after = rows.last().map(|l| l.session.id);
            items.extend(rows.into_iter().filter(|l| l.session.is_live(now)).map(|l| session_info(l, now, current)));
            if !full {
                break;
            }
        }
        items.extend(self.tokens_of(&actor.account, now, current).await?);
        Ok(Page { items, next_cursor: None })
    }

    /// Ends one of the caller's own sessions or API tokens (the current one too, as a logout).
    /// An API token may end only itself here: a token handed to one job must not be able to
    /// end its account's other credentials (that takes `service_accounts:write`).
    pub async fn revoke_own(&self, actor: &Principal, id: Uuid) -> Result<()> {
        if actor.method == AuthMethod::ApiToken && actor.credential_id != Some(id) {
            return Err(ServiceError::TokenScope(
                "an API token ends only itself through /self/sessions; ending another credential of the account needs \
                 warden:service_accounts:write (DELETE /api/v1/sessions/{id})"
                    .into(),
            ));
        }
        let own = &actor.account;
        if self.ctx.store.session_by_id(id).await?.is_some_and(|l| l.account.id == own.id) {
            return self.end_session(actor, own, id).await;
        }
        let token = self.ctx.store.api_token_by_id(id).await?;
        if token.is_some_and(|t| t.account_id == own.id && t.revoked_at.is_none()) {
            return self.end_token(actor, own, id).await;
        }
        Err(not_found(id))
    }

    // --- shared ---------------------------------------------------------------------------

    async fn account(&self, key: &NameOrId) -> Result<Subject> {
        let owner = self.ctx.store.account(key, self.ctx.now()).await?;
        owner.map(|o| o.subject).ok_or_else(|| ServiceError::NotFound(format!("account {key}")))
    }

    async fn tokens_of(&self, owner: &Subject, now: OffsetDateTime, current: Option<Uuid>) -> Result<Vec<SessionInfo>> {
        let tokens = self.ctx.store.list_api_tokens(owner.id).await?;
        Ok(tokens.into_iter().filter(|t| t.is_usable(now)).map(|t| token_info(t, owner, current)).collect())
    }

    async fn end_session(&self, actor: &Principal, owner: &Subject, id: Uuid) -> Result<()> {
        let change = Change::new(self.ctx.now(), Some(&actor.account), Action::SessionRevoke { session_id: id }, Some(owner));
        if !self.ctx.store.delete_session(&change, id).await? {
            return Err(not_found(id)); // ended meanwhile (logout, purge, another revocation)
        }
        self.ctx.refreshed(()).await
    }

    async fn end_token(&self, actor: &Principal, owner: &Subject, id: Uuid) -> Result<()> {
        let change = Change::new(self.ctx.now(), Some(&actor.account), Action::ApiTokenRevoke { token_id: id }, Some(owner));
        if !self.ctx.store.revoke_api_token(&change, owner.id, id).await? {
            return Err(not_found(id));
        }
        self.ctx.refreshed(()).await
    }
}

fn not_found(id: Uuid) -> ServiceError {
    ServiceError::NotFound(format!("session or API token {id}"))
}

fn session_info(listing: SessionListing, now: OffsetDateTime, current: Option<Uuid>) -> SessionInfo {
    let SessionListing { session, account } = listing;
    SessionInfo {
        id: session.id,
        kind: CredentialKind::Session,
        account,
        created_at: session.created_at,
        last_used_at: Some(session.last_seen_at),
        expires_at: Some(session.expires_at),
        ends_at: Some(session.ends_at()),
        elevated_until: session.elevated_until.filter(|until| now < *until),
        client: session.client,
        user_agent: session.user_agent,
        auth_strength: session.auth_strength.as_str().to_owned(),
        label: None,
        current: current == Some(session.id),
    }
}

fn token_info(token: ApiToken, owner: &Subject, current: Option<Uuid>) -> SessionInfo {
    SessionInfo {
        id: token.id,
        kind: CredentialKind::ApiToken,
        account: owner.clone(),
        created_at: token.created_at,
        last_used_at: token.last_used_at,
        expires_at: token.expires_at,
        ends_at: token.expires_at,
        elevated_until: None,
        client: None,
        user_agent: None,
        auth_strength: "api_token".to_owned(),
        label: token.label,
        current: current == Some(token.id),
    }
}
