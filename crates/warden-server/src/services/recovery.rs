//! What only the server host may do: give `admin` or `idm_admin` a fresh random password
//! (ending their sessions), and make an account an idm_superuser or stop it being one (the
//! root of every other administrative right). Reached only through the local control socket
//! (or with the database opened directly while the server is stopped), never over the network.

use warden_core::CoreError;
use warden_core::model::{BREAK_GLASS, NameOrId};
use warden_store::{Action, Change};

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
    // Long enough for the configured minimum; random, so it meets the rest of the policy
    // (a unit test of `generate_password` checks it against the default).
    let password = generate_password(ctx.passwords.min_length())?;
    let hash = ctx.hasher.hash(&password).await?;
    let change = Change::new(now, None, Action::AccountRecover { via: "host".into() }, Some(&owner.subject));
    ctx.store.set_password_hash(&change, owner.subject.id, &hash, true).await?;
    // The host is trusted: its operator can sign in at once, even if someone was guessing.
    ctx.store.forget_login_attempts(&warden_core::throttle::ThrottleKey::name(account)).await?;
    ctx.authz.refresh().await?;
    Ok(password)
}

/// Adds `account` to `idm_superusers` (or removes it), as the host.
pub async fn set_superuser(ctx: &Context, account: &str, grant: bool) -> Result<&'static str> {
    let name = warden_core::Name::parse(account)?;
    let now = ctx.now();
    ctx.store.ensure_builtins(now).await?;
    let owner = ctx.store.account(&NameOrId::Name(name), now).await?.ok_or_else(|| ServiceError::NotFound(format!("account {account}")))?;
    let group = warden_core::model::Subject {
        kind: warden_core::model::SubjectKind::Group,
        id: warden_core::builtin::SUPERUSERS_GROUP,
        name: warden_core::Name::from_trusted("idm_superusers".to_owned()),
    };
    let member = owner.subject;
    let (label, via) = (member.to_string(), Some("host".to_owned()));
    let outcome = if grant {
        let action = Action::MemberAdd { member: label, member_id: member.id, member_kind: member.kind, via };
        let change = Change::new(now, None, action, Some(&group));
        if ctx.store.add_members(&[change], &group, std::slice::from_ref(&member)).await? > 0 { "added to" } else { "already in" }
    } else {
        let action = Action::MemberRemove { member: label, member_id: member.id, member_kind: member.kind, via };
        let change = Change::new(now, None, action, Some(&group));
        if ctx.store.remove_member(&change, group.id, &member).await? { "removed from" } else { "not in" }
    };
    ctx.authz.refresh().await?;
    Ok(outcome)
}
