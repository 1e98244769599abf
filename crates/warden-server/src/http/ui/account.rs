//! The signed-in person's own pages: `/` (who they are, their groups and roles), their profile,
//! password, second factors and passkeys (`/account/security`), sessions, and the applications
//! they signed in to through the OpenID Connect provider (`/account/applications`). Each form calls
//! the self-service the REST API's `/self` calls call. A change that needs an elevated session
//! sends a read-only one to `/reauth` first, which comes back to the page.

use std::collections::BTreeMap;

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use uuid::Uuid;
use warden_core::CoreError;
use warden_core::api::{
    BeginTotp, ChangePassword, ConnectedApplication, FinishPasskeyRegistration, PasskeyInfo, SessionInfo, UpdateProfile,
};
use warden_core::credential::Secret;
use warden_core::fields::{FieldType, Visibility};
use warden_core::model::{EmailAddress, EmailInput, FlaggedEmail, PhoneInput, PhoneNumber, PostalAddress, User};

use super::{Button, Chrome, FieldError, PASSWORD_SCREEN, Posted, SECURITY_SCREEN, Viewer, Visit, after, failed, filled, see_other};
use crate::http::App;
use crate::http::error::ApiError;
use crate::services::ServiceError;
use crate::services::oidc::applications::Owner;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/", get(home))
        .route("/account/profile", get(profile_form).post(profile_submit))
        .route("/account/profile/verify-email", post(resend_verification))
        .route(PASSWORD_SCREEN, get(password_form).post(password_submit))
        .route(SECURITY_SCREEN, get(security))
        .route("/account/security/totp", post(totp_begin))
        .route("/account/security/totp/confirm", post(totp_confirm))
        .route("/account/security/totp/remove", post(totp_remove))
        .route("/account/security/backup-codes", post(backup_codes))
        .route("/account/security/passkeys/begin", post(passkey_begin))
        .route("/account/security/passkeys", post(passkey_finish))
        .route("/account/security/passkeys/{id}/rename", post(passkey_rename))
        .route("/account/security/passkeys/{id}/remove", post(passkey_remove))
        .route("/account/sessions", get(sessions))
        .route("/account/sessions/{id}/revoke", post(revoke_session))
        .route("/account/applications", get(applications))
        .route("/account/applications/{client_id}/withdraw", post(withdraw_application))
}

// --- home ---------------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    chrome: Chrome,
    user: Option<User>,
    groups: Vec<String>,
    roles: Vec<String>,
}

/// `GET /`: the person's own page.
async fn home(State(app): State<App>, visit: Visit, viewer: Viewer) -> Response {
    let me = &viewer.principal;
    let user = match app.self_service.profile(me).await {
        Ok(user) => Some(user),
        Err(ServiceError::NotAUser(_)) => None,
        Err(e) => return visit.problem(Some(&viewer), &e),
    };
    let subject = (me.account.kind, me.account.id);
    let groups = me.index.effective_groups(subject).iter().map(ToString::to_string).collect();
    let roles = me.index.roles_of(subject).iter().map(ToString::to_string).collect();
    let page = HomePage { chrome: visit.chrome("Your account", Some(&viewer)), user, groups, roles };
    visit.page(StatusCode::OK, &page)
}

// --- profile ------------------------------------------------------------------------------------

/// One additional field as the profile form shows it.
struct FieldRow {
    key: String,
    value: String,
    writable: bool,
    kind: &'static str,
}

#[derive(Template)]
#[template(path = "profile.html")]
struct ProfilePage {
    chrome: Chrome,
    user: User,
    /// Existing addresses and one empty row to add one.
    emails: Vec<EmailAddress>,
    phones: Vec<PhoneNumber>,
    addresses: Vec<PostalAddress>,
    fields: Vec<FieldRow>,
    phones_on: bool,
    addresses_on: bool,
}

fn text_of(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        v => v.to_string(),
    }
}

fn profile_page(app: &App, visit: &Visit, user: User, status: StatusCode, chrome: Chrome) -> Response {
    let mut emails = user.profile.emails.clone();
    emails.push(EmailAddress { address: String::new(), primary: false, verified: false });
    let mut phones = user.profile.phones.clone();
    phones.push(PhoneNumber { number: String::new(), primary: false });
    let mut addresses = user.profile.addresses.clone();
    addresses.push(PostalAddress::default());
    let fields = app
        .config
        .user_fields
        .iter()
        .filter(|d| matches!(d.visibility, Visibility::Public | Visibility::Authenticated | Visibility::Owner))
        .map(|d| FieldRow {
            key: d.name.clone(),
            value: user.profile.fields.get(&d.name).map(text_of).unwrap_or_default(),
            writable: d.writable_by_user && matches!(d.kind, FieldType::String | FieldType::Number | FieldType::Bool | FieldType::Date),
            kind: match d.kind {
                FieldType::Number => "number",
                FieldType::Date => "date",
                FieldType::Bool => "bool",
                _ => "text",
            },
        })
        .collect();
    let switches = &app.config.profile;
    let page = ProfilePage {
        chrome,
        user,
        emails,
        phones,
        addresses,
        fields,
        phones_on: !switches.disable_phone_numbers,
        addresses_on: !switches.disable_addresses,
    };
    visit.page(status, &page)
}

async fn profile_form(State(app): State<App>, visit: Visit, viewer: Viewer) -> Response {
    match app.self_service.profile(&viewer.principal).await {
        Ok(user) => profile_page(&app, &visit, user, StatusCode::OK, visit.chrome("Profile", Some(&viewer))),
        Err(e) => visit.problem(Some(&viewer), &e),
    }
}

/// The form's rows, in order: `prefix.0`, `prefix.1`, … as long as they come.
fn rows<'f>(form: &'f BTreeMap<String, String>, prefix: &str) -> impl Iterator<Item = (usize, &'f str)> {
    (0..64).map_while(move |i| form.get(&format!("{prefix}.{i}")).map(|v| (i, v.trim())))
}

/// The profile form as the update the self-service takes: every list replaced whole, emptied
/// rows dropped, the chosen primary first.
fn profile_patch(app: &App, form: &BTreeMap<String, String>) -> Result<UpdateProfile, ServiceError> {
    let optional = |key: &str| Some(filled(form.get(key).map(String::as_str)));
    let birthday = match filled(form.get("birthday").map(String::as_str)) {
        None => None,
        Some(text) => Some(
            time::Date::parse(&text, time::macros::format_description!("[year]-[month]-[day]"))
                .map_err(|_| CoreError::validation("birthday", "a date, YYYY-MM-DD"))?,
        ),
    };
    let primary = |key: &str| form.get(key).and_then(|v| v.parse::<usize>().ok());
    let email_primary = primary("email_primary");
    let emails = rows(form, "email")
        .filter(|(_, v)| !v.is_empty())
        .map(|(i, v)| EmailInput::Flagged(FlaggedEmail { address: v.to_owned(), primary: email_primary == Some(i), verified: None }))
        .collect();
    let phone_primary = primary("phone_primary");
    let phones = rows(form, "phone")
        .filter(|(_, v)| !v.is_empty())
        .map(|(i, v)| PhoneInput::Flagged(PhoneNumber { number: v.to_owned(), primary: phone_primary == Some(i) }))
        .collect();
    let part = |i: usize, name: &str| filled(form.get(&format!("address.{i}.{name}")).map(String::as_str));
    let addresses = rows(form, "address_label")
        .filter_map(|(i, label)| {
            let address = PostalAddress {
                label: label.to_owned(),
                street: part(i, "street"),
                locality: part(i, "locality"),
                region: part(i, "region"),
                postal_code: part(i, "postal_code"),
                country: part(i, "country"),
            };
            let empty = address.label.is_empty() && address == PostalAddress { label: String::new(), ..PostalAddress::default() };
            (!empty).then_some(address)
        })
        .collect();
    let mut fields = BTreeMap::new();
    for def in app.config.user_fields.iter().filter(|d| d.writable_by_user) {
        let Some(raw) = form.get(&format!("field.{}", def.name)) else { continue };
        let raw = raw.trim();
        let value = if raw.is_empty() {
            serde_json::Value::Null
        } else {
            match def.kind {
                FieldType::Number => serde_json::from_str::<serde_json::Number>(raw)
                    .map(serde_json::Value::Number)
                    .map_err(|_| CoreError::validation(format!("fields.{}", def.name), "a number"))?,
                FieldType::Bool => serde_json::Value::Bool(matches!(raw, "true" | "on" | "yes")),
                _ => serde_json::Value::String(raw.to_owned()),
            }
        };
        fields.insert(def.name.clone(), value);
    }
    let switches = &app.config.profile;
    Ok(UpdateProfile {
        display_name: optional("display_name"),
        first_name: optional("first_name"),
        last_name: optional("last_name"),
        birthday: Some(birthday),
        avatar_url: optional("avatar_url"),
        emails: Some(emails),
        phones: (!switches.disable_phone_numbers).then_some(phones),
        addresses: (!switches.disable_addresses).then_some(addresses),
        fields: (!fields.is_empty()).then_some(fields),
    })
}

async fn profile_submit(State(app): State<App>, visit: Visit, viewer: Viewer, Posted(form): Posted<BTreeMap<String, String>>) -> Response {
    let result = match profile_patch(&app, &form) {
        Ok(patch) => app.self_service.update_profile(&viewer.principal, patch).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(change) => {
            let notice = if change.unverified_added.is_empty() {
                "Saved.".to_owned()
            } else {
                format!("Saved. A link to verify {} is on its way.", change.unverified_added.join(", "))
            };
            let chrome = visit.chrome("Profile", Some(&viewer)).with_notice(notice);
            profile_page(&app, &visit, change.user, StatusCode::OK, chrome)
        }
        Err(e @ ServiceError::Core(CoreError::NotElevated)) => failed(&visit, &viewer, &e, "/account/profile"),
        Err(e) => match app.self_service.profile(&viewer.principal).await {
            Ok(user) => {
                let chrome = visit.chrome("Profile", Some(&viewer)).with_error(FieldError::of(&e));
                profile_page(&app, &visit, user, crate::http::error::status_of(&e), chrome)
            }
            Err(e) => visit.problem(Some(&viewer), &e),
        },
    }
}

#[derive(Deserialize)]
struct AddressForm {
    address: String,
}

/// `POST /account/profile/verify-email`: mails a new link for one of the person's unverified
/// addresses (the first may be lost), within the same limit as password-reset mail.
async fn resend_verification(State(app): State<App>, visit: Visit, viewer: Viewer, Posted(form): Posted<AddressForm>) -> Response {
    let result = app.email_verification.resend(&viewer.principal, &form.address).await;
    let chrome = visit.chrome("Profile", Some(&viewer));
    let (status, chrome) = match result {
        Ok(queued) => (StatusCode::OK, chrome.with_notice(format!("A new link to verify {} is on its way.", queued.to))),
        Err(e) => (crate::http::error::status_of(&e), chrome.with_error(FieldError::new("emails", super::message_of(&e)))),
    };
    match app.self_service.profile(&viewer.principal).await {
        Ok(user) => profile_page(&app, &visit, user, status, chrome),
        Err(e) => visit.problem(Some(&viewer), &e),
    }
}

// --- password -----------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage {
    chrome: Chrome,
    forced: bool,
    min_length: usize,
}

async fn password_form(State(app): State<App>, visit: Visit, viewer: Viewer) -> Response {
    let forced = viewer.principal.password_change_required;
    let page =
        PasswordPage { chrome: visit.chrome("Change your password", Some(&viewer)), forced, min_length: app.ctx.passwords.min_length() };
    visit.page(StatusCode::OK, &page)
}

#[derive(Deserialize)]
struct PasswordForm {
    current: Secret,
    new: Secret,
    confirm: Secret,
}

async fn password_submit(State(app): State<App>, visit: Visit, viewer: Viewer, Posted(form): Posted<PasswordForm>) -> Response {
    let forced = viewer.principal.password_change_required;
    let min_length = app.ctx.passwords.min_length();
    let again = |status: StatusCode, error: FieldError| {
        let chrome = visit.chrome("Change your password", Some(&viewer)).with_error(error);
        visit.page(status, &PasswordPage { chrome, forced, min_length })
    };
    if form.new.expose() != form.confirm.expose() {
        return again(StatusCode::BAD_REQUEST, FieldError::new("confirm", "The two new passwords differ."));
    }
    let req = ChangePassword { current: form.current, new: form.new };
    match app.self_service.change_password(&viewer.principal, &req, visit.client).await {
        Ok(()) => {
            let chrome = visit.chrome("Password changed", Some(&viewer));
            let message = "Your password is changed. Your other sessions have ended.".to_owned();
            visit.page(StatusCode::OK, &super::MessagePage { chrome, message, link: Some(("/".to_owned(), "Your account".to_owned())) })
        }
        Err(e @ (ServiceError::AuthFailed | ServiceError::Unauthenticated)) => {
            again(crate::http::error::status_of(&e), FieldError::new("current", "The current password is wrong."))
        }
        Err(ServiceError::Core(CoreError::Validation { reason, .. })) => again(StatusCode::BAD_REQUEST, FieldError::new("new", reason)),
        Err(e) => again(crate::http::error::status_of(&e), FieldError::of(&e)),
    }
}

// --- second factors and passkeys ----------------------------------------------------------------

#[derive(Template)]
#[template(path = "security.html")]
struct SecurityPage {
    chrome: Chrome,
    confined: bool,
    totp: bool,
    backup_codes_left: u32,
    passkeys_on: bool,
    passkeys: Vec<PasskeyInfo>,
    /// A TOTP enrolment in progress: (secret, QR code as a `data:` URL).
    enrolment: Option<(String, String)>,
    /// Backup codes just made, shown this once.
    codes: Vec<String>,
}

async fn security_page(
    app: &App,
    visit: &Visit,
    viewer: &Viewer,
    status: StatusCode,
    chrome: Chrome,
    enrolment: Option<(String, String)>,
    codes: Vec<String>,
) -> Response {
    let me = &viewer.principal;
    let st = match app.second_factors.status(me).await {
        Ok(st) => st,
        Err(e) => return visit.problem(Some(viewer), &e),
    };
    let passkeys = if app.passkeys.enabled() { app.passkeys.list(me).await.unwrap_or_default() } else { Vec::new() };
    let page = SecurityPage {
        chrome,
        confined: me.mfa_enrolment_required,
        totp: st.totp,
        backup_codes_left: st.backup_codes_left,
        passkeys_on: app.passkeys.enabled(),
        passkeys,
        enrolment,
        codes,
    };
    visit.page(status, &page)
}

fn security_chrome(visit: &Visit, viewer: &Viewer) -> Chrome {
    visit.chrome("Sign-in security", Some(viewer))
}

async fn security(State(app): State<App>, visit: Visit, viewer: Viewer) -> Response {
    security_page(&app, &visit, &viewer, StatusCode::OK, security_chrome(&visit, &viewer), None, Vec::new()).await
}

/// `POST /account/security/totp`: starts an enrolment and shows its QR code and secret.
async fn totp_begin(State(app): State<App>, visit: Visit, viewer: Viewer, Posted(_): Button) -> Response {
    match app.second_factors.begin_totp(&viewer.principal, &BeginTotp::default()).await {
        Ok(enrolment) => {
            use base64::Engine;
            let qr = format!("data:image/svg+xml;base64,{}", base64::engine::general_purpose::STANDARD.encode(enrolment.qr_svg.expose()));
            let chrome = security_chrome(&visit, &viewer);
            security_page(&app, &visit, &viewer, StatusCode::OK, chrome, Some((enrolment.secret.expose().to_owned(), qr)), Vec::new()).await
        }
        Err(e) => failed(&visit, &viewer, &e, SECURITY_SCREEN),
    }
}

#[derive(Deserialize)]
struct CodeForm {
    code: String,
}

/// `POST /account/security/totp/confirm`: the first code from the app completes the
/// enrolment. A session the MFA policy confines then proves the new factor at `/reauth`.
async fn totp_confirm(State(app): State<App>, visit: Visit, viewer: Viewer, Posted(form): Posted<CodeForm>) -> Response {
    match app.second_factors.confirm_totp(&viewer.principal, form.code.trim()).await {
        Ok(_) if viewer.principal.mfa_enrolment_required => see_other("/reauth?rd=%2F"),
        Ok(_) => {
            let chrome = security_chrome(&visit, &viewer).with_notice("Your authenticator app is set up.");
            security_page(&app, &visit, &viewer, StatusCode::OK, chrome, None, Vec::new()).await
        }
        Err(ServiceError::AuthFailed | ServiceError::Core(CoreError::Validation { .. })) => {
            let chrome = security_chrome(&visit, &viewer)
                .with_error(FieldError::new("", "That code did not match; start the set-up again and enter the current code."));
            security_page(&app, &visit, &viewer, StatusCode::BAD_REQUEST, chrome, None, Vec::new()).await
        }
        Err(e) => failed(&visit, &viewer, &e, SECURITY_SCREEN),
    }
}

async fn totp_remove(State(app): State<App>, visit: Visit, viewer: Viewer, Posted(_): Button) -> Response {
    match app.second_factors.remove_totp(&viewer.principal).await {
        Ok(()) => {
            let chrome = security_chrome(&visit, &viewer).with_notice("The authenticator app is removed.");
            security_page(&app, &visit, &viewer, StatusCode::OK, chrome, None, Vec::new()).await
        }
        Err(e) => failed(&visit, &viewer, &e, SECURITY_SCREEN),
    }
}

/// `POST /account/security/backup-codes`: a new set (the old one stops working), shown once.
async fn backup_codes(State(app): State<App>, visit: Visit, viewer: Viewer, Posted(_): Button) -> Response {
    match app.second_factors.generate_backup_codes(&viewer.principal).await {
        Ok(set) => {
            let codes = set.codes.iter().map(|c| c.expose().to_owned()).collect();
            let chrome =
                security_chrome(&visit, &viewer).with_notice("New backup codes. Keep them somewhere safe: they are shown only now.");
            security_page(&app, &visit, &viewer, StatusCode::OK, chrome, None, codes).await
        }
        Err(e) => failed(&visit, &viewer, &e, SECURITY_SCREEN),
    }
}

/// `POST /account/security/passkeys/begin` (the page's script): the registration's options.
async fn passkey_begin(State(app): State<App>, viewer: Viewer, Posted(_): Button) -> Response {
    use axum::response::IntoResponse;
    match app.passkeys.begin_registration(&viewer.principal).await {
        Ok(challenge) => axum::Json(challenge).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[derive(Deserialize)]
struct NewPasskeyForm {
    ceremony: String,
    credential: String,
    #[serde(default)]
    name: Option<String>,
}

async fn passkey_finish(State(app): State<App>, visit: Visit, viewer: Viewer, Posted(form): Posted<NewPasskeyForm>) -> Response {
    let Ok(credential) = serde_json::from_str(&form.credential) else {
        let chrome = security_chrome(&visit, &viewer).with_error(FieldError::new("", "The authenticator's answer was not readable."));
        return security_page(&app, &visit, &viewer, StatusCode::BAD_REQUEST, chrome, None, Vec::new()).await;
    };
    let req = FinishPasskeyRegistration { ceremony: Secret::new(form.ceremony), name: filled(form.name.as_deref()), credential };
    match app.passkeys.finish_registration(&viewer.principal, &req).await {
        // A session the MFA policy confines proves the new factor once, which lifts the hold.
        Ok(_) if viewer.principal.mfa_enrolment_required => see_other("/reauth?rd=%2F"),
        Ok(info) => {
            let chrome = security_chrome(&visit, &viewer).with_notice(format!("Passkey “{}” added.", info.name));
            security_page(&app, &visit, &viewer, StatusCode::OK, chrome, None, Vec::new()).await
        }
        Err(e) => failed(&visit, &viewer, &e, SECURITY_SCREEN),
    }
}

fn passkey_id(raw: &str) -> Result<Uuid, ServiceError> {
    Uuid::parse_str(raw).map_err(|_| CoreError::validation("id", "not a passkey id").into())
}

#[derive(Deserialize)]
struct RenameForm {
    name: String,
}

async fn passkey_rename(
    State(app): State<App>,
    visit: Visit,
    viewer: Viewer,
    Path(id): Path<String>,
    Posted(form): Posted<RenameForm>,
) -> Response {
    let result = match passkey_id(&id) {
        Ok(id) => app.passkeys.rename(&viewer.principal, id, &form.name).await.map(|_| ()),
        Err(e) => Err(e),
    };
    after(&visit, &viewer, result, SECURITY_SCREEN, SECURITY_SCREEN)
}

async fn passkey_remove(State(app): State<App>, visit: Visit, viewer: Viewer, Path(id): Path<String>, Posted(_): Button) -> Response {
    let result = match passkey_id(&id) {
        Ok(id) => app.passkeys.remove(&viewer.principal, id).await,
        Err(e) => Err(e),
    };
    after(&visit, &viewer, result, SECURITY_SCREEN, SECURITY_SCREEN)
}

// --- sessions -----------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "sessions.html")]
struct SessionsPage {
    chrome: Chrome,
    sessions: Vec<SessionInfo>,
}

async fn sessions(State(app): State<App>, visit: Visit, viewer: Viewer) -> Response {
    match app.sessions.list_own(&viewer.principal).await {
        Ok(page) => {
            let page = SessionsPage { chrome: visit.chrome("Your sessions", Some(&viewer)), sessions: page.items };
            visit.page(StatusCode::OK, &page)
        }
        Err(e) => visit.problem(Some(&viewer), &e),
    }
}

async fn revoke_session(State(app): State<App>, visit: Visit, viewer: Viewer, Path(id): Path<String>, Posted(_): Button) -> Response {
    let Ok(id) = Uuid::parse_str(&id) else {
        return visit.problem(Some(&viewer), &CoreError::validation("id", "not a session id").into());
    };
    match app.sessions.revoke_own(&viewer.principal, id).await {
        Ok(()) if Some(id) == viewer.principal.credential_id => see_other("/login"),
        Ok(()) => see_other("/account/sessions"),
        Err(e) => failed(&visit, &viewer, &e, "/account/sessions"),
    }
}

// --- connected applications -----------------------------------------------------------------------

#[derive(Template)]
#[template(path = "applications.html")]
struct ApplicationsPage {
    chrome: Chrome,
    applications: Vec<ConnectedApplication>,
}

async fn applications(State(app): State<App>, visit: Visit, viewer: Viewer) -> Response {
    match app.oidc.applications(&viewer.principal, Owner::Caller).await {
        Ok(applications) => {
            let page = ApplicationsPage { chrome: visit.chrome("Your applications", Some(&viewer)), applications };
            visit.page(StatusCode::OK, &page)
        }
        Err(e) => visit.problem(Some(&viewer), &e),
    }
}

async fn withdraw_application(
    State(app): State<App>,
    visit: Visit,
    viewer: Viewer,
    Path(client_id): Path<String>,
    Posted(_): Button,
) -> Response {
    match app.oidc.withdraw(&viewer.principal, Owner::Caller, &client_id).await {
        Ok(_) => see_other("/account/applications"),
        Err(e) => failed(&visit, &viewer, &e, "/account/applications"),
    }
}
