//! OpenID Connect clients: registered, changed, given new secrets and deleted, each write with
//! its audit event. A confidential client's secret is stored only as its SHA-256; reading a
//! client never returns it (the hash is read on its own, by the one caller that checks it).

use async_trait::async_trait;
use uuid::Uuid;
use warden_core::credential::TokenHash;
use warden_core::oidc::OidcClient;

use crate::{Change, Result};

#[async_trait]
pub trait OidcClients: Send + Sync {
    /// Stores a new client with its secret's hash (`None` for a public client). A taken
    /// `client_id` is [`crate::StoreError::NameTaken`]; a service account that does not exist,
    /// [`crate::StoreError::NotFound`].
    async fn create_oidc_client(&self, change: &Change, client: &OidcClient, secret: Option<&TokenHash>) -> Result<()>;
    /// The client with this `client_id`.
    async fn oidc_client(&self, client_id: &str) -> Result<Option<OidcClient>>;
    /// Every client, by `client_id`.
    async fn oidc_clients(&self) -> Result<Vec<OidcClient>>;
    /// Writes `client`'s changeable fields over the row with its id; `false` (and nothing
    /// written) when there is none.
    async fn update_oidc_client(&self, change: &Change, client: &OidcClient) -> Result<bool>;
    /// Replaces a confidential client's secret; `false` (and nothing written) when there is no
    /// such client or it is public.
    async fn rotate_oidc_client_secret(&self, change: &Change, id: Uuid, secret: &TokenHash) -> Result<bool>;
    /// The hash of the client's secret (`None`: no such client, or a public one).
    async fn oidc_client_secret(&self, id: Uuid) -> Result<Option<TokenHash>>;
    /// Deletes the client; `false` (and nothing written) when there is none.
    async fn delete_oidc_client(&self, change: &Change, id: Uuid) -> Result<bool>;
}
