//! The audit log as a reader sees it, and the one write that is nothing but an event. Every
//! other write records its own event in its own transaction.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;
use warden_core::api::Page;
use warden_core::model::AuditEvent;

use crate::{Change, Result};

/// Filters of the audit log.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub actor_id: Option<Uuid>,
    pub actor_name: Option<String>,
    pub target_id: Option<Uuid>,
    pub target_name: Option<String>,
    pub action_prefix: Option<String>,
    pub since: Option<OffsetDateTime>,
    /// Events older than this sequence number (the cursor).
    pub before_seq: Option<i64>,
    pub limit: u32,
}

#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Records an event that changes nothing else (a failed login, a host recovery notice).
    async fn record(&self, change: &Change) -> Result<()>;
    async fn audit(&self, query: &AuditQuery) -> Result<Page<AuditEvent>>;
}
