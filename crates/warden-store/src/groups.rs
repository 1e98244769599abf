//! Groups and their members, and the subjects (accounts or groups) that membership and
//! bindings name.

use async_trait::async_trait;
use uuid::Uuid;
use warden_core::Name;
use warden_core::api::{MemberEntry, Page};
use warden_core::model::{Group, NameOrId, Subject, SubjectKind};

use crate::{Change, ListQuery, Result};

#[async_trait]
pub trait Groups: Send + Sync {
    async fn create_group(&self, change: &Change, group: &Group) -> Result<Group>;
    async fn group(&self, key: &NameOrId) -> Result<Option<Group>>;
    async fn list_groups(&self, query: &ListQuery) -> Result<Page<Group>>;
    async fn delete_group(&self, change: &Change, id: Uuid) -> Result<u64>;
    /// Adds members to a group in one transaction (one audit event each); members already
    /// there are skipped. Returns how many were added.
    async fn add_members(&self, changes: &[Change], group: &Subject, members: &[Subject]) -> Result<u64>;
    async fn remove_member(&self, change: &Change, group: Uuid, member: &Subject) -> Result<bool>;
    /// Direct members, or with `effective` every subject reachable through nesting.
    async fn members(&self, group: Uuid, effective: bool, query: &ListQuery) -> Result<Page<MemberEntry>>;
    /// Every subject with this name, across kinds (for resolving bare member names).
    async fn subjects_named(&self, name: &Name) -> Result<Vec<Subject>>;
    async fn subject_by_id(&self, kind: Option<SubjectKind>, id: Uuid) -> Result<Option<Subject>>;
}
