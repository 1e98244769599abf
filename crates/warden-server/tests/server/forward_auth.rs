//! `/auth/forward` driven directly, the way Traefik's `ForwardAuth` middleware calls it: a GET
//! with the original request in `X-Forwarded-Method/-Proto/-Host/-Uri`. Traefik is not in
//! Debian, so this is where its side of the contract is tested; `proxies.rs` runs the same
//! contract through real nginx and Caddy. The fixture here (configuration, accounts, policy)
//! is shared with `proxies.rs`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, COOKIE, HeaderMap, LOCATION, SET_COOKIE, WWW_AUTHENTICATE};
use warden_core::api::{CreateApiToken, CreateBinding, CreateGroup, CreateRole, CreateServiceAccount, CreateUser};
use warden_server::config::Config;

use crate::api::{TestServer, user};

/// The protected application's host name; the only allowed redirect domain.
pub const APP: &str = "app.localtest";
pub const PASSWORD: &str = "correct horse battery";
pub const HTML: &str = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8";

/// The `[forward_auth]` section every forward-auth test runs with (and the one
/// docs/integrations shows). `{{PUBLIC_URL}}` and `{{POLICY_DIR}}` are filled in.
pub const FORWARD_AUTH_TOML: &str = r#"
[forward_auth]
public_url = "{{PUBLIC_URL}}"
allowed_redirect_domains = ["app.localtest"]
policy_dir = "{{POLICY_DIR}}"
policy_reload_interval = "1s"

[[forward_auth.rule]]
name = "public"
path = "/public/**"
action = "allow_anonymous"

[[forward_auth.rule]]
name = "strong"
path = "/strong/**"
action = "auth_strength"
strength = "mfa"

[[forward_auth.rule]]
name = "basic"
path = "/basic/**"
action = "authenticated"
allow_basic = true

[[forward_auth.rule]]
name = "admin"
path = "/admin/**"
action = "group"
group = "ops"

[[forward_auth.rule]]
name = "deploy"
path = "/deploy/**"
action = "permission"
permission = "deploy:run"
namespace = "prod"

[[forward_auth.rule]]
name = "policy"
path = "/policy/**"
action = "policy"

[[forward_auth.rule]]
name = "signed in"
action = "authenticated"
"#;

/// A running wardend with the forward-auth configuration above and these accounts:
/// - `alice` (session `alice`): in group `ops`, role `deployer` (`deploy:run`) in namespace
///   `prod`, role `reader` (`app:read`) through `ops`, with e-mail and display name;
/// - `bob` (session `bob`): no groups, no roles, no e-mail;
/// - service account `ci-bot` (API token `bot`): role `deployer` in `prod`.
pub struct Fixture {
    pub server: TestServer,
    /// `{public_url}`: where browsers reach Warden (the server's own URL).
    pub public_url: String,
    pub policy_dir: PathBuf,
    pub alice: String,
    pub alice_id: String,
    pub bob: String,
    pub bot: String,
    _policy_dir: tempfile::TempDir,
}

/// An unused loopback port (bound and released; the server binds it again right away).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn repo_root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from).join("../..")
}

/// The forward-auth section, read through `Config::load` as wardend reads its file.
fn forward_auth_config(public_url: &str, policy_dir: &Path) -> warden_server::config::ForwardAuthConfig {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("warden.toml");
    let text = FORWARD_AUTH_TOML.replace("{{PUBLIC_URL}}", public_url).replace("{{POLICY_DIR}}", &policy_dir.display().to_string());
    std::fs::write(&file, text).unwrap();
    Config::load(Some(&file)).unwrap().forward_auth
}

pub async fn fixture(tweak: impl FnOnce(&mut Config)) -> Fixture {
    let policy_dir = tempfile::tempdir().unwrap();
    std::fs::copy(repo_root().join("examples/policies/forward_auth.rego"), policy_dir.path().join("forward_auth.rego")).unwrap();
    let port = free_port();
    let public_url = format!("http://127.0.0.1:{port}");
    let forward_auth = forward_auth_config(&public_url, policy_dir.path());
    let server = TestServer::start_with(|config| {
        config.server.listen = ([127, 0, 0, 1], port).into();
        config.forward_auth = forward_auth;
        tweak(config);
    })
    .await;
    assert_eq!(server.url, public_url);

    let idm = server.idm().await;
    idm.create_group(&CreateGroup { name: "ops".into(), description: None }).await.unwrap();
    let alice = CreateUser { display_name: Some("Alice Liddell".into()), emails: vec!["alice@example.org".into()], ..user("alice") };
    let alice_id = idm.create_user(&alice).await.unwrap().id.to_string();
    idm.create_user(&user("bob")).await.unwrap();
    idm.create_user(&user("carol")).await.unwrap();
    idm.add_members("ops", &["user:alice".into()]).await.unwrap();
    idm.create_service_account(&CreateServiceAccount { name: "ci-bot".into(), ..Default::default() }).await.unwrap();
    let admin = server.sysadmin().await;
    for (id, permission) in [("deployer", "deploy:run"), ("reader", "app:read")] {
        let role = CreateRole { id: Some(id.into()), name: id.into(), permissions: vec![permission.into()], ..Default::default() };
        admin.create_role(&role).await.unwrap();
    }
    for (role, subject, namespaces) in [
        ("deployer", "user:alice", vec!["prod".to_owned()]),
        ("deployer", "sa:ci-bot", vec!["prod".to_owned()]),
        ("reader", "group:ops", vec![]),
    ] {
        admin.create_binding(&CreateBinding { role: role.into(), subject: subject.into(), tenant: None, namespaces }).await.unwrap();
    }
    let bot = idm.create_api_token("ci-bot", &CreateApiToken::default()).await.unwrap().token.expose().to_owned();
    let alice = login(&server, "alice").await;
    let bob = login(&server, "bob").await;
    let policy_dir_path = policy_dir.path().to_owned();
    Fixture { server, public_url, policy_dir: policy_dir_path, alice, alice_id, bob, bot, _policy_dir: policy_dir }
}

/// A fresh session token (what `Authorization: Bearer` and the cookie carry).
pub async fn login(server: &TestServer, name: &str) -> String {
    server.anonymous().login(name, PASSWORD).await.unwrap().token.expose().to_owned()
}

/// An HTTP client that follows no redirects, ignores proxy settings and gives up in time.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).no_proxy().timeout(Duration::from_secs(15)).build().unwrap()
}

/// Percent-encodes everything but the unreserved characters, as Warden does for `rd`.
pub fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { char::from(b).to_string() } else { format!("%{b:02X}") })
        .collect()
}

pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap())
}

/// Signs in through the sign-in form, as a browser would (the page first, for its CSRF cookie
/// and token): returns the redirect target and the session cookie (`warden_session=…`).
/// Signs out through the sign-out page's form (its CSRF cookie and token) with the session
/// `cookie` (`warden_session=…`).
pub async fn form_logout(fx: &Fixture, cookie: &str) -> reqwest::Response {
    let (csrf, token) = csrf_form(fx, "/logout").await;
    http()
        .post(format!("{}/logout", fx.public_url))
        .header(COOKIE, format!("{cookie}; {csrf}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={token}"))
        .send()
        .await
        .unwrap()
}

pub async fn form_login(fx: &Fixture, name: &str, rd: &str) -> (String, String) {
    let (csrf, token) = csrf_form(fx, "/login").await;
    let body = format!("name={}&password={}&rd={}&csrf={}", encode(name), encode(PASSWORD), encode(rd), encode(&token));
    let response = http()
        .post(format!("{}/login", fx.public_url))
        .header("content-type", "application/x-www-form-urlencoded")
        .header(COOKIE, csrf)
        .header("origin", &fx.public_url)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = header(response.headers(), "location").unwrap().to_owned();
    let cookie = header(response.headers(), "set-cookie").unwrap().split(';').next().unwrap().to_owned();
    assert!(cookie.starts_with("warden_session=wds_"), "{cookie}");
    (location, cookie)
}

/// Loads a page with a form (`/login`, `/logout`) as a browser does: the CSRF cookie it sets
/// (`name=value`) and the token in its form.
pub async fn csrf_form(fx: &Fixture, path: &str) -> (String, String) {
    let page = http().get(format!("{}{path}", fx.public_url)).send().await.unwrap();
    let cookie = header(page.headers(), "set-cookie").unwrap().split(';').next().unwrap().to_owned();
    let text = page.text().await.unwrap();
    let token = text.split("name=\"csrf\" value=\"").nth(1).and_then(|rest| rest.split('"').next()).unwrap().to_owned();
    (cookie, token)
}

/// What a credential-less, a bearer or a cookie request looks like.
#[derive(Clone, Copy)]
pub enum As<'a> {
    Nobody,
    Bearer(&'a str),
    Cookie(&'a str),
    Basic(&'a str, &'a str),
}

impl As<'_> {
    pub fn apply(self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            As::Nobody => request,
            As::Bearer(token) => request.header(AUTHORIZATION, format!("Bearer {token}")),
            As::Cookie(cookie) => request.header(COOKIE, format!("theme=dark; {cookie}")),
            As::Basic(name, password) => request.basic_auth(name, Some(password)),
        }
    }
}

/// A request to `/auth/forward` about `method {scheme}://{host}{uri}`, with Traefik's headers.
fn forwarded(fx: &Fixture, method: &str, scheme: &str, host: &str, uri: &str) -> reqwest::RequestBuilder {
    http()
        .get(format!("{}/auth/forward", fx.public_url))
        .header("x-forwarded-method", method)
        .header("x-forwarded-proto", scheme)
        .header("x-forwarded-host", host)
        .header("x-forwarded-uri", uri)
}

/// Asks `/auth/forward` about `method http://{host}{uri}` as Traefik does.
async fn traefik(fx: &Fixture, method: &str, host: &str, uri: &str, who: As<'_>, browser: bool) -> reqwest::Response {
    let request = forwarded(fx, method, "http", host, uri).header("x-forwarded-for", "203.0.113.7");
    let request = if browser { request.header(ACCEPT, HTML) } else { request.header(ACCEPT, "application/json") };
    who.apply(request).send().await.unwrap()
}

const HOST: &str = "app.localtest:8443";

fn no_identity(headers: &HeaderMap) {
    let leaked: Vec<_> = headers.keys().filter(|k| k.as_str().starts_with("x-remote-")).collect();
    assert!(leaked.is_empty(), "no identity headers expected: {leaked:?}");
}

#[tokio::test]
async fn traefik_contract_over_forwarded_headers() {
    let fx = fixture(|_| {}).await;

    // Anonymous browser: 302 to the sign-in page, returning to the original URL (port kept).
    let r = traefik(&fx, "GET", HOST, "/admin/panel?tab=1&x=%2F", As::Nobody, true).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let expected = format!("{}/login?rd={}", fx.public_url, encode("http://app.localtest:8443/admin/panel?tab=1&x=%2F"));
    assert_eq!(header(r.headers(), "location"), Some(expected.as_str()));
    no_identity(r.headers());

    // API client: 401 with a challenge, no redirect.
    let r = traefik(&fx, "GET", HOST, "/admin/panel", As::Nobody, false).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header(r.headers(), "www-authenticate"), Some(r#"Bearer realm="warden""#));
    assert!(r.headers().get(LOCATION).is_none());
    // An invalid or unknown credential is the same as none.
    for who in [As::Bearer("wds_nonsense"), As::Cookie("warden_session=wds_nonsense"), As::Bearer(&format!("wdn_{}", "0".repeat(64)))] {
        let r = traefik(&fx, "GET", HOST, "/admin/panel", who, false).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let r = traefik(&fx, "GET", HOST, "/admin/panel", who, true).await;
        assert_eq!(r.status(), StatusCode::FOUND);
    }

    // Signed in but not allowed: 403, browser or not.
    for (uri, browser) in [("/admin/panel", true), ("/admin/panel", false), ("/deploy/web", false)] {
        let r = traefik(&fx, "GET", HOST, uri, As::Bearer(&fx.bob), browser).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{uri}");
        no_identity(r.headers());
    }
    // The service account holds deploy:run, but is not in ops.
    let r = traefik(&fx, "GET", HOST, "/admin/panel", As::Bearer(&fx.bot), false).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // Allowed: 200 with who it is, for the upstream.
    let r = traefik(&fx, "POST", HOST, "/deploy/web", As::Bearer(&fx.alice), false).await;
    assert_eq!(r.status(), StatusCode::OK);
    let h = r.headers();
    assert_eq!(header(h, "x-remote-user"), Some("alice"));
    assert_eq!(header(h, "x-remote-user-id"), Some(fx.alice_id.as_str()));
    assert_eq!(header(h, "x-remote-email"), Some("alice@example.org"));
    assert_eq!(header(h, "x-remote-name"), Some("Alice Liddell"));
    assert_eq!(header(h, "x-remote-groups"), Some("ops"));
    assert_eq!(header(h, "x-remote-roles"), Some("deployer,reader"));
    assert_eq!(header(h, "x-remote-permissions"), Some("app:read,deploy:run"));
    assert_eq!(header(h, "x-remote-auth-strength"), Some("password"));
    // Permissions are those of the rule's namespace: deploy:run is bound in prod only.
    let r = traefik(&fx, "GET", HOST, "/admin/panel", As::Bearer(&fx.alice), false).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(r.headers(), "x-remote-permissions"), Some("app:read"));
    // Bob has no e-mail or display name: those headers are left out, not sent empty.
    let r = traefik(&fx, "GET", HOST, "/anything", As::Bearer(&fx.bob), true).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(r.headers(), "x-remote-user"), Some("bob"));
    assert!(r.headers().get("x-remote-email").is_none() && r.headers().get("x-remote-name").is_none());
    // Nor are empty lists: bob is in no group and holds no role or permission.
    for name in ["x-remote-groups", "x-remote-roles", "x-remote-permissions"] {
        assert!(r.headers().get(name).is_none(), "{name} sent empty");
    }

    // The service account's API token.
    let r = traefik(&fx, "DELETE", HOST, "/deploy/web/42", As::Bearer(&fx.bot), false).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(r.headers(), "x-remote-user"), Some("ci-bot"));
    assert_eq!(header(r.headers(), "x-remote-auth-strength"), Some("token"));
    assert_eq!(header(r.headers(), "x-remote-permissions"), Some("deploy:run"));

    // The session cookie, as the sign-in form sets it.
    let original = "http://app.localtest:8443/deploy/web";
    let (location, cookie) = form_login(&fx, "alice", original).await;
    assert_eq!(location, original);
    let r = traefik(&fx, "GET", HOST, "/deploy/web", As::Cookie(&cookie), true).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(r.headers(), "x-remote-user"), Some("alice"));

    // Public routes let anyone through, with no identity.
    let r = traefik(&fx, "GET", HOST, "/public/logo.svg", As::Nobody, true).await;
    assert_eq!(r.status(), StatusCode::OK);
    no_identity(r.headers());
    let r = traefik(&fx, "GET", HOST, "/public/logo.svg", As::Bearer(&fx.bob), true).await;
    assert_eq!(header(r.headers(), "x-remote-user"), Some("bob"), "a signed-in caller is still named");

    // A host that is not an allowed redirect domain: 401, never a redirect there; one that is
    // not a host at all: 400.
    for (host, status) in [
        ("evil.example", StatusCode::UNAUTHORIZED),
        ("app.localtest.evil.example", StatusCode::UNAUTHORIZED),
        ("evil.example:8443", StatusCode::UNAUTHORIZED),
        ("app.localtest:8443@evil.example", StatusCode::BAD_REQUEST),
        ("app.localtest:80x", StatusCode::BAD_REQUEST),
    ] {
        let r = traefik(&fx, "GET", host, "/admin/panel", As::Nobody, true).await;
        assert_eq!(r.status(), status, "{host}");
        assert!(r.headers().get(LOCATION).is_none() && r.headers().get("x-warden-login").is_none(), "{host}");
    }
    // A subdomain of an allowed domain may be returned to.
    let r = traefik(&fx, "GET", "wiki.app.localtest", "/", As::Nobody, true).await;
    assert_eq!(r.status(), StatusCode::FOUND);

    // nginx style: the same answers, but a browser gets 401 + X-Warden-Login (auth_request
    // passes 401 and 403 only; nginx's error_page turns it into the redirect).
    let nginx = |url: &str, method: &str, who: As<'_>| {
        let request =
            http().get(format!("{}/auth/forward", fx.public_url)).header("x-original-url", url).header("x-original-method", method);
        who.apply(request.header(ACCEPT, HTML)).send()
    };
    let r = nginx("http://app.localtest:8080/admin/panel", "GET", As::Nobody).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let login = format!("{}/login?rd={}", fx.public_url, encode("http://app.localtest:8080/admin/panel"));
    assert_eq!(header(r.headers(), "x-warden-login"), Some(login.as_str()));
    assert!(r.headers().get(WWW_AUTHENTICATE).is_some() && r.headers().get(LOCATION).is_none());
    let r = nginx("http://app.localtest:8080/deploy/web", "PUT", As::Bearer(&fx.alice)).await.unwrap();
    assert_eq!((r.status(), header(r.headers(), "x-remote-user")), (StatusCode::OK, Some("alice")));
    let r = nginx("http://app.localtest:8080/deploy/web", "PUT", As::Bearer(&fx.bob)).await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // Without any description of the original request: 400.
    let r = http().get(format!("{}/auth/forward", fx.public_url)).bearer_auth(&fx.alice).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // A revoked session is refused on the very next request, bearer and cookie alike.
    fx.server.anonymous().with_bearer(&fx.alice).logout().await.unwrap();
    let r = traefik(&fx, "GET", HOST, "/deploy/web", As::Bearer(&fx.alice), false).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = form_logout(&fx, &cookie).await;
    assert_eq!(r.status(), StatusCode::OK);
    let cleared = header(r.headers(), "set-cookie").unwrap();
    assert!(cleared.starts_with("warden_session=;") && cleared.contains("Max-Age=0"), "{cleared}");
    let r = traefik(&fx, "GET", HOST, "/deploy/web", As::Cookie(&cookie), true).await;
    assert_eq!(r.status(), StatusCode::FOUND);
}

#[tokio::test]
async fn rego_policy_decides_where_a_rule_says_so() {
    let fx = fixture(|_| {}).await;
    let r = traefik(&fx, "GET", HOST, "/policy/open/readme", As::Nobody, true).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(r.headers(), "x-remote-policy"), Some("open"));
    assert!(r.headers().get("x-remote-user").is_none());

    let r = traefik(&fx, "GET", HOST, "/policy/ops/dashboard", As::Bearer(&fx.alice), false).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(r.headers(), "x-remote-policy"), Some("ops-read"));
    assert_eq!(header(r.headers(), "x-remote-user"), Some("alice"), "identity headers come with the policy's");

    // Denied by the policy: its status and body.
    for (method, who) in [("POST", As::Bearer(&fx.alice)), ("GET", As::Bearer(&fx.bob)), ("GET", As::Bearer(&fx.bot))] {
        let r = traefik(&fx, method, HOST, "/policy/ops/dashboard", who, false).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        no_identity(r.headers());
        assert_eq!(r.text().await.unwrap(), "Members of ops only, and only to read.");
    }
    let r = traefik(&fx, "GET", HOST, "/policy/legal/report", As::Bearer(&fx.alice), false).await;
    assert_eq!(r.status(), StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS);
    assert_eq!(r.text().await.unwrap(), "Unavailable for legal reasons.");
    // A policy's own status applies to anonymous callers too...
    let r = traefik(&fx, "GET", HOST, "/policy/legal/report", As::Nobody, true).await;
    assert_eq!(r.status(), StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS);
    // ...but a plain refusal of an anonymous caller is "sign in first".
    let r = traefik(&fx, "GET", HOST, "/policy/ops/dashboard", As::Nobody, true).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let r = traefik(&fx, "GET", HOST, "/policy/ops/dashboard", As::Nobody, false).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn untrusted_peers_are_refused() {
    let fx = fixture(|c| c.forward_auth.trusted_proxies = vec!["10.9.8.7".parse().unwrap()]).await;
    for who in [As::Bearer(&fx.alice), As::Nobody] {
        let r = traefik(&fx, "GET", HOST, "/public/x", who, false).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        no_identity(r.headers());
        assert!(r.text().await.unwrap().contains("trusted proxies"));
    }
}

#[tokio::test]
async fn cors_preflight_passes_only_when_enabled() {
    let preflight = |fx: &Fixture, origin: bool| {
        let request = forwarded(fx, "OPTIONS", "https", APP, "/admin/api").header("access-control-request-method", "DELETE");
        let request = if origin { request.header("origin", "https://ui.app.localtest") } else { request };
        request.send()
    };
    let off = fixture(|_| {}).await;
    assert_eq!(preflight(&off, true).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let on = fixture(|c| c.forward_auth.allow_cors_preflight = true).await;
    let r = preflight(&on, true).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    no_identity(r.headers());
    assert_eq!(preflight(&on, false).await.unwrap().status(), StatusCode::UNAUTHORIZED, "OPTIONS without Origin is no preflight");
    let r = traefik(&on, "DELETE", APP, "/admin/api", As::Nobody, false).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "only the preflight passes");
}

#[tokio::test]
async fn basic_credentials_only_where_a_rule_allows_them() {
    let fx = fixture(|_| {}).await;
    let r = traefik(&fx, "GET", HOST, "/basic/feed.xml", As::Basic("alice", PASSWORD), false).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(r.headers(), "x-remote-user"), Some("alice"));
    assert_eq!(header(r.headers(), "x-remote-auth-strength"), Some("password"));
    // Elsewhere Basic is no credential at all.
    for uri in ["/anything", "/admin/panel"] {
        let r = traefik(&fx, "GET", HOST, uri, As::Basic("alice", PASSWORD), false).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{uri}");
    }
    // Wrong passwords are refused and, as for sign-in, lock the name after five attempts.
    for _ in 0..5 {
        let r = traefik(&fx, "GET", HOST, "/basic/feed.xml", As::Basic("carol", "wrong horse"), false).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = traefik(&fx, "GET", HOST, "/basic/feed.xml", As::Basic("carol", PASSWORD), false).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    fx.server.clock.advance(time::Duration::minutes(16));
    let r = traefik(&fx, "GET", HOST, "/basic/feed.xml", As::Basic("carol", PASSWORD), false).await;
    assert_eq!(r.status(), StatusCode::OK);
}

/// Polls until `check` holds, for at most `limit`.
/// Two API tokens of one account, one limited to some of its roles: each is judged, and
/// described to the upstream, by its own roles, whichever the proxy asked about first.
#[tokio::test]
async fn a_token_limited_to_some_roles_is_judged_by_them() {
    let fx = fixture(|_| {}).await;
    let admin = fx.server.sysadmin().await;
    let binding = CreateBinding { role: "reader".into(), subject: "sa:ci-bot".into(), tenant: None, namespaces: vec![] };
    admin.create_binding(&binding).await.unwrap();
    let limited = CreateApiToken { roles: Some(vec!["reader".into()]), ..Default::default() };
    let limited = fx.server.idm().await.create_api_token("ci-bot", &limited).await.unwrap().token.expose().to_owned();
    for _ in 0..2 {
        let r = traefik(&fx, "GET", HOST, "/deploy/web", As::Bearer(&fx.bot), false).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(r.headers(), "x-remote-roles"), Some("deployer,reader"));
        assert_eq!(header(r.headers(), "x-remote-permissions"), Some("app:read,deploy:run"));
        let r = traefik(&fx, "GET", HOST, "/deploy/web", As::Bearer(&limited), false).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "the limited token does not carry deploy:run");
        let r = traefik(&fx, "GET", HOST, "/elsewhere", As::Bearer(&limited), false).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(r.headers(), "x-remote-user"), Some("ci-bot"));
        assert_eq!(header(r.headers(), "x-remote-roles"), Some("reader"));
        assert_eq!(header(r.headers(), "x-remote-permissions"), Some("app:read"));
        let r = traefik(&fx, "GET", HOST, "/elsewhere", As::Bearer(&fx.bot), false).await;
        assert_eq!(header(r.headers(), "x-remote-roles"), Some("deployer,reader"));
        assert_eq!(header(r.headers(), "x-remote-permissions"), Some("app:read"), "deploy:run is held in prod only");
    }
}

/// Policy decisions are remembered per identity and request, never past what they depend
/// on: a membership change reaches the next request (the subject is another identity), and
/// the same request asked twice gets the same answer, denials with their body included.
#[tokio::test]
async fn remembered_policy_decisions_follow_the_directory() {
    let fx = fixture(|_| {}).await;
    let idm = fx.server.idm().await;
    let ask = async || traefik(&fx, "GET", HOST, "/policy/ops/dashboard", As::Bearer(&fx.bob), false).await;
    for _ in 0..2 {
        let r = ask().await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert_eq!(r.text().await.unwrap(), "Members of ops only, and only to read.");
    }
    idm.add_members("ops", &["user:bob".into()]).await.unwrap();
    for _ in 0..2 {
        let r = ask().await;
        assert_eq!(r.status(), StatusCode::OK, "bob is in ops now");
        assert_eq!(header(r.headers(), "x-remote-policy"), Some("ops-read"));
        assert_eq!(header(r.headers(), "x-remote-groups"), Some("ops"));
    }
    idm.remove_member("ops", "user:bob").await.unwrap();
    assert_eq!(ask().await.status(), StatusCode::FORBIDDEN, "and out again");
    // Another request of the same identity is not answered from the first one's decision.
    let r = traefik(&fx, "HEAD", HOST, "/policy/ops/dashboard", As::Bearer(&fx.alice), false).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = traefik(&fx, "DELETE", HOST, "/policy/ops/dashboard", As::Bearer(&fx.alice), false).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

/// A policy that reads the clock is asked on every request: nothing of it is remembered.
#[tokio::test]
async fn a_policy_that_reads_the_clock_is_asked_every_time() {
    let fx = fixture(|_| {}).await;
    let clock =
        "package warden.forward_auth\n\nimport rego.v1\n\nallow := true\n\nheaders := {\"X-Asked-At\": sprintf(\"%d\", [time.now_ns()])}\n";
    std::fs::write(fx.policy_dir.join("forward_auth.rego"), clock).unwrap();
    let asked_at = async || {
        let r = traefik(&fx, "GET", HOST, "/policy/any", As::Bearer(&fx.alice), false).await;
        r.headers().get("x-asked-at").map(|v| v.to_str().unwrap().to_owned())
    };
    assert!(eventually(Duration::from_secs(10), async || asked_at().await.is_some()).await, "the clock policy took effect");
    let first = asked_at().await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_ne!(asked_at().await.unwrap(), first);
}

pub async fn eventually(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

#[tokio::test]
async fn policy_hot_reload_keeps_the_old_policy_when_the_new_one_is_broken() {
    let fx = fixture(|_| {}).await;
    let file = fx.policy_dir.join("forward_auth.rego");
    let status = async |uri: &str| traefik(&fx, "GET", HOST, uri, As::Nobody, false).await.status();
    assert_eq!(status("/policy/open/x").await, StatusCode::OK);
    assert_eq!(status("/policy/v2").await, StatusCode::UNAUTHORIZED);

    let v2 = "package warden.forward_auth\n\nimport rego.v1\n\ndefault allow := false\n\nallow if input.request.path == \"/policy/v2\"\n";
    std::fs::write(&file, v2).unwrap();
    assert!(eventually(Duration::from_secs(10), async || status("/policy/v2").await == StatusCode::OK).await, "the new policy took effect");
    assert_eq!(status("/policy/open/x").await, StatusCode::UNAUTHORIZED, "the old one is gone");

    // A policy that does not compile is refused; the one in force stays.
    std::fs::write(&file, "package warden.forward_auth\n\nimport rego.v1\n\nallow if {\n").unwrap();
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(status("/policy/v2").await, StatusCode::OK);
    assert_eq!(status("/policy/open/x").await, StatusCode::UNAUTHORIZED);
    // A second policy file with a syntax error, next to a good one: refused as well.
    std::fs::write(&file, v2).unwrap();
    std::fs::write(fx.policy_dir.join("extra.rego"), "package warden.extra\n\nthis is not rego\n").unwrap();
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(status("/policy/v2").await, StatusCode::OK);

    // And the watcher lives on: a good change after the bad ones is picked up.
    std::fs::remove_file(fx.policy_dir.join("extra.rego")).unwrap();
    std::fs::write(&file, v2.replace("/policy/v2", "/policy/v3")).unwrap();
    assert!(eventually(Duration::from_secs(10), async || status("/policy/v3").await == StatusCode::OK).await, "reloads resume");
    assert_eq!(status("/policy/v2").await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn identity_headers_can_be_renamed_or_disabled() {
    let fx = fixture(|c| {
        c.forward_auth.headers.user = "X-Auth-Request-User".into();
        c.forward_auth.headers.email = "X-Auth-Request-Email".into();
        c.forward_auth.headers.permissions = String::new();
        c.forward_auth.headers.roles = String::new();
    })
    .await;
    let r = traefik(&fx, "GET", HOST, "/deploy/web", As::Bearer(&fx.alice), false).await;
    assert_eq!(r.status(), StatusCode::OK);
    let h = r.headers();
    assert_eq!(header(h, "x-auth-request-user"), Some("alice"));
    assert_eq!(header(h, "x-auth-request-email"), Some("alice@example.org"));
    assert_eq!(header(h, "x-remote-groups"), Some("ops"), "the others keep their names");
    for gone in ["x-remote-user", "x-remote-email", "x-remote-permissions", "x-remote-roles"] {
        assert!(h.get(gone).is_none(), "{gone}");
    }
}

#[tokio::test]
async fn sign_in_page_never_redirects_off_the_allowed_domains() {
    let fx = fixture(|_| {}).await;
    let r = http().get(format!("{}/login?rd={}", fx.public_url, encode("http://app.localtest/x?\"><script>"))).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(r.headers(), "cache-control"), Some("no-store"));
    let page = r.text().await.unwrap();
    assert!(page.contains("value=\"http://app.localtest/x?&#34;&#62;&#60;script&#62;\""), "{page}");

    for rd in [
        "https://evil.example/",
        "//evil.example/",
        "https://app.localtest.evil.example/",
        "https://app.localtest@evil.example/",
        "https:/\\evil.example",
        "javascript:alert(1)",
        "relative",
        "/\\evil.example",
        "",
    ] {
        let (location, _) = form_login(&fx, "alice", rd).await;
        assert_eq!(location, "/", "{rd:?}: the person's own page");
    }
    // A path on Warden itself is followed.
    let (location, _) = form_login(&fx, "alice", "/account/sessions").await;
    assert_eq!(location, "/account/sessions");
    for rd in ["http://app.localtest:8443/deploy?x=1", "https://wiki.app.localtest/", &format!("{}/somewhere", fx.public_url)] {
        let (location, _) = form_login(&fx, "alice", rd).await;
        assert_eq!(location, rd);
    }
    // A wrong password shows the form again, keeping the return URL, and sets no cookie.
    let (csrf, token) = csrf_form(&fx, "/login").await;
    let r = http()
        .post(format!("{}/login", fx.public_url))
        .header("content-type", "application/x-www-form-urlencoded")
        .header(COOKIE, csrf)
        .body(format!("name=alice&password=nope&rd={}&csrf={}", encode("http://app.localtest/x"), encode(&token)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().get(SET_COOKIE).is_none());
    assert!(r.text().await.unwrap().contains("value=\"http://app.localtest/x\""));
}

/// The example input documented next to the example policy gives the answer the policy's
/// comment promises.
#[test]
fn example_policy_and_input_agree_with_their_comments() {
    let dir = repo_root().join("examples/policies");
    let policy = warden_policy::rego::Policy::load(&dir, warden_policy::rego::DEFAULT_QUERY).unwrap();
    let input: warden_policy::PolicyInput = serde_json::from_str(&std::fs::read_to_string(dir.join("request.json")).unwrap()).unwrap();
    let decision = policy.evaluate(&input).unwrap();
    assert!(decision.allow);
    assert_eq!(decision.headers.get("X-Remote-Policy").map(String::as_str), Some("ops-read"));
}

/// A policy reads the original request's headers, and never the credentials among them.
#[tokio::test]
async fn policies_see_the_request_headers_but_no_credentials() {
    let fx = fixture(|_| {}).await;
    let policy = r#"package warden.forward_auth

import rego.v1

default allow := false

allow if input.request.headers["x-team"] == "ops"

credentials := {k | some k, _ in input.request.headers; k in {"authorization", "cookie", "proxy-authorization"}}

headers := {
    "X-Seen": concat(",", sort([k | some k, _ in input.request.headers; startswith(k, "x-team")])),
    "X-Credentials-Seen": sprintf("%d", [count(credentials)]),
    "Content-Length": "5",
    "Transfer-Encoding": "chunked",
}
"#;
    std::fs::write(fx.policy_dir.join("forward_auth.rego"), policy).unwrap();
    let ask = async |team: Option<&str>| {
        let request = forwarded(&fx, "GET", "https", HOST, "/policy/team")
            .header(AUTHORIZATION, format!("Bearer {}", fx.alice))
            .header(COOKIE, "warden_session=wds_not_this_one; theme=dark")
            .header("proxy-authorization", "Basic c2VjcmV0OnNlY3JldA==");
        let request = match team {
            Some(team) => request.header("x-team", team),
            None => request,
        };
        request.send().await.unwrap()
    };
    assert!(
        eventually(Duration::from_secs(10), async || ask(Some("ops")).await.status() == StatusCode::OK).await,
        "the header-reading policy took effect"
    );
    let allowed = ask(Some("ops")).await;
    assert_eq!(header(allowed.headers(), "x-seen"), Some("x-team"));
    assert_eq!(header(allowed.headers(), "x-credentials-seen"), Some("0"), "credentials are never shown to policies");
    assert_eq!(header(allowed.headers(), "x-remote-user"), Some("alice"));
    // Framing is Warden's: a policy's Content-Length or Transfer-Encoding is dropped.
    assert_eq!(header(allowed.headers(), "content-length"), Some("0"));
    assert_eq!(header(allowed.headers(), "transfer-encoding"), None);
    let refused = ask(Some("dev")).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(header(refused.headers(), "x-credentials-seen"), Some("0"));
    assert_eq!(ask(None).await.status(), StatusCode::FORBIDDEN);
}

/// A rule, written as in `warden.toml`.
pub fn rule(fields: serde_json::Value) -> warden_policy::Rule {
    serde_json::from_value(fields).unwrap()
}

/// The rules of issue 10's report, ahead of the fixture's: `/static/**` open to anyone,
/// `/admin/**` and the host `admin.localtest` closed to everyone.
pub fn attack_rules(config: &mut Config) {
    let rules = &mut config.forward_auth.rules;
    rules.insert(0, rule(serde_json::json!({"name": "static", "path": "/static/**", "action": "allow_anonymous"})));
    rules.insert(1, rule(serde_json::json!({"name": "closed", "path": "/admin/**", "action": "deny"})));
    rules.insert(2, rule(serde_json::json!({"name": "closed host", "host": "admin.localtest", "action": "deny"})));
}

/// Issue 10's paths that got 200 past `/admin/** deny`: the admin path, however spelled.
pub const ATTACK_PATHS: [&str; 8] = [
    "/static/../admin/users",
    "/static/%2e%2e/admin/users",
    "//admin/users",
    "/./admin/users",
    "/%61dmin/users",
    "/admin%2Fusers",
    "/admin;x/users",
    "/Admin/users",
];

/// More spellings of an admin path, and of the servlet trick in the other direction.
pub const MORE_ATTACK_PATHS: [&str; 8] = [
    "/static/..;/admin/users",
    "/static/%2E%2E%2Fadmin/users",
    "/static/%252e%252e/admin/users",
    "/static/..%5Cadmin/users",
    "/admin//../static/x",
    "/ADMIN/users",
    "/static/x/../../admin/users",
    "/admin/./users",
];

/// Spellings of a static path: all of them the static path, let through.
pub const STATIC_SPELLINGS: [&str; 6] =
    ["/static/app.css", "/static/./app.css", "//static/app.css", "/%73tatic/app.css", "/STATIC/app.css", "/static;v=1/app.css"];

/// Issue 10, item 4: with `/static/**` open to anyone and `/admin/**` closed, every spelling
/// of an admin path is judged as the admin path (or refused with a problem), never as a static
/// one; the host, as the rule's host.
#[tokio::test]
async fn every_spelling_of_a_path_is_judged_as_that_path() {
    let fx = fixture(attack_rules).await;
    let ask = async |host: &str, uri: &str, who: As<'_>| {
        let request = forwarded(&fx, "GET", "https", host, uri).header(ACCEPT, "application/json");
        who.apply(request).send().await.unwrap()
    };
    for uri in ATTACK_PATHS.iter().chain(&MORE_ATTACK_PATHS) {
        for (who, closed) in [(As::Nobody, StatusCode::UNAUTHORIZED), (As::Bearer(&fx.bob), StatusCode::FORBIDDEN)] {
            let r = ask(HOST, uri, who).await;
            let status = r.status();
            assert!(status == closed || status == StatusCode::BAD_REQUEST, "{uri}: {status}");
            no_identity(r.headers());
            if status == StatusCode::BAD_REQUEST {
                assert_eq!(header(r.headers(), "content-type"), Some("application/problem+json"), "{uri}");
                let problem: serde_json::Value = r.json().await.unwrap();
                assert_eq!(problem["code"], "forward.path_invalid", "{uri}: {problem}");
            }
        }
    }
    // Which of them are refused outright: those whose meaning depends on the application.
    for uri in
        ["/admin%2Fusers", "/static/..;/admin/users", "/static/%252e%252e/admin/users", "/static/..%5Cadmin/users", "/admin//../static/x"]
    {
        assert_eq!(ask(HOST, uri, As::Nobody).await.status(), StatusCode::BAD_REQUEST, "{uri}");
    }
    for uri in STATIC_SPELLINGS {
        let r = ask(HOST, uri, As::Nobody).await;
        assert_eq!(r.status(), StatusCode::OK, "{uri}");
    }
    // The host: lower case, without its port and trailing dot.
    for host in ["admin.localtest", "ADMIN.localtest", "admin.localtest.", "Admin.Localtest.:8443"] {
        assert_eq!(ask(host, "/x", As::Bearer(&fx.bob)).await.status(), StatusCode::FORBIDDEN, "{host}");
    }
    for host in ["admin.localtest..", "admin.localtest:x", "bob@admin.localtest", "admin.localtest/x"] {
        let r = ask(host, "/x", As::Bearer(&fx.bob)).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{host}");
        let problem: serde_json::Value = r.json().await.unwrap();
        assert_eq!(problem["code"], "forward.host_invalid", "{host}");
    }
    // nginx-style, the refusal is a 403 (nginx's auth_request passes only 401 and 403 on).
    let r = http()
        .get(format!("{}/auth/forward", fx.public_url))
        .header("x-original-url", "http://app.localtest/admin%2Fusers")
        .bearer_auth(&fx.bob)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let problem: serde_json::Value = r.json().await.unwrap();
    assert_eq!(problem["code"], "forward.path_invalid");
    // A proxy's path that is not readable text is refused: the X-Original-URL a client may
    // have added does not stand in for it.
    let r = http()
        .get(format!("{}/auth/forward", fx.public_url))
        .header("x-forwarded-host", HOST)
        .header("x-forwarded-uri", reqwest::header::HeaderValue::from_bytes(b"/admin/\xc3\xa9").unwrap())
        .header("x-original-url", "http://app.localtest/static/x")
        .bearer_auth(&fx.bob)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // So is a request described twice (a proxy sets these headers; it does not add to them).
    let r = forwarded(&fx, "GET", "https", HOST, "/admin/users").header("x-forwarded-uri", "/static/x").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let problem: serde_json::Value = r.json().await.unwrap();
    assert_eq!(problem["code"], "forward.request_invalid");
}

/// The API and forward-auth read a client's address by one rule: the same chain names the
/// same client in both (each with its own list of trusted proxies), as recorded with a failed
/// password.
#[tokio::test]
async fn the_api_and_forward_auth_read_the_client_alike() {
    let proxies: Vec<std::net::IpAddr> = ["127.0.0.1", "10.0.0.2"].iter().map(|a| a.parse().unwrap()).collect();
    let fx = fixture(|c| {
        c.server.behind_proxy = true;
        c.server.trusted_proxies.clone_from(&proxies);
        c.forward_auth.trusted_proxies.clone_from(&proxies);
    })
    .await;
    let chains = ["198.51.100.66, 203.0.113.7, 10.0.0.2", "198.51.100.66, 203.0.113.8:4711", "198.51.100.66, unknown"];
    for chain in chains {
        let r = http()
            .post(format!("{}/api/v1/auth/login", fx.public_url))
            .header("x-forwarded-for", chain)
            .header("x-real-ip", "198.51.100.77")
            .json(&serde_json::json!({"name": "carol", "password": "wrong horse"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        let r = forwarded(&fx, "GET", "https", APP, "/basic/feed.xml")
            .header("x-forwarded-for", chain)
            .header("x-real-ip", "198.51.100.77")
            .basic_auth("bob", Some("wrong horse"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let query = warden_core::api::AuditQuery { action: Some("auth.login.failed".into()), ..Default::default() };
    let mut failures = fx.server.sysadmin().await.audit(&query).await.unwrap().items;
    failures.reverse();
    let seen: Vec<_> = failures.iter().map(|e| (e.target_name.clone().unwrap_or_default(), e.details["client"].clone())).collect();
    let expected: Vec<_> = ["203.0.113.7", "203.0.113.8", "127.0.0.1"]
        .iter()
        .flat_map(|client| [("carol".to_owned(), serde_json::json!(client)), ("bob".to_owned(), serde_json::json!(client))])
        .collect();
    assert_eq!(seen, expected, "unknown entries end the walk: the proxy's own address counts");
}

/// A policy that tells the upstream what it was shown of the request.
const ECHO_POLICY: &str = r#"package warden.forward_auth

import rego.v1

default allow := true

default client := "none"

client := input.request.client

headers := {"X-Client": client, "X-Host": input.request.host, "X-Path": input.request.path}
"#;

/// Issue 10, item 8: the client's address is the rightmost `X-Forwarded-For` entry that is
/// not a trusted proxy, as for the API, whatever a client puts to the left of it or in
/// `X-Real-IP`; it is what a policy sees and what Basic's failures are counted (and audited)
/// by. `X-Forwarded-Host` is likewise the nearest proxy's: the last value.
#[tokio::test]
async fn the_client_is_the_rightmost_untrusted_address() {
    let fx = fixture(|c| c.forward_auth.trusted_proxies.push("10.0.0.2".parse().unwrap())).await;
    std::fs::write(fx.policy_dir.join("forward_auth.rego"), ECHO_POLICY).unwrap();
    let ask = async |host: &str, forwarded_for: Option<&str>, real_ip: Option<&str>| {
        let mut request = forwarded(&fx, "GET", "https", host, "/policy/x").bearer_auth(&fx.bob);
        if let Some(chain) = forwarded_for {
            request = request.header("x-forwarded-for", chain);
        }
        if let Some(ip) = real_ip {
            request = request.header("x-real-ip", ip);
        }
        let r = request.send().await.unwrap();
        ["x-client", "x-host"].map(|name| header(r.headers(), name).unwrap_or_default().to_owned())
    };
    assert!(eventually(Duration::from_secs(10), async || ask(APP, None, None).await[0] == "none").await, "the echoing policy took effect");
    for (chain, real_ip, client) in [
        (Some("198.51.100.66, 203.0.113.7"), None, "203.0.113.7"),
        (Some("198.51.100.66, 203.0.113.7, 10.0.0.2"), None, "203.0.113.7"),
        (Some("203.0.113.7"), Some("198.51.100.77"), "203.0.113.7"),
        (Some("198.51.100.66, unknown"), None, "none"),
        (Some("127.0.0.1"), None, "none"),
        (None, Some("198.51.100.77"), "none"),
    ] {
        assert_eq!(ask(APP, chain, real_ip).await[0], client, "{chain:?} {real_ip:?}");
    }
    assert_eq!(ask("evil.example, app.localtest:8443", None, None).await[1], "app.localtest");

    // Basic's failures count against (and are audited with) the same address.
    let r = forwarded(&fx, "GET", "https", APP, "/basic/feed.xml")
        .header("x-forwarded-for", "198.51.100.66, 203.0.113.7")
        .header("x-real-ip", "198.51.100.77")
        .basic_auth("carol", Some("wrong horse"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let query = warden_core::api::AuditQuery { action: Some("auth.login.failed".into()), ..Default::default() };
    let failures = fx.server.sysadmin().await.audit(&query).await.unwrap();
    let clients: Vec<_> = failures.items.iter().map(|e| e.details["client"].clone()).collect();
    assert_eq!(clients, [serde_json::json!("203.0.113.7")]);

    // An anonymous browser is sent back to the nearest proxy's host, not to the client's.
    let r = forwarded(&fx, "GET", "http", "evil.example, app.localtest:8443", "/admin/panel").header(ACCEPT, HTML).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    let expected = format!("{}/login?rd={}", fx.public_url, encode("http://app.localtest:8443/admin/panel"));
    assert_eq!(header(r.headers(), "location"), Some(expected.as_str()));
}
