//! The caller's own preferences per tenant (docs/api.md, "Preferences"). Any authenticated
//! account reads and replaces its own, and only its own: the account is the caller's, never a
//! parameter. They grant nothing, so a read-only session may change them (unlike a rename of
//! oneself, which changes what identity headers and logs say and needs an elevated session);
//! a read-only API token may not, since its holder declared it read-only.

use warden_core::Name;
use warden_core::access::{AuthMethod, Principal};
use warden_core::preferences::TenantPreferences;
use warden_store::{Action, Change};

use super::{Context, Result, ServiceError};

#[derive(Clone)]
pub struct PreferencesService {
    ctx: Context,
}

impl PreferencesService {
    pub fn new(ctx: Context) -> Self {
        Self { ctx }
    }

    /// The tenant a path names; one that does not exist (or cannot, by its spelling) is
    /// `not_found`.
    async fn tenant(&self, raw: &str) -> Result<Name> {
        let missing = || ServiceError::NotFound(format!("tenant {raw:?}"));
        let name = Name::parse(raw).map_err(|_| missing())?;
        self.ctx.store.tenant(&name).await?.ok_or_else(missing)?;
        Ok(name)
    }

    /// The caller's preferences in `tenant`: an empty document when none are stored.
    pub async fn get(&self, actor: &Principal, tenant: &str) -> Result<TenantPreferences> {
        let tenant = self.tenant(tenant).await?;
        let stored = self.ctx.store.preferences(actor.account.id, &tenant).await?;
        Ok(stored.map(|s| s.preferences).unwrap_or_default())
    }

    /// Replaces the caller's preferences in `tenant` with `preferences`, checked.
    pub async fn set(&self, actor: &Principal, tenant: &str, preferences: TenantPreferences) -> Result<TenantPreferences> {
        if !actor.elevated && actor.method != AuthMethod::Session {
            return Err(ServiceError::TokenScope("a read-only API token cannot change preferences".into()));
        }
        let tenant = self.tenant(tenant).await?;
        let preferences = preferences.validate()?;
        let change =
            Change::new(self.ctx.now(), Some(&actor.account), Action::PreferencesSet { tenant: tenant.clone() }, Some(&actor.account));
        self.ctx.store.set_preferences(&change, actor.account.id, &tenant, &preferences).await?;
        Ok(preferences)
    }
}
