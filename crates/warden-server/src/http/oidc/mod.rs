//! REST handlers of the OpenID Connect client registry under `/api/v1/oidc/clients` and of the
//! signing keys under `/api/v1/oidc/keys`, and of connected applications (a person's own under
//! `/api/v1/self/applications`, anyone's under `/api/v1/users/{user}/applications`): parse,
//! call the service, map the result. The provider's own endpoints are in [`protocol`].

pub mod protocol;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use warden_core::api::{
    ApplicationWithdrawn, ConnectedApplication, CreateOidcClient, CreatedOidcClient, OidcClientSecret, Problem, UpdateOidcClient,
};
use warden_core::oidc::OidcClient;

use crate::services::oidc::applications::Owner;
use crate::services::oidc::keys::Rotated;
use crate::services::oidc::provider::SigningKeyInfo;

use super::App;
use super::error::ApiError;
use super::extract::{Actor, Body, Key};

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

// --- connected applications ---------------------------------------------------------------------

#[utoipa::path(get, path = "/api/v1/self/applications", tag = "self", security(("bearer" = []), ("basic" = [])),
    responses((status = 200, body = Vec<ConnectedApplication>, description = "The applications the caller signed in to through the OpenID Connect provider, by `client_id`: what each was allowed, and its live grants (never a token)."),
        (status = 401, body = Problem)))]
pub async fn list_own_applications(State(app): State<App>, Actor(actor): Actor) -> ApiResult<Json<Vec<ConnectedApplication>>> {
    Ok(Json(app.oidc.applications(&actor, Owner::Caller).await?))
}

#[utoipa::path(delete, path = "/api/v1/self/applications/{client_id}", tag = "self", security(("bearer" = []), ("basic" = [])),
    params(("client_id" = String, Path, description = "the application's `client_id`")),
    responses((status = 200, body = ApplicationWithdrawn, description = "Disconnected: the consent is withdrawn (the next sign-in asks again) and its grants are revoked; their tokens stop working on every node."),
        (status = 401, body = Problem),
        (status = 404, body = Problem, description = "`not_found`: the caller is not connected to such an application.")))]
pub async fn withdraw_own_application(
    State(app): State<App>,
    Actor(actor): Actor,
    Path(client): Path<String>,
) -> ApiResult<Json<ApplicationWithdrawn>> {
    Ok(Json(app.oidc.withdraw(&actor, Owner::Caller, &client).await?))
}

#[utoipa::path(get, path = "/api/v1/users/{user}/applications", tag = "sessions", security(("bearer" = []), ("basic" = [])),
    params(("user" = String, Path, description = "name or id of the account")),
    responses((status = 200, body = Vec<ConnectedApplication>, description = "The account's connected applications, as its owner sees them."),
        (status = 400, body = Problem), (status = 403, body = Problem, description = "`forbidden`: needs `warden:users:read`."), (status = 404, body = Problem)))]
pub async fn list_user_applications(
    State(app): State<App>,
    Actor(actor): Actor,
    Key(key): Key,
) -> ApiResult<Json<Vec<ConnectedApplication>>> {
    Ok(Json(app.oidc.applications(&actor, Owner::Account(&key)).await?))
}

#[utoipa::path(delete, path = "/api/v1/users/{user}/applications/{client_id}", tag = "sessions", security(("bearer" = []), ("basic" = [])),
    params(("user" = String, Path, description = "name or id of the account"), ("client_id" = String, Path, description = "the application's `client_id`")),
    responses((status = 200, body = ApplicationWithdrawn, description = "Disconnected, as by the account's owner; audited with the administrator as actor."),
        (status = 400, body = Problem),
        (status = 403, body = Problem, description = "`forbidden`: needs `warden:credentials:write`; `session.not_elevated`; `high_privilege` for an administrative account."),
        (status = 404, body = Problem, description = "`not_found`: no such account, or it is not connected to such an application.")))]
pub async fn withdraw_user_application(
    State(app): State<App>,
    Actor(actor): Actor,
    Path((user, client)): Path<(String, String)>,
) -> ApiResult<Json<ApplicationWithdrawn>> {
    let key = warden_core::model::NameOrId::parse(&user).map_err(crate::services::ServiceError::from)?;
    Ok(Json(app.oidc.withdraw(&actor, Owner::Account(&key), &client).await?))
}
