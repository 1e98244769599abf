//! The audit log in the console: every change, newest first, filtered by actor, target,
//! action and time, a page at a time (keyset cursor).

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use warden_core::model::AuditEvent;

use super::{Section, sections};
use crate::http::App;
use crate::http::session::escape_query;
use crate::http::ui::{Chrome, FieldError, Viewer, Visit, filled};
use crate::services::auth::AuditRequest;

pub fn routes() -> Router<App> {
    Router::new().route("/admin/audit", get(audit))
}

#[derive(Debug, Default, Deserialize)]
struct AuditFilter {
    #[serde(default)]
    actor: Option<String>,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    action: Option<String>,
    /// `YYYY-MM-DD` or RFC 3339.
    #[serde(default)]
    since: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    chrome: Chrome,
    sections: Vec<Section>,
    events: Vec<AuditEvent>,
    actor: String,
    target: String,
    action: String,
    since: String,
    next: Option<String>,
}

impl AuditPage {
    fn details(event: &AuditEvent) -> String {
        match &event.details {
            serde_json::Value::Object(map) if map.is_empty() => String::new(),
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        }
    }
}

fn parse_since(raw: &str) -> Option<time::OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::parse(raw, &Rfc3339).ok().or_else(|| {
        time::Date::parse(raw, time::macros::format_description!("[year]-[month]-[day]")).ok().map(|d| d.midnight().assume_utc())
    })
}

async fn audit(State(app): State<App>, visit: Visit, viewer: Viewer, Query(f): Query<AuditFilter>) -> Response {
    let mut chrome = visit.chrome("Audit log", Some(&viewer));
    let since_text = filled(f.since.as_deref());
    let since = match since_text.as_deref().map(parse_since) {
        Some(None) => {
            chrome = chrome.with_error(FieldError::new("since", "A date (YYYY-MM-DD) or a time (RFC 3339)."));
            None
        }
        Some(Some(t)) => Some(t),
        None => None,
    };
    let req = AuditRequest {
        actor: filled(f.actor.as_deref()),
        target: filled(f.target.as_deref()),
        action: filled(f.action.as_deref()),
        since,
        cursor: filled(f.cursor.as_deref()),
        limit: Some(super::PAGE_SIZE),
    };
    let page = match app.auth.audit(&viewer.principal, &req).await {
        Ok(page) => page,
        Err(e) => return visit.problem(Some(&viewer), &e),
    };
    let next = page.next_cursor.map(|c| {
        let mut query = vec![format!("cursor={}", escape_query(&c))];
        for (key, value) in [("actor", &req.actor), ("target", &req.target), ("action", &req.action), ("since", &since_text)] {
            if let Some(v) = value {
                query.push(format!("{key}={}", escape_query(v)));
            }
        }
        format!("/admin/audit?{}", query.join("&"))
    });
    let page = AuditPage {
        chrome,
        sections: sections(&viewer),
        events: page.items,
        actor: req.actor.unwrap_or_default(),
        target: req.target.unwrap_or_default(),
        action: req.action.unwrap_or_default(),
        since: since_text.unwrap_or_default(),
        next,
    };
    visit.page(StatusCode::OK, &page)
}
