//! The OpenID Connect provider's endpoints: discovery, JWKS, authorize (with its consent page),
//! token, userinfo, introspection, revocation and logout. Each exists at the root issuer
//! (`/oidc/…`, the `default` tenant, issuer `server.public_url`) and under every tenant's
//! issuer (`/oidc/{tenant}/…`). Handlers parse, call [`crate::services::oidc`], and map.
//!
//! Clients' endpoints answer OAuth errors as `{"error", "error_description"}` JSON (RFC 6749
//! §5.2), never cached. Browser endpoints answer with pages; a browser arriving from one of
//! Warden's own forms (the sign-in, the consent) is sent on to the client by a page that
//! navigates, not by a redirect, because browsers hold a form's redirects to the page's
//! `form-action`, which names Warden alone.

use askama::Template;
use std::borrow::Cow;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use base64::Engine;
use serde::Deserialize;
use serde_json::Value;
use warden_core::credential::Secret;
use warden_core::oidc::request::AuthorizeParams;

use super::super::App;
use super::super::error::ApiError;
use super::super::session::SessionCookie;
use super::super::ui::{Chrome, PASSWORD_SCREEN, Posted, SECURITY_SCREEN, Visit};
use crate::services::ServiceError;
use crate::services::oidc::authorize::{Authorized, Browser, Consent, EndSession, LogoutRequest};
use crate::services::oidc::provider::{ClientCredentials, ClientFacing, Issuer, OAuthError};
use crate::services::oidc::tokens::{TokenForm, TokenResponse};

/// The browser's routes (pages, like the sign-in page's, outside the API description), at the
/// root issuer and under `/oidc/{tenant}`.
pub fn routes() -> Router<App> {
    Router::new()
        .route("/oidc/authorize", get(|s, v, h, q| authorize(s, None, v, h, q)))
        .route("/oidc/consent", axum::routing::post(|s, v, h, f| consent(s, None, v, h, f)))
        .route("/oidc/logout", get(|s, v, h, q| logout(s, None, v, h, q)).post(|s, v, h, f| logout_confirmed(s, None, v, h, f)))
        .route("/oidc/{tenant}/authorize", get(|s, Path(t): Path<String>, v, h, q| authorize(s, Some(t), v, h, q)))
        .route("/oidc/{tenant}/consent", axum::routing::post(|s, Path(t): Path<String>, v, h, f| consent(s, Some(t), v, h, f)))
        .route(
            "/oidc/{tenant}/logout",
            get(|s, Path(t): Path<String>, v, h, q| logout(s, Some(t), v, h, q))
                .post(|s, Path(t): Path<String>, v, h, f| logout_confirmed(s, Some(t), v, h, f)),
        )
}

/// The clients' routes, described in the API document: one `routes!` per path.
pub fn documented() -> utoipa_axum::router::OpenApiRouter<App> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(discovery_root))
        .routes(routes!(discovery_tenant))
        .routes(routes!(jwks_root))
        .routes(routes!(jwks_tenant))
        .routes(routes!(token_root))
        .routes(routes!(token_tenant))
        .routes(routes!(userinfo_root, userinfo_root_post))
        .routes(routes!(userinfo_tenant, userinfo_tenant_post))
        .routes(routes!(introspect_root))
        .routes(routes!(introspect_tenant))
        .routes(routes!(revoke_root))
        .routes(routes!(revoke_tenant))
}

/// An OAuth error (RFC 6749 §5.2).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct OAuthErrorBody {
    /// `invalid_request`, `invalid_client`, `invalid_grant`, `unauthorized_client`,
    /// `unsupported_grant_type`, `invalid_scope` or `invalid_token`.
    pub error: String,
    pub error_description: String,
}

/// A form that carries one token (introspection, revocation, userinfo by POST): its shape in
/// the API description. It is read by [`token_param`], in place.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Described, not built: the fields are read by `token_param`.
pub struct TokenParam {
    /// The token (for userinfo: `access_token`).
    pub token: Option<String>,
    /// Ignored: the token's own form says what it is.
    pub token_type_hint: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub access_token: Option<String>,
}

#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "oidc-provider",
    responses((status = 200, body = Object, description = "The discovery document of the root issuer (`server.public_url`, the `default` tenant)."),
        (status = 503, description = "`oidc.unavailable`: the provider is off.")))]
async fn discovery_root(state: State<App>, headers: HeaderMap) -> Response {
    discovery(state, None, headers).await
}

#[utoipa::path(get, path = "/oidc/{tenant}/.well-known/openid-configuration", tag = "oidc-provider", params(("tenant" = String, Path)),
    responses((status = 200, body = Object, description = "The discovery document of the tenant's issuer (`{public_url}/oidc/{tenant}`)."),
        (status = 404, description = "`not_found`: no such tenant."), (status = 503, description = "`oidc.unavailable`.")))]
async fn discovery_tenant(state: State<App>, Path(tenant): Path<String>, headers: HeaderMap) -> Response {
    discovery(state, Some(tenant), headers).await
}

#[utoipa::path(get, path = "/oidc/jwks.json", tag = "oidc-provider",
    responses((status = 200, body = Object, description = "The published signing keys (JWKS): those that sign, and retired ones until their tokens expire."),
        (status = 503, description = "`oidc.unavailable`.")))]
async fn jwks_root(state: State<App>) -> Response {
    jwks(state).await
}

#[utoipa::path(get, path = "/oidc/{tenant}/jwks.json", tag = "oidc-provider", params(("tenant" = String, Path)),
    responses((status = 200, body = Object, description = "The published signing keys (the same for every issuer)."), (status = 503, description = "`oidc.unavailable`.")))]
async fn jwks_tenant(state: State<App>, Path(_tenant): Path<String>) -> Response {
    jwks(state).await
}

#[utoipa::path(post, path = "/oidc/token", tag = "oidc-provider",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded", description = "A code (with `redirect_uri` and `code_verifier`), a refresh token, or client credentials; the client by HTTP Basic or `client_id`/`client_secret`."),
    responses((status = 200, body = TokenResponse, description = "Tokens (never cached)."),
        (status = 400, body = OAuthErrorBody, content_type = "application/json", description = "`invalid_request`, `invalid_grant`, `unauthorized_client`, `unsupported_grant_type`, `invalid_scope`."),
        (status = 401, body = OAuthErrorBody, content_type = "application/json", description = "`invalid_client`."),
        (status = 503, description = "`oidc.unavailable`.")))]
async fn token_root(state: State<App>, headers: HeaderMap, body: Bytes) -> Response {
    token(state, None, headers, body).await
}

#[utoipa::path(post, path = "/oidc/{tenant}/token", tag = "oidc-provider", params(("tenant" = String, Path)),
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = TokenResponse, description = "Tokens."),
        (status = 400, body = OAuthErrorBody, content_type = "application/json", description = "An OAuth error."),
        (status = 401, body = OAuthErrorBody, content_type = "application/json", description = "`invalid_client`."),
        (status = 404, description = "`not_found`: not a tenant's name."), (status = 503, description = "`oidc.unavailable`.")))]
async fn token_tenant(state: State<App>, Path(tenant): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    token(state, Some(tenant), headers, body).await
}

#[utoipa::path(get, path = "/oidc/userinfo", tag = "oidc-provider", security(("bearer" = [])),
    responses((status = 200, body = Object, description = "The claims the access token's scopes release, every opted-in list whole."),
        (status = 401, body = OAuthErrorBody, content_type = "application/json", description = "`invalid_token`."), (status = 503, description = "`oidc.unavailable`.")))]
async fn userinfo_root(state: State<App>, headers: HeaderMap) -> Response {
    userinfo(state, None, headers, Bytes::new()).await
}

#[utoipa::path(post, path = "/oidc/userinfo", tag = "oidc-provider", security(("bearer" = [])),
    request_body(content = TokenParam, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = Object, description = "The claims."),
        (status = 401, body = OAuthErrorBody, content_type = "application/json", description = "`invalid_token`."), (status = 503, description = "`oidc.unavailable`.")))]
async fn userinfo_root_post(state: State<App>, headers: HeaderMap, body: Bytes) -> Response {
    userinfo(state, None, headers, body).await
}

#[utoipa::path(get, path = "/oidc/{tenant}/userinfo", tag = "oidc-provider", security(("bearer" = [])), params(("tenant" = String, Path)),
    responses((status = 200, body = Object, description = "The claims."),
        (status = 401, body = OAuthErrorBody, content_type = "application/json", description = "`invalid_token`."),
        (status = 404, description = "`not_found`."), (status = 503, description = "`oidc.unavailable`.")))]
async fn userinfo_tenant(state: State<App>, Path(tenant): Path<String>, headers: HeaderMap) -> Response {
    userinfo(state, Some(tenant), headers, Bytes::new()).await
}

#[utoipa::path(post, path = "/oidc/{tenant}/userinfo", tag = "oidc-provider", security(("bearer" = [])), params(("tenant" = String, Path)),
    request_body(content = TokenParam, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = Object, description = "The claims."),
        (status = 401, body = OAuthErrorBody, content_type = "application/json", description = "`invalid_token`."),
        (status = 404, description = "`not_found`."), (status = 503, description = "`oidc.unavailable`.")))]
async fn userinfo_tenant_post(state: State<App>, Path(tenant): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    userinfo(state, Some(tenant), headers, body).await
}

#[utoipa::path(post, path = "/oidc/introspect", tag = "oidc-provider",
    request_body(content = TokenParam, content_type = "application/x-www-form-urlencoded", description = "`token`; the caller, a confidential client, by HTTP Basic or the form."),
    responses((status = 200, body = Object, description = "RFC 7662: `{\"active\": true, …}` for a live token of the tenant, else `{\"active\": false}`."),
        (status = 400, body = OAuthErrorBody, content_type = "application/json", description = "`invalid_request`."),
        (status = 401, body = OAuthErrorBody, content_type = "application/json", description = "`invalid_client`."),
        (status = 413, description = "`body.too_large`."), (status = 503, description = "`oidc.unavailable`.")))]
async fn introspect_root(state: State<App>, request: axum::extract::Request) -> Response {
    introspect(state, None, request).await
}

#[utoipa::path(post, path = "/oidc/{tenant}/introspect", tag = "oidc-provider", params(("tenant" = String, Path)),
    request_body(content = TokenParam, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = Object, description = "RFC 7662."),
        (status = 400, body = OAuthErrorBody, content_type = "application/json", description = "`invalid_request`."),
        (status = 401, body = OAuthErrorBody, content_type = "application/json", description = "`invalid_client`."),
        (status = 404, description = "`not_found`."), (status = 413, description = "`body.too_large`."), (status = 503, description = "`oidc.unavailable`.")))]
async fn introspect_tenant(state: State<App>, Path(tenant): Path<String>, request: axum::extract::Request) -> Response {
    introspect(state, Some(tenant), request).await
}

#[utoipa::path(post, path = "/oidc/revoke", tag = "oidc-provider",
    request_body(content = TokenParam, content_type = "application/x-www-form-urlencoded", description = "`token`; the client it was issued to."),
    responses((status = 200, body = Object, description = "RFC 7009: done, or nothing to do (the same answer)."),
        (status = 400, body = OAuthErrorBody, content_type = "application/json", description = "`invalid_request`."),
        (status = 401, body = OAuthErrorBody, content_type = "application/json", description = "`invalid_client`."),
        (status = 503, description = "`oidc.unavailable`.")))]
async fn revoke_root(state: State<App>, headers: HeaderMap, body: Bytes) -> Response {
    revoke(state, None, headers, body).await
}

#[utoipa::path(post, path = "/oidc/{tenant}/revoke", tag = "oidc-provider", params(("tenant" = String, Path)),
    request_body(content = TokenParam, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, body = Object, description = "RFC 7009."),
        (status = 400, body = OAuthErrorBody, content_type = "application/json", description = "`invalid_request`."),
        (status = 401, body = OAuthErrorBody, content_type = "application/json", description = "`invalid_client`."),
        (status = 404, description = "`not_found`."), (status = 503, description = "`oidc.unavailable`.")))]
async fn revoke_tenant(state: State<App>, Path(tenant): Path<String>, headers: HeaderMap, body: Bytes) -> Response {
    revoke(state, Some(tenant), headers, body).await
}

// --- answers ------------------------------------------------------------------------------------

/// JSON that no cache keeps (RFC 6749 §5.1).
fn fresh_json(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// An OAuth error for a client, or the server's own failure as problem+json.
fn client_error(e: ClientFacing, basic: bool) -> Response {
    match e {
        ClientFacing::OAuth(e) => {
            let status = if e.error == "invalid_client" { StatusCode::UNAUTHORIZED } else { StatusCode::BAD_REQUEST };
            let mut response = fresh_json(status, &serde_json::json!({ "error": e.error, "error_description": e.description }));
            if status == StatusCode::UNAUTHORIZED {
                let challenge = if basic { "Basic realm=\"warden\"" } else { "Basic realm=\"warden\", error=\"invalid_client\"" };
                response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
            }
            response
        }
        ClientFacing::Service(e) => ApiError::from(e).into_response(),
    }
}

fn issuer(app: &App, tenant: Option<&str>) -> Result<std::sync::Arc<Issuer>, ServiceError> {
    app.oidc.issuer(tenant)
}

/// A form body, or an OAuth `invalid_request` naming what is wrong with it.
fn form<T: serde::de::DeserializeOwned + Default>(body: &Bytes) -> Result<T, ClientFacing> {
    if body.is_empty() {
        return Ok(T::default());
    }
    serde_urlencoded::from_bytes(body).map_err(|e| OAuthError::new("invalid_request", format!("the form does not parse: {e}")).into())
}

/// The form of introspection, revocation and userinfo ([`TokenParam`]), read in place: a token
/// is most of the body and needs no decoding (a JWT is URL-safe), so it is borrowed, not
/// copied. A field sent twice is refused (RFC 6749 §3.1). No `Debug`: it holds tokens and
/// secrets.
#[derive(Default)]
struct TokenFields<'a> {
    token: Option<Cow<'a, str>>,
    client_id: Option<Cow<'a, str>>,
    client_secret: Option<Cow<'a, str>>,
    access_token: Option<Cow<'a, str>>,
}

fn token_param(body: &Bytes) -> Result<TokenFields<'_>, ClientFacing> {
    let bad = |why: &str| ClientFacing::from(OAuthError::new("invalid_request", format!("the form does not parse: {why}")));
    let text = std::str::from_utf8(body).map_err(|_| bad("not UTF-8"))?;
    let mut fields = TokenFields::default();
    // Split and scanned with SIMD (`memchr`): the token is hundreds of bytes, and a
    // character-by-character scan of it was this endpoint's largest cost of its own.
    let mut start = 0;
    let ends = memchr::memchr_iter(b'&', text.as_bytes()).chain(std::iter::once(text.len()));
    for end in ends {
        let pair = &text[start..end];
        start = end + 1;
        if pair.is_empty() {
            continue;
        }
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = if needs_decoding(value) {
            Cow::Owned(form_decode(value).ok_or_else(|| bad("bad percent-encoding"))?)
        } else {
            Cow::Borrowed(value)
        };
        let slot = match key {
            "token" => &mut fields.token,
            "client_id" => &mut fields.client_id,
            "client_secret" => &mut fields.client_secret,
            "access_token" => &mut fields.access_token,
            _ => continue,
        };
        if slot.replace(value).is_some() {
            return Err(bad(&format!("{key} is sent twice")));
        }
    }
    Ok(fields)
}

/// The client's credentials: HTTP Basic (each half form-decoded, RFC 6749 §2.3.1) or form
/// fields; both at once is flagged.
fn client_credentials(headers: &HeaderMap, client_id: Option<&str>, client_secret: Option<&str>) -> (ClientCredentials, bool) {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")))
        .and_then(|b| basic_pair(b.trim()));
    match basic {
        Some((id, secret)) => {
            let conflicting = client_secret.is_some() || client_id.is_some_and(|c| c != id);
            (ClientCredentials { client_id: Some(id), secret: Some(Secret::new(secret)), conflicting }, true)
        }
        None => (
            ClientCredentials {
                client_id: client_id.map(str::to_owned),
                secret: client_secret.map(|s| Secret::new(s.to_owned())),
                conflicting: false,
            },
            false,
        ),
    }
}

/// The id and secret of HTTP Basic's `id:secret` in base64, each form-decoded. Decoded on the
/// stack when it fits (a client's id and secret are short, and this runs on every
/// introspection), on the heap otherwise.
fn basic_pair(encoded: &str) -> Option<(String, String)> {
    use base64::engine::general_purpose::STANDARD;
    let split = |text: &str| {
        let (id, secret) = text.split_once(':')?;
        Some((form_decode(id)?, form_decode(secret)?))
    };
    let mut buf = [0u8; 256];
    match STANDARD.decode_slice(encoded, &mut buf) {
        Ok(n) => split(std::str::from_utf8(&buf[..n]).ok()?),
        Err(base64::DecodeSliceError::OutputSliceTooSmall) => split(&String::from_utf8(STANDARD.decode(encoded).ok()?).ok()?),
        Err(base64::DecodeSliceError::DecodeError(_)) => None,
    }
}

/// Whether a form value has a `%` escape or a `+` (a space) to decode: a SIMD scan of bytes,
/// as a token is hundreds of them and this runs on every introspection.
fn needs_decoding(raw: &str) -> bool {
    memchr::memchr2(b'%', b'+', raw.as_bytes()).is_some()
}

fn form_decode(raw: &str) -> Option<String> {
    // Most ids and secrets need no decoding (ours are `[a-z0-9_-]`).
    if !needs_decoding(raw) {
        return Some(raw.to_owned());
    }
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&format!("v={raw}")).ok()?;
    pairs.into_iter().next().map(|(_, v)| v)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")).map(str::trim)
}

// --- discovery and keys -------------------------------------------------------------------------

async fn discovery(State(app): State<App>, tenant: Option<String>, _headers: HeaderMap) -> Response {
    match app.oidc.existing_issuer(tenant.as_deref()).await {
        Ok(issuer) => axum::Json(issuer.discovery()).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn jwks(State(app): State<App>) -> Response {
    match app.oidc.jwks().await {
        Ok(keys) => {
            let mut response = axum::Json(keys).into_response();
            // Relying parties may keep it briefly; a new key is published before it signs.
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=60"));
            response
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

// --- the browser's side -------------------------------------------------------------------------

/// The browser's session, if its cookie carries a live one.
async fn browser(app: &App, headers: &HeaderMap) -> Option<Browser> {
    let token = SessionCookie::new(&app.config.forward_auth).read(headers)?;
    let (principal, session) = app.auth.authenticate_session(token).await.ok()??;
    let held_at = if principal.password_change_required {
        Some(PASSWORD_SCREEN)
    } else if principal.mfa_enrolment_required {
        Some(SECURITY_SCREEN)
    } else {
        None
    };
    Some(Browser { account: principal.account, session, held_at })
}

/// Whether this navigation comes from one of Warden's own pages (a form's redirect chain).
fn from_own_page(headers: &HeaderMap) -> bool {
    headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) == Some("same-origin")
}

#[derive(Template)]
#[template(path = "oidc_consent.html")]
struct ConsentPage {
    chrome: Chrome,
    client_name: String,
    account: Option<String>,
    /// What the application will learn, in words.
    items: Vec<String>,
    action: String,
    fields: Vec<(String, String)>,
}

/// What a scope or claim set gives an application, as the consent page says it.
fn in_words(scopes: &[String], claims: &[String]) -> Vec<String> {
    let mut out: Vec<String> = scopes
        .iter()
        .map(|s| match s.as_str() {
            "openid" => "that it is you (your account's id)".to_owned(),
            "profile" => "your name and profile".to_owned(),
            "email" => "your e-mail address".to_owned(),
            other => format!("access it calls \u{201c}{other}\u{201d}"),
        })
        .collect();
    out.extend(claims.iter().map(|c| match c.as_str() {
        "groups" => "the groups you are in".to_owned(),
        "roles" => "your roles".to_owned(),
        "permissions" => "your permissions".to_owned(),
        other => other.to_owned(),
    }));
    out
}

#[derive(Template)]
#[template(path = "oidc_continue.html")]
struct ContinuePage {
    chrome: Chrome,
    message: String,
    target: String,
}

#[derive(Template)]
#[template(path = "oidc_logout.html")]
struct LogoutPage {
    chrome: Chrome,
    client_name: Option<String>,
    action: String,
    fields: Vec<(String, String)>,
}

/// On to the client: a redirect, or from Warden's own form chain, a page that navigates.
fn to_client(visit: &Visit, headers: &HeaderMap, target: String, posted: bool) -> Response {
    if posted || from_own_page(headers) {
        let page = ContinuePage { chrome: visit.chrome("Continue", None), message: "Taking you back to the application…".into(), target };
        return visit.page(StatusCode::OK, &page);
    }
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(&target) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn params_fields(p: &AuthorizeParams) -> Vec<(String, String)> {
    p.pairs().into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

fn answer(
    visit: &Visit,
    headers: &HeaderMap,
    issuer: &Issuer,
    params: &AuthorizeParams,
    browser: Option<&Browser>,
    outcome: Authorized,
    posted: bool,
) -> Response {
    match outcome {
        Authorized::ToClient(target) => to_client(visit, headers, target, posted),
        Authorized::Refused(why) => visit.message(None, StatusCode::BAD_REQUEST, "Sign-in refused", &why),
        Authorized::SignIn(to) => Redirect::to(&to).into_response(),
        Authorized::Held(to) => Redirect::to(to).into_response(),
        Authorized::Consent(prompt) => {
            let fields = params_fields(params);
            let page = ConsentPage {
                chrome: visit.chrome(format!("Allow {}?", prompt.client_name), None),
                client_name: prompt.client_name,
                account: browser.map(|b| b.account.name.to_string()),
                items: in_words(&prompt.scopes, &prompt.claims),
                action: format!("{}/consent", issuer.path),
                fields,
            };
            visit.page(StatusCode::OK, &page)
        }
    }
}

async fn authorize(
    State(app): State<App>,
    tenant: Option<String>,
    visit: Visit,
    headers: HeaderMap,
    Query(params): Query<AuthorizeParams>,
) -> Response {
    let issuer = match issuer(&app, tenant.as_deref()) {
        Ok(i) => i,
        Err(e) => return visit.problem(None, &e),
    };
    let browser = browser(&app, &headers).await;
    match app.oidc.authorize(&issuer, &params, browser.as_ref(), Consent::NotAsked).await {
        Ok(outcome) => answer(&visit, &headers, &issuer, &params, browser.as_ref(), outcome, false),
        Err(e) => visit.problem(None, &e),
    }
}

#[derive(Deserialize)]
struct ConsentForm {
    #[serde(flatten)]
    params: AuthorizeParams,
    #[serde(default)]
    decision: Option<String>,
}

async fn consent(
    State(app): State<App>,
    tenant: Option<String>,
    visit: Visit,
    headers: HeaderMap,
    Posted(form): Posted<ConsentForm>,
) -> Response {
    let issuer = match issuer(&app, tenant.as_deref()) {
        Ok(i) => i,
        Err(e) => return visit.problem(None, &e),
    };
    let browser = browser(&app, &headers).await;
    let decision = if form.decision.as_deref() == Some("allow") { Consent::Allowed } else { Consent::Denied };
    match app.oidc.authorize(&issuer, &form.params, browser.as_ref(), decision).await {
        Ok(outcome) => answer(&visit, &headers, &issuer, &form.params, browser.as_ref(), outcome, true),
        Err(e) => visit.problem(None, &e),
    }
}

async fn logout(
    State(app): State<App>,
    tenant: Option<String>,
    visit: Visit,
    headers: HeaderMap,
    Query(req): Query<LogoutRequest>,
) -> Response {
    end_session(app, tenant, visit, headers, req, false).await
}

#[derive(Deserialize)]
struct LogoutForm {
    #[serde(flatten)]
    req: LogoutRequest,
}

async fn logout_confirmed(
    State(app): State<App>,
    tenant: Option<String>,
    visit: Visit,
    headers: HeaderMap,
    Posted(form): Posted<LogoutForm>,
) -> Response {
    end_session(app, tenant, visit, headers, form.req, true).await
}

async fn end_session(app: App, tenant: Option<String>, visit: Visit, headers: HeaderMap, req: LogoutRequest, confirmed: bool) -> Response {
    let issuer = match issuer(&app, tenant.as_deref()) {
        Ok(i) => i,
        Err(e) => return visit.problem(None, &e),
    };
    let browser = browser(&app, &headers).await;
    let outcome = match app.oidc.end_session(&issuer, &req, browser.as_ref(), confirmed).await {
        Ok(o) => o,
        Err(e) => return visit.problem(None, &e),
    };
    match outcome {
        EndSession::Refused(why) => visit.message(None, StatusCode::BAD_REQUEST, "Sign-out refused", &why),
        EndSession::Confirm { client_name, .. } => {
            let fields: Vec<(String, String)> = [
                ("id_token_hint", &req.id_token_hint),
                ("post_logout_redirect_uri", &req.post_logout_redirect_uri),
                ("state", &req.state),
                ("client_id", &req.client_id),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k.to_owned(), v.clone())))
            .collect();
            let page =
                LogoutPage { chrome: visit.chrome("Sign out", None), client_name, action: format!("{}/logout", issuer.path), fields };
            visit.page(StatusCode::OK, &page)
        }
        EndSession::Done { end_browser_session, back } => {
            let mut response = match back {
                Some(target) => to_client(&visit, &headers, target, confirmed),
                None => visit.message(None, StatusCode::OK, "Signed out", "You are signed out of Warden."),
            };
            if end_browser_session {
                if let Some(token) = SessionCookie::new(&app.config.forward_auth).read(&headers)
                    && let Ok(principal) = app.auth.authenticate_bearer(token).await
                    && let Err(e) = app.auth.logout(&principal).await
                {
                    return visit.problem(None, &e);
                }
                if let Some(clear) = SessionCookie::new(&app.config.forward_auth).clear() {
                    response.headers_mut().append(header::SET_COOKIE, clear);
                }
            }
            response
        }
    }
}

// --- the clients' side --------------------------------------------------------------------------

async fn token(State(app): State<App>, tenant: Option<String>, headers: HeaderMap, body: Bytes) -> Response {
    let form: TokenForm = match form(&body) {
        Ok(f) => f,
        Err(e) => return client_error(e, false),
    };
    let (creds, basic) = client_credentials(&headers, form.client_id.as_deref(), form.client_secret.as_deref());
    let issuer = match issuer(&app, tenant.as_deref()) {
        Ok(i) => i,
        Err(e) => return client_error(e.into(), basic),
    };
    match app.oidc.token(&issuer, &creds, &form).await {
        Ok(tokens) => fresh_json(StatusCode::OK, &serde_json::to_value(tokens).unwrap_or_default()),
        Err(e) => client_error(e, basic),
    }
}

async fn userinfo(State(app): State<App>, tenant: Option<String>, headers: HeaderMap, body: Bytes) -> Response {
    let posted = token_param(&body).unwrap_or_default();
    let token = bearer(&headers).map(str::to_owned).or(posted.access_token.map(Cow::into_owned));
    let issuer = match issuer(&app, tenant.as_deref()) {
        Ok(i) => i,
        Err(e) => return ApiError::from(e).into_response(),
    };
    match app.oidc.userinfo(&issuer, token.as_deref()).await {
        Ok(claims) => fresh_json(StatusCode::OK, &Value::Object(claims)),
        Err(ClientFacing::OAuth(e)) => {
            let mut response =
                fresh_json(StatusCode::UNAUTHORIZED, &serde_json::json!({ "error": e.error, "error_description": e.description }));
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer error=\"invalid_token\""));
            response
        }
        Err(e) => client_error(e, false),
    }
}

/// Takes the request whole rather than through extractors: a resource server calls this for
/// every request it serves, and the extractors would copy the headers.
async fn introspect(State(app): State<App>, tenant: Option<String>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    let Ok(body) = axum::body::to_bytes(body, app.config.server.max_body_bytes).await else {
        return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body.too_large", "the body is larger than server.max_body_bytes")
            .into_response();
    };
    let posted = match token_param(&body) {
        Ok(f) => f,
        Err(e) => return client_error(e, false),
    };
    let (creds, basic) = client_credentials(headers, posted.client_id.as_deref(), posted.client_secret.as_deref());
    let issuer = match issuer(&app, tenant.as_deref()) {
        Ok(i) => i,
        Err(e) => return client_error(e.into(), basic),
    };
    // From the caches when it can be (the steady state of a resource server asking about the
    // same tokens); the full way otherwise, boxed so that the short way stays small.
    let answer = match app.oidc.introspect_cached(&issuer, &creds, posted.token.as_deref()) {
        Some(answer) => Ok(answer),
        None => Box::pin(app.oidc.introspect(&issuer, &creds, posted.token.as_deref())).await,
    };
    match answer {
        Ok(answer) => {
            // Both headers in one allocation of the map.
            let mut response = Response::new(axum::body::Body::from(answer));
            let headers = response.headers_mut();
            headers.reserve(2);
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(e) => client_error(e, basic),
    }
}

async fn revoke(State(app): State<App>, tenant: Option<String>, headers: HeaderMap, body: Bytes) -> Response {
    let posted = match token_param(&body) {
        Ok(f) => f,
        Err(e) => return client_error(e, false),
    };
    let (creds, basic) = client_credentials(&headers, posted.client_id.as_deref(), posted.client_secret.as_deref());
    let issuer = match issuer(&app, tenant.as_deref()) {
        Ok(i) => i,
        Err(e) => return client_error(e.into(), basic),
    };
    match app.oidc.revoke(&issuer, &creds, posted.token.as_deref()).await {
        Ok(()) => fresh_json(StatusCode::OK, &serde_json::json!({})),
        Err(e) => client_error(e, basic),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_form_is_read_and_a_repeated_field_refused() {
        let body = Bytes::from_static(b"token=a.b.c&token_type_hint=access_token&client_id=app&client_secret=s%2Bt+u");
        let p = token_param(&body).unwrap();
        assert_eq!(p.token.as_deref(), Some("a.b.c"));
        assert_eq!(p.client_id.as_deref(), Some("app"));
        assert_eq!(p.client_secret.as_deref(), Some("s+t u"), "percent and plus decoded");
        assert!(matches!(p.token, Some(Cow::Borrowed(_))), "a token is borrowed, not copied");
        assert!(token_param(&Bytes::from_static(b"token=a&token=b")).is_err());
        assert_eq!(token_param(&Bytes::from_static(b"token=%zz")).unwrap().token.as_deref(), Some("%zz"), "left as sent, as browsers do");
        assert!(token_param(&Bytes::from_static(&[0xff, 0xfe])).is_err());
        assert_eq!(token_param(&Bytes::new()).unwrap().token, None);
    }

    #[test]
    fn basic_credentials_are_form_decoded_and_a_second_method_is_flagged() {
        let mut headers = HeaderMap::new();
        let encoded = base64::engine::general_purpose::STANDARD.encode("my%20app:se%3Acret");
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Basic {encoded}")).unwrap());
        let (creds, basic) = client_credentials(&headers, None, None);
        assert!(basic && !creds.conflicting);
        assert_eq!((creds.client_id.as_deref(), creds.secret.as_ref().map(Secret::expose)), (Some("my app"), Some("se:cret")));
        let (creds, _) = client_credentials(&headers, None, Some("other"));
        assert!(creds.conflicting, "Basic and a form secret at once");
        let (creds, basic) = client_credentials(&HeaderMap::new(), Some("app"), Some("s"));
        assert!(!basic && !creds.conflicting && creds.client_id.as_deref() == Some("app"));
        // Longer than the stack buffer: decoded on the heap, the same.
        let long = format!("app:{}", "s".repeat(400));
        let (id, secret) = basic_pair(&base64::engine::general_purpose::STANDARD.encode(&long)).unwrap();
        assert_eq!((id.as_str(), secret.len()), ("app", 400));
        assert_eq!(basic_pair("not base64!"), None);
        assert_eq!(basic_pair(&base64::engine::general_purpose::STANDARD.encode("no colon")), None);
        assert_eq!(basic_pair(&base64::engine::general_purpose::STANDARD.encode([0xff, b':', 0xfe])), None, "not UTF-8");
    }
}
