//! The registration link's page, `/register?token=…` (invitations and registration tokens): a
//! minimal server-rendered form where the person chooses a name and a password. Like the
//! recovery page, opening it never uses the token; submitting the form does, through the same
//! service as `POST /api/v1/register`, CSRF-checked, with the strict page headers.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use warden_core::api::RegisterRequest;
use warden_core::credential::Secret;

use super::App;
use super::error::ApiError;
use super::extract::ClientAddr;
use super::recover::{page, respond, too_many, unavailable};
use super::session::{csrf, escape};
use crate::services::ServiceError;

#[derive(Deserialize)]
pub struct RegisterQuery {
    #[serde(default)]
    token: Option<String>,
}

#[derive(Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    token: String,
    name: String,
    password: Secret,
    #[serde(default)]
    csrf: Option<String>,
}

const INVALID: &str = "This link is invalid, has expired or was already used. Ask an administrator for a new one.";

fn form_page(token: &str, email: Option<&str>, error: Option<&str>, csrf: &str, min_length: usize) -> axum::response::Html<String> {
    let error = error.map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e))).unwrap_or_default();
    let email = email.map(|e| format!("<p>Your account's e-mail address: <b>{}</b></p>", escape(e))).unwrap_or_default();
    page(
        "Create your account",
        &format!(
            "{error}{email}<form method=\"post\" action=\"register\">\
             <label for=\"name\">Account name</label><input id=\"name\" name=\"name\" autocomplete=\"username\" required autofocus>\
             <label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" minlength=\"{min_length}\" required>\
             <input type=\"hidden\" name=\"token\" value=\"{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button type=\"submit\">Create account</button></form>",
            escape(token),
            escape(csrf)
        ),
    )
}

/// `GET /register?token=…`: the form, if the token can still be used; never uses it.
pub async fn form(State(app): State<App>, headers: HeaderMap, Query(q): Query<RegisterQuery>) -> Response {
    let token = q.token.unwrap_or_default();
    match app.registration.check(&token).await {
        Ok(email) => {
            let issued = csrf(&app).issue(&headers);
            let mut response =
                respond(StatusCode::OK, form_page(&token, email.as_deref(), None, &issued.token, app.ctx.passwords.min_length()));
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
/// otherwise registers, and on success says to sign in.
pub async fn submit(State(app): State<App>, client: ClientAddr, headers: HeaderMap, Form(form): Form<RegisterForm>) -> Response {
    if let Err(e) = csrf(&app).verify(&headers, form.csrf.as_deref()) {
        return ApiError::from(e).into_response();
    }
    let email = app.registration.check(&form.token).await.ok().flatten();
    let request = RegisterRequest {
        token: Some(Secret::new(form.token.clone())),
        name: form.name.clone(),
        password: form.password,
        email: None,
        display_name: None,
        first_name: None,
        last_name: None,
    };
    let retry = |message: &str| {
        let token = form.csrf.as_deref().unwrap_or_default();
        respond(StatusCode::BAD_REQUEST, form_page(&form.token, email.as_deref(), Some(message), token, app.ctx.passwords.min_length()))
    };
    match app.registration.register(request, client.0).await {
        Ok(user) => {
            let sign_in = if app.config.forward_auth.enabled { "<p><a href=\"login\">Sign in</a></p>" } else { "" };
            respond(
                StatusCode::CREATED,
                page(
                    "Account created",
                    &format!("<p>The account <b>{}</b> is ready; sign in with it.</p>{sign_in}", escape(user.name.as_str())),
                ),
            )
        }
        Err(ServiceError::TokenInvalid | ServiceError::RegistrationDisabled) => {
            respond(StatusCode::BAD_REQUEST, page("Link not valid", &format!("<p>{INVALID}</p>")))
        }
        Err(ServiceError::Core(e @ warden_core::CoreError::Validation { .. })) => retry(&e.to_string()),
        Err(ServiceError::Store(warden_store::StoreError::NameTaken(name))) => {
            retry(&format!("The name {name:?} is taken; choose another."))
        }
        Err(ServiceError::RateLimited { retry_after_secs }) => too_many(retry_after_secs),
        Err(e) => unavailable(&e),
    }
}
