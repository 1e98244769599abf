//! Passkey (WebAuthn) calls under `/api/v1`: registering and managing the caller's passkeys,
//! and signing in with one alone. The browser side is `navigator.credentials.create()` /
//! `.get()` with the returned `options`; the answer goes back as JSON, unchanged.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use uuid::Uuid;
use warden_core::api::{FinishPasskeyRegistration, LoginResponse, PasskeyChallenge, PasskeyInfo, PasskeySignIn, Problem, RenamePasskey};

use super::App;
use super::error::ApiError;
use super::extract::{Actor, Body, ClientAddr, UserAgent};

type ApiResult<T> = Result<T, ApiError>;

/// A passkey id from the path; anything else is a `validation` problem (never axum's plain text).
fn passkey_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "validation", format!("{raw:?} is not a passkey id")))
}

#[utoipa::path(post, path = "/api/v1/self/passkeys/begin", tag = "self", security(("bearer" = []), ("basic" = [])),
    responses((status = 200, body = PasskeyChallenge, description = "Options for `navigator.credentials.create()` and the ceremony key (five minutes, once); the caller's passkeys are excluded."),
        (status = 403, body = Problem, description = "`session.not_elevated`: re-authenticate first; `self.not_a_user`."),
        (status = 503, body = Problem, description = "`config.webauthn_missing`: the server does not know its relying party.")))]
pub async fn begin_registration(State(app): State<App>, Actor(actor): Actor) -> ApiResult<Json<PasskeyChallenge>> {
    Ok(Json(app.passkeys.begin_registration(&actor).await?))
}

#[utoipa::path(post, path = "/api/v1/self/passkeys/finish", tag = "self", security(("bearer" = []), ("basic" = [])), request_body = FinishPasskeyRegistration,
    responses((status = 201, body = PasskeyInfo, description = "The passkey is registered: it signs in alone and serves as a second factor."),
        (status = 400, body = Problem, description = "`token.invalid`: the ceremony is unknown, expired, used or another account's; `passkey.invalid`: the verifier refused the credential (wrong origin or relying party, no user verification, another challenge); `validation`: not a credential, or a bad name."),
        (status = 403, body = Problem, description = "`session.not_elevated`; `self.not_a_user`."),
        (status = 409, body = Problem, description = "`passkey.exists`: this authenticator's credential is registered already."),
        (status = 503, body = Problem, description = "`config.webauthn_missing`.")))]
pub async fn finish_registration(
    State(app): State<App>,
    Actor(actor): Actor,
    Body(req): Body<FinishPasskeyRegistration>,
) -> ApiResult<(StatusCode, Json<PasskeyInfo>)> {
    Ok((StatusCode::CREATED, Json(app.passkeys.finish_registration(&actor, &req).await?)))
}

#[utoipa::path(get, path = "/api/v1/self/passkeys", tag = "self", security(("bearer" = []), ("basic" = [])),
    responses((status = 200, body = Vec<PasskeyInfo>, description = "The caller's passkeys, oldest first."), (status = 403, body = Problem, description = "`self.not_a_user`.")))]
pub async fn list(State(app): State<App>, Actor(actor): Actor) -> ApiResult<Json<Vec<PasskeyInfo>>> {
    Ok(Json(app.passkeys.list(&actor).await?))
}

#[utoipa::path(patch, path = "/api/v1/self/passkeys/{id}", tag = "self", security(("bearer" = []), ("basic" = [])), params(("id" = Uuid, Path)), request_body = RenamePasskey,
    responses((status = 200, body = PasskeyInfo, description = "Renamed."), (status = 400, body = Problem, description = "`validation`: a bad name or id."),
        (status = 403, body = Problem, description = "`session.not_elevated`."), (status = 404, body = Problem, description = "No such passkey of the caller's.")))]
pub async fn rename(
    State(app): State<App>,
    Actor(actor): Actor,
    Path(id): Path<String>,
    Body(req): Body<RenamePasskey>,
) -> ApiResult<Json<PasskeyInfo>> {
    Ok(Json(app.passkeys.rename(&actor, passkey_id(&id)?, &req.name).await?))
}

#[utoipa::path(delete, path = "/api/v1/self/passkeys/{id}", tag = "self", security(("bearer" = []), ("basic" = [])), params(("id" = Uuid, Path)),
    responses((status = 204, description = "Removed: it signs no one in any more."), (status = 400, body = Problem, description = "`validation`: not a passkey id."), (status = 403, body = Problem, description = "`session.not_elevated`."),
        (status = 404, body = Problem, description = "No such passkey of the caller's.")))]
pub async fn remove(State(app): State<App>, Actor(actor): Actor, Path(id): Path<String>) -> ApiResult<StatusCode> {
    app.passkeys.remove(&actor, passkey_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/auth/passkey/begin", tag = "auth",
    responses((status = 200, body = PasskeyChallenge, description = "Options for `navigator.credentials.get()` naming no account (the authenticator offers its discoverable passkeys), and the ceremony key."),
        (status = 429, body = Problem, description = "`auth.rate_limited`: too many ceremonies from this client address."),
        (status = 503, body = Problem, description = "`config.webauthn_missing`.")))]
pub async fn begin_sign_in(State(app): State<App>, client: ClientAddr) -> ApiResult<Json<PasskeyChallenge>> {
    Ok(Json(begin_passwordless(&app, client.0).await?))
}

/// A passwordless ceremony for `client`, within the per-address limit: the API's and the
/// sign-in page's one way to start one.
pub(crate) async fn begin_passwordless(app: &App, client: Option<std::net::IpAddr>) -> crate::services::Result<PasskeyChallenge> {
    app.passkey_ceremonies.count(client, app.ctx.now())?;
    app.passkeys.begin_sign_in().await
}

#[utoipa::path(post, path = "/api/v1/auth/passkey/finish", tag = "auth", request_body = PasskeySignIn,
    responses((status = 200, body = LoginResponse, description = "Signed in with a passkey alone (strength `passkey`); the session is read-only until re-authentication, like any other."),
        (status = 400, body = Problem, description = "`token.invalid`: the ceremony is unknown, expired or used; `validation`: not a credential."),
        (status = 401, body = Problem, description = "`auth.failed`: an unknown passkey, a signature or origin that does not verify, a replay or a cloned authenticator (the audit log says which)."),
        (status = 503, body = Problem, description = "`config.webauthn_missing`.")))]
pub async fn finish_sign_in(
    State(app): State<App>,
    client: ClientAddr,
    UserAgent(user_agent): UserAgent,
    Body(req): Body<PasskeySignIn>,
) -> ApiResult<Json<LoginResponse>> {
    Ok(Json(app.passkeys.finish_sign_in(&req, client.0, user_agent).await?))
}

#[utoipa::path(post, path = "/api/v1/auth/reauth/passkey", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = PasskeyChallenge, description = "Options for `navigator.credentials.get()` limited to the caller's passkeys; send the answer with the ceremony key to `POST /api/v1/auth/reauth`."),
        (status = 401, body = Problem), (status = 403, body = Problem, description = "`self.not_a_user`."),
        (status = 404, body = Problem, description = "The account has no passkey."), (status = 503, body = Problem, description = "`config.webauthn_missing`.")))]
pub async fn begin_reauth(State(app): State<App>, Actor(actor): Actor) -> ApiResult<Json<PasskeyChallenge>> {
    Ok(Json(app.passkeys.begin_reauth(&actor).await?))
}
