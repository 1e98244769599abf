//! Ory Kratos' admin calls on Warden's directory: an identity is a user. The mapping rules are
//! [`warden_core::kratos`]'s; this module only finds a free name and calls [`Directory`] and
//! [`RecoveryLinks`], which check access, validate and audit as for the native calls.

use uuid::Uuid;
use warden_core::access::{Permission, Principal};
use warden_core::api::{CreateUser, Page};
use warden_core::builtin::is_built_in_name;
use warden_core::kratos::{self, CreateIdentity, Identity, IdentityState, PersonName, RecoveryLinkResponse, Traits};
use warden_core::model::{EmailInput, NameOrId, PhoneInput};
use warden_core::{CoreError, Name};
use warden_store::StoreError;

use crate::services::authn::recovery_link::RecoveryLinks;
use crate::services::directory::{Directory, ListRequest};
use crate::services::{Context, Result, ServiceError};

/// How many names of the sequence `base`, `base-2`, … are tried before giving up.
const MAX_NAME_ATTEMPTS: u32 = 1000;

#[derive(Clone)]
pub struct KratosCompat {
    ctx: Context,
    directory: Directory,
    recovery: RecoveryLinks,
}

impl KratosCompat {
    pub fn new(ctx: Context, directory: Directory, recovery: RecoveryLinks) -> Self {
        Self { ctx, directory, recovery }
    }

    /// Creates the user an identity describes. With `traits.username` the name is that one (a
    /// taken name is `name.taken`); without, the first free name of `base`, `base-2`, `base-3`,
    /// … where `base` comes from the e-mail address ([`kratos::name_base`]). A name is free when
    /// no account holds it and it is not one of Warden's own.
    pub async fn create(&self, actor: &Principal, req: CreateIdentity) -> Result<Identity> {
        // Refused before anything is looked up: who may not create users learns no names.
        actor.require(Permission::UsersWrite)?;
        kratos::check_schema_id(&req.schema_id)?;
        let traits = kratos::traits_from_json(&req.traits)?;
        let disabled = req.state == Some(IdentityState::Inactive);
        let password = req.credentials.and_then(|c| c.password).and_then(|p| p.config.password);
        let template = user_of(traits.clone(), password);
        if let Some(name) = traits.username {
            let user = self.directory.create_user_in_state(actor, CreateUser { name: name.to_string(), ..template }, &[], disabled).await?;
            return Ok(kratos::identity_of(&user));
        }
        let base = kratos::name_base(&traits.email);
        for n in 1..=MAX_NAME_ATTEMPTS {
            let name = kratos::name_candidate(&base, n)?;
            if !self.is_free(&name).await? {
                continue;
            }
            let req = CreateUser { name: name.to_string(), ..template.clone() };
            match self.directory.create_user_in_state(actor, req, &[], disabled).await {
                // Taken between the look-up and the insert: on to the next name.
                Err(ServiceError::Store(StoreError::NameTaken(_))) => {}
                result => return Ok(kratos::identity_of(&result?)),
            }
        }
        Err(StoreError::NameTaken(format!("{base} (and {base}-2 to {base}-{MAX_NAME_ATTEMPTS})")).into())
    }

    async fn is_free(&self, name: &Name) -> Result<bool> {
        if is_built_in_name(name.as_str()) {
            return Ok(false);
        }
        Ok(self.ctx.store.account(&NameOrId::Name(name.clone()), self.ctx.now()).await?.is_none())
    }

    pub async fn get(&self, actor: &Principal, id: Uuid) -> Result<Identity> {
        Ok(kratos::identity_of(&self.directory.user(actor, &NameOrId::Id(id)).await?))
    }

    /// A page of identities, in the order of the users' names; `page_token` is the native
    /// list's cursor.
    pub async fn list(&self, actor: &Principal, page_size: Option<u32>, page_token: Option<String>) -> Result<Page<Identity>> {
        let limit = page_size.unwrap_or(kratos::DEFAULT_PAGE_SIZE);
        if !(1..=warden_core::api::MAX_PAGE_SIZE).contains(&limit) {
            return Err(CoreError::validation("page_size", format!("must be between 1 and {}", warden_core::api::MAX_PAGE_SIZE)).into());
        }
        let req = ListRequest { prefix: None, cursor: page_token, limit: Some(limit) };
        let page = self.directory.list_users(actor, &req).await?;
        Ok(Page { items: page.items.iter().map(kratos::identity_of).collect(), next_cursor: page.next_cursor })
    }

    /// The identities `identifier` signs in as: the user of that name, and the users whose
    /// verified primary e-mail address it is (Kratos' `credentials_identifier` filter).
    pub async fn find(&self, actor: &Principal, identifier: &str) -> Result<Vec<Identity>> {
        actor.require(Permission::UsersRead)?;
        let mut names: Vec<Name> = Name::parse(identifier).ok().into_iter().collect();
        names.extend(self.ctx.store.users_with_primary_email(identifier.trim()).await?);
        let mut found: Vec<Identity> = Vec::new();
        for name in names {
            if let Some(user) = self.ctx.store.user(&NameOrId::Name(name)).await?
                && !found.iter().any(|i| i.id == user.id)
            {
                found.push(kratos::identity_of(&user));
            }
        }
        Ok(found)
    }

    pub async fn delete(&self, actor: &Principal, id: Uuid) -> Result<()> {
        self.directory.delete_user(actor, &NameOrId::Id(id)).await
    }

    /// The admin recovery link of the identity's user, with the native call's rules.
    pub async fn recovery_link(&self, actor: &Principal, id: Uuid, expires_in: Option<&str>) -> Result<RecoveryLinkResponse> {
        let link = self.recovery.issue(actor, &NameOrId::Id(id), expires_in).await?;
        Ok(RecoveryLinkResponse { recovery_link: link.url, expires_at: link.expires_at })
    }
}

/// The native create request for `traits` (its name left to the caller).
fn user_of(traits: Traits, password: Option<warden_core::credential::Secret>) -> CreateUser {
    let (first_name, last_name, display_name) = match traits.name {
        Some(PersonName::Parts { first, last }) => (first, last, None),
        Some(PersonName::Display(display)) => (None, None, Some(display)),
        None => (None, None, None),
    };
    CreateUser {
        name: String::new(),
        first_name,
        last_name,
        display_name,
        emails: vec![EmailInput::Plain(traits.email)],
        phones: traits.phone.map(PhoneInput::Plain).into_iter().collect(),
        password,
        ..CreateUser::default()
    }
}
