//! The person's own pages: the profile (behind a confirmation of the password) and the list of
//! sessions, where another device is signed out.

use super::webdriver::button;
use super::{PASSWORD, Site};
use crate::api::user;

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

    // Another device signs in; the sessions page lists both, this browser marked.
    let other = server.anonymous().login("dave", PASSWORD).await.unwrap();
    let other = server.anonymous().with_bearer(other.token.expose());
    other.whoami().await.unwrap();
    b.open("/account/sessions").await;
    let rows = "//table/tbody/tr[.//form]";
    assert_eq!(b.find_all(rows).await.len(), 2, "two sessions");
    assert_eq!(b.find_all("//tr[.//span[normalize-space(.)='this browser']]").await.len(), 1);
    b.screenshot("sessions").await;

    // Signing the other one out: one row left, this browser's, and the other token refused.
    b.click(&format!("//table/tbody/tr[not(.//span[normalize-space(.)='this browser'])]{}", button("Sign out"))).await;
    b.wait_for_path("/account/sessions").await;
    let deadline = std::time::Instant::now() + super::webdriver::WAIT;
    while b.find_all(rows).await.len() != 1 {
        assert!(std::time::Instant::now() < deadline, "the other session is still listed");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    b.wait_for_text("table", "this browser").await;
    let refused = other.whoami().await.unwrap_err();
    assert_eq!(refused.status(), Some(401), "{refused}");
    b.open("/").await;
    assert_eq!(b.text("header .who span").await, "dave", "this browser is still signed in");
}
