//! The OpenID Connect client registry: only holders of `warden:oidc_clients:*` (system
//! administrators) register clients; redirect URIs are checked one by one and named when
//! refused; a confidential client's secret is shown once, kept only as its SHA-256 and found
//! in no later answer, audit event or database page; public clients have none.

use warden_client::{AuditQuery, Client, ClientError};
use warden_core::api::{CreateOidcClient, CreateServiceAccount, CreateTenant, UpdateOidcClient};
use warden_core::credential::TokenHash;
use warden_core::oidc::{ClaimSet, SigningAlg};
use warden_server::services::recovery;

use crate::api::TestServer;

fn code(e: &ClientError) -> &str {
    e.code()
}

fn detail(e: &ClientError) -> String {
    match e {
        ClientError::Api(problem) => problem.detail.clone().unwrap_or_default(),
        other => panic!("not a problem: {other:?}"),
    }
}

fn grafana() -> CreateOidcClient {
    CreateOidcClient {
        client_id: "grafana".into(),
        redirect_uris: vec!["https://grafana.example.org/login/generic_oauth".into()],
        ..CreateOidcClient::default()
    }
}

async fn events(client: &Client, action: &str) -> Vec<serde_json::Value> {
    let query = AuditQuery { action: Some(action.into()), ..Default::default() };
    let page = client.audit(&query).await.unwrap();
    page.items.iter().map(|e| serde_json::to_value(e).unwrap()).collect()
}

/// Every byte the SQLite database holds on disk: the main file and its write-ahead log.
fn database_bytes(server: &TestServer) -> Vec<u8> {
    let path = server.running.context.config.database.url.trim_start_matches("sqlite://").to_owned();
    let mut bytes = std::fs::read(&path).unwrap();
    if let Ok(mut wal) = std::fs::read(format!("{path}-wal")) {
        bytes.append(&mut wal);
    }
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn only_system_administrators_register_clients_and_writes_need_an_elevated_session() {
    let server = TestServer::start().await;
    // A session that has not re-authenticated reads, and is refused writes.
    let password = recovery::recover_account(&server.running.context, "admin").await.unwrap();
    let login = server.anonymous().login("admin", password.expose()).await.unwrap();
    let read_only = server.anonymous().with_bearer(login.token.expose());
    assert!(read_only.list_oidc_clients().await.unwrap().is_empty());
    let e = read_only.create_oidc_client(&grafana()).await.unwrap_err();
    assert_eq!((code(&e), e.status()), ("session.not_elevated", Some(403)));

    // idm_admin governs people, not clients.
    let idm = server.idm().await;
    let e = idm.create_oidc_client(&grafana()).await.unwrap_err();
    assert_eq!((code(&e), e.status()), ("forbidden", Some(403)));
    assert_eq!(code(&idm.list_oidc_clients().await.unwrap_err()), "forbidden");

    let admin = server.sysadmin().await;
    admin.create_oidc_client(&grafana()).await.unwrap();
    for e in [
        idm.get_oidc_client("grafana").await.unwrap_err(),
        idm.update_oidc_client("grafana", &UpdateOidcClient { first_party: Some(true), ..Default::default() }).await.unwrap_err(),
        idm.rotate_oidc_client_secret("grafana").await.map(drop).unwrap_err(),
        idm.delete_oidc_client("grafana").await.unwrap_err(),
    ] {
        assert_eq!((code(&e), e.status()), ("forbidden", Some(403)));
    }
    assert!(admin.whoami().await.unwrap().permissions.contains(&"warden:oidc_clients:write".to_owned()));
}

#[tokio::test]
async fn bad_clients_are_refused_with_the_field_named() {
    let server = TestServer::start().await;
    let admin = server.sysadmin().await;
    let with_uris = |uris: &[&str]| CreateOidcClient { redirect_uris: uris.iter().map(|u| (*u).to_owned()).collect(), ..grafana() };
    for uri in [
        "https://*.example.org/cb",
        "https://grafana.example.org/cb#fragment",
        "https://user:pass@grafana.example.org/cb",
        "http://grafana.example.org/cb",
        "/login/generic_oauth",
        "javascript:alert(1)",
        "",
    ] {
        let e = admin.create_oidc_client(&with_uris(&[uri])).await.unwrap_err();
        assert_eq!((code(&e), e.status()), ("validation", Some(400)), "{uri:?}");
        assert!(detail(&e).contains("redirect_uris"), "{uri:?}: {}", detail(&e));
    }
    let e = admin.create_oidc_client(&with_uris(&[])).await.unwrap_err();
    assert!(code(&e) == "validation" && detail(&e).contains("redirect_uris"), "{}", detail(&e));
    let e = admin
        .create_oidc_client(&CreateOidcClient { post_logout_redirect_uris: vec!["https://*.example.org/".into()], ..grafana() })
        .await
        .unwrap_err();
    assert!(code(&e) == "validation" && detail(&e).contains("post_logout_redirect_uris"), "{}", detail(&e));
    for (req, field) in [
        (CreateOidcClient { client_id: "Not a name!".into(), ..grafana() }, "client_id"),
        (CreateOidcClient { claims: vec!["everything".into()], ..grafana() }, "claims"),
        (CreateOidcClient { signing_alg: Some("HS256".into()), ..grafana() }, "signing_alg"),
        (CreateOidcClient { scopes: vec!["two words".into()], ..grafana() }, "scopes"),
        (CreateOidcClient { public: true, service_account: Some("bot".into()), ..grafana() }, "service_account"),
    ] {
        let e = admin.create_oidc_client(&req).await.unwrap_err();
        assert!(code(&e) == "validation" && detail(&e).contains(field), "{field}: {}", detail(&e));
    }
    // What is named must exist.
    let e = admin.create_oidc_client(&CreateOidcClient { permissions_tenant: Some("nowhere".into()), ..grafana() }).await.unwrap_err();
    assert_eq!((code(&e), e.status()), ("not_found", Some(404)));
    let e = admin.create_oidc_client(&CreateOidcClient { service_account: Some("ghost".into()), ..grafana() }).await.unwrap_err();
    assert_eq!((code(&e), e.status()), ("not_found", Some(404)));
    // Its secret would act as the account: never a break-glass account, and one with power
    // over Warden only by an idm_superuser (admin holds system_admin, not idm_superuser; an
    // idm_superuser makes the bot one).
    let e = admin.create_oidc_client(&CreateOidcClient { service_account: Some("idm_admin".into()), ..grafana() }).await.unwrap_err();
    assert_eq!((code(&e), e.status()), ("account.protected", Some(403)));
    server.idm().await.create_service_account(&CreateServiceAccount { name: "root-bot".into(), ..Default::default() }).await.unwrap();
    server
        .superuser()
        .await
        .create_binding(&warden_core::api::CreateBinding {
            role: "idm_admin".into(),
            subject: "sa:root-bot".into(),
            tenant: None,
            namespaces: Vec::new(),
        })
        .await
        .unwrap();
    let e = admin.create_oidc_client(&CreateOidcClient { service_account: Some("root-bot".into()), ..grafana() }).await.unwrap_err();
    assert_eq!((code(&e), e.status()), ("account.high_privilege", Some(403)));
    assert!(admin.list_oidc_clients().await.unwrap().is_empty(), "nothing was written");

    // Accepted: loopback with any port, a private-use scheme; then the name is taken.
    let ok = with_uris(&["https://grafana.example.org/cb", "http://localhost:3000/cb", "http://127.0.0.1:53682/", "com.example.app:/cb"]);
    admin.create_oidc_client(&ok).await.unwrap();
    let e = admin.create_oidc_client(&CreateOidcClient { public: true, ..grafana() }).await.unwrap_err();
    assert_eq!((code(&e), e.status()), ("name.taken", Some(409)));
    assert_eq!(code(&admin.get_oidc_client("nope").await.unwrap_err()), "not_found");
    assert_eq!(code(&admin.delete_oidc_client("nope").await.unwrap_err()), "not_found");
}

#[tokio::test]
async fn a_confidential_clients_secret_is_shown_once_and_kept_only_hashed() {
    let server = TestServer::start().await;
    let admin = server.sysadmin().await;
    server.idm().await.create_service_account(&CreateServiceAccount { name: "grafana-bot".into(), ..Default::default() }).await.unwrap();
    admin.create_tenant(&CreateTenant { name: "acme".into(), ..Default::default() }).await.unwrap();
    let req = CreateOidcClient {
        display_name: Some("Grafana".into()),
        claims: vec!["roles".into(), "groups".into()],
        scopes: vec!["openid".into(), "email".into()],
        permissions_tenant: Some("acme".into()),
        permissions_namespace: Some("dashboards".into()),
        signing_alg: Some("ES256".into()),
        service_account: Some("grafana-bot".into()),
        ..grafana()
    };
    let created = admin.create_oidc_client(&req).await.unwrap();
    let secret = created.client_secret.clone().unwrap().expose().to_owned();
    assert!(secret.starts_with("wdc_") && secret.len() == 68, "{secret}");
    let client = &created.client;
    assert_eq!((client.client_id.as_str(), client.display_name.as_str(), client.public), ("grafana", "Grafana", false));
    assert_eq!(client.claims, [ClaimSet::Groups, ClaimSet::Roles]);
    assert_eq!(client.scopes, ["openid", "email"]);
    assert_eq!(client.signing_alg, SigningAlg::Es256);
    assert_eq!(client.permissions_tenant.as_ref().map(warden_core::Name::as_str), Some("acme"));
    assert_eq!(client.service_account.as_ref().map(|a| a.name.as_str()), Some("grafana-bot"));

    // Never again: not in a read, a list, the audit log, nor the database (its hash is).
    assert_eq!(&admin.get_oidc_client("grafana").await.unwrap(), client);
    let listed = serde_json::to_string(&admin.list_oidc_clients().await.unwrap()).unwrap();
    assert!(listed.contains("grafana") && !listed.contains(&secret) && !listed.contains("secret"), "{listed}");
    let created_events = events(&admin, "oidc_client.create").await;
    assert_eq!(created_events.len(), 1);
    assert_eq!(created_events[0]["details"]["client"], "grafana");
    let store = &server.running.context.store;
    assert_eq!(store.oidc_client_secret(client.id).await.unwrap(), Some(TokenHash::of(&secret)));
    let db = database_bytes(&server);
    assert!(!contains(&db, secret.as_bytes()), "the secret is in the database");
    assert!(contains(&db, &TokenHash::of(&secret).0), "its SHA-256 is");

    // A new secret replaces the old.
    let rotated = admin.rotate_oidc_client_secret("grafana").await.unwrap();
    let second = rotated.client_secret.expose().to_owned();
    assert!(second.starts_with("wdc_") && second != secret);
    assert_eq!(store.oidc_client_secret(client.id).await.unwrap(), Some(TokenHash::of(&second)));
    assert_eq!(events(&admin, "oidc_client.secret.rotate").await.len(), 1);

    // Changed and deleted, each audited with what it changed.
    let update = UpdateOidcClient {
        redirect_uris: Some(vec!["https://grafana.example.org/login/generic_oauth".into(), "http://localhost:3000/cb".into()]),
        first_party: Some(true),
        service_account: Some(String::new()),
        ..Default::default()
    };
    let updated = admin.update_oidc_client("grafana", &update).await.unwrap();
    assert!(updated.first_party && updated.service_account.is_none() && updated.redirect_uris.len() == 2);
    let e = admin.update_oidc_client("grafana", &UpdateOidcClient { redirect_uris: Some(vec![]), ..Default::default() }).await.unwrap_err();
    assert!(code(&e) == "validation" && detail(&e).contains("redirect_uris"));
    let updates = events(&admin, "oidc_client.update").await;
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0]["details"]["fields"], serde_json::json!(["first_party", "redirect_uris", "service_account"]));
    admin.delete_oidc_client("grafana").await.unwrap();
    assert_eq!(code(&admin.get_oidc_client("grafana").await.unwrap_err()), "not_found");
    assert_eq!(events(&admin, "oidc_client.delete").await.len(), 1);

    let everything = serde_json::to_string(&admin.audit(&AuditQuery { limit: Some(1000), ..Default::default() }).await.unwrap()).unwrap();
    for secret in [&secret, &second] {
        assert!(!everything.contains(secret.as_str()), "a secret is in the audit log");
        assert!(!contains(&database_bytes(&server), secret.as_bytes()), "a secret is in the database");
    }
}

#[tokio::test]
async fn a_public_client_has_no_secret_to_rotate() {
    let server = TestServer::start().await;
    let admin = server.sysadmin().await;
    let req = CreateOidcClient {
        client_id: "cli-app".into(),
        public: true,
        redirect_uris: vec!["http://127.0.0.1/callback".into()],
        ..CreateOidcClient::default()
    };
    let created = admin.create_oidc_client(&req).await.unwrap();
    assert!(created.client.public && created.client_secret.is_none());
    assert_eq!(created.client.scopes, ["openid", "profile", "email"], "the default scopes");
    assert_eq!(created.client.signing_alg, SigningAlg::Rs256);
    let json = serde_json::to_value(&created).unwrap();
    assert!(json.get("client_secret").is_none(), "{json}");
    let e = admin.rotate_oidc_client_secret("cli-app").await.unwrap_err();
    assert_eq!((code(&e), e.status()), ("oidc_client.public", Some(409)));
    assert!(events(&admin, "oidc_client.secret.rotate").await.is_empty());
    assert_eq!(server.running.context.store.oidc_client_secret(created.client.id).await.unwrap(), None);
}
