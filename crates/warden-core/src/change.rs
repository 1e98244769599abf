//! Every change Warden records, as one typed value.
//!
//! A write is a [`Change`]: who acted, on what, when, and the [`Action`] with its details. The
//! audit row is rendered from it (`action` and `details` columns), and every consumer of the
//! revision stream (this node's authorization snapshot, its credential cache, the followers
//! on other nodes) reads the row back into an [`Action`] and asks [`Change::effect`] what the
//! change does to them. That match is exhaustive: a new kind of change does not compile until
//! it says whether it touches the snapshot, which cached credentials it ends and what must
//! happen after its commit. Nothing else parses action strings.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Name;
use crate::authz::{IndexChange, IndexedBinding, Role, RoleSource};
use crate::builtin::DEFAULT_TENANT;
use crate::model::{AuditEvent, Subject, SubjectKind};
use crate::namespace::Namespace;

/// What happened, with the facts the audit log keeps about it (never a secret). Each variant's
/// audit name is its serde tag; its fields are the event's `details`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", content = "details")]
pub enum Action {
    // --- start-up ---
    /// A break-glass account was created at start-up.
    #[serde(rename = "account.bootstrap")]
    AccountBootstrap {},
    /// A built-in group and its binding were created at start-up.
    #[serde(rename = "group.bootstrap")]
    GroupBootstrap { role: String, binding: Uuid },

    // --- accounts ---
    #[serde(rename = "user.create")]
    UserCreate { password: bool },
    /// Profile or validity window changed; `fields` names them. A window that shuts the user
    /// out ends its sessions; the store fills in how many.
    #[serde(rename = "user.update")]
    UserUpdate {
        fields: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sessions_ended: Option<u64>,
    },
    /// `from` stays reserved for this account until `from_reserved_until` (if set).
    #[serde(rename = "user.rename")]
    UserRename {
        from: String,
        to: Name,
        #[serde(default)]
        from_reserved_until: Option<String>,
    },
    /// Ends the user's sessions; the store fills in how many.
    #[serde(rename = "user.disable")]
    UserDisable {
        #[serde(default)]
        sessions_ended: u64,
    },
    #[serde(rename = "user.enable")]
    UserEnable {},
    /// The target user changed their own profile (self-service); `fields` names what changed
    /// (never the values: the log is not a second copy of personal data), and
    /// `emails_to_verify` counts the addresses added unverified (each mailed a verification
    /// link with the change, where the server has a `server.public_url`).
    #[serde(rename = "user.profile.update")]
    ProfileUpdate {
        fields: Vec<String>,
        #[serde(default)]
        emails_to_verify: u32,
    },
    /// The name stays reserved until `name_reserved_until` (if set).
    #[serde(rename = "user.delete")]
    UserDelete {
        #[serde(default)]
        name_reserved_until: Option<String>,
    },
    #[serde(rename = "service_account.create")]
    ServiceAccountCreate {},
    #[serde(rename = "service_account.delete")]
    ServiceAccountDelete {
        #[serde(default)]
        name_reserved_until: Option<String>,
    },

    // --- credentials ---
    /// An administrator set or reset the password (ending the account's sessions).
    #[serde(rename = "credential.password.set")]
    PasswordSet {},
    /// The target user changed their own password, proving the current one, from `client`:
    /// every other session of theirs ended (the store fills in how many), `session_kept`
    /// (the one they changed it through) stays.
    #[serde(rename = "credential.password.change")]
    PasswordChange {
        session_kept: Uuid,
        client: Option<String>,
        #[serde(default)]
        sessions_ended: u64,
    },
    /// A login upgraded the stored hash to the current parameters.
    #[serde(rename = "credential.password.rehash")]
    PasswordRehash {},
    /// The host recovered a break-glass account (a new password, every session ended).
    #[serde(rename = "account.recover")]
    AccountRecover { via: String },
    /// An administrator lifted the soft lock of the account name `name` (the target, when
    /// an account holds it); the store fills in how many recorded failures went.
    #[serde(rename = "credential.unlock")]
    CredentialUnlock {
        name: String,
        #[serde(default)]
        failures_cleared: u64,
    },
    #[serde(rename = "auth.login")]
    Login {
        session_id: Uuid,
        client: Option<String>,
        /// The second factor that completed the sign-in (`totp`, `backup_code`), if one did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        second_factor: Option<String>,
    },
    /// The target's password was right; a second factor (one of `methods`) must follow,
    /// answering the pending sign-in `token_id` (its row, never the token).
    #[serde(rename = "auth.second_factor.challenge")]
    SecondFactorChallenge { token_id: Uuid, methods: Vec<String> },
    /// The target user started a TOTP enrolment (a new, unconfirmed secret).
    #[serde(rename = "credential.totp.enrol")]
    TotpEnrol { algorithm: String, digits: u32 },
    /// The target user confirmed the enrolment with a right code: TOTP is now a factor.
    #[serde(rename = "credential.totp.confirm")]
    TotpConfirm {},
    /// The target's TOTP credential was removed (by the user, or by an administrator).
    #[serde(rename = "credential.totp.remove")]
    TotpRemove {},
    /// An administrator removed every second factor of the target (a lost device): it signs in
    /// with its password alone until it enrols again.
    #[serde(rename = "credential.second_factors.reset")]
    SecondFactorsReset {},
    /// New backup codes replace the old ones.
    #[serde(rename = "credential.backup_codes.generate")]
    BackupCodesGenerate { count: u32 },
    /// A backup code was used to sign in; `remaining` are left.
    #[serde(rename = "credential.backup_code.use")]
    BackupCodeUse { remaining: u32, client: Option<String> },
    /// The target user registered a passkey (WebAuthn credential) under `name`.
    #[serde(rename = "credential.passkey.register")]
    PasskeyRegister { passkey_id: Uuid, name: String },
    /// The target user renamed one of its passkeys.
    #[serde(rename = "credential.passkey.rename")]
    PasskeyRename { passkey_id: Uuid, name: String },
    /// One of the target's passkeys was removed.
    #[serde(rename = "credential.passkey.remove")]
    PasskeyRemove { passkey_id: Uuid },
    /// The target signed in with a passkey alone (a discoverable credential).
    #[serde(rename = "auth.login.passkey")]
    PasskeyLogin { session_id: Uuid, passkey_id: Uuid, client: Option<String> },
    /// A passkey assertion was refused (`reason`: `unknown_credential`, `invalid`,
    /// `counter_behind` for a replay or a cloned authenticator, `wrong_account`); the target is
    /// the account it claimed, when known. `locked_until` when it locked the second factor.
    #[serde(rename = "auth.passkey.refused")]
    PasskeyRefused {
        passkey_id: Option<Uuid>,
        reason: String,
        client: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        locked_until: Option<String>,
    },
    /// A wrong second-factor code (`method`); `locked_until` when it locked the factor.
    #[serde(rename = "auth.second_factor.failed")]
    SecondFactorFailed {
        method: String,
        client: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        locked_until: Option<String>,
    },
    #[serde(rename = "auth.login.failed")]
    LoginFailed { client: Option<String> },
    #[serde(rename = "auth.logout")]
    Logout { session_id: Uuid },
    /// A session proved its sign-in again and may write for `window_secs`; when the proof was
    /// stronger than the session's sign-in (a second factor where there was none), the session
    /// now records that strength (`auth_strength`, e.g. `password+totp`).
    #[serde(rename = "auth.reauth")]
    Reauth {
        session_id: Uuid,
        window_secs: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        auth_strength: Option<String>,
    },
    /// Someone (the target user, or an administrator) ended one of the target's sessions.
    #[serde(rename = "session.revoke")]
    SessionRevoke { session_id: Uuid },
    /// An administrator ended every session of the target; the store fills in how many.
    #[serde(rename = "session.revoke_all")]
    SessionRevokeAll {
        #[serde(default)]
        sessions_ended: u64,
    },
    /// Expired sessions were deleted; the store fills in `count`.
    #[serde(rename = "session.purge")]
    SessionPurge {
        #[serde(default)]
        count: u64,
    },
    /// An administrator issued a recovery link for the target user (its older links end).
    /// `token_id` names the one-time token's row, never the token.
    #[serde(rename = "credential.recovery_link.issue")]
    RecoveryLinkIssue { token_id: Uuid, expires_at: String },
    /// The target user redeemed a link that sets the password (`purpose`: an administrator's
    /// `recovery` link, an `account_notice`, a `password_reset`, a `password_change`): a new
    /// password, every other session ended, one new session. `issued_by` is the administrator
    /// who issued the link (`None`: the server mailed it); the store fills in how many sessions
    /// ended.
    #[serde(rename = "credential.recovery_link.redeem")]
    RecoveryLinkRedeem {
        token_id: Uuid,
        #[serde(default = "recovery_purpose")]
        purpose: String,
        issued_by: Option<Uuid>,
        client: Option<String>,
        session_id: Uuid,
        #[serde(default)]
        sessions_ended: u64,
    },
    /// A link was made for a queued mail as it was sent (`kind` is the mail's; `token_id` names
    /// the one-time token's or invitation's row, never the token).
    #[serde(rename = "mail.link.issue")]
    MailLinkIssue { mail_id: Uuid, kind: String, token_id: Uuid, expires_at: String },
    /// An administrator invited `email` to register (`invitation_id` names the one-use
    /// registration token, made when mail `mail_id` is sent), with `roles` in `tenant`.
    #[serde(rename = "invitation.create")]
    InvitationCreate { invitation_id: Uuid, email: String, tenant: Name, roles: Vec<String>, expires_at: String, mail_id: Uuid },
    #[serde(rename = "invitation.revoke")]
    InvitationRevoke { invitation_id: Uuid },
    /// An administrator had the target user mailed a link to choose a first password.
    #[serde(rename = "user.account_notice")]
    AccountNoticeSend { mail_id: Uuid, address: String },
    /// Someone asked for the target user's password to be reset; `client` is their address.
    #[serde(rename = "credential.password_reset.request")]
    PasswordResetRequest { mail_id: Uuid, client: Option<String> },
    /// The target user must choose a new password (directly, or as a member of `group`): its
    /// sessions ended, and a link mailed (`mail_id`) when it has a verified address.
    #[serde(rename = "credential.password_change.require")]
    PasswordChangeRequire {
        mail_id: Option<Uuid>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group: Option<String>,
    },
    /// A link to verify `address` was queued for the target user.
    #[serde(rename = "user.email.verification.request")]
    EmailVerificationRequest { mail_id: Uuid, address: String },
    /// The target user proved that `address` reaches them.
    #[serde(rename = "user.email.verify")]
    EmailVerify { address: String, token_id: Uuid, client: Option<String> },
    /// A registration token was created (`token_id` names its row, never the token): up to
    /// `max_uses` registrations until `expires_at`, each bound `roles` in `tenant`.
    #[serde(rename = "registration_token.create")]
    RegistrationTokenCreate { token_id: Uuid, tenant: Name, roles: Vec<String>, max_uses: u32, expires_at: String },
    #[serde(rename = "registration_token.revoke")]
    RegistrationTokenRevoke { token_id: Uuid },
    /// Someone registered the target user themselves: with the registration token `token_id`,
    /// or without one in public mode; `client` is their address.
    #[serde(rename = "user.register")]
    UserRegister {
        token_id: Option<Uuid>,
        client: Option<String>,
        password: bool,
        /// Addresses the person gave, unverified (each mailed a verification link with the
        /// change, where the server has a `server.public_url`).
        #[serde(default)]
        emails_to_verify: u32,
    },
    /// The target account replaced its own preferences in `tenant` (the document itself is
    /// not copied into the log).
    #[serde(rename = "preferences.set")]
    PreferencesSet { tenant: Name },
    #[serde(rename = "api_token.create")]
    ApiTokenCreate { token_id: Uuid, label: Option<String>, expires_at: Option<String>, read_write: bool, roles: Option<Vec<String>> },
    #[serde(rename = "api_token.revoke")]
    ApiTokenRevoke { token_id: Uuid },

    // --- groups ---
    #[serde(rename = "group.create")]
    GroupCreate {},
    /// The store fills in how many memberships went with the group.
    #[serde(rename = "group.delete")]
    GroupDelete {
        #[serde(default)]
        memberships_removed: u64,
    },
    /// `member` is for people reading the log (`user:alice`); `member_kind` and `member_id`
    /// are what the snapshot applies.
    #[serde(rename = "group.member.add")]
    MemberAdd {
        member: String,
        member_id: Uuid,
        member_kind: SubjectKind,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        via: Option<String>,
    },
    #[serde(rename = "group.member.remove")]
    MemberRemove {
        member: String,
        member_id: Uuid,
        member_kind: SubjectKind,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        via: Option<String>,
    },

    // --- authorization ---
    #[serde(rename = "tenant.create")]
    TenantCreate { tenant: Name },
    #[serde(rename = "tenant.delete")]
    TenantDelete { tenant: Name },
    /// `label` is what the snapshot shows of the role (absent in rows written before the
    /// snapshot applied role changes in place: those rebuild it).
    #[serde(rename = "role.create")]
    RoleCreate {
        role: Name,
        tenant: Option<Name>,
        permissions: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<RoleLabel>,
    },
    /// `permissions` and `label` are the role's after the change.
    #[serde(rename = "role.update")]
    RoleUpdate {
        role: Name,
        permissions: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<RoleLabel>,
    },
    /// The store fills in how many bindings went with the role.
    #[serde(rename = "role.delete")]
    RoleDelete {
        role: Name,
        #[serde(default)]
        bindings_removed: u64,
    },
    #[serde(rename = "binding.create")]
    BindingCreate { binding: Uuid, role: Name, tenant: Name, namespaces: Vec<String> },
    #[serde(rename = "binding.delete")]
    BindingDelete { binding: Uuid, role: Name, tenant: Name },

    // --- OpenID Connect clients ---
    /// An OpenID Connect client was registered (`client` is its `client_id`; a confidential
    /// one got a secret, which is never in the log).
    #[serde(rename = "oidc_client.create")]
    OidcClientCreate { id: Uuid, client: Name, public: bool },
    /// `fields` names what changed (the values are in the client itself).
    #[serde(rename = "oidc_client.update")]
    OidcClientUpdate { id: Uuid, client: Name, fields: Vec<String> },
    /// A confidential client got a new secret; the old one stops working.
    #[serde(rename = "oidc_client.secret.rotate")]
    OidcClientSecretRotate { id: Uuid, client: Name },
    #[serde(rename = "oidc_client.delete")]
    OidcClientDelete { id: Uuid, client: Name },
    /// The provider's signing keys changed: `created` are the new keys' ids (one per
    /// algorithm), `retired` those that stop signing (they stay published until every token
    /// they signed has expired). The first start creates the first keys the same way.
    #[serde(rename = "oidc.keys.rotate")]
    OidcKeysRotate { created: Vec<String>, retired: Vec<String> },
    /// The target (a user) allowed a client `scopes`; it will not be asked again for them.
    #[serde(rename = "oidc.consent.grant")]
    OidcConsentGrant { client: Name, scopes: Vec<String> },
    /// A code was redeemed: the target's session `session` now backs a grant to the client
    /// (its access and refresh tokens).
    #[serde(rename = "oidc.grant.create")]
    OidcGrantCreate { grant: Uuid, client: Name, session: Uuid, scopes: Vec<String> },
    /// A refresh token was redeemed for new tokens (the old one is spent).
    #[serde(rename = "oidc.grant.refresh")]
    OidcGrantRefresh { grant: Uuid, client: Name },
    /// A grant ended before its session: every token it issued stops working.
    #[serde(rename = "oidc.grant.revoke")]
    OidcGrantRevoke { grant: Uuid, client: Name, reason: GrantRevocation },
    /// The target (a user) disconnected an application, or an administrator did for them:
    /// the consent is gone (the next sign-in asks again) and every grant of the client's for
    /// the target that still worked is revoked (`grants_revoked` of them).
    #[serde(rename = "oidc.consent.withdraw")]
    OidcConsentWithdraw { client: Name, grants_revoked: u64 },

    // --- bulk ---
    /// One batch of a bulk import, committed as one transaction with this one event (an event
    /// per object would double the rows written). `first_line`..=`last_line` are the lines of
    /// the file the batch holds; `accounts` and `groups` list the ids of every account and
    /// group the batch created or changed (memberships count for their group), so that the
    /// log still says which objects an import touched.
    #[serde(rename = "import.batch")]
    Import {
        first_line: u64,
        last_line: u64,
        created: u64,
        updated: u64,
        #[serde(default)]
        accounts: Vec<Uuid>,
        #[serde(default)]
        groups: Vec<Uuid>,
    },
}

/// A role's name and description, as a role change records them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleLabel {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// One change as it is recorded: the audit event's facts, before the store numbers it.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub at: OffsetDateTime,
    /// The acting account; `None` when the server itself acts.
    pub actor: Option<Subject>,
    pub target: Option<Subject>,
    pub action: Action,
}

/// What a change does to the authorization snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotEffect {
    /// Nothing the snapshot holds.
    Unchanged,
    /// Applied in place ([`crate::authz::AuthzIndex::apply`]).
    Apply(IndexChange),
    /// The change cannot be applied in place (a row written before its details were typed,
    /// or missing a detail the snapshot needs): the snapshot is rebuilt from the store.
    Rebuild,
}

/// Why a grant ended before its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantRevocation {
    /// The client asked (RFC 7009), or an administrator did.
    Revoked,
    /// A spent refresh token was presented again: someone holds a copy, so the whole chain
    /// ends.
    RefreshTokenReused,
    /// A spent authorization code was presented again: the tokens of its first use end.
    CodeReused,
}

/// What a change does to cached bearer credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialEffect {
    Unchanged,
    /// This session, API token, OpenID Connect grant or client ended or changed (a grant
    /// whose session this is ends with it).
    Credential(Uuid),
    /// Every credential of this account ended or must be read again (its owner changed).
    Account(Uuid),
    /// The same for each of these accounts (a bulk import).
    Accounts(Vec<Uuid>),
}

/// Work that follows a change's commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterCommit {
    Nothing,
    /// The change queued mail: wake this node's sender (other nodes find it when they poll).
    SendMail,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effect {
    pub snapshot: SnapshotEffect,
    pub credentials: CredentialEffect,
    pub after_commit: AfterCommit,
}

impl Effect {
    /// Whether the change must take a new revision: only what the snapshot or the credential
    /// caches hold needs every node to hear of it. A change that touches neither (a login, a
    /// failed login, a new token, …) is recorded in the audit log at the current revision
    /// and wakes nobody: it neither serialises with the writers that do take one nor makes
    /// every node catch up.
    pub fn needs_revision(&self) -> bool {
        !matches!((&self.snapshot, &self.credentials), (SnapshotEffect::Unchanged, CredentialEffect::Unchanged))
    }
}

/// An audit row that is not a change this version knows (written by a newer node, or older
/// than the typed details): the caller must assume the worst.
#[derive(Debug, thiserror::Error)]
#[error("audit event {action:?} cannot be read as a change: {reason}")]
pub struct UnknownChange {
    pub action: String,
    pub reason: String,
}

impl Action {
    /// The audit name (`user.create`, …), the same as the serde tag.
    pub fn name(&self) -> &'static str {
        match self {
            Self::AccountBootstrap {} => "account.bootstrap",
            Self::GroupBootstrap { .. } => "group.bootstrap",
            Self::UserCreate { .. } => "user.create",
            Self::UserUpdate { .. } => "user.update",
            Self::UserRename { .. } => "user.rename",
            Self::UserDisable { .. } => "user.disable",
            Self::UserEnable {} => "user.enable",
            Self::ProfileUpdate { .. } => "user.profile.update",
            Self::UserDelete { .. } => "user.delete",
            Self::ServiceAccountCreate {} => "service_account.create",
            Self::ServiceAccountDelete { .. } => "service_account.delete",
            Self::PasswordSet {} => "credential.password.set",
            Self::PasswordChange { .. } => "credential.password.change",
            Self::PasswordRehash {} => "credential.password.rehash",
            Self::AccountRecover { .. } => "account.recover",
            Self::CredentialUnlock { .. } => "credential.unlock",
            Self::Login { .. } => "auth.login",
            Self::SecondFactorChallenge { .. } => "auth.second_factor.challenge",
            Self::TotpEnrol { .. } => "credential.totp.enrol",
            Self::TotpConfirm {} => "credential.totp.confirm",
            Self::TotpRemove {} => "credential.totp.remove",
            Self::SecondFactorsReset {} => "credential.second_factors.reset",
            Self::BackupCodesGenerate { .. } => "credential.backup_codes.generate",
            Self::BackupCodeUse { .. } => "credential.backup_code.use",
            Self::SecondFactorFailed { .. } => "auth.second_factor.failed",
            Self::PasskeyRegister { .. } => "credential.passkey.register",
            Self::PasskeyRename { .. } => "credential.passkey.rename",
            Self::PasskeyRemove { .. } => "credential.passkey.remove",
            Self::PasskeyLogin { .. } => "auth.login.passkey",
            Self::PasskeyRefused { .. } => "auth.passkey.refused",
            Self::LoginFailed { .. } => "auth.login.failed",
            Self::Logout { .. } => "auth.logout",
            Self::Reauth { .. } => "auth.reauth",
            Self::SessionRevoke { .. } => "session.revoke",
            Self::SessionRevokeAll { .. } => "session.revoke_all",
            Self::SessionPurge { .. } => "session.purge",
            Self::RecoveryLinkIssue { .. } => "credential.recovery_link.issue",
            Self::RecoveryLinkRedeem { .. } => "credential.recovery_link.redeem",
            Self::MailLinkIssue { .. } => "mail.link.issue",
            Self::InvitationCreate { .. } => "invitation.create",
            Self::InvitationRevoke { .. } => "invitation.revoke",
            Self::AccountNoticeSend { .. } => "user.account_notice",
            Self::PasswordResetRequest { .. } => "credential.password_reset.request",
            Self::PasswordChangeRequire { .. } => "credential.password_change.require",
            Self::EmailVerificationRequest { .. } => "user.email.verification.request",
            Self::EmailVerify { .. } => "user.email.verify",
            Self::RegistrationTokenCreate { .. } => "registration_token.create",
            Self::RegistrationTokenRevoke { .. } => "registration_token.revoke",
            Self::UserRegister { .. } => "user.register",
            Self::PreferencesSet { .. } => "preferences.set",
            Self::OidcClientCreate { .. } => "oidc_client.create",
            Self::OidcClientUpdate { .. } => "oidc_client.update",
            Self::OidcClientSecretRotate { .. } => "oidc_client.secret.rotate",
            Self::OidcClientDelete { .. } => "oidc_client.delete",
            Self::OidcKeysRotate { .. } => "oidc.keys.rotate",
            Self::OidcConsentGrant { .. } => "oidc.consent.grant",
            Self::OidcGrantCreate { .. } => "oidc.grant.create",
            Self::OidcGrantRefresh { .. } => "oidc.grant.refresh",
            Self::OidcGrantRevoke { .. } => "oidc.grant.revoke",
            Self::OidcConsentWithdraw { .. } => "oidc.consent.withdraw",
            Self::ApiTokenCreate { .. } => "api_token.create",
            Self::ApiTokenRevoke { .. } => "api_token.revoke",
            Self::GroupCreate {} => "group.create",
            Self::GroupDelete { .. } => "group.delete",
            Self::MemberAdd { .. } => "group.member.add",
            Self::MemberRemove { .. } => "group.member.remove",
            Self::TenantCreate { .. } => "tenant.create",
            Self::TenantDelete { .. } => "tenant.delete",
            Self::RoleCreate { .. } => "role.create",
            Self::RoleUpdate { .. } => "role.update",
            Self::RoleDelete { .. } => "role.delete",
            Self::BindingCreate { .. } => "binding.create",
            Self::BindingDelete { .. } => "binding.delete",
            Self::Import { .. } => "import.batch",
        }
    }

    /// The audit row's `details`.
    pub fn details(&self) -> serde_json::Value {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(mut tagged)) => tagged.remove("details").unwrap_or_else(|| serde_json::json!({})),
            _ => serde_json::json!({}),
        }
    }

    /// Reads an audit row's `action` and `details` back.
    pub fn parse(action: &str, details: &serde_json::Value) -> Result<Self, UnknownChange> {
        serde_json::from_value(serde_json::json!({ "action": action, "details": details }))
            .map_err(|e| UnknownChange { action: action.to_owned(), reason: e.to_string() })
    }

    /// What this action on `target` does to the snapshot, to cached credentials and after its
    /// commit.
    // Arms are grouped by what the change is, so that each kind's reason can be read beside it.
    #[allow(clippy::match_same_arms)]
    pub fn effect(&self, target: Option<&Subject>) -> Effect {
        use Action as A;
        use CredentialEffect as C;
        use SnapshotEffect as S;
        let target_id = target.map(|t| t.id);
        let account = || target_id.map_or(C::Unchanged, C::Account);
        let apply = |change: Option<IndexChange>| change.map_or(S::Rebuild, S::Apply);
        let created = || {
            target.filter(|t| t.kind != SubjectKind::Group).map(|t| IndexChange::AccountCreated {
                account: t.id,
                kind: t.kind,
                name: t.name.clone(),
            })
        };
        let (snapshot, credentials) = match self {
            A::AccountBootstrap {} | A::UserCreate { .. } | A::UserRegister { .. } | A::ServiceAccountCreate {} => {
                (apply(created()), C::Unchanged)
            }
            A::GroupBootstrap { role, binding } => (apply(target.and_then(|group| built_in_group(group, role, *binding))), C::Unchanged),
            // The credential cache holds the owner's name, contact and standing: read again.
            // (A profile edited by its owner too: the forward-auth headers show the new e-mail
            // and display name; its verification mails wake the sender, below.)
            A::UserUpdate { .. } | A::UserDisable { .. } | A::UserEnable {} | A::ProfileUpdate { .. } => (S::Unchanged, account()),
            A::UserRename { to, .. } => {
                (apply(target_id.map(|account| IndexChange::AccountRenamed { account, name: to.clone() })), account())
            }
            A::UserDelete { .. } | A::ServiceAccountDelete { .. } => {
                (apply(target_id.map(|account| IndexChange::AccountDeleted { account })), account())
            }
            // A new password ends every session of the account (a redeemed recovery link too:
            // other nodes must drop the sessions it ended).
            // A person's own change ends their other sessions: every node drops the account's
            // cached credentials, and the session kept is read again from the store.
            A::PasswordSet {} | A::PasswordChange { .. } | A::AccountRecover { .. } | A::RecoveryLinkRedeem { .. } => {
                (S::Unchanged, account())
            }
            // A link is no credential until redeemed; queued mail changes no one's access.
            A::RecoveryLinkIssue { .. }
            | A::MailLinkIssue { .. }
            | A::InvitationCreate { .. }
            | A::InvitationRevoke { .. }
            | A::AccountNoticeSend { .. }
            | A::PasswordResetRequest { .. }
            | A::EmailVerificationRequest { .. } => (S::Unchanged, C::Unchanged),
            // Its sessions ended, and the cached owner carries the flag: read it again.
            A::PasswordChangeRequire { .. } => (S::Unchanged, account()),
            // The cached owner carries its primary address and whether it is verified.
            A::EmailVerify { .. } => (S::Unchanged, account()),
            // A registration token grants nothing until someone registers with it; the
            // registration's own binding events then say what it granted.
            A::RegistrationTokenCreate { .. } | A::RegistrationTokenRevoke { .. } => (S::Unchanged, C::Unchanged),
            // Preferences grant nothing and are no credential: neither the snapshot nor any
            // cached credential holds them (so the change takes no revision).
            A::PreferencesSet { .. } => (S::Unchanged, C::Unchanged),
            // A new client is in no node's cache yet.
            A::OidcClientCreate { .. } => (S::Unchanged, C::Unchanged),
            // Every node caches clients (with their secret's hash) for the token endpoint: a
            // changed, re-keyed or deleted client must be read again everywhere.
            A::OidcClientUpdate { id, .. } | A::OidcClientSecretRotate { id, .. } | A::OidcClientDelete { id, .. } => {
                (S::Unchanged, C::Credential(*id))
            }
            // Keys are no credential of an account: JWKS is read from the store, and a node
            // that meets a key id it does not hold reads the keys again (its own signing key
            // is re-read every minute; the old one stays published meanwhile).
            A::OidcKeysRotate { .. } => (S::Unchanged, C::Unchanged),
            // Consent is read when a browser asks; a new grant or a redeemed refresh token is
            // in no cache yet (the spent token's grant stays alive).
            A::OidcConsentGrant { .. } | A::OidcGrantCreate { .. } | A::OidcGrantRefresh { .. } => (S::Unchanged, C::Unchanged),
            // Every node forgets the grant, so its access tokens stop passing introspection
            // and userinfo everywhere.
            A::OidcGrantRevoke { grant, .. } => (S::Unchanged, C::Credential(*grant)),
            // The grants revoked are whichever the client held when the write ran, so the
            // event names their owner: every node forgets the account's cached credentials
            // (its grants among them; its sessions are simply read again).
            A::OidcConsentWithdraw { .. } => (S::Unchanged, account()),
            A::PasswordRehash {} | A::Login { .. } | A::LoginFailed { .. } | A::ApiTokenCreate { .. } => (S::Unchanged, C::Unchanged),
            // Second factors are read at sign-in, never cached; sessions already made keep the
            // strength they were made with.
            A::SecondFactorChallenge { .. }
            | A::TotpEnrol { .. }
            | A::TotpConfirm {}
            | A::TotpRemove {}
            | A::SecondFactorsReset {}
            | A::BackupCodesGenerate { .. }
            | A::BackupCodeUse { .. }
            | A::SecondFactorFailed { .. } => (S::Unchanged, C::Unchanged),
            // Passkeys too are read at sign-in, never cached; a passkey sign-in makes a new
            // session, which no cache holds yet.
            A::PasskeyRegister { .. }
            | A::PasskeyRename { .. }
            | A::PasskeyRemove { .. }
            | A::PasskeyLogin { .. }
            | A::PasskeyRefused { .. } => (S::Unchanged, C::Unchanged),
            // The soft lock is bookkeeping in the store, read at every password check: no
            // grant, no cached credential and no revision are involved.
            A::CredentialUnlock { .. } => (S::Unchanged, C::Unchanged),
            // Purged sessions could no longer authenticate anyway.
            A::SessionPurge { .. } => (S::Unchanged, C::Unchanged),
            // The cached session carries its write window and its strength (which the MFA
            // policy and forward-auth read): every node reads it again.
            A::Logout { session_id } | A::Reauth { session_id, .. } => (S::Unchanged, C::Credential(*session_id)),
            A::ApiTokenRevoke { token_id } => (S::Unchanged, C::Credential(*token_id)),
            // The revoked session leaves every node's credential cache with the revision.
            A::SessionRevoke { session_id } => (S::Unchanged, C::Credential(*session_id)),
            // Every session of the target ended: its cached credentials are read again.
            A::SessionRevokeAll { .. } => (S::Unchanged, account()),
            A::GroupCreate {} => (apply(target.map(|t| IndexChange::GroupCreated { group: t.id, name: t.name.clone() })), C::Unchanged),
            A::MemberAdd { member_id, member_kind, .. } => (
                match member_kind {
                    SubjectKind::Group => apply(target_id.map(|group| IndexChange::GroupNested { group, member: *member_id })),
                    _ => apply(target_id.map(|group| IndexChange::AccountAdded { group, account: *member_id })),
                },
                C::Unchanged,
            ),
            A::MemberRemove { member_id, member_kind, .. } => (
                match member_kind {
                    SubjectKind::Group => apply(target_id.map(|group| IndexChange::GroupUnnested { group, member: *member_id })),
                    _ => apply(target_id.map(|group| IndexChange::AccountRemoved { group, account: *member_id })),
                },
                C::Unchanged,
            ),
            // The snapshot keeps no list of tenants; an empty one grants nothing.
            A::TenantCreate { .. } => (S::Unchanged, C::Unchanged),
            A::GroupDelete { .. } => (apply(target_id.map(|group| IndexChange::GroupDeleted { group })), C::Unchanged),
            A::TenantDelete { tenant } => (S::Apply(IndexChange::TenantDeleted { tenant: tenant.clone() }), C::Unchanged),
            A::RoleCreate { role, tenant, permissions, label } => (
                apply(label.as_ref().map(|label| IndexChange::RoleCreated {
                    role: Role {
                        id: role.clone(),
                        tenant: tenant.clone(),
                        name: label.name.clone(),
                        description: label.description.clone(),
                        permissions: permissions.clone(),
                        source: RoleSource::Dynamic,
                    },
                })),
                C::Unchanged,
            ),
            A::RoleUpdate { role, permissions, label } => (
                apply(label.as_ref().map(|label| IndexChange::RoleUpdated {
                    role: role.clone(),
                    name: label.name.clone(),
                    description: label.description.clone(),
                    permissions: permissions.clone(),
                })),
                C::Unchanged,
            ),
            A::RoleDelete { role, .. } => (S::Apply(IndexChange::RoleDeleted { role: role.clone() }), C::Unchanged),
            A::BindingCreate { binding, role, tenant, namespaces } => {
                let namespaces: Option<Vec<Namespace>> = namespaces.iter().map(|n| Namespace::parse(n).ok()).collect();
                let indexed = target.zip(namespaces).map(|(subject, namespaces)| IndexChange::BindingCreated {
                    binding: IndexedBinding {
                        id: *binding,
                        role: role.clone(),
                        subject: subject.clone(),
                        tenant: tenant.clone(),
                        namespaces,
                    },
                });
                (apply(indexed), C::Unchanged)
            }
            A::BindingDelete { binding, .. } => (S::Apply(IndexChange::BindingDeleted { binding: *binding }), C::Unchanged),
            // A batch may nest groups, bind roles and rename nothing: rebuild once. Its accounts
            // may have a new profile, standing or password hash: read their credentials again
            // (accounts it created have none cached; dropping nothing for them is free).
            A::Import { accounts, .. } => (S::Rebuild, if accounts.is_empty() { C::Unchanged } else { C::Accounts(accounts.clone()) }),
        };
        let after_commit = match self {
            A::InvitationCreate { .. }
            | A::AccountNoticeSend { .. }
            | A::PasswordResetRequest { .. }
            | A::EmailVerificationRequest { .. }
            | A::PasswordChangeRequire { mail_id: Some(_), .. } => AfterCommit::SendMail,
            A::ProfileUpdate { emails_to_verify, .. } | A::UserRegister { emails_to_verify, .. } if *emails_to_verify > 0 => {
                AfterCommit::SendMail
            }
            _ => AfterCommit::Nothing,
        };
        Effect { snapshot, credentials, after_commit }
    }
}

fn recovery_purpose() -> String {
    "recovery".to_owned()
}

/// A built-in group's creation with its binding (in the default tenant, everywhere).
fn built_in_group(group: &Subject, role: &str, binding: Uuid) -> Option<IndexChange> {
    let binding = IndexedBinding {
        id: binding,
        role: Name::parse(role).ok()?,
        subject: group.clone(),
        tenant: Name::from_trusted(DEFAULT_TENANT.to_owned()),
        namespaces: Vec::new(),
    };
    Some(IndexChange::BuiltInGroupCreated { group: group.id, name: group.name.clone(), binding })
}

/// A recorded event read back: its target and action, which is all [`Action::effect`] needs.
pub fn recorded(event: &AuditEvent) -> Result<(Option<Subject>, Action), UnknownChange> {
    let action = Action::parse(&event.action, &event.details)?;
    let unknown = |reason: &str| UnknownChange { action: event.action.clone(), reason: reason.to_owned() };
    let target = match (event.target_kind.as_deref(), event.target_id, event.target_name.as_deref()) {
        (Some(kind), Some(id), Some(name)) => Some(Subject {
            kind: SubjectKind::parse(kind).ok_or_else(|| unknown("unknown target kind"))?,
            id,
            name: Name::parse(name).map_err(|_| unknown("invalid target name"))?,
        }),
        _ => None,
    };
    Ok((target, action))
}

impl Change {
    /// What the audit row names as the change's target, as (kind, id, name): the subject it
    /// acted on, or for changes to what is not a subject, the role or tenant by its name (no
    /// id), so that every event can be found by what it changed. A bulk import names none: its
    /// details list the ids.
    pub fn audit_target(&self) -> Option<(&'static str, Option<Uuid>, String)> {
        if let Some(t) = &self.target {
            return Some((t.kind.as_str(), Some(t.id), t.name.to_string()));
        }
        match &self.action {
            Action::RoleCreate { role, .. } | Action::RoleUpdate { role, .. } | Action::RoleDelete { role, .. } => {
                Some(("role", None, role.to_string()))
            }
            Action::TenantCreate { tenant } | Action::TenantDelete { tenant } => Some(("tenant", None, tenant.to_string())),
            // An invitation's target is the address invited (no account exists yet; its id is
            // in the details).
            Action::InvitationCreate { email, .. } => Some(("invitation", None, email.clone())),
            Action::InvitationRevoke { invitation_id } => Some(("invitation", None, invitation_id.to_string())),
            // A client is no subject: its name, as for a role (its id is in the details).
            Action::OidcClientCreate { client, .. }
            | Action::OidcClientUpdate { client, .. }
            | Action::OidcClientSecretRotate { client, .. }
            | Action::OidcClientDelete { client, .. } => Some(("oidc_client", None, client.to_string())),
            Action::OidcKeysRotate { .. } => Some(("oidc_keys", None, "signing".to_owned())),
            _ => None,
        }
    }

    pub fn new(at: OffsetDateTime, actor: Option<&Subject>, action: Action, target: Option<&Subject>) -> Self {
        Self { at, actor: actor.cloned(), target: target.cloned(), action }
    }

    pub fn effect(&self) -> Effect {
        self.action.effect(self.target.as_ref())
    }
}

#[cfg(test)]
mod tests;
