//! The web UI: server-rendered pages for people (signing in, their own account, the pages mail
//! links to) and the administrators' console. Every page is a client of the same services as
//! the REST API, never a second implementation of a rule. Pages work without script; the one
//! script (`/assets/warden.js`) makes the WebAuthn calls passkeys need, and nothing else
//! depends on it.
//!
//! What every page shares lives here:
//! - [`Visit`]: the request as a page sees it (the CSRF token for its forms, the client) and
//!   [`Visit::page`], which renders a template with the security headers and the CSP;
//! - [`Viewer`]: the person signed in by the session cookie, else a redirect to `/login` that
//!   comes back; an account that must change its password or enrol a second factor is sent to
//!   that screen first, as the API confines it to those calls;
//! - [`Posted`]: a form post, CSRF-checked before a field of it is read;
//! - [`Chrome`]: what the layout around every page shows, and a form's error by field.

pub mod account;
pub mod admin;
mod assets;
pub mod onboarding;
pub mod sign_in;

use std::net::IpAddr;

use askama::Template;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Router, body::Bytes};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use warden_core::CoreError;
use warden_core::access::{AuthMethod, Permission, Principal};

use super::App;
use super::error::{ApiError, status_of};
use super::extract::{ClientAddr, user_agent};
use super::session::csrf::Issued;
use super::session::{SessionCookie, csrf, escape_query, secure_page};
use crate::services::ServiceError;

/// The pages every listener serves: assets, sign-in, the person's own account, mail links.
pub fn public_routes() -> Router<App> {
    Router::new().route("/assets/{file}", get(assets::serve)).merge(sign_in::routes()).merge(account::routes()).merge(onboarding::routes())
}

/// The console, served where the management API is.
pub fn console_routes() -> Router<App> {
    admin::routes()
}

// --- the layout ---------------------------------------------------------------------------------

/// What the layout around every page shows.
pub struct Chrome {
    pub title: String,
    /// The CSRF token every form of the page carries.
    pub csrf: String,
    /// The signed-in person's navigation; `None` on pages for people not signed in.
    pub nav: Option<Nav>,
    /// A confirmation after a change ("Saved.").
    pub notice: Option<String>,
    /// What went wrong with the form just posted.
    pub error: Option<FieldError>,
}

impl Chrome {
    /// The message for `field`, shown next to its input.
    pub fn field_error(&self, field: &str) -> Option<&str> {
        self.error.as_ref().filter(|e| e.field == field).map(|e| e.message.as_str())
    }

    /// The message of an error that belongs to no input of the page, shown above the form.
    pub fn page_error(&self, fields: &[&str]) -> Option<&str> {
        self.error.as_ref().filter(|e| !fields.contains(&e.field.as_str())).map(|e| e.message.as_str())
    }

    #[must_use]
    pub fn with_error(mut self, error: FieldError) -> Self {
        self.error = Some(error);
        self
    }

    #[must_use]
    pub fn with_notice(mut self, notice: impl Into<String>) -> Self {
        self.notice = Some(notice.into());
        self
    }
}

/// The signed-in person's navigation.
pub struct Nav {
    pub name: String,
    /// Whether any part of the console is open to them.
    pub console: bool,
    /// Whether the session may make changes now.
    pub elevated: bool,
}

/// A form's error: the input it belongs to (`""` for none) and what to tell the person.
#[derive(Debug, Clone)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self { field: field.to_owned(), message: message.into() }
    }

    /// What a failed service call tells the person: a validation error by its field, anything
    /// else by the API's problem detail (internal failures are logged and said generically).
    pub fn of(e: &ServiceError) -> Self {
        let field = match e {
            ServiceError::Core(CoreError::Validation { field, .. }) => field.to_string(),
            _ => String::new(),
        };
        Self { field, message: message_of(e) }
    }
}

/// The text a person is shown for a failed service call: the API's problem detail, or for a
/// failure of the server a generic sentence (the log has the details).
pub fn message_of(e: &ServiceError) -> String {
    match e {
        ServiceError::Core(CoreError::NotElevated) => "This session is read-only: re-authenticate to make changes.".to_owned(),
        e if status_of(e) == StatusCode::INTERNAL_SERVER_ERROR => {
            tracing::error!(error = %e, "page failed");
            "This is not possible right now; try again later.".to_owned()
        }
        e => capitalised(&e.to_string()),
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

// --- a page request -----------------------------------------------------------------------------

/// The request as a page sees it.
pub struct Visit {
    csrf: Issued,
    csp: HeaderValue,
    pub client: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl FromRequestParts<App> for Visit {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        Ok(Self {
            csrf: csrf(app).issue(&parts.headers),
            csp: app.page_csp.clone(),
            client: ClientAddr::from_parts(parts, app).0,
            user_agent: user_agent(&parts.headers),
        })
    }
}

impl Visit {
    /// The layout for a page titled `title`, for `viewer` (if signed in).
    pub fn chrome(&self, title: impl Into<String>, viewer: Option<&Viewer>) -> Chrome {
        Chrome { title: title.into(), csrf: self.csrf.token.clone(), nav: viewer.map(Viewer::nav), notice: None, error: None }
    }

    /// `page` rendered with `status`, the security headers and the CSRF cookie (when the
    /// browser had none).
    pub fn page<T: Template>(&self, status: StatusCode, page: &T) -> Response {
        let mut response = match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(e) => {
                tracing::error!(error = %e, "a page did not render");
                (StatusCode::INTERNAL_SERVER_ERROR, Html("<!doctype html><title>Error · Warden</title><p>This page failed.</p>"))
                    .into_response()
            }
        };
        secure_page(response.headers_mut(), &self.csp);
        if let Some(cookie) = self.csrf.set_cookie.clone() {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
        response
    }

    /// A page that says what went wrong with a service call, with its status.
    pub fn problem(&self, viewer: Option<&Viewer>, e: &ServiceError) -> Response {
        let chrome = self.chrome("Not possible", viewer).with_error(FieldError::of(e));
        let mut response = self.page(status_of(e), &ProblemPage { chrome });
        if let ServiceError::RateLimited { retry_after_secs } = e
            && let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        response
    }

    /// A page that says `message` under `title`, with `status`.
    pub fn message(&self, viewer: Option<&Viewer>, status: StatusCode, title: &str, message: &str) -> Response {
        let chrome = self.chrome(title, viewer);
        self.page(status, &MessagePage { chrome, message: message.to_owned(), link: None })
    }
}

#[derive(Template)]
#[template(path = "problem.html")]
struct ProblemPage {
    chrome: Chrome,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    pub chrome: Chrome,
    pub message: String,
    /// A link onwards: (href, text).
    pub link: Option<(String, String)>,
}

/// A time as pages show it: `2026-12-06 10:42 UTC`.
pub fn when(t: impl Instant) -> String {
    let t = t.instant().to_offset(time::UtcOffset::UTC);
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    t.format(&format).unwrap_or_default()
}

/// A time, however many references deep a template holds it.
pub trait Instant {
    fn instant(&self) -> time::OffsetDateTime;
}

impl Instant for time::OffsetDateTime {
    fn instant(&self) -> time::OffsetDateTime {
        *self
    }
}

impl<T: Instant + ?Sized> Instant for &T {
    fn instant(&self) -> time::OffsetDateTime {
        (**self).instant()
    }
}

/// `303 See Other` to `to` (after a successful post: the browser loads the page with GET).
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// A form with nothing in it but its CSRF token: a button that does one thing.
pub type Button = Posted<serde::de::IgnoredAny>;

/// A failed change: a read-only session goes to re-authenticate and comes back to `back`;
/// anything else is said on a page.
pub fn failed(visit: &Visit, viewer: &Viewer, e: &ServiceError, back: &str) -> Response {
    if matches!(e, ServiceError::Core(CoreError::NotElevated)) {
        return see_other(&format!("/reauth?rd={}", escape_query(back)));
    }
    visit.problem(Some(viewer), e)
}

/// The answer to a change posted from a page: `303` to `to` when it was made, else as
/// [`failed`] says (coming back to `back`).
pub fn after(visit: &Visit, viewer: &Viewer, result: Result<(), ServiceError>, to: &str, back: &str) -> Response {
    match result {
        Ok(()) => see_other(to),
        Err(e) => failed(visit, viewer, &e, back),
    }
}

// --- the viewer ---------------------------------------------------------------------------------

/// The person a page is shown to: the session the browser's cookie carries.
pub struct Viewer {
    pub principal: Principal,
}

/// Where an account that must choose a new password is sent, and what else it may load.
pub const PASSWORD_SCREEN: &str = "/account/password";
/// Where an account the MFA policy confines is sent to enrol a factor.
pub const SECURITY_SCREEN: &str = "/account/security";

impl Viewer {
    pub fn name(&self) -> &str {
        self.principal.account.name.as_str()
    }

    fn nav(&self) -> Nav {
        Nav { name: self.name().to_owned(), console: admin::opens_console(&self.principal), elevated: self.principal.elevated }
    }

    pub fn holds(&self, permission: Permission) -> bool {
        self.principal.holds(permission)
    }
}

impl FromRequestParts<App> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        // Back after signing in: the page itself, or for a form posted from an expired session,
        // the page the form was on (the post's own path may take no GET).
        let here = if parts.method == axum::http::Method::GET {
            parts.uri.path_and_query().map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned())
        } else {
            referring_page(&parts.headers).unwrap_or_else(|| "/".to_owned())
        };
        let to_sign_in = || see_other(&format!("/login?rd={}", escape_query(&here)));
        let Some(token) = SessionCookie::new(&app.config.forward_auth).read(&parts.headers) else { return Err(to_sign_in()) };
        let principal = match app.auth.authenticate_bearer(token).await {
            Ok(p) if p.method == AuthMethod::Session => p,
            Ok(_) | Err(ServiceError::Unauthenticated | ServiceError::AuthFailed | ServiceError::TokenInvalid) => return Err(to_sign_in()),
            Err(e) => {
                tracing::error!(error = %e, "reading the session of a page failed");
                return Err((StatusCode::SERVICE_UNAVAILABLE, "try again later").into_response());
            }
        };
        let path = parts.uri.path();
        let always = path == "/logout" || path.starts_with("/reauth");
        if principal.password_change_required && path != PASSWORD_SCREEN && !always {
            return Err(see_other(PASSWORD_SCREEN));
        }
        if !principal.password_change_required && principal.mfa_enrolment_required && !path.starts_with(SECURITY_SCREEN) && !always {
            return Err(see_other(SECURITY_SCREEN));
        }
        Ok(Self { principal })
    }
}

/// The path (and query) of the page a request came from, when it is a page of this host.
fn referring_page(headers: &HeaderMap) -> Option<String> {
    let text = |name| headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    let (referer, host) = (text(header::REFERER)?, text(header::HOST)?);
    let rest = referer.strip_prefix("https://").or_else(|| referer.strip_prefix("http://"))?;
    let path = rest.strip_prefix(host)?;
    path.starts_with('/').then(|| path.to_owned())
}

// --- posted forms -------------------------------------------------------------------------------

/// A form post, after its CSRF check (from this site, with the token of the page's cookie):
/// a refused post is `403` problem+json with the check's stable code, and no field of it is
/// read. A form that does not parse is `400`.
pub struct Posted<T>(pub T);

#[derive(Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: Option<String>,
}

impl<T: DeserializeOwned> FromRequest<App> for Posted<T> {
    type Rejection = Response;

    async fn from_request(request: Request, app: &App) -> Result<Self, Self::Rejection> {
        let headers: HeaderMap = request.headers().clone();
        let bytes = Bytes::from_request(request, app).await.map_err(IntoResponse::into_response)?;
        let field: CsrfField = serde_urlencoded::from_bytes(&bytes).unwrap_or(CsrfField { csrf: None });
        csrf(app).verify(&headers, field.csrf.as_deref()).map_err(|e| ApiError::from(e).into_response())?;
        serde_urlencoded::from_bytes(&bytes).map(Posted).map_err(|e| {
            let mut response = (
                StatusCode::BAD_REQUEST,
                Html(format!(
                    "<!doctype html><title>Bad form · Warden</title><p>The form was not complete: {}</p>",
                    super::session::escape(&e.to_string())
                )),
            )
                .into_response();
            secure_page(response.headers_mut(), &app.page_csp);
            response
        })
    }
}

/// A checkbox: present (`on`) when ticked, absent otherwise.
pub fn ticked(value: Option<&str>) -> bool {
    value.is_some_and(|v| !v.is_empty() && v != "off" && v != "false")
}

/// A text input: trimmed, `None` when empty.
pub fn filled(value: Option<&str>) -> Option<String> {
    value.map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned)
}

/// Lines of a textarea: trimmed, empty ones dropped.
pub fn lines(value: &str) -> Vec<String> {
    value.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect()
}

#[cfg(test)]
mod tests;
