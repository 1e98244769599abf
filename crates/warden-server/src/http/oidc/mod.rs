//! REST handlers of the OpenID Connect client registry under `/api/v1/oidc/clients` and of the
//! signing keys under `/api/v1/oidc/keys`: parse, call the service, map the result. The
//! provider's own endpoints are in [`protocol`].

pub mod protocol;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use warden_core::api::{CreateOidcClient, CreatedOidcClient, OidcClientSecret, Problem, UpdateOidcClient};
use warden_core::oidc::OidcClient;

use crate::services::oidc::keys::Rotated;
use crate::services::oidc::provider::SigningKeyInfo;

use super::App;
use super::error::ApiError;
use super::extract::{Actor, Body};

type ApiResult<T> = Result<T, ApiError>;

#[utoipa::path(get, path = "/api/v1/oidc/clients", tag = "oidc", security(("bearer" = []), ("basic" = [])),
    responses((status = 200, body = Vec<OidcClient>, description = "Every client, by `client_id` (never a secret)."), (status = 403, body = Problem)))]
pub async fn list_clients(State(app): State<App>, Actor(actor): Actor) -> ApiResult<Json<Vec<OidcClient>>> {
    Ok(Json(app.oidc_clients.list(&actor).await?))
}

#[utoipa::path(post, path = "/api/v1/oidc/clients", tag = "oidc", security(("bearer" = []), ("basic" = [])), request_body = CreateOidcClient,
    responses((status = 201, body = CreatedOidcClient, description = "The client; a confidential one's `client_secret` (`wdc_…`) is shown this once."),
        (status = 400, body = Problem, description = "`validation`, naming the field (`redirect_uris`, `post_logout_redirect_uris`, `client_id`, `scopes`, `claims`, `signing_alg`, …)."),
        (status = 403, body = Problem, description = "`forbidden`: needs `warden:oidc_clients:write`; `session.not_elevated`."),
        (status = 404, body = Problem, description = "`not_found`: the `permissions_tenant` or `service_account` does not exist."),
        (status = 409, body = Problem, description = "`name.taken`: a client with this `client_id` exists.")))]
pub async fn create_client(
    State(app): State<App>,
    Actor(actor): Actor,
    Body(req): Body<CreateOidcClient>,
) -> ApiResult<(StatusCode, Json<CreatedOidcClient>)> {
    Ok((StatusCode::CREATED, Json(app.oidc_clients.create(&actor, req).await?)))
}

#[utoipa::path(get, path = "/api/v1/oidc/clients/{client}", tag = "oidc", security(("bearer" = []), ("basic" = [])), params(("client" = String, Path, description = "The `client_id`.")),
    responses((status = 200, body = OidcClient, description = "The client (never its secret)."), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get_client(State(app): State<App>, Actor(actor): Actor, Path(client): Path<String>) -> ApiResult<Json<OidcClient>> {
    Ok(Json(app.oidc_clients.get(&actor, &client).await?))
}

#[utoipa::path(patch, path = "/api/v1/oidc/clients/{client}", tag = "oidc", security(("bearer" = []), ("basic" = [])), params(("client" = String, Path, description = "The `client_id`.")),
    request_body = UpdateOidcClient,
    responses((status = 200, body = OidcClient, description = "The client, changed."), (status = 400, body = Problem, description = "`validation`, naming the field."),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn update_client(
    State(app): State<App>,
    Actor(actor): Actor,
    Path(client): Path<String>,
    Body(req): Body<UpdateOidcClient>,
) -> ApiResult<Json<OidcClient>> {
    Ok(Json(app.oidc_clients.update(&actor, &client, req).await?))
}

#[utoipa::path(delete, path = "/api/v1/oidc/clients/{client}", tag = "oidc", security(("bearer" = []), ("basic" = [])), params(("client" = String, Path, description = "The `client_id`.")),
    responses((status = 204, description = "The client is deleted."), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn delete_client(State(app): State<App>, Actor(actor): Actor, Path(client): Path<String>) -> ApiResult<StatusCode> {
    app.oidc_clients.delete(&actor, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/oidc/clients/{client}/rotate-secret", tag = "oidc", security(("bearer" = []), ("basic" = [])),
    params(("client" = String, Path, description = "The `client_id`.")),
    responses((status = 200, body = OidcClientSecret, description = "The new secret, shown this once; the old one no longer works."),
        (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "`oidc_client.public`: a public client has no secret.")))]
pub async fn rotate_client_secret(
    State(app): State<App>,
    Actor(actor): Actor,
    Path(client): Path<String>,
) -> ApiResult<Json<OidcClientSecret>> {
    Ok(Json(app.oidc_clients.rotate_secret(&actor, &client).await?))
}

#[utoipa::path(get, path = "/api/v1/oidc/keys", tag = "oidc", security(("bearer" = []), ("basic" = [])),
    responses((status = 200, body = Vec<SigningKeyInfo>, description = "The provider's signing keys (never a private half): those that sign, and retired ones still published."),
        (status = 403, body = Problem), (status = 503, body = Problem, description = "`oidc.unavailable`: the provider is off (no `server.public_url` or key-encryption key).")))]
pub async fn list_keys(State(app): State<App>, Actor(actor): Actor) -> ApiResult<Json<Vec<SigningKeyInfo>>> {
    Ok(Json(app.oidc.list_keys(&actor).await?))
}

#[utoipa::path(post, path = "/api/v1/oidc/keys/rotate", tag = "oidc", security(("bearer" = []), ("basic" = [])),
    responses((status = 200, body = Rotated, description = "New keys sign from now on; the old ones stay published until their tokens expire."),
        (status = 403, body = Problem, description = "`forbidden`: needs `warden:oidc_clients:write`; `session.not_elevated`."),
        (status = 503, body = Problem, description = "`oidc.unavailable`: the provider is off.")))]
pub async fn rotate_keys(State(app): State<App>, Actor(actor): Actor) -> ApiResult<Json<Rotated>> {
    Ok(Json(app.oidc.rotate_keys(&actor).await?))
}
