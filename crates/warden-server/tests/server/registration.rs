//! Issue 13's roles at creation and registration: a user and its first role bindings are
//! written together, by a caller who may create those bindings, or not at all; people
//! register themselves with a registration token (counted down atomically) or, in public
//! mode, without one.

use time::Duration;
use warden_client::{AuditQuery, Client, ClientError};
use warden_core::api::{BindingQuery, CreateBinding, CreateRegistrationToken, CreateRole, CreateTenant, CreateUser, RegisterRequest};
use warden_core::credential::Secret;
use warden_server::config::RegistrationMode;

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
    // warden:users is power over Warden: its holder must use a second factor.
    server.enrol_totp(&prov, "correct horse battery").await;
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
    // (and, holding an administrative role, must first enrol a second factor)
    assert_eq!(code(&erin.create_user(&user("frank")).await.unwrap_err()), "auth.mfa_enrolment_required");
    server.enrol_totp(&erin, "correct horse battery").await;
    erin.create_user(&user("frank")).await.unwrap();
}

fn registering(name: &str, token: Option<&str>) -> RegisterRequest {
    RegisterRequest {
        token: token.map(Secret::new),
        name: name.into(),
        password: Secret::new("a long enough passphrase"),
        email: Some(format!("{name}@example.com")),
        display_name: None,
        first_name: None,
        last_name: None,
    }
}

async fn start(mode: RegistrationMode) -> TestServer {
    TestServer::start_with(|c| c.registration.mode = mode).await
}

fn token_for(roles: &[&str], max_usage: u32) -> CreateRegistrationToken {
    CreateRegistrationToken {
        max_usage: Some(max_usage),
        ttl: Some("24h".into()),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        tenant: None,
    }
}

#[tokio::test]
async fn registration_is_off_by_default() {
    let server = TestServer::start().await;
    let e = server.anonymous().register(&registering("walk-in", None)).await.unwrap_err();
    assert_eq!((code(&e), e.status()), ("registration.disabled", Some(403)));
    // Tokens can be prepared before the mode is switched on.
    server.idm().await.create_registration_token(&token_for(&[], 1)).await.unwrap();
}

#[tokio::test]
async fn a_token_registers_up_to_its_uses_and_binds_its_roles() {
    let server = start(RegistrationMode::Token).await;
    let root = server.superuser().await;
    let (admin, idm) = (server.sysadmin().await, server.idm().await);
    admin.create_role(&role("help-desk", "Help desk", &["tickets:read"])).await.unwrap();
    let anonymous = server.anonymous();

    // Who may create tokens, and with which roles.
    assert_eq!(code(&admin.create_registration_token(&token_for(&[], 1)).await.unwrap_err()), "forbidden");
    let e = idm.create_registration_token(&token_for(&["help-desk", "idm_admin"], 1)).await.unwrap_err();
    assert_eq!(code(&e), "account.high_privilege", "a built-in role needs idm_superuser");
    // tenant_admin included, in a tenant of its own, where a binding manager may bind it.
    root.create_tenant(&CreateTenant { name: "acme".into(), description: None }).await.unwrap();
    let acme_admin = CreateRegistrationToken { tenant: Some("acme".into()), ..token_for(&["tenant_admin"], 1) };
    assert_eq!(code(&idm.create_registration_token(&acme_admin).await.unwrap_err()), "account.high_privilege");
    root.create_registration_token(&acme_admin).await.unwrap();
    assert_eq!(code(&idm.create_registration_token(&token_for(&["nope"], 1)).await.unwrap_err()), "not_found");
    for bad in [token_for(&[], 0), CreateRegistrationToken { ttl: Some("90d".into()), ..token_for(&[], 1) }] {
        assert_eq!(code(&idm.create_registration_token(&bad).await.unwrap_err()), "validation");
    }
    root.create_registration_token(&token_for(&["idm_admin"], 1)).await.unwrap();

    let created = idm.create_registration_token(&token_for(&["help-desk"], 3)).await.unwrap();
    let secret = created.token.expose().to_owned();
    assert!(secret.starts_with("wdo_") && secret.len() == 4 + 64, "256 bits: {secret}");
    assert_eq!((created.info.max_uses, created.info.uses_left), (3, 3));

    // No token, a malformed or unknown one: one answer.
    for token in [None, Some("nonsense"), Some("wdo_0000000000000000000000000000000000000000000000000000000000000000")] {
        let e = anonymous.register(&registering("eve", token)).await.unwrap_err();
        assert_eq!((code(&e), e.status()), ("token.invalid", Some(400)), "{token:?}");
    }
    for name in ["reg1", "reg2", "reg3"] {
        let registered = anonymous.register(&registering(name, Some(&secret))).await.unwrap();
        assert_eq!(registered.profile.emails[0].address, format!("{name}@example.com"));
        assert_eq!(bindings_of(&admin, &format!("user:{name}")).await, ["help-desk"]);
        anonymous.login(name, "a long enough passphrase").await.unwrap();
    }
    let e = anonymous.register(&registering("reg4", Some(&secret))).await.unwrap_err();
    assert_eq!(code(&e), "token.invalid", "the fourth registration on a 3-use token");
    assert_eq!(code(&idm.get_user("reg4").await.unwrap_err()), "not_found");

    // The audit names the token's id and the client, never the token.
    let events = admin.audit(&AuditQuery { action: Some("user.register".into()), ..Default::default() }).await.unwrap();
    assert_eq!(events.items.len(), 3);
    for event in &events.items {
        assert_eq!(event.details["token_id"], serde_json::json!(created.info.id));
        assert!(event.details["client"].as_str().is_some_and(|c| !c.is_empty()), "{}", event.details);
        assert!(!event.details.to_string().contains(secret.trim_start_matches("wdo_")));
    }
    let listed = idm.list_registration_tokens().await.unwrap();
    let mine = listed.iter().find(|t| t.id == created.info.id).unwrap();
    assert_eq!(mine.uses_left, 0);

    // Revoked and expired tokens: the same answer.
    let revoked = idm.create_registration_token(&token_for(&[], 5)).await.unwrap();
    idm.revoke_registration_token(revoked.info.id).await.unwrap();
    assert_eq!(code(&idm.revoke_registration_token(revoked.info.id).await.unwrap_err()), "not_found");
    assert_eq!(code(&anonymous.register(&registering("late", Some(revoked.token.expose()))).await.unwrap_err()), "token.invalid");
    let expiring = idm.create_registration_token(&CreateRegistrationToken { ttl: Some("1h".into()), ..token_for(&[], 5) }).await.unwrap();
    server.clock.advance(Duration::hours(2));
    assert_eq!(code(&anonymous.register(&registering("late", Some(expiring.token.expose()))).await.unwrap_err()), "token.invalid");
}

#[tokio::test]
async fn concurrent_registrations_take_exactly_the_tokens_uses() {
    // Twenty attempts from one address: above the default per-client limit, which is not
    // what this test is about.
    let server = TestServer::start_with(|c| {
        c.registration.mode = RegistrationMode::Token;
        c.auth.registration_per_client = 100;
    })
    .await;
    let idm = server.idm().await;
    let secret = idm.create_registration_token(&token_for(&[], 3)).await.unwrap().token.expose().to_owned();
    let attempts = (0..20).map(|i| {
        let (client, secret) = (server.anonymous(), secret.clone());
        async move { client.register(&registering(&format!("racer{i}"), Some(&secret))).await }
    });
    let results = futures_util::future::join_all(attempts).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 3);
    assert!(results.iter().filter_map(|r| r.as_ref().err()).all(|e| code(e) == "token.invalid"));
}

#[tokio::test]
async fn public_registration_needs_no_token_and_grants_nothing() {
    let server = start(RegistrationMode::Public).await;
    let admin = server.sysadmin().await;
    let walk_in = server.anonymous().register(&registering("walk-in", None)).await.unwrap();
    assert!(walk_in.has_password);
    assert!(bindings_of(&admin, "user:walk-in").await.is_empty());
    // A token sent in public mode grants nothing either.
    let idm = server.idm().await;
    admin.create_role(&role("help-desk", "Help desk", &["tickets:read"])).await.unwrap();
    let secret = idm.create_registration_token(&token_for(&["help-desk"], 1)).await.unwrap().token;
    server.anonymous().register(&registering("walk-in2", Some(secret.expose()))).await.unwrap();
    assert!(bindings_of(&admin, "user:walk-in2").await.is_empty());
    // The password rules hold for registrations too.
    let weak = RegisterRequest { password: Secret::new("short"), ..registering("weak", None) };
    assert_eq!(code(&server.anonymous().register(&weak).await.unwrap_err()), "validation");
    assert_eq!(code(&server.anonymous().register(&registering("walk-in", None)).await.unwrap_err()), "name.taken");
}

/// A registrant's address is their word only: it is stored unverified, so it neither signs
/// anyone in nor stops the person whose verified address it is from signing in by it (before,
/// a stranger could register a victim's address and block the victim's sign-in by address).
#[tokio::test]
async fn a_registered_address_is_unverified_and_blocks_no_one() {
    let server = start(RegistrationMode::Public).await;
    let idm = server.idm().await;
    let alice =
        CreateUser { password: Some(Secret::new("amber's own passphrase")), emails: vec!["alice@example.com".into()], ..user("alice") };
    idm.create_user(&alice).await.unwrap();
    let made = idm.get_user("alice").await.unwrap();
    assert!(made.profile.emails[0].verified, "an administrator's address counts as verified");

    let squatter = RegisterRequest { email: Some("ALICE@example.com".into()), ..registering("mallory", None) };
    let registered = server.anonymous().register(&squatter).await.unwrap();
    assert!(!registered.profile.emails[0].verified, "{:?}", registered.profile.emails);
    let read = idm.get_user("mallory").await.unwrap();
    assert!(!read.profile.emails[0].verified);

    // The victim still signs in by address; the squatter's claim signs no one in.
    let session = server.anonymous().login("alice@example.com", "amber's own passphrase").await.unwrap();
    assert_eq!(session.account.name.as_str(), "alice");
    let e = server.anonymous().login("alice@example.com", "a long enough passphrase").await.unwrap_err();
    assert_eq!(code(&e), "auth.failed");
    // Nor does the registrant's own unverified address, until it is verified.
    let walk_in = server.anonymous().register(&registering("walk-in", None)).await.unwrap();
    let e = server.anonymous().login("walk-in@example.com", "a long enough passphrase").await.unwrap_err();
    assert_eq!(code(&e), "auth.failed");
    server.anonymous().login(walk_in.name.as_str(), "a long enough passphrase").await.unwrap();
}
