//! The recovery link's page, `/recover?token=…`: a minimal server-rendered form (like the
//! sign-in page) where the person chooses a new password. Opening it never consumes the link
//! (mail scanners open links); only submitting the form does, through the same service as
//! `POST /api/v1/auth/recover`. The form post is CSRF-checked (double submit, same origin)
//! and the page carries the sign-in pages' strict headers and CSP.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use warden_core::credential::Secret;

use super::App;
use super::error::ApiError;
use super::extract::{ClientAddr, user_agent};
use super::session::{PAGE_STYLE, csrf, escape, secure_page};
use crate::services::ServiceError;

#[derive(Deserialize)]
pub struct RecoverQuery {
    #[serde(default)]
    token: Option<String>,
}

#[derive(Deserialize)]
pub struct RecoverForm {
    #[serde(default)]
    token: String,
    password: Secret,
    #[serde(default)]
    csrf: Option<String>,
}

const INVALID: &str = "This link is invalid, has expired or was already used. Ask an administrator for a new one.";

pub(super) fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{title} · Warden</title><style>{PAGE_STYLE}</style></head><body><h1>{title}</h1>{body}</body></html>"
    ))
}

fn form_page(token: &str, error: Option<&str>, csrf: &str, min_length: usize) -> Html<String> {
    let error = error.map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e))).unwrap_or_default();
    page(
        "Choose a new password",
        &format!(
            "{error}<form method=\"post\" action=\"recover\">\
             <label for=\"password\">New password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" minlength=\"{min_length}\" required autofocus>\
             <input type=\"hidden\" name=\"token\" value=\"{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button type=\"submit\">Set password</button></form>",
            escape(token),
            escape(csrf)
        ),
    )
}

pub(super) fn respond(status: StatusCode, html: Html<String>) -> Response {
    let mut response = (status, html).into_response();
    secure_page(response.headers_mut());
    response
}

/// `GET /recover?token=…`: the form, if the link can still be used; never consumes it.
pub async fn form(State(app): State<App>, headers: HeaderMap, Query(q): Query<RecoverQuery>) -> Response {
    let token = q.token.unwrap_or_default();
    match app.recovery.check(&token).await {
        Ok(_) => {
            let issued = csrf(&app).issue(&headers);
            let mut response = respond(StatusCode::OK, form_page(&token, None, &issued.token, app.ctx.passwords.min_length()));
            if let Some(cookie) = issued.set_cookie {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(ServiceError::TokenInvalid) => respond(StatusCode::BAD_REQUEST, page("Link not valid", &format!("<p>{INVALID}</p>"))),
        Err(e) => unavailable(&e),
    }
}

/// The form's post: refused (`403`) from another site or without the page's CSRF token;
/// otherwise redeems the link, and on success says to sign in with the new password.
pub async fn submit(State(app): State<App>, client: ClientAddr, headers: HeaderMap, Form(form): Form<RecoverForm>) -> Response {
    if let Err(e) = csrf(&app).verify(&headers, form.csrf.as_deref()) {
        return ApiError::from(e).into_response();
    }
    match app.recovery.redeem(&Secret::new(form.token.clone()), &form.password, client.0, user_agent(&headers)).await {
        Ok(_) => {
            let sign_in = if app.config.forward_auth.enabled { "<p><a href=\"login\">Sign in</a></p>" } else { "" };
            respond(StatusCode::OK, page("Password set", &format!("<p>Your new password is set; sign in with it.</p>{sign_in}")))
        }
        Err(ServiceError::TokenInvalid) => respond(StatusCode::BAD_REQUEST, page("Link not valid", &format!("<p>{INVALID}</p>"))),
        Err(ServiceError::Core(e @ warden_core::CoreError::Validation { .. })) => {
            let token = form.csrf.as_deref().unwrap_or_default();
            respond(StatusCode::BAD_REQUEST, form_page(&form.token, Some(&e.to_string()), token, app.ctx.passwords.min_length()))
        }
        Err(ServiceError::RateLimited { retry_after_secs }) => too_many(retry_after_secs),
        Err(e) => unavailable(&e),
    }
}

/// A client over its per-address limit: `429` with `Retry-After`, as a page.
pub(super) fn too_many(retry_after_secs: i64) -> Response {
    let mut response = respond(
        StatusCode::TOO_MANY_REQUESTS,
        page("Too many attempts", "<p>Too many attempts from your address. Wait a while and try again.</p>"),
    );
    if let Ok(value) = axum::http::HeaderValue::from_str(&retry_after_secs.to_string()) {
        response.headers_mut().insert(axum::http::header::RETRY_AFTER, value);
    }
    response
}

pub(super) fn unavailable(e: &ServiceError) -> Response {
    tracing::error!(error = %e, "recovery page failed");
    respond(StatusCode::INTERNAL_SERVER_ERROR, page("Not possible right now", "<p>Try again later.</p>"))
}
