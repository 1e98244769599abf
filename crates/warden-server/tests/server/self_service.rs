//! Issue 13's self-service: a person's own profile (with additional fields shown by
//! visibility), their own password, and what disabling or deleting an account does at once.
//! The main paths run on SQLite and on PostgreSQL.

use serde_json::{Value, json};
use warden_client::{AuditQuery, Client, ClientError};
use warden_core::api::{CreateApiToken, CreateServiceAccount, CreateUser, UpdateProfile, UpdateUser};
use warden_core::fields::{FieldDef, FieldType, Visibility};
use warden_core::model::EmailInput;
use warden_server::config::Config;

use crate::api::{PgDatabase, TestServer, user};

const PASSWORD: &str = "correct horse battery";

fn code(e: &ClientError) -> (Option<u16>, &str) {
    (e.status(), e.code())
}

fn def(name: &str, kind: FieldType, visibility: Visibility, writable_by_user: bool) -> FieldDef {
    FieldDef { name: name.into(), kind, visibility, writable_by_user }
}

/// One field of each visibility, two of them writable by the user.
fn with_fields(c: &mut Config) {
    c.user_fields = vec![
        def("team", FieldType::String, Visibility::Public, false),
        def("desk", FieldType::Number, Visibility::Authenticated, true),
        def("pronouns", FieldType::String, Visibility::Owner, true),
        def("salary_band", FieldType::String, Visibility::Private, false),
        def("started", FieldType::Date, Visibility::Owner, false),
    ];
}

fn fields(pairs: &[(&str, Value)]) -> std::collections::BTreeMap<String, Value> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
}

fn keys(user: &warden_core::model::User) -> Vec<&str> {
    user.profile.fields.keys().map(String::as_str).collect()
}

/// A fresh, read-only (not re-authenticated) session of `name`.
async fn session_of(server: &TestServer, name: &str, password: &str) -> Client {
    let login = server.anonymous().login(name, password).await.unwrap();
    server.anonymous().with_bearer(login.token.expose())
}

async fn events(admin: &Client, action: &str, target: &str) -> Vec<warden_core::model::AuditEvent> {
    let query = AuditQuery { action: Some(action.into()), target: Some(target.into()), ..Default::default() };
    admin.audit(&query).await.unwrap().items
}

async fn two_backends<F, Fut>(tag: &str, tweak: fn(&mut Config), run: F)
where
    F: Fn(TestServer) -> Fut,
    Fut: std::future::Future<Output = TestServer>,
{
    let sqlite = run(TestServer::start_with(tweak).await).await;
    sqlite.running.shutdown().await.unwrap();
    let db = PgDatabase::create(tag);
    let url = db.url();
    let pg = run(TestServer::start_with(move |c| {
        tweak(c);
        c.database.url = url;
    })
    .await)
    .await;
    pg.running.shutdown().await.unwrap();
}

#[tokio::test]
async fn service_accounts_and_tokens_have_no_self_service() {
    let server = TestServer::start().await;
    let idm = server.idm().await;
    idm.create_service_account(&CreateServiceAccount { name: "ci-bot".into(), ..Default::default() }).await.unwrap();
    let token = idm.create_api_token("ci-bot", &CreateApiToken { read_write: true, ..Default::default() }).await.unwrap();
    let bot = server.anonymous().with_bearer(token.token.expose());
    let refused = [
        bot.own_profile().await.unwrap_err(),
        bot.update_own_profile(&UpdateProfile { display_name: Some(Some("Bot".into())), ..Default::default() }).await.unwrap_err(),
        bot.change_own_password("whatever it is", "a new long password").await.unwrap_err(),
        // The break-glass accounts are service accounts too (they recover on the host).
        idm.own_profile().await.unwrap_err(),
        idm.change_own_password("not checked", "a new long password").await.unwrap_err(),
    ];
    for e in &refused {
        assert_eq!(code(e), (Some(403), "self.not_a_user"), "{e}");
    }
    // A person, but through HTTP Basic: a password change needs a session of theirs.
    idm.create_user(&user("alice")).await.unwrap();
    let basic = server.anonymous().with_basic("alice", PASSWORD);
    let e = basic.change_own_password(PASSWORD, "a new long password").await.unwrap_err();
    assert_eq!(code(&e), (Some(403), "self.session_required"));
    basic.own_profile().await.unwrap();
    // Nobody signed in: 401.
    assert_eq!(code(&server.anonymous().own_profile().await.unwrap_err()), (Some(401), "unauthenticated"));
    server.anonymous().login("alice", PASSWORD).await.expect("the password is unchanged");
}

async fn profile_edits(server: TestServer) -> TestServer {
    let idm = server.idm().await;
    let admin = server.sysadmin().await;

    // Administrators' writes are checked against the definitions too.
    for (bad, key) in [
        (fields(&[("desk", json!("twelve"))]), "fields.desk"),
        (fields(&[("started", json!("2026-02-30"))]), "fields.started"),
        (fields(&[("nickname", json!("al"))]), "fields.nickname"),
    ] {
        let e = idm.create_user(&CreateUser { fields: bad, ..user("alice") }).await.unwrap_err();
        assert_eq!(code(&e), (Some(400), "validation"), "{e}");
        assert!(e.to_string().contains(key), "{e} names {key}");
    }
    let alice = CreateUser {
        emails: vec![EmailInput::from("alice@example.org")],
        fields: fields(&[("team", json!("infra")), ("salary_band", json!("b3")), ("started", json!("2025-09-01"))]),
        ..user("alice")
    };
    idm.create_user(&alice).await.unwrap();
    let read = idm.get_user("alice").await.unwrap();
    assert_eq!(keys(&read), ["salary_band", "started", "team"], "administrators see every field");
    assert!(read.profile.emails[0].verified, "an administrator's address counts as verified");

    // A read-only session edits its own profile: it grants nothing (moving the primary address
    // aside, below).
    let me = session_of(&server, "alice", PASSWORD).await;
    let mine = me.own_profile().await.unwrap();
    assert_eq!(keys(&mine), ["started", "team"], "the owner sees public and self fields, never private ones");

    // Unhappy paths first; none of them changes anything.
    let patch = |f: &[(&str, Value)]| UpdateProfile { fields: Some(fields(f)), ..Default::default() };
    for (body, expected, names) in [
        (patch(&[("team", json!("sales"))]), (Some(403), "profile.field_disabled"), "fields.team"),
        (patch(&[("salary_band", json!("b3"))]), (Some(403), "profile.field_disabled"), "fields.salary_band"),
        (patch(&[("started", json!("2020-01-01"))]), (Some(403), "profile.field_disabled"), "fields.started"),
        (patch(&[("desk", json!("by the window"))]), (Some(400), "validation"), "fields.desk"),
        (patch(&[("nickname", json!("al"))]), (Some(400), "validation"), "fields.nickname"),
    ] {
        let e = me.update_own_profile(&body).await.unwrap_err();
        assert_eq!(code(&e), expected, "{e}");
        assert!(e.to_string().contains(names), "{e} names {names}");
        assert!(!e.to_string().contains("b3"), "a private value is never echoed: {e}");
    }
    let claimed: Vec<EmailInput> =
        serde_json::from_value(json!(["alice@example.org", {"address": "new@example.org", "verified": true}])).unwrap();
    let added = me.update_own_profile(&UpdateProfile { emails: Some(claimed), ..Default::default() }).await.unwrap();
    let flags: Vec<(&str, bool, bool)> = added.profile.emails.iter().map(|e| (e.address.as_str(), e.primary, e.verified)).collect();
    assert_eq!(flags, [("alice@example.org", true, true), ("new@example.org", false, false)], "no one verifies by saying so");
    let promote: Vec<EmailInput> =
        serde_json::from_value(json!([{"address": "new@example.org", "primary": true}, "alice@example.org"])).unwrap();
    let e = me.update_own_profile(&UpdateProfile { emails: Some(promote), ..Default::default() }).await.unwrap_err();
    assert_eq!(code(&e), (Some(400), "email.unverified"), "{e}");
    let e = me.update_own_profile(&UpdateProfile { emails: Some(vec!["new@example.org".into()]), ..Default::default() }).await.unwrap_err();
    assert_eq!(code(&e), (Some(400), "email.unverified"), "dropping the verified primary promotes an unverified one: {e}");
    assert_eq!(me.own_profile().await.unwrap().profile.emails, added.profile.emails);
    // The unverified address signs no one in.
    assert_eq!(server.anonymous().login("new@example.org", PASSWORD).await.unwrap_err().code(), "auth.failed");
    server.anonymous().login("alice@example.org", PASSWORD).await.unwrap();

    // Writable fields, names and lists.
    let body = UpdateProfile {
        display_name: Some(Some("Alice L.".into())),
        phones: Some(vec!["+43 1 234567".into()]),
        fields: Some(fields(&[("desk", json!(12)), ("pronouns", json!("she/her"))])),
        ..Default::default()
    };
    let changed = me.update_own_profile(&body).await.unwrap();
    assert_eq!(keys(&changed), ["desk", "pronouns", "started", "team"]);
    assert_eq!(changed.profile.display_name.as_deref(), Some("Alice L."));
    let by_admin = idm.get_user("alice").await.unwrap();
    assert_eq!(keys(&by_admin), ["desk", "pronouns", "salary_band", "started", "team"], "the private value stays");
    assert_eq!(by_admin.profile.fields["salary_band"], json!("b3"));

    // What GET returns, sent back: no change, no event.
    let before = events(&admin, "user.profile.update", "alice").await.len();
    let raw: Value = serde_json::to_value(me.own_profile().await.unwrap()).unwrap();
    let same: UpdateProfile = serde_json::from_value(json!({
        "display_name": raw["display_name"], "emails": raw["emails"], "phones": raw["phones"],
        "addresses": raw["addresses"], "fields": raw["fields"],
    }))
    .unwrap();
    me.update_own_profile(&same).await.unwrap();
    let audit = events(&admin, "user.profile.update", "alice").await;
    assert_eq!(audit.len(), before);
    // The events name what changed, never the values, and who did it.
    let details = audit.iter().map(|e| e.details.to_string()).collect::<String>();
    assert!(details.contains("fields.desk") && details.contains("emails"), "{details}");
    assert!(!details.contains("new@example.org") && !details.contains("she/her"), "{details}");
    assert!(audit.iter().all(|e| e.actor_name.as_deref() == Some("alice")));
    assert_eq!(audit.iter().find(|e| e.details["fields"] == json!(["emails"])).unwrap().details["emails_to_verify"], 1);

    // An administrator sets what the user may not, and sees the user's; removes with null.
    let update = UpdateUser { fields: Some(fields(&[("team", json!("sales")), ("pronouns", Value::Null)])), ..Default::default() };
    assert_eq!(keys(&idm.update_user("alice", &update).await.unwrap()), ["desk", "salary_band", "started", "team"]);
    let bad = UpdateUser { fields: Some(fields(&[("desk", json!([12]))])), ..Default::default() };
    assert_eq!(code(&idm.update_user("alice", &bad).await.unwrap_err()), (Some(400), "validation"));
    assert_eq!(me.own_profile().await.unwrap().profile.fields["team"], json!("sales"));
    let audit = events(&admin, "user.update", "alice").await;
    assert_eq!(audit[0].details["fields"], json!(["fields.pronouns", "fields.team"]));

    // Moving the primary address, even to a verified one, needs a write window: it decides
    // where recovery mail goes and which address signs in.
    let both = UpdateUser { emails: Some(vec!["alice@example.org".into(), "work@example.org".into()]), ..Default::default() };
    idm.update_user("alice", &both).await.unwrap();
    let to_work = || UpdateProfile { emails: Some(vec!["work@example.org".into(), "alice@example.org".into()]), ..Default::default() };
    let e = me.update_own_profile(&to_work()).await.unwrap_err();
    assert_eq!(code(&e), (Some(403), "session.not_elevated"));
    let e = me.update_own_profile(&UpdateProfile { emails: Some(vec![]), ..Default::default() }).await.unwrap_err();
    assert_eq!(code(&e), (Some(403), "session.not_elevated"), "removing the primary moves it too");
    assert_eq!(server.anonymous().login("work@example.org", PASSWORD).await.unwrap_err().code(), "auth.failed");
    me.reauth(PASSWORD).await.unwrap();
    let moved = me.update_own_profile(&to_work()).await.unwrap();
    assert_eq!((moved.profile.emails[0].address.as_str(), moved.profile.emails[0].verified), ("work@example.org", true));
    server.anonymous().login("work@example.org", PASSWORD).await.unwrap();
    server
}

#[tokio::test]
async fn a_person_edits_their_profile_and_sees_their_fields_on_sqlite_and_postgresql() {
    two_backends("selfprofile", with_fields, profile_edits).await;
}

#[tokio::test]
async fn lists_the_server_keeps_for_administrators_are_refused_to_users() {
    let server = TestServer::start_with(|c| {
        c.profile.disable_phone_numbers = true;
        c.profile.disable_addresses = true;
    })
    .await;
    let idm = server.idm().await;
    let alice = CreateUser { phones: vec!["+43 1 234567".into()], ..user("alice") };
    idm.create_user(&alice).await.unwrap();
    let me = session_of(&server, "alice", PASSWORD).await;
    let phones = UpdateProfile { phones: Some(vec!["+43 1 999999".into()]), ..Default::default() };
    let e = me.update_own_profile(&phones).await.unwrap_err();
    assert_eq!(code(&e), (Some(403), "profile.field_disabled"));
    assert!(e.to_string().contains("profile.disable_phone_numbers"), "{e}");
    let home = serde_json::from_value(json!([{"label": "home", "locality": "Vienna"}])).unwrap();
    let e = me.update_own_profile(&UpdateProfile { addresses: Some(home), ..Default::default() }).await.unwrap_err();
    assert_eq!(code(&e), (Some(403), "profile.field_disabled"));
    assert!(e.to_string().contains("profile.disable_addresses"), "{e}");
    // Sent back unchanged, the lists are no change; the rest of the profile is the user's.
    let raw = serde_json::to_value(me.own_profile().await.unwrap()).unwrap();
    let same: UpdateProfile =
        serde_json::from_value(json!({"phones": raw["phones"], "addresses": raw["addresses"], "first_name": "Alice"})).unwrap();
    assert_eq!(me.update_own_profile(&same).await.unwrap().profile.first_name.as_deref(), Some("Alice"));
    // Administrators are not bound by the switches.
    let update = UpdateUser { phones: Some(vec!["+43 1 999999".into()]), ..Default::default() };
    assert_eq!(idm.update_user("alice", &update).await.unwrap().profile.phones[0].number, "+43 1 999999");
}

async fn password_changes(server: TestServer) -> TestServer {
    let idm = server.idm().await;
    let admin = server.sysadmin().await;
    idm.create_user(&user("alice")).await.unwrap();
    idm.create_user(&user("bob")).await.unwrap();
    let here = session_of(&server, "alice", PASSWORD).await;
    let elsewhere = session_of(&server, "alice", PASSWORD).await;

    // A wrong current password: refused as a failed login is, and counted like one.
    let e = here.change_own_password("not my password", "a brand new passphrase").await.unwrap_err();
    assert_eq!(code(&e), (Some(401), "auth.failed"));
    let login = server.anonymous().login("nobody", "not my password").await.unwrap_err();
    assert_eq!(e.to_string(), login.to_string(), "says no more than a failed login");
    assert_eq!(events(&admin, "auth.login.failed", "alice").await.len(), 1);
    // A new password that breaks the rules: refused before the current one is checked.
    let e = here.change_own_password(PASSWORD, "short").await.unwrap_err();
    assert_eq!(code(&e), (Some(400), "validation"));
    assert!(e.to_string().contains("new"), "{e}");
    here.whoami().await.expect("a refused change ends nothing");
    elsewhere.whoami().await.unwrap();

    here.change_own_password(PASSWORD, "a brand new passphrase").await.unwrap();
    here.whoami().await.expect("the session it was changed through stays");
    assert_eq!(code(&elsewhere.whoami().await.unwrap_err()), (Some(401), "unauthenticated"), "every other session ends");
    assert_eq!(server.anonymous().login("alice", PASSWORD).await.unwrap_err().code(), "auth.failed");
    server.anonymous().login("alice", "a brand new passphrase").await.unwrap();
    let audit = events(&admin, "credential.password.change", "alice").await;
    assert_eq!(audit.len(), 1);
    assert_eq!((audit[0].actor_name.as_deref(), &audit[0].details["sessions_ended"]), (Some("alice"), &json!(1)));
    assert!(!audit[0].details.to_string().contains("passphrase"));

    // The soft lock counts wrong current passwords: past the free ones, the next waits.
    let bob = session_of(&server, "bob", PASSWORD).await;
    let mut answers = Vec::new();
    for _ in 0..8 {
        let e = bob.change_own_password("a guess at it", "a brand new passphrase").await.unwrap_err();
        answers.push(e.code().to_owned());
    }
    assert!(answers.iter().any(|c| c == "auth.rate_limited"), "{answers:?}");
    assert!(answers.iter().all(|c| c == "auth.failed" || c == "auth.rate_limited"), "{answers:?}");
    server
}

#[tokio::test]
async fn a_person_changes_their_password_on_sqlite_and_postgresql() {
    two_backends("selfpassword", |_| {}, password_changes).await;
}

async fn disabling_and_deleting(server: TestServer) -> TestServer {
    let idm = server.idm().await;
    let admin = server.sysadmin().await;
    let alice_id = idm.create_user(&user("alice")).await.unwrap().id;
    let alice = session_of(&server, "alice", PASSWORD).await;
    alice.whoami().await.unwrap(); // cached now
    idm.disable_user("alice").await.unwrap();
    assert_eq!(code(&alice.whoami().await.unwrap_err()), (Some(401), "unauthenticated"), "disabled: at once");
    assert_eq!(server.anonymous().login("alice", PASSWORD).await.unwrap_err().code(), "auth.failed");
    idm.enable_user("alice").await.unwrap();
    assert_eq!(code(&alice.whoami().await.unwrap_err()).1, "unauthenticated", "enabling brings no session back");

    // The name at the time stays on each event; the id ties them together.
    let alice = session_of(&server, "alice", PASSWORD).await;
    alice.update_own_profile(&UpdateProfile { display_name: Some(Some("Alice".into())), ..Default::default() }).await.unwrap();
    idm.rename_user("alice", "alicia").await.unwrap();
    alice.whoami().await.unwrap();
    idm.delete_user("alicia").await.unwrap();
    assert_eq!(code(&alice.whoami().await.unwrap_err()).1, "unauthenticated", "deleted: at once");

    let by_id = admin.audit(&AuditQuery { target: Some(alice_id.to_string()), ..Default::default() }).await.unwrap().items;
    let trail: Vec<(&str, &str)> = by_id
        .iter()
        .rev()
        .map(|e| (e.action.as_str(), e.target_name.as_deref().unwrap_or("")))
        .filter(|(a, _)| !a.starts_with("auth."))
        .collect();
    assert_eq!(
        trail,
        [
            ("user.create", "alice"),
            ("user.disable", "alice"),
            ("user.enable", "alice"),
            ("user.profile.update", "alice"),
            ("user.rename", "alice"),
            ("user.delete", "alicia"),
        ]
    );
    let own = admin.audit(&AuditQuery { actor: Some(alice_id.to_string()), ..Default::default() }).await.unwrap().items;
    assert!(own.iter().any(|e| e.action == "user.profile.update" && e.actor_name.as_deref() == Some("alice")), "what they did stays too");

    // A service account's API token ends with its account.
    idm.create_service_account(&CreateServiceAccount { name: "ci-bot".into(), ..Default::default() }).await.unwrap();
    let token = idm.create_api_token("ci-bot", &CreateApiToken::default()).await.unwrap();
    let bot = server.anonymous().with_bearer(token.token.expose());
    bot.whoami().await.unwrap();
    idm.delete_service_account("ci-bot").await.unwrap();
    assert_eq!(code(&bot.whoami().await.unwrap_err()).1, "unauthenticated", "deleted: at once");
    assert_eq!(events(&admin, "service_account.delete", "ci-bot").await.len(), 1);
    server
}

#[tokio::test]
async fn disabling_or_deleting_ends_sessions_and_tokens_at_once_and_keeps_the_trail() {
    two_backends("selfdelete", |_| {}, disabling_and_deleting).await;
}

/// The same across nodes: a session and an API token in use (and cached) on one PostgreSQL
/// node stop working there as soon as another node deletes their accounts.
#[tokio::test]
async fn deleting_on_one_node_ends_sessions_and_tokens_on_the_other() {
    let db = PgDatabase::create("selfdelete2");
    let one = TestServer::start_with(|c| c.database.url = db.url()).await;
    let two = TestServer::start_with(|c| c.database.url = db.url()).await;
    let idm = one.idm().await;
    idm.create_user(&user("alice")).await.unwrap();
    idm.create_service_account(&CreateServiceAccount { name: "ci-bot".into(), ..Default::default() }).await.unwrap();
    let token = idm.create_api_token("ci-bot", &CreateApiToken::default()).await.unwrap();
    let alice = session_of(&two, "alice", PASSWORD).await;
    let bot = two.anonymous().with_bearer(token.token.expose());
    alice.whoami().await.unwrap();
    bot.whoami().await.unwrap();
    idm.delete_user("alice").await.unwrap();
    idm.delete_service_account("ci-bot").await.unwrap();
    for (what, client) in [("alice's session", &alice), ("ci-bot's token", &bot)] {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        while client.whoami().await.is_ok() {
            assert!(std::time::Instant::now() < deadline, "node two still honours {what} 3 s after the deletion");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(code(&client.whoami().await.unwrap_err()).1, "unauthenticated", "{what}");
    }
    two.running.shutdown().await.unwrap();
    one.running.shutdown().await.unwrap();
}
