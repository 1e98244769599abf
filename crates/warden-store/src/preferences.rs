//! Preferences: one JSON document per account and tenant, replaced whole. A write is an
//! audited change that takes no revision (it touches neither the authorization snapshot nor
//! any credential); the rows go with their account and with their tenant (`ON DELETE
//! CASCADE`).

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;
use warden_core::Name;
use warden_core::preferences::TenantPreferences;

use crate::{Change, Result};

/// A stored document and when it was last replaced.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPreferences {
    pub preferences: TenantPreferences,
    pub updated_at: OffsetDateTime,
}

#[async_trait]
pub trait Preferences: Send + Sync {
    /// The account's preferences in `tenant`, if it stored any.
    async fn preferences(&self, account: Uuid, tenant: &Name) -> Result<Option<StoredPreferences>>;
    /// Replaces the account's preferences in `tenant` (at `change.at`), with `change`'s audit
    /// event. An account or tenant that does not exist is [`crate::StoreError::NotFound`].
    async fn set_preferences(&self, change: &Change, account: Uuid, tenant: &Name, preferences: &TenantPreferences) -> Result<()>;
}
