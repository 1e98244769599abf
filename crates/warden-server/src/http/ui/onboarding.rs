//! The pages mail links to, and public registration: `/register` (with a registration token
//! or an invitation's link, or without one where registration is public), `/recover?token=…`
//! (a recovery link, an account notice, a password reset or a required change: choose a
//! password, then sign in and set up second factors) and `/verify-email?token=…`.
//!
//! Opening a link never uses its token (mail systems' link scanners open links); only posting
//! the page's form does, through the same service as the REST API's call.

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use warden_core::CoreError;
use warden_core::api::RegisterRequest;
use warden_core::credential::Secret;
use warden_store::StoreError;

use super::{Chrome, FieldError, MessagePage, Posted, Visit, filled};
use crate::config::RegistrationMode;
use crate::http::App;
use crate::http::session::SessionCookie;
use crate::services::ServiceError;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/register", get(register_form).post(register_submit))
        .route("/recover", get(recover_form).post(recover_submit))
        .route("/verify-email", get(verify_form).post(verify_submit))
}

#[derive(Debug, Default, Deserialize)]
struct TokenQuery {
    #[serde(default)]
    token: Option<String>,
}

const INVALID: &str = "This link is invalid, has expired or was already used. Ask an administrator for a new one.";

fn link_invalid(visit: &Visit) -> Response {
    visit.message(None, StatusCode::BAD_REQUEST, "Link not valid", INVALID)
}

fn unavailable(visit: &Visit, e: &ServiceError) -> Response {
    tracing::error!(error = %e, "a link's page failed");
    visit.message(None, StatusCode::INTERNAL_SERVER_ERROR, "Not possible right now", "Try again later.")
}

/// A client over its per-address limit: `429` with `Retry-After`.
fn too_many(visit: &Visit, retry_after_secs: i64) -> Response {
    let mut response = visit.message(
        None,
        StatusCode::TOO_MANY_REQUESTS,
        "Too many attempts",
        "Too many attempts from your address. Wait a while and try again.",
    );
    if let Ok(value) = axum::http::HeaderValue::from_str(&retry_after_secs.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

// --- registration -------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "register.html")]
struct RegisterPage {
    chrome: Chrome,
    token: String,
    /// The address an invitation is bound to.
    invited: Option<String>,
    /// Public registration without a link: the person gives an address.
    public: bool,
    name: String,
    email: String,
    min_length: usize,
}

/// `GET /register[?token=…]`: the form, if the link can still be used (never using it), or
/// without a link where registration is public.
async fn register_form(State(app): State<App>, visit: Visit, Query(q): Query<TokenQuery>) -> Response {
    let min_length = app.ctx.passwords.min_length();
    let page = |token: String, invited: Option<String>, public: bool| RegisterPage {
        chrome: visit.chrome("Create your account", None),
        token,
        invited,
        public,
        name: String::new(),
        email: String::new(),
        min_length,
    };
    match filled(q.token.as_deref()) {
        Some(token) => match app.registration.check(&token).await {
            Ok(invited) => visit.page(StatusCode::OK, &page(token, invited, false)),
            Err(ServiceError::TokenInvalid) => link_invalid(&visit),
            Err(e) => unavailable(&visit, &e),
        },
        None if app.config.registration.mode == RegistrationMode::Public => visit.page(StatusCode::OK, &page(String::new(), None, true)),
        None => {
            visit.message(None, StatusCode::FORBIDDEN, "Registration is closed", "Accounts are made by invitation. Ask an administrator.")
        }
    }
}

#[derive(Deserialize)]
struct RegisterForm {
    #[serde(default)]
    token: String,
    name: String,
    password: Secret,
    #[serde(default)]
    email: Option<String>,
}

async fn register_submit(State(app): State<App>, visit: Visit, Posted(form): Posted<RegisterForm>) -> Response {
    let token = filled(Some(&form.token));
    let invited = match &token {
        Some(t) => app.registration.check(t).await.ok().flatten(),
        None => None,
    };
    let public = token.is_none();
    let request = RegisterRequest {
        token: token.clone().map(Secret::new),
        name: form.name.clone(),
        password: form.password,
        email: filled(form.email.as_deref()),
        display_name: None,
        first_name: None,
        last_name: None,
    };
    let retry = |status: StatusCode, error: FieldError| {
        let page = RegisterPage {
            chrome: visit.chrome("Create your account", None).with_error(error),
            token: form.token.clone(),
            invited: invited.clone(),
            public,
            name: form.name.clone(),
            email: form.email.clone().unwrap_or_default(),
            min_length: app.ctx.passwords.min_length(),
        };
        visit.page(status, &page)
    };
    match app.registration.register(request, visit.client).await {
        Ok(user) => {
            let chrome = visit.chrome("Account created", None);
            let message = format!("The account {} is ready; sign in with it.", user.name);
            visit.page(StatusCode::CREATED, &MessagePage { chrome, message, link: Some(("/login".to_owned(), "Sign in".to_owned())) })
        }
        Err(ServiceError::TokenInvalid | ServiceError::RegistrationDisabled) => link_invalid(&visit),
        Err(e @ ServiceError::Core(CoreError::Validation { .. })) => retry(StatusCode::BAD_REQUEST, FieldError::of(&e)),
        Err(ServiceError::Store(StoreError::NameTaken(name))) => {
            retry(StatusCode::CONFLICT, FieldError::new("name", format!("The name {name:?} is taken; choose another.")))
        }
        Err(ServiceError::RateLimited { retry_after_secs }) => too_many(&visit, retry_after_secs),
        Err(e) => unavailable(&visit, &e),
    }
}

// --- recovery -----------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "recover.html")]
struct RecoverPage {
    chrome: Chrome,
    token: String,
    min_length: usize,
}

/// `GET /recover?token=…`: the form, if the link can still be used; never consumes it.
async fn recover_form(State(app): State<App>, visit: Visit, Query(q): Query<TokenQuery>) -> Response {
    let token = q.token.unwrap_or_default();
    match app.recovery.check(&token).await {
        Ok(_) => {
            let page =
                RecoverPage { chrome: visit.chrome("Choose a new password", None), token, min_length: app.ctx.passwords.min_length() };
            visit.page(StatusCode::OK, &page)
        }
        Err(ServiceError::TokenInvalid) => link_invalid(&visit),
        Err(e) => unavailable(&visit, &e),
    }
}

#[derive(Deserialize)]
struct RecoverForm {
    #[serde(default)]
    token: String,
    password: Secret,
}

/// Redeems the link: the new password is set, every other session ends, and this browser is
/// signed in, with the way on to setting up second factors.
async fn recover_submit(State(app): State<App>, visit: Visit, Posted(form): Posted<RecoverForm>) -> Response {
    match app.recovery.redeem(&Secret::new(form.token.clone()), &form.password, visit.client, visit.user_agent.clone()).await {
        Ok(login) => {
            let chrome = visit.chrome("Password set", None);
            let message = "Your new password is set and you are signed in. Protect the account with a second factor now.".to_owned();
            let page = MessagePage { chrome, message, link: Some(("/account/security".to_owned(), "Set up sign-in security".to_owned())) };
            let mut response = visit.page(StatusCode::OK, &page);
            if let Some(c) = SessionCookie::new(&app.config.forward_auth).issue(login.token.expose(), app.ctx.times.session_ttl_secs) {
                response.headers_mut().append(header::SET_COOKIE, c);
            }
            response
        }
        Err(ServiceError::TokenInvalid) => link_invalid(&visit),
        Err(e @ ServiceError::Core(CoreError::Validation { .. })) => {
            let chrome = visit.chrome("Choose a new password", None).with_error(FieldError::new("password", super::message_of(&e)));
            visit.page(StatusCode::BAD_REQUEST, &RecoverPage { chrome, token: form.token, min_length: app.ctx.passwords.min_length() })
        }
        Err(ServiceError::RateLimited { retry_after_secs }) => too_many(&visit, retry_after_secs),
        Err(e) => unavailable(&visit, &e),
    }
}

// --- e-mail verification ------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "verify_email.html")]
struct VerifyPage {
    chrome: Chrome,
    token: String,
    account: String,
    address: String,
}

/// `GET /verify-email?token=…`: what the link verifies, and the button; never consumes it.
async fn verify_form(State(app): State<App>, visit: Visit, Query(q): Query<TokenQuery>) -> Response {
    let token = q.token.unwrap_or_default();
    match app.email_verification.check(&token).await {
        Ok((account, address)) => {
            let page =
                VerifyPage { chrome: visit.chrome("Confirm your e-mail address", None), token, account: account.name.to_string(), address };
            visit.page(StatusCode::OK, &page)
        }
        Err(ServiceError::TokenInvalid) => visit.message(
            None,
            StatusCode::BAD_REQUEST,
            "Link not valid",
            "This link is invalid, has expired or was already used. Ask for a new one from your profile.",
        ),
        Err(e) => unavailable(&visit, &e),
    }
}

#[derive(Deserialize)]
struct VerifyForm {
    #[serde(default)]
    token: String,
}

async fn verify_submit(State(app): State<App>, visit: Visit, Posted(form): Posted<VerifyForm>) -> Response {
    match app.email_verification.redeem(&Secret::new(form.token), visit.client).await {
        Ok(done) => {
            let message = format!("{} is now a verified address of your account.", done.address);
            let chrome = visit.chrome("Address confirmed", None);
            visit.page(StatusCode::OK, &MessagePage { chrome, message, link: Some(("/".to_owned(), "Your account".to_owned())) })
        }
        Err(ServiceError::TokenInvalid) => visit.message(
            None,
            StatusCode::BAD_REQUEST,
            "Link not valid",
            "This link is invalid, has expired or was already used. Ask for a new one from your profile.",
        ),
        Err(ServiceError::RateLimited { retry_after_secs }) => too_many(&visit, retry_after_secs),
        Err(e) => unavailable(&visit, &e),
    }
}
