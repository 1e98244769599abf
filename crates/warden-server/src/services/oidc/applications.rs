//! Connected applications: the clients a person signed in to through the provider, what they
//! allowed each, and disconnecting one.
//!
//! Disconnecting withdraws the consent (the next sign-in asks again) and revokes every grant
//! the client holds for the person, in one audited write (`oidc.consent.withdraw`); its
//! effect makes every node forget the account's cached credentials, so the grants' access
//! tokens stop passing introspection and userinfo everywhere, and their refresh tokens are
//! refused. A person manages their own applications with no permission (as their sessions);
//! an administrator reads anyone's with `warden:users:read` and disconnects with
//! `warden:credentials:write`.

use std::collections::BTreeMap;

use uuid::Uuid;
use warden_core::access::{Permission, Principal};
use warden_core::api::{ApplicationGrant, ApplicationWithdrawn, ConnectedApplication};
use warden_core::model::{NameOrId, Subject, SubjectKind};
use warden_core::oidc::OidcClient;
use warden_store::{Action, Change};

use super::provider::Provider;
use crate::services::directory::Directory;
use crate::services::{Result, ServiceError};

/// Whose applications: the caller's own, or an account an administrator names.
#[derive(Debug, Clone, Copy)]
pub enum Owner<'a> {
    Caller,
    Account(&'a NameOrId),
}

impl Provider {
    /// The owner's connected applications, by `client_id`: every client with a consent or a
    /// live grant.
    pub async fn applications(&self, actor: &Principal, owner: Owner<'_>) -> Result<Vec<ConnectedApplication>> {
        let owner = self.owner(actor, owner, Permission::UsersRead).await?;
        let now = self.ctx.now();
        let clients: BTreeMap<Uuid, OidcClient> = self.ctx.store.oidc_clients().await?.into_iter().map(|c| (c.id, c)).collect();
        // By `client_id`, so the list comes out in its order.
        let mut apps: BTreeMap<String, ConnectedApplication> = BTreeMap::new();
        for consent in self.ctx.store.oidc_consents_of(owner.id).await? {
            let Some(client) = clients.get(&consent.client) else { continue };
            let app = connected(&mut apps, client);
            app.consented_scopes = consent.scopes;
            app.consented_at = Some(consent.granted_at);
        }
        for grant in self.ctx.store.oidc_grants_of(owner.id, now).await? {
            let Some(client) = clients.get(&grant.client) else { continue };
            connected(&mut apps, client).grants.push(ApplicationGrant {
                id: grant.id,
                session_id: grant.session,
                scopes: grant.scopes,
                auth_strength: grant.auth_strength.as_str().to_owned(),
                created_at: grant.created_at,
                expires_at: grant.expires_at,
            });
        }
        Ok(apps.into_values().collect())
    }

    /// Disconnects `client_id` from the owner: withdraws the consent and revokes its grants.
    /// A client the owner is not connected to (or no such client) is `NotFound`, in the same
    /// words either way.
    pub async fn withdraw(&self, actor: &Principal, owner: Owner<'_>, client_id: &str) -> Result<ApplicationWithdrawn> {
        let owner = self.owner(actor, owner, Permission::CredentialsWrite).await?;
        let not_connected = || ServiceError::NotFound(format!("application {client_id} of {}", owner.name));
        let client = self.ctx.store.oidc_client(client_id).await?.ok_or_else(not_connected)?;
        let action = Action::OidcConsentWithdraw { client: client.client_id.clone(), grants_revoked: 0 };
        let change = Change::new(self.ctx.now(), Some(&actor.account), action, Some(&owner));
        let grants_revoked = self.ctx.store.withdraw_oidc_consent(&change, owner.id, client.id).await?.ok_or_else(not_connected)?;
        // This node forgets at once; the others with the revision.
        self.ctx.authz.oidc.forget_account(owner.id);
        self.ctx.refreshed(ApplicationWithdrawn { client_id: client.client_id.to_string(), grants_revoked }).await
    }

    /// The account whose applications these are: the caller, or (with `permission`) an
    /// account an administrator names; an administrative account only by a superuser.
    async fn owner(&self, actor: &Principal, owner: Owner<'_>, permission: Permission) -> Result<Subject> {
        let Owner::Account(key) = owner else { return Ok(actor.account.clone()) };
        actor.require(permission)?;
        let found = self.ctx.store.account(key, self.ctx.now()).await?.map(|o| o.subject);
        let subject = found.ok_or_else(|| ServiceError::NotFound(format!("account {key}")))?;
        if subject.kind == SubjectKind::ServiceAccount {
            actor.require(Permission::ServiceAccountsRead)?;
        }
        if permission.is_write() {
            Directory::guard_privileged(actor, &subject)?;
        }
        Ok(subject)
    }
}

fn connected<'a>(apps: &'a mut BTreeMap<String, ConnectedApplication>, client: &OidcClient) -> &'a mut ConnectedApplication {
    apps.entry(client.client_id.to_string()).or_insert_with(|| ConnectedApplication {
        client_id: client.client_id.to_string(),
        display_name: client.display_name.clone(),
        first_party: client.first_party,
        consented_scopes: Vec::new(),
        consented_at: None,
        grants: Vec::new(),
    })
}
