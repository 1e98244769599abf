//! The person's own pages: the profile (a new primary address behind a confirmation of the
//! password), the list of sessions, where another device is signed out, and the security page,
//! where an authenticator app is set up (codes from pyotp) and backup codes are made.

use warden_server::clock::Clock;

use super::webdriver::button;
use super::{PASSWORD, Site};
use crate::api::user;
use crate::second_factor::pyotp;

#[tokio::test]
async fn changes_profile_and_revokes_a_session() {
    let site = Site::start().await;
    let server = &site.server;
    let idm = server.idm().await;
    idm.create_user(&user("dave")).await.unwrap();
    let b = &site.browser;
    site.sign_in("dave", PASSWORD).await;

    // A read-only session may rename itself…
    b.open("/account/profile").await;
    b.fill("#display_name", "Dave D.").await;
    b.fill("#first_name", "Dave").await;
    b.click(&button("Save")).await;
    b.wait_for_text(".notice", "Saved.").await;
    assert_eq!(b.find("#display_name").await.property("value").await, "Dave D.");
    let dave = idm.get_user("dave").await.unwrap();
    assert_eq!(dave.profile.display_name.as_deref(), Some("Dave D."));
    assert_eq!(dave.profile.first_name.as_deref(), Some("Dave"));

    // …but a new primary address (which receives recovery mail) needs the password again:
    // the page sends it to confirm, and back.
    b.fill("#email-0", "dave@example.org").await;
    b.click(&button("Save")).await;
    b.wait_for_path("/reauth").await;
    assert!(idm.get_user("dave").await.unwrap().profile.emails.is_empty(), "nothing saved");
    site.elevate(PASSWORD, "/account/profile").await;

    // A malformed address (past the browser's own check): said, and nothing saved.
    b.fill("#email-0", "dave@").await;
    b.script("document.querySelector('form[action=\"/account/profile\"]').noValidate = true;", serde_json::json!([])).await;
    b.click(&button("Save")).await;
    b.wait_for_text(".error, .field-error", "mail").await;
    assert!(idm.get_user("dave").await.unwrap().profile.emails.is_empty(), "nothing saved");

    b.fill("#email-0", "dave@example.org").await;
    b.click(&button("Save")).await;
    b.wait_for_text(".notice", "Saved. A link to verify dave@example.org is on its way.").await;
    b.screenshot("profile").await;
    let dave = idm.get_user("dave").await.unwrap();
    assert_eq!(dave.profile.emails.iter().map(|e| (e.address.as_str(), e.verified)).collect::<Vec<_>>(), [("dave@example.org", false)]);
    assert_eq!(dave.profile.display_name.as_deref(), Some("Dave D."), "kept");
    // The first link may be lost: another one, on request, from the address's row.
    site.mails(1).await;
    b.click(&button("Send the link again")).await;
    b.wait_for_text(".notice", "A new link to verify dave@example.org is on its way.").await;
    let mails = site.mails(2).await;
    assert!(mails.iter().all(|m| m.contains("dave@example.org")), "both to dave");

    // Another device signs in; the sessions page lists both, this browser marked.
    let other = server.anonymous().login("dave", PASSWORD).await.unwrap();
    let other = server.anonymous().with_bearer(other.token.expose());
    other.whoami().await.unwrap();
    b.open("/account/sessions").await;
    let rows = "//table/tbody/tr[.//form]";
    b.wait_for_count(rows, 2).await;
    assert_eq!(b.find_all("//tr[.//span[normalize-space(.)='this browser']]").await.len(), 1);
    b.screenshot("sessions").await;

    // Signing the other one out: one row left, this browser's, and the other token refused.
    b.click(&format!("//table/tbody/tr[not(.//span[normalize-space(.)='this browser'])]{}", button("Sign out"))).await;
    b.wait_for_path("/account/sessions").await;
    b.wait_for_count(rows, 1).await;
    b.wait_for_text("table", "this browser").await;
    let refused = other.whoami().await.unwrap_err();
    assert_eq!(refused.status(), Some(401), "{refused}");
    b.open("/").await;
    assert_eq!(b.text("header .who span").await, "dave", "this browser is still signed in");
}

#[tokio::test]
async fn enrols_an_authenticator_app_and_signs_in_with_a_backup_code() {
    let site = Site::start().await;
    let server = &site.server;
    let idm = server.idm().await;
    idm.create_user(&user("gina")).await.unwrap();
    let b = &site.browser;
    site.sign_in("gina", PASSWORD).await;
    site.elevate(PASSWORD, "/account/security").await;

    // The QR code shows (a data: image the CSP allows) with the key beside it.
    b.click("#totp-begin").await;
    let secret = b.text("#totp-secret").await;
    let loaded =
        b.script("const img = document.querySelector('img.qr'); return img.complete && img.naturalWidth > 0;", serde_json::json!([])).await;
    assert_eq!(loaded, true, "the QR code is drawn");
    b.screenshot("security").await;

    // A wrong code: the set-up starts again.
    let now = server.clock.now().unix_timestamp();
    b.fill("#totp-code", &pyotp(&secret, now - 300, 6, "sha1")).await;
    b.click(&button("Confirm")).await;
    b.wait_for_text(".error", "That code did not match").await;
    assert!(!idm.user_credentials("gina").await.unwrap().totp);

    b.click("#totp-begin").await;
    let secret = b.text("#totp-secret").await;
    b.fill("#totp-code", &pyotp(&secret, now, 6, "sha1")).await;
    b.click(&button("Confirm")).await;
    b.wait_for_text(".notice", "Your authenticator app is set up.").await;
    assert!(idm.user_credentials("gina").await.unwrap().totp);

    b.click(&button("Make new backup codes")).await;
    b.wait_for_text(".notice", "New backup codes.").await;
    let codes: Vec<String> = {
        let mut codes = Vec::new();
        for item in b.find_all("#backup-codes li code").await {
            codes.push(item.text().await);
        }
        codes
    };
    assert!(codes.len() >= 8, "{codes:?}");
    let left = idm.user_credentials("gina").await.unwrap().backup_codes_left;
    assert_eq!(left as usize, codes.len());

    // Signing in again asks for the second factor; a backup code answers it, once.
    site.sign_out().await;
    b.open("/login").await;
    b.fill("#name", "gina").await;
    b.fill("#password", PASSWORD).await;
    b.click(&button("Sign in")).await;
    b.fill("#code", &codes[0]).await;
    b.click(&button("Continue")).await;
    b.wait_for_path("/").await;
    assert_eq!(b.text("header .who span").await, "gina");
    assert_eq!(idm.user_credentials("gina").await.unwrap().backup_codes_left, left - 1);
}
