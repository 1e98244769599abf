//! Issue 14's MFA policy: an account that must use a second factor (an administrative role by
//! default, or a listed role or group) and signed in without one is confined to enrolling one
//! (`403 auth.mfa_enrolment_required`, forward-auth refuses) until a re-authentication proves
//! it; break-glass accounts and API tokens are never confined. TOTP codes come from pyotp.

use std::sync::Arc;

use reqwest::header::AUTHORIZATION;
use time::OffsetDateTime;
use warden_client::{AuditQuery, Client, ClientError, ListQuery};
use warden_core::api::{BeginTotp, CreateBinding, CreateGroup, CreateRole, LoginOutcome};
use warden_core::credential::Secret;
use warden_server::clock::{Clock, ManualClock};
use warden_server::config::{Config, MfaRequirement};
use warden_server::services::recovery;

use crate::api::{PgDatabase, TestServer, user};
use crate::second_factor::pyotp;

const PASSWORD: &str = "correct horse battery";
const CONFINED: &str = "auth.mfa_enrolment_required";

fn code(e: &ClientError) -> &str {
    e.code()
}

/// Every test's forward-auth rule: anyone signed in passes (Basic too), so that a refusal is
/// the MFA policy's.
fn signed_in_passes(c: &mut Config) {
    let rule = serde_json::json!({ "name": "signed in", "action": "authenticated", "allow_basic": true });
    c.forward_auth.rules = vec![serde_json::from_value(rule).unwrap()];
}

/// The status forward-auth answers a request to the protected application with `authorization`.
async fn forward(server: &TestServer, authorization: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{}/auth/forward", server.url))
        .header("x-forwarded-host", "app.example.test")
        .header("x-forwarded-uri", "/")
        .header("x-forwarded-proto", "https")
        .header(AUTHORIZATION, authorization)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn bearer(token: &Secret) -> String {
    format!("Bearer {}", token.expose())
}

fn basic(name: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{name}:{PASSWORD}")))
}

/// Signs `name` in with the password alone: the session's client and token.
async fn password_session(server: &TestServer, name: &str) -> (Client, Secret) {
    match server.anonymous().login_outcome(name, PASSWORD).await.unwrap() {
        LoginOutcome::Session(session) => (server.anonymous().with_bearer(session.token.expose()), session.token),
        LoginOutcome::SecondFactor(_) => panic!("{name} was asked for a second factor"),
    }
}

fn now(server: &TestServer) -> i64 {
    server.clock.now().unix_timestamp()
}

/// A code that is not `right`.
fn wrong(right: &str) -> &'static str {
    if right == "000000" { "111111" } else { "000000" }
}

/// A user `dana` holding the custom role `user-admin` (administrative: it grants
/// `warden:users:write`), and `bob`, who holds nothing.
async fn custom_administrator(server: &TestServer) {
    let root = server.superuser().await;
    let role = CreateRole {
        id: Some("user-admin".into()),
        name: "User admin".into(),
        permissions: vec!["warden:users:read".into(), "warden:users:write".into()],
        ..CreateRole::default()
    };
    root.create_role(&role).await.unwrap();
    for name in ["dana", "bob"] {
        root.create_user(&user(name)).await.unwrap();
    }
    root.create_binding(&CreateBinding { role: "user-admin".into(), subject: "user:dana".into(), ..CreateBinding::default() })
        .await
        .unwrap();
}

async fn confinement_until_enrolment(server: &TestServer) {
    custom_administrator(server).await;
    let (dana, token) = password_session(server, "dana").await;
    let me = dana.whoami().await.unwrap();
    assert!(me.mfa_enrolment_required, "an administrator without a factor");
    assert_eq!(me.auth_strength.as_deref(), Some("password"));
    let refused = dana.list_users(&ListQuery::default()).await.unwrap_err();
    assert_eq!((refused.status(), code(&refused)), (Some(403), CONFINED));
    assert_eq!(forward(server, &bearer(&token)).await, 403, "forward-auth lets no confined session through");
    let (bob, bob_token) = password_session(server, "bob").await;
    assert!(!bob.whoami().await.unwrap().mfa_enrolment_required, "bob holds no administrative role");
    assert_eq!(forward(server, &bearer(&bob_token)).await, 200);

    // The way out is open: see the factors, and (once re-authenticated, as for anyone)
    // enrol one. A read-only session may not enrol.
    assert!(!dana.second_factors().await.unwrap().totp);
    assert_eq!(code(&dana.begin_totp(&BeginTotp::default()).await.unwrap_err()), "session.not_elevated");
    dana.reauth(PASSWORD).await.unwrap();
    let still = dana.list_users(&ListQuery::default()).await.unwrap_err();
    assert_eq!(code(&still), CONFINED, "a password re-authentication proves no second factor");
    let secret = dana.begin_totp(&BeginTotp::default()).await.unwrap().secret.expose().to_owned();
    dana.confirm_totp(&pyotp(&secret, now(server), 6, "sha1")).await.unwrap();
    assert!(dana.whoami().await.unwrap().mfa_enrolment_required, "enrolled, but this session has not proved it");

    // A wrong code changes nothing; the right one (the next step: the confirming one is used)
    // raises the session to password+totp, which ends the confinement.
    let next = pyotp(&secret, now(server) + 30, 6, "sha1");
    assert_eq!(code(&dana.reauth_with_totp(PASSWORD, wrong(&next)).await.unwrap_err()), "auth.failed");
    assert!(dana.whoami().await.unwrap().mfa_enrolment_required);
    dana.reauth_with_totp(PASSWORD, &next).await.unwrap();
    let me = dana.whoami().await.unwrap();
    assert_eq!((me.auth_strength.as_deref(), me.mfa_enrolment_required), (Some("password+totp"), false));
    dana.list_users(&ListQuery::default()).await.unwrap();
    assert_eq!(forward(server, &bearer(&token)).await, 200);

    // The raise is in the re-authentication's audit event.
    let events = server
        .sysadmin()
        .await
        .audit(&AuditQuery { action: Some("auth.reauth".into()), actor: Some("dana".into()), ..AuditQuery::default() })
        .await
        .unwrap()
        .items;
    let raised: Vec<_> = events.iter().filter_map(|e| e.details.get("auth_strength")).collect();
    assert_eq!(raised, [&serde_json::json!("password+totp")], "{events:?}");
}

#[tokio::test]
async fn an_administrator_without_a_factor_may_only_enrol_one() {
    let server = TestServer::start_with(signed_in_passes).await;
    confinement_until_enrolment(&server).await;
}

#[tokio::test]
async fn an_administrator_without_a_factor_may_only_enrol_one_on_postgres() {
    let db = PgDatabase::create("mfa_policy");
    let url = db.url();
    let server = TestServer::start_with(|c| {
        c.database.url = url;
        signed_in_passes(c);
    })
    .await;
    confinement_until_enrolment(&server).await;
}

#[tokio::test]
async fn listed_groups_and_roles_confine_their_holders_basic_included() {
    let server = TestServer::start_with(|c| {
        signed_in_passes(c);
        c.auth.mfa_required =
            vec![MfaRequirement { group: Some("ops".into()), role: None }, MfaRequirement { role: Some("deployer".into()), group: None }];
    })
    .await;
    let (admin, idm) = (server.sysadmin().await, server.idm().await);
    for name in ["carol", "erin", "frank"] {
        idm.create_user(&user(name)).await.unwrap();
    }
    for group in ["ops", "oncall"] {
        idm.create_group(&CreateGroup { name: group.into(), description: None }).await.unwrap();
    }
    idm.add_members("ops", &["group:oncall".into()]).await.unwrap();
    idm.add_members("oncall", &["user:carol".into()]).await.unwrap();
    let deployer = CreateRole {
        id: Some("deployer".into()),
        name: "Deployer".into(),
        permissions: vec!["deploy:run".into()],
        ..CreateRole::default()
    };
    admin.create_role(&deployer).await.unwrap();
    admin
        .create_binding(&CreateBinding { role: "deployer".into(), subject: "user:erin".into(), ..CreateBinding::default() })
        .await
        .unwrap();

    // carol is in ops through oncall; erin holds deployer; frank is neither. None of them may
    // list users: the confined are told why, frank is merely not allowed.
    for (name, confined) in [("carol", true), ("erin", true), ("frank", false)] {
        let (session, token) = password_session(&server, name).await;
        assert_eq!(session.whoami().await.unwrap().mfa_enrolment_required, confined, "{name}");
        let e = session.list_users(&ListQuery::default()).await.unwrap_err();
        assert_eq!(code(&e), if confined { CONFINED } else { "forbidden" }, "{name}");
        assert_eq!(forward(&server, &bearer(&token)).await, if confined { 403 } else { 200 }, "{name}");
    }

    // HTTP Basic is a password alone: confined alike, but for the enrolment paths.
    let carol = server.anonymous().with_basic("carol", PASSWORD);
    assert_eq!(code(&carol.list_groups(&ListQuery::default()).await.unwrap_err()), CONFINED);
    assert_eq!(code(&carol.preferences("default").await.unwrap_err()), CONFINED);
    assert!(carol.whoami().await.unwrap().mfa_enrolment_required);
    assert!(!carol.second_factors().await.unwrap().totp);
    assert_eq!(forward(&server, &basic("carol")).await, 403);
    assert_eq!(forward(&server, &basic("frank")).await, 200);

    // Leaving the group ends the requirement with the next snapshot.
    idm.remove_member("oncall", "user:carol").await.unwrap();
    assert!(!carol.whoami().await.unwrap().mfa_enrolment_required);
    assert_eq!(code(&carol.list_groups(&ListQuery::default()).await.unwrap_err()), "forbidden");
}

#[tokio::test]
async fn nobody_is_confined_when_the_policy_asks_for_nothing() {
    let server = TestServer::start_with(|c| {
        signed_in_passes(c);
        c.auth.mfa_required_for_admin_roles = false;
    })
    .await;
    server.idm().await.create_user(&user("sam")).await.unwrap();
    recovery::set_superuser(&server.running.context, "sam", true).await.unwrap();
    let (sam, token) = password_session(&server, "sam").await;
    let me = sam.whoami().await.unwrap();
    assert!(!me.mfa_enrolment_required && me.permissions.contains(&"warden:superuser".to_owned()));
    sam.list_users(&ListQuery::default()).await.unwrap();
    assert_eq!(forward(&server, &bearer(&token)).await, 200);
}

#[tokio::test]
async fn break_glass_accounts_are_not_confined_without_a_factor() {
    let server = TestServer::start_with(signed_in_passes).await;
    let token = server.token_for("idm_admin").await;
    let idm = server.anonymous().with_bearer(&token);
    let me = idm.whoami().await.unwrap();
    assert_eq!((me.auth_strength.as_deref(), me.mfa_enrolment_required), (Some("password"), false));
    idm.list_users(&ListQuery::default()).await.unwrap();
    assert_eq!(forward(&server, &format!("Bearer {token}")).await, 200);

    // Basic with the password the host set: not confined either.
    let password = recovery::recover_account(&server.running.context, "admin").await.unwrap();
    let admin = server.anonymous().with_basic("admin", password.expose());
    assert!(!admin.whoami().await.unwrap().mfa_enrolment_required);
    admin.list_roles(&warden_client::RoleQuery::default()).await.unwrap();
}

#[tokio::test]
async fn a_reauth_never_lowers_the_session_strength() {
    let server = TestServer::start().await;
    server.idm().await.create_user(&user("sam")).await.unwrap();
    recovery::set_superuser(&server.running.context, "sam", true).await.unwrap();
    let (sam, _) = password_session(&server, "sam").await;
    sam.reauth(PASSWORD).await.unwrap();
    let secret = sam.begin_totp(&BeginTotp::default()).await.unwrap().secret.expose().to_owned();
    sam.confirm_totp(&pyotp(&secret, now(&server), 6, "sha1")).await.unwrap();
    sam.reauth_with_totp(PASSWORD, &pyotp(&secret, now(&server) + 30, 6, "sha1")).await.unwrap();
    let strength = |c: Client| async move { c.whoami().await.unwrap().auth_strength };
    assert_eq!(strength(sam.clone()).await.as_deref(), Some("password+totp"));

    // A backup code proves as much as TOTP: the strength stays; a wrong one changes nothing.
    let codes = sam.generate_backup_codes().await.unwrap().codes;
    assert_eq!(code(&sam.reauth_with_backup_code(PASSWORD, "0000-0000-0000-0000").await.unwrap_err()), "auth.failed");
    assert_eq!(strength(sam.clone()).await.as_deref(), Some("password+totp"));
    sam.reauth_with_backup_code(PASSWORD, codes[0].expose()).await.unwrap();
    assert_eq!(strength(sam.clone()).await.as_deref(), Some("password+totp"));

    // An administrator removes sam's factors (a lost device): the session keeps the strength it
    // proved, and so can no longer be re-authenticated with the password alone (that would let
    // whoever holds the old session and the password write as a two-factor session).
    server.superuser().await.reset_second_factors("sam").await.unwrap();
    assert_eq!(code(&sam.reauth(PASSWORD).await.unwrap_err()), "auth.second_factor_required");
    let me = sam.whoami().await.unwrap();
    assert_eq!((me.auth_strength.as_deref(), me.mfa_enrolment_required), (Some("password+totp"), false));
    // A new sign-in with the password alone is confined again.
    let (again, _) = password_session(&server, "sam").await;
    assert!(again.whoami().await.unwrap().mfa_enrolment_required);
}

#[tokio::test]
async fn an_mfa_requirement_names_one_role_or_one_group() {
    let dir = tempfile::tempdir().unwrap();
    for (entry, says) in [
        (MfaRequirement { role: Some("deployer".into()), group: Some("ops".into()) }, "not both"),
        (MfaRequirement::default(), "needs role"),
    ] {
        let mut config = Config::default();
        config.server.listen = "127.0.0.1:0".parse().unwrap();
        config.database.url = format!("sqlite://{}/warden.db", dir.path().display());
        config.server.control_socket = dir.path().join("wardend.sock");
        config.auth.mfa_required = vec![MfaRequirement { group: Some("ops".into()), role: None }, entry];
        let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
        let e = warden_server::start(config, clock, false).await.err().expect("the server started").to_string();
        assert!(e.contains("auth.mfa_required entry 2") && e.contains(says), "{e}");
    }
}
