//! Signing in in a browser: a password and a TOTP code (codes from pyotp), and a passkey alone
//! (Chromium's virtual authenticator, registered on the security page first).

use time::Duration;
use warden_client::AuditQuery;
use warden_server::clock::Clock;

use super::webdriver::button;
use super::{PASSWORD, Site};
use crate::api::user;
use crate::second_factor::pyotp;

#[tokio::test]
async fn signs_in_with_password_and_totp() {
    let site = Site::start().await;
    let server = &site.server;
    server.idm().await.create_user(&user("alice")).await.unwrap();
    let login = server.anonymous().login("alice", PASSWORD).await.unwrap();
    let alice = server.anonymous().with_bearer(login.token.expose());
    alice.reauth(PASSWORD).await.unwrap();
    let secret = server.enrol_totp(&alice, PASSWORD).await;
    // Past the two steps the enrolment used (a used step is refused).
    server.clock.advance(Duration::minutes(2));
    let b = &site.browser;

    // A wrong password: said next to the field, and no session.
    b.open("/login").await;
    b.screenshot("login").await;
    b.fill("#name", "alice").await;
    b.fill("#password", "not the password").await;
    b.click(&button("Sign in")).await;
    b.wait_for_text("#password-error", "The name or password is wrong.").await;
    assert_eq!(b.find("#name").await.property("value").await, "alice", "the name is kept");
    assert_eq!(b.cookie("warden_session").await, None);

    // The right one: the second step.
    b.fill("#password", PASSWORD).await;
    b.click(&button("Sign in")).await;
    b.wait_for_text("main h1", "Second factor").await;
    assert!(b.find_all("#code-form[action='/login/mfa']").await.len() == 1, "the code goes to /login/mfa");
    assert_eq!(b.cookie("warden_session").await, None, "no session before the second factor");
    b.screenshot("second-factor").await;

    // A wrong code: asked again.
    let now = server.clock.now().unix_timestamp();
    let code = pyotp(&secret, now, 6, "sha1");
    let wrong: String =
        code.chars().enumerate().map(|(i, c)| if i == 0 { char::from(b'0' + (c as u8 - b'0' + 1) % 10) } else { c }).collect();
    b.fill("#code", &wrong).await;
    b.click(&button("Continue")).await;
    b.wait_for_text("#code-error", "The code is wrong or was used already.").await;
    assert_eq!(b.cookie("warden_session").await, None);

    // pyotp's code: signed in, on the person's own page.
    b.fill("#code", &code).await;
    b.click(&button("Continue")).await;
    b.wait_for_path("/").await;
    b.wait_for_text("main", "alice").await;
    assert_eq!(b.text("header .who span").await, "alice");
    assert!(b.cookie("warden_session").await.is_some());
    b.screenshot("home").await;
}

#[tokio::test]
async fn signs_in_with_a_passkey() {
    let site = Site::start().await;
    let server = &site.server;
    let idm = server.idm().await;
    idm.create_user(&user("bob")).await.unwrap();
    let b = &site.browser;
    let authenticator = b.add_virtual_authenticator().await;

    // No passkey yet: the authenticator has nothing to offer, and nothing signs in.
    b.open("/login").await;
    b.click("#passkey-sign-in").await;
    b.wait_for_text("form[data-passkey] .field-error", "passkey").await;
    assert_eq!(b.cookie("warden_session").await, None);

    site.sign_in("bob", PASSWORD).await;
    // A read-only session cannot add one: the page sends it to confirm the password first.
    b.open("/account/security").await;
    b.fill("#passkey-name", "laptop").await;
    b.click("#passkey-add").await;
    b.wait_for_path("/reauth").await;
    site.elevate(PASSWORD, "/account/security").await;

    b.fill("#passkey-name", "laptop").await;
    b.click("#passkey-add").await;
    b.wait_for_text(".notice", "Passkey “laptop” added.").await;
    b.wait_for_text("#passkeys", "laptop").await;
    assert_eq!(b.authenticator_credentials(&authenticator).await.len(), 1);
    let credentials = idm.user_credentials("bob").await.unwrap();
    assert_eq!(credentials.passkeys.len(), 1);
    assert_eq!(credentials.passkeys[0].last_used_at, None);
    b.screenshot("security-passkey").await;

    site.sign_out().await;
    b.open("/login").await;
    b.click("#passkey-sign-in").await;
    b.wait_for_path("/").await;
    assert_eq!(b.text("header .who span").await, "bob");

    // The server agrees: the passkey was used, and the sign-in is audited as a passkey's.
    let credentials = idm.user_credentials("bob").await.unwrap();
    assert!(credentials.passkeys[0].last_used_at.is_some(), "{credentials:?}");
    let query = AuditQuery { action: Some("auth.login.passkey".into()), target: Some("bob".into()), ..Default::default() };
    assert_eq!(server.sysadmin().await.audit(&query).await.unwrap().items.len(), 1);

    // With a passkey, a password alone no longer signs in: the passkey is the second step.
    site.sign_out().await;
    b.open("/login").await;
    b.fill("#name", "bob").await;
    b.fill("#password", PASSWORD).await;
    b.click(&button("Sign in")).await;
    b.wait_for_text("main h1", "Second factor").await;
    assert_eq!(b.cookie("warden_session").await, None);
    b.click("#passkey-second-factor").await;
    b.wait_for_path("/").await;
    assert_eq!(b.text("header .who span").await, "bob");

    // Renamed, then removed (a change: the session confirms it is bob first, as strongly as
    // it signed in: the password alone is not enough, the passkey is).
    b.open("/reauth?rd=%2Faccount%2Fsecurity").await;
    b.fill("#password", PASSWORD).await;
    b.click(&button("Confirm")).await;
    b.wait_for_text(".error", "Confirm with your second factor too").await;
    b.click(&button("Confirm with a passkey")).await;
    b.wait_for_path("/account/security").await;
    b.wait_for_text("header .who", "elevated").await;
    let id = idm.user_credentials("bob").await.unwrap().passkeys[0].id;
    b.fill(&format!("#rename-{id}"), "work laptop").await;
    b.click(&format!("//form[@action='/account/security/passkeys/{id}/rename']{}", button("Rename"))).await;
    b.wait_for_text("#passkeys", "work laptop").await;
    assert_eq!(idm.user_credentials("bob").await.unwrap().passkeys[0].name, "work laptop");
    b.click(&format!("//form[@action='/account/security/passkeys/{id}/remove']{}", button("Remove"))).await;
    b.wait_for_text("main", "None yet.").await;
    assert!(idm.user_credentials("bob").await.unwrap().passkeys.is_empty());
    // It signs no one in any more, though the authenticator still offers it.
    site.sign_out().await;
    assert_eq!(b.authenticator_credentials(&authenticator).await.len(), 1);
    b.open("/login").await;
    b.click("#passkey-sign-in").await;
    b.wait_for_text(".error", "This passkey did not sign you in.").await;
    assert_eq!(b.cookie("warden_session").await, None);
}
