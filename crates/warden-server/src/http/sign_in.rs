//! The sign-in and sign-out pages browsers are sent to: `/login` (name and password), its
//! second step `/login/mfa` (a TOTP or backup code), `/login/done` and `/logout`. Plain HTML
//! forms, no script; every post is CSRF-checked before anything else is looked at, and a
//! successful sign-in sets the session cookie and returns to an allowed URL, both by the rules
//! of [`super::session`]. They exist while forward-auth is on; the web UI will dress them.

use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use warden_core::api::{LoginOutcome, SecondFactorAnswer};
use warden_core::credential::Secret;

use super::App;
use super::error::ApiError;
use super::extract::{ClientAddr, user_agent};
use super::session::{PAGE_STYLE, SessionCookie, csrf, escape, secure_page, signed_in};
use crate::services::ServiceError;

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    #[serde(default)]
    rd: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    name: String,
    password: Secret,
    #[serde(default)]
    rd: Option<String>,
    #[serde(default)]
    csrf: Option<String>,
}

/// The sign-in page's second step: the pending sign-in and a code (a TOTP code, or a backup
/// code, told apart by their shape).
#[derive(Deserialize)]
pub struct SecondFactorForm {
    state: String,
    code: Secret,
    #[serde(default)]
    rd: Option<String>,
    #[serde(default)]
    csrf: Option<String>,
}

#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf: Option<String>,
}

fn login_page(rd: Option<&str>, error: Option<&str>, csrf: &str) -> Html<String> {
    let rd = rd.map(escape).unwrap_or_default();
    let csrf = escape(csrf);
    let error = error.map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e))).unwrap_or_default();
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>Sign in · Warden</title><style>{PAGE_STYLE}</style></head>\
         <body><h1>Sign in</h1>{error}<form method=\"post\" action=\"login\">\
         <label for=\"name\">Name</label><input id=\"name\" name=\"name\" autocomplete=\"username\" required autofocus>\
         <label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
         <input type=\"hidden\" name=\"rd\" value=\"{rd}\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <button type=\"submit\">Sign in</button></form></body></html>"
    ))
}

fn second_factor_page(state: &str, methods: &[String], rd: Option<&str>, error: Option<&str>, csrf: &str) -> Html<String> {
    let rd = rd.map(escape).unwrap_or_default();
    let (state, csrf) = (escape(state), escape(csrf));
    let error = error.map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e))).unwrap_or_default();
    let hint = match (methods.iter().any(|m| m == "totp"), methods.iter().any(|m| m == "backup_code")) {
        (true, true) => "The code from your authenticator app, or one of your backup codes.",
        (true, false) => "The code from your authenticator app.",
        (false, true) => "One of your backup codes.",
        // A passkey needs the browser's WebAuthn call, which this page (no scripts) does not
        // make: say so rather than ask for a code that does not exist.
        (false, false) => {
            "Your only second factor is a passkey, which this page cannot use yet. Add an authenticator app or \
             backup codes from a client that can use the passkey, or ask an administrator to reset your second factors."
        }
    };
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>Second factor · Warden</title><style>{PAGE_STYLE}</style></head>\
         <body><h1>Second factor</h1>{error}<form method=\"post\" action=\"login/mfa\">\
         <label for=\"code\">Code</label><input id=\"code\" name=\"code\" autocomplete=\"one-time-code\" required autofocus>\
         <p>{hint}</p><input type=\"hidden\" name=\"state\" value=\"{state}\">\
         <input type=\"hidden\" name=\"rd\" value=\"{rd}\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <button type=\"submit\">Continue</button></form></body></html>"
    ))
}

pub async fn login_form(State(app): State<App>, headers: HeaderMap, Query(q): Query<LoginQuery>) -> Response {
    let issued = csrf(&app).issue(&headers);
    let mut response = login_page(q.rd.as_deref(), None, &issued.token).into_response();
    secure_page(response.headers_mut());
    if let Some(cookie) = issued.set_cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// What every page of the sign-in flow sends: no caching, no framing, no scripts or plugins,
/// forms posted to Warden only, no content sniffing, no referrer to other sites.
/// before the password is looked at.
pub async fn login_submit(State(app): State<App>, client: ClientAddr, headers: HeaderMap, Form(form): Form<LoginForm>) -> Response {
    if let Err(e) = csrf(&app).verify(&headers, form.csrf.as_deref()) {
        return ApiError::from(e).into_response();
    }
    let token = form.csrf.as_deref().unwrap_or_default();
    let rd = form.rd.as_deref().map(str::trim).filter(|r| !r.is_empty());
    match app.auth.login(&form.name, &form.password, client.0, user_agent(&headers)).await {
        Ok(LoginOutcome::Session(login)) => signed_in(&app, rd, login.token.expose()),
        Ok(LoginOutcome::SecondFactor(step)) => {
            let mut response = second_factor_page(step.state.expose(), &step.methods, rd, None, token).into_response();
            secure_page(response.headers_mut());
            response
        }
        Err(e) => {
            let (status, message) = match e {
                ServiceError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "Too many failed attempts; try again later."),
                ServiceError::AuthFailed | ServiceError::Unauthenticated => (StatusCode::UNAUTHORIZED, "The name or password is wrong."),
                e => {
                    tracing::error!(error = %e, "sign-in failed");
                    (StatusCode::INTERNAL_SERVER_ERROR, "Signing in is not possible right now; try again later.")
                }
            };
            let mut response = (status, login_page(rd, Some(message), token)).into_response();
            secure_page(response.headers_mut());
            response
        }
    }
}

/// (it has a `-`, or 16 characters) is one; anything else is a TOTP code.
pub async fn login_mfa_submit(
    State(app): State<App>,
    client: ClientAddr,
    headers: HeaderMap,
    Form(form): Form<SecondFactorForm>,
) -> Response {
    if let Err(e) = csrf(&app).verify(&headers, form.csrf.as_deref()) {
        return ApiError::from(e).into_response();
    }
    let token = form.csrf.as_deref().unwrap_or_default();
    let rd = form.rd.as_deref().map(str::trim).filter(|r| !r.is_empty());
    let code = form.code.expose().trim();
    let backup = code.contains('-') || code.chars().filter(char::is_ascii_alphanumeric).count() >= 16;
    let answer = SecondFactorAnswer {
        state: Secret::new(form.state.clone()),
        totp: (!backup).then(|| code.to_owned()),
        backup_code: backup.then(|| Secret::new(code)),
        passkey: None,
    };
    match app.second_factors.finish(&answer, client.0, user_agent(&headers)).await {
        Ok(login) => signed_in(&app, rd, login.token.expose()),
        Err(e) => {
            let retry = |status: StatusCode, message: &str| {
                let methods = ["totp".to_owned(), "backup_code".to_owned()];
                let mut response = (status, second_factor_page(&form.state, &methods, rd, Some(message), token)).into_response();
                secure_page(response.headers_mut());
                response
            };
            match e {
                ServiceError::AuthFailed => retry(StatusCode::UNAUTHORIZED, "The code is wrong or was used already."),
                ServiceError::RateLimited { .. } => retry(StatusCode::TOO_MANY_REQUESTS, "Too many wrong codes; try again later."),
                ServiceError::Core(_) => retry(StatusCode::BAD_REQUEST, "Enter a code."),
                ServiceError::TokenInvalid => {
                    let mut response =
                        (StatusCode::BAD_REQUEST, login_page(rd, Some("The sign-in took too long; start again."), token)).into_response();
                    secure_page(response.headers_mut());
                    response
                }
                e => {
                    tracing::error!(error = %e, "second factor failed");
                    let mut response = (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        login_page(rd, Some("Signing in is not possible right now; try again later."), token),
                    )
                        .into_response();
                    secure_page(response.headers_mut());
                    response
                }
            }
        }
    }
}

pub async fn login_done() -> Response {
    let mut response = Html(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Signed in · Warden</title></head><body><p>You are signed in.</p></body></html>",
    )
    .into_response();
    secure_page(response.headers_mut());
    response
}

/// `GET /logout`: the page with the sign-out form (what an application links to).
pub async fn logout_form(State(app): State<App>, headers: HeaderMap) -> Response {
    let issued = csrf(&app).issue(&headers);
    let mut response = Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>Sign out · Warden</title></head><body><h1>Sign out</h1><form method=\"post\" action=\"logout\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\">Sign out</button></form></body></html>",
        escape(&issued.token)
    ))
    .into_response();
    secure_page(response.headers_mut());
    if let Some(cookie) = issued.set_cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// Ends the browser session (if any) and clears the cookie; refused (`403`) from another
/// site or without the sign-out page's token.
pub async fn logout(State(app): State<App>, headers: HeaderMap, form: Result<Form<LogoutForm>, FormRejection>) -> Response {
    let form_token = form.as_ref().ok().and_then(|Form(f)| f.csrf.as_deref());
    if let Err(e) = csrf(&app).verify(&headers, form_token) {
        return ApiError::from(e).into_response();
    }
    let session = SessionCookie::new(&app.config.forward_auth);
    if let Some(token) = session.read(&headers)
        && let Ok(principal) = app.auth.authenticate_bearer(token).await
        && let Err(e) = app.auth.logout(&principal).await
    {
        tracing::warn!(error = %e, "browser logout failed");
    }
    let mut response = login_done_out();
    if let Some(c) = session.clear() {
        response.headers_mut().insert(header::SET_COOKIE, c);
    }
    response
}

fn login_done_out() -> Response {
    let mut response = Html("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Signed out · Warden</title></head><body><p>You are signed out.</p></body></html>").into_response();
    secure_page(response.headers_mut());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pages_carry_the_one_allowed_style_and_escape_what_they_echo() {
        let page = login_page(Some("\"><script>"), Some("<b>"), "t").0;
        assert!(page.contains(&format!("<style>{PAGE_STYLE}</style>")), "{page}");
        assert!(page.contains("value=\"&quot;&gt;&lt;script&gt;\"") && page.contains("&lt;b&gt;"), "{page}");
        let page = second_factor_page("s\"", &["totp".to_owned()], None, None, "t").0;
        assert!(page.contains(&format!("<style>{PAGE_STYLE}</style>")) && page.contains("value=\"s&quot;\""), "{page}");
    }
}
