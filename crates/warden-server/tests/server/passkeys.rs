//! Issue 14's passkeys, against software authenticators (webauthn-authenticator-rs' SoftToken,
//! an implementation other than the verifier's): registering several, naming, renaming and
//! removing them; signing in with one alone and as the second step of a password sign-in; and
//! the bad paths first: passkeys off, a read-only session, a wrong origin, a wrong relying-party
//! id, an unknown credential, a replayed challenge, a cloned authenticator whose counter goes
//! backwards, and fifty concurrent answers to one challenge of which exactly one signs in.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use warden_client::{AuditQuery, Client, ClientError};
use warden_core::api::{FinishPasskeyRegistration, PasskeyChallenge, PasskeySignIn, SecondFactorAnswer};
use warden_core::credential::Secret;
use warden_server::clock::Clock;
use warden_server::config::Config;
use webauthn_authenticator_rs::AuthenticatorBackend;
use webauthn_authenticator_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url, WebauthnAuthenticator};
use webauthn_authenticator_rs::softtoken::SoftToken;

use crate::api::{PgDatabase, TestServer, user};

const PASSWORD: &str = "correct horse battery";
const ORIGIN: &str = "https://id.example.test";

fn relying_party(c: &mut Config) {
    c.webauthn.rp_id = Some("example.test".into());
    c.webauthn.origins = vec![ORIGIN.into()];
}

fn code(e: &ClientError) -> &str {
    e.code()
}

fn origin(url: &str) -> Url {
    Url::parse(url).unwrap()
}

/// A software authenticator that claims user verification (as a PIN or a fingerprint would).
fn authenticator() -> SoftToken {
    SoftToken::new(true).unwrap().0
}

/// An exact copy of an authenticator, keys and counter: what a cloned device is.
fn clone_of(token: &SoftToken) -> SoftToken {
    SoftToken::from_cbor(&token.to_cbor().unwrap()).unwrap()
}

/// A user signed in and elevated, and its client.
async fn person(server: &TestServer, name: &str) -> Client {
    server.idm().await.create_user(&user(name)).await.unwrap();
    let session = server.anonymous().login(name, PASSWORD).await.unwrap();
    let me = server.anonymous().with_bearer(session.token.expose());
    me.reauth(PASSWORD).await.unwrap();
    me
}

/// The authenticator's answer to a registration ceremony, from `at`.
fn create(token: &mut SoftToken, challenge: &PasskeyChallenge, at: &str) -> Value {
    let options: CreationChallengeResponse = serde_json::from_value(challenge.options.clone()).unwrap();
    serde_json::to_value(token.do_registration(origin(at), options).unwrap()).unwrap()
}

/// Registers `token` for `me` under `name`; returns the credential id (base64url).
async fn register(me: &Client, token: &mut SoftToken, name: &str) -> String {
    let challenge = me.begin_passkey_registration().await.unwrap();
    let credential = create(token, &challenge, ORIGIN);
    let id = credential["id"].as_str().unwrap().to_owned();
    let finish = FinishPasskeyRegistration { ceremony: challenge.ceremony, name: Some(name.into()), credential };
    me.finish_passkey_registration(&finish).await.unwrap();
    id
}

/// The authenticator's assertion for `options` from `at`. A discoverable ceremony names no
/// credential: the authenticator picks its own (`credential_id`) and returns the account's
/// user handle with it, as a resident key does.
fn assert_with(token: &mut SoftToken, options: &Value, at: &str, discoverable: Option<(&str, uuid::Uuid)>) -> Value {
    let mut options = options.clone();
    if let Some((credential_id, _)) = discoverable {
        options["publicKey"]["allowCredentials"] = serde_json::json!([{ "type": "public-key", "id": credential_id }]);
    }
    let request: RequestChallengeResponse = serde_json::from_value(options).unwrap();
    let mut answer = serde_json::to_value(token.do_authentication(origin(at), request).unwrap()).unwrap();
    if let Some((_, account)) = discoverable {
        answer["response"]["userHandle"] = Value::String(URL_SAFE_NO_PAD.encode(account.as_bytes()));
    }
    answer
}

async fn passwordless(server: &TestServer, token: &mut SoftToken, credential_id: &str, account: uuid::Uuid) -> Result<Client, ClientError> {
    let challenge = server.anonymous().begin_passkey_sign_in().await?;
    let credential = assert_with(token, &challenge.options, ORIGIN, Some((credential_id, account)));
    let session = server.anonymous().finish_passkey_sign_in(&PasskeySignIn { ceremony: challenge.ceremony, credential }).await?;
    Ok(server.anonymous().with_bearer(session.token.expose()))
}

async fn refusals(server: &TestServer, reason: &str) -> usize {
    let admin = server.sysadmin().await;
    let events = admin.audit(&AuditQuery { action: Some("auth.passkey.refused".into()), ..Default::default() }).await.unwrap();
    events.items.iter().filter(|e| e.details["reason"] == reason).count()
}

#[tokio::test]
async fn passkeys_are_off_without_a_relying_party_and_need_an_elevated_session() {
    let off = TestServer::start().await;
    let me = person(&off, "alice").await;
    assert_eq!(code(&me.begin_passkey_registration().await.unwrap_err()), "config.webauthn_missing");
    assert_eq!(code(&off.anonymous().begin_passkey_sign_in().await.unwrap_err()), "config.webauthn_missing");
    assert_eq!(me.second_factors().await.unwrap().passkeys, 0);

    let server = TestServer::start_with(relying_party).await;
    server.idm().await.create_user(&user("reader")).await.unwrap();
    let session = server.anonymous().login("reader", PASSWORD).await.unwrap();
    let reader = server.anonymous().with_bearer(session.token.expose());
    assert_eq!(code(&reader.begin_passkey_registration().await.unwrap_err()), "session.not_elevated", "a read-only session adds no factor");
    let bot = server.idm().await;
    assert_eq!(code(&bot.begin_passkey_registration().await.unwrap_err()), "self.not_a_user");
}

#[tokio::test]
async fn registration_refuses_what_does_not_verify_and_spends_the_ceremony() {
    let server = TestServer::start_with(relying_party).await;
    let me = person(&server, "alice").await;
    let mut token = authenticator();

    // A made-up ceremony key, and a credential that is no credential.
    let challenge = me.begin_passkey_registration().await.unwrap();
    let credential = create(&mut token, &challenge, ORIGIN);
    let forged = FinishPasskeyRegistration { ceremony: Secret::new("wdo_forged"), name: None, credential: credential.clone() };
    assert_eq!(code(&me.finish_passkey_registration(&forged).await.unwrap_err()), "token.invalid");
    let junk = FinishPasskeyRegistration { ceremony: challenge.ceremony.clone(), name: None, credential: serde_json::json!({"id": 1}) };
    assert_eq!(code(&me.finish_passkey_registration(&junk).await.unwrap_err()), "validation");

    // From another origin (a phishing site relaying the ceremony): refused, and the ceremony
    // is spent, so the right answer cannot follow it.
    let phished = create(&mut token, &challenge, "https://evil.example.test");
    let wrong = FinishPasskeyRegistration { ceremony: challenge.ceremony.clone(), name: None, credential: phished };
    assert_eq!(code(&me.finish_passkey_registration(&wrong).await.unwrap_err()), "passkey.invalid");
    let late = FinishPasskeyRegistration { ceremony: challenge.ceremony.clone(), name: None, credential };
    assert_eq!(code(&me.finish_passkey_registration(&late).await.unwrap_err()), "token.invalid");

    // Another account's ceremony is not this one's.
    let bob = person(&server, "bob").await;
    let challenge = me.begin_passkey_registration().await.unwrap();
    let credential = create(&mut token, &challenge, ORIGIN);
    let stolen = FinishPasskeyRegistration { ceremony: challenge.ceremony, name: None, credential };
    assert_eq!(code(&bob.finish_passkey_registration(&stolen).await.unwrap_err()), "token.invalid");

    // A name too long is refused before anything is spent.
    let challenge = me.begin_passkey_registration().await.unwrap();
    let credential = create(&mut token, &challenge, ORIGIN);
    let long =
        FinishPasskeyRegistration { ceremony: challenge.ceremony.clone(), name: Some("x".repeat(65)), credential: credential.clone() };
    assert_eq!(code(&me.finish_passkey_registration(&long).await.unwrap_err()), "validation");
    me.finish_passkey_registration(&FinishPasskeyRegistration { ceremony: challenge.ceremony, name: None, credential }).await.unwrap();
    assert_eq!(me.passkeys().await.unwrap()[0].name, "passkey 1", "a default name");

    // The same device registering again (for another account) makes a new credential.
    let challenge = bob.begin_passkey_registration().await.unwrap();
    let mut again = clone_of(&token);
    let credential = create(&mut again, &challenge, ORIGIN);
    let finish = FinishPasskeyRegistration { ceremony: challenge.ceremony, name: None, credential };
    bob.finish_passkey_registration(&finish).await.unwrap();
    assert_eq!(bob.passkeys().await.unwrap().len(), 1, "a new credential of the same device is a new passkey");
}

async fn passkey_round_trip(server: &TestServer) {
    let me = person(server, "alice").await;
    let account = me.whoami().await.unwrap().account.id;
    let mut laptop = authenticator();
    let mut phone = authenticator();
    let laptop_id = register(&me, &mut laptop, "laptop").await;
    let phone_id = register(&me, &mut phone, "phone").await;
    let keys = me.passkeys().await.unwrap();
    assert_eq!(keys.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(), ["laptop", "phone"]);
    let renamed = me.rename_passkey(keys[1].id, "old phone").await.unwrap();
    assert_eq!(renamed.name, "old phone");
    assert_eq!(me.second_factors().await.unwrap().passkeys, 2);

    // Passwordless: a session of strength `passkey`, read-only like any other.
    let signed_in = passwordless(server, &mut laptop, &laptop_id, account).await.unwrap();
    let who = signed_in.whoami().await.unwrap();
    assert_eq!((who.account.id, who.auth_strength.as_deref()), (account, Some("passkey")));
    assert!(me.passkeys().await.unwrap()[0].last_used_at.is_some(), "the use is recorded");

    // The passkey is now a second factor of the password sign-in.
    let step = crate::second_factor::second_step(server, "alice").await;
    assert_eq!(step.methods, ["passkey"]);
    let options = step.passkey_options.clone().expect("the options for the passkey");
    let assertion = assert_with(&mut phone, &options, ORIGIN, None);
    let answer = SecondFactorAnswer { state: step.state.clone(), totp: None, backup_code: None, passkey: Some(assertion.clone()) };
    let session = server.anonymous().login_mfa(&answer).await.unwrap();
    let who = server.anonymous().with_bearer(session.token.expose()).whoami().await.unwrap();
    assert_eq!(who.auth_strength.as_deref(), Some("password+passkey"));
    assert_eq!(code(&server.anonymous().login_mfa(&answer).await.unwrap_err()), "token.invalid", "the pending sign-in is spent");

    // Removed, it signs no one in.
    me.remove_passkey(keys[0].id).await.unwrap();
    assert_eq!(code(&me.remove_passkey(keys[0].id).await.unwrap_err()), "not_found");
    assert_eq!(code(&passwordless(server, &mut laptop, &laptop_id, account).await.unwrap_err()), "auth.failed");
    assert_eq!(me.passkeys().await.unwrap().len(), 1);
    let _ = phone_id;
}

#[tokio::test]
async fn passkeys_register_sign_in_alone_and_as_second_factor_on_sqlite() {
    let server = TestServer::start_with(relying_party).await;
    passkey_round_trip(&server).await;
}

#[tokio::test]
async fn passkeys_register_sign_in_alone_and_as_second_factor_on_postgres() {
    let db = PgDatabase::create("passkeys");
    let server = TestServer::start_with(|c| {
        relying_party(c);
        c.database.url = db.url();
    })
    .await;
    passkey_round_trip(&server).await;
}

#[tokio::test]
async fn assertions_that_must_not_sign_in_do_not() {
    let server = TestServer::start_with(relying_party).await;
    let me = person(&server, "alice").await;
    let account = me.whoami().await.unwrap().account.id;
    let mut token = authenticator();
    let credential_id = register(&me, &mut token, "key").await;

    // A wrong origin (a phishing site relaying the ceremony).
    let challenge = server.anonymous().begin_passkey_sign_in().await.unwrap();
    let credential = assert_with(&mut token, &challenge.options, "https://evil.example.test", Some((&credential_id, account)));
    let sign_in = PasskeySignIn { ceremony: challenge.ceremony, credential };
    assert_eq!(code(&server.anonymous().finish_passkey_sign_in(&sign_in).await.unwrap_err()), "auth.failed");

    // A wrong relying-party id, signed by the authenticator itself (below the browser's check).
    let challenge = server.anonymous().begin_passkey_sign_in().await.unwrap();
    let mut options = challenge.options.clone();
    options["publicKey"]["rpId"] = Value::String("other.test".into());
    options["publicKey"]["allowCredentials"] = serde_json::json!([{ "type": "public-key", "id": credential_id }]);
    let request: RequestChallengeResponse = serde_json::from_value(options).unwrap();
    let mut credential =
        serde_json::to_value(AuthenticatorBackend::perform_auth(&mut token, origin(ORIGIN), request.public_key, 60_000).unwrap()).unwrap();
    credential["response"]["userHandle"] = Value::String(URL_SAFE_NO_PAD.encode(account.as_bytes()));
    let sign_in = PasskeySignIn { ceremony: challenge.ceremony, credential };
    assert_eq!(code(&server.anonymous().finish_passkey_sign_in(&sign_in).await.unwrap_err()), "auth.failed");
    assert_eq!(refusals(&server, "invalid").await, 2);

    // An unknown credential: a user handle that is not its holder's, and one of no one.
    let bob = person(&server, "bob").await;
    let bob_id = bob.whoami().await.unwrap().account.id;
    assert_eq!(code(&passwordless(&server, &mut token, &credential_id, bob_id).await.unwrap_err()), "auth.failed");
    let mut stranger = authenticator();
    let stranger_id = register(&bob, &mut stranger, "bob's").await;
    let bob_key = bob.passkeys().await.unwrap()[0].id;
    bob.remove_passkey(bob_key).await.unwrap();
    assert_eq!(code(&passwordless(&server, &mut stranger, &stranger_id, bob_id).await.unwrap_err()), "auth.failed");
    assert_eq!(refusals(&server, "unknown_credential").await, 2);

    // A replayed challenge: the ceremony is spent by its first answer, whatever came of it;
    // and an assertion of one ceremony does not answer another.
    let challenge = server.anonymous().begin_passkey_sign_in().await.unwrap();
    let credential = assert_with(&mut token, &challenge.options, ORIGIN, Some((&credential_id, account)));
    let sign_in = PasskeySignIn { ceremony: challenge.ceremony, credential: credential.clone() };
    server.anonymous().finish_passkey_sign_in(&sign_in).await.unwrap();
    assert_eq!(code(&server.anonymous().finish_passkey_sign_in(&sign_in).await.unwrap_err()), "token.invalid");
    let other = server.anonymous().begin_passkey_sign_in().await.unwrap();
    let replay = PasskeySignIn { ceremony: other.ceremony, credential };
    assert_eq!(code(&server.anonymous().finish_passkey_sign_in(&replay).await.unwrap_err()), "auth.failed");

    // A cloned authenticator: the copy's counter is behind the original's.
    let mut copy = clone_of(&token);
    passwordless(&server, &mut token, &credential_id, account).await.unwrap();
    passwordless(&server, &mut token, &credential_id, account).await.unwrap();
    assert_eq!(code(&passwordless(&server, &mut copy, &credential_id, account).await.unwrap_err()), "auth.failed");
    assert_eq!(refusals(&server, "counter_behind").await, 1);
    passwordless(&server, &mut token, &credential_id, account).await.expect("the original still signs in");

    // As a second factor, refusals count towards the lock like wrong codes.
    for _ in 0..5 {
        let step = crate::second_factor::second_step(&server, "alice").await;
        let assertion = assert_with(&mut token, step.passkey_options.as_ref().unwrap(), "https://evil.example.test", None);
        let answer = SecondFactorAnswer { state: step.state, totp: None, backup_code: None, passkey: Some(assertion) };
        let refused = server.anonymous().login_mfa(&answer).await.unwrap_err();
        assert!(["auth.failed", "auth.rate_limited"].contains(&code(&refused)), "{refused:?}");
    }
    let step = crate::second_factor::second_step(&server, "alice").await;
    let assertion = assert_with(&mut token, step.passkey_options.as_ref().unwrap(), ORIGIN, None);
    let answer = SecondFactorAnswer { state: step.state, totp: None, backup_code: None, passkey: Some(assertion) };
    assert_eq!(code(&server.anonymous().login_mfa(&answer).await.unwrap_err()), "auth.rate_limited", "locked, even for a right passkey");
}

/// Fifty answers to one challenge at once: exactly one signs in.
#[tokio::test]
async fn one_challenge_signs_in_once_under_concurrency() {
    let server = TestServer::start_with(relying_party).await;
    let me = person(&server, "alice").await;
    let account = me.whoami().await.unwrap().account.id;
    let mut token = authenticator();
    let credential_id = register(&me, &mut token, "key").await;
    let challenge = server.anonymous().begin_passkey_sign_in().await.unwrap();
    let credential = assert_with(&mut token, &challenge.options, ORIGIN, Some((&credential_id, account)));
    let sign_in = PasskeySignIn { ceremony: challenge.ceremony, credential };
    let mut all = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let (client, sign_in) = (server.anonymous(), sign_in.clone());
        all.spawn(async move { client.finish_passkey_sign_in(&sign_in).await });
    }
    let mut won = 0;
    while let Some(outcome) = all.join_next().await {
        match outcome.unwrap() {
            Ok(_) => won += 1,
            Err(e) => assert_eq!(code(&e), "token.invalid"),
        }
    }
    assert_eq!(won, 1);
}

/// Re-authentication asks for the strength the session signed in with: a passkey session
/// re-authenticates with a passkey (alone, or after the password), not the password alone nor
/// with a code; a password+passkey session with a passkey too; the ceremony is the account's
/// own and is spent once.
#[tokio::test]
async fn reauth_is_as_strong_as_the_sign_in() {
    use warden_core::api::ReauthRequest;
    let server = TestServer::start_with(relying_party).await;
    let me = person(&server, "alice").await;
    let account = me.whoami().await.unwrap().account.id;
    let mut token = authenticator();
    let credential_id = register(&me, &mut token, "key").await;
    let enrolment = me.begin_totp(&warden_core::api::BeginTotp::default()).await.unwrap();
    let now = server.clock.now().unix_timestamp();
    me.confirm_totp(&crate::second_factor::pyotp(enrolment.secret.expose(), now, 6, "sha1")).await.unwrap();

    // Unhappy paths first, on a passkey session.
    let session = passwordless(&server, &mut token, &credential_id, account).await.unwrap();
    assert_eq!(code(&session.reauth(PASSWORD).await.unwrap_err()), "auth.second_factor_required", "the password alone");
    server.clock.advance(time::Duration::seconds(30));
    let totp = crate::second_factor::pyotp(enrolment.secret.expose(), server.clock.now().unix_timestamp(), 6, "sha1");
    let weaker = session.reauth_with_totp(PASSWORD, &totp).await.unwrap_err();
    assert_eq!(code(&weaker), "auth.second_factor_required", "two factors are less than a passkey: {weaker:?}");
    assert!(
        session
            .reauth_with(&ReauthRequest { password: None, ..ReauthRequest::password("") })
            .await
            .is_err_and(|e| code(&e) == "validation")
    );
    let challenge = session.begin_passkey_reauth().await.unwrap();
    let no_key = ReauthRequest { password: None, passkey: Some(serde_json::json!({})), ..ReauthRequest::password("") };
    assert_eq!(code(&session.reauth_with(&no_key).await.unwrap_err()), "validation", "a passkey needs its ceremony");
    // Another account's ceremony is not this one's.
    let bob = person(&server, "bob").await;
    let mut bobs = authenticator();
    register(&bob, &mut bobs, "bob's").await;
    let bob_challenge = bob.begin_passkey_reauth().await.unwrap();
    let answer = assert_with(&mut bobs, &bob_challenge.options, ORIGIN, None);
    let stolen =
        ReauthRequest { password: None, passkey: Some(answer), ceremony: Some(bob_challenge.ceremony), ..ReauthRequest::password("") };
    assert_eq!(code(&session.reauth_with(&stolen).await.unwrap_err()), "token.invalid");

    // A passkey alone re-authenticates the passkey session; its ceremony once.
    let answer = assert_with(&mut token, &challenge.options, ORIGIN, None);
    let right = ReauthRequest { password: None, passkey: Some(answer), ceremony: Some(challenge.ceremony), ..ReauthRequest::password("") };
    session.reauth_with(&right).await.unwrap();
    assert_eq!(code(&session.reauth_with(&right).await.unwrap_err()), "token.invalid", "spent");
    assert_eq!(session.whoami().await.unwrap().auth_strength.as_deref(), Some("passkey"));
    session.rename_passkey(me.passkeys().await.unwrap()[0].id, "elevated").await.expect("the write window is open");

    // A password+TOTP session may re-authenticate with a passkey (at least as strong), which
    // raises it.
    let step = crate::second_factor::second_step(&server, "alice").await;
    assert_eq!(step.methods, ["totp", "passkey"]);
    server.clock.advance(time::Duration::seconds(30));
    let totp = crate::second_factor::pyotp(enrolment.secret.expose(), server.clock.now().unix_timestamp(), 6, "sha1");
    let answer = SecondFactorAnswer { state: step.state, totp: Some(totp), backup_code: None, passkey: None };
    let two = server.anonymous().with_bearer(server.anonymous().login_mfa(&answer).await.unwrap().token.expose());
    assert_eq!(two.whoami().await.unwrap().auth_strength.as_deref(), Some("password+totp"));
    let challenge = two.begin_passkey_reauth().await.unwrap();
    let answer = assert_with(&mut token, &challenge.options, ORIGIN, None);
    let with_passkey = ReauthRequest { passkey: Some(answer), ceremony: Some(challenge.ceremony), ..ReauthRequest::password(PASSWORD) };
    two.reauth_with(&with_passkey).await.unwrap();
    assert_eq!(two.whoami().await.unwrap().auth_strength.as_deref(), Some("password+passkey"), "raised, never lowered");

    // An account without a passkey has no passkey ceremony to begin.
    bob.remove_passkey(bob.passkeys().await.unwrap()[0].id).await.unwrap();
    assert_eq!(code(&bob.begin_passkey_reauth().await.unwrap_err()), "not_found");
}

/// The help desk sees what a user signs in with (`GET /users/{user}/credentials`), and nothing
/// secret: not the TOTP secret, not a backup code, not a key.
#[tokio::test]
async fn an_operator_sees_what_a_user_signs_in_with_and_nothing_secret() {
    let server = TestServer::start_with(relying_party).await;
    let me = person(&server, "alice").await;
    let idm = server.idm().await;
    let bare = idm.user_credentials("alice").await.unwrap();
    assert!(bare.password && !bare.totp && bare.passkeys.is_empty() && bare.backup_codes_left == 0);

    let mut token = authenticator();
    register(&me, &mut token, "laptop").await;
    let enrolment = me.begin_totp(&warden_core::api::BeginTotp::default()).await.unwrap();
    let pending = idm.user_credentials("alice").await.unwrap();
    assert!(pending.totp_pending && !pending.totp);
    let now = server.clock.now().unix_timestamp();
    me.confirm_totp(&crate::second_factor::pyotp(enrolment.secret.expose(), now, 6, "sha1")).await.unwrap();
    let codes = me.generate_backup_codes().await.unwrap().codes;

    let held = idm.user_credentials("alice").await.unwrap();
    assert!(held.password && held.totp && !held.totp_pending && !held.password_change_required);
    assert_eq!((held.backup_codes_left, held.passkeys.len(), held.passkeys[0].name.as_str()), (10, 1, "laptop"));
    assert_eq!(held.second_factor_locked_until, None);
    let shown = serde_json::to_string(&held).unwrap();
    assert!(!shown.contains(enrolment.secret.expose()), "the TOTP secret stays in");
    for code in &codes {
        assert!(!shown.contains(code.expose()), "a backup code stays in");
    }
    assert!(!shown.contains("public_key") && !shown.contains("cred_id"), "nothing of the key: {shown}");

    // Who may not look, and who is not there (recovering idm_admin for bob's account ended the
    // old session: a fresh one).
    let bob = person(&server, "bob").await;
    let idm = server.idm().await;
    assert_eq!(code(&bob.user_credentials("alice").await.unwrap_err()), "forbidden");
    assert_eq!(code(&idm.user_credentials("nobody").await.unwrap_err()), "not_found");
    assert_eq!(code(&idm.user_credentials("idm_admin").await.unwrap_err()), "not_found", "a service account is no user");
}
