//! The administrators' console, as the break-glass accounts use it: `idm_admin` creates a user
//! and nests groups, `admin` makes a role, binds it to a group and reads the audit log. Each
//! starts read-only and is sent to confirm its password by the first form it posts.

use warden_core::api::{BindingQuery, CheckRequest};
use warden_server::services::recovery;

use super::webdriver::button;
use super::{PASSWORD, Site};

/// Fills the form's inputs (`selector`, text) and presses `submit`.
async fn post_form(site: &Site, fields: &[(&str, &str)], submit: &str) {
    for (selector, text) in fields {
        site.browser.fill(selector, text).await;
    }
    site.browser.click(&button(submit)).await;
}

/// Signs a break-glass account in with a fresh password from the host.
async fn sign_in_break_glass(site: &Site, account: &str) -> String {
    let password = recovery::recover_account(&site.server.running.context, account).await.unwrap();
    site.sign_in(account, password.expose()).await;
    password.expose().to_owned()
}

#[tokio::test]
async fn admin_creates_a_user_nests_groups_binds_a_role_and_reads_the_audit_log() {
    let site = Site::start().await;
    let b = &site.browser;

    // idm_admin: a user, then groups (ops inside staff, frank inside ops).
    let password = sign_in_break_glass(&site, "idm_admin").await;
    b.open("/admin/users/new").await;
    let frank = [("#name", "frank"), ("#password", PASSWORD), ("#email", "frank@example.org"), ("#display_name", "Frank F.")];
    post_form(&site, &frank, "Create user").await;
    // Read-only: confirm the password, come back, post again.
    b.wait_for_path("/reauth").await;
    site.elevate(&password, "/admin/users/new").await;
    b.open("/admin/users/new").await;
    post_form(&site, &frank, "Create user").await;
    b.wait_for_path("/admin/users/frank").await;
    b.wait_for_text("main h1", "frank").await;
    b.open("/admin/users").await;
    b.wait_for_text("main", "frank").await;
    b.screenshot("admin-users").await;

    // A name that is taken: said, nothing else changes.
    b.open("/admin/users/new").await;
    post_form(&site, &[("#name", "Frank"), ("#password", PASSWORD)], "Create user").await;
    b.wait_for_text(".error, .field-error", "").await;
    assert_eq!(b.path().await, "/admin/users/new");

    for (group, description) in [("staff", "Everyone employed"), ("ops", "Operations")] {
        b.open("/admin/groups").await;
        post_form(&site, &[("#group-name", group), ("#group-description", description)], "Create group").await;
        b.wait_for_path(&format!("/admin/groups/{group}")).await;
    }
    post_form(&site, &[("#member", "frank")], "Add member").await;
    b.wait_for_text("#members", "frank").await;
    b.open("/admin/groups/staff").await;
    post_form(&site, &[("#member", "group:ops")], "Add member").await;
    b.wait_for_text("#members", "group:ops").await;
    // A cycle is refused: staff cannot go inside ops, which is inside staff.
    b.open("/admin/groups/ops").await;
    post_form(&site, &[("#member", "group:staff")], "Add member").await;
    b.wait_for_text(".error, .field-error", "").await;
    b.open("/admin/groups/staff").await;
    b.screenshot("admin-group").await;

    // On frank's page: a recovery link (shown once), then disable and enable him again.
    b.open("/admin/users/frank").await;
    b.click(&button("Recovery link")).await;
    let link = b.wait_for_text("#recovery-link", "/recover?token=").await;
    b.click(&button("Disable")).await;
    b.wait_for_text("main", "Disabled: the user cannot sign in").await;
    assert!(site.server.anonymous().login("frank", PASSWORD).await.is_err(), "a disabled user cannot sign in");
    b.click(&button("Enable")).await;
    b.wait_for_text("main", "Enabled.").await;
    // The link still works for the enabled account (nothing else used it).
    let token = link.split("token=").nth(1).unwrap().trim().to_owned();
    assert!(site.server.running.context.store.one_time_token(&warden_core::credential::TokenHash::of(&token)).await.unwrap().is_some());
    site.sign_out().await;

    // admin: a role, bound to staff; then the audit log.
    let password = sign_in_break_glass(&site, "admin").await;
    b.open("/admin/roles").await;
    let deployer = [("#role-id", "deployer"), ("#role-name", "Deployer"), ("#role-permissions", "apps:deploy\napps:read")];
    post_form(&site, &deployer, "Create role").await;
    b.wait_for_path("/reauth").await;
    site.elevate(&password, "/admin/roles").await;
    b.open("/admin/roles").await;
    post_form(&site, &deployer, "Create role").await;
    b.wait_for_text("main", "deployer").await;

    b.open("/admin/bindings").await;
    let binding = [("#binding-role", "deployer"), ("#binding-subject", "group:staff"), ("#binding-tenant", "default")];
    post_form(&site, &binding, "Create binding").await;
    b.wait_for_text("#bindings", "group:staff").await;
    assert!(b.text("#bindings").await.contains("deployer"));
    b.screenshot("admin-bindings").await;

    b.open("/admin/audit").await;
    post_form(&site, &[("#audit-target", "staff")], "Filter").await;
    b.wait_for_text("#audit", "group.member.add").await;
    let log = b.text("#audit").await;
    for action in ["group.create", "binding.create"] {
        assert!(log.contains(action), "{action} in {log}");
    }
    assert!(!log.contains("user.create"), "the filter holds: {log}");
    b.open("/admin/audit").await;
    post_form(&site, &[("#audit-actor", "idm_admin")], "Filter").await;
    b.wait_for_text("#audit", "user.create").await;
    b.screenshot("admin-audit").await;

    // The console's own "check access" page shows the decision and its path (before the API's
    // checks below recover the break-glass accounts, which ends their sessions).
    b.open("/admin/check?subject=user%3Afrank&permission=apps%3Adeploy").await;
    b.wait_for_text("#decision", "Allowed").await;
    let explained = b.text("#decision").await;
    assert!(explained.contains("ops") && explained.contains("staff") && explained.contains("deployer"), "{explained}");

    // The API agrees: frank is in staff through ops, and staff holds the role.
    let sysadmin = site.server.sysadmin().await;
    let bindings = sysadmin.list_bindings(&BindingQuery { subject: Some("group:staff".into()), ..Default::default() }).await.unwrap();
    assert_eq!(bindings.items.iter().map(|b| b.role.to_string()).collect::<Vec<_>>(), ["deployer"]);
    let idm = site.server.idm().await;
    assert_eq!(idm.get_user("frank").await.unwrap().profile.display_name.as_deref(), Some("Frank F."));
    let check =
        CheckRequest { subject: "user:frank".into(), permission: Some("apps:deploy".into()), explain: true, ..CheckRequest::default() };
    let decision = sysadmin.check(&check).await.unwrap();
    assert!(decision.results[0].allowed, "{decision:?}");
    let grant = &decision.results[0].explanation.as_ref().unwrap().grants[0];
    let path: Vec<String> = grant.path.iter().map(|s| s.name.to_string()).collect();
    assert_eq!(path, ["frank", "ops", "staff"], "frank → ops → staff → deployer");
}
