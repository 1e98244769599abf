//! `/compat/kratos/`: Ory Kratos' admin calls (docs/kratos.md), for scripts written against
//! Kratos. Management routes, authenticated like the rest of the API; errors stay Warden's
//! problem+json. Handlers parse, call [`KratosCompat`](crate::services::compat::kratos::KratosCompat)
//! and shape the answer as Kratos does.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use uuid::Uuid;
use warden_core::api::Problem;
use warden_core::kratos::{CreateIdentity, CreateRecoveryLink, Identity, ListIdentities, RecoveryLinkResponse};

use super::App;
use super::error::ApiError;
use super::extract::{Actor, Body, Params};
use crate::services::ServiceError;

type ApiResult<T> = Result<T, ApiError>;

/// An identity id from the path. Identities are named by id only; anything else names none.
fn identity_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ServiceError::NotFound(format!("identity {raw:?}")).into())
}

#[utoipa::path(post, path = "/compat/kratos/identities", tag = "compat-kratos", security(("bearer" = []), ("basic" = [])), request_body = CreateIdentity,
    responses((status = 201, body = Identity, description = "The identity: a new Warden user (docs/kratos.md has the mapping)."),
        (status = 400, body = Problem, description = "`validation`: a missing or malformed `traits.email`, an unknown trait, a `schema_id` other than `default`."),
        (status = 409, body = Problem, description = "`name.taken`: `traits.username` is taken.")))]
pub async fn create_identity(
    State(app): State<App>,
    Actor(actor): Actor,
    Body(req): Body<CreateIdentity>,
) -> ApiResult<(StatusCode, Json<Identity>)> {
    Ok((StatusCode::CREATED, Json(app.kratos.create(&actor, req).await?)))
}

#[utoipa::path(get, path = "/compat/kratos/identities", tag = "compat-kratos", security(("bearer" = []), ("basic" = [])), params(ListIdentities),
    responses((status = 200, body = [Identity], description = "A page of identities, by user name; with `credentials_identifier`, the identities it signs in as (no `Link`).",
        headers(("Link" = String, description = "Without `credentials_identifier`: `rel=\"first\"`, and `rel=\"next\"` with the next page's `page_token` while there is one.")))))]
pub async fn list_identities(
    State(app): State<App>,
    Actor(actor): Actor,
    Params(q): Params<ListIdentities>,
) -> ApiResult<(HeaderMap, Json<Vec<Identity>>)> {
    if let Some(identifier) = q.credentials_identifier.as_deref() {
        return Ok((HeaderMap::new(), Json(app.kratos.find(&actor, identifier).await?)));
    }
    let page = app.kratos.list(&actor, q.page_size, q.page_token).await?;
    let size = q.page_size.unwrap_or(warden_core::kratos::DEFAULT_PAGE_SIZE);
    let base = format!("/compat/kratos/identities?page_size={size}");
    let link = match &page.next_cursor {
        Some(next) => format!("<{base}>; rel=\"first\",<{base}&page_token={}>; rel=\"next\"", encode(next)),
        None => format!("<{base}>; rel=\"first\""),
    };
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&link) {
        headers.insert(header::LINK, value);
    }
    Ok((headers, Json(page.items)))
}

/// Percent-encodes all but the unreserved characters.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { char::from(b).to_string() } else { format!("%{b:02X}") })
        .collect()
}

#[utoipa::path(get, path = "/compat/kratos/identities/{id}", tag = "compat-kratos", security(("bearer" = []), ("basic" = [])),
    params(("id" = String, Path, description = "the identity's (user's) id")),
    responses((status = 200, body = Identity, description = "The identity."), (status = 404, body = Problem)))]
pub async fn get_identity(State(app): State<App>, Actor(actor): Actor, Path(id): Path<String>) -> ApiResult<Json<Identity>> {
    Ok(Json(app.kratos.get(&actor, identity_id(&id)?).await?))
}

#[utoipa::path(delete, path = "/compat/kratos/identities/{id}", tag = "compat-kratos", security(("bearer" = []), ("basic" = [])),
    params(("id" = String, Path, description = "the identity's (user's) id")),
    responses((status = 204, description = "The identity's user is deleted."), (status = 404, body = Problem)))]
pub async fn delete_identity(State(app): State<App>, Actor(actor): Actor, Path(id): Path<String>) -> ApiResult<StatusCode> {
    app.kratos.delete(&actor, identity_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/compat/kratos/recovery/link", tag = "compat-kratos", security(("bearer" = []), ("basic" = [])), request_body = CreateRecoveryLink,
    responses((status = 200, body = RecoveryLinkResponse, description = "A recovery link for the identity, as `POST /api/v1/users/{user}/recovery-link` issues it."),
        (status = 404, body = Problem, description = "No such identity."),
        (status = 503, body = Problem, description = "`config.public_url_missing`: set `server.public_url`.")))]
pub async fn recovery_link(
    State(app): State<App>,
    Actor(actor): Actor,
    Body(req): Body<CreateRecoveryLink>,
) -> ApiResult<Json<RecoveryLinkResponse>> {
    Ok(Json(app.kratos.recovery_link(&actor, req.identity_id, req.expires_in.as_deref()).await?))
}
