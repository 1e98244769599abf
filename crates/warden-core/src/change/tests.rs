//! One row per action: its audit name, what it does, and that its audit row reads back as
//! itself. A new variant must be added here (the count check below fails otherwise).

use serde_json::json;
use uuid::Uuid;

use super::*;

fn name(s: &str) -> Name {
    Name::parse(s).unwrap()
}

fn subject(kind: SubjectKind, n: &str) -> Subject {
    Subject { kind, id: Uuid::from_u128(u128::from(n.len() as u32) << 64 | 7), name: name(n) }
}

#[test]
fn every_action_says_what_it_does() {
    use CredentialEffect as C;
    use SnapshotEffect as S;
    let alice = subject(SubjectKind::User, "alice");
    let bot = subject(SubjectKind::ServiceAccount, "ci-bot");
    let staff = subject(SubjectKind::Group, "staff");
    let (id, session) = (Uuid::from_u128(1), Uuid::from_u128(2));
    let member = |kind| (if kind == SubjectKind::Group { "group:eng" } else { "user:bob" }.to_owned(), id, kind);
    let (m, member_id, _) = member(SubjectKind::User);
    let label = RoleLabel { name: "Deployer".into(), description: Some("ships".into()) };
    let deployer = Role {
        id: name("deployer"),
        tenant: Some(name("default")),
        name: "Deployer".into(),
        description: Some("ships".into()),
        permissions: vec!["deploy:run".into()],
        source: RoleSource::Dynamic,
    };
    #[rustfmt::skip]
    let table: Vec<(Action, Option<&Subject>, &str, S, C)> = vec![
        (Action::AccountBootstrap {}, Some(&alice), "account.bootstrap", S::Apply(IndexChange::AccountCreated { account: alice.id, kind: SubjectKind::User, name: name("alice") }), C::Unchanged),
        (Action::GroupBootstrap { role: "auditor".into(), binding: id }, Some(&staff), "group.bootstrap", S::Apply(IndexChange::BuiltInGroupCreated { group: staff.id, name: name("staff"), binding: IndexedBinding { id, role: name("auditor"), subject: staff.clone(), tenant: name("default"), namespaces: vec![] } }), C::Unchanged),
        (Action::UserCreate { password: true }, Some(&alice), "user.create", S::Apply(IndexChange::AccountCreated { account: alice.id, kind: SubjectKind::User, name: name("alice") }), C::Unchanged),
        (Action::UserUpdate { fields: vec!["emails".into()], sessions_ended: None }, Some(&alice), "user.update", S::Unchanged, C::Account(alice.id)),
        (Action::UserRename { from: "alice".into(), to: name("alice2"), from_reserved_until: Some("2026-02-01T00:00:00Z".into()) }, Some(&alice), "user.rename", S::Apply(IndexChange::AccountRenamed { account: alice.id, name: name("alice2") }), C::Account(alice.id)),
        (Action::UserDisable { sessions_ended: 2 }, Some(&alice), "user.disable", S::Unchanged, C::Account(alice.id)),
        (Action::UserEnable {}, Some(&alice), "user.enable", S::Unchanged, C::Account(alice.id)),
        (Action::ProfileUpdate { fields: vec!["emails".into(), "fields.desk".into()], emails_to_verify: 1 }, Some(&alice), "user.profile.update", S::Unchanged, C::Account(alice.id)),
        (Action::UserDelete { name_reserved_until: None }, Some(&alice), "user.delete", S::Apply(IndexChange::AccountDeleted { account: alice.id }), C::Account(alice.id)),
        (Action::ServiceAccountCreate {}, Some(&bot), "service_account.create", S::Apply(IndexChange::AccountCreated { account: bot.id, kind: SubjectKind::ServiceAccount, name: name("ci-bot") }), C::Unchanged),
        (Action::ServiceAccountDelete { name_reserved_until: None }, Some(&bot), "service_account.delete", S::Apply(IndexChange::AccountDeleted { account: bot.id }), C::Account(bot.id)),
        (Action::PasswordSet {}, Some(&alice), "credential.password.set", S::Unchanged, C::Account(alice.id)),
        (Action::PasswordChange { session_kept: session, client: Some("203.0.113.7".into()), sessions_ended: 2 }, Some(&alice), "credential.password.change", S::Unchanged, C::Account(alice.id)),
        (Action::PasswordRehash {}, Some(&alice), "credential.password.rehash", S::Unchanged, C::Unchanged),
        (Action::AccountRecover { via: "host".into() }, Some(&alice), "account.recover", S::Unchanged, C::Account(alice.id)),
        (Action::CredentialUnlock { name: "alice".into(), failures_cleared: 6 }, Some(&alice), "credential.unlock", S::Unchanged, C::Unchanged),
        (Action::Login { session_id: session, client: Some("203.0.113.7".into()), second_factor: Some("totp".into()) }, Some(&alice), "auth.login", S::Unchanged, C::Unchanged),
        (Action::SecondFactorChallenge { token_id: id, methods: vec!["totp".into()] }, Some(&alice), "auth.second_factor.challenge", S::Unchanged, C::Unchanged),
        (Action::TotpEnrol { algorithm: "SHA1".into(), digits: 6 }, Some(&alice), "credential.totp.enrol", S::Unchanged, C::Unchanged),
        (Action::TotpConfirm {}, Some(&alice), "credential.totp.confirm", S::Unchanged, C::Unchanged),
        (Action::TotpRemove {}, Some(&alice), "credential.totp.remove", S::Unchanged, C::Unchanged),
        (Action::SecondFactorsReset {}, Some(&alice), "credential.second_factors.reset", S::Unchanged, C::Unchanged),
        (Action::BackupCodesGenerate { count: 10 }, Some(&alice), "credential.backup_codes.generate", S::Unchanged, C::Unchanged),
        (Action::BackupCodeUse { remaining: 9, client: None }, Some(&alice), "credential.backup_code.use", S::Unchanged, C::Unchanged),
        (Action::SecondFactorFailed { method: "totp".into(), client: None, locked_until: Some("2026-02-01T00:00:00.000Z".into()) }, Some(&alice), "auth.second_factor.failed", S::Unchanged, C::Unchanged),
        (Action::LoginFailed { client: None }, None, "auth.login.failed", S::Unchanged, C::Unchanged),
        (Action::PasskeyRegister { passkey_id: session, name: "laptop".into() }, Some(&alice), "credential.passkey.register", S::Unchanged, C::Unchanged),
        (Action::PasskeyRename { passkey_id: session, name: "phone".into() }, Some(&alice), "credential.passkey.rename", S::Unchanged, C::Unchanged),
        (Action::PasskeyRemove { passkey_id: session }, Some(&alice), "credential.passkey.remove", S::Unchanged, C::Unchanged),
        (Action::PasskeyLogin { session_id: session, passkey_id: session, client: None }, Some(&alice), "auth.login.passkey", S::Unchanged, C::Unchanged),
        (Action::PasskeyRefused { passkey_id: None, reason: "counter_behind".into(), client: None, locked_until: None }, Some(&alice), "auth.passkey.refused", S::Unchanged, C::Unchanged),
        (Action::Logout { session_id: session }, Some(&alice), "auth.logout", S::Unchanged, C::Credential(session)),
        (Action::Reauth { session_id: session, window_secs: 600, auth_strength: None }, Some(&alice), "auth.reauth", S::Unchanged, C::Credential(session)),
        (Action::Reauth { session_id: session, window_secs: 600, auth_strength: Some("password+totp".into()) }, Some(&alice), "auth.reauth", S::Unchanged, C::Credential(session)),
        (Action::SessionRevoke { session_id: session }, Some(&alice), "session.revoke", S::Unchanged, C::Credential(session)),
        (Action::SessionRevokeAll { sessions_ended: 2 }, Some(&alice), "session.revoke_all", S::Unchanged, C::Account(alice.id)),
        (Action::SessionPurge { count: 3 }, None, "session.purge", S::Unchanged, C::Unchanged),
        (Action::RecoveryLinkIssue { token_id: id, expires_at: "2026-02-01T00:00:00Z".into() }, Some(&alice), "credential.recovery_link.issue", S::Unchanged, C::Unchanged),
        (Action::RecoveryLinkRedeem { token_id: id, purpose: "recovery".into(), issued_by: Some(bot.id), client: Some("203.0.113.7".into()), session_id: session, sessions_ended: 2 }, Some(&alice), "credential.recovery_link.redeem", S::Unchanged, C::Account(alice.id)),
        (Action::RegistrationTokenCreate { token_id: id, tenant: name("default"), roles: vec!["help-desk".into()], max_uses: 3, expires_at: "2026-02-01T00:00:00Z".into() }, None, "registration_token.create", S::Unchanged, C::Unchanged),
        (Action::RegistrationTokenRevoke { token_id: id }, None, "registration_token.revoke", S::Unchanged, C::Unchanged),
        (Action::MailLinkIssue { mail_id: id, kind: "invitation".into(), token_id: session, expires_at: "2026-02-01T00:00:00Z".into() }, None, "mail.link.issue", S::Unchanged, C::Unchanged),
        (Action::InvitationCreate { invitation_id: id, email: "bob@example.org".into(), tenant: name("default"), roles: vec!["help-desk".into()], expires_at: "2026-02-01T00:00:00Z".into(), mail_id: session }, None, "invitation.create", S::Unchanged, C::Unchanged),
        (Action::InvitationRevoke { invitation_id: id }, None, "invitation.revoke", S::Unchanged, C::Unchanged),
        (Action::AccountNoticeSend { mail_id: id, address: "alice@example.org".into() }, Some(&alice), "user.account_notice", S::Unchanged, C::Unchanged),
        (Action::PasswordResetRequest { mail_id: id, client: Some("203.0.113.7".into()) }, Some(&alice), "credential.password_reset.request", S::Unchanged, C::Unchanged),
        (Action::PasswordChangeRequire { mail_id: Some(id), group: Some("staff".into()) }, Some(&alice), "credential.password_change.require", S::Unchanged, C::Account(alice.id)),
        (Action::EmailVerificationRequest { mail_id: id, address: "alice@example.org".into() }, Some(&alice), "user.email.verification.request", S::Unchanged, C::Unchanged),
        (Action::EmailVerify { address: "alice@example.org".into(), token_id: id, client: None }, Some(&alice), "user.email.verify", S::Unchanged, C::Account(alice.id)),
        (Action::UserRegister { token_id: Some(id), client: Some("203.0.113.7".into()), password: true, emails_to_verify: 0 }, Some(&alice), "user.register", S::Apply(IndexChange::AccountCreated { account: alice.id, kind: SubjectKind::User, name: name("alice") }), C::Unchanged),
        (Action::PreferencesSet { tenant: name("default") }, Some(&alice), "preferences.set", S::Unchanged, C::Unchanged),
        (Action::ApiTokenCreate { token_id: id, label: Some("deploy".into()), expires_at: None, read_write: true, roles: None }, Some(&bot), "api_token.create", S::Unchanged, C::Unchanged),
        (Action::ApiTokenRevoke { token_id: id }, Some(&bot), "api_token.revoke", S::Unchanged, C::Credential(id)),
        (Action::GroupCreate {}, Some(&staff), "group.create", S::Apply(IndexChange::GroupCreated { group: staff.id, name: name("staff") }), C::Unchanged),
        (Action::GroupDelete { memberships_removed: 2 }, Some(&staff), "group.delete", S::Apply(IndexChange::GroupDeleted { group: staff.id }), C::Unchanged),
        (Action::MemberAdd { member: m.clone(), member_id, member_kind: SubjectKind::User, via: None }, Some(&staff), "group.member.add", S::Apply(IndexChange::AccountAdded { group: staff.id, account: id }), C::Unchanged),
        (Action::MemberAdd { member: "group:eng".into(), member_id, member_kind: SubjectKind::Group, via: Some("host".into()) }, Some(&staff), "group.member.add", S::Apply(IndexChange::GroupNested { group: staff.id, member: id }), C::Unchanged),
        (Action::MemberRemove { member: m.clone(), member_id, member_kind: SubjectKind::ServiceAccount, via: None }, Some(&staff), "group.member.remove", S::Apply(IndexChange::AccountRemoved { group: staff.id, account: id }), C::Unchanged),
        (Action::MemberRemove { member: "group:eng".into(), member_id, member_kind: SubjectKind::Group, via: None }, Some(&staff), "group.member.remove", S::Apply(IndexChange::GroupUnnested { group: staff.id, member: id }), C::Unchanged),
        (Action::TenantCreate { tenant: name("t2") }, None, "tenant.create", S::Unchanged, C::Unchanged),
        (Action::TenantDelete { tenant: name("t2") }, None, "tenant.delete", S::Apply(IndexChange::TenantDeleted { tenant: name("t2") }), C::Unchanged),
        (Action::RoleCreate { role: name("deployer"), tenant: Some(name("default")), permissions: vec!["deploy:run".into()], label: Some(label.clone()) }, None, "role.create", S::Apply(IndexChange::RoleCreated { role: deployer.clone() }), C::Unchanged),
        (Action::RoleUpdate { role: name("deployer"), permissions: vec![], label: Some(label.clone()) }, None, "role.update", S::Apply(IndexChange::RoleUpdated { role: name("deployer"), name: "Deployer".into(), description: Some("ships".into()), permissions: vec![] }), C::Unchanged),
        (Action::RoleDelete { role: name("deployer"), bindings_removed: 1 }, None, "role.delete", S::Apply(IndexChange::RoleDeleted { role: name("deployer") }), C::Unchanged),
        (Action::BindingCreate { binding: id, role: name("deployer"), tenant: name("default"), namespaces: vec!["prod".into()] }, Some(&staff), "binding.create", S::Apply(IndexChange::BindingCreated { binding: IndexedBinding { id, role: name("deployer"), subject: staff.clone(), tenant: name("default"), namespaces: vec![Namespace::parse("prod").unwrap()] } }), C::Unchanged),
        (Action::BindingDelete { binding: id, role: name("deployer"), tenant: name("default") }, Some(&staff), "binding.delete", S::Apply(IndexChange::BindingDeleted { binding: id }), C::Unchanged),
        (Action::OidcClientCreate { id, client: name("grafana"), public: false }, None, "oidc_client.create", S::Unchanged, C::Unchanged),
        (Action::OidcClientUpdate { id, client: name("grafana"), fields: vec!["redirect_uris".into()] }, None, "oidc_client.update", S::Unchanged, C::Credential(id)),
        (Action::OidcClientSecretRotate { id, client: name("grafana") }, None, "oidc_client.secret.rotate", S::Unchanged, C::Credential(id)),
        (Action::OidcClientDelete { id, client: name("grafana") }, None, "oidc_client.delete", S::Unchanged, C::Credential(id)),
        (Action::OidcKeysRotate { created: vec!["k2".into()], retired: vec!["k1".into()] }, None, "oidc.keys.rotate", S::Unchanged, C::Unchanged),
        (Action::OidcConsentGrant { client: name("grafana"), scopes: vec!["openid".into()] }, Some(&alice), "oidc.consent.grant", S::Unchanged, C::Unchanged),
        (Action::OidcGrantCreate { grant: id, client: name("grafana"), session, scopes: vec!["openid".into()] }, Some(&alice), "oidc.grant.create", S::Unchanged, C::Unchanged),
        (Action::OidcGrantRefresh { grant: id, client: name("grafana") }, Some(&alice), "oidc.grant.refresh", S::Unchanged, C::Unchanged),
        (Action::OidcGrantRevoke { grant: id, client: name("grafana"), reason: GrantRevocation::RefreshTokenReused }, Some(&alice), "oidc.grant.revoke", S::Unchanged, C::Credential(id)),
        (Action::OidcGrantRevoke { grant: id, client: name("grafana"), reason: GrantRevocation::CodeReused }, Some(&alice), "oidc.grant.revoke", S::Unchanged, C::Credential(id)),
        (Action::OidcConsentWithdraw { client: name("grafana"), grants_revoked: 2 }, Some(&alice), "oidc.consent.withdraw", S::Unchanged, C::Account(alice.id)),
        (Action::Import { first_line: 2, last_line: 5001, created: 4000, updated: 1, accounts: vec![alice.id, bot.id], groups: vec![staff.id] }, None, "import.batch", S::Rebuild, C::Accounts(vec![alice.id, bot.id])),
        (Action::Import { first_line: 5002, last_line: 5003, created: 0, updated: 1, accounts: vec![], groups: vec![staff.id] }, None, "import.batch", S::Rebuild, C::Unchanged),
    ];
    let mut names: Vec<&str> = table.iter().map(|row| row.2).collect();
    names.dedup();
    assert_eq!(names.len(), 74, "every action has a row");
    let mailing = [
        "invitation.create",
        "user.account_notice",
        "credential.password_reset.request",
        "credential.password_change.require",
        "user.email.verification.request",
        "user.profile.update",
    ];
    for (action, target, audit_name, snapshot, credentials) in table {
        assert_eq!(action.name(), audit_name);
        let effect = action.effect(target);
        assert_eq!(
            (effect.snapshot, effect.credentials, effect.after_commit),
            (snapshot, credentials, if mailing.contains(&audit_name) { AfterCommit::SendMail } else { AfterCommit::Nothing }),
            "{audit_name}"
        );
        // The audit row reads back as the same action, and serde's tag is the audit name.
        let details = action.details();
        assert!(details.is_object(), "{audit_name}: details are an object");
        assert_eq!(Action::parse(audit_name, &details).unwrap(), action, "{audit_name}");
        assert_eq!(serde_json::to_value(&action).unwrap()["action"], audit_name);
    }
}

/// Rows written before the details were typed read back where their fields suffice, and a
/// row this version does not know is an error (whose reader must assume the worst), never a
/// silent "nothing changed".
#[test]
fn old_and_unknown_rows() {
    assert_eq!(Action::parse("user.disable", &json!({})).unwrap(), Action::UserDisable { sessions_ended: 0 });
    assert_eq!(Action::parse("group.delete", &json!({})).unwrap(), Action::GroupDelete { memberships_removed: 0 });
    assert!(Action::parse("group.member.add", &json!({ "member": "user:bob", "member_id": Uuid::nil() })).is_err(), "no kind");
    // A role change without its label (an older row) reads back, but rebuilds the snapshot:
    // the snapshot would not know the role's name.
    let old = Action::parse("role.create", &json!({ "role": "deployer", "tenant": "default", "permissions": [] })).unwrap();
    assert_eq!(old.effect(None).snapshot, SnapshotEffect::Rebuild);
    let old = Action::parse("role.update", &json!({ "role": "deployer", "permissions": [] })).unwrap();
    assert_eq!(old.effect(None).snapshot, SnapshotEffect::Rebuild);
    let e = Action::parse("totp.remove", &json!({})).unwrap_err();
    assert_eq!(e.action, "totp.remove");
}

#[test]
fn an_event_reads_back_with_its_target() {
    let alice = subject(SubjectKind::User, "alice");
    let event = AuditEvent {
        id: Uuid::nil(),
        revision: 9,
        at: time::macros::datetime!(2026-01-01 0:00 UTC),
        actor_id: None,
        actor_name: None,
        action: "user.rename".into(),
        target_kind: Some("user".into()),
        target_id: Some(alice.id),
        target_name: Some("alice".into()),
        details: json!({ "from": "alice", "to": "alice2" }),
    };
    let (target, action) = recorded(&event).unwrap();
    assert_eq!(target.as_ref(), Some(&alice));
    assert_eq!(action, Action::UserRename { from: "alice".into(), to: name("alice2"), from_reserved_until: None });
    let bad = AuditEvent { target_kind: Some("robot".into()), ..event };
    assert!(recorded(&bad).is_err());
}
