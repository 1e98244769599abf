//! What the outside review attacked at the edge: files and sockets readable by others,
//! connections that never time out, sign-in forms posted from other sites.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::header::{COOKIE, ORIGIN, SET_COOKIE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::api::TestServer;
use crate::forward_auth::{Fixture, PASSWORD, encode, fixture, free_port, http};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
}

// --- the control socket -------------------------------------------------------------------------

/// The socket is 0600 at its path from the moment it appears there, not after a chmod: a
/// watcher that looks at the path all the time never sees it with a looser mode.
#[test]
fn control_socket_never_appears_with_a_loose_mode() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run/wardend.sock");
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (path, done) = (path.clone(), done.clone());
        std::thread::spawn(move || {
            let mut loose = Vec::new();
            while !done.load(Ordering::Relaxed) {
                if let Ok(meta) = std::fs::symlink_metadata(&path) {
                    let m = meta.permissions().mode() & 0o777;
                    if m & 0o077 != 0 {
                        loose.push(m);
                    }
                }
            }
            loose
        })
    };
    runtime.block_on(async {
        for _ in 0..300 {
            let listener = warden_server::control::bind(&path).unwrap();
            drop(listener);
            std::fs::remove_file(&path).unwrap();
        }
    });
    done.store(true, Ordering::Relaxed);
    let loose = watcher.join().unwrap();
    let seen: Vec<String> = loose.iter().take(5).map(|m| format!("{m:o}")).collect();
    assert!(loose.is_empty(), "the socket was seen {} times with a loose mode: {seen:?}", loose.len());

    // The result: 0600 in a 0700 directory, nothing left beside it, a stale socket replaced.
    runtime.block_on(async {
        let first = warden_server::control::bind(&path).unwrap();
        drop(first);
        let _listener = warden_server::control::bind(&path).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        let entries: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(entries, vec![std::ffi::OsString::from("wardend.sock")]);
        tokio::net::UnixStream::connect(&path).await.unwrap();
    });
}

// --- connections --------------------------------------------------------------------------------

/// A server whose connection deadlines are short enough to watch.
async fn short_timeouts(tweak: impl FnOnce(&mut warden_server::config::Config)) -> TestServer {
    TestServer::start_with(|config| {
        config.server.header_read_timeout = "1s".into();
        config.server.idle_timeout = "3s".into();
        tweak(config);
    })
    .await
}

/// How long until the server closes `stream` (reading and discarding what it sends), or `None`
/// if it is still open after `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at((start + limit).into(), stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

/// Sends one request on `stream` and reads its answer (a `/healthz` "ok").
async fn healthz_on(stream: &mut TcpStream) -> String {
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: warden\r\n\r\n").await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while !answer.ends_with(b"\r\n\r\nok") {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await.unwrap().unwrap();
        assert_ne!(n, 0, "closed before answering: {}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(answer).unwrap()
}

/// The review's slow-header client: half a request head, then nothing. It is disconnected
/// once `header_read_timeout` has passed, and so is a client that sends nothing at all.
#[tokio::test]
async fn a_slow_header_client_is_disconnected() {
    let server = short_timeouts(|_| {}).await;
    let addr = server.running.public_addr;
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: warden\r\nX-Slow: ").await.unwrap();
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut dripping = TcpStream::connect(addr).await.unwrap();
    dripping.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    let drip = tokio::spawn(async move {
        // A byte every 300 ms keeps bytes moving, but the head never ends.
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if dripping.write_all(b"X").await.is_err() {
                return true;
            }
        }
        false
    });
    for (what, stream) in [("half a head", &mut slow), ("nothing", &mut silent)] {
        let closed = closed_within(stream, Duration::from_secs(5)).await;
        assert!(closed.is_some_and(|t| t < Duration::from_secs(3)), "a client that sent {what} was not disconnected in time: {closed:?}");
    }
    assert!(drip.await.unwrap(), "a head sent a byte at a time outlives the header timeout");
}

/// Kept-alive connections are still reused (forward-auth depends on it): a pause longer than
/// the header timeout between two requests is idle time, judged by `idle_timeout`, and the
/// connection closes once idle that long.
#[tokio::test]
async fn kept_alive_connections_are_reused_until_idle() {
    let server = short_timeouts(|_| {}).await;
    let mut stream = TcpStream::connect(server.running.public_addr).await.unwrap();
    assert!(healthz_on(&mut stream).await.starts_with("HTTP/1.1 200"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(healthz_on(&mut stream).await.starts_with("HTTP/1.1 200"), "the same connection serves a second request");
    let closed = closed_within(&mut stream, Duration::from_secs(6)).await;
    assert!(closed.is_some_and(|t| t > Duration::from_secs(2)), "closed after the idle timeout, not before: {closed:?}");
}

/// 1,000 idle connections, half of them with half a head, do not stop `/healthz` answering.
#[tokio::test]
async fn idle_connections_do_not_stop_healthz() {
    warden_server::os::raise_open_file_limit();
    let server = TestServer::start().await;
    let addr = server.running.public_addr;
    let mut idle = Vec::new();
    for i in 0..1000 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        if i % 2 == 0 {
            stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: warden\r\n").await.unwrap();
        }
        idle.push(stream);
    }
    let started = Instant::now();
    let r = http().get(format!("{}/healthz", server.url)).timeout(Duration::from_secs(5)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    drop(idle);
}

/// Beyond `max_connections`, a new connection waits to be accepted, and is served once the
/// timeouts have closed the connections that held the slots.
#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_slot() {
    let server = short_timeouts(|config| config.server.max_connections = 2).await;
    let addr = server.running.public_addr;
    let mut holders = [TcpStream::connect(addr).await.unwrap(), TcpStream::connect(addr).await.unwrap()];
    for holder in &mut holders {
        holder.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let r = http().get(format!("{}/healthz", server.url)).timeout(Duration::from_secs(5)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(started.elapsed() > Duration::from_millis(500), "served only once a slot was free: {:?}", started.elapsed());
}

/// A TLS listener closes a connection whose handshake does not end in time (silent, or half a
/// ClientHello), and still serves one that completes it.
#[tokio::test]
async fn a_stalled_tls_handshake_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = crate::api::test_certificate(dir.path());
    let tls = warden_server::config::TlsConfig { cert: cert.clone(), key };
    let server = short_timeouts(|config| {
        config.server.tls = Some(tls);
        config.server.tls_handshake_timeout = "1s".into();
        config.server.header_read_timeout = "10s".into();
    })
    .await;
    let addr = server.running.public_addr;
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let mut half_hello = TcpStream::connect(addr).await.unwrap();
    half_hello.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).await.unwrap();
    for (what, stream) in [("nothing", &mut silent), ("half a ClientHello", &mut half_hello)] {
        let closed = closed_within(stream, Duration::from_secs(5)).await;
        assert!(closed.is_some_and(|t| t < Duration::from_secs(3)), "a client that sent {what} kept its connection: {closed:?}");
    }
    let root = reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap();
    let https = reqwest::Client::builder().tls_certs_only([root]).build().unwrap();
    let url = format!("https://localhost:{}/healthz", addr.port());
    assert_eq!(https.get(&url).send().await.unwrap().text().await.unwrap(), "ok");
}

/// The review's attack on a real `wardend` with a low open-file limit: 300 connections that
/// send half a head. They are closed after the header timeout, never take the descriptors
/// the server needs, and `/healthz` answers.
#[tokio::test]
async fn half_headers_cannot_exhaust_the_open_files() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 256 && exec \"$0\" serve")
        .arg(env!("CARGO_BIN_EXE_wardend"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("WARDEN_LOG", "warn")
        .env("WARDEN_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("WARDEN_SERVER__CONTROL_SOCKET", dir.path().join("wardend.sock"))
        .env("WARDEN_SERVER__HEADER_READ_TIMEOUT", "1s")
        .env("WARDEN_DATABASE__URL", format!("sqlite://{}/warden.db", dir.path().display()))
        .env("WARDEN_AUTH__ARGON2__MEMORY_KIB", "64")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/healthz");
    let deadline = Instant::now() + Duration::from_secs(30);
    while http().get(&url).send().await.is_err() {
        assert!(Instant::now() < deadline, "wardend did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut attackers = Vec::new();
    for _ in 0..300 {
        if let Ok(Ok(mut stream)) = tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(("127.0.0.1", port))).await {
            let _ = stream.write_all(b"GET / HTTP/1.1\r\nHost: warden\r\n").await;
            attackers.push(stream);
        }
    }
    let r = http().get(&url).timeout(Duration::from_secs(10)).send().await;
    assert!(r.is_ok_and(|r| r.status() == 200), "/healthz did not answer under the attack");
    drop(attackers);
    child.start_kill().unwrap();
    let _ = child.wait().await;
}

// --- login CSRF ---------------------------------------------------------------------------------

const FORM: &str = "application/x-www-form-urlencoded";

/// A page with a form (`/login`, `/logout`) as a browser first loads it: the CSRF cookie it
/// sets (`name=value`) and the token in the form.
async fn form_page(fx: &Fixture, path: &str) -> (String, String) {
    let r = http().get(format!("{}{path}", fx.public_url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers().get(SET_COOKIE).expect("a CSRF cookie").to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let page = r.text().await.unwrap();
    let token = page.split("name=\"csrf\" value=\"").nth(1).and_then(|rest| rest.split('"').next()).expect("a token in the form");
    (cookie, token.to_owned())
}

fn login_body(name: &str, token: Option<&str>) -> String {
    let body = format!("name={}&password={}&rd=", encode(name), encode(PASSWORD));
    match token {
        Some(token) => format!("{body}&csrf={}", encode(token)),
        None => body,
    }
}

fn no_session_cookie(r: &reqwest::Response) {
    for value in r.headers().get_all(SET_COOKIE) {
        assert!(!value.to_str().unwrap().starts_with("warden_session=wds_"), "a session cookie was set: {value:?}");
    }
}

async fn problem_code(r: reqwest::Response) -> String {
    assert_eq!(r.headers().get("content-type").unwrap(), "application/problem+json");
    r.json::<serde_json::Value>().await.unwrap()["code"].as_str().unwrap().to_owned()
}

/// The review's login CSRF: another site's form signs the victim's browser in to the
/// attacker's account. A post that says it comes from another site is refused before the
/// password is looked at, and sets no cookie; so is a post without the form's token.
#[tokio::test]
async fn sign_in_forms_from_other_sites_are_refused() {
    let fx = fixture(|_| {}).await;
    let login = format!("{}/login", fx.public_url);
    let post = || http().post(&login).header("content-type", FORM);

    // The attacker's page: no token (it cannot read ours), the browser says where it comes from.
    for (header, value) in [("origin", "https://evil.example"), ("sec-fetch-site", "cross-site"), ("sec-fetch-site", "same-site")] {
        let r = post().header(header, value).body(login_body("bob", None)).send().await.unwrap();
        assert_eq!(r.status(), 403, "{header}: {value}");
        no_session_cookie(&r);
        assert_eq!(problem_code(r).await, "request.cross_site", "{header}: {value}");
    }
    // Even with a valid cookie and token (a browser that sends them along), another origin is refused.
    let (cookie, token) = form_page(&fx, "/login").await;
    let r =
        post().header(COOKIE, &cookie).header(ORIGIN, "https://evil.example").body(login_body("bob", Some(&token))).send().await.unwrap();
    assert_eq!(r.status(), 403);
    no_session_cookie(&r);
    let r = post().header(COOKIE, &cookie).header(ORIGIN, "null").body(login_body("bob", Some(&token))).send().await.unwrap();
    assert_eq!(r.status(), 403, "an opaque origin is not ours");

    // Without the token, with a wrong one, or with a token but not its cookie: refused.
    let (_, other_token) = form_page(&fx, "/login").await;
    for (cookie, token) in [
        (Some(cookie.as_str()), None),
        (Some(cookie.as_str()), Some("0".repeat(64))),
        (Some(cookie.as_str()), Some(other_token)),
        (None, Some(token.clone())),
    ] {
        let mut request = post().body(login_body("bob", token.as_deref()));
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), 403, "{cookie:?} {token:?}");
        no_session_cookie(&r);
        assert_eq!(problem_code(r).await, "csrf.token_invalid");
    }

    // The real flow: the page, then its form, from the same origin (as a browser says it, and
    // as a client that says nothing).
    for browser in [true, false] {
        let (cookie, token) = form_page(&fx, "/login").await;
        let mut request = post().header(COOKIE, &cookie).body(login_body("bob", Some(&token)));
        if browser {
            request = request.header(ORIGIN, &fx.public_url).header("sec-fetch-site", "same-origin");
        }
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), 303, "browser: {browser}");
        assert!(r.headers().get_all(SET_COOKIE).iter().any(|v| v.to_str().unwrap().starts_with("warden_session=wds_")));
    }
}

/// Signing out takes the form's token too, from this site only; `GET /logout` is the page
/// with that form (what an application links to).
#[tokio::test]
async fn sign_out_forms_from_other_sites_are_refused() {
    let fx = fixture(|_| {}).await;
    let session = format!("warden_session={}", fx.bob);
    let logout = format!("{}/logout", fx.public_url);
    let still_signed_in = async || fx.server.anonymous().with_bearer(&fx.bob).whoami().await.is_ok();

    let r = http().post(&logout).header(COOKIE, &session).header("sec-fetch-site", "cross-site").send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().get(SET_COOKIE).is_none());
    let r = http().post(&logout).header(COOKIE, &session).send().await.unwrap();
    assert_eq!(r.status(), 403, "no token");
    assert!(still_signed_in().await);

    let (csrf, token) = form_page(&fx, "/logout").await;
    let r = http()
        .post(&logout)
        .header(COOKIE, format!("{session}; {csrf}"))
        .header(ORIGIN, &fx.public_url)
        .header("content-type", FORM)
        .body(format!("csrf={}", encode(&token)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(!still_signed_in().await);
}

/// The pages with forms, and those after them, forbid framing, scripts, plugins, foreign form
/// targets, content sniffing and caching.
#[tokio::test]
async fn sign_in_pages_carry_the_security_headers() {
    let fx = fixture(|_| {}).await;
    let (cookie, token) = form_page(&fx, "/login").await;
    let wrong = http()
        .post(format!("{}/login", fx.public_url))
        .header(COOKIE, &cookie)
        .header("content-type", FORM)
        .body(format!("name=bob&password=wrong&csrf={}", encode(&token)))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let pages = [
        http().get(format!("{}/login", fx.public_url)).send().await.unwrap(),
        wrong,
        http().get(format!("{}/forgot-password", fx.public_url)).send().await.unwrap(),
        http().get(format!("{}/logout", fx.public_url)).send().await.unwrap(),
    ];
    for page in pages {
        let h = page.headers();
        let csp = h.get("content-security-policy").unwrap().to_str().unwrap();
        for directive in ["default-src 'none'", "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'"] {
            assert!(csp.contains(directive), "{}: {csp}", page.url());
        }
        // Scripts and styles from Warden's own files only: an injected <script>, <style> or
        // style attribute would not run or apply.
        assert!(csp.contains("script-src 'self'") && csp.contains("style-src 'self'") && !csp.contains("unsafe"), "{}: {csp}", page.url());
        assert_eq!(h.get("x-content-type-options").unwrap(), "nosniff", "{}", page.url());
        assert_eq!(h.get("x-frame-options").unwrap(), "DENY");
        assert_eq!(h.get("referrer-policy").unwrap(), "same-origin");
        assert_eq!(h.get("cache-control").unwrap(), "no-store");
    }
}

// --- the API description ------------------------------------------------------------------------

/// Every operation lists the problem statuses it can answer, as `application/problem+json`
/// (what schemathesis checks in scripts/schemathesis.sh): 401 and 429 everywhere (any
/// credential may be wrong or throttled), 400/413/415 where there is a body, 400 where there
/// are parameters, 403 and 404 on the management routes.
#[tokio::test]
async fn the_api_description_lists_every_problem() {
    let server = TestServer::start().await;
    let doc: serde_json::Value = http().get(format!("{}/api/v1/openapi.json", server.url)).send().await.unwrap().json().await.unwrap();
    let paths = doc["paths"].as_object().unwrap();
    let mut checked = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let Some(responses) = op.get("responses").and_then(|r| r.as_object()) else { continue };
            let has = |status: &str| responses.contains_key(status);
            let what = format!("{method} {path}");
            // The OpenID Connect provider answers clients in OAuth's format (RFC 6749 §5.2):
            // its 400 and 401 are `{error, error_description}` JSON; the rest are problems.
            if path.starts_with("/oidc/") || path.starts_with("/.well-known/") {
                for (status, response) in responses.iter().filter(|(s, _)| s.starts_with('4') || s.starts_with('5')) {
                    let content = response["content"].as_object().unwrap();
                    let oauth = matches!(status.as_str(), "400" | "401");
                    let (kind, schema) = if oauth {
                        ("application/json", "#/components/schemas/OAuthErrorBody")
                    } else {
                        ("application/problem+json", "#/components/schemas/Problem")
                    };
                    assert_eq!(content.keys().collect::<Vec<_>>(), [kind], "{what} {status}");
                    assert_eq!(content[kind]["schema"]["$ref"], schema, "{what} {status}");
                }
                assert!(has("503"), "{what}: the provider may be off");
                if op.get("requestBody").is_some() && !path.contains("userinfo") {
                    assert!(has("400") && has("401"), "{what}");
                }
                checked += 1;
                continue;
            }
            for (status, response) in responses {
                if status.starts_with('4') {
                    let content = response["content"].as_object().unwrap();
                    assert_eq!(content.keys().collect::<Vec<_>>(), ["application/problem+json"], "{what} {status}");
                    assert_eq!(content["application/problem+json"]["schema"]["$ref"], "#/components/schemas/Problem", "{what} {status}");
                }
            }
            assert!(has("401") && has("429"), "{what}");
            if op.get("requestBody").is_some() {
                assert!(has("400") && has("413") && has("415"), "{what}");
            }
            if op.get("parameters").is_some_and(|p| !p.as_array().unwrap().is_empty()) {
                assert!(has("400"), "{what}");
            }
            let management = !path.starts_with("/api/v1/auth/") && !path.starts_with("/api/v1/self");
            if management {
                assert!(has("403") && has("404"), "{what}");
            }
            checked += 1;
        }
    }
    assert!(checked > 40, "{checked} operations");
}

/// `limit` is at most 1000: the description says so, and a larger one is refused rather than
/// silently cut.
#[tokio::test]
async fn page_limits_are_documented_and_enforced() {
    let server = TestServer::start().await;
    let doc: serde_json::Value = http().get(format!("{}/api/v1/openapi.json", server.url)).send().await.unwrap().json().await.unwrap();
    for path in ["/api/v1/users", "/api/v1/groups", "/api/v1/service-accounts", "/api/v1/audit", "/api/v1/groups/{group}/members"] {
        let params = doc["paths"][path]["get"]["parameters"].as_array().unwrap();
        let limit = params.iter().find(|p| p["name"] == "limit").unwrap();
        assert_eq!(limit["schema"]["maximum"], 1000, "{path}");
    }
    let token = server.token_for("idm_admin").await;
    for (limit, status) in [("1000", 200), ("1001", 400), ("4294967295", 400)] {
        let r = http().get(format!("{}/api/v1/users?limit={limit}", server.url)).bearer_auth(&token).send().await.unwrap();
        assert_eq!(r.status(), status, "limit={limit}");
    }
}
