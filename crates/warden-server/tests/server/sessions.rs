//! Sessions as their owners and operators see them (`/api/v1/self/sessions`,
//! `/api/v1/sessions`): what each shows, who may see and end which, and that an ended session
//! is refused at once, here and on another node. Every scenario runs on SQLite and PostgreSQL.

use time::Duration;
use uuid::Uuid;
use warden_client::{AuditQuery, Client, SessionsQuery};
use warden_core::api::{CreateApiToken, CreateServiceAccount, CredentialKind, SessionInfo};

use crate::api::{PgDatabase, TestServer, user};

const PASSWORD: &str = "correct horse battery";

/// A server on SQLite, or on a fresh PostgreSQL database (kept alive by the returned guard).
async fn server(pg: bool) -> (TestServer, Option<PgDatabase>) {
    if pg {
        let db = PgDatabase::create("sessions");
        let url = db.url();
        (TestServer::start_with(|c| c.database.url = url).await, Some(db))
    } else {
        (TestServer::start().await, None)
    }
}

/// Signs `name` in through the API with a chosen `User-Agent` and returns the session token.
async fn login_as(server: &TestServer, name: &str, agent: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/login", server.url))
        .header("user-agent", agent)
        .json(&serde_json::json!({ "name": name, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    body["token"].as_str().unwrap().to_owned()
}

fn ids(items: &[SessionInfo]) -> Vec<Uuid> {
    items.iter().map(|s| s.id).collect()
}

async fn own_session_id(client: &Client) -> Uuid {
    client.whoami().await.unwrap().credential_id.unwrap()
}

// --- what a listing shows -----------------------------------------------------------------------

async fn listing_shows_where_and_how_each_session_signed_in(pg: bool) {
    let (server, _db) = server(pg).await;
    let idm = server.idm().await;
    idm.create_user(&user("alice")).await.unwrap();
    let long_agent = format!("Mozilla/5.0 {}", "x".repeat(400));
    let browser = server.anonymous().with_bearer(login_as(&server, "alice", &long_agent).await);
    let cli = server.anonymous().with_bearer(login_as(&server, "alice", "warden-cli/\ttest").await);
    let (browser_id, cli_id) = (own_session_id(&browser).await, own_session_id(&cli).await);

    let own = cli.own_sessions().await.unwrap();
    assert_eq!(ids(&own.items), vec![browser_id, cli_id], "both, oldest first");
    let (b, c) = (&own.items[0], &own.items[1]);
    assert_eq!((b.current, c.current), (false, true), "the one asking is current");
    for s in &own.items {
        assert_eq!(s.kind, CredentialKind::Session);
        assert_eq!(s.account.name.as_str(), "alice");
        assert_eq!(s.client.as_deref(), Some("127.0.0.1"));
        assert_eq!(s.auth_strength, "password");
        let (expires, last) = (s.expires_at.unwrap(), s.last_used_at.unwrap());
        assert_eq!(s.ends_at, Some(expires.min(last + Duration::hours(1))), "the idle timeout (1 h) ends it first");
        assert_eq!(s.elevated_until, None);
    }
    assert_eq!(b.user_agent.as_deref().map(|a| a.chars().count()), Some(256), "cut to 256 characters");
    assert!(long_agent.starts_with(b.user_agent.as_deref().unwrap()));
    assert_eq!(c.user_agent.as_deref(), Some("warden-cli/test"), "control characters (a tab) dropped");

    // No token or hash anywhere in the answers.
    let raw = reqwest::Client::new()
        .get(format!("{}/api/v1/self/sessions", server.url))
        .bearer_auth(login_as(&server, "alice", "curl/8").await)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!raw.contains("wds_") && !raw.contains("token_hash") && !raw.contains("\"token\""), "{raw}");

    // An operator sees the same, for one user or for everyone, in pages.
    let of_alice = idm.list_sessions(&SessionsQuery { user: Some("alice".into()), ..Default::default() }).await.unwrap();
    assert_eq!(of_alice.items.len(), 3);
    assert_eq!(of_alice.items[0].user_agent, b.user_agent);
    assert!(of_alice.items.iter().all(|s| !s.current), "none is the operator's");
    let all = idm.list_sessions(&SessionsQuery::default()).await.unwrap();
    assert!(all.items.iter().any(|s| s.account.name.as_str() == "idm_admin" && s.current));
    assert!(ids(&all.items).contains(&browser_id));
    let mut paged = Vec::new();
    let mut cursor = None;
    loop {
        let page = idm.list_sessions(&SessionsQuery { cursor, limit: Some(2), ..Default::default() }).await.unwrap();
        paged.extend(ids(&page.items));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(paged, ids(&all.items), "pages add up to the whole list");

    // An idle session drops out of the listing (and no longer signs in).
    server.clock.advance(Duration::minutes(61));
    let fresh = server.anonymous().with_bearer(login_as(&server, "alice", "curl/8").await);
    let own = fresh.own_sessions().await.unwrap();
    assert_eq!(own.items.len(), 1);
    assert!(own.items[0].current);
    server.running.shutdown().await.unwrap();
}

#[tokio::test]
async fn listing_shows_where_and_how_each_session_signed_in_sqlite() {
    listing_shows_where_and_how_each_session_signed_in(false).await;
}

#[tokio::test]
async fn listing_shows_where_and_how_each_session_signed_in_postgres() {
    listing_shows_where_and_how_each_session_signed_in(true).await;
}

// --- who may see and end what -------------------------------------------------------------------

async fn a_user_cannot_see_or_end_anothers_session(pg: bool) {
    let (server, _db) = server(pg).await;
    let idm = server.idm().await;
    idm.create_user(&user("alice")).await.unwrap();
    idm.create_user(&user("bob")).await.unwrap();
    let alice = server.anonymous().with_bearer(login_as(&server, "alice", "a").await);
    let bob = server.anonymous().with_bearer(login_as(&server, "bob", "b").await);
    let alice_id = own_session_id(&alice).await;

    // Someone else's id is "not found", exactly like an id that does not exist.
    let e = bob.revoke_own_session(alice_id).await.unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(404), "not_found"), "{e}");
    let nobody = Uuid::now_v7();
    let unknown = bob.revoke_own_session(nobody).await.unwrap_err();
    assert_eq!((unknown.status(), unknown.code()), (Some(404), "not_found"));
    assert_eq!(
        e.to_string().replace(&alice_id.to_string(), "ID"),
        unknown.to_string().replace(&nobody.to_string(), "ID"),
        "the same answer"
    );
    alice.whoami().await.unwrap();
    assert!(!ids(&bob.own_sessions().await.unwrap().items).contains(&alice_id));

    // Without `users:read` / `credentials:write`: 403, before anything is looked up.
    for e in [
        bob.list_sessions(&SessionsQuery::default()).await.unwrap_err(),
        bob.list_sessions(&SessionsQuery { user: Some("alice".into()), ..Default::default() }).await.unwrap_err(),
        bob.revoke_session(alice_id).await.unwrap_err(),
        bob.revoke_session(Uuid::now_v7()).await.unwrap_err(),
        bob.revoke_user_sessions("alice").await.unwrap_err(),
        bob.revoke_user_sessions("nobody").await.unwrap_err(),
    ] {
        assert_eq!((e.status(), e.code()), (Some(403), "forbidden"), "{e}");
    }
    // The system administrator holds no right to users' data or credentials either.
    let sysadmin = server.sysadmin().await;
    assert_eq!(sysadmin.list_sessions(&SessionsQuery::default()).await.unwrap_err().code(), "forbidden");
    assert_eq!(sysadmin.revoke_session(alice_id).await.unwrap_err().code(), "forbidden");
    alice.whoami().await.unwrap();

    // A malformed id is a validation problem.
    let response = reqwest::Client::new()
        .delete(format!("{}/api/v1/self/sessions/not-an-id", server.url))
        .bearer_auth(login_as(&server, "bob", "b").await)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let problem: serde_json::Value = response.json().await.unwrap();
    assert_eq!(problem["code"], "validation");
    // An unknown user is 404 to an operator.
    assert_eq!(idm.revoke_user_sessions("nobody").await.unwrap_err().code(), "not_found");
    server.running.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_user_cannot_see_or_end_anothers_session_sqlite() {
    a_user_cannot_see_or_end_anothers_session(false).await;
}

#[tokio::test]
async fn a_user_cannot_see_or_end_anothers_session_postgres() {
    a_user_cannot_see_or_end_anothers_session(true).await;
}

async fn an_administrators_sessions_are_ended_by_a_superuser_only(pg: bool) {
    let (server, _db) = server(pg).await;
    let idm = server.idm().await;
    let sysadmin = server.sysadmin().await;
    let admin_session = own_session_id(&sysadmin).await;
    // idm_admin may read them, but not end them: `admin` holds an administrative role.
    let listed = idm.list_sessions(&SessionsQuery { user: Some("admin".into()), ..Default::default() }).await.unwrap();
    assert_eq!(ids(&listed.items), vec![admin_session]);
    let e = idm.revoke_session(admin_session).await.unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(403), "account.high_privilege"), "{e}");
    let e = idm.revoke_user_sessions("admin").await.unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(403), "account.high_privilege"), "{e}");
    sysadmin.whoami().await.unwrap();
    // A superuser may.
    let root = server.superuser().await;
    root.revoke_session(admin_session).await.unwrap();
    assert_eq!(sysadmin.whoami().await.unwrap_err().code(), "unauthenticated");
    server.running.shutdown().await.unwrap();
}

#[tokio::test]
async fn an_administrators_sessions_are_ended_by_a_superuser_only_sqlite() {
    an_administrators_sessions_are_ended_by_a_superuser_only(false).await;
}

#[tokio::test]
async fn an_administrators_sessions_are_ended_by_a_superuser_only_postgres() {
    an_administrators_sessions_are_ended_by_a_superuser_only(true).await;
}

// --- ending them --------------------------------------------------------------------------------

async fn ended_sessions_are_refused_at_once(pg: bool) {
    let (server, _db) = server(pg).await;
    let idm = server.idm().await;
    idm.create_user(&user("alice")).await.unwrap();
    let sessions: Vec<Client> = {
        let mut v = Vec::new();
        for agent in ["one", "two", "three", "four"] {
            let c = server.anonymous().with_bearer(login_as(&server, "alice", agent).await);
            c.whoami().await.unwrap(); // cached on this node
            v.push(c);
        }
        v
    };
    let id = |i: usize| own_session_id(&sessions[i]);
    let (one, two) = (id(0).await, id(1).await);

    // An operator ends one: refused at once, the others stay; audited with actor and target.
    idm.revoke_session(one).await.unwrap();
    assert_eq!(sessions[0].whoami().await.unwrap_err().code(), "unauthenticated");
    sessions[1].whoami().await.unwrap();
    assert_eq!(idm.revoke_session(one).await.unwrap_err().code(), "not_found", "already ended");
    let audit = server.sysadmin().await;
    let events = audit.audit(&AuditQuery { action: Some("session.revoke".into()), ..Default::default() }).await.unwrap();
    let event = events.items.iter().find(|e| e.action == "session.revoke").unwrap();
    assert_eq!(event.actor_name.as_deref(), Some("idm_admin"));
    assert_eq!(event.target_name.as_deref(), Some("alice"));
    assert_eq!(event.details["session_id"], one.to_string());

    // Alice ends another of hers from a read-only session, then the one she uses.
    sessions[2].revoke_own_session(two).await.unwrap();
    assert_eq!(sessions[1].whoami().await.unwrap_err().code(), "unauthenticated");
    let three = id(2).await;
    sessions[2].revoke_own_session(three).await.unwrap();
    assert_eq!(sessions[2].whoami().await.unwrap_err().code(), "unauthenticated");
    let events = audit
        .audit(&AuditQuery { actor: Some("alice".into()), action: Some("session.revoke".into()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(events.items.len(), 2);

    // Revoke-all ends the rest, counted in the answer and the event.
    server.anonymous().with_bearer(login_as(&server, "alice", "five").await).whoami().await.unwrap();
    let done = idm.revoke_user_sessions("alice").await.unwrap();
    assert_eq!(done.sessions_ended, 2);
    assert_eq!(sessions[3].whoami().await.unwrap_err().code(), "unauthenticated");
    assert!(idm.list_sessions(&SessionsQuery { user: Some("alice".into()), ..Default::default() }).await.unwrap().items.is_empty());
    let events = audit.audit(&AuditQuery { action: Some("session.revoke_all".into()), ..Default::default() }).await.unwrap();
    assert_eq!(events.items[0].details["sessions_ended"], 2);
    assert_eq!(events.items[0].target_name.as_deref(), Some("alice"));
    // She signs in again as ever.
    server.anonymous().login("alice", PASSWORD).await.unwrap();
    server.running.shutdown().await.unwrap();
}

#[tokio::test]
async fn ended_sessions_are_refused_at_once_sqlite() {
    ended_sessions_are_refused_at_once(false).await;
}

#[tokio::test]
async fn ended_sessions_are_refused_at_once_postgres() {
    ended_sessions_are_refused_at_once(true).await;
}

/// API tokens are listed beside sessions and ended through the same route.
async fn api_tokens_are_listed_and_ended_beside_sessions(pg: bool) {
    let (server, _db) = server(pg).await;
    let idm = server.idm().await;
    idm.create_service_account(&CreateServiceAccount { name: "ci-bot".into(), ..Default::default() }).await.unwrap();
    let created = idm.create_api_token("ci-bot", &CreateApiToken { label: Some("deploy".into()), ..Default::default() }).await.unwrap();
    let bot = server.anonymous().with_bearer(created.token.expose());
    let own = bot.own_sessions().await.unwrap();
    assert_eq!(own.items.len(), 1);
    let token = &own.items[0];
    assert_eq!((token.kind, token.id, token.current), (CredentialKind::ApiToken, created.info.id, true));
    assert_eq!((token.auth_strength.as_str(), token.label.as_deref()), ("api_token", Some("deploy")));
    assert!(token.last_used_at.is_some(), "the call itself used it");
    // A token ends only itself through /self/sessions; another of the account's needs
    // service_accounts:write.
    let second = idm.create_api_token("ci-bot", &CreateApiToken { label: Some("lint".into()), ..Default::default() }).await.unwrap();
    let e = bot.revoke_own_session(second.info.id).await.unwrap_err();
    assert_eq!((e.status(), e.code()), (Some(403), "token.scope"), "{e}");
    assert_eq!(bot.own_sessions().await.unwrap().items.len(), 2);
    let lint = server.anonymous().with_bearer(second.token.expose());
    lint.revoke_own_session(second.info.id).await.unwrap();
    assert_eq!(lint.whoami().await.unwrap_err().code(), "unauthenticated");
    let listed = idm.list_sessions(&SessionsQuery { user: Some("ci-bot".into()), ..Default::default() }).await.unwrap();
    assert_eq!(ids(&listed.items), vec![created.info.id]);
    idm.revoke_session(created.info.id).await.unwrap();
    assert_eq!(bot.whoami().await.unwrap_err().code(), "unauthenticated");
    assert!(idm.list_sessions(&SessionsQuery { user: Some("ci-bot".into()), ..Default::default() }).await.unwrap().items.is_empty());
    assert_eq!(idm.revoke_session(created.info.id).await.unwrap_err().code(), "not_found", "already revoked");
    server.running.shutdown().await.unwrap();
}

#[tokio::test]
async fn api_tokens_are_listed_and_ended_beside_sessions_sqlite() {
    api_tokens_are_listed_and_ended_beside_sessions(false).await;
}

#[tokio::test]
async fn api_tokens_are_listed_and_ended_beside_sessions_postgres() {
    api_tokens_are_listed_and_ended_beside_sessions(true).await;
}

/// A session ended on one node is refused on the other within the revision-propagation bound,
/// though the other had it cached.
#[tokio::test]
async fn a_session_ended_on_one_node_is_refused_on_the_other() {
    let db = PgDatabase::create("sessions_nodes");
    let one = TestServer::start_with(|c| c.database.url = db.url()).await;
    let two = TestServer::start_with(|c| c.database.url = db.url()).await;
    let idm = one.idm().await;
    idm.create_user(&user("alice")).await.unwrap();
    let on_two = two.anonymous().with_bearer(login_as(&two, "alice", "two").await);
    let kept = two.anonymous().with_bearer(login_as(&two, "alice", "kept").await);
    on_two.whoami().await.unwrap(); // now in node two's credential cache
    kept.whoami().await.unwrap();
    let id = own_session_id(&on_two).await;
    // Ended by its owner through node one.
    let alice_on_one = one.anonymous().with_bearer(login_as(&one, "alice", "one").await);
    alice_on_one.revoke_own_session(id).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while on_two.whoami().await.is_ok() {
        assert!(std::time::Instant::now() < deadline, "node two still honours the session 3 s after it was ended");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    kept.whoami().await.unwrap();
    // Revoke-all through node one ends the rest on node two.
    idm.revoke_user_sessions("alice").await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while kept.whoami().await.is_ok() {
        assert!(std::time::Instant::now() < deadline, "node two still honours a session 3 s after revoke-all");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    two.running.shutdown().await.unwrap();
    one.running.shutdown().await.unwrap();
}

/// The forward-auth sign-in page records where its sessions come from, as the API login does.
#[tokio::test]
async fn the_sign_in_page_records_client_and_user_agent() {
    use crate::forward_auth::{csrf_form, encode, fixture, http};
    let fx = fixture(|_| {}).await;
    let (csrf, token) = csrf_form(&fx, "/login").await;
    let body = format!("name=alice&password={}&rd=&csrf={}", encode(PASSWORD), encode(&token));
    let response = http()
        .post(format!("{}/login", fx.public_url))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", csrf)
        .header("origin", &fx.public_url)
        .header("user-agent", "Mozilla/5.0 (sign-in page)")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let cookie = response.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let session = cookie.split_once('=').unwrap().1.to_owned();
    let alice = fx.server.anonymous().with_bearer(session);
    let own = alice.own_sessions().await.unwrap();
    let current = own.items.iter().find(|s| s.current).unwrap();
    assert_eq!(current.user_agent.as_deref(), Some("Mozilla/5.0 (sign-in page)"));
    assert_eq!((current.client.as_deref(), current.auth_strength.as_str()), (Some("127.0.0.1"), "password"));
}

/// A session opened by redeeming a recovery link records its client and user agent too.
#[tokio::test]
async fn a_recovery_links_session_records_client_and_user_agent() {
    let server = TestServer::start_with(|c| c.server.public_url = Some("https://id.example.test".into())).await;
    let idm = server.idm().await;
    idm.create_user(&user("alice")).await.unwrap();
    let link = idm.recovery_link("alice", None).await.unwrap();
    let token = link.url.expose().split_once("token=").unwrap().1.to_owned();
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/auth/recover", server.url))
        .header("user-agent", "recovering/1.0")
        .json(&serde_json::json!({ "token": token, "password": "a brand new passphrase" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    let alice = server.anonymous().with_bearer(body["token"].as_str().unwrap());
    let own = alice.own_sessions().await.unwrap();
    assert_eq!(own.items.len(), 1);
    let session = &own.items[0];
    assert_eq!((session.user_agent.as_deref(), session.client.as_deref()), (Some("recovering/1.0"), Some("127.0.0.1")));
    assert_eq!(session.auth_strength, "password");
    server.running.shutdown().await.unwrap();
}
