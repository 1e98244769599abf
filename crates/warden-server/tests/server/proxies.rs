//! Forward-auth through the real reverse proxies: nginx (`auth_request`) and Caddy
//! (`forward_auth`), started on loopback ports with the very configuration files that
//! docs/integrations ships, in front of a tiny upstream that echoes the headers it receives.
//!
//! Nothing is skipped: without nginx or Caddy these tests fail and say how to install them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::http::{HeaderMap as AxumHeaders, Method, Uri};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, LOCATION, WWW_AUTHENTICATE};
use serde_json::{Value, json};

use crate::forward_auth::{
    APP, ATTACK_PATHS, As, Fixture, HTML, MORE_ATTACK_PATHS, STATIC_SPELLINGS, attack_rules, encode, eventually, fixture, form_login,
    free_port, header, http, login,
};

// --- the upstream -------------------------------------------------------------------------------

/// The protected application: answers every request with what it received, and remembers it.
struct Upstream {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    async fn start() -> Self {
        let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
        let log = seen.clone();
        let app = axum::Router::new().fallback(move |method: Method, uri: Uri, headers: AxumHeaders| {
            let log = log.clone();
            async move {
                let mut received = serde_json::Map::new();
                for name in headers.keys() {
                    let values: Vec<&str> = headers.get_all(name).iter().map(|v| v.to_str().unwrap_or("<binary>")).collect();
                    received.insert(name.as_str().to_owned(), json!(values));
                }
                let request = json!({ "method": method.as_str(), "uri": uri.to_string(), "headers": received });
                log.lock().unwrap().push(request.clone());
                Json(request)
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, seen, task }
    }

    fn hits(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The values of `name` the upstream received (none when it was not sent).
fn received(echo: &Value, name: &str) -> Vec<String> {
    echo["headers"][name].as_array().map(|v| v.iter().map(|s| s.as_str().unwrap().to_owned()).collect()).unwrap_or_default()
}

fn received_one(echo: &Value, name: &str) -> Option<String> {
    let values = received(echo, name);
    assert!(values.len() <= 1, "{name} arrived more than once: {values:?}");
    values.into_iter().next()
}

// --- the proxies ---------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Nginx,
    Caddy,
}

/// A running proxy; stopped (SIGTERM, then SIGKILL) when dropped, also when a test panics.
struct Proxy {
    kind: Kind,
    port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

fn repo_file(path: &str) -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from).join("../..").join(path)
}

/// The proxy's executable, or a failure that says how to get it.
fn executable(kind: Kind) -> PathBuf {
    let (name, candidates) = match kind {
        Kind::Nginx => ("nginx", ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"]),
        Kind::Caddy => ("caddy", ["/usr/bin/caddy", "/usr/local/bin/caddy", "/usr/sbin/caddy"]),
    };
    let on_path = std::env::var_os("PATH").into_iter().flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>()).map(|d| d.join(name));
    candidates.into_iter().map(PathBuf::from).chain(on_path).find(|p| p.is_file()).unwrap_or_else(|| {
        panic!("{name} is not installed; these tests need the real proxy: run `bash scripts/proxies-up.sh` (installs nginx and caddy from Debian packages)")
    })
}

impl Proxy {
    /// Writes the configuration from its template in docs/integrations and starts the proxy on
    /// a free loopback port, waiting (bounded) until it answers.
    fn start(kind: Kind, warden: &str, upstream: SocketAddr) -> Self {
        let program = executable(kind);
        let mut last_error = String::new();
        for _ in 0..3 {
            let port = free_port();
            let dir = tempfile::tempdir().unwrap();
            // nginx's workers drop root privileges and must still reach their temp paths.
            std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
            let prefix = dir.path().display().to_string();
            let (template, file) = match kind {
                Kind::Nginx => ("docs/integrations/nginx.conf", dir.path().join("nginx.conf")),
                Kind::Caddy => ("docs/integrations/Caddyfile", dir.path().join("Caddyfile")),
            };
            let config = std::fs::read_to_string(repo_file(template))
                .unwrap()
                .replace("{{PREFIX}}", &prefix)
                .replace("{{LISTEN}}", &format!("127.0.0.1:{port}"))
                .replace("{{SITE}}", &format!("http://:{port}"))
                .replace("{{WARDEN}}", warden)
                .replace("{{UPSTREAM}}", &upstream.to_string());
            assert!(!config.contains("{{"), "a placeholder of {template} was not filled in");
            std::fs::write(&file, config).unwrap();
            let log = std::fs::File::create(dir.path().join("proxy.out")).unwrap();
            let mut command = Command::new(&program);
            match kind {
                Kind::Nginx => {
                    command
                        .arg("-p")
                        .arg(dir.path())
                        .arg("-e")
                        .arg(dir.path().join("error.log"))
                        .arg("-c")
                        .arg(&file)
                        .arg("-g")
                        .arg("daemon off;");
                }
                Kind::Caddy => {
                    command.arg("run").arg("--config").arg(&file).arg("--adapter").arg("caddyfile");
                    for var in ["HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME"] {
                        command.env(var, dir.path());
                    }
                }
            }
            let child = command.stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log).spawn().unwrap();
            let mut proxy = Self { kind, port, child, dir };
            match proxy.wait_ready(Duration::from_secs(15)) {
                Ok(()) => return proxy,
                Err(e) => last_error = e,
            }
        }
        panic!("{kind:?} did not start: {last_error}");
    }

    fn logs(&self) -> String {
        ["proxy.out", "error.log"]
            .iter()
            .filter_map(|f| std::fs::read_to_string(self.dir.path().join(f)).ok())
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<(), String> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Err(format!("exited with {status}:\n{}", self.logs()));
            }
            if std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], self.port).into(), Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("not listening on port {} after {limit:?}:\n{}", self.port, self.logs()))
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The Host a browser sends for the application.
    fn host(&self) -> String {
        format!("{APP}:{}", self.port)
    }

    /// The URL the browser asked for.
    fn original(&self, path: &str) -> String {
        format!("http://{}{path}", self.host())
    }

    fn request(&self, method: Method, path: &str, who: As<'_>, browser: bool) -> reqwest::RequestBuilder {
        let request = http()
            .request(method, format!("{}{path}", self.base()))
            .header("host", self.host())
            .header(ACCEPT, if browser { HTML } else { "application/json" });
        who.apply(request)
    }

    async fn get(&self, path: &str, who: As<'_>, browser: bool) -> reqwest::Response {
        self.request(Method::GET, path, who, browser).send().await.unwrap()
    }

    /// A request that must pass: what the upstream received.
    async fn pass(&self, request: reqwest::RequestBuilder) -> Value {
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "{:?}: {text}\n{}", self.kind, self.logs());
        serde_json::from_str(&text).unwrap()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        // SIGTERM: nginx's master stops its workers, Caddy shuts down.
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// --- the contract ------------------------------------------------------------------------------

#[tokio::test]
async fn nginx_auth_request() {
    through(Kind::Nginx).await;
}

#[tokio::test]
async fn caddy_forward_auth() {
    through(Kind::Caddy).await;
}

async fn through(kind: Kind) {
    let fx = fixture(|_| {}).await;
    let upstream = Upstream::start().await;
    let warden = fx.public_url.trim_start_matches("http://").to_owned();
    let proxy = Proxy::start(kind, &warden, upstream.addr);
    refusals(&fx, &proxy, &upstream).await;
    identities(&fx, &proxy).await;
    forgeries(&fx, &proxy, &upstream).await;
    policies(&fx, &proxy, &upstream).await;
    sign_in_and_out(&fx, &proxy).await;
    revocation(&fx, &proxy).await;
    client_address(&fx, &proxy).await;
    strength(&fx, &proxy).await;
    drop(proxy);
}

/// Anonymous browsers go to sign in, API clients get 401, the unauthorized 403; none of them
/// reaches the upstream, and nobody is redirected off the allowed domains.
async fn refusals(fx: &Fixture, proxy: &Proxy, upstream: &Upstream) {
    let before = upstream.hits();
    let r = proxy.get("/admin/panel?tab=1", As::Nobody, true).await;
    assert_eq!(r.status(), StatusCode::FOUND, "{}", proxy.logs());
    let login = format!("{}/login?rd={}", fx.public_url, encode(&proxy.original("/admin/panel?tab=1")));
    assert_eq!(header(r.headers(), "location"), Some(login.as_str()));

    let r = proxy.get("/admin/panel", As::Nobody, false).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let challenge = r.headers().get_all(WWW_AUTHENTICATE).iter().map(|v| v.to_str().unwrap().to_owned()).collect::<Vec<_>>();
    assert_eq!(challenge, [r#"Bearer realm="warden""#], "exactly Warden's challenge");
    assert!(r.headers().get(LOCATION).is_none());

    for (path, who) in [("/admin/panel", As::Bearer(&fx.bob)), ("/deploy/web", As::Bearer(&fx.bob)), ("/admin/panel", As::Bearer(&fx.bot))]
    {
        for browser in [true, false] {
            let r = proxy.get(path, who, browser).await;
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
            assert!(r.headers().get(LOCATION).is_none());
        }
    }
    let r = proxy.request(Method::POST, "/deploy/web", As::Bearer(&fx.bob), false).body("{\"tag\": \"v2\"}").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // A Host that is not an allowed domain: 401, never a redirect.
    for host in ["evil.example", &format!("evil.example:{}", proxy.port), "app.localtest.evil.example"] {
        let r = http().get(format!("{}/admin/panel", proxy.base())).header("host", host).header(ACCEPT, HTML).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{host}");
        assert!(r.headers().get(LOCATION).is_none(), "{host}");
    }
    assert_eq!(upstream.hits(), before, "refused requests never reach the upstream");
}

/// An `auth_strength = "mfa"` rule refuses a password-only session and lets a password+TOTP
/// one through (the code from pyotp), which the application sees as such.
async fn strength(fx: &Fixture, proxy: &Proxy) {
    use warden_server::clock::Clock;
    assert_eq!(proxy.get("/strong/x", As::Bearer(&fx.bob), false).await.status(), 403, "a password alone is not enough");
    // Bob sets up TOTP (in a write window), then signs in with it.
    let bob = fx.server.anonymous().with_bearer(&fx.bob);
    bob.reauth(crate::forward_auth::PASSWORD).await.unwrap();
    let enrolment = bob.begin_totp(&warden_core::api::BeginTotp::default()).await.unwrap();
    let secret = enrolment.secret.expose().to_owned();
    let now = fx.server.clock.now().unix_timestamp();
    bob.confirm_totp(&crate::second_factor::pyotp(&secret, now, 6, "sha1")).await.unwrap();
    let step = match fx.server.anonymous().login_outcome("bob", crate::forward_auth::PASSWORD).await.unwrap() {
        warden_core::api::LoginOutcome::SecondFactor(step) => step,
        warden_core::api::LoginOutcome::Session(_) => panic!("bob has a second factor"),
    };
    let answer = warden_core::api::SecondFactorAnswer {
        state: step.state,
        totp: Some(crate::second_factor::pyotp(&secret, now + 30, 6, "sha1")),
        backup_code: None,
        passkey: None,
    };
    let strong = fx.server.anonymous().login_mfa(&answer).await.unwrap().token.expose().to_owned();
    let echo = proxy.pass(proxy.request(Method::GET, "/strong/x", As::Bearer(&strong), false)).await;
    assert_eq!(received_one(&echo, "x-remote-auth-strength").as_deref(), Some("password+totp"));
}

/// Sessions (bearer and cookie) and API tokens pass with the right identity headers.
async fn identities(fx: &Fixture, proxy: &Proxy) {
    let echo = proxy.pass(proxy.request(Method::POST, "/deploy/web?tag=v2", As::Bearer(&fx.alice), false).body("{\"tag\": \"v2\"}")).await;
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["uri"], "/deploy/web?tag=v2");
    assert_eq!(received_one(&echo, "host").as_deref(), Some(proxy.host().as_str()));
    assert_eq!(received_one(&echo, "authorization"), Some(format!("Bearer {}", fx.alice)), "the application still gets the credential");
    for (name, value) in [
        ("x-remote-user", "alice"),
        ("x-remote-user-id", fx.alice_id.as_str()),
        ("x-remote-email", "alice@example.org"),
        ("x-remote-name", "Alice Liddell"),
        ("x-remote-groups", "ops"),
        ("x-remote-roles", "deployer,reader"),
        ("x-remote-permissions", "app:read,deploy:run"),
        ("x-remote-auth-strength", "password"),
    ] {
        assert_eq!(received_one(&echo, name).as_deref(), Some(value), "{name}");
    }
    assert!(received(&echo, "x-remote-policy").is_empty());

    // The session cookie works like the bearer token.
    let (_, cookie) = form_login(fx, "alice", &proxy.original("/")).await;
    let echo = proxy.pass(proxy.request(Method::GET, "/admin/panel", As::Cookie(&cookie), true)).await;
    assert_eq!(received_one(&echo, "x-remote-user").as_deref(), Some("alice"));
    assert_eq!(received_one(&echo, "x-remote-permissions").as_deref(), Some("app:read"), "no namespace on /admin");

    // The service account's API token.
    let echo = proxy.pass(proxy.request(Method::DELETE, "/deploy/web/42", As::Bearer(&fx.bot), false)).await;
    assert_eq!(received_one(&echo, "x-remote-user").as_deref(), Some("ci-bot"));
    assert_eq!(received_one(&echo, "x-remote-permissions").as_deref(), Some("deploy:run"));
    assert_eq!(received_one(&echo, "x-remote-auth-strength").as_deref(), Some("token"));
}

/// Nothing a client sends under an identity header name reaches the upstream, and a client
/// cannot describe a different request to Warden than the one it makes.
async fn forgeries(fx: &Fixture, proxy: &Proxy, upstream: &Upstream) {
    let forged = |request: reqwest::RequestBuilder| {
        request
            .header("X-Remote-User", "admin")
            .header("x-remote-groups", "ops")
            .header("X-Remote-Email", "ceo@example.org")
            .header("X-Remote-Name", "The Boss")
            .header("X-Remote-Permissions", "*")
            .header("X-Remote-Auth-Strength", "passkey")
            .header("X-Remote-Policy", "open")
            .header("X-Remote-User-Id", "00000000-0000-0000-0000-000000000000")
    };
    // Anonymous on a public route: passes, as nobody.
    let echo = proxy.pass(forged(proxy.request(Method::GET, "/public/logo.svg", As::Nobody, true))).await;
    let leaked: Vec<_> = echo["headers"].as_object().unwrap().iter().filter(|(k, _)| k.starts_with("x-remote-")).collect();
    assert!(leaked.is_empty(), "{:?}: forged identity reached the upstream: {leaked:?}", proxy.kind);

    // Signed in: Warden's values replace the forged ones, and what Warden does not know about
    // (bob has no e-mail or name) is not sent at all.
    let echo = proxy.pass(forged(proxy.request(Method::GET, "/wiki/home", As::Bearer(&fx.bob), true))).await;
    assert_eq!(received_one(&echo, "x-remote-user").as_deref(), Some("bob"));
    assert_eq!(received_one(&echo, "x-remote-auth-strength").as_deref(), Some("password"));
    // Nor are empty lists (bob is in no group): the forged values are dropped all the same.
    for name in ["x-remote-email", "x-remote-name", "x-remote-policy", "x-remote-groups", "x-remote-permissions", "x-remote-roles"] {
        assert!(received(&echo, name).is_empty(), "{:?}: forged {name} reached the upstream: {:?}", proxy.kind, received(&echo, name));
    }

    // The forged headers do not make bob an ops member either.
    let r = forged(proxy.request(Method::GET, "/admin/panel", As::Bearer(&fx.bob), false)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // Describing another request (a public one) in the headers Warden reads does not help.
    let before = upstream.hits();
    let r = proxy
        .request(Method::GET, "/admin/panel", As::Nobody, false)
        .header("X-Forwarded-Uri", "/public/logo.svg")
        .header("X-Forwarded-Method", "GET")
        .header("X-Forwarded-Host", APP)
        .header("X-Original-URL", format!("http://{APP}/public/logo.svg"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{:?}", proxy.kind);
    assert_eq!(upstream.hits(), before);
}

/// The example Rego policy: allow with the header it adds, deny with its status.
async fn policies(fx: &Fixture, proxy: &Proxy, upstream: &Upstream) {
    let echo = proxy.pass(proxy.request(Method::GET, "/policy/open/readme", As::Nobody, true).header("X-Remote-Policy", "forged")).await;
    assert_eq!(received_one(&echo, "x-remote-policy").as_deref(), Some("open"));
    assert!(received(&echo, "x-remote-user").is_empty());

    let echo = proxy.pass(proxy.request(Method::GET, "/policy/ops/dashboard", As::Bearer(&fx.alice), false)).await;
    assert_eq!(received_one(&echo, "x-remote-policy").as_deref(), Some("ops-read"));
    assert_eq!(received_one(&echo, "x-remote-user").as_deref(), Some("alice"));

    let before = upstream.hits();
    let r = proxy.request(Method::POST, "/policy/ops/dashboard", As::Bearer(&fx.alice), false).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = proxy.get("/policy/ops/dashboard", As::Bearer(&fx.bob), false).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body = r.text().await.unwrap();
    if proxy.kind == Kind::Caddy {
        assert_eq!(body, "Members of ops only, and only to read.", "Caddy passes the policy's body");
    }
    let r = proxy.get("/policy/ops/dashboard", As::Nobody, true).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let login = format!("{}/login?rd={}", fx.public_url, encode(&proxy.original("/policy/ops/dashboard")));
    assert_eq!(header(r.headers(), "location"), Some(login.as_str()));

    // A status of the policy's own: Caddy passes it on; nginx's auth_request knows only 2xx,
    // 401 and 403 and answers anything else with 500 (docs/integrations/nginx.md says so).
    let r = proxy.get("/policy/legal/report", As::Bearer(&fx.alice), false).await;
    match proxy.kind {
        Kind::Caddy => assert_eq!(r.status(), StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS),
        Kind::Nginx => assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR),
    }
    assert_eq!(upstream.hits(), before, "denied requests never reach the upstream");
}

/// The whole browser round trip: redirected to sign in, signed in, sent back, let in; signed
/// out, refused again.
async fn sign_in_and_out(fx: &Fixture, proxy: &Proxy) {
    let r = proxy.get("/deploy/web?from=mail", As::Nobody, true).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let login_page = header(r.headers(), "location").unwrap().to_owned();
    let page = http().get(&login_page).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let original = proxy.original("/deploy/web?from=mail");
    assert!(page.text().await.unwrap().contains(&format!("name=\"rd\" value=\"{original}\"")));

    let (back_to, cookie) = form_login(fx, "alice", &original).await;
    assert_eq!(back_to, original);
    let echo = proxy.pass(proxy.request(Method::GET, "/deploy/web?from=mail", As::Cookie(&cookie), true)).await;
    assert_eq!(received_one(&echo, "x-remote-user").as_deref(), Some("alice"));

    // An open redirect through the sign-in form is refused.
    let (back_to, _) = form_login(fx, "alice", "https://evil.example/").await;
    assert_eq!(back_to, "/");

    // Signing out ends the session: the cookie is refused on the next request.
    let r = crate::forward_auth::form_logout(fx, &cookie).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = proxy.get("/deploy/web", As::Cookie(&cookie), true).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let r = proxy.get("/deploy/web", As::Cookie(&cookie), false).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

/// A session revoked through the API is refused on the very next request.
async fn revocation(fx: &Fixture, proxy: &Proxy) {
    let token = login(&fx.server, "alice").await;
    proxy.pass(proxy.request(Method::GET, "/deploy/web", As::Bearer(&token), false)).await;
    fx.server.anonymous().with_bearer(&token).logout().await.unwrap();
    let r = proxy.get("/deploy/web", As::Bearer(&token), false).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = proxy.get("/deploy/web", As::Bearer(&token), true).await;
    assert_eq!(r.status(), StatusCode::FOUND);
}

/// A policy that names the client's address it was shown, in a header both proxies pass on.
const CLIENT_POLICY: &str = r#"package warden.forward_auth

import rego.v1

default allow := true

default client := "none"

client := input.request.client

headers := {"X-Remote-Policy": client}
"#;

/// The client's address is the one the proxy was reached from, not one the client claimed
/// in `X-Forwarded-For` or `X-Real-IP` (issue 10, item 8). The client connects from 127.0.0.2,
/// which is not one of Warden's trusted proxies (127.0.0.1 and ::1). Replaces the policy.
async fn client_address(fx: &Fixture, proxy: &Proxy) {
    std::fs::write(fx.policy_dir.join("forward_auth.rego"), CLIENT_POLICY).unwrap();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let ask = async || {
        let request = client
            .get(format!("{}/policy/x", proxy.base()))
            .header("host", proxy.host())
            .header("x-forwarded-for", "198.51.100.66")
            .header("x-real-ip", "198.51.100.77");
        let response = As::Bearer(&fx.bob).apply(request).send().await.unwrap();
        if response.status() != StatusCode::OK {
            return None;
        }
        let echo: Value = response.json().await.unwrap();
        received_one(&echo, "x-remote-policy")
    };
    assert!(eventually(Duration::from_secs(10), async || ask().await.is_some()).await, "{:?}: the client policy took effect", proxy.kind);
    assert_eq!(ask().await.as_deref(), Some("127.0.0.2"), "{:?}", proxy.kind);
}

/// The guides show the configurations the tests run, and every proxy passes on every identity
/// header Warden sends by default.
#[test]
fn guides_show_the_tested_configurations() {
    let read = |path: &str| std::fs::read_to_string(repo_file(path)).unwrap();
    for (guide, file) in
        [("docs/integrations/nginx.md", "docs/integrations/nginx.conf"), ("docs/integrations/caddy.md", "docs/integrations/Caddyfile")]
    {
        assert!(read(guide).contains(&read(file)), "{guide} must show {file} exactly as it is: copy the file into its code block");
    }
    let h = warden_server::config::IdentityHeaders::default();
    let nginx = read("docs/integrations/nginx.conf");
    let caddy = read("docs/integrations/Caddyfile");
    let copied = caddy.lines().find(|l| l.trim_start().starts_with("copy_headers")).unwrap().to_owned();
    let traefik = read("docs/integrations/traefik.md");
    for name in [&h.user, &h.user_id, &h.email, &h.name, &h.groups, &h.roles, &h.permissions, &h.auth_strength] {
        let variable = format!("$upstream_http_{}", name.to_ascii_lowercase().replace('-', "_"));
        assert!(nginx.contains(&variable) && nginx.contains(&format!("proxy_set_header {name} ")), "nginx.conf passes {name}");
        assert!(copied.split_whitespace().any(|w| w == name), "Caddyfile copies {name}");
        assert!(caddy.contains(&format!("import warden_drop_unset {name}\n")), "Caddyfile drops an unset {name}");
        assert!(traefik.contains(&format!("- {name}\n")) && traefik.contains(&format!("{name},")), "traefik.md lists {name}");
    }
}

// --- canonical paths ---------------------------------------------------------------------------

/// Issue 10, item 4, through the real proxies: for every spelling of an admin path the
/// upstream never receives one that an application could read as under `/admin`, and every
/// spelling of a static path reaches it as a static path.
#[tokio::test]
async fn nginx_passes_on_no_admin_path_in_disguise() {
    disguises(Kind::Nginx).await;
}

#[tokio::test]
async fn caddy_passes_on_no_admin_path_in_disguise() {
    disguises(Kind::Caddy).await;
}

async fn disguises(kind: Kind) {
    let fx = fixture(attack_rules).await;
    let upstream = Upstream::start().await;
    let warden = fx.public_url.trim_start_matches("http://").to_owned();
    let proxy = Proxy::start(kind, &warden, upstream.addr);
    let mut seen = Vec::new();
    for target in ATTACK_PATHS.iter().chain(&MORE_ATTACK_PATHS) {
        for who in [None, Some(fx.bob.as_str())] {
            let before = upstream.hits();
            let status = raw_get(&proxy, target, who).await;
            let received: Vec<String> =
                upstream.seen.lock().unwrap()[before..].iter().map(|e| e["uri"].as_str().unwrap().to_owned()).collect();
            for uri in &received {
                assert!(!under(&lenient(uri), "/admin"), "{kind:?}: {target} reached the upstream as {uri} ({status})\n{}", proxy.logs());
            }
            assert!(received.is_empty() && status != 200, "{kind:?}: {target} was let through ({status}): {received:?}");
            seen.push(format!("{target} -> {status}"));
        }
    }
    for target in STATIC_SPELLINGS {
        let before = upstream.hits();
        let status = raw_get(&proxy, target, None).await;
        assert_eq!(status, 200, "{kind:?}: {target}\n{}", proxy.logs());
        let uri = upstream.seen.lock().unwrap()[before]["uri"].as_str().unwrap().to_owned();
        assert!(under(&lenient(&uri), "/static"), "{kind:?}: {target} reached the upstream as {uri}");
    }
    eprintln!("{kind:?}: {seen:?}");
}

/// Sends `GET target` through the proxy byte for byte (an HTTP client library would resolve
/// the dot segments itself), as `bearer` if given; the status.
async fn raw_get(proxy: &Proxy, target: &str, bearer: Option<&str>) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", proxy.port)).await.unwrap();
        let credential = bearer.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
        let request =
            format!("GET {target} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\n{credential}Connection: close\r\n\r\n", proxy.host());
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        let text = String::from_utf8_lossy(&answer);
        text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status line: {text}"))
    };
    tokio::time::timeout(Duration::from_secs(15), exchange).await.unwrap()
}

fn under(path: &str, prefix: &str) -> bool {
    path == prefix || path.starts_with(&format!("{prefix}/"))
}

/// What the most lenient application makes of a request target's path: every escape decoded
/// (`%2F` and `%5C` too), backslashes read as slashes, `;` parameters dropped, slashes merged,
/// dot segments resolved, letter case ignored.
fn lenient(uri: &str) -> String {
    let path = uri.split('?').next().unwrap_or_default().as_bytes();
    let mut decoded = Vec::new();
    let mut i = 0;
    while i < path.len() {
        let hex = |at: usize| path.get(at).and_then(|b| char::from(*b).to_digit(16));
        match (path[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(high), Some(low)) => {
                decoded.push(u8::try_from(high * 16 + low).unwrap());
                i += 3;
            }
            (b, _, _) => {
                decoded.push(b);
                i += 1;
            }
        }
    }
    let text = String::from_utf8_lossy(&decoded).to_ascii_lowercase().replace('\\', "/");
    let mut kept: Vec<&str> = Vec::new();
    for segment in text.split('/') {
        match segment.split(';').next().unwrap_or_default() {
            "" | "." => {}
            ".." => {
                kept.pop();
            }
            name => kept.push(name),
        }
    }
    format!("/{}", kept.join("/"))
}

#[test]
fn the_lenient_reading() {
    assert_eq!(lenient("/static/%2e%2e%2Fadmin/users?x"), "/admin/users");
    assert_eq!(lenient("/static/..%5cadmin;x/Users"), "/admin/users");
    assert_eq!(lenient("//a/./b/../c"), "/a/c");
}
