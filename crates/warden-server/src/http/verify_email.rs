//! The e-mail verification link's page, `/verify-email?token=…`: shows which address of which
//! account the link verifies and a button; opening it never consumes the link (mail scanners
//! open links), pressing the button does, through the same service as
//! `POST /api/v1/auth/verify-email`. CSRF-checked, with the sign-in pages' strict headers.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use warden_core::credential::Secret;

use super::App;
use super::error::ApiError;
use super::extract::ClientAddr;
use super::recover::{page, respond, unavailable};
use super::session::{csrf, escape};
use crate::services::ServiceError;

#[derive(Deserialize)]
pub struct VerifyQuery {
    #[serde(default)]
    token: Option<String>,
}

#[derive(Deserialize)]
pub struct VerifyForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: Option<String>,
}

const INVALID: &str = "This link is invalid, has expired or was already used. Ask for a new one from your profile.";

/// `GET /verify-email?token=…`: what the link verifies, and the button; never consumes it.
pub async fn form(State(app): State<App>, headers: HeaderMap, Query(q): Query<VerifyQuery>) -> Response {
    let token = q.token.unwrap_or_default();
    match app.email_verification.check(&token).await {
        Ok((account, address)) => {
            let issued = csrf(&app).issue(&headers);
            let body = format!(
                "<p>Confirm that <b>{}</b> belongs to the account <b>{}</b>.</p>\
                 <form method=\"post\" action=\"verify-email\"><input type=\"hidden\" name=\"token\" value=\"{}\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\">Confirm the address</button></form>",
                escape(&address),
                escape(account.name.as_str()),
                escape(&token),
                escape(&issued.token)
            );
            let mut response = respond(StatusCode::OK, page("Confirm your e-mail address", &body));
            if let Some(cookie) = issued.set_cookie {
                response.headers_mut().append(header::SET_COOKIE, cookie);
            }
            response
        }
        Err(ServiceError::TokenInvalid) => respond(StatusCode::BAD_REQUEST, page("Link not valid", &format!("<p>{INVALID}</p>"))),
        Err(e) => unavailable(&e),
    }
}

/// The button's post: refused (`403`) from another site or without the page's CSRF token;
/// otherwise verifies the address.
pub async fn submit(State(app): State<App>, client: ClientAddr, headers: HeaderMap, Form(form): Form<VerifyForm>) -> Response {
    if let Err(e) = csrf(&app).verify(&headers, form.csrf.as_deref()) {
        return ApiError::from(e).into_response();
    }
    match app.email_verification.redeem(&Secret::new(form.token), client.0).await {
        Ok(done) => respond(
            StatusCode::OK,
            page("Address confirmed", &format!("<p><b>{}</b> is now a verified address of your account.</p>", escape(&done.address))),
        ),
        Err(ServiceError::TokenInvalid) => respond(StatusCode::BAD_REQUEST, page("Link not valid", &format!("<p>{INVALID}</p>"))),
        Err(e) => unavailable(&e),
    }
}
