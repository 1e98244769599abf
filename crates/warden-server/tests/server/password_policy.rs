//! Password quality wherever a password is set (administrator create and reset, the Kratos
//! compat create, registration, recovery links, self-service change), never at sign-in; the
//! administrator's unlock of a soft-locked name; the per-client limits on registration and
//! recovery links.

use warden_client::{AuditQuery, ClientError};
use warden_core::api::{CreateBinding, CreateUser, RegisterRequest};
use warden_core::credential::Secret;
use warden_server::config::RegistrationMode;

use crate::api::{PgDatabase, TestServer, role, user};
use crate::forward_auth::http;

const STRONG: &str = "violet tractor spoon gallery";

/// The problem's code, status and detail.
fn problem(e: &ClientError) -> (String, u16, String) {
    let ClientError::Api(p) = e else { panic!("expected a problem, got {e:?}") };
    (p.code.clone(), p.status, p.detail.clone().unwrap_or_default())
}

fn with_password(name: &str, password: &str, emails: &[&str]) -> CreateUser {
    CreateUser { password: Some(Secret::new(password)), emails: emails.iter().map(|e| (*e).into()).collect(), ..user(name) }
}

#[tokio::test]
async fn administrators_set_only_passwords_that_meet_the_policy() {
    let server = TestServer::start().await;
    let idm = server.idm().await;
    let cases = [
        ("short-1", "Vk3#pLq9!zR", "is too short: at least 12 characters"),
        ("weak-1", "aaaaaaaaaaaaaaaa", "is too easy to guess ("),
        ("zephyrine", "violet ZEPHYRINE spoon", "contains your account name or e-mail address"),
        ("mdx", "gallery marguerite.duras tractor", "contains your account name or e-mail address"),
        ("common-1", "qwerty123456", "is on the list of common passwords"),
    ];
    for (name, password, why) in cases {
        let e = idm.create_user(&with_password(name, password, &["Marguerite.Duras@example.org"])).await.unwrap_err();
        let (code, status, detail) = problem(&e);
        assert_eq!((code.as_str(), status), ("validation", 400), "{name}");
        assert!(detail.contains("password") && detail.contains(why), "{name}: {detail}");
        assert!(!detail.contains(password), "the password is never echoed: {detail}");
        assert_eq!(problem(&idm.get_user(name).await.unwrap_err()).1, 404, "{name} was not created");
    }
    let over = "x7Q!".repeat(256) + "y";
    assert!(problem(&idm.create_user(&with_password("long-1", &over, &[])).await.unwrap_err()).2.contains("at most 1024 bytes"));

    idm.create_user(&with_password("zephyrine", STRONG, &["z@example.org"])).await.unwrap();
    let e = idm.set_password("zephyrine", "Zephyrine's new one!").await.unwrap_err();
    assert!(problem(&e).2.contains("contains your account name"), "{e}");
    let e = idm.set_password("zephyrine", "password123").await.unwrap_err();
    assert!(problem(&e).2.contains("too short"), "{e}");
    server.anonymous().login("zephyrine", STRONG).await.expect("the refused reset changed nothing");
    idm.set_password("zephyrine", "orchid lantern basalt river").await.unwrap();
    server.anonymous().login("zephyrine", "orchid lantern basalt river").await.unwrap();
}

#[tokio::test]
async fn existing_and_imported_passwords_keep_working_at_sign_in() {
    let server = TestServer::start().await;
    let idm = server.idm().await;
    // An imported bcrypt hash is no new password: it signs in, weak as it is.
    let imported = bcrypt::hash("password", 4).unwrap();
    idm.create_user(&with_password("legacy", &imported, &[])).await.unwrap();
    server.anonymous().login("legacy", "password").await.unwrap();
}

#[tokio::test]
async fn the_kratos_compat_create_follows_the_policy() {
    let server = TestServer::start().await;
    let token = server.token_for("idm_admin").await;
    let create = |password: &str| {
        serde_json::json!({
            "schema_id": "default",
            "traits": { "email": "kim@example.org", "username": "kimberly" },
            "credentials": { "password": { "config": { "password": password } } },
        })
    };
    let url = format!("{}/compat/kratos/identities", server.url);
    let refused = http().post(&url).bearer_auth(&token).json(&create("kimberly 2024!!")).send().await.unwrap();
    assert_eq!(refused.status(), 400);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert!(body.to_string().contains("contains your account name"), "{body}");
    let created = http().post(&url).bearer_auth(&token).json(&create(STRONG)).send().await.unwrap();
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());
    server.anonymous().login("kimberly", STRONG).await.unwrap();
}

fn registering(name: &str, password: &str) -> RegisterRequest {
    RegisterRequest {
        token: None,
        name: name.into(),
        password: Secret::new(password),
        email: Some(format!("{name}.home@example.com")),
        display_name: None,
        first_name: None,
        last_name: None,
    }
}

#[tokio::test]
async fn registration_refuses_weak_passwords_and_limits_each_client() {
    let server = TestServer::start_with(|c| {
        c.registration.mode = RegistrationMode::Public;
        c.auth.registration_per_client = 3;
    })
    .await;
    let anonymous = server.anonymous();
    for (password, why) in [("1qaz2wsx3edc", "is on the list of common passwords"), ("quentin.home 4ever", "contains your account name")] {
        let e = anonymous.register(&registering("quentin", password)).await.unwrap_err();
        assert_eq!(problem(&e).0, "validation");
        assert!(problem(&e).2.contains(why), "{e}");
    }
    anonymous.register(&registering("quentin", STRONG)).await.unwrap();
    anonymous.login("quentin", STRONG).await.unwrap();
    // Three attempts in the window, refused ones included; the fourth is turned away before
    // anything is looked at, with the seconds until the window ends.
    let url = format!("{}/api/v1/register", server.url);
    let body = serde_json::json!({ "name": "rosalind", "password": STRONG });
    let limited = http().post(&url).json(&body).send().await.unwrap();
    assert_eq!(limited.status(), 429);
    let retry: i64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry), "{retry}");
    let body: serde_json::Value = limited.json().await.unwrap();
    assert_eq!(body["code"], "auth.rate_limited");
    assert_eq!(problem(&server.idm().await.get_user("rosalind").await.unwrap_err()).1, 404);
    // A new window lets the client in again.
    server.clock.advance(time::Duration::hours(1));
    anonymous.register(&registering("rosalind", STRONG)).await.unwrap();
}

#[tokio::test]
async fn recovery_links_refuse_weak_passwords_and_limit_each_client() {
    let server = TestServer::start_with(|c| {
        c.auth.recovery_per_client = 4;
        c.server.public_url = Some("https://id.example.test".into());
    })
    .await;
    let idm = server.idm().await;
    idm.create_user(&with_password("theodora", STRONG, &["teddy@example.org"])).await.unwrap();
    let link = idm.recovery_link("theodora", None).await.unwrap();
    let url = link.url.expose().to_owned();
    let token = url.split_once("token=").unwrap().1;
    let anonymous = server.anonymous();
    for (password, why) in [("short", "is too short"), ("violet TEDDY tractor spoon", "contains your account name or e-mail address")] {
        let e = anonymous.recover(token, password).await.unwrap_err();
        assert!(problem(&e).2.contains(why), "{e}");
    }
    // A refused password does not use the link up.
    anonymous.recover(token, "orchid lantern basalt river").await.unwrap();
    anonymous.login("theodora", "orchid lantern basalt river").await.unwrap();
    // Three attempts so far; a fourth (a spent link) counts, the fifth is turned away.
    assert_eq!(problem(&anonymous.recover(token, STRONG).await.unwrap_err()).0, "token.invalid");
    let recover_url = format!("{}/api/v1/auth/recover", server.url);
    let limited = http().post(&recover_url).json(&serde_json::json!({ "token": token, "password": STRONG })).send().await.unwrap();
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    let body: serde_json::Value = limited.json().await.unwrap();
    assert_eq!(body["code"], "auth.rate_limited");
    // The link's page says so too, as a page (not a server error), and shows the minimum.
    let fresh = idm.recovery_link("theodora", None).await.unwrap();
    let token = fresh.url.expose().split_once("token=").unwrap().1.to_owned();
    let page = http().get(format!("{}/recover?token={token}", server.url)).send().await.unwrap();
    let cookie = page.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let html = page.text().await.unwrap();
    assert!(html.contains("minlength=\"12\""), "{html}");
    let csrf = html.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let form = format!("token={token}&password=violet+tractor+spoon+gallery&csrf={csrf}");
    let limited = http()
        .post(format!("{}/recover", server.url))
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    assert!(limited.text().await.unwrap().contains("Too many attempts"));
}

#[tokio::test]
async fn a_self_service_change_names_the_new_field() {
    let server = TestServer::start().await;
    server.idm().await.create_user(&with_password("ursula", STRONG, &[])).await.unwrap();
    let session = server.anonymous().login("ursula", STRONG).await.unwrap();
    let ursula = server.anonymous().with_bearer(session.token.expose());
    let e = ursula.change_own_password(STRONG, "Ursula forever and ever").await.unwrap_err();
    let (code, _, detail) = problem(&e);
    assert_eq!(code, "validation");
    assert!(detail.contains("new") && detail.contains("contains your account name"), "{detail}");
    let e = ursula.change_own_password(STRONG, "abcdefghijklmnop").await.unwrap_err();
    assert!(problem(&e).2.contains("too easy to guess"), "{e}");
    ursula.change_own_password(STRONG, "orchid lantern basalt river").await.unwrap();
}

#[tokio::test]
async fn operators_tighten_the_policy_in_configuration() {
    let server = TestServer::start_with(|c| c.auth.password_min_length = 30).await;
    let idm = server.idm().await;
    let e = idm.create_user(&with_password("vera", STRONG, &[])).await.unwrap_err();
    assert!(problem(&e).2.contains("is too short: at least 30 characters"), "{e}");
    let e = idm.create_user(&with_password("vera", "orchid lantern basalt river", &[])).await.unwrap_err();
    assert!(problem(&e).2.contains("too short"), "{e}");
    idm.create_user(&with_password("vera", "orchid lantern basalt river gallery", &[])).await.unwrap();
    // The recovery the host performs still hands out a password long enough.
    let password = warden_server::services::recovery::recover_account(&server.running.context, "admin").await.unwrap();
    assert!(password.expose().len() >= 30);
    server.anonymous().login("admin", password.expose()).await.unwrap();
}

#[tokio::test]
async fn the_denylist_file_is_read_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("denied.txt");
    std::fs::write(&list, "# ours\n\nOrchid Lantern Basalt River\n").unwrap();
    let server = TestServer::start_with(|c| c.auth.password_denylist_file = Some(list.clone())).await;
    let e = server.idm().await.create_user(&with_password("wanda", "orchid lantern basalt river", &[])).await.unwrap_err();
    assert!(problem(&e).2.contains("is on the list of common passwords"), "{e}");
    // A missing file stops the server from starting.
    let mut config = warden_server::config::Config::default();
    config.auth.password_denylist_file = Some(dir.path().join("absent.txt"));
    assert!(config.password_policy().is_err());
}

// --- unlock ---------------------------------------------------------------------------------------

async fn locked_out(server: &TestServer, name: &str) {
    for _ in 0..5 {
        let _ = server.anonymous().login(name, "not the password").await;
    }
    let e = server.anonymous().login(name, STRONG).await.unwrap_err();
    assert_eq!((problem(&e).0.as_str(), problem(&e).1), ("auth.rate_limited", 429), "{name} is locked");
}

async fn unlock_flow(server: TestServer) {
    let idm = server.idm().await;
    idm.create_user(&with_password("yolanda", STRONG, &[])).await.unwrap();
    locked_out(&server, "yolanda").await;

    // Who may not write credentials may not unlock; a person may not unlock themselves.
    let anonymous_e = server.anonymous().unlock_user("yolanda").await.unwrap_err();
    assert_eq!(problem(&anonymous_e).1, 401);
    idm.create_user(&with_password("xavier", STRONG, &[])).await.unwrap();
    let xavier = server.anonymous().with_bearer(server.anonymous().login("xavier", STRONG).await.unwrap().token.expose());
    assert_eq!(problem(&xavier.unlock_user("yolanda").await.unwrap_err()).1, 403);
    assert_eq!(problem(&server.anonymous().login("yolanda", STRONG).await.unwrap_err()).0, "auth.rate_limited", "still locked");

    idm.unlock_user("yolanda").await.unwrap();
    server.anonymous().login("yolanda", STRONG).await.expect("the lock is lifted");
    let events =
        server.sysadmin().await.audit(&AuditQuery { action: Some("credential.unlock".into()), ..Default::default() }).await.unwrap();
    let event = events.items.iter().find(|e| e.target_name.as_deref() == Some("yolanda")).expect("the unlock is audited");
    assert_eq!(event.actor_name.as_deref(), Some("idm_admin"));
    assert_eq!(event.details["name"], "yolanda");
    assert!(event.details["failures_cleared"].as_u64().unwrap() >= 5, "{}", event.details);

    // An unknown name is not_found to who may read users.
    assert_eq!(problem(&idm.unlock_user("nobody-here").await.unwrap_err()).1, 404);
    // An administrator (a holder of an administrative role) is unlocked only by an idm_superuser.
    let e = idm.unlock_user("admin").await.unwrap_err();
    assert_eq!((problem(&e).0.as_str(), problem(&e).1), ("account.high_privilege", 403));
}

#[tokio::test]
async fn an_administrator_unlocks_a_locked_name() {
    unlock_flow(TestServer::start().await).await;
}

#[tokio::test]
async fn an_administrator_unlocks_a_locked_name_on_postgres() {
    let db = PgDatabase::create("unlock");
    unlock_flow(TestServer::start_with(|c| c.database.url = db.url()).await).await;
}

#[tokio::test]
async fn unlocking_tells_who_may_not_read_users_nothing_about_names() {
    let server = TestServer::start().await;
    // A role that grants power over Warden is made by an idm_superuser.
    let admin = server.superuser().await;
    let idm = server.idm().await;
    admin.create_role(&role("lock-desk", "Lock desk", &["warden:credentials:write"])).await.unwrap();
    idm.create_user(&with_password("wilma", STRONG, &[])).await.unwrap();
    admin.create_binding(&CreateBinding { role: "lock-desk".into(), subject: "user:wilma".into(), ..Default::default() }).await.unwrap();
    let session = server.anonymous().login("wilma", STRONG).await.unwrap();
    let wilma = server.anonymous().with_bearer(session.token.expose());
    wilma.reauth(STRONG).await.unwrap();
    // lock-desk grants power over Warden: its holder must use a second factor.
    server.enrol_totp(&wilma, STRONG).await;
    idm.create_user(&with_password("yves", STRONG, &[])).await.unwrap();
    locked_out(&server, "yves").await;
    locked_out(&server, "made-up-name").await;
    // The same answer for a real and a made-up name; both are unlocked.
    wilma.unlock_user("yves").await.unwrap();
    wilma.unlock_user("made-up-name").await.unwrap();
    server.anonymous().login("yves", STRONG).await.unwrap();
    let e = server.anonymous().login("made-up-name", STRONG).await.unwrap_err();
    assert_eq!(problem(&e).1, 401, "no longer locked, and still no one");
}
