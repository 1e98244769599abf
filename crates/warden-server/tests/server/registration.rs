//! Issue 13's roles at creation: a user and its first role bindings are written together, by a
//! caller who may create those bindings, or not at all.

use warden_client::{AuditQuery, Client, ClientError};
use warden_core::api::{BindingQuery, CreateBinding, CreateRole, CreateTenant, CreateUser};

use crate::api::{TestServer, role, user};

fn code(e: &ClientError) -> &str {
    e.code()
}

fn with_roles(name: &str, roles: &[&str]) -> CreateUser {
    CreateUser { roles: roles.iter().map(|r| (*r).to_owned()).collect(), ..user(name) }
}

async fn bindings_of(client: &Client, subject: &str) -> Vec<String> {
    let query = BindingQuery { subject: Some(subject.into()), ..Default::default() };
    let mut roles: Vec<String> = client.list_bindings(&query).await.unwrap().items.into_iter().map(|b| b.role.to_string()).collect();
    roles.sort();
    roles
}

async fn events(client: &Client, action: &str, target: &str) -> usize {
    let query = AuditQuery { action: Some(action.into()), target: Some(target.into()), ..Default::default() };
    client.audit(&query).await.unwrap().items.len()
}

/// A user holding `warden:users` and `warden:bindings` (no built-in role), elevated.
async fn provisioner(server: &TestServer, root: &Client, idm: &Client) -> Client {
    root.create_role(&role("provisioner", "Provisioner", &["warden:users", "warden:bindings"])).await.unwrap();
    idm.create_user(&user("prov")).await.unwrap();
    root.create_binding(&CreateBinding { role: "provisioner".into(), subject: "user:prov".into(), ..Default::default() }).await.unwrap();
    let login = server.anonymous().login("prov", "correct horse battery").await.unwrap();
    let prov = server.anonymous().with_bearer(login.token.expose());
    prov.reauth("correct horse battery").await.unwrap();
    prov
}

#[tokio::test]
async fn roles_are_bound_with_the_user_or_nothing_is_written() {
    let server = TestServer::start().await;
    let root = server.superuser().await;
    let (admin, idm) = (server.sysadmin().await, server.idm().await);
    admin.create_role(&role("help-desk", "Help desk", &["tickets:read"])).await.unwrap();
    admin.create_role(&role("support", "Support", &["tickets:write"])).await.unwrap();
    let prov = provisioner(&server, &root, &idm).await;

    // One request: the user, its event, and one binding with its event per role.
    let bob = prov.create_user(&with_roles("bob", &["help-desk", "support", "help-desk"])).await.unwrap();
    assert_eq!(bob.name.as_str(), "bob");
    assert_eq!(bindings_of(&admin, "user:bob").await, ["help-desk", "support"]);
    assert_eq!(events(&admin, "user.create", "bob").await, 1);
    assert_eq!(events(&admin, "binding.create", "bob").await, 2);
    // The bindings are in force at once.
    let tenant = admin.list_bindings(&BindingQuery { subject: Some("user:bob".into()), ..Default::default() }).await.unwrap();
    assert!(tenant.items.iter().all(|b| b.tenant.as_str() == "default"));

    // Without the right to bind (idm_admin manages users, not bindings): refused, nothing written.
    assert_eq!(code(&idm.create_user(&with_roles("carol", &["help-desk"])).await.unwrap_err()), "forbidden");
    // An administrative role is an idm_superuser's to hand out: one refused role refuses all.
    let e = prov.create_user(&with_roles("carol", &["help-desk", "idm_admin"])).await.unwrap_err();
    assert_eq!(code(&e), "account.high_privilege");
    // An unknown role, an unknown tenant: refused as well.
    assert_eq!(code(&prov.create_user(&with_roles("carol", &["help-desk", "nope"])).await.unwrap_err()), "not_found");
    let in_nowhere = CreateUser { tenant: Some("nowhere".into()), ..with_roles("carol", &["help-desk"]) };
    assert_eq!(code(&prov.create_user(&in_nowhere).await.unwrap_err()), "not_found");
    assert_eq!(code(&idm.get_user("carol").await.unwrap_err()), "not_found");
    assert_eq!(events(&admin, "user.create", "carol").await, 0);
    assert_eq!(events(&admin, "binding.create", "carol").await, 0);

    // A tenant without roles says nothing: refused rather than ignored.
    let stray = CreateUser { tenant: Some("default".into()), ..user("carol") };
    assert_eq!(code(&idm.create_user(&stray).await.unwrap_err()), "validation");

    // In another tenant, with its own role; the superuser may hand out administrative roles.
    admin.create_tenant(&CreateTenant { name: "acme".into(), description: None }).await.unwrap();
    let acme_desk = CreateRole { tenant: Some("acme".into()), ..role("acme-desk", "Acme desk", &["tickets:read"]) };
    admin.create_role(&acme_desk).await.unwrap();
    // The default tenant's role is not acme's to bind.
    let in_acme = CreateUser { tenant: Some("acme".into()), ..with_roles("dave", &["help-desk"]) };
    assert_eq!(code(&prov.create_user(&in_acme).await.unwrap_err()), "not_found");
    let in_acme = CreateUser { tenant: Some("acme".into()), ..with_roles("dave", &["acme-desk"]) };
    prov.create_user(&in_acme).await.unwrap();
    let acme = admin.list_bindings(&BindingQuery { subject: Some("user:dave".into()), ..Default::default() }).await.unwrap();
    assert_eq!(acme.items.len(), 1);
    assert_eq!(acme.items[0].tenant.as_str(), "acme");
    root.create_user(&with_roles("erin", &["idm_admin"])).await.unwrap();
    assert_eq!(bindings_of(&admin, "user:erin").await, ["idm_admin"]);
    // erin holds idm_admin now: she may manage users.
    let login = server.anonymous().login("erin", "correct horse battery").await.unwrap();
    let erin = server.anonymous().with_bearer(login.token.expose());
    erin.reauth("correct horse battery").await.unwrap();
    erin.create_user(&user("frank")).await.unwrap();
}
