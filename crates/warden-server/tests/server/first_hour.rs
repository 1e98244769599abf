//! Issue 12: what someone moving from Kanidm, Kratos, Kestra or cisidm trips over in the first
//! hour, each reproduced as they met it.

use warden_client::ClientError;
use warden_server::config::SystemRoleConfig;

use crate::api::{TestServer, role};

fn detail(e: &ClientError) -> String {
    match e {
        ClientError::Api(problem) => problem.detail.clone().unwrap_or_default(),
        other => panic!("expected a problem, got {other}"),
    }
}

/// Declaring a system role turns dynamic roles off unless the operator says otherwise; the
/// refusal names both keys instead of claiming that a setting nobody wrote is `false`.
#[tokio::test]
async fn dynamic_roles_say_why_they_are_off() {
    let declared = SystemRoleConfig {
        id: "viewer".into(),
        name: Some("Viewer".into()),
        description: None,
        tenant: None,
        permissions: vec!["calendar:read".into()],
    };
    let server = TestServer::start_with(|c| c.roles.push(declared.clone())).await;
    let root = server.superuser().await;
    let e = root.create_role(&role("ops", "Ops", &["deploy:run"])).await.unwrap_err();
    assert_eq!(e.code(), "roles.dynamic_disabled");
    let why = detail(&e);
    assert!(why.contains("[[role]]") && why.contains("authz.enable_dynamic_roles is unset"), "{why}");
    assert!(!why.contains("= false"), "{why}");

    let server = TestServer::start_with(|c| c.authz.enable_dynamic_roles = Some(false)).await;
    let e = server.superuser().await.create_role(&role("ops", "Ops", &["deploy:run"])).await.unwrap_err();
    assert!(detail(&e).contains("sets authz.enable_dynamic_roles = false"), "{}", detail(&e));

    // Both, when the operator asks for both.
    let server = TestServer::start_with(|c| {
        c.roles.push(declared.clone());
        c.authz.enable_dynamic_roles = Some(true);
    })
    .await;
    server.superuser().await.create_role(&role("ops", "Ops", &["deploy:run"])).await.unwrap();
}
