//! Registration in the console: registration tokens (made, listed, revoked; a new token is
//! shown once) and invitations (mailed links bound to an address, listed, revoked).

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use serde::Deserialize;
use uuid::Uuid;
use warden_core::CoreError;
use warden_core::api::{CreateInvitations, CreateRegistrationToken, Invitation, RegistrationTokenInfo};

use super::{Section, sections};
use crate::http::App;
use crate::http::ui::{Button, Chrome, FieldError, Posted, Viewer, Visit, after, failed, filled, lines};
use crate::services::ServiceError;

const HERE: &str = "/admin/registration";

pub fn routes() -> Router<App> {
    Router::new()
        .route(HERE, axum::routing::get(page))
        .route("/admin/registration/tokens", post(create_token))
        .route("/admin/registration/tokens/{id}/revoke", post(revoke_token))
        .route("/admin/registration/invitations", post(invite))
        .route("/admin/registration/invitations/{id}/revoke", post(revoke_invitation))
}

#[derive(Template)]
#[template(path = "admin/registration.html")]
struct RegistrationPage {
    chrome: Chrome,
    sections: Vec<Section>,
    tokens: Vec<RegistrationTokenInfo>,
    invitations: Vec<Invitation>,
    /// A registration link just made, shown once.
    link: Option<String>,
}

async fn show(app: &App, visit: &Visit, viewer: &Viewer, chrome: Chrome, status: StatusCode, link: Option<String>) -> Response {
    let me = &viewer.principal;
    let tokens = match app.registration.tokens(me).await {
        Ok(t) => t,
        Err(e) => return visit.problem(Some(viewer), &e),
    };
    let invitations = app.invitations.list(me).await.unwrap_or_default();
    visit.page(status, &RegistrationPage { chrome, sections: sections(viewer), tokens, invitations, link })
}

async fn page(State(app): State<App>, visit: Visit, viewer: Viewer) -> Response {
    let chrome = visit.chrome("Registration", Some(&viewer));
    show(&app, &visit, &viewer, chrome, StatusCode::OK, None).await
}

#[derive(Deserialize)]
struct NewToken {
    #[serde(default)]
    max_usage: String,
    #[serde(default)]
    ttl: String,
    #[serde(default)]
    roles: String,
    #[serde(default)]
    tenant: String,
}

async fn create_token(State(app): State<App>, visit: Visit, viewer: Viewer, Posted(form): Posted<NewToken>) -> Response {
    let Ok(max_usage) = filled(Some(&form.max_usage)).map(|m| m.parse::<u32>()).transpose() else {
        let chrome = visit.chrome("Registration", Some(&viewer)).with_error(FieldError::new("max_usage", "A whole number."));
        return show(&app, &visit, &viewer, chrome, StatusCode::BAD_REQUEST, None).await;
    };
    let req = CreateRegistrationToken {
        max_usage,
        ttl: filled(Some(&form.ttl)),
        roles: form.roles.split([',', '\n']).map(str::trim).filter(|r| !r.is_empty()).map(str::to_owned).collect(),
        tenant: filled(Some(&form.tenant)),
    };
    match app.registration.create_token(&viewer.principal, req).await {
        Ok(created) => {
            let link = match app.config.server.public_url.as_deref() {
                Some(base) => format!("{}/register?token={}", base.trim_end_matches('/'), created.token.expose()),
                None => created.token.expose().to_owned(),
            };
            let chrome =
                visit.chrome("Registration", Some(&viewer)).with_notice("Registration link made. Copy it now: it is shown only once.");
            show(&app, &visit, &viewer, chrome, StatusCode::OK, Some(link)).await
        }
        Err(e) => again(&app, &visit, &viewer, e).await,
    }
}

/// A refused form: a read-only session re-authenticates; anything else is said on the page.
async fn again(app: &App, visit: &Visit, viewer: &Viewer, e: ServiceError) -> Response {
    if matches!(e, ServiceError::Core(CoreError::NotElevated)) {
        return failed(visit, viewer, &e, HERE);
    }
    let chrome = visit.chrome("Registration", Some(viewer)).with_error(FieldError::of(&e));
    show(app, visit, viewer, chrome, crate::http::error::status_of(&e), None).await
}

fn id_of(raw: &str, what: &'static str) -> Result<Uuid, ServiceError> {
    Uuid::parse_str(raw).map_err(|_| CoreError::validation("id", format!("not {what} id")).into())
}

async fn revoke_token(State(app): State<App>, visit: Visit, viewer: Viewer, Path(id): Path<String>, Posted(_): Button) -> Response {
    let result = match id_of(&id, "a registration token") {
        Ok(id) => app.registration.revoke_token(&viewer.principal, id).await,
        Err(e) => Err(e),
    };
    after(&visit, &viewer, result, HERE, HERE)
}

#[derive(Deserialize)]
struct NewInvitations {
    emails: String,
    #[serde(default)]
    roles: String,
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    ttl: String,
}

async fn invite(State(app): State<App>, visit: Visit, viewer: Viewer, Posted(form): Posted<NewInvitations>) -> Response {
    let req = CreateInvitations {
        emails: lines(&form.emails)
            .into_iter()
            .flat_map(|l| l.split(',').map(str::trim).filter(|e| !e.is_empty()).map(str::to_owned).collect::<Vec<_>>())
            .collect(),
        roles: form.roles.split([',', '\n']).map(str::trim).filter(|r| !r.is_empty()).map(str::to_owned).collect(),
        tenant: filled(Some(&form.tenant)),
        ttl: filled(Some(&form.ttl)),
    };
    match app.invitations.invite(&viewer.principal, req).await {
        Ok(created) => {
            let notice = format!("{} invitation(s) made; {}", created.invitations.len(), created.mail);
            let chrome = visit.chrome("Registration", Some(&viewer)).with_notice(notice);
            show(&app, &visit, &viewer, chrome, StatusCode::OK, None).await
        }
        Err(e) => again(&app, &visit, &viewer, e).await,
    }
}

async fn revoke_invitation(State(app): State<App>, visit: Visit, viewer: Viewer, Path(id): Path<String>, Posted(_): Button) -> Response {
    let result = match id_of(&id, "an invitation") {
        Ok(id) => app.invitations.revoke(&viewer.principal, id).await,
        Err(e) => Err(e),
    };
    after(&visit, &viewer, result, HERE, HERE)
}
