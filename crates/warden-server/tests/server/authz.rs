//! Issue 10's authorization and directory findings, each reproduced as the attack it was:
//! administrative rights reached around the guards, privilege groups a system administrator
//! could join, sessions that outlived a disabled account, tokens that outgrew their caller,
//! names that could be enumerated or taken over, and tenants that saw each other.

use warden_client::{Client, ClientError};
use warden_core::api::{CreateApiToken, CreateBinding, CreateGroup, CreateServiceAccount, CreateTenant};

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
    let e = idm.add_members("ops", &["user:idm_admin".into()]).await.unwrap_err();
    assert_eq!((e.status(), code(&e)), (Some(403), "forbidden"), "{e}");
    // Nor through a plain group nested into it.
    idm.create_group(&CreateGroup { name: "side-door".into(), description: None }).await.unwrap();
    root.add_members("ops", &["group:side-door".into()]).await.unwrap();
    let e = idm.add_members("side-door", &["user:idm_admin".into()]).await.unwrap_err();
    assert_eq!(code(&e), "forbidden");
    let me = idm.whoami().await.unwrap();
    assert!(!me.permissions.contains(&"warden:bindings:write".to_owned()));
    // The superuser may.
    root.add_members("ops", &["user:idm_admin".into()]).await.unwrap();
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
        let e = admin.add_members(group, &["user:admin".into()]).await.unwrap_err();
        assert_eq!(e.status(), Some(403), "{group}: {e}");
        let e = admin.add_members(group, &["user:alice".into()]).await.unwrap_err();
        assert_eq!(e.status(), Some(403), "{group}: {e}");
    }
    let e = admin.remove_member("system_admins", "user:admin").await.unwrap_err();
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
