//! `/auth/forward` for Traefik `ForwardAuth`, Caddy `forward_auth` and nginx `auth_request`.
//!
//! The original request is read from `X-Forwarded-Method/-Proto/-Host/-Uri` (Traefik, Caddy)
//! or `X-Original-URL`/`X-Original-Method` (nginx), and only from a trusted proxy. Its path
//! and host are judged in their canonical form (`warden_policy::canonical`), so that a rule
//! covers the path the application will serve however the client spelled it; a path or host
//! without one meaning is refused. The client's address is the rightmost `X-Forwarded-For`
//! entry that is not a trusted proxy, as for the API. Browsers
//! without a valid session are sent to sign in: a 302 for Traefik and Caddy; for nginx, whose
//! `auth_request` accepts only 2xx/401/403, a 401 with the sign-in URL in `X-Warden-Login`
//! for its `error_page` to redirect to. The return URL must be on an allowed domain
//! ([`ReturnTo`]), so the sign-in page ([`super::sign_in`]) is never an open redirect.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use warden_policy::{HeaderList, RequestView};

use super::App;
use super::error::ApiError;
use super::extract::forwarded_client;
use super::session::{ReturnTo, SessionCookie};
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
    let presented = presented(headers, SessionCookie::new(config));
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
            let login = ReturnTo::parse(config, &original.url()).and_then(|r| r.sign_in_url(config));
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
fn presented<'a>(headers: &'a HeaderMap, session: SessionCookie<'_>) -> Presented<'a> {
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
    session.read(headers).map_or(Presented::None, Presented::Cookie)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn authorization_comes_before_the_session_cookie() {
        let config = crate::config::ForwardAuthConfig::default();
        let session = SessionCookie::new(&config);
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; warden_session=wds_cookie"));
        assert!(matches!(presented(&h, session), Presented::Cookie("wds_cookie")));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer wds_bearer"));
        assert!(matches!(presented(&h, session), Presented::Bearer("wds_bearer")));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Negotiate abc"));
        assert!(matches!(presented(&h, session), Presented::None), "an Authorization header not understood is no credential");
    }
}
