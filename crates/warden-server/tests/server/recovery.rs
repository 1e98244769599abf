//! Issue 13's admin recovery link: issued by an administrator, redeemed once by the person
//! (through the API or the link's page), never consumed by opening it, refused alike when
//! unknown, expired or used, and never written down in clear.

use std::sync::{Arc, Mutex};

use time::Duration;
use warden_client::{AuditQuery, ClientError};
use warden_core::api::CreateBinding;
use warden_server::clock::Clock;

use crate::api::{TestServer, role, user};
use crate::forward_auth::http;

const PUBLIC_URL: &str = "https://id.example.test";
const NEW_PASSWORD: &str = "a brand new passphrase";

fn code(e: &ClientError) -> &str {
    e.code()
}

async fn start() -> TestServer {
    TestServer::start_with(|c| c.server.public_url = Some(PUBLIC_URL.into())).await
}

/// The token of a link `{PUBLIC_URL}/recover?token=…`.
fn token_of(url: &str) -> String {
    let token = url.strip_prefix(&format!("{PUBLIC_URL}/recover?token=")).unwrap_or_else(|| panic!("unexpected link {url}"));
    assert!(token.starts_with("wdo_") && token.len() == 4 + 64, "{token}");
    token.to_owned()
}

/// Writes the log of what runs on this thread (the server's tasks, on the test's
/// current-thread runtime) into a buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn without_a_public_url_issuing_names_the_key() {
    let server = TestServer::start().await;
    let idm = server.idm().await;
    idm.create_user(&user("alice")).await.unwrap();
    let e = idm.recovery_link("alice", None).await.unwrap_err();
    assert_eq!(code(&e), "config.public_url_missing");
    assert_eq!(e.status(), Some(503));
    assert!(e.to_string().contains("server.public_url"), "{e}");
}

#[tokio::test]
async fn who_may_issue_and_for_whom() {
    let server = start().await;
    // First: making the superuser recovers idm_admin, which ends earlier idm_admin sessions.
    let root = server.superuser().await;
    let idm = server.idm().await;
    idm.create_user(&user("alice")).await.unwrap();
    // No right to credentials: refused before anything is looked up.
    let login = server.anonymous().login("alice", "correct horse battery").await.unwrap();
    let alice = server.anonymous().with_bearer(login.token.expose());
    assert_eq!(code(&alice.recovery_link("alice", None).await.unwrap_err()), "forbidden");
    // Break-glass accounts recover on the host.
    for name in ["admin", "idm_admin"] {
        assert_eq!(code(&idm.recovery_link(name, None).await.unwrap_err()), "account.protected", "{name}");
    }
    assert_eq!(code(&idm.recovery_link("nobody", None).await.unwrap_err()), "not_found");
    // Lifetimes beyond the maximum (7d) or not a duration.
    for bad in ["8d", "0s", "soon"] {
        assert_eq!(code(&idm.recovery_link("alice", Some(bad)).await.unwrap_err()), "validation", "{bad}");
    }
    // A holder of a custom administrative role: idm_superuser only.
    idm.create_user(&user("carol")).await.unwrap();
    root.create_role(&role("platform-admin", "Platform admin", &["warden:roles", "warden:bindings"])).await.unwrap();
    root.create_binding(&CreateBinding { role: "platform-admin".into(), subject: "user:carol".into(), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(code(&idm.recovery_link("carol", None).await.unwrap_err()), "account.high_privilege");
    let link = root.recovery_link("carol", Some("24h")).await.unwrap();
    assert_eq!(link.expires_at, link_time(&server, Duration::hours(24)));
}

fn link_time(server: &TestServer, ttl: Duration) -> time::OffsetDateTime {
    let t = server.clock.now();
    t.replace_nanosecond(t.nanosecond() / 1_000_000 * 1_000_000).unwrap() + ttl
}

#[tokio::test]
async fn a_link_is_redeemed_once_and_ends_the_other_sessions() {
    let log = Captured::default();
    let subscriber = tracing_subscriber::fmt().with_writer(log.clone()).with_max_level(tracing::Level::TRACE).with_ansi(false).finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    tracing::info!("capture probe");

    let server = start().await;
    let idm = server.idm().await;
    idm.create_user(&user("alice")).await.unwrap();
    let old = server.anonymous().login("alice", "correct horse battery").await.unwrap();
    let old_session = server.anonymous().with_bearer(old.token.expose());
    old_session.whoami().await.unwrap();

    let link = idm.recovery_link("alice", None).await.unwrap();
    assert_eq!(link.expires_at, link_time(&server, Duration::hours(1)), "the default lifetime is 1h");
    let token = token_of(link.url.expose());

    // Opening the page (a mail scanner, or the person) consumes nothing, however often.
    let page_url = format!("{}/recover?token={token}", server.url);
    for _ in 0..2 {
        let page = http().get(&page_url).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
        assert!(csp.starts_with("default-src 'none'; script-src 'self'; style-src 'self'"), "{csp}");
        assert!(page.text().await.unwrap().contains("Choose a new password"));
    }
    // A bearer it is not.
    assert_eq!(code(&server.anonymous().with_bearer(&token).whoami().await.unwrap_err()), "unauthenticated");
    // The password rules apply, and a refusal keeps the link.
    let e = server.anonymous().recover(&token, "short").await.unwrap_err();
    assert_eq!(code(&e), "validation");

    let login = server.anonymous().recover(&token, NEW_PASSWORD).await.unwrap();
    assert_eq!(login.account.name.as_str(), "alice");
    let alice = server.anonymous().with_bearer(login.token.expose());
    assert_eq!(alice.whoami().await.unwrap().account.name.as_str(), "alice");
    assert_eq!(code(&old_session.whoami().await.unwrap_err()), "unauthenticated", "the earlier session ended");
    server.anonymous().login("alice", NEW_PASSWORD).await.unwrap();
    assert_eq!(code(&server.anonymous().login("alice", "correct horse battery").await.unwrap_err()), "auth.failed");

    // Used: the same answer as unknown, through the API and the page.
    let again = server.anonymous().recover(&token, NEW_PASSWORD).await.unwrap_err();
    let unknown = server.anonymous().recover(&format!("wdo_{}", "0".repeat(64)), NEW_PASSWORD).await.unwrap_err();
    let garbage = server.anonymous().recover("not-a-token", NEW_PASSWORD).await.unwrap_err();
    for e in [&again, &unknown, &garbage] {
        assert_eq!((code(e), e.status(), e.to_string()), (code(&again), Some(400), again.to_string()));
    }
    assert_eq!(code(&again), "token.invalid");
    assert_eq!(http().get(&page_url).send().await.unwrap().status(), 400);

    // Audited: who issued, who redeemed, from where; the token nowhere.
    let sysadmin = server.sysadmin().await;
    let issued = sysadmin.audit(&AuditQuery { action: Some("credential.recovery_link.issue".into()), ..Default::default() }).await.unwrap();
    assert_eq!(issued.items.len(), 1);
    assert_eq!(issued.items[0].actor_name.as_deref(), Some("idm_admin"));
    assert_eq!(issued.items[0].target_name.as_deref(), Some("alice"));
    let redeemed =
        sysadmin.audit(&AuditQuery { action: Some("credential.recovery_link.redeem".into()), ..Default::default() }).await.unwrap();
    assert_eq!(redeemed.items.len(), 1);
    let event = &redeemed.items[0];
    assert_eq!(event.actor_name.as_deref(), Some("alice"));
    assert_eq!(event.details["issued_by"], serde_json::json!(warden_core::model::IDM_ADMIN_ID));
    assert_eq!(event.details["client"], serde_json::json!("127.0.0.1"));
    assert_eq!(event.details["sessions_ended"], serde_json::json!(1));
    let body = token.trim_start_matches("wdo_");
    for e in issued.items.iter().chain(&redeemed.items) {
        assert!(!e.details.to_string().contains(body), "the token is in the audit details");
    }
    let log = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    // (What the server logs is caught here when its callsites are enabled for this thread; the
    // CLI's end-to-end test greps a real wardend's debug log as well.)
    assert!(log.contains("capture probe"), "the log is captured: {log}");
    assert!(!log.contains(body), "the token is in the log");
    // Nor in the database files (the WAL included).
    let url = &server.running.context.config.database.url;
    let db = url.strip_prefix("sqlite://").unwrap();
    for file in [db.to_owned(), format!("{db}-wal")] {
        if let Ok(bytes) = std::fs::read(&file) {
            assert!(!bytes.windows(body.len()).any(|w| w == body.as_bytes()), "the token is in {file}");
        }
    }
}

#[tokio::test]
async fn links_expire_and_a_newer_one_ends_the_older() {
    let server = start().await;
    let idm = server.idm().await;
    idm.create_user(&user("bob")).await.unwrap();
    let first = token_of(idm.recovery_link("bob", None).await.unwrap().url.expose());
    let second = token_of(idm.recovery_link("bob", Some("2h")).await.unwrap().url.expose());
    assert_eq!(
        code(&server.anonymous().recover(&first, NEW_PASSWORD).await.unwrap_err()),
        "token.invalid",
        "the newer link ends the older"
    );
    server.clock.advance(Duration::hours(2));
    assert_eq!(code(&server.anonymous().recover(&second, NEW_PASSWORD).await.unwrap_err()), "token.invalid", "expired");
    let idm = server.idm().await; // the earlier session timed out meanwhile
    let third = token_of(idm.recovery_link("bob", None).await.unwrap().url.expose());
    server.clock.advance(Duration::minutes(59));
    server.anonymous().recover(&third, NEW_PASSWORD).await.unwrap();
}

#[tokio::test]
async fn the_page_form_redeems_with_its_csrf_token() {
    let server = start().await;
    let idm = server.idm().await;
    idm.create_user(&user("dora")).await.unwrap();
    let token = token_of(idm.recovery_link("dora", None).await.unwrap().url.expose());
    let page = http().get(format!("{}/recover?token={token}", server.url)).send().await.unwrap();
    let cookie = page.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let html = page.text().await.unwrap();
    let csrf = html.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let post = |csrf: String, cookie: Option<String>| {
        let mut request = http().post(format!("{}/recover", server.url));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        // Tokens and CSRF tokens are hex with a prefix; the password's spaces are `+`.
        let body = format!("token={token}&password={}&csrf={csrf}", NEW_PASSWORD.replace(' ', "+"));
        request.header("content-type", "application/x-www-form-urlencoded").body(body).send()
    };
    // Without the cookie (another site's form): refused, the link kept.
    assert_eq!(post(csrf.clone(), None).await.unwrap().status(), 403);
    let done = post(csrf.clone(), Some(cookie.clone())).await.unwrap();
    assert_eq!(done.status(), 200);
    assert!(done.text().await.unwrap().contains("Password set"));
    server.anonymous().login("dora", NEW_PASSWORD).await.unwrap();
    assert_eq!(post(csrf, Some(cookie)).await.unwrap().status(), 400, "used");
}
