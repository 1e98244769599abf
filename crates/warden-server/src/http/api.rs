//! REST handlers under `/api/v1`: parse, call a service, map the result. Nothing else.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use uuid::Uuid;
use warden_core::api::{
    AddMembers, Added, AuditQuery, BindingQuery, ChangePassword, CheckRequest, CheckResponse, CreateApiToken, CreateBinding, CreateGroup,
    CreateInvitations, CreateRecoveryLink, CreateRegistrationToken, CreateRole, CreateServiceAccount, CreateTenant, CreateUser,
    CreatedApiToken, CreatedInvitations, CreatedRegistrationToken, EmailVerified, ExpandQuery, Expanded, ExportQuery, ForgotPassword,
    ForgotPasswordAccepted, ImportQuery, ImportSummary, Invitation, ListQuery, LoginRequest, LoginResponse, MailQueued, MemberEntry,
    MembersQuery, Page, PasswordChangeRequired, PermissionsQuery, Problem, ReauthRequest, ReauthResponse, RecoverRequest, RecoveryLink,
    RegisterRequest, RegistrationTokenInfo, Rename, ResendVerification, ResolvedPermissions, RolePermissions, RoleQuery, SessionInfo,
    SessionsQuery, SessionsRevoked, SetPassword, UpdateProfile, UpdateRole, UpdateUser, VerifyEmail, WhoAmI,
};
use warden_core::api::{
    BackupCodes, BeginTotp, LoginOutcome, SecondFactorAnswer, SecondFactorStatus, TotpCode, TotpEnrolment, UserCredentials,
};
use warden_core::authz::{Binding, Role, Tenant};
use warden_core::model::{ApiToken, AuditEvent, Group, NameOrId, ServiceAccount, SubjectKind, User};
use warden_core::preferences::TenantPreferences;

use super::App;
use super::error::ApiError;
use super::extract::{Actor, Body, ClientAddr, Key, Params, UserAgent};
use crate::services::ServiceError;
use crate::services::auth::{AuditRequest, Auth};
use crate::services::directory::ListRequest;
use crate::services::sessions::SessionsRequest;

type ApiResult<T> = Result<T, ApiError>;

impl From<ListQuery> for ListRequest {
    fn from(p: ListQuery) -> Self {
        Self { prefix: p.prefix, cursor: p.cursor, limit: p.limit }
    }
}

// --- authentication and self ------------------------------------------------------------------

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginOutcome, description = "Signed in: a session token (`wds_…`) that may not write until `POST /api/v1/auth/reauth`; or, for an account with a second factor, `{\"next\":\"mfa\",\"methods\",\"state\",\"expires_at\"}`: finish with `POST /api/v1/auth/login/mfa`."), (status = 401, body = Problem), (status = 429, body = Problem)))]
pub async fn login(
    State(app): State<App>,
    client: ClientAddr,
    UserAgent(user_agent): UserAgent,
    Body(req): Body<LoginRequest>,
) -> ApiResult<Json<LoginOutcome>> {
    Ok(Json(app.auth.login(&req.name, &req.password, client.0, user_agent).await?))
}

#[utoipa::path(post, path = "/api/v1/auth/login/mfa", tag = "auth", request_body = SecondFactorAnswer,
    responses((status = 200, body = LoginResponse, description = "Signed in with the second factor (`Login.second_factor` in the audit log)."),
        (status = 400, body = Problem, description = "`token.invalid`: the pending sign-in is unknown, expired or used; `validation`: not exactly one of `totp` and `backup_code`."),
        (status = 401, body = Problem, description = "`auth.failed`: a wrong, replayed or used code."),
        (status = 429, body = Problem, description = "`auth.rate_limited`: five wrong codes lock the second factor for 15 minutes.")))]
pub async fn login_mfa(
    State(app): State<App>,
    client: ClientAddr,
    UserAgent(user_agent): UserAgent,
    Body(req): Body<SecondFactorAnswer>,
) -> ApiResult<Json<LoginResponse>> {
    Ok(Json(app.second_factors.finish(&req, client.0, user_agent).await?))
}

#[utoipa::path(get, path = "/api/v1/self/second-factors", tag = "self", security(("bearer" = []), ("basic" = [])),
    responses((status = 200, body = SecondFactorStatus, description = "The caller's second factors."), (status = 403, body = Problem, description = "`self.not_a_user`.")))]
pub async fn second_factor_status(State(app): State<App>, Actor(actor): Actor) -> ApiResult<Json<SecondFactorStatus>> {
    Ok(Json(app.second_factors.status(&actor).await?))
}

#[utoipa::path(post, path = "/api/v1/self/totp", tag = "self", security(("bearer" = []), ("basic" = [])), request_body = BeginTotp,
    responses((status = 201, body = TotpEnrolment, description = "A new TOTP secret and its `otpauth://` URI, shown this once; confirm it with a code."),
        (status = 403, body = Problem, description = "`session.not_elevated`: re-authenticate first; `self.not_a_user`."),
        (status = 409, body = Problem, description = "`totp.exists`: remove the current authenticator first.")))]
pub async fn begin_totp(
    State(app): State<App>,
    Actor(actor): Actor,
    Body(req): Body<BeginTotp>,
) -> ApiResult<(StatusCode, Json<TotpEnrolment>)> {
    Ok((StatusCode::CREATED, Json(app.second_factors.begin_totp(&actor, &req).await?)))
}

#[utoipa::path(delete, path = "/api/v1/self/totp", tag = "self", security(("bearer" = []), ("basic" = [])),
    responses((status = 204, description = "The TOTP authenticator is removed."), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn remove_totp(State(app): State<App>, Actor(actor): Actor) -> ApiResult<StatusCode> {
    app.second_factors.remove_totp(&actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/self/totp/confirm", tag = "self", security(("bearer" = []), ("basic" = [])), request_body = TotpCode,
    responses((status = 200, body = SecondFactorStatus, description = "TOTP is now a second factor of the account."),
        (status = 400, body = Problem, description = "`validation`: the code does not match."), (status = 403, body = Problem),
        (status = 404, body = Problem, description = "No enrolment waits for a code.")))]
pub async fn confirm_totp(State(app): State<App>, Actor(actor): Actor, Body(req): Body<TotpCode>) -> ApiResult<Json<SecondFactorStatus>> {
    Ok(Json(app.second_factors.confirm_totp(&actor, &req.code).await?))
}

#[utoipa::path(delete, path = "/api/v1/users/{user}/second-factors", tag = "users", security(("bearer" = []), ("basic" = [])), params(("user" = String, Path)),
    responses((status = 204, description = "Every second factor of the user (TOTP, backup codes) is removed: the password alone signs in until the user enrols again."),
        (status = 403, body = Problem), (status = 404, body = Problem, description = "No such user, or it has no second factor.")))]
pub async fn reset_second_factors(State(app): State<App>, Actor(actor): Actor, Key(key): Key) -> ApiResult<StatusCode> {
    app.second_factors.reset(&actor, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/users/{user}/credentials", tag = "users", security(("bearer" = []), ("basic" = [])), params(("user" = String, Path)),
    responses((status = 200, body = UserCredentials, description = "What the user can sign in with: whether a password is set, TOTP, backup codes left, passkeys by name, the second factor's lock. Never a secret, hash or key."),
        (status = 403, body = Problem, description = "`forbidden`: needs `warden:users:read`."), (status = 404, body = Problem, description = "No such user.")))]
pub async fn user_credentials(State(app): State<App>, Actor(actor): Actor, Key(key): Key) -> ApiResult<Json<UserCredentials>> {
    Ok(Json(app.second_factors.overview(&actor, &key).await?))
}

#[utoipa::path(post, path = "/api/v1/self/backup-codes", tag = "self", security(("bearer" = []), ("basic" = [])),
    responses((status = 201, body = BackupCodes, description = "Ten new single-use codes, shown this once; the old ones stop working."), (status = 403, body = Problem)))]
pub async fn generate_backup_codes(State(app): State<App>, Actor(actor): Actor) -> ApiResult<(StatusCode, Json<BackupCodes>)> {
    Ok((StatusCode::CREATED, Json(app.second_factors.generate_backup_codes(&actor).await?)))
}

#[utoipa::path(post, path = "/api/v1/auth/recover", tag = "auth", request_body = RecoverRequest,
    responses((status = 200, body = LoginResponse, description = "The password is set, every other session of the user is ended, and this is a new session (as from `/api/v1/auth/login`)."),
        (status = 400, body = Problem, description = "`token.invalid`: unknown, expired or already used (one answer for all three); `validation`: the password breaks the rules.")))]
pub async fn recover(
    State(app): State<App>,
    client: ClientAddr,
    UserAgent(user_agent): UserAgent,
    Body(req): Body<RecoverRequest>,
) -> ApiResult<Json<LoginResponse>> {
    Ok(Json(app.recovery.redeem(&req.token, &req.password, client.0, user_agent).await?))
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(("bearer" = [])), responses((status = 204, description = "The session is ended."), (status = 401, body = Problem)))]
pub async fn logout(State(app): State<App>, Actor(actor): Actor) -> ApiResult<StatusCode> {
    app.auth.logout(&actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/auth/reauth", tag = "auth", security(("bearer" = [])), request_body = ReauthRequest,
    responses((status = 200, body = ReauthResponse, description = "The session may write until the returned time."), (status = 401, body = Problem)))]
pub async fn reauth(
    State(app): State<App>,
    Actor(actor): Actor,
    client: ClientAddr,
    Body(req): Body<ReauthRequest>,
) -> ApiResult<Json<ReauthResponse>> {
    Ok(Json(app.auth.reauth(&actor, &req, client.0).await?))
}

#[utoipa::path(get, path = "/api/v1/self", tag = "self", security(("bearer" = []), ("basic" = [])), responses((status = 200, body = WhoAmI, description = "The caller: its account and the `warden:*` permissions it holds in `default`."), (status = 401, body = Problem)))]
pub async fn whoami(Actor(actor): Actor) -> Json<WhoAmI> {
    Json(Auth::whoami(&actor))
}

#[utoipa::path(post, path = "/api/v1/self/rename", tag = "self", security(("bearer" = []), ("basic" = [])), request_body = Rename,
    responses((status = 200, body = User, description = "The caller, renamed."), (status = 403, body = Problem), (status = 409, body = Problem)))]
pub async fn rename_self(State(app): State<App>, Actor(actor): Actor, Body(req): Body<Rename>) -> ApiResult<Json<User>> {
    let me = NameOrId::Id(actor.account.id);
    Ok(Json(app.directory.rename_user(&actor, &me, &req.name).await?))
}

#[utoipa::path(get, path = "/api/v1/self/preferences/{tenant}", tag = "self", security(("bearer" = []), ("basic" = [])), params(("tenant" = String, Path)),
    responses((status = 200, body = TenantPreferences, description = "The caller's preferences in the tenant (`{}` when none are stored)."),
        (status = 404, body = Problem, description = "No such tenant (`not_found`).")))]
pub async fn get_preferences(
    State(app): State<App>,
    Actor(actor): Actor,
    Path(tenant): Path<String>,
) -> ApiResult<Json<TenantPreferences>> {
    Ok(Json(app.preferences.get(&actor, &tenant).await?))
}

#[utoipa::path(put, path = "/api/v1/self/preferences/{tenant}", tag = "self", security(("bearer" = []), ("basic" = [])), params(("tenant" = String, Path)),
    request_body = TenantPreferences,
    responses((status = 200, body = TenantPreferences, description = "The caller's preferences in the tenant, replaced whole (as stored: the namespace lower-cased)."),
        (status = 400, body = Problem, description = "`validation`, naming the field: `theme`, `timezone`, `default_namespace`, `values` (at most 64 keys of at most 64 characters) or `preferences` (at most 8 KiB as JSON)."),
        (status = 403, body = Problem, description = "`token.scope`: a read-only API token."),
        (status = 404, body = Problem, description = "No such tenant (`not_found`).")))]
pub async fn put_preferences(
    State(app): State<App>,
    Actor(actor): Actor,
    Path(tenant): Path<String>,
    Body(req): Body<TenantPreferences>,
) -> ApiResult<Json<TenantPreferences>> {
    Ok(Json(app.preferences.set(&actor, &tenant, req).await?))
}

#[utoipa::path(get, path = "/api/v1/self/profile", tag = "self", security(("bearer" = []), ("basic" = [])),
    responses((status = 200, body = User, description = "The caller's own account, with the additional fields its owner may see (not `private` ones)."),
        (status = 401, body = Problem), (status = 403, body = Problem, description = "`self.not_a_user`: a service account has no profile.")))]
pub async fn get_profile(State(app): State<App>, Actor(actor): Actor) -> ApiResult<Json<User>> {
    Ok(Json(app.self_service.profile(&actor).await?))
}

#[utoipa::path(patch, path = "/api/v1/self/profile", tag = "self", security(("bearer" = []), ("basic" = [])), request_body = UpdateProfile,
    responses((status = 200, body = User, description = "The caller's profile, changed. New e-mail addresses are unverified until their link is followed."),
        (status = 400, body = Problem, description = "`validation` (naming the field, `fields.KEY` for additional fields); `email.unverified`: an unverified address cannot become primary in place of a verified one."),
        (status = 401, body = Problem),
        (status = 403, body = Problem, description = "`profile.field_disabled`: the server keeps that part for administrators (the detail names the setting); `session.not_elevated`: moving the primary e-mail address needs a write window; `self.not_a_user`.")))]
pub async fn update_profile(State(app): State<App>, Actor(actor): Actor, Body(req): Body<UpdateProfile>) -> ApiResult<Json<User>> {
    Ok(Json(app.self_service.update_profile(&actor, req).await?.user))
}

#[utoipa::path(put, path = "/api/v1/self/password", tag = "self", security(("bearer" = [])), request_body = ChangePassword,
    responses((status = 204, description = "The password is changed; every other session of the caller is ended, this one stays."),
        (status = 400, body = Problem, description = "`validation`: the new password breaks the rules."),
        (status = 401, body = Problem, description = "`auth.failed`: the current password is wrong (counted as a failed login)."),
        (status = 403, body = Problem, description = "`self.session_required`: not through a session of the person; `self.not_a_user`."),
        (status = 429, body = Problem)))]
pub async fn change_password(
    State(app): State<App>,
    Actor(actor): Actor,
    client: ClientAddr,
    Body(req): Body<ChangePassword>,
) -> ApiResult<StatusCode> {
    app.self_service.change_password(&actor, &req, client.0).await?;
    Ok(StatusCode::NO_CONTENT)
}

// --- users ------------------------------------------------------------------------------------

#[utoipa::path(get, path = "/api/v1/users", tag = "users", security(("bearer" = []), ("basic" = [])), params(ListQuery), responses((status = 200, body = Page<User>, description = "A page of users, by name.")))]
pub async fn list_users(State(app): State<App>, Actor(actor): Actor, Params(p): Params<ListQuery>) -> ApiResult<Json<Page<User>>> {
    Ok(Json(app.directory.list_users(&actor, &p.into()).await?))
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", security(("bearer" = []), ("basic" = [])), request_body = CreateUser,
    responses((status = 201, body = User, description = "The user, created."), (status = 400, body = Problem), (status = 409, body = Problem)))]
pub async fn create_user(State(app): State<App>, Actor(actor): Actor, Body(req): Body<CreateUser>) -> ApiResult<(StatusCode, Json<User>)> {
    Ok((StatusCode::CREATED, Json(app.access.create_user(&actor, req).await?)))
}

#[utoipa::path(get, path = "/api/v1/users/{user}", tag = "users", security(("bearer" = []), ("basic" = [])), params(("user" = String, Path, description = "name or id"), ExpandQuery),
    responses((status = 200, body = Expanded<User>, description = "The user, with the expansions asked for."), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn get_user(
    State(app): State<App>,
    Actor(actor): Actor,
    Key(key): Key,
    Params(q): Params<ExpandQuery>,
) -> ApiResult<Json<Expanded<User>>> {
    let expansion = q.expansion().map_err(ServiceError::from)?;
    let user = app.directory.user(&actor, &key).await?;
    let subject = user.subject();
    Ok(Json(app.directory.expand(&actor, user, &subject, expansion)?))
}

#[utoipa::path(patch, path = "/api/v1/users/{user}", tag = "users", security(("bearer" = []), ("basic" = [])), params(("user" = String, Path)), request_body = UpdateUser,
    responses((status = 200, body = User, description = "The user, changed."), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn update_user(State(app): State<App>, Actor(actor): Actor, Key(key): Key, Body(req): Body<UpdateUser>) -> ApiResult<Json<User>> {
    Ok(Json(app.directory.update_user(&actor, &key, req).await?))
}

#[utoipa::path(delete, path = "/api/v1/users/{user}", tag = "users", security(("bearer" = []), ("basic" = [])), params(("user" = String, Path)),
    responses((status = 204, description = "The user is deleted."), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn delete_user(State(app): State<App>, Actor(actor): Actor, Key(key): Key) -> ApiResult<StatusCode> {
    app.directory.delete_user(&actor, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/users/{user}/rename", tag = "users", security(("bearer" = []), ("basic" = [])), params(("user" = String, Path)), request_body = Rename,
    responses((status = 200, body = User, description = "The user, renamed."), (status = 409, body = Problem)))]
pub async fn rename_user(State(app): State<App>, Actor(actor): Actor, Key(key): Key, Body(req): Body<Rename>) -> ApiResult<Json<User>> {
    Ok(Json(app.directory.rename_user(&actor, &key, &req.name).await?))
}

#[utoipa::path(post, path = "/api/v1/users/{user}/disable", tag = "users", security(("bearer" = []), ("basic" = [])), params(("user" = String, Path)), responses((status = 200, body = User, description = "The user, disabled.")))]
pub async fn disable_user(State(app): State<App>, Actor(actor): Actor, Key(key): Key) -> ApiResult<Json<User>> {
    Ok(Json(app.directory.set_disabled(&actor, &key, true).await?))
}

#[utoipa::path(post, path = "/api/v1/users/{user}/enable", tag = "users", security(("bearer" = []), ("basic" = [])), params(("user" = String, Path)), responses((status = 200, body = User, description = "The user, enabled.")))]
pub async fn enable_user(State(app): State<App>, Actor(actor): Actor, Key(key): Key) -> ApiResult<Json<User>> {
    Ok(Json(app.directory.set_disabled(&actor, &key, false).await?))
}

// --- service accounts and their tokens --------------------------------------------------------

#[utoipa::path(get, path = "/api/v1/service-accounts", tag = "service-accounts", security(("bearer" = []), ("basic" = [])), params(ListQuery),
    responses((status = 200, body = Page<ServiceAccount>, description = "A page of service accounts, by name.")))]
pub async fn list_service_accounts(
    State(app): State<App>,
    Actor(actor): Actor,
    Params(p): Params<ListQuery>,
) -> ApiResult<Json<Page<ServiceAccount>>> {
    Ok(Json(app.directory.list_service_accounts(&actor, &p.into()).await?))
}

#[utoipa::path(post, path = "/api/v1/service-accounts", tag = "service-accounts", security(("bearer" = []), ("basic" = [])), request_body = CreateServiceAccount,
    responses((status = 201, body = ServiceAccount, description = "The service account, created."), (status = 409, body = Problem)))]
pub async fn create_service_account(
    State(app): State<App>,
    Actor(actor): Actor,
    Body(req): Body<CreateServiceAccount>,
) -> ApiResult<(StatusCode, Json<ServiceAccount>)> {
    Ok((StatusCode::CREATED, Json(app.directory.create_service_account(&actor, req).await?)))
}

#[utoipa::path(get, path = "/api/v1/service-accounts/{sa}", tag = "service-accounts", security(("bearer" = []), ("basic" = [])), params(("sa" = String, Path), ExpandQuery),
    responses((status = 200, body = Expanded<ServiceAccount>, description = "The service account, with the expansions asked for."), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn get_service_account(
    State(app): State<App>,
    Actor(actor): Actor,
    Key(key): Key,
    Params(q): Params<ExpandQuery>,
) -> ApiResult<Json<Expanded<ServiceAccount>>> {
    let expansion = q.expansion().map_err(ServiceError::from)?;
    let account = app.directory.service_account(&actor, &key).await?;
    let subject = account.subject();
    Ok(Json(app.directory.expand(&actor, account, &subject, expansion)?))
}

#[utoipa::path(delete, path = "/api/v1/service-accounts/{sa}", tag = "service-accounts", security(("bearer" = []), ("basic" = [])), params(("sa" = String, Path)),
    responses((status = 204, description = "The service account and its tokens are deleted."), (status = 404, body = Problem)))]
pub async fn delete_service_account(State(app): State<App>, Actor(actor): Actor, Key(key): Key) -> ApiResult<StatusCode> {
    app.directory.delete_service_account(&actor, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/service-accounts/{sa}/tokens", tag = "service-accounts", security(("bearer" = []), ("basic" = [])), params(("sa" = String, Path)),
    responses((status = 200, body = Page<ApiToken>, description = "The service account's API tokens, oldest first, never their secrets.")))]
pub async fn list_tokens(State(app): State<App>, Actor(actor): Actor, Key(key): Key) -> ApiResult<Json<Page<ApiToken>>> {
    Ok(Json(app.auth.list_api_tokens(&actor, &key).await?))
}

#[utoipa::path(post, path = "/api/v1/service-accounts/{sa}/tokens", tag = "service-accounts", security(("bearer" = []), ("basic" = [])), params(("sa" = String, Path)),
    request_body = CreateApiToken, responses((status = 201, body = CreatedApiToken, description = "The API token, with its secret (`wdn_…`), shown this once."), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn create_token(
    State(app): State<App>,
    Actor(actor): Actor,
    Key(key): Key,
    Body(req): Body<CreateApiToken>,
) -> ApiResult<(StatusCode, Json<CreatedApiToken>)> {
    Ok((StatusCode::CREATED, Json(app.auth.create_api_token(&actor, &key, req).await?)))
}

#[utoipa::path(delete, path = "/api/v1/service-accounts/{sa}/tokens/{token_id}", tag = "service-accounts", security(("bearer" = []), ("basic" = [])),
    params(("sa" = String, Path), ("token_id" = Uuid, Path)), responses((status = 204, description = "The API token is revoked."), (status = 404, body = Problem)))]
pub async fn revoke_token(
    State(app): State<App>,
    Actor(actor): Actor,
    Path((sa, token_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let key = NameOrId::parse(&sa).map_err(ServiceError::from)?;
    let token_id = Uuid::parse_str(&token_id)
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "validation", format!("{token_id:?} is not a token id")))?;
    app.auth.revoke_api_token(&actor, &key, token_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// --- sessions ---------------------------------------------------------------------------------

fn credential_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw)
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "validation", format!("{raw:?} is not a session or API token id")))
}

#[utoipa::path(get, path = "/api/v1/sessions", tag = "sessions", security(("bearer" = []), ("basic" = [])), params(SessionsQuery),
    responses((status = 200, body = Page<SessionInfo>, description = "Live sessions in id order; with `user`, that account's sessions and (on the first page) its usable API tokens. Never a token or its hash."),
        (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn list_sessions(
    State(app): State<App>,
    Actor(actor): Actor,
    Params(p): Params<SessionsQuery>,
) -> ApiResult<Json<Page<SessionInfo>>> {
    let req = SessionsRequest { user: p.user, cursor: p.cursor, limit: p.limit };
    Ok(Json(app.sessions.list(&actor, &req).await?))
}

#[utoipa::path(delete, path = "/api/v1/sessions/{id}", tag = "sessions", security(("bearer" = []), ("basic" = [])), params(("id" = Uuid, Path, description = "a session's or API token's id")),
    responses((status = 204, description = "The session (or API token) is ended, on every node within the revision-propagation bound."),
        (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn revoke_session(State(app): State<App>, Actor(actor): Actor, Path(id): Path<String>) -> ApiResult<StatusCode> {
    app.sessions.revoke(&actor, credential_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/users/{user}/sessions", tag = "sessions", security(("bearer" = []), ("basic" = [])), params(("user" = String, Path, description = "name or id of the account")),
    responses((status = 200, body = SessionsRevoked, description = "Every session of the account is ended (its API tokens stay)."),
        (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn revoke_user_sessions(State(app): State<App>, Actor(actor): Actor, Key(key): Key) -> ApiResult<Json<SessionsRevoked>> {
    Ok(Json(app.sessions.revoke_all(&actor, &key).await?))
}

#[utoipa::path(get, path = "/api/v1/self/sessions", tag = "self", security(("bearer" = []), ("basic" = [])),
    responses((status = 200, body = Page<SessionInfo>, description = "The caller's live sessions and usable API tokens; the one this request used is `current`."), (status = 401, body = Problem)))]
pub async fn list_own_sessions(State(app): State<App>, Actor(actor): Actor) -> ApiResult<Json<Page<SessionInfo>>> {
    Ok(Json(app.sessions.list_own(&actor).await?))
}

#[utoipa::path(delete, path = "/api/v1/self/sessions/{id}", tag = "self", security(("bearer" = []), ("basic" = [])), params(("id" = Uuid, Path, description = "one of the caller's sessions or API tokens")),
    responses((status = 204, description = "The session (or API token) is ended."), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem, description = "`token.scope`: an API token may end only itself here."),
        (status = 404, body = Problem, description = "No such session or token of the caller's (someone else's id is not found either).")))]
pub async fn revoke_own_session(State(app): State<App>, Actor(actor): Actor, Path(id): Path<String>) -> ApiResult<StatusCode> {
    app.sessions.revoke_own(&actor, credential_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

// --- groups -----------------------------------------------------------------------------------

#[utoipa::path(get, path = "/api/v1/groups", tag = "groups", security(("bearer" = []), ("basic" = [])), params(ListQuery), responses((status = 200, body = Page<Group>, description = "A page of groups, by name.")))]
pub async fn list_groups(State(app): State<App>, Actor(actor): Actor, Params(p): Params<ListQuery>) -> ApiResult<Json<Page<Group>>> {
    Ok(Json(app.directory.list_groups(&actor, &p.into()).await?))
}

#[utoipa::path(post, path = "/api/v1/groups", tag = "groups", security(("bearer" = []), ("basic" = [])), request_body = CreateGroup,
    responses((status = 201, body = Group, description = "The group, created."), (status = 409, body = Problem)))]
pub async fn create_group(
    State(app): State<App>,
    Actor(actor): Actor,
    Body(req): Body<CreateGroup>,
) -> ApiResult<(StatusCode, Json<Group>)> {
    Ok((StatusCode::CREATED, Json(app.directory.create_group(&actor, req).await?)))
}

#[utoipa::path(get, path = "/api/v1/groups/{group}", tag = "groups", security(("bearer" = []), ("basic" = [])), params(("group" = String, Path)),
    responses((status = 200, body = Group, description = "The group."), (status = 404, body = Problem)))]
pub async fn get_group(State(app): State<App>, Actor(actor): Actor, Key(key): Key) -> ApiResult<Json<Group>> {
    Ok(Json(app.directory.group(&actor, &key).await?))
}

#[utoipa::path(delete, path = "/api/v1/groups/{group}", tag = "groups", security(("bearer" = []), ("basic" = [])), params(("group" = String, Path)),
    responses((status = 204, description = "The group is deleted."), (status = 404, body = Problem)))]
pub async fn delete_group(State(app): State<App>, Actor(actor): Actor, Key(key): Key) -> ApiResult<StatusCode> {
    app.directory.delete_group(&actor, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/groups/{group}/members", tag = "groups", security(("bearer" = []), ("basic" = [])), params(("group" = String, Path), MembersQuery),
    responses((status = 200, body = Page<MemberEntry>, description = "A page of members, `effective`: also through nesting.")))]
pub async fn list_members(
    State(app): State<App>,
    Actor(actor): Actor,
    Key(key): Key,
    Params(p): Params<MembersQuery>,
) -> ApiResult<Json<Page<MemberEntry>>> {
    let req = ListRequest { prefix: None, cursor: p.cursor, limit: p.limit };
    Ok(Json(app.directory.members(&actor, &key, p.effective, &req).await?))
}

#[utoipa::path(get, path = "/api/v1/users/{user}/groups", tag = "users", security(("bearer" = []), ("basic" = [])), params(("user" = String, Path, description = "name or id"), MembersQuery),
    responses((status = 200, body = Page<MemberEntry>, description = "The groups the user is in, `effective`: also through nesting")))]
pub async fn list_user_groups(
    State(app): State<App>,
    Actor(actor): Actor,
    Key(key): Key,
    Params(p): Params<MembersQuery>,
) -> ApiResult<Json<Page<MemberEntry>>> {
    let req = ListRequest { prefix: None, cursor: p.cursor, limit: p.limit };
    Ok(Json(app.directory.account_groups(&actor, SubjectKind::User, &key, p.effective, &req).await?))
}

#[utoipa::path(get, path = "/api/v1/service-accounts/{sa}/groups", tag = "service-accounts", security(("bearer" = []), ("basic" = [])), params(("sa" = String, Path, description = "name or id"), MembersQuery),
    responses((status = 200, body = Page<MemberEntry>, description = "The groups the service account is in, `effective`: also through nesting")))]
pub async fn list_service_account_groups(
    State(app): State<App>,
    Actor(actor): Actor,
    Key(key): Key,
    Params(p): Params<MembersQuery>,
) -> ApiResult<Json<Page<MemberEntry>>> {
    let req = ListRequest { prefix: None, cursor: p.cursor, limit: p.limit };
    Ok(Json(app.directory.account_groups(&actor, SubjectKind::ServiceAccount, &key, p.effective, &req).await?))
}

#[utoipa::path(post, path = "/api/v1/groups/{group}/members", tag = "groups", security(("bearer" = []), ("basic" = [])), params(("group" = String, Path)), request_body = AddMembers,
    responses((status = 200, body = Added, description = "How many of them were not members before."), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn add_members(
    State(app): State<App>,
    Actor(actor): Actor,
    Key(key): Key,
    Body(req): Body<AddMembers>,
) -> ApiResult<Json<Added>> {
    Ok(Json(Added { added: app.directory.add_members(&actor, &key, req).await? }))
}

#[utoipa::path(delete, path = "/api/v1/groups/{group}/members/{member}", tag = "groups", security(("bearer" = []), ("basic" = [])),
    params(("group" = String, Path), ("member" = String, Path, description = "user:NAME, sa:NAME, group:NAME, a bare name or an id")),
    responses((status = 204, description = "The member is removed."), (status = 404, body = Problem)))]
pub async fn remove_member(
    State(app): State<App>,
    Actor(actor): Actor,
    Path((group, member)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let key = NameOrId::parse(&group).map_err(ServiceError::from)?;
    app.directory.remove_member(&actor, &key, &member).await?;
    Ok(StatusCode::NO_CONTENT)
}

// --- audit ------------------------------------------------------------------------------------

#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", security(("bearer" = []), ("basic" = [])), params(AuditQuery), responses((status = 200, body = Page<AuditEvent>, description = "A page of audit events, newest first.")))]
pub async fn audit(State(app): State<App>, Actor(actor): Actor, Params(p): Params<AuditQuery>) -> ApiResult<Json<Page<AuditEvent>>> {
    let req = AuditRequest { actor: p.actor, target: p.target, action: p.action, since: p.since, cursor: p.cursor, limit: p.limit };
    Ok(Json(app.auth.audit(&actor, &req).await?))
}

#[utoipa::path(put, path = "/api/v1/users/{user}/password", tag = "users", security(("bearer" = []), ("basic" = [])), params(("user" = String, Path)), request_body = SetPassword,
    responses((status = 204, description = "The password is set; the user's sessions are ended."), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn set_password(
    State(app): State<App>,
    Actor(actor): Actor,
    Key(key): Key,
    Body(req): Body<SetPassword>,
) -> ApiResult<StatusCode> {
    app.directory.set_password(&actor, &key, &req.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/users/{user}/unlock", tag = "users", security(("bearer" = []), ("basic" = [])), params(("user" = String, Path, description = "The account name (or id) whose soft lock to lift")),
    responses((status = 204, description = "The name's failed passwords are forgotten: it may sign in again at once. An unknown name answers the same to a caller who may not read users."),
        (status = 403, body = Problem), (status = 404, body = Problem, description = "No such account (only to a caller who may read users).")))]
pub async fn unlock_user(State(app): State<App>, Actor(actor): Actor, Key(key): Key) -> ApiResult<StatusCode> {
    app.directory.unlock(&actor, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/users/{user}/recovery-link", tag = "users", security(("bearer" = []), ("basic" = [])), params(("user" = String, Path)), request_body = CreateRecoveryLink,
    responses((status = 201, body = RecoveryLink, description = "A one-time link (`{server.public_url}/recover?token=…`) with which the user chooses a new password; the user's older links end."),
        (status = 400, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 503, body = Problem, description = "`config.public_url_missing`: the server has no `server.public_url`.")))]
pub async fn issue_recovery_link(
    State(app): State<App>,
    Actor(actor): Actor,
    Key(key): Key,
    Body(req): Body<CreateRecoveryLink>,
) -> ApiResult<(StatusCode, Json<RecoveryLink>)> {
    Ok((StatusCode::CREATED, Json(app.recovery.issue(&actor, &key, req.expires_in.as_deref()).await?)))
}

// --- registration -----------------------------------------------------------------------------

#[utoipa::path(post, path = "/api/v1/register", tag = "registration", request_body = RegisterRequest,
    responses((status = 201, body = User, description = "The user is created (with the token's roles bound, in token mode)."),
        (status = 400, body = Problem, description = "`token.invalid`: in token mode, no token, or one that is unknown, expired, used up or revoked (one answer for all); `validation`."),
        (status = 403, body = Problem, description = "`registration.disabled`: `registration.mode` is `disabled`."),
        (status = 409, body = Problem, description = "`name.taken`.")))]
pub async fn register(State(app): State<App>, client: ClientAddr, Body(req): Body<RegisterRequest>) -> ApiResult<(StatusCode, Json<User>)> {
    Ok((StatusCode::CREATED, Json(app.registration.register(req, client.0).await?)))
}

#[utoipa::path(get, path = "/api/v1/registration-tokens", tag = "registration", security(("bearer" = []), ("basic" = [])),
    responses((status = 200, body = Vec<RegistrationTokenInfo>, description = "Every registration token, newest first (never the tokens themselves)."), (status = 403, body = Problem)))]
pub async fn list_registration_tokens(State(app): State<App>, Actor(actor): Actor) -> ApiResult<Json<Vec<RegistrationTokenInfo>>> {
    Ok(Json(app.registration.tokens(&actor).await?))
}

#[utoipa::path(post, path = "/api/v1/registration-tokens", tag = "registration", security(("bearer" = []), ("basic" = [])), request_body = CreateRegistrationToken,
    responses((status = 201, body = CreatedRegistrationToken, description = "The token (`wdo_…`), shown this once, and what it allows."),
        (status = 400, body = Problem), (status = 403, body = Problem, description = "`forbidden`; `account.high_privilege`: an administrative role needs idm_superuser."),
        (status = 404, body = Problem)))]
pub async fn create_registration_token(
    State(app): State<App>,
    Actor(actor): Actor,
    Body(req): Body<CreateRegistrationToken>,
) -> ApiResult<(StatusCode, Json<CreatedRegistrationToken>)> {
    Ok((StatusCode::CREATED, Json(app.registration.create_token(&actor, req).await?)))
}

#[utoipa::path(delete, path = "/api/v1/registration-tokens/{id}", tag = "registration", security(("bearer" = []), ("basic" = [])),
    params(("id" = Uuid, Path)), responses((status = 204, description = "The token is revoked: no one registers with it any more."), (status = 404, body = Problem)))]
pub async fn revoke_registration_token(State(app): State<App>, Actor(actor): Actor, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "validation", format!("{id:?} is not a token id")))?;
    app.registration.revoke_token(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// --- invitations, account notices, forgotten passwords ------------------------------------------

#[utoipa::path(post, path = "/api/v1/invitations", tag = "registration", security(("bearer" = []), ("basic" = [])), request_body = CreateInvitations,
    responses((status = 201, body = CreatedInvitations, description = "One invitation per address, each mailed a one-use link to `{server.public_url}/register?token=…` (the link is only ever in the mail)."),
        (status = 400, body = Problem), (status = 403, body = Problem, description = "`forbidden`; `account.high_privilege`: an administrative role needs idm_superuser."),
        (status = 404, body = Problem), (status = 503, body = Problem, description = "`config.public_url_missing`.")))]
pub async fn create_invitations(
    State(app): State<App>,
    Actor(actor): Actor,
    Body(req): Body<CreateInvitations>,
) -> ApiResult<(StatusCode, Json<CreatedInvitations>)> {
    Ok((StatusCode::CREATED, Json(app.invitations.invite(&actor, req).await?)))
}

#[utoipa::path(get, path = "/api/v1/invitations", tag = "registration", security(("bearer" = []), ("basic" = [])),
    responses((status = 200, body = Vec<Invitation>, description = "Every invitation, newest first."), (status = 403, body = Problem)))]
pub async fn list_invitations(State(app): State<App>, Actor(actor): Actor) -> ApiResult<Json<Vec<Invitation>>> {
    Ok(Json(app.invitations.list(&actor).await?))
}

#[utoipa::path(delete, path = "/api/v1/invitations/{id}", tag = "registration", security(("bearer" = []), ("basic" = [])),
    params(("id" = Uuid, Path)), responses((status = 204, description = "The invitation is revoked: its link stops working."), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn revoke_invitation(State(app): State<App>, Actor(actor): Actor, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let id = Uuid::parse_str(&id)
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "validation", format!("{id:?} is not an invitation id")))?;
    app.invitations.revoke(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/users/{user}/account-notice", tag = "users", security(("bearer" = []), ("basic" = [])), params(("user" = String, Path)),
    responses((status = 202, body = MailQueued, description = "A mail to the user's verified primary address, with a link to choose a password, is queued."),
        (status = 400, body = Problem, description = "`validation`: no verified primary address, or the account is disabled."), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 503, body = Problem, description = "`config.public_url_missing`.")))]
pub async fn send_account_notice(State(app): State<App>, Actor(actor): Actor, Key(key): Key) -> ApiResult<(StatusCode, Json<MailQueued>)> {
    Ok((StatusCode::ACCEPTED, Json(app.password_mail.send_account_notice(&actor, &key).await?)))
}

#[utoipa::path(post, path = "/api/v1/users/{user}/require-password-change", tag = "users", security(("bearer" = []), ("basic" = [])), params(("user" = String, Path)),
    responses((status = 200, body = PasswordChangeRequired, description = "The user must choose a new password: its sessions ended, and a link mailed to its verified primary address (if any). Until then its sessions may only change the password (`403 password.change_required`)."),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn require_password_change(
    State(app): State<App>,
    Actor(actor): Actor,
    Key(key): Key,
) -> ApiResult<Json<PasswordChangeRequired>> {
    Ok(Json(app.password_mail.require_password_change(&actor, &key).await?))
}

#[utoipa::path(post, path = "/api/v1/groups/{group}/require-password-change", tag = "groups", security(("bearer" = []), ("basic" = [])), params(("group" = String, Path)),
    responses((status = 200, body = PasswordChangeRequired, description = "Every user among the group's effective members must choose a new password, as for one user; one transaction."),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn require_group_password_change(
    State(app): State<App>,
    Actor(actor): Actor,
    Key(key): Key,
) -> ApiResult<Json<PasswordChangeRequired>> {
    Ok(Json(app.password_mail.require_group_password_change(&actor, &key).await?))
}

#[utoipa::path(post, path = "/api/v1/auth/verify-email", tag = "auth", request_body = VerifyEmail,
    responses((status = 200, body = EmailVerified, description = "The link's address is now verified on its account."),
        (status = 400, body = Problem, description = "`token.invalid`: unknown, expired, used, or the account no longer has the address (one answer for all).")))]
pub async fn verify_email(State(app): State<App>, client: ClientAddr, Body(req): Body<VerifyEmail>) -> ApiResult<Json<EmailVerified>> {
    Ok(Json(app.email_verification.redeem(&req.token, client.0).await?))
}

#[utoipa::path(post, path = "/api/v1/self/email-verification", tag = "self", security(("bearer" = []), ("basic" = [])), request_body = ResendVerification,
    responses((status = 202, body = MailQueued, description = "A new verification link for one of the caller's own unverified addresses is queued."),
        (status = 400, body = Problem, description = "`validation`: not one of the caller's addresses, or verified already."),
        (status = 403, body = Problem, description = "`self.not_a_user`."), (status = 429, body = Problem, description = "`auth.rate_limited`."),
        (status = 503, body = Problem, description = "`config.public_url_missing`.")))]
pub async fn resend_verification(
    State(app): State<App>,
    Actor(actor): Actor,
    Body(req): Body<ResendVerification>,
) -> ApiResult<(StatusCode, Json<MailQueued>)> {
    Ok((StatusCode::ACCEPTED, Json(app.email_verification.resend(&actor, &req.address).await?)))
}

#[utoipa::path(post, path = "/api/v1/auth/forgot-password", tag = "auth", request_body = ForgotPassword,
    responses((status = 202, body = ForgotPasswordAccepted, description = "Always the same answer, at once: if the name or address belongs to an account with a verified primary address, a link to choose a new password is mailed there."),
        (status = 400, body = Problem, description = "`validation`: the body is not a request."),
        (status = 429, body = Problem, description = "`auth.rate_limited`: this client asked too often (says nothing about any account).")))]
pub async fn forgot_password(
    State(app): State<App>,
    client: ClientAddr,
    Body(req): Body<ForgotPassword>,
) -> ApiResult<(StatusCode, Json<ForgotPasswordAccepted>)> {
    app.password_mail.forgot_password(&req.name_or_email, client.0)?;
    let message =
        "If this names an account with a verified e-mail address, a link to choose a new password is on its way there.".to_owned();
    Ok((StatusCode::ACCEPTED, Json(ForgotPasswordAccepted { message })))
}

// --- tenants, roles, bindings -------------------------------------------------------------------

#[utoipa::path(get, path = "/api/v1/tenants", tag = "authorization", security(("bearer" = []), ("basic" = [])), responses((status = 200, body = Page<Tenant>, description = "The tenants.")))]
pub async fn list_tenants(State(app): State<App>, Actor(actor): Actor) -> ApiResult<Json<Page<Tenant>>> {
    Ok(Json(Page { items: app.access.tenants(&actor).await?, next_cursor: None }))
}

#[utoipa::path(post, path = "/api/v1/tenants", tag = "authorization", security(("bearer" = []), ("basic" = [])), request_body = CreateTenant,
    responses((status = 201, body = Tenant, description = "The tenant, created."), (status = 409, body = Problem)))]
pub async fn create_tenant(
    State(app): State<App>,
    Actor(actor): Actor,
    Body(req): Body<CreateTenant>,
) -> ApiResult<(StatusCode, Json<Tenant>)> {
    Ok((StatusCode::CREATED, Json(app.access.create_tenant(&actor, req).await?)))
}

#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}", tag = "authorization", security(("bearer" = []), ("basic" = [])), params(("tenant" = String, Path)),
    responses((status = 204, description = "The tenant is deleted."), (status = 404, body = Problem)))]
pub async fn delete_tenant(State(app): State<App>, Actor(actor): Actor, Path(tenant): Path<String>) -> ApiResult<StatusCode> {
    app.access.delete_tenant(&actor, &tenant).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/roles", tag = "authorization", security(("bearer" = []), ("basic" = [])), params(RoleQuery), responses((status = 200, body = Page<Role>, description = "The roles: system, built-in and dynamic.")))]
pub async fn list_roles(State(app): State<App>, Actor(actor): Actor, Params(q): Params<RoleQuery>) -> ApiResult<Json<Page<Role>>> {
    Ok(Json(Page { items: app.access.roles(&actor, q.tenant.as_deref())?, next_cursor: None }))
}

#[utoipa::path(post, path = "/api/v1/roles", tag = "authorization", security(("bearer" = []), ("basic" = [])), request_body = CreateRole,
    responses((status = 201, body = Role, description = "The role, created."), (status = 403, body = Problem), (status = 409, body = Problem)))]
pub async fn create_role(State(app): State<App>, Actor(actor): Actor, Body(req): Body<CreateRole>) -> ApiResult<(StatusCode, Json<Role>)> {
    Ok((StatusCode::CREATED, Json(app.access.create_role(&actor, req).await?)))
}

#[utoipa::path(get, path = "/api/v1/roles/{role}", tag = "authorization", security(("bearer" = []), ("basic" = [])), params(("role" = String, Path)),
    responses((status = 200, body = Role, description = "The role."), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get_role(State(app): State<App>, Actor(actor): Actor, Path(role): Path<String>) -> ApiResult<Json<Role>> {
    Ok(Json(app.access.role(&actor, &role)?))
}

#[utoipa::path(patch, path = "/api/v1/roles/{role}", tag = "authorization", security(("bearer" = []), ("basic" = [])), params(("role" = String, Path)), request_body = UpdateRole,
    responses((status = 200, body = Role, description = "The role, changed."), (status = 409, body = Problem)))]
pub async fn update_role(
    State(app): State<App>,
    Actor(actor): Actor,
    Path(role): Path<String>,
    Body(req): Body<UpdateRole>,
) -> ApiResult<Json<Role>> {
    Ok(Json(app.access.update_role(&actor, &role, req).await?))
}

#[utoipa::path(delete, path = "/api/v1/roles/{role}", tag = "authorization", security(("bearer" = []), ("basic" = [])), params(("role" = String, Path)),
    responses((status = 204, description = "The role is deleted."), (status = 409, body = Problem)))]
pub async fn delete_role(State(app): State<App>, Actor(actor): Actor, Path(role): Path<String>) -> ApiResult<StatusCode> {
    app.access.delete_role(&actor, &role).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/roles/{role}/permissions", tag = "authorization", security(("bearer" = []), ("basic" = [])), params(("role" = String, Path)),
    responses((status = 200, body = RolePermissions, description = "The role's permissions, expanded."), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn role_permissions(State(app): State<App>, Actor(actor): Actor, Path(role): Path<String>) -> ApiResult<Json<RolePermissions>> {
    Ok(Json(app.access.role_permissions(&actor, &role)?))
}

#[utoipa::path(get, path = "/api/v1/bindings", tag = "authorization", security(("bearer" = []), ("basic" = [])), params(BindingQuery), responses((status = 200, body = Page<Binding>, description = "The bindings that match the query.")))]
pub async fn list_bindings(State(app): State<App>, Actor(actor): Actor, Params(q): Params<BindingQuery>) -> ApiResult<Json<Page<Binding>>> {
    Ok(Json(Page { items: app.access.bindings(&actor, &q).await?, next_cursor: None }))
}

#[utoipa::path(post, path = "/api/v1/bindings", tag = "authorization", security(("bearer" = []), ("basic" = [])), request_body = CreateBinding,
    responses((status = 201, body = Binding, description = "The binding, created."), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn create_binding(
    State(app): State<App>,
    Actor(actor): Actor,
    Body(req): Body<CreateBinding>,
) -> ApiResult<(StatusCode, Json<Binding>)> {
    Ok((StatusCode::CREATED, Json(app.access.create_binding(&actor, req).await?)))
}

#[utoipa::path(delete, path = "/api/v1/bindings/{binding}", tag = "authorization", security(("bearer" = []), ("basic" = [])), params(("binding" = Uuid, Path)),
    responses((status = 204, description = "The binding is deleted."), (status = 404, body = Problem)))]
pub async fn delete_binding(State(app): State<App>, Actor(actor): Actor, Path(binding): Path<String>) -> ApiResult<StatusCode> {
    let id = Uuid::parse_str(&binding)
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "validation", format!("{binding:?} is not a binding id")))?;
    app.access.delete_binding(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// --- decisions ----------------------------------------------------------------------------------

#[utoipa::path(post, path = "/api/v1/check", tag = "authorization", security(("bearer" = []), ("basic" = [])), request_body = CheckRequest,
    responses((status = 200, body = CheckResponse, description = "One decision per item, made at the returned directory revision."), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn check(State(app): State<App>, Actor(actor): Actor, Body(req): Body<CheckRequest>) -> ApiResult<Json<CheckResponse>> {
    Ok(Json(app.access.check(&actor, &req).await?))
}

#[utoipa::path(get, path = "/api/v1/accounts/{account}/permissions", tag = "authorization", security(("bearer" = []), ("basic" = [])),
    params(("account" = String, Path, description = "name or id"), PermissionsQuery),
    responses((status = 200, body = ResolvedPermissions, description = "The account's leaf permissions in the tenant (and namespace), and the roles they come from."), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn account_permissions(
    State(app): State<App>,
    Actor(actor): Actor,
    Path(account): Path<String>,
    Params(q): Params<PermissionsQuery>,
) -> ApiResult<Json<ResolvedPermissions>> {
    Ok(Json(app.access.permissions(&actor, &account, &q).await?))
}

// --- bulk export and import -------------------------------------------------------------------

#[utoipa::path(get, path = "/api/v1/export", tag = "transfer", security(("bearer" = []), ("basic" = [])), params(ExportQuery),
    responses((status = 200, content_type = "application/x-ndjson", body = String,
        description = "The directory, one record a line (docs/transfer.md), streamed; the last line is the end record.")))]
pub async fn export(State(app): State<App>, Actor(actor): Actor, Params(q): Params<ExportQuery>) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let lines = app.transfer.export(&actor, q.include_credentials)?;
    let body = futures_util::stream::unfold(lines, |mut lines| async move {
        let line = lines.recv().await?;
        Some((line.map(axum::body::Bytes::from).map_err(std::io::Error::other), lines))
    });
    Ok(([(axum::http::header::CONTENT_TYPE, "application/x-ndjson")], axum::body::Body::from_stream(body)).into_response())
}

#[utoipa::path(post, path = "/api/v1/import", tag = "transfer", security(("bearer" = []), ("basic" = [])), params(ImportQuery),
    request_body(content = String, content_type = "application/x-ndjson", description = "Records as `GET /api/v1/export` writes them (docs/transfer.md)."),
    responses((status = 200, body = ImportSummary, description = "What was imported (or, with `dry_run`, what would be)."),
        (status = 400, body = Problem, description = "A line is refused (`import.invalid`, with `line`); the batches before it are committed.")))]
pub async fn import(
    State(app): State<App>,
    Actor(actor): Actor,
    Params(q): Params<ImportQuery>,
    body: axum::body::Body,
) -> ApiResult<Json<ImportSummary>> {
    Ok(Json(app.transfer.import(&actor, body.into_data_stream(), q.dry_run).await?))
}

/// What the document says besides its operations: the title and the tags. The operations come
/// from the routes themselves (`http::rest_api` registers each once, for the router and the
/// document alike); [`complete`] then adds what the edge does for all of them.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Warden", description = "Identity and access management: accounts, groups, credentials, audit."),
    tags(
        (name = "auth", description = "Sign-in and sessions"),
        (name = "self", description = "The caller's own account"),
        (name = "users", description = "Persons"),
        (name = "registration", description = "People creating their own accounts, and the tokens that let them"),
        (name = "service-accounts", description = "Applications and their API tokens"),
        (name = "groups", description = "Nested groups and membership"),
        (name = "sessions", description = "Every account's sessions and API tokens, and ending them"),
        (name = "audit", description = "Who changed what, when"),
        (name = "authorization", description = "Tenants, roles, bindings and decisions"),
        (name = "transfer", description = "The whole directory out and in, as NDJSON"),
        (name = "oidc", description = "OpenID Connect clients: the applications that sign people in through Warden, and the provider's signing keys"),
        (name = "oidc-provider", description = "The OpenID Connect provider's endpoints for clients and resource servers (the browser's, `/oidc/authorize`, `/oidc/consent` and `/oidc/logout`, are pages, like `/login`)"),
        (name = "compat-kratos", description = "Ory Kratos' admin calls on Warden's users (docs/kratos.md)"),
    )
)]
pub struct ApiDoc;

/// Finishes the document built from the routes: declares the credentials the server takes
/// (`cookie_name` is the configured forward-auth cookie) and lists on every operation the
/// problems the edge answers for all of them.
pub fn complete(document: &mut utoipa::openapi::OpenApi, cookie_name: &str) {
    declare_security_schemes(document, cookie_name);
    for (path, item) in &mut document.paths.paths {
        let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
        for operation in operations.into_iter().flatten() {
            add_problems(path, operation);
        }
    }
}

/// The three credentials of docs/api.md "Authentication". Operations name `bearer` and `basic`
/// in their `security`; the cookie is declared so that the document says what it is, but no
/// operation here takes it.
fn declare_security_schemes(document: &mut utoipa::openapi::OpenApi, cookie_name: &str) {
    use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
    let http = |scheme, description: &str| SecurityScheme::Http(HttpBuilder::new().scheme(scheme).description(Some(description)).build());
    let components = document.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        http(
            HttpAuthScheme::Bearer,
            "A session token from `POST /api/v1/auth/login` (`wds_…`, users; writes only after `POST /api/v1/auth/reauth`) \
             or an API token of a service account (`wdn_…`). Logout and re-authentication take sessions only.",
        ),
    );
    components.add_security_scheme(
        "basic",
        http(
            HttpAuthScheme::Basic,
            "A name and password. May write; costs a password hash on every request and counts toward the soft lock.",
        ),
    );
    components.add_security_scheme(
        "session_cookie",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            cookie_name,
            "The session cookie that the forward-auth sign-in page (`/login`) sets. The API never reads it: \
             it counts only at `/auth/forward` and `/logout`, which are not part of this document.",
        ))),
    );
}

/// Completes an operation's responses with the problems the edge answers for all of them, so
/// that the document lists every status an operation can return (schemathesis holds it to
/// that): `401` (a missing, wrong or expired credential) and `429` (throttled passwords,
/// Basic included) everywhere; `400` wherever there are parameters or a body (and on logout and
/// re-authentication, which refuse credentials that are not sessions); `413` and `415` with a
/// body; `403` and `404` on every route past sign-in and self (permissions, protected targets,
/// names that resolve to nothing), and `403` on every other route that takes a credential but
/// is not open to one confined by the MFA policy (`auth.mfa_enrolment_required`). A problem an operation declares itself without a description
/// (`409`, say) gets the one of its status. Every 4xx and 5xx is `application/problem+json`
/// with [`Problem`].
fn add_problems(path: &str, operation: &mut utoipa::openapi::path::Operation) {
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
    // The OpenID Connect provider's endpoints answer clients in OAuth's own error format (RFC
    // 6749 §5.2), declared per operation; only the server's own failures there are problems.
    if path.starts_with("/oidc/") || path.starts_with("/.well-known/") {
        for (status, response) in &mut operation.responses.responses {
            if let (true, RefOr::T(response)) = (status.starts_with('4') || status.starts_with('5'), response)
                && response.content.is_empty()
            {
                let problem = ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build();
                response.content.insert("application/problem+json".to_owned(), RefOr::T(problem));
            }
        }
        return;
    }
    let has_body = operation.request_body.is_some();
    let has_params = operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let session_only = matches!(path, "/api/v1/auth/logout" | "/api/v1/auth/reauth");
    let management = !path.starts_with("/api/v1/auth/") && !path.starts_with("/api/v1/self");
    // A credential confined by the MFA policy is refused everywhere but enrolment.
    let confinable = operation.security.as_ref().is_some_and(|s| !s.is_empty()) && !super::extract::allowed_before_mfa(path);
    let statuses: [(&str, bool, &str); 8] = [
        ("400", has_body || has_params || session_only, "The request breaks a rule (`validation`, `json.malformed`, `member.ambiguous`)."),
        ("401", true, "No valid credential (`unauthenticated`, `auth.failed`)."),
        (
            "403",
            management || confinable || path == "/api/v1/self/rename",
            "Not allowed (`forbidden`, `session.not_elevated`, `account.high_privilege`, `account.protected`, \
             `password.change_required`, `auth.mfa_enrolment_required`, …).",
        ),
        ("404", management || path == "/api/v1/self/rename", "A name or id that resolves to nothing (`not_found`)."),
        ("409", false, "The change conflicts with what exists (`name.taken`, `group.cycle`, `role.immutable`)."),
        ("413", has_body, "The body exceeds `server.max_body_bytes` (`body.too_large`)."),
        ("415", has_body, "The body is not `application/json` (`content_type.unsupported`)."),
        ("429", true, "Too many failed password checks (`auth.rate_limited`); see `Retry-After`."),
    ];
    let responses = &mut operation.responses.responses;
    for (status, applies, description) in statuses {
        match responses.get_mut(status) {
            Some(RefOr::T(response)) if response.description.is_empty() => description.clone_into(&mut response.description),
            None if applies => {
                let response = ResponseBuilder::new().description(description).build();
                responses.insert(status.to_owned(), RefOr::T(response));
            }
            _ => {}
        }
    }
    for (status, response) in responses {
        if let (true, RefOr::T(response)) = (status.starts_with('4') || status.starts_with('5'), response) {
            let problem = ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build();
            response.content.clear();
            response.content.insert("application/problem+json".to_owned(), RefOr::T(problem));
        }
    }
}
