//! Issue 10's authorization and directory findings, each reproduced as the attack it was:
//! administrative rights reached around the guards, privilege groups a system administrator
//! could join, sessions that outlived a disabled account, tokens that outgrew their caller,
//! names that could be enumerated or taken over, and tenants that saw each other.

use time::Duration;
use warden_client::{AuditQuery, Client, ClientError};
use warden_core::api::{
    CheckRequest, CreateApiToken, CreateBinding, CreateGroup, CreateRole, CreateServiceAccount, CreateTenant, PermissionsQuery, UpdateUser,
};

use warden_server::clock::Clock;

use crate::api::{TestServer, role, user};

fn code(e: &ClientError) -> &str {
    e.code()
}

/// A custom role carrying `warden:*` rights (made by the superuser), bound to the group `ops`
/// and to the service account `robot`.
async fn custom_admin_role(server: &TestServer) -> (Client, Client) {
    let root = server.superuser().await;
    let idm = server.idm().await;
    root.create_role(&role("platform-admin", "Platform admin", &["warden:roles", "warden:bindings"])).await.unwrap();
    idm.create_group(&CreateGroup { name: "ops".into(), description: None }).await.unwrap();
    idm.create_service_account(&CreateServiceAccount { name: "robot".into(), ..Default::default() }).await.unwrap();
    for subject in ["group:ops", "sa:robot"] {
        root.create_binding(&CreateBinding { role: "platform-admin".into(), subject: subject.into(), ..Default::default() }).await.unwrap();
    }
    (root, idm)
}

/// Item 2: idm_admin may not join a group bound to a custom administrative role (it would gain
/// `roles:write` and `bindings:write`), nor anyone else add it there.
#[tokio::test]
async fn idm_admin_cannot_join_a_group_bound_to_a_custom_admin_role() {
    let server = TestServer::start().await;
    let (root, idm) = custom_admin_role(&server).await;
    let e = idm.add_members("ops", &["sa:idm_admin".into()]).await.unwrap_err();
    assert_eq!((e.status(), code(&e)), (Some(403), "forbidden"), "{e}");
    // Nor through a plain group nested into it.
    idm.create_group(&CreateGroup { name: "side-door".into(), description: None }).await.unwrap();
    root.add_members("ops", &["group:side-door".into()]).await.unwrap();
    let e = idm.add_members("side-door", &["sa:idm_admin".into()]).await.unwrap_err();
    assert_eq!(code(&e), "forbidden");
    let me = idm.whoami().await.unwrap();
    assert!(!me.permissions.contains(&"warden:bindings:write".to_owned()));
    // The superuser may.
    root.add_members("ops", &["sa:idm_admin".into()]).await.unwrap();
}

/// Item 2: idm_admin may not mint a token for a service account holding a custom
/// administrative role (and act with its rights).
#[tokio::test]
async fn idm_admin_cannot_mint_a_token_for_a_custom_admin_service_account() {
    let server = TestServer::start().await;
    let (root, idm) = custom_admin_role(&server).await;
    let e = idm.create_api_token("robot", &CreateApiToken { read_write: true, ..Default::default() }).await.unwrap_err();
    assert_eq!((e.status(), code(&e)), (Some(403), "account.high_privilege"));
    let e = idm.create_api_token("robot", &CreateApiToken::default()).await.unwrap_err();
    assert_eq!(code(&e), "account.high_privilege");
    // Nor delete it to get rid of an administrator.
    assert_eq!(code(&idm.delete_service_account("robot").await.unwrap_err()), "account.high_privilege");
    root.create_api_token("robot", &CreateApiToken::default()).await.unwrap();
}

/// Item 2: idm_admin may not delete a group bound to a custom administrative role, which would
/// drop a binding it could not delete directly.
#[tokio::test]
async fn idm_admin_cannot_delete_a_group_bound_to_a_custom_admin_role() {
    let server = TestServer::start().await;
    let (root, idm) = custom_admin_role(&server).await;
    let e = idm.delete_group("ops").await.unwrap_err();
    assert_eq!((e.status(), code(&e)), (Some(403), "forbidden"), "{e}");
    root.get_group("ops").await.unwrap();
    root.delete_group("ops").await.unwrap();
}

/// Item 3: a system administrator may not give itself people administration (nor leave again,
/// nor put others in or out of the built-in groups), and may not bind `tenant_admin` in
/// `default`; a superuser may.
#[tokio::test]
async fn system_admin_cannot_change_privilege_groups_or_bind_tenant_admin_in_default() {
    let server = TestServer::start().await;
    let root = server.superuser().await;
    let admin = server.sysadmin().await;
    server.idm().await.create_user(&user("alice")).await.unwrap();
    for group in ["idm_admins", "service_desk", "auditors", "system_admins", "idm_superusers"] {
        let e = admin.add_members(group, &["sa:admin".into()]).await.unwrap_err();
        assert_eq!(e.status(), Some(403), "{group}: {e}");
        let e = admin.add_members(group, &["user:alice".into()]).await.unwrap_err();
        assert_eq!(e.status(), Some(403), "{group}: {e}");
    }
    let e = admin.remove_member("system_admins", "sa:admin").await.unwrap_err();
    assert_eq!(e.status(), Some(403));
    assert!(!admin.whoami().await.unwrap().permissions.contains(&"warden:users:read".to_owned()));

    // tenant_admin in default is everything over roles and bindings: the superuser's to give.
    let e = admin
        .create_binding(&CreateBinding { role: "tenant_admin".into(), subject: "user:alice".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!((e.status(), code(&e)), (Some(403), "account.high_privilege"));
    // In another tenant it stays a binding manager's to delegate.
    admin.create_tenant(&CreateTenant { name: "acme".into(), description: None }).await.unwrap();
    admin
        .create_binding(&CreateBinding {
            role: "tenant_admin".into(),
            subject: "user:alice".into(),
            tenant: Some("acme".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let in_default = root
        .create_binding(&CreateBinding { role: "tenant_admin".into(), subject: "user:alice".into(), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(code(&admin.delete_binding(in_default.id).await.unwrap_err()), "account.high_privilege");
    root.add_members("idm_admins", &["user:alice".into()]).await.unwrap();
    root.remove_member("idm_admins", "user:alice").await.unwrap();
}

/// Item 10: a token limited to some roles cannot mint its own account a token with more, and a
/// read-only token cannot mint a read-write one; `/check` and resolved permissions of oneself
/// through a limited token say what that token may do.
#[tokio::test]
async fn a_role_limited_token_cannot_mint_a_wider_one_and_checks_itself_within_its_limit() {
    let server = TestServer::start().await;
    let root = server.superuser().await;
    root.create_service_account(&CreateServiceAccount { name: "automation".into(), ..Default::default() }).await.unwrap();
    root.create_role(&role("deployer", "Deployer", &["deploy:run"])).await.unwrap();
    root.create_binding(&CreateBinding { role: "deployer".into(), subject: "sa:automation".into(), ..Default::default() }).await.unwrap();
    root.add_members("idm_superusers", &["sa:automation".into()]).await.unwrap();
    let limited = CreateApiToken { read_write: true, roles: Some(vec!["idm_superuser".into()]), ..Default::default() };
    let limited = root.create_api_token("automation", &limited).await.unwrap();
    let bot = server.anonymous().with_bearer(limited.token.expose());
    for wider in [
        CreateApiToken { read_write: true, ..Default::default() },
        CreateApiToken { roles: Some(vec!["deployer".into()]), ..Default::default() },
        CreateApiToken { roles: Some(vec!["idm_superuser".into(), "deployer".into()]), ..Default::default() },
    ] {
        let e = bot.create_api_token("automation", &wider).await.unwrap_err();
        assert_eq!((e.status(), code(&e)), (Some(403), "token.scope"), "{wider:?}: {e}");
    }
    bot.create_api_token("automation", &CreateApiToken { roles: Some(vec!["idm_superuser".into()]), ..Default::default() }).await.unwrap();

    // Read-only: no read-write token (nor any other write).
    let read_only = CreateApiToken { roles: Some(vec!["idm_superuser".into()]), ..Default::default() };
    let read_only = root.create_api_token("automation", &read_only).await.unwrap();
    let reader = server.anonymous().with_bearer(read_only.token.expose());
    let e = reader.create_api_token("automation", &CreateApiToken { read_write: true, ..Default::default() }).await.unwrap_err();
    assert_eq!((e.status(), code(&e)), (Some(403), "session.not_elevated"));

    // A token limited to deployer checks itself as a deployer, not as a superuser.
    let deployer = CreateApiToken { roles: Some(vec!["deployer".into()]), ..Default::default() };
    let deployer = server.anonymous().with_bearer(root.create_api_token("automation", &deployer).await.unwrap().token.expose());
    let asked = CheckRequest { subject: "sa:automation".into(), permission: Some("warden:users:write".into()), ..Default::default() };
    assert!(!deployer.check(&asked).await.unwrap().results[0].allowed, "the token's limit applies to itself");
    assert!(bot.check(&asked).await.unwrap().results[0].allowed);
    let mine = deployer.account_permissions("sa:automation", &PermissionsQuery::default()).await.unwrap();
    assert_eq!((mine.permissions, mine.roles), (vec!["deploy:run".to_owned()], vec!["deployer".to_owned()]));
}

/// Problem fields that must not tell a real name from a made-up one.
fn answer(e: &ClientError) -> (Option<u16>, String, String) {
    match e {
        ClientError::Api(p) => (Some(p.status), p.code.clone(), p.detail.clone().unwrap_or_default()),
        other => (other.status(), other.code().to_owned(), other.to_string()),
    }
}

/// Item 11: a signed-in account without the permission gets the same answer for a real and a
/// made-up name from `/check`, resolved permissions, `GET /roles/{id}` and role creation; so
/// does a tenant administrator asking about another tenant's role.
#[tokio::test]
async fn names_cannot_be_enumerated_without_the_permission() {
    let server = TestServer::start().await;
    let (admin, idm) = (server.sysadmin().await, server.idm().await);
    for name in ["alice", "bob", "tina"] {
        idm.create_user(&user(name)).await.unwrap();
    }
    idm.create_service_account(&CreateServiceAccount { name: "ci".into(), ..Default::default() }).await.unwrap();
    for tenant in ["t1", "t2"] {
        admin.create_tenant(&CreateTenant { name: tenant.into(), description: None }).await.unwrap();
    }
    let secret = CreateRole { id: Some("t2secret".into()), name: "x".into(), tenant: Some("t2".into()), ..Default::default() };
    admin.create_role(&secret).await.unwrap();
    let delegate =
        CreateBinding { role: "tenant_admin".into(), subject: "user:tina".into(), tenant: Some("t1".into()), ..Default::default() };
    admin.create_binding(&delegate).await.unwrap();

    let alice = server.anonymous().with_basic("alice", "correct horse battery");
    for (real, made_up) in [("bob", "nobody"), ("user:bob", "user:nobody"), ("sa:ci", "sa:nothing"), ("group:idm_admins", "group:none")] {
        let check = |subject: &str| CheckRequest { subject: subject.into(), permission: Some("x:y".into()), ..Default::default() };
        let (a, b) = (alice.check(&check(real)).await.unwrap_err(), alice.check(&check(made_up)).await.unwrap_err());
        assert_eq!(answer(&a), answer(&b), "check {real}");
        assert_eq!(a.status(), Some(403));
        let query = PermissionsQuery::default();
        let (a, b) =
            (alice.account_permissions(real, &query).await.unwrap_err(), alice.account_permissions(made_up, &query).await.unwrap_err());
        assert_eq!(answer(&a), answer(&b), "permissions of {real}");
        assert_eq!(a.status(), Some(403));
    }
    for client in [&alice, &server.anonymous().with_basic("tina", "correct horse battery")] {
        let (a, b) = (client.get_role("t2secret").await.unwrap_err(), client.get_role("made-up").await.unwrap_err());
        assert_eq!(answer(&a), answer(&b), "get role");
        assert_eq!(a.status(), Some(403));
        let (a, b) = (client.role_permissions("t2secret").await.unwrap_err(), client.role_permissions("made-up").await.unwrap_err());
        assert_eq!(answer(&a), answer(&b), "role permissions");
    }
    let create = |id: &str| CreateRole { id: Some(id.into()), name: "y".into(), ..Default::default() };
    let (a, b) = (alice.create_role(&create("t2secret")).await.unwrap_err(), alice.create_role(&create("made-up")).await.unwrap_err());
    assert_eq!(answer(&a), answer(&b), "create role");
    // A binding manager without superuser learns nothing from a privileged role id either.
    let privileged = |id: &str| CreateRole {
        id: Some(id.into()),
        name: "z".into(),
        permissions: vec!["warden:users:write".into()],
        ..Default::default()
    };
    let (a, b) =
        (admin.create_role(&privileged("t2secret")).await.unwrap_err(), admin.create_role(&privileged("made-up")).await.unwrap_err());
    assert_eq!(answer(&a), answer(&b), "create privileged role");
    // Oneself stays answerable by name.
    alice.check(&CheckRequest { subject: "alice".into(), permission: Some("x:y".into()), ..Default::default() }).await.unwrap();
}

/// Item 12: a tenant administrator asking about an account in its tenant sees only that
/// tenant's roles and groups, and explanations that say nothing of other tenants.
#[tokio::test]
async fn a_tenant_administrator_sees_only_its_tenant() {
    // tina (tenant_admin, an administrative role) speaks HTTP Basic, which a second factor
    // would refuse; what this test is about does not depend on the MFA policy.
    let server = TestServer::start_with(|c| c.auth.mfa_required_for_admin_roles = false).await;
    let (admin, idm) = (server.sysadmin().await, server.idm().await);
    for name in ["alice", "carol", "tina"] {
        idm.create_user(&user(name)).await.unwrap();
    }
    idm.create_group(&CreateGroup { name: "t2-team".into(), description: None }).await.unwrap();
    idm.add_members("t2-team", &["user:alice".into()]).await.unwrap();
    for tenant in ["t1", "t2"] {
        admin.create_tenant(&CreateTenant { name: tenant.into(), description: None }).await.unwrap();
    }
    let in_tenant = |id: &str, tenant: &str, permissions: &[&str]| CreateRole {
        id: Some(id.into()),
        name: id.into(),
        tenant: Some(tenant.into()),
        permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
        ..Default::default()
    };
    admin.create_role(&in_tenant("t2secret", "t2", &["deploy:run"])).await.unwrap();
    admin.create_role(&in_tenant("t2team-role", "t2", &["deploy:rollback"])).await.unwrap();
    admin.create_role(&in_tenant("t1-checker", "t1", &["warden:check"])).await.unwrap();
    let bind = |role: &str, subject: &str, tenant: &str| CreateBinding {
        role: role.into(),
        subject: subject.into(),
        tenant: Some(tenant.into()),
        ..Default::default()
    };
    admin.create_binding(&bind("t2secret", "user:alice", "t2")).await.unwrap();
    admin.create_binding(&bind("t2team-role", "group:t2-team", "t2")).await.unwrap();
    admin.create_binding(&bind("tenant_admin", "user:tina", "t1")).await.unwrap();
    admin.create_binding(&bind("t1-checker", "user:tina", "t1")).await.unwrap();

    let tina = server.anonymous().with_basic("tina", "correct horse battery");
    let query = PermissionsQuery { tenant: Some("t1".into()), namespace: None };
    let seen = tina.account_permissions("alice", &query).await.unwrap();
    assert!(seen.roles.is_empty(), "{:?}", seen.roles);
    assert!(seen.groups.is_empty(), "{:?}", seen.groups);
    assert!(seen.permissions.is_empty());
    let explain = |subject: &str| CheckRequest {
        subject: subject.into(),
        tenant: Some("t1".into()),
        permission: Some("deploy:run".into()),
        explain: true,
        ..Default::default()
    };
    let reason = |r: warden_core::api::CheckResponse| r.results[0].explanation.clone().unwrap().reason.unwrap();
    let (of_alice, of_carol) = (reason(tina.check(&explain("alice")).await.unwrap()), reason(tina.check(&explain("carol")).await.unwrap()));
    assert_eq!(of_alice.replace("alice", "carol"), of_carol, "bound elsewhere reads as bound nowhere");
    // In its own tenant the answer is whole.
    let t2 = admin.account_permissions("alice", &PermissionsQuery { tenant: Some("t2".into()), namespace: None }).await.unwrap();
    assert_eq!((t2.roles, t2.groups), (vec!["t2secret".to_owned(), "t2team-role".to_owned()], vec!["t2-team".to_owned()]));
}

/// Item 9: disabling a user, or moving the validity window into the past, ends the user's
/// sessions at once, audited in the same change; enabling again brings none of them back.
#[tokio::test]
async fn disabling_or_expiring_a_user_ends_the_sessions_for_good() {
    let server = TestServer::start().await;
    let idm = server.idm().await;
    idm.create_user(&user("alice")).await.unwrap();
    let login = server.anonymous().login("alice", "correct horse battery").await.unwrap();
    let alice = server.anonymous().with_bearer(login.token.expose());
    alice.whoami().await.unwrap();
    idm.disable_user("alice").await.unwrap();
    assert_eq!(code(&alice.whoami().await.unwrap_err()), "unauthenticated");
    idm.enable_user("alice").await.unwrap();
    assert_eq!(code(&alice.whoami().await.unwrap_err()), "unauthenticated", "re-enabling brings no session back");
    let audit = server.sysadmin().await;
    let disabled = audit.audit(&AuditQuery { action: Some("user.disable".into()), ..Default::default() }).await.unwrap();
    assert_eq!(disabled.items[0].details["sessions_ended"], 1);

    let login = server.anonymous().login("alice", "correct horse battery").await.unwrap();
    let alice = server.anonymous().with_bearer(login.token.expose());
    alice.whoami().await.unwrap();
    let past = server.clock.now() - Duration::hours(1);
    idm.update_user("alice", &UpdateUser { expires_at: Some(Some(past)), ..Default::default() }).await.unwrap();
    assert_eq!(code(&alice.whoami().await.unwrap_err()), "unauthenticated");
    idm.update_user("alice", &UpdateUser { expires_at: Some(None), ..Default::default() }).await.unwrap();
    assert_eq!(code(&alice.whoami().await.unwrap_err()), "unauthenticated", "a window moved back brings no session back");
    server.anonymous().login("alice", "correct horse battery").await.unwrap();
    // A profile change or a window still open ends nothing.
    let login = server.anonymous().login("alice", "correct horse battery").await.unwrap();
    let alice = server.anonymous().with_bearer(login.token.expose());
    let later = server.clock.now() + Duration::days(30);
    idm.update_user("alice", &UpdateUser { expires_at: Some(Some(later)), display_name: Some(Some("A".into())), ..Default::default() })
        .await
        .unwrap();
    alice.whoami().await.unwrap();
}

/// Item 9 across nodes: a session used (and cached) on one node ends there as soon as another
/// node disables its user, and stays ended after the user is enabled again.
#[tokio::test]
async fn disabling_a_user_on_one_node_ends_the_sessions_on_the_other() {
    let db = crate::api::PgDatabase::create("authz");
    let one = TestServer::start_with(|c| c.database.url = db.url()).await;
    let two = TestServer::start_with(|c| c.database.url = db.url()).await;
    let idm = one.idm().await;
    idm.create_user(&user("alice")).await.unwrap();
    let login = two.anonymous().login("alice", "correct horse battery").await.unwrap();
    let alice = two.anonymous().with_bearer(login.token.expose());
    alice.whoami().await.unwrap(); // now in node two's credential cache
    idm.disable_user("alice").await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while alice.whoami().await.is_ok() {
        assert!(std::time::Instant::now() < deadline, "node two still honours the session 3 s after the user was disabled");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    idm.enable_user("alice").await.unwrap();
    two.running.context.authz.refresh().await.unwrap();
    assert_eq!(code(&alice.whoami().await.unwrap_err()), "unauthenticated");
    two.running.shutdown().await.unwrap();
    one.running.shutdown().await.unwrap();
}

/// Item 13: a user renaming itself cannot take a name another account gave up (a deleted
/// `dave`, a renamed `carol`) until the reservation ends, nor a name Warden itself uses; the
/// old holder may take its name back, and an administrator may hand a reserved name out on
/// purpose.
#[tokio::test]
async fn freed_and_built_in_names_cannot_be_taken_by_self_rename() {
    let server = TestServer::start().await;
    let idm = server.idm().await;
    for name in ["dave", "erin", "carol", "mallory"] {
        idm.create_user(&user(name)).await.unwrap();
    }
    idm.delete_user("dave").await.unwrap();
    let mallory = server.anonymous().with_basic("mallory", "correct horse battery");
    let e = mallory.rename_self("dave").await.unwrap_err();
    assert_eq!((e.status(), code(&e)), (Some(409), "name.taken"), "{e}");
    let carol = server.anonymous().with_basic("carol", "correct horse battery");
    carol.rename_self("caroline").await.unwrap();
    assert_eq!(code(&mallory.rename_self("carol").await.unwrap_err()), "name.taken");
    let carol = server.anonymous().with_basic("caroline", "correct horse battery");
    carol.rename_self("carol").await.unwrap();
    for builtin in ["idm_admins", "idm_superusers", "idm_superuser", "system_admin", "auditors", "tenant_admin", "admin"] {
        let e = mallory.rename_self(builtin).await.unwrap_err();
        assert_eq!(code(&e), "name.taken", "{builtin}");
        let e = idm.create_user(&user(builtin)).await.unwrap_err();
        assert_eq!(code(&e), "name.taken", "{builtin}");
    }
    assert_eq!(mallory.whoami().await.unwrap().account.name.as_str(), "mallory");
    // An administrator may give a reserved name out again on purpose.
    idm.delete_user("erin").await.unwrap();
    idm.create_user(&user("erin")).await.unwrap();
    let audit = server.sysadmin().await.audit(&AuditQuery { action: Some("user.delete".into()), ..Default::default() }).await.unwrap();
    assert!(audit.items[0].details["name_reserved_until"].is_string());
    // After 30 days (auth.name_reservation) the name is free.
    server.clock.advance(Duration::days(30));
    let mallory = server.anonymous().with_basic("mallory", "correct horse battery");
    mallory.rename_self("dave").await.unwrap();
}

/// Item 13: with `auth.name_reservation = "off"` a name given up is free at once.
#[tokio::test]
async fn names_are_free_at_once_without_reservation() {
    let server = TestServer::start_with(|c| c.auth.name_reservation = "off".into()).await;
    let idm = server.idm().await;
    for name in ["dave", "mallory"] {
        idm.create_user(&user(name)).await.unwrap();
    }
    idm.delete_user("dave").await.unwrap();
    server.anonymous().with_basic("mallory", "correct horse battery").rename_self("dave").await.unwrap();
}
