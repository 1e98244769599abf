//! Authorization in the console: roles and their expanded permissions, bindings, tenants, and
//! "check access", which shows the explanation the check API gives (account → groups →
//! binding → role → permission).

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
use warden_core::api::{BindingQuery, CheckRequest, CheckResponse, CreateBinding, CreateRole, CreateTenant};
use warden_core::authz::{Binding, Role, RoleSource, Tenant};

use super::{Section, sections};
use crate::http::App;
use crate::http::ui::{Button, Chrome, FieldError, Posted, Viewer, Visit, after, failed, filled, lines, see_other};
use crate::services::ServiceError;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/admin/roles", get(roles).post(create_role))
        .route("/admin/roles/{role}", get(role))
        .route("/admin/roles/{role}/delete", post(delete_role))
        .route("/admin/bindings", get(bindings).post(create_binding))
        .route("/admin/bindings/{id}/delete", post(delete_binding))
        .route("/admin/tenants", get(tenants).post(create_tenant))
        .route("/admin/tenants/{tenant}/delete", post(delete_tenant))
        .route("/admin/check", get(check))
}

fn not_elevated(e: &ServiceError) -> bool {
    matches!(e, ServiceError::Core(CoreError::NotElevated))
}

// --- roles --------------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin/roles.html")]
struct RolesPage {
    chrome: Chrome,
    sections: Vec<Section>,
    roles: Vec<Role>,
    can_write: bool,
}

impl RolesPage {
    fn source(role: &Role) -> &'static str {
        match role.source {
            RoleSource::BuiltIn => "built-in",
            RoleSource::System => "system",
            RoleSource::Dynamic => "dynamic",
        }
    }
}

fn roles_page(app: &App, visit: &Visit, viewer: &Viewer, chrome: Chrome, status: StatusCode) -> Response {
    match app.access.roles(&viewer.principal, None) {
        Ok(roles) => {
            let page = RolesPage { chrome, sections: sections(viewer), roles, can_write: viewer.holds(Permission::RolesWrite) };
            visit.page(status, &page)
        }
        Err(e) => visit.problem(Some(viewer), &e),
    }
}

async fn roles(State(app): State<App>, visit: Visit, viewer: Viewer) -> Response {
    let chrome = visit.chrome("Roles", Some(&viewer));
    roles_page(&app, &visit, &viewer, chrome, StatusCode::OK)
}

#[derive(Deserialize)]
struct NewRole {
    #[serde(default)]
    id: String,
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    permissions: String,
}

async fn create_role(State(app): State<App>, visit: Visit, viewer: Viewer, Posted(form): Posted<NewRole>) -> Response {
    let req = CreateRole {
        id: filled(Some(&form.id)),
        name: form.name.trim().to_owned(),
        description: filled(Some(&form.description)),
        tenant: filled(Some(&form.tenant)),
        permissions: lines(&form.permissions),
    };
    match app.access.create_role(&viewer.principal, req).await {
        Ok(role) => see_other(&format!("/admin/roles/{}", role.id)),
        Err(e) if not_elevated(&e) => failed(&visit, &viewer, &e, "/admin/roles"),
        Err(e) => {
            let chrome = visit.chrome("Roles", Some(&viewer)).with_error(FieldError::of(&e));
            roles_page(&app, &visit, &viewer, chrome, crate::http::error::status_of(&e))
        }
    }
}

#[derive(Template)]
#[template(path = "admin/role.html")]
struct RolePage {
    chrome: Chrome,
    sections: Vec<Section>,
    role: Role,
    source: &'static str,
    /// Every permission the role grants, its tree expanded.
    expanded: Vec<String>,
    bindings: Vec<Binding>,
    can_write: bool,
}

async fn role(State(app): State<App>, visit: Visit, viewer: Viewer, Path(id): Path<String>) -> Response {
    let me = &viewer.principal;
    let role = match app.access.role(me, &id) {
        Ok(r) => r,
        Err(e) => return visit.problem(Some(&viewer), &e),
    };
    let expanded = app.access.role_permissions(me, &id).map(|p| p.permissions).unwrap_or_default();
    let query = BindingQuery { role: Some(role.id.to_string()), ..BindingQuery::default() };
    let bindings = if me.holds(Permission::BindingsRead) { app.access.bindings(me, &query).await.unwrap_or_default() } else { Vec::new() };
    let source = RolesPage::source(&role);
    let page = RolePage {
        chrome: visit.chrome(format!("Role {}", role.name), Some(&viewer)),
        sections: sections(&viewer),
        source,
        expanded,
        bindings,
        can_write: me.holds(Permission::RolesWrite) && role.source == RoleSource::Dynamic,
        role,
    };
    visit.page(StatusCode::OK, &page)
}

async fn delete_role(State(app): State<App>, visit: Visit, viewer: Viewer, Path(id): Path<String>, Posted(_): Button) -> Response {
    match app.access.delete_role(&viewer.principal, &id).await {
        Ok(()) => see_other("/admin/roles"),
        Err(e) => failed(&visit, &viewer, &e, &format!("/admin/roles/{id}")),
    }
}

// --- bindings -----------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
struct BindingFilter {
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    tenant: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/bindings.html")]
struct BindingsPage {
    chrome: Chrome,
    sections: Vec<Section>,
    bindings: Vec<Binding>,
    filter_subject: String,
    filter_role: String,
    filter_tenant: String,
    can_write: bool,
}

async fn bindings_page(app: &App, visit: &Visit, viewer: &Viewer, filter: BindingFilter, chrome: Chrome, status: StatusCode) -> Response {
    let query = BindingQuery {
        subject: filled(filter.subject.as_deref()),
        role: filled(filter.role.as_deref()),
        tenant: filled(filter.tenant.as_deref()),
    };
    match app.access.bindings(&viewer.principal, &query).await {
        Ok(bindings) => {
            let page = BindingsPage {
                chrome,
                sections: sections(viewer),
                bindings,
                filter_subject: query.subject.unwrap_or_default(),
                filter_role: query.role.unwrap_or_default(),
                filter_tenant: query.tenant.unwrap_or_default(),
                can_write: viewer.holds(Permission::BindingsWrite),
            };
            visit.page(status, &page)
        }
        Err(e) => visit.problem(Some(viewer), &e),
    }
}

async fn bindings(State(app): State<App>, visit: Visit, viewer: Viewer, Query(filter): Query<BindingFilter>) -> Response {
    let chrome = visit.chrome("Bindings", Some(&viewer));
    bindings_page(&app, &visit, &viewer, filter, chrome, StatusCode::OK).await
}

#[derive(Deserialize)]
struct NewBinding {
    role: String,
    subject: String,
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    namespaces: String,
}

async fn create_binding(State(app): State<App>, visit: Visit, viewer: Viewer, Posted(form): Posted<NewBinding>) -> Response {
    let req = CreateBinding {
        role: form.role.trim().to_owned(),
        subject: form.subject.trim().to_owned(),
        tenant: filled(Some(&form.tenant)),
        namespaces: form.namespaces.split([',', '\n']).map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned).collect(),
    };
    match app.access.create_binding(&viewer.principal, req).await {
        Ok(_) => see_other("/admin/bindings"),
        Err(e) if not_elevated(&e) => failed(&visit, &viewer, &e, "/admin/bindings"),
        Err(e) => {
            let chrome = visit.chrome("Bindings", Some(&viewer)).with_error(FieldError::of(&e));
            bindings_page(&app, &visit, &viewer, BindingFilter::default(), chrome, crate::http::error::status_of(&e)).await
        }
    }
}

async fn delete_binding(State(app): State<App>, visit: Visit, viewer: Viewer, Path(id): Path<String>, Posted(_): Button) -> Response {
    let result = match Uuid::parse_str(&id) {
        Ok(id) => app.access.delete_binding(&viewer.principal, id).await,
        Err(_) => Err(CoreError::validation("id", "not a binding id").into()),
    };
    after(&visit, &viewer, result, "/admin/bindings", "/admin/bindings")
}

// --- tenants ------------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin/tenants.html")]
struct TenantsPage {
    chrome: Chrome,
    sections: Vec<Section>,
    tenants: Vec<Tenant>,
    can_write: bool,
}

async fn tenants_page(app: &App, visit: &Visit, viewer: &Viewer, chrome: Chrome, status: StatusCode) -> Response {
    match app.access.tenants(&viewer.principal).await {
        Ok(tenants) => {
            let page = TenantsPage { chrome, sections: sections(viewer), tenants, can_write: viewer.holds(Permission::TenantsWrite) };
            visit.page(status, &page)
        }
        Err(e) => visit.problem(Some(viewer), &e),
    }
}

async fn tenants(State(app): State<App>, visit: Visit, viewer: Viewer) -> Response {
    let chrome = visit.chrome("Tenants", Some(&viewer));
    tenants_page(&app, &visit, &viewer, chrome, StatusCode::OK).await
}

#[derive(Deserialize)]
struct NewTenant {
    name: String,
    #[serde(default)]
    description: String,
}

async fn create_tenant(State(app): State<App>, visit: Visit, viewer: Viewer, Posted(form): Posted<NewTenant>) -> Response {
    let req = CreateTenant { name: form.name.trim().to_owned(), description: filled(Some(&form.description)) };
    match app.access.create_tenant(&viewer.principal, req).await {
        Ok(_) => see_other("/admin/tenants"),
        Err(e) if not_elevated(&e) => failed(&visit, &viewer, &e, "/admin/tenants"),
        Err(e) => {
            let chrome = visit.chrome("Tenants", Some(&viewer)).with_error(FieldError::of(&e));
            tenants_page(&app, &visit, &viewer, chrome, crate::http::error::status_of(&e)).await
        }
    }
}

async fn delete_tenant(State(app): State<App>, visit: Visit, viewer: Viewer, Path(name): Path<String>, Posted(_): Button) -> Response {
    match app.access.delete_tenant(&viewer.principal, &name).await {
        Ok(()) => see_other("/admin/tenants"),
        Err(e) => failed(&visit, &viewer, &e, "/admin/tenants"),
    }
}

// --- check access -------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
struct CheckForm {
    #[serde(default)]
    subject: String,
    #[serde(default)]
    permission: String,
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    namespace: String,
}

#[derive(Template)]
#[template(path = "admin/check.html")]
struct CheckPage {
    chrome: Chrome,
    sections: Vec<Section>,
    form: CheckForm,
    answer: Option<CheckResponse>,
}

/// `GET /admin/check?subject=&permission=&tenant=&namespace=`: the decision and its
/// explanation (a read, so a GET form: the page can be linked and reloaded).
async fn check(State(app): State<App>, visit: Visit, viewer: Viewer, Query(form): Query<CheckForm>) -> Response {
    let mut chrome = visit.chrome("Check access", Some(&viewer));
    let answer = if form.subject.trim().is_empty() || form.permission.trim().is_empty() {
        None
    } else {
        let req = CheckRequest {
            subject: form.subject.trim().to_owned(),
            tenant: filled(Some(&form.tenant)),
            permission: Some(form.permission.trim().to_owned()),
            namespace: filled(Some(&form.namespace)),
            checks: Vec::new(),
            explain: true,
        };
        match app.access.check(&viewer.principal, &req).await {
            Ok(answer) => Some(answer),
            Err(e) => {
                chrome = chrome.with_error(FieldError::of(&e));
                None
            }
        }
    };
    visit.page(StatusCode::OK, &CheckPage { chrome, sections: sections(&viewer), form, answer })
}
