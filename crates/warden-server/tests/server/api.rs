//! The REST API: a real server on an ephemeral port, a real SQLite database in a temporary
//! directory, a manual clock, driven through `warden-client`.

use std::sync::Arc;

use time::{Duration, OffsetDateTime};
use warden_client::{AuditQuery, Client, ClientError, ListQuery, MembersQuery};
use warden_core::api::{CreateApiToken, CreateGroup, CreateServiceAccount, CreateUser, UpdateUser};
use warden_server::clock::{Clock, ManualClock};
use warden_server::config::Config;
use warden_server::services::recovery;

pub struct TestServer {
    pub running: warden_server::Running,
    pub clock: Arc<ManualClock>,
    pub url: String,
    pub admin_url: Option<String>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        Self::try_start_with(tweak).await.unwrap()
    }

    /// As [`Self::start_with`], with the start's failure (a port taken meanwhile) returned.
    pub async fn try_start_with(tweak: impl FnOnce(&mut Config)) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config::default();
        config.server.listen = "127.0.0.1:0".parse().unwrap();
        config.database.url = format!("sqlite://{}/warden.db", dir.path().display());
        config.server.control_socket = dir.path().join("wardend.sock");
        config.auth.argon2.memory_kib = 64;
        config.auth.argon2.iterations = 1;
        config.mail.outbox_dir = dir.path().join("outbox");
        config.mail.poll_interval = "1s".into();
        tweak(&mut config);
        let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
        let running = warden_server::start(config, clock.clone(), false).await?;
        let url = format!("http://{}", running.public_addr);
        let admin_url = running.admin_addr.map(|a| format!("http://{a}"));
        Ok(Self { running, clock, url, admin_url, _dir: dir })
    }

    pub fn anonymous(&self) -> Client {
        Client::new(self.admin_url.as_deref().unwrap_or(&self.url)).unwrap()
    }

    /// Recovers a break-glass account as the host would, logs in, re-authenticates to open the
    /// write window, and returns the session token.
    pub async fn token_for(&self, account: &str) -> String {
        let password = recovery::recover_account(&self.running.context, account).await.unwrap();
        let token = self.anonymous().login(account, password.expose()).await.unwrap().token.expose().to_owned();
        self.anonymous().with_bearer(&token).reauth(password.expose()).await.unwrap();
        token
    }

    /// A client holding a fresh, elevated `idm_admin` session (users, groups, service accounts).
    pub async fn idm(&self) -> Client {
        self.anonymous().with_bearer(self.token_for("idm_admin").await)
    }

    /// A client holding a fresh, elevated `admin` session (roles, bindings, tenants, audit).
    pub async fn sysadmin(&self) -> Client {
        self.anonymous().with_bearer(self.token_for("admin").await)
    }

    /// A person made idm_superuser from the host, logged in and elevated.
    pub async fn superuser(&self) -> Client {
        let idm = self.idm().await;
        idm.create_user(&user("root")).await.unwrap();
        recovery::set_superuser(&self.running.context, "root", true).await.unwrap();
        let token = self.anonymous().login("root", "correct horse battery").await.unwrap().token;
        let root = self.anonymous().with_bearer(token.expose());
        root.reauth("correct horse battery").await.unwrap();
        // An idm_superuser must use a second factor (auth.mfa_required_for_admin_roles, on by
        // default): enrol one and prove it, as a person would, so that the session may act.
        // With the policy off, root keeps the password alone (tests that use Basic need it).
        if root.whoami().await.unwrap().mfa_enrolment_required {
            self.enrol_totp(&root, "correct horse battery").await;
        }
        root
    }

    /// Enrols TOTP for the elevated session `me` (codes from pyotp) and re-authenticates with
    /// a code, so that the session records `password+totp`; returns the secret. The confirming
    /// code is the current step's, the re-authentication's the next (used steps are refused).
    pub async fn enrol_totp(&self, me: &Client, password: &str) -> String {
        let secret = me.begin_totp(&warden_core::api::BeginTotp::default()).await.unwrap().secret.expose().to_owned();
        let now = self.clock.now().unix_timestamp();
        me.confirm_totp(&crate::second_factor::pyotp(&secret, now, 6, "sha1")).await.unwrap();
        me.reauth_with_totp(password, &crate::second_factor::pyotp(&secret, now + 30, 6, "sha1")).await.unwrap();
        secret
    }
}

/// A role with a given id, name and permissions in the default tenant.
pub fn role(id: &str, name: &str, permissions: &[&str]) -> CreateRole {
    CreateRole {
        id: Some(id.into()),
        name: name.into(),
        permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
        ..CreateRole::default()
    }
}

pub fn user(name: &str) -> CreateUser {
    CreateUser { name: name.into(), password: Some(warden_core::credential::Secret::new("correct horse battery")), ..CreateUser::default() }
}

fn code(e: &ClientError) -> &str {
    e.code()
}

#[tokio::test]
async fn break_glass_accounts_have_no_credential_until_recovered() {
    let server = TestServer::start().await;
    for name in ["admin", "idm_admin"] {
        let e = server.anonymous().login(name, "").await.unwrap_err();
        assert_eq!(code(&e), "auth.failed");
    }
    let admin = server.sysadmin().await;
    let me = admin.whoami().await.unwrap();
    assert_eq!(me.account.name.as_str(), "admin");
    assert!(me.permissions.contains(&"warden:roles:write".to_owned()));
    assert!(!me.permissions.contains(&"warden:users:write".to_owned()), "admin does not manage people");
    let idm = server.idm().await;
    let me = idm.whoami().await.unwrap();
    assert!(me.permissions.contains(&"warden:users:write".to_owned()));
    assert!(!me.permissions.contains(&"warden:roles:write".to_owned()));
    // Recovery again ends the earlier session.
    recovery::recover_account(&server.running.context, "admin").await.unwrap();
    assert_eq!(code(&admin.whoami().await.unwrap_err()), "unauthenticated");
    let query = AuditQuery { action: Some("account.recover".into()), target: Some("admin".into()), ..Default::default() };
    let audit = server.sysadmin().await.audit(&query).await.unwrap();
    assert_eq!(audit.items.len(), 3, "two logins and the explicit recovery");
    assert!(audit.items.iter().all(|e| e.actor_id.is_none() && e.target_name.as_deref() == Some("admin")));
    let e = recovery::recover_account(&server.running.context, "alice").await.unwrap_err();
    assert_eq!(e.code(), "validation");
}

#[tokio::test]
async fn login_logout_and_sessions_expire() {
    let server = TestServer::start().await;
    let admin = server.idm().await;
    admin.create_user(&user("alice")).await.unwrap();
    let login = server.anonymous().login("Alice", "correct horse battery").await.unwrap();
    assert!(login.token.expose().starts_with("wds_"));
    let alice = server.anonymous().with_bearer(login.token.expose());
    assert_eq!(alice.whoami().await.unwrap().account.name.as_str(), "alice");
    alice.logout().await.unwrap();
    assert_eq!(code(&alice.whoami().await.unwrap_err()), "unauthenticated");

    // Idle timeout (1h by default): used within the hour stays alive, then lapses.
    let login = server.anonymous().login("alice", "correct horse battery").await.unwrap();
    let alice = server.anonymous().with_bearer(login.token.expose());
    server.clock.advance(Duration::minutes(50));
    alice.whoami().await.unwrap();
    server.clock.advance(Duration::minutes(50));
    alice.whoami().await.unwrap();
    server.clock.advance(Duration::minutes(61));
    assert_eq!(code(&alice.whoami().await.unwrap_err()), "unauthenticated");

    // Absolute lifetime (12h) even when used constantly.
    let login = server.anonymous().login("alice", "correct horse battery").await.unwrap();
    let alice = server.anonymous().with_bearer(login.token.expose());
    for _ in 0..12 {
        server.clock.advance(Duration::minutes(59));
        alice.whoami().await.unwrap();
    }
    server.clock.advance(Duration::minutes(13));
    assert_eq!(code(&alice.whoami().await.unwrap_err()), "unauthenticated");

    // Garbage and unknown tokens.
    for token in ["nonsense", "wds_0000", &format!("wds_{}", "0".repeat(64)), &format!("wdn_{}", "0".repeat(64))] {
        assert_eq!(code(&server.anonymous().with_bearer(token).whoami().await.unwrap_err()), "unauthenticated");
    }
    assert_eq!(code(&server.anonymous().whoami().await.unwrap_err()), "unauthenticated");
}

/// Expired sessions are deleted in the background, in one audited change by the server
/// itself; live ones stay.
#[tokio::test]
async fn expired_sessions_are_purged() {
    let server = TestServer::start_with(|c| c.auth.session_purge_interval = "1s".into()).await;
    server.idm().await.create_user(&user("alice")).await.unwrap();
    let login = server.anonymous().login("alice", "correct horse battery").await.unwrap();
    server.clock.advance(Duration::hours(2));
    let admin = server.sysadmin().await;
    let query = AuditQuery { action: Some("session.purge".into()), ..Default::default() };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let event = loop {
        if let Some(event) = admin.audit(&query).await.unwrap().items.into_iter().next() {
            break event;
        }
        assert!(std::time::Instant::now() < deadline, "no purge within 10 s");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(event.actor_id, None, "the server acts itself");
    // alice's session and the administrators' sessions opened before the clock moved.
    assert!(event.details["count"].as_u64().is_some_and(|n| n >= 2), "{:?}", event.details);
    assert_eq!(code(&server.anonymous().with_bearer(login.token.expose()).whoami().await.unwrap_err()), "unauthenticated");
    admin.whoami().await.expect("a live session is kept");
}

#[tokio::test]
async fn unknown_user_and_wrong_password_are_indistinguishable_and_guessing_locks() {
    let server = TestServer::start().await;
    let admin = server.idm().await;
    admin.create_user(&user("alice")).await.unwrap();
    let wrong = server.anonymous().login("alice", "wrong password!").await.unwrap_err();
    let unknown = server.anonymous().login("nobody", "wrong password!").await.unwrap_err();
    let (ClientError::Api(a), ClientError::Api(b)) = (&wrong, &unknown) else { panic!("expected problems") };
    assert_eq!((a.status, &a.code, &a.detail), (b.status, &b.code, &b.detail));
    assert_eq!(a.status, 401);

    // Soft lock after 5 failures per name, for real and made-up names alike.
    for name in ["alice", "nobody"] {
        for _ in 0..4 {
            let _ = server.anonymous().login(name, "still wrong").await;
        }
        let e = server.anonymous().login(name, "correct horse battery").await.unwrap_err();
        assert_eq!(code(&e), "auth.rate_limited", "{name}");
        assert_eq!(e.status(), Some(429));
    }
    // A break-glass account locked by guessing: recovery on the host lifts its lock.
    for _ in 0..5 {
        let _ = server.anonymous().login("admin", "a guess").await;
    }
    assert_eq!(code(&server.anonymous().login("admin", "a guess").await.unwrap_err()), "auth.rate_limited");
    let admin = server.sysadmin().await; // recovers admin and signs in
    server.clock.advance(Duration::minutes(16));
    server.anonymous().login("alice", "correct horse battery").await.unwrap();
    let failures = admin.audit(&AuditQuery { action: Some("auth.login.failed".into()), ..Default::default() }).await.unwrap();
    assert_eq!(failures.items.len(), 15);
}

/// A client that sprays guesses over many names is locked out as a whole; logging in to an
/// account whose password it knows clears that name's failures, never the client's.
#[tokio::test]
async fn a_known_password_does_not_reset_a_clients_guesses() {
    let server = TestServer::start_with(|c| c.auth.max_failed_logins_per_client = 6).await;
    server.idm().await.create_user(&user("mallory")).await.unwrap();
    let client: std::net::IpAddr = "203.0.113.66".parse().unwrap();
    let auth = &server.running.context;
    let auth = warden_server::services::auth::Auth::new(auth.clone(), warden_server::services::directory::Directory::new(auth.clone()));
    let password = warden_core::credential::Secret::new("correct horse battery");
    let wrong = warden_core::credential::Secret::new("a guess");
    for (i, name) in ["victim-1", "victim-2", "victim-3"].iter().enumerate() {
        for _ in 0..2 {
            assert!(auth.verify_password(name, &wrong, Some(client)).await.is_err());
        }
        if i < 2 {
            auth.verify_password("mallory", &password, Some(client)).await.expect("mallory knows her own password");
        }
    }
    let locked = auth.verify_password("victim-4", &wrong, Some(client)).await.unwrap_err();
    assert_eq!(locked.code(), "auth.rate_limited", "six failures from one client, whatever succeeded between them");
    let other: std::net::IpAddr = "198.51.100.1".parse().unwrap();
    auth.verify_password("mallory", &password, Some(other)).await.expect("another client is not locked");
}

#[tokio::test]
async fn basic_auth_and_bcrypt_import_upgrade() {
    let server = TestServer::start().await;
    let admin = server.idm().await;
    let bcrypt_hash = bcrypt::hash("imported-secret-1", 4).unwrap();
    let mut bob = user("bob");
    bob.password = Some(warden_core::credential::Secret::new(bcrypt_hash));
    let created = admin.create_user(&bob).await.unwrap();
    assert!(created.has_password);
    let store = &server.running.context.store;
    assert!(store.password_hash(created.id).await.unwrap().unwrap().starts_with("$2b$"));
    let basic = server.anonymous().with_basic("bob", "imported-secret-1");
    assert_eq!(basic.whoami().await.unwrap().account.name.as_str(), "bob");
    let upgraded = store.password_hash(created.id).await.unwrap().unwrap();
    assert!(upgraded.starts_with("$argon2id$"), "re-hashed on first login: {upgraded}");
    basic.whoami().await.unwrap();
    assert_eq!(code(&server.anonymous().with_basic("bob", "imported-secret-2").whoami().await.unwrap_err()), "auth.failed");
    let rehash = server
        .sysadmin()
        .await
        .audit(&AuditQuery { action: Some("credential.password.rehash".into()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(rehash.items.len(), 1);
}

#[tokio::test]
async fn directory_changes_need_idm_rights() {
    let server = TestServer::start().await;
    let sysadmin = server.sysadmin().await;
    assert_eq!(code(&sysadmin.create_user(&user("eve")).await.unwrap_err()), "forbidden", "admin cannot create users");
    let admin = server.idm().await;
    admin.create_user(&user("alice")).await.unwrap();
    let alice = server.anonymous().with_basic("alice", "correct horse battery");
    let e = alice.create_user(&user("mallory")).await.unwrap_err();
    assert_eq!((code(&e), e.status()), ("forbidden", Some(403)));
    assert_eq!(code(&alice.list_users(&ListQuery::default()).await.unwrap_err()), "forbidden");
    assert_eq!(code(&alice.audit(&AuditQuery::default()).await.unwrap_err()), "forbidden");
    assert!(admin.get_user("mallory").await.is_err(), "nothing written");
    // The break-glass accounts are service accounts, not persons, and protected as such.
    for e in [admin.delete_user("admin").await.unwrap_err(), admin.disable_user("idm_admin").await.unwrap_err()] {
        assert_eq!(code(&e), "not_found");
    }
    let e = admin.delete_service_account("admin").await.unwrap_err();
    assert_eq!(code(&e), "account.protected");
    assert_eq!(code(&admin.rename_user("admin", "root").await.unwrap_err()), "not_found");
    let sa = admin.get_service_account("idm_admin").await.unwrap();
    assert!(sa.description.is_some(), "a description, no personal data");
    let token = CreateApiToken { read_write: true, ..Default::default() };
    assert_eq!(
        code(&admin.create_api_token("idm_admin", &token).await.unwrap_err()),
        "account.protected",
        "a password from the host, no tokens"
    );
}

#[tokio::test]
async fn users_crud_rename_disable_and_validation() {
    let server = TestServer::start().await;
    let admin = server.idm().await;
    let full = CreateUser {
        name: "Carol".into(),
        display_name: Some("Carol C.".into()),
        first_name: Some("Carol".into()),
        last_name: Some("Clark".into()),
        birthday: Some(time::macros::date!(1990 - 05 - 17)),
        emails: vec!["carol@example.org".into(), "cc@example.net".into()],
        phones: vec!["+49 30 123456".into()],
        avatar_url: Some("https://example.org/carol.png".into()),
        ..user("carol")
    };
    let carol = admin.create_user(&full).await.unwrap();
    assert_eq!(carol.name.as_str(), "carol");
    assert!(carol.profile.emails[0].primary && carol.profile.emails[0].address == "carol@example.org");
    assert_eq!(admin.get_user(&carol.id.to_string()).await.unwrap(), carol);

    let patch = UpdateUser { display_name: Some(None), emails: Some(vec!["new@example.org".into()]), ..UpdateUser::default() };
    let updated = admin.update_user("carol", &patch).await.unwrap();
    assert_eq!(updated.profile.display_name, None);
    assert_eq!(updated.profile.emails.len(), 1);
    assert_eq!(updated.profile.first_name.as_deref(), Some("Carol"));

    let renamed = admin.rename_user("carol", "carol.clark").await.unwrap();
    assert_eq!(renamed.id, carol.id);
    assert_eq!(code(&admin.get_user("carol").await.unwrap_err()), "not_found");
    admin.create_user(&user("dave")).await.unwrap();
    assert_eq!(code(&admin.rename_user("dave", "Carol.Clark").await.unwrap_err()), "name.taken");

    admin.disable_user("dave").await.unwrap();
    assert_eq!(code(&server.anonymous().login("dave", "correct horse battery").await.unwrap_err()), "auth.failed");
    admin.enable_user("dave").await.unwrap();
    server.anonymous().login("dave", "correct horse battery").await.unwrap();

    // Bad input: each a clear error, nothing written.
    let before = server.running.context.store.revision().await.unwrap();
    for (bad, expected) in [
        (user("1abc"), "validation"),
        (user("a b"), "validation"),
        (user("dave"), "name.taken"),
        (user("DAVE"), "name.taken"),
        (CreateUser { emails: vec!["not-an-email".into()], ..user("erin") }, "validation"),
        (CreateUser { password: Some(warden_core::credential::Secret::new("short")), ..user("erin") }, "validation"),
        (CreateUser { birthday: Some(time::macros::date!(2999 - 01 - 01)), ..user("erin") }, "validation"),
    ] {
        let e = admin.create_user(&bad).await.unwrap_err();
        assert_eq!(code(&e), expected, "{}", bad.name);
    }
    assert_eq!(server.running.context.store.revision().await.unwrap(), before, "refused requests wrote nothing");
    assert_eq!(code(&admin.get_user("erin").await.unwrap_err()), "not_found");

    admin.delete_user("dave").await.unwrap();
    assert_eq!(code(&admin.delete_user("dave").await.unwrap_err()), "not_found");
}

#[tokio::test]
async fn malformed_requests_get_problem_json() {
    let server = TestServer::start_with(|c| c.server.max_body_bytes = 4096).await;
    let token = server.token_for("idm_admin").await;
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/users", server.url);
    let send = |body: String, content_type: &'static str| {
        http.post(&url).bearer_auth(&token).header("content-type", content_type).body(body).send()
    };
    let cases = [
        (send("{bad json".into(), "application/json").await.unwrap(), 400, "json.malformed"),
        (send(r#"{"name":"x"}"#.into(), "text/plain").await.unwrap(), 415, "content_type.unsupported"),
        (
            send(format!(r#"{{"name":"x","display_name":"{}"}}"#, "a".repeat(8000)), "application/json").await.unwrap(),
            413,
            "body.too_large",
        ),
        (send(r#"{"name":"x","shoe_size":44}"#.into(), "application/json").await.unwrap(), 400, "validation"),
        (send(r#"{"name":42}"#.into(), "application/json").await.unwrap(), 400, "validation"),
        (http.get(format!("{}/api/v1/nope", server.url)).send().await.unwrap(), 404, "route.not_found"),
        (http.put(&url).bearer_auth(&token).send().await.unwrap(), 405, "method.not_allowed"),
        // A word in a name's place is no endpoint, not a wrong method on one.
        (http.post(format!("{url}/invite")).bearer_auth(&token).send().await.unwrap(), 404, "route.not_found"),
        (
            http.post(format!("{}/api/v1/groups/ops/members/alice", server.url)).bearer_auth(&token).send().await.unwrap(),
            404,
            "route.not_found",
        ),
        (http.get(format!("{}/api/v1/users?limit=lots", server.url)).bearer_auth(&token).send().await.unwrap(), 400, "validation"),
    ];
    for (response, status, code) in cases {
        assert_eq!(response.status().as_u16(), status, "{code}");
        assert_eq!(response.headers()["content-type"], "application/problem+json", "{code}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["code"], code);
        let text = body.to_string();
        assert!(!text.contains("sqlx") && !text.contains("SELECT") && !text.contains("panicked"), "{text}");
    }
    let unauth = http.get(&url).send().await.unwrap();
    assert_eq!(unauth.status().as_u16(), 401);
    assert!(unauth.headers()["www-authenticate"].to_str().unwrap().contains("Bearer"));
}

/// Effective members come from the authorization snapshot: page by page (limit 2, following
/// the cursors) they are exactly what the store's recursive query returns, through nestings,
/// un-nestings, renames, group and account deletions.
#[tokio::test]
async fn effective_members_from_the_snapshot_match_the_store_page_by_page() {
    let server = TestServer::start().await;
    let admin = server.idm().await;
    let store = server.running.context.store.clone();
    for name in ["alice", "bob", "carol", "dave", "erin"] {
        admin.create_user(&user(name)).await.unwrap();
    }
    admin.create_service_account(&CreateServiceAccount { name: "ci-bot".into(), ..Default::default() }).await.unwrap();
    for name in ["staff", "engineering", "platform", "alice", "ops"] {
        admin.create_group(&CreateGroup { name: name.into(), description: None }).await.unwrap();
    }
    admin.add_members("staff", &["user:alice".into(), "group:engineering".into(), "group:ops".into()]).await.unwrap();
    admin.add_members("engineering", &["bob".into(), "group:platform".into(), "group:alice".into(), "user:alice".into()]).await.unwrap();
    admin.add_members("platform", &["carol".into(), "sa:ci-bot".into()]).await.unwrap();
    admin.add_members("ops", &["group:platform".into(), "dave".into()]).await.unwrap();

    let compare = |stage: &'static str| {
        let (admin, store) = (admin.clone(), store.clone());
        async move {
            for group in ["staff", "engineering", "platform", "alice", "ops"] {
                let id = admin.get_group(group).await.unwrap().id;
                let mut cursor: Option<String> = None;
                let mut pages = 0;
                loop {
                    let query = MembersQuery { effective: true, cursor: cursor.clone(), limit: Some(2) };
                    let got = admin.group_members(group, &query).await.unwrap();
                    let sql = warden_store::ListQuery { prefix: None, after: cursor.clone(), limit: 2 };
                    let want = store.members(id, true, &sql).await.unwrap();
                    let show = |p: &warden_core::api::Page<warden_core::api::MemberEntry>| {
                        (p.items.iter().map(|m| (m.subject.to_string(), m.subject.id, m.direct)).collect::<Vec<_>>(), p.next_cursor.clone())
                    };
                    assert_eq!(show(&got), show(&want), "{stage}: {group} after {cursor:?}");
                    pages += 1;
                    match got.next_cursor {
                        Some(next) => cursor = Some(next),
                        None => break,
                    }
                }
                assert!(pages < 10, "{stage}: {group} pages end");
            }
        }
    };
    compare("nested").await;
    admin.remove_member("engineering", "group:platform").await.unwrap();
    admin.rename_user("dave", "aaron").await.unwrap();
    compare("un-nested and renamed").await;
    admin.delete_group("ops").await.unwrap();
    admin.create_group(&CreateGroup { name: "ops".into(), description: None }).await.unwrap();
    admin.delete_user("bob").await.unwrap();
    compare("deleted").await;
}

/// An account's groups, direct or effective, paged by name from the snapshot; an unknown
/// account is `404`, a caller without `groups:read` gets `403`, an oversized page `400`.
#[tokio::test]
async fn an_accounts_groups_direct_and_effective() {
    let server = TestServer::start().await;
    let admin = server.idm().await;
    admin.create_user(&user("alice")).await.unwrap();
    admin.create_service_account(&CreateServiceAccount { name: "ci-bot".into(), ..Default::default() }).await.unwrap();
    for name in ["staff", "engineering", "platform", "zeta"] {
        admin.create_group(&CreateGroup { name: name.into(), description: None }).await.unwrap();
    }
    admin.add_members("staff", &["group:engineering".into(), "user:alice".into()]).await.unwrap();
    admin.add_members("engineering", &["group:platform".into()]).await.unwrap();
    admin.add_members("platform", &["user:alice".into(), "sa:ci-bot".into()]).await.unwrap();

    let e = admin.user_groups("nobody", &MembersQuery::default()).await.unwrap_err();
    assert_eq!((code(&e), e.status()), ("not_found", Some(404)));
    let e = admin.service_account_groups("alice", &MembersQuery::default()).await.unwrap_err();
    assert_eq!(e.status(), Some(404), "alice is a user, not a service account");
    let e = admin.user_groups("alice", &MembersQuery { limit: Some(1001), ..Default::default() }).await.unwrap_err();
    assert_eq!(e.status(), Some(400));
    let alice = server.anonymous().login("alice", "correct horse battery").await.unwrap().token;
    let e = server.anonymous().with_bearer(alice.expose()).user_groups("alice", &MembersQuery::default()).await.unwrap_err();
    assert_eq!(e.status(), Some(403));

    let show = |p: warden_core::api::Page<warden_core::api::MemberEntry>| {
        p.items.into_iter().map(|m| (m.subject.to_string(), m.direct)).collect::<Vec<_>>()
    };
    let direct = admin.user_groups("alice", &MembersQuery::default()).await.unwrap();
    assert_eq!(show(direct), [("group:platform".to_owned(), true), ("group:staff".to_owned(), true)]);
    let query = MembersQuery { effective: true, limit: Some(2), ..Default::default() };
    let first = admin.user_groups("alice", &query).await.unwrap();
    assert_eq!(first.next_cursor.as_deref(), Some("platform/group"));
    assert_eq!(show(first), [("group:engineering".to_owned(), false), ("group:platform".to_owned(), true)]);
    let second = admin.user_groups("alice", &MembersQuery { cursor: Some("platform/group".into()), ..query.clone() }).await.unwrap();
    assert_eq!(second.next_cursor, None);
    assert_eq!(show(second), [("group:staff".to_owned(), true)]);
    let bot = admin.service_account_groups("ci-bot", &MembersQuery { effective: true, ..Default::default() }).await.unwrap();
    assert_eq!(bot.items.iter().map(|m| m.subject.name.to_string()).collect::<Vec<_>>(), ["engineering", "platform", "staff"]);

    // Un-nesting and deleting a group show at once.
    admin.remove_member("engineering", "group:platform").await.unwrap();
    admin.delete_group("staff").await.unwrap();
    let bot = admin.service_account_groups("ci-bot", &MembersQuery { effective: true, ..Default::default() }).await.unwrap();
    assert_eq!(show(bot), [("group:platform".to_owned(), true)]);
}

/// Concurrent nestings each see their own write at once: the refresh that serves one writer
/// serves the others committed before it, and nobody returns before the snapshot has it.
#[tokio::test]
async fn concurrent_nestings_read_their_own_writes() {
    let server = TestServer::start().await;
    let admin = server.idm().await;
    for i in 0..12 {
        admin.create_group(&CreateGroup { name: format!("parent{i}"), description: None }).await.unwrap();
        admin.create_group(&CreateGroup { name: format!("child{i}"), description: None }).await.unwrap();
    }
    let writers = (0..12).map(|i| {
        let admin = admin.clone();
        tokio::spawn(async move {
            admin.add_members(&format!("parent{i}"), &[format!("group:child{i}")]).await.unwrap();
            let members =
                admin.group_members(&format!("parent{i}"), &MembersQuery { effective: true, ..Default::default() }).await.unwrap();
            assert_eq!(members.items.iter().map(|m| m.subject.to_string()).collect::<Vec<_>>(), vec![format!("group:child{i}")]);
            admin.remove_member(&format!("parent{i}"), &format!("group:child{i}")).await.unwrap();
            let members =
                admin.group_members(&format!("parent{i}"), &MembersQuery { effective: true, ..Default::default() }).await.unwrap();
            assert!(members.items.is_empty());
        })
    });
    for writer in writers.collect::<Vec<_>>() {
        writer.await.unwrap();
    }
}

#[tokio::test]
async fn nested_groups_cycles_and_deletion() {
    let server = TestServer::start().await;
    let admin = server.idm().await;
    for name in ["alice", "bob", "carol"] {
        admin.create_user(&user(name)).await.unwrap();
    }
    admin.create_service_account(&CreateServiceAccount { name: "ci-bot".into(), ..Default::default() }).await.unwrap();
    for name in ["staff", "engineering", "platform"] {
        admin.create_group(&CreateGroup { name: name.into(), description: Some(format!("the {name}")) }).await.unwrap();
    }
    admin.add_members("staff", &["user:alice".into(), "group:engineering".into()]).await.unwrap();
    admin.add_members("engineering", &["bob".into(), "platform".into()]).await.unwrap();
    let added = admin.add_members("platform", &["carol".into(), "sa:ci-bot".into(), "carol".into()]).await.unwrap();
    assert_eq!(added.added, 2, "duplicates are skipped");

    let effective = admin.group_members("staff", &MembersQuery { effective: true, ..Default::default() }).await.unwrap();
    let names: std::collections::BTreeSet<(String, bool)> = effective.items.iter().map(|m| (m.subject.to_string(), m.direct)).collect();
    let expected = [
        ("user:alice", true),
        ("user:bob", false),
        ("user:carol", false),
        ("sa:ci-bot", false),
        ("group:engineering", true),
        ("group:platform", false),
    ]
    .map(|(n, d)| (n.to_owned(), d))
    .into();
    assert_eq!(names, expected);
    let direct = admin.group_members("staff", &MembersQuery::default()).await.unwrap();
    assert_eq!(direct.items.len(), 2);

    // Cycles are refused, and a failed batch writes nothing.
    let e = admin.add_members("platform", &["group:staff".into()]).await.unwrap_err();
    assert_eq!((code(&e), e.status()), ("group.cycle", Some(409)));
    assert_eq!(code(&admin.add_members("staff", &["group:staff".into()]).await.unwrap_err()), "group.cycle");
    let e = admin.add_members("staff", &["user:carol".into(), "user:nobody".into()]).await.unwrap_err();
    assert_eq!(code(&e), "not_found");
    assert_eq!(admin.get_group("staff").await.unwrap().member_count, 2, "carol was not added");

    // Ambiguous bare names.
    admin.create_group(&CreateGroup { name: "alice".into(), description: None }).await.unwrap();
    assert_eq!(code(&admin.add_members("staff", &["alice".into()]).await.unwrap_err()), "member.ambiguous");

    // Deleting a group removes memberships, never accounts.
    admin.delete_group("engineering").await.unwrap();
    let effective = admin.group_members("staff", &MembersQuery { effective: true, ..Default::default() }).await.unwrap();
    assert_eq!(effective.items.len(), 1);
    admin.get_user("bob").await.unwrap();
    assert_eq!(admin.group_members("platform", &MembersQuery::default()).await.unwrap().items.len(), 2);

    // Deleting an account removes it from every group.
    admin.delete_user("carol").await.unwrap();
    assert_eq!(admin.group_members("platform", &MembersQuery::default()).await.unwrap().items.len(), 1);
    admin.remove_member("platform", "sa:ci-bot").await.unwrap();
    assert_eq!(code(&admin.remove_member("platform", "sa:ci-bot").await.unwrap_err()), "not_found");
}

#[tokio::test]
async fn api_tokens_expire_and_revoke_and_never_leak() {
    let server = TestServer::start().await;
    let admin = server.idm().await;
    admin
        .create_service_account(&CreateServiceAccount { name: "ci-bot".into(), description: Some("CI".into()), managed_by: None })
        .await
        .unwrap();
    let created = admin
        .create_api_token("ci-bot", &CreateApiToken { label: Some("deploy".into()), expires_in: Some("1d".into()), ..Default::default() })
        .await
        .unwrap();
    let token = created.token.expose().to_owned();
    assert!(token.starts_with("wdn_"));
    let bot = server.anonymous().with_bearer(&token);
    let me = bot.whoami().await.unwrap();
    assert_eq!(me.account.name.as_str(), "ci-bot");
    assert_eq!(me.credential_id, Some(created.info.id));

    let listed = admin.list_api_tokens("ci-bot", &warden_client::PageQuery::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    assert!(listed.items[0].last_used_at.is_some());
    let listing = serde_json::to_string(&listed).unwrap();
    assert!(!listing.contains(&token[4..]), "token secret never listed");

    // Expiry.
    server.clock.advance(Duration::hours(25));
    assert_eq!(code(&bot.whoami().await.unwrap_err()), "unauthenticated");

    // Revocation (the admin's own session has expired too by now).
    let admin = server.idm().await;
    let second = admin.create_api_token("ci-bot", &CreateApiToken::default()).await.unwrap();
    let bot = server.anonymous().with_bearer(second.token.expose());
    bot.whoami().await.unwrap();
    admin.revoke_api_token("ci-bot", second.info.id).await.unwrap();
    assert_eq!(code(&bot.whoami().await.unwrap_err()), "unauthenticated");
    assert_eq!(code(&admin.revoke_api_token("ci-bot", second.info.id).await.unwrap_err()), "not_found");
    assert_eq!(
        code(
            &admin
                .create_api_token("ci-bot", &CreateApiToken { label: None, expires_in: Some("soon".into()), ..Default::default() })
                .await
                .unwrap_err()
        ),
        "validation"
    );

    // The audit log records token events without the secret.
    let events = server.sysadmin().await.audit(&AuditQuery { target: Some("ci-bot".into()), ..Default::default() }).await.unwrap();
    let text = serde_json::to_string(&events).unwrap();
    assert!(text.contains("api_token.create") && text.contains("api_token.revoke"));
    assert!(!text.contains(&token[4..]) && !text.contains(&second.token.expose()[4..]));
    assert!(!text.contains("argon2"));
}

#[tokio::test]
async fn lists_paginate_and_filter() {
    let server = TestServer::start().await;
    let admin = server.idm().await;
    for i in 0..25 {
        admin.create_user(&CreateUser { name: format!("user{i:02}"), ..CreateUser::default() }).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = admin.list_users(&ListQuery { prefix: Some("user".into()), cursor: cursor.clone(), limit: Some(10) }).await.unwrap();
        seen.extend(page.items.into_iter().map(|u| u.name.to_string()));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let expected: Vec<String> = (0..25).map(|i| format!("user{i:02}")).collect();
    assert_eq!(seen, expected);
    let page = admin.list_users(&ListQuery { prefix: Some("USER1".into()), ..Default::default() }).await.unwrap();
    assert_eq!(page.items.len(), 10);
    let page = admin.list_users(&ListQuery { limit: Some(1000), ..Default::default() }).await.unwrap();
    assert_eq!(page.items.len(), 25, "the break-glass accounts are service accounts, not users");
    let e = admin.list_users(&ListQuery { limit: Some(5000), ..Default::default() }).await.unwrap_err();
    assert_eq!(code(&e), "validation", "a page larger than 1000 is refused, not cut");
}

#[tokio::test]
async fn self_rename_follows_config() {
    let server = TestServer::start().await;
    let admin = server.idm().await;
    admin.create_user(&user("alice")).await.unwrap();
    let alice = server.anonymous().with_basic("alice", "correct horse battery");
    let renamed = alice.rename_self("alicia").await.unwrap();
    assert_eq!(renamed.name.as_str(), "alicia");
    // Not someone else, though.
    admin.create_user(&user("bob")).await.unwrap();
    let bob = server.anonymous().with_basic("bob", "correct horse battery");
    assert_eq!(code(&bob.rename_user("alicia", "bobby").await.unwrap_err()), "forbidden");

    let locked = TestServer::start_with(|c| c.auth.allow_username_change = false).await;
    locked.idm().await.create_user(&user("alice")).await.unwrap();
    let alice = locked.anonymous().with_basic("alice", "correct horse battery");
    assert_eq!(code(&alice.rename_self("alicia").await.unwrap_err()), "rename.disabled");
    locked.idm().await.rename_user("alice", "alicia").await.unwrap();
}

#[tokio::test]
async fn admin_listener_serves_management_only_there() {
    let server = TestServer::start_with(|c| c.server.admin_listen = Some("127.0.0.1:0".parse().unwrap())).await;
    let admin = server.idm().await; // talks to the admin listener
    admin.create_user(&user("alice")).await.unwrap();
    let token = {
        let pw = recovery::recover_account(&server.running.context, "idm_admin").await.unwrap();
        Client::new(&server.url).unwrap().login("idm_admin", pw.expose()).await.unwrap().token.expose().to_owned()
    };
    let public = Client::new(&server.url).unwrap().with_bearer(&token);
    public.whoami().await.unwrap();
    let e = public.list_users(&ListQuery::default()).await.unwrap_err();
    assert_eq!((code(&e), e.status()), ("route.not_found", Some(404)));
    let on_admin = Client::new(server.admin_url.as_deref().unwrap()).unwrap().with_bearer(&token);
    assert!(!on_admin.list_users(&ListQuery::default()).await.unwrap().items.is_empty());
}

/// The document is OpenAPI 3.1 with a description on every response and exactly the path
/// parameters of its templates (what openapi-spec-validator checks in scripts/schemathesis.sh,
/// among much else), declares the three credentials, tags every operation with
/// its resource and names the credentials each takes (all but sign-in).
#[tokio::test]
async fn openapi_declares_tags_and_security() {
    let server = TestServer::start_with(|c| c.forward_auth.cookie_name = "sso_session".into()).await;
    let doc: serde_json::Value = reqwest::get(format!("{}/api/v1/openapi.json", server.url)).await.unwrap().json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."), "{}", doc["openapi"]);
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!((&schemes["bearer"]["type"], &schemes["bearer"]["scheme"]), (&"http".into(), &"bearer".into()));
    assert_eq!((&schemes["basic"]["type"], &schemes["basic"]["scheme"]), (&"http".into(), &"basic".into()));
    let cookie = &schemes["session_cookie"];
    assert_eq!((&cookie["type"], &cookie["in"], &cookie["name"]), (&"apiKey".into(), &"cookie".into(), &"sso_session".into()));
    assert!(cookie["description"].as_str().unwrap().contains("/auth/forward"));
    let tags: std::collections::BTreeSet<&str> = doc["tags"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    let resources = [
        "audit",
        "auth",
        "authorization",
        "compat-kratos",
        "groups",
        "oidc",
        "oidc-provider",
        "registration",
        "self",
        "service-accounts",
        "sessions",
        "transfer",
        "users",
    ];
    assert_eq!(tags.into_iter().collect::<Vec<_>>(), resources);
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let what = format!("{method} {path}");
            let op_tags = op["tags"].as_array().unwrap_or_else(|| panic!("{what} has no tag"));
            assert!(op_tags.len() == 1 && resources.contains(&op_tags[0].as_str().unwrap()), "{what}: {op_tags:?}");
            for (status, response) in op["responses"].as_object().unwrap() {
                assert!(response["description"].as_str().is_some_and(|d| !d.is_empty()), "{what} {status} has no description");
            }
            let mut in_path: Vec<&str> = op["parameters"]
                .as_array()
                .map(|ps| ps.iter().filter(|p| p["in"] == "path").map(|p| p["name"].as_str().unwrap()).collect())
                .unwrap_or_default();
            let mut templated: Vec<&str> = path.split('/').filter_map(|part| part.strip_prefix('{')?.strip_suffix('}')).collect();
            in_path.sort_unstable();
            templated.sort_unstable();
            assert_eq!(in_path, templated, "{what}: path parameters");
            let schemes: Vec<Vec<&str>> = op["security"]
                .as_array()
                .map(|s| s.iter().map(|r| r.as_object().unwrap().keys().map(String::as_str).collect()).collect())
                .unwrap_or_default();
            let expected: Vec<Vec<&str>> = match path.as_str() {
                // The provider's endpoints: clients authenticate in the form or by HTTP Basic
                // (with a client secret, not a password); userinfo takes an access token.
                p if p.ends_with("/userinfo") => vec![vec!["bearer"]],
                p if p.starts_with("/oidc/") || p.starts_with("/.well-known/") => vec![],
                "/api/v1/auth/login"
                | "/api/v1/auth/recover"
                | "/api/v1/auth/forgot-password"
                | "/api/v1/auth/verify-email"
                | "/api/v1/auth/login/mfa"
                | "/api/v1/auth/passkey/begin"
                | "/api/v1/auth/passkey/finish"
                | "/api/v1/register" => vec![],
                "/api/v1/auth/logout" | "/api/v1/auth/reauth" | "/api/v1/auth/reauth/passkey" | "/api/v1/self/password" => {
                    vec![vec!["bearer"]]
                }
                _ => vec![vec!["bearer"], vec!["basic"]],
            };
            assert_eq!(schemes, expected, "{what}");
            checked += 1;
        }
    }
    assert!(checked > 40, "{checked} operations");
}

/// What the router serves under `/api/v1` and what the document describes are the same: every
/// documented operation is routed, and on a documented path every other method is not. Probed
/// without credentials, so nothing changes; `openapi.json` itself is the one undocumented route.
#[tokio::test]
async fn openapi_describes_every_route() {
    let server = TestServer::start().await;
    let http = crate::forward_auth::http();
    let doc: serde_json::Value = http.get(format!("{}/api/v1/openapi.json", server.url)).send().await.unwrap().json().await.unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/logout", "post"),
        ("/api/v1/self", "get"),
        ("/api/v1/users", "get"),
        ("/api/v1/users", "post"),
        ("/api/v1/users/{user}", "patch"),
        ("/api/v1/users/{user}/rename", "post"),
        ("/api/v1/service-accounts/{sa}/tokens/{token_id}", "delete"),
        ("/api/v1/groups/{group}/members", "get"),
        ("/api/v1/groups/{group}/members/{member}", "delete"),
        ("/api/v1/audit", "get"),
        ("/api/v1/oidc/clients", "post"),
        ("/api/v1/oidc/clients/{client}", "patch"),
        ("/api/v1/oidc/clients/{client}/rotate-secret", "post"),
        ("/api/v1/oidc/keys", "get"),
        ("/api/v1/oidc/keys/rotate", "post"),
        ("/.well-known/openid-configuration", "get"),
        ("/oidc/{tenant}/.well-known/openid-configuration", "get"),
        ("/oidc/jwks.json", "get"),
        ("/oidc/token", "post"),
        ("/oidc/{tenant}/token", "post"),
        ("/oidc/userinfo", "get"),
        ("/oidc/userinfo", "post"),
        ("/oidc/introspect", "post"),
        ("/oidc/revoke", "post"),
    ] {
        assert!(paths.get(path).and_then(|p| p.get(method)).is_some(), "{method} {path} missing from OpenAPI");
    }
    let mut routed = 0;
    for (path, item) in paths {
        let concrete: String = path.split('/').map(|part| if part.starts_with('{') { "probe" } else { part }).collect::<Vec<_>>().join("/");
        for method in ["get", "put", "post", "delete", "patch"] {
            let request = http.request(method.to_uppercase().parse().unwrap(), format!("{}{concrete}", server.url));
            let response = request.send().await.unwrap();
            let status = response.status();
            let problem: serde_json::Value = response.json().await.unwrap_or_default();
            let unrouted = matches!(problem["code"].as_str(), Some("route.not_found" | "method.not_allowed"));
            assert_eq!(!unrouted, item.get(method).is_some(), "{method} {path}: {status} {problem}");
            routed += usize::from(!unrouted);
        }
    }
    assert!(routed > 40, "{routed} operations routed");
    let ready: serde_json::Value = reqwest::get(format!("{}/readyz", server.url)).await.unwrap().json().await.unwrap();
    assert_eq!(ready["backend"], "sqlite");
}

#[tokio::test]
async fn serves_tls_with_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = crate::api::test_certificate(dir.path());
    let server =
        TestServer::start_with(|c| c.server.tls = Some(warden_server::config::TlsConfig { cert: cert.clone(), key: key.clone() })).await;
    let root = reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap();
    let https = reqwest::Client::builder().tls_certs_only([root]).build().unwrap();
    let url = format!("https://localhost:{}/healthz", server.running.public_addr.port());
    assert_eq!(https.get(&url).send().await.unwrap().text().await.unwrap(), "ok");
    assert!(reqwest::get(format!("http://{}/healthz", server.running.public_addr)).await.is_err(), "no plain HTTP on the TLS port");
}

// --- authorization ----------------------------------------------------------------------------

use warden_core::api::{BindingQuery, CheckItem, CheckRequest, CreateBinding, CreateRole, CreateTenant, PermissionsQuery, UpdateRole};

fn check_request(subject: &str, permission: &str, namespace: Option<&str>) -> CheckRequest {
    CheckRequest {
        subject: subject.into(),
        permission: Some(permission.into()),
        namespace: namespace.map(Into::into),
        ..Default::default()
    }
}

async fn tree_server() -> TestServer {
    TestServer::start_with(|c| {
        c.authz.permission_trees = true;
        c.authz.permissions = [
            "calendar:events:read",
            "calendar:events:write",
            "calendar:events:write:create",
            "calendar:events:write:update",
            "calendar:events:write:delete",
            "calendar:events:write:move",
        ]
        .map(String::from)
        .into();
    })
    .await
}

#[tokio::test]
async fn roles_resolve_through_the_permission_tree() {
    let server = tree_server().await;
    let admin = server.sysadmin().await;
    let writer = admin
        .create_role(&CreateRole {
            name: "Calendar Writer".into(),
            permissions: vec!["calendar:events:write".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(writer.id.as_str(), "calendar-writer", "id generated from the name");
    let resolved = admin.role_permissions("calendar-writer").await.unwrap();
    assert_eq!(
        resolved.permissions,
        ["calendar:events:write:create", "calendar:events:write:delete", "calendar:events:write:move", "calendar:events:write:update"]
    );
    admin.create_role(&role("everything", "All", &["calendar"])).await.unwrap();
    let all = admin.role_permissions("everything").await.unwrap().permissions;
    assert_eq!(all.len(), 5);
    assert!(all.contains(&"calendar:events:read".to_owned()));
    // Outside the tree: unchanged.
    let updated = admin
        .update_role("everything", &UpdateRole { add: vec!["roster:read".into()], remove: vec!["calendar".into()], ..Default::default() })
        .await
        .unwrap();
    assert_eq!(updated.permissions, ["roster:read"]);
    assert_eq!(admin.role_permissions("everything").await.unwrap().permissions, ["roster:read"]);
    // Bad input.
    for (bad, expected) in [
        (CreateRole { name: "x".into(), id: Some("Calendar Writer!".into()), ..Default::default() }, "validation"),
        (CreateRole { name: "Calendar Writer".into(), ..Default::default() }, "name.taken"),
        (CreateRole { name: "idm_admin".into(), ..Default::default() }, "name.taken"),
        (CreateRole { name: "y".into(), permissions: vec!["bad\nperm".into()], ..Default::default() }, "validation"),
        (CreateRole { name: "z".into(), tenant: Some("nowhere".into()), ..Default::default() }, "not_found"),
    ] {
        assert_eq!(code(&admin.create_role(&bad).await.unwrap_err()), expected, "{}", bad.name);
    }
    // Built-in roles cannot change.
    assert_eq!(
        code(&admin.update_role("idm_admin", &UpdateRole { add: vec!["x".into()], ..Default::default() }).await.unwrap_err()),
        "role.immutable"
    );
    assert_eq!(code(&admin.delete_role("auditor").await.unwrap_err()), "role.immutable");
}

#[tokio::test]
async fn check_explains_and_respects_namespaces_tenants_and_deletions() {
    let server = tree_server().await;
    let (admin, idm) = (server.sysadmin().await, server.idm().await);
    for name in ["alice", "bob"] {
        idm.create_user(&user(name)).await.unwrap();
    }
    for name in ["ops", "oncall"] {
        idm.create_group(&CreateGroup { name: name.into(), description: None }).await.unwrap();
    }
    idm.add_members("ops", &["group:oncall".into()]).await.unwrap();
    idm.add_members("oncall", &["user:alice".into()]).await.unwrap();
    admin.create_role(&role("operator", "Operator", &["calendar:events:write", "deploy:run"])).await.unwrap();
    let binding = admin
        .create_binding(&CreateBinding {
            role: "operator".into(),
            subject: "group:ops".into(),
            namespaces: vec!["prod".into()],
            ..Default::default()
        })
        .await
        .unwrap();

    let batch = CheckRequest {
        subject: "alice".into(),
        checks: vec![
            CheckItem { permission: "deploy:run".into(), namespace: Some("prod.web".into()) },
            CheckItem { permission: "deploy:run".into(), namespace: Some("staging".into()) },
            CheckItem { permission: "deploy:run".into(), namespace: Some("production".into()) },
            CheckItem { permission: "deploy:run".into(), namespace: None },
            CheckItem { permission: "calendar:events:write:move".into(), namespace: Some("prod".into()) },
            CheckItem { permission: "calendar:events:read".into(), namespace: Some("prod".into()) },
        ],
        explain: true,
        ..Default::default()
    };
    let answer = admin.check(&batch).await.unwrap();
    let allowed: Vec<bool> = answer.results.iter().map(|r| r.allowed).collect();
    assert_eq!(allowed, [true, false, false, false, true, false]);
    let grant = &answer.results[4].explanation.as_ref().unwrap().grants[0];
    let path: Vec<String> = grant.path.iter().map(ToString::to_string).collect();
    assert_eq!(path, ["user:alice", "group:oncall", "group:ops"]);
    assert_eq!(
        (grant.role.as_str(), grant.permission.as_str(), grant.via_tree, grant.binding),
        ("operator", "calendar:events:write", true, binding.id)
    );
    assert!(answer.results[1].explanation.as_ref().unwrap().reason.as_deref().unwrap().contains("staging"));
    // Another tenant sees nothing of it.
    admin.create_tenant(&CreateTenant { name: "acme".into(), description: None }).await.unwrap();
    let other =
        admin.check(&CheckRequest { tenant: Some("acme".into()), ..check_request("alice", "deploy:run", Some("prod")) }).await.unwrap();
    assert!(!other.results[0].allowed);
    // Resolved permissions.
    let resolved = admin.account_permissions("alice", &PermissionsQuery { tenant: None, namespace: Some("prod.db".into()) }).await.unwrap();
    assert_eq!(resolved.permissions.len(), 5);
    assert_eq!(resolved.groups, ["oncall", "ops"]);
    assert_eq!(resolved.roles, ["operator"]);
    // Deleting the group in between revokes; so does deleting the binding.
    idm.delete_group("oncall").await.unwrap();
    assert!(!admin.check(&check_request("alice", "deploy:run", Some("prod"))).await.unwrap().results[0].allowed);
    idm.add_members("ops", &["user:bob".into()]).await.unwrap();
    assert!(admin.check(&check_request("bob", "deploy:run", Some("prod"))).await.unwrap().results[0].allowed);
    admin.delete_binding(binding.id).await.unwrap();
    assert!(!admin.check(&check_request("bob", "deploy:run", Some("prod"))).await.unwrap().results[0].allowed);
    assert_eq!(code(&admin.delete_binding(binding.id).await.unwrap_err()), "not_found");
    // Bad checks.
    assert_eq!(code(&admin.check(&check_request("nobody", "x", None)).await.unwrap_err()), "not_found");
    assert_eq!(code(&admin.check(&check_request("bob", "x", Some("Bad Namespace"))).await.unwrap_err()), "validation");
    assert_eq!(code(&admin.check(&CheckRequest { subject: "bob".into(), ..Default::default() }).await.unwrap_err()), "validation");
    // A user may check itself, not others.
    let bob = server.anonymous().with_basic("bob", "correct horse battery");
    bob.check(&check_request("bob", "deploy:run", None)).await.unwrap();
    assert_eq!(code(&bob.check(&check_request("alice", "deploy:run", None)).await.unwrap_err()), "forbidden");
    // Deleting the tenant removes its roles and bindings.
    admin
        .create_role(&CreateRole {
            id: Some("acme-op".into()),
            name: "x".into(),
            tenant: Some("acme".into()),
            permissions: vec!["deploy:run".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    admin
        .create_binding(&CreateBinding { role: "acme-op".into(), subject: "bob".into(), tenant: Some("acme".into()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(
        code(
            &admin
                .create_binding(&CreateBinding { role: "acme-op".into(), subject: "bob".into(), ..Default::default() })
                .await
                .unwrap_err()
        ),
        "validation",
        "role of another tenant"
    );
    admin.delete_tenant("acme").await.unwrap();
    assert_eq!(code(&admin.get_role("acme-op").await.unwrap_err()), "not_found");
    assert!(admin.list_bindings(&BindingQuery { subject: Some("bob".into()), ..Default::default() }).await.unwrap().items.is_empty());
    assert_eq!(code(&admin.delete_tenant("default").await.unwrap_err()), "account.protected");
}

#[tokio::test]
async fn sessions_are_read_only_until_reauth_and_tokens_carry_their_scope() {
    let server = TestServer::start().await;
    let idm = server.idm().await;
    idm.create_user(&user("alice")).await.unwrap();
    let password = recovery::recover_account(&server.running.context, "idm_admin").await.unwrap();
    let login = server.anonymous().login("idm_admin", password.expose()).await.unwrap();
    let session = server.anonymous().with_bearer(login.token.expose());
    session.get_user("alice").await.unwrap();
    let e = session.create_user(&user("bob")).await.unwrap_err();
    assert_eq!((code(&e), e.status()), ("session.not_elevated", Some(403)));
    assert_eq!(code(&session.reauth("wrong password!").await.unwrap_err()), "auth.failed");
    let until = session.reauth(password.expose()).await.unwrap().elevated_until;
    assert!(until > server.clock.now());
    session.create_user(&user("bob")).await.unwrap();
    server.clock.advance(Duration::minutes(11));
    assert_eq!(code(&session.create_user(&user("carol")).await.unwrap_err()), "session.not_elevated");
    session.get_user("bob").await.unwrap();
    // Reauth needs a session.
    let basic = server.anonymous().with_basic("alice", "correct horse battery");
    assert_eq!(code(&basic.reauth("correct horse battery").await.unwrap_err()), "validation");

    // API tokens: read-only by default, read-write on request, limited to a subset of roles.
    let idm = server.idm().await;
    idm.create_service_account(&CreateServiceAccount { name: "provisioner".into(), ..Default::default() }).await.unwrap();
    let e = idm.add_members("idm_admins", &["sa:provisioner".into()]).await.unwrap_err();
    assert_eq!(code(&e), "forbidden", "idm_admin cannot hand out administrative groups");
    let root = server.superuser().await;
    root.add_members("idm_admins", &["sa:provisioner".into()]).await.unwrap();
    root.add_members("auditors", &["sa:provisioner".into()]).await.unwrap();
    let idm = server.idm().await; // making root recovered idm_admin, which ended its session
    // The provisioner now holds built-in roles: only a superuser could issue it tokens.
    assert_eq!(code(&idm.create_api_token("provisioner", &CreateApiToken::default()).await.unwrap_err()), "account.high_privilege");
}

#[tokio::test]
async fn idm_admin_cannot_touch_admin_and_password_resets_end_sessions() {
    let server = TestServer::start().await;
    let idm = server.idm().await;
    // The break-glass accounts get a password from the host alone: there is no user of that
    // name to set one for.
    for e in [
        idm.set_password("admin", "a brand new password").await.unwrap_err(),
        idm.set_password("idm_admin", "a brand new password").await.unwrap_err(),
    ] {
        assert_eq!(code(&e), "not_found");
    }
    idm.create_user(&user("alice")).await.unwrap();
    idm.create_user(&user("hank")).await.unwrap();
    let admin = server.sysadmin().await;
    assert_eq!(code(&admin.add_members("service_desk", &["user:hank".into()]).await.unwrap_err()), "account.high_privilege");
    server.superuser().await.add_members("service_desk", &["user:hank".into()]).await.unwrap();
    let idm = server.idm().await; // making root recovered idm_admin, which ended its session
    assert_eq!(
        code(&idm.update_user("hank", &UpdateUser { first_name: Some(Some("H".into())), ..Default::default() }).await.unwrap_err()),
        "account.high_privilege"
    );
    assert_eq!(code(&idm.set_password("hank", "a brand new password").await.unwrap_err()), "account.high_privilege");
    assert_eq!(
        code(&admin.remove_member("service_desk", "user:hank").await.unwrap_err()),
        "account.high_privilege",
        "removal needs a superuser"
    );
    assert_eq!(code(&idm.delete_group("service_desk").await.unwrap_err()), "account.protected");
    assert_eq!(code(&admin.delete_group("service_desk").await.unwrap_err()), "forbidden");
    // A plain user's password can be reset, which ends the user's sessions.
    let login = server.anonymous().login("alice", "correct horse battery").await.unwrap();
    let alice = server.anonymous().with_bearer(login.token.expose());
    alice.whoami().await.unwrap();
    assert_eq!(code(&idm.set_password("alice", "short").await.unwrap_err()), "validation");
    idm.set_password("alice", "a brand new password").await.unwrap();
    assert_eq!(code(&alice.whoami().await.unwrap_err()), "unauthenticated");
    server.anonymous().login("alice", "a brand new password").await.unwrap();
    // Nobody but idm rights: a plain user cannot reset anyone.
    let plain = server.anonymous().with_basic("alice", "a brand new password");
    assert_eq!(code(&plain.set_password("hank", "x".repeat(12).as_str()).await.unwrap_err()), "forbidden");
}

#[tokio::test]
async fn api_tokens_are_read_only_unless_asked_and_limited_to_their_roles() {
    let server = tree_server().await;
    let admin = server.superuser().await;
    let idm = server.idm().await;
    idm.create_service_account(&CreateServiceAccount { name: "app".into(), ..Default::default() }).await.unwrap();
    idm.create_user(&user("alice")).await.unwrap();
    admin.create_role(&role("checker", "Checker", &["warden:check"])).await.unwrap();
    admin.create_role(&role("grouper", "Grouper", &["warden:groups"])).await.unwrap();
    // grouper carries warden:* rights, so app is an administrator: tokens are the superuser's
    // to issue.
    for role in ["checker", "grouper"] {
        admin.create_binding(&CreateBinding { role: role.into(), subject: "sa:app".into(), ..Default::default() }).await.unwrap();
    }
    let read_only = admin.create_api_token("app", &CreateApiToken::default()).await.unwrap();
    let app = server.anonymous().with_bearer(read_only.token.expose());
    app.check(&check_request("alice", "calendar:events:read", None)).await.unwrap();
    app.list_groups(&ListQuery::default()).await.unwrap();
    assert_eq!(code(&app.create_group(&CreateGroup { name: "g1".into(), description: None }).await.unwrap_err()), "session.not_elevated");
    let read_write = admin.create_api_token("app", &CreateApiToken { read_write: true, ..Default::default() }).await.unwrap();
    let app = server.anonymous().with_bearer(read_write.token.expose());
    app.create_group(&CreateGroup { name: "g1".into(), description: None }).await.unwrap();
    let only_check = admin
        .create_api_token("app", &CreateApiToken { read_write: true, roles: Some(vec!["checker".into()]), ..Default::default() })
        .await
        .unwrap();
    let app = server.anonymous().with_bearer(only_check.token.expose());
    app.check(&check_request("alice", "calendar:events:read", None)).await.unwrap();
    assert_eq!(code(&app.create_group(&CreateGroup { name: "g2".into(), description: None }).await.unwrap_err()), "forbidden");
    assert_eq!(
        code(
            &admin
                .create_api_token("app", &CreateApiToken { roles: Some(vec!["idm_admin".into()]), ..Default::default() })
                .await
                .unwrap_err()
        ),
        "validation"
    );
}

#[tokio::test]
async fn power_over_warden_is_only_a_superusers_to_give() {
    let server = TestServer::start().await;
    let root = server.superuser().await;
    let (admin, idm) = (server.sysadmin().await, server.idm().await);
    idm.create_user(&user("alice")).await.unwrap();
    // admin (system_admin) cannot mint warden:* power, nor hand out administrative roles.
    for permissions in
        [vec!["warden".to_owned()], vec!["warden:users:write".to_owned()], vec!["x".to_owned(), "warden:superuser".to_owned()]]
    {
        let e = admin.create_role(&CreateRole { name: "sneaky".into(), permissions, ..Default::default() }).await.unwrap_err();
        assert_eq!(code(&e), "account.high_privilege");
    }
    for role in ["idm_superuser", "idm_admin", "system_admin"] {
        let e =
            admin.create_binding(&CreateBinding { role: role.into(), subject: "sa:admin".into(), ..Default::default() }).await.unwrap_err();
        assert_eq!(code(&e), "account.high_privilege", "{role}");
    }
    assert_eq!(code(&admin.add_members("idm_superusers", &["sa:admin".into()]).await.unwrap_err()), "account.high_privilege");
    // warden:check may be handed to applications by admin.
    admin.create_role(&role("checker", "Checker", &["warden:check"])).await.unwrap();
    admin.create_binding(&CreateBinding { role: "checker".into(), subject: "user:alice".into(), ..Default::default() }).await.unwrap();
    // The host made a superuser, who may do all of it.
    assert!(root.whoami().await.unwrap().permissions.contains(&"warden:superuser".to_owned()));
    let binding =
        root.create_binding(&CreateBinding { role: "idm_admin".into(), subject: "user:alice".into(), ..Default::default() }).await.unwrap();
    // alice now holds a built-in role: idm_admin cannot touch her, the superuser can.
    assert_eq!(code(&idm.disable_user("alice").await.unwrap_err()), "account.high_privilege");
    root.delete_binding(binding.id).await.unwrap();
    idm.disable_user("alice").await.unwrap();
    // Removing from built-in groups is the superuser's too.
    assert_eq!(code(&admin.remove_member("system_admins", "sa:admin").await.unwrap_err()), "account.high_privilege");
    root.remove_member("system_admins", "sa:admin").await.unwrap();
    let admin_again = server.sysadmin().await;
    assert_eq!(
        code(&admin_again.list_roles(&warden_core::api::RoleQuery::default()).await.unwrap_err()),
        "forbidden",
        "admin's rights came from the group"
    );
    // Unknown bindings: 404 for those who may read bindings, 403 for others.
    let alice_id = uuid::Uuid::now_v7();
    assert_eq!(code(&root.delete_binding(alice_id).await.unwrap_err()), "not_found");
    assert_eq!(code(&idm.delete_binding(alice_id).await.unwrap_err()), "forbidden");
}

/// A fresh PostgreSQL database for one test, dropped at the end (PostgreSQL must answer on
/// 127.0.0.1:5432 with trust auth: scripts/postgres-up.sh).
pub struct PgDatabase(pub String);

/// The PostgreSQL server the tests use: `WARDEN_TEST_POSTGRES` (`postgres://user@host:port`),
/// else the local one. An unreachable server fails the tests; they are never skipped.
pub fn pg_server() -> String {
    std::env::var("WARDEN_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

impl PgDatabase {
    pub fn create(tag: &str) -> Self {
        let name = format!("warden_server_{tag}_{}", uuid::Uuid::now_v7().simple());
        psql(&format!("CREATE DATABASE {name}"));
        Self(name)
    }

    pub fn url(&self) -> String {
        format!("{}/{}", pg_server(), self.0)
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        psql(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.0));
    }
}

fn psql(sql: &str) {
    let server = pg_server();
    let out = std::process::Command::new("psql")
        .args(["-d", &format!("{server}/postgres"), "-v", "ON_ERROR_STOP=1", "-qc", sql])
        .output()
        .expect("psql is needed: PostgreSQL is required for these tests (scripts/postgres-up.sh installs and starts it)");
    assert!(
        out.status.success(),
        "PostgreSQL at {server} refused {sql:?} (start it with scripts/postgres-up.sh, or point WARDEN_TEST_POSTGRES at one): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Sends `passwords.len()` logins for `name` at once, spread over `urls`, and counts the answers
/// by status.
async fn login_burst(urls: &[String], name: &str, passwords: &[&str]) -> std::collections::BTreeMap<u16, usize> {
    let http = reqwest::Client::new();
    let mut burst = tokio::task::JoinSet::new();
    for (i, password) in passwords.iter().enumerate() {
        let request = http
            .post(format!("{}/api/v1/auth/login", urls[i % urls.len()]))
            .json(&serde_json::json!({ "name": name, "password": password }));
        burst.spawn(async move { request.send().await.unwrap().status().as_u16() });
    }
    let mut counts = std::collections::BTreeMap::new();
    while let Some(status) = burst.join_next().await {
        *counts.entry(status.unwrap()).or_insert(0) += 1;
    }
    counts
}

/// The attack of issue 10 (1): 500 wrong passwords for one name sent at once from one address
/// were all checked (483 answered 401), because every request passed the lock before any had
/// failed. Each attempt must be counted before its password is checked: at most the configured
/// number of checks, whatever the concurrency; every other request is refused unchecked.
async fn parallel_guesses_are_counted_before_they_are_checked(servers: &[&TestServer]) {
    let urls: Vec<String> = servers.iter().map(|s| s.url.clone()).collect();
    servers[0].idm().await.create_user(&user("alice")).await.unwrap();
    let guesses: Vec<String> = (0..500).map(|i| format!("wrong guess {i}")).collect();
    let guesses: Vec<&str> = guesses.iter().map(String::as_str).collect();
    let counts = login_burst(&urls, "alice", &guesses).await;
    let checked = counts.get(&401).copied().unwrap_or(0);
    assert_eq!(checked, 5, "max_failed_logins (5) checks, no more: {counts:?}");
    assert_eq!(counts.get(&429).copied().unwrap_or(0), 495, "{counts:?}");

    // A burst with the right password among wrong ones, from the same address: refused
    // unchecked, the right one too, until the delay has passed.
    let mut burst = vec!["another guess"; 99];
    burst.insert(50, "correct horse battery");
    let counts = login_burst(&urls, "alice", &burst).await;
    assert_eq!(counts.get(&429).copied(), Some(100), "{counts:?}");
    assert_eq!(counts.get(&200), None, "the burst did not sign in");
}

#[tokio::test]
async fn parallel_guesses_cannot_pass_the_soft_lock_on_sqlite() {
    let server = TestServer::start().await;
    parallel_guesses_are_counted_before_they_are_checked(&[&server]).await;
}

#[tokio::test]
async fn parallel_guesses_cannot_pass_the_soft_lock_on_two_postgresql_nodes() {
    let db = PgDatabase::create("lock");
    let a = TestServer::start_with(|c| c.database.url = db.url()).await;
    let b = TestServer::start_with(|c| c.database.url = db.url()).await;
    parallel_guesses_are_counted_before_they_are_checked(&[&a, &b]).await;
    a.running.shutdown().await.unwrap();
    b.running.shutdown().await.unwrap();
}

/// The attack of issue 10 (6): five wrong passwords from any address locked a name for
/// everyone, its owner included, and could be repeated forever. Now one address at one name
/// gets a few free guesses and then waits twice as long each time, while the owner on another
/// address signs in; only many addresses together reach the looser per-name rule.
#[tokio::test]
async fn one_address_cannot_lock_an_owner_out() {
    let server = TestServer::start().await;
    server.idm().await.create_user(&user("alice")).await.unwrap();
    let ctx = &server.running.context;
    let auth = warden_server::services::auth::Auth::new(ctx.clone(), warden_server::services::directory::Directory::new(ctx.clone()));
    let password = warden_core::credential::Secret::new("correct horse battery");
    let wrong = warden_core::credential::Secret::new("a guess");
    let attacker: std::net::IpAddr = "203.0.113.66".parse().unwrap();
    let owner: std::net::IpAddr = "198.51.100.7".parse().unwrap();

    let mut checked = 0;
    for _ in 0..30 {
        match auth.verify_password("alice", &wrong, Some(attacker)).await.unwrap_err().code() {
            "auth.failed" => checked += 1,
            code => assert_eq!(code, "auth.rate_limited"),
        }
    }
    assert_eq!(checked, 5, "five free guesses from one address");
    auth.verify_password("alice", &password, Some(owner)).await.expect("the owner elsewhere is not locked out");
    // The attacker's own right guess is refused too while it must wait: the lock says nothing.
    assert_eq!(auth.verify_password("alice", &password, Some(attacker)).await.unwrap_err().code(), "auth.rate_limited");

    // Past the free guesses, each one waits twice as long as the one before.
    for wait in [1, 2, 4, 8] {
        server.clock.advance(Duration::seconds(wait) - Duration::milliseconds(1));
        assert_eq!(auth.verify_password("alice", &wrong, Some(attacker)).await.unwrap_err().code(), "auth.rate_limited", "{wait} s");
        server.clock.advance(Duration::milliseconds(1));
        assert_eq!(auth.verify_password("alice", &wrong, Some(attacker)).await.unwrap_err().code(), "auth.failed", "after {wait} s");
    }
    let e = auth.verify_password("alice", &wrong, Some(attacker)).await.unwrap_err();
    assert!(matches!(e, warden_server::services::ServiceError::RateLimited { retry_after_secs: 16 }), "{e:?}");

    // Many addresses together reach the per-name rule (200): then the owner waits as well.
    for i in 0..200 - 9 {
        let ip = std::net::IpAddr::from([10, 0, (i / 250) as u8, (i % 250) as u8 + 1]);
        let _ = auth.verify_password("alice", &wrong, Some(ip)).await;
    }
    let e = auth.verify_password("alice", &password, Some(owner)).await.unwrap_err();
    assert_eq!(e.code(), "auth.rate_limited", "a distributed attack slows the name down for everyone");
    server.clock.advance(Duration::seconds(1));
    auth.verify_password("alice", &password, Some(owner)).await.expect("after the delay");
}

/// A self-signed certificate for `localhost` and 127.0.0.1 in `dir` (made by Debian's
/// openssl): its certificate and key files.
pub fn test_certificate(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl is needed to make a test certificate");
    assert!(status.success());
    (cert, key)
}
