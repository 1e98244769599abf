//! How a browser holds a Warden session, in one place, for every page that signs a browser in
//! or out: forward-auth's sign-in pages now, the web UI and the OIDC provider next.
//!
//! - **The cookie** ([`SessionCookie`]): its name (`forward_auth.cookie_name`), `Path=/`,
//!   `HttpOnly`, `SameSite=Lax` (sent on a top-level navigation from the application back to
//!   Warden, never on another site's form post or fetch), `Secure` when `public_url` is https
//!   or `cookie_secure` says so, `Domain` from `cookie_domain`, and `Max-Age`; read from a
//!   request, issued, cleared.
//! - **The return URL** ([`ReturnTo`]): where a browser goes after signing in (the `rd`
//!   parameter). Only a path on Warden itself, or an absolute http(s) URL on Warden's own host
//!   or an allowed domain, so no page is ever an open redirect; anything else goes to the
//!   person's own page (`/`).
//! - **The rules every page follows**: the CSRF check of its posts ([`csrf()`], with the
//!   origin and `Secure` flag of this site), the security headers and CSP ([`secure_page`],
//!   [`page_csp`]), and HTML escaping ([`escape`]) where a page is not a template.

pub mod csrf;

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use self::csrf::Csrf;
use super::App;
use super::extract::cookie;
use crate::config::ForwardAuthConfig;

/// Where a browser goes after signing in when it brought no return URL that may be followed:
/// the person's own page.
pub const SIGNED_IN_PATH: &str = "/";

// --- the cookie ---------------------------------------------------------------------------------

/// The session cookie as `[forward_auth]` configures it.
#[derive(Debug, Clone, Copy)]
pub struct SessionCookie<'a> {
    name: &'a str,
    domain: Option<&'a str>,
    secure: bool,
}

impl<'a> SessionCookie<'a> {
    pub fn new(config: &'a ForwardAuthConfig) -> Self {
        Self { name: &config.cookie_name, domain: config.cookie_domain.as_deref(), secure: cookies_secure(config) }
    }

    /// The session token the request's cookie carries, if any.
    pub fn read<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        cookie(headers, self.name)
    }

    /// The `Set-Cookie` value that gives the browser `token` for `max_age` seconds; `None` when
    /// the configured name or domain cannot be a header.
    pub fn issue(&self, token: &str, max_age: i64) -> Option<HeaderValue> {
        let mut cookie = format!("{}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}", self.name);
        if let Some(domain) = self.domain {
            cookie.push_str("; Domain=");
            cookie.push_str(domain);
        }
        if self.secure {
            cookie.push_str("; Secure");
        }
        HeaderValue::from_str(&cookie).ok()
    }

    /// The `Set-Cookie` value that makes the browser drop the cookie (same name, path and
    /// domain, nothing in it, `Max-Age=0`).
    pub fn clear(&self) -> Option<HeaderValue> {
        self.issue("", 0)
    }
}

/// Whether the cookies of the browser session (the session's and the CSRF token's) are
/// `Secure`: as `cookie_secure` says, else when `public_url` is https.
fn cookies_secure(config: &ForwardAuthConfig) -> bool {
    config.cookie_secure.unwrap_or_else(|| config.public_url.as_deref().is_some_and(|u| u.starts_with("https://")))
}

// --- the return URL -----------------------------------------------------------------------------

/// A URL a browser may be sent to after signing in: a path on Warden itself (`/account`, never
/// `//host` or `/\\host`), or an absolute http(s) URL on Warden's own host (from `public_url`) or
/// on an `allowed_redirect_domains` entry or a subdomain of one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnTo(String);

impl ReturnTo {
    /// `raw` when it may be returned to; `None` for anything else: a relative or
    /// scheme-relative URL, another scheme, user info, a backslash, a space or control
    /// character, an IPv6-literal host, or a host off the allowed domains.
    pub fn parse(config: &ForwardAuthConfig, raw: &str) -> Option<Self> {
        if raw.starts_with('/') {
            return local_path(raw).then(|| Self(raw.to_owned()));
        }
        let host = url_host(raw)?;
        let own = config.public_url.as_deref().and_then(url_host);
        let allowed = own.as_deref() == Some(host.as_str())
            || config.allowed_redirect_domains.iter().any(|d| {
                let d = d.trim().trim_start_matches('.').to_ascii_lowercase();
                host == d || host.ends_with(&format!(".{d}"))
            });
        allowed.then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Warden's sign-in page that comes back here (`{public_url}/login?rd=…`), when Warden
    /// knows its public URL.
    pub fn sign_in_url(&self, config: &ForwardAuthConfig) -> Option<String> {
        let base = config.public_url.as_deref()?.trim_end_matches('/');
        Some(format!("{base}/login?rd={}", percent_encode(&self.0)))
    }
}

/// Whether `raw` is a path on this site: one leading `/` (a second would make it a
/// scheme-relative URL to another host; browsers read `\\` as `/`), nothing that is not a
/// printable, non-space character.
fn local_path(raw: &str) -> bool {
    let rest = &raw[1..];
    !rest.starts_with(['/', '\\']) && raw.chars().all(|c| c.is_ascii_graphic() && c != '\\')
}

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

/// `value` percent-encoded for a query parameter (everything but unreserved characters).
pub fn escape_query(value: &str) -> String {
    percent_encode(value)
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

/// Where a browser goes once signed in: `rd` when it may be followed, else [`SIGNED_IN_PATH`].
pub fn return_target(config: &ForwardAuthConfig, rd: Option<&str>) -> String {
    rd.and_then(|r| ReturnTo::parse(config, r)).map_or_else(|| SIGNED_IN_PATH.to_owned(), |r| r.0)
}

/// Signed in: `303` to the return URL `rd` when it may be followed (else [`SIGNED_IN_PATH`]),
/// with the session cookie for `session_token`, good for the session's lifetime.
pub fn signed_in(app: &App, rd: Option<&str>, session_token: &str) -> Response {
    let config = &app.config.forward_auth;
    let target = return_target(config, rd);
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&target) {
        headers.insert(header::LOCATION, v);
    }
    if let Some(c) = SessionCookie::new(config).issue(session_token, app.ctx.times.session_ttl_secs) {
        headers.insert(header::SET_COOKIE, c);
    }
    response
}

// --- what every form page follows ---------------------------------------------------------------

/// The CSRF rules of this site: its origin (from `public_url`), and `Secure` cookies as the
/// session cookie's.
pub fn csrf(app: &App) -> Csrf {
    csrf_of(&app.config.forward_auth)
}

fn csrf_of(config: &ForwardAuthConfig) -> Csrf {
    Csrf::new(config.public_url.as_deref(), cookies_secure(config))
}

/// Text made safe for HTML, in element content and in quoted attribute values.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// The Content-Security-Policy of every page: scripts, styles and fonts from Warden's own
/// `/assets` only (no inline script or style at all), images from Warden or `data:` (the TOTP
/// QR code), script calls to Warden only, no frames, no plugins, no `<base>`. Forms post to
/// Warden, or, for the sign-in page's redirect to the application, to an allowed return domain
/// (browsers apply `form-action` to the redirect that follows a post).
pub fn page_csp(config: &ForwardAuthConfig) -> HeaderValue {
    let mut form_action = String::from("'self'");
    for domain in &config.allowed_redirect_domains {
        let domain = domain.trim().trim_start_matches('.').to_ascii_lowercase();
        if !domain.is_empty() && domain.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-') {
            form_action.push(' ');
            form_action.push_str(&domain);
            form_action.push_str(" *.");
            form_action.push_str(&domain);
        }
    }
    let policy = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
         form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    );
    HeaderValue::from_str(&policy).unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"))
}

/// What every page sends: no caching, no framing, the CSP `csp` ([`page_csp`]), no content
/// sniffing, no referrer to other sites.
pub fn secure_page(headers: &mut HeaderMap, csp: &HeaderValue) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(HeaderName::from_static("x-frame-options"), HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // `same-origin`, not `no-referrer`: with `no-referrer` browsers send `Origin: null` on the
    // page's own form posts, which the CSRF check would refuse.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin"));
    headers.insert(header::CONTENT_SECURITY_POLICY, csp.clone());
}

#[cfg(test)]
mod tests;
