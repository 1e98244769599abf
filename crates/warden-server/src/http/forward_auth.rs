//! `/auth/forward` for Traefik `ForwardAuth`, Caddy `forward_auth` and nginx `auth_request`,
//! and the sign-in page browsers are sent to.
//!
//! The original request is read from `X-Forwarded-Method/-Proto/-Host/-Uri` (Traefik, Caddy)
//! or `X-Original-URL`/`X-Original-Method` (nginx), and only from a trusted proxy. Browsers
//! without a valid session are sent to sign in: a 302 for Traefik and Caddy; for nginx, whose
//! `auth_request` accepts only 2xx/401/403, a 401 with the sign-in URL in `X-Warden-Login`
//! for its `error_page` to redirect to. The return URL must be on an allowed domain, so the
//! sign-in page is never an open redirect.

use std::borrow::Cow;
use std::net::SocketAddr;

use axum::Form;
use axum::body::Body;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use warden_core::credential::Secret;
use warden_policy::{HeaderList, RequestView};

use super::App;
use super::extract::ClientAddr;
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
    let Some(original) = Forwarded::read(&parts.method, headers) else {
        return plain(StatusCode::BAD_REQUEST, "the proxy did not say which request to judge (X-Forwarded-* or X-Original-URL)");
    };
    let config = &app.config.forward_auth;
    if config.allow_cors_preflight && is_preflight(&original, headers) {
        return StatusCode::OK.into_response();
    }
    let presented = presented(headers, &config.cookie_name);
    // The client's address counts only for Basic, whose failures are throttled per client.
    let client = match presented {
        Presented::Basic(..) => original.client.and_then(|c| c.parse().ok()).or_else(|| ClientAddr::from_parts(&parts, &app).0),
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
        Err(e) if e.code() == "auth.rate_limited" => plain(StatusCode::TOO_MANY_REQUESTS, "too many failed attempts"),
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
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_ORIGINAL_URL: HeaderName = HeaderName::from_static("x-original-url");
const X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// The request the proxy asks about, borrowed from the headers it sent: copied only where it
/// needs normalising (a lower-case method, an upper-case scheme or host), which proxies rarely
/// send.
struct Forwarded<'a> {
    method: Cow<'a, str>,
    scheme: Cow<'a, str>,
    /// Host and port as the browser addressed them, lower-case: the return URL keeps the port.
    authority: Cow<'a, str>,
    /// The length of the host in `authority`.
    host_len: usize,
    /// Path and query, as sent.
    uri: &'a str,
    path: &'a str,
    query: &'a str,
    /// The client's address, as the proxy reported it.
    client: Option<&'a str>,
    /// Whether the proxy asked nginx-style (`X-Original-URL`).
    nginx: bool,
}

impl<'a> Forwarded<'a> {
    fn read(method: &'a Method, headers: &'a HeaderMap) -> Option<Self> {
        let (method, scheme, authority, uri, nginx) = if let Some(uri) = header(headers, &X_FORWARDED_URI) {
            let method = header(headers, &X_FORWARDED_METHOD).unwrap_or(method.as_str());
            let scheme = header(headers, &X_FORWARDED_PROTO).unwrap_or("http");
            let host = header(headers, &X_FORWARDED_HOST).or_else(|| header(headers, &header::HOST))?;
            (method, scheme, host, uri, false)
        } else {
            let url = header(headers, &X_ORIGINAL_URL)?;
            let (scheme, rest) = url.split_once("://")?;
            let (host, uri) = rest.find('/').map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
            let method = header(headers, &X_ORIGINAL_METHOD).unwrap_or(method.as_str());
            (method, scheme, host, uri, true)
        };
        let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
        let authority = lower(authority.split(',').next().unwrap_or_default().trim());
        // The port follows the last colon, outside an IPv6 literal's brackets.
        let host_len = match authority.strip_prefix('[') {
            Some(rest) => rest.find(']').map_or(authority.len(), |end| end + 2),
            None => authority.find(':').unwrap_or(authority.len()),
        };
        let client =
            header(headers, &X_REAL_IP).or_else(|| header(headers, &X_FORWARDED_FOR).and_then(|f| f.split(',').next())).map(str::trim);
        Some(Self { method: upper(method), scheme: lower(scheme), authority, host_len, uri, path, query, client, nginx })
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
            path: self.path,
            query: self.query,
            headers: HeaderList::Omitted,
            client: self.client,
        }
    }

    /// Where the browser was going: the return URL after signing in.
    fn url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.authority, self.uri)
    }
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

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
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
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

fn login_page(rd: Option<&str>, error: Option<&str>) -> Html<String> {
    let rd = rd.map(escape).unwrap_or_default();
    let error = error.map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e))).unwrap_or_default();
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>Sign in · Warden</title><style>body{{font-family:system-ui,sans-serif;max-width:22rem;margin:4rem auto;padding:0 1rem}}\
         label,input,button{{display:block;width:100%;margin:.4rem 0}}input{{padding:.4rem}}.error{{color:#b00020}}</style></head>\
         <body><h1>Sign in</h1>{error}<form method=\"post\" action=\"login\">\
         <label for=\"name\">Name</label><input id=\"name\" name=\"name\" autocomplete=\"username\" required autofocus>\
         <label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
         <input type=\"hidden\" name=\"rd\" value=\"{rd}\"><button type=\"submit\">Sign in</button></form></body></html>"
    ))
}

pub async fn login_form(Query(q): Query<LoginQuery>) -> Response {
    let mut response = login_page(q.rd.as_deref(), None).into_response();
    secure_page(response.headers_mut());
    response
}

fn secure_page(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(HeaderName::from_static("x-frame-options"), HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"),
    );
}

fn session_cookie(app: &App, value: &str, max_age: i64) -> Option<HeaderValue> {
    let config = &app.config.forward_auth;
    let secure = config.cookie_secure.unwrap_or_else(|| config.public_url.as_deref().is_some_and(|u| u.starts_with("https://")));
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

pub async fn login_submit(State(app): State<App>, client: ClientAddr, Form(form): Form<LoginForm>) -> Response {
    let rd = form.rd.as_deref().map(str::trim).filter(|r| !r.is_empty());
    match app.auth.login(&form.name, &form.password, client.0).await {
        Ok(login) => {
            let target = rd.filter(|r| redirect_allowed(&app, r)).map_or_else(|| "/login/done".to_owned(), str::to_owned);
            let mut response = StatusCode::SEE_OTHER.into_response();
            let headers = response.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&target) {
                headers.insert(header::LOCATION, v);
            }
            if let Some(c) = session_cookie(&app, login.token.expose(), app.ctx.times.session_ttl_secs) {
                headers.insert(header::SET_COOKIE, c);
            }
            response
        }
        Err(e) => {
            let message = if e.code() == "auth.rate_limited" {
                "Too many failed attempts; try again later."
            } else {
                "The name or password is wrong."
            };
            let status = if e.code() == "auth.rate_limited" { StatusCode::TOO_MANY_REQUESTS } else { StatusCode::UNAUTHORIZED };
            let mut response = (status, login_page(rd, Some(message))).into_response();
            secure_page(response.headers_mut());
            response
        }
    }
}

pub async fn login_done() -> Html<&'static str> {
    Html(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Signed in · Warden</title></head><body><p>You are signed in.</p></body></html>",
    )
}

/// Ends the browser session (if any) and clears the cookie.
pub async fn logout(State(app): State<App>, headers: HeaderMap) -> Response {
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
    Html("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Signed out · Warden</title></head><body><p>You are signed out.</p></body></html>").into_response()
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
    fn original_request_from_either_header_style() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-method", HeaderValue::from_static("post"));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        h.insert("x-forwarded-host", HeaderValue::from_static("App.example.org:443"));
        h.insert("x-forwarded-uri", HeaderValue::from_static("/api/x?y=1"));
        h.insert("authorization", HeaderValue::from_static("Bearer secret"));
        h.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9, 10.0.0.1"));
        let original = Forwarded::read(&Method::GET, &h).unwrap();
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
        let original = Forwarded::read(&Method::GET, &h).unwrap();
        let r = original.view();
        assert_eq!(
            (r.method, r.scheme, r.host, r.path, r.query, original.nginx),
            ("DELETE", "http", "app.example.org", "/admin/", "a=B", true)
        );
        assert_eq!(original.url(), "http://app.example.org/admin/?a=B");
        let mut h = HeaderMap::new();
        h.insert("x-original-url", HeaderValue::from_static("https://app.example.org"));
        assert_eq!(Forwarded::read(&Method::PATCH, &h).unwrap().view().path, "/", "no path is the root");
        let mut h = HeaderMap::new();
        h.insert("x-original-url", HeaderValue::from_static("http://[2001:DB8::1]:8080/x"));
        let original = Forwarded::read(&Method::GET, &h).unwrap();
        assert_eq!((original.view().host, original.url().as_str()), ("[2001:db8::1]", "http://[2001:db8::1]:8080/x"));
        assert!(Forwarded::read(&Method::GET, &HeaderMap::new()).is_none());
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
