//! REST handlers under `/api/v1`: parse, call a service, map the result. Nothing else.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use uuid::Uuid;
use warden_core::api::{
    AddMembers, Added, AuditQuery, BindingQuery, CheckRequest, CheckResponse, CreateApiToken, CreateBinding, CreateGroup, CreateRole,
    CreateServiceAccount, CreateTenant, CreateUser, CreatedApiToken, ExpandQuery, Expanded, ExportQuery, ImportQuery, ImportSummary,
    ListQuery, LoginRequest, LoginResponse, MemberEntry, MembersQuery, Page, PermissionsQuery, Problem, ReauthRequest, ReauthResponse,
    Rename, ResolvedPermissions, RolePermissions, RoleQuery, SetPassword, UpdateRole, UpdateUser, WhoAmI,
};
use warden_core::authz::{Binding, Role, Tenant};
use warden_core::model::{ApiToken, AuditEvent, Group, NameOrId, ServiceAccount, SubjectKind, User};

use super::App;
use super::error::ApiError;
use super::extract::{Actor, Body, ClientAddr, Key, Params};
use crate::services::ServiceError;
use crate::services::auth::{AuditRequest, Auth};
use crate::services::directory::ListRequest;

type ApiResult<T> = Result<T, ApiError>;

impl From<ListQuery> for ListRequest {
    fn from(p: ListQuery) -> Self {
        Self { prefix: p.prefix, cursor: p.cursor, limit: p.limit }
    }
}

// --- authentication and self ------------------------------------------------------------------

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = Problem), (status = 429, body = Problem)))]
pub async fn login(State(app): State<App>, client: ClientAddr, Body(req): Body<LoginRequest>) -> ApiResult<Json<LoginResponse>> {
    Ok(Json(app.auth.login(&req.name, &req.password, client.0).await?))
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", responses((status = 204), (status = 401, body = Problem)))]
pub async fn logout(State(app): State<App>, Actor(actor): Actor) -> ApiResult<StatusCode> {
    app.auth.logout(&actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/auth/reauth", tag = "auth", request_body = ReauthRequest,
    responses((status = 200, body = ReauthResponse), (status = 401, body = Problem)))]
pub async fn reauth(
    State(app): State<App>,
    Actor(actor): Actor,
    client: ClientAddr,
    Body(req): Body<ReauthRequest>,
) -> ApiResult<Json<ReauthResponse>> {
    Ok(Json(app.auth.reauth(&actor, &req.password, client.0).await?))
}

#[utoipa::path(get, path = "/api/v1/self", tag = "self", responses((status = 200, body = WhoAmI), (status = 401, body = Problem)))]
pub async fn whoami(Actor(actor): Actor) -> Json<WhoAmI> {
    Json(Auth::whoami(&actor))
}

#[utoipa::path(post, path = "/api/v1/self/rename", tag = "self", request_body = Rename,
    responses((status = 200, body = User), (status = 403, body = Problem), (status = 409, body = Problem)))]
pub async fn rename_self(State(app): State<App>, Actor(actor): Actor, Body(req): Body<Rename>) -> ApiResult<Json<User>> {
    let me = NameOrId::Id(actor.account.id);
    Ok(Json(app.directory.rename_user(&actor, &me, &req.name).await?))
}

// --- users ------------------------------------------------------------------------------------

#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(ListQuery), responses((status = 200, body = Page<User>)))]
pub async fn list_users(State(app): State<App>, Actor(actor): Actor, Params(p): Params<ListQuery>) -> ApiResult<Json<Page<User>>> {
    Ok(Json(app.directory.list_users(&actor, &p.into()).await?))
}

#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUser,
    responses((status = 201, body = User), (status = 400, body = Problem), (status = 409, body = Problem)))]
pub async fn create_user(State(app): State<App>, Actor(actor): Actor, Body(req): Body<CreateUser>) -> ApiResult<(StatusCode, Json<User>)> {
    Ok((StatusCode::CREATED, Json(app.directory.create_user(&actor, req).await?)))
}

#[utoipa::path(get, path = "/api/v1/users/{user}", tag = "users", params(("user" = String, Path, description = "name or id"), ExpandQuery),
    responses((status = 200, body = Expanded<User>), (status = 400, body = Problem), (status = 404, body = Problem)))]
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

#[utoipa::path(patch, path = "/api/v1/users/{user}", tag = "users", params(("user" = String, Path)), request_body = UpdateUser,
    responses((status = 200, body = User), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn update_user(State(app): State<App>, Actor(actor): Actor, Key(key): Key, Body(req): Body<UpdateUser>) -> ApiResult<Json<User>> {
    Ok(Json(app.directory.update_user(&actor, &key, req).await?))
}

#[utoipa::path(delete, path = "/api/v1/users/{user}", tag = "users", params(("user" = String, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn delete_user(State(app): State<App>, Actor(actor): Actor, Key(key): Key) -> ApiResult<StatusCode> {
    app.directory.delete_user(&actor, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/users/{user}/rename", tag = "users", params(("user" = String, Path)), request_body = Rename,
    responses((status = 200, body = User), (status = 409, body = Problem)))]
pub async fn rename_user(State(app): State<App>, Actor(actor): Actor, Key(key): Key, Body(req): Body<Rename>) -> ApiResult<Json<User>> {
    Ok(Json(app.directory.rename_user(&actor, &key, &req.name).await?))
}

#[utoipa::path(post, path = "/api/v1/users/{user}/disable", tag = "users", params(("user" = String, Path)), responses((status = 200, body = User)))]
pub async fn disable_user(State(app): State<App>, Actor(actor): Actor, Key(key): Key) -> ApiResult<Json<User>> {
    Ok(Json(app.directory.set_disabled(&actor, &key, true).await?))
}

#[utoipa::path(post, path = "/api/v1/users/{user}/enable", tag = "users", params(("user" = String, Path)), responses((status = 200, body = User)))]
pub async fn enable_user(State(app): State<App>, Actor(actor): Actor, Key(key): Key) -> ApiResult<Json<User>> {
    Ok(Json(app.directory.set_disabled(&actor, &key, false).await?))
}

// --- service accounts and their tokens --------------------------------------------------------

#[utoipa::path(get, path = "/api/v1/service-accounts", tag = "service-accounts", params(ListQuery),
    responses((status = 200, body = Page<ServiceAccount>)))]
pub async fn list_service_accounts(
    State(app): State<App>,
    Actor(actor): Actor,
    Params(p): Params<ListQuery>,
) -> ApiResult<Json<Page<ServiceAccount>>> {
    Ok(Json(app.directory.list_service_accounts(&actor, &p.into()).await?))
}

#[utoipa::path(post, path = "/api/v1/service-accounts", tag = "service-accounts", request_body = CreateServiceAccount,
    responses((status = 201, body = ServiceAccount), (status = 409, body = Problem)))]
pub async fn create_service_account(
    State(app): State<App>,
    Actor(actor): Actor,
    Body(req): Body<CreateServiceAccount>,
) -> ApiResult<(StatusCode, Json<ServiceAccount>)> {
    Ok((StatusCode::CREATED, Json(app.directory.create_service_account(&actor, req).await?)))
}

#[utoipa::path(get, path = "/api/v1/service-accounts/{sa}", tag = "service-accounts", params(("sa" = String, Path), ExpandQuery),
    responses((status = 200, body = Expanded<ServiceAccount>), (status = 400, body = Problem), (status = 404, body = Problem)))]
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

#[utoipa::path(delete, path = "/api/v1/service-accounts/{sa}", tag = "service-accounts", params(("sa" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete_service_account(State(app): State<App>, Actor(actor): Actor, Key(key): Key) -> ApiResult<StatusCode> {
    app.directory.delete_service_account(&actor, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/service-accounts/{sa}/tokens", tag = "service-accounts", params(("sa" = String, Path)),
    responses((status = 200, body = Page<ApiToken>)))]
pub async fn list_tokens(State(app): State<App>, Actor(actor): Actor, Key(key): Key) -> ApiResult<Json<Page<ApiToken>>> {
    Ok(Json(app.auth.list_api_tokens(&actor, &key).await?))
}

#[utoipa::path(post, path = "/api/v1/service-accounts/{sa}/tokens", tag = "service-accounts", params(("sa" = String, Path)),
    request_body = CreateApiToken, responses((status = 201, body = CreatedApiToken), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn create_token(
    State(app): State<App>,
    Actor(actor): Actor,
    Key(key): Key,
    Body(req): Body<CreateApiToken>,
) -> ApiResult<(StatusCode, Json<CreatedApiToken>)> {
    Ok((StatusCode::CREATED, Json(app.auth.create_api_token(&actor, &key, req).await?)))
}

#[utoipa::path(delete, path = "/api/v1/service-accounts/{sa}/tokens/{token_id}", tag = "service-accounts",
    params(("sa" = String, Path), ("token_id" = Uuid, Path)), responses((status = 204), (status = 404, body = Problem)))]
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

// --- groups -----------------------------------------------------------------------------------

#[utoipa::path(get, path = "/api/v1/groups", tag = "groups", params(ListQuery), responses((status = 200, body = Page<Group>)))]
pub async fn list_groups(State(app): State<App>, Actor(actor): Actor, Params(p): Params<ListQuery>) -> ApiResult<Json<Page<Group>>> {
    Ok(Json(app.directory.list_groups(&actor, &p.into()).await?))
}

#[utoipa::path(post, path = "/api/v1/groups", tag = "groups", request_body = CreateGroup,
    responses((status = 201, body = Group), (status = 409, body = Problem)))]
pub async fn create_group(
    State(app): State<App>,
    Actor(actor): Actor,
    Body(req): Body<CreateGroup>,
) -> ApiResult<(StatusCode, Json<Group>)> {
    Ok((StatusCode::CREATED, Json(app.directory.create_group(&actor, req).await?)))
}

#[utoipa::path(get, path = "/api/v1/groups/{group}", tag = "groups", params(("group" = String, Path)),
    responses((status = 200, body = Group), (status = 404, body = Problem)))]
pub async fn get_group(State(app): State<App>, Actor(actor): Actor, Key(key): Key) -> ApiResult<Json<Group>> {
    Ok(Json(app.directory.group(&actor, &key).await?))
}

#[utoipa::path(delete, path = "/api/v1/groups/{group}", tag = "groups", params(("group" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete_group(State(app): State<App>, Actor(actor): Actor, Key(key): Key) -> ApiResult<StatusCode> {
    app.directory.delete_group(&actor, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/groups/{group}/members", tag = "groups", params(("group" = String, Path), MembersQuery),
    responses((status = 200, body = Page<MemberEntry>)))]
pub async fn list_members(
    State(app): State<App>,
    Actor(actor): Actor,
    Key(key): Key,
    Params(p): Params<MembersQuery>,
) -> ApiResult<Json<Page<MemberEntry>>> {
    let req = ListRequest { prefix: None, cursor: p.cursor, limit: p.limit };
    Ok(Json(app.directory.members(&actor, &key, p.effective, &req).await?))
}

#[utoipa::path(get, path = "/api/v1/users/{user}/groups", tag = "users", params(("user" = String, Path, description = "name or id"), MembersQuery),
    responses((status = 200, body = Page<MemberEntry>, description = "the groups the user is in, `effective`: also through nesting")))]
pub async fn list_user_groups(
    State(app): State<App>,
    Actor(actor): Actor,
    Key(key): Key,
    Params(p): Params<MembersQuery>,
) -> ApiResult<Json<Page<MemberEntry>>> {
    let req = ListRequest { prefix: None, cursor: p.cursor, limit: p.limit };
    Ok(Json(app.directory.account_groups(&actor, SubjectKind::User, &key, p.effective, &req).await?))
}

#[utoipa::path(get, path = "/api/v1/service-accounts/{sa}/groups", tag = "service-accounts", params(("sa" = String, Path, description = "name or id"), MembersQuery),
    responses((status = 200, body = Page<MemberEntry>, description = "the groups the service account is in, `effective`: also through nesting")))]
pub async fn list_service_account_groups(
    State(app): State<App>,
    Actor(actor): Actor,
    Key(key): Key,
    Params(p): Params<MembersQuery>,
) -> ApiResult<Json<Page<MemberEntry>>> {
    let req = ListRequest { prefix: None, cursor: p.cursor, limit: p.limit };
    Ok(Json(app.directory.account_groups(&actor, SubjectKind::ServiceAccount, &key, p.effective, &req).await?))
}

#[utoipa::path(post, path = "/api/v1/groups/{group}/members", tag = "groups", params(("group" = String, Path)), request_body = AddMembers,
    responses((status = 200, body = Added), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn add_members(
    State(app): State<App>,
    Actor(actor): Actor,
    Key(key): Key,
    Body(req): Body<AddMembers>,
) -> ApiResult<Json<Added>> {
    Ok(Json(Added { added: app.directory.add_members(&actor, &key, req).await? }))
}

#[utoipa::path(delete, path = "/api/v1/groups/{group}/members/{member}", tag = "groups",
    params(("group" = String, Path), ("member" = String, Path, description = "user:NAME, sa:NAME, group:NAME, a bare name or an id")),
    responses((status = 204), (status = 404, body = Problem)))]
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

#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery), responses((status = 200, body = Page<AuditEvent>)))]
pub async fn audit(State(app): State<App>, Actor(actor): Actor, Params(p): Params<AuditQuery>) -> ApiResult<Json<Page<AuditEvent>>> {
    let req = AuditRequest { actor: p.actor, target: p.target, action: p.action, since: p.since, cursor: p.cursor, limit: p.limit };
    Ok(Json(app.auth.audit(&actor, &req).await?))
}

#[utoipa::path(put, path = "/api/v1/users/{user}/password", tag = "users", params(("user" = String, Path)), request_body = SetPassword,
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn set_password(
    State(app): State<App>,
    Actor(actor): Actor,
    Key(key): Key,
    Body(req): Body<SetPassword>,
) -> ApiResult<StatusCode> {
    app.directory.set_password(&actor, &key, &req.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

// --- tenants, roles, bindings -------------------------------------------------------------------

#[utoipa::path(get, path = "/api/v1/tenants", tag = "authorization", responses((status = 200, body = Page<Tenant>)))]
pub async fn list_tenants(State(app): State<App>, Actor(actor): Actor) -> ApiResult<Json<Page<Tenant>>> {
    Ok(Json(Page { items: app.access.tenants(&actor).await?, next_cursor: None }))
}

#[utoipa::path(post, path = "/api/v1/tenants", tag = "authorization", request_body = CreateTenant,
    responses((status = 201, body = Tenant), (status = 409, body = Problem)))]
pub async fn create_tenant(
    State(app): State<App>,
    Actor(actor): Actor,
    Body(req): Body<CreateTenant>,
) -> ApiResult<(StatusCode, Json<Tenant>)> {
    Ok((StatusCode::CREATED, Json(app.access.create_tenant(&actor, req).await?)))
}

#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}", tag = "authorization", params(("tenant" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete_tenant(State(app): State<App>, Actor(actor): Actor, Path(tenant): Path<String>) -> ApiResult<StatusCode> {
    app.access.delete_tenant(&actor, &tenant).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/roles", tag = "authorization", params(RoleQuery), responses((status = 200, body = Page<Role>)))]
pub async fn list_roles(State(app): State<App>, Actor(actor): Actor, Params(q): Params<RoleQuery>) -> ApiResult<Json<Page<Role>>> {
    Ok(Json(Page { items: app.access.roles(&actor, q.tenant.as_deref())?, next_cursor: None }))
}

#[utoipa::path(post, path = "/api/v1/roles", tag = "authorization", request_body = CreateRole,
    responses((status = 201, body = Role), (status = 403, body = Problem), (status = 409, body = Problem)))]
pub async fn create_role(State(app): State<App>, Actor(actor): Actor, Body(req): Body<CreateRole>) -> ApiResult<(StatusCode, Json<Role>)> {
    Ok((StatusCode::CREATED, Json(app.access.create_role(&actor, req).await?)))
}

#[utoipa::path(get, path = "/api/v1/roles/{role}", tag = "authorization", params(("role" = String, Path)),
    responses((status = 200, body = Role), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get_role(State(app): State<App>, Actor(actor): Actor, Path(role): Path<String>) -> ApiResult<Json<Role>> {
    Ok(Json(app.access.role(&actor, &role)?))
}

#[utoipa::path(patch, path = "/api/v1/roles/{role}", tag = "authorization", params(("role" = String, Path)), request_body = UpdateRole,
    responses((status = 200, body = Role), (status = 409, body = Problem)))]
pub async fn update_role(
    State(app): State<App>,
    Actor(actor): Actor,
    Path(role): Path<String>,
    Body(req): Body<UpdateRole>,
) -> ApiResult<Json<Role>> {
    Ok(Json(app.access.update_role(&actor, &role, req).await?))
}

#[utoipa::path(delete, path = "/api/v1/roles/{role}", tag = "authorization", params(("role" = String, Path)),
    responses((status = 204), (status = 409, body = Problem)))]
pub async fn delete_role(State(app): State<App>, Actor(actor): Actor, Path(role): Path<String>) -> ApiResult<StatusCode> {
    app.access.delete_role(&actor, &role).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/roles/{role}/permissions", tag = "authorization", params(("role" = String, Path)),
    responses((status = 200, body = RolePermissions), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn role_permissions(State(app): State<App>, Actor(actor): Actor, Path(role): Path<String>) -> ApiResult<Json<RolePermissions>> {
    Ok(Json(app.access.role_permissions(&actor, &role)?))
}

#[utoipa::path(get, path = "/api/v1/bindings", tag = "authorization", params(BindingQuery), responses((status = 200, body = Page<Binding>)))]
pub async fn list_bindings(State(app): State<App>, Actor(actor): Actor, Params(q): Params<BindingQuery>) -> ApiResult<Json<Page<Binding>>> {
    Ok(Json(Page { items: app.access.bindings(&actor, &q).await?, next_cursor: None }))
}

#[utoipa::path(post, path = "/api/v1/bindings", tag = "authorization", request_body = CreateBinding,
    responses((status = 201, body = Binding), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn create_binding(
    State(app): State<App>,
    Actor(actor): Actor,
    Body(req): Body<CreateBinding>,
) -> ApiResult<(StatusCode, Json<Binding>)> {
    Ok((StatusCode::CREATED, Json(app.access.create_binding(&actor, req).await?)))
}

#[utoipa::path(delete, path = "/api/v1/bindings/{binding}", tag = "authorization", params(("binding" = Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete_binding(State(app): State<App>, Actor(actor): Actor, Path(binding): Path<String>) -> ApiResult<StatusCode> {
    let id = Uuid::parse_str(&binding)
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "validation", format!("{binding:?} is not a binding id")))?;
    app.access.delete_binding(&actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// --- decisions ----------------------------------------------------------------------------------

#[utoipa::path(post, path = "/api/v1/check", tag = "authorization", request_body = CheckRequest,
    responses((status = 200, body = CheckResponse), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn check(State(app): State<App>, Actor(actor): Actor, Body(req): Body<CheckRequest>) -> ApiResult<Json<CheckResponse>> {
    Ok(Json(app.access.check(&actor, &req).await?))
}

#[utoipa::path(get, path = "/api/v1/accounts/{account}/permissions", tag = "authorization",
    params(("account" = String, Path, description = "name or id"), PermissionsQuery),
    responses((status = 200, body = ResolvedPermissions), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn account_permissions(
    State(app): State<App>,
    Actor(actor): Actor,
    Path(account): Path<String>,
    Params(q): Params<PermissionsQuery>,
) -> ApiResult<Json<ResolvedPermissions>> {
    Ok(Json(app.access.permissions(&actor, &account, &q).await?))
}

// --- bulk export and import -------------------------------------------------------------------

#[utoipa::path(get, path = "/api/v1/export", tag = "transfer", params(ExportQuery),
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

#[utoipa::path(post, path = "/api/v1/import", tag = "transfer", params(ImportQuery),
    request_body(content = String, content_type = "application/x-ndjson", description = "Records as `GET /api/v1/export` writes them (docs/transfer.md)."),
    responses((status = 200, body = ImportSummary),
        (status = 400, body = Problem, description = "A line is refused (`import.invalid`, with `line`); the batches before it are committed.")))]
pub async fn import(
    State(app): State<App>,
    Actor(actor): Actor,
    Params(q): Params<ImportQuery>,
    body: axum::body::Body,
) -> ApiResult<Json<ImportSummary>> {
    Ok(Json(app.transfer.import(&actor, body.into_data_stream(), q.dry_run).await?))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Warden", description = "Identity and access management: accounts, groups, credentials, audit."),
    modifiers(&ProblemResponses),
    paths(
        login, logout, reauth, whoami, rename_self, set_password,
        list_tenants, create_tenant, delete_tenant, list_roles, create_role, get_role, update_role, delete_role, role_permissions,
        list_bindings, create_binding, delete_binding, check, account_permissions,
        list_users, create_user, get_user, update_user, delete_user, rename_user, disable_user, enable_user, list_user_groups,
        list_service_accounts, create_service_account, get_service_account, delete_service_account, list_service_account_groups,
        list_tokens, create_token, revoke_token,
        list_groups, create_group, get_group, delete_group, list_members, add_members, remove_member,
        audit, export, import,
    ),
    tags(
        (name = "auth", description = "Sign-in and sessions"),
        (name = "self", description = "The caller's own account"),
        (name = "users", description = "Persons"),
        (name = "service-accounts", description = "Applications and their API tokens"),
        (name = "groups", description = "Nested groups and membership"),
        (name = "audit", description = "Who changed what, when"),
        (name = "authorization", description = "Tenants, roles, bindings and decisions"),
        (name = "transfer", description = "The whole directory out and in, as NDJSON"),
    )
)]
pub struct ApiDoc;

/// Completes every operation's responses with the problems the edge answers for all of them,
/// so that the document lists every status an operation can return (schemathesis holds it to
/// that): `401` (a missing, wrong or expired credential) and `429` (throttled passwords,
/// Basic included) everywhere; `400` wherever there are parameters or a body (and on logout and
/// re-authentication, which refuse credentials that are not sessions); `413` and `415` with a
/// body; `403` and `404` on every route past sign-in and self (permissions, protected targets,
/// names that resolve to nothing). Every 4xx is `application/problem+json` with [`Problem`].
struct ProblemResponses;

impl utoipa::Modify for ProblemResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in &mut openapi.paths.paths {
            let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for operation in operations.into_iter().flatten() {
                add_problems(path, operation);
            }
        }
    }
}

fn add_problems(path: &str, operation: &mut utoipa::openapi::path::Operation) {
    use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
    let has_body = operation.request_body.is_some();
    let has_params = operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let session_only = matches!(path, "/api/v1/auth/logout" | "/api/v1/auth/reauth");
    let management = !path.starts_with("/api/v1/auth/") && !path.starts_with("/api/v1/self");
    let statuses: [(&str, bool, &str); 7] = [
        ("400", has_body || has_params || session_only, "The request breaks a rule (`validation`, `json.malformed`, `member.ambiguous`)."),
        ("401", true, "No valid credential (`unauthenticated`, `auth.failed`)."),
        (
            "403",
            management || path == "/api/v1/self/rename",
            "Not allowed (`forbidden`, `session.not_elevated`, `account.high_privilege`, `account.protected`, …).",
        ),
        ("404", management || path == "/api/v1/self/rename", "A name or id that resolves to nothing (`not_found`)."),
        ("413", has_body, "The body exceeds `server.max_body_bytes` (`body.too_large`)."),
        ("415", has_body, "The body is not `application/json` (`content_type.unsupported`)."),
        ("429", true, "Too many failed password checks (`auth.rate_limited`); see `Retry-After`."),
    ];
    for (status, applies, description) in statuses {
        if applies && !operation.responses.responses.contains_key(status) {
            let response = ResponseBuilder::new().description(description).build();
            operation.responses.responses.insert(status.to_owned(), RefOr::T(response));
        }
    }
    for (status, response) in &mut operation.responses.responses {
        if let (true, RefOr::T(response)) = (status.starts_with('4'), response) {
            let problem = ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build();
            response.content.clear();
            response.content.insert("application/problem+json".to_owned(), RefOr::T(problem));
        }
    }
}
