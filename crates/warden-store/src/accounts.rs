//! Accounts: users and service accounts, which share one name space, and what can be done to
//! either kind alike (look up, rename, delete).

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;
use warden_core::Name;
use warden_core::api::Page;
use warden_core::authz::Binding;
use warden_core::model::{NameOrId, Profile, ServiceAccount, User};

use crate::{Change, CredentialOwner, ListQuery, Result};

/// What a rename does with reserved names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NameReservation {
    /// Keep the name the account gives up reserved for it until then; `None`: free at once.
    pub keep_until: Option<OffsetDateTime>,
    /// Refuse ([`StoreError::NameTaken`](crate::StoreError::NameTaken)) a name that another
    /// account gave up and that is still reserved at the change's time. Self-service renames
    /// honour reservations; an administrator's rename may take such a name deliberately.
    pub honour: bool,
}

#[async_trait]
pub trait Accounts: Send + Sync {
    async fn create_user(&self, change: &Change, user: &User, password_hash: Option<&str>) -> Result<User>;
    /// Creates a user together with its first role bindings, in one transaction: the user's
    /// change and each binding's (`binding.create`) keep their own audit event and revision,
    /// and a binding that cannot be written leaves nothing written.
    async fn create_user_with_bindings(
        &self,
        change: &Change,
        user: &User,
        password_hash: Option<&str>,
        bindings: &[(Change, Binding)],
    ) -> Result<User>;
    async fn user(&self, key: &NameOrId) -> Result<Option<User>>;
    async fn list_users(&self, query: &ListQuery) -> Result<Page<User>>;
    /// Replaces the profile, validity window and disabled flag of an existing user. With
    /// `end_sessions`, every session of the user ends in the same transaction, and the event
    /// records how many in `details.sessions_ended` (a disabled or expired account must not
    /// keep sessions that enabling it again would revive).
    async fn update_user(&self, change: &Change, user: &User, end_sessions: bool) -> Result<User>;
    /// Replaces the profile of an existing user and nothing else (a person's own edit: it must
    /// not write back a disabled flag or validity window read before an administrator changed
    /// them).
    async fn update_profile(
        &self,
        change: &Change,
        user: Uuid,
        profile: &Profile,
        at: OffsetDateTime,
        mails: &[crate::QueuedMail],
    ) -> Result<()>;
    async fn create_service_account(&self, change: &Change, account: &ServiceAccount) -> Result<ServiceAccount>;
    async fn service_account(&self, key: &NameOrId) -> Result<Option<ServiceAccount>>;
    async fn list_service_accounts(&self, query: &ListQuery) -> Result<Page<ServiceAccount>>;
    /// The user or service account with this name or id.
    async fn account(&self, key: &NameOrId, at: OffsetDateTime) -> Result<Option<CredentialOwner>>;
    /// The names of the users whose primary e-mail address is `address`, compared without
    /// regard to ASCII case; at most two (one is an answer, two say it is no one's alone).
    async fn users_with_primary_email(&self, address: &str) -> Result<Vec<Name>>;
    /// Renames an account; `reservation` says what becomes of the name it gives up and whether
    /// names other accounts gave up are honoured (all checked and written in the one
    /// transaction, so a reservation and a rename cannot race).
    async fn rename_account(&self, change: &Change, id: Uuid, name: &Name, reservation: NameReservation) -> Result<()>;
    /// Deletes an account; with `keep_name_until`, its name stays reserved until then.
    async fn delete_account(&self, change: &Change, id: Uuid, keep_name_until: Option<OffsetDateTime>) -> Result<()>;
}
