//! Signing in and out, in a browser: `/login` (name and password, or a passkey alone), its
//! second step (a TOTP or backup code, or a passkey), `/reauth` (elevating the session for
//! changes), `/forgot-password` and `/logout`. Forward-auth and the OIDC provider send browsers
//! to `/login?rd=…`; a successful sign-in sets the session cookie and returns to `rd` when it
//! may be followed ([`crate::http::session::ReturnTo`]), else to the person's own page.
//!
//! Messages reveal nothing an attacker could use: a wrong name and a wrong password read the
//! same, and a soft lock reads like any throttle.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use warden_core::CoreError;
use warden_core::api::{LoginOutcome, PasskeySignIn, ReauthRequest, SecondFactorAnswer, SecondFactorRequired};
use warden_core::credential::Secret;

use super::{Button, Chrome, FieldError, Posted, Viewer, Visit, filled, see_other};
use crate::http::App;
use crate::http::error::ApiError;
use crate::http::session::{SIGNED_IN_PATH, SessionCookie, return_target, signed_in};
use crate::services::ServiceError;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/login", get(login_form).post(login_submit))
        .route("/login/mfa", post(second_factor_submit))
        .route("/login/passkey", post(passkey_submit))
        .route("/login/passkey/begin", post(passkey_begin))
        .route("/login/done", get(|| async { see_other(SIGNED_IN_PATH) }))
        .route("/logout", get(logout_form).post(logout))
        .route("/reauth", get(reauth_form).post(reauth_submit))
        .route("/reauth/passkey/begin", post(reauth_passkey_begin))
        .route("/forgot-password", get(forgot_form).post(forgot_submit))
}

#[derive(Debug, Default, Deserialize)]
pub struct ReturnQuery {
    #[serde(default)]
    rd: Option<String>,
    /// Ask even a browser that is signed in (an application asked for a new sign-in).
    #[serde(default)]
    fresh: Option<String>,
    /// The name to fill in (an application's `login_hint`).
    #[serde(default)]
    name: Option<String>,
}

/// `rd` as a form carries it: trimmed, `None` when empty.
fn return_to(rd: Option<&str>) -> Option<&str> {
    rd.map(str::trim).filter(|r| !r.is_empty())
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    rd: String,
    name: String,
    passkeys: bool,
}

#[derive(Template)]
#[template(path = "login_mfa.html")]
struct SecondFactorPage {
    chrome: Chrome,
    rd: String,
    state: String,
    totp: bool,
    backup_code: bool,
    /// The passkey ceremony's options (JSON), when the account has a passkey.
    passkey_options: Option<String>,
}

impl SecondFactorPage {
    fn new(chrome: Chrome, rd: Option<&str>, step: &SecondFactorRequired) -> Self {
        Self {
            chrome,
            rd: rd.unwrap_or_default().to_owned(),
            state: step.state.expose().to_owned(),
            totp: step.methods.iter().any(|m| m == "totp"),
            backup_code: step.methods.iter().any(|m| m == "backup_code"),
            passkey_options: step.passkey_options.as_ref().map(serde_json::Value::to_string),
        }
    }
}

fn login_page(app: &App, visit: &Visit, status: StatusCode, rd: Option<&str>, name: &str, error: Option<FieldError>) -> Response {
    let mut chrome = visit.chrome("Sign in", None);
    chrome.error = error;
    let page = LoginPage { chrome, rd: rd.unwrap_or_default().to_owned(), name: name.to_owned(), passkeys: app.passkeys.enabled() };
    visit.page(status, &page)
}

/// `GET /login`: the sign-in form. A browser already signed in goes on at once.
async fn login_form(State(app): State<App>, visit: Visit, headers: axum::http::HeaderMap, Query(q): Query<ReturnQuery>) -> Response {
    let rd = return_to(q.rd.as_deref());
    if q.fresh.is_none()
        && let Some(token) = SessionCookie::new(&app.config.forward_auth).read(&headers)
        && app.auth.authenticate_bearer(token).await.is_ok()
    {
        let target = return_target(&app.config.forward_auth, rd);
        return see_other(&target);
    }
    let name: String = q.name.as_deref().unwrap_or_default().chars().take(256).collect();
    login_page(&app, &visit, StatusCode::OK, rd, &name, None)
}

#[derive(Deserialize)]
struct LoginForm {
    name: String,
    password: Secret,
    #[serde(default)]
    rd: Option<String>,
}

/// What a refused sign-in says: the same for a wrong name and a wrong password, and for a
/// throttle and a soft lock.
fn refusal(e: &ServiceError) -> (StatusCode, FieldError) {
    match e {
        ServiceError::RateLimited { .. } => {
            (StatusCode::TOO_MANY_REQUESTS, FieldError::new("", "Too many failed attempts; wait a while and try again."))
        }
        // A name or password no account could have (empty, too long) reads like a wrong one.
        ServiceError::AuthFailed | ServiceError::Unauthenticated | ServiceError::Core(CoreError::Validation { .. }) => {
            (StatusCode::UNAUTHORIZED, FieldError::new("password", "The name or password is wrong."))
        }
        e => {
            tracing::error!(error = %e, "sign-in failed");
            (StatusCode::INTERNAL_SERVER_ERROR, FieldError::new("", "Signing in is not possible right now; try again later."))
        }
    }
}

/// `POST /login`: the password; then the second step, or signed in.
async fn login_submit(State(app): State<App>, visit: Visit, Posted(form): Posted<LoginForm>) -> Response {
    let rd = return_to(form.rd.as_deref());
    match app.auth.login(&form.name, &form.password, visit.client, visit.user_agent.clone()).await {
        Ok(LoginOutcome::Session(login)) => signed_in(&app, rd, login.token.expose()),
        Ok(LoginOutcome::SecondFactor(step)) => {
            visit.page(StatusCode::OK, &SecondFactorPage::new(visit.chrome("Second factor", None), rd, &step))
        }
        Err(e) => {
            let (status, error) = refusal(&e);
            login_page(&app, &visit, status, rd, &form.name, Some(error))
        }
    }
}

/// A code as a person types it into the one code field: a backup code (it has a `-`, or 16
/// letters and digits) or else a TOTP code; nothing when the field is empty.
fn typed_code(code: Option<&Secret>) -> (Option<String>, Option<Secret>) {
    let code = code.map(|c| c.expose().trim()).filter(|c| !c.is_empty());
    match code {
        Some(c) if c.contains('-') || c.chars().filter(char::is_ascii_alphanumeric).count() >= 16 => (None, Some(Secret::new(c))),
        Some(c) => (Some(c.to_owned()), None),
        None => (None, None),
    }
}

#[derive(Deserialize)]
struct SecondFactorForm {
    state: String,
    #[serde(default)]
    code: Option<Secret>,
    /// A passkey's answer (WebAuthn JSON), filled in by the page's script.
    #[serde(default)]
    passkey: Option<String>,
    #[serde(default)]
    rd: Option<String>,
}

/// `POST /login/mfa`: the second step, with a code ([`typed_code`]) or a passkey's answer.
async fn second_factor_submit(State(app): State<App>, visit: Visit, Posted(form): Posted<SecondFactorForm>) -> Response {
    let rd = return_to(form.rd.as_deref());
    // An answer that is not JSON counts as none: the service then asks for a code.
    let passkey = filled(form.passkey.as_deref()).and_then(|p| serde_json::from_str::<serde_json::Value>(&p).ok());
    // With a passkey's answer, a code typed as well is not sent: the answer is the factor.
    let (totp, backup_code) = if passkey.is_some() { (None, None) } else { typed_code(form.code.as_ref()) };
    let answer = SecondFactorAnswer { state: Secret::new(form.state.clone()), totp, backup_code, passkey };
    match app.second_factors.finish(&answer, visit.client, visit.user_agent.clone()).await {
        Ok(login) => signed_in(&app, rd, login.token.expose()),
        Err(ServiceError::TokenInvalid) => login_page(
            &app,
            &visit,
            StatusCode::BAD_REQUEST,
            rd,
            "",
            Some(FieldError::new("", "The sign-in took too long or was finished already; start again.")),
        ),
        Err(e) => {
            let (status, message) = match &e {
                ServiceError::AuthFailed | ServiceError::PasskeyInvalid(_) => {
                    (StatusCode::UNAUTHORIZED, "The code is wrong or was used already.")
                }
                ServiceError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "Too many wrong codes; wait a while and try again."),
                ServiceError::Core(_) => (StatusCode::BAD_REQUEST, "Enter a code."),
                e => {
                    tracing::error!(error = %e, "second factor failed");
                    (StatusCode::INTERNAL_SERVER_ERROR, "Signing in is not possible right now; try again later.")
                }
            };
            // The pending sign-in is still good: ask again, with a new passkey challenge.
            match app.second_factors.resume(&form.state).await {
                Ok(step) => {
                    let chrome = visit.chrome("Second factor", None).with_error(FieldError::new("code", message));
                    let page = SecondFactorPage::new(chrome, rd, &step);
                    visit.page(status, &page)
                }
                Err(_) => login_page(&app, &visit, status, rd, "", Some(FieldError::new("", message))),
            }
        }
    }
}

/// `POST /login/passkey/begin` (the page's script): a passwordless ceremony's options and key.
/// Limited per client address, like the API's.
async fn passkey_begin(State(app): State<App>, visit: Visit, Posted(_): Button) -> Response {
    match crate::http::passkey::begin_passwordless(&app, visit.client).await {
        Ok(challenge) => Json(challenge).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
struct PasskeyForm {
    ceremony: String,
    credential: String,
    #[serde(default)]
    rd: Option<String>,
}

/// `POST /login/passkey`: a passkey's answer to a passwordless ceremony.
async fn passkey_submit(State(app): State<App>, visit: Visit, Posted(form): Posted<PasskeyForm>) -> Response {
    let rd = return_to(form.rd.as_deref());
    let Ok(credential) = serde_json::from_str::<serde_json::Value>(&form.credential) else {
        return login_page(
            &app,
            &visit,
            StatusCode::BAD_REQUEST,
            rd,
            "",
            Some(FieldError::new("", "The passkey's answer was not readable.")),
        );
    };
    let req = PasskeySignIn { ceremony: Secret::new(form.ceremony), credential };
    match app.passkeys.finish_sign_in(&req, visit.client, visit.user_agent.clone()).await {
        Ok(login) => signed_in(&app, rd, login.token.expose()),
        Err(e) => {
            let (status, error) = match e {
                ServiceError::AuthFailed | ServiceError::PasskeyInvalid(_) | ServiceError::Core(_) => {
                    (StatusCode::UNAUTHORIZED, FieldError::new("", "This passkey did not sign you in. Use your name and password."))
                }
                ServiceError::TokenInvalid => (StatusCode::BAD_REQUEST, FieldError::new("", "The passkey took too long; try again.")),
                e => refusal(&e),
            };
            login_page(&app, &visit, status, rd, "", Some(error))
        }
    }
}

// --- sign-out -----------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "logout.html")]
struct LogoutPage {
    chrome: Chrome,
}

/// `GET /logout`: the page with the sign-out form (what an application links to).
async fn logout_form(visit: Visit) -> Response {
    visit.page(StatusCode::OK, &LogoutPage { chrome: visit.chrome("Sign out", None) })
}

/// `POST /logout`: ends the browser session (if any) and clears the cookie.
async fn logout(State(app): State<App>, visit: Visit, headers: axum::http::HeaderMap, Posted(_): Button) -> Response {
    let session = SessionCookie::new(&app.config.forward_auth);
    if let Some(token) = session.read(&headers)
        && let Ok(principal) = app.auth.authenticate_bearer(token).await
        && let Err(e) = app.auth.logout(&principal).await
    {
        tracing::warn!(error = %e, "browser logout failed");
    }
    let chrome = visit.chrome("Signed out", None);
    let page = super::MessagePage {
        chrome,
        message: "You are signed out.".to_owned(),
        link: Some(("/login".to_owned(), "Sign in again".to_owned())),
    };
    let mut response = visit.page(StatusCode::OK, &page);
    if let Some(c) = session.clear() {
        response.headers_mut().insert(header::SET_COOKIE, c);
    }
    response
}

// --- re-authentication --------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "reauth.html")]
struct ReauthPage {
    chrome: Chrome,
    rd: String,
    totp: bool,
    backup_code: bool,
    passkeys: bool,
}

async fn reauth_page(
    app: &App,
    visit: &Visit,
    viewer: &Viewer,
    status: StatusCode,
    rd: Option<&str>,
    error: Option<FieldError>,
) -> Response {
    let methods = app.second_factors.methods(viewer.principal.account.id).await.unwrap_or_default();
    let mut chrome = visit.chrome("Confirm it is you", Some(viewer));
    chrome.error = error;
    let page = ReauthPage {
        chrome,
        rd: rd.unwrap_or_default().to_owned(),
        totp: methods.iter().any(|m| m == "totp"),
        backup_code: methods.iter().any(|m| m == "backup_code"),
        passkeys: app.passkeys.enabled() && methods.iter().any(|m| m == "passkey"),
    };
    visit.page(status, &page)
}

/// `GET /reauth`: elevate the session (password, with the second factor the session was
/// signed in with, or a passkey) to make changes for a while.
async fn reauth_form(State(app): State<App>, visit: Visit, viewer: Viewer, Query(q): Query<ReturnQuery>) -> Response {
    reauth_page(&app, &visit, &viewer, StatusCode::OK, return_to(q.rd.as_deref()), None).await
}

#[derive(Deserialize)]
struct ReauthForm {
    #[serde(default)]
    password: Option<Secret>,
    #[serde(default)]
    code: Option<Secret>,
    #[serde(default)]
    ceremony: Option<String>,
    #[serde(default)]
    credential: Option<String>,
    #[serde(default)]
    rd: Option<String>,
}

async fn reauth_submit(State(app): State<App>, visit: Visit, viewer: Viewer, Posted(form): Posted<ReauthForm>) -> Response {
    let rd = return_to(form.rd.as_deref());
    let (totp, backup_code) = typed_code(form.code.as_ref());
    let passkey = filled(form.credential.as_deref()).and_then(|c| serde_json::from_str(&c).ok());
    let req = ReauthRequest {
        password: form.password.filter(|p| !p.expose().is_empty()),
        totp,
        backup_code,
        passkey,
        ceremony: filled(form.ceremony.as_deref()).map(Secret::new),
    };
    match app.auth.reauth(&viewer.principal, &req, visit.client).await {
        Ok(_) => {
            let target = return_target(&app.config.forward_auth, rd);
            see_other(&target)
        }
        Err(e) => {
            let error = match &e {
                ServiceError::AuthFailed | ServiceError::Unauthenticated => FieldError::new("password", "That did not prove it is you."),
                // The session was signed in more strongly than this proof, or the account has
                // a second factor this proof left out: said above the form, whichever inputs
                // the page has.
                ServiceError::SecondFactorRequired(_) => FieldError::new(
                    "",
                    "Confirm with your second factor too: the code from your authenticator app, a backup code, or your passkey.",
                ),
                _ => FieldError::of(&e),
            };
            reauth_page(&app, &visit, &viewer, crate::http::error::status_of(&e), rd, Some(error)).await
        }
    }
}

/// `POST /reauth/passkey/begin` (the page's script): a ceremony limited to the viewer's
/// passkeys.
async fn reauth_passkey_begin(State(app): State<App>, viewer: Viewer, Posted(_): Button) -> Response {
    match app.passkeys.begin_reauth(&viewer.principal).await {
        Ok(challenge) => Json(challenge).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

// --- forgot password ----------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "forgot.html")]
struct ForgotPage {
    chrome: Chrome,
}

async fn forgot_form(visit: Visit) -> Response {
    visit.page(StatusCode::OK, &ForgotPage { chrome: visit.chrome("Forgot password", None) })
}

#[derive(Deserialize)]
struct ForgotForm {
    name_or_email: String,
}

/// `POST /forgot-password`: the same answer whatever the name or address, at once.
async fn forgot_submit(State(app): State<App>, visit: Visit, Posted(form): Posted<ForgotForm>) -> Response {
    match app.password_mail.forgot_password(&form.name_or_email, visit.client) {
        Ok(()) => {
            let chrome = visit.chrome("Check your mail", None);
            let message = "If this names an account with a verified e-mail address, a link to choose a new password is on its way there.";
            visit.page(
                StatusCode::OK,
                &super::MessagePage {
                    chrome,
                    message: message.to_owned(),
                    link: Some(("/login".to_owned(), "Back to sign-in".to_owned())),
                },
            )
        }
        Err(e) => {
            let chrome = visit.chrome("Forgot password", None).with_error(FieldError::of(&e));
            visit.page(crate::http::error::status_of(&e), &ForgotPage { chrome })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typed_code_is_a_backup_code_by_its_shape() {
        let typed = |raw: &str| {
            let (totp, backup) = typed_code(Some(&Secret::new(raw)));
            (totp, backup.map(|b| b.expose().to_owned()))
        };
        assert_eq!(typed(" 123456 "), (Some("123456".to_owned()), None));
        assert_eq!(typed("abcd-efgh"), (None, Some("abcd-efgh".to_owned())));
        assert_eq!(typed("abcdefghijklmnop"), (None, Some("abcdefghijklmnop".to_owned())));
        assert_eq!(typed("   "), (None, None));
        assert_eq!(typed_code(None).0, None);
    }
}
