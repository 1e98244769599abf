//! `wardend`'s configuration: a TOML file (optional) with `WARDEN_*` environment overrides.
//!
//! With no file and no environment the server runs on SQLite in `./warden-data/` and listens on
//! `127.0.0.1:8080`. Environment variables name a key path with `__` between levels:
//! `WARDEN_DATABASE__URL`, `WARDEN_SERVER__LISTEN`, `WARDEN_SERVER__TRUSTED_PROXIES=10.0.0.1,10.0.0.2`.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use warden_core::credential::parse_duration_secs;
use warden_core::password_policy::PasswordPolicy;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub auth: AuthConfig,
    pub authz: AuthzConfig,
    pub forward_auth: ForwardAuthConfig,
    pub registration: RegistrationConfig,
    pub mail: MailConfig,
    pub profile: ProfileConfig,
    /// `[webauthn]`: the relying party passkeys are registered with.
    pub webauthn: WebauthnConfig,
    /// `[oidc]`: the OpenID Connect provider.
    pub oidc: OidcConfig,
    /// Additional user fields (`[[user_field]]`): typed profile entries with a visibility.
    #[serde(rename = "user_field")]
    pub user_fields: Vec<warden_core::fields::FieldDef>,
    /// System roles: declared here, never changed through the API.
    #[serde(rename = "role")]
    pub roles: Vec<SystemRoleConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthzConfig {
    /// Split permissions on `:` into a tree (granting a node grants everything below it).
    pub permission_trees: bool,
    /// The permissions that form the tree.
    pub permissions: Vec<String>,
    /// Whether roles may be created through the API (default: when no `[[role]]` is declared).
    pub enable_dynamic_roles: Option<bool>,
    /// How long a re-authentication allows writes (`10m`).
    pub elevation_window: String,
    /// Shorter (or longer) windows for holders of particular roles: `{ idm_superuser = "5m" }`.
    /// A principal gets the shortest window of the roles it holds.
    pub role_elevation_windows: std::collections::BTreeMap<String, String>,
    /// How often every node compares its authorization snapshot with the database, as the
    /// safety net behind change notifications (`5s`).
    pub poll_interval: String,
}

impl Default for AuthzConfig {
    fn default() -> Self {
        Self {
            permission_trees: false,
            permissions: Vec::new(),
            enable_dynamic_roles: None,
            elevation_window: "10m".into(),
            role_elevation_windows: std::collections::BTreeMap::new(),
            poll_interval: "5s".into(),
        }
    }
}

/// `[webauthn]`: who Warden is to a passkey. A passkey is bound to the relying-party id (a
/// domain) it was registered under, and every ceremony must come from one of the origins; both
/// default from `server.public_url` (its host, and itself). Changing `rp_id` later makes every
/// registered passkey unusable.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebauthnConfig {
    /// The relying-party id: the domain of the origins, or a registrable suffix of it
    /// (`example.org` serves `https://id.example.org`). Default: `server.public_url`'s host.
    pub rp_id: Option<String>,
    /// The name authenticators show (`Warden`).
    pub rp_name: String,
    /// The origins a ceremony may come from (`https://id.example.org`); default
    /// `server.public_url`.
    pub origins: Vec<String>,
}

impl Default for WebauthnConfig {
    fn default() -> Self {
        Self { rp_id: None, rp_name: "Warden".into(), origins: Vec::new() }
    }
}

/// `[oidc]`: the OpenID Connect provider. Its issuer is `server.public_url` (the `default`
/// tenant) or `{public_url}/oidc/{tenant}`; without a public URL the provider is off.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OidcConfig {
    /// The key that seals the signing keys at rest: 32 bytes, base64. Every node of one
    /// database must have the same one.
    pub key_encryption_key: Option<String>,
    /// A file holding that key (base64). Default, on SQLite: `<database file>.oidc-key`, made
    /// (mode 0600) at first start; on PostgreSQL one of the two keys must be set.
    pub key_encryption_key_file: Option<PathBuf>,
    /// How long access tokens and ID tokens are good (`10m`).
    pub access_token_ttl: String,
    /// How long a grant's refresh tokens can be renewed at most (`30d`); never past the end of
    /// the session that signed in.
    pub refresh_token_ttl: String,
    /// How long an authorization code can be redeemed (`60s`).
    pub code_ttl: String,
    /// The byte budget of the list claims (groups, roles, permissions) in one token; lists
    /// that do not fit are served by userinfo instead (`4096`).
    pub max_list_claims_bytes: usize,
    /// Additional user fields published as claims with the `profile` scope: `{ field = "claim" }`.
    pub field_claims: std::collections::BTreeMap<String, String>,
}

impl Default for OidcConfig {
    fn default() -> Self {
        Self {
            key_encryption_key: None,
            key_encryption_key_file: None,
            access_token_ttl: "10m".into(),
            refresh_token_ttl: "30d".into(),
            code_ttl: "60s".into(),
            max_list_claims_bytes: warden_core::oidc::claims::DEFAULT_LIST_BUDGET,
            field_claims: std::collections::BTreeMap::new(),
        }
    }
}

/// The provider's times, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OidcTimes {
    pub access_token_secs: i64,
    pub refresh_token_secs: i64,
    pub code_secs: i64,
}

impl OidcConfig {
    pub fn times(&self) -> Result<OidcTimes, ConfigError> {
        let secs = |key: &str, raw: &str| {
            parse_duration_secs(raw)
                .ok()
                .filter(|s| *s > 0)
                .ok_or_else(|| ConfigError::Invalid(format!("oidc.{key}: {raw:?} is not a duration")))
        };
        Ok(OidcTimes {
            access_token_secs: secs("access_token_ttl", &self.access_token_ttl)?,
            refresh_token_secs: secs("refresh_token_ttl", &self.refresh_token_ttl)?,
            code_secs: secs("code_ttl", &self.code_ttl)?,
        })
    }
}

/// The relying party, resolved: what the WebAuthn verifier is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelyingParty {
    pub id: String,
    pub name: String,
    pub origins: Vec<String>,
}

impl Config {
    /// The relying party passkeys use, or `None` when neither `[webauthn]` nor
    /// `server.public_url` says who Warden is, or the public URL names an IP address, which
    /// no passkey can be bound to (passkeys are then off).
    pub fn relying_party(&self) -> Result<Option<RelyingParty>, ConfigError> {
        let origins = if self.webauthn.origins.is_empty() {
            self.server.public_url.iter().map(|u| u.trim_end_matches('/').to_owned()).collect()
        } else {
            self.webauthn.origins.clone()
        };
        for origin in &origins {
            if !is_absolute_http_url(origin) {
                return Err(ConfigError::Invalid(format!("webauthn.origins: {origin:?} is not an absolute http(s) URL")));
            }
        }
        let host_of = |url: &str| url.split_once("://").map(|(_, rest)| rest.split(['/', ':']).next().unwrap_or("").to_ascii_lowercase());
        let id = match (&self.webauthn.rp_id, origins.first()) {
            (Some(id), _) => id.trim().to_ascii_lowercase(),
            (None, Some(first)) => host_of(first).unwrap_or_default(),
            (None, None) => return Ok(None),
        };
        if origins.is_empty() {
            return Err(ConfigError::Invalid("webauthn.rp_id is set but no origin is: set webauthn.origins or server.public_url".into()));
        }
        let derived = self.webauthn.rp_id.is_none() && self.webauthn.origins.is_empty();
        if derived && id.parse::<IpAddr>().is_ok() {
            // A public URL by address: passkeys are off unless [webauthn] says otherwise.
            return Ok(None);
        }
        if id.is_empty() || id.parse::<IpAddr>().is_ok() {
            return Err(ConfigError::Invalid(format!(
                "webauthn.rp_id: {id:?} is not a domain name (passkeys need one; an IP address will not do)"
            )));
        }
        for origin in &origins {
            let host = host_of(origin).unwrap_or_default();
            if host != id && !host.ends_with(&format!(".{id}")) {
                return Err(ConfigError::Invalid(format!("webauthn.origins: {origin:?} is not within webauthn.rp_id {id:?}")));
            }
        }
        Ok(Some(RelyingParty { id, name: self.webauthn.rp_name.clone(), origins }))
    }
}

/// `[registration]`: whether people may create their own accounts.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrationConfig {
    pub mode: RegistrationMode,
}

/// `[mail]`: how the lifecycle's mail leaves (invitations, account notices, password resets,
/// required password changes, e-mail verification).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailConfig {
    /// `outbox` (the default: one `.eml` file per message in `outbox_dir`, so a fresh install
    /// works without a mail server) or `smtp`.
    pub transport: MailTransport,
    /// The sender, `Name <address>` or an address.
    pub from: String,
    /// Where `outbox` writes (`warden-data/outbox`).
    pub outbox_dir: PathBuf,
    /// A directory whose `KIND.subject`, `KIND.txt` and `KIND.html` files replace the built-in
    /// templates (minijinja syntax; KIND is `invitation`, `account_notice`, `password_reset`,
    /// `password_change_required` or `email_verification`).
    pub templates_dir: Option<PathBuf>,
    /// Attempts before a mail is given up (each failure waits twice as long, from 30 s to 1 h).
    pub max_attempts: u32,
    /// How often a node looks for mail queued by other nodes (`10s`).
    pub poll_interval: String,
    /// How long an invitation stays valid when its issuer names no lifetime (`7d`).
    pub invitation_ttl: String,
    /// How long a link in an account notice stays valid (`7d`).
    pub account_notice_ttl: String,
    /// How long a password reset link (forgot password) stays valid (`1h`).
    pub password_reset_ttl: String,
    /// How long the link mailed with a required password change stays valid (`24h`).
    pub password_change_ttl: String,
    /// How long an e-mail verification link stays valid (`24h`).
    pub email_verification_ttl: String,
    /// Password resets mailed per account at most within `password_reset_window` (3).
    pub password_reset_per_account: u32,
    /// Forgot-password requests answered per client address at most within the window (10).
    pub password_reset_per_client: u32,
    /// The window of both limits (`1h`).
    pub password_reset_window: String,
    pub smtp: SmtpConfig,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    #[default]
    Outbox,
    Smtp,
}

/// `[mail.smtp]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    /// 587 for `starttls`, 465 for `tls`, 25 for `none` when left out.
    pub port: Option<u16>,
    /// `starttls` (the default), `tls` (implicit TLS) or `none` (plain text: a relay on the
    /// same host or a test server only).
    pub security: SmtpSecurity,
    pub username: Option<String>,
    /// The password, or better `password_file` (read at start).
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    /// How long a connection or a command may take (`30s`).
    pub timeout: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    #[default]
    Starttls,
    Tls,
    None,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            transport: MailTransport::Outbox,
            from: "Warden <warden@localhost>".into(),
            outbox_dir: PathBuf::from("warden-data/outbox"),
            templates_dir: None,
            max_attempts: 10,
            poll_interval: "10s".into(),
            invitation_ttl: "7d".into(),
            account_notice_ttl: "7d".into(),
            password_reset_ttl: "1h".into(),
            password_change_ttl: "24h".into(),
            email_verification_ttl: "24h".into(),
            password_reset_per_account: 3,
            password_reset_per_client: 10,
            password_reset_window: "1h".into(),
            smtp: SmtpConfig::default(),
        }
    }
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            host: "localhost".into(),
            port: None,
            security: SmtpSecurity::Starttls,
            username: None,
            password: None,
            password_file: None,
            timeout: "30s".into(),
        }
    }
}

/// The durations of [`MailConfig`], parsed once.
#[derive(Debug, Clone, Copy)]
pub struct MailTimes {
    pub poll_secs: i64,
    pub invitation_secs: i64,
    pub account_notice_secs: i64,
    pub password_reset_secs: i64,
    pub password_change_secs: i64,
    pub email_verification_secs: i64,
    pub password_reset_window_secs: i64,
    pub smtp_timeout_secs: i64,
}

impl MailConfig {
    pub fn times(&self) -> Result<MailTimes, ConfigError> {
        let parse = |key: &str, v: &str| -> Result<i64, ConfigError> {
            match parse_duration_secs(v) {
                Ok(secs) if secs > 0 => Ok(secs),
                Ok(_) => Err(ConfigError::Invalid(format!("mail.{key} must be positive"))),
                Err(e) => Err(ConfigError::Invalid(format!("mail.{key}: {e}"))),
            }
        };
        Ok(MailTimes {
            poll_secs: parse("poll_interval", &self.poll_interval)?,
            invitation_secs: parse("invitation_ttl", &self.invitation_ttl)?,
            account_notice_secs: parse("account_notice_ttl", &self.account_notice_ttl)?,
            password_reset_secs: parse("password_reset_ttl", &self.password_reset_ttl)?,
            password_change_secs: parse("password_change_ttl", &self.password_change_ttl)?,
            email_verification_secs: parse("email_verification_ttl", &self.email_verification_ttl)?,
            password_reset_window_secs: parse("password_reset_window", &self.password_reset_window)?,
            smtp_timeout_secs: parse("smtp.timeout", &self.smtp.timeout)?,
        })
    }
}

/// `[profile]`: what people may change in their own profile (administrators always may).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProfileConfig {
    /// Users may not change their phone numbers themselves.
    pub disable_phone_numbers: bool,
    /// Users may not change their postal addresses themselves.
    pub disable_addresses: bool,
}

/// `disabled` (the default): only administrators create users; `token`: anyone holding a
/// registration token; `public`: anyone (no roles are bound).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationMode {
    #[default]
    Disabled,
    Token,
    Public,
}

/// `[forward_auth]`: the endpoint reverse proxies ask before every protected request.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ForwardAuthConfig {
    /// Serve `/auth/forward` (and the sign-in page).
    pub enabled: bool,
    /// Addresses allowed to call `/auth/forward` with `X-Forwarded-*` / `X-Original-*` headers.
    pub trusted_proxies: Vec<IpAddr>,
    /// Where browsers reach Warden (`https://auth.example.org`); the sign-in page is
    /// `{public_url}/login`.
    pub public_url: Option<String>,
    /// Domains a post-sign-in redirect may go to: `example.org` covers it and its subdomains.
    pub allowed_redirect_domains: Vec<String>,
    pub cookie_name: String,
    /// Set the session cookie for this domain (to share it between subdomains).
    pub cookie_domain: Option<String>,
    /// Mark the cookie `Secure` (default: when `public_url` is https).
    pub cookie_secure: Option<bool>,
    /// Let CORS preflight requests (OPTIONS with Origin and Access-Control-Request-Method) pass.
    pub allow_cors_preflight: bool,
    /// The tenant decisions are made in.
    pub tenant: String,
    /// Directory of `*.rego` policies (reloaded when they change).
    pub policy_dir: Option<PathBuf>,
    /// The Rego query that decides.
    pub policy_query: String,
    /// How often the policy directory is checked for changes (`2s`).
    pub policy_reload_interval: String,
    pub headers: IdentityHeaders,
    /// Simple rules, first match decides; no match: the policy if any, else deny.
    #[serde(rename = "rule")]
    pub rules: Vec<warden_policy::Rule>,
}

/// Names of the identity headers sent to the upstream on allow; an empty name disables one.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentityHeaders {
    pub user: String,
    pub user_id: String,
    pub email: String,
    pub name: String,
    pub groups: String,
    pub roles: String,
    pub permissions: String,
    pub auth_strength: String,
}

impl Default for IdentityHeaders {
    fn default() -> Self {
        Self {
            user: "X-Remote-User".into(),
            user_id: "X-Remote-User-Id".into(),
            email: "X-Remote-Email".into(),
            name: "X-Remote-Name".into(),
            groups: "X-Remote-Groups".into(),
            roles: "X-Remote-Roles".into(),
            permissions: "X-Remote-Permissions".into(),
            auth_strength: "X-Remote-Auth-Strength".into(),
        }
    }
}

impl Default for ForwardAuthConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            trusted_proxies: vec![IpAddr::from([127, 0, 0, 1]), IpAddr::from(std::net::Ipv6Addr::LOCALHOST)],
            public_url: None,
            allowed_redirect_domains: Vec::new(),
            cookie_name: "warden_session".into(),
            cookie_domain: None,
            cookie_secure: None,
            allow_cors_preflight: false,
            tenant: warden_core::builtin::DEFAULT_TENANT.into(),
            policy_dir: None,
            policy_query: warden_policy::rego::DEFAULT_QUERY.into(),
            policy_reload_interval: "2s".into(),
            headers: IdentityHeaders::default(),
            rules: Vec::new(),
        }
    }
}

/// A `[[role]]` block.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemRoleConfig {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub tenant: Option<String>,
    #[serde(default)]
    pub permissions: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// The public listener: sign-in, self-service (and, without `admin_listen`, everything).
    pub listen: SocketAddr,
    /// When set, the management API is served only here.
    pub admin_listen: Option<SocketAddr>,
    pub tls: Option<TlsConfig>,
    /// Set when a reverse proxy terminates TLS in front of Warden.
    pub behind_proxy: bool,
    /// Addresses of the proxies whose forwarding headers are trusted.
    pub trusted_proxies: Vec<IpAddr>,
    /// The local control socket used by `wardend recover-account` on the server host.
    pub control_socket: PathBuf,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Where browsers reach Warden (`https://auth.example.org`): the base of every link Warden
    /// writes (recovery links), and of the sign-in page when `forward_auth.public_url` is unset.
    pub public_url: Option<String>,
    /// How long a client may take to send a request's head (`10s`): counted from the
    /// connection's start for its first request, from the first byte for later ones.
    pub header_read_timeout: String,
    /// How long a TLS handshake may take (`10s`).
    pub tls_handshake_timeout: String,
    /// A connection on which no byte moves for this long is closed (`60s`).
    pub idle_timeout: String,
    /// Connections served at once per listener; more wait to be accepted (`10000`, lowered at
    /// start to what the open-file limit allows).
    pub max_connections: usize,
}

/// The limits of [`ServerConfig`] that bound what a connection may hold, parsed once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub header_read_timeout: std::time::Duration,
    pub tls_handshake_timeout: std::time::Duration,
    pub idle_timeout: std::time::Duration,
    pub max_connections: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` (default `sqlite://warden-data/warden.db`) or `postgres://…`.
    pub url: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Absolute lifetime of an interactive session (`12h`).
    pub session_ttl: String,
    /// A session unused for this long ends (`1h`).
    pub session_idle_timeout: String,
    /// Lifetime of an API token created without `--expires-in` (`90d`).
    pub api_token_default_ttl: String,
    /// The longest lifetime an API token may be given; unset: tokens may be made without an
    /// expiry (`expires_in = "never"`).
    pub api_token_max_lifetime: Option<String>,
    /// Whether users may rename themselves (administrators always may).
    pub allow_username_change: bool,
    /// How long a name given up by a rename or a deletion stays reserved for its old holder
    /// (`30d`), or `off`. Users renaming themselves cannot take a reserved name.
    pub name_reservation: String,
    pub argon2: Argon2Config,
    /// Failed passwords for one account name from one client address (an IPv6 client by its
    /// /64) within the window before attempts are slowed down.
    pub max_failed_logins: u32,
    /// Failed passwords for one account name from all addresses together (looser: one
    /// address alone never reaches it, so its owner elsewhere is not slowed down).
    pub max_failed_logins_per_name: u32,
    /// Failed passwords from one client address for all names together.
    pub max_failed_logins_per_client: u32,
    /// How long a failure counts (`24h`).
    pub failed_login_window: String,
    /// Past the free failures, the wait before the next attempt doubles from 1 s up to this
    /// (`15m`).
    pub failed_login_max_delay: String,
    /// How often expired sessions are deleted (`1h`), or `off`.
    pub session_purge_interval: String,
    /// How long a recovery link stays valid when its issuer names no lifetime (`1h`).
    pub recovery_link_ttl: String,
    /// The longest lifetime a recovery link may be given (`7d`).
    pub recovery_link_max_ttl: String,
    /// The fewest characters a new password may have (12; at least 8). Existing passwords
    /// keep working: the rules apply when one is set.
    pub password_min_length: usize,
    /// The lowest zxcvbn score (0–4) a new password may have (3; 0 turns the estimate off).
    pub password_min_score: u8,
    /// A file of further passwords to refuse, one a line (read at start, compared
    /// case-insensitively; `#` starts a comment line).
    pub password_denylist_file: Option<PathBuf>,
    /// Registrations one client address may make within `client_limit_window`.
    pub registration_per_client: u32,
    /// Recovery-link redemptions one client address may attempt within `client_limit_window`.
    pub recovery_per_client: u32,
    /// The window of the per-client limits on registration and recovery (`1h`).
    pub client_limit_window: String,
    /// Whether every holder of an administrative role (built-in, or any role with a
    /// privileged `warden:*` permission) must use a second factor (default true).
    pub mfa_required_for_admin_roles: bool,
    /// Further holders of a role or members of a group who must use a second factor
    /// (`[[auth.mfa_required]]`, each with `role = "…"` or `group = "…"`).
    pub mfa_required: Vec<MfaRequirement>,
}

/// One `[[auth.mfa_required]]` entry: exactly one of `role` (a role id, held directly or
/// through groups, in any tenant) or `group` (a group name, effective members included).
/// A role or group that does not exist (yet) requires nothing until it is created.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MfaRequirement {
    pub role: Option<String>,
    pub group: Option<String>,
}

/// argon2id cost. The defaults are OWASP's recommendation (19 MiB, 2 passes, 1 lane).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Argon2Config {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// Hashes computed at once; more wait (bounds memory and keeps the runtime responsive).
    pub max_concurrent: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_listen: None,
            tls: None,
            behind_proxy: false,
            trusted_proxies: Vec::new(),
            control_socket: PathBuf::from("warden-data/wardend.sock"),
            max_body_bytes: 64 * 1024,
            public_url: None,
            header_read_timeout: "10s".into(),
            tls_handshake_timeout: "10s".into(),
            idle_timeout: "60s".into(),
            max_connections: 10_000,
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self { url: "sqlite://warden-data/warden.db".into() }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            session_ttl: "12h".into(),
            session_idle_timeout: "1h".into(),
            api_token_default_ttl: "90d".into(),
            api_token_max_lifetime: None,
            allow_username_change: true,
            name_reservation: "30d".into(),
            argon2: Argon2Config::default(),
            max_failed_logins: 5,
            max_failed_logins_per_name: 200,
            max_failed_logins_per_client: 50,
            failed_login_window: "24h".into(),
            failed_login_max_delay: "15m".into(),
            session_purge_interval: "1h".into(),
            recovery_link_ttl: "1h".into(),
            recovery_link_max_ttl: "7d".into(),
            password_min_length: 12,
            password_min_score: 3,
            password_denylist_file: None,
            registration_per_client: 10,
            recovery_per_client: 20,
            client_limit_window: "1h".into(),
            mfa_required_for_admin_roles: true,
            mfa_required: Vec::new(),
        }
    }
}

impl Default for Argon2Config {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Self { memory_kib: 19 * 1024, iterations: 2, parallelism: 1, max_concurrent: cores }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration: {0}")]
    Load(String),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Durations of [`AuthConfig`] and [`AuthzConfig`], parsed once.
#[derive(Debug, Clone)]
pub struct AuthTimes {
    pub session_ttl_secs: i64,
    pub session_idle_secs: i64,
    pub api_token_ttl_secs: i64,
    /// `None`: API tokens may live forever.
    pub api_token_max_secs: Option<i64>,
    pub failed_login_window_secs: i64,
    pub failed_login_max_delay_secs: i64,
    pub elevation_secs: i64,
    pub role_elevation_secs: std::collections::BTreeMap<String, i64>,
    pub poll_secs: i64,
    /// `None`: expired sessions are never deleted.
    pub session_purge_secs: Option<i64>,
    /// `None`: a name given up is free at once.
    pub name_reservation_secs: Option<i64>,
    pub recovery_link_ttl_secs: i64,
    pub recovery_link_max_secs: i64,
    pub client_limit_window_secs: i64,
}

impl Config {
    /// Loads the file (if given) and applies `WARDEN_*` overrides, then validates.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut builder = config::Config::builder();
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError::Load(format!("{} does not exist", file.display())));
            }
            builder = builder.add_source(config::File::from(file).format(config::FileFormat::Toml));
        }
        // Only `WARDEN_<SECTION>__…` variables configure the server; others with the same
        // prefix (WARDEN_LOG, WARDEN_CONFIG, the CLI's WARDEN_SERVER and WARDEN_TOKEN) are not
        // configuration keys and must not be read as such.
        let sections = [
            "WARDEN_SERVER__",
            "WARDEN_DATABASE__",
            "WARDEN_AUTH__",
            "WARDEN_AUTHZ__",
            "WARDEN_FORWARD_AUTH__",
            "WARDEN_OIDC__",
            "WARDEN_REGISTRATION__",
            "WARDEN_MAIL__",
            "WARDEN_PROFILE__",
            "WARDEN_WEBAUTHN__",
        ];
        let vars: config::Map<String, String> = std::env::vars().filter(|(k, _)| sections.iter().any(|s| k.starts_with(s))).collect();
        builder = builder.add_source(
            config::Environment::with_prefix("WARDEN")
                .source(Some(vars))
                .prefix_separator("_")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("server.trusted_proxies")
                .with_list_parse_key("authz.permissions")
                .with_list_parse_key("forward_auth.trusted_proxies")
                .with_list_parse_key("forward_auth.allowed_redirect_domains")
                .with_list_parse_key("webauthn.origins"),
        );
        let raw = builder.build().map_err(|e| ConfigError::Load(e.to_string()))?;
        let config: Config = raw.try_deserialize().map_err(|e| ConfigError::Invalid(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the rules that serde cannot: durations parse, plain HTTP stays on loopback
    /// unless TLS or a trusted proxy protects it, argon2 parameters are accepted.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.auth_times()?;
        self.oidc.times()?;
        for (field, claim) in &self.oidc.field_claims {
            if !warden_core::oidc::claims::is_mappable(claim) {
                return Err(ConfigError::Invalid(format!("oidc.field_claims.{field}: {claim:?} is a claim Warden sets itself")));
            }
        }
        self.mfa_policy()?;
        PasswordPolicy::new(self.auth.password_min_length, self.auth.password_min_score, std::iter::empty())
            .map_err(|e| ConfigError::Invalid(e.to_string()))?;
        self.mail.times()?;
        if self.mail.max_attempts == 0 {
            return Err(ConfigError::Invalid("mail.max_attempts must be at least 1".into()));
        }
        if self.mail.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(ConfigError::Invalid(format!("mail.from: {:?} is not a mailbox (`Name <address>` or an address)", self.mail.from)));
        }
        self.permission_tree()?;
        self.system_roles()?;
        warden_core::fields::check_defs(&self.user_fields).map_err(|e| ConfigError::Invalid(format!("[[user_field]]: {e}")))?;
        warden_policy::RuleSet::new(self.forward_auth.rules.clone())
            .map_err(|e| ConfigError::Invalid(format!("[[forward_auth.rule]]: {e}")))?;
        parse_duration_secs(&self.forward_auth.policy_reload_interval)
            .map_err(|e| ConfigError::Invalid(format!("forward_auth.policy_reload_interval: {e}")))?;
        for (key, url) in [("server.public_url", &self.server.public_url), ("forward_auth.public_url", &self.forward_auth.public_url)] {
            if let Some(url) = url
                && !is_absolute_http_url(url)
            {
                return Err(ConfigError::Invalid(format!("{key} must be an absolute http(s) URL, not {url:?}")));
            }
        }
        self.relying_party()?;
        let h = &self.forward_auth.headers;
        for name in [&h.user, &h.user_id, &h.email, &h.name, &h.groups, &h.roles, &h.permissions, &h.auth_strength] {
            if !name.is_empty() && axum::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(ConfigError::Invalid(format!("forward_auth.headers: {name:?} is not a header name")));
            }
        }
        let protected = self.server.tls.is_some() || (self.server.behind_proxy && !self.server.trusted_proxies.is_empty());
        for addr in std::iter::once(self.server.listen).chain(self.server.admin_listen) {
            if !addr.ip().is_loopback() && !protected {
                return Err(ConfigError::Invalid(format!(
                    "refusing to serve plain HTTP on non-loopback address {addr}: configure [server.tls] (cert, key) \
                     or set server.behind_proxy = true with server.trusted_proxies"
                )));
            }
        }
        if self.server.behind_proxy && self.server.trusted_proxies.is_empty() {
            return Err(ConfigError::Invalid("server.behind_proxy = true needs server.trusted_proxies".into()));
        }
        if self.server.admin_listen == Some(self.server.listen) && self.server.listen.port() != 0 {
            return Err(ConfigError::Invalid("server.admin_listen must differ from server.listen".into()));
        }
        self.connection_limits()?;
        let a = &self.auth.argon2;
        argon2::Params::new(a.memory_kib, a.iterations, a.parallelism, None)
            .map_err(|e| ConfigError::Invalid(format!("auth.argon2: {e}")))?;
        if a.max_concurrent == 0 {
            return Err(ConfigError::Invalid("auth.argon2.max_concurrent must be at least 1".into()));
        }
        if !["sqlite:", "postgres:", "postgresql:"].iter().any(|scheme| self.database.url.starts_with(scheme)) {
            return Err(ConfigError::Invalid(format!(
                "database.url must start with sqlite:// or postgres:// (got {:?})",
                redact_url(&self.database.url)
            )));
        }
        Ok(())
    }

    /// Fills in what one key falls back to another for: `forward_auth.public_url` defaults to
    /// `server.public_url`. Called once at start, before anything reads the configuration.
    pub fn resolve_fallbacks(&mut self) {
        if self.forward_auth.public_url.is_none() {
            self.forward_auth.public_url.clone_from(&self.server.public_url);
        }
    }

    pub fn auth_times(&self) -> Result<AuthTimes, ConfigError> {
        let parse = |key: &str, v: &str| parse_duration_secs(v).map_err(|e| ConfigError::Invalid(format!("{key}: {e}")));
        let mut role_elevation_secs = std::collections::BTreeMap::new();
        for (role, window) in &self.authz.role_elevation_windows {
            role_elevation_secs.insert(role.clone(), parse(&format!("authz.role_elevation_windows.{role}"), window)?);
        }
        let api_token_ttl_secs = parse("auth.api_token_default_ttl", &self.auth.api_token_default_ttl)?;
        let api_token_max_secs =
            self.auth.api_token_max_lifetime.as_deref().map(|max| parse("auth.api_token_max_lifetime", max)).transpose()?;
        if api_token_max_secs.is_some_and(|max| api_token_ttl_secs > max) {
            return Err(ConfigError::Invalid(
                "auth.api_token_default_ttl is longer than auth.api_token_max_lifetime: no token could have the default".into(),
            ));
        }
        let recovery_link_ttl_secs = parse("auth.recovery_link_ttl", &self.auth.recovery_link_ttl)?;
        let recovery_link_max_secs = parse("auth.recovery_link_max_ttl", &self.auth.recovery_link_max_ttl)?;
        if recovery_link_ttl_secs <= 0 || recovery_link_ttl_secs > recovery_link_max_secs {
            return Err(ConfigError::Invalid("auth.recovery_link_ttl must be positive and at most auth.recovery_link_max_ttl".into()));
        }
        Ok(AuthTimes {
            client_limit_window_secs: parse("auth.client_limit_window", &self.auth.client_limit_window)?,
            recovery_link_ttl_secs,
            recovery_link_max_secs,
            session_ttl_secs: parse("auth.session_ttl", &self.auth.session_ttl)?,
            session_idle_secs: parse("auth.session_idle_timeout", &self.auth.session_idle_timeout)?,
            api_token_ttl_secs,
            api_token_max_secs,
            failed_login_window_secs: parse("auth.failed_login_window", &self.auth.failed_login_window)?,
            failed_login_max_delay_secs: parse("auth.failed_login_max_delay", &self.auth.failed_login_max_delay)?,
            elevation_secs: parse("authz.elevation_window", &self.authz.elevation_window)?,
            role_elevation_secs,
            poll_secs: parse("authz.poll_interval", &self.authz.poll_interval)?,
            session_purge_secs: match self.auth.session_purge_interval.trim() {
                "off" => None,
                every => Some(parse("auth.session_purge_interval", every)?),
            },
            name_reservation_secs: match self.auth.name_reservation.trim() {
                "off" => None,
                keep => Some(parse("auth.name_reservation", keep)?),
            },
        })
    }

    /// Who must use a second factor: `auth.mfa_required_for_admin_roles` and the
    /// `[[auth.mfa_required]]` entries, each naming exactly one role or group.
    pub fn mfa_policy(&self) -> Result<warden_core::mfa::MfaPolicy, ConfigError> {
        let mut policy = warden_core::mfa::MfaPolicy { admin_roles: self.auth.mfa_required_for_admin_roles, ..Default::default() };
        for (at, entry) in self.auth.mfa_required.iter().enumerate() {
            let invalid = |why: String| ConfigError::Invalid(format!("auth.mfa_required entry {}: {why}", at + 1));
            let name = |what: &str, raw: &str| {
                warden_core::Name::parse(raw).map_err(|_| invalid(format!("{what} = {raw:?} is not a valid {what} name")))
            };
            match (&entry.role, &entry.group) {
                (Some(role), None) => policy.roles.push(name("role", role)?),
                (None, Some(group)) => policy.groups.push(name("group", group)?),
                (Some(_), Some(_)) => return Err(invalid("give role = \"…\" or group = \"…\", not both (one entry each)".into())),
                (None, None) => return Err(invalid("needs role = \"…\" or group = \"…\"".into())),
            }
        }
        Ok(policy)
    }

    /// The password policy: the `[auth]` settings and the operator's list, read from its file.
    pub fn password_policy(&self) -> Result<PasswordPolicy, ConfigError> {
        let extra = match &self.auth.password_denylist_file {
            None => Vec::new(),
            Some(path) => std::fs::read_to_string(path)
                .map_err(|e| ConfigError::Load(format!("auth.password_denylist_file {}: {e}", path.display())))?
                .lines()
                .map(str::to_owned)
                .collect(),
        };
        PasswordPolicy::new(self.auth.password_min_length, self.auth.password_min_score, extra)
            .map_err(|e| ConfigError::Invalid(e.to_string()))
    }

    /// The timeouts and the connection cap of `[server]`.
    pub fn connection_limits(&self) -> Result<ConnectionLimits, ConfigError> {
        let parse = |key: &str, v: &str| {
            parse_duration_secs(v)
                .map(|secs| std::time::Duration::from_secs(secs.unsigned_abs()))
                .map_err(|e| ConfigError::Invalid(format!("server.{key}: {e}")))
        };
        let s = &self.server;
        if !(1..=1_000_000).contains(&s.max_connections) {
            return Err(ConfigError::Invalid("server.max_connections must lie between 1 and 1000000".into()));
        }
        Ok(ConnectionLimits {
            header_read_timeout: parse("header_read_timeout", &s.header_read_timeout)?,
            tls_handshake_timeout: parse("tls_handshake_timeout", &s.tls_handshake_timeout)?,
            idle_timeout: parse("idle_timeout", &s.idle_timeout)?,
            max_connections: s.max_connections,
        })
    }

    /// Whether roles may be created and changed through the API.
    pub fn dynamic_roles_enabled(&self) -> bool {
        self.dynamic_roles_off_because().is_none()
    }

    /// Why roles may not be created and changed through the API, in the operator's terms
    /// (`None`: they may). Declaring system roles turns dynamic roles off unless the operator
    /// says otherwise, which surprises whoever did not write the configuration.
    pub fn dynamic_roles_off_because(&self) -> Option<String> {
        match (self.authz.enable_dynamic_roles, self.roles.len()) {
            (Some(true), _) | (None, 0) => None,
            (Some(false), _) => Some("the configuration sets authz.enable_dynamic_roles = false".to_owned()),
            (None, n) => Some(format!(
                "the configuration declares {n} system role{} ([[role]]), which turns dynamic roles off while \
                 authz.enable_dynamic_roles is unset; set it to true to have both",
                if n == 1 { "" } else { "s" }
            )),
        }
    }

    /// The configured permission tree.
    pub fn permission_tree(&self) -> Result<warden_core::permission::PermissionTree, ConfigError> {
        warden_core::permission::PermissionTree::new(self.authz.permission_trees, &self.authz.permissions)
            .map_err(|e| ConfigError::Invalid(format!("authz.permissions: {e}")))
    }

    /// The `[[role]]` blocks as system roles, validated.
    pub fn system_roles(&self) -> Result<Vec<warden_core::authz::Role>, ConfigError> {
        use warden_core::authz::{Role, RoleSource, parse_id};
        let invalid = |e: warden_core::CoreError| ConfigError::Invalid(format!("[[role]]: {e}"));
        let mut roles: Vec<Role> = Vec::new();
        for r in &self.roles {
            let id = parse_id("role.id", &r.id).map_err(invalid)?;
            if warden_core::builtin::built_in_role(id.as_str()).is_some() || roles.iter().any(|x| x.id == id) {
                return Err(ConfigError::Invalid(format!("[[role]] id {id} is declared twice or is a built-in role")));
            }
            let tenant = parse_id("role.tenant", r.tenant.as_deref().unwrap_or(warden_core::builtin::DEFAULT_TENANT)).map_err(invalid)?;
            for p in &r.permissions {
                warden_core::permission::validate_permission(p).map_err(invalid)?;
            }
            roles.push(Role {
                name: r.name.clone().unwrap_or_else(|| id.to_string()),
                id,
                tenant: Some(tenant),
                description: r.description.clone(),
                permissions: r.permissions.clone(),
                source: RoleSource::System,
            });
        }
        Ok(roles)
    }
}

/// A database URL with any password replaced, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}://{user}:***@{}", &url[..scheme_end], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// `http://host…` or `https://host…` with a host.
fn is_absolute_http_url(url: &str) -> bool {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relying_party_comes_from_webauthn_or_the_public_url() {
        let mut config = Config::default();
        assert_eq!(config.relying_party().unwrap(), None, "nothing says who Warden is: passkeys are off");
        config.server.public_url = Some("http://127.0.0.1:8080".into());
        assert_eq!(config.relying_party().unwrap(), None, "an address is no relying party");
        config.server.public_url = Some("https://id.example.org/".into());
        let rp = config.relying_party().unwrap().unwrap();
        assert_eq!(
            (rp.id.as_str(), rp.origins.as_slice(), rp.name.as_str()),
            ("id.example.org", &["https://id.example.org".to_owned()][..], "Warden")
        );
        config.webauthn.rp_id = Some("Example.org".into());
        assert_eq!(config.relying_party().unwrap().unwrap().id, "example.org", "a registrable suffix of the origin's host");
        for (rp_id, origins, key) in [
            ("other.org", vec![], "webauthn.origins"),
            ("example.org", vec!["https://evil.org".to_owned()], "webauthn.origins"),
            ("example.org", vec!["id.example.org".to_owned()], "webauthn.origins"),
            ("10.0.0.1", vec!["https://10.0.0.1".to_owned()], "webauthn.rp_id"),
        ] {
            config.webauthn.rp_id = Some(rp_id.into());
            config.webauthn.origins = origins;
            let e = config.validate().unwrap_err().to_string();
            assert!(e.contains(key), "{rp_id}: {e}");
        }
        config.server.public_url = None;
        config.webauthn.origins = Vec::new();
        config.webauthn.rp_id = Some("example.org".into());
        assert!(config.validate().unwrap_err().to_string().contains("no origin"));
    }

    #[test]
    fn public_urls_are_absolute_and_forward_auth_falls_back() {
        let mut config = Config::default();
        for bad in ["auth.example.org", "https://", "ftp://x", "/recover"] {
            config.server.public_url = Some(bad.into());
            let e = config.validate().unwrap_err().to_string();
            assert!(e.contains("server.public_url"), "{bad}: {e}");
        }
        config.server.public_url = Some("https://auth.example.org".into());
        config.validate().unwrap();
        config.resolve_fallbacks();
        assert_eq!(config.forward_auth.public_url.as_deref(), Some("https://auth.example.org"));
        config.server.public_url = Some("https://other.example.org".into());
        config.resolve_fallbacks();
        assert_eq!(config.forward_auth.public_url.as_deref(), Some("https://auth.example.org"), "an explicit value stays");
    }

    #[test]
    fn recovery_link_lifetimes_are_checked_at_start() {
        let mut config = Config::default();
        let times = config.auth_times().unwrap();
        assert_eq!((times.recovery_link_ttl_secs, times.recovery_link_max_secs), (3600, 7 * 86_400));
        config.auth.recovery_link_ttl = "8d".into();
        assert!(config.validate().unwrap_err().to_string().contains("auth.recovery_link_ttl"));
        config.auth.recovery_link_ttl = "soon".into();
        assert!(config.validate().is_err());
    }

    #[test]
    fn mfa_requirements_name_one_role_or_one_group() {
        let dir = tempfile::tempdir().unwrap();
        let load = |toml: &str| {
            let file = dir.path().join("warden.toml");
            std::fs::write(&file, toml).unwrap();
            Config::load(Some(&file))
        };
        let defaults = Config::default().mfa_policy().unwrap();
        assert!(defaults.admin_roles && defaults.roles.is_empty() && defaults.groups.is_empty(), "administrators by default");
        let config = load(
            "[auth]\nmfa_required_for_admin_roles = false\n\n[[auth.mfa_required]]\nrole = \"Deployer\"\n\n\
             [[auth.mfa_required]]\ngroup = \"ops\"\n",
        )
        .unwrap();
        let policy = config.mfa_policy().unwrap();
        assert!(!policy.admin_roles);
        assert_eq!(policy.roles.iter().map(warden_core::Name::as_str).collect::<Vec<_>>(), ["deployer"]);
        assert_eq!(policy.groups.iter().map(warden_core::Name::as_str).collect::<Vec<_>>(), ["ops"]);
        for (toml, says) in [
            ("[[auth.mfa_required]]\nrole = \"deployer\"\ngroup = \"ops\"\n", "not both"),
            ("[[auth.mfa_required]]\n", "needs role"),
            ("[[auth.mfa_required]]\ngroup = \"-ops\"\n", "not a valid group name"),
        ] {
            let e = load(toml).unwrap_err().to_string();
            assert!(e.contains("auth.mfa_required") && e.contains(says), "{toml}: {e}");
        }
        let e = load("[[auth.mfa_required]]\nuser = \"alice\"\n").unwrap_err().to_string();
        assert!(e.contains("user"), "an unknown key is refused: {e}");
    }

    #[test]
    fn defaults_are_valid_and_loopback() {
        let config = Config::default();
        config.validate().unwrap();
        assert!(config.server.listen.ip().is_loopback());
        assert!(config.database.url.starts_with("sqlite://"));
    }

    #[test]
    fn plain_http_on_public_address_is_refused() {
        let mut config = Config::default();
        config.server.listen = "0.0.0.0:8080".parse().unwrap();
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("non-loopback"), "{err}");
        config.server.behind_proxy = true;
        assert!(config.validate().is_err(), "behind_proxy without trusted_proxies");
        config.server.trusted_proxies = vec!["10.0.0.1".parse().unwrap()];
        config.validate().unwrap();
    }

    #[test]
    fn bad_durations_and_argon2_refused() {
        let mut config = Config::default();
        config.auth.session_ttl = "forever".into();
        assert!(config.validate().is_err());
        let mut config = Config::default();
        config.auth.argon2.memory_kib = 1;
        assert!(config.validate().is_err());
    }

    #[test]
    fn connection_limits_default_and_refuse_nonsense() {
        let mut config = Config::default();
        let limits = config.connection_limits().unwrap();
        assert_eq!(
            (limits.header_read_timeout.as_secs(), limits.tls_handshake_timeout.as_secs(), limits.idle_timeout.as_secs()),
            (10, 10, 60)
        );
        assert_eq!(limits.max_connections, 10_000);
        config.server.idle_timeout = "0s".into();
        assert!(config.validate().is_err());
        let mut config = Config::default();
        config.server.max_connections = 0;
        assert!(config.validate().is_err());
    }

    #[test]
    fn session_purge_is_hourly_unless_off() {
        let mut config = Config::default();
        assert_eq!(config.auth_times().unwrap().session_purge_secs, Some(3600));
        config.auth.session_purge_interval = "off".into();
        assert_eq!(config.auth_times().unwrap().session_purge_secs, None);
        config.auth.session_purge_interval = "never".into();
        assert!(config.validate().is_err(), "a typo is refused, not taken as off");
    }

    #[test]
    fn names_are_reserved_for_thirty_days_unless_off() {
        let mut config = Config::default();
        assert_eq!(config.auth_times().unwrap().name_reservation_secs, Some(30 * 86_400));
        config.auth.name_reservation = "off".into();
        assert_eq!(config.auth_times().unwrap().name_reservation_secs, None);
        config.auth.name_reservation = "forever".into();
        assert!(config.validate().is_err());
    }

    #[test]
    fn registration_is_disabled_unless_a_mode_is_named() {
        assert_eq!(Config::default().registration.mode, RegistrationMode::Disabled);
        let parse = |mode: &str| {
            serde_json::from_value::<Config>(serde_json::json!({ "registration": { "mode": mode } })).map(|c| c.registration.mode)
        };
        assert_eq!(parse("token").unwrap(), RegistrationMode::Token);
        assert_eq!(parse("public").unwrap(), RegistrationMode::Public);
        assert!(parse("open").is_err(), "a typo is refused");
    }

    #[test]
    fn profile_switches_and_user_fields_parse_and_are_checked() {
        use warden_core::fields::{FieldType, Visibility};
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("warden.toml");
        let toml = "[profile]\ndisable_phone_numbers = true\n\n[[user_field]]\nname = \"desk\"\ntype = \"number\"\n\
                    visibility = \"authenticated\"\nwritable_by_user = true\n";
        std::fs::write(&file, toml).unwrap();
        let config = Config::load(Some(&file)).unwrap();
        assert!(config.profile.disable_phone_numbers && !config.profile.disable_addresses);
        let desk = &config.user_fields[0];
        assert_eq!((desk.kind, desk.visibility, desk.writable_by_user), (FieldType::Number, Visibility::Authenticated, true));
        let parse = |fields: serde_json::Value| serde_json::from_value::<Config>(serde_json::json!({ "user_field": fields }));
        let twice = parse(serde_json::json!([{"name": "a", "type": "bool"}, {"name": "a", "type": "list"}])).unwrap();
        assert!(twice.validate().unwrap_err().to_string().contains("fields.a"));
        assert!(parse(serde_json::json!([{"name": "Bad", "type": "bool"}])).unwrap().validate().is_err());
        assert!(parse(serde_json::json!([{"name": "a", "type": "blob"}])).is_err());
    }

    #[test]
    fn passwords_in_urls_are_redacted() {
        assert_eq!(redact_url("postgres://warden:s3cret@db:5432/warden"), "postgres://warden:***@db:5432/warden");
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
    }
}
