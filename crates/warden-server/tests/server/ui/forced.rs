//! The screens an account is held on: a new password an administrator requires, and a second
//! factor the MFA policy requires. Every other page sends the browser back to the screen until
//! it is done, as the API confines such a session; then the person goes on. Also the pages at
//! a phone's width.

use serde_json::json;
use time::Duration;
use warden_server::clock::Clock;
use warden_server::services::recovery;

use super::webdriver::button;
use super::{PASSWORD, Site};
use crate::api::user;
use crate::second_factor::pyotp;

/// Signs `name` in on `/login` and waits for `landing`.
async fn sign_in_to(site: &Site, name: &str, password: &str, landing: &str) {
    let b = &site.browser;
    b.open("/login").await;
    b.fill("#name", name).await;
    b.fill("#password", password).await;
    b.click(&button("Sign in")).await;
    b.wait_for_path(landing).await;
}

#[tokio::test]
async fn a_required_password_change_holds_the_browser_until_it_is_done() {
    let site = Site::start().await;
    let idm = site.server.idm().await;
    idm.create_user(&user("hank")).await.unwrap();
    idm.require_password_change("hank").await.unwrap();
    let b = &site.browser;

    sign_in_to(&site, "hank", PASSWORD, "/account/password").await;
    b.wait_for_text("main", "An administrator asks you to choose a new password").await;
    // Anywhere else: back to the screen.
    for page in ["/", "/account/sessions", "/account/security", "/admin"] {
        b.open(page).await;
        b.wait_for_path("/account/password").await;
    }
    // The two new passwords must agree; the current one must be right.
    b.fill("#current", PASSWORD).await;
    b.fill("#new", "a brand new passphrase").await;
    b.fill("#confirm", "a different passphrase").await;
    b.click(&button("Change password")).await;
    b.wait_for_text(".field-error", "The two new passwords differ.").await;
    b.fill("#current", "not the password").await;
    b.fill("#new", "a brand new passphrase").await;
    b.fill("#confirm", "a brand new passphrase").await;
    b.click(&button("Change password")).await;
    b.wait_for_text("#current-error", "The current password is wrong.").await;
    b.fill("#current", PASSWORD).await;
    b.fill("#new", "a brand new passphrase").await;
    b.fill("#confirm", "a brand new passphrase").await;
    b.click(&button("Change password")).await;
    b.wait_for_text("main", "Your password is changed.").await;
    // Free again: the own page loads, and the API agrees the flag is gone.
    b.open("/").await;
    b.wait_for_path("/").await;
    b.wait_for_text("main", "Groups and roles").await;
    let login = site.server.anonymous().login("hank", "a brand new passphrase").await.unwrap();
    let me = site.server.anonymous().with_bearer(login.token.expose()).whoami().await.unwrap();
    assert!(!me.password_change_required);
}

#[tokio::test]
async fn the_mfa_policy_holds_an_administrator_until_a_factor_is_set_up_and_proved() {
    let site = Site::start().await;
    site.server.idm().await.create_user(&user("ivy")).await.unwrap();
    recovery::set_superuser(&site.server.running.context, "ivy", true).await.unwrap();
    let b = &site.browser;

    sign_in_to(&site, "ivy", PASSWORD, "/account/security").await;
    b.wait_for_text("main", "Your account must use a second factor").await;
    for page in ["/", "/admin", "/admin/users", "/account/profile"] {
        b.open(page).await;
        b.wait_for_path("/account/security").await;
    }
    // Setting it up needs a recent password (the session is read-only): there and back.
    b.click("#totp-begin").await;
    b.wait_for_path("/reauth").await;
    site.elevate(PASSWORD, "/account/security").await;
    b.click("#totp-begin").await;
    let secret = b.wait_for_text("#totp-secret", "").await;
    let now = site.server.clock.now().unix_timestamp();
    b.fill("#totp-code", &pyotp(&secret, now, 6, "sha1")).await;
    b.click(&button("Confirm")).await;
    // Proving it once lifts the hold: the re-authentication page asks for the code.
    b.wait_for_path("/reauth").await;
    site.server.clock.advance(Duration::seconds(30));
    b.fill("#password", PASSWORD).await;
    b.fill("#code", &pyotp(&secret, now + 30, 6, "sha1")).await;
    b.click(&button("Confirm")).await;
    b.wait_for_path("/").await;
    b.open("/admin").await;
    b.wait_for_path("/admin").await;
    b.wait_for_text("main", "Users").await;
}

#[tokio::test]
async fn the_pages_fit_a_phone() {
    let site = Site::start().await;
    site.server.idm().await.create_user(&user("jo")).await.unwrap();
    let b = &site.browser;
    b.command(reqwest::Method::POST, "/window/rect", Some(json!({ "width": 390, "height": 844 }))).await.unwrap();
    b.open("/login").await;
    b.screenshot("phone-login").await;
    sign_in_to(&site, "jo", PASSWORD, "/").await;
    for (page, shot) in [("/", "phone-home"), ("/account/profile", "phone-profile"), ("/account/sessions", "phone-sessions")] {
        b.open(page).await;
        b.wait_for_path(page).await;
        // Nothing wider than the screen: no sideways scrolling.
        b.screenshot(shot).await;
        let overflow = b.script("return document.documentElement.scrollWidth - document.documentElement.clientWidth;", json!([])).await;
        let widest = b
            .script(
                "let w = null; for (const e of document.querySelectorAll('body *')) { if (e.getBoundingClientRect().right > document.documentElement.clientWidth + 1) { w = e.tagName + '.' + e.className + ' ' + e.outerHTML.slice(0, 120); } } return w;",
                json!([]),
            )
            .await;
        assert!(overflow.as_i64().unwrap_or(1) <= 0, "{page} scrolls sideways by {overflow} px: {widest}");
    }
}
