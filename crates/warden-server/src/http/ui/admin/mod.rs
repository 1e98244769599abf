//! The administrators' console, `/admin/…`: what the management API does, as pages. Each
//! section shows only to a viewer who holds its read permission; its forms call the same
//! services as the API (so a write still needs the permission and an elevated session, and a
//! read-only session is sent to `/reauth` and back). Lists page server-side by name (keyset,
//! never an offset), so a page costs the same at a million accounts as at ten.

mod access;
mod audit;
mod groups;
mod registration;
mod users;

use askama::Template;
use axum::Router;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use warden_core::access::{Permission, Principal};

use super::{Chrome, Viewer, Visit};
use crate::http::App;
use crate::http::session::escape_query;

/// Rows on one page of a console list.
pub const PAGE_SIZE: u32 = 50;

/// `?prefix=&cursor=` of a console list: names starting with `prefix`, after `cursor`.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    pub prefix: Option<String>,
    #[serde(default)]
    pub cursor: Option<String>,
}

/// A list's way to its next page (keyset: the cursor the store handed back) and back to
/// the first.
pub struct Pager {
    pub next: Option<String>,
    pub first: Option<String>,
}

impl Pager {
    pub fn new(path: &str, q: &ListQuery, next_cursor: Option<&str>) -> Self {
        let prefix = q.prefix.as_deref().map(str::trim).filter(|p| !p.is_empty());
        let with = |cursor: Option<&str>| {
            let mut query = Vec::new();
            if let Some(p) = prefix {
                query.push(format!("prefix={}", escape_query(p)));
            }
            if let Some(c) = cursor {
                query.push(format!("cursor={}", escape_query(c)));
            }
            if query.is_empty() { path.to_owned() } else { format!("{path}?{}", query.join("&")) }
        };
        Self { next: next_cursor.map(|c| with(Some(c))), first: q.cursor.as_deref().filter(|c| !c.is_empty()).map(|_| with(None)) }
    }
}

/// The console's sections, each with the permission that opens it.
const SECTIONS: [(&str, &str, Permission); 9] = [
    ("/admin/users", "Users", Permission::UsersRead),
    ("/admin/service-accounts", "Service accounts", Permission::ServiceAccountsRead),
    ("/admin/groups", "Groups", Permission::GroupsRead),
    ("/admin/roles", "Roles", Permission::RolesRead),
    ("/admin/bindings", "Bindings", Permission::BindingsRead),
    ("/admin/tenants", "Tenants", Permission::TenantsRead),
    ("/admin/registration", "Registration", Permission::RegistrationWrite),
    ("/admin/audit", "Audit log", Permission::AuditRead),
    ("/admin/check", "Check access", Permission::Check),
];

/// Whether any section of the console is open to `principal`.
pub fn opens_console(principal: &Principal) -> bool {
    SECTIONS.iter().any(|(_, _, p)| principal.holds(*p))
}

pub fn routes() -> Router<App> {
    Router::new()
        .route("/admin", get(dashboard))
        .merge(users::routes())
        .merge(groups::routes())
        .merge(access::routes())
        .merge(registration::routes())
        .merge(audit::routes())
}

/// A console section's link, for the console's navigation.
pub struct Section {
    pub href: &'static str,
    pub title: &'static str,
}

/// The sections open to `viewer`.
pub fn sections(viewer: &Viewer) -> Vec<Section> {
    SECTIONS.iter().filter(|(_, _, p)| viewer.holds(*p)).map(|(href, title, _)| Section { href, title }).collect()
}

#[derive(Template)]
#[template(path = "admin/dashboard.html")]
struct Dashboard {
    chrome: Chrome,
    sections: Vec<Section>,
}

async fn dashboard(visit: Visit, viewer: Viewer) -> Response {
    let sections = sections(&viewer);
    if sections.is_empty() {
        return visit.message(Some(&viewer), StatusCode::FORBIDDEN, "Console", "Your account holds no administrative role.");
    }
    visit.page(StatusCode::OK, &Dashboard { chrome: visit.chrome("Console", Some(&viewer)), sections })
}
