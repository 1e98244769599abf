//! Issue 13's per-tenant preferences (`/api/v1/self/preferences/{tenant}`): the caller's own,
//! per tenant, bounded, on SQLite and PostgreSQL.

use serde_json::json;
use warden_client::{AuditQuery, Client, ClientError};
use warden_core::api::{CreateApiToken, CreateServiceAccount, CreateTenant};
use warden_core::preferences::{TenantPreferences, Theme};

use crate::api::{PgDatabase, TestServer, user};
use crate::forward_auth::http;

fn doc(value: serde_json::Value) -> TenantPreferences {
    serde_json::from_value(value).unwrap()
}

/// A refusal's code and whether its detail names `field`.
fn refused(e: &ClientError, field: &str) -> (String, bool) {
    (e.code().to_owned(), e.to_string().contains(field))
}

async fn signed_in(server: &TestServer, name: &str) -> Client {
    let login = server.anonymous().login(name, "correct horse battery").await.unwrap();
    server.anonymous().with_bearer(login.token.expose())
}

async fn scenario(server: TestServer) {
    let idm = server.idm().await;
    for name in ["alice", "bob"] {
        idm.create_user(&user(name)).await.unwrap();
    }
    let sysadmin = server.sysadmin().await;
    sysadmin.create_tenant(&CreateTenant { name: "acme".into(), description: None }).await.unwrap();

    // Never open.
    for method in [reqwest::Method::GET, reqwest::Method::PUT] {
        let response = http()
            .request(method.clone(), format!("{}/api/v1/self/preferences/default", server.url))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{method}");
    }

    // A read-only session (never re-authenticated) reads and writes its own.
    let alice = signed_in(&server, "alice").await;
    let bob = signed_in(&server, "bob").await;
    assert_eq!(alice.preferences("default").await.unwrap(), TenantPreferences::default(), "nothing stored: the defaults");
    let mine = doc(json!({"theme": "dark", "timezone": "Europe/Berlin", "default_namespace": "Prod.Team-A",
        "values": {"page_size": 50, "pinned": ["flows", "logs"], "nested": {"a": true}}}));
    let stored = alice.set_preferences("default", &mine).await.unwrap();
    assert_eq!(stored.default_namespace.as_deref(), Some("prod.team-a"), "normalised");
    assert_eq!(alice.preferences("default").await.unwrap(), stored);

    // Per tenant, and per account: bob sees none of alice's, and his own do not touch hers.
    assert_eq!(alice.preferences("acme").await.unwrap(), TenantPreferences::default());
    let light = doc(json!({"theme": "light"}));
    alice.set_preferences("acme", &light).await.unwrap();
    assert_eq!(alice.preferences("default").await.unwrap(), stored);
    assert_eq!(bob.preferences("default").await.unwrap(), TenantPreferences::default());
    bob.set_preferences("default", &doc(json!({"theme": "system", "timezone": "UTC"}))).await.unwrap();
    assert_eq!(alice.preferences("default").await.unwrap(), stored);
    assert_eq!(bob.preferences("default").await.unwrap().theme, Some(Theme::System));

    // Refusals name the field and keep what was stored.
    let many: serde_json::Map<String, serde_json::Value> = (0..65).map(|i| (format!("k{i}"), json!(i))).collect();
    let cases = [
        (json!({"values": many}), "values"),
        (json!({"values": {"k".repeat(65): 1}}), "values"),
        (json!({"values": {"blob": "x".repeat(8 * 1024)}}), "preferences"),
        (json!({"timezone": "Europe/../Berlin"}), "timezone"),
        (json!({"default_namespace": "not a namespace"}), "default_namespace"),
    ];
    for (body, field) in cases {
        let e = alice.set_preferences("default", &doc(body)).await.unwrap_err();
        assert_eq!(refused(&e, field), ("validation".to_owned(), true), "{field}: {e}");
    }
    // What the typed client cannot send: the body as raw JSON.
    let raw = server.anonymous().login("alice", "correct horse battery").await.unwrap().token;
    for (body, field) in [(json!({"theme": "blue"}), "theme"), (json!({"colour": "blue"}), "colour")] {
        let response = http()
            .put(format!("{}/api/v1/self/preferences/default", server.url))
            .bearer_auth(raw.expose())
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        let problem: serde_json::Value = response.json().await.unwrap();
        assert_eq!(problem["code"], "validation");
        assert!(problem["detail"].as_str().unwrap().contains(field), "{problem}");
    }
    assert_eq!(alice.preferences("default").await.unwrap(), stored, "unchanged by the refusals");

    // Unknown tenants, and names no tenant can have: 404.
    for tenant in ["nowhere", "Not A Name!"] {
        assert_eq!(alice.preferences(tenant).await.unwrap_err().code(), "not_found", "{tenant}");
        assert_eq!(alice.set_preferences(tenant, &light).await.unwrap_err().code(), "not_found", "{tenant}");
    }

    // A service account's API token: a read-write one may, a read-only one may not.
    idm.create_service_account(&CreateServiceAccount { name: "ui-bot".into(), ..Default::default() }).await.unwrap();
    let token_of = |read_write| CreateApiToken { read_write, ..Default::default() };
    let read_only = idm.create_api_token("ui-bot", &token_of(false)).await.unwrap();
    let read_write = idm.create_api_token("ui-bot", &token_of(true)).await.unwrap();
    let read_only = server.anonymous().with_bearer(read_only.token.expose());
    let read_write = server.anonymous().with_bearer(read_write.token.expose());
    assert_eq!(read_only.preferences("default").await.unwrap(), TenantPreferences::default());
    assert_eq!(read_only.set_preferences("default", &light).await.unwrap_err().code(), "token.scope");
    read_write.set_preferences("default", &light).await.unwrap();
    assert_eq!(read_only.preferences("default").await.unwrap(), light);

    // Audited (which tenant, never the document), without a revision.
    let events = sysadmin.audit(&AuditQuery { action: Some("preferences.set".into()), ..Default::default() }).await.unwrap();
    assert_eq!(events.items.len(), 4, "{:?}", events.items);
    let newest_alice = events.items.iter().find(|e| e.target_name.as_deref() == Some("alice")).unwrap();
    assert_eq!(newest_alice.actor_name.as_deref(), Some("alice"));
    assert_eq!(newest_alice.details, json!({"tenant": "acme"}));

    // A deleted account's preferences go with it.
    let bob_id = idm.get_user("bob").await.unwrap().id;
    let store = &server.running.context.store;
    let default = warden_core::Name::parse("default").unwrap();
    assert!(store.preferences(bob_id, &default).await.unwrap().is_some());
    idm.delete_user("bob").await.unwrap();
    assert_eq!(store.preferences(bob_id, &default).await.unwrap(), None);
    // And a deleted tenant's.
    let alice_id = idm.get_user("alice").await.unwrap().id;
    sysadmin.delete_tenant("acme").await.unwrap();
    assert_eq!(store.preferences(alice_id, &warden_core::Name::parse("acme").unwrap()).await.unwrap(), None);
    assert_eq!(alice.preferences("acme").await.unwrap_err().code(), "not_found");
}

#[tokio::test]
async fn preferences_on_sqlite() {
    scenario(TestServer::start().await).await;
}

#[tokio::test]
async fn preferences_on_postgres() {
    let db = PgDatabase::create("preferences");
    let url = db.url();
    scenario(TestServer::start_with(|c| c.database.url = url).await).await;
}
