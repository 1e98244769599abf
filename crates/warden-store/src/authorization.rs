//! Authorization: tenants, dynamic roles and bindings, and what the authorization index is
//! built and kept current from (the graph snapshot, the events after a revision, the feed of
//! new revisions).

use async_trait::async_trait;
use uuid::Uuid;
use warden_core::Name;
use warden_core::authz::{Binding, DirectoryGraph, Role, Tenant};
use warden_core::model::AuditEvent;

use crate::{Change, Result};

/// Filters of a binding listing.
#[derive(Debug, Clone, Default)]
pub struct BindingFilter {
    pub subject: Option<Uuid>,
    pub role: Option<Name>,
    pub tenant: Option<Name>,
}

#[async_trait]
pub trait Authorization: Send + Sync {
    /// Everything the authorization index is built from (dynamic roles only: built-in and
    /// system roles are not stored), read in one consistent snapshot, with its revision.
    async fn graph(&self) -> Result<(i64, DirectoryGraph)>;
    /// Audit events of revisions after `revision`, oldest first.
    async fn events_since(&self, revision: i64, limit: u32) -> Result<Vec<AuditEvent>>;
    /// New revisions committed by any node, as they happen; `None` where the backend has no
    /// such feed (SQLite: one node, which knows its own commits).
    async fn revision_feed(&self) -> Result<Option<tokio::sync::mpsc::Receiver<i64>>>;
    async fn create_tenant(&self, change: &Change, tenant: &Tenant) -> Result<Tenant>;
    async fn tenants(&self) -> Result<Vec<Tenant>>;
    async fn tenant(&self, name: &Name) -> Result<Option<Tenant>>;
    /// Deletes a tenant with its roles and bindings.
    async fn delete_tenant(&self, change: &Change, name: &Name) -> Result<()>;
    async fn create_role(&self, change: &Change, role: &Role) -> Result<Role>;
    /// Replaces a dynamic role's description and permissions.
    async fn update_role(&self, change: &Change, role: &Role) -> Result<Role>;
    async fn dynamic_roles(&self) -> Result<Vec<Role>>;
    async fn dynamic_role(&self, id: &Name) -> Result<Option<Role>>;
    /// Deletes a dynamic role and its bindings; returns how many bindings went with it.
    async fn delete_role(&self, change: &Change, id: &Name) -> Result<u64>;
    async fn create_binding(&self, change: &Change, binding: &Binding) -> Result<Binding>;
    async fn bindings(&self, filter: &BindingFilter) -> Result<Vec<Binding>>;
    async fn binding(&self, id: Uuid) -> Result<Option<Binding>>;
    async fn delete_binding(&self, change: &Change, id: Uuid) -> Result<bool>;
}
