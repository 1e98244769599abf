//! Users and service accounts in the console: search and paginated lists, a user's page (its
//! profile, groups, roles, credentials) with the administrator's actions, creation, and a
//! service account's page with its API tokens.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use uuid::Uuid;
use warden_core::CoreError;
use warden_core::access::Permission;
use warden_core::api::{CreateApiToken, CreateServiceAccount, CreateUser, MemberEntry, UserCredentials};
use warden_core::credential::Secret;
use warden_core::model::{ApiToken, EmailInput, FlaggedEmail, NameOrId, ServiceAccount, SubjectKind, User};

use super::{ListQuery, Pager, Section, sections};
use crate::http::App;
use crate::http::ui::{Button, Chrome, FieldError, Posted, Viewer, Visit, after, failed, filled, see_other, ticked};
use crate::services::ServiceError;
use crate::services::directory::ListRequest;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/admin/users", get(list))
        .route("/admin/users/new", get(new_form).post(create))
        .route("/admin/users/{user}", get(detail))
        .route("/admin/users/{user}/{action}", post(act))
        .route("/admin/service-accounts", get(service_accounts).post(create_service_account))
        .route("/admin/service-accounts/{account}", get(service_account))
        .route("/admin/service-accounts/{account}/tokens", post(create_token))
        .route("/admin/service-accounts/{account}/tokens/{id}/revoke", post(revoke_token))
        .route("/admin/service-accounts/{account}/delete", post(delete_service_account))
}

fn key(raw: &str) -> Result<NameOrId, ServiceError> {
    NameOrId::parse(raw).map_err(ServiceError::from)
}

// --- the list -----------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage {
    chrome: Chrome,
    sections: Vec<Section>,
    users: Vec<User>,
    prefix: String,
    pager: Pager,
    can_write: bool,
}

/// `GET /admin/users?prefix=&cursor=`: a page of users by name.
async fn list(State(app): State<App>, visit: Visit, viewer: Viewer, Query(q): Query<ListQuery>) -> Response {
    let req = ListRequest { prefix: q.prefix.clone(), cursor: q.cursor.clone(), limit: Some(super::PAGE_SIZE) };
    match app.directory.list_users(&viewer.principal, &req).await {
        Ok(page) => {
            let pager = Pager::new("/admin/users", &q, page.next_cursor.as_deref());
            let page = UsersPage {
                chrome: visit.chrome("Users", Some(&viewer)),
                sections: sections(&viewer),
                users: page.items,
                prefix: q.prefix.unwrap_or_default(),
                pager,
                can_write: viewer.holds(Permission::UsersWrite),
            };
            visit.page(StatusCode::OK, &page)
        }
        Err(e) => visit.problem(Some(&viewer), &e),
    }
}

// --- creation -----------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin/user_new.html")]
struct NewUserPage {
    chrome: Chrome,
    sections: Vec<Section>,
    form: NewUserForm,
}

#[derive(Debug, Default, Clone, Deserialize)]
struct NewUserForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    require_password_change: Option<String>,
}

async fn new_form(visit: Visit, viewer: Viewer) -> Response {
    let page = NewUserPage { chrome: visit.chrome("New user", Some(&viewer)), sections: sections(&viewer), form: NewUserForm::default() };
    visit.page(StatusCode::OK, &page)
}

/// `POST /admin/users/new`: creates the user (the address an administrator gives counts as
/// verified), then, if asked, requires a new password at first sign-in.
async fn create(State(app): State<App>, visit: Visit, viewer: Viewer, Posted(form): Posted<NewUserForm>) -> Response {
    let email = filled(Some(&form.email));
    let req = CreateUser {
        name: form.name.trim().to_owned(),
        display_name: filled(Some(&form.display_name)),
        emails: email.into_iter().map(|address| EmailInput::Flagged(FlaggedEmail { address, primary: true, verified: None })).collect(),
        password: filled(Some(&form.password)).map(Secret::new),
        ..CreateUser::default()
    };
    // Both changes or neither: a creator who may not require a new password is refused before
    // the user exists.
    let require_change = ticked(form.require_password_change.as_deref());
    let allowed = if require_change { viewer.principal.require(Permission::CredentialsWrite).map_err(ServiceError::from) } else { Ok(()) };
    let created = match allowed {
        Ok(()) => app.access.create_user(&viewer.principal, req).await,
        Err(e) => Err(e),
    };
    let created = match created {
        Ok(user) if require_change => {
            app.password_mail.require_password_change(&viewer.principal, &NameOrId::Id(user.id)).await.map(|_| user)
        }
        other => other,
    };
    match created {
        Ok(user) => see_other(&format!("/admin/users/{}", user.name)),
        Err(e @ ServiceError::Core(CoreError::NotElevated)) => failed(&visit, &viewer, &e, "/admin/users/new"),
        Err(e) => {
            let mut form = form;
            form.password.clear();
            let chrome = visit.chrome("New user", Some(&viewer)).with_error(FieldError::of(&e));
            visit.page(crate::http::error::status_of(&e), &NewUserPage { chrome, sections: sections(&viewer), form })
        }
    }
}

// --- a user -------------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin/user.html")]
struct UserPage {
    chrome: Chrome,
    sections: Vec<Section>,
    user: User,
    groups: Vec<MemberEntry>,
    roles: Vec<String>,
    credentials: Option<UserCredentials>,
    can_write: bool,
    can_credentials: bool,
    /// A recovery link just issued, shown this once.
    link: Option<String>,
}

async fn user_page(app: &App, visit: &Visit, viewer: &Viewer, name: &str, chrome: Chrome, link: Option<String>) -> Response {
    let me = &viewer.principal;
    let key = match key(name) {
        Ok(k) => k,
        Err(e) => return visit.problem(Some(viewer), &e),
    };
    let user = match app.directory.user(me, &key).await {
        Ok(u) => u,
        Err(e) => return visit.problem(Some(viewer), &e),
    };
    let id = NameOrId::Id(user.id);
    let groups = if me.holds(Permission::GroupsRead) {
        let req = ListRequest { prefix: None, cursor: None, limit: Some(super::PAGE_SIZE) };
        app.directory.account_groups(me, SubjectKind::User, &id, true, &req).await.map(|p| p.items).unwrap_or_default()
    } else {
        Vec::new()
    };
    let roles = me.index.roles_of((SubjectKind::User, user.id)).iter().map(ToString::to_string).collect();
    let credentials = app.second_factors.overview(me, &id).await.ok();
    let page = UserPage {
        chrome,
        sections: sections(viewer),
        user,
        groups,
        roles,
        credentials,
        can_write: me.holds(Permission::UsersWrite),
        can_credentials: me.holds(Permission::CredentialsWrite),
        link,
    };
    visit.page(StatusCode::OK, &page)
}

async fn detail(State(app): State<App>, visit: Visit, viewer: Viewer, Path(name): Path<String>) -> Response {
    let chrome = visit.chrome(format!("User {name}"), Some(&viewer));
    user_page(&app, &visit, &viewer, &name, chrome, None).await
}

/// `POST /admin/users/{user}/{action}`: one of the administrator's actions on a user.
async fn act(
    State(app): State<App>,
    visit: Visit,
    viewer: Viewer,
    Path((name, action)): Path<(String, String)>,
    Posted(_): Button,
) -> Response {
    let me = &viewer.principal;
    let back = format!("/admin/users/{name}");
    let key = match key(&name) {
        Ok(k) => k,
        Err(e) => return visit.problem(Some(&viewer), &e),
    };
    let notice = match action.as_str() {
        "disable" => app
            .directory
            .set_disabled(me, &key, true)
            .await
            .map(|_| "Disabled: the user cannot sign in, and every session ended.".to_owned()),
        "enable" => app.directory.set_disabled(me, &key, false).await.map(|_| "Enabled.".to_owned()),
        "unlock" => app.directory.unlock(me, &key).await.map(|()| "Unlocked: failed sign-ins are forgotten.".to_owned()),
        "require-password-change" => {
            app.password_mail.require_password_change(me, &key).await.map(|_| "A new password is required; its sessions ended.".to_owned())
        }
        "reset-second-factors" => app.second_factors.reset(me, &key).await.map(|()| "Second factors removed.".to_owned()),
        "revoke-sessions" => app.sessions.revoke_all(me, &key).await.map(|r| format!("{} sessions ended.", r.sessions_ended)),
        "send-account-notice" => {
            app.password_mail.send_account_notice(me, &key).await.map(|m| format!("Account notice queued to {}.", m.to))
        }
        "recovery-link" => match app.recovery.issue(me, &key, None).await {
            Ok(link) => {
                let chrome = visit
                    .chrome(format!("User {name}"), Some(&viewer))
                    .with_notice("Recovery link made. Give it to the person over a channel you trust; it is shown only now.");
                return user_page(&app, &visit, &viewer, &name, chrome, Some(link.url.expose().to_owned())).await;
            }
            Err(e) => Err(e),
        },
        "delete" => match app.directory.delete_user(me, &key).await {
            Ok(()) => return see_other("/admin/users"),
            Err(e) => Err(e),
        },
        _ => return visit.message(Some(&viewer), StatusCode::NOT_FOUND, "No such action", "The console has no such action."),
    };
    match notice {
        Ok(notice) => {
            let chrome = visit.chrome(format!("User {name}"), Some(&viewer)).with_notice(notice);
            user_page(&app, &visit, &viewer, &name, chrome, None).await
        }
        Err(e) => failed(&visit, &viewer, &e, &back),
    }
}

// --- service accounts ---------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin/service_accounts.html")]
struct ServiceAccountsPage {
    chrome: Chrome,
    sections: Vec<Section>,
    accounts: Vec<ServiceAccount>,
    prefix: String,
    pager: Pager,
    can_write: bool,
}

async fn service_accounts(State(app): State<App>, visit: Visit, viewer: Viewer, Query(q): Query<ListQuery>) -> Response {
    let req = ListRequest { prefix: q.prefix.clone(), cursor: q.cursor.clone(), limit: Some(super::PAGE_SIZE) };
    match app.directory.list_service_accounts(&viewer.principal, &req).await {
        Ok(page) => {
            let page = ServiceAccountsPage {
                chrome: visit.chrome("Service accounts", Some(&viewer)),
                sections: sections(&viewer),
                pager: Pager::new("/admin/service-accounts", &q, page.next_cursor.as_deref()),
                accounts: page.items,
                prefix: q.prefix.unwrap_or_default(),
                can_write: viewer.holds(Permission::ServiceAccountsWrite),
            };
            visit.page(StatusCode::OK, &page)
        }
        Err(e) => visit.problem(Some(&viewer), &e),
    }
}

#[derive(Deserialize)]
struct NewServiceAccount {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    managed_by: String,
}

async fn create_service_account(State(app): State<App>, visit: Visit, viewer: Viewer, Posted(form): Posted<NewServiceAccount>) -> Response {
    let req = CreateServiceAccount {
        name: form.name.trim().to_owned(),
        description: filled(Some(&form.description)),
        managed_by: filled(Some(&form.managed_by)),
    };
    match app.directory.create_service_account(&viewer.principal, req).await {
        Ok(sa) => see_other(&format!("/admin/service-accounts/{}", sa.name)),
        Err(e) => failed(&visit, &viewer, &e, "/admin/service-accounts"),
    }
}

#[derive(Template)]
#[template(path = "admin/service_account.html")]
struct ServiceAccountPage {
    chrome: Chrome,
    sections: Vec<Section>,
    account: ServiceAccount,
    tokens: Vec<ApiToken>,
    roles: Vec<String>,
    can_write: bool,
    /// A token just made, shown this once.
    token: Option<String>,
}

async fn service_account_page(app: &App, visit: &Visit, viewer: &Viewer, name: &str, chrome: Chrome, token: Option<String>) -> Response {
    let me = &viewer.principal;
    let key = match key(name) {
        Ok(k) => k,
        Err(e) => return visit.problem(Some(viewer), &e),
    };
    let account = match app.directory.service_account(me, &key).await {
        Ok(a) => a,
        Err(e) => return visit.problem(Some(viewer), &e),
    };
    let tokens = app.auth.list_api_tokens(me, &NameOrId::Id(account.id)).await.map(|p| p.items).unwrap_or_default();
    let roles = me.index.roles_of((SubjectKind::ServiceAccount, account.id)).iter().map(ToString::to_string).collect();
    let page = ServiceAccountPage {
        chrome,
        sections: sections(viewer),
        account,
        tokens,
        roles,
        can_write: me.holds(Permission::ServiceAccountsWrite),
        token,
    };
    visit.page(StatusCode::OK, &page)
}

async fn service_account(State(app): State<App>, visit: Visit, viewer: Viewer, Path(name): Path<String>) -> Response {
    let chrome = visit.chrome(format!("Service account {name}"), Some(&viewer));
    service_account_page(&app, &visit, &viewer, &name, chrome, None).await
}

#[derive(Deserialize)]
struct NewToken {
    #[serde(default)]
    label: String,
    #[serde(default)]
    expires_in: String,
    #[serde(default)]
    read_write: Option<String>,
}

async fn create_token(
    State(app): State<App>,
    visit: Visit,
    viewer: Viewer,
    Path(name): Path<String>,
    Posted(form): Posted<NewToken>,
) -> Response {
    let back = format!("/admin/service-accounts/{name}");
    let req = CreateApiToken {
        label: filled(Some(&form.label)),
        expires_in: filled(Some(&form.expires_in)),
        read_write: ticked(form.read_write.as_deref()),
        roles: None,
    };
    let result = match key(&name) {
        Ok(k) => app.auth.create_api_token(&viewer.principal, &k, req).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(created) => {
            let chrome = visit
                .chrome(format!("Service account {name}"), Some(&viewer))
                .with_notice("Token made. Copy it now: it is shown only once.");
            service_account_page(&app, &visit, &viewer, &name, chrome, Some(created.token.expose().to_owned())).await
        }
        Err(e) => failed(&visit, &viewer, &e, &back),
    }
}

async fn revoke_token(
    State(app): State<App>,
    visit: Visit,
    viewer: Viewer,
    Path((name, id)): Path<(String, String)>,
    Posted(_): Button,
) -> Response {
    let back = format!("/admin/service-accounts/{name}");
    let result = match (key(&name), Uuid::parse_str(&id)) {
        (Ok(k), Ok(id)) => app.auth.revoke_api_token(&viewer.principal, &k, id).await,
        (Err(e), _) => Err(e),
        (_, Err(_)) => Err(CoreError::validation("id", "not a token id").into()),
    };
    after(&visit, &viewer, result, &back, &back)
}

async fn delete_service_account(
    State(app): State<App>,
    visit: Visit,
    viewer: Viewer,
    Path(name): Path<String>,
    Posted(_): Button,
) -> Response {
    let result = match key(&name) {
        Ok(k) => app.directory.delete_service_account(&viewer.principal, &k).await,
        Err(e) => Err(e),
    };
    after(&visit, &viewer, result, "/admin/service-accounts", &format!("/admin/service-accounts/{name}"))
}
