//! `/auth/forward` for Traefik `ForwardAuth`, Caddy `forward_auth` and nginx `auth_request`,
//! and the sign-in page browsers are sent to.
//!
//! The original request is read from `X-Forwarded-Method/-Proto/-Host/-Uri` (Traefik, Caddy)
//! or `X-Original-URL`/`X-Original-Method` (nginx), and only from a trusted proxy. Its path
//! and host are judged in their canonical form (`warden_policy::canonical`), so that a rule
//! covers the path the application will serve however the client spelled it; a path or host
//! without one meaning is refused. The client's address is the rightmost `X-Forwarded-For`
//! entry that is not a trusted proxy, as for the API. Browsers
//! without a valid session are sent to sign in: a 302 for Traefik and Caddy; for nginx, whose
//! `auth_request` accepts only 2xx/401/403, a 401 with the sign-in URL in `X-Warden-Login`
//! for its `error_page` to redirect to. The return URL must be on an allowed domain, so the
//! sign-in page is never an open redirect.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};

use axum::Form;
use axum::body::Body;
use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use warden_core::api::{LoginOutcome, SecondFactorAnswer};
use warden_core::credential::Secret;
use warden_policy::{HeaderList, RequestView};

use super::App;
use super::csrf::Csrf;
use super::error::ApiError;
use super::extract::{ClientAddr, cookie, forwarded_client, user_agent};
use crate::services::ServiceError;
use crate::services::forward::{Outcome, Presented};

/// Any method: the proxy forwards the original one in a header. The request is taken whole,
/// not as a `HeaderMap`, which axum would copy.
pub async fn forward(State(app): State<App>, request: Request) -> Response {
    let (parts, _) = request.into_parts();
    let headers = &parts.headers;
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    if !app.forward.trusts(peer) {
        tracing::warn!(?peer, "forward-auth request from an untrusted address refused");
        return plain(StatusCode::FORBIDDEN, "forward-auth requests are accepted from trusted proxies only");
    }
    let original = match Forwarded::read(&parts.method, headers, &app.config.forward_auth.trusted_proxies) {
        Ok(original) => original,
        Err(refusal) => return refusal.into_response(),
    };
    let config = &app.config.forward_auth;
    if config.allow_cors_preflight && is_preflight(&original, headers) {
        return StatusCode::OK.into_response();
    }
    let presented = presented(headers, &config.cookie_name);
    // The client's address counts only for Basic, whose failures are throttled per client; when
    // the proxy names no client, all of its clients count as the proxy.
    let client = match presented {
        Presented::Basic(..) => original.client.or(peer.map(|ip| ip.to_canonical())),
        _ => None,
    };
    // Only policies read the request's headers: they are listed when one that may read them is asked.
    match app.forward.decide(original.view(), || policy_headers(headers), presented, client).await {
        Ok(Outcome::Allow { headers }) => {
            let mut response = Response::new(Body::empty());
            *response.headers_mut() = HeaderMap::clone(&headers);
            response
        }
        Ok(Outcome::Deny { status, headers, body }) => {
            with_headers(StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN), &headers, body)
        }
        Ok(Outcome::Unauthenticated { body }) => {
            let browser = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"));
            let login = login_url(&app, &original.url());
            match (browser, login) {
                (true, Some(login)) if !original.nginx => {
                    let mut response = StatusCode::FOUND.into_response();
                    if let Ok(v) = HeaderValue::from_str(&login) {
                        response.headers_mut().insert(header::LOCATION, v);
                    }
                    response
                }
                (_, login) => {
                    let mut response = with_headers(StatusCode::UNAUTHORIZED, &[], body);
                    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(r#"Bearer realm="warden""#));
                    if let Some(v) = login.filter(|_| browser).and_then(|l| HeaderValue::from_str(&l).ok()) {
                        response.headers_mut().insert(HeaderName::from_static("x-warden-login"), v);
                    }
                    response
                }
            }
        }
        Err(ServiceError::RateLimited { .. }) => plain(StatusCode::TOO_MANY_REQUESTS, "too many failed attempts"),
        Err(e) => {
            tracing::error!(error = %e, "forward-auth failed");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "the decision could not be made")
        }
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response {
    (status, text).into_response()
}

fn with_headers(status: StatusCode, headers: &[(String, String)], body: Option<String>) -> Response {
    let mut response = (status, body.unwrap_or_default()).into_response();
    for (name, value) in headers {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
            response.headers_mut().insert(n, v);
        }
    }
    response
}

fn header<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

// The headers read on every request, named once (a `&str` name is parsed on each lookup).
const X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
const X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_ORIGINAL_URL: HeaderName = HeaderName::from_static("x-original-url");
const X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");

/// The request the proxy asks about, borrowed from the headers it sent: copied only where it
/// needs normalising (a lower-case method, an upper-case scheme or host, a path that is not
/// canonical), which proxies rarely send.
#[derive(Debug)]
struct Forwarded<'a> {
    method: Cow<'a, str>,
    scheme: Cow<'a, str>,
    /// Host and port as the browser addressed them, lower-case: the return URL keeps the port.
    authority: Cow<'a, str>,
    /// The length of the host in `authority`, without a trailing dot.
    host_len: usize,
    /// Path and query, as sent: the return URL.
    uri: &'a str,
    /// The canonical path: what rules and policies judge.
    path: Cow<'a, str>,
    query: &'a str,
    /// The client's address (see [`forwarded_client`]) and its text for policies.
    client: Option<IpAddr>,
    client_text: Option<Cow<'a, str>>,
    /// Whether the proxy asked nginx-style (`X-Original-URL`).
    nginx: bool,
}

/// Why the original request cannot be judged: `400` with a problem (nginx-style `403`, since
/// nginx's `auth_request` turns any status but 2xx, 401 and 403 into a 500).
#[derive(Debug)]
struct Unreadable {
    nginx: bool,
    code: &'static str,
    detail: String,
}

impl Unreadable {
    fn new(nginx: bool, code: &'static str, detail: impl Into<String>) -> Self {
        Self { nginx, code, detail: detail.into() }
    }

    fn from_policy(nginx: bool, e: &warden_policy::PolicyError) -> Self {
        Self::new(nginx, e.code(), e.to_string())
    }
}

impl IntoResponse for Unreadable {
    fn into_response(self) -> Response {
        tracing::debug!(code = self.code, detail = %self.detail, "forward-auth request refused");
        let status = if self.nginx { StatusCode::FORBIDDEN } else { StatusCode::BAD_REQUEST };
        ApiError::new(status, self.code, self.detail).into_response()
    }
}

impl<'a> Forwarded<'a> {
    /// Reads the original request; the headers that select a style count when present, even
    /// unreadable, so that a proxy's value that does not decode never yields to one the
    /// client sent under the other style's name.
    fn read(method: &'a Method, headers: &'a HeaderMap, trusted: &[IpAddr]) -> Result<Self, Unreadable> {
        let nginx = !headers.contains_key(&X_FORWARDED_URI);
        let unreadable = |name: &HeaderName| {
            Unreadable::new(nginx, "forward.request_invalid", format!("the proxy's {name} header is not readable, or repeated"))
        };
        // One value, or none; a proxy sets these headers, it does not add to a client's.
        let single = |name: &HeaderName| -> Result<Option<&'a str>, Unreadable> {
            let mut values = headers.get_all(name).iter();
            match (values.next(), values.next()) {
                (None, _) => Ok(None),
                (Some(_), None) => header(headers, name).map(Some).ok_or_else(|| unreadable(name)),
                (Some(_), Some(_)) => Err(unreadable(name)),
            }
        };
        let (method, scheme, authority, uri) = if !nginx {
            let uri = single(&X_FORWARDED_URI)?.ok_or_else(|| unreadable(&X_FORWARDED_URI))?;
            let method = single(&X_FORWARDED_METHOD)?.unwrap_or(method.as_str());
            let scheme = single(&X_FORWARDED_PROTO)?.unwrap_or("http");
            let host = if headers.contains_key(&X_FORWARDED_HOST) {
                last_value(headers, &X_FORWARDED_HOST).ok_or_else(|| unreadable(&X_FORWARDED_HOST))?
            } else {
                last_value(headers, &header::HOST).ok_or_else(|| unreadable(&header::HOST))?
            };
            (method, scheme, host, uri)
        } else if let Some(url) = single(&X_ORIGINAL_URL)? {
            let (scheme, rest) = url.split_once("://").ok_or_else(|| unreadable(&X_ORIGINAL_URL))?;
            let (host, uri) = rest.find('/').map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
            let method = single(&X_ORIGINAL_METHOD)?.unwrap_or(method.as_str());
            (method, scheme, host, uri)
        } else {
            return Err(Unreadable::new(
                false,
                "forward.request_missing",
                "the proxy did not say which request to judge (X-Forwarded-* or X-Original-URL)",
            ));
        };
        let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
        let path = warden_policy::canonical::canonical_path(path).map_err(|e| Unreadable::from_policy(nginx, &e))?;
        let authority = lower(authority);
        let host_len = warden_policy::canonical::host_of(&authority).map_err(|e| Unreadable::from_policy(nginx, &e))?.len();
        let (client, client_text) = match forwarded_client(headers, trusted) {
            Some((ip, text)) if renders_as(ip, text) => (Some(ip), Some(Cow::Borrowed(text))),
            Some((ip, _)) => (Some(ip), Some(Cow::Owned(ip.to_string()))),
            None => (None, None),
        };
        Ok(Self { method: upper(method), scheme: lower(scheme), authority, host_len, uri, path, query, client, client_text, nginx })
    }

    fn host(&self) -> &str {
        &self.authority[..self.host_len]
    }

    /// The request as rules and policies see it (headers are added for policies that read them).
    fn view(&self) -> RequestView<'_> {
        RequestView {
            method: &self.method,
            scheme: &self.scheme,
            host: self.host(),
            path: &self.path,
            query: self.query,
            headers: HeaderList::Omitted,
            client: self.client_text.as_deref(),
        }
    }

    /// Where the browser was going: the return URL after signing in.
    fn url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.authority, self.uri)
    }
}

/// The last value of a header that may be a list, or repeated: the one the nearest proxy (a
/// trusted one) set or appended; the ones before it are what came from further away.
fn last_value<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Option<&'h str> {
    let value = headers.get_all(name).iter().next_back()?.to_str().ok()?;
    Some(value.rsplit(',').next().unwrap_or_default().trim()).filter(|v| !v.is_empty())
}

/// Whether `text` is how `ip` is written (so that the text can be lent, not copied).
fn renders_as(ip: IpAddr, text: &str) -> bool {
    use std::io::Write as _;
    let mut buffer = [0u8; 64];
    let mut cursor = std::io::Cursor::new(&mut buffer[..]);
    if write!(cursor, "{ip}").is_err() {
        return false;
    }
    let written = usize::try_from(cursor.position()).unwrap_or(0);
    buffer[..written] == *text.as_bytes()
}

fn lower(text: &str) -> Cow<'_, str> {
    if text.bytes().any(|b| b.is_ascii_uppercase()) { Cow::Owned(text.to_ascii_lowercase()) } else { Cow::Borrowed(text) }
}

fn upper(text: &str) -> Cow<'_, str> {
    if text.bytes().any(|b| b.is_ascii_lowercase()) { Cow::Owned(text.to_ascii_uppercase()) } else { Cow::Borrowed(text) }
}

/// The request's headers for a policy, without credentials.
fn policy_headers(headers: &HeaderMap) -> Vec<(&str, &str)> {
    headers
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "authorization" | "cookie" | "proxy-authorization"))
        .filter_map(|(name, value)| value.to_str().ok().map(|v| (name.as_str(), v)))
        .collect()
}

fn is_preflight(request: &Forwarded<'_>, headers: &HeaderMap) -> bool {
    request.method == "OPTIONS" && headers.contains_key(header::ORIGIN) && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// The credential: `Authorization` (Bearer or Basic) first, then the session cookie.
fn presented<'a>(headers: &'a HeaderMap, cookie_name: &str) -> Presented<'a> {
    if let Some(value) = header(headers, &header::AUTHORIZATION) {
        if let Some((scheme, credential)) = value.split_once(' ') {
            if scheme.eq_ignore_ascii_case("bearer") {
                return Presented::Bearer(credential.trim());
            }
            if scheme.eq_ignore_ascii_case("basic")
                && let Some((name, password)) = super::extract::decode_basic(credential.trim())
            {
                return Presented::Basic(name, password);
            }
        }
        return Presented::None;
    }
    cookie(headers, cookie_name).map_or(Presented::None, Presented::Cookie)
}

// --- redirects ----------------------------------------------------------------------------------

/// The host of an absolute http(s) URL, if it is one we could safely redirect to at all.
fn url_host(url: &str) -> Option<String> {
    if url.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\') {
        return None;
    }
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.is_empty() || authority.contains('@') || authority.starts_with('[') {
        return None;
    }
    let (host, port) = authority.split_once(':').unwrap_or((authority, "0"));
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let host = host.to_ascii_lowercase();
    host.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-').then_some(host).filter(|h| !h.is_empty())
}

/// Whether `url` is on Warden's own host or an allowed domain (or a subdomain of one).
fn redirect_allowed(app: &App, url: &str) -> bool {
    let Some(host) = url_host(url) else { return false };
    let config = &app.config.forward_auth;
    let own = config.public_url.as_deref().and_then(url_host);
    own.as_deref() == Some(host.as_str())
        || config.allowed_redirect_domains.iter().any(|d| {
            let d = d.trim().trim_start_matches('.').to_ascii_lowercase();
            host == d || host.ends_with(&format!(".{d}"))
        })
}

fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The sign-in URL that returns to `original`, when there is a sign-in page and `original`
/// may be returned to.
fn login_url(app: &App, original: &str) -> Option<String> {
    let base = app.config.forward_auth.public_url.as_deref()?.trim_end_matches('/');
    redirect_allowed(app, original).then(|| format!("{base}/login?rd={}", percent_encode(original)))
}

// --- the sign-in page ---------------------------------------------------------------------------

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

pub(super) fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// The sign-in pages' one stylesheet. The CSP allows exactly this text (by its SHA-256), so
/// no injected style could apply.
pub(super) const PAGE_STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:22rem;margin:4rem auto;padding:0 1rem}\
label,input,button{display:block;width:100%;margin:.4rem 0}input{padding:.4rem}.error{color:#b00020}";

/// The sign-in pages' Content-Security-Policy: nothing but [`PAGE_STYLE`], forms to Warden.
static PAGE_CSP: std::sync::LazyLock<HeaderValue> = std::sync::LazyLock::new(|| {
    use base64::Engine;
    use sha2::Digest;
    let digest = sha2::Sha256::digest(PAGE_STYLE.as_bytes());
    let policy = format!(
        "default-src 'none'; style-src 'sha256-{}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    );
    HeaderValue::from_str(&policy).unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"))
});

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
        _ => "One of your backup codes.",
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
pub(super) fn secure_page(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(HeaderName::from_static("x-frame-options"), HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // `same-origin`, not `no-referrer`: with `no-referrer` browsers send `Origin: null` on the
    // page's own form posts, which the CSRF check would refuse.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin"));
    headers.insert(header::CONTENT_SECURITY_POLICY, PAGE_CSP.clone());
}

/// Whether the cookies of the sign-in flow are `Secure`.
fn cookies_secure(app: &App) -> bool {
    let config = &app.config.forward_auth;
    config.cookie_secure.unwrap_or_else(|| config.public_url.as_deref().is_some_and(|u| u.starts_with("https://")))
}

pub(super) fn csrf(app: &App) -> Csrf {
    Csrf::new(app.config.forward_auth.public_url.as_deref(), cookies_secure(app))
}

fn session_cookie(app: &App, value: &str, max_age: i64) -> Option<HeaderValue> {
    let config = &app.config.forward_auth;
    let secure = cookies_secure(app);
    let mut cookie = format!("{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}", config.cookie_name);
    if let Some(domain) = &config.cookie_domain {
        cookie.push_str("; Domain=");
        cookie.push_str(domain);
    }
    if secure {
        cookie.push_str("; Secure");
    }
    HeaderValue::from_str(&cookie).ok()
}

/// The sign-in form's post: refused (`403`) from another site or without the page's token,
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

/// Signed in: the session cookie, and on to the return URL (an allowed one) or `/login/done`.
fn signed_in(app: &App, rd: Option<&str>, session_token: &str) -> Response {
    let target = rd.filter(|r| redirect_allowed(app, r)).map_or_else(|| "/login/done".to_owned(), str::to_owned);
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&target) {
        headers.insert(header::LOCATION, v);
    }
    if let Some(c) = session_cookie(app, session_token, app.ctx.times.session_ttl_secs) {
        headers.insert(header::SET_COOKIE, c);
    }
    response
}

/// The second step's post (CSRF-checked like the first): a code that looks like a backup code
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
    if let Some(token) = cookie(&headers, &app.config.forward_auth.cookie_name)
        && let Ok(principal) = app.auth.authenticate_bearer(token).await
        && let Err(e) = app.auth.logout(&principal).await
    {
        tracing::warn!(error = %e, "browser logout failed");
    }
    let mut response = login_done_out();
    if let Some(c) = session_cookie(&app, "", 0) {
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
    fn only_plain_http_urls_have_a_host() {
        assert_eq!(url_host("https://app.example.org/x?y#z").as_deref(), Some("app.example.org"));
        assert_eq!(url_host("http://App.Example.org:8443").as_deref(), Some("app.example.org"));
        for bad in [
            "//evil.com",
            "javascript:alert(1)",
            "https://evil.com@app.example.org/",
            "https:/\\evil.com",
            "https://",
            "ftp://x.org",
            "https://ex ample.org",
            "https://[::1]/",
            "https://app.example.org:8443x/",
            "https://app.example.org:/",
        ] {
            assert_eq!(url_host(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_page_style_is_allowed_by_its_hash_alone() {
        use base64::Engine;
        use sha2::Digest;
        let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(PAGE_STYLE.as_bytes()));
        let csp = PAGE_CSP.to_str().unwrap();
        assert!(csp.contains(&format!("style-src 'sha256-{hash}'")) && !csp.contains("unsafe-inline"), "{csp}");
        let page = login_page(None, None, "t").0;
        assert!(page.contains(&format!("<style>{PAGE_STYLE}</style>")));
    }

    #[test]
    fn original_request_from_either_header_style() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-method", HeaderValue::from_static("post"));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        h.insert("x-forwarded-host", HeaderValue::from_static("App.example.org:443"));
        h.insert("x-forwarded-uri", HeaderValue::from_static("/api/x?y=1"));
        h.insert("authorization", HeaderValue::from_static("Bearer secret"));
        h.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9, 10.0.0.1"));
        let proxies = ["10.0.0.1".parse().unwrap()];
        let original = Forwarded::read(&Method::GET, &h, &proxies).unwrap();
        let r = original.view();
        assert_eq!(
            (r.method, r.scheme, r.host, r.path, r.query, r.client, original.nginx),
            ("POST", "https", "app.example.org", "/api/x", "y=1", Some("203.0.113.9"), false)
        );
        assert_eq!(original.url(), "https://app.example.org:443/api/x?y=1", "the return URL keeps the port");
        let for_policy = policy_headers(&h);
        assert!(!for_policy.iter().any(|(name, _)| *name == "authorization"), "credentials never reach policies");
        assert!(for_policy.contains(&("x-forwarded-host", "App.example.org:443")));
        assert!(matches!(r.headers, HeaderList::Omitted), "headers are listed only for policies");
        let mut h = HeaderMap::new();
        h.insert("x-original-url", HeaderValue::from_static("HTTP://app.example.org/admin/?a=B"));
        h.insert("x-original-method", HeaderValue::from_static("DELETE"));
        let original = Forwarded::read(&Method::GET, &h, &[]).unwrap();
        let r = original.view();
        assert_eq!(
            (r.method, r.scheme, r.host, r.path, r.query, original.nginx),
            ("DELETE", "http", "app.example.org", "/admin/", "a=B", true)
        );
        assert_eq!(original.url(), "http://app.example.org/admin/?a=B");
        let mut h = HeaderMap::new();
        h.insert("x-original-url", HeaderValue::from_static("https://app.example.org"));
        assert_eq!(Forwarded::read(&Method::PATCH, &h, &[]).unwrap().view().path, "/", "no path is the root");
        let mut h = HeaderMap::new();
        h.insert("x-original-url", HeaderValue::from_static("http://[2001:DB8::1]:8080/x"));
        let original = Forwarded::read(&Method::GET, &h, &[]).unwrap();
        assert_eq!((original.view().host, original.url().as_str()), ("[2001:db8::1]", "http://[2001:db8::1]:8080/x"));
        assert_eq!(Forwarded::read(&Method::GET, &HeaderMap::new(), &[]).unwrap_err().code, "forward.request_missing");
    }

    /// Rules and policies see the canonical path and host; the return URL is what the browser
    /// asked for.
    #[test]
    fn the_path_and_host_are_canonical() {
        let traefik = |host: &'static str, uri: &'static str| {
            let mut h = HeaderMap::new();
            h.insert("x-forwarded-host", HeaderValue::from_static(host));
            h.insert("x-forwarded-uri", HeaderValue::from_static(uri));
            h
        };
        let h = traefik("App.Example.org.:8443", "/static/%2e%2e/%61dmin/./users?x=/../");
        let original = Forwarded::read(&Method::GET, &h, &[]).unwrap();
        assert_eq!((original.view().host, original.view().path, original.view().query), ("app.example.org", "/admin/users", "x=/../"));
        assert_eq!(original.url(), "http://app.example.org.:8443/static/%2e%2e/%61dmin/./users?x=/../");
        let h = traefik("evil.example, app.example.org", "/");
        assert_eq!(Forwarded::read(&Method::GET, &h, &[]).unwrap().view().host, "app.example.org", "the nearest proxy's host");
        for (host, uri, code) in [
            ("app.example.org", "/admin%2Fusers", "forward.path_invalid"),
            ("app.example.org", "/static/..;/admin", "forward.path_invalid"),
            ("app.example.org@evil.example", "/", "forward.host_invalid"),
            ("app.example.org, ", "/", "forward.request_invalid"),
        ] {
            let refusal = Forwarded::read(&Method::GET, &traefik(host, uri), &[]).unwrap_err();
            assert_eq!((refusal.code, refusal.nginx), (code, false), "{host} {uri}");
        }
        // A proxy's value that does not decode is refused, never replaced by the other style's.
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-uri", HeaderValue::from_bytes(b"/admin/\xff").unwrap());
        h.insert("x-original-url", HeaderValue::from_static("http://app.example.org/public/x"));
        assert_eq!(Forwarded::read(&Method::GET, &h, &[]).unwrap_err().code, "forward.request_invalid");
        let mut h = HeaderMap::new();
        h.insert("x-original-url", HeaderValue::from_static("http://app.example.org/admin%2Fusers"));
        assert!(Forwarded::read(&Method::GET, &h, &[]).unwrap_err().nginx, "nginx gets a refusal it can pass on");
        // The client, when it is written otherwise than canonically, is rewritten.
        let mut h = traefik("app.example.org", "/");
        h.insert("x-forwarded-for", HeaderValue::from_static("198.51.100.1, [2001:DB8::7]:443"));
        assert_eq!(Forwarded::read(&Method::GET, &h, &[]).unwrap().view().client, Some("2001:db8::7"));
    }

    #[test]
    fn cookies_and_escaping() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; warden_session=wds_abc; b=2"));
        assert_eq!(cookie(&h, "warden_session"), Some("wds_abc"));
        assert_eq!(escape("\"><script>"), "&quot;&gt;&lt;script&gt;");
        assert_eq!(percent_encode("https://a.org/x?y=1&z"), "https%3A%2F%2Fa.org%2Fx%3Fy%3D1%26z");
    }
}
