//! The pages mail and administrators send people to: registering with a registration token,
//! and choosing a new password through the link a forgot-password request mails.

use warden_core::api::{CreateRegistrationToken, CreateUser};
use warden_server::config::RegistrationMode;

use super::webdriver::button;
use super::{PASSWORD, Site};
use crate::api::user;

const NEW_PASSWORD: &str = "a brand new passphrase";

#[tokio::test]
async fn registers_with_a_token() {
    let site = Site::start_with(|c| c.registration.mode = RegistrationMode::Token).await;
    let server = &site.server;
    let idm = server.idm().await;
    let created = idm.create_registration_token(&CreateRegistrationToken::default()).await.unwrap();
    let token = created.token.expose().to_owned();
    let b = &site.browser;

    // A made-up token: no form.
    b.open("/register?token=wdr_made_up").await;
    b.wait_for_text("main h1", "Link not valid").await;
    assert!(b.find_all("#password").await.is_empty());

    b.open(&format!("/register?token={token}")).await;
    b.wait_for_text("main h1", "Create your account").await;
    b.screenshot("register").await;
    // Too short: the browser says so first (the input's minlength); past it, the server does,
    // next to the field, and the token is not used.
    b.fill("#name", "carol").await;
    b.fill("#password", "short").await;
    let too_short = b.script("return document.getElementById('password').validity.tooShort;", serde_json::json!([])).await;
    assert_eq!(too_short, true, "the browser's own check");
    b.script("document.querySelector('form[action=\"/register\"]').noValidate = true;", serde_json::json!([])).await;
    b.click(&button("Create account")).await;
    let said = b.text("#password-error").await;
    assert!(said.to_lowercase().contains("password"), "{said}");
    assert_eq!(b.find("#name").await.property("value").await, "carol", "the name is kept");
    assert_eq!(idm.list_registration_tokens().await.unwrap()[0].uses_left, 1, "nothing consumed");
    assert!(idm.get_user("carol").await.is_err());

    b.fill("#password", PASSWORD).await;
    b.click(&button("Create account")).await;
    b.wait_for_text("main", "The account carol is ready").await;
    assert_eq!(idm.list_registration_tokens().await.unwrap()[0].uses_left, 0, "used once");
    b.click("//main//a[normalize-space(.)='Sign in']").await;
    b.wait_for_path("/login").await;
    site.sign_in("carol", PASSWORD).await;
}

#[tokio::test]
async fn recovers_through_the_mailed_link() {
    let site = Site::start().await;
    let server = &site.server;
    let erin = CreateUser { emails: vec!["erin@example.org".into()], ..user("erin") };
    server.idm().await.create_user(&erin).await.unwrap();
    let b = &site.browser;

    // A made-up link: no form.
    b.open(&format!("/recover?token=wdo_{}", "0".repeat(64))).await;
    b.wait_for_text("main h1", "Link not valid").await;
    assert!(b.find_all("#password").await.is_empty());

    b.open("/login").await;
    b.click("//a[normalize-space(.)='Forgot your password?']").await;
    b.wait_for_path("/forgot-password").await;
    b.fill("#name_or_email", "erin").await;
    b.click(&button("Send the link")).await;
    b.wait_for_text("main h1", "Check your mail").await;

    let mails = site.mails(1).await;
    assert_eq!(mails.len(), 1);
    assert!(mails[0].contains("erin@example.org"), "{}", mails[0]);
    let link = site.link_in(&mails[0], "recover");
    b.open(&link).await;
    b.wait_for_text("main h1", "Choose a new password").await;
    b.screenshot("recover").await;
    b.fill("#password", NEW_PASSWORD).await;
    b.click(&button("Set password")).await;
    b.wait_for_text("main h1", "Password set").await;
    b.open("/").await;
    b.wait_for_path("/").await;
    assert_eq!(b.text("header .who span").await, "erin", "signed in by the link");

    // The link works once; the old password no longer does, the new one does.
    b.open(&link).await;
    b.wait_for_text("main h1", "Link not valid").await;
    b.open("/").await;
    site.sign_out().await;
    b.open("/login").await;
    b.fill("#name", "erin").await;
    b.fill("#password", PASSWORD).await;
    b.click(&button("Sign in")).await;
    b.wait_for_text("#password-error", "The name or password is wrong.").await;
    site.sign_in("erin", NEW_PASSWORD).await;
}

#[tokio::test]
async fn registers_in_public_and_verifies_the_address_from_the_mail() {
    let site = Site::start_with(|c| c.registration.mode = RegistrationMode::Public).await;
    let b = &site.browser;
    b.open("/register").await;
    b.wait_for_text("main h1", "Create your account").await;
    b.fill("#name", "dana").await;
    b.fill("#email", "dana@example.org").await;
    b.fill("#password", NEW_PASSWORD).await;
    b.click(&button("Create account")).await;
    b.wait_for_text("main", "The account dana is ready").await;
    // The address is unverified until its mailed link is followed: it does not sign in yet.
    assert!(site.server.anonymous().login("dana@example.org", NEW_PASSWORD).await.is_err());
    let mail = site.mails(1).await.remove(0);
    let link = site.link_in(&mail, "verify-email");
    b.open(&link).await;
    b.wait_for_text("main", "dana@example.org").await;
    // Opening it used nothing: a second look shows the same page.
    b.open(&link).await;
    b.click(&button("Confirm the address")).await;
    b.wait_for_text("main", "is now a verified address of your account").await;
    site.server.anonymous().login("dana@example.org", NEW_PASSWORD).await.unwrap();
    // Once only.
    b.open(&link).await;
    b.wait_for_text("main h1", "Link not valid").await;
}
