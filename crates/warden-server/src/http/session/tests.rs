use super::*;
use crate::config::ForwardAuthConfig;

fn forward_auth(public_url: Option<&str>, allowed: &[&str]) -> ForwardAuthConfig {
    ForwardAuthConfig {
        public_url: public_url.map(str::to_owned),
        allowed_redirect_domains: allowed.iter().map(|d| (*d).to_owned()).collect(),
        ..ForwardAuthConfig::default()
    }
}

fn return_to(config: &ForwardAuthConfig, raw: &str) -> Option<String> {
    ReturnTo::parse(config, raw).map(|r| r.as_str().to_owned())
}

// --- the return URL -----------------------------------------------------------------------------

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
fn a_return_url_is_never_an_open_redirect() {
    let config = forward_auth(Some("https://auth.example.org"), &["example.org"]);
    for bad in [
        // A host off the allowed domains, or one that only ends like one.
        "https://evil.example/",
        "https://evilexample.org/",
        "https://example.org.evil.example/",
        // Scheme-relative, and the backslash tricks browsers read as `//`.
        "//evil.example",
        "//evil.example/x",
        "/\\evil.example",
        "\\\\evil.example",
        "https:\\\\evil.example",
        "https://app.example.org\\@evil.example/",
        // Not http(s).
        "javascript:alert(document.cookie)",
        "JavaScript://app.example.org/%0aalert(1)",
        "data:text/html,<script>alert(1)</script>",
        // User info, whose host is not the one it looks like.
        "https://app.example.org@evil.example/",
        // Relative paths that are not a path on Warden, and paths with space or control
        // characters.
        "admin",
        "",
        "/a b",
        "/x\r\nSet-Cookie: x=1",
        "/\t/evil.example",
        // Space and control characters (a header split, a browser's lenient parse).
        " https://app.example.org/",
        "https://app.example.org/\r\nSet-Cookie: x=1",
        "https://app.example.org\t.evil.example/",
    ] {
        assert_eq!(return_to(&config, bad), None, "{bad:?}");
    }
    for good in [
        "https://auth.example.org/",
        "https://example.org",
        "https://app.example.org/x?y=1#z",
        "http://App.Example.org:8443/",
        "https://a.b.example.org/",
        // A path on Warden itself.
        "/",
        "/admin/users?prefix=a",
        "/account/sessions",
    ] {
        assert_eq!(return_to(&config, good).as_deref(), Some(good), "{good}");
    }
}

#[test]
fn the_own_host_is_allowed_without_any_allowed_domain() {
    let config = forward_auth(Some("https://Auth.Example.org:8443/"), &[]);
    assert!(return_to(&config, "https://auth.example.org/x").is_some());
    assert_eq!(return_to(&config, "https://app.example.org/"), None, "a sibling is not the own host");
    let config = forward_auth(None, &[" .Example.org "]);
    assert!(return_to(&config, "https://app.example.org/").is_some(), "an entry is trimmed, its leading dot ignored");
}

#[test]
fn the_sign_in_url_carries_the_return_url_encoded() {
    let config = forward_auth(Some("https://auth.example.org/"), &["example.org"]);
    let back = ReturnTo::parse(&config, "https://app.example.org/x?y=1&z").unwrap();
    assert_eq!(
        back.sign_in_url(&config).as_deref(),
        Some("https://auth.example.org/login?rd=https%3A%2F%2Fapp.example.org%2Fx%3Fy%3D1%26z")
    );
    let config = forward_auth(None, &["example.org"]);
    let back = ReturnTo::parse(&config, "https://app.example.org/").unwrap();
    assert_eq!(back.sign_in_url(&config), None, "no public URL, no sign-in page to send a browser to");
    assert_eq!(percent_encode("a b/é"), "a%20b%2F%C3%A9");
}

// --- the cookie ---------------------------------------------------------------------------------

fn set_cookie(value: Option<HeaderValue>) -> String {
    value.unwrap().to_str().unwrap().to_owned()
}

#[test]
fn the_session_cookie_is_secure_over_https() {
    let https = forward_auth(Some("https://auth.example.org"), &[]);
    assert_eq!(
        set_cookie(SessionCookie::new(&https).issue("wds_abc", 3600)),
        "warden_session=wds_abc; Path=/; HttpOnly; SameSite=Lax; Max-Age=3600; Secure"
    );
    let http = forward_auth(Some("http://127.0.0.1:8080"), &[]);
    assert_eq!(
        set_cookie(SessionCookie::new(&http).issue("wds_abc", 3600)),
        "warden_session=wds_abc; Path=/; HttpOnly; SameSite=Lax; Max-Age=3600"
    );
    let unknown = forward_auth(None, &[]);
    assert!(!set_cookie(SessionCookie::new(&unknown).issue("wds_abc", 60)).contains("Secure"));
}

#[test]
fn cookie_secure_overrides_the_public_urls_scheme() {
    let mut forced = forward_auth(Some("http://auth.internal"), &[]);
    forced.cookie_secure = Some(true);
    assert!(set_cookie(SessionCookie::new(&forced).issue("t", 1)).ends_with("; Secure"));
    let mut off = forward_auth(Some("https://auth.example.org"), &[]);
    off.cookie_secure = Some(false);
    assert!(!set_cookie(SessionCookie::new(&off).issue("t", 1)).contains("Secure"));
}

#[test]
fn the_session_cookie_takes_its_name_and_domain_from_config() {
    let mut shared = forward_auth(Some("https://auth.example.org"), &[]);
    shared.cookie_name = "sso".into();
    shared.cookie_domain = Some("example.org".into());
    let session = SessionCookie::new(&shared);
    assert_eq!(
        set_cookie(session.issue("wds_abc", 60)),
        "sso=wds_abc; Path=/; HttpOnly; SameSite=Lax; Max-Age=60; Domain=example.org; Secure"
    );
    assert_eq!(
        set_cookie(session.clear()),
        "sso=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0; Domain=example.org; Secure",
        "cleared with the same path, domain and flags, so the browser drops the one it holds"
    );
    let mut broken = shared.clone();
    broken.cookie_domain = Some("example.org\n".into());
    assert_eq!(SessionCookie::new(&broken).issue("t", 1), None, "a value that cannot be a header is not sent");
}

#[test]
fn the_session_is_read_from_its_own_cookie_only() {
    let config = forward_auth(None, &[]);
    let session = SessionCookie::new(&config);
    let mut h = HeaderMap::new();
    h.insert(header::COOKIE, HeaderValue::from_static("a=1; xwarden_session=wds_x; warden_session=wds_abc; b=2"));
    assert_eq!(session.read(&h), Some("wds_abc"));
    let mut h = HeaderMap::new();
    h.insert(header::COOKIE, HeaderValue::from_static("warden_session_old=wds_x; __Host-warden_csrf=t"));
    assert_eq!(session.read(&h), None);
    assert_eq!(session.read(&HeaderMap::new()), None);
}

#[test]
fn the_csrf_cookie_is_secure_like_the_session_cookie() {
    let https = csrf_of(&forward_auth(Some("https://auth.example.org"), &[]));
    assert!(set_cookie(https.issue(&HeaderMap::new()).set_cookie).starts_with("__Host-warden_csrf="));
    let mut forced = forward_auth(Some("http://auth.internal"), &[]);
    forced.cookie_secure = Some(true);
    assert!(set_cookie(csrf_of(&forced).issue(&HeaderMap::new()).set_cookie).starts_with("__Host-warden_csrf="));
    let http = csrf_of(&forward_auth(Some("http://127.0.0.1:8080"), &[]));
    assert!(set_cookie(http.issue(&HeaderMap::new()).set_cookie).starts_with("warden_csrf="));
}

// --- what every form page follows ---------------------------------------------------------------

#[test]
fn the_pages_admit_no_inline_script_or_style_and_post_only_to_warden_or_a_return_domain() {
    let mut headers = HeaderMap::new();
    secure_page(&mut headers, &page_csp(&forward_auth(Some("https://auth.example.org"), &["example.org", "bad domain"])));
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.starts_with("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self';") && csp.contains("style-src 'self';") && !csp.contains("unsafe"), "{csp}");
    assert!(csp.contains("form-action 'self' example.org *.example.org;") && !csp.contains("bad"), "{csp}");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(headers["x-frame-options"], "DENY");
}

#[test]
fn escaping() {
    assert_eq!(escape("\"><script>"), "&quot;&gt;&lt;script&gt;");
    assert_eq!(escape("a & 'b'"), "a &amp; &#39;b&#39;");
}
