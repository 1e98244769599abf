//! Typed HTTP client of Warden's REST API (`/api/v1`).
//!
//! The CLI and the integration tests talk to `wardend` through this crate so that both use
//! the wire types of [`warden_core::api`] and fail the same way: every call returns the typed
//! body or a [`ClientError`] whose [`code`](ClientError::code) is the server's stable problem
//! code. Each endpoint is a one-line method over one private request helper, so the mapping
//! from method to route can be read at a glance.

use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;
use warden_core::api::{
    AddMembers, CheckRequest, CheckResponse, CreateApiToken, CreateBinding, CreateGroup, CreateRole, CreateServiceAccount, CreateTenant,
    CreateUser, CreatedApiToken, ExpandQuery, Expanded, ExportQuery, ImportQuery, ImportSummary, LoginRequest, LoginResponse, MemberEntry,
    Page, Problem, ReauthRequest, ReauthResponse, Rename, ResolvedPermissions, RolePermissions, UpdateRole, UpdateUser, WhoAmI,
};
pub use warden_core::api::{Added, AuditQuery, BindingQuery, ListQuery, MembersQuery, PermissionsQuery, RoleQuery, SessionsQuery};
use warden_core::authz::{Binding, Role, Tenant};
use warden_core::credential::Secret;
use warden_core::model::{ApiToken, AuditEvent, Group, ServiceAccount, User};
use warden_core::preferences::TenantPreferences;

/// How long one request may take, connection included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an export or import may take: a whole directory, at tens of thousands of records
/// a second.
const TRANSFER_TIMEOUT: Duration = Duration::from_hours(24);

/// Why a call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The server refused the request and said why (its problem+json body). A non-2xx reply
    /// without a problem body becomes a problem with code `http.<status>`.
    #[error("{}", problem_line(.0))]
    Api(Problem),
    /// The server could not be reached or the exchange broke off; the message names the server.
    #[error("{0}")]
    Transport(String),
    /// The server answered 2xx with a body this client cannot read.
    #[error("{0}")]
    Decode(String),
}

impl ClientError {
    /// Stable machine-readable code: the problem's code, or `transport` / `decode`.
    pub fn code(&self) -> &str {
        match self {
            Self::Api(problem) => &problem.code,
            Self::Transport(_) => "transport",
            Self::Decode(_) => "decode",
        }
    }

    /// The HTTP status the server answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api(problem) => Some(problem.status),
            _ => None,
        }
    }
}

fn problem_line(p: &Problem) -> String {
    match &p.detail {
        Some(detail) if !detail.is_empty() => format!("{}: {} ({})", p.title, detail, p.code),
        _ => format!("{} ({})", p.title, p.code),
    }
}

/// Paging of lists that have no name filter (tokens).
#[derive(Debug, Clone, Default, Serialize)]
pub struct PageQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

#[derive(Clone)]
enum Auth {
    None,
    Bearer(Secret),
    Basic(String, Secret),
}

/// A handle on one Warden server, with the credential it presents. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    auth: Auth,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("base", &self.base.as_str()).finish_non_exhaustive()
    }
}

impl Client {
    /// A client of the server at `base_url` (e.g. `https://warden.example.org`), unauthenticated.
    pub fn new(base_url: &str) -> Result<Self, ClientError> {
        let invalid = |why: &str| ClientError::Transport(format!("invalid server URL {base_url:?}: {why}"));
        let mut base = Url::parse(base_url.trim()).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(invalid("must be an http:// or https:// URL"));
        }
        base.set_query(None);
        base.set_fragment(None);
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("warden-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Transport(format!("cannot set up HTTP for {base}: {}", root_cause(&e))))?;
        Ok(Self { http, base, auth: Auth::None })
    }

    /// Presents `token` (a session `wds_…` or API `wdn_…` token) as `Authorization: Bearer`.
    #[must_use]
    pub fn with_bearer(mut self, token: impl Into<String>) -> Self {
        self.auth = Auth::Bearer(Secret::new(token));
        self
    }

    /// Presents a name and password as HTTP Basic.
    #[must_use]
    pub fn with_basic(mut self, name: impl Into<String>, password: impl Into<String>) -> Self {
        self.auth = Auth::Basic(name.into(), Secret::new(password));
        self
    }

    /// The server's base URL, as given.
    pub fn server(&self) -> &Url {
        &self.base
    }

    // --- health -------------------------------------------------------------------------------

    /// `GET /healthz`: the process is up.
    pub async fn health(&self) -> Result<(), ClientError> {
        self.send(Method::GET, self.root_url("healthz"), NO_QUERY, NO_BODY).await.map(drop)
    }

    /// `GET /readyz`: the server can serve (its store answers).
    pub async fn ready(&self) -> Result<(), ClientError> {
        self.send(Method::GET, self.root_url("readyz"), NO_QUERY, NO_BODY).await.map(drop)
    }

    // --- auth and self ------------------------------------------------------------------------

    /// Signs in with a password alone. An account with a second factor gets the problem
    /// `auth.second_factor_required`: use [`Client::login_outcome`] and [`Client::login_mfa`].
    pub async fn login(&self, name: &str, password: &str) -> Result<LoginResponse, ClientError> {
        match self.login_outcome(name, password).await? {
            warden_core::api::LoginOutcome::Session(session) => Ok(session),
            warden_core::api::LoginOutcome::SecondFactor(step) => Err(ClientError::Api(Problem {
                type_: "urn:warden:problem:auth.second_factor_required".into(),
                title: "Second factor required".into(),
                status: 200,
                code: "auth.second_factor_required".into(),
                detail: Some(format!("this account needs a second factor ({})", step.methods.join(", "))),
                line: None,
            })),
        }
    }

    /// Signs in with a password: a session, or the step that asks for a second factor.
    pub async fn login_outcome(&self, name: &str, password: &str) -> Result<warden_core::api::LoginOutcome, ClientError> {
        let body = LoginRequest { name: name.to_owned(), password: Secret::new(password) };
        self.call(Method::POST, &["auth", "login"], NO_QUERY, Some(&body)).await
    }

    /// Finishes a sign-in with a TOTP code or a backup code.
    pub async fn login_mfa(&self, answer: &warden_core::api::SecondFactorAnswer) -> Result<LoginResponse, ClientError> {
        self.call(Method::POST, &["auth", "login", "mfa"], NO_QUERY, Some(answer)).await
    }

    pub async fn second_factors(&self) -> Result<warden_core::api::SecondFactorStatus, ClientError> {
        self.call(Method::GET, &["self", "second-factors"], NO_QUERY, NO_BODY).await
    }

    pub async fn begin_totp(&self, body: &warden_core::api::BeginTotp) -> Result<warden_core::api::TotpEnrolment, ClientError> {
        self.call(Method::POST, &["self", "totp"], NO_QUERY, Some(body)).await
    }

    pub async fn confirm_totp(&self, code: &str) -> Result<warden_core::api::SecondFactorStatus, ClientError> {
        let body = warden_core::api::TotpCode { code: code.to_owned() };
        self.call(Method::POST, &["self", "totp", "confirm"], NO_QUERY, Some(&body)).await
    }

    pub async fn remove_totp(&self) -> Result<(), ClientError> {
        self.call(Method::DELETE, &["self", "totp"], NO_QUERY, NO_BODY).await
    }

    /// Starts registering a passkey (an elevated session): the options for the authenticator.
    pub async fn begin_passkey_registration(&self) -> Result<warden_core::api::PasskeyChallenge, ClientError> {
        self.call(Method::POST, &["self", "passkeys", "begin"], NO_QUERY, NO_BODY).await
    }

    pub async fn finish_passkey_registration(
        &self,
        body: &warden_core::api::FinishPasskeyRegistration,
    ) -> Result<warden_core::api::PasskeyInfo, ClientError> {
        self.call(Method::POST, &["self", "passkeys", "finish"], NO_QUERY, Some(body)).await
    }

    pub async fn passkeys(&self) -> Result<Vec<warden_core::api::PasskeyInfo>, ClientError> {
        self.call(Method::GET, &["self", "passkeys"], NO_QUERY, NO_BODY).await
    }

    pub async fn rename_passkey(&self, id: uuid::Uuid, name: &str) -> Result<warden_core::api::PasskeyInfo, ClientError> {
        let body = warden_core::api::RenamePasskey { name: name.to_owned() };
        self.call(Method::PATCH, &["self", "passkeys", &id.to_string()], NO_QUERY, Some(&body)).await
    }

    pub async fn remove_passkey(&self, id: uuid::Uuid) -> Result<(), ClientError> {
        self.call(Method::DELETE, &["self", "passkeys", &id.to_string()], NO_QUERY, NO_BODY).await
    }

    /// Starts a passwordless sign-in: options naming no account.
    pub async fn begin_passkey_sign_in(&self) -> Result<warden_core::api::PasskeyChallenge, ClientError> {
        self.call(Method::POST, &["auth", "passkey", "begin"], NO_QUERY, NO_BODY).await
    }

    pub async fn finish_passkey_sign_in(&self, body: &warden_core::api::PasskeySignIn) -> Result<LoginResponse, ClientError> {
        self.call(Method::POST, &["auth", "passkey", "finish"], NO_QUERY, Some(body)).await
    }

    /// Starts re-authenticating this session with one of its account's passkeys.
    pub async fn begin_passkey_reauth(&self) -> Result<warden_core::api::PasskeyChallenge, ClientError> {
        self.call(Method::POST, &["auth", "reauth", "passkey"], NO_QUERY, NO_BODY).await
    }

    /// What a user can sign in with (no secrets).
    pub async fn user_credentials(&self, user: &str) -> Result<warden_core::api::UserCredentials, ClientError> {
        self.call(Method::GET, &["users", user, "credentials"], NO_QUERY, NO_BODY).await
    }

    /// Removes every second factor of a user (an administrator's help after a lost device).
    pub async fn reset_second_factors(&self, user: &str) -> Result<(), ClientError> {
        self.call(Method::DELETE, &["users", user, "second-factors"], NO_QUERY, NO_BODY).await
    }

    pub async fn generate_backup_codes(&self) -> Result<warden_core::api::BackupCodes, ClientError> {
        self.call(Method::POST, &["self", "backup-codes"], NO_QUERY, NO_BODY).await
    }

    /// Ends the session whose token this client presents.
    pub async fn logout(&self) -> Result<(), ClientError> {
        self.call(Method::POST, &["auth", "logout"], NO_QUERY, NO_BODY).await
    }

    /// Re-authenticates the session this client presents, opening its write window.
    pub async fn reauth(&self, password: &str) -> Result<ReauthResponse, ClientError> {
        let body = ReauthRequest::password(password);
        self.call(Method::POST, &["auth", "reauth"], NO_QUERY, Some(&body)).await
    }

    /// Re-authenticates an account with a second factor: the password and a TOTP code.
    pub async fn reauth_with_totp(&self, password: &str, totp: &str) -> Result<ReauthResponse, ClientError> {
        let body = ReauthRequest { totp: Some(totp.to_owned()), ..ReauthRequest::password(password) };
        self.call(Method::POST, &["auth", "reauth"], NO_QUERY, Some(&body)).await
    }

    /// Re-authenticates an account with a second factor: the password and a backup code.
    pub async fn reauth_with_backup_code(&self, password: &str, code: &str) -> Result<ReauthResponse, ClientError> {
        let body = ReauthRequest { backup_code: Some(Secret::new(code)), ..ReauthRequest::password(password) };
        self.call(Method::POST, &["auth", "reauth"], NO_QUERY, Some(&body)).await
    }

    /// Re-authenticates with whatever `body` holds (a password, a code, a passkey).
    pub async fn reauth_with(&self, body: &ReauthRequest) -> Result<ReauthResponse, ClientError> {
        self.call(Method::POST, &["auth", "reauth"], NO_QUERY, Some(body)).await
    }

    pub async fn whoami(&self) -> Result<WhoAmI, ClientError> {
        self.call(Method::GET, &["self"], NO_QUERY, NO_BODY).await
    }

    pub async fn rename_self(&self, new_name: &str) -> Result<User, ClientError> {
        self.call(Method::POST, &["self", "rename"], NO_QUERY, Some(&rename(new_name))).await
    }

    /// `GET /self/preferences/{tenant}`: the caller's preferences there (empty when unset).
    pub async fn preferences(&self, tenant: &str) -> Result<TenantPreferences, ClientError> {
        self.call(Method::GET, &["self", "preferences", tenant], NO_QUERY, NO_BODY).await
    }

    /// `PUT /self/preferences/{tenant}`: replaces the caller's preferences there.
    pub async fn set_preferences(&self, tenant: &str, preferences: &TenantPreferences) -> Result<TenantPreferences, ClientError> {
        self.call(Method::PUT, &["self", "preferences", tenant], NO_QUERY, Some(preferences)).await
    }

    /// `GET /self/profile`: the caller's own account, as its owner sees it.
    pub async fn own_profile(&self) -> Result<User, ClientError> {
        self.call(Method::GET, &["self", "profile"], NO_QUERY, NO_BODY).await
    }

    /// `PATCH /self/profile`: edits the caller's own profile.
    pub async fn update_own_profile(&self, body: &warden_core::api::UpdateProfile) -> Result<User, ClientError> {
        self.call(Method::PATCH, &["self", "profile"], NO_QUERY, Some(body)).await
    }

    /// `PUT /self/password`: the caller's own password, proving the current one; the caller's
    /// other sessions end.
    pub async fn change_own_password(&self, current: &str, new: &str) -> Result<(), ClientError> {
        let body = warden_core::api::ChangePassword { current: Secret::new(current), new: Secret::new(new) };
        self.call(Method::PUT, &["self", "password"], NO_QUERY, Some(&body)).await
    }

    // --- users (`user` is a name or an id) -----------------------------------------------------

    pub async fn list_users(&self, query: &ListQuery) -> Result<Page<User>, ClientError> {
        self.call(Method::GET, &["users"], Some(query), NO_BODY).await
    }

    pub async fn create_user(&self, body: &CreateUser) -> Result<User, ClientError> {
        self.call(Method::POST, &["users"], NO_QUERY, Some(body)).await
    }

    pub async fn get_user(&self, user: &str) -> Result<User, ClientError> {
        self.call(Method::GET, &["users", user], NO_QUERY, NO_BODY).await
    }

    /// `GET /users/{user}?expand=…` (`groups`, `roles`, comma-separated).
    pub async fn get_user_expanded(&self, user: &str, expand: &str) -> Result<Expanded<User>, ClientError> {
        let query = ExpandQuery { expand: Some(expand.to_owned()) };
        self.call(Method::GET, &["users", user], Some(&query), NO_BODY).await
    }

    pub async fn update_user(&self, user: &str, body: &UpdateUser) -> Result<User, ClientError> {
        self.call(Method::PATCH, &["users", user], NO_QUERY, Some(body)).await
    }

    pub async fn delete_user(&self, user: &str) -> Result<(), ClientError> {
        self.call(Method::DELETE, &["users", user], NO_QUERY, NO_BODY).await
    }

    pub async fn rename_user(&self, user: &str, new_name: &str) -> Result<User, ClientError> {
        self.call(Method::POST, &["users", user, "rename"], NO_QUERY, Some(&rename(new_name))).await
    }

    /// `PUT /users/{user}/password`: a credential reset; the user's sessions end.
    pub async fn set_password(&self, user: &str, password: &str) -> Result<(), ClientError> {
        let body = warden_core::api::SetPassword { password: Secret::new(password) };
        self.call(Method::PUT, &["users", user, "password"], NO_QUERY, Some(&body)).await
    }

    /// Lifts the soft lock of `user`'s name (its failed passwords are forgotten).
    pub async fn unlock_user(&self, user: &str) -> Result<(), ClientError> {
        self.call(Method::POST, &["users", user, "unlock"], NO_QUERY, NO_BODY).await
    }

    /// A one-time link with which `user` chooses a new password; `expires_in` (`24h`) or the
    /// server's default lifetime.
    pub async fn recovery_link(&self, user: &str, expires_in: Option<&str>) -> Result<warden_core::api::RecoveryLink, ClientError> {
        let body = warden_core::api::CreateRecoveryLink { expires_in: expires_in.map(str::to_owned) };
        self.call(Method::POST, &["users", user, "recovery-link"], NO_QUERY, Some(&body)).await
    }

    /// A new registration token (its secret is in the answer, this once).
    pub async fn create_registration_token(
        &self,
        body: &warden_core::api::CreateRegistrationToken,
    ) -> Result<warden_core::api::CreatedRegistrationToken, ClientError> {
        self.call(Method::POST, &["registration-tokens"], NO_QUERY, Some(body)).await
    }

    pub async fn list_registration_tokens(&self) -> Result<Vec<warden_core::api::RegistrationTokenInfo>, ClientError> {
        self.call(Method::GET, &["registration-tokens"], NO_QUERY, NO_BODY).await
    }

    pub async fn revoke_registration_token(&self, id: Uuid) -> Result<(), ClientError> {
        let id = id.to_string();
        self.call(Method::DELETE, &["registration-tokens", &id], NO_QUERY, NO_BODY).await
    }

    /// Invites addresses to register (each is mailed a one-use link).
    pub async fn create_invitations(
        &self,
        body: &warden_core::api::CreateInvitations,
    ) -> Result<warden_core::api::CreatedInvitations, ClientError> {
        self.call(Method::POST, &["invitations"], NO_QUERY, Some(body)).await
    }

    pub async fn list_invitations(&self) -> Result<Vec<warden_core::api::Invitation>, ClientError> {
        self.call(Method::GET, &["invitations"], NO_QUERY, NO_BODY).await
    }

    pub async fn revoke_invitation(&self, id: Uuid) -> Result<(), ClientError> {
        let id = id.to_string();
        self.call(Method::DELETE, &["invitations", &id], NO_QUERY, NO_BODY).await
    }

    /// Mails a user's primary address a link to choose a password.
    pub async fn send_account_notice(&self, user: &str) -> Result<warden_core::api::MailQueued, ClientError> {
        self.call(Method::POST, &["users", user, "account-notice"], NO_QUERY, NO_BODY).await
    }

    /// Requires a user to choose a new password (its sessions end; a link is mailed).
    pub async fn require_password_change(&self, user: &str) -> Result<warden_core::api::PasswordChangeRequired, ClientError> {
        self.call(Method::POST, &["users", user, "require-password-change"], NO_QUERY, NO_BODY).await
    }

    /// Requires every user in a group (nested groups included) to choose a new password.
    pub async fn require_group_password_change(&self, group: &str) -> Result<warden_core::api::PasswordChangeRequired, ClientError> {
        self.call(Method::POST, &["groups", group, "require-password-change"], NO_QUERY, NO_BODY).await
    }

    /// Redeems an e-mail verification link's token (no credentials needed).
    pub async fn verify_email(&self, token: &str) -> Result<warden_core::api::EmailVerified, ClientError> {
        let body = warden_core::api::VerifyEmail { token: Secret::new(token) };
        self.call(Method::POST, &["auth", "verify-email"], NO_QUERY, Some(&body)).await
    }

    /// Asks for a new verification link for one of the caller's own unverified addresses.
    pub async fn resend_verification(&self, address: &str) -> Result<warden_core::api::MailQueued, ClientError> {
        let body = warden_core::api::ResendVerification { address: address.to_owned() };
        self.call(Method::POST, &["self", "email-verification"], NO_QUERY, Some(&body)).await
    }

    /// Asks for a password reset mail (`POST /auth/forgot-password`; no credentials needed).
    pub async fn forgot_password(&self, name_or_email: &str) -> Result<warden_core::api::ForgotPasswordAccepted, ClientError> {
        let body = warden_core::api::ForgotPassword { name_or_email: name_or_email.to_owned() };
        self.call(Method::POST, &["auth", "forgot-password"], NO_QUERY, Some(&body)).await
    }

    /// Registers a new user (`POST /register`; no credentials needed).
    pub async fn register(&self, body: &warden_core::api::RegisterRequest) -> Result<User, ClientError> {
        self.call(Method::POST, &["register"], NO_QUERY, Some(body)).await
    }

    /// Redeems a recovery link's token: sets the password and returns a new session.
    pub async fn recover(&self, token: &str, password: &str) -> Result<LoginResponse, ClientError> {
        let body = warden_core::api::RecoverRequest { token: Secret::new(token), password: Secret::new(password) };
        self.call(Method::POST, &["auth", "recover"], NO_QUERY, Some(&body)).await
    }

    pub async fn disable_user(&self, user: &str) -> Result<User, ClientError> {
        self.call(Method::POST, &["users", user, "disable"], NO_QUERY, NO_BODY).await
    }

    pub async fn enable_user(&self, user: &str) -> Result<User, ClientError> {
        self.call(Method::POST, &["users", user, "enable"], NO_QUERY, NO_BODY).await
    }

    // --- service accounts and their API tokens -------------------------------------------------

    pub async fn list_service_accounts(&self, query: &ListQuery) -> Result<Page<ServiceAccount>, ClientError> {
        self.call(Method::GET, &["service-accounts"], Some(query), NO_BODY).await
    }

    pub async fn create_service_account(&self, body: &CreateServiceAccount) -> Result<ServiceAccount, ClientError> {
        self.call(Method::POST, &["service-accounts"], NO_QUERY, Some(body)).await
    }

    pub async fn get_service_account(&self, sa: &str) -> Result<ServiceAccount, ClientError> {
        self.call(Method::GET, &["service-accounts", sa], NO_QUERY, NO_BODY).await
    }

    /// `GET /service-accounts/{sa}?expand=…` (`groups`, `roles`, comma-separated).
    pub async fn get_service_account_expanded(&self, sa: &str, expand: &str) -> Result<Expanded<ServiceAccount>, ClientError> {
        let query = ExpandQuery { expand: Some(expand.to_owned()) };
        self.call(Method::GET, &["service-accounts", sa], Some(&query), NO_BODY).await
    }

    pub async fn delete_service_account(&self, sa: &str) -> Result<(), ClientError> {
        self.call(Method::DELETE, &["service-accounts", sa], NO_QUERY, NO_BODY).await
    }

    pub async fn list_api_tokens(&self, sa: &str, query: &PageQuery) -> Result<Page<ApiToken>, ClientError> {
        self.call(Method::GET, &["service-accounts", sa, "tokens"], Some(query), NO_BODY).await
    }

    /// Creates an API token; the returned secret is shown this once.
    pub async fn create_api_token(&self, sa: &str, body: &CreateApiToken) -> Result<CreatedApiToken, ClientError> {
        self.call(Method::POST, &["service-accounts", sa, "tokens"], NO_QUERY, Some(body)).await
    }

    pub async fn revoke_api_token(&self, sa: &str, token_id: Uuid) -> Result<(), ClientError> {
        let id = token_id.to_string();
        self.call(Method::DELETE, &["service-accounts", sa, "tokens", &id], NO_QUERY, NO_BODY).await
    }

    // --- sessions ------------------------------------------------------------------------------

    /// `GET /sessions`: every live session, or one account's sessions and API tokens.
    pub async fn list_sessions(&self, query: &SessionsQuery) -> Result<Page<warden_core::api::SessionInfo>, ClientError> {
        self.call(Method::GET, &["sessions"], Some(query), NO_BODY).await
    }

    /// `DELETE /sessions/{id}`: ends anyone's session or API token.
    pub async fn revoke_session(&self, id: Uuid) -> Result<(), ClientError> {
        let id = id.to_string();
        self.call(Method::DELETE, &["sessions", &id], NO_QUERY, NO_BODY).await
    }

    /// `DELETE /users/{user}/sessions`: ends every session of an account.
    pub async fn revoke_user_sessions(&self, user: &str) -> Result<warden_core::api::SessionsRevoked, ClientError> {
        self.call(Method::DELETE, &["users", user, "sessions"], NO_QUERY, NO_BODY).await
    }

    /// `GET /self/sessions`: the caller's own sessions and API tokens.
    pub async fn own_sessions(&self) -> Result<Page<warden_core::api::SessionInfo>, ClientError> {
        self.call(Method::GET, &["self", "sessions"], NO_QUERY, NO_BODY).await
    }

    /// `DELETE /self/sessions/{id}`: ends one of the caller's own.
    pub async fn revoke_own_session(&self, id: Uuid) -> Result<(), ClientError> {
        let id = id.to_string();
        self.call(Method::DELETE, &["self", "sessions", &id], NO_QUERY, NO_BODY).await
    }

    // --- groups --------------------------------------------------------------------------------

    pub async fn list_groups(&self, query: &ListQuery) -> Result<Page<Group>, ClientError> {
        self.call(Method::GET, &["groups"], Some(query), NO_BODY).await
    }

    pub async fn create_group(&self, body: &CreateGroup) -> Result<Group, ClientError> {
        self.call(Method::POST, &["groups"], NO_QUERY, Some(body)).await
    }

    pub async fn get_group(&self, group: &str) -> Result<Group, ClientError> {
        self.call(Method::GET, &["groups", group], NO_QUERY, NO_BODY).await
    }

    pub async fn delete_group(&self, group: &str) -> Result<(), ClientError> {
        self.call(Method::DELETE, &["groups", group], NO_QUERY, NO_BODY).await
    }

    pub async fn group_members(&self, group: &str, query: &MembersQuery) -> Result<Page<MemberEntry>, ClientError> {
        self.call(Method::GET, &["groups", group, "members"], Some(query), NO_BODY).await
    }

    /// The groups a user is in (`effective`: also through nesting), paged like group members.
    pub async fn user_groups(&self, user: &str, query: &MembersQuery) -> Result<Page<MemberEntry>, ClientError> {
        self.call(Method::GET, &["users", user, "groups"], Some(query), NO_BODY).await
    }

    /// The groups a service account is in (`effective`: also through nesting).
    pub async fn service_account_groups(&self, sa: &str, query: &MembersQuery) -> Result<Page<MemberEntry>, ClientError> {
        self.call(Method::GET, &["service-accounts", sa, "groups"], Some(query), NO_BODY).await
    }

    /// Adds members (`user:alice`, `sa:ci-bot`, `group:staff`, bare names or ids).
    pub async fn add_members(&self, group: &str, members: &[String]) -> Result<Added, ClientError> {
        let body = AddMembers { members: members.to_vec() };
        self.call(Method::POST, &["groups", group, "members"], NO_QUERY, Some(&body)).await
    }

    /// Removes one direct member, named like `user:alice`.
    pub async fn remove_member(&self, group: &str, member: &str) -> Result<(), ClientError> {
        self.call(Method::DELETE, &["groups", group, "members", member], NO_QUERY, NO_BODY).await
    }

    // --- tenants ---------------------------------------------------------------------------------

    pub async fn list_tenants(&self) -> Result<Page<Tenant>, ClientError> {
        self.call(Method::GET, &["tenants"], NO_QUERY, NO_BODY).await
    }

    pub async fn create_tenant(&self, body: &CreateTenant) -> Result<Tenant, ClientError> {
        self.call(Method::POST, &["tenants"], NO_QUERY, Some(body)).await
    }

    pub async fn delete_tenant(&self, tenant: &str) -> Result<(), ClientError> {
        self.call(Method::DELETE, &["tenants", tenant], NO_QUERY, NO_BODY).await
    }

    // --- roles (`role` is the role's id) ------------------------------------------------------

    pub async fn list_roles(&self, query: &RoleQuery) -> Result<Page<Role>, ClientError> {
        self.call(Method::GET, &["roles"], Some(query), NO_BODY).await
    }

    pub async fn create_role(&self, body: &CreateRole) -> Result<Role, ClientError> {
        self.call(Method::POST, &["roles"], NO_QUERY, Some(body)).await
    }

    // --- OpenID Connect clients ---

    /// Registers a client; a confidential one's secret is in the answer, and only there.
    pub async fn create_oidc_client(
        &self,
        body: &warden_core::api::CreateOidcClient,
    ) -> Result<warden_core::api::CreatedOidcClient, ClientError> {
        self.call(Method::POST, &["oidc", "clients"], NO_QUERY, Some(body)).await
    }

    pub async fn list_oidc_clients(&self) -> Result<Vec<warden_core::oidc::OidcClient>, ClientError> {
        self.call(Method::GET, &["oidc", "clients"], NO_QUERY, NO_BODY).await
    }

    pub async fn get_oidc_client(&self, client_id: &str) -> Result<warden_core::oidc::OidcClient, ClientError> {
        self.call(Method::GET, &["oidc", "clients", client_id], NO_QUERY, NO_BODY).await
    }

    pub async fn update_oidc_client(
        &self,
        client_id: &str,
        body: &warden_core::api::UpdateOidcClient,
    ) -> Result<warden_core::oidc::OidcClient, ClientError> {
        self.call(Method::PATCH, &["oidc", "clients", client_id], NO_QUERY, Some(body)).await
    }

    /// A confidential client's new secret (the old one stops working).
    pub async fn rotate_oidc_client_secret(&self, client_id: &str) -> Result<warden_core::api::OidcClientSecret, ClientError> {
        self.call(Method::POST, &["oidc", "clients", client_id, "rotate-secret"], NO_QUERY, NO_BODY).await
    }

    /// The OpenID Connect provider's signing keys.
    pub async fn list_oidc_keys(&self) -> Result<Vec<warden_core::api::OidcSigningKey>, ClientError> {
        self.call(Method::GET, &["oidc", "keys"], NO_QUERY, NO_BODY).await
    }

    /// New signing keys; the old ones stop signing and stay published until their tokens expire.
    pub async fn rotate_oidc_keys(&self) -> Result<warden_core::api::RotatedOidcKeys, ClientError> {
        self.call(Method::POST, &["oidc", "keys", "rotate"], NO_QUERY, NO_BODY).await
    }

    /// `GET /self/applications`, or with `user` `GET /users/{user}/applications`: the
    /// applications signed in to through the OpenID Connect provider.
    pub async fn applications(&self, user: Option<&str>) -> Result<Vec<warden_core::api::ConnectedApplication>, ClientError> {
        match user {
            Some(user) => self.call(Method::GET, &["users", user, "applications"], NO_QUERY, NO_BODY).await,
            None => self.call(Method::GET, &["self", "applications"], NO_QUERY, NO_BODY).await,
        }
    }

    /// Disconnects an application (the caller's own, or `user`'s): its consent withdrawn and its
    /// grants revoked.
    pub async fn withdraw_application(
        &self,
        user: Option<&str>,
        client_id: &str,
    ) -> Result<warden_core::api::ApplicationWithdrawn, ClientError> {
        match user {
            Some(user) => self.call(Method::DELETE, &["users", user, "applications", client_id], NO_QUERY, NO_BODY).await,
            None => self.call(Method::DELETE, &["self", "applications", client_id], NO_QUERY, NO_BODY).await,
        }
    }

    pub async fn delete_oidc_client(&self, client_id: &str) -> Result<(), ClientError> {
        self.call(Method::DELETE, &["oidc", "clients", client_id], NO_QUERY, NO_BODY).await
    }

    pub async fn get_role(&self, role: &str) -> Result<Role, ClientError> {
        self.call(Method::GET, &["roles", role], NO_QUERY, NO_BODY).await
    }

    /// Adds and removes permissions of a dynamic role.
    pub async fn update_role(&self, role: &str, body: &UpdateRole) -> Result<Role, ClientError> {
        self.call(Method::PATCH, &["roles", role], NO_QUERY, Some(body)).await
    }

    pub async fn delete_role(&self, role: &str) -> Result<(), ClientError> {
        self.call(Method::DELETE, &["roles", role], NO_QUERY, NO_BODY).await
    }

    /// The role's permissions expanded to leaves.
    pub async fn role_permissions(&self, role: &str) -> Result<RolePermissions, ClientError> {
        self.call(Method::GET, &["roles", role, "permissions"], NO_QUERY, NO_BODY).await
    }

    // --- bindings ------------------------------------------------------------------------------

    pub async fn list_bindings(&self, query: &BindingQuery) -> Result<Page<Binding>, ClientError> {
        self.call(Method::GET, &["bindings"], Some(query), NO_BODY).await
    }

    pub async fn create_binding(&self, body: &CreateBinding) -> Result<Binding, ClientError> {
        self.call(Method::POST, &["bindings"], NO_QUERY, Some(body)).await
    }

    pub async fn delete_binding(&self, binding_id: Uuid) -> Result<(), ClientError> {
        let id = binding_id.to_string();
        self.call(Method::DELETE, &["bindings", &id], NO_QUERY, NO_BODY).await
    }

    // --- decisions -----------------------------------------------------------------------------

    /// Decides one or more permissions for a subject (with explanations if asked).
    pub async fn check(&self, body: &CheckRequest) -> Result<CheckResponse, ClientError> {
        self.call(Method::POST, &["check"], NO_QUERY, Some(body)).await
    }

    /// What an account (`account`: name or id of a user or service account) holds.
    pub async fn account_permissions(&self, account: &str, query: &PermissionsQuery) -> Result<ResolvedPermissions, ClientError> {
        self.call(Method::GET, &["accounts", account, "permissions"], Some(query), NO_BODY).await
    }

    // --- audit ---------------------------------------------------------------------------------

    pub async fn audit(&self, query: &AuditQuery) -> Result<Page<AuditEvent>, ClientError> {
        self.call(Method::GET, &["audit"], Some(query), NO_BODY).await
    }

    // --- the one request path ------------------------------------------------------------------

    /// Sends a request to `/api/v1/<segments…>` and decodes the JSON reply (an empty reply,
    /// as of a 204, decodes as `()`).
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: Option<&(impl Serialize + ?Sized)>,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<T, ClientError> {
        let url = self.api_url(segments);
        let bytes = self.send(method, url.clone(), query, body).await?;
        let json: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
        serde_json::from_slice(json).map_err(|e| ClientError::Decode(format!("unexpected reply from {url}: {e}")))
    }

    // --- bulk export and import ------------------------------------------------------------------

    /// `GET /api/v1/export`: hands the NDJSON to `sink` piece by piece as it arrives (the
    /// directory is never held in memory) and returns how many bytes came. Fails if the
    /// stream breaks off; whether the file is whole is for the caller to check (its last line
    /// is the end record).
    pub async fn export(
        &self,
        include_credentials: bool,
        mut sink: impl FnMut(&[u8]) -> std::io::Result<()> + Send,
    ) -> Result<u64, ClientError> {
        let url = self.api_url(&["export"]);
        let request = self.http.get(url).query(&ExportQuery { include_credentials }).timeout(TRANSFER_TIMEOUT);
        let mut response = self.authorized(request).send().await.map_err(|e| self.transport(&e))?;
        let status = response.status();
        if !status.is_success() {
            let bytes = response.bytes().await.map_err(|e| self.transport(&e))?;
            return Err(ClientError::Api(problem_of(status, &bytes)));
        }
        let mut total = 0u64;
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport(&e))? {
            sink(&chunk).map_err(|e| ClientError::Transport(format!("cannot write the export: {e}")))?;
            total += chunk.len() as u64;
        }
        Ok(total)
    }

    /// `POST /api/v1/import`: streams `body` (NDJSON pieces, split anywhere) to the server
    /// and returns its summary. A refused line is an [`ClientError::Api`] whose problem has
    /// `code` `import.invalid` (or an access code) and `line`.
    pub async fn import<S>(&self, body: S, dry_run: bool) -> Result<ImportSummary, ClientError>
    where
        S: futures_util::Stream<Item = std::io::Result<Vec<u8>>> + Send + 'static,
    {
        let url = self.api_url(&["import"]);
        let request = self
            .http
            .post(url.clone())
            .query(&ImportQuery { dry_run })
            .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
            .body(reqwest::Body::wrap_stream(body))
            .timeout(TRANSFER_TIMEOUT);
        let response = self.authorized(request).send().await.map_err(|e| self.transport(&e))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| self.transport(&e))?;
        if !status.is_success() {
            return Err(ClientError::Api(problem_of(status, &bytes)));
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(format!("unexpected reply from {url}: {e}")))
    }

    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.auth {
            Auth::None => request,
            Auth::Bearer(token) => request.bearer_auth(token.expose()),
            Auth::Basic(name, password) => request.basic_auth(name, Some(password.expose())),
        }
    }

    async fn send(
        &self,
        method: Method,
        url: Url,
        query: Option<&(impl Serialize + ?Sized)>,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<Vec<u8>, ClientError> {
        let mut request = self.http.request(method, url);
        if let Some(query) = query {
            request = request.query(query);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = self.authorized(request).send().await.map_err(|e| self.transport(&e))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| self.transport(&e))?;
        if status.is_success() { Ok(bytes.to_vec()) } else { Err(ClientError::Api(problem_of(status, &bytes))) }
    }

    fn api_url(&self, segments: &[&str]) -> Url {
        self.url_with(["api", "v1"].iter().chain(segments))
    }

    fn root_url(&self, segment: &str) -> Url {
        self.url_with([segment].iter())
    }

    /// Appends percent-encoded path segments to the base URL.
    fn url_with<'a>(&self, segments: impl Iterator<Item = &'a &'a str>) -> Url {
        let mut url = self.base.clone();
        // `new` refused URLs that cannot be a base, so this always succeeds.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn transport(&self, error: &reqwest::Error) -> ClientError {
        let why = if error.is_timeout() { "timed out".to_owned() } else { root_cause(error) };
        ClientError::Transport(format!("cannot reach Warden at {}: {why}", self.base.as_str().trim_end_matches('/')))
    }
}

const NO_QUERY: Option<&()> = None;
const NO_BODY: Option<&()> = None;

fn rename(new_name: &str) -> Rename {
    Rename { name: new_name.to_owned() }
}

/// The server's problem, or one made up from the status if the body is not a problem.
fn problem_of(status: StatusCode, body: &[u8]) -> Problem {
    serde_json::from_slice(body).unwrap_or_else(|_| {
        let text = String::from_utf8_lossy(body);
        let detail = text.lines().next().map(|l| l.chars().take(200).collect::<String>()).filter(|l| !l.trim().is_empty());
        Problem {
            type_: "about:blank".to_owned(),
            title: status.canonical_reason().unwrap_or("HTTP error").to_owned(),
            status: status.as_u16(),
            code: format!("http.{}", status.as_u16()),
            detail,
            line: None,
        }
    })
}

/// The innermost cause of an error: for I/O failures the useful part ("Connection refused").
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_built_from_encoded_segments() {
        let client = Client::new("http://127.0.0.1:8080/").unwrap();
        assert_eq!(client.api_url(&["users", "alice"]).as_str(), "http://127.0.0.1:8080/api/v1/users/alice");
        let prefixed = Client::new("https://example.org/warden").unwrap();
        assert_eq!(
            prefixed.api_url(&["groups", "staff", "members", "user:a/b c"]).as_str(),
            "https://example.org/warden/api/v1/groups/staff/members/user:a%2Fb%20c"
        );
        assert_eq!(prefixed.root_url("healthz").as_str(), "https://example.org/warden/healthz");
        assert!(Client::new("ftp://example.org").is_err());
        assert!(Client::new("not a url").is_err());
    }

    #[test]
    fn errors_read_as_one_line_with_codes() {
        let body = br#"{"type":"about:blank","title":"Not found","status":404,"code":"user.not_found","detail":"no user alice"}"#;
        let err = ClientError::Api(problem_of(StatusCode::NOT_FOUND, body));
        assert_eq!(err.to_string(), "Not found: no user alice (user.not_found)");
        assert_eq!(err.code(), "user.not_found");
        let bare = ClientError::Api(problem_of(StatusCode::BAD_GATEWAY, b"<html>\nbad</html>"));
        assert_eq!(bare.code(), "http.502");
        assert_eq!(bare.to_string(), "Bad Gateway: <html> (http.502)");
    }

    #[test]
    fn queries_skip_what_is_unset() {
        let q = AuditQuery {
            action: Some("user.".into()),
            since: Some(time::macros::datetime!(2026-01-02 03:04:05 UTC)),
            ..AuditQuery::default()
        };
        assert_eq!(serde_json::to_value(&q).unwrap(), serde_json::json!({"action": "user.", "since": "2026-01-02T03:04:05.000Z"}));
    }
}
