//! Break-glass recovery, run on the server host: gives `admin` or `idm_admin` a fresh random
//! password and ends their sessions. Reached only through the local control socket (or with
//! the database opened directly while the server is stopped), never over the network.

use serde_json::json;
use warden_core::CoreError;
use warden_core::model::{BREAK_GLASS, NameOrId};
use warden_store::Change;

use super::{Context, Result, ServiceError};
use crate::password::generate_password;

/// Sets a new random password on a break-glass account and returns it.
pub async fn recover_account(ctx: &Context, account: &str) -> Result<warden_core::credential::Secret> {
    let Some((id, _, _)) = BREAK_GLASS.iter().find(|(_, name, _)| *name == account) else {
        return Err(CoreError::validation("account", format!("only admin and idm_admin can be recovered, not {account:?}")).into());
    };
    let now = ctx.now();
    ctx.store.ensure_builtins(now).await?;
    let owner = ctx.store.account(&NameOrId::Id(*id), now).await?.ok_or_else(|| ServiceError::NotFound(account.to_owned()))?;
    let password = generate_password()?;
    let hash = ctx.hasher.hash(&password).await?;
    let change = Change::new(now, None, "account.recover", Some(&owner.subject)).with_details(json!({ "via": "host" }));
    ctx.store.set_password_hash(&change, owner.subject.id, &hash, true).await?;
    ctx.authz.refresh().await?;
    Ok(password)
}
