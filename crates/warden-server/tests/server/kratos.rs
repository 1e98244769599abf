//! Issue 13's Kratos-shaped admin calls under `/compat/kratos/`: an identity is a Warden user,
//! with the native calls' permissions, on SQLite and PostgreSQL.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use warden_server::clock::Clock;

use warden_core::api::CreateBinding;

use crate::api::{PgDatabase, TestServer, role, user};
use crate::forward_auth::http;

const PUBLIC_URL: &str = "https://id.example.test";

struct Kratos {
    base: String,
    token: Option<String>,
}

impl Kratos {
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value, Option<String>) {
        let mut request = http().request(method, format!("{}/compat/kratos{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let link = response.headers().get("link").map(|v| v.to_str().unwrap().to_owned());
        if status.is_client_error() {
            let kind = response.headers()["content-type"].to_str().unwrap().to_owned();
            assert_eq!(kind, "application/problem+json", "{path}");
        }
        let text = response.text().await.unwrap();
        let value = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() };
        (status, value, link)
    }

    /// The user names of `GET /identities?credentials_identifier=…`.
    async fn found(&self, identifier: &str) -> Vec<String> {
        let path = format!("/identities?credentials_identifier={}", crate::forward_auth::encode(identifier));
        let (status, body, link) = self.call(Method::GET, &path, None).await;
        assert_eq!((status, link), (StatusCode::OK, None), "{identifier}");
        body.as_array().unwrap().iter().map(|i| i["traits"]["username"].as_str().unwrap().to_owned()).collect()
    }

    async fn create(&self, traits: Value) -> (StatusCode, Value) {
        let (status, body, _) = self.call(Method::POST, "/identities", Some(json!({"schema_id": "default", "traits": traits}))).await;
        (status, body)
    }
}

fn identity_create(email: &str) -> Value {
    json!({"email": email})
}

async fn start(database: Option<String>) -> TestServer {
    TestServer::start_with(|c| {
        c.server.public_url = Some(PUBLIC_URL.into());
        // helper (in idm_admins) signs in with the password alone to show a read-only session's
        // limits; the compatibility layer's rules do not depend on the MFA policy.
        c.auth.mfa_required_for_admin_roles = false;
        if let Some(url) = database {
            c.database.url = url;
        }
    })
    .await
}

/// The next page's path (`/identities?…`) from a `Link` header, if there is one.
fn next_page(link: &str) -> Option<String> {
    link.split(',').find(|part| part.ends_with("rel=\"next\"")).map(|part| {
        let target = part.trim().trim_start_matches('<');
        let target = &target[..target.find('>').unwrap()];
        target.strip_prefix("/compat/kratos").unwrap().to_owned()
    })
}

async fn scenario(server: TestServer) {
    let base = server.url.clone();
    let anonymous = Kratos { base: base.clone(), token: None };
    // First (making the superuser recovers idm_admin, ending its earlier sessions): carol holds
    // a custom administrative role, and helper is in idm_admins.
    let root = server.superuser().await;
    root.create_user(&user("carol")).await.unwrap();
    root.create_user(&user("helper")).await.unwrap();
    root.create_role(&role("platform-admin", "Platform admin", &["warden:roles", "warden:bindings"])).await.unwrap();
    root.create_binding(&CreateBinding { role: "platform-admin".into(), subject: "user:carol".into(), ..Default::default() })
        .await
        .unwrap();
    root.add_members("idm_admins", &["user:helper".to_owned()]).await.unwrap();
    let carol_id = root.get_user("carol").await.unwrap().id;
    // One idm_admin session for both APIs: another would end this one (the host's recovery).
    let token = server.token_for("idm_admin").await;
    let idm = server.anonymous().with_bearer(&token);
    let admin = Kratos { base: base.clone(), token: Some(token) };
    let some_id = uuid::Uuid::now_v7();

    // Never open: every route wants a credential.
    for (method, path) in [
        (Method::GET, "/identities".to_owned()),
        (Method::POST, "/identities".to_owned()),
        (Method::GET, format!("/identities/{some_id}")),
        (Method::DELETE, format!("/identities/{some_id}")),
        (Method::POST, "/recovery/link".to_owned()),
    ] {
        let body =
            (method == Method::POST).then(|| json!({"schema_id": "default", "traits": {"email": "x@example.com"}, "identity_id": some_id}));
        let (status, problem, _) = anonymous.call(method.clone(), &path, body).await;
        assert_eq!((status, problem["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthenticated")), "{method} {path}");
    }

    // A person without rights over users: 403 on every call, whatever the id.
    idm.create_user(&user("mallory")).await.unwrap();
    let login = server.anonymous().login("mallory", "correct horse battery").await.unwrap();
    server.anonymous().with_bearer(login.token.expose()).reauth("correct horse battery").await.unwrap();
    let mallory = Kratos { base: base.clone(), token: Some(login.token.expose().to_owned()) };
    let (status, problem) = mallory.create(identity_create("m2@example.com")).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")));
    for (method, path) in [
        (Method::GET, "/identities".to_owned()),
        (Method::GET, format!("/identities/{some_id}")),
        (Method::DELETE, format!("/identities/{some_id}")),
    ] {
        let (status, problem, _) = mallory.call(method.clone(), &path, None).await;
        assert_eq!((status, problem["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")), "{method} {path}");
    }
    let (status, _, _) = mallory.call(Method::POST, "/recovery/link", Some(json!({"identity_id": some_id}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The native rules hold: a read-only session of an idm_admins member reads but does not
    // write; a user with power over Warden is an idm_superuser's to delete or recover.
    let helper_login = server.anonymous().login("helper", "correct horse battery").await.unwrap();
    let helper = Kratos { base: base.clone(), token: Some(helper_login.token.expose().to_owned()) };
    let (status, problem) = helper.create(identity_create("h2@example.com")).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::FORBIDDEN, Some("session.not_elevated")));
    let (status, _, _) = helper.call(Method::GET, &format!("/identities/{carol_id}"), None).await;
    assert_eq!(status, StatusCode::OK, "reading needs no write window");
    for (method, path, body) in [
        (Method::DELETE, format!("/identities/{carol_id}"), None),
        (Method::POST, "/recovery/link".to_owned(), Some(json!({"identity_id": carol_id}))),
    ] {
        let (status, problem, _) = admin.call(method.clone(), &path, body).await;
        assert_eq!((status, problem["code"].as_str()), (StatusCode::FORBIDDEN, Some("account.high_privilege")), "{method} {path}");
    }
    let root_token = server.anonymous().login("root", "correct horse battery").await.unwrap().token;
    server.anonymous().with_bearer(root_token.expose()).reauth("correct horse battery").await.unwrap();
    let root_kratos = Kratos { base: base.clone(), token: Some(root_token.expose().to_owned()) };
    let (status, _, _) = root_kratos.call(Method::POST, "/recovery/link", Some(json!({"identity_id": carol_id}))).await;
    assert_eq!(status, StatusCode::OK, "an idm_superuser may");

    // Bad traits: 400 `validation`, naming the trait, and nothing created.
    for (traits, field) in [
        (json!({}), "traits.email"),
        (json!({"email": "not-an-address"}), "traits.email"),
        (json!({"email": 42}), "traits.email"),
        (json!({"email": "a@example.com", "favourite_colour": "red"}), "traits"),
        (json!({"email": "a@example.com", "username": "9lives"}), "traits.username"),
    ] {
        let (status, problem) = admin.create(traits.clone()).await;
        assert_eq!((status, problem["code"].as_str()), (StatusCode::BAD_REQUEST, Some("validation")), "{traits}");
        assert!(problem["detail"].as_str().unwrap().contains(field), "{traits}: {problem}");
    }
    let (status, problem, _) =
        admin.call(Method::POST, "/identities", Some(json!({"schema_id": "customer", "traits": {"email": "a@example.com"}}))).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::BAD_REQUEST, Some("validation")));
    let (status, problem, _) = admin.call(Method::POST, "/identities", Some(json!({"traits": {"email": "a@example.com"}}))).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::BAD_REQUEST, Some("validation")), "schema_id is required");
    let names = |page: warden_core::api::Page<warden_core::model::User>| page.items.iter().map(|u| u.name.to_string()).collect::<Vec<_>>();
    assert!(!names(idm.list_users(&warden_client::ListQuery::default()).await.unwrap()).iter().any(|n| n == "a" || n == "not-an-address"));

    // Create: the user behind it, the shape of Kratos' identity.
    let (status, jane) =
        admin.create(json!({"email": "Jane.Doe@example.com", "name": {"first": "Jane", "last": "Doe"}, "phone": "+1 555 0100"})).await;
    assert_eq!(status, StatusCode::CREATED, "{jane}");
    assert_eq!(jane["schema_id"], "default");
    assert_eq!(jane["state"], "active");
    assert_eq!(
        jane["traits"],
        json!({"email": "Jane.Doe@example.com", "username": "jane.doe", "name": {"first": "Jane", "last": "Doe"}, "phone": "+1 555 0100"})
    );
    assert_eq!(
        jane["verifiable_addresses"],
        json!([{"value": "Jane.Doe@example.com", "verified": true, "via": "email", "status": "completed"}])
    );
    assert_eq!(jane["recovery_addresses"], json!([{"value": "Jane.Doe@example.com", "via": "email"}]));
    assert!(jane["created_at"].is_string() && jane["updated_at"].is_string());
    let jane_id = jane["id"].as_str().unwrap().to_owned();
    let native = idm.get_user(&jane_id).await.unwrap();
    assert_eq!((native.name.as_str(), native.profile.first_name.as_deref(), native.disabled), ("jane.doe", Some("Jane"), false));

    // Name collisions: -2, -3, … in order; Warden's own names count as taken; a username given
    // outright is taken as it is, or refused.
    for (email, expected) in [("jane.doe@other.org", "jane.doe-2"), ("JANE.DOE@third.net", "jane.doe-3"), ("admin@example.com", "admin-2")]
    {
        let (status, identity) = admin.create(identity_create(email)).await;
        assert_eq!(status, StatusCode::CREATED, "{identity}");
        assert_eq!(identity["traits"]["username"], expected, "{email}");
    }
    idm.create_user(&user("sam")).await.unwrap();
    let (status, identity) = admin.create(identity_create("sam@example.com")).await;
    assert_eq!((status, identity["traits"]["username"].as_str()), (StatusCode::CREATED, Some("sam-2")), "a native user holds sam");
    let (status, problem) = admin.create(json!({"email": "other@example.com", "username": "jane.doe"})).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::CONFLICT, Some("name.taken")));

    // Looked up as Kratos scripts do, by what the person signs in with: a name or a verified
    // primary address (any case).
    assert_eq!(admin.found("JANE.DOE@EXAMPLE.COM").await, ["jane.doe"]);
    assert_eq!(admin.found("jane.doe@other.org").await, ["jane.doe-2"]);
    assert_eq!(admin.found("jane.doe-3").await, ["jane.doe-3"]);
    assert!(admin.found("nobody@example.com").await.is_empty());
    let (status, _, _) = mallory.call(Method::GET, "/identities?credentials_identifier=jane.doe", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // `inactive` is a disabled user, from the first moment.
    let (status, inactive, _) = admin
        .call(
            Method::POST,
            "/identities",
            Some(json!({"schema_id": "default", "state": "inactive", "traits": {"email": "idle@example.com", "name": "Idle Person"},
                "credentials": {"password": {"config": {"password": "correct horse battery"}}}})),
        )
        .await;
    assert_eq!((status, inactive["state"].as_str()), (StatusCode::CREATED, Some("inactive")));
    assert_eq!(inactive["traits"]["name"], "Idle Person");
    assert!(idm.get_user("idle").await.unwrap().disabled);
    assert_eq!(server.anonymous().login("idle", "correct horse battery").await.unwrap_err().code(), "auth.failed");

    // Get: as created; unknown and malformed ids are 404.
    let (status, got, _) = admin.call(Method::GET, &format!("/identities/{jane_id}"), None).await;
    assert_eq!((status, &got), (StatusCode::OK, &jane));
    for path in [format!("/identities/{some_id}"), "/identities/jane.doe".to_owned()] {
        let (status, problem, _) = admin.call(Method::GET, &path, None).await;
        assert_eq!((status, problem["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "{path}");
    }
    // A service account is no identity.
    let bot =
        idm.create_service_account(&warden_core::api::CreateServiceAccount { name: "ci-bot".into(), ..Default::default() }).await.unwrap();
    let (status, _, _) = admin.call(Method::GET, &format!("/identities/{}", bot.id), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // List: pages of two, followed through `Link: rel="next"`, in name order, every user once.
    let (status, problem, _) = admin.call(Method::GET, "/identities?page_size=0", None).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::BAD_REQUEST, Some("validation")));
    let mut seen = Vec::new();
    let mut path = Some("/identities?page_size=2".to_owned());
    let mut pages = 0;
    while let Some(current) = path {
        let (status, page, link) = admin.call(Method::GET, &current, None).await;
        assert_eq!(status, StatusCode::OK);
        let items = page.as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|i| i["traits"]["username"].as_str().unwrap().to_owned()));
        let link = link.expect("a Link header on every page");
        assert!(link.contains("rel=\"first\""), "{link}");
        path = next_page(&link);
        pages += 1;
    }
    let all = names(idm.list_users(&warden_client::ListQuery::default()).await.unwrap());
    assert_eq!(seen, all, "every user once, in the native list's order");
    assert!(pages >= 4 && seen.contains(&"jane.doe-3".to_owned()));

    // Recovery link: the native rules (public_url, the lifetime's bounds), redeemed at
    // /api/v1/auth/recover.
    let (status, problem, _) = admin.call(Method::POST, "/recovery/link", Some(json!({"identity_id": jane_id, "expires_in": "30d"}))).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::BAD_REQUEST, Some("validation")));
    let (status, problem, _) = admin.call(Method::POST, "/recovery/link", Some(json!({"identity_id": some_id}))).await;
    assert_eq!((status, problem["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    let (status, link, _) = admin.call(Method::POST, "/recovery/link", Some(json!({"identity_id": jane_id, "expires_in": "2h"}))).await;
    assert_eq!(status, StatusCode::OK, "{link}");
    let url = link["recovery_link"].as_str().unwrap();
    let token = url.strip_prefix(&format!("{PUBLIC_URL}/recover?token=")).unwrap();
    let expires =
        time::OffsetDateTime::parse(link["expires_at"].as_str().unwrap(), &time::format_description::well_known::Rfc3339).unwrap();
    let ttl = expires - server.clock.now();
    assert!(ttl <= time::Duration::hours(2) && ttl > time::Duration::hours(2) - time::Duration::seconds(1), "{ttl}");
    let session = server.anonymous().recover(token, "jasper's new passphrase").await.unwrap();
    assert_eq!(session.account.name.as_str(), "jane.doe");
    server.anonymous().login("jane.doe", "jasper's new passphrase").await.unwrap();

    // Delete: 204, then 404 for get, delete and links alike.
    let (status, body, _) = admin.call(Method::DELETE, &format!("/identities/{jane_id}"), None).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    for (method, path) in [(Method::GET, format!("/identities/{jane_id}")), (Method::DELETE, format!("/identities/{jane_id}"))] {
        let (status, problem, _) = admin.call(method.clone(), &path, None).await;
        assert_eq!((status, problem["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "{method} {path}");
    }
    let (status, _, _) = admin.call(Method::POST, "/recovery/link", Some(json!({"identity_id": jane_id}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(server.anonymous().login("jane.doe", "jasper's new passphrase").await.unwrap_err().code(), "auth.failed");
}

#[tokio::test]
async fn kratos_identities_on_sqlite() {
    scenario(start(None).await).await;
}

#[tokio::test]
async fn kratos_identities_on_postgres() {
    let db = PgDatabase::create("kratos");
    scenario(start(Some(db.url())).await).await;
}

/// The routes are in the API description, under their own tag.
#[tokio::test]
async fn kratos_routes_are_documented() {
    let server = TestServer::start().await;
    let document: Value = http().get(format!("{}/api/v1/openapi.json", server.url)).send().await.unwrap().json().await.unwrap();
    for (path, methods) in [
        ("/compat/kratos/identities", &["get", "post"][..]),
        ("/compat/kratos/identities/{id}", &["get", "delete"][..]),
        ("/compat/kratos/recovery/link", &["post"][..]),
    ] {
        for method in methods {
            let operation = &document["paths"][path][method];
            assert_eq!(operation["tags"], json!(["compat-kratos"]), "{method} {path}");
            assert!(operation["responses"]["401"].is_object() && operation["responses"]["403"].is_object(), "{method} {path}");
        }
    }
}
