//! Issue 12: what someone moving from Kanidm, Kratos, Kestra or cisidm trips over in the first
//! hour, each reproduced as they met it.

use warden_client::{ClientError, PageQuery};
use warden_server::config::SystemRoleConfig;

use crate::api::{TestServer, role, user};

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

/// `warden user rename alice alicia`, run by alice, renames her: by name as by id, through the
/// same self-service rules as `/self/rename` (and not someone else).
#[tokio::test]
async fn a_user_renames_itself_by_name() {
    let server = TestServer::start().await;
    let idm = server.idm().await;
    idm.create_user(&user("alice")).await.unwrap();
    idm.create_user(&user("bob")).await.unwrap();
    let alice = server.anonymous().with_basic("alice", "correct horse battery");
    let renamed = alice.rename_user("alice", "alicia").await.unwrap();
    assert_eq!(renamed.name.as_str(), "alicia");
    let alicia = server.anonymous().with_basic("alicia", "correct horse battery");
    assert_eq!(alicia.rename_user("bob", "bobby").await.unwrap_err().code(), "forbidden");

    let locked = TestServer::start_with(|c| c.auth.allow_username_change = false).await;
    locked.idm().await.create_user(&user("alice")).await.unwrap();
    let alice = locked.anonymous().with_basic("alice", "correct horse battery");
    assert_eq!(alice.rename_user("alice", "alicia").await.unwrap_err().code(), "rename.disabled");
}

/// `GET /users/{user}?expand=groups,roles`: where an administrator looks first. Groups direct
/// and through nesting; roles bound to the user and to its groups, each with the binding that
/// carries it, and only in tenants whose bindings the caller may read.
#[tokio::test]
async fn an_account_shows_its_groups_and_roles() {
    use warden_core::api::{CreateBinding, CreateGroup, CreateServiceAccount, CreateTenant};

    let server = TestServer::start().await;
    let root = server.superuser().await;
    let idm = server.idm().await;
    idm.create_user(&user("alice")).await.unwrap();
    idm.create_service_account(&CreateServiceAccount { name: "ci-bot".into(), ..Default::default() }).await.unwrap();
    for name in ["staff", "ops"] {
        idm.create_group(&CreateGroup { name: name.into(), description: None }).await.unwrap();
    }
    idm.add_members("ops", &["group:staff".into()]).await.unwrap();
    idm.add_members("staff", &["user:alice".into(), "sa:ci-bot".into()]).await.unwrap();
    root.create_role(&role("deployer", "Deployer", &["deploy:run"])).await.unwrap();
    let through_ops = root
        .create_binding(&CreateBinding {
            role: "deployer".into(),
            subject: "group:ops".into(),
            namespaces: vec!["prod".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    root.create_tenant(&CreateTenant { name: "acme".into(), description: None }).await.unwrap();
    let mut in_acme = role("viewer", "Viewer", &["calendar:read"]);
    in_acme.tenant = Some("acme".into());
    root.create_role(&in_acme).await.unwrap();
    root.create_binding(&CreateBinding {
        role: "viewer".into(),
        subject: "user:alice".into(),
        tenant: Some("acme".into()),
        ..Default::default()
    })
    .await
    .unwrap();

    let alice = root.get_user_expanded("alice", "groups,roles").await.unwrap();
    assert_eq!(alice.account.name.as_str(), "alice");
    let groups = alice.groups.unwrap();
    assert_eq!(groups.direct, ["staff"]);
    assert_eq!(groups.effective, ["ops", "staff"]);
    let roles: Vec<(String, String, String, Vec<String>)> =
        alice.roles.unwrap().into_iter().map(|r| (r.role, r.tenant, r.via, r.namespaces)).collect();
    assert_eq!(
        roles,
        [
            ("viewer".into(), "acme".into(), "user:alice".into(), vec![]),
            ("deployer".into(), "default".into(), "group:ops".into(), vec!["prod".to_owned()]),
        ]
    );
    let bot = root.get_service_account_expanded("ci-bot", "roles").await.unwrap();
    assert!(bot.groups.is_none(), "only what was asked for");
    assert_eq!(bot.roles.unwrap().iter().map(|r| r.binding).collect::<Vec<_>>(), [through_ops.id]);

    // Without `expand` the answer is the user as before; a word it does not know is refused.
    let plain = reqwest::Client::new()
        .get(format!("{}/api/v1/users/alice", server.url))
        .basic_auth("root", Some("correct horse battery"))
        .send()
        .await
        .unwrap();
    let plain: serde_json::Value = plain.json().await.unwrap();
    assert!(plain.get("groups").is_none() && plain.get("roles").is_none(), "{plain}");
    assert_eq!(root.get_user_expanded("alice", "groups,friends").await.unwrap_err().code(), "validation");

    // idm_admin reads users and groups but no bindings: groups yes, roles refused.
    assert_eq!(idm.get_user_expanded("alice", "groups").await.unwrap().groups.unwrap().effective, ["ops", "staff"]);
    assert_eq!(idm.get_user_expanded("alice", "roles").await.unwrap_err().code(), "forbidden");
}

/// API tokens may be made without an expiry, as Kestra's service accounts allow, unless the
/// operator caps their lifetime; the cap also bounds explicit lifetimes.
#[tokio::test]
async fn api_tokens_may_never_expire_unless_capped() {
    use warden_core::api::{CreateApiToken, CreateServiceAccount};
    let never = || CreateApiToken { expires_in: Some("never".into()), ..Default::default() };
    let lasting = |d: &str| CreateApiToken { expires_in: Some(d.into()), ..Default::default() };

    let server = TestServer::start().await;
    let idm = server.idm().await;
    idm.create_service_account(&CreateServiceAccount { name: "ci-bot".into(), ..Default::default() }).await.unwrap();
    let forever = idm.create_api_token("ci-bot", &never()).await.unwrap();
    assert_eq!(forever.info.expires_at, None);
    let listed = idm.list_api_tokens("ci-bot", &PageQuery::default()).await.unwrap().items;
    let json = serde_json::to_value(&listed).unwrap().to_string();
    assert!(!json.contains("expires_at"), "no expiry is left out, not null: {json}");
    // It authenticates, a year on and more.
    server.clock.advance(time::Duration::days(4000));
    let bot = server.anonymous().with_bearer(forever.token.expose());
    bot.whoami().await.unwrap();

    let capped = TestServer::start_with(|c| {
        c.auth.api_token_max_lifetime = Some("30d".into());
        c.auth.api_token_default_ttl = "7d".into();
    })
    .await;
    let idm = capped.idm().await;
    idm.create_service_account(&CreateServiceAccount { name: "ci-bot".into(), ..Default::default() }).await.unwrap();
    let e = idm.create_api_token("ci-bot", &never()).await.unwrap_err();
    assert_eq!(e.code(), "validation");
    assert!(detail(&e).contains("auth.api_token_max_lifetime"), "{}", detail(&e));
    assert_eq!(idm.create_api_token("ci-bot", &lasting("31d")).await.unwrap_err().code(), "validation");
    idm.create_api_token("ci-bot", &lasting("30d")).await.unwrap();
    assert!(
        idm.list_api_tokens("ci-bot", &PageQuery::default()).await.unwrap().items.iter().all(|t| t.expires_at.is_some()),
        "nothing half-written"
    );
    assert_eq!(idm.list_api_tokens("ci-bot", &PageQuery::default()).await.unwrap().items.len(), 1);
}

/// A cap shorter than the default lifetime is a configuration error at start-up, naming both.
#[test]
fn a_token_cap_below_the_default_is_refused() {
    let mut config = warden_server::config::Config::default();
    config.auth.api_token_max_lifetime = Some("30d".into());
    let e = config.auth_times().unwrap_err().to_string();
    assert!(e.contains("api_token_default_ttl") && e.contains("api_token_max_lifetime"), "{e}");
}

/// Sign in by name or by primary e-mail address, with the same soft lock, timing and answers:
/// an unknown address is refused exactly as an unknown name, guesses count against the account
/// whichever way it is spelt, and an address two users share signs in neither.
#[tokio::test]
async fn users_sign_in_by_primary_email_under_the_same_soft_lock() {
    use warden_core::api::CreateUser;
    let server = TestServer::start().await;
    let idm = server.idm().await;
    let with_email = |name: &str, email: &str| CreateUser { emails: vec![email.into(), format!("other.{email}").into()], ..user(name) };
    idm.create_user(&with_email("alice", "Alice@Example.org")).await.unwrap();
    let anon = server.anonymous();

    let session = anon.login("alice@example.org", "correct horse battery").await.unwrap();
    assert_eq!(session.account.name.as_str(), "alice");
    anon.clone().with_basic("ALICE@example.org", "correct horse battery").whoami().await.unwrap();
    assert_eq!(anon.login("other.alice@example.org", "correct horse battery").await.unwrap_err().code(), "auth.failed", "only the primary");

    // The same answer for an address that is no one's as for a name that is no one's.
    let unknown_address = anon.login("nobody@example.org", "correct horse battery").await.unwrap_err();
    let unknown_name = anon.login("nobody", "correct horse battery").await.unwrap_err();
    let (ClientError::Api(a), ClientError::Api(b)) = (&unknown_address, &unknown_name) else { panic!("problems expected") };
    assert_eq!((a.status, &a.code, &a.detail), (b.status, &b.code, &b.detail));

    // One soft lock per account: three guesses by name and two by address use up the five.
    for guess in ["alice", "alice", "alice", "alice@example.org", "Alice@Example.org"] {
        assert_eq!(anon.login(guess, "wrong guess").await.unwrap_err().code(), "auth.failed");
    }
    for spelling in ["alice", "alice@example.org"] {
        assert_eq!(anon.login(spelling, "correct horse battery").await.unwrap_err().code(), "auth.rate_limited", "{spelling}");
    }

    // An address two users hold as primary signs in neither.
    idm.create_user(&with_email("bob", "shared@example.org")).await.unwrap();
    idm.create_user(&with_email("carol", "shared@example.org")).await.unwrap();
    assert_eq!(anon.login("shared@example.org", "correct horse battery").await.unwrap_err().code(), "auth.failed");
    anon.login("bob", "correct horse battery").await.unwrap();
}

/// A user read from the API can be written back unchanged: `PATCH` takes `emails`, `phones`
/// and `addresses` in the shape `GET` returns them, an explicit `primary` flag included, and
/// plain strings as before. Absent optional fields are left out of the answer, never `null`.
#[tokio::test]
async fn what_get_returns_patch_takes_back() {
    // root speaks HTTP Basic, which a second factor would refuse; the shape of a user does not
    // depend on the MFA policy.
    let server = TestServer::start_with(|c| c.auth.mfa_required_for_admin_roles = false).await;
    server.idm().await.create_user(&user("alice")).await.unwrap();
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/users/alice", server.url);
    let as_root = |r: reqwest::RequestBuilder| r.basic_auth("root", Some("correct horse battery"));
    let _root = server.superuser().await;
    let patch = |body: serde_json::Value| as_root(http.patch(&url)).json(&body).send();
    let get = || async { as_root(http.get(&url)).send().await.unwrap().json::<serde_json::Value>().await.unwrap() };

    let r = patch(serde_json::json!({
        "emails": ["alice@example.org", "a.liddell@example.com"],
        "phones": ["+43 1 234567"],
        "addresses": [{"label": "home", "street": "1 Rabbit Hole", "locality": "Oxford", "country": "GB"}],
    }))
    .await
    .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let read = get().await;
    for absent in ["valid_from", "expires_at", "avatar_url", "birthday", "first_name"] {
        assert!(read.get(absent).is_none(), "{absent} is left out, not null: {read}");
    }
    assert_eq!(read["emails"][0], serde_json::json!({"address": "alice@example.org", "primary": true, "verified": true}));

    // Written back as read: nothing changes.
    let same = serde_json::json!({ "emails": read["emails"], "phones": read["phones"], "addresses": read["addresses"] });
    assert_eq!(patch(same).await.unwrap().status(), 200);
    let again = get().await;
    for field in ["emails", "phones", "addresses"] {
        assert_eq!(again[field], read[field], "{field}");
    }

    // An explicit primary flag moves the primary; two are refused and change nothing.
    let flagged = serde_json::json!({ "emails": [
        {"address": "alice@example.org", "primary": false},
        {"address": "a.liddell@example.com", "primary": true},
    ]});
    assert_eq!(patch(flagged).await.unwrap().status(), 200);
    assert_eq!(get().await["emails"][0]["address"], "a.liddell@example.com");
    let two = serde_json::json!({ "emails": [
        {"address": "alice@example.org", "primary": true},
        {"address": "a.liddell@example.com", "primary": true},
    ]});
    let r = patch(two).await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["code"], "validation");
    assert_eq!(get().await["emails"][0]["address"], "a.liddell@example.com");
}

/// Every event names what it changed: a role's and a tenant's events name them as targets (so
/// that `audit list --target deployer` finds them), membership changes name their member.
#[tokio::test]
async fn every_audit_event_names_its_target() {
    use warden_client::AuditQuery;
    use warden_core::api::{CreateGroup, CreateTenant, UpdateRole};
    let server = TestServer::start().await;
    let root = server.superuser().await;
    root.create_role(&role("deployer", "Deployer", &["deploy:run"])).await.unwrap();
    root.update_role("deployer", &UpdateRole { add: vec!["deploy:rollback".into()], ..Default::default() }).await.unwrap();
    root.create_tenant(&CreateTenant { name: "acme".into(), description: None }).await.unwrap();
    root.create_group(&CreateGroup { name: "ops".into(), description: None }).await.unwrap();
    root.create_user(&user("alice")).await.unwrap();
    root.add_members("ops", &["user:alice".into()]).await.unwrap();

    let by_target = |target: &str| AuditQuery { target: Some(target.into()), ..Default::default() };
    let deployer = root.audit(&by_target("deployer")).await.unwrap().items;
    let mut actions: Vec<&str> = deployer.iter().map(|e| e.action.as_str()).collect();
    actions.sort_unstable();
    assert_eq!(actions, ["role.create", "role.update"]);
    assert!(deployer.iter().all(|e| e.target_kind.as_deref() == Some("role") && e.target_id.is_none()));
    let acme = root.audit(&by_target("acme")).await.unwrap().items;
    assert_eq!(acme.iter().map(|e| (e.action.as_str(), e.target_kind.as_deref())).collect::<Vec<_>>(), [("tenant.create", Some("tenant"))]);
    let ops = root.audit(&by_target("ops")).await.unwrap().items;
    let added = ops.iter().find(|e| e.action == "group.member.add").unwrap();
    assert_eq!(added.details["member"], "user:alice");
}
