//! Registration: people creating their own accounts, where `[registration] mode` allows it.
//!
//! In `token` mode a registration needs a registration token (`wdo_…`, 256 random bits, kept
//! only hashed) that an administrator created with a number of uses, a lifetime and the roles
//! each registered user gets. A use is taken by one conditional update inside the write that
//! creates the user and binds the roles, so a token with `n` uses registers at most `n`
//! people however many try at once. Unknown, expired, used-up and revoked tokens get one
//! answer, [`ServiceError::TokenInvalid`]. In `public` mode anyone may register and no role is
//! bound. A token can carry an administrative role only if an idm_superuser created it.

use std::net::IpAddr;

use time::Duration;
use uuid::Uuid;
use warden_core::access::{Permission, Principal};
use warden_core::api::{CreateRegistrationToken, CreateUser, CreatedRegistrationToken, RegisterRequest, RegistrationTokenInfo};
use warden_core::authz::RoleSource;
use warden_core::credential::{self, TokenHash, TokenKind, parse_duration_secs};
use warden_core::model::{self, EmailAddress, EmailInput, EmailSource, User};
use warden_core::{CoreError, Name};
use warden_store::{Action, Change, Registration, RegistrationToken};

use crate::config::RegistrationMode;
use crate::services::access::{Access, tenant_of};
use crate::services::auth::random_token;
use crate::services::authn::email_verification::verification_mails;
use crate::services::client_limit::ClientLimit;
use crate::services::directory::{Directory, new_bindings};
use crate::services::{Context, Result, ServiceError};

/// A token's lifetime unless the request names one.
const DEFAULT_TTL_SECS: i64 = 24 * 3600;
/// The longest lifetime a token may have.
const MAX_TTL_SECS: i64 = 30 * 24 * 3600;
/// The most uses one token may have.
const MAX_USES: u32 = 10_000;
/// The most roles one token may carry.
const MAX_ROLES: usize = 64;

/// Creates, lists and revokes registration tokens, and registers people.
#[derive(Clone)]
pub struct Registrations {
    ctx: Context,
    access: Access,
    directory: Directory,
    /// `auth.registration_per_client` attempts per client address and window (this node's).
    clients: ClientLimit,
}

fn info(token: &RegistrationToken) -> RegistrationTokenInfo {
    RegistrationTokenInfo {
        id: token.id,
        tenant: token.tenant.to_string(),
        roles: token.roles.iter().map(ToString::to_string).collect(),
        max_uses: token.max_uses,
        uses_left: token.uses_left,
        created_at: token.created_at,
        expires_at: token.expires_at,
        revoked_at: token.revoked_at,
        created_by: token.created_by,
    }
}

impl Registrations {
    pub fn new(ctx: Context, access: Access, directory: Directory) -> Self {
        let clients = ClientLimit::new(ctx.config.auth.registration_per_client, ctx.times.client_limit_window_secs);
        Self { ctx, access, directory, clients }
    }

    /// A new token. Needs `warden:registration:write`; each role must exist in the tenant, and
    /// a role with power over Warden needs idm_superuser (see `Access::grantable_role`).
    pub async fn create_token(&self, actor: &Principal, req: CreateRegistrationToken) -> Result<CreatedRegistrationToken> {
        let token = self.checked_token(actor, &req, DEFAULT_TTL_SECS, None).await?;
        let secret = random_token(TokenKind::OneTime)?;
        let action = Action::RegistrationTokenCreate {
            token_id: token.id,
            tenant: token.tenant.clone(),
            roles: token.roles.iter().map(ToString::to_string).collect(),
            max_uses: token.max_uses,
            expires_at: warden_core::timestamp::format(token.expires_at),
        };
        let change = Change::new(token.created_at, Some(&actor.account), action, None);
        self.ctx.store.create_registration_token(&change, &token, &TokenHash::of(secret.expose()), &[]).await?;
        Ok(CreatedRegistrationToken { token: secret, info: info(&token) })
    }

    /// A new token as `req` asks, checked (needs `warden:registration:write`; each role must
    /// exist in the tenant, and a role with power over Warden needs idm_superuser), not yet
    /// stored. `email` makes it an invitation.
    pub(crate) async fn checked_token(
        &self,
        actor: &Principal,
        req: &CreateRegistrationToken,
        default_ttl: i64,
        email: Option<String>,
    ) -> Result<RegistrationToken> {
        actor.require(Permission::RegistrationWrite)?;
        let max_uses = req.max_usage.unwrap_or(1);
        if max_uses == 0 || max_uses > MAX_USES {
            return Err(CoreError::validation("max_usage", format!("must be between 1 and {MAX_USES}")).into());
        }
        let ttl = match req.ttl.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            None => default_ttl,
            Some(text) => parse_duration_secs(text).map_err(|e| CoreError::validation("ttl", e.to_string()))?,
        };
        if ttl <= 0 || ttl > MAX_TTL_SECS {
            return Err(CoreError::validation(
                "ttl",
                format!("must be positive and at most {}", credential::format_duration(MAX_TTL_SECS)),
            )
            .into());
        }
        if req.roles.len() > MAX_ROLES {
            return Err(CoreError::validation("roles", format!("at most {MAX_ROLES} per token")).into());
        }
        let tenant = tenant_of(req.tenant.as_deref())?;
        let mut roles: Vec<Name> = Vec::with_capacity(req.roles.len());
        for reference in &req.roles {
            let role = Access::grantable_role(actor, reference, &tenant)?;
            // A token outlives its maker's review: it never hands out a built-in role (not even
            // `tenant_admin` outside `default`, which a binding manager may bind in person)
            // unless an idm_superuser made it.
            if role.source == RoleSource::BuiltIn && !actor.holds(Permission::Superuser) {
                return Err(CoreError::HighPrivilege(format!("built-in role {}", role.id)).into());
            }
            if !roles.contains(&role.id) {
                roles.push(role.id);
            }
        }
        self.access.existing_tenant(&tenant).await?;
        let now = self.ctx.now();
        Ok(RegistrationToken {
            id: Uuid::now_v7(),
            tenant,
            roles,
            max_uses,
            uses_left: max_uses,
            created_at: now,
            expires_at: now + Duration::seconds(ttl),
            revoked_at: None,
            created_by: Some(actor.account.id),
            email,
        })
    }

    pub async fn tokens(&self, actor: &Principal) -> Result<Vec<RegistrationTokenInfo>> {
        // There is no `warden:registration:read`: who may create tokens may list them.
        actor.require(Permission::RegistrationWrite)?;
        Ok(self.ctx.store.registration_tokens().await?.iter().map(info).collect())
    }

    /// Revokes a token; revoking one twice, or one that does not exist, is `NotFound`.
    pub async fn revoke_token(&self, actor: &Principal, id: Uuid) -> Result<()> {
        actor.require(Permission::RegistrationWrite)?;
        let change = Change::new(self.ctx.now(), Some(&actor.account), Action::RegistrationTokenRevoke { token_id: id }, None);
        if !self.ctx.store.revoke_registration_token(&change, id).await? {
            return Err(ServiceError::NotFound(format!("registration token {id}")));
        }
        Ok(())
    }

    /// What a registration link's page shows before the form is sent: the address an
    /// invitation is bound to (`Some(None)` for a token without one). Never uses the token.
    pub async fn check(&self, token: &str) -> Result<Option<String>> {
        let token = token.trim();
        if TokenKind::of(token) != Some(TokenKind::OneTime) {
            return Err(ServiceError::TokenInvalid);
        }
        let record = self.ctx.store.registration_token(&TokenHash::of(token)).await?;
        let record = record.filter(|r| r.is_usable(self.ctx.now())).ok_or(ServiceError::TokenInvalid)?;
        if record.email.is_none() && self.ctx.config.registration.mode != RegistrationMode::Token {
            // A plain token registers only in token mode; saying so here would help no one.
            return Err(ServiceError::TokenInvalid);
        }
        Ok(record.email)
    }

    /// Registers a new user as `registration.mode` allows, binding the token's roles.
    pub async fn register(&self, req: RegisterRequest, client: Option<IpAddr>) -> Result<User> {
        let mode = self.ctx.config.registration.mode;
        let now = self.ctx.now();
        // Every attempt counts, whatever becomes of it: a client cannot probe names, tokens or
        // passwords faster than the limit.
        self.clients.count(client, now)?;
        // An invitation (a token bound to the address it was mailed to) registers in every
        // mode: an administrator asked for this one person.
        let invitation = match req.token.as_ref().map(|t| t.expose().trim().to_owned()) {
            Some(presented) if TokenKind::of(&presented) == Some(TokenKind::OneTime) => {
                let hash = TokenHash::of(&presented);
                self.ctx.store.registration_token(&hash).await?.filter(|r| r.email.is_some()).map(|r| (hash, r))
            }
            _ => None,
        };
        if mode == RegistrationMode::Disabled && invitation.is_none() {
            return Err(ServiceError::RegistrationDisabled);
        }
        let token = match (mode, invitation) {
            (_, Some((hash, record))) => Some((hash, Some(record).filter(|r| r.is_usable(now)).ok_or(ServiceError::TokenInvalid)?)),
            (RegistrationMode::Token, None) => {
                let presented = req.token.as_ref().map(|t| t.expose().trim().to_owned()).unwrap_or_default();
                if TokenKind::of(&presented) != Some(TokenKind::OneTime) {
                    return Err(ServiceError::TokenInvalid);
                }
                let hash = TokenHash::of(&presented);
                let record = self.ctx.store.registration_token(&hash).await?;
                Some((hash, record.filter(|r| r.is_usable(now)).ok_or(ServiceError::TokenInvalid)?))
            }
            // Public mode takes no token (and ignores none: a token sent there grants nothing).
            (RegistrationMode::Public | RegistrationMode::Disabled, None) => None,
        };
        let request = CreateUser {
            name: req.name,
            display_name: req.display_name,
            first_name: req.first_name,
            last_name: req.last_name,
            emails: req.email.into_iter().map(EmailInput::Plain).collect(),
            ..CreateUser::default()
        };
        // The address is the registrant's word only: unverified until they follow a mailed link.
        let (mut user, _) = self.directory.prepare_user(request, EmailSource::Owner).await?;
        // An invitation's address is the one it was mailed to: primary and verified.
        if let Some(invited) = token.as_ref().and_then(|(_, t)| t.email.clone()) {
            user.profile.emails = model::checked_emails(vec![EmailAddress { address: invited, primary: true, verified: true }])?;
        }
        self.ctx.check_new_password("password", &req.password, user.name.as_str(), &user.profile.emails)?;
        let password_hash = self.ctx.hasher.hash(&req.password).await?;
        user.has_password = true;
        let subject = user.subject();
        let roles: Vec<(Name, Name)> =
            token.as_ref().map(|(_, t)| t.roles.iter().map(|r| (r.clone(), t.tenant.clone())).collect()).unwrap_or_default();
        // A claimed address is mailed a link to verify it, in the same transaction.
        let claimed: Vec<String> = user.profile.emails.iter().filter(|e| !e.verified).map(|e| e.address.clone()).collect();
        let mails = verification_mails(&self.ctx, user.id, &claimed, now);
        let action = Action::UserRegister {
            token_id: token.as_ref().map(|(_, t)| t.id),
            client: client.map(|ip| ip.to_string()),
            password: true,
            emails_to_verify: u32::try_from(claimed.len()).unwrap_or(u32::MAX),
        };
        // The new user is the actor of its own registration and of the bindings it brings.
        let change = Change::new(now, Some(&subject), action, Some(&subject));
        let registration = Registration {
            bindings: new_bindings(&subject, &roles, now, Some(&subject)),
            user: user.clone(),
            password_hash: Some(password_hash),
            token: token.map(|(hash, _)| hash),
            mails,
        };
        if !self.ctx.store.register(&change, &registration).await? {
            // The token was used up, revoked or expired since it was read.
            return Err(ServiceError::TokenInvalid);
        }
        self.ctx.committed(&change);
        self.ctx.refreshed(user).await
    }
}
