//! Cross-site request forgery: what keeps another site's page from posting Warden's forms in
//! a visitor's browser (signing the visitor in to the attacker's account, or out).
//!
//! Two independent checks, both on every form post:
//! - **Where the post comes from.** A browser says so: `Sec-Fetch-Site` must be `same-origin`
//!   when sent (every current browser sends it); otherwise `Origin`, when sent, must be
//!   Warden's own origin (`forward_auth.public_url`, or the `Host` the request was sent to).
//!   A request with neither (a command-line client, an old browser) passes this check.
//! - **A token** (double submit): the page with the form sets a random value in a cookie of
//!   its own (`HttpOnly`, `SameSite=Strict`, and `__Host-` with `Secure` over HTTPS, so that
//!   a sibling subdomain cannot plant one) and puts the same value in the form; the post must
//!   carry both, equal (compared in constant time). Another site can neither read the cookie
//!   nor set it, so it cannot fill in the form.
//!
//! Every form page takes its [`Csrf`] from [`super::csrf()`] (this site's origin and cookie
//! flags); the web UI is meant to use the same for its forms.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use subtle::ConstantTimeEq;

use crate::http::error::ApiError;
use crate::http::extract::cookie;

const COOKIE: &str = "warden_csrf";
/// `__Host-`: the browser accepts the cookie only `Secure`, for `Path=/` and without `Domain`.
const SECURE_COOKIE: &str = "__Host-warden_csrf";
/// 32 random bytes, in hex.
const TOKEN_LEN: usize = 64;

/// Why a form post was refused (`403`, with a stable code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CsrfError {
    #[error("the form was posted from another site")]
    CrossSite,
    #[error("the form's token is missing or does not match its cookie; load the page again")]
    TokenInvalid,
}

impl CsrfError {
    pub fn code(self) -> &'static str {
        match self {
            Self::CrossSite => "request.cross_site",
            Self::TokenInvalid => "csrf.token_invalid",
        }
    }
}

impl From<CsrfError> for ApiError {
    fn from(e: CsrfError) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, e.code(), e.to_string())
    }
}

/// The token of a page with a form, and the cookie to set when the browser has none yet.
pub struct Issued {
    pub token: String,
    pub set_cookie: Option<HeaderValue>,
}

/// The CSRF rules of one site: its origin and whether its cookies are `Secure`.
#[derive(Debug, Clone)]
pub struct Csrf {
    /// `scheme://host[:port]`, lower case, when Warden knows its public URL.
    origin: Option<String>,
    secure: bool,
}

impl Csrf {
    /// `public_url`: where browsers reach Warden (its origin is the one allowed); `secure`:
    /// whether cookies are `Secure` (then the cookie is `__Host-` prefixed).
    pub fn new(public_url: Option<&str>, secure: bool) -> Self {
        Self { origin: public_url.and_then(origin_of), secure }
    }

    fn cookie_name(&self) -> &'static str {
        if self.secure { SECURE_COOKIE } else { COOKIE }
    }

    /// The token for a form: the one the browser's cookie holds, else a new one and its cookie.
    pub fn issue(&self, headers: &HeaderMap) -> Issued {
        if let Some(token) = cookie(headers, self.cookie_name()).filter(|t| well_formed(t)) {
            return Issued { token: token.to_owned(), set_cookie: None };
        }
        let token = new_token();
        let secure = if self.secure { "; Secure" } else { "" };
        let set_cookie = HeaderValue::from_str(&format!("{}={token}; Path=/; HttpOnly; SameSite=Strict{secure}", self.cookie_name())).ok();
        Issued { token, set_cookie }
    }

    /// Checks a form post: from this site, with the token of its cookie.
    pub fn verify(&self, headers: &HeaderMap, form_token: Option<&str>) -> Result<(), CsrfError> {
        self.same_origin(headers)?;
        let cookie = cookie(headers, self.cookie_name()).filter(|t| well_formed(t)).ok_or(CsrfError::TokenInvalid)?;
        let token = form_token.map(str::trim).ok_or(CsrfError::TokenInvalid)?;
        if bool::from(cookie.as_bytes().ct_eq(token.as_bytes())) { Ok(()) } else { Err(CsrfError::TokenInvalid) }
    }

    fn same_origin(&self, headers: &HeaderMap) -> Result<(), CsrfError> {
        let text = |name| headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok()).map(str::trim);
        if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
            return if site.eq_ignore_ascii_case("same-origin") { Ok(()) } else { Err(CsrfError::CrossSite) };
        }
        let Some(origin) = text(header::ORIGIN) else { return Ok(()) };
        let origin = origin_of(origin).ok_or(CsrfError::CrossSite)?;
        let own = self.origin.as_deref() == Some(origin.as_str());
        let host = text(header::HOST).is_some_and(|host| origin.split_once("://").is_some_and(|(_, o)| o.eq_ignore_ascii_case(host)));
        if own || host { Ok(()) } else { Err(CsrfError::CrossSite) }
    }
}

/// `scheme://host[:port]` of an http(s) URL, lower case, without a default port.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => ":443",
        "http" => ":80",
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next()?.to_ascii_lowercase();
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let authority = authority.strip_suffix(default_port).unwrap_or(&authority);
    Some(format!("{scheme}://{authority}"))
}

fn well_formed(token: &str) -> bool {
    token.len() == TOKEN_LEN && token.bytes().all(|b| b.is_ascii_hexdigit())
}

fn new_token() -> String {
    let mut bytes = [0u8; TOKEN_LEN / 2];
    if getrandom::fill(&mut bytes).is_err() {
        // No randomness: hand out nothing that could match; every post is then refused.
        return String::new();
    }
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_str(value).unwrap());
        }
        h
    }

    #[test]
    fn origins_are_normalised() {
        assert_eq!(origin_of("https://Auth.Example.org:443/login").as_deref(), Some("https://auth.example.org"));
        assert_eq!(origin_of("http://127.0.0.1:8080").as_deref(), Some("http://127.0.0.1:8080"));
        assert_eq!(origin_of("null"), None);
        assert_eq!(origin_of("ftp://x.org"), None);
    }

    #[test]
    fn a_post_needs_our_origin_and_the_cookie_token() {
        let csrf = Csrf::new(Some("https://auth.example.org"), true);
        let issued = csrf.issue(&HeaderMap::new());
        let set = issued.set_cookie.unwrap();
        let set = set.to_str().unwrap();
        assert!(set.starts_with("__Host-warden_csrf=") && set.contains("Secure") && set.contains("SameSite=Strict"), "{set}");
        let cookie = format!("__Host-warden_csrf={}", issued.token);
        let token = Some(issued.token.as_str());
        assert_eq!(csrf.verify(&headers(&[("cookie", &cookie)]), token), Ok(()), "a client that says nothing");
        assert_eq!(csrf.verify(&headers(&[("cookie", &cookie), ("origin", "https://auth.example.org")]), token), Ok(()));
        assert_eq!(csrf.verify(&headers(&[("cookie", &cookie), ("sec-fetch-site", "same-origin")]), token), Ok(()));
        for (name, value) in
            [("origin", "https://evil.example"), ("origin", "null"), ("sec-fetch-site", "same-site"), ("sec-fetch-site", "cross-site")]
        {
            assert_eq!(csrf.verify(&headers(&[("cookie", &cookie), (name, value)]), token), Err(CsrfError::CrossSite), "{value}");
        }
        assert_eq!(csrf.verify(&headers(&[("cookie", &cookie)]), None), Err(CsrfError::TokenInvalid));
        assert_eq!(csrf.verify(&headers(&[]), token), Err(CsrfError::TokenInvalid));
        let other = csrf.issue(&HeaderMap::new()).token;
        assert_eq!(csrf.verify(&headers(&[("cookie", &cookie)]), Some(&other)), Err(CsrfError::TokenInvalid));
        let plain = format!("warden_csrf={}", issued.token);
        assert_eq!(
            csrf.verify(&headers(&[("cookie", &plain)]), token),
            Err(CsrfError::TokenInvalid),
            "HTTPS takes the __Host- cookie only"
        );
        // The cookie the browser holds is reused, not replaced.
        let again = csrf.issue(&headers(&[("cookie", &cookie)]));
        assert_eq!((again.token.as_str(), again.set_cookie.is_none()), (issued.token.as_str(), true));
    }

    #[test]
    fn without_a_public_url_the_host_is_the_origin() {
        let csrf = Csrf::new(None, false);
        let token = csrf.issue(&HeaderMap::new()).token;
        let cookie = format!("warden_csrf={token}");
        let h = headers(&[("cookie", &cookie), ("host", "127.0.0.1:8080"), ("origin", "http://127.0.0.1:8080")]);
        assert_eq!(csrf.verify(&h, Some(&token)), Ok(()));
        let h = headers(&[("cookie", &cookie), ("host", "127.0.0.1:8080"), ("origin", "http://127.0.0.1:9090")]);
        assert_eq!(csrf.verify(&h, Some(&token)), Err(CsrfError::CrossSite));
    }
}
